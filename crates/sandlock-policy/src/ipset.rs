//! A set of IP addresses, kept as sorted disjoint ranges.

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::RangeInclusive;

use crate::net::Cidr;

/// A set of IP addresses: any union of addresses and CIDR networks.
///
/// IPv4 and IPv6 are kept apart as sorted, disjoint, non-adjacent ranges, so
/// membership is a binary search and two sets with the same members are
/// equal. IPv4-mapped IPv6 addresses and networks are stored and looked up as
/// IPv4 (see [`Cidr::canonical`]); an IPv6 network that only partly covers
/// the mapped range keeps only its IPv6 part.
///
/// ```
/// use sandlock_policy::{Cidr, IpSet};
/// let set: IpSet = ["10.0.0.0/8", "192.168.1.1"]
///     .iter()
///     .map(|s| s.parse::<Cidr>().unwrap())
///     .collect();
/// assert!(set.contains("10.2.3.4".parse().unwrap()));
/// assert!(set.contains("::ffff:192.168.1.1".parse().unwrap()));
/// assert!(!set.contains("192.168.1.2".parse().unwrap()));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// An integer that bounds a range: `u32` for IPv4, `u128` for IPv6.
trait Bound: Copy + Ord {
    fn succ(self) -> Option<Self>;
}

impl Bound for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Bound for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl IpSet {
    /// The empty set.
    pub const fn new() -> IpSet {
        IpSet {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }

    /// Adds an address or network.
    pub fn insert(&mut self, net: impl Into<Cidr>) {
        self.push(net.into());
        self.normalize();
    }

    /// Whether `ip` is in the set (an IPv4-mapped address is judged as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => contains(&self.v4, u32::from(a)),
            IpAddr::V6(a) => contains(&self.v6, u128::from(a)),
        }
    }

    /// Whether the set has no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether every address of `self` is in `other`.
    pub fn is_subset(&self, other: &IpSet) -> bool {
        subset(&self.v4, &other.v4) && subset(&self.v6, &other.v6)
    }

    /// The addresses in both sets.
    pub fn intersection(&self, other: &IpSet) -> IpSet {
        IpSet {
            v4: intersect(&self.v4, &other.v4),
            v6: intersect(&self.v6, &other.v6),
        }
    }

    /// The addresses in either set.
    pub fn union(&self, other: &IpSet) -> IpSet {
        let mut out = self.clone();
        out.v4.extend_from_slice(&other.v4);
        out.v6.extend_from_slice(&other.v6);
        out.normalize();
        out
    }

    /// The IPv4 members as ranges, in ascending order.
    pub fn v4_ranges(&self) -> impl Iterator<Item = RangeInclusive<Ipv4Addr>> + '_ {
        self.v4
            .iter()
            .map(|&(a, b)| Ipv4Addr::from(a)..=Ipv4Addr::from(b))
    }

    /// The IPv6 members as ranges, in ascending order.
    pub fn v6_ranges(&self) -> impl Iterator<Item = RangeInclusive<Ipv6Addr>> + '_ {
        self.v6
            .iter()
            .map(|&(a, b)| Ipv6Addr::from(a)..=Ipv6Addr::from(b))
    }

    /// Adds a range without restoring the sorted form.
    fn push(&mut self, net: Cidr) {
        let net = net.canonical();
        let (lo, hi) = net.bounds();
        match net.addr() {
            // IPv4 bounds fit 32 bits by construction.
            IpAddr::V4(_) => self.v4.push((lo as u32, hi as u32)),
            IpAddr::V6(_) => self.v6.push((lo, hi)),
        }
    }

    /// Sorts and merges overlapping or adjacent ranges.
    fn normalize(&mut self) {
        merge(&mut self.v4);
        merge(&mut self.v6);
    }
}

impl<C: Into<Cidr>> FromIterator<C> for IpSet {
    fn from_iter<I: IntoIterator<Item = C>>(iter: I) -> Self {
        let mut set = IpSet::new();
        for c in iter {
            set.push(c.into());
        }
        set.normalize();
        set
    }
}

impl<C: Into<Cidr>> Extend<C> for IpSet {
    fn extend<I: IntoIterator<Item = C>>(&mut self, iter: I) {
        for c in iter {
            self.push(c.into());
        }
        self.normalize();
    }
}

impl fmt::Debug for IpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_set();
        for r in self.v4_ranges() {
            if r.start() == r.end() {
                l.entry(r.start());
            } else {
                l.entry(&r);
            }
        }
        for r in self.v6_ranges() {
            if r.start() == r.end() {
                l.entry(r.start());
            } else {
                l.entry(&r);
            }
        }
        l.finish()
    }
}

/// Binary search for the last range starting at or below `x`, written so
/// the loop's only branch is on the (predictable) remaining length.
#[inline]
fn contains<T: Bound>(ranges: &[(T, T)], x: T) -> bool {
    let Some(first) = ranges.first() else {
        return false;
    };
    if x < first.0 {
        return false;
    }
    let (mut base, mut size) = (0, ranges.len());
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        base = if ranges[mid].0 <= x { mid } else { base };
        size -= half;
    }
    x <= ranges[base].1
}

