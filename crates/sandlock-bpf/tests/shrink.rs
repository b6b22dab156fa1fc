//! `shrink` keeps the meaning of any valid program, whatever its shape.

use proptest::prelude::*;
use sandlock_bpf::insn::op;
use sandlock_bpf::{Arch, Insn, SeccompData, interp, shrink::shrink};

const RETS: [u32; 3] = [0x7fff_0000, 0x0005_0001, 0x7fc0_0000];

/// One instruction at position `i` of a program of `n` (its jumps stay
/// inside), drawn from what generated filters use, plus instructions that
/// change the accumulator otherwise (so a load is not always redundant).
fn insn_at(i: usize, n: usize) -> impl Strategy<Value = Insn> {
    let room = (n - 2 - i).min(255) as u8;
    // Few distinct words, so that the same one is loaded again often.
    let offsets = [0u32, 16, 24];
    prop_oneof![
        5 => proptest::sample::select(offsets.to_vec())
            .prop_map(|k| Insn::stmt(op::BPF_LD | op::BPF_W | op::BPF_ABS, k)),
        6 => (
            proptest::sample::select(vec![op::BPF_JEQ, op::BPF_JGE, op::BPF_JGT, op::BPF_JSET]),
            0u32..4,
            0..=room,
            0..=room,
        )
            .prop_map(|(c, k, jt, jf)| Insn::jump(op::BPF_JMP | c | op::BPF_K, k, jt, jf)),
        1 => (0..=u32::from(room)).prop_map(|k| Insn::stmt(op::BPF_JMP | op::BPF_JA, k)),
        4 => proptest::sample::select(RETS.to_vec())
            .prop_map(|k| Insn::stmt(op::BPF_RET | op::BPF_K, k)),
        2 => (0u32..3).prop_map(|k| Insn::stmt(op::BPF_ALU | op::BPF_AND | op::BPF_K, k)),
        1 => Just(Insn::stmt(op::BPF_MISC | op::BPF_TAX, 0)),
    ]
}

/// A program of 2 to 60 instructions ending with a return.
fn program() -> impl Strategy<Value = Vec<Insn>> {
    (2usize..60).prop_flat_map(|n| {
        let body: Vec<_> = (0..n - 1).map(|i| insn_at(i, n).boxed()).collect();
        (body, proptest::sample::select(RETS.to_vec())).prop_map(|(mut b, last)| {
            b.push(Insn::stmt(op::BPF_RET | op::BPF_K, last));
            b
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// Same return for every input, never longer, still valid.
    #[test]
    fn shrink_keeps_meaning(
        p in program(),
        inputs in proptest::collection::vec((0u32..4, [0u64..4, 0u64..4, 0u64..4, 0u64..4, 0u64..4, 0u64..4]), 16),
    ) {
        prop_assume!(interp::check(&p).is_ok());
        let q = shrink(&p);
        prop_assert!(q.len() <= p.len());
        prop_assert!(interp::check(&q).is_ok(), "{:?}", q);
        for (nr, args) in inputs {
            // Small words everywhere, so loads and tests see varied values.
            let d = SeccompData::with_audit_arch(Arch::X86_64.audit_arch() & 3, nr, args);
            let (a, b) = (interp::run(&p, &d).unwrap(), interp::run(&q, &d).unwrap());
            prop_assert_eq!(a.ret, b.ret);
            prop_assert!(b.steps <= a.steps);
        }
    }
}
