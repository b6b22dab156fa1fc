//! Two size reductions of a finished program, applied to every generated
//! program: the kernel converts, checks and JIT-compiles a seccomp program
//! at every installation, in the sandboxed process's start-up, at a cost
//! that grows with its length.
//!
//! - **Reloads dropped.** A `ld [k]` whose every path in comes with the
//!   same word of `seccomp_data` already in the accumulator is removed
//!   (rule chains test one argument word several times in a row).
//! - **Returns shared.** A `ret #k` that is only reached by jumps (the
//!   instruction before it is a jump or a return) is removed, and its jumps
//!   go to the next `ret #k` further on, where every one of them can still
//!   reach it (8-bit offsets). The tree of a deny list has many identical
//!   leaves (`ret ALLOW`, `ret ERRNO(EPERM)`).
//!
//! Both only remove instructions and retarget jumps forward, so every path
//! through the program meets the same tests and returns the same value.
//! Each works on any valid program (jumps forward and in range, last
//! instruction a return) and leaves anything else unchanged.

use alloc::vec;
use alloc::vec::Vec;

use crate::insn::{Insn, op};

const LD_W_ABS: u16 = op::BPF_LD | op::BPF_W | op::BPF_ABS;
const RET_K: u16 = op::BPF_RET | op::BPF_K;

/// `program` without its redundant loads and with its returns shared;
/// unchanged when it is not well formed (jumps out of it, no final return)
/// or nothing can go.
pub fn shrink(program: &[Insn]) -> Vec<Insn> {
    if !well_formed(program) {
        return program.to_vec();
    }
    let mut redirect = vec![KEEP; program.len()];
    let reloads = mark_reloads(program, &mut redirect);
    let returns = mark_shared_returns(program, &mut redirect);
    if !(reloads || returns) {
        return program.to_vec();
    }
    remap(program, &redirect).unwrap_or_else(|| program.to_vec())
}

/// In a redirect table: the instruction stays.
const KEEP: u32 = u32::MAX;

fn class(insn: &Insn) -> u16 {
    insn.code & 0x07
}

fn is_ja(insn: &Insn) -> bool {
    insn.code == op::BPF_JMP | op::BPF_JA
}

/// Where execution can go after instruction `i` (none after a return).
fn successors(p: &[Insn], i: usize) -> impl Iterator<Item = usize> {
    let insn = p[i];
    let next = i + 1;
    let (a, b) = match class(&insn) {
        op::BPF_RET => (None, None),
        op::BPF_JMP if is_ja(&insn) => (Some(next + insn.k as usize), None),
        op::BPF_JMP => (
            Some(next + usize::from(insn.jt)),
            Some(next + usize::from(insn.jf)),
        ),
        _ => (Some(next), None),
    };
    a.into_iter().chain(b)
}

/// Whether every jump stays inside `p`, `p` ends with a return and fits
/// the redirect table's indices (what the passes rely on).
fn well_formed(p: &[Insn]) -> bool {
    p.len() < KEEP as usize
        && p.last().is_some_and(|l| class(l) == op::BPF_RET)
        && (0..p.len()).all(|i| successors(p, i).all(|s| s < p.len()))
}

/// What the accumulator holds when an instruction starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acc {
    /// Nothing known.
    Unknown,
    /// The `seccomp_data` word at this offset.
    Word(u32),
}

/// Marks in `redirect` (to the next instruction) each load of a word the
/// accumulator already holds on every path in; whether there was one.
fn mark_reloads(p: &[Insn], redirect: &mut [u32]) -> bool {
    let n = p.len();
    let mut incoming: Vec<Option<Acc>> = vec![None; n];
    incoming[0] = Some(Acc::Unknown);
    let mut any = false;
    for i in 0..n {
        let here = incoming[i];
        let insn = &p[i];
        let out = if insn.code == LD_W_ABS {
            if here == Some(Acc::Word(insn.k)) {
                // Jumps to it go on to the next instruction.
                redirect[i] = (i + 1) as u32;
                any = true;
            }
            Acc::Word(insn.k)
        } else if class(insn) == op::BPF_JMP {
            here.unwrap_or(Acc::Unknown)
        } else {
            Acc::Unknown
        };
        for s in successors(p, i) {
            incoming[s] = Some(match incoming[s] {
                None => out,
                Some(prev) if prev == out => prev,
                Some(_) => Acc::Unknown,
            });
        }
    }
    any
}

