//! Every `unsafe` block of the crate: raw system calls that neither the
//! standard library nor rustix wraps.
//!
//! Each function here is a thin, safe wrapper that checks what Rust's type
//! system cannot (lengths, layouts) and documents why the call is sound. The
//! rest of the crate is `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::ioctl::{self, Ioctl, IoctlOutput, Opcode};
use sandlock_bpf::Insn;

use crate::abi::{self, SeccompNotif, SeccompNotifAddfd, SeccompNotifResp, SeccompNotifSizes};

/// `struct sock_fprog`: a program length and a pointer to its instructions.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const Insn,
}

/// The errno of the last failed libc call, without allocating.
fn last_errno() -> Errno {
    Errno::from_raw_os_error(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`.
///
/// Returns the syscall's non-negative result (the listener fd with
/// `NEW_LISTENER`, else 0). Async-signal-safe: no allocation, no lock, one
/// system call; `errno` is thread-local.
pub(crate) fn seccomp_set_filter(flags: u32, prog: &[Insn]) -> Result<i32, Errno> {
    if prog.is_empty() || prog.len() > abi::BPF_MAXINSNS {
        return Err(Errno::INVAL);
    }
    let fprog = SockFprog {
        // The length was checked against BPF_MAXINSNS (4096) above.
        len: prog.len() as u16,
        filter: prog.as_ptr(),
    };
    // SAFETY: `fprog` points at `prog.len()` valid `Insn`s, laid out as the
    // kernel's `struct sock_filter` (repr(C), checked in sandlock-bpf), and
    // outlives the call; the kernel copies the program before returning.
    // Without `errno` (`crate::raw`): this runs in children that share
    // their parent's memory.
    let ret = unsafe {
        crate::raw::syscall(
            libc::SYS_seccomp,
            &[
                abi::SET_MODE_FILTER as usize,
                flags as usize,
                &fprog as *const SockFprog as usize,
            ],
        )
    };
    crate::raw::result(ret).map(|fd| fd as i32)
}

/// [`seccomp_set_filter`] with `flags` holding `NEW_LISTENER`: the listener.
///
/// Async-signal-safe, like [`seccomp_set_filter`].
pub(crate) fn seccomp_set_filter_listener(flags: u32, prog: &[Insn]) -> Result<OwnedFd, Errno> {
    let fd = seccomp_set_filter(flags | abi::FILTER_FLAG_NEW_LISTENER, prog)?;
    if fd < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: with NEW_LISTENER a successful seccomp() returns a new file
    // descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes)`.
pub(crate) fn seccomp_get_notif_sizes() -> Result<SeccompNotifSizes, Errno> {
    let mut sizes = SeccompNotifSizes::default();
    // SAFETY: the kernel writes exactly `sizeof(struct seccomp_notif_sizes)`
    // (6 bytes, asserted in `abi`) into `sizes`, which is valid and writable.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            abi::GET_NOTIF_SIZES as libc::c_ulong,
            0 as libc::c_ulong,
            &mut sizes as *mut SeccompNotifSizes,
        )
    };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(sizes)
    }
}

/// `SECCOMP_IOCTL_NOTIF_ADDFD`, whose result is the new fd number.
struct AddFd<'a>(&'a mut SeccompNotifAddfd);

// SAFETY: the opcode is `SECCOMP_IOCTL_NOTIF_ADDFD`, whose argument is a
// pointer to a `struct seccomp_notif_addfd` (layout asserted in `abi`), which
// the kernel only reads; its return value is the new descriptor's number.
unsafe impl Ioctl for AddFd<'_> {
    type Output = i32;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> Opcode {
        abi::IOCTL_NOTIF_ADDFD
    }
    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        (self.0 as *mut SeccompNotifAddfd).cast()
    }
    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<i32> {
        Ok(out)
    }
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: block until a notification arrives.
///
/// `notif` is zeroed first: the kernel refuses a non-zero buffer.
pub(crate) fn notif_recv(fd: BorrowedFd<'_>, notif: &mut SeccompNotif) -> Result<(), Errno> {
    *notif = SeccompNotif::default();
    // SAFETY: the opcode's argument is a `struct seccomp_notif` (80 bytes,
    // asserted in `abi`), which the kernel fills; `notif` is valid and
    // exclusively borrowed for the call.
    unsafe {
        let op = ioctl::Updater::<{ abi::IOCTL_NOTIF_RECV }, SeccompNotif>::new(notif);
        ioctl::ioctl(fd, op)
    }
}

