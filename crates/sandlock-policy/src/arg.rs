//! Values a [`PolicyBuilder`](crate::PolicyBuilder) method accepts: already
//! typed, or as text (or a plain number) to validate.
//!
//! A command line hands the builder strings; a library user hands it typed
//! values. Both go through [`Arg`], and both are checked when
//! [`build`](crate::PolicyBuilder::build) runs, with the field named.

use alloc::string::{String, ToString};
use core::net::IpAddr;
use core::num::{NonZeroU16, NonZeroU32, NonZeroU64};
use core::str::FromStr;
use core::time::Duration;

use sandlock_bpf::Errno;

use crate::bytesize::ByteSize;
use crate::cpuset::CpuSet;
use crate::error::{ParseError, Reason};
use crate::limit::{CpuPercent, Limit, parse_u64};
use crate::names::{EnvVar, Hostname};
use crate::net::{Cidr, NetHost};
use crate::path::AbsPath;
use crate::time::Timestamp;

/// A value convertible to `T` with validation.
///
/// Implemented for `T` itself, for text (`&str`, `String`) in `T`'s parse
/// syntax, and for plain numbers where `T` is a positive amount (`0` is an
/// error, never "unlimited").
pub trait Arg<T> {
    /// Converts, or says which value was refused and why.
    fn into_arg(self) -> Result<T, ParseError>;
}

impl<T> Arg<T> for T {
    fn into_arg(self) -> Result<T, ParseError> {
        Ok(self)
    }
}

/// A value already converted (or refused) elsewhere.
impl<T> Arg<T> for Result<T, ParseError> {
    fn into_arg(self) -> Result<T, ParseError> {
        self
    }
}

/// Implements `Arg<T>` for the text types through `T`'s parser.
macro_rules! text_args {
    ($($t:ty => $parse:expr;)*) => {$(
        impl Arg<$t> for &str {
            fn into_arg(self) -> Result<$t, ParseError> {
                $parse(self)
            }
        }
        impl Arg<$t> for String {
            fn into_arg(self) -> Result<$t, ParseError> {
                $parse(self.as_str())
            }
        }
        impl Arg<$t> for &String {
            fn into_arg(self) -> Result<$t, ParseError> {
                $parse(self.as_str())
            }
        }
    )*};
}

text_args! {
    AbsPath => AbsPath::from_str;
    Limit<ByteSize> => Limit::<ByteSize>::from_str;
    Limit<NonZeroU32> => Limit::<NonZeroU32>::from_str;
    Limit<NonZeroU64> => Limit::<NonZeroU64>::from_str;
    Limit<CpuPercent> => Limit::<CpuPercent>::from_str;
    Timestamp => Timestamp::from_str;
    CpuSet => CpuSet::from_str;
    Hostname => Hostname::from_str;
    EnvVar => EnvVar::from_str;
    NetHost => NetHost::from_str;
    Duration => parse_duration;
    Errno => parse_errno;
    NonZeroU32 => crate::limit::parse_nonzero_u32;
    NonZeroU16 => parse_port;
}

/// Implements `Arg<Limit<A>>` for `A` (a typed amount is a limit).
macro_rules! amount_args {
    ($($t:ty),*) => {$(
        impl Arg<Limit<$t>> for $t {
            fn into_arg(self) -> Result<Limit<$t>, ParseError> {
                Ok(Limit::Limited(self))
            }
        }
    )*};
}

amount_args!(ByteSize, NonZeroU32, NonZeroU64, CpuPercent);

/// An error for a plain number.
fn number_error(n: impl ToString, reason: Reason) -> ParseError {
    ParseError::new(n.to_string(), reason)
}

/// Bytes; 0 is an error.
impl Arg<Limit<ByteSize>> for u64 {
    fn into_arg(self) -> Result<Limit<ByteSize>, ParseError> {
        ByteSize::new(self)
            .map(Limit::Limited)
            .ok_or_else(|| number_error(self, Reason::Zero))
    }
}

/// A count; 0 is an error.
impl Arg<Limit<NonZeroU32>> for u32 {
    fn into_arg(self) -> Result<Limit<NonZeroU32>, ParseError> {
        NonZeroU32::new(self)
            .map(Limit::Limited)
            .ok_or_else(|| number_error(self, Reason::Zero))
    }
}

