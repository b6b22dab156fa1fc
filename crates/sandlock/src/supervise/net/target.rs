//! What a socket call aims at, judged the way the kernel will use it.
//!
//! The decision is taken on the supervisor's own copy of the socket (the
//! file description `pidfd_getfd` returned, whose family, type and protocol
//! no sibling thread can change) and its own copy of the address bytes, and
//! the call is then made with exactly those two. The kernel reads an address
//! by the rules of the *socket's* protocol, not only by its `sa_family`:
//!
//! - `connect` with `AF_UNSPEC` dissolves an association (TCP, UDP, ping,
//!   unix datagram): it reaches nobody;
//! - a send on an IPv4 UDP or raw socket takes an `AF_UNSPEC` address as an
//!   IPv4 one, and an IPv6 raw socket as an IPv6 one: such an address is
//!   judged as the socket's own family;
//! - an IPv6 UDP socket sends to an `AF_INET` address over IPv4: judged as
//!   the IPv4 address it is;
//! - TCP ignores a send's address unless `MSG_FASTOPEN` is set (then it
//!   connects there); unix stream and seqpacket sockets never use it;
//! - an IPv4-mapped IPv6 address is the IPv4 host (the live policy judges
//!   it so, and `0.0.0.0` / `::` as loopback).
//!
//! Anything the kernel would refuse anyway is refused here, with the errno
//! the kernel gives, so that no bytes we did not judge reach a socket call.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustix::io::Errno;

pub(crate) const AF_UNSPEC: u16 = 0;
pub(crate) const AF_UNIX: u16 = 1;
pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;

const IPPROTO_ICMP: i32 = 1;
const IPPROTO_ICMPV6: i32 = 58;

/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH: usize = 2;
/// `sizeof(struct sockaddr_in)`.
const SIN_LEN: usize = 16;
/// `SIN6_LEN_RFC2133`: the shortest IPv6 address the kernel accepts.
const SIN6_LEN: usize = 24;

/// A socket's type (`SO_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_DGRAM`.
    Dgram,
    /// `SOCK_SEQPACKET`.
    SeqPacket,
    /// `SOCK_RAW` (and any other type).
    Raw,
}

/// What the supervisor learnt about its copy of the task's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SockInfo {
    /// `SO_DOMAIN`.
    pub(crate) domain: u16,
    /// `SO_TYPE`.
    pub(crate) kind: Kind,
    /// `SO_PROTOCOL`.
    pub(crate) protocol: i32,
}

/// The call the address was given to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// `connect`.
    Connect,
    /// `sendto` / `sendmsg` / `sendmmsg`, with or without `MSG_FASTOPEN`.
    Send {
        /// `MSG_FASTOPEN` was set.
        fastopen: bool,
    },
}

/// Which rules an IP destination must pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpRule {
    /// Host and port rules (TCP, UDP).
    HostAndPort,
    /// Host rules only (ICMP ping sockets and raw sockets: no ports).
    HostOnly,
}

/// What a call aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// Nobody new: the connected peer (judged when it was connected), an
    /// address the protocol ignores, or a disconnect.
    Peer,
    /// An IP host.
    Ip {
        /// The address, as the kernel will send to it.
        ip: IpAddr,
        /// The port (the ICMP identifier for ping sockets).
        port: u16,
        /// The rules it must pass.
        rule: IpRule,
    },
    /// A named unix socket: the path bytes, up to the first NUL.
    UnixPath(&'a [u8]),
    /// An abstract unix socket: its name (after the leading NUL).
    UnixAbstract(&'a [u8]),
    /// A family sandlock does not judge (netlink, packet): performed as asked.
    Unjudged,
    /// The kernel would refuse this address with this errno.
    Refuse(Errno),
}

fn family(addr: &[u8]) -> Option<u16> {
    addr.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]))
}

fn port(addr: &[u8]) -> u16 {
    u16::from_be_bytes([addr[2], addr[3]])
}

/// The IPv4 destination of `addr` (any family field), or EINVAL when short.
fn as_v4(addr: &[u8]) -> Result<(IpAddr, u16), Errno> {
    if addr.len() < SIN_LEN {
        return Err(Errno::INVAL);
    }
    let ip = Ipv4Addr::new(addr[4], addr[5], addr[6], addr[7]);
    Ok((IpAddr::V4(ip), port(addr)))
}

/// The IPv6 destination of `addr` (any family field), or EINVAL when short.
fn as_v6(addr: &[u8]) -> Result<(IpAddr, u16), Errno> {
    if addr.len() < SIN6_LEN {
        return Err(Errno::INVAL);
    }
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&addr[8..24]);
    Ok((IpAddr::V6(Ipv6Addr::from(octets)), port(addr)))
}

