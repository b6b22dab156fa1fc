//! Network hosts a policy may allow: DNS names, IP addresses and CIDR networks.

use alloc::string::String;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

use crate::error::{ParseError, Reason};

/// What a host rule looks like, for error messages.
const EXPECTED_HOST: &str = "an IP address, a CIDR network (10.0.0.0/8) or a host name";
/// What a CIDR network looks like, for error messages.
const EXPECTED_CIDR: &str = "a CIDR network such as 10.0.0.0/8 or fd00::/8";

/// An IP network: an address and a prefix length, with no bits set after
/// the prefix (`10.0.0.0/8`, `fd00::/8`).
///
/// Membership judges an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) as the
/// IPv4 address it maps, and a network inside `::ffff:0:0/96` as the IPv4
/// network it maps, so one address cannot be written two ways to slip past a
/// rule.
///
/// ```
/// use sandlock_policy::Cidr;
/// let net: Cidr = "10.0.0.0/8".parse().unwrap();
/// assert!(net.contains("10.1.2.3".parse().unwrap()));
/// assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(!net.contains("11.0.0.1".parse().unwrap()));
/// assert!("10.0.0.1/8".parse::<Cidr>().is_err()); // host bits set
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`; an error if the prefix is longer than the
    /// address or `addr` has bits set after the prefix.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, ParseError> {
        let max = max_prefix(addr);
        let shown = || alloc::format!("{addr}/{prefix}");
        if prefix > max {
            return Err(ParseError::new(
                shown(),
                Reason::OutOfRange {
                    min: 0,
                    max: u64::from(max),
                },
            ));
        }
        let c = Cidr { addr, prefix };
        if c.first_bits() != bits(addr) {
            return Err(ParseError::new(shown(), Reason::HostBitsSet { prefix }));
        }
        Ok(c)
    }

    /// The network holding exactly `addr` (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix: max_prefix(addr),
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// This network with an IPv4-mapped IPv6 network written as IPv4.
    pub fn canonical(&self) -> Cidr {
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: self.prefix - 96,
                },
                None => *self,
            },
            _ => *self,
        }
    }

    /// Whether `ip` is in this network (IPv4-mapped addresses judged as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let net = self.canonical();
        let ip = ip.to_canonical();
        match (net.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                let (lo, hi) = net.bounds();
                let b = bits(ip);
                lo <= b && b <= hi
            }
            _ => false,
        }
    }

    /// The first and last address of the network as integers (IPv4 in the
    /// low 32 bits).
    pub(crate) fn bounds(&self) -> (u128, u128) {
        let host_bits = u32::from(max_prefix(self.addr) - self.prefix);
        let span = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let lo = self.first_bits();
        (lo, lo | span)
    }

    /// The address with every bit after the prefix cleared, as an integer.
    fn first_bits(&self) -> u128 {
        let host_bits = u32::from(max_prefix(self.addr) - self.prefix);
        let mask = if host_bits == 128 {
            0
        } else {
            !((1u128 << host_bits) - 1)
        };
        bits(self.addr) & mask
    }
}

/// 32 for IPv4, 128 for IPv6.
fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub(crate) fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl From<IpAddr> for Cidr {
    fn from(addr: IpAddr) -> Cidr {
        Cidr::host(addr)
    }
}

impl From<Ipv4Addr> for Cidr {
    fn from(addr: Ipv4Addr) -> Cidr {
        Cidr::host(IpAddr::V4(addr))
    }
}

impl From<Ipv6Addr> for Cidr {
    fn from(addr: Ipv6Addr) -> Cidr {
        Cidr::host(IpAddr::V6(addr))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses `addr/prefix`; a bare address is its host network.
impl FromStr for Cidr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let syntax = || ParseError::new(s, Reason::Syntax(EXPECTED_CIDR));
        let t = s.trim();
        let Some((addr, prefix)) = t.split_once('/') else {
            return parse_ip(t).map(Cidr::host).ok_or_else(syntax);
        };
        let addr = parse_ip(addr).ok_or_else(syntax)?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        Cidr::new(addr, prefix).map_err(|e| ParseError::new(s, e.reason))
    }
}

/// Parses an IP address, allowing IPv6 in brackets (`[::1]`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// A DNS host name, checked for shape: 1..=253 bytes, dot-separated labels
/// of 1..=63 letters, digits, `-` or `_`, not starting or ending with `-`,
/// and a last label that is not all digits (so `10.0.0.256` is refused rather
/// than looked up as a name). A trailing dot is kept as given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DnsName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = |r| ParseError::new(s, r);
        if s.is_empty() {
            return Err(err(Reason::Empty));
        }
        let body = s.strip_suffix('.').unwrap_or(s);
        if body.len() > 253 {
            return Err(err(Reason::TooLong { max: 253 }));
        }
        if let Some(c) = body
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(err(Reason::InvalidChar(c)));
        }
        let labels_ok = body
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
        let last_numeric = body
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
        if !labels_ok || last_numeric {
            return Err(err(Reason::Syntax(EXPECTED_HOST)));
        }
        Ok(DnsName(String::from(s)))
    }
}

/// One entry of `net_allow_hosts`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetHost {
    /// A host name, resolved once when the sandbox starts.
    Name(DnsName),
    /// One IP address.
    Ip(IpAddr),
    /// An IP network.
    Net(Cidr),
}

impl NetHost {
    /// The network this host stands for, or `None` for a name (resolve it first).
    pub fn as_cidr(&self) -> Option<Cidr> {
        match self {
            NetHost::Name(_) => None,
            NetHost::Ip(ip) => Some(Cidr::host(*ip)),
            NetHost::Net(c) => Some(*c),
        }
    }
}

impl fmt::Display for NetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetHost::Name(n) => n.fmt(f),
            NetHost::Ip(ip) => ip.fmt(f),
            NetHost::Net(c) => c.fmt(f),
        }
    }
}

/// Parses an IP address (IPv6 optionally in brackets), a CIDR network if
/// the text has a `/`, or else a host name.
///
/// ```
/// use sandlock_policy::NetHost;
/// assert!(matches!("127.0.0.1".parse(), Ok(NetHost::Ip(_))));
/// assert!(matches!("[::1]".parse(), Ok(NetHost::Ip(_))));
/// assert!(matches!("10.0.0.0/8".parse(), Ok(NetHost::Net(_))));
/// assert!(matches!("example.com".parse(), Ok(NetHost::Name(_))));
/// assert!("".parse::<NetHost>().is_err());
/// assert!("10.0.0.256".parse::<NetHost>().is_err());
/// ```
impl FromStr for NetHost {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.trim().is_empty() {
            return Err(ParseError::new(s, Reason::Empty));
        }
        if s.contains('/') {
            return s.parse().map(NetHost::Net);
        }
        if let Some(ip) = parse_ip(s) {
            return Ok(NetHost::Ip(ip));
        }
        s.parse().map(NetHost::Name)
    }
}

