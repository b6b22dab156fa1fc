//! The meaning of a filter, evaluated directly from its rules.
//!
//! This is the specification generated programs are tested against: it is
//! written to be obviously right, not fast, and shares no code with the
//! generator beyond name resolution and rule validation.

use alloc::vec::Vec;

use crate::action::Action;
use crate::arch::{Arch, X32_SYSCALL_BIT};
use crate::cond::Cond;
use crate::data::SeccompData;
use crate::filter::{BuildError, Filter};

/// A filter's rules, resolved and validated, ready to be evaluated directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    arch: Arch,
    default: Action,
    x32: Action,
    rules: Vec<(u32, Vec<Cond>, Action)>,
}

impl Reference {
    /// What the filter decides for `data`.
    ///
    /// 1. A foreign `arch` is killed.
    /// 2. On x86_64 a number with the x32 bit gets the x32 action.
    /// 3. The first rule on `nr` whose conditions all hold decides.
    /// 4. Otherwise the default action.
    pub fn evaluate(&self, data: &SeccompData) -> Action {
        if data.arch != self.arch.audit_arch() {
            return Action::KillProcess;
        }
        let nr = data.nr_bits();
        if self.arch.has_x32_bit() && nr & X32_SYSCALL_BIT != 0 {
            return self.x32;
        }
        for (rule_nr, conds, action) in &self.rules {
            if *rule_nr == nr
                && conds
                    .iter()
                    .all(|c| c.matches(data.args[c.arg().get() as usize]))
            {
                return *action;
            }
        }
        self.default
    }
}

impl Filter {
    /// The filter's rules resolved for direct evaluation, or the same error
    /// [`Filter::build`] would give.
    pub fn reference(&self) -> Result<Reference, BuildError> {
        let rules = self
            .resolve()?
            .into_iter()
            .map(|r| (r.nr, r.conds.to_vec(), r.action))
            .collect();
        Ok(Reference {
            arch: self.arch(),
            default: self.current_default_action(),
            x32: self.current_x32_action(),
            rules,
        })
    }

    /// What this filter decides for `data`, evaluated from the rules without
    /// generating a program (see [`Reference::evaluate`]).
    ///
    /// ```
    /// use sandlock_bpf::{Action, Arch, Errno, Filter, Rule, SeccompData};
    /// let f = Filter::new(Arch::Aarch64)
    ///     .default_action(Action::Allow)
    ///     .rule(Rule::named("openat", Action::Errno(Errno::EACCES)));
    /// let openat = SeccompData::new(Arch::Aarch64, 56, [0; 6]);
    /// assert_eq!(f.evaluate(&openat)?, Action::Errno(Errno::EACCES));
    /// let on_x86 = SeccompData::new(Arch::X86_64, 56, [0; 6]);
    /// assert_eq!(f.evaluate(&on_x86)?, Action::KillProcess);
    /// # Ok::<(), sandlock_bpf::BuildError>(())
    /// ```
    pub fn evaluate(&self, data: &SeccompData) -> Result<Action, BuildError> {
        Ok(self.reference()?.evaluate(data))
    }
}
