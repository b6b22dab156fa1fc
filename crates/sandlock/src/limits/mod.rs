//! Resource limits of a sandbox: `max_processes` (`-P`), `max_memory`
//! (`-m`), `max_cpu` (`-c`), and the mechanisms that hold them on this
//! machine ([`Mechanisms`]). `docs/resources.md` explains and defends the
//! choices.
//!
//! - `cgroup`: per-sandbox cgroups (root, or a delegated cgroup);
//! - `memory`: the supervisor's accounting of the calls that grow memory;
//! - `processes`: the supervisor's count of tasks at each fork (the
//!   fallback where the kernel cannot hold `-P`);
//! - `cpu`: throttling by stopping and continuing every task;
//! - `monitor`: the thread that samples, throttles and ends the sandbox
//!   when a limit only a kill can hold is passed.

pub(crate) mod cgroup;
pub(crate) mod cpu;
mod feature;
pub(crate) mod memory;
pub(crate) mod monitor;
pub(crate) mod processes;

use std::fmt;
use std::sync::Mutex;

use sandlock_policy::{Limit, LivePolicy, LiveState, Policy};

pub(crate) use feature::{DOC_FORKS, DOC_MEMORY, feature};

use self::cgroup::{Cgroup, Controller};
use crate::error::Error;
use crate::ns;
use crate::spawn::SpawnPlan;
use crate::supervise::Tasks;

/// How `max_processes` is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessCap {
    /// `RLIMIT_NPROC` in the sandbox's own user namespace: the kernel counts
    /// the namespace's tasks (threads included, zombies until reaped) and
    /// fails `fork`/`clone` with `EAGAIN` over the limit. No root needed;
    /// not for root of the initial user namespace (the kernel exempts it).
    UserNamespaceRlimit,
    /// A `pids` cgroup (`pids.max`): the kernel, for root or a delegated
    /// cgroup.
    Cgroup,
    /// The supervisor counts the sandbox's tasks at each `fork`, `vfork`
    /// and `clone`, and answers `EAGAIN` over the limit.
    Supervisor,
}

/// What ends a sandbox whose memory grows past `max_memory` without a call
/// the supervisor sees (pages touched in a reservation, a shared mapping).
/// In every case the supervisor refuses, with `ENOMEM`, a call that would
/// take the sandbox over the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryGuard {
    /// A memory cgroup with the limit: the kernel charges every page
    /// (anonymous, shared, tmpfs, SysV, page cache) and its OOM killer
    /// acts at the limit; sandlock then ends the whole sandbox.
    Cgroup,
    /// sandlock samples the resident memory of every task (every 100 ms)
    /// and ends the sandbox when it is over the limit.
    Watchdog,
}

/// How `max_cpu` is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CpuCap {
    /// A `cpu` cgroup's bandwidth quota (per 100 ms period).
    Cgroup,
    /// sandlock samples the CPU time of every task and stops and continues
    /// all of them (`SIGSTOP` / `SIGCONT`, by pidfd) to keep the average.
    Throttle,
}

/// The mechanisms a sandbox's limits use on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mechanisms {
    /// For `max_processes`.
    pub processes: ProcessCap,
    /// For `max_memory`.
    pub memory: MemoryGuard,
    /// For `max_cpu`.
    pub cpu: CpuCap,
}

impl Mechanisms {
    /// What this machine and this process's privileges give: cgroups where
    /// sandlock may make them, otherwise `RLIMIT_NPROC` in a user namespace
    /// (where unprivileged user namespaces are allowed), the supervisor and
    /// sampling otherwise.
    pub fn detect() -> Mechanisms {
        let root = ns::is_global_root();
        let processes = if !root && ns::probably_available() {
            ProcessCap::UserNamespaceRlimit
        } else if cgroup::locate(Controller::Pids).is_some() {
            ProcessCap::Cgroup
        } else {
            ProcessCap::Supervisor
        };
        let memory = if cgroup::locate(Controller::Memory).is_some() {
            MemoryGuard::Cgroup
        } else {
            MemoryGuard::Watchdog
        };
        let cpu = if cgroup::locate(Controller::Cpu).is_some() {
            CpuCap::Cgroup
        } else {
            CpuCap::Throttle
        };
        Mechanisms {
            processes,
            memory,
            cpu,
        }
    }
}

