//! Arbitrary bytes -> a rule set. The program must build or be refused with
//! the same error the reference gives; a built program must pass the kernel's
//! checks, and the interpreter's verdict must equal the reference evaluation
//! on inputs derived from the rules.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sandlock_bpf::arch::{AUDIT_ARCH_I386, X32_SYSCALL_BIT};
use sandlock_bpf::{
    Action, Arch, ArgIndex, BPF_MAXINSNS, BuildError, CmpOp, Cond, Errno, Filter, Rule,
    SeccompData, Syscall, Width, interp,
};

const EDGES: [u64; 10] = [
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

fn value(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => *u.choose(&EDGES)?,
        1 => u64::from(u.int_in_range(0..=8u8)?) | u64::from(u.int_in_range(0..=2u8)?) << 32,
        2 => u64::from(u.arbitrary::<u32>()?),
        _ => u.arbitrary()?,
    })
}

fn action(u: &mut Unstructured<'_>) -> Result<Action> {
    Ok(match u.int_in_range(0..=6u8)? {
        0 => Action::Allow,
        1 => Action::Errno(Errno::new(i64::from(u.int_in_range(1..=4095u16)?)).unwrap_or(Errno::EPERM)),
        2 => Action::UserNotif,
        3 => Action::Log,
        4 => Action::Trap(u.arbitrary()?),
        5 => Action::KillThread,
        _ => Action::KillProcess,
    })
}

fn cond(u: &mut Unstructured<'_>) -> Result<Cond> {
    let arg = ArgIndex::new(u.int_in_range(0..=5u8)?).unwrap_or(ArgIndex::A0);
    let narrow: bool = u.arbitrary()?;
    // Mostly valid operands; sometimes not (wide U32 operands, masked values
    // outside the mask), which must be refused.
    let sloppy = u.ratio(1u8, 16)?;
    let (mut v, mut m) = (value(u)?, value(u)?);
    if narrow && !sloppy {
        (v, m) = (v & 0xffff_ffff, m & 0xffff_ffff);
    }
    let op = match u.int_in_range(0..=6u8)? {
        0 => CmpOp::Eq,
        1 => CmpOp::Ne,
        2 => CmpOp::Lt,
        3 => CmpOp::Le,
        4 => CmpOp::Gt,
        5 => CmpOp::Ge,
        _ => {
            if !sloppy {
                v &= m;
            }
            CmpOp::MaskedEq(m)
        }
    };
    let c = Cond::new(arg, op, v);
    Ok(if narrow { c.with_width(Width::U32) } else { c })
}

fn syscall(u: &mut Unstructured<'_>, arch: Arch) -> Result<Syscall> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=4 => Syscall::Nr(u.int_in_range(0..=8u32)?),
        5..=6 => Syscall::Nr(u.int_in_range(0..=1023u32)?),
        7 => Syscall::Nr(u.arbitrary()?),
        8 => {
            let names: Vec<&str> = arch.syscalls().map(|(_, n)| n).collect();
            Syscall::Name((*u.choose(&names)?).into())
        }
        _ => Syscall::Name(u.arbitrary::<&str>()?.into()),
    })
}

fn filter(u: &mut Unstructured<'_>) -> Result<Filter> {
    let arch = *u.choose(&Arch::ALL)?;
    let mut f = Filter::new(arch).default_action(action(u)?).x32_action(action(u)?);
    let n = u.arbitrary_len::<[u8; 8]>()?.min(700);
    for _ in 0..n {
        let mut r = Rule::new(syscall(u, arch)?, action(u)?);
        for _ in 0..u.int_in_range(0..=3u8)? {
            r = r.when(cond(u)?);
        }
        f.push(r);
    }
    Ok(f)
}

fn nr_of(f: &Filter, s: &Syscall) -> u32 {
    match s {
        Syscall::Nr(n) => *n,
        Syscall::Name(name) => f.arch().syscall_nr(name).unwrap_or(0),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(f) = filter(&mut u) else { return };
    let program = match f.build() {
        Ok(p) => p,
        Err(e) => {
            assert!(!matches!(e, BuildError::Internal(_)), "generator bug: {e}");
            assert_eq!(f.reference().err(), Some(e), "build and reference disagree");
            return;
        }
    };
    assert!(!program.is_empty() && program.len() <= BPF_MAXINSNS);
    interp::check(program.insns()).expect("a generated program passes the kernel's checks");
    let reference = f.reference().expect("built, so the reference resolves");

    // Inputs derived from the rules: their numbers, and their condition
    // values and neighbours, with the high word kept, cleared or flipped.
    let mut pool: Vec<u64> = EDGES.to_vec();
    for r in f.rules().iter().take(64) {
        for c in r.conditions() {
            let v = c.value();
            pool.extend([v, v.wrapping_add(1), v.wrapping_sub(1), v & 0xffff_ffff, v ^ 1 << 32]);
        }
    }
    let rounds = 4 + usize::from(u.int_in_range(0..=12u8).unwrap_or(0));
    for i in 0..rounds {
        let nr = match (f.rules().len(), u.int_in_range(0..=5u8).unwrap_or(0)) {
            (0, _) | (_, 0) => u.arbitrary::<u32>().unwrap_or(i as u32),
            (_, 1) => X32_SYSCALL_BIT | u.int_in_range(0..=1023u32).unwrap_or(0),
            (n, _) => nr_of(&f, f.rules()[u.choose_index(n).unwrap_or(0)].syscall()),
        };
        let mut args = [0u64; 6];
        for a in &mut args {
            *a = pool[u.choose_index(pool.len()).unwrap_or(0)];
        }
        let audit = match u.int_in_range(0..=7u8).unwrap_or(0) {
            0 => AUDIT_ARCH_I386,
            1 => u.arbitrary().unwrap_or(0),
            _ => f.arch().audit_arch(),
        };
        let data = SeccompData::with_audit_arch(audit, nr, args);
        let out = program.run(&data).expect("a checked program runs");
        let want = reference.evaluate(&data);
        assert_eq!(out.ret, want.to_ret(), "verdict differs for {data:x?}\n{program}");
        if let Some(k) = program.const_action(audit, nr) {
            assert_eq!(k, out.ret, "const_action is wrong for {data:x?}");
        }
    }
});
