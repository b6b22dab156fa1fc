//! Resource limits that cannot be misread: unlimited, or a positive amount.

use core::cmp::Ordering;
use core::fmt;
use core::num::{NonZeroU32, NonZeroU64};
use core::str::FromStr;

use crate::error::{ParseError, Reason};

/// A resource limit: [`Unlimited`](Limit::Unlimited), or at most a positive amount.
///
/// There is no number that means "unlimited": the amount types used with it
/// ([`ByteSize`](crate::ByteSize), [`NonZeroU32`], [`NonZeroU64`],
/// [`CpuPercent`]) cannot be zero, and `Unlimited` orders
/// above every amount, so [`min`](Limit::min) of two limits is always the
/// tighter one.
///
/// ```
/// use core::num::NonZeroU32;
/// use sandlock_policy::Limit;
/// let ten = Limit::Limited(NonZeroU32::new(10).unwrap());
/// assert!(ten < Limit::Unlimited);
/// assert_eq!(ten.min(Limit::Unlimited), ten);
/// assert_eq!("unlimited".parse::<Limit<NonZeroU32>>(), Ok(Limit::Unlimited));
/// assert_eq!("10".parse::<Limit<NonZeroU32>>(), Ok(ten));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Limit<T> {
    /// No limit.
    #[default]
    Unlimited,
    /// At most this amount.
    Limited(T),
}

impl<T: Copy> Limit<T> {
    /// The amount, or `None` when unlimited.
    pub const fn get(self) -> Option<T> {
        match self {
            Limit::Unlimited => None,
            Limit::Limited(v) => Some(v),
        }
    }

    /// Whether this is [`Limit::Unlimited`].
    pub const fn is_unlimited(self) -> bool {
        matches!(self, Limit::Unlimited)
    }
}

impl<T: Ord> Limit<T> {
    /// Whether this limit allows no more than `ceiling` (an `Unlimited`
    /// limit is within only an `Unlimited` ceiling).
    pub fn is_within(&self, ceiling: &Limit<T>) -> bool {
        self <= ceiling
    }

    /// Whether `amount` is allowed by this limit.
    pub fn allows(&self, amount: &T) -> bool {
        match self {
            Limit::Unlimited => true,
            Limit::Limited(max) => amount <= max,
        }
    }
}

impl<T: Ord> PartialOrd for Limit<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Every amount is below `Unlimited`; amounts compare by value.
impl<T: Ord> Ord for Limit<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Limit::Unlimited, Limit::Unlimited) => Ordering::Equal,
            (Limit::Unlimited, Limit::Limited(_)) => Ordering::Greater,
            (Limit::Limited(_), Limit::Unlimited) => Ordering::Less,
            (Limit::Limited(a), Limit::Limited(b)) => a.cmp(b),
        }
    }
}

impl<T> From<T> for Limit<T> {
    fn from(v: T) -> Self {
        Limit::Limited(v)
    }
}

impl<T: fmt::Display> fmt::Display for Limit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Unlimited => f.write_str("unlimited"),
            Limit::Limited(v) => v.fmt(f),
        }
    }
}

/// An amount a [`Limit`] holds: positive by construction, and parsed from text.
pub trait Amount: Copy + Ord {
    /// Parses the amount from its text form (`"512M"`, `"10"`).
    fn parse_amount(s: &str) -> Result<Self, ParseError>;
}

impl Amount for NonZeroU32 {
    fn parse_amount(s: &str) -> Result<Self, ParseError> {
        parse_nonzero_u32(s)
    }
}

impl Amount for NonZeroU64 {
    fn parse_amount(s: &str) -> Result<Self, ParseError> {
        parse_nonzero_u64(s)
    }
}

impl Amount for CpuPercent {
    fn parse_amount(s: &str) -> Result<Self, ParseError> {
        s.parse()
    }
}

/// Parses `unlimited`, or an amount in `T`'s own syntax.
impl<T: Amount> FromStr for Limit<T> {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.trim().eq_ignore_ascii_case("unlimited") {
            Ok(Limit::Unlimited)
        } else {
            T::parse_amount(s).map(Limit::Limited)
        }
    }
}

/// A share of one CPU core, in percent: `1..=100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuPercent(u8);