impl fmt::Display for ProcessCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcessCap::UserNamespaceRlimit => "RLIMIT_NPROC in the sandbox's user namespace",
            ProcessCap::Cgroup => "pids cgroup",
            ProcessCap::Supervisor => "supervisor counting at each fork/clone",
        })
    }
}

impl fmt::Display for MemoryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryGuard::Cgroup => "supervisor accounting + memory cgroup",
            MemoryGuard::Watchdog => "supervisor accounting + resident-memory watchdog",
        })
    }
}

impl fmt::Display for CpuCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CpuCap::Cgroup => "cpu cgroup quota",
            CpuCap::Throttle => "supervisor throttling (SIGSTOP/SIGCONT of every task)",
        })
    }
}

/// Why sandlock ended a sandbox before its command did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// Its memory went over `max_memory` without a call the supervisor
    /// could refuse.
    Memory {
        /// The limit, in bytes.
        limit: u64,
        /// What was measured, in bytes (0 when the kernel's OOM killer
        /// acted and the figure is the cgroup's).
        used: u64,
    },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Memory { limit, used: 0 } => write!(
                f,
                "the sandbox reached its memory limit ({}) and the kernel's OOM killer acted: \
                 the sandbox was ended",
                mib(*limit)
            ),
            LimitExceeded::Memory { limit, used } => write!(
                f,
                "the sandbox used {} of memory, over its memory limit ({}): it was ended",
                mib(*used),
                mib(*limit)
            ),
        }
    }
}

#[cfg(test)]
mod tests;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The limits of one launch, prepared before the fork.
#[derive(Debug, Default)]
pub(crate) struct LaunchLimits {
    pids: Option<(Cgroup, u64)>,
    memory: Option<Cgroup>,
    cpu: Option<Cgroup>,
}

fn cg_error(what: &'static str, c: Controller) -> impl Fn(rustix::io::Errno) -> Error {
    move |errno| Error::Namespace {
        what: format!(
            "{what} ({} cgroup under {})",
            match c {
                Controller::Pids => "pids",
                Controller::Memory => "memory",
                Controller::Cpu => "cpu",
            },
            cgroup::locate(c)
                .map(|l| l.parent.display().to_string())
                .unwrap_or_default()
        ),
        errno,
    }
}

fn make(c: Controller) -> Result<Cgroup, Error> {
    let loc = cgroup::locate(c).ok_or(Error::Namespace {
        what: "no writable cgroup for the sandbox's limits".to_owned(),
        errno: rustix::io::Errno::ACCESS,
    })?;
    Cgroup::create(c, &loc).map_err(cg_error("creating the sandbox's cgroup", c))
}

