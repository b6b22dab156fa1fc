//! A positive number of bytes, parsed from `512M`, `1.5G`, `64K` or plain bytes.

use core::fmt;
use core::num::NonZeroU64;
use core::str::FromStr;

use crate::error::{ParseError, Reason};
use crate::limit::Amount;

/// What a byte size looks like, for error messages.
const EXPECTED: &str = "a byte size such as 4096, 64K, 512M, 1.5G or 2T";

/// Unit suffixes and their multipliers: binary multiples, so `K` is 1024.
const UNITS: [(u8, u64); 6] = [
    (b'K', 1 << 10),
    (b'M', 1 << 20),
    (b'G', 1 << 30),
    (b'T', 1 << 40),
    (b'P', 1 << 50),
    (b'E', 1 << 60),
];

/// The most fractional digits accepted (`1.000000000000000001G` is refused).
const MAX_FRACTION_DIGITS: usize = 18;

/// A positive number of bytes.
///
/// Parsing accepts plain bytes (`4096`) or a number with a unit `K`, `M`, `G`,
/// `T`, `P` or `E`, optionally followed by `i` and/or `B` (`64K`, `64KiB`,
/// `64kb`). **Units are binary multiples**: `K` = 1024, `M` = 1024², and so on,
/// also when written `MB` — the kernel accounts memory in pages, never in
/// powers of ten. A unit may take a decimal fraction (`1.5G`); the result is
/// rounded down to a whole byte. Zero, garbage and values above `u64::MAX` are
/// errors naming the value.
///
/// `Display` prints the largest unit that divides the size exactly, so the
/// printed form always parses back to the same value.
///
/// ```
/// use sandlock_policy::ByteSize;
/// let s: ByteSize = "1.5G".parse().unwrap();
/// assert_eq!(s.get(), 1536 * 1024 * 1024);
/// assert_eq!(s.to_string(), "1536M");
/// assert_eq!("64K".parse::<ByteSize>().unwrap().get(), 65536);
/// assert!("0".parse::<ByteSize>().is_err());
/// assert!("12Q".parse::<ByteSize>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(NonZeroU64);

impl ByteSize {
    /// A size of `bytes` (`None` for 0).
    pub const fn new(bytes: u64) -> Option<ByteSize> {
        match NonZeroU64::new(bytes) {
            Some(n) => Some(ByteSize(n)),
            None => None,
        }
    }

    /// A size of `n` KiB (`None` for 0 or on overflow).
    pub const fn kib(n: u64) -> Option<ByteSize> {
        match n.checked_mul(1 << 10) {
            Some(b) => ByteSize::new(b),
            None => None,
        }
    }

    /// A size of `n` MiB (`None` for 0 or on overflow).
    pub const fn mib(n: u64) -> Option<ByteSize> {
        match n.checked_mul(1 << 20) {
            Some(b) => ByteSize::new(b),
            None => None,
        }
    }

    /// A size of `n` GiB (`None` for 0 or on overflow).
    pub const fn gib(n: u64) -> Option<ByteSize> {
        match n.checked_mul(1 << 30) {
            Some(b) => ByteSize::new(b),
            None => None,
        }
    }

    /// The number of bytes (never 0).
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl From<ByteSize> for u64 {
    fn from(s: ByteSize) -> u64 {
        s.get()
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.get();
        for &(unit, mult) in UNITS.iter().rev() {
            if bytes.is_multiple_of(mult) {
                return write!(f, "{}{}", bytes / mult, char::from(unit));
            }
        }
        write!(f, "{bytes}")
    }
}

impl FromStr for ByteSize {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = |reason| ParseError::new(s, reason);
        let t = s.trim();
        let num_len = t
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(t.len());
        let (number, suffix) = t.split_at(num_len);
        let mult = unit_multiplier(suffix.trim_start()).ok_or(err(Reason::Syntax(EXPECTED)))?;

        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let int_ok = !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit());
        let frac_ok = frac.bytes().all(|b| b.is_ascii_digit()) && frac.len() <= MAX_FRACTION_DIGITS;
        let dotted = number.contains('.');
        if !int_ok || !frac_ok || (dotted && frac.is_empty()) || (dotted && mult == 1) {
            return Err(err(Reason::Syntax(EXPECTED)));
        }

