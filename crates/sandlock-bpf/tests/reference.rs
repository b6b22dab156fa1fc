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