impl LaunchLimits {
    /// Adds what the policy's limits need to `plan` (rlimits, a user
    /// namespace, waiting for the go-ahead) and makes the cgroups.
    pub(crate) fn prepare(
        policy: &Policy,
        mech: &Mechanisms,
        plan: &mut SpawnPlan,
    ) -> Result<LaunchLimits, Error> {
        let mut out = LaunchLimits::default();
        if let Limit::Limited(n) = policy.max_processes() {
            let n = u64::from(n.get());
            match mech.processes {
                ProcessCap::UserNamespaceRlimit => {
                    plan.ns.user = true;
                    // The init of a PID namespace is in the user namespace
                    // too: it is sandlock's, not one of the command's tasks.
                    let n = n + u64::from(plan.ns.pid);
                    plan.rlimits.push((crate::sys::RLIMIT_NPROC, n, n));
                }
                ProcessCap::Cgroup => {
                    let cg = make(Controller::Pids)?;
                    // Set again once the first process is known.
                    cg.set_pids_max(n + 1)
                        .map_err(cg_error("setting pids.max", Controller::Pids))?;
                    out.pids = Some((cg, n));
                }
                ProcessCap::Supervisor => {}
            }
        }
        if let (Limit::Limited(m), MemoryGuard::Cgroup) = (policy.max_memory(), mech.memory) {
            let cg = make(Controller::Memory)?;
            cg.set_memory_max(m.get())
                .map_err(cg_error("setting the memory limit", Controller::Memory))?;
            out.memory = Some(cg);
        }
        if let (Limit::Limited(c), CpuCap::Cgroup) = (policy.max_cpu(), mech.cpu) {
            let cg = make(Controller::Cpu)?;
            cg.set_cpu_percent(u32::from(c.get()))
                .map_err(cg_error("setting the CPU quota", Controller::Cpu))?;
            out.cpu = Some(cg);
        }
        if out.pids.is_some() || out.memory.is_some() || out.cpu.is_some() {
            plan.wait_go = true;
        }
        Ok(out)
    }

    /// Puts the first process `pid` (waiting for the go-ahead) in the
    /// cgroups. `pids.max` counts sandlock's init when `pid` is one.
    pub(crate) fn before_exec(&self, pid: i32) -> Result<(), Error> {
        if let Some((cg, n)) = &self.pids {
            let own = crate::supervise::procstat::pidns_inode(std::process::id() as i32);
            let theirs = crate::supervise::procstat::pidns_inode(pid);
            let init = matches!((own, theirs), (Ok(a), Ok(b)) if a != b);
            cg.set_pids_max(n + u64::from(init))
                .map_err(cg_error("setting pids.max", Controller::Pids))?;
            cg.attach(pid)
                .map_err(cg_error("joining the cgroup", Controller::Pids))?;
        }
        for (cg, c) in [
            (&self.memory, Controller::Memory),
            (&self.cpu, Controller::Cpu),
        ] {
            if let Some(cg) = cg {
                cg.attach(pid).map_err(cg_error("joining the cgroup", c))?;
            }
        }
        Ok(())
    }
}

/// The limits of a running sandbox: what the supervisor's handlers, the
/// monitor thread and the policy callback share.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) live: LivePolicy,
    pub(crate) mech: Mechanisms,
    pub(crate) tasks: Tasks,
    pub(crate) pids: Option<Cgroup>,
    pub(crate) memory_cg: Option<Cgroup>,
    pub(crate) _cpu: Option<Cgroup>,
    pub(crate) memory: Option<memory::Meter>,
    pub(crate) forks: Option<processes::Counter>,
    pub(crate) throttle: Option<cpu::Throttle>,
    exceeded: Mutex<Option<LimitExceeded>>,
    applied: Mutex<Applied>,
}

/// The limits last applied to the kernel's mechanisms.
#[derive(Debug, Default)]
struct Applied {
    processes: Option<u64>,
    memory: Option<u64>,
}

impl Runtime {
    /// The runtime of a sandbox just launched.
    pub(crate) fn new(
        policy: &Policy,
        live: LivePolicy,
        mech: Mechanisms,
        tasks: Tasks,
        launch: LaunchLimits,
    ) -> Runtime {
        let memory = match policy.max_memory() {
            Limit::Limited(_) => Some(memory::Meter::new()),
            Limit::Unlimited => None,
        };
        let forks = match (policy.max_processes(), mech.processes) {
            (Limit::Limited(_), ProcessCap::Supervisor) => Some(processes::Counter::default()),
            _ => None,
        };
        let throttle = match (policy.max_cpu(), mech.cpu) {
            (Limit::Limited(c), CpuCap::Throttle) => Some(cpu::Throttle::new(u32::from(c.get()))),
            _ => None,
        };
        Runtime {
            live,
            mech,
            tasks,
            pids: launch.pids.map(|(cg, _)| cg),
            memory_cg: launch.memory,
            _cpu: launch.cpu,
            memory,
            forks,
            throttle,
            exceeded: Mutex::new(None),
            applied: Mutex::new(Applied {
                processes: procs_of(policy.max_processes()),
                memory: bytes_of(policy.max_memory()),
            }),
        }
    }

