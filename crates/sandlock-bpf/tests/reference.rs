//! Property: for random rule sets and random `seccomp_data`, the generated
//! program, run in the interpreter, gives exactly the reference verdict.

mod common;

use proptest::prelude::*;
use sandlock_bpf::{Arch, ArgIndex, Cond, Filter, Rule, SeccompData};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        ..ProptestConfig::default()
    })]

    /// Small rule sets, many rules per syscall, 64 inputs each.
    #[test]
    fn program_matches_reference(filter in common::filter(12), seed in any::<u64>()) {
        common::check_filter(&filter, seed, 64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    })]

    /// Larger rule sets (deeper trees, some far jumps), 256 inputs each.
    #[test]
    fn large_program_matches_reference(filter in common::filter(200), seed in any::<u64>()) {
        common::check_filter(&filter, seed, 256);
    }

    /// Every argument value against one condition, for each width and op:
    /// the condition code alone agrees with `Cond::matches`.
    #[test]
    fn single_condition_on_every_edge(c in common::cond(), arch in proptest::sample::select(&Arch::ALL[..])) {
        let f = Filter::new(arch)
            .default_action(sandlock_bpf::Action::Allow)
            .rule(Rule::nr(3, sandlock_bpf::Action::KillThread).when(c));
        let p = f.build().unwrap();
        let r = f.reference().unwrap();
        for v in common::arg_pool(&f) {
            let mut args = [0u64; 6];
            args[c.arg().get() as usize] = v;
            common::check_one(&p, &r, &SeccompData::new(arch, 3, args));
        }
    }
}

/// A rule testing one bit of an argument (`arg & bit == bit`), at either
/// width: the code generator turns runs of them into one `jset`.
fn bit_rule(nr: u32) -> impl Strategy<Value = Rule> {
    (0u8..3, 0u32..64, any::<bool>(), 0usize..3).prop_map(move |(arg, bit, narrow, a)| {
        let arg = ArgIndex::new(arg).expect("0..3");
        let bit = if narrow {
            1u64 << (bit % 32)
        } else {
            1u64 << bit
        };
        let c = Cond::masked_eq(arg, bit, bit);
        let c = if narrow { c.u32() } else { c };
        let action = [
            sandlock_bpf::Action::Allow,
            sandlock_bpf::Action::KillThread,
            sandlock_bpf::Action::UserNotif,
        ][a];
        Rule::nr(nr, action).when(c)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    })]

    /// Runs of one-bit rules (same or different argument words and
    /// actions), mixed with any other rules on the same syscall.
    #[test]
    fn bit_runs_match_reference(
        arch in proptest::sample::select(&Arch::ALL[..]),
        bits in proptest::collection::vec(bit_rule(3), 1..10),
        others in proptest::collection::vec(common::cond(), 0..3),
        seed in any::<u64>(),
    ) {
        let mut f = Filter::new(arch).default_action(sandlock_bpf::Action::Log);
        let split = bits.len() / 2;
        f.extend(bits[..split].iter().cloned());
        f.push(Rule::nr(3, sandlock_bpf::Action::Trap(7)).when_all(others));
        f.extend(bits[split..].iter().cloned());
        common::check_filter(&f, seed, 256);
    }
}

/// Seven one-bit rules with one action (the namespace flags of `clone`)
/// are one `ld`, one `jset` and one `ret`.
#[test]
fn a_run_of_bits_is_one_jset() {
    let flags = [17u32, 25, 26, 27, 28, 29, 30];
    let mut f = Filter::new(Arch::X86_64).default_action(sandlock_bpf::Action::Allow);
    for b in flags {
        let bit = 1u64 << b;
        f.push(
            Rule::nr(56, sandlock_bpf::Action::KillThread)
                .when(Cond::masked_eq(ArgIndex::A0, bit, bit).u32()),
        );
    }
    let p = f.build().unwrap();
    // arch check (3), nr load and x32 check (3), dispatch (2 per boundary
    // around 56, at most 4), the run (3) and the fallback ret (1).
    assert!(p.len() <= 16, "{} instructions:\n{p}", p.len());
    let mask: u64 = flags.iter().map(|b| 1u64 << b).sum();
    for v in [
        0u64,
        mask,
        1 << 17,
        1 << 30,
        !mask & 0xffff_ffff,
        1 << 16,
        1 << 31,
    ] {
        let got = p
            .run(&SeccompData::new(Arch::X86_64, 56, [v, 0, 0, 0, 0, 0]))
            .unwrap();
        let want = if v & mask != 0 {
            sandlock_bpf::Action::KillThread
        } else {
            sandlock_bpf::Action::Allow
        };
        assert_eq!(got.action(), Some(want), "arg {v:#x}");
    }
}

/// The case CVE-2019-10063 was about: a 64-bit compare that looks at one half.
#[test]
fn high_word_is_compared() {
    let f = Filter::new(Arch::X86_64)
        .default_action(sandlock_bpf::Action::Allow)
        .rule(Rule::nr(8, sandlock_bpf::Action::KillProcess).when(Cond::eq(ArgIndex::A1, 0)));
    let p = f.build().unwrap();
    let hit = p.run(&SeccompData::new(Arch::X86_64, 8, [0; 6])).unwrap();
    let miss = p
        .run(&SeccompData::new(Arch::X86_64, 8, [0, 1 << 32, 0, 0, 0, 0]))
        .unwrap();
    assert_eq!(hit.action(), Some(sandlock_bpf::Action::KillProcess));
    assert_eq!(miss.action(), Some(sandlock_bpf::Action::Allow));
}
