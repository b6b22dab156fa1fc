//! Performing a syscall on the task's behalf, with the copy that was checked.
//!
//! A decision taken on the task's memory (a destination address, a path)
//! must not end in CONTINUE: the kernel would read that memory again, and a
//! sibling thread could have changed it in between. Instead the supervisor
//! takes a copy of the task's socket (`pidfd_getfd`) and performs
//! connect / sendto / sendmsg / bind itself with the bytes it checked, or
//! opens the file itself and injects the fd (`NOTIF_ADDFD`). The task's
//! syscall then returns the supervisor's result.
//!
//! These calls run with the **supervisor's** credentials and Landlock domain,
//! not the task's: the caller must apply the task's rules itself (ports,
//! paths) before calling them.
//!
//! A blocking socket stays blocking: the copy shares the task's open file
//! description, so `O_NONBLOCK` and socket options are the task's. A blocking
//! connect or send therefore blocks the calling supervisor thread for as long
//! as it would have blocked the task (bounded by the kernel's own timeouts:
//! SYN retries, `SO_SNDTIMEO`). Run them on the supervisor's worker thread
//! (a [`crate::Reply::Hold`] continuation), never on the receive loop, when
//! the socket may block.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags};

use crate::abi::SeccompNotif;
use crate::bounded::{PathBuf, read_path, read_sockaddr, read_u64};
use crate::decode::AT_FDCWD;
use crate::memory::{ChildMemory, MemError};
use crate::sockaddr::SockAddrBuf;
use crate::sys;
use crate::verified::{Unverified, Verified};

/// The most payload bytes a send on the task's behalf copies (a UDP datagram
/// is at most 65 507 bytes; a stream send may be short, as the kernel allows).
pub const SEND_MAX: usize = 64 * 1024;
/// The most iovec entries of a `sendmsg` on the task's behalf (`UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;
/// The most control bytes of a `sendmsg` on the task's behalf.
pub const CONTROL_MAX: usize = 4096;
/// The most payload bytes one `sendmmsg` on the task's behalf copies, over
/// all its messages (further messages are left unsent, which the kernel's
/// own `sendmmsg` may also do: the task sees a short count and goes on).
pub const SENDMMSG_MAX_BYTES: usize = 256 * 1024;
/// `sizeof(struct mmsghdr)` on 64-bit: a `msghdr` and a `u32` length, padded.
const MMSGHDR_SIZE: u64 = 64;
/// Offset of `msg_len` in `struct mmsghdr`.
const MMSGHDR_LEN_OFFSET: u64 = 56;

/// A pidfd on the task, to copy its descriptors.
#[derive(Debug)]
pub struct ChildFds {
    pid: u32,
    pidfd: OwnedFd,
}

impl ChildFds {
    /// A pidfd on task `pid` (a thread id, as notifications carry). Check
    /// `id_valid` afterwards to be sure the id was not reused before the
    /// pidfd pinned the task.
    ///
    /// A thread that is not its process's leader needs `PIDFD_THREAD`
    /// (Linux 6.9); before that, the process is found through the `Tgid:`
    /// line of `/proc/PID/status`.
    pub fn open(pid: u32) -> Result<ChildFds, Errno> {
        let p = Pid::from_raw(pid as i32).ok_or(Errno::SRCH)?;
        let pidfd = match rustix::process::pidfd_open(p, PIDFD_THREAD) {
            Err(Errno::INVAL) => {
                let tgid = tgid_of(pid).ok_or(Errno::SRCH)?;
                let t = Pid::from_raw(tgid as i32).ok_or(Errno::SRCH)?;
                rustix::process::pidfd_open(t, PidfdFlags::empty())?
            }
            other => other?,
        };
        Ok(ChildFds { pid, pidfd })
    }

    /// The task's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `pidfd_getfd`: our own copy of the task's fd `fd` (same open file
    /// description), with `O_CLOEXEC`.
    pub fn get_fd(&self, fd: i32) -> Result<OwnedFd, Errno> {
        if fd < 0 {
            return Err(Errno::BADF);
        }
        rustix::process::pidfd_getfd(&self.pidfd, fd, PidfdGetfdFlags::empty())
    }
}

/// `PIDFD_THREAD` (= `O_EXCL`): a pidfd on a thread, not only a leader.
const PIDFD_THREAD: PidfdFlags = PidfdFlags::from_bits_retain(0o200);

