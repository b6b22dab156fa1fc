//! `max_processes` held by the supervisor: the fallback where neither
//! `RLIMIT_NPROC` in a user namespace nor a `pids` cgroup is available.
//!
//! `fork`, `vfork` and `clone` (threads too; `clone3` is answered
//! `ENOSYS` by the filter, so that libc falls back to `clone`) are sent to
//! the supervisor, which counts the sandbox's tasks (threads, and zombies
//! until reaped) and answers `EAGAIN` when one more would pass the limit.
//!
//! Concurrent forks race the count: the supervisor answers one call at a
//! time, but a call it let through creates its task a moment later, after
//! the next call may have been counted. So each call let through is a
//! **pending grant**, counted on top of the tasks found in `/proc` until
//! the task that made it is known to be out of the call: it made another
//! intercepted call (its clone returned), it is blocked in another system
//! call (`/proc/TID/syscall`), it is gone, or a second has passed. A grant
//! whose task already appeared is then counted twice for a moment, which
//! errs on the side of the limit.

use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, Resource, Rlimit};

use super::Runtime;
use crate::supervise::Tasks;

/// How long a grant may stay pending.
const PENDING: Duration = Duration::from_secs(1);

/// The supervisor's count of the sandbox's tasks.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    pending: std::sync::Mutex<Vec<Grant>>,
}

#[derive(Debug)]
struct Grant {
    tid: i32,
    at: Instant,
}

impl Counter {
    /// Judges a `fork`/`vfork`/`clone` by thread `tid`: `Err(EAGAIN)` when
    /// one more task would pass the live limit.
    pub(crate) fn judge(&self, rt: &Runtime, tid: i32) -> Result<(), Errno> {
        let Some(limit) = rt.live_processes() else {
            return Ok(());
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|g| g.tid != tid && g.at.elapsed() < PENDING && in_fork(g.tid));
        rt.tasks.reap_adopted();
        let count = rt.tasks.count_tasks() + pending.len() as u64;
        if count >= limit {
            return Err(Errno::AGAIN);
        }
        pending.push(Grant {
            tid,
            at: Instant::now(),
        });
        Ok(())
    }
}

/// Whether thread `tid` may still be inside a process-creating call:
/// running (unknown), or blocked in one of them.
fn in_fork(tid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tid}/syscall")) else {
        return false;
    };
    let first = text.split_whitespace().next().unwrap_or("");
    match first.parse::<i64>() {
        Ok(nr) => ["clone", "fork", "vfork"].iter().any(|n| {
            sandlock_bpf::Arch::native()
                .and_then(|a| a.syscall_nr(n))
                .is_some_and(|x| i64::from(x) == nr)
        }),
        // "running", or a kernel without the file's details.
        Err(_) => true,
    }
}

/// Lowers `RLIMIT_NPROC` (soft and hard) of every process of the sandbox
/// to `n` (the policy callback restricted `max_processes`). New processes
/// inherit it from their parent.
pub(crate) fn lower_rlimits(tasks: &Tasks, n: u64) {
    for m in tasks.scan() {
        if m.init || m.stat.ended() {
            continue;
        }
        if let Some(pid) = Pid::from_raw(m.pid) {
            let lim = Rlimit {
                current: Some(n),
                maximum: Some(n),
            };
            let _ = rustix::process::prlimit(Some(pid), Resource::Nproc, lim);
        }
    }
}