impl CpuPercent {
    /// A share of `percent` (`None` outside `1..=100`).
    pub const fn new(percent: u32) -> Option<CpuPercent> {
        if percent >= 1 && percent <= 100 {
            Some(CpuPercent(percent as u8))
        } else {
            None
        }
    }

    /// The percentage, `1..=100`.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// [`CpuPercent::new`] with an error naming the value.
    pub fn try_new(percent: u64) -> Result<CpuPercent, ParseError> {
        u32::try_from(percent)
            .ok()
            .and_then(CpuPercent::new)
            .ok_or_else(|| {
                let reason = if percent == 0 {
                    Reason::Zero
                } else {
                    Reason::OutOfRange { min: 1, max: 100 }
                };
                ParseError::new(alloc::format!("{percent}"), reason)
            })
    }
}

impl fmt::Display for CpuPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses `50` or `50%`.
impl FromStr for CpuPercent {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        let t = t.strip_suffix('%').unwrap_or(t);
        let n = parse_u64(s, t, "a CPU percentage such as 50")?;
        CpuPercent::try_new(n).map_err(|e| ParseError::new(s, e.reason))
    }
}

/// Parses a decimal `u64` from `digits`, naming `original` on error.
pub(crate) fn parse_u64(
    original: &str,
    digits: &str,
    expected: &'static str,
) -> Result<u64, ParseError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(original, Reason::Syntax(expected)));
    }
    digits
        .parse::<u64>()
        .map_err(|_| ParseError::new(original, Reason::Overflow))
}

/// Parses a positive decimal count that fits a `u32`.
pub(crate) fn parse_nonzero_u32(s: &str) -> Result<NonZeroU32, ParseError> {
    let n = parse_u64(s, s.trim(), "a positive whole number")?;
    let n = u32::try_from(n).map_err(|_| ParseError::new(s, Reason::Overflow))?;
    NonZeroU32::new(n).ok_or_else(|| ParseError::new(s, Reason::Zero))
}

/// Parses a positive decimal count that fits a `u64`.
pub(crate) fn parse_nonzero_u64(s: &str) -> Result<NonZeroU64, ParseError> {
    let n = parse_u64(s, s.trim(), "a positive whole number")?;
    NonZeroU64::new(n).ok_or_else(|| ParseError::new(s, Reason::Zero))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> Limit<NonZeroU32> {
        Limit::Limited(NonZeroU32::new(v).unwrap())
    }

    #[test]
    fn unlimited_is_largest() {
        assert!(n(u32::MAX) < Limit::Unlimited);
        assert_eq!(n(3).min(n(5)), n(3));
        assert_eq!(Limit::Unlimited.min(n(5)), n(5));
        assert_eq!(Limit::<NonZeroU32>::Unlimited.max(n(5)), Limit::Unlimited);
        assert!(n(3).is_within(&Limit::Unlimited));
        assert!(!Limit::Unlimited.is_within(&n(3)));
        assert!(n(3).allows(&NonZeroU32::new(3).unwrap()));
        assert!(!n(3).allows(&NonZeroU32::new(4).unwrap()));
    }

    #[test]
    fn cpu_percent_range() {
        assert_eq!("50".parse::<CpuPercent>().map(CpuPercent::get), Ok(50));
        assert_eq!("100%".parse::<CpuPercent>().map(CpuPercent::get), Ok(100));
        assert_eq!("0".parse::<CpuPercent>().unwrap_err().reason, Reason::Zero);
        let e = "101".parse::<CpuPercent>().unwrap_err();
        assert_eq!(
            (e.value.as_str(), e.reason),
            ("101", Reason::OutOfRange { min: 1, max: 100 })
        );
        assert!("-5".parse::<CpuPercent>().is_err());
        assert!("lots".parse::<CpuPercent>().is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(parse_nonzero_u32("0").unwrap_err().reason, Reason::Zero);
        assert_eq!(
            parse_nonzero_u32("4294967296").unwrap_err().reason,
            Reason::Overflow
        );
        assert_eq!(parse_nonzero_u32(" 7 ").map(NonZeroU32::get), Ok(7));
        assert!(parse_nonzero_u64("").is_err());
    }
}
