//! A rule: a syscall, conditions on its arguments, and an action.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::action::Action;
use crate::cond::Cond;

/// The syscall a rule is about: a number, or a name looked up in the
/// filter's architecture table when the filter is built.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Syscall {
    /// A raw syscall number of the filter's architecture.
    Nr(u32),
    /// A name such as `"openat"`; unknown names are a build error.
    Name(String),
}

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Syscall::Nr(nr) => write!(f, "#{nr}"),
            Syscall::Name(name) => f.write_str(name),
        }
    }
}

/// One rule: when `syscall` is called and every condition holds, take
/// `action`.
///
/// Several rules on one syscall are tried in the order they were added to the
/// filter; the first whose conditions all hold decides. A rule with no
/// conditions always matches.
///
/// ```
/// use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};
/// let r = Rule::named("socket", Action::Errno(Errno::EAFNOSUPPORT))
///     .when(Cond::ne(ArgIndex::A0, 1 /* AF_UNIX */).u32());
/// assert_eq!(r.conditions().len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    syscall: Syscall,
    conds: Vec<Cond>,
    action: Action,
}

impl Rule {
    /// A rule on `syscall` with no conditions yet.
    pub fn new(syscall: Syscall, action: Action) -> Rule {
        Rule {
            syscall,
            conds: Vec::new(),
            action,
        }
    }

    /// A rule on syscall number `nr`.
    pub fn nr(nr: u32, action: Action) -> Rule {
        Rule::new(Syscall::Nr(nr), action)
    }

    /// A rule on the syscall called `name` in the filter's architecture.
    pub fn named(name: &str, action: Action) -> Rule {
        Rule::new(Syscall::Name(String::from(name)), action)
    }

    /// This rule with one more condition (all conditions must hold).
    pub fn when(mut self, cond: Cond) -> Rule {
        self.conds.push(cond);
        self
    }

    /// This rule with more conditions (all conditions must hold).
    pub fn when_all(mut self, conds: impl IntoIterator<Item = Cond>) -> Rule {
        self.conds.extend(conds);
        self
    }

    /// The syscall this rule is about.
    pub fn syscall(&self) -> &Syscall {
        &self.syscall
    }

    /// The conditions, all of which must hold.
    pub fn conditions(&self) -> &[Cond] {
        &self.conds
    }

    /// The action taken when the rule matches.
    pub fn action(&self) -> Action {
        self.action
    }

    /// Whether every condition holds for these argument values.
    pub fn matches_args(&self, args: &[u64; 6]) -> bool {
        self.conds
            .iter()
            .all(|c| c.matches(args[c.arg().get() as usize]))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.syscall)?;
        for (i, c) in self.conds.iter().enumerate() {
            f.write_str(if i == 0 { " if " } else { " && " })?;
            write!(f, "{c}")?;
        }
        write!(f, " => {}", self.action)
    }
}
