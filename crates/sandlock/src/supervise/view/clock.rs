//! The sandbox's clock under `time_start`.
//!
//! **Sandbox realtime = `CLOCK_MONOTONIC` + a constant offset**, chosen when
//! the sandbox starts so that realtime then equals `time_start`. The same
//! definition serves every path: the vDSO stubs (which read the vDSO's
//! MONOTONIC clock), the supervisor's answers to the system calls, and the
//! conversion of absolute deadlines, which become MONOTONIC deadlines
//! exactly (`deadline - offset`). Consequences, documented in
//! `docs/determinism.md`: the sandbox's realtime is not stepped when the
//! host's clock is set, and does not advance while the host is suspended
//! (MONOTONIC does not).
//!
//! `CLOCK_REALTIME_COARSE` is `CLOCK_MONOTONIC_COARSE` + offset, `CLOCK_TAI`
//! is realtime + the host's TAI offset read at start (37 s when NTP set it).

use rustix::time::{ClockId, Timespec};
use sandlock_policy::Timestamp;

use crate::vdso::StubClock;

/// Nanoseconds per second.
const NS: i64 = 1_000_000_000;

/// A time as seconds and nanoseconds, normalized: `0 <= nsec < 10⁹`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts {
    /// Seconds (negative before the epoch).
    pub(crate) sec: i64,
    /// Nanoseconds, `0..10⁹`.
    pub(crate) nsec: i64,
}

impl Ts {
    /// Zero.
    pub(crate) const ZERO: Ts = Ts { sec: 0, nsec: 0 };

    /// A timespec as a program passes it: `None` unless `0 <= nsec < 10⁹`.
    pub(crate) fn valid(sec: i64, nsec: i64) -> Option<Ts> {
        (0..NS).contains(&nsec).then_some(Ts { sec, nsec })
    }

    /// `self + other`, saturating.
    pub(crate) fn add(self, other: Ts) -> Ts {
        let mut nsec = self.nsec + other.nsec;
        let mut sec = self.sec.saturating_add(other.sec);
        if nsec >= NS {
            nsec -= NS;
            sec = sec.saturating_add(1);
        }
        Ts { sec, nsec }
    }

    /// `self - other`, saturating.
    pub(crate) fn sub(self, other: Ts) -> Ts {
        let mut nsec = self.nsec - other.nsec;
        let mut sec = self.sec.saturating_sub(other.sec);
        if nsec < 0 {
            nsec += NS;
            sec = sec.saturating_sub(1);
        }
        Ts { sec, nsec }
    }

    /// A `struct timespec` (x86-64/aarch64 layout: two 64-bit words).
    pub(crate) fn timespec_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.sec.to_ne_bytes());
        b[8..].copy_from_slice(&self.nsec.to_ne_bytes());
        b
    }

    /// A `struct timeval` (microseconds, truncated).
    pub(crate) fn timeval_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.sec.to_ne_bytes());
        b[8..].copy_from_slice(&(self.nsec / 1000).to_ne_bytes());
        b
    }

    /// The two words of a `struct timespec` read from a program.
    pub(crate) fn words(b: &[u8; 16]) -> (i64, i64) {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[..8]);
        let sec = i64::from_ne_bytes(w);
        w.copy_from_slice(&b[8..]);
        (sec, i64::from_ne_bytes(w))
    }

    fn of(t: Timespec) -> Ts {
        Ts {
            sec: t.tv_sec,
            nsec: t.tv_nsec,
        }
    }
}

/// Which of the shifted clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shifted {
    /// `CLOCK_REALTIME` (and `CLOCK_REALTIME_ALARM`).
    Realtime,
    /// `CLOCK_REALTIME_COARSE`.
    Coarse,
    /// `CLOCK_TAI`.
    Tai,
}

/// `CLOCK_REALTIME`.
pub(crate) const CLOCK_REALTIME: u32 = 0;
/// `CLOCK_MONOTONIC`.
pub(crate) const CLOCK_MONOTONIC: u32 = 1;
/// `CLOCK_REALTIME_COARSE`.
pub(crate) const CLOCK_REALTIME_COARSE: u32 = 5;
/// `CLOCK_REALTIME_ALARM`.
pub(crate) const CLOCK_REALTIME_ALARM: u32 = 8;
/// `CLOCK_TAI`.
pub(crate) const CLOCK_TAI: u32 = 11;

impl Shifted {
    /// The shifted clock a clock id names (`clockid_t`, an `int`).
    pub(crate) fn of(clock: u64) -> Option<Shifted> {
        match clock as u32 {
            CLOCK_REALTIME | CLOCK_REALTIME_ALARM => Some(Shifted::Realtime),
            CLOCK_REALTIME_COARSE => Some(Shifted::Coarse),
            CLOCK_TAI => Some(Shifted::Tai),
            _ => None,
        }
    }
}

/// The sandbox's clock: realtime = MONOTONIC + `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SandboxClock {
    off: Ts,
    tai: i64,
}

impl SandboxClock {
    /// The clock whose realtime is `start` now.
    pub(crate) fn starting(start: Timestamp) -> SandboxClock {
        let mono = Ts::of(rustix::time::clock_gettime(ClockId::Monotonic));
        let real = Ts::of(rustix::time::clock_gettime(ClockId::Realtime));
        let tai = rustix::time::clock_gettime_dynamic(rustix::time::DynamicClockId::Tai)
            .map(Ts::of)
            .unwrap_or(real);
        let tai_sec = tai.sub(real);
        // Whole seconds: the kernel's TAI offset is an integer.
        let tai_sec = tai_sec.sec + i64::from(tai_sec.nsec >= NS / 2);
        SandboxClock::with(start, mono, tai_sec)
    }

