//! A readable listing of a classic-BPF program.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::action::Action;
use crate::arch::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Arch, X32_SYSCALL_BIT};
use crate::data::offset;
use crate::insn::{Insn, op::*};

/// A disassembly of any instruction slice, one instruction per line, with
/// absolute jump targets and comments (loaded field, syscall name, action).
///
/// ```
/// use sandlock_bpf::{Action, Arch, Filter};
/// use sandlock_bpf::disasm::Disasm;
/// let p = Filter::new(Arch::X86_64).default_action(Action::Allow).build()?;
/// let text = Disasm::new(p.insns(), Some(Arch::X86_64)).to_string();
/// assert!(text.contains("ld [4]"));
/// assert!(text.contains("; ALLOW"));
/// # Ok::<(), sandlock_bpf::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Disasm<'a> {
    insns: &'a [Insn],
    arch: Option<Arch>,
}

impl<'a> Disasm<'a> {
    /// A listing of `insns`; `arch` names syscall numbers in comments.
    pub fn new(insns: &'a [Insn], arch: Option<Arch>) -> Disasm<'a> {
        Disasm { insns, arch }
    }
}

/// What the accumulator holds before an instruction, on every path to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acc {
    Unknown,
    Word(u32),
}

/// For each instruction, what the accumulator holds on entry (`None` when
/// the instruction is unreachable).
fn accumulator_states(insns: &[Insn]) -> Vec<Option<Acc>> {
    let mut states: Vec<Option<Acc>> = vec![None; insns.len()];
    if let Some(first) = states.first_mut() {
        *first = Some(Acc::Unknown);
    }
    for (pc, insn) in insns.iter().enumerate() {
        let Some(inn) = states[pc] else { continue };
        let out = match insn.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => Acc::Word(insn.k),
            c if matches!(c & 0x07, BPF_LD | BPF_ALU) || c == BPF_MISC | BPF_TXA => Acc::Unknown,
            _ => inn,
        };
        let mut to = |skip: usize| {
            if let Some(slot) = pc.checked_add(1 + skip).and_then(|t| states.get_mut(t)) {
                *slot = Some(match *slot {
                    None => out,
                    Some(s) if s == out => s,
                    Some(_) => Acc::Unknown,
                });
            }
        };
        match insn.code & 0x07 {
            BPF_RET => {}
            BPF_JMP if insn.code & 0xf0 == BPF_JA => to(insn.k as usize),
            BPF_JMP => {
                to(usize::from(insn.jt));
                to(usize::from(insn.jf));
            }
            _ => to(0),
        }
    }
    states
}

fn field_name(k: u32) -> Option<(&'static str, Option<u32>, &'static str)> {
    Some(match k {
        offset::NR => ("nr", None, ""),
        offset::ARCH => ("arch", None, ""),
        offset::IP_LO => ("instruction_pointer", None, " (low)"),
        offset::IP_HI => ("instruction_pointer", None, " (high)"),
        16..=63 if k.is_multiple_of(4) => (
            "args",
            Some((k - 16) / 8),
            if k.is_multiple_of(8) {
                " (low)"
            } else {
                " (high)"
            },
        ),
        _ => return None,
    })
}

fn arch_name(k: u32) -> Option<&'static str> {
    Some(match k {
        AUDIT_ARCH_X86_64 => "AUDIT_ARCH_X86_64",
        AUDIT_ARCH_AARCH64 => "AUDIT_ARCH_AARCH64",
        AUDIT_ARCH_I386 => "AUDIT_ARCH_I386",
        _ => return None,
    })
}

