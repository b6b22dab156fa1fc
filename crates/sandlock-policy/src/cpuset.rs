//! A set of CPU numbers, parsed from a kernel-style CPU list (`0-3,6`).

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::error::{ParseError, Reason};

/// What a CPU list looks like, for error messages.
const EXPECTED: &str = "a CPU list such as 0-3,6";

/// A non-empty set of CPU numbers, each at most [`CpuSet::MAX_CPU`].
///
/// Parsed from the kernel's list format (`cpuset(7)`, "List format"):
/// comma-separated numbers and inclusive ranges `a-b` with `a <= b`.
/// Duplicates and overlaps are merged. `Display` prints the canonical list,
/// which parses back to the same set.
///
/// ```
/// use sandlock_policy::CpuSet;
/// let set: CpuSet = "6,0-3,2".parse().unwrap();
/// assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 6]);
/// assert_eq!(set.len(), 5);
/// assert_eq!(set.to_string(), "0-3,6");
/// assert!("3-1".parse::<CpuSet>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CpuSet {
    /// Sorted, disjoint, non-adjacent inclusive ranges; never empty.
    ranges: Vec<(u32, u32)>,
}

impl CpuSet {
    /// The highest CPU number accepted: the kernel's largest `NR_CPUS`
    /// (`CONFIG_NR_CPUS` allows at most 8192 CPUs) minus one.
    pub const MAX_CPU: u32 = 8191;

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= cpu && cpu <= b)
    }

    /// The number of CPUs in the set (at least 1).
    pub fn len(&self) -> usize {
        self.ranges.iter().map(|&(a, b)| (b - a) as usize + 1).sum()
    }

    /// Always `false`: a CPU set has at least one CPU.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The CPU numbers in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({self})")
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for CpuSet {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = |r| ParseError::new(s, r);
        let t = s.trim();
        if t.is_empty() {
            return Err(err(Reason::Empty));
        }
        let num = |n: &str| -> Result<u32, ParseError> {
            let n = n.trim();
            if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(Reason::Syntax(EXPECTED)));
            }
            match n.parse::<u32>() {
                Ok(v) if v <= CpuSet::MAX_CPU => Ok(v),
                _ => Err(err(Reason::OutOfRange {
                    min: 0,
                    max: u64::from(CpuSet::MAX_CPU),
                })),
            }
        };
        let mut ranges = Vec::new();
        for item in t.split(',') {
            let (a, b) = match item.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let a = num(item)?;
                    (a, a)
                }
            };
            if a > b {
                return Err(err(Reason::Syntax(EXPECTED)));
            }
            ranges.push((a, b));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Ok(CpuSet { ranges: merged })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn parses() {
        let s: CpuSet = "0-3,6".parse().unwrap();
        assert!(s.contains(0) && s.contains(3) && s.contains(6));
        assert!(!s.contains(4) && !s.contains(7));
        assert_eq!(s.len(), 5);
        assert!(!s.is_empty());
        assert_eq!("1,2,3".parse::<CpuSet>().unwrap().to_string(), "1-3");
        assert_eq!(" 5 ".parse::<CpuSet>().unwrap().to_string(), "5");
        assert_eq!("8191".parse::<CpuSet>().unwrap().len(), 1);
    }

    #[test]
    fn refuses() {
        for bad in ["", ",", "1,", "a", "1-", "-1", "3-1", "1-2-3", "1;2", "+1"] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad:?}");
        }
        let e = "0-9000".parse::<CpuSet>().unwrap_err();
        assert_eq!(
            (e.value.as_str(), e.reason),
            ("0-9000", Reason::OutOfRange { min: 0, max: 8191 })
        );
        assert_eq!("".parse::<CpuSet>().unwrap_err().reason, Reason::Empty);
    }

    proptest! {
        #[test]
        fn display_round_trips(cpus in prop::collection::btree_set(0u32..64, 1..20)) {
            let text = cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
            let set: CpuSet = text.parse().unwrap();
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), cpus.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(set.to_string().parse::<CpuSet>().unwrap(), set);
        }
    }
}
