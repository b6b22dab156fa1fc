//! Rules to instructions: arch checks, binary-search dispatch, rule chains.
//!
//! Layout (see `docs/bpf.md`):
//!
//! ```text
//! ld arch; jeq AUDIT_ARCH, +1; ret KILL_PROCESS
//! ld nr; [x86_64: jset X32_BIT, +0, +1; ret x32_action]
//! binary search on nr over intervals, in order:
//!     jge start(right half) -> right subtree, else left subtree
//! each leaf: `ret action` (verdict depends on nr only) or a rule chain
//! ```
//!
//! Everything a constant verdict passes through is `ld [nr|arch]`, `jeq`,
//! `jge`, `jset`, `ja` and `ret #k`, which the kernel's action-cache emulation
//! understands, so it can skip BPF for such numbers.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::action::Action;
use crate::arch::X32_SYSCALL_BIT;
use crate::asm::{Asm, Dest, Label};
use crate::cond::{CmpOp, Cond, Width};
use crate::data::offset;
use crate::filter::{BPF_MAXINSNS, BuildError, Filter, Resolved};
use crate::insn::{Insn, op};

/// What the program does once it knows the syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target<'a> {
    /// The verdict depends on the number only.
    Const(Action),
    /// Rules with conditions, tried in order, then `fallback`.
    Chain {
        rules: Vec<(Vec<&'a Cond>, Action)>,
        fallback: Action,
    },
}

/// Generates the whole program for `filter`, whose rules are `rules`.
pub(crate) fn generate(filter: &Filter, rules: &[Resolved<'_>]) -> Result<Vec<Insn>, BuildError> {
    let arch = filter.arch();
    let default = filter.current_default_action();
    // Laid out longer than the kernel takes: the length that counts is
    // after `shrink`.
    let mut asm = Asm::with_limit(BPF_MAXINSNS * 4);

    asm.load(offset::ARCH);
    let arch_ok = asm.label();
    asm.jump(
        op::BPF_JEQ,
        arch.audit_arch(),
        Dest::To(arch_ok),
        Dest::Next,
    );
    asm.ret(Action::KillProcess.to_ret());
    asm.bind(arch_ok);

    asm.load(offset::NR);
    if arch.has_x32_bit() {
        let native = asm.label();
        asm.jump(op::BPF_JSET, X32_SYSCALL_BIT, Dest::Next, Dest::To(native));
        asm.ret(filter.current_x32_action().to_ret());
        asm.bind(native);
    }

    let intervals = intervals(rules, default);
    emit_tree(&mut asm, &intervals)?;
    let program = crate::shrink::shrink(&asm.finish()?);
    if program.len() > BPF_MAXINSNS {
        return Err(BuildError::TooLong { len: program.len() });
    }
    Ok(program)
}

/// Splits `0..=u32::MAX` into intervals of numbers that share a target,
/// merging neighbours with equal targets. Each entry is `(first nr, target)`;
/// an interval ends where the next begins.
fn intervals<'a>(rules: &[Resolved<'a>], default: Action) -> Vec<(u32, Target<'a>)> {
    let mut by_nr: BTreeMap<u32, Vec<&Resolved<'a>>> = BTreeMap::new();
    for r in rules {
        by_nr.entry(r.nr).or_default().push(r);
    }
    let mut out: Vec<(u32, Target<'a>)> = Vec::new();
    let mut push = |start: u32, target: Target<'a>| match out.last() {
        Some((_, last)) if *last == target => {}
        _ => out.push((start, target)),
    };
    let mut next = 0u64;
    for (nr, chain) in by_nr {
        if u64::from(nr) > next {
            // `next` < `nr` <= u32::MAX, so it fits.
            push(next as u32, Target::Const(default));
        }
        push(nr, target(&chain, default));
        next = u64::from(nr) + 1;
    }
    if let Ok(start) = u32::try_from(next) {
        push(start, Target::Const(default));
    }
    out
}

