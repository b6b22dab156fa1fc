//! A tiny assembler: forward labels, and far conditional jumps bridged.
//!
//! Classic BPF conditional jumps have 8-bit offsets (`jt`, `jf`), so a target
//! more than 255 instructions ahead cannot be reached directly. When a side
//! of a jump is too far, the assembler places an unconditional `JA` (32-bit
//! offset) right after the jump and points that side at it:
//!
//! ```text
//! jge #k, far, next        jge #k, +0, +1
//!                    ==>   ja far
//! next: ...                next: ...
//! ```
//!
//! Inserting trampolines moves code, which can push other jumps out of
//! range, so layout is repeated until no jump needs a new trampoline. Each
//! round only adds trampolines, so this ends. Programs longer than
//! [`BPF_MAXINSNS`](crate::filter::BPF_MAXINSNS) are refused, never truncated.

use alloc::vec;
use alloc::vec::Vec;

use crate::filter::BuildError;
use crate::insn::{Insn, op};

/// A position in the program, bound once, referenced by earlier jumps only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where one side of a conditional jump goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The instruction after the jump.
    Next,
    /// A label bound later.
    To(Label),
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Insn(Insn),
    Jump {
        code: u16,
        k: u32,
        jt: Dest,
        jf: Dest,
    },
    Bind(Label),
}

/// A program under construction.
#[derive(Debug)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: usize,
    /// The longest program laid out (longer is `TooLong`).
    limit: usize,
}

impl Asm {
    #[cfg(test)]
    pub(crate) fn new() -> Asm {
        Asm::with_limit(crate::filter::BPF_MAXINSNS)
    }

    /// An assembler refusing programs over `limit` instructions.
    pub(crate) fn with_limit(limit: usize) -> Asm {
        Asm {
            items: Vec::new(),
            labels: 0,
            limit,
        }
    }