/// A count; 0 is an error.
impl Arg<Limit<NonZeroU64>> for u64 {
    fn into_arg(self) -> Result<Limit<NonZeroU64>, ParseError> {
        NonZeroU64::new(self)
            .map(Limit::Limited)
            .ok_or_else(|| number_error(self, Reason::Zero))
    }
}

/// A percentage of one core; outside `1..=100` is an error.
impl Arg<Limit<CpuPercent>> for u32 {
    fn into_arg(self) -> Result<Limit<CpuPercent>, ParseError> {
        CpuPercent::try_new(u64::from(self)).map(Limit::Limited)
    }
}

/// A count; 0 is an error.
impl Arg<NonZeroU32> for u32 {
    fn into_arg(self) -> Result<NonZeroU32, ParseError> {
        NonZeroU32::new(self).ok_or_else(|| number_error(self, Reason::Zero))
    }
}

/// A TCP port; 0 is an error.
impl Arg<NonZeroU16> for u16 {
    fn into_arg(self) -> Result<NonZeroU16, ParseError> {
        NonZeroU16::new(self).ok_or_else(|| number_error(self, Reason::Zero))
    }
}

/// A raw errno; outside `1..=4095` is an error.
impl Arg<Errno> for i32 {
    fn into_arg(self) -> Result<Errno, ParseError> {
        Errno::new(i64::from(self)).map_err(|_| {
            number_error(
                self,
                if self == 0 {
                    Reason::Zero
                } else {
                    Reason::OutOfRange { min: 1, max: 4095 }
                },
            )
        })
    }
}

/// Whole seconds.
impl Arg<Duration> for u64 {
    fn into_arg(self) -> Result<Duration, ParseError> {
        Ok(Duration::from_secs(self))
    }
}

impl Arg<NetHost> for IpAddr {
    fn into_arg(self) -> Result<NetHost, ParseError> {
        Ok(NetHost::Ip(self))
    }
}

impl Arg<NetHost> for Cidr {
    fn into_arg(self) -> Result<NetHost, ParseError> {
        Ok(NetHost::Net(self))
    }
}

/// Implements `Arg<AbsPath>` for the std path types.
#[cfg(feature = "std")]
macro_rules! path_args {
    ($($t:ty),*) => {$(
        impl Arg<AbsPath> for $t {
            fn into_arg(self) -> Result<AbsPath, ParseError> {
                let p: &std::path::Path = self.as_ref();
                match p.to_str() {
                    Some(s) => AbsPath::new(s),
                    None => Err(ParseError::new(p.to_string_lossy(), Reason::NotUtf8)),
                }
            }
        }
    )*};
}

#[cfg(feature = "std")]
path_args!(&std::path::Path, std::path::PathBuf, &std::path::PathBuf);

/// Parses a TCP port number (`1..=65535`).
fn parse_port(s: &str) -> Result<NonZeroU16, ParseError> {
    let n = parse_u64(s, s.trim(), "a TCP port number")?;
    let n = u16::try_from(n)
        .map_err(|_| ParseError::new(s, Reason::OutOfRange { min: 1, max: 65535 }))?;
    NonZeroU16::new(n).ok_or_else(|| ParseError::new(s, Reason::Zero))
}

/// What a duration looks like, for error messages.
const EXPECTED_DURATION: &str = "a duration such as 30, 1.5s, 500ms or 2m (no unit: seconds)";

