//! Raw system calls of the parent (the process that starts sandboxes).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::io::Errno;

use super::{check, errno, nr};

/// `CLONE_PIDFD` (Linux 5.2): the kernel stores a pidfd of the child.
const CLONE_PIDFD: libc::c_ulong = 0x1000;

/// Starts the child: `clone` with `CLONE_PIDFD` (a pidfd from the child's
/// first instant: no pid-reuse race) running [`crate::child::run`] with
/// `args`, in the new namespaces `ns_flags` (`CLONE_NEW*`) asks for;
/// returns the child's pid and pidfd.
///
/// With `share_memory` (the child does not wait for the parent), the child
/// is created `CLONE_VM | CLONE_VFORK`, as `posix_spawn` does: it runs on a
/// stack of its own in the parent's address space, and this thread is
/// suspended until the child has called `execve` (or exited). No page table
/// is copied and the parent takes no copy-on-write faults afterwards. The
/// child writes nothing but its own stack (and the forking thread's
/// `errno`, which nobody reads meanwhile). Without it (and always with
/// namespaces), a plain fork.
///
/// `ns_flags` (`CLONE_NEW*`) puts the child in new namespaces; the caller
/// does not combine them with `share_memory` (the init of a PID namespace
/// never calls `execve`: a parent suspended until then would wait for good).
///
/// With `init_stack` (the child is the init of a PID namespace, and the
/// caller keeps everything `args` points at until the command has called
/// `execve`), the init is created `CLONE_VM` without `CLONE_VFORK`: it
/// runs beside this thread, in this process's memory, on that stack, with
/// raw system calls that write nothing but its stack (not even `errno`:
/// `raw_syscall!`). No page table is copied, and neither process takes
/// copy-on-write faults afterwards. The stack is given back only once the
/// init is dead ([`InitStack`]).
///
/// Every signal is blocked in the calling thread around the clone (the
/// child inherits that mask and sets its own just before `execve`). With
/// `forward`, the new process group becomes the target of the signal
/// forwarding handlers before the blocked signals are delivered.
pub(crate) fn spawn_child(
    args: &crate::child::ChildArgs<'_>,
    share_memory: bool,
    forward: bool,
    ns_flags: u64,
    mut init_stack: Option<&mut InitStack>,
) -> Result<(i32, OwnedFd), Errno> {
    let share_memory = share_memory && ns_flags == 0;
    let old = block_all_signals();
    let mut pidfd: libc::c_int = -1;
    let ret = if share_memory {
        vfork_child(args, &mut pidfd)
    } else if let Some(init) = init_stack.as_deref_mut() {
        extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
            // SAFETY: `arg` is the `&ChildArgs` passed below, which the
            // caller keeps alive and unchanged until the command called
            // execve; the init reads it only until then.
            let args = unsafe { &*(arg as *const crate::child::ChildArgs<'_>) };
            crate::child::run(args)
        }
        // SAFETY: `init.top()` is the end of a live mapping that nothing
        // else uses, which outlives the init (`InitStack` waits for its
        // death before unmapping); the init runs `child::run` with raw
        // system calls on data the caller keeps alive (see above), with
        // every signal blocked (the mask set above), and writes only its
        // stack. The kernel writes the pidfd into `pidfd`.
        unsafe {
            libc::clone(
                entry,
                init.top(),
                (libc::CLONE_VM | CLONE_PIDFD as libc::c_int)
                    | libc::SIGCHLD
                    | ns_flags as libc::c_int,
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
                CLONE_PIDFD | libc::SIGCHLD as libc::c_ulong | ns_flags as libc::c_ulong,
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
    if let Some(init) = init_stack {
        // Without a descriptor of its own, the stack is never unmapped.
        init.init = match rustix::io::fcntl_dupfd_cloexec(&pidfd, 0) {
            Ok(fd) => Init::Running(fd),
            Err(_) => Init::Unknown,
        };
    }
    Ok((ret, pidfd))
}

/// `clone(CLONE_VM | CLONE_VFORK)` of a child running `child::run(args)`
/// on a stack in this function's frame; the pidfd goes to `pidfd`.
///
/// A frame of its own, never inlined: its 64 KiB stack array makes the
/// compiler probe each of its pages on entry (16 page faults), which the
/// callers that clone otherwise must not pay.
#[inline(never)]
fn vfork_child(args: &crate::child::ChildArgs<'_>, pidfd: &mut libc::c_int) -> libc::c_int {
    // The child's stack: uninitialised memory on this thread's stack (no
    // allocation; the child touches a few pages of it).
    #[repr(C, align(16))]
    struct Stack([std::mem::MaybeUninit<u8>; 64 * 1024]);
    let mut stack = Stack([std::mem::MaybeUninit::uninit(); 64 * 1024]);
    extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&ChildArgs` passed below; the parent is
        // suspended (CLONE_VFORK) and keeps it alive until we execve.
        let args = unsafe { &*(arg as *const crate::child::ChildArgs<'_>) };
        crate::child::run(args)
    }
    // SAFETY: `stack` is a live, 16-byte aligned buffer whose end is the
    // child's initial stack pointer, in a frame that outlives the child's
    // use of it (this thread is suspended until the child has called
    // execve or exited); the child only runs `child::run` (raw,
    // async-signal-safe syscalls on data we keep alive). The kernel writes
    // the pidfd into `pidfd` (the parent_tid argument).
    unsafe {
        let top = stack.0.as_mut_ptr().add(stack.0.len()) as *mut libc::c_void;
        libc::clone(
            entry,
            top,
            (libc::CLONE_VM | libc::CLONE_VFORK | CLONE_PIDFD as libc::c_int) | libc::SIGCHLD,
            args as *const crate::child::ChildArgs<'_> as *mut libc::c_void,
            pidfd as *mut libc::c_int,
        )
    }
}

/// The inode number of the PID namespace of the process `pidfd` refers to
/// (`PIDFD_GET_PID_NAMESPACE`, Linux 6.11): no `/proc` lookup, and no pid
/// that could have been reused. `Err` where the kernel lacks the request.
pub(crate) fn pidfd_pidns_inode(pidfd: &OwnedFd) -> Result<u64, Errno> {
    // _IO(PIDFS_IOCTL_MAGIC = 0xFF, 5)
    const PIDFD_GET_PID_NAMESPACE: libc::c_ulong = 0xFF05;
    // SAFETY: this request reads no argument; on success the kernel
    // returns a new descriptor, which nothing else owns.
    let ns = unsafe {
        let fd = libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_PID_NAMESPACE as _, 0);
        if fd < 0 {
            return Err(errno());
        }
        OwnedFd::from_raw_fd(fd)
    };
    rustix::fs::fstat(&ns).map(|st| st.st_ino)
}

/// Whether this process has any child or tracee at all, live or ended
/// and not yet reaped, in any of its threads (`waitid(P_ALL)` with
/// `__WALL`, `WNOHANG` and `WNOWAIT`: nothing is reaped). Only `ECHILD`
/// answers no; any other failure answers yes.
pub(crate) fn has_children() -> bool {
    // SAFETY: an all-zero siginfo is valid; the kernel fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    // SAFETY: `info` is a valid out-pointer; with WNOWAIT nothing is
    // reaped, so no child's status is taken from its waiter.
    let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    !(r < 0 && errno() == Errno::CHILD)
}

/// The stack of a PID namespace's init that runs in sandlock's memory
/// ([`spawn_child`]): a mapping with a guard page below it. Dropping it
/// kills the init if it still runs, waits for its death (without reaping
/// it: that stays the caller's) and only then unmaps the stack. Should the
/// wait fail, or the init's descriptor be missing, the mapping is left in
/// place rather than freed under a running task.
pub(crate) struct InitStack {
    base: *mut libc::c_void,
    len: usize,
    init: Init,
}

/// The init on an [`InitStack`].
enum Init {
    /// None was started on it.
    None,
    /// Started: its pidfd.
    Running(OwnedFd),
    /// Started, and no pidfd of it to wait with.
    Unknown,
}

impl std::fmt::Debug for InitStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitStack").field("len", &self.len).finish()
    }
}

// SAFETY: the mapping belongs to this value alone (and to the init, which
// `Drop` waits for); it is not tied to the thread that created it.
unsafe impl Send for InitStack {}

impl InitStack {
    /// Usable bytes: the init runs the confinement steps and its reaper
    /// loop, a few KiB; untouched pages cost nothing.
    const SIZE: usize = 256 * 1024;
    /// Below the init's stack, the command's (see [`command_top`](Self::command_top)).
    const COMMAND: usize = crate::spawn::COMMAND_STACK;
    /// The guard page below both.
    const GUARD: usize = 4096;

    /// Maps a fresh stack: from the top, the init's, then the command's,
    /// then a guard page.
    pub(crate) fn new() -> Result<InitStack, Errno> {
        let len = Self::SIZE + Self::COMMAND + Self::GUARD;
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(errno());
        }
        let stack = InitStack {
            base,
            len,
            init: Init::None,
        };
        // SAFETY: the lowest page of our own mapping.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } < 0 {
            return Err(errno());
        }
        Ok(stack)
    }

    /// The initial stack pointer (the end of the mapping, page-aligned).
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }

    /// The initial stack pointer of the command the init forks
    /// (`CLONE_VM | CLONE_VFORK`, in this same memory): just below the
    /// init's stack, page-aligned. The command runs on it only until its
    /// `execve`, while the init is suspended (`CLONE_VFORK`), so the two
    /// never run on the mapping at once; the command overflowing its
    /// share would hit the guard page.
    pub(crate) fn command_top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(Self::GUARD + Self::COMMAND)
    }
}

impl Drop for InitStack {
    fn drop(&mut self) {
        match &self.init {
            Init::None => {}
            Init::Running(init) => {
                let _ = rustix::process::pidfd_send_signal(init, rustix::process::Signal::KILL);
                let opts =
                    rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT;
                loop {
                    match rustix::process::waitid(
                        rustix::process::WaitId::PidFd(init.as_fd()),
                        opts,
                    ) {
                        // Exited (a zombie now, or reaped already): its
                        // memory use ended before it became either.
                        Ok(_) | Err(Errno::CHILD) => break,
                        Err(Errno::INTR) => continue,
                        Err(_) => return,
                    }
                }
            }
            // No way to know when it is gone: keep the mapping.
            Init::Unknown => return,
        }
        // SAFETY: our own mapping, which no task uses any more.
        unsafe { libc::munmap(self.base, self.len) };
    }
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

/// Whether `memfd_create` accepts `flags`: asked with a null name, which
/// fails with `EFAULT` only after the flags passed their check (`EINVAL`
/// for unknown ones). Creates nothing, unlike a probe that creates a memfd
/// and closes it.
pub(crate) fn memfd_flags_known(flags: u32) -> bool {
    // SAFETY: a null name pointer is rejected by the kernel (EFAULT)
    // before anything is created.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            std::ptr::null::<libc::c_char>(),
            flags as libc::c_uint,
        )
    };
    match check(ret) {
        Err(Errno::FAULT) => true,
        Ok(fd) => {
            // A kernel that took a null name: what it created is ours.
            // SAFETY: `fd` was just returned to us and is closed once.
            drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            true
        }
        Err(_) => false,
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

/// Whether this process can create the namespaces `flags` asks for
/// (`CLONE_NEW*`), with the id maps `maps` written by the child in a new
/// user namespace: a child is cloned into them, writes the maps and
/// exits. `Ok(false)` when the child could not write its maps.
pub(crate) fn probe_namespaces(flags: u64, maps: Option<(&[u8], &[u8])>) -> Result<bool, Errno> {
    let old = block_all_signals();
    // SAFETY: the child runs only raw, async-signal-safe system calls
    // (`sys::ns::write_file`, exit_group) on data prepared before the clone.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong | flags as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret == 0 {
        let mut code = 0;
        if let Some((uid, gid)) = maps {
            let ok = super::ns::write_file(c"/proc/self/setgroups", b"deny").is_ok()
                && super::ns::write_file(c"/proc/self/uid_map", uid).is_ok()
                && super::ns::write_file(c"/proc/self/gid_map", gid).is_ok();
            code = if ok { 0 } else { 1 };
        }
        super::child::exit(code);
    }
    restore_signals(&old);
    let pid = check(ret)? as i32;
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid int on our stack.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 && errno() == Errno::INTR {
            continue;
        }
        check(r as libc::c_long)?;
        break;
    }
    Ok(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The null-name probe answers as creating a memfd with the flags
    /// does: known flags yes, an unknown bit or a forbidden pair no.
    #[test]
    fn memfd_flags_probe_matches_a_real_memfd() {
        const CLOEXEC: u32 = 0x1;
        const NOEXEC_SEAL: u32 = 0x8;
        const EXEC: u32 = 0x10;
        const UNKNOWN: u32 = 0x100;
        for flags in [
            CLOEXEC,
            CLOEXEC | NOEXEC_SEAL,
            CLOEXEC | EXEC | NOEXEC_SEAL,
            UNKNOWN,
        ] {
            let real = rustix::fs::memfd_create(
                "sandlock-test",
                rustix::fs::MemfdFlags::from_bits_retain(flags),
            )
            .is_ok();
            assert_eq!(memfd_flags_known(flags), real, "flags {flags:#x}");
        }
        assert!(
            memfd_flags_known(CLOEXEC | NOEXEC_SEAL),
            "Linux 6.3 knows NOEXEC_SEAL"
        );
        assert!(!memfd_flags_known(UNKNOWN));
    }

    /// `has_children` in a forked copy of this process, which starts with
    /// no child (the test harness's other threads and their children stay
    /// behind): no; yes with a live child, and with its unreaped zombie;
    /// no once it is reaped. The child's answers come back in its exit code.
    #[test]
    fn has_children_sees_live_and_unreaped_children() {
        // SAFETY: the forked copy makes only async-signal-safe calls
        // (fork, waitid, kill, waitpid, pause, _exit) before it exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", errno());
        if pid == 0 {
            let mut wrong = 0;
            if has_children() {
                wrong |= 1;
            }
            // SAFETY: as above.
            let c = unsafe { libc::fork() };
            if c == 0 {
                // SAFETY: as above.
                unsafe {
                    libc::pause();
                    libc::_exit(0);
                }
            }
            if !has_children() {
                wrong |= 2;
            }
            // SAFETY: signalling and waiting for our own child; an
            // all-zero siginfo is valid.
            unsafe {
                libc::kill(c, libc::SIGKILL);
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(
                    libc::P_PID,
                    c as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                );
            }
            if !has_children() {
                wrong |= 4;
            }
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(c, std::ptr::null_mut(), 0) };
            if has_children() {
                wrong |= 8;
            }
            // SAFETY: ends the forked copy without running anything else.
            unsafe { libc::_exit(wrong) };
        }
        let mut status = 0;
        // SAFETY: reaping our own child into a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "{status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "wrong answers (bits)");
    }
}
