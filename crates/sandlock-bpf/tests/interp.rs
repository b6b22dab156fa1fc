//! The interpreter: what it refuses (as the kernel does), what it computes,
//! and that it never panics.

use proptest::prelude::*;
use sandlock_bpf::insn::op::*;
use sandlock_bpf::interp::{self, InterpError};
use sandlock_bpf::{Arch, Insn, SeccompData};

fn s(code: u16, k: u32) -> Insn {
    Insn::stmt(code, k)
}
fn j(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn::jump(code, k, jt, jf)
}
const RET: u16 = BPF_RET | BPF_K;
const LD: u16 = BPF_LD | BPF_W | BPF_ABS;

fn data() -> SeccompData {
    SeccompData {
        nr: 59,
        arch: Arch::X86_64.audit_arch(),
        instruction_pointer: 0x1234_5678_9abc_def0,
        args: [1, 2, 3, 4, 5, 0xdead_beef_0000_0006],
    }
}

fn run(p: &[Insn]) -> Result<u32, InterpError> {
    interp::run(p, &data()).map(|o| o.ret)
}

#[test]
fn refuses_what_the_kernel_refuses() {
    use InterpError::*;
    let cases: Vec<(Vec<Insn>, InterpError)> = vec![
        (vec![], Empty),
        (vec![s(RET, 0); 4097], TooLong { len: 4097 }),
        (vec![s(LD, 64), s(RET, 0)], Load { pc: 0, k: 64 }),
        (vec![s(LD, 2), s(RET, 0)], Load { pc: 0, k: 2 }),
        (
            vec![s(LD, u32::MAX - 3), s(RET, 0)],
            Load {
                pc: 0,
                k: u32::MAX - 3,
            },
        ),
        // Byte and half-word loads, indirect loads, MOD: not for seccomp.
        (
            vec![s(BPF_LD | BPF_B | BPF_ABS, 0), s(RET, 0)],
            Opcode { pc: 0, code: 0x30 },
        ),
        (
            vec![s(BPF_LD | BPF_H | BPF_ABS, 0), s(RET, 0)],
            Opcode { pc: 0, code: 0x28 },
        ),
        (
            vec![s(BPF_LD | BPF_W | BPF_IND, 0), s(RET, 0)],
            Opcode { pc: 0, code: 0x40 },
        ),
        (
            vec![s(BPF_ALU | BPF_MOD | BPF_K, 3), s(RET, 0)],
            Opcode { pc: 0, code: 0x94 },
        ),
        (
            vec![s(0xffff, 0), s(RET, 0)],
            Opcode {
                pc: 0,
                code: 0xffff,
            },
        ),
        (
            vec![s(BPF_ALU | BPF_DIV | BPF_K, 0), s(RET, 0)],
            DivByZero { pc: 0 },
        ),
        (
            vec![s(BPF_ALU | BPF_LSH | BPF_K, 32), s(RET, 0)],
            Shift { pc: 0, k: 32 },
        ),
        (vec![s(BPF_ST, 16), s(RET, 0)], Scratch { pc: 0, k: 16 }),
        (
            vec![s(BPF_LD | BPF_MEM, 3), s(RET, 0)],
            Uninit { pc: 0, k: 3 },
        ),
        // Written on one path only.
        (
            vec![
                j(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
                s(BPF_ST, 3),
                s(BPF_LD | BPF_MEM, 3),
                s(RET, 0),
            ],
            Uninit { pc: 2, k: 3 },
        ),
        (
            vec![j(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), s(RET, 0)],
            Jump { pc: 0 },
        ),
        (
            vec![j(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 255), s(RET, 0)],
            Jump { pc: 0 },
        ),
        (vec![s(BPF_JMP | BPF_JA, 1), s(RET, 0)], Jump { pc: 0 }),
        (
            vec![s(BPF_JMP | BPF_JA, u32::MAX), s(RET, 0)],
            Jump { pc: 0 },
        ),
        (vec![s(LD, 0)], NoFinalRet),
        (vec![s(RET, 0), s(LD, 0)], NoFinalRet),
    ];
    for (program, want) in cases {
        assert_eq!(run(&program), Err(want), "{program:?}");
    }
}

#[test]
fn loads_every_field_little_endian() {
    let d = data();
    for (off, want) in [
        (0, 59),
        (4, Arch::X86_64.audit_arch()),
        (8, 0x9abc_def0),
        (12, 0x1234_5678),
        (16, 1),
        (20, 0),
        (56, 6),
        (60, 0xdead_beef),
    ] {
        let p = [s(LD, off), s(BPF_RET | BPF_A, 0)];
        assert_eq!(interp::run(&p, &d).unwrap().ret, want, "offset {off}");
    }
}

#[test]
fn computes_like_classic_bpf() {
    let alu = |op: u16, a: u32, k: u32| {
        run(&[
            s(BPF_LD | BPF_IMM, a),
            s(BPF_ALU | op | BPF_K, k),
            s(BPF_RET | BPF_A, 0),
        ])
        .unwrap()
    };
    assert_eq!(alu(BPF_ADD, u32::MAX, 2), 1);
    assert_eq!(alu(BPF_SUB, 1, 2), u32::MAX);
    assert_eq!(alu(BPF_MUL, 0x8000_0000, 2), 0);
    assert_eq!(alu(BPF_DIV, 7, 2), 3);
    assert_eq!(alu(BPF_AND, 0xf0f0, 0xff00), 0xf000);
    assert_eq!(alu(BPF_OR, 0xf0, 0x0f), 0xff);
    assert_eq!(alu(BPF_XOR, 0xff, 0x0f), 0xf0);
    assert_eq!(alu(BPF_LSH, 1, 31), 0x8000_0000);
    assert_eq!(alu(BPF_RSH, 0x8000_0000, 31), 1);
    // Division by a zero index register ends the program with 0.
    let p = [
        s(BPF_LD | BPF_IMM, 9),
        s(BPF_LDX | BPF_IMM, 0),
        s(BPF_ALU | BPF_DIV | BPF_X, 0),
        s(RET, 0x7fff_0000),
    ];
    assert_eq!(
        interp::run(&p, &data()).unwrap(),
        interp::Outcome { ret: 0, steps: 3 }
    );
    // Scratch memory, X register, LEN, NEG.
    let p = [
        s(BPF_LD | BPF_W | BPF_LEN, 0),
        s(BPF_ST, 15),
        s(BPF_LDX | BPF_MEM, 15),
        s(BPF_MISC | BPF_TXA, 0),
        s(BPF_ALU | BPF_NEG, 0),
        s(BPF_MISC | BPF_TAX, 0),
        s(BPF_ALU | BPF_ADD | BPF_X, 0),
        s(BPF_RET | BPF_A, 0),
    ];
    assert_eq!(run(&p), Ok((-128i32) as u32));
    // Jumps: JSET with X, JA.
    let p = [
        s(BPF_LDX | BPF_IMM, 0b100),
        s(BPF_LD | BPF_IMM, 0b110),
        j(BPF_JMP | BPF_JSET | BPF_X, 0, 1, 0),
        s(RET, 1),
        s(BPF_JMP | BPF_JA, 1),
        s(RET, 2),
        s(RET, 3),
    ];
    assert_eq!(
        interp::run(&p, &data()).unwrap(),
        interp::Outcome { ret: 3, steps: 5 }
    );
}

fn any_insn() -> impl Strategy<Value = Insn> {
    let code = prop_oneof![
        // Every opcode seccomp accepts, and some it does not.
        proptest::sample::select(vec![
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0c, 0x14, 0x15, 0x16, 0x1c, 0x1d,
            0x20, 0x24, 0x25, 0x28, 0x2c, 0x2d, 0x30, 0x34, 0x35, 0x3c, 0x3d, 0x40, 0x44, 0x45,
            0x4c, 0x4d, 0x50, 0x54, 0x5c, 0x60, 0x61, 0x64, 0x6c, 0x74, 0x7c, 0x80, 0x81, 0x84,
            0x87, 0x94, 0xa4, 0xac, 0xb1,
        ]),
        any::<u16>(),
    ];
    let k = prop_oneof![0u32..80, Just(u32::MAX), any::<u32>()];
    (code, 0u8..6, 0u8..6, k).prop_map(|(c, jt, jf, k)| Insn::jump(c, k, jt, jf))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Whatever the program, the interpreter returns an answer or an error,
    /// never panics, and never runs more instructions than the program has.
    #[test]
    fn never_panics(p in proptest::collection::vec(any_insn(), 0..24), nr in any::<u32>(), args in any::<[u64; 6]>()) {
        let d = SeccompData::with_audit_arch(Arch::X86_64.audit_arch(), nr, args);
        let checked = interp::check(&p);
        match interp::run(&p, &d) {
            Ok(o) => {
                prop_assert!(checked.is_ok());
                prop_assert!(o.steps >= 1 && o.steps <= p.len());
            }
            Err(e) => prop_assert_eq!(checked, Err(e)),
        }
        let _ = sandlock_bpf::program::const_action(&p, d.arch, nr);
        let _ = sandlock_bpf::disasm::Disasm::new(&p, Some(Arch::X86_64)).to_string();
    }
}
