//! A classic-BPF interpreter with the kernel's seccomp acceptance rules.
//!
//! [`check`] refuses what the kernel refuses when a seccomp filter is loaded
//! (`bpf_check_classic()` in `net/core/filter.c`, then
//! `seccomp_check_filter()` in `kernel/seccomp.c`): an empty or too long
//! program, opcodes outside seccomp's list, loads that are not 32-bit,
//! aligned and inside `struct seccomp_data`, jumps past the end, division by
//! a constant 0, shifts by 32 or more, scratch slots out of range or read
//! before written, and a last instruction that is not a return.
//!
//! [`run`] then executes a checked program over a [`SeccompData`]. Division by
//! a zero index register returns 0 (what the kernel's translation of classic
//! BPF does); shifts by the index register use its low 5 bits. Nothing here
//! panics, whatever the input.

use crate::action::Action;
use crate::data::{SECCOMP_DATA_SIZE, SeccompData};
use crate::filter::BPF_MAXINSNS;
use crate::insn::{Insn, op::*};

/// The number of scratch memory slots (`BPF_MEMWORDS`).
pub const BPF_MEMWORDS: u32 = 16;

/// Why the kernel would refuse a program (or, for `FellOffEnd`, why it could
/// not be run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// The program has no instructions.
    #[error("the program is empty")]
    Empty,
    /// The program has more than [`BPF_MAXINSNS`] instructions.
    #[error("the program has {len} instructions; the kernel accepts at most {BPF_MAXINSNS}")]
    TooLong {
        /// The number of instructions.
        len: usize,
    },
    /// An opcode seccomp does not accept.
    #[error("instruction {pc}: opcode {code:#06x} is not allowed in a seccomp filter")]
    Opcode {
        /// The index of the instruction.
        pc: usize,
        /// The opcode.
        code: u16,
    },
    /// A load that is misaligned or outside `struct seccomp_data`.
    #[error("instruction {pc}: load at offset {k} is misaligned or outside seccomp_data")]
    Load {
        /// The index of the instruction.
        pc: usize,
        /// The offset.
        k: u32,
    },
    /// A jump whose target is past the last instruction.
    #[error("instruction {pc}: jump target is past the end of the program")]
    Jump {
        /// The index of the instruction.
        pc: usize,
    },
    /// A division by the constant 0.
    #[error("instruction {pc}: division by the constant 0")]
    DivByZero {
        /// The index of the instruction.
        pc: usize,
    },
    /// A shift by a constant of 32 or more.
    #[error("instruction {pc}: shift by {k}, which is not below 32")]
    Shift {
        /// The index of the instruction.
        pc: usize,
        /// The shift amount.
        k: u32,
    },
    /// A scratch slot index of 16 or more.
    #[error("instruction {pc}: scratch slot {k} does not exist ({BPF_MEMWORDS} slots)")]
    Scratch {
        /// The index of the instruction.
        pc: usize,
        /// The slot.
        k: u32,
    },
    /// A scratch slot that some path reads before writing.
    #[error("instruction {pc}: scratch slot {k} may be read before it is written")]
    Uninit {
        /// The index of the instruction.
        pc: usize,
        /// The slot.
        k: u32,
    },
    /// The last instruction is not a return.
    #[error("the last instruction is not a return")]
    NoFinalRet,
    /// Execution left the program without a return (cannot happen after
    /// [`check`]; reported rather than assumed).
    #[error("execution fell off the end of the program at instruction {pc}")]
    FellOffEnd {
        /// Where execution was.
        pc: usize,
    },
}

/// The result of running a program on one syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The raw `SECCOMP_RET_*` value returned.
    pub ret: u32,
    /// How many instructions ran, the final return included.
    pub steps: usize,
}

impl Outcome {
    /// The action `ret` encodes, if it is one [`Action`] can express.
    pub fn action(&self) -> Option<Action> {
        Action::from_ret(self.ret)
    }
}

