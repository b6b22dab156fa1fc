//! One confined worker per CPU.
//!
//! A path call goes from the task to the supervisor's receive thread (woken
//! on the task's own CPU: `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`) and from
//! there to a confined worker, which answers the task. When that worker
//! sleeps on another CPU, each hop is a cross-CPU wake-up, which on a VM
//! costs tens of microseconds (an IPI to a halted vCPU). So the receive
//! thread hands the job to the worker **of the CPU it runs on**, pinned
//! there: the hand-over and the task's wake-up stay on one CPU (measured
//! with `cargo xtask bench --scenario open-deny`: about 50 µs per
//! intercepted open with one shared worker on this 2-vCPU VM, about 17 µs
//! with the worker on the task's CPU).
//!
//! Workers are started on first use of their CPU; a CPU whose worker
//! cannot be started (or beyond [`MAX_CPUS`]) uses the first worker,
//! started with the feature and never pinned unless the sandbox is.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};

use super::confined::Worker;
use crate::error::Error;

/// CPUs that get a worker of their own.
const MAX_CPUS: usize = 64;

/// The confined workers of one sandbox.
pub(crate) struct PerCpu {
    first: Worker,
    slots: Box<[OnceLock<Worker>]>,
    ruleset: Option<Arc<OwnedFd>>,
    /// Serialises the start of a CPU's worker.
    starting: Mutex<()>,
}

impl PerCpu {
    /// The first worker, confined by `ruleset`; `pinned`: the sandbox runs
    /// on that one CPU only (every job then goes to the first worker,
    /// pinned there).
    pub(crate) fn start(
        ruleset: Option<Arc<OwnedFd>>,
        pinned: Option<usize>,
    ) -> Result<PerCpu, Error> {
        let first = Worker::confined("sandlock-fs", ruleset.clone())?;
        let cpus = match pinned {
            Some(cpu) => {
                first.pin(cpu);
                0
            }
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_CPUS),
        };
        Ok(PerCpu {
            first,
            slots: (0..cpus).map(|_| OnceLock::new()).collect(),
            ruleset,
            starting: Mutex::new(()),
        })
    }

    /// The worker of the calling thread's CPU.
    pub(crate) fn here(&self) -> &Worker {
        if self.slots.len() < 2 {
            return &self.first;
        }
        let cpu = rustix::thread::sched_getcpu();
        let Some(slot) = self.slots.get(cpu) else {
            return &self.first;
        };
        if let Some(w) = slot.get() {
            return w;
        }
        let _guard = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        if slot.get().is_none()
            && let Ok(w) = Worker::confined("sandlock-fs", self.ruleset.clone())
        {
            w.pin(cpu);
            let _ = slot.set(w);
        }
        slot.get().unwrap_or(&self.first)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A job handed over from CPU `c` runs on a worker pinned to `c`.
    #[test]
    fn the_worker_of_each_cpu_runs_there() {
        let pool = PerCpu::start(None, None).unwrap();
        let cpus = pool.slots.len();
        let original = rustix::thread::sched_getaffinity(None).unwrap();
        for cpu in 0..cpus {
            if !original.is_set(cpu) {
                continue;
            }
            let mut one = rustix::thread::CpuSet::new();
            one.set(cpu);
            rustix::thread::sched_setaffinity(None, &one).unwrap();
            let ran_on = pool.here().call(rustix::thread::sched_getcpu).unwrap();
            if cpus > 1 {
                assert_eq!(ran_on, cpu);
            }
        }
        rustix::thread::sched_setaffinity(None, &original).unwrap();
    }

    #[test]
    fn a_pinned_sandbox_uses_one_worker() {
        let pool = PerCpu::start(None, Some(0)).unwrap();
        assert!(std::ptr::eq(pool.here(), &pool.first));
    }
}
