//! The supervisor's plug-in point: features that answer syscalls the base
//! filter sends to user space.
//!
//! A **feature** is one module with one entry in [`FEATURES`]. It
//! contributes
//!
//! - BPF rules ([`Feature::rules`]), placed after the deny list's
//!   refusals and before its closing rules (e.g. `socket`'s allowed shapes);
//!   a rule with [`Action::UserNotif`](sandlock_bpf::Action::UserNotif)
//!   sends the call to the supervisor;
//! - settings for the child, prepared before the fork ([`Feature::prepare`]:
//!   resource limits, waiting for the parent's go-ahead), and work for the
//!   parent between the fork and the child's `execve` ([`Feature::before_exec`]);
//! - handlers ([`Feature::register`]), which get the [`Shared`] state: the
//!   static policy, the live policy, the sandbox's tasks and the audit log.
//!
//! The supervisor itself starts only when the base filter notifies, and
//! lazily: `Sandbox::run` and the `sandlock` command start its threads at
//! the first notification, so a command that never makes an intercepted
//! syscall costs no thread.

mod audit;
pub(crate) mod confined;
mod events;
mod fs;
mod memfd;
pub mod net;
mod procctl;
pub(crate) mod procstat;
pub(crate) mod tasks;
mod view;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use sandlock_bpf::Rule;
use sandlock_notify::{
    BuildError, EventSink, Listener, Response, Supervisor, SupervisorBuilder, SupervisorHandle,
};
use sandlock_policy::{LivePolicy, Policy, PolicyFn, SyscallEvent, Verdict};

pub use audit::AuditLog;
pub(crate) use tasks::Tasks;

use crate::error::Error;
use crate::spawn::SpawnPlan;

/// A supervisor feature (see the module documentation).
pub(crate) trait Feature: Send + Sync {
    /// Its name, for errors.
    fn name(&self) -> &'static str;

    /// Its BPF rules. With `supervised == false` (a process confining
    /// itself, which has no supervisor) it must not return `USER_NOTIF`:
    /// the kernel would answer `ENOSYS`; it refuses with an errno instead.
    fn rules(&self, policy: &Policy, supervised: bool) -> Vec<Rule>;

    /// Settings for the child, before the fork.
    fn prepare(&self, _plan: &mut SpawnPlan) -> Result<(), Error> {
        Ok(())
    }

    /// Work in the parent after the fork, before the child may `execve`
    /// (set `plan.wait_go` in [`prepare`](Self::prepare) to have the child
    /// wait for it).
    fn before_exec(&self, _pid: i32) -> Result<(), Error> {
        Ok(())
    }

    /// Whether its handlers answer the command's own `execve`: the
    /// supervisor is then started before it, not at the first notification.
    fn supervises_exec(&self) -> bool {
        false
    }

    /// Whether it performs operations on the sandbox's behalf on a
    /// [`confined::Worker`] (the sandbox's Landlock ruleset is then kept for
    /// it in [`Shared`]).
    fn confines(&self) -> bool {
        false
    }