/// The thread-group id of task `tid`, from `/proc/TID/status`.
fn tgid_of(tid: u32) -> Option<u32> {
    let mut path = heapless::String::<32>::new();
    core::fmt::Write::write_fmt(&mut path, format_args!("/proc/{tid}/status")).ok()?;
    let status = std::fs::read_to_string(path.as_str()).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `connect(sockfd, addr)` on the task's behalf: the syscall's answer.
pub fn connect(child: &ChildFds, sockfd: i32, addr: &Verified<SockAddrBuf>) -> Result<i64, Errno> {
    let sock = child.get_fd(sockfd)?;
    sys::connect_raw(sock.as_fd(), addr.as_bytes()).map(|()| 0)
}

/// `bind(sockfd, addr)` on the task's behalf.
pub fn bind(child: &ChildFds, sockfd: i32, addr: &Verified<SockAddrBuf>) -> Result<i64, Errno> {
    let sock = child.get_fd(sockfd)?;
    sys::bind_raw(sock.as_fd(), addr.as_bytes()).map(|()| 0)
}

/// Copy `len` bytes (at most [`SEND_MAX`]) of payload from the task. The
/// payload is not checked, so it needs no `id_valid` of its own.
fn read_payload(mem: &impl ChildMemory, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(SEND_MAX);
    let mut data = vec![0u8; len];
    if len > 0 {
        mem.read_exact(addr, &mut data).map_err(|_| Errno::FAULT)?;
    }
    Ok(data)
}

/// `sendto(sockfd, buf, len, flags, addr)` on the task's behalf, with the
/// checked destination (`None`: the task passed no address).
pub fn sendto(
    child: &ChildFds,
    mem: &impl ChildMemory,
    notif: &SeccompNotif,
    addr: Option<&Verified<SockAddrBuf>>,
) -> Result<i64, Errno> {
    let a = &notif.data.args;
    let data = read_payload(mem, a[1], a[2])?;
    let sock = child.get_fd(a[0] as i32)?;
    let n = sys::sendmsg_raw(
        sock.as_fd(),
        &data,
        addr.map(|a| a.as_bytes()),
        &[],
        a[3] as i32,
    )?;
    Ok(n as i64)
}

/// The parts of a `struct msghdr` that a send on the task's behalf needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMsg {
    /// The destination (`msg_name`), if any.
    pub name: Option<SockAddrBuf>,
    /// The payload, gathered from the iovecs (at most [`SEND_MAX`] bytes).
    pub data: Vec<u8>,
    /// The control messages (at most [`CONTROL_MAX`] bytes).
    pub control: Vec<u8>,
}

/// Read the `struct msghdr` at `addr` (64-bit layout) from the task.
pub fn read_msghdr(
    mem: &impl ChildMemory,
    id: u64,
    addr: u64,
) -> Result<Unverified<SendMsg>, MemError> {
    let field = |off: u64| read_u64(mem, addr.checked_add(off).ok_or(MemError::Fault { addr })?);
    let (name_ptr, namelen) = (field(0)?, field(8)? & 0xffff_ffff);
    let (iov_ptr, iovlen) = (field(16)?, field(24)?);
    let (ctl_ptr, ctl_len) = (field(32)?, field(40)?);
    let name = if name_ptr != 0 && namelen != 0 {
        Some(read_sockaddr(mem, name_ptr, namelen)?)
    } else {
        None
    };
    if iovlen > IOV_MAX as u64 {
        return Err(MemError::TooLong {
            addr: iov_ptr,
            bound: IOV_MAX,
        });
    }
    let mut data = Vec::new();
    for i in 0..iovlen {
        let at = iov_ptr
            .checked_add(16 * i)
            .ok_or(MemError::Fault { addr: iov_ptr })?;
        let base = read_u64(mem, at)?;
        let len = read_u64(mem, at + 8)?;
        let take = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(SEND_MAX - data.len());
        let start = data.len();
        data.resize(start + take, 0);
        mem.read_exact(base, &mut data[start..])?;
        if data.len() == SEND_MAX {
            break;
        }
    }
    if ctl_len > CONTROL_MAX as u64 {
        return Err(MemError::TooLong {
            addr: ctl_ptr,
            bound: CONTROL_MAX,
        });
    }
    let mut control = vec![0u8; ctl_len as usize];
    if ctl_len > 0 {
        mem.read_exact(ctl_ptr, &mut control)?;
    }
    Ok(Unverified::new(
        id,
        SendMsg {
            name,
            data,
            control,
        },
    ))
}

