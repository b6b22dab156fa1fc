//! Messages copied out of a task for a send on its behalf: the
//! `struct msghdr` of `sendmsg` / `sendmmsg`, bounded, and its control
//! messages screened and rewritten for the supervisor's own descriptors.
//!
//! Layouts are the 64-bit ones (x86_64, aarch64): `msghdr` is name (8),
//! namelen (4 + 4 padding), iov (8), iovlen (8), control (8), controllen
//! (8), flags (4 + 4); `mmsghdr` is a `msghdr` and a `u32` length, 64
//! bytes; a `cmsghdr` is len (8), level (4), type (4), then data aligned to
//! 8 bytes.

use std::os::fd::{AsRawFd, OwnedFd};

use rustix::io::Errno;
use sandlock_notify::ChildMemory;
use sandlock_notify::onbehalf::ChildFds;
use sandlock_notify::sockaddr::SOCKADDR_MAX;

/// `UIO_MAXIOV`: the most iovecs (and `sendmmsg` entries) the kernel takes.
pub(crate) const IOV_MAX: u64 = 1024;
/// The most control bytes copied (the kernel's `optmem_max` is 128 KiB by
/// default; descriptors and options need a few dozen bytes).
pub(crate) const CONTROL_MAX: u64 = 64 * 1024;
/// The most payload bytes one send copies. A larger datagram is refused
/// (`EMSGSIZE`: UDP carries at most 64 KiB, a unix datagram no more than
/// the socket buffer, 208 KiB by default); on a stream socket the rest is
/// left for the task's next call (a short send, as the kernel may make).
pub(crate) const SEND_MAX: u64 = 4 * 1024 * 1024;
/// The most payload bytes one `sendmmsg` copies over all its entries;
/// later entries are left for the task's next call.
pub(crate) const MMSG_BYTES: u64 = 4 * 1024 * 1024;
/// `sizeof(struct mmsghdr)`.
pub(crate) const MMSGHDR_SIZE: u64 = 64;
/// Offset of `msg_len` in `struct mmsghdr`.
pub(crate) const MMSGHDR_LEN: u64 = 56;

const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SOL_IP: i32 = 0;
const IP_RETOPTS: i32 = 7;
const SOL_IPV6: i32 = 41;
const IPV6_2292RTHDR: i32 = 5;
const IPV6_NEXTHOP: i32 = 9;
const IPV6_RTHDR: i32 = 57;
const CMSG_HDR: usize = 16;

/// A `struct msghdr` as the task passed it (pointers into its memory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MsgHdr {
    /// The destination bytes (`msg_name`, at most `sockaddr_storage`), if
    /// the pointer was not NULL.
    pub(crate) name: Option<Vec<u8>>,
    /// `(base, len)` of each iovec.
    pub(crate) iov: Vec<(u64, u64)>,
    /// The control bytes.
    pub(crate) control: Vec<u8>,
}

impl MsgHdr {
    /// The payload length the task asked to send.
    pub(crate) fn len(&self) -> u64 {
        self.iov.iter().fold(0u64, |a, &(_, l)| a.saturating_add(l))
    }
}

/// Reads the `msghdr` at `addr`, as the kernel's `copy_msghdr_from_user`
/// does: a name longer than `sockaddr_storage` is cut to it, a NULL name
/// has none, more than [`IOV_MAX`] iovecs is `EMSGSIZE`.
pub(crate) fn read_msghdr(mem: &impl ChildMemory, addr: u64) -> Result<MsgHdr, Errno> {
    // One read for the header, one for the iovec array.
    let mut hdr = [0u8; 48];
    mem.read_exact(addr, &mut hdr).map_err(|_| Errno::FAULT)?;
    let field = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&hdr[8 * i..8 * i + 8]);
        u64::from_ne_bytes(w)
    };
    let (name_ptr, namelen) = (field(0), (field(1) & 0xffff_ffff) as u32);
    let (iov_ptr, iovlen) = (field(2), field(3));
    let (ctl_ptr, ctl_len) = (field(4), field(5));
    if (namelen as i32) < 0 {
        return Err(Errno::INVAL);
    }
    let name = if name_ptr == 0 {
        None
    } else {
        let len = (namelen as usize).min(SOCKADDR_MAX);
        let mut b = vec![0u8; len];
        mem.read_exact(name_ptr, &mut b).map_err(|_| Errno::FAULT)?;
        Some(b)
    };
    if iovlen > IOV_MAX {
        return Err(Errno::MSGSIZE);
    }
    let mut raw = vec![0u8; 16 * iovlen as usize];
    if iovlen > 0 {
        mem.read_exact(iov_ptr, &mut raw)
            .map_err(|_| Errno::FAULT)?;
    }
    let mut iov = Vec::with_capacity(iovlen as usize);
    for pair in raw.chunks_exact(16) {
        let mut w = [0u8; 8];
        w.copy_from_slice(&pair[..8]);
        let base = u64::from_ne_bytes(w);
        w.copy_from_slice(&pair[8..]);
        let len = u64::from_ne_bytes(w);
        if len > isize::MAX as u64 {
            return Err(Errno::INVAL);
        }
        iov.push((base, len));
    }
    if ctl_len > CONTROL_MAX {
        return Err(Errno::NOBUFS);
    }
    let mut control = vec![0u8; ctl_len as usize];
    if ctl_len > 0 {
        mem.read_exact(ctl_ptr, &mut control)
            .map_err(|_| Errno::FAULT)?;
    }
    Ok(MsgHdr { name, iov, control })
}