const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
const LD_W_LEN: u16 = BPF_LD | BPF_W | BPF_LEN;
const LDX_W_LEN: u16 = BPF_LDX | BPF_W | BPF_LEN;
const LD_IMM: u16 = BPF_LD | BPF_IMM;
const LDX_IMM: u16 = BPF_LDX | BPF_IMM;
const LD_MEM: u16 = BPF_LD | BPF_MEM;
const LDX_MEM: u16 = BPF_LDX | BPF_MEM;
const RET_K: u16 = BPF_RET | BPF_K;
const RET_A: u16 = BPF_RET | BPF_A;
const TAX: u16 = BPF_MISC | BPF_TAX;
const TXA: u16 = BPF_MISC | BPF_TXA;
const NEG: u16 = BPF_ALU | BPF_NEG;
const JA: u16 = BPF_JMP | BPF_JA;
const JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
const JEQ_X: u16 = BPF_JMP | BPF_JEQ | BPF_X;
const JGT_K: u16 = BPF_JMP | BPF_JGT | BPF_K;
const JGT_X: u16 = BPF_JMP | BPF_JGT | BPF_X;
const JGE_K: u16 = BPF_JMP | BPF_JGE | BPF_K;
const JGE_X: u16 = BPF_JMP | BPF_JGE | BPF_X;
const JSET_K: u16 = BPF_JMP | BPF_JSET | BPF_K;
const JSET_X: u16 = BPF_JMP | BPF_JSET | BPF_X;

/// The offset a conditional jump takes.
fn branch(insn: &Insn, taken: bool) -> usize {
    usize::from(if taken { insn.jt } else { insn.jf })
}

/// The ALU operations seccomp accepts (with `BPF_K` or `BPF_X`): no `MOD`.
const ALU_OPS: [u16; 9] = [
    BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH,
];
const JMP_OPS: [u16; 4] = [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET];

fn is_alu(code: u16) -> bool {
    code & !(0xf0 | BPF_X) == BPF_ALU && ALU_OPS.contains(&(code & 0xf0))
}

fn is_cond_jump(code: u16) -> bool {
    code & !(0xf0 | BPF_X) == BPF_JMP && JMP_OPS.contains(&(code & 0xf0))
}

/// Checks `insns` the way the kernel does when a seccomp filter is loaded.
pub fn check(insns: &[Insn]) -> Result<(), InterpError> {
    let len = insns.len();
    if len == 0 {
        return Err(InterpError::Empty);
    }
    if len > BPF_MAXINSNS {
        return Err(InterpError::TooLong { len });
    }
    for (pc, insn) in insns.iter().enumerate() {
        check_insn(pc, insn, len)?;
    }
    match insns.last().map(|i| i.code) {
        Some(RET_K | RET_A) => {}
        _ => return Err(InterpError::NoFinalRet),
    }
    check_scratch(insns)
}

fn check_insn(pc: usize, insn: &Insn, len: usize) -> Result<(), InterpError> {
    let (code, k) = (insn.code, insn.k);
    // Instructions left after `pc`.
    let room = len - pc - 1;
    match code {
        LD_W_ABS => {
            if k >= SECCOMP_DATA_SIZE || k % 4 != 0 {
                return Err(InterpError::Load { pc, k });
            }
        }
        LD_MEM | LDX_MEM | BPF_ST | BPF_STX => {
            if k >= BPF_MEMWORDS {
                return Err(InterpError::Scratch { pc, k });
            }
        }
        JA => {
            if usize::try_from(k).map_or(true, |k| k >= room) {
                return Err(InterpError::Jump { pc });
            }
        }
        c if is_cond_jump(c) => {
            if usize::from(insn.jt) >= room || usize::from(insn.jf) >= room {
                return Err(InterpError::Jump { pc });
            }
        }
        c if is_alu(c) => {
            if c & BPF_X == 0 {
                match c & 0xf0 {
                    BPF_DIV if k == 0 => return Err(InterpError::DivByZero { pc }),
                    BPF_LSH | BPF_RSH if k >= 32 => return Err(InterpError::Shift { pc, k }),
                    _ => {}
                }
            }
        }
        LD_W_LEN | LDX_W_LEN | LD_IMM | LDX_IMM | RET_K | RET_A | TAX | TXA | NEG => {}
        _ => return Err(InterpError::Opcode { pc, code }),
    }
    Ok(())
}