fn merge<T: Bound>(ranges: &mut Vec<(T, T)>) {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges.iter() {
        match out.last_mut() {
            Some(last) if last.1.succ().is_none_or(|n| lo <= n) => {
                if hi > last.1 {
                    last.1 = hi;
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    *ranges = out;
}

fn intersect<T: Bound>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn subset<T: Bound>(a: &[(T, T)], b: &[(T, T)]) -> bool {
    // Ranges of `b` are disjoint and non-adjacent, so each range of `a` must
    // sit inside a single range of `b`.
    let mut j = 0;
    for &(lo, hi) in a {
        while j < b.len() && b[j].1 < lo {
            j += 1;
        }
        match b.get(j) {
            Some(&(blo, bhi)) if blo <= lo && hi <= bhi => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[&str]) -> IpSet {
        items.iter().map(|s| s.parse::<Cidr>().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn merges_and_looks_up() {
        let s = set(&[
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.0/31",
            "10.0.0.3",
            "::1",
            "::ffff:1.1.1.1",
        ]);
        assert_eq!(
            s.v4,
            [(0x0101_0101, 0x0101_0101), (0x0a00_0000, 0x0a00_0003)]
        );
        assert!(s.contains(ip("1.1.1.1")));
        assert!(s.contains(ip("::ffff:10.0.0.3")));
        assert!(!s.contains(ip("10.0.0.4")));
        assert!(s.contains(ip("::1")));
        assert!(!s.contains(ip("::2")));
        assert_eq!(set(&["0.0.0.0/0", "255.255.255.255"]).v4, [(0, u32::MAX)]);
        assert_eq!(set(&["::/0"]).v6, [(0, u128::MAX)]);
        let all = set(&["0.0.0.0/0"]);
        assert!(all.contains(ip("0.0.0.0")) && all.contains(ip("255.255.255.255")));
        let edges = set(&[
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]);
        assert!(edges.contains(ip("0.0.0.0")) && edges.contains(ip("255.255.255.255")));
        assert!(!edges.contains(ip("0.0.0.1")) && !edges.contains(ip("255.255.255.254")));
        assert!(
            edges.contains(ip("::"))
                && edges.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        );
        assert!(!IpSet::new().contains(ip("1.2.3.4")));
    }

    #[test]
    fn set_algebra() {
        let a = set(&["10.0.0.0/8", "192.168.0.1"]);
        let b = set(&["10.1.0.0/16", "192.168.0.1", "172.16.0.1"]);
        assert_eq!(a.intersection(&b), set(&["10.1.0.0/16", "192.168.0.1"]));
        assert!(a.intersection(&b).is_subset(&a));
        assert!(!b.is_subset(&a));
        assert_eq!(
            a.union(&b),
            set(&["10.0.0.0/8", "192.168.0.1", "172.16.0.1"])
        );
        assert!(IpSet::new().is_subset(&a));
        assert!(IpSet::new().is_empty());
    }

    fn arb_cidr() -> impl Strategy<Value = Cidr> {
        // A small universe so sets overlap often.
        prop_oneof![
            (0u8..16, 28u8..=32).prop_map(|(h, p)| {
                let a = u32::from(Ipv4Addr::new(10, 0, 0, h)) & !((1u64 << (32 - p)) - 1) as u32;
                Cidr::new(IpAddr::V4(Ipv4Addr::from(a)), p).unwrap()
            }),
            (0u8..16).prop_map(|h| Cidr::host(IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0,
                0,
                0,
                0,
                0,
                0,
                u16::from(h)
            )))),
        ]
    }

    fn universe() -> impl Iterator<Item = IpAddr> {
        (0u8..20)
            .map(|h| IpAddr::V4(Ipv4Addr::new(10, 0, 0, h)))
            .chain((0u16..20).map(|h| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, h))))
    }

    proptest! {
        #[test]
        fn algebra_matches_membership(a in prop::collection::vec(arb_cidr(), 0..24),
                                      b in prop::collection::vec(arb_cidr(), 0..8)) {
            let sa: IpSet = a.iter().copied().collect();
            let sb: IpSet = b.iter().copied().collect();
            let inter = sa.intersection(&sb);
            let uni = sa.union(&sb);
            for ip in universe() {
                let in_a = a.iter().any(|c| c.contains(ip));
                let in_b = b.iter().any(|c| c.contains(ip));
                prop_assert_eq!(sa.contains(ip), in_a);
                prop_assert_eq!(inter.contains(ip), in_a && in_b);
                prop_assert_eq!(uni.contains(ip), in_a || in_b);
            }
            let model_subset = universe().all(|ip| !sa.contains(ip) || sb.contains(ip));
            prop_assert_eq!(sa.is_subset(&sb), model_subset);
        }
    }
}