impl From<IpAddr> for NetHost {
    fn from(ip: IpAddr) -> NetHost {
        NetHost::Ip(ip)
    }
}

impl From<Cidr> for NetHost {
    fn from(c: Cidr) -> NetHost {
        NetHost::Net(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_membership() {
        let c: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(c.contains(ip("192.168.255.255")));
        assert!(!c.contains(ip("192.169.0.0")));
        assert!(!c.contains(ip("::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        assert!(all.contains(ip("::ffff:1.2.3.4")));
        assert!(!all.contains(ip("::1")));
        let v6: Cidr = "::/0".parse().unwrap();
        assert!(v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("1.2.3.4")));
        assert!(!v6.contains(ip("::ffff:1.2.3.4")), "mapped judged as IPv4");
        let mapped: Cidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.canonical(), "10.0.0.0/8".parse().unwrap());
        assert!(mapped.contains(ip("10.9.9.9")));
        assert!(Cidr::host(ip("::1")).contains(ip("::1")));
    }

    #[test]
    fn cidr_errors() {
        let e = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert_eq!(
            (e.value.as_str(), e.reason),
            ("10.0.0.1/8", Reason::HostBitsSet { prefix: 8 })
        );
        let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert_eq!(e.reason, Reason::OutOfRange { min: 0, max: 32 });
        for bad in [
            "10.0.0.0/",
            "/8",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "x/8",
            "10.0.0.0/0008",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!("fd00::/8".parse::<Cidr>().is_ok());
        assert!("[fd00::]/8".parse::<Cidr>().is_ok());
    }

    #[test]
    fn hosts() {
        for good in [
            "localhost",
            "a.b-c.example",
            "x_y.test.",
            "xn--nxasmq6b.example",
        ] {
            assert!(
                matches!(good.parse::<NetHost>(), Ok(NetHost::Name(_))),
                "{good}"
            );
        }
        for bad in [
            "", " ", "-a.com", "a-.com", "a..b", "a b", "1.2.3", "ex ample", "a/b", "é.com",
        ] {
            assert!(bad.parse::<NetHost>().is_err(), "{bad}");
        }
        assert_eq!("".parse::<NetHost>().unwrap_err().reason, Reason::Empty);
        let long = alloc::format!("{}.com", "a.".repeat(130));
        assert!(long.parse::<NetHost>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1.2.3.4",
            "::1",
            "::ffff:1.2.3.4",
            "10.0.0.0/8",
            "fd00::/8",
            "example.com",
        ] {
            let h: NetHost = s.parse().unwrap();
            assert_eq!(h.to_string(), s);
            assert_eq!(h.to_string().parse::<NetHost>().unwrap(), h);
        }
    }
}
