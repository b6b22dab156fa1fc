//! The answer a policy callback gives to one event.

use sandlock_bpf::Errno;

/// What to do with an intercepted syscall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the call proceed (the default).
    #[default]
    Allow,
    /// Let the call proceed and record it in the audit log.
    Audit,
    /// Refuse the call with `EPERM`.
    Deny,
    /// Refuse the call with the given errno.
    DenyWith(Errno),
}

impl Verdict {
    /// Whether the call may proceed.
    pub const fn is_allowed(self) -> bool {
        matches!(self, Verdict::Allow | Verdict::Audit)
    }

    /// The errno a refused call gets (`None` when the call proceeds).
    pub const fn errno(self) -> Option<Errno> {
        match self {
            Verdict::Allow | Verdict::Audit => None,
            Verdict::Deny => Some(Errno::EPERM),
            Verdict::DenyWith(e) => Some(e),
        }
    }
}
