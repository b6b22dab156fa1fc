//! One classic-BPF instruction in the kernel's `struct sock_filter` layout.

use core::fmt;

/// One classic-BPF instruction, laid out exactly as the kernel's
/// `struct sock_filter` (`<linux/filter.h>`): a pointer to a slice of these is
/// what `seccomp(SECCOMP_SET_MODE_FILTER, ..)` takes in `struct sock_fprog`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Insn {
    /// Opcode: class, size, mode and source bits (`BPF_LD | BPF_W | BPF_ABS`, ...).
    pub code: u16,
    /// Jump offset when the condition holds (conditional jumps only).
    pub jt: u8,
    /// Jump offset when the condition does not hold (conditional jumps only).
    pub jf: u8,
    /// Generic operand: load offset, immediate, or return value.
    pub k: u32,
}

impl Insn {
    /// An instruction from its four fields.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        Insn { code, jt, jf, k }
    }

    /// A non-jump statement (`BPF_STMT` in C).
    pub const fn stmt(code: u16, k: u32) -> Self {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A conditional jump (`BPF_JUMP` in C).
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Insn { code, jt, jf, k }
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ code: {:#06x}, jt: {}, jf: {}, k: {:#010x} }}",
            self.code, self.jt, self.jf, self.k
        )
    }
}

/// Opcode bits of classic BPF (`<linux/bpf_common.h>`), restricted to what
/// seccomp accepts.
pub mod op {
    /// Instruction class: load into the accumulator.
    pub const BPF_LD: u16 = 0x00;
    /// Instruction class: load into the index register.
    pub const BPF_LDX: u16 = 0x01;
    /// Instruction class: store the accumulator into scratch memory.
    pub const BPF_ST: u16 = 0x02;
    /// Instruction class: store the index register into scratch memory.
    pub const BPF_STX: u16 = 0x03;
    /// Instruction class: arithmetic and logic on the accumulator.
    pub const BPF_ALU: u16 = 0x04;
    /// Instruction class: jumps.
    pub const BPF_JMP: u16 = 0x05;
    /// Instruction class: return.
    pub const BPF_RET: u16 = 0x06;
    /// Instruction class: register transfers.
    pub const BPF_MISC: u16 = 0x07;

    /// Size: 32-bit word (the only size seccomp allows for loads).
    pub const BPF_W: u16 = 0x00;
    /// Size: 16-bit half word.
    pub const BPF_H: u16 = 0x08;
    /// Size: byte.
    pub const BPF_B: u16 = 0x10;

    /// Mode: immediate.
    pub const BPF_IMM: u16 = 0x00;
    /// Mode: absolute offset into `seccomp_data`.
    pub const BPF_ABS: u16 = 0x20;
    /// Mode: indexed offset.
    pub const BPF_IND: u16 = 0x40;
    /// Mode: scratch memory slot.
    pub const BPF_MEM: u16 = 0x60;
    /// Mode: length of the input (`sizeof(struct seccomp_data)`).
    pub const BPF_LEN: u16 = 0x80;

    /// ALU / jump operation: add.
    pub const BPF_ADD: u16 = 0x00;
    /// ALU operation: subtract.
    pub const BPF_SUB: u16 = 0x10;
    /// ALU operation: multiply.
    pub const BPF_MUL: u16 = 0x20;
    /// ALU operation: divide.
    pub const BPF_DIV: u16 = 0x30;
    /// ALU operation: bitwise or.
    pub const BPF_OR: u16 = 0x40;
    /// ALU operation: bitwise and.
    pub const BPF_AND: u16 = 0x50;
    /// ALU operation: left shift.
    pub const BPF_LSH: u16 = 0x60;
    /// ALU operation: right shift.
    pub const BPF_RSH: u16 = 0x70;
    /// ALU operation: negate.
    pub const BPF_NEG: u16 = 0x80;
    /// ALU operation: modulo.
    pub const BPF_MOD: u16 = 0x90;
    /// ALU operation: exclusive or.
    pub const BPF_XOR: u16 = 0xa0;

    /// Jump: unconditional.
    pub const BPF_JA: u16 = 0x00;
    /// Jump: if equal.
    pub const BPF_JEQ: u16 = 0x10;
    /// Jump: if greater (unsigned).
    pub const BPF_JGT: u16 = 0x20;
    /// Jump: if greater or equal (unsigned).
    pub const BPF_JGE: u16 = 0x30;
    /// Jump: if any bit of the operand is set.
    pub const BPF_JSET: u16 = 0x40;

    /// Source: the immediate `k`.
    pub const BPF_K: u16 = 0x00;
    /// Source: the index register.
    pub const BPF_X: u16 = 0x08;
    /// Return source: the accumulator.
    pub const BPF_A: u16 = 0x10;

    /// Misc: copy the accumulator into the index register.
    pub const BPF_TAX: u16 = 0x00;
    /// Misc: copy the index register into the accumulator.
    pub const BPF_TXA: u16 = 0x80;
}