/// Where a jump to `i` lands once the redirects so far are followed.
fn resolve(redirect: &[u32], mut i: usize) -> usize {
    while let Some(&t) = redirect.get(i)
        && t != KEEP
    {
        i = t as usize;
    }
    i
}

/// Marks in `redirect` each return that can be shared (see the module
/// documentation); whether there was one.
fn mark_shared_returns(p: &[Insn], redirect: &mut [u32]) -> bool {
    let n = p.len();
    // The farthest conditional jump landing on each instruction once the
    // loads marked are skipped (a `ja` reaches anywhere): the one that
    // bounds how far that instruction may move.
    let mut farthest: Vec<u32> = vec![KEEP; n];
    for j in 0..n {
        if class(&p[j]) == op::BPF_JMP && !is_ja(&p[j]) {
            for s in successors(p, j) {
                let t = resolve(redirect, s);
                farthest[t] = farthest[t].min(j as u32);
            }
        }
    }
    let mut any = false;
    // From the end: each return goes to the nearest kept one of its value,
    // `kept` holding the nearest so far of each value.
    let mut kept: Vec<(u32, usize)> = Vec::new();
    for i in (0..n).rev() {
        let insn = &p[i];
        if insn.code != RET_K {
            continue;
        }
        let only_jumped_to = i > 0 && matches!(class(&p[i - 1]), op::BPF_JMP | op::BPF_RET);
        let later = kept.iter().position(|&(k, _)| k == insn.k);
        if let (true, Some(at)) = (only_jumped_to, later) {
            let m = kept[at].1;
            // Offsets only shrink as instructions go, so the distance now
            // is the most the farthest jump can need.
            let f = farthest[i];
            if f == KEEP || m - f as usize - 1 <= usize::from(u8::MAX) {
                redirect[i] = m as u32;
                any = true;
                continue;
            }
        }
        match later {
            Some(at) => kept[at].1 = i,
            None => kept.push((insn.k, i)),
        }
    }
    any
}

