//! The supervisor feature of the limits: which calls the filter sends to
//! the supervisor, and their handlers.

use std::sync::Arc;

use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};
use sandlock_notify::{BuildError, Ctx, Reply, Response, SupervisorBuilder};
use sandlock_policy::{Policy, SyscallCategory, SyscallEvent, Verdict};

use super::memory::{self, Answer};
use super::{Mechanisms, ProcessCap};
use crate::error::Error;
use crate::supervise::{Doc, Feature, Shared};

/// `PROT_WRITE`.
const PROT_WRITE: u64 = 0x2;
/// `MAP_NORESERVE`.
const MAP_NORESERVE: u64 = 0x4000;
/// `IPC_CREAT`.
const IPC_CREAT: u64 = 0o1000;

/// The calls of the memory accounting.
const MEMORY_CALLS: [&str; 4] = ["mmap", "mremap", "brk", "shmget"];
/// The calls that make a task.
const FORK_CALLS: [&str; 3] = ["fork", "vfork", "clone"];

/// The rows of the deny-list table.
pub(crate) const DOC_MEMORY: Doc = Doc {
    syscalls: &MEMORY_CALLS,
    refused: "with `max_memory`: `mmap` with `PROT_WRITE` and without `MAP_NORESERVE`, every `mremap`, `brk` other than the query, `shmget` with `IPC_CREAT`",
    answer: "the supervisor: ENOMEM (`brk`: the current break) when the sandbox would pass its memory limit",
    reason: "hold `max_memory` for the whole sandbox (see docs/resources.md)",
};
/// The row of the fork counting.
pub(crate) const DOC_FORKS: Doc = Doc {
    syscalls: &FORK_CALLS,
    refused: "with `max_processes` where neither RLIMIT_NPROC in a user namespace nor a pids cgroup holds it",
    answer: "the supervisor: EAGAIN when one more task would pass the limit",
    reason: "hold `max_processes` (see docs/resources.md)",
};

/// The feature, when the policy has a memory or process limit.
pub(crate) fn feature(
    policy: &Policy,
    mech: Mechanisms,
) -> Result<Option<Box<dyn Feature>>, Error> {
    let memory = !policy.max_memory().is_unlimited();
    let forks = !policy.max_processes().is_unlimited() && mech.processes == ProcessCap::Supervisor;
    Ok((memory || forks).then(|| Box::new(Limits { memory, forks }) as Box<dyn Feature>))
}

struct Limits {
    memory: bool,
    forks: bool,
}

impl Feature for Limits {
    fn name(&self) -> &'static str {
        "resource limits"
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        // Without a supervisor, `confine_current` refuses these limits.
        if !supervised {
            return Vec::new();
        }
        let n = Action::UserNotif;
        let mut rules = Vec::new();
        if self.memory {
            rules.push(
                Rule::named("mmap", n)
                    .when(Cond::masked_eq(ArgIndex::A2, PROT_WRITE, PROT_WRITE))
                    .when(Cond::masked_eq(ArgIndex::A3, MAP_NORESERVE, 0)),
            );
            rules.push(Rule::named("mremap", n));
            rules.push(Rule::named("brk", n).when(Cond::ne(ArgIndex::A0, 0)));
            rules.push(
                Rule::named("shmget", n)
                    .when(Cond::masked_eq(ArgIndex::A2, IPC_CREAT, IPC_CREAT).u32()),
            );
        }
        if self.forks {
            rules.extend(FORK_CALLS.iter().map(|c| Rule::named(c, n)));
        }
        rules
    }

    fn register(
        &self,
        mut sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        let Some(rt) = shared.limits.clone() else {
            return Ok(sup);
        };
        let arch = sandlock_bpf::Arch::native();
        let nr = |name: &str| arch.and_then(|a| a.syscall_nr(name));
        if self.memory {
            for name in MEMORY_CALLS {
                let Some(nr) = nr(name) else { continue };
                let (rt, shared) = (rt.clone(), shared.clone());
                sup = sup.handle(nr, move |ctx: &Ctx| {
                    let Some(meter) = &rt.memory else {
                        return Reply::Respond(Response::Continue);
                    };
                    let req = memory::request(name, ctx.args());
                    match meter.judge(&rt, Some(ctx), ctx.notif().pid as i32, req) {
                        Answer::Allow => Reply::Respond(Response::Continue),
                        Answer::NoMemory => {
                            refused(&shared, name, ctx, SyscallCategory::Memory, Errno::ENOMEM)
                        }
                        Answer::Break(b) => {
                            refused(&shared, name, ctx, SyscallCategory::Memory, Errno::ENOMEM);
                            Reply::Respond(Response::Value(b as i64))
                        }
                    }
                })?;
            }
        }
        if self.forks {
            for name in FORK_CALLS {
                let Some(nr) = nr(name) else { continue };
                let (rt, shared) = (rt.clone(), shared.clone());
                sup = sup.handle(nr, move |ctx: &Ctx| {
                    let Some(counter) = &rt.forks else {
                        return Reply::Respond(Response::Continue);
                    };
                    match counter.judge(&rt, ctx.notif().pid as i32) {
                        Ok(()) => Reply::Respond(Response::Continue),
                        Err(_) => {
                            refused(&shared, name, ctx, SyscallCategory::Process, Errno::EAGAIN)
                        }
                    }
                })?;
            }
        }
        Ok(sup)
    }
}

/// Records a refusal in the audit log and answers `errno`.
fn refused(
    shared: &Shared,
    name: &str,
    ctx: &Ctx,
    category: SyscallCategory,
    errno: Errno,
) -> Reply {
    let mut event = SyscallEvent::new(name, category, ctx.notif().pid);
    event.denied = true;
    shared.audit(&event, Verdict::DenyWith(errno));
    Reply::errno(errno)
}
