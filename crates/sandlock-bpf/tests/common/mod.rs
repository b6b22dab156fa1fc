//! Helpers shared by the integration tests: rule-set strategies, argument
//! values near the interesting boundaries, and the program-vs-reference check.
#![allow(dead_code)]

use proptest::prelude::*;
use sandlock_bpf::arch::{AUDIT_ARCH_I386, X32_SYSCALL_BIT};
use sandlock_bpf::{
    Action, Arch, ArgIndex, CmpOp, Cond, Errno, Filter, Program, Reference, Rule, SeccompData,
    Width,
};

/// Values around 0, 2^31, 2^32 and 2^64, and with the high word set.
pub const EDGES: [u64; 16] = [
    0,
    1,
    2,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0x8000_0000_0000_0000,
    0xffff_ffff_0000_0000,
    0xffff_ffff_0000_0001,
    u64::MAX - 1,
    u64::MAX,
];

/// A value from [`EDGES`], a small value with a random high word, or anything.
pub fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => proptest::sample::select(&EDGES[..]),
        2 => (0u64..8, 0u64..4).prop_map(|(lo, hi)| (hi << 32) | lo),
        1 => 0xffff_fff0u64..=0x1_0000_0010,
        1 => any::<u32>().prop_map(u64::from),
        1 => any::<u64>(),
    ]
}

/// A condition the builder accepts: U32 operands fit, masked values lie in
/// their masks.
pub fn cond() -> impl Strategy<Value = Cond> {
    (0u8..6, any::<bool>(), 0u8..7, value(), value()).prop_map(|(arg, narrow, op, v, m)| {
        let arg = ArgIndex::new(arg).expect("0..6");
        let (v, m) = if narrow {
            (v & 0xffff_ffff, m & 0xffff_ffff)
        } else {
            (v, m)
        };
        let op = match op {
            0 => CmpOp::Eq,
            1 => CmpOp::Ne,
            2 => CmpOp::Lt,
            3 => CmpOp::Le,
            4 => CmpOp::Gt,
            5 => CmpOp::Ge,
            _ => CmpOp::MaskedEq(m),
        };
        let v = if let CmpOp::MaskedEq(m) = op {
            v & m
        } else {
            v
        };
        let c = Cond::new(arg, op, v);
        if narrow { c.with_width(Width::U32) } else { c }
    })
}

/// Any action.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        (1i64..=4095).prop_map(|e| Action::Errno(Errno::new(e).expect("in range"))),
        Just(Action::UserNotif),
        Just(Action::Log),
        any::<u16>().prop_map(Action::Trap),
        Just(Action::KillThread),
        Just(Action::KillProcess),
    ]
}

/// A syscall number: often a small one (so rules pile up on one syscall),
/// sometimes anything the arch allows a rule on.
pub fn nr(arch: Arch) -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..6,
        2 => 0u32..=1023,
        1 => any::<u32>(),
    ]
    .prop_map(move |nr| {
        if arch.has_x32_bit() {
            nr & !X32_SYSCALL_BIT
        } else {
            nr
        }
    })
}

/// A filter with up to `max_rules` rules.
pub fn filter(max_rules: usize) -> impl Strategy<Value = Filter> {
    proptest::sample::select(&Arch::ALL[..]).prop_flat_map(move |arch| {
        let rule = (nr(arch), proptest::collection::vec(cond(), 0..4), action())
            .prop_map(|(nr, conds, a)| Rule::nr(nr, a).when_all(conds));
        (
            action(),
            action(),
            proptest::collection::vec(rule, 0..=max_rules),
        )
            .prop_map(move |(default, x32, rules)| {
                let mut f = Filter::new(arch).default_action(default).x32_action(x32);
                f.extend(rules);
                f
            })
    })
}

