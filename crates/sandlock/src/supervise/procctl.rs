//! Calls that change another process's limits or scheduling: allowed on the
//! caller itself in BPF (pid 0), decided by the supervisor otherwise.
//!
//! `prlimit64`, `sched_setaffinity`, `sched_setattr`, `sched_setscheduler`,
//! `sched_setparam`, `migrate_pages` and `move_pages` take a pid; a pid of
//! 0 means the caller and is allowed in BPF. `setpriority` and `ioprio_set`
//! take a `which` and a `who`: the process form with `who == 0` is allowed
//! in BPF, the user form (every process of a uid) is refused in BPF, the
//! process-group form and other pids go to the supervisor.
//!
//! The supervisor allows the call when the target is a task of the sandbox
//! ([`Tasks::contains`](super::tasks::Tasks::contains)) or a process group led by one, and answers `EPERM`
//! otherwise (`ESRCH` when the target does not exist). The decision is on
//! registers only, never on memory, so the call then continues in the
//! kernel (see `tasks.rs` for the pid-reuse residual).

use std::sync::Arc;

use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};
use sandlock_notify::{BuildError, Ctx, Reply, Response, SupervisorBuilder};
use sandlock_policy::{Policy, SyscallCategory, SyscallEvent, Verdict};

use super::{Doc, Feature, Shared};
use crate::error::Error;

/// Syscalls whose first argument is a pid (`pid_t`, an `int`).
const PID_FIRST: [&str; 7] = [
    "prlimit64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setscheduler",
    "sched_setparam",
    "migrate_pages",
    "move_pages",
];

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;
const IOPRIO_WHO_PROCESS: u64 = 1;
const IOPRIO_WHO_PGRP: u64 = 2;
const IOPRIO_WHO_USER: u64 = 3;

/// The rows of the deny-list table.
pub(crate) const DOC: Doc = Doc {
    syscalls: &[
        "prlimit64",
        "sched_setaffinity",
        "sched_setattr",
        "sched_setscheduler",
        "sched_setparam",
        "migrate_pages",
        "move_pages",
        "setpriority",
        "ioprio_set",
    ],
    refused: "aimed at a pid other than 0 (the caller), or at a process group",
    answer: "the supervisor: allowed on a task of the sandbox (or a group it leads), else EPERM",
    reason: "change the limits, priority or CPUs of a process outside the sandbox (sandlock's own first)",
};
/// The user forms of `setpriority` / `ioprio_set`.
pub(crate) const DOC_USER: Doc = Doc {
    syscalls: &["setpriority", "ioprio_set"],
    refused: "`which` is `PRIO_USER` / `IOPRIO_WHO_USER`",
    answer: "EPERM",
    reason: "reaches every process of a uid, inside the sandbox or not",
};

/// How a syscall names its target.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `args[0]` is a pid.
    PidFirst,
    /// `args[0]` is `which` (`process`, `pgrp` values given), `args[1]` is `who`.
    Which { process: u64, pgrp: u64 },
}

/// The feature: always on.
pub(crate) fn feature(_policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    Ok(Some(Box::new(ProcCtl)))
}

struct ProcCtl;

impl Feature for ProcCtl {
    fn name(&self) -> &'static str {
        "process control"
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        let decide = if supervised {
            Action::UserNotif
        } else {
            Action::Errno(Errno::EPERM)
        };
        let eperm = Action::Errno(Errno::EPERM);
        let mut rules: Vec<Rule> = PID_FIRST
            .iter()
            .map(|n| Rule::named(n, decide).when(Cond::ne(ArgIndex::A0, 0).u32()))
            .collect();
        for (name, process, pgrp, user) in [
            ("setpriority", PRIO_PROCESS, PRIO_PGRP, PRIO_USER),
            (
                "ioprio_set",
                IOPRIO_WHO_PROCESS,
                IOPRIO_WHO_PGRP,
                IOPRIO_WHO_USER,
            ),
        ] {
            let which = |v| Cond::eq(ArgIndex::A0, v).u32();
            rules.push(Rule::named(name, eperm).when(which(user)));
            rules.push(
                Rule::named(name, decide)
                    .when(which(process))
                    .when(Cond::ne(ArgIndex::A1, 0).u32()),
            );
            rules.push(Rule::named(name, decide).when(which(pgrp)));
        }
        rules
    }

    fn register(
        &self,
        mut sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        for name in PID_FIRST {
            sup = register_one(sup, shared, name, Layout::PidFirst)?;
        }
        sup = register_one(
            sup,
            shared,
            "setpriority",
            Layout::Which {
                process: PRIO_PROCESS,
                pgrp: PRIO_PGRP,
            },
        )?;
        register_one(
            sup,
            shared,
            "ioprio_set",
            Layout::Which {
                process: IOPRIO_WHO_PROCESS,
                pgrp: IOPRIO_WHO_PGRP,
            },
        )
    }
}