        // bytes = (int + frac / 10^d) * mult, computed exactly in u128 and
        // rounded down.
        let overflow = || err(Reason::Overflow);
        let int: u128 = int.parse().map_err(|_| overflow())?;
        let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| overflow())?);
        let frac: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| overflow())?
        };
        let scaled = int
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac))
            .and_then(|v| v.checked_mul(u128::from(mult)))
            .ok_or_else(overflow)?;
        let bytes = u64::try_from(scaled / scale).map_err(|_| overflow())?;
        ByteSize::new(bytes).ok_or(err(Reason::Zero))
    }
}

impl Amount for ByteSize {
    fn parse_amount(s: &str) -> Result<Self, ParseError> {
        s.parse()
    }
}

/// The multiplier of a unit suffix (`""`, `"B"`, `"K"`, `"KiB"`, `"kb"`...).
fn unit_multiplier(suffix: &str) -> Option<u64> {
    let b = suffix.as_bytes();
    let (first, rest) = match b.split_first() {
        None => return Some(1),
        Some((f, r)) => (f.to_ascii_uppercase(), r),
    };
    if first == b'B' && rest.is_empty() {
        return Some(1);
    }
    let mult = UNITS.iter().find(|(u, _)| *u == first)?.1;
    match rest {
        [] | [b'B' | b'b'] | [b'i'] | [b'i', b'B' | b'b'] => Some(mult),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<u64, Reason> {
        s.parse::<ByteSize>()
            .map(ByteSize::get)
            .map_err(|e| e.reason)
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("1.5G"), Ok(3 << 29));
        assert_eq!(parse("64K"), Ok(64 << 10));
        assert_eq!(parse("2T"), Ok(2 << 40));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4096B"), Ok(4096));
        assert_eq!(parse("64KiB"), Ok(64 << 10));
        assert_eq!(parse("64kb"), Ok(64 << 10));
        assert_eq!(parse(" 8 M "), Ok(8 << 20));
        assert_eq!(parse("0.5K"), Ok(512));
        assert_eq!(parse("1.3K"), Ok(1331)); // rounded down
        assert_eq!(parse("15E"), Ok(15 << 60));
    }

    #[test]
    fn refused_forms() {
        assert_eq!(parse("0"), Err(Reason::Zero));
        assert_eq!(parse("0M"), Err(Reason::Zero));
        assert_eq!(parse("0.0001K"), Err(Reason::Zero));
        assert_eq!(parse("16E"), Err(Reason::Overflow));
        assert_eq!(parse("18446744073709551616"), Err(Reason::Overflow));
        assert_eq!(
            parse("99999999999999999999999999999999999999999999K"),
            Err(Reason::Overflow)
        );
        for bad in [
            "", "M", "12Q", "1.5", "1.G", ".5G", "1..5G", "-1M", "1 2M", "5MM", "5Mx", "5 iB",
            "nan",
        ] {
            assert!(
                matches!(parse(bad), Err(Reason::Syntax(_))),
                "{bad:?} -> {:?}",
                parse(bad)
            );
        }
        let e = "12Q".parse::<ByteSize>().unwrap_err();
        assert!(e.to_string().contains("\"12Q\""), "{e}");
    }

    #[test]
    fn display() {
        assert_eq!(ByteSize::mib(512).unwrap().to_string(), "512M");
        assert_eq!(ByteSize::new(1000).unwrap().to_string(), "1000");
        assert_eq!(ByteSize::new(1 << 60).unwrap().to_string(), "1E");
        assert_eq!(ByteSize::kib(1).unwrap().to_string(), "1K");
        assert_eq!(ByteSize::gib(u64::MAX), None);
        assert_eq!(ByteSize::new(0), None);
    }

    proptest! {
        #[test]
        fn display_round_trips(bytes in 1u64..) {
            let s = ByteSize::new(bytes).unwrap();
            prop_assert_eq!(s.to_string().parse::<ByteSize>(), Ok(s));
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<ByteSize>();
        }
    }
}