/// The target of one syscall's rules: unreachable rules and trivially true
/// conditions dropped, and a constant when no condition remains.
fn target<'a>(chain: &[&Resolved<'a>], default: Action) -> Target<'a> {
    let mut rules: Vec<(Vec<&'a Cond>, Action)> = Vec::new();
    for r in chain {
        let mut conds = Vec::new();
        let mut never = false;
        for c in r.conds {
            match trivially(c) {
                Some(true) => {}
                Some(false) => never = true,
                None => conds.push(c),
            }
        }
        if never {
            continue;
        }
        let unconditional = conds.is_empty();
        rules.push((conds, r.action));
        if unconditional {
            break; // later rules on this syscall can never be reached
        }
    }
    let mut fallback = default;
    if rules.last().is_some_and(|(c, _)| c.is_empty())
        && let Some((_, a)) = rules.pop()
    {
        fallback = a;
    }
    // A rule whose action equals what happens when it fails changes nothing.
    while rules.last().is_some_and(|(_, a)| *a == fallback) {
        rules.pop();
    }
    if rules.is_empty() {
        Target::Const(fallback)
    } else {
        Target::Chain { rules, fallback }
    }
}

/// `Some(b)` if the condition is `b` for every argument value.
fn trivially(c: &Cond) -> Option<bool> {
    let max = match c.width() {
        Width::U64 => u64::MAX,
        Width::U32 => u64::from(u32::MAX),
    };
    match c.op() {
        CmpOp::Lt if c.value() == 0 => Some(false),
        CmpOp::Ge if c.value() == 0 => Some(true),
        CmpOp::Gt if c.value() >= max => Some(false),
        CmpOp::Le if c.value() >= max => Some(true),
        CmpOp::MaskedEq(m) if m & max == 0 => Some(c.value() & max == 0),
        _ => None,
    }
}

