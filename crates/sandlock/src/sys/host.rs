//! Raw system calls of the parent (the process that starts sandboxes).

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::io::Errno;

use super::{check, errno, nr};

/// `CLONE_PIDFD` (Linux 5.2): the kernel stores a pidfd of the child.
const CLONE_PIDFD: libc::c_ulong = 0x1000;

/// Starts the child: `clone` with `CLONE_PIDFD` (a pidfd from the child's
/// first instant: no pid-reuse race) running [`crate::child::run`] with
/// `args`; returns the child's pid and pidfd.
///
/// With `share_memory` (the child does not wait for the parent), the child
/// is created `CLONE_VM | CLONE_VFORK`, as `posix_spawn` does: it runs on a
/// stack of its own in the parent's address space, and this thread is
/// suspended until the child has called `execve` (or exited). No page table
/// is copied and the parent takes no copy-on-write faults afterwards. The
/// child writes nothing but its own stack (and the forking thread's
/// `errno`, which nobody reads meanwhile). Without it, a plain fork.
///
/// Every signal is blocked in the calling thread around the clone (the
/// child inherits that mask and sets its own just before `execve`). With
/// `forward`, the new process group becomes the target of the signal
/// forwarding handlers before the blocked signals are delivered.
pub(crate) fn spawn_child(
    args: &crate::child::ChildArgs<'_>,
    share_memory: bool,
    forward: bool,
) -> Result<(i32, OwnedFd), Errno> {
    // The vfork child's stack: uninitialised memory on this thread's stack
    // (no allocation; the child touches a few pages of it).
    #[repr(C, align(16))]
    struct Stack([std::mem::MaybeUninit<u8>; 64 * 1024]);
    let mut stack = Stack([std::mem::MaybeUninit::uninit(); 64 * 1024]);
    let old = block_all_signals();
    let mut pidfd: libc::c_int = -1;
    let ret = if share_memory {
        extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
            // SAFETY: `arg` is the `&ChildArgs` passed below; the parent is
            // suspended (CLONE_VFORK) and keeps it alive until we execve.
            let args = unsafe { &*(arg as *const crate::child::ChildArgs<'_>) };
            crate::child::run(args)
        }
        // SAFETY: `stack` is a live, 16-byte aligned buffer whose end is
        // the child's initial stack pointer, in a frame that outlives the
        // child's use of it (this thread is suspended until the child has
        // called execve or exited); the child only runs `child::run` (raw,
        // async-signal-safe syscalls on data we keep alive). The kernel
        // writes the pidfd into `pidfd` (the parent_tid argument).
        unsafe {
            let top = stack.0.as_mut_ptr().add(stack.0.len()) as *mut libc::c_void;
            libc::clone(
                entry,
                top,
                (libc::CLONE_VM | libc::CLONE_VFORK | CLONE_PIDFD as libc::c_int) | libc::SIGCHLD,
                args as *const crate::child::ChildArgs<'_> as *mut libc::c_void,
                &mut pidfd as *mut libc::c_int,
            )
        }
    } else {
        // SAFETY: with a null stack the child runs on a copy of our stack,
        // like fork(); it only runs `child::run` (see above) and never
        // returns here. The kernel writes the pidfd into `pidfd`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                CLONE_PIDFD | libc::SIGCHLD as libc::c_ulong,
                0usize,
                &mut pidfd as *mut libc::c_int,
                0usize,
                0usize,
            )
        };
        if r == 0 {
            crate::child::run(args);
        }
        r as libc::c_int
    };
    let err = if ret < 0 { Some(errno()) } else { None };
    if forward && ret > 0 {
        // Before the signals blocked around the clone are delivered.
        forward_signals_to(ret);
    }
    restore_signals(&old);
    if let Some(err) = err {
        return Err(err);
    }
    if pidfd < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: the kernel just created this descriptor for us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((ret, pidfd))
}

/// An all-empty signal set (prepared before a fork).
pub(crate) fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// Blocks every signal in the calling thread; returns the previous mask.
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: valid sigsets on our stack.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

/// Restores a mask returned by [`block_all_signals`].
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid sigset.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// Blocks `SIGTTOU` in the calling thread (so that a background process
/// may call `tcsetpgrp`); returns the previous mask.
pub(crate) fn block_sigttou() -> libc::sigset_t {
    // SAFETY: valid sigsets on our stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// The running kernel's Landlock ABI version (`Err` when Landlock is not
/// built in (`ENOSYS`) or not enabled (`EOPNOTSUPP`)).
pub(crate) fn landlock_abi() -> Result<i32, Errno> {
    const VERSION: u32 = 1;
    // SAFETY: with a null attribute and size 0, the VERSION flag only
    // returns a number.
    let ret = unsafe {
        libc::syscall(
            nr::LANDLOCK_CREATE_RULESET,
            std::ptr::null::<u8>(),
            0usize,
            VERSION,
        )
    };
    check(ret).map(|v| v as i32)
}

/// Whether the kernel accepts `flags` for `SECCOMP_SET_MODE_FILTER`: asked
/// with a null program, which fails with `EFAULT` only after the flags
/// passed their check (`EINVAL` for unknown ones). Installs nothing.
pub(crate) fn seccomp_filter_flags_known(flags: u32) -> Result<bool, Errno> {
    const SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: a null program pointer is rejected by the kernel (EFAULT)
    // before anything is installed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<u8>(),
        )
    };
    match check(ret) {
        Err(Errno::FAULT) => Ok(true),
        Err(Errno::INVAL) => Ok(false),
        Err(e) => Err(e),
        Ok(_) => Ok(true),
    }
}

/// The process group the forwarding handler signals (0: none yet).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// A signal received before there was a sandbox to pass it to.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pgid = FORWARD_TO.load(Ordering::SeqCst);
    if pgid > 0 {
        // SAFETY: kill is async-signal-safe; a negative pid names a group.
        unsafe { libc::kill(-pgid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

/// Installs a handler for each of `signals` that passes it on to the
/// process group set by [`forward_signals_to`] (the sandbox's). The handler
/// is reset to the default action in a child at `execve`.
pub(crate) fn install_signal_forwarding(signals: &[i32]) -> Result<(), Errno> {
    for &sig in signals {
        // SAFETY: an all-zero sigaction is valid; the handler is an
        // async-signal-safe `extern "C"` function; SA_RESTART keeps the
        // waiting parent's syscalls going.
        let ret = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = forward as *const () as usize;
            libc::sigemptyset(&mut act.sa_mask);
            act.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if ret < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// Sets the process group the forwarding handler signals (0: none), and
/// passes on a signal that arrived before it existed.
pub(crate) fn forward_signals_to(pgid: i32) {
    FORWARD_TO.store(pgid, Ordering::SeqCst);
    let pending = PENDING.swap(0, Ordering::SeqCst);
    if pgid > 0 && pending != 0 {
        // SAFETY: kill with a negative pid signals the sandbox's group.
        unsafe { libc::kill(-pgid, pending) };
    }
}
