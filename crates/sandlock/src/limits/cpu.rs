//! `max_cpu` without a `cpu` cgroup: sandlock samples the CPU time of
//! every process of the sandbox and stops them all (`SIGSTOP`, by pidfd,
//! process by process: a task that called `setsid()` or `setpgid()` is
//! stopped like the others) when the sandbox has used more than its share,
//! then continues them (`SIGCONT`) once the average is back under it.
//!
//! The share is a budget in CPU time that fills at `PERCENT` of one CPU
//! per second of wall time and holds at most a fifth of a second's worth:
//! over any second or so, the sandbox gets about `PERCENT` of one CPU.
//!
//! Time is read from `/proc/PID/stat`: each process's own CPU time, and
//! that of the children it reaped (so that a process that lived between
//! two samples is counted when its parent reaps it). When a process
//! vanishes, what was already counted of it (its own time and its reaped
//! children's) is taken off, since its parent's reaped-children time now
//! includes it. Only orphans reaped by sandlock itself (no PID namespace)
//! lose the time of their last sample period.
//!
//! A task the sandbox continues with `SIGCONT` while it is stopped gains
//! nothing: its CPU time is sampled like any other, so the sandbox is
//! stopped longer, and it is stopped again at the next sample.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::supervise::procstat::CLOCK_TICKS;
use crate::supervise::tasks::Member;

/// How often the monitor samples while the sandbox runs.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// The budget's size, in seconds of the share.
const BURST_SECONDS: f64 = 0.2;

/// The throttle of one sandbox.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// The share, as a fraction of one CPU.
    share: f64,
    state: std::sync::Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Last sample of each process: (start time, own ticks, children's
    /// ticks, adopted by sandlock).
    seen: HashMap<i32, (u64, u64, u64, bool)>,
    /// The budget, in ticks (negative: owed).
    budget: f64,
    last: Instant,
    stopped: bool,
}

impl Throttle {
    /// A throttle to `percent` of one CPU.
    pub(crate) fn new(percent: u32) -> Throttle {
        let share = f64::from(percent.clamp(1, 100)) / 100.0;
        Throttle {
            share,
            state: std::sync::Mutex::new(State {
                seen: HashMap::new(),
                budget: share * BURST_SECONDS * CLOCK_TICKS as f64,
                last: Instant::now(),
                stopped: false,
            }),
        }
    }

    /// One sample of the sandbox's processes (`own`: sandlock's pid, the
    /// parent of adopted orphans). Stops or continues them; returns how
    /// long to wait before the next sample.
    pub(crate) fn tick(&self, members: &[Member], own: i32) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let dt = now.duration_since(s.last).as_secs_f64();
        s.last = now;
        let mut used: i64 = 0;
        let mut next: HashMap<i32, (u64, u64, u64, bool)> = HashMap::new();
        for m in members.iter().filter(|m| !m.init) {
            let (own_t, kids) = (m.stat.cpu, m.stat.children_cpu);
            let before = s.seen.get(&m.pid).filter(|p| p.0 == m.stat.start);
            let (o, k) = before.map_or((0, 0), |p| (p.1, p.2));
            used += own_t.saturating_sub(o) as i64 + kids.saturating_sub(k) as i64;
            next.insert(m.pid, (m.stat.start, own_t, kids, m.stat.ppid == own));
        }
        for (pid, p) in &s.seen {
            let gone = next.get(pid).is_none_or(|n| n.0 != p.0);
            if gone && !p.3 {
                // Its parent's reaped-children time now counts it whole.
                used -= (p.1 + p.2) as i64;
            }
        }
        s.seen = next;
        let capacity = self.share * BURST_SECONDS * CLOCK_TICKS as f64;
        s.budget =
            (s.budget + self.share * dt * CLOCK_TICKS as f64 - used.max(0) as f64).min(capacity);
        if s.budget < 0.0 {
            for m in members.iter().filter(|m| !m.init && !m.stat.ended()) {
                // Again at every sample: a task may have been continued.
                if m.stat.state != b'T' {
                    let _ = rustix::process::pidfd_send_signal(&*m.pidfd, Signal::STOP);
                }
            }
            s.stopped = true;
            let owed = -s.budget / (self.share * CLOCK_TICKS as f64);
            Duration::from_secs_f64(owed.clamp(0.001, TICK.as_secs_f64()))
        } else {
            if s.stopped {
                for m in members.iter().filter(|m| !m.init && !m.stat.ended()) {
                    let _ = rustix::process::pidfd_send_signal(&*m.pidfd, Signal::CONT);
                }
                s.stopped = false;
            }
            TICK
        }
    }
}