    /// A fresh, unbound label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `label` to the next instruction emitted.
    pub(crate) fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// A non-jump instruction.
    pub(crate) fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(Insn::stmt(code, k)));
    }

    /// `BPF_LD | BPF_W | BPF_ABS` at `offset`.
    pub(crate) fn load(&mut self, offset: u32) {
        self.stmt(op::BPF_LD | op::BPF_W | op::BPF_ABS, offset);
    }

    /// `BPF_RET | BPF_K`.
    pub(crate) fn ret(&mut self, value: u32) {
        self.stmt(op::BPF_RET | op::BPF_K, value);
    }

    /// A conditional jump comparing the accumulator with `k`.
    /// `cond` is one of `BPF_JEQ`, `BPF_JGT`, `BPF_JGE`, `BPF_JSET`.
    pub(crate) fn jump(&mut self, cond: u16, k: u32, jt: Dest, jf: Dest) {
        self.items.push(Item::Jump {
            code: op::BPF_JMP | cond | op::BPF_K,
            k,
            jt,
            jf,
        });
    }

    /// Lays the program out and resolves every jump.
    pub(crate) fn finish(self) -> Result<Vec<Insn>, BuildError> {
        // Per item: does the true / false side go through a trampoline?
        let mut tramp = vec![[false; 2]; self.items.len()];
        loop {
            let layout = self.layout(&tramp)?;
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                let Item::Jump { jt, jf, .. } = *item else {
                    continue;
                };
                for (side, dest) in [jt, jf].into_iter().enumerate() {
                    if tramp[i][side] {
                        continue;
                    }
                    if let Dest::To(l) = dest {
                        let from = layout.item_pos[i] + 1;
                        if forward(from, layout.target(l)?)? > usize::from(u8::MAX) {
                            tramp[i][side] = true;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return self.emit(&tramp, &layout);
            }
        }
    }

    fn layout(&self, tramp: &[[bool; 2]]) -> Result<Layout, BuildError> {
        let mut item_pos = Vec::with_capacity(self.items.len());
        let mut label_pos = vec![None; self.labels];
        let mut pos = 0usize;
        for (item, t) in self.items.iter().zip(tramp) {
            item_pos.push(pos);
            match item {
                Item::Bind(l) => {
                    let slot = label_pos
                        .get_mut(l.0)
                        .ok_or(BuildError::Internal("label out of range"))?;
                    if slot.replace(pos).is_some() {
                        return Err(BuildError::Internal("label bound twice"));
                    }
                }
                Item::Insn(_) => pos += 1,
                Item::Jump { .. } => pos += 1 + usize::from(t[0]) + usize::from(t[1]),
            }
            if pos > self.limit {
                return Err(BuildError::TooLong { len: pos });
            }
        }
        Ok(Layout {
            item_pos,
            label_pos,
            len: pos,
        })
    }

    fn emit(&self, tramp: &[[bool; 2]], layout: &Layout) -> Result<Vec<Insn>, BuildError> {
        let mut out = Vec::with_capacity(layout.len);
        for (item, t) in self.items.iter().zip(tramp) {
            match *item {
                Item::Bind(_) => {}
                Item::Insn(insn) => out.push(insn),
                Item::Jump { code, k, jt, jf } => {
                    let pos = out.len();
                    let after = pos + 1 + usize::from(t[0]) + usize::from(t[1]);
                    let dest = |d: Dest| match d {
                        Dest::Next => Ok(after),
                        Dest::To(l) => layout.target(l),
                    };
                    let (dt, df) = (dest(jt)?, dest(jf)?);
                    let off_t = if t[0] { 0 } else { forward(pos + 1, dt)? };
                    let off_f = if t[1] {
                        usize::from(t[0])
                    } else {
                        forward(pos + 1, df)?
                    };
                    out.push(Insn::jump(code, k, to_u8(off_t)?, to_u8(off_f)?));
                    for (far, target) in [(t[0], dt), (t[1], df)] {
                        if far {
                            let k = forward(out.len() + 1, target)?;
                            out.push(Insn::stmt(op::BPF_JMP | op::BPF_JA, to_u32(k)?));
                        }
                    }
                }
            }
        }
        if out.len() != layout.len {
            return Err(BuildError::Internal("layout and emitted length differ"));
        }
        if out.is_empty() {
            return Err(BuildError::Internal("empty program"));
        }
        Ok(out)
    }
}

struct Layout {
    item_pos: Vec<usize>,
    label_pos: Vec<Option<usize>>,
    len: usize,
}

impl Layout {
    fn target(&self, l: Label) -> Result<usize, BuildError> {
        self.label_pos
            .get(l.0)
            .copied()
            .flatten()
            .ok_or(BuildError::Internal("jump to an unbound label"))
    }
}

/// The offset from `from` (the instruction after the jump) to `to`.
fn forward(from: usize, to: usize) -> Result<usize, BuildError> {
    to.checked_sub(from)
        .ok_or(BuildError::Internal("backward jump"))
}

fn to_u8(v: usize) -> Result<u8, BuildError> {
    u8::try_from(v).map_err(|_| BuildError::Internal("jump offset over 255 after layout"))
}

fn to_u32(v: usize) -> Result<u32, BuildError> {
    u32::try_from(v).map_err(|_| BuildError::Internal("jump offset over u32"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::BPF_MAXINSNS;

    fn padding(a: &mut Asm, n: usize) {
        for _ in 0..n {
            a.ret(0);
        }
    }

    #[test]
    fn near_jumps_are_direct() {
        let mut a = Asm::new();
        let l = a.label();
        a.jump(op::BPF_JEQ, 1, Dest::To(l), Dest::Next);
        padding(&mut a, 255);
        a.bind(l);
        a.ret(1);
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 257);
        assert_eq!((p[0].jt, p[0].jf), (255, 0));
    }

    #[test]
    fn far_jumps_get_a_trampoline() {
        let mut a = Asm::new();
        let (t, f) = (a.label(), a.label());
        a.jump(op::BPF_JGT, 1, Dest::To(t), Dest::To(f));
        padding(&mut a, 300);
        a.bind(f);
        padding(&mut a, 300);
        a.bind(t);
        a.ret(1);
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 1 + 2 + 600 + 1);
        assert_eq!((p[0].jt, p[0].jf), (0, 1));
        assert_eq!(p[1].code, op::BPF_JMP | op::BPF_JA);
        assert_eq!(
            1 + 1 + p[1].k as usize,
            603,
            "true side lands on the last ret"
        );
        assert_eq!(
            2 + 1 + p[2].k as usize,
            303,
            "false side lands after 300 rets"
        );
    }

    #[test]
    fn too_long_is_an_error() {
        let mut a = Asm::new();
        padding(&mut a, BPF_MAXINSNS + 1);
        assert_eq!(
            a.finish(),
            Err(BuildError::TooLong {
                len: BPF_MAXINSNS + 1
            })
        );
        let mut a = Asm::new();
        padding(&mut a, BPF_MAXINSNS);
        assert_eq!(a.finish().map(|p| p.len()), Ok(BPF_MAXINSNS));
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.label();
        a.jump(op::BPF_JEQ, 0, Dest::To(l), Dest::Next);
        a.ret(0);
        assert!(matches!(a.finish(), Err(BuildError::Internal(_))));
    }
}
