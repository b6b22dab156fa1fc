//! Every `unsafe` block of the crate: raw system calls that neither the
//! standard library nor rustix offers in the form we need.
//!
//! - [`child`]: the calls the child makes between `clone` and `execve`.
//!   Each one is **async-signal-safe**: no allocation, no lock, no standard
//!   I/O, only the thread-local `errno`. The child of a multi-threaded parent
//!   may call nothing else (another thread may have held the allocator's lock
//!   at the moment of the fork).
//! - [`host`]: calls the parent makes (clone with `CLONE_PIDFD`, probes of
//!   kernel features, terminal and signal settings).
//! - [`behalf`]: calls the supervisor makes for the sandbox (confining one
//!   of its threads, tracing an `execve`, writing a task's memory).
//! - [`net`]: socket calls the supervisor makes on a task's behalf with raw
//!   address bytes.
//!
//! The rest of the crate is `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

/// `libc::syscall(nr, args...)` without `errno`
/// ([`sandlock_notify::raw`]): the kernel's return value, `-errno` on
/// failure ([`check_raw`] decodes it). What runs between `clone` and
/// `execve` uses it: the init of a PID namespace shares sandlock's memory,
/// and the thread-local `errno` of the thread that cloned it.
macro_rules! raw_syscall {
    ($nr:expr $(, $arg:expr)* $(,)?) => {
        sandlock_notify::raw::syscall(($nr) as libc::c_long, &[$(($arg) as usize),*])
    };
}

pub(crate) mod behalf;
pub(crate) mod child;
pub(crate) mod host;
pub(crate) mod net;
pub(crate) mod ns;
pub(crate) mod trace;

use rustix::io::Errno;

/// The calling thread's `errno`, read without allocating (`EIO` if it
/// holds no error number).
pub(crate) fn errno() -> Errno {
    // SAFETY: `__errno_location` returns a valid pointer to the calling
    // thread's errno for the whole life of the thread.
    let raw = unsafe { *libc::__errno_location() };
    if (1..4096).contains(&raw) {
        Errno::from_raw_os_error(raw)
    } else {
        Errno::IO
    }
}

/// Turns a raw syscall result into `Ok(value)` or the thread's `errno`.
fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

/// Turns the result of [`raw_syscall!`] into `Ok(value)` or `Err(errno)`.
fn check_raw(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    sandlock_notify::raw::result(ret)
}

/// `RLIMIT_NOFILE` (the same number on every Linux architecture).
pub(crate) const RLIMIT_NOFILE: u32 = 7;
/// `RLIMIT_CORE`.
pub(crate) const RLIMIT_CORE: u32 = 4;
/// `RLIMIT_NPROC` (the number glibc and musl spell with different types).
pub(crate) const RLIMIT_NPROC: u32 = 6;

/// `landlock_create_ruleset`, `landlock_restrict_self`, `close_range`,
/// `pidfd_open`: numbers shared by every architecture (the syscalls after
/// 424 use one table).
pub(crate) mod nr {
    /// `landlock_create_ruleset(2)`.
    pub const LANDLOCK_CREATE_RULESET: libc::c_long = 444;
    /// `landlock_restrict_self(2)`.
    pub const LANDLOCK_RESTRICT_SELF: libc::c_long = 446;
    /// `close_range(2)`.
    pub const CLOSE_RANGE: libc::c_long = 436;
}
