//! Far jumps, the 4096-instruction limit, and refused rule sets.

mod common;

use common::check_one;
use sandlock_bpf::insn::op::{BPF_JA, BPF_JMP};
use sandlock_bpf::{
    Action, Arch, ArgIndex, BPF_MAXINSNS, BuildError, Cond, Errno, Filter, Rule, SeccompData,
};

/// Hundreds of rules: a long chain on one syscall (far jumps inside the
/// chain) and a conditional rule on 300 syscalls (far jumps in the tree).
fn big(arch: Arch) -> Filter {
    let mut f = Filter::new(arch).default_action(Action::Allow);
    for i in 0..120u64 {
        f.push(
            Rule::nr(
                16,
                Action::Errno(Errno::new(1 + i as i64).expect("in range")),
            )
            .when(Cond::eq(ArgIndex::A1, i << 32 | i)),
        );
    }
    for nr in (0..600u32).step_by(2) {
        f.push(Rule::nr(nr, Action::UserNotif).when(Cond::eq(ArgIndex::A0, u64::from(nr))));
    }
    f
}

#[test]
fn far_jumps_are_bridged_correctly() {
    for arch in Arch::ALL {
        let f = big(arch);
        let p = f.build().unwrap();
        let r = f.reference().unwrap();
        assert!(p.len() > 1000, "{}", p.len());
        let ja = p
            .insns()
            .iter()
            .filter(|i| i.code == BPF_JMP | BPF_JA)
            .count();
        assert!(
            ja > 0,
            "expected trampolines in a {}-instruction program",
            p.len()
        );
        let n = f.rules().len() as f64;
        let bound = 2 * n.log2().ceil() as usize + 8;
        for nr in 0..=1023u32 {
            let mut args = vec![
                [0u64; 6],
                [u64::from(nr), 0, 0, 0, 0, 0],
                [u64::from(nr) | 1 << 32, 0, 0, 0, 0, 0],
            ];
            let chain = if nr == 16 {
                &[0u64, 1, 59, 118, 119, 120][..]
            } else {
                &[]
            };
            for &i in chain {
                args.push([0, i << 32 | i, 0, 0, 0, 0]);
                args.push([0, i, 0, 0, 0, 0]);
                args.push([0, i << 32, 0, 0, 0, 0]);
            }
            for a in args {
                let d = SeccompData::new(arch, nr, a);
                let steps = check_one(&p, &r, &d);
                if nr % 2 == 1 && nr != 16 {
                    assert!(steps <= bound, "{arch} nr {nr}: {steps} > {bound}");
                }
            }
        }
    }
}

#[test]
fn over_4096_instructions_is_refused() {
    let mut f = Filter::new(Arch::X86_64).default_action(Action::Allow);
    for i in 0..1000u64 {
        f.push(
            Rule::nr(1, Action::KillProcess)
                .when(Cond::eq(ArgIndex::A0, i))
                .when(Cond::ne(ArgIndex::A2, i << 33)),
        );
    }
    match f.build() {
        Err(BuildError::TooLong { len }) => assert!(len > BPF_MAXINSNS),
        other => panic!("expected TooLong, got {other:?}"),
    }
    // Just under the limit still builds, and is exactly as long as it says.
    let mut f = Filter::new(Arch::X86_64).default_action(Action::Allow);
    let mut last_ok = 0;
    for i in 0..1000u64 {
        f.push(Rule::nr(1, Action::KillProcess).when(Cond::eq(ArgIndex::A0, i)));
        match f.build() {
            Ok(p) => {
                assert!(p.len() <= BPF_MAXINSNS);
                last_ok = p.len();
            }
            Err(BuildError::TooLong { len }) => {
                assert!(len > BPF_MAXINSNS);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Each rule adds a few instructions; the shrinking pass (shared
    // returns, whose reach depends on the layout) makes the steps uneven.
    assert!(last_ok > BPF_MAXINSNS - 128, "{last_ok}");
}

#[test]
fn bad_rules_get_clear_errors() {
    let f = Filter::new(Arch::Aarch64).rule(Rule::named("open", Action::Allow));
    let e = f.build().unwrap_err();
    assert_eq!(
        e,
        BuildError::UnknownSyscall {
            name: "open".into(),
            arch: Arch::Aarch64
        }
    );
    assert!(e.to_string().contains("\"open\""), "{e}");
    assert_eq!(f.evaluate(&SeccompData::default()), Err(e));

    let e = Filter::new(Arch::X86_64)
        .rule(Rule::nr(0x4000_0001, Action::Allow))
        .build()
        .unwrap_err();
    assert_eq!(e, BuildError::X32Number { nr: 0x4000_0001 });
    // On aarch64 the same number is an ordinary (if unused) number.
    assert!(
        Filter::new(Arch::Aarch64)
            .rule(Rule::nr(0x4000_0001, Action::Allow))
            .build()
            .is_ok()
    );

    let e = Filter::new(Arch::X86_64)
        .rule(Rule::nr(16, Action::Allow).when(Cond::eq(ArgIndex::A1, 1 << 32).u32()))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        BuildError::OperandTooWide {
            nr: 16,
            arg: ArgIndex::A1,
            value: 1 << 32
        }
    );
    let e = Filter::new(Arch::X86_64)
        .rule(Rule::nr(16, Action::Allow).when(Cond::masked_eq(ArgIndex::A1, 1 << 40, 0).u32()))
        .build()
        .unwrap_err();
    assert!(matches!(e, BuildError::OperandTooWide { value, .. } if value == 1 << 40));

    let e = Filter::new(Arch::X86_64)
        .rule(Rule::nr(9, Action::Allow).when(Cond::masked_eq(ArgIndex::A3, 0xf0, 0x0f)))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        BuildError::ValueOutsideMask {
            nr: 9,
            arg: ArgIndex::A3,
            mask: 0xf0,
            value: 0x0f
        }
    );
}

#[test]
fn empty_filter_is_arch_check_and_default() {
    for arch in Arch::ALL {
        let p = Filter::new(arch).build().unwrap();
        let d = SeccompData::new(arch, 0, [0; 6]);
        assert_eq!(p.run(&d).unwrap().action(), Some(Action::KillProcess));
        assert!(p.len() <= 7, "{p}");
    }
}
