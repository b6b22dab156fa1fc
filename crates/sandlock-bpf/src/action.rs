//! What a seccomp filter tells the kernel to do with a syscall.

use core::fmt;

use crate::errno::Errno;

/// `SECCOMP_RET_KILL_PROCESS`: kill the whole thread group.
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_KILL_THREAD`: kill the calling thread.
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_TRAP`: send `SIGSYS`; the low 16 bits go to `si_errno`.
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO`: fail the syscall with the errno in the low 16 bits.
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`: ask the listener process (Linux 5.0+).
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`: hand over to a ptrace tracer (not produced by this crate).
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`: allow after logging (Linux 4.14+).
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`: run the syscall.
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`: the bits of a return value that select the action.
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_DATA`: the bits of a return value that carry the action's data.
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

/// The verdict of a rule or of a whole filter for one syscall.
///
/// Each variant maps to exactly one `SECCOMP_RET_*` return value
/// ([`Action::to_ret`]) and back ([`Action::from_ret`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run the syscall.
    Allow,
    /// Fail the syscall with this errno; the syscall does not run.
    Errno(Errno),
    /// Suspend the syscall and ask the seccomp user-notification listener.
    UserNotif,
    /// Run the syscall and log it to the audit log.
    Log,
    /// Do not run the syscall; send `SIGSYS` with this value in `si_errno`.
    Trap(u16),
    /// Kill the calling thread with `SIGSYS`.
    KillThread,
    /// Kill the whole process with `SIGSYS`.
    KillProcess,
}

impl Action {
    /// The `SECCOMP_RET_*` value a filter returns for this action.
    ///
    /// ```
    /// use sandlock_bpf::{Action, Errno};
    /// assert_eq!(Action::Allow.to_ret(), 0x7fff_0000);
    /// assert_eq!(Action::Errno(Errno::EPERM).to_ret(), 0x0005_0001);
    /// ```
    pub const fn to_ret(self) -> u32 {
        match self {
            Action::Allow => SECCOMP_RET_ALLOW,
            Action::Errno(e) => SECCOMP_RET_ERRNO | e.get() as u32,
            Action::UserNotif => SECCOMP_RET_USER_NOTIF,
            Action::Log => SECCOMP_RET_LOG,
            Action::Trap(data) => SECCOMP_RET_TRAP | data as u32,
            Action::KillThread => SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
        }
    }

    /// The action whose [`to_ret`](Action::to_ret) is exactly `ret`.
    ///
    /// Returns `None` for values no [`Action`] produces: `SECCOMP_RET_TRACE`,
    /// unknown action bits, data on actions that carry none, and
    /// `SECCOMP_RET_ERRNO` with a data value outside `1..=4095`.
    ///
    /// ```
    /// use sandlock_bpf::{Action, Errno};
    /// assert_eq!(Action::from_ret(0x0005_000d), Some(Action::Errno(Errno::EACCES)));
    /// assert_eq!(Action::from_ret(0x0005_0000), None);
    /// assert_eq!(Action::from_ret(0x7ff0_0000), None);
    /// ```
    pub const fn from_ret(ret: u32) -> Option<Action> {
        let data = (ret & SECCOMP_RET_DATA) as u16;
        match ret & SECCOMP_RET_ACTION_FULL {
            SECCOMP_RET_ERRNO => match Errno::new(data as i64) {
                Ok(e) => Some(Action::Errno(e)),
                Err(_) => None,
            },
            SECCOMP_RET_TRAP => Some(Action::Trap(data)),
            _ if data != 0 => None,
            SECCOMP_RET_ALLOW => Some(Action::Allow),
            SECCOMP_RET_USER_NOTIF => Some(Action::UserNotif),
            SECCOMP_RET_LOG => Some(Action::Log),
            SECCOMP_RET_KILL_THREAD => Some(Action::KillThread),
            SECCOMP_RET_KILL_PROCESS => Some(Action::KillProcess),
            _ => None,
        }
    }

    /// Whether the kernel runs the syscall itself under this action
    /// ([`Allow`](Action::Allow) and [`Log`](Action::Log)).
    pub const fn runs_syscall(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("ALLOW"),
            Action::Errno(e) => write!(f, "ERRNO({e})"),
            Action::UserNotif => f.write_str("USER_NOTIF"),
            Action::Log => f.write_str("LOG"),
            Action::Trap(data) => write!(f, "TRAP({data})"),
            Action::KillThread => f.write_str("KILL_THREAD"),
            Action::KillProcess => f.write_str("KILL_PROCESS"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips() {
        let mut actions = alloc::vec![
            Action::Allow,
            Action::UserNotif,
            Action::Log,
            Action::KillThread,
            Action::KillProcess,
            Action::Trap(0),
            Action::Trap(0xffff),
        ];
        for e in [1, 13, 38, 4095] {
            actions.push(Action::Errno(Errno::new(e).unwrap()));
        }
        for a in actions {
            assert_eq!(Action::from_ret(a.to_ret()), Some(a), "{a}");
        }
    }

    #[test]
    fn kernel_constants() {
        // Values from <linux/seccomp.h>.
        assert_eq!(Action::KillProcess.to_ret(), 0x8000_0000);
        assert_eq!(Action::KillThread.to_ret(), 0);
        assert_eq!(Action::Trap(7).to_ret(), 0x0003_0007);
        assert_eq!(Action::UserNotif.to_ret(), 0x7fc0_0000);
        assert_eq!(Action::Log.to_ret(), 0x7ffc_0000);
    }

    #[test]
    fn non_encodings_are_refused() {
        for ret in [
            SECCOMP_RET_ERRNO,
            SECCOMP_RET_ERRNO | 4096,
            SECCOMP_RET_ALLOW | 1,
            SECCOMP_RET_KILL_PROCESS | 5,
            SECCOMP_RET_TRACE,
            0x1234_0000,
        ] {
            assert_eq!(Action::from_ret(ret), None, "{ret:#x}");
        }
    }
}