/// Parses a duration: a decimal number with an optional unit `ns`, `us`,
/// `ms`, `s`, `m` or `h` (seconds when absent), at most 9 fraction digits,
/// rounded down to a nanosecond.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let err = |r| ParseError::new(s, r);
    let t = s.trim();
    let split = t
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let nanos_per: u128 = match unit.trim_start() {
        "" | "s" => 1_000_000_000,
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(err(Reason::Syntax(EXPECTED_DURATION))),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 9 || number.ends_with('.') {
        return Err(err(Reason::Syntax(EXPECTED_DURATION)));
    }
    let int: u128 = int.parse().map_err(|_| err(Reason::Overflow))?;
    let scale = 10u128.pow(frac.len() as u32);
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err(Reason::Overflow))?
    };
    let nanos = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac))
        .and_then(|v| v.checked_mul(nanos_per))
        .map(|v| v / scale)
        .ok_or_else(|| err(Reason::Overflow))?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| err(Reason::Overflow))?;
    // The remainder is below 10^9.
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Formats a duration so that [`parse_duration`] reads it back exactly:
/// `30s`, `1.5s`, `0.000000001s`.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return alloc::format!("{}s", d.as_secs());
    }
    let frac = alloc::format!("{:09}", d.subsec_nanos());
    alloc::format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
}

/// Parses an errno as a number (`1`) or a known name (`EPERM`).
pub(crate) fn parse_errno(s: &str) -> Result<Errno, ParseError> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i32>() {
            Ok(n) => n.into_arg().map_err(|e| ParseError::new(s, e.reason)),
            Err(_) => Err(ParseError::new(s, Reason::OutOfRange { min: 1, max: 4095 })),
        };
    }
    (1..=4095)
        .filter_map(|v| Errno::new(v).ok())
        .find(|e| e.name().is_some_and(|n| n.eq_ignore_ascii_case(t)))
        .ok_or_else(|| {
            ParseError::new(
                s,
                Reason::Syntax("an errno number (1..=4095) or a known name such as EPERM"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_procs(a: impl Arg<Limit<NonZeroU32>>) -> Result<Limit<NonZeroU32>, ParseError> {
        a.into_arg()
    }

    #[test]
    fn integer_literals_infer() {
        assert!(limit_procs(10).is_ok());
        assert_eq!(limit_procs(0).unwrap_err().reason, Reason::Zero);
        assert_eq!(limit_procs("unlimited"), Ok(Limit::Unlimited));
        assert_eq!(limit_procs(Limit::Unlimited), Ok(Limit::Unlimited));
    }

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration(s).map_err(|e| e.reason);
        assert_eq!(d("30"), Ok(Duration::from_secs(30)));
        assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(d("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(d("0.000000001"), Ok(Duration::from_nanos(1)));
        assert_eq!(d("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "1.",
            ".5",
            "1.5.5",
            "5 parsecs",
            "-1",
            "1.0000000001",
        ] {
            assert!(matches!(d(bad), Err(Reason::Syntax(_))), "{bad:?}");
        }
        assert_eq!(d("99999999999999999999999h"), Err(Reason::Overflow));
        for x in [
            Duration::from_secs(5),
            Duration::from_millis(1500),
            Duration::new(3, 1),
            Duration::new(u64::MAX, 999_999_999),
        ] {
            assert_eq!(parse_duration(&format_duration(x)), Ok(x));
        }
    }

    #[test]
    fn errnos() {
        assert_eq!(parse_errno("EPERM"), Ok(Errno::EPERM));
        assert_eq!(parse_errno("enosys"), Ok(Errno::ENOSYS));
        assert_eq!(parse_errno("38"), Ok(Errno::ENOSYS));
        assert_eq!(parse_errno("0").unwrap_err().reason, Reason::Zero);
        assert!(matches!(
            parse_errno("4096").unwrap_err().reason,
            Reason::OutOfRange { .. }
        ));
        assert!(matches!(
            parse_errno("99999999999").unwrap_err().reason,
            Reason::OutOfRange { .. }
        ));
        assert!(matches!(
            parse_errno("EWHATEVER").unwrap_err().reason,
            Reason::Syntax(_)
        ));
        assert_eq!(
            0i32.into_arg().map_err(|e| e.reason),
            Err::<Errno, _>(Reason::Zero)
        );
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("80").map(NonZeroU16::get), Ok(80));
        assert_eq!(parse_port("0").unwrap_err().reason, Reason::Zero);
        assert!(matches!(
            parse_port("65536").unwrap_err().reason,
            Reason::OutOfRange { .. }
        ));
        assert_eq!(
            0u16.into_arg().map_err(|e| e.reason),
            Err::<NonZeroU16, _>(Reason::Zero)
        );
    }
}