/// `p` without the instructions `redirect` names, each jump to one of them
/// sent to where it redirects (a later instruction, possibly removed too).
/// `None` if an offset would not fit, or a fall-through would change.
fn remap(p: &[Insn], redirect: &[u32]) -> Option<Vec<Insn>> {
    let n = p.len();
    // New positions of the kept instructions; a removed one takes the
    // position of where it resolves to, filled from the end.
    let mut pos: Vec<u32> = vec![0; n];
    let mut kept = 0u32;
    for i in 0..n {
        if redirect[i] == KEEP {
            pos[i] = kept;
            kept += 1;
        } else if redirect[i] as usize <= i || redirect[i] as usize >= n {
            return None;
        }
    }
    for i in (0..n).rev() {
        if redirect[i] != KEEP {
            pos[i] = pos[redirect[i] as usize];
        }
    }
    let mut out = Vec::with_capacity(kept as usize);
    for i in 0..n {
        if redirect[i] != KEEP {
            continue;
        }
        let insn = p[i];
        let here = pos[i] as usize;
        let offset =
            |old: usize| -> Option<usize> { (*pos.get(old)? as usize).checked_sub(here + 1) };
        let next = i + 1;
        match class(&insn) {
            op::BPF_RET => out.push(insn),
            op::BPF_JMP if is_ja(&insn) => {
                let k = u32::try_from(offset(next + insn.k as usize)?).ok()?;
                out.push(Insn { k, ..insn });
            }
            op::BPF_JMP => {
                let jt = u8::try_from(offset(next + usize::from(insn.jt))?).ok()?;
                let jf = u8::try_from(offset(next + usize::from(insn.jf))?).ok()?;
                out.push(Insn { jt, jf, ..insn });
            }
            _ => {
                // Falls through: what follows must stay what comes next.
                if offset(next)? != 0 {
                    return None;
                }
                out.push(insn);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;

    fn ld(k: u32) -> Insn {
        Insn::stmt(LD_W_ABS, k)
    }
    fn ret(k: u32) -> Insn {
        Insn::stmt(RET_K, k)
    }
    fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
        Insn::jump(op::BPF_JMP | op::BPF_JEQ | op::BPF_K, k, jt, jf)
    }

    /// The program with only its redundant loads removed.
    fn drop_reloads(p: &[Insn]) -> Option<Vec<Insn>> {
        let mut r = vec![KEEP; p.len()];
        if !mark_reloads(p, &mut r) {
            return None;
        }
        remap(p, &r)
    }

    /// The program with only its returns shared.
    fn share_returns(p: &[Insn]) -> Option<Vec<Insn>> {
        let mut r = vec![KEEP; p.len()];
        if !mark_shared_returns(p, &mut r) {
            return None;
        }
        remap(p, &r)
    }

    #[test]
    fn a_load_reached_with_another_word_on_one_path_stays() {
        // 4 is jumped to from 1 with [16], and fallen into from 3 with [24].
        let p = [
            ld(16),
            jeq(1, 0, 2),
            ret(EPERM),
            ld(24),
            ld(16),
            jeq(2, 0, 1),
            ret(EPERM),
            ret(ALLOW),
        ];
        assert_eq!(drop_reloads(&p), None);
    }

    #[test]
    fn repeated_loads_on_every_path_go_and_jumps_follow() {
        let p = [
            ld(16),
            jeq(1, 1, 0), // -> 3 / 2
            ret(EPERM),
            ld(16), // reached only from 1 with [16]: redundant
            jeq(2, 0, 1),
            ret(EPERM),
            ret(ALLOW),
        ];
        let q = drop_reloads(&p).unwrap();
        assert_eq!(
            q,
            [
                ld(16),
                jeq(1, 1, 0),
                ret(EPERM),
                jeq(2, 0, 1),
                ret(EPERM),
                ret(ALLOW)
            ]
        );
    }

    #[test]
    fn returns_reached_by_jumps_only_are_shared() {
        let p = [
            ld(0),
            jeq(1, 0, 1),
            ret(ALLOW), // jumped to: shared with 4
            jeq(2, 0, 1),
            ret(ALLOW),
            ret(EPERM),
        ];
        let q = share_returns(&p).unwrap();
        assert_eq!(
            q,
            [ld(0), jeq(1, 1, 0), jeq(2, 0, 1), ret(ALLOW), ret(EPERM)]
        );
    }

    #[test]
    fn a_return_fallen_into_stays() {
        // 2 follows a load: falling through, it cannot be moved.
        let p = [ld(0), ld(4), ret(ALLOW), ret(ALLOW)];
        assert_eq!(share_returns(&p), None);
        assert_eq!(shrink(&p), p);
    }

    #[test]
    fn a_return_out_of_reach_stays() {
        let mut p = vec![ld(0), jeq(1, 0, 1), ret(ALLOW)];
        // 256 instructions between the jump and the next `ret ALLOW`.
        p.push(jeq(2, 0, 1));
        for _ in 0..255 {
            p.push(ret(EPERM));
        }
        p.push(ret(ALLOW));
        let q = shrink(&p);
        // The EPERMs collapse into the last one. The ALLOW at 2 stays: the
        // jump at 1 is 257 instructions from the last ALLOW (distances are
        // judged before anything is removed).
        assert_eq!(
            q,
            [
                ld(0),
                jeq(1, 0, 1),
                ret(ALLOW),
                jeq(2, 0, 0),
                ret(EPERM),
                ret(ALLOW)
            ]
        );
    }

    #[test]
    fn malformed_programs_are_left_alone() {
        let jumps_out = [jeq(1, 5, 0), ret(ALLOW)];
        assert_eq!(shrink(&jumps_out), jumps_out);
        let no_final_ret = [ld(0), ld(0)];
        assert_eq!(shrink(&no_final_ret), no_final_ret);
        assert_eq!(shrink(&[]), []);
    }
}
