//! Installing a seccomp filter, from a freshly forked child.
//!
//! # The fork contract
//!
//! Every function in this module is **async-signal-safe**: it allocates
//! nothing, takes no lock, touches no global state but the thread-local
//! `errno`, and makes one or two raw system calls. They may therefore be
//! called between `fork()` and `execve()` in the child of a multi-threaded
//! parent, where another thread of the parent may have held the allocator's
//! lock at the time of the fork. The program (`&[Insn]`) must be built
//! *before* the fork.

use std::os::fd::OwnedFd;

use rustix::io::Errno;
use sandlock_bpf::Insn;

use crate::abi;
use crate::sys;

/// Flags for `seccomp(SECCOMP_SET_MODE_FILTER, ..)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FilterFlags(u32);

impl FilterFlags {
    /// No flag.
    pub const EMPTY: FilterFlags = FilterFlags(0);
    /// `SECCOMP_FILTER_FLAG_TSYNC`: apply to every thread of the process.
    pub const TSYNC: FilterFlags = FilterFlags(abi::FILTER_FLAG_TSYNC);
    /// `SECCOMP_FILTER_FLAG_LOG`: log every action but allow.
    pub const LOG: FilterFlags = FilterFlags(abi::FILTER_FLAG_LOG);
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 6.0): once the
    /// supervisor has received a notification, only a fatal signal interrupts
    /// the waiting task, so a signal cannot restart a syscall the supervisor
    /// is already performing on the task's behalf. Listener filters only;
    /// [`install_filter_with_listener`] drops it on kernels that refuse it.
    pub const WAIT_KILLABLE_RECV: FilterFlags = FilterFlags(abi::FILTER_FLAG_WAIT_KILLABLE_RECV);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: FilterFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    pub const fn union(self, other: FilterFlags) -> FilterFlags {
        FilterFlags(self.0 | other.0)
    }

    /// These bits without those of `other`.
    pub const fn without(self, other: FilterFlags) -> FilterFlags {
        FilterFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for FilterFlags {
    type Output = FilterFlags;
    fn bitor(self, rhs: FilterFlags) -> FilterFlags {
        self.union(rhs)
    }
}

/// Set `PR_SET_NO_NEW_PRIVS`, which an unprivileged `seccomp()` requires.
///
/// Async-signal-safe (see the [module documentation](self)).
pub fn set_no_new_privs() -> Result<(), Errno> {
    rustix::thread::set_no_new_privs(true)
}

/// Install `prog` as a seccomp filter of the calling thread, without a
/// listener (for programs that only allow, deny or kill).
///
/// The caller must have set `NO_NEW_PRIVS` ([`set_no_new_privs`]) or hold
/// `CAP_SYS_ADMIN`. `EINVAL` for an empty program or one longer than
/// `BPF_MAXINSNS`.
///
/// Async-signal-safe (see the [module documentation](self)): callable in the
/// child of a multi-threaded parent between `fork` and `execve`.
pub fn install_filter(prog: &[Insn], flags: FilterFlags) -> Result<(), Errno> {
    sys::seccomp_set_filter(flags.bits(), prog).map(|_| ())
}

/// Install `prog` with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and return the
/// listener fd (give it to the supervisor, e.g. over a socketpair, then close
/// it in the child).
///
/// If `flags` holds [`FilterFlags::WAIT_KILLABLE_RECV`] and the kernel
/// refuses it (`EINVAL` before Linux 6.0), the filter is installed without it.
/// `TSYNC` cannot be combined with a listener unless the kernel has
/// `TSYNC_ESRCH`; leave it out.
///
/// The caller must have set `NO_NEW_PRIVS` ([`set_no_new_privs`]) or hold
/// `CAP_SYS_ADMIN`.
///
/// Async-signal-safe (see the [module documentation](self)): no allocation,
/// no lock, only raw system calls, so it is callable in the child of a
/// multi-threaded parent between `fork` and `execve`.
pub fn install_filter_with_listener(prog: &[Insn], flags: FilterFlags) -> Result<OwnedFd, Errno> {
    match sys::seccomp_set_filter_listener(flags.bits(), prog) {
        Err(Errno::INVAL) if flags.contains(FilterFlags::WAIT_KILLABLE_RECV) => {
            let older = flags.without(FilterFlags::WAIT_KILLABLE_RECV);
            sys::seccomp_set_filter_listener(older.bits(), prog)
        }
        other => other,
    }
}