impl Disasm<'_> {
    fn line(
        &self,
        f: &mut fmt::Formatter<'_>,
        pc: usize,
        insn: &Insn,
        acc: Option<Acc>,
    ) -> fmt::Result {
        let k = insn.k;
        let target = |skip: usize| pc + 1 + skip;
        let alu = |o: u16| match o {
            BPF_ADD => "add",
            BPF_SUB => "sub",
            BPF_MUL => "mul",
            BPF_DIV => "div",
            BPF_OR => "or",
            BPF_AND => "and",
            BPF_LSH => "lsh",
            BPF_RSH => "rsh",
            BPF_NEG => "neg",
            BPF_MOD => "mod",
            BPF_XOR => "xor",
            _ => "alu?",
        };
        let jmp = |o: u16| match o {
            BPF_JEQ => "jeq",
            BPF_JGT => "jgt",
            BPF_JGE => "jge",
            BPF_JSET => "jset",
            _ => "jmp?",
        };
        let mut text = String::new();
        let mut comment = String::new();
        use core::fmt::Write as _;
        let c = insn.code;
        match c & 0x07 {
            BPF_LD | BPF_LDX => {
                let x = if c & 0x07 == BPF_LDX { "x" } else { "" };
                let size = match c & 0x18 {
                    BPF_W => "",
                    BPF_H => "h",
                    BPF_B => "b",
                    _ => "?",
                };
                match c & 0xe0 {
                    BPF_ABS => {
                        write!(text, "ld{x}{size} [{k}]")?;
                        if let Some((name, idx, half)) = field_name(k) {
                            match idx {
                                Some(i) => write!(comment, "{name}[{i}]{half}")?,
                                None => write!(comment, "{name}{half}")?,
                            }
                        }
                    }
                    BPF_IND => write!(text, "ld{x}{size} [x + {k}]")?,
                    BPF_IMM => write!(text, "ld{x} #{k:#x}")?,
                    BPF_MEM => write!(text, "ld{x} M[{k}]")?,
                    BPF_LEN => write!(text, "ld{x} #len")?,
                    0xa0 => write!(text, "ldxb 4*([{k}]&0xf)")?,
                    _ => write!(text, ".insn {c:#06x}")?,
                }
            }
            BPF_ST => write!(text, "st M[{k}]")?,
            BPF_STX => write!(text, "stx M[{k}]")?,
            BPF_ALU if c & 0xf0 == BPF_NEG => write!(text, "neg")?,
            BPF_ALU if c & BPF_X != 0 => write!(text, "{} x", alu(c & 0xf0))?,
            BPF_ALU => write!(text, "{} #{k:#x}", alu(c & 0xf0))?,
            BPF_JMP if c & 0xf0 == BPF_JA => write!(text, "ja {}", target(k as usize))?,
            BPF_JMP => {
                let name = jmp(c & 0xf0);
                let (jt, jf) = (target(usize::from(insn.jt)), target(usize::from(insn.jf)));
                if c & BPF_X != 0 {
                    write!(text, "{name} x, {jt}, {jf}")?;
                } else {
                    write!(text, "{name} #{k:#x}, {jt}, {jf}")?;
                    self.jump_comment(&mut comment, c & 0xf0, k, acc)?;
                }
            }
            BPF_RET if c & BPF_A != 0 => write!(text, "ret a")?,
            BPF_RET => {
                write!(text, "ret #{k:#x}")?;
                if let Some(a) = Action::from_ret(k) {
                    write!(comment, "{a}")?;
                }
            }
            _ if c == BPF_MISC | BPF_TAX => write!(text, "tax")?,
            _ if c == BPF_MISC | BPF_TXA => write!(text, "txa")?,
            _ => write!(text, ".insn {c:#06x}, {}, {}, {k:#x}", insn.jt, insn.jf)?,
        }
        if comment.is_empty() {
            writeln!(f, "{pc:4}: {}", text)
        } else {
            writeln!(f, "{pc:4}: {:<28} ; {}", text, comment)
        }
    }

    fn jump_comment(&self, out: &mut String, cond: u16, k: u32, acc: Option<Acc>) -> fmt::Result {
        use core::fmt::Write as _;
        match acc {
            Some(Acc::Word(offset::ARCH)) => {
                if let Some(name) = arch_name(k) {
                    out.write_str(name)?;
                }
            }
            Some(Acc::Word(offset::NR)) if cond == BPF_JSET && k == X32_SYSCALL_BIT => {
                out.write_str("x32 bit")?;
            }
            Some(Acc::Word(offset::NR)) => {
                if let Some(name) = self.arch.and_then(|a| a.syscall_name(k)) {
                    let rel = if cond == BPF_JEQ { "" } else { ">= " };
                    let rel = if cond == BPF_JGT { "> " } else { rel };
                    write!(out, "{rel}{name}")?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Display for Disasm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let states = accumulator_states(self.insns);
        for (pc, (insn, acc)) in self.insns.iter().zip(states).enumerate() {
            self.line(f, pc, insn, acc)?;
        }
        Ok(())
    }
}
