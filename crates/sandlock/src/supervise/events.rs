//! The policy callback's reported events: process creation and address-space
//! changes.
//!
//! With a policy callback that asks for [`SyscallCategory::Process`],
//! `clone`, `fork` and `vfork` are reported; with
//! [`SyscallCategory::Memory`], `mmap`, `mremap` and `brk`. Reported calls
//! are answered at once (CONTINUE: nothing is decided on the task's memory,
//! so the kernel runs the call exactly as the filter allowed) and their
//! event is queued for the callback, whose verdict does not apply.
//!
//! The held categories live with the calls they hold: exec and the file
//! calls in `fs/`, the network calls with the network feature.

use std::sync::Arc;

use sandlock_bpf::{Action, Rule};
use sandlock_notify::{BuildError, SupervisorBuilder, handlers};
use sandlock_policy::{Policy, SyscallCategory};

use super::{Doc, Feature, Shared};
use crate::error::Error;

/// Reported for [`SyscallCategory::Process`].
const PROCESS: [&str; 3] = ["clone", "fork", "vfork"];
/// Reported for [`SyscallCategory::Memory`].
const MEMORY: [&str; 3] = ["mmap", "mremap", "brk"];

/// The row of the deny-list table.
pub(crate) const DOC: Doc = Doc {
    syscalls: &["clone", "fork", "vfork", "mmap", "mremap", "brk"],
    refused: "intercepted while the policy callback asks for process (clone, fork, vfork) or memory (mmap, mremap, brk) events",
    answer: "CONTINUE; the event is reported to the callback",
    reason: "let the callback watch process creation and memory use",
};

/// The feature: on with a callback asking for process or memory events.
pub(crate) fn feature(policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    if policy.policy_fn().is_none() {
        return Ok(None);
    }
    let mut names: Vec<&'static str> = Vec::new();
    if policy.policy_events().contains(SyscallCategory::Process) {
        names.extend(PROCESS);
    }
    if policy.policy_events().contains(SyscallCategory::Memory) {
        names.extend(MEMORY);
    }
    Ok((!names.is_empty()).then(|| Box::new(Reported { names }) as Box<dyn Feature>))
}

struct Reported {
    names: Vec<&'static str>,
}

impl Feature for Reported {
    fn name(&self) -> &'static str {
        "callback events"
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        if !supervised {
            return Vec::new();
        }
        self.names
            .iter()
            .map(|n| Rule::named(n, Action::UserNotif))
            .collect()
    }

    fn register(
        &self,
        mut sup: SupervisorBuilder,
        _shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        for name in &self.names {
            if sandlock_bpf::Arch::native()
                .and_then(|a| a.syscall_nr(name))
                .is_some()
            {
                sup = sup.handle_name(name, handlers::report())?;
            }
        }
        Ok(sup)
    }
}
