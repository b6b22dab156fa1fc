//! What the sandbox sees of the host: its clocks (`time_start`), its
//! randomness (`random_seed`), its CPUs (`num_cpus`), its host name and
//! its `/proc`. See `docs/determinism.md`.
//!
//! - [`clock`]: the sandbox's clock (realtime = MONOTONIC + offset);
//! - [`timecalls`]: the time syscalls it answers or restarts;
//! - [`random`]: the seeded `getrandom`; [`devices`]: the seeded
//!   `/dev/urandom` and `/dev/random`;
//! - [`cpus`]: the CPUs the sandbox runs on and the files that count them;
//! - [`tracer`]: the `ptrace` jobs: edits at each `execve` stop (the vDSO,
//!   `AT_RANDOM`, non-dumpable), and restarts with edited arguments.
//!
//! Files the sandbox reads are replaced in its mount namespace (the
//! namespace layer, `crate::ns`); where namespaces are not available the
//! corresponding protection is missing (`crate::compat`: refused in
//! strict mode, reported in best-effort mode). Without any of these
//! settings the feature is off and nothing is intercepted.

mod clock;
mod cpus;
mod devices;
mod random;
mod timecalls;
mod tracer;

use std::sync::{Arc, Mutex};

use sandlock_bpf::{Action, Rule};
use sandlock_notify::{BuildError, Ctx, SupervisorBuilder};
use sandlock_policy::{Policy, Timestamp};

use self::clock::SandboxClock;
use self::tracer::{Fixups, Tracer};
use super::{Feature, Shared};
use crate::chacha::Stream;
use crate::compat::{Protection, grants_proc};
use crate::error::Error;
use crate::newroot::NewRoot;
use crate::procmem::{self, Mem, MemCache};
use crate::spawn::SpawnPlan;
use crate::vdso::{self, Config, Image, Plan, TimeReads, VdsoError};

/// The feature: on when the policy sets any of the settings above, or
/// grants `/proc`.
pub(crate) fn feature(policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    let private_proc = grants_proc(policy) && Protection::PrivateProc.available();
    let view = View {
        time_start: policy.time_start(),
        seed: policy.random_seed(),
        num_cpus: policy.num_cpus().map(|n| n.get() as usize),
        cpu_cores: policy.cpu_cores().cloned(),
        hostname: policy.hostname().map(|h| h.as_str().to_owned()),
        private_proc,
        no_network: policy.net_allow_hosts().is_empty()
            && policy.net_connect().is_empty()
            && policy.net_bind().is_empty(),
        grants: policy
            .fs_readable()
            .iter()
            .chain(policy.fs_writable())
            .map(|p| p.as_str().to_owned())
            .collect(),
        root: match policy.chroot() {
            Some(r) => Some(NewRoot::open(std::path::Path::new(r.as_str()))?),
            None => None,
        },
    };
    if view.time_start.is_none()
        && view.seed.is_none()
        && view.num_cpus.is_none()
        && view.hostname.is_none()
        && !view.private_proc
    {
        return Ok(None);
    }
    if view.traces() && !tracer::SUPPORTED {
        return Err(Error::NotImplemented {
            setting: if view.time_start.is_some() {
                "time_start"
            } else {
                "random_seed"
            },
            issue: "x86-64 only so far",
        });
    }
    Ok(Some(Box::new(view)))
}

struct View {
    time_start: Option<Timestamp>,
    seed: Option<u64>,
    num_cpus: Option<usize>,
    cpu_cores: Option<sandlock_policy::CpuSet>,
    hostname: Option<String>,
    /// `/proc` is granted and the sandbox gets a private one.
    private_proc: bool,
    no_network: bool,
    grants: Vec<String>,
    /// The new root: the files replaced are the root's.
    root: Option<NewRoot>,
}

impl View {
    /// Whether the tracer works at every `execve`.
    fn traces(&self) -> bool {
        self.time_start.is_some() || self.seed.is_some() || self.nondumpable()
    }

    /// Whether each image is made non-dumpable (its `/proc/PID/mem`,
    /// `environ`, `maps` and `fd` closed to the other tasks of the
    /// sandbox). Only where the supervisor keeps its access: as root, or
    /// over a user namespace it owns (then `ptrace`-like access needs
    /// `CAP_SYS_PTRACE` in the task's user namespace, which only the
    /// namespace's owner has).
    fn nondumpable(&self) -> bool {
        self.private_proc && tracer::SUPPORTED
    }

    /// The host path of `path` (a path of the sandbox's view) if it
    /// exists: under a new root, resolved in it.
    fn at(&self, path: &str) -> Option<String> {
        match &self.root {
            Some(r) => r.existing(path),
            None => std::path::Path::new(path).exists().then(|| path.to_owned()),
        }
    }

    /// Whether `path` is at or under a granted path.
    fn granted(&self, path: &str) -> bool {
        self.grants.iter().any(|g| {
            let g = g.trim_end_matches('/');
            g.is_empty() || path == g || path.strip_prefix(g).is_some_and(|r| r.starts_with('/'))
        })
    }