    /// The live `max_memory`, in bytes.
    pub(crate) fn live_memory(&self) -> Option<u64> {
        bytes_of(self.live.load().max_memory())
    }

    /// The live `max_processes`.
    pub(crate) fn live_processes(&self) -> Option<u64> {
        procs_of(self.live.load().max_processes())
    }

    /// Whether the monitor thread has work: throttling, or a memory limit
    /// only a sample (or the cgroup's OOM counter) can see passed.
    pub(crate) fn needs_monitor(&self) -> bool {
        self.throttle.is_some() || self.memory.is_some()
    }

    /// Records why the sandbox is ended, and ends it.
    pub(crate) fn end(&self, why: LimitExceeded) {
        {
            let mut e = self.exceeded.lock().unwrap_or_else(|e| e.into_inner());
            if e.is_none() {
                *e = Some(why);
            }
        }
        self.tasks.kill_all();
    }

    /// Called once the sandbox has ended: a kill by the kernel's OOM
    /// killer in the memory cgroup that the monitor had no time to see is
    /// reported too.
    pub(crate) fn ended(&self) {
        if let Some(cg) = &self.memory_cg
            && cg.oom_kills() > 0
        {
            let mut e = self.exceeded.lock().unwrap_or_else(|e| e.into_inner());
            if e.is_none() {
                *e = Some(LimitExceeded::Memory {
                    limit: self.live_memory().unwrap_or(0),
                    used: 0,
                });
            }
        }
    }

    /// Why sandlock ended the sandbox, if it did.
    pub(crate) fn exceeded(&self) -> Option<LimitExceeded> {
        self.exceeded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies the live policy's limits to the kernel's mechanisms, where
    /// they hold them and the limit went down (the policy callback may only
    /// restrict them). The supervisor's own checks read the live policy at
    /// each call and need nothing.
    pub(crate) fn apply_live(&self, live: &LiveState) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let procs = procs_of(live.max_processes());
        if procs < applied.processes
            && let Some(n) = procs
        {
            match self.mech.processes {
                ProcessCap::UserNamespaceRlimit => {
                    let n = n + u64::from(self.tasks.has_pidns());
                    processes::lower_rlimits(&self.tasks, n);
                }
                ProcessCap::Cgroup => {
                    if let Some(cg) = &self.pids {
                        let _ = cg.set_pids_max(n + u64::from(self.tasks.has_pidns()));
                    }
                }
                ProcessCap::Supervisor => {}
            }
            applied.processes = Some(n);
        }
        let mem = bytes_of(live.max_memory());
        if mem < applied.memory
            && let Some(m) = mem
        {
            if let Some(cg) = &self.memory_cg {
                // Refused (EBUSY) when the sandbox holds more already: the
                // supervisor's accounting still applies the new limit.
                let _ = cg.set_memory_max(m);
            }
            applied.memory = Some(m);
        }
    }
}

/// `max_processes` as a number (`None`: unlimited, which sorts below
/// every number in `Option`'s order: compare with care).
pub(crate) fn procs_of(l: Limit<std::num::NonZeroU32>) -> Option<u64> {
    l.get().map(|n| u64::from(n.get()))
}

/// `max_memory` in bytes (`None`: unlimited).
pub(crate) fn bytes_of(l: Limit<sandlock_policy::ByteSize>) -> Option<u64> {
    l.get().map(|b| b.get())
}