/// What `call` on `sock` with address `addr` (`None`: no address) aims at.
pub(crate) fn classify<'a>(sock: &SockInfo, call: Call, addr: Option<&'a [u8]>) -> Target<'a> {
    let Some(addr) = addr else {
        return Target::Peer;
    };
    match sock.domain {
        AF_INET | AF_INET6 => classify_ip(sock, call, addr),
        AF_UNIX => classify_unix(sock, call, addr),
        _ => Target::Unjudged,
    }
}

fn classify_ip<'a>(sock: &SockInfo, call: Call, addr: &[u8]) -> Target<'a> {
    if let Call::Send { fastopen } = call {
        // TCP (and any stream protocol) uses a send's address only to
        // connect with MSG_FASTOPEN.
        if sock.kind == Kind::Stream && !fastopen {
            return Target::Peer;
        }
        // A zero-length address: the protocols then refuse or use the peer.
        if addr.is_empty() {
            return Target::Peer;
        }
    }
    let Some(fam) = family(addr) else {
        return Target::Refuse(Errno::INVAL);
    };
    let dest = match (fam, call) {
        (AF_UNSPEC, Call::Connect) => return Target::Peer,
        (AF_UNSPEC, Call::Send { .. }) if sock.domain == AF_INET => as_v4(addr),
        (AF_UNSPEC, Call::Send { .. }) => as_v6(addr),
        (AF_INET, _) => as_v4(addr),
        (AF_INET6, _) => as_v6(addr),
        _ => return Target::Refuse(Errno::AFNOSUPPORT),
    };
    let rule = match (sock.kind, sock.protocol) {
        (Kind::Dgram, IPPROTO_ICMP | IPPROTO_ICMPV6) | (Kind::Raw, _) => IpRule::HostOnly,
        _ => IpRule::HostAndPort,
    };
    match dest {
        Ok((ip, port)) => Target::Ip { ip, port, rule },
        Err(e) => Target::Refuse(e),
    }
}