    fn prepare_cpus(&self, n: usize, plan: &mut SpawnPlan) -> Result<(), Error> {
        let chosen = cpus::choose(n, self.cpu_cores.as_ref(), cpus::available())?;
        plan.cpu_mask = Some(cpus::mask(&chosen));
        if !Protection::CpuView.available() {
            return Ok(());
        }
        for f in ["online", "possible", "present"] {
            if let Some(path) = self.at(&format!("/sys/devices/system/cpu/{f}"))
                && self.granted(&path)
            {
                plan.ns.mounts.bind_content(path, cpus::range_file(n));
            }
        }
        let cpuinfo = plan.ns.mounts.proc_target().join("cpuinfo");
        let cpuinfo = cpuinfo.to_string_lossy();
        if self.granted(&cpuinfo)
            && let Ok(info) = std::fs::read_to_string("/proc/cpuinfo")
        {
            plan.ns.mounts.fresh_proc();
            if plan.ns.mounts.has_proc() {
                plan.ns
                    .mounts
                    .bind_content(cpuinfo.as_ref(), cpus::cpuinfo(&info, &chosen));
            }
        }
        Ok(())
    }
}

impl Feature for View {
    fn name(&self) -> &'static str {
        "view"
    }

    fn supervises_exec(&self) -> bool {
        self.traces()
    }

    fn prepare(&self, plan: &mut SpawnPlan) -> Result<(), Error> {
        plan.exec_supervised |= self.traces();
        if self.private_proc {
            plan.ns.mounts.fresh_proc();
            if self.no_network {
                plan.ns.net = true;
            }
        }
        if let Some(name) = &self.hostname
            && Protection::HostName.available()
        {
            plan.ns.hostname = Some(name.clone());
            if let Some(path) = self.at("/etc/hostname")
                && self.granted(&path)
            {
                plan.ns
                    .mounts
                    .bind_content(path, format!("{name}\n").into_bytes());
            }
        }
        if let Some(n) = self.num_cpus {
            self.prepare_cpus(n, plan)?;
        }
        if let Some(seed) = self.seed
            && Protection::SeededDevices.available()
        {
            let seeded = devices::start(seed)?;
            for (fifo, device) in seeded.binds {
                if let Some(target) = self.at(device) {
                    plan.ns.mounts.bind_path(fifo, target);
                }
            }
            plan.keep.push(seeded.alive);
        }
        Ok(())
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        if !supervised || !self.traces() {
            // `confine_current` refuses time_start and random_seed.
            return Vec::new();
        }
        let notify = Action::UserNotif;
        let mut rules = vec![
            Rule::named("execve", notify),
            Rule::named("execveat", notify),
        ];
        if self.time_start.is_some() {
            rules.extend(timecalls::rules(notify));
        }
        if self.seed.is_some() {
            rules.extend(random::rules(notify));
        }
        rules
    }

    fn register(
        &self,
        mut sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        if !self.traces() {
            return Ok(sup);
        }
        // The clock starts now: at the sandbox's first notification, its
        // first execve.
        let clock = self.time_start.map(SandboxClock::starting);
        let config = Config {
            clock: clock.map(|c| c.stub()),
            time_via_kernel: false,
            hide_getrandom: self.seed.is_some(),
        };
        let plan = match vdso::read_own().and_then(Image::parse) {
            Ok(image) => Some(Arc::new(Plan::new(&image, &config))),
            // No vDSO here means none in the sandbox either: every read is
            // a system call, which the handlers answer.
            Err(VdsoError::Missing) => None,
            Err(e) => return Err(BuildError::Start(format!("view: {e}"))),
        };
        if plan
            .as_ref()
            .is_some_and(|p| p.time_reads() == TimeReads::Kernel)
        {
            tracer::warn_once(
                "time_start: the vDSO has no room for sandlock's stubs: every time read is a system call answered by the supervisor",
            );
        }
        let fixups = Arc::new(ExecFixups {
            plan: plan.clone(),
            at_random: self
                .seed
                .map(|s| Mutex::new(Stream::seeded(s, random::AT_RANDOM))),
            nondumpable: self.nondumpable(),
        });
        let tracer = Arc::new(Tracer::new(fixups));
        let mem = Arc::new(MemCache::default());
        if super::fs::traces_exec(&shared.policy) {
            // The filesystem rules trace every execve already (a task has
            // one tracer): they run the fix-ups at the exec stop.
            let (t, m) = (tracer.clone(), mem.clone());
            let hook: super::ExecStop = Arc::new(move |pid| {
                m.forget_all();
                t.at_exec_stop(pid)
            });
            let _ = shared.exec_stop.set(hook);
        } else {
            for name in ["execve", "execveat"] {
                let (t, m) = (tracer.clone(), mem.clone());
                sup = sup.handle_name(name, move |ctx: &Ctx| {
                    m.forget_all();
                    t.exec(ctx)
                })?;
            }
        }
        if let Some(clock) = clock {
            let calls = Arc::new(timecalls::TimeCalls {
                clock,
                tracer: tracer.clone(),
                plan,
                mem: mem.clone(),
            });
            let file_times = !super::fs::handles_files(&shared.policy);
            sup = timecalls::register(sup, &calls, file_times)?;
        }
        if let Some(seed) = self.seed {
            sup = random::register(sup, seed, mem)?;
        }
        Ok(sup)
    }
}

