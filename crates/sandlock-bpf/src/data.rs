//! The input of a seccomp program: the kernel's `struct seccomp_data`.

use crate::arch::Arch;
use crate::cond::ArgIndex;

/// `sizeof(struct seccomp_data)`: the bytes a seccomp program may load from.
pub const SECCOMP_DATA_SIZE: u32 = 64;

/// Byte offsets of the fields of `struct seccomp_data` (`<linux/seccomp.h>`),
/// for `BPF_LD | BPF_W | BPF_ABS` loads.
pub mod offset {
    use crate::cond::ArgIndex;

    /// `int nr`: the syscall number.
    pub const NR: u32 = 0;
    /// `__u32 arch`: the `AUDIT_ARCH_*` value of the calling convention.
    pub const ARCH: u32 = 4;
    /// Low 32 bits of `__u64 instruction_pointer`.
    pub const IP_LO: u32 = 8;
    /// High 32 bits of `__u64 instruction_pointer`.
    pub const IP_HI: u32 = 12;
    /// `__u64 args[6]`: first argument.
    pub const ARGS: u32 = 16;

    /// Offset of the low 32 bits of argument `arg` (little-endian layout).
    pub const fn arg_lo(arg: ArgIndex) -> u32 {
        ARGS + 8 * arg.get() as u32
    }

    /// Offset of the high 32 bits of argument `arg` (little-endian layout).
    pub const fn arg_hi(arg: ArgIndex) -> u32 {
        arg_lo(arg) + 4
    }
}

/// One syscall as a seccomp program sees it: `struct seccomp_data`.
///
/// The byte layout ([`SeccompData::word`], [`SeccompData::to_bytes`]) is the
/// kernel's on a little-endian machine (both architectures this crate knows):
/// the low half of `args[i]` is at offset `16 + 8 * i`, the high half 4 bytes
/// later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SeccompData {
    /// The syscall number (`int` in the kernel; the x32 bit makes it large).
    pub nr: i32,
    /// The `AUDIT_ARCH_*` value of the calling convention.
    pub arch: u32,
    /// The address of the syscall instruction.
    pub instruction_pointer: u64,
    /// The six raw syscall arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// A syscall `nr` with `args` on `arch`, at instruction pointer 0.
    ///
    /// `nr` is taken as the 32-bit pattern the kernel stores, so x32 numbers
    /// (`0x4000_0000 | n`) and `-1` (`0xffff_ffff`) can be expressed.
    pub const fn new(arch: Arch, nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData::with_audit_arch(arch.audit_arch(), nr, args)
    }

    /// Like [`SeccompData::new`] with a raw `AUDIT_ARCH_*` value, which may be
    /// an architecture this crate does not know (such as `AUDIT_ARCH_I386`).
    pub const fn with_audit_arch(audit_arch: u32, nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData {
            nr: nr as i32,
            arch: audit_arch,
            instruction_pointer: 0,
            args,
        }
    }

    /// The syscall number as the unsigned 32-bit value a BPF program compares.
    pub const fn nr_bits(&self) -> u32 {
        self.nr as u32
    }

    /// The value of argument `arg`.
    pub const fn arg(&self, arg: ArgIndex) -> u64 {
        self.args[arg.get() as usize]
    }

    /// The 32-bit word a `BPF_LD | BPF_W | BPF_ABS` load at `offset` reads,
    /// or `None` if the offset is misaligned or outside the structure (the
    /// kernel refuses such programs).
    pub fn word(&self, offset: u32) -> Option<u32> {
        if !offset.is_multiple_of(4) || offset >= SECCOMP_DATA_SIZE {
            return None;
        }
        let split = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        Some(match offset {
            offset::NR => self.nr as u32,
            offset::ARCH => self.arch,
            offset::IP_LO => split(self.instruction_pointer, false),
            offset::IP_HI => split(self.instruction_pointer, true),
            _ => {
                let rel = offset - offset::ARGS;
                split(self.args[(rel / 8) as usize], rel % 8 == 4)
            }
        })
    }

    /// The structure as the bytes the kernel hands to the program.
    pub fn to_bytes(&self) -> [u8; SECCOMP_DATA_SIZE as usize] {
        let mut out = [0u8; SECCOMP_DATA_SIZE as usize];
        out[0..4].copy_from_slice(&self.nr.to_le_bytes());
        out[4..8].copy_from_slice(&self.arch.to_le_bytes());
        out[8..16].copy_from_slice(&self.instruction_pointer.to_le_bytes());
        for (chunk, arg) in out[16..].chunks_exact_mut(8).zip(self.args) {
            chunk.copy_from_slice(&arg.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_the_byte_layout() {
        let d = SeccompData {
            nr: -2,
            arch: 0xc000_003e,
            instruction_pointer: 0x1122_3344_5566_7788,
            args: [
                0x0102_0304_0506_0708,
                u64::MAX,
                0,
                1 << 32,
                0xffff_ffff,
                0x8000_0000_0000_0001,
            ],
        };
        let bytes = d.to_bytes();
        for off in (0..SECCOMP_DATA_SIZE).step_by(4) {
            let o = off as usize;
            let want = u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
            assert_eq!(d.word(off), Some(want), "offset {off}");
        }
        assert_eq!(d.word(offset::arg_hi(ArgIndex::A3)), Some(1));
        assert_eq!(d.word(offset::arg_lo(ArgIndex::A3)), Some(0));
        assert_eq!(d.word(2), None);
        assert_eq!(d.word(64), None);
        assert_eq!(d.word(u32::MAX - 3), None);
    }
}