fn classify_unix<'a>(sock: &SockInfo, call: Call, addr: &'a [u8]) -> Target<'a> {
    if let Call::Send { .. } = call
        && sock.kind != Kind::Dgram
    {
        // Stream sockets refuse a send's address, seqpacket ones ignore it.
        return Target::Peer;
    }
    match family(addr) {
        Some(AF_UNSPEC) if call == Call::Connect && sock.kind == Kind::Dgram => Target::Peer,
        Some(AF_UNIX) if addr.len() > SUN_PATH => {
            let path = &addr[SUN_PATH..];
            if path[0] == 0 {
                Target::UnixAbstract(&path[1..])
            } else {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Target::UnixPath(&path[..end])
            }
        }
        _ => Target::Refuse(Errno::INVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP4: SockInfo = SockInfo {
        domain: AF_INET,
        kind: Kind::Stream,
        protocol: 6,
    };
    const UDP4: SockInfo = SockInfo {
        domain: AF_INET,
        kind: Kind::Dgram,
        protocol: 17,
    };
    const UDP6: SockInfo = SockInfo {
        domain: AF_INET6,
        kind: Kind::Dgram,
        protocol: 17,
    };
    const PING4: SockInfo = SockInfo {
        domain: AF_INET,
        kind: Kind::Dgram,
        protocol: IPPROTO_ICMP,
    };
    const USTREAM: SockInfo = SockInfo {
        domain: AF_UNIX,
        kind: Kind::Stream,
        protocol: 0,
    };
    const UDGRAM: SockInfo = SockInfo {
        domain: AF_UNIX,
        kind: Kind::Dgram,
        protocol: 0,
    };
    const SEND: Call = Call::Send { fastopen: false };
    const FASTOPEN: Call = Call::Send { fastopen: true };

    fn v4(fam: u16, ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[..2].copy_from_slice(&fam.to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&ip);
        b
    }

    fn v6(fam: u16, ip: &str, port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        b[..2].copy_from_slice(&fam.to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[8..24].copy_from_slice(&ip.parse::<Ipv6Addr>().unwrap().octets());
        b
    }

    fn ip(s: &str, port: u16, rule: IpRule) -> Target<'static> {
        Target::Ip {
            ip: s.parse().unwrap(),
            port,
            rule,
        }
    }

    fn unix(path: &[u8]) -> Vec<u8> {
        let mut b = AF_UNIX.to_ne_bytes().to_vec();
        b.extend_from_slice(path);
        b
    }

    #[test]
    fn tcp_connect_and_sends() {
        let a = v4(AF_INET, [127, 0, 0, 2], 80);
        let want = ip("127.0.0.2", 80, IpRule::HostAndPort);
        assert_eq!(classify(&TCP4, Call::Connect, Some(&a)), want);
        // A stream send ignores its address, unless it connects with it.
        assert_eq!(classify(&TCP4, SEND, Some(&a)), Target::Peer);
        assert_eq!(classify(&TCP4, FASTOPEN, Some(&a)), want);
        assert_eq!(classify(&TCP4, SEND, None), Target::Peer);
        // Disconnect; other families; short addresses.
        let unspec = v4(AF_UNSPEC, [10, 0, 0, 1], 80);
        assert_eq!(classify(&TCP4, Call::Connect, Some(&unspec)), Target::Peer);
        assert_eq!(
            classify(&TCP4, Call::Connect, Some(&unix(b"/x\0"))),
            Target::Refuse(Errno::AFNOSUPPORT)
        );
        assert_eq!(
            classify(&TCP4, Call::Connect, Some(&a[..15])),
            Target::Refuse(Errno::INVAL)
        );
        assert_eq!(
            classify(&TCP4, Call::Connect, Some(&a[..1])),
            Target::Refuse(Errno::INVAL)
        );
    }

    #[test]
    fn unspec_sends_are_judged_as_the_socket_family() {
        let unspec = v4(AF_UNSPEC, [127, 0, 0, 2], 53);
        assert_eq!(
            classify(&UDP4, SEND, Some(&unspec)),
            ip("127.0.0.2", 53, IpRule::HostAndPort)
        );
        let unspec6 = v6(AF_UNSPEC, "::1", 53);
        assert_eq!(
            classify(&UDP6, SEND, Some(&unspec6)),
            ip("::1", 53, IpRule::HostAndPort)
        );
        assert_eq!(
            classify(&UDP6, SEND, Some(&unspec)),
            Target::Refuse(Errno::INVAL)
        );
        // An IPv6 UDP socket sends to an AF_INET address over IPv4.
        let a = v4(AF_INET, [10, 1, 2, 3], 53);
        assert_eq!(
            classify(&UDP6, SEND, Some(&a)),
            ip("10.1.2.3", 53, IpRule::HostAndPort)
        );
        let mapped = v6(AF_INET6, "::ffff:127.0.0.2", 9);
        assert_eq!(
            classify(&UDP6, Call::Connect, Some(&mapped)),
            ip("::ffff:127.0.0.2", 9, IpRule::HostAndPort)
        );
    }

    #[test]
    fn ping_sockets_have_no_port_rule() {
        let a = v4(AF_INET, [127, 0, 0, 1], 0);
        assert_eq!(
            classify(&PING4, SEND, Some(&a)),
            ip("127.0.0.1", 0, IpRule::HostOnly)
        );
    }

    #[test]
    fn unix_addresses() {
        let p = unix(b"/run/daemon.sock\0garbage");
        assert_eq!(
            classify(&USTREAM, Call::Connect, Some(&p)),
            Target::UnixPath(b"/run/daemon.sock")
        );
        let no_nul = unix(b"rel/sock");
        assert_eq!(
            classify(&UDGRAM, SEND, Some(&no_nul)),
            Target::UnixPath(b"rel/sock")
        );
        assert_eq!(
            classify(&UDGRAM, SEND, Some(&unix(b"\0name"))),
            Target::UnixAbstract(b"name")
        );
        // Stream sends never use an address.
        assert_eq!(classify(&USTREAM, SEND, Some(&p)), Target::Peer);
        // Unnamed, foreign family, dgram disconnect.
        assert_eq!(
            classify(&USTREAM, Call::Connect, Some(&unix(b""))),
            Target::Refuse(Errno::INVAL)
        );
        let unspec = AF_UNSPEC.to_ne_bytes();
        assert_eq!(
            classify(&UDGRAM, Call::Connect, Some(&unspec)),
            Target::Peer
        );
        assert_eq!(
            classify(&USTREAM, Call::Connect, Some(&unspec)),
            Target::Refuse(Errno::INVAL)
        );
        assert_eq!(
            classify(&UDGRAM, SEND, Some(&unspec)),
            Target::Refuse(Errno::INVAL)
        );
    }

    #[test]
    fn other_families_are_not_judged() {
        let nl = SockInfo {
            domain: 16,
            kind: Kind::Raw,
            protocol: 0,
        };
        assert_eq!(classify(&nl, SEND, Some(&[16, 0, 0, 0])), Target::Unjudged);
    }
}