/// What is done to each new image of the sandbox at its `execve` stop.
struct ExecFixups {
    plan: Option<Arc<Plan>>,
    at_random: Option<Mutex<Stream>>,
    nondumpable: bool,
}

impl Fixups for ExecFixups {
    fn at_exec(&self, pid: u32) -> Result<Option<u64>, String> {
        let mem = Mem::open(pid).map_err(|e| format!("cannot edit a new image: {e}"))?;
        let base = match vdso::base_of(pid) {
            Ok(base) => Some(base),
            Err(VdsoError::Missing) => None,
            Err(e) => return Err(format!("cannot find a vDSO: {e}")),
        };
        if let (Some(plan), Some(base)) = (&self.plan, base)
            && !plan.is_empty()
        {
            plan.apply(&mem, base)
                .map_err(|e| format!("cannot patch a vDSO: {e}"))?;
        }
        if let Some(stream) = &self.at_random {
            let auxv = procmem::auxv(Some(pid)).map_err(|e| format!("AT_RANDOM: {e}"))?;
            if let Some(addr) = procmem::aux_value(&auxv, procmem::AT_RANDOM) {
                let mut bytes = [0u8; 16];
                stream
                    .lock()
                    .map_err(|_| "AT_RANDOM: poisoned stream".to_owned())?
                    .fill(&mut bytes);
                mem.write_all(addr, &bytes)
                    .map_err(|e| format!("AT_RANDOM: {e}"))?;
            }
        }
        if !self.nondumpable {
            return Ok(None);
        }
        match (&self.plan, base) {
            (Some(plan), Some(base)) => plan.syscall_site(base).map(Some).ok_or_else(|| {
                "no syscall instruction in a vDSO: a process stays dumpable".to_owned()
            }),
            _ => Err("a process without a vDSO stays dumpable".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(policy: &Policy) -> Option<Box<dyn Feature>> {
        feature(policy).unwrap()
    }

    #[test]
    fn off_unless_asked() {
        let plain = Policy::builder().fs_read("/usr").build().unwrap();
        assert!(view(&plain).is_none());
        for p in [
            Policy::builder().time_start("2000-01-01").build().unwrap(),
            Policy::builder().random_seed(1).build().unwrap(),
            Policy::builder().hostname("box").build().unwrap(),
            Policy::builder().num_cpus(1).build().unwrap(),
        ] {
            assert!(view(&p).is_some(), "{p:?}");
        }
        // Without the time and seed settings, no syscall is intercepted.
        let cpus = Policy::builder().num_cpus(1).build().unwrap();
        assert!(view(&cpus).unwrap().rules(&cpus, true).is_empty());
    }

    #[test]
    fn protections_follow_the_policy() {
        let p = Policy::builder()
            .hostname("box")
            .fs_read("/proc/self")
            .build()
            .unwrap();
        assert!(Protection::HostName.asked_by(&p));
        assert!(Protection::PrivateProc.asked_by(&p));
        assert!(!Protection::CpuView.asked_by(&p));
        assert!(!Protection::SeededDevices.asked_by(&p));
        let root = Policy::builder().fs_read("/").build().unwrap();
        assert!(grants_proc(&root));
        let near = Policy::builder().fs_read("/processes").build().unwrap();
        assert!(!grants_proc(&near));
        // With a new root, the policy's paths are host paths (rooted) and
        // its /proc is the root's.
        let rooted = |p: &str| {
            Policy::builder()
                .chroot("/srv/r")
                .fs_read(p)
                .build()
                .unwrap()
        };
        assert!(grants_proc(&rooted("/srv/r/proc")));
        assert!(grants_proc(&rooted("/srv/r/proc/self")));
        assert!(grants_proc(&rooted("/srv/r")));
        assert!(!grants_proc(&rooted("/proc")));
        assert!(!grants_proc(&rooted("/srv/r/processes")));
    }

    #[test]
    fn granted_matches_components() {
        let v = View {
            time_start: None,
            seed: None,
            num_cpus: None,
            cpu_cores: None,
            hostname: None,
            private_proc: false,
            no_network: true,
            grants: vec!["/etc".into(), "/sys/devices/".into()],
            root: None,
        };
        assert!(v.granted("/etc/hostname"));
        assert!(v.granted("/sys/devices/system/cpu/online"));
        assert!(!v.granted("/etcetera/x"));
        assert!(!v.granted("/proc/cpuinfo"));
    }
}