    /// Registers its handlers.
    fn register(
        &self,
        sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError>;
}

/// Makes a feature for a policy (`None`: the policy does not need it).
pub(crate) type Constructor = fn(&Policy) -> Result<Option<Box<dyn Feature>>, Error>;

/// Every feature. Adding one is adding its module and a line here.
pub(crate) const FEATURES: &[Constructor] = &[
    procctl::feature,
    memfd::feature,
    fs::feature,
    events::feature,
    view::feature,
    net::feature,
];

/// The features `policy` needs, in [`FEATURES`] order.
pub(crate) fn features(policy: &Policy) -> Result<Vec<Box<dyn Feature>>, Error> {
    let mut out = Vec::new();
    for make in FEATURES {
        if let Some(f) = make(policy)? {
            out.push(f);
        }
    }
    Ok(out)
}

/// A row of the deny-list table for a syscall a feature decides.
#[derive(Clone, Copy, Debug)]
pub struct Doc {
    /// The syscalls.
    pub syscalls: &'static [&'static str],
    /// When they are intercepted or refused, in words.
    pub refused: &'static str,
    /// What answers.
    pub answer: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// The table rows of every feature.
pub(crate) const DOCS: &[Doc] = &[
    procctl::DOC,
    procctl::DOC_USER,
    memfd::DOC,
    crate::limits::DOC_MEMORY,
    crate::limits::DOC_FORKS,
    fs::DOC_OPEN,
    fs::DOC_CALLS,
    fs::DOC_EXEC,
    fs::DOC_REFUSED,
    fs::DOC_UNSUPPORTED,
    events::DOC,
    net::DOCS[0],
    net::DOCS[1],
    net::DOCS[2],
    net::DOCS[3],
];

/// Called on the thread tracing task `pid`, stopped at its
/// `PTRACE_EVENT_EXEC` once the new image was verified; returns whether it
/// detached the task (else the caller does).
pub(crate) type ExecStop = Arc<dyn Fn(i32) -> bool + Send + Sync>;

/// What every handler may consult.
pub struct Shared {
    /// The static policy.
    pub(crate) policy: Arc<Policy>,
    /// The live policy (changed by the policy callback).
    pub(crate) live: LivePolicy,
    /// The sandbox's tasks.
    pub(crate) tasks: Tasks,
    /// The audit log, if one was asked for.
    pub(crate) audit: Option<Arc<AuditLog>>,
    /// The resource limits' runtime (accounting, counters, cgroups).
    pub(crate) limits: Option<Arc<crate::limits::Runtime>>,
    /// Work for each new image at its exec stop, handed by a feature that
    /// needs it (the view's fix-ups) to the one that traces `execve` (the
    /// filesystem rules), when both are on: a task has one tracer.
    pub(crate) exec_stop: std::sync::OnceLock<ExecStop>,
    /// The seccomp listener (a second descriptor of it), for answers given
    /// off the supervisor's threads (by a [`confined::Worker`]).
    pub(crate) listener: Arc<Listener>,
    /// The sandbox's Landlock ruleset, for [`confined::Worker`]s (`None`
    /// unless a feature [`confines`](Feature::confines), or without Landlock).
    pub(crate) ruleset: Option<Arc<OwnedFd>>,
    /// The sandbox's private temporary directory (granted writable besides
    /// the policy's paths), if it has one.
    pub(crate) private_tmp: Option<std::path::PathBuf>,
    /// The policy's host names and the addresses they had at start.
    pub(crate) hosts: Arc<net::HostTable>,
}

impl Shared {
    /// Records a decision a handler took by itself (events that go through
    /// the policy callback are recorded by the supervisor's audit hook).
    pub(crate) fn audit(&self, event: &SyscallEvent, verdict: Verdict) {
        if let Some(log) = &self.audit {
            log.record(event, verdict, "sandlock", false);
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

/// Everything needed to start the supervisor once the listener is here
/// (the shared state is built only then: a sandbox whose command makes no
/// intercepted syscall never pays for it).
pub(crate) struct Pending {
    pub(crate) listener: Listener,
    pub(crate) features: Arc<Vec<Box<dyn Feature>>>,
    pub(crate) policy: Arc<Policy>,
    /// The sandbox's tasks.
    pub(crate) tasks: Tasks,
    pub(crate) audit: Option<Arc<AuditLog>>,
    /// The limits' runtime (its live policy is the supervisor's).
    pub(crate) limits: Option<Arc<crate::limits::Runtime>>,
    /// The sandbox's Landlock ruleset, for confined workers.
    pub(crate) ruleset: Option<Arc<OwnedFd>>,
    /// See [`Shared::private_tmp`].
    pub(crate) private_tmp: Option<std::path::PathBuf>,
    /// See [`Shared::hosts`].
    pub(crate) hosts: Arc<net::HostTable>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// The live policy of a sandbox: host names are those resolved when the
/// sandbox was made (`hosts`), never looked up again.
pub(crate) fn live_policy(
    policy: &Policy,
    hosts: &Arc<net::HostTable>,
) -> Result<LivePolicy, Error> {
    let hosts = hosts.clone();
    LivePolicy::with_resolver(policy, move |name| {
        hosts
            .lookup(name)
            .map(<[_]>::to_vec)
            .ok_or("not resolved when the sandbox was made")
    })
    .map_err(|e| Error::Supervisor(e.to_string()))
}

/// Starts the supervisor's threads.
pub(crate) fn start(p: Pending) -> Result<SupervisorHandle, Error> {
    let e = |e: BuildError| Error::Supervisor(e.to_string());
    // Read here, unconfined, before any confined worker could be the first
    // to need it (see `Tasks::pidns_inode`).
    let _ = p.tasks.pidns_inode();
    let live = match &p.limits {
        Some(rt) => rt.live.clone(),
        None => live_policy(&p.policy, &p.hosts)?,
    };
    let second = p
        .listener
        .as_fd()
        .try_clone_to_owned()
        .map_err(Error::io("dup of the seccomp listener"))?;
    let shared = Arc::new(Shared {
        policy: p.policy,
        live,
        tasks: p.tasks,
        audit: p.audit,
        limits: p.limits,
        exec_stop: std::sync::OnceLock::new(),
        listener: Arc::new(
            Listener::from_fd(second).map_err(|e| Error::Supervisor(e.to_string()))?,
        ),
        ruleset: p.ruleset,
        private_tmp: p.private_tmp,
        hosts: p.hosts,
    });
    let mut sup =
        Supervisor::builder(p.listener).fallback(Response::Errno(sandlock_bpf::Errno::ENOSYS));
    // A sandbox pinned to one CPU gets its supervisor there too: every
    // wake-up between them is then a same-CPU one (measured with `cargo
    // xtask bench --scenario open-deny`: on 2-vCPU VMs a cross-CPU wake-up
    // costs several times a same-CPU one).
    if let Some(cpu) = single_cpu(&shared.policy) {
        sup = sup.pin_cpu(Some(cpu));
    }
    for f in p.features.iter() {
        sup = f
            .register(sup, &shared)
            .map_err(|err| Error::Supervisor(format!("{}: {err}", f.name())))?;
    }
    if let Some(f) = shared.policy.policy_fn() {
        sup = sup
            .event_sink(callback_sink(
                f.clone(),
                &shared.live,
                shared.limits.clone(),
            ))
            .callback_deadline(shared.policy.callback_timeout());
    }
    if let Some(log) = &shared.audit {
        let log = log.clone();
        sup = sup.audit(move |event, decision| {
            let source = match decision.source {
                sandlock_notify::VerdictSource::Callback => "callback",
                sandlock_notify::VerdictSource::Panicked => "callback-panicked",
                sandlock_notify::VerdictSource::TimedOut => "callback-timed-out",
                sandlock_notify::VerdictSource::NoCallback => "sandlock",
            };
            log.record(event, decision.verdict, source, decision.held);
        });
    }
    sup.spawn().map_err(e)
}

/// The CPU of a sandbox pinned to exactly one (`cpu_cores`).
pub(crate) fn single_cpu(policy: &Policy) -> Option<usize> {
    let cores = policy.cpu_cores()?;
    let mut it = cores.iter();
    let first = it.next()?;
    it.next().is_none().then_some(first as usize)
}

/// The policy callback as the supervisor's event sink: each event is judged
/// with a [`PolicyContext`](sandlock_policy::PolicyContext) on the live
/// policy, so what the callback changes applies to the next decision. A
/// limit the callback restricted is applied at once to the kernel's
/// mechanism that holds it (`limits`), before the callback's verdict is
/// acted on.
pub(crate) fn callback_sink(
    f: PolicyFn,
    live: &LivePolicy,
    limits: Option<Arc<crate::limits::Runtime>>,
) -> impl EventSink {
    let mut ctx = live.context();
    let live = live.clone();
    let mut version = live.load().version();
    move |event: SyscallEvent| {
        let verdict = f(event, &mut ctx);
        if let Some(rt) = &limits {
            let now = live.load_full();
            if now.version() != version {
                version = now.version();
                rt.apply_live(&now);
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests;
