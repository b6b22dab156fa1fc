//! Differential test against Firecracker's `seccompiler`: for rule sets it
//! can express (one match action, one mismatch action, no user-notif), both
//! programs, run through our interpreter, give the same verdict for every
//! syscall number and random arguments, and that verdict is the reference.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use sandlock_bpf::arch::X32_SYSCALL_BIT;
use sandlock_bpf::interp::Checked;
use sandlock_bpf::{Action, Arch, CmpOp, Cond, Errno, Filter, Insn, Rule, SeccompData, Width};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Actions both sides can express.
fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        (1i64..=4095).prop_map(|e| Action::Errno(Errno::new(e).expect("in range"))),
        Just(Action::Log),
        Just(Action::Trap(0)),
        Just(Action::KillThread),
        Just(Action::KillProcess),
    ]
}

fn to_theirs(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(u32::from(e.get())),
        Action::Log => SeccompAction::Log,
        Action::Trap(_) => SeccompAction::Trap,
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::UserNotif => unreachable!("seccompiler has no user-notif"),
    }
}

fn cond_to_theirs(c: &Cond) -> SeccompCondition {
    let len = match c.width() {
        Width::U64 => SeccompCmpArgLen::Qword,
        Width::U32 => SeccompCmpArgLen::Dword,
    };
    let op = match c.op() {
        CmpOp::Eq => SeccompCmpOp::Eq,
        CmpOp::Ne => SeccompCmpOp::Ne,
        CmpOp::Lt => SeccompCmpOp::Lt,
        CmpOp::Le => SeccompCmpOp::Le,
        CmpOp::Gt => SeccompCmpOp::Gt,
        CmpOp::Ge => SeccompCmpOp::Ge,
        CmpOp::MaskedEq(m) => SeccompCmpOp::MaskedEq(m),
    };
    SeccompCondition::new(c.arg().get(), len, op, c.value()).expect("arg index in 0..6")
}

/// Per syscall: `None` = unconditional, else one or more condition lists.
type Spec = BTreeMap<u32, Vec<Vec<Cond>>>;

fn spec() -> impl Strategy<Value = Spec> {
    let nr = prop_oneof![0u32..8, 0u32..=1023];
    let rules = proptest::collection::vec(proptest::collection::vec(common::cond(), 1..4), 0..4);
    proptest::collection::btree_map(nr, rules, 0..24)
}

fn ours(arch: Arch, spec: &Spec, matched: Action, default: Action) -> Filter {
    // x32 numbers reach no rule in seccompiler's program: give them the default.
    let mut f = Filter::new(arch)
        .default_action(default)
        .x32_action(default);
    for (&nr, rules) in spec {
        if rules.is_empty() {
            f.push(Rule::nr(nr, matched));
        }
        for conds in rules {
            f.push(Rule::nr(nr, matched).when_all(conds.iter().copied()));
        }
    }
    f
}

fn theirs(arch: Arch, spec: &Spec, matched: Action, default: Action) -> Option<Vec<Insn>> {
    let target = match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let rules = spec
        .iter()
        .map(|(&nr, rules)| {
            let chain = rules
                .iter()
                .map(|conds| {
                    SeccompRule::new(conds.iter().map(cond_to_theirs).collect())
                        .expect("non-empty rule")
                })
                .collect();
            (i64::from(nr), chain)
        })
        .collect();
    let filter = SeccompFilter::new(rules, to_theirs(default), to_theirs(matched), target).ok()?;
    let program: BpfProgram = filter.try_into().ok()?;
    Some(
        program
            .iter()
            .map(|i| Insn::new(i.code, i.jt, i.jf, i.k))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn same_verdicts_as_seccompiler(
        arch in proptest::sample::select(&Arch::ALL[..]),
        spec in spec(),
        matched in action(),
        default in action(),
        seed in any::<u64>(),
    ) {
        prop_assume!(matched.to_ret() != default.to_ret());
        let f = ours(arch, &spec, matched, default);
        let Some(their_insns) = theirs(arch, &spec, matched, default) else {
            return Ok(()); // seccompiler refused it (too large): nothing to compare
        };
        let their = Checked::new(&their_insns).expect("seccompiler's program passes the kernel checks");
        let program = f.build().unwrap();
        let reference = f.reference().unwrap();
        let mut rng = common::Rng(seed | 1);
        let pool = common::arg_pool(&f);
        let mut nrs: Vec<u32> = (0..=1023).collect();
        nrs.extend([X32_SYSCALL_BIT | 1, u32::MAX, 0x8000_0000]);
        for nr in nrs {
            let rounds = if spec.contains_key(&nr) { 48 } else { 1 };
            for _ in 0..rounds {
                let mut args = [0u64; 6];
                for a in &mut args {
                    *a = rng.pick(&pool);
                }
                let d = SeccompData::new(arch, nr, args);
                common::check_one(&program, &reference, &d);
                let theirs = their.run(&d).unwrap();
                let ours = program.run(&d).unwrap();
                prop_assert_eq!(ours.ret, theirs.ret, "nr {} args {:x?}\n{}", nr, args, program);
            }
        }
        // A foreign arch is killed by both.
        let foreign = SeccompData::with_audit_arch(sandlock_bpf::arch::AUDIT_ARCH_I386, 0, [0; 6]);
        prop_assert_eq!(program.run(&foreign).unwrap().ret, their.run(&foreign).unwrap().ret);
    }
}

/// Our dispatch is a binary search; seccompiler's is linear. Document the
/// difference on one fixed 40-syscall deny list.
#[test]
fn fewer_steps_than_seccompiler_for_unmatched_syscalls() {
    let arch = Arch::X86_64;
    let spec: Spec = (0..40u32).map(|i| (i * 7 + 3, vec![])).collect();
    let eperm = Action::Errno(Errno::EPERM);
    let f = ours(arch, &spec, eperm, Action::Allow);
    let program = f.build().unwrap();
    let their_insns = theirs(arch, &spec, eperm, Action::Allow).unwrap();
    let their = Checked::new(&their_insns).unwrap();
    let d = SeccompData::new(arch, 400, [0; 6]);
    let (o, t) = (program.run(&d).unwrap(), their.run(&d).unwrap());
    assert_eq!(o.ret, t.ret);
    assert!(
        o.steps < t.steps,
        "ours {} vs seccompiler {}",
        o.steps,
        t.steps
    );
}
