//! The filter builder: an architecture, a default action and rules.

use alloc::string::String;
use alloc::vec::Vec;

use crate::action::Action;
use crate::arch::{Arch, X32_SYSCALL_BIT};
use crate::cond::{ArgIndex, CmpOp, Cond, Width};
use crate::errno::Errno;
use crate::program::Program;
use crate::rule::{Rule, Syscall};

/// The most instructions the kernel accepts in one program (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

/// Why a filter could not be turned into a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A rule names a syscall the architecture's table does not have.
    #[error("unknown syscall {name:?} on {arch}")]
    UnknownSyscall {
        /// The name as given.
        name: String,
        /// The filter's architecture.
        arch: Arch,
    },
    /// A rule names an x32 syscall number on x86_64. Such numbers are refused
    /// before dispatch, so the rule could never apply.
    #[error(
        "syscall number {nr:#x} has the x32 bit (0x40000000): on x86_64 such \
         numbers get the x32 action before any rule is looked at"
    )]
    X32Number {
        /// The number as given.
        nr: u32,
    },
    /// A [`Width::U32`] condition has a value or mask that does not fit in 32 bits.
    #[error(
        "condition on {arg} of syscall {nr} compares 32 bits but its operand \
         {value:#x} does not fit in 32 bits"
    )]
    OperandTooWide {
        /// The syscall number of the rule.
        nr: u32,
        /// The argument of the condition.
        arg: ArgIndex,
        /// The offending value or mask.
        value: u64,
    },
    /// A masked-equal condition's value has bits outside its mask, so it could
    /// never match.
    #[error(
        "condition on {arg} of syscall {nr} can never match: value {value:#x} \
         has bits outside mask {mask:#x}"
    )]
    ValueOutsideMask {
        /// The syscall number of the rule.
        nr: u32,
        /// The argument of the condition.
        arg: ArgIndex,
        /// The mask.
        mask: u64,
        /// The value compared with the masked argument.
        value: u64,
    },
    /// The program would be longer than the kernel accepts.
    #[error(
        "the program needs at least {len} instructions; the kernel accepts at \
         most {BPF_MAXINSNS}"
    )]
    TooLong {
        /// A lower bound of the length the program would have.
        len: usize,
    },
    /// The generator broke one of its own invariants. This is a bug in
    /// `sandlock-bpf`; no program is produced.
    #[error("internal error in the BPF generator: {0}")]
    Internal(&'static str),
}

/// A seccomp filter under construction.
///
/// The generated program checks, in this order:
/// 1. `seccomp_data.arch` is this filter's architecture, else
///    [`Action::KillProcess`];
/// 2. on x86_64, the syscall number has no x32 bit (`0x4000_0000`), else the
///    x32 action (default `Errno(ENOSYS)`, as a kernel without x32 support
///    answers);
/// 3. the rules of the syscall, in order; the first that matches decides;
/// 4. otherwise the default action (by default [`Action::KillProcess`]: a
///    filter fails closed unless told otherwise).
///
/// ```
/// use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Rule};
/// let program = Filter::new(Arch::X86_64)
///     .default_action(Action::Allow)
///     .rule(Rule::named("ptrace", Action::Errno(Errno::EPERM)))
///     .rule(Rule::named("ioctl", Action::Errno(Errno::EPERM))
///         .when(Cond::eq(ArgIndex::A1, 0x5412 /* TIOCSTI */).u32()))
///     .build()?;
/// assert!(program.len() < 20);
/// # Ok::<(), sandlock_bpf::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    arch: Arch,
    default: Action,
    x32: Action,
    rules: Vec<Rule>,
}

/// A rule whose syscall is resolved and whose conditions are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resolved<'a> {
    pub nr: u32,
    pub conds: &'a [Cond],
    pub action: Action,
}

impl Filter {
    /// An empty filter for `arch`: default action [`Action::KillProcess`],
    /// x32 action `Errno(ENOSYS)`.
    pub fn new(arch: Arch) -> Filter {
        Filter {
            arch,
            default: Action::KillProcess,
            x32: Action::Errno(Errno::ENOSYS),
            rules: Vec::new(),
        }
    }

    /// Sets the action for syscalls no rule matches.
    pub fn default_action(mut self, action: Action) -> Filter {
        self.default = action;
        self
    }

    /// Sets the action for x32 syscall numbers on x86_64 (ignored elsewhere).
    pub fn x32_action(mut self, action: Action) -> Filter {
        self.x32 = action;
        self
    }

    /// Adds a rule after the existing ones.
    pub fn rule(mut self, rule: Rule) -> Filter {
        self.rules.push(rule);
        self
    }

    /// Adds a rule after the existing ones, in place.
    pub fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// The target architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The action for syscalls no rule matches.
    pub fn current_default_action(&self) -> Action {
        self.default
    }

    /// The action for x32 syscall numbers on x86_64.
    pub fn current_x32_action(&self) -> Action {
        self.x32
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Generates the seccomp program, or says why it cannot.
    pub fn build(&self) -> Result<Program, BuildError> {
        let resolved = self.resolve()?;
        let insns = crate::codegen::generate(self, &resolved)?;
        Ok(Program::new(self.arch, insns))
    }

    /// Resolves names to numbers and checks every condition, in rule order.
    pub(crate) fn resolve(&self) -> Result<Vec<Resolved<'_>>, BuildError> {
        self.rules.iter().map(|r| self.resolve_rule(r)).collect()
    }

    fn resolve_rule<'a>(&self, rule: &'a Rule) -> Result<Resolved<'a>, BuildError> {
        let nr = match rule.syscall() {
            Syscall::Nr(nr) => *nr,
            Syscall::Name(name) => {
                self.arch
                    .syscall_nr(name)
                    .ok_or_else(|| BuildError::UnknownSyscall {
                        name: name.clone(),
                        arch: self.arch,
                    })?
            }
        };
        if self.arch.has_x32_bit() && nr & X32_SYSCALL_BIT != 0 {
            return Err(BuildError::X32Number { nr });
        }
        for c in rule.conditions() {
            check_cond(nr, c)?;
        }
        Ok(Resolved {
            nr,
            conds: rule.conditions(),
            action: rule.action(),
        })
    }
}

impl Extend<Rule> for Filter {
    fn extend<T: IntoIterator<Item = Rule>>(&mut self, iter: T) {
        if self.rules.is_empty() {
            // A `Vec` given to a filter without rules is taken as it is:
            // collecting its own iterator keeps its buffer (no copy).
            self.rules = iter.into_iter().collect();
        } else {
            self.rules.extend(iter);
        }
    }
}

fn check_cond(nr: u32, c: &Cond) -> Result<(), BuildError> {
    let arg = c.arg();
    if c.width() == Width::U32 {
        let mask = match c.op() {
            CmpOp::MaskedEq(m) => m,
            _ => 0,
        };
        for value in [c.value(), mask] {
            if value > u64::from(u32::MAX) {
                return Err(BuildError::OperandTooWide { nr, arg, value });
            }
        }
    }
    if let CmpOp::MaskedEq(mask) = c.op()
        && c.value() & !mask != 0
    {
        return Err(BuildError::ValueOutsideMask {
            nr,
            arg,
            mask,
            value: c.value(),
        });
    }
    Ok(())
}