/// Reads up to `vlen` entries (at most [`IOV_MAX`]) of the `mmsghdr`
/// array at `addr`.
pub(crate) fn read_mmsghdr(
    mem: &impl ChildMemory,
    addr: u64,
    vlen: u64,
) -> Result<Vec<MsgHdr>, Errno> {
    let n = vlen.min(IOV_MAX);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = addr.checked_add(MMSGHDR_SIZE * i).ok_or(Errno::FAULT)?;
        match read_msghdr(mem, at) {
            Ok(m) => out.push(m),
            // Like the kernel: a bad later entry ends the batch before it.
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// A message copied out of the task, before anything is judged: every
/// read of a send happens before the one `NOTIF_ID_VALID` that releases
/// them (a payload read after it could come from another process that
/// took a dead task's pid).
#[derive(Debug)]
pub(crate) struct Copied {
    /// The destination bytes, if any.
    pub(crate) name: Option<Vec<u8>>,
    /// The payload length the task asked for.
    pub(crate) len: u64,
    /// The payload copied (at most the limit given to [`Copied::of`]).
    pub(crate) data: Vec<u8>,
    /// The control bytes, as the task wrote them.
    pub(crate) control: Vec<u8>,
}

impl Copied {
    /// Copies `m`'s payload, at most `max` bytes.
    pub(crate) fn of(mem: &impl ChildMemory, m: MsgHdr, max: u64) -> Result<Copied, Errno> {
        let len = m.len();
        let data = gather(mem, &m.iov, max)?;
        Ok(Copied {
            name: m.name,
            len,
            data,
            control: m.control,
        })
    }
}

/// Copies at most `max` bytes of the payload described by `iov`.
pub(crate) fn gather(
    mem: &impl ChildMemory,
    iov: &[(u64, u64)],
    max: u64,
) -> Result<Vec<u8>, Errno> {
    let total = iov
        .iter()
        .fold(0u64, |a, &(_, l)| a.saturating_add(l))
        .min(max);
    let mut data = vec![0u8; total as usize];
    let mut at = 0usize;
    for &(base, len) in iov {
        if at == data.len() {
            break;
        }
        let take = (len as usize).min(data.len() - at);
        if take > 0 {
            mem.read_exact(base, &mut data[at..at + take])
                .map_err(|_| Errno::FAULT)?;
        }
        at += take;
    }
    Ok(data)
}

/// Control messages rewritten for a send by the supervisor.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// The bytes to pass.
    pub(crate) bytes: Vec<u8>,
    /// Our copies of the descriptors passed with `SCM_RIGHTS` (kept open
    /// until the send is done).
    pub(crate) fds: Vec<OwnedFd>,
}

/// Screens and rewrites the task's control messages:
///
/// - `SCM_RIGHTS`: each descriptor number is the task's; it is replaced by
///   the number of the supervisor's copy of the same open file
///   (`pidfd_getfd`), so the receiver gets exactly what the task sent;
/// - options that route a datagram through another host first (IPv4
///   source routing in `IP_RETOPTS`, IPv6 routing headers, `IPV6_NEXTHOP`)
///   are refused with `EPERM`: the packet would go to a host that was not
///   judged;
/// - everything else (credentials, `IP_PKTINFO`, TOS, GSO...) is passed as
///   is; the kernel checks it against the supervisor, which has the task's
///   uid.
///
/// A malformed buffer is `EINVAL`, as the kernel answers.
pub(crate) fn rewrite_control(control: &[u8], child: &ChildFds) -> Result<Control, Errno> {
    let mut out = Control {
        bytes: control.to_vec(),
        fds: Vec::new(),
    };
    let mut off = 0usize;
    while off + CMSG_HDR <= control.len() {
        let word = |at: usize| -> [u8; 4] {
            [
                control[at],
                control[at + 1],
                control[at + 2],
                control[at + 3],
            ]
        };
        let mut len_b = [0u8; 8];
        len_b.copy_from_slice(&control[off..off + 8]);
        let len = u64::from_ne_bytes(len_b);
        let level = i32::from_ne_bytes(word(off + 8));
        let kind = i32::from_ne_bytes(word(off + 12));
        let len = usize::try_from(len).map_err(|_| Errno::INVAL)?;
        if len < CMSG_HDR || len > control.len() - off {
            return Err(Errno::INVAL);
        }
        match (level, kind) {
            (SOL_SOCKET, SCM_RIGHTS) => {
                let data = off + CMSG_HDR..off + len;
                for slot in data.step_by(4) {
                    if slot + 4 > off + len {
                        break;
                    }
                    let fd = i32::from_ne_bytes(word(slot));
                    let ours = child.get_fd(fd)?;
                    out.bytes[slot..slot + 4].copy_from_slice(&ours.as_raw_fd().to_ne_bytes());
                    out.fds.push(ours);
                }
            }
            (SOL_IP, IP_RETOPTS) | (SOL_IPV6, IPV6_RTHDR | IPV6_2292RTHDR | IPV6_NEXTHOP) => {
                return Err(Errno::PERM);
            }
            _ => {}
        }
        let Some(next) = off.checked_add((len + 7) & !7) else {
            return Err(Errno::INVAL);
        };
        off = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandlock_notify::FakeMemory;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut c = ((CMSG_HDR + data.len()) as u64).to_ne_bytes().to_vec();
        c.extend_from_slice(&level.to_ne_bytes());
        c.extend_from_slice(&kind.to_ne_bytes());
        c.extend_from_slice(data);
        while !c.len().is_multiple_of(8) {
            c.push(0);
        }
        c
    }

    #[test]
    fn msghdr_round_trip() {
        let name = [2u8, 0, 0, 53, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut mem = FakeMemory::new()
            .map(0x1000, name.to_vec())
            .map(0x2000, b"hello".to_vec())
            .map(0x2100, b" world".to_vec());
        let mut iov = Vec::new();
        for (b, l) in [(0x2000u64, 5u64), (0x2100, 6)] {
            iov.extend_from_slice(&b.to_ne_bytes());
            iov.extend_from_slice(&l.to_ne_bytes());
        }
        mem = mem.map(0x3000, iov);
        let mut hdr = Vec::new();
        for v in [0x1000u64, 16, 0x3000, 2, 0, 0, 0] {
            hdr.extend_from_slice(&v.to_ne_bytes());
        }
        mem = mem.map(0x4000, hdr);
        let m = read_msghdr(&mem, 0x4000).unwrap();
        assert_eq!(m.name.as_deref(), Some(&name[..]));
        assert_eq!(m.len(), 11);
        assert_eq!(gather(&mem, &m.iov, 100).unwrap(), b"hello world");
        assert_eq!(gather(&mem, &m.iov, 7).unwrap(), b"hello w");
        // Too many iovecs, an unreadable header.
        let mut big = Vec::new();
        for v in [0u64, 0, 0x3000, IOV_MAX + 1, 0, 0, 0] {
            big.extend_from_slice(&v.to_ne_bytes());
        }
        let mem = mem.map(0x5000, big);
        assert_eq!(read_msghdr(&mem, 0x5000), Err(Errno::MSGSIZE));
        assert_eq!(read_msghdr(&mem, 0x9000), Err(Errno::FAULT));
    }

    #[test]
    fn control_screening() {
        let me = ChildFds::open(std::process::id()).unwrap();
        // SOL_IP TOS passes untouched.
        let tos = cmsg(SOL_IP, 1, &[0x10, 0, 0, 0]);
        assert_eq!(rewrite_control(&tos, &me).unwrap().bytes, tos);
        // Source routing and IPv6 routing headers are refused.
        for (l, t) in [
            (SOL_IP, IP_RETOPTS),
            (SOL_IPV6, IPV6_RTHDR),
            (SOL_IPV6, IPV6_NEXTHOP),
        ] {
            let mut c = tos.clone();
            c.extend(cmsg(l, t, &[0; 8]));
            assert_eq!(rewrite_control(&c, &me).unwrap_err(), Errno::PERM);
        }
        // Malformed lengths.
        let mut bad = tos.clone();
        bad[..8].copy_from_slice(&4u64.to_ne_bytes());
        assert_eq!(rewrite_control(&bad, &me).unwrap_err(), Errno::INVAL);
        bad[..8].copy_from_slice(&4096u64.to_ne_bytes());
        assert_eq!(rewrite_control(&bad, &me).unwrap_err(), Errno::INVAL);
        // SCM_RIGHTS: our copy of the same file replaces the number.
        let rights = cmsg(SOL_SOCKET, SCM_RIGHTS, &0i32.to_ne_bytes());
        let out = rewrite_control(&rights, &me).unwrap();
        assert_eq!(out.fds.len(), 1);
        let ours = out.fds[0].as_raw_fd();
        assert_eq!(&out.bytes[16..20], &ours.to_ne_bytes());
        let bad_fd = cmsg(SOL_SOCKET, SCM_RIGHTS, &9999i32.to_ne_bytes());
        assert_eq!(rewrite_control(&bad_fd, &me).unwrap_err(), Errno::BADF);
    }
}
