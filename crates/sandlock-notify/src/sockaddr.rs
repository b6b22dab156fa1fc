//! A socket address copied out of the child, and its meaning.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// `sizeof(struct sockaddr_storage)`: the largest address the kernel accepts.
pub const SOCKADDR_MAX: usize = 128;

/// `AF_UNIX`.
pub const AF_UNIX: u16 = 1;
/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// The raw bytes of a `sockaddr`, at most [`SOCKADDR_MAX`], exactly as the
/// child passed them (same length), in a fixed-capacity buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SockAddrBuf(heapless::Vec<u8, SOCKADDR_MAX>);

impl SockAddrBuf {
    /// A copy of `bytes`; `None` if longer than [`SOCKADDR_MAX`].
    pub fn from_bytes(bytes: &[u8]) -> Option<SockAddrBuf> {
        heapless::Vec::from_slice(bytes).ok().map(SockAddrBuf)
    }

    /// The address of an IP socket, in the kernel's layout.
    pub fn from_socket_addr(addr: SocketAddr) -> SockAddrBuf {
        let mut b = [0u8; 28];
        let len = match addr {
            SocketAddr::V4(a) => {
                b[..2].copy_from_slice(&AF_INET.to_ne_bytes());
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                b[4..8].copy_from_slice(&a.ip().octets());
                16
            }
            SocketAddr::V6(a) => {
                b[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
                b[8..24].copy_from_slice(&a.ip().octets());
                b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
                28
            }
        };
        SockAddrBuf(heapless::Vec::from_slice(&b[..len]).unwrap_or_default())
    }

    /// The bytes, as passed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The address family (`sa_family`), if at least two bytes were passed.
    pub fn family(&self) -> Option<u16> {
        let b = self.0.get(..2)?;
        Some(u16::from_ne_bytes([b[0], b[1]]))
    }

    /// The IP address and port, if this is a complete `sockaddr_in` or
    /// `sockaddr_in6` (the lengths the kernel requires: 16 and 24 bytes).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let b = self.as_bytes();
        match self.family()? {
            AF_INET if b.len() >= 16 => {
                let port = u16::from_be_bytes([b[2], b[3]]);
                let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
                Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            AF_INET6 if b.len() >= 24 => {
                let port = u16::from_be_bytes([b[2], b[3]]);
                let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&b[8..24]);
                let scope = b
                    .get(24..28)
                    .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]));
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(octets),
                    port,
                    flow,
                    scope,
                )))
            }
            _ => None,
        }
    }

    /// Host and port as a policy judges them: an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is reported as the IPv4 address it reaches.
    pub fn host_port(&self) -> Option<(IpAddr, u16)> {
        let sa = self.socket_addr()?;
        let ip = match sa.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        Some((ip, sa.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_round_trip() {
        for s in ["127.0.0.2:8080", "[::1]:443", "[fe80::1%3]:22"] {
            let sa: SocketAddr = s.parse().unwrap();
            assert_eq!(SockAddrBuf::from_socket_addr(sa).socket_addr(), Some(sa));
        }
    }

    #[test]
    fn mapped_v6_is_v4() {
        let sa: SocketAddr = "[::ffff:127.0.0.2]:80".parse().unwrap();
        let b = SockAddrBuf::from_socket_addr(sa);
        assert_eq!(b.host_port(), Some(("127.0.0.2".parse().unwrap(), 80)));
    }

    #[test]
    fn short_or_foreign_is_none() {
        let sa: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b = SockAddrBuf::from_socket_addr(sa);
        let short = SockAddrBuf::from_bytes(&b.as_bytes()[..15]).unwrap();
        assert_eq!(short.socket_addr(), None);
        assert_eq!(
            SockAddrBuf::from_bytes(&[1, 0, b'/', 0])
                .unwrap()
                .host_port(),
            None
        );
        assert_eq!(SockAddrBuf::from_bytes(&[]).unwrap().family(), None);
        assert!(SockAddrBuf::from_bytes(&[0; 129]).is_none());
    }
}
