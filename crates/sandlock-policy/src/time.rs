//! A UTC instant, parsed from ISO 8601 (`2000-06-15T00:00:00`).

use core::fmt;
use core::str::FromStr;

use crate::error::{ParseError, Reason};

/// What a timestamp looks like, for error messages.
const EXPECTED: &str = "an ISO 8601 date-time such as 2000-06-15T00:00:00, with optional fraction and Z or +hh:mm offset";
/// Message for well-formed text that names no real instant.
const EXPECTED_VALID: &str = "a valid calendar date and time";

/// Seconds from the Unix epoch to 0000-01-01T00:00:00Z.
const MIN_SECS: i64 = -62_167_219_200;
/// Seconds from the Unix epoch to 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;

/// An instant in UTC, with nanosecond precision, between the years 0000 and 9999.
///
/// Parsed from ISO 8601 / RFC 3339 text: a date `YYYY-MM-DD`, optionally
/// followed by `T` (or a space) and `hh:mm` or `hh:mm:ss` with an optional
/// fraction of up to 9 digits, and an optional offset `Z`, `+hh:mm`, `-hh:mm`,
/// `+hhmm` or `+hh`. **Text without an offset is read as UTC** — the sandbox
/// has no business depending on the host's time zone. Leap seconds (`:60`)
/// are refused. `Display` prints `YYYY-MM-DDThh:mm:ss[.fraction]Z`, which
/// parses back to the same instant.
///
/// ```
/// use sandlock_policy::Timestamp;
/// let t: Timestamp = "2000-06-15T00:00:00".parse().unwrap();
/// assert_eq!(t.unix_seconds(), 961_027_200);
/// let same: Timestamp = "2000-06-15T02:00:00+02:00".parse().unwrap();
/// assert_eq!(t, same);
/// assert_eq!(t.to_string(), "2000-06-15T00:00:00Z");
/// assert!("2001-02-29T00:00:00".parse::<Timestamp>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// The instant `secs` seconds and `nanos` nanoseconds after the Unix
    /// epoch (`None` if `nanos` is not below 10⁹ or the year is not 0000..=9999).
    pub const fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        if nanos >= 1_000_000_000 || secs < MIN_SECS || secs > MAX_SECS {
            None
        } else {
            Some(Timestamp { secs, nanos })
        }
    }

    /// Whole seconds since the Unix epoch (negative before 1970).
    pub const fn unix_seconds(self) -> i64 {
        self.secs
    }

    /// The nanoseconds after [`unix_seconds`](Timestamp::unix_seconds), `0..10⁹`.
    pub const fn subsec_nanos(self) -> u32 {
        self.nanos
    }

    /// The instant as a `SystemTime`.
    #[cfg(feature = "std")]
    pub fn to_system_time(self) -> std::time::SystemTime {
        use std::time::{Duration, UNIX_EPOCH};
        let whole = Duration::from_secs(self.secs.unsigned_abs());
        let base = if self.secs >= 0 {
            UNIX_EPOCH + whole
        } else {
            UNIX_EPOCH - whole
        };
        base + Duration::from_nanos(u64::from(self.nanos))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let mut frac = self.nanos;
            let mut width = 9;
            while frac.is_multiple_of(10) {
                frac /= 10;
                width -= 1;
            }
            write!(f, ".{frac:0width$}")?;
        }
        f.write_str("Z")
    }
}

impl FromStr for Timestamp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let shape = || ParseError::new(s, Reason::Syntax(EXPECTED));
        let invalid = || ParseError::new(s, Reason::Syntax(EXPECTED_VALID));
        let mut c = Cursor(s.trim().as_bytes());

        let year = c.digits(4).ok_or_else(shape)?;
        c.expect(b'-').ok_or_else(shape)?;
        let month = c.digits(2).ok_or_else(shape)?;
        c.expect(b'-').ok_or_else(shape)?;
        let day = c.digits(2).ok_or_else(shape)?;

        let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
        let mut offset_secs = 0i64;
        if !c.0.is_empty() {
            c.one_of(b"Tt ").ok_or_else(shape)?;
            hour = c.digits(2).ok_or_else(shape)?;
            c.expect(b':').ok_or_else(shape)?;
            minute = c.digits(2).ok_or_else(shape)?;
            if c.expect(b':').is_some() {
                second = c.digits(2).ok_or_else(shape)?;
                if c.one_of(b".,").is_some() {
                    nanos = c.fraction().ok_or_else(shape)?;
                }
            }
            match c.0.first() {
                None => {}
                Some(b'Z' | b'z') => c.0 = &c.0[1..],
                Some(&sign @ (b'+' | b'-')) => {
                    c.0 = &c.0[1..];
                    let oh = c.digits(2).ok_or_else(shape)?;
                    let _ = c.expect(b':');
                    let om = if c.0.is_empty() {
                        0
                    } else {
                        c.digits(2).ok_or_else(shape)?
                    };
                    if oh > 23 || om > 59 {
                        return Err(invalid());
                    }
                    let off = i64::from(oh * 3600 + om * 60);
                    offset_secs = if sign == b'+' { off } else { -off };
                }
                Some(_) => return Err(shape()),
            }
            if !c.0.is_empty() {
                return Err(shape());
            }
        }

        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(invalid());
        }
        let days = days_from_civil(i64::from(year), month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
        Timestamp::from_unix(secs, nanos)
            .ok_or_else(|| ParseError::new(s, Reason::OutOfRange { min: 0, max: 9999 }))
    }
}