    /// The clock whose realtime is `start` when MONOTONIC reads `mono`.
    pub(crate) fn with(start: Timestamp, mono: Ts, tai: i64) -> SandboxClock {
        let start = Ts {
            sec: start.unix_seconds(),
            nsec: i64::from(start.subsec_nanos()),
        };
        SandboxClock {
            off: start.sub(mono),
            tai,
        }
    }

    /// The offset as the vDSO stubs hold it.
    pub(crate) fn stub(&self) -> StubClock {
        StubClock {
            off_sec: self.off.sec,
            off_nsec: self.off.nsec,
            tai_sec: self.tai,
        }
    }

    /// What `which` reads when MONOTONIC (MONOTONIC_COARSE for
    /// [`Shifted::Coarse`]) reads `mono`.
    pub(crate) fn at(&self, which: Shifted, mono: Ts) -> Ts {
        let t = mono.add(self.off);
        match which {
            Shifted::Tai => t.add(Ts {
                sec: self.tai,
                nsec: 0,
            }),
            _ => t,
        }
    }

    /// What `which` reads now.
    pub(crate) fn now(&self, which: Shifted) -> Ts {
        let id = match which {
            Shifted::Coarse => ClockId::MonotonicCoarse,
            _ => ClockId::Monotonic,
        };
        self.at(which, Ts::of(rustix::time::clock_gettime(id)))
    }

    /// The MONOTONIC instant at which `which` reads `deadline` (never
    /// before MONOTONIC's zero: a deadline that early has passed).
    pub(crate) fn monotonic_deadline(&self, which: Shifted, deadline: Ts) -> Ts {
        let mut t = deadline.sub(self.off);
        if which == Shifted::Tai {
            t = t.sub(Ts {
                sec: self.tai,
                nsec: 0,
            });
        }
        if t.sec < 0 { Ts::ZERO } else { t }
    }

    /// How long from now until `which` reads `deadline` (at least 1 ns, so
    /// that a timer armed with it still fires).
    pub(crate) fn remaining(&self, which: Shifted, deadline: Ts) -> Ts {
        let left = deadline.sub(self.now(which));
        if left.sec < 0 || left == Ts::ZERO {
            Ts { sec: 0, nsec: 1 }
        } else {
            left
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(sec: i64, nsec: i64) -> Ts {
        Ts { sec, nsec }
    }

    #[test]
    fn arithmetic_normalizes_and_saturates() {
        assert_eq!(
            ts(1, 600_000_000).add(ts(2, 500_000_000)),
            ts(4, 100_000_000)
        );
        assert_eq!(ts(1, 100).sub(ts(0, 200)), ts(0, 999_999_900));
        assert_eq!(ts(0, 0).sub(ts(1, 1)), ts(-2, 999_999_999));
        assert_eq!(ts(i64::MAX, 999_999_999).add(ts(1, 1)).sec, i64::MAX);
        assert_eq!(Ts::valid(1, NS), None);
        assert_eq!(Ts::valid(1, -1), None);
        assert_eq!(Ts::valid(-5, 3), Some(ts(-5, 3)));
    }

    #[test]
    fn realtime_starts_at_time_start_and_follows_monotonic() {
        let start = Timestamp::from_unix(961_027_200, 250_000_000).unwrap(); // 2000-06-15
        let clock = SandboxClock::with(start, ts(1000, 900_000_000), 37);
        assert_eq!(
            clock.at(Shifted::Realtime, ts(1000, 900_000_000)),
            ts(961_027_200, 250_000_000)
        );
        assert_eq!(
            clock.at(Shifted::Realtime, ts(1001, 900_000_001)),
            ts(961_027_201, 250_000_001)
        );
        assert_eq!(
            clock.at(Shifted::Tai, ts(1000, 900_000_000)),
            ts(961_027_237, 250_000_000)
        );
        // A deadline converts back exactly.
        let d = ts(961_027_260, 0);
        let m = clock.monotonic_deadline(Shifted::Realtime, d);
        assert_eq!(clock.at(Shifted::Realtime, m), d);
        let m = clock.monotonic_deadline(Shifted::Tai, d);
        assert_eq!(clock.at(Shifted::Tai, m), d);
        // A deadline before MONOTONIC's zero has passed.
        assert_eq!(
            clock.monotonic_deadline(Shifted::Realtime, ts(5, 0)),
            Ts::ZERO
        );
    }

    #[test]
    fn stub_offset_matches() {
        let start = Timestamp::from_unix(-10, 0).unwrap();
        let clock = SandboxClock::with(start, ts(3, 500_000_000), 0);
        let s = clock.stub();
        assert_eq!((s.off_sec, s.off_nsec), (-14, 500_000_000));
        assert_eq!(clock.at(Shifted::Realtime, ts(3, 500_000_000)), ts(-10, 0));
    }

    #[test]
    fn now_is_near_time_start() {
        let start = Timestamp::from_unix(961_027_200, 0).unwrap();
        let clock = SandboxClock::starting(start);
        let now = clock.now(Shifted::Realtime);
        assert!(now.sec >= 961_027_200 && now.sec < 961_027_200 + 60);
        assert!(clock.remaining(Shifted::Realtime, ts(0, 0)) == ts(0, 1));
    }
}
