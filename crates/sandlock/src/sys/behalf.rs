//! Raw calls the supervisor makes on the sandbox's behalf: confining one
//! of its own threads, tracing a task across `execve`, writing a task's
//! memory, and path-based calls rustix does not offer.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use super::{check, nr};

/// For the **calling thread only**: its own filesystem context
/// (`unshare(CLONE_FS)`) with umask 0, so that modes of files it creates
/// are exactly those its caller computed; `PR_SET_NO_NEW_PRIVS`; and
/// `landlock_restrict_self(ruleset, 0)`. All are per-thread attributes:
/// the other threads of the process stay as they are.
pub(crate) fn restrict_thread(ruleset: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
    // SAFETY: unshare(CLONE_FS) gives this thread a copy of the process's
    // cwd, root and umask; nothing in this process caches them.
    check(unsafe { libc::unshare(libc::CLONE_FS) } as _)?;
    // SAFETY: umask only changes this thread's (now private) file mask.
    unsafe { libc::umask(0) };
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1u64, 0u64, 0u64, 0u64) } as _)?;
    if let Some(fd) = ruleset {
        // SAFETY: plain syscall with integer arguments.
        check(unsafe { libc::syscall(nr::LANDLOCK_RESTRICT_SELF, fd.as_raw_fd(), 0u32) })?;
    }
    Ok(())
}

/// `PTRACE_EVENT_EXEC`, in bits 16.. of a wait status.
pub(crate) const PTRACE_EVENT_EXEC: i32 = 4;

/// What [`wait_tracee`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TraceStop {
    /// A ptrace stop: the pid it was reported for and the raw status.
    Stopped { pid: i32, status: i32 },
    /// The tracee is gone (exited or killed).
    Gone { pid: i32 },
}

/// Waits for the next event of one of **this thread's** tracees
/// (`__WALL | __WNOTHREAD`: children and tracees of other threads are left
/// alone). A tracee whose thread id changed (a non-leader thread that
/// called `execve` takes its leader's id) is still reported.
///
/// The exit of `own_child` (a child of this process) is only looked at,
/// never reaped: its parent's own `waitid` must still find it. Any other
/// tracee's exit is collected, which hands it back to its real parent.
pub(crate) fn wait_tracee(own_child: i32) -> Result<TraceStop, Errno> {
    loop {
        // SAFETY: an all-zero siginfo is valid; the kernel fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags =
            libc::WEXITED | libc::WSTOPPED | libc::__WALL | libc::__WNOTHREAD | libc::WNOWAIT;
        // SAFETY: `info` is a valid out-pointer.
        match check(unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) } as _) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // SAFETY: waitid filled a SIGCHLD siginfo, whose si_pid is valid.
        let pid = unsafe { info.si_pid() };
        let exited = matches!(
            info.si_code,
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
        );
        if exited && pid == own_child {
            return Ok(TraceStop::Gone { pid });
        }
        let mut status: libc::c_int = 0;
        let flags = libc::__WALL | libc::__WNOTHREAD;
        // SAFETY: `status` is a valid int on our stack.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        match check(ret as _) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        return Ok(if libc::WIFSTOPPED(status) {
            TraceStop::Stopped { pid, status }
        } else {
            TraceStop::Gone { pid }
        });
    }
}

/// Writes `buf` at `addr` in task `pid`'s memory (`process_vm_writev`).
/// A short write is an error (`EFAULT`).
pub(crate) fn write_memory(pid: u32, addr: u64, buf: &[u8]) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast::<libc::c_void>(),
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which the kernel only reads.
    unsafe { vm_transfer(pid, local, addr, libc::process_vm_writev) }
}

/// Reads `buf.len()` bytes at `addr` in task `pid`'s memory
/// (`process_vm_readv`). A short read is an error (`EFAULT`).
pub(crate) fn read_memory(pid: u32, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast::<libc::c_void>(),
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which the kernel writes within its
    // length and which nothing else uses during the call.
    unsafe { vm_transfer(pid, local, addr, libc::process_vm_readv) }
}

/// The signature of `process_vm_readv` and `process_vm_writev`.
type VmCall = unsafe extern "C" fn(
    libc::pid_t,
    *const libc::iovec,
    libc::c_ulong,
    *const libc::iovec,
    libc::c_ulong,
    libc::c_ulong,
) -> libc::ssize_t;

/// One `process_vm_*` call between `local` and `local.iov_len` bytes at
/// `addr` in task `pid`; short is `EFAULT`.
///
/// # Safety
///
/// `local` must describe a live buffer of ours that `call` may read (a
/// write) or write (a read) for the duration of the call.
unsafe fn vm_transfer(pid: u32, local: libc::iovec, addr: u64, call: VmCall) -> Result<(), Errno> {
    let len = local.iov_len;
    if len == 0 {
        return Ok(());
    }
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: the caller vouches for `local`; the remote range is in the
    // other process and checked by the kernel.
    let n = check(unsafe { call(pid as libc::pid_t, &local, 1, &remote, 1, 0) } as _)?;
    if n as usize == len {
        Ok(())
    } else {
        Err(Errno::FAULT)
    }
}

/// `truncate(path, len)`.
pub(crate) fn truncate(path: &CStr, len: i64) -> Result<(), Errno> {
    // SAFETY: `path` is a valid C string.
    check(unsafe { libc::truncate(path.as_ptr(), len) } as _).map(drop)
}

/// The bytes of `T` (a plain `repr(C)` kernel structure).
fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: `T` is a plain-old-data kernel structure (`stat`, `statx`,
    // `statfs`) fully written by the kernel; reading its bytes is sound.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
        .to_vec()
}

/// `struct stat` of the file pinned by `fd` (`fstatat(fd, "", AT_EMPTY_PATH)`),
/// as the kernel lays it out for the task.
pub(crate) fn stat_bytes(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    // SAFETY: an all-zero `stat` is valid; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let (raw, empty) = (fd.as_raw_fd(), c"".as_ptr());
    // SAFETY: `st` is a valid out-pointer; the path is a static C string.
    let ret = unsafe { libc::fstatat(raw, empty, &mut st, libc::AT_EMPTY_PATH) };
    check(ret as _)?;
    Ok(bytes_of(&st))
}

/// `struct statx` of the file pinned by `fd`, with the task's `mask` and
/// sync flags.
pub(crate) fn statx_bytes(fd: BorrowedFd<'_>, flags: i32, mask: u32) -> Result<Vec<u8>, Errno> {
    // SAFETY: an all-zero `statx` is valid; the kernel fills it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let flags = (flags & libc::AT_STATX_SYNC_TYPE) | libc::AT_EMPTY_PATH;
    // SAFETY: `st` is a valid out-pointer; the path is a static C string.
    check(unsafe { libc::statx(fd.as_raw_fd(), c"".as_ptr(), flags, mask, &mut st) } as _)?;
    Ok(bytes_of(&st))
}

/// `struct statfs` of the filesystem holding the file pinned by `fd`.
pub(crate) fn statfs_bytes(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    // SAFETY: an all-zero `statfs` is valid; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } as _)?;
    Ok(bytes_of(&st))
}