/// A byte cursor for the parser.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = rest;
        Some(
            head.iter()
                .fold(0, |acc, &b| acc * 10 + u32::from(b - b'0')),
        )
    }

    /// Consumes `b` if it is next.
    fn expect(&mut self, b: u8) -> Option<()> {
        self.one_of(&[b]).map(|_| ())
    }

    /// Consumes the next byte if it is one of `set`.
    fn one_of(&mut self, set: &[u8]) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        if set.contains(&first) {
            self.0 = rest;
            Some(first)
        } else {
            None
        }
    }

    /// 1..=9 fraction digits as nanoseconds.
    fn fraction(&mut self) -> Option<u32> {
        let n = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let v = self.digits(n)?;
        Some(v * 10u32.pow(9 - n as u32))
    }
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Days in `month` (1..=12) of `year`.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
///
/// Counts in 400-year eras (146 097 days each) of years starting on
/// 1 March, so the leap day is the last day of its year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // 0..=399
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (the inverse
/// of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Day in 1..=31 and month in 1..=12 by construction.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    fn secs(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().unix_seconds()
    }

    #[test]
    fn known_instants() {
        assert_eq!(secs("1970-01-01T00:00:00"), 0);
        assert_eq!(secs("1970-01-01"), 0);
        assert_eq!(secs("2000-06-15T00:00:00Z"), 961_027_200);
        assert_eq!(secs("2000-06-15t00:00:00z"), 961_027_200);
        assert_eq!(secs("2000-06-15 00:00"), 961_027_200);
        assert_eq!(secs("2000-06-14T19:00:00-05:00"), 961_027_200);
        assert_eq!(secs("2000-06-15T05:30:00+0530"), 961_027_200);
        assert_eq!(secs("2000-06-15T01:00:00+01"), 961_027_200);
        assert_eq!(secs("2038-01-19T03:14:08Z"), 1 << 31);
        assert_eq!(secs("1969-12-31T23:59:59Z"), -1);
        assert_eq!(secs("2000-02-29T00:00:00Z"), 951_782_400);
        assert_eq!(secs("0000-01-01T00:00:00Z"), MIN_SECS);
        assert_eq!(secs("9999-12-31T23:59:59Z"), MAX_SECS);
        let t: Timestamp = "2000-01-01T00:00:00.25Z".parse().unwrap();
        assert_eq!(
            (t.unix_seconds(), t.subsec_nanos()),
            (946_684_800, 250_000_000)
        );
        assert_eq!(t.to_string(), "2000-01-01T00:00:00.25Z");
        let t: Timestamp = "2000-01-01T00:00:00,000000001".parse().unwrap();
        assert_eq!(t.subsec_nanos(), 1);
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "2000",
            "2000-6-15",
            "2000-06-15T",
            "2000-06-15T1:00",
            "2000-06-15T00:00:00Q",
            "2000-06-15T00:00:00.",
            "2000-06-15T00:00:00.1234567890",
            "2000-06-15T00:00:00+5",
            "2000-06-15T00:00:00 Z",
            "2000-06-15T00:00:00+01:00:00",
            "+2000-06-15",
            "２０００-06-15",
        ] {
            assert!(
                matches!(
                    bad.parse::<Timestamp>(),
                    Err(ParseError {
                        reason: Reason::Syntax(_),
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        for invalid in [
            "2001-02-29",
            "2000-13-01",
            "2000-00-10",
            "2000-04-31",
            "2000-01-00",
            "2000-01-01T24:00",
            "2000-01-01T00:60",
            "2000-01-01T23:59:60",
            "2000-01-01T00:00+24:00",
        ] {
            let e = invalid.parse::<Timestamp>().unwrap_err();
            assert_eq!(e.reason, Reason::Syntax(EXPECTED_VALID), "{invalid:?}");
            assert_eq!(e.value, invalid);
        }
        assert!(matches!(
            "0000-01-01T00:00:00+01:00"
                .parse::<Timestamp>()
                .unwrap_err()
                .reason,
            Reason::OutOfRange { .. }
        ));
        assert!(matches!(
            "9999-12-31T23:59:59-01:00"
                .parse::<Timestamp>()
                .unwrap_err()
                .reason,
            Reason::OutOfRange { .. }
        ));
    }

    #[cfg(feature = "std")]
    #[test]
    fn system_time() {
        use std::time::{Duration, UNIX_EPOCH};
        let t: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(t.to_system_time(), UNIX_EPOCH - Duration::from_millis(500));
    }

    proptest! {
        #[test]
        fn display_round_trips(secs in MIN_SECS..=MAX_SECS, nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000]) {
            let t = Timestamp::from_unix(secs, nanos).unwrap();
            prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }

        #[test]
        fn days_are_inverse(days in -800_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn parse_never_panics(s in "[0-9T:.Z+ -]{0,40}") {
            let _ = s.parse::<Timestamp>();
        }
    }
}