/// Read up to `vlen` (at most [`IOV_MAX`], as the kernel caps it) entries of
/// the `struct mmsghdr` array at `addr`, stopping early once
/// [`SENDMMSG_MAX_BYTES`] of payload were read (at least one entry is read).
pub fn read_mmsghdr(
    mem: &impl ChildMemory,
    id: u64,
    addr: u64,
    vlen: u64,
) -> Result<Unverified<Vec<SendMsg>>, MemError> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for i in 0..vlen.min(IOV_MAX as u64) {
        let at = addr
            .checked_add(MMSGHDR_SIZE * i)
            .ok_or(MemError::Fault { addr })?;
        let msg = read_msghdr(mem, id, at)?.into_inner_unchecked();
        bytes += msg.data.len();
        if bytes > SENDMMSG_MAX_BYTES && !out.is_empty() {
            break;
        }
        out.push(msg);
    }
    Ok(Unverified::new(id, out))
}

/// `sendmmsg` on the task's behalf: send `msgs` in order with `sendmsg` on
/// a copy of the socket, writing each sent message's `msg_len` back into the
/// task's array at `addr`. Like the kernel: an error on the first message is
/// the answer; an error on a later one ends the call with the count so far.
pub fn sendmmsg(
    child: &ChildFds,
    sockfd: i32,
    addr: u64,
    msgs: &Verified<Vec<SendMsg>>,
    flags: i32,
) -> Result<i64, Errno> {
    let sock = child.get_fd(sockfd)?;
    let mut sent = 0u64;
    for msg in msgs.iter() {
        let r = if has_sol_socket_cmsg(&msg.control) {
            Err(Errno::OPNOTSUPP)
        } else {
            sys::sendmsg_raw(
                sock.as_fd(),
                &msg.data,
                msg.name.as_ref().map(|n| n.as_bytes()),
                &msg.control,
                flags,
            )
        };
        match r {
            Ok(n) => {
                let len_at = addr + MMSGHDR_SIZE * sent + MMSGHDR_LEN_OFFSET;
                // The message was sent: a failure to report its length
                // (the task unmapped its array) does not undo that.
                let _ = sys::process_vm_write(child.pid(), len_at, &(n as u32).to_ne_bytes());
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent as i64)
}

/// `SOL_SOCKET`: control messages at this level carry fds or credentials.
const SOL_SOCKET: i32 = 1;

/// `sendmsg(sockfd, msg, flags)` on the task's behalf with the checked copy.
///
/// Control messages at `SOL_SOCKET` level (`SCM_RIGHTS`, `SCM_CREDENTIALS`)
/// would name the task's fds or identity in the supervisor's context: they
/// are refused with `EOPNOTSUPP`.
pub fn sendmsg(
    child: &ChildFds,
    sockfd: i32,
    msg: &Verified<SendMsg>,
    flags: i32,
) -> Result<i64, Errno> {
    if has_sol_socket_cmsg(&msg.control) {
        return Err(Errno::OPNOTSUPP);
    }
    let sock = child.get_fd(sockfd)?;
    let n = sys::sendmsg_raw(
        sock.as_fd(),
        &msg.data,
        msg.name.as_ref().map(|n| n.as_bytes()),
        &msg.control,
        flags,
    )?;
    Ok(n as i64)
}

/// Whether a control buffer holds a `SOL_SOCKET` message (or is malformed).
fn has_sol_socket_cmsg(control: &[u8]) -> bool {
    let mut off = 0usize;
    while off + 16 <= control.len() {
        let len = u64::from_ne_bytes(control[off..off + 8].try_into().unwrap_or([0; 8]));
        let level = i32::from_ne_bytes(control[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        if level == SOL_SOCKET || len < 16 {
            return true;
        }
        let Some(next) = usize::try_from(len)
            .ok()
            .and_then(|l| off.checked_add((l + 7) & !7))
        else {
            return true;
        };
        off = next;
    }
    false
}

/// An open request, as the task made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The dirfd (`AT_FDCWD` for the cwd).
    pub dirfd: i32,
    /// The path, as passed.
    pub path: PathBuf,
    /// The open flags.
    pub flags: OFlags,
    /// The creation mode.
    pub mode: u32,
    /// `openat2`'s resolve flags (empty for the other calls).
    pub resolve: ResolveFlags,
}

/// Read the request of an `open`, `openat`, `openat2` or `creat` notification
/// whose syscall is `name`.
pub fn read_open_request(
    name: &str,
    notif: &SeccompNotif,
    mem: &impl ChildMemory,
) -> Result<Unverified<OpenRequest>, MemError> {
    let a = &notif.data.args;
    // The kernel reads dirfd, flags and mode as `int`s: truncation is intended.
    let (dirfd, path, flags, mode, resolve) = match name {
        "open" => (AT_FDCWD, a[0], a[1] as u32, a[2] as u32, 0),
        "creat" => (
            AT_FDCWD,
            a[0],
            (OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC).bits(),
            a[1] as u32,
            0,
        ),
        "openat2" => {
            let how = a[2];
            let field = |off: u64| {
                read_u64(
                    mem,
                    how.checked_add(off).ok_or(MemError::Fault { addr: how })?,
                )
            };
            (
                a[0] as i32,
                a[1],
                field(0)? as u32,
                field(8)? as u32,
                field(16)?,
            )
        }
        _ => (a[0] as i32, a[1], a[2] as u32, a[3] as u32, 0),
    };
    let path = read_path(mem, path)?;
    Ok(Unverified::new(
        notif.id,
        OpenRequest {
            dirfd,
            path,
            flags: OFlags::from_bits_retain(flags),
            mode,
            resolve: ResolveFlags::from_bits_retain(resolve),
        },
    ))
}

/// How many times [`open`] makes a lookup whose scope it added again
/// after the kernel's `EAGAIN` (openat2(2): a rename or mount anywhere on
/// the machine during a scoped walk through `..`).
const SCOPED_TRIES: u32 = 16;

/// Open the checked request on the task's behalf, relative to its cwd (or
/// the dirfd it passed), with `resolve` added to its own resolve flags.
/// Returns our fd (with `O_CLOEXEC`) and whether the task asked for
/// `O_CLOEXEC` (pass it on to [`crate::Listener::add_fd`]).
///
/// Absolute paths and `..` resolve against the supervisor's root, which is
/// the task's root unless the task was chrooted: for a chrooted task,
/// resolve from its root (`/proc/TID/root`) with `RESOLVE_IN_ROOT` instead.
pub fn open(
    child: &ChildFds,
    req: &Verified<OpenRequest>,
    resolve: ResolveFlags,
) -> Result<(OwnedFd, bool), Errno> {
    let path = core::str::from_utf8(&req.path).map_err(|_| Errno::INVAL)?;
    if path.is_empty() {
        return Err(Errno::NOENT);
    }
    let cloexec = req.flags.contains(OFlags::CLOEXEC);
    let flags = req.flags | OFlags::CLOEXEC;
    let mode = Mode::from_bits_truncate(req.mode);
    // A scope added here (not the task's own) must not turn a lookup
    // through `..` that met a rename elsewhere on the machine into an
    // `EAGAIN` the task never asked for: such lookups are made again.
    let scope = ResolveFlags::IN_ROOT | ResolveFlags::BENEATH;
    let again = resolve.intersects(scope) && !req.resolve.intersects(scope);
    let resolve = req.resolve | resolve;
    let openat2 = |dir: BorrowedFd<'_>| {
        let mut tries = 1;
        loop {
            match rustix::fs::openat2(dir, path, flags, mode, resolve) {
                Err(Errno::AGAIN) if again && tries < SCOPED_TRIES => tries += 1,
                result => return result,
            }
        }
    };
    let fd = if path.starts_with('/') {
        openat2(CWD)?
    } else if req.dirfd == AT_FDCWD {
        let mut cwd = heapless::String::<32>::new();
        core::fmt::Write::write_fmt(&mut cwd, format_args!("/proc/{}/cwd", child.pid()))
            .map_err(|_| Errno::NAMETOOLONG)?;
        let base = rustix::fs::open(
            cwd.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        openat2(base.as_fd())?
    } else {
        let base = child.get_fd(req.dirfd)?;
        openat2(base.as_fd())?
    };
    Ok((fd, cloexec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmsg_scan() {
        let mut c = Vec::new();
        c.extend_from_slice(&20u64.to_ne_bytes());
        c.extend_from_slice(&0i32.to_ne_bytes()); // SOL_IP
        c.extend_from_slice(&8i32.to_ne_bytes());
        c.extend_from_slice(&[0; 8]);
        assert!(!has_sol_socket_cmsg(&c));
        c[8..12].copy_from_slice(&1i32.to_ne_bytes());
        assert!(has_sol_socket_cmsg(&c));
        assert!(has_sol_socket_cmsg(&[0u8; 16]));
        assert!(!has_sol_socket_cmsg(&[]));
    }
}