/// Every scratch slot read must be written first on every path to the read
/// (the kernel's `check_load_and_stores()`). Jumps only go forward, so one
/// pass in program order sees every predecessor of an instruction first.
fn check_scratch(insns: &[Insn]) -> Result<(), InterpError> {
    let mut masks = alloc::vec![u16::MAX; insns.len()];
    let mut valid: u16 = 0;
    for (pc, insn) in insns.iter().enumerate() {
        valid &= masks[pc];
        let bit = 1u16.checked_shl(insn.k).unwrap_or(0);
        let mut merge = |skip: usize| {
            if let Some(m) = pc.checked_add(1 + skip).and_then(|t| masks.get_mut(t)) {
                *m &= valid;
            }
        };
        match insn.code {
            BPF_ST | BPF_STX => valid |= bit,
            LD_MEM | LDX_MEM if valid & bit == 0 => {
                return Err(InterpError::Uninit { pc, k: insn.k });
            }
            JA => {
                merge(insn.k as usize);
                valid = u16::MAX;
            }
            c if is_cond_jump(c) => {
                merge(usize::from(insn.jt));
                merge(usize::from(insn.jf));
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A program that passed [`check`], ready to run many times.
#[derive(Clone, Copy, Debug)]
pub struct Checked<'a> {
    insns: &'a [Insn],
}

impl<'a> Checked<'a> {
    /// Checks `insns` (see [`check`]).
    pub fn new(insns: &'a [Insn]) -> Result<Checked<'a>, InterpError> {
        check(insns)?;
        Ok(Checked { insns })
    }

    /// Runs the program on `data`.
    pub fn run(&self, data: &SeccompData) -> Result<Outcome, InterpError> {
        execute(self.insns, data)
    }
}

/// Checks `insns`, then runs them on `data`.
///
/// ```
/// use sandlock_bpf::{Action, Arch, Errno, Filter, Rule, SeccompData};
/// let p = Filter::new(Arch::X86_64)
///     .default_action(Action::Allow)
///     .rule(Rule::named("ptrace", Action::Errno(Errno::EPERM)))
///     .build()?;
/// let out = sandlock_bpf::interp::run(p.insns(), &SeccompData::new(Arch::X86_64, 101, [0; 6]))?;
/// assert_eq!(out.action(), Some(Action::Errno(Errno::EPERM)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(insns: &[Insn], data: &SeccompData) -> Result<Outcome, InterpError> {
    Checked::new(insns)?.run(data)
}

fn execute(insns: &[Insn], data: &SeccompData) -> Result<Outcome, InterpError> {
    let (mut a, mut x): (u32, u32) = (0, 0);
    let mut mem = [0u32; BPF_MEMWORDS as usize];
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        let insn = insns.get(pc).ok_or(InterpError::FellOffEnd { pc })?;
        steps += 1;
        let k = insn.k;
        let slot = |pc| {
            usize::try_from(k)
                .ok()
                .filter(|&s| s < BPF_MEMWORDS as usize)
                .ok_or(InterpError::Scratch { pc, k })
        };
        let mut skip = 0usize;
        match insn.code {
            LD_W_ABS => a = data.word(k).ok_or(InterpError::Load { pc, k })?,
            LD_W_LEN => a = SECCOMP_DATA_SIZE,
            LDX_W_LEN => x = SECCOMP_DATA_SIZE,
            LD_IMM => a = k,
            LDX_IMM => x = k,
            LD_MEM => a = mem[slot(pc)?],
            LDX_MEM => x = mem[slot(pc)?],
            BPF_ST => mem[slot(pc)?] = a,
            BPF_STX => mem[slot(pc)?] = x,
            TAX => x = a,
            TXA => a = x,
            NEG => a = a.wrapping_neg(),
            RET_K => return Ok(Outcome { ret: k, steps }),
            RET_A => return Ok(Outcome { ret: a, steps }),
            JA => skip = usize::try_from(k).map_err(|_| InterpError::Jump { pc })?,
            JEQ_K => skip = branch(insn, a == k),
            JEQ_X => skip = branch(insn, a == x),
            JGT_K => skip = branch(insn, a > k),
            JGT_X => skip = branch(insn, a > x),
            JGE_K => skip = branch(insn, a >= k),
            JGE_X => skip = branch(insn, a >= x),
            JSET_K => skip = branch(insn, a & k != 0),
            JSET_X => skip = branch(insn, a & x != 0),
            c if is_alu(c) => {
                let v = if c & BPF_X != 0 { x } else { k };
                a = match c & 0xf0 {
                    BPF_ADD => a.wrapping_add(v),
                    BPF_SUB => a.wrapping_sub(v),
                    BPF_MUL => a.wrapping_mul(v),
                    BPF_DIV => match a.checked_div(v) {
                        Some(q) => q,
                        // Classic BPF returns 0 on division by zero.
                        None => return Ok(Outcome { ret: 0, steps }),
                    },
                    BPF_AND => a & v,
                    BPF_OR => a | v,
                    BPF_XOR => a ^ v,
                    BPF_LSH => a.wrapping_shl(v & 31),
                    _ => a.wrapping_shr(v & 31),
                };
            }
            code => return Err(InterpError::Opcode { pc, code }),
        }
        pc = pc
            .checked_add(1)
            .and_then(|p| p.checked_add(skip))
            .ok_or(InterpError::Jump { pc })?;
    }
}
