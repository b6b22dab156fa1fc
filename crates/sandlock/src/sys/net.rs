//! Socket calls made on a sandboxed task's behalf with address bytes the
//! supervisor copied and checked (any family, any length up to
//! `sockaddr_storage`), which rustix's typed addresses cannot carry as is.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use super::check;

/// `connect(fd, addr, addr.len())`.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: `addr` is a live buffer of exactly the length passed; the
    // kernel only reads it during the call.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            addr.as_ptr().cast::<libc::sockaddr>(),
            addr.len() as libc::socklen_t,
        )
    };
    check(libc::c_long::from(ret)).map(|_| ())
}

/// `bind(fd, addr, addr.len())`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: as in `connect`.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            addr.as_ptr().cast::<libc::sockaddr>(),
            addr.len() as libc::socklen_t,
        )
    };
    check(libc::c_long::from(ret)).map(|_| ())
}

/// `sendmsg(fd, {name, [data], control}, flags)`; returns the bytes sent.
pub(crate) fn sendmsg(
    fd: BorrowedFd<'_>,
    name: Option<&[u8]>,
    data: &[u8],
    control: &[u8],
    flags: i32,
) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast::<libc::c_void>(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid, empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(name) = name {
        msg.msg_name = name.as_ptr().cast_mut().cast::<libc::c_void>();
        msg.msg_namelen = name.len() as libc::socklen_t;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_ptr().cast_mut().cast::<libc::c_void>();
        msg.msg_controllen = control.len() as _;
    }
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated
    // length (`name`, `data` through `iov`, `control`) that the kernel only
    // reads during the call.
    let ret = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
    check(ret as libc::c_long).map(|n| n as usize)
}