/// A small deterministic generator (xorshift64*), for picking test inputs
/// from a proptest-provided seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// Argument values worth trying against `filter`: every condition value and
/// its neighbours, with the high word cleared, set, or flipped, plus edges.
pub fn arg_pool(filter: &Filter) -> Vec<u64> {
    let mut pool: Vec<u64> = EDGES.to_vec();
    for r in filter.rules() {
        for c in r.conditions() {
            let v = c.value();
            for w in [v, v.wrapping_add(1), v.wrapping_sub(1)] {
                pool.extend([w, w & 0xffff_ffff, w | 0xffff_ffff_0000_0000, w ^ (1 << 32)]);
            }
            if let CmpOp::MaskedEq(m) = c.op() {
                pool.extend([v | !m, v ^ (m & m.wrapping_neg())]);
            }
        }
    }
    pool.sort_unstable();
    pool.dedup();
    pool
}

/// Syscall numbers worth trying: those of the rules and their neighbours,
/// x32 and negative numbers, and a few random ones.
pub fn nr_pool(filter: &Filter, rng: &mut Rng) -> Vec<u32> {
    let arch = filter.arch();
    let mut nrs = vec![
        0,
        1,
        1023,
        u32::MAX,
        0x7fff_ffff,
        0x8000_0000,
        X32_SYSCALL_BIT,
    ];
    for r in filter.rules() {
        if let sandlock_bpf::Syscall::Nr(n) = r.syscall() {
            nrs.extend([
                *n,
                n.wrapping_add(1),
                n.wrapping_sub(1),
                n | X32_SYSCALL_BIT,
            ]);
        }
        if let sandlock_bpf::Syscall::Name(name) = r.syscall() {
            nrs.extend(arch.syscall_nr(name));
        }
    }
    for _ in 0..4 {
        nrs.push(rng.next() as u32);
        nrs.push(rng.below(1024) as u32);
    }
    nrs.sort_unstable();
    nrs.dedup();
    nrs
}

/// The `arch` values to try for a filter: mostly its own, sometimes foreign.
pub fn arch_value(filter: &Filter, rng: &mut Rng) -> u32 {
    let own = filter.arch().audit_arch();
    match rng.below(16) {
        0 => AUDIT_ARCH_I386,
        1 => Arch::ALL[rng.below(2)].audit_arch(),
        2 => rng.next() as u32,
        3 => own ^ 1,
        _ => own,
    }
}

/// Runs `program` on `data` and checks it against the reference meaning and
/// against its own constant-action analysis. Returns the steps executed.
pub fn check_one(program: &Program, reference: &Reference, data: &SeccompData) -> usize {
    let out = program
        .run(data)
        .unwrap_or_else(|e| panic!("generated program refused or failed: {e}\n{program}"));
    let want = reference.evaluate(data);
    assert_eq!(
        out.action(),
        Some(want),
        "program returned {:#x}, rules say {want} ({:#x}) for {data:x?}\n{program}",
        out.ret,
        want.to_ret()
    );
    if let Some(k) = program.const_action(data.arch, data.nr_bits()) {
        assert_eq!(
            k, out.ret,
            "const_action claims {k:#x} but the program returns {:#x} for {data:x?}",
            out.ret
        );
    }
    out.steps
}

/// Builds `filter` and checks it on `rounds` random inputs drawn with `seed`.
/// A filter that cannot be built must be refused identically by the reference.
pub fn check_filter(filter: &Filter, seed: u64, rounds: usize) {
    let program = match filter.build() {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(filter.reference().err(), Some(e));
            return;
        }
    };
    let reference = filter.reference().expect("builds, so resolves");
    let mut rng = Rng(seed | 1);
    let args = arg_pool(filter);
    let nrs = nr_pool(filter, &mut rng);
    for _ in 0..rounds {
        let mut a = [0u64; 6];
        for v in &mut a {
            *v = rng.pick(&args);
        }
        let data = SeccompData::with_audit_arch(arch_value(filter, &mut rng), rng.pick(&nrs), a);
        check_one(&program, &reference, &data);
    }
}