fn emit_tree(asm: &mut Asm, ivs: &[(u32, Target<'_>)]) -> Result<(), BuildError> {
    match ivs {
        [] => Err(BuildError::Internal("empty dispatch interval list")),
        [(_, target)] => {
            emit_target(asm, target);
            Ok(())
        }
        _ => {
            let (left, right) = ivs.split_at(ivs.len() / 2);
            let right_start = asm.label();
            asm.jump(op::BPF_JGE, right[0].0, Dest::To(right_start), Dest::Next);
            emit_tree(asm, left)?;
            asm.bind(right_start);
            emit_tree(asm, right)
        }
    }
}

fn emit_target(asm: &mut Asm, target: &Target<'_>) {
    match target {
        Target::Const(a) => asm.ret(a.to_ret()),
        Target::Chain { rules, fallback } => {
            let mut rest = rules.as_slice();
            while let Some(((conds, action), after)) = rest.split_first() {
                let next_rule = asm.label();
                let run = bit_run(rest);
                if run.len > 1 {
                    // Rules in a row that each test one bit of the same
                    // word, with one action: any of the bits set.
                    asm.load(run.word);
                    asm.jump(op::BPF_JSET, run.bits, Dest::Next, Dest::To(next_rule));
                    rest = &rest[run.len..];
                } else {
                    for c in conds {
                        emit_cond(asm, c, next_rule);
                    }
                    rest = after;
                }
                asm.ret(action.to_ret());
                asm.bind(next_rule);
            }
            asm.ret(fallback.to_ret());
        }
    }
}

/// The longest run at the head of `rules` whose rules have one condition
/// each, "bit B of the same 32-bit word of an argument is set" (a
/// `MaskedEq` with one bit as mask and value), and the same action: the
/// first matches exactly when any of their bits is set.
struct BitRun {
    len: usize,
    word: u32,
    bits: u32,
}

fn bit_run(rules: &[(Vec<&Cond>, Action)]) -> BitRun {
    let mut run = BitRun {
        len: 0,
        word: 0,
        bits: 0,
    };
    for (conds, action) in rules {
        let Some((word, bit)) = single_bit(conds) else {
            break;
        };
        if run.len > 0 && (word != run.word || *action != rules[0].1) {
            break;
        }
        run.word = word;
        run.bits |= bit;
        run.len += 1;
    }
    run
}

/// `(offset of the word, bit)` when `conds` is one test of one bit being set.
fn single_bit(conds: &[&Cond]) -> Option<(u32, u32)> {
    let [c] = conds else { return None };
    let CmpOp::MaskedEq(m) = c.op() else {
        return None;
    };
    if !m.is_power_of_two() || c.value() != m {
        return None;
    }
    match (c.width(), u32::try_from(m)) {
        (_, Ok(bit)) => Some((offset::arg_lo(c.arg()), bit)),
        (Width::U64, Err(_)) => Some((offset::arg_hi(c.arg()), (m >> 32) as u32)),
        (Width::U32, Err(_)) => None,
    }
}

/// Emits code that falls through when `c` holds and jumps to `fail` when not.
fn emit_cond(asm: &mut Asm, c: &Cond, fail: Label) {
    let pass = asm.label();
    let (p, f) = (Dest::To(pass), Dest::To(fail));
    let (lo_off, hi_off) = (offset::arg_lo(c.arg()), offset::arg_hi(c.arg()));
    let (vh, vl) = ((c.value() >> 32) as u32, c.value() as u32);
    let next = Dest::Next;
    match (c.width(), c.op()) {
        (Width::U32, CmpOp::MaskedEq(m)) => masked_half(asm, lo_off, m as u32, vl, f),
        (Width::U32, op) => {
            asm.load(lo_off);
            low_half(asm, op, vl, p, f);
        }
        (Width::U64, CmpOp::MaskedEq(m)) => {
            masked_half(asm, hi_off, (m >> 32) as u32, vh, f);
            masked_half(asm, lo_off, m as u32, vl, f);
        }
        (Width::U64, CmpOp::Eq) => {
            asm.load(hi_off);
            asm.jump(op::BPF_JEQ, vh, next, f);
            asm.load(lo_off);
            low_half(asm, CmpOp::Eq, vl, p, f);
        }
        (Width::U64, CmpOp::Ne) => {
            asm.load(hi_off);
            asm.jump(op::BPF_JEQ, vh, next, p);
            asm.load(lo_off);
            low_half(asm, CmpOp::Ne, vl, p, f);
        }
        (Width::U64, op @ (CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le)) => {
            let greater = matches!(op, CmpOp::Gt | CmpOp::Ge);
            asm.load(hi_off);
            match low_trivially(op, vl) {
                // The low halves cannot change the answer: one compare of the
                // high halves decides (`arg >= 1 << 32` is `hi >= 1`).
                Some(eq_passes) => {
                    let code = if greater == eq_passes {
                        op::BPF_JGE
                    } else {
                        op::BPF_JGT
                    };
                    let (jt, jf) = if greater { (p, f) } else { (f, p) };
                    asm.jump(code, vh, jt, jf);
                }
                // The high halves decide unless they are equal; then the low
                // halves do.
                None => {
                    let (hi_gt, hi_lt) = if greater { (p, f) } else { (f, p) };
                    let lo = asm.label();
                    // With `vh == 0`, "not above" already means "equal".
                    let not_gt = if vh == 0 { Dest::To(lo) } else { next };
                    if vh != u32::MAX {
                        asm.jump(op::BPF_JGT, vh, hi_gt, not_gt);
                    }
                    if vh != 0 {
                        asm.jump(op::BPF_JEQ, vh, Dest::To(lo), hi_lt);
                    }
                    asm.bind(lo);
                    asm.load(lo_off);
                    low_half(asm, op, vl, p, f);
                }
            }
        }
    }
    asm.bind(pass);
}

/// `Some(b)` if comparing any low half with `v` by `cmp` gives `b`.
fn low_trivially(cmp: CmpOp, v: u32) -> Option<bool> {
    match cmp {
        CmpOp::Ge if v == 0 => Some(true),
        CmpOp::Lt if v == 0 => Some(false),
        CmpOp::Le if v == u32::MAX => Some(true),
        CmpOp::Gt if v == u32::MAX => Some(false),
        _ => None,
    }
}

/// Compares the accumulator (a low half) with `v` and jumps to `p` or `f`.
fn low_half(asm: &mut Asm, cmp: CmpOp, v: u32, p: Dest, f: Dest) {
    let (code, jt, jf) = match cmp {
        CmpOp::Eq | CmpOp::MaskedEq(_) => (op::BPF_JEQ, p, f),
        CmpOp::Ne => (op::BPF_JEQ, f, p),
        CmpOp::Gt => (op::BPF_JGT, p, f),
        CmpOp::Ge => (op::BPF_JGE, p, f),
        CmpOp::Lt => (op::BPF_JGE, f, p),
        CmpOp::Le => (op::BPF_JGT, f, p),
    };
    asm.jump(code, v, jt, jf);
}

/// `word at off & m == v`, falling through when true. Nothing when `m == 0`
/// (then `v == 0`, checked by the builder, and the half always matches).
fn masked_half(asm: &mut Asm, off: u32, m: u32, v: u32, f: Dest) {
    if m == 0 {
        return;
    }
    asm.load(off);
    if m != u32::MAX {
        asm.stmt(op::BPF_ALU | op::BPF_AND | op::BPF_K, m);
    }
    asm.jump(op::BPF_JEQ, v, Dest::Next, f);
}