/// `SECCOMP_IOCTL_NOTIF_SEND`.
pub(crate) fn notif_send(fd: BorrowedFd<'_>, resp: &SeccompNotifResp) -> Result<(), Errno> {
    let mut resp = *resp;
    // SAFETY: the opcode's argument is a `struct seccomp_notif_resp` (24
    // bytes, asserted in `abi`); `resp` is a local copy valid for the call.
    unsafe {
        let op = ioctl::Updater::<{ abi::IOCTL_NOTIF_SEND }, SeccompNotifResp>::new(&mut resp);
        ioctl::ioctl(fd, op)
    }
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: `Ok` while the notification is pending.
pub(crate) fn notif_id_valid(fd: BorrowedFd<'_>, id: u64) -> Result<(), Errno> {
    // SAFETY: the opcode's argument is a pointer to a `u64` that the kernel
    // reads; `Setter` passes a pointer to its own copy of `id`.
    unsafe {
        let op = ioctl::Setter::<{ abi::IOCTL_NOTIF_ID_VALID }, u64>::new(id);
        ioctl::ioctl(fd, op)
    }
}

/// `SECCOMP_IOCTL_NOTIF_ADDFD`: returns the fd number in the target.
pub(crate) fn notif_addfd(fd: BorrowedFd<'_>, addfd: &SeccompNotifAddfd) -> Result<i32, Errno> {
    let mut addfd = *addfd;
    // SAFETY: see the `Ioctl` impl of `AddFd`; `addfd` is a local copy.
    unsafe { ioctl::ioctl(fd, AddFd(&mut addfd)) }
}

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS`.
pub(crate) fn notif_set_flags(fd: BorrowedFd<'_>, flags: u64) -> Result<(), Errno> {
    // SAFETY: this opcode takes its flags as the integer argument itself, not
    // a pointer; the kernel rejects unknown bits with EINVAL.
    unsafe {
        let op = ioctl::IntegerSetter::<{ abi::IOCTL_NOTIF_SET_FLAGS }>::new_usize(flags as usize);
        ioctl::ioctl(fd, op)
    }
}

/// `process_vm_readv(pid, [buf], [addr..addr+len])`: bytes copied.
pub(crate) fn process_vm_read(pid: u32, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec covers exactly `buf`, valid and writable; the
    // remote iovec is an address in *another* process, which the kernel
    // checks (EFAULT) and never dereferences in ours.
    let ret = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret as usize)
    }
}

/// `process_vm_writev(pid, [buf], [addr..addr+len])`: bytes copied.
pub(crate) fn process_vm_write(pid: u32, addr: u64, buf: &[u8]) -> Result<usize, Errno> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec covers exactly `buf`, which the kernel only
    // reads; the remote iovec is an address in another process, checked by
    // the kernel (EFAULT) and never dereferenced in ours.
    let ret = unsafe { libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret as usize)
    }
}

/// `connect(fd, addr, len)` with a raw `sockaddr` copy.
pub(crate) fn connect_raw(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: `addr` is a valid buffer of `addr.len()` bytes that the kernel
    // only reads (and copies) during the call; it validates the contents.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len() as libc::socklen_t,
        )
    };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `bind(fd, addr, len)` with a raw `sockaddr` copy.
pub(crate) fn bind_raw(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: as for `connect_raw`.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len() as libc::socklen_t,
        )
    };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `sendmsg(fd, {name, [data], control}, flags)`: bytes sent.
pub(crate) fn sendmsg_raw(
    fd: BorrowedFd<'_>,
    data: &[u8],
    name: Option<&[u8]>,
    control: &[u8],
    flags: i32,
) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(name) = name {
        msg.msg_name = name.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = name.len() as libc::socklen_t;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_ptr() as *mut libc::c_void;
        msg.msg_controllen = control.len() as _;
    }
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated
    // length (`data`, `name`, `control`, `iov`) that the kernel only reads
    // during the call.
    let ret = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret as usize)
    }
}

/// A signal handler that does nothing: its only job is to make a blocking
/// system call in the supervisor thread return `EINTR`.
extern "C" fn wake_handler(_: libc::c_int) {}

/// Install [`wake_handler`] for `signal`, without `SA_RESTART`, once.
pub(crate) fn install_wake_handler(signal: i32) -> Result<(), Errno> {
    // SAFETY: an all-zero sigaction is valid; the handler is an
    // async-signal-safe `extern "C"` function that touches nothing; the empty
    // mask and flags are set through libc's own helpers.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = wake_handler as *const () as usize;
        libc::sigemptyset(&mut act.sa_mask);
        act.sa_flags = 0;
        if libc::sigaction(signal, &act, std::ptr::null_mut()) < 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Unblock `signal` in the calling thread (a new thread inherits the mask
/// of the thread that spawned it, which may block the wake signal).
pub(crate) fn unblock_signal(signal: i32) -> Result<(), Errno> {
    // SAFETY: an empty sigset filled through libc's helpers; the old mask is
    // not asked for (null).
    let ret = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut())
    };
    if ret != 0 {
        Err(Errno::from_raw_os_error(ret))
    } else {
        Ok(())
    }
}

/// Send `signal` to one thread of this process.
pub(crate) fn signal_thread(
    thread: std::os::unix::thread::RawPthread,
    signal: i32,
) -> Result<(), Errno> {
    // SAFETY: `thread` is the id of a thread we spawned and have not joined
    // yet (the caller holds its `JoinHandle`), so the id is still valid.
    // `RawPthread` is std's spelling of the C library's `pthread_t` (an
    // integer on glibc, a pointer on musl).
    let ret = unsafe { libc::pthread_kill(thread as libc::pthread_t, signal) };
    if ret != 0 {
        Err(Errno::from_raw_os_error(ret))
    } else {
        Ok(())
    }
}

/// The number of the first real-time signal free for applications.
pub(crate) fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}