fn register_one(
    sup: SupervisorBuilder,
    shared: &Arc<Shared>,
    name: &'static str,
    layout: Layout,
) -> Result<SupervisorBuilder, BuildError> {
    let Some(nr) = sandlock_bpf::Arch::native().and_then(|a| a.syscall_nr(name)) else {
        return Ok(sup);
    };
    let shared = shared.clone();
    sup.handle(nr, move |ctx: &Ctx| decide(ctx, &shared, name, layout))
}

/// The target of a call, from its registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Task(i32),
    Group(i32),
    /// A `which` value the kernel will refuse by itself.
    Invalid,
}

fn target(args: &[u64; 6], layout: Layout) -> Target {
    // pid_t and int arguments: the low 32 bits, as the kernel reads them.
    let int = |v: u64| v as u32 as i32;
    match layout {
        Layout::PidFirst => Target::Task(int(args[0])),
        Layout::Which { process, pgrp } => {
            let which = u64::from(args[0] as u32);
            if which == process {
                Target::Task(int(args[1]))
            } else if which == pgrp {
                Target::Group(int(args[1]))
            } else {
                Target::Invalid
            }
        }
    }
}

fn decide(ctx: &Ctx, shared: &Shared, name: &'static str, layout: Layout) -> Reply {
    let caller = ctx.notif().pid as i32;
    let tasks = &shared.tasks;
    let verdict = match target(ctx.args(), layout) {
        Target::Invalid => Ok(true),
        Target::Task(pid) => tasks.contains(pid),
        // In the sandbox's PID namespace every group it can name is its own.
        Target::Group(_) if tasks.has_pidns() => Ok(true),
        Target::Group(g) => {
            let g = if g == 0 { tasks.pgrp_of(caller) } else { Ok(g) };
            g.and_then(|g| {
                if g == tasks.root() {
                    Ok(true)
                } else {
                    tasks.contains(g)
                }
            })
        }
    };
    let mut event = SyscallEvent::new(name, SyscallCategory::Process, ctx.notif().pid);
    // The caller must still be waiting: its pid (and so its process group)
    // was not reused while we looked.
    if !ctx.listener().id_valid(ctx.notif().id) {
        return Reply::errno(Errno::EPERM);
    }
    let reply = match verdict {
        Ok(true) => {
            shared.audit(&event, Verdict::Allow);
            return Reply::Respond(Response::Continue);
        }
        Ok(false) => Errno::EPERM,
        Err(e) => Errno::new(i64::from(e.raw_os_error())).unwrap_or(Errno::EPERM),
    };
    event.denied = true;
    shared.audit(&event, Verdict::DenyWith(reply));
    Reply::errno(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_int_registers() {
        let a = |a0: u64, a1: u64| [a0, a1, 0, 0, 0, 0];
        assert_eq!(target(&a(42, 0), Layout::PidFirst), Target::Task(42));
        assert_eq!(
            target(&a(1 << 32 | 42, 0), Layout::PidFirst),
            Target::Task(42)
        );
        let prio = Layout::Which {
            process: PRIO_PROCESS,
            pgrp: PRIO_PGRP,
        };
        assert_eq!(target(&a(0, 7), prio), Target::Task(7));
        assert_eq!(target(&a(1 << 32, 7), prio), Target::Task(7));
        assert_eq!(target(&a(1, 0), prio), Target::Group(0));
        assert_eq!(target(&a(9, 1), prio), Target::Invalid);
    }
}
