//! Conditions on syscall arguments.

use core::fmt;

/// Which of the six syscall arguments a condition looks at.
///
/// An enum, so an index of 6 or more cannot be written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArgIndex {
    /// The first argument (`args[0]`).
    A0,
    /// The second argument (`args[1]`).
    A1,
    /// The third argument (`args[2]`).
    A2,
    /// The fourth argument (`args[3]`).
    A3,
    /// The fifth argument (`args[4]`).
    A4,
    /// The sixth argument (`args[5]`).
    A5,
}

impl ArgIndex {
    /// All six indices in order.
    pub const ALL: [ArgIndex; 6] = [
        ArgIndex::A0,
        ArgIndex::A1,
        ArgIndex::A2,
        ArgIndex::A3,
        ArgIndex::A4,
        ArgIndex::A5,
    ];

    /// The index `i`, or `None` if `i > 5`.
    pub const fn new(i: u8) -> Option<ArgIndex> {
        match i {
            0 => Some(ArgIndex::A0),
            1 => Some(ArgIndex::A1),
            2 => Some(ArgIndex::A2),
            3 => Some(ArgIndex::A3),
            4 => Some(ArgIndex::A4),
            5 => Some(ArgIndex::A5),
            _ => None,
        }
    }

    /// The index as a number in `0..=5`.
    pub const fn get(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for ArgIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "args[{}]", self.get())
    }
}

/// How many bits of an argument a condition compares.
///
/// Syscall arguments are 64-bit registers, but many syscalls read some of
/// them as a C `int` or `unsigned int`, ignoring the upper 32 bits
/// (`ioctl`'s request, `socket`'s domain and type, `personality`'s persona,
/// `fcntl`'s command, ...). Whichever width the kernel uses, a condition must
/// use the same, or a caller can make the filter and the kernel disagree:
///
/// * [`Width::U64`] compares all 64 bits, both halves. A condition that checked
///   only the low half of a 64-bit argument would treat `0x1_0000_0000` as `0`
///   (the bug behind CVE-2019-10063).
/// * [`Width::U32`] compares only the low 32 bits and ignores the high half, so
///   `ioctl(fd, TIOCSTI | 1 << 32)`, which the kernel runs as `TIOCSTI`, still
///   matches a rule on `TIOCSTI`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Width {
    /// Compare the full 64-bit value (the default).
    #[default]
    U64,
    /// Compare only the low 32 bits, as the kernel does for `int` arguments.
    /// The operands of the condition must fit in 32 bits.
    U32,
}

/// A comparison between an argument and a constant. All are unsigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `arg == value`.
    Eq,
    /// `arg != value`.
    Ne,
    /// `arg < value`.
    Lt,
    /// `arg <= value`.
    Le,
    /// `arg > value`.
    Gt,
    /// `arg >= value`.
    Ge,
    /// `arg & mask == value`. `value` must have no bits outside `mask`.
    MaskedEq(u64),
}

/// One condition on one argument: `arg <op> value` at a given [`Width`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cond {
    arg: ArgIndex,
    width: Width,
    op: CmpOp,
    value: u64,
}

impl Cond {
    /// `arg <op> value`, comparing all 64 bits.
    pub const fn new(arg: ArgIndex, op: CmpOp, value: u64) -> Cond {
        Cond {
            arg,
            width: Width::U64,
            op,
            value,
        }
    }

    /// `arg == value`.
    pub const fn eq(arg: ArgIndex, value: u64) -> Cond {
        Cond::new(arg, CmpOp::Eq, value)
    }

    /// `arg != value`.
    pub const fn ne(arg: ArgIndex, value: u64) -> Cond {
        Cond::new(arg, CmpOp::Ne, value)
    }

    /// `arg < value` (unsigned).
    pub const fn lt(arg: ArgIndex, value: u64) -> Cond {
        Cond::new(arg, CmpOp::Lt, value)
    }

    /// `arg <= value` (unsigned).
    pub const fn le(arg: ArgIndex, value: u64) -> Cond {
        Cond::new(arg, CmpOp::Le, value)
    }

    /// `arg > value` (unsigned).
    pub const fn gt(arg: ArgIndex, value: u64) -> Cond {
        Cond::new(arg, CmpOp::Gt, value)
    }

    /// `arg >= value` (unsigned).
    pub const fn ge(arg: ArgIndex, value: u64) -> Cond {
        Cond::new(arg, CmpOp::Ge, value)
    }

    /// `arg & mask == value`.
    pub const fn masked_eq(arg: ArgIndex, mask: u64, value: u64) -> Cond {
        Cond::new(arg, CmpOp::MaskedEq(mask), value)
    }

    /// The same condition at width `width`.
    pub const fn with_width(self, width: Width) -> Cond {
        Cond { width, ..self }
    }

    /// The same condition on the low 32 bits only ([`Width::U32`]), for
    /// arguments the kernel reads as a C `int`.
    ///
    /// ```
    /// use sandlock_bpf::{ArgIndex, Cond};
    /// const TIOCSTI: u64 = 0x5412;
    /// let c = Cond::eq(ArgIndex::A1, TIOCSTI).u32();
    /// assert!(c.matches(TIOCSTI | 1 << 32));
    /// assert!(!Cond::eq(ArgIndex::A1, TIOCSTI).matches(TIOCSTI | 1 << 32));
    /// ```
    pub const fn u32(self) -> Cond {
        self.with_width(Width::U32)
    }

    /// The argument compared.
    pub const fn arg(&self) -> ArgIndex {
        self.arg
    }

    /// The width compared.
    pub const fn width(&self) -> Width {
        self.width
    }

    /// The comparison.
    pub const fn op(&self) -> CmpOp {
        self.op
    }

    /// The constant compared against.
    pub const fn value(&self) -> u64 {
        self.value
    }

    /// Whether an argument value satisfies this condition: the reference
    /// meaning that generated programs are checked against.
    ///
    /// A condition the builder refuses (operands wider than a [`Width::U32`],
    /// a masked value with bits outside its mask) is judged on the bits its
    /// width covers.
    pub const fn matches(&self, arg: u64) -> bool {
        let (a, v) = match self.width {
            Width::U64 => (arg, self.value),
            Width::U32 => (arg as u32 as u64, self.value as u32 as u64),
        };
        match self.op {
            CmpOp::Eq => a == v,
            CmpOp::Ne => a != v,
            CmpOp::Lt => a < v,
            CmpOp::Le => a <= v,
            CmpOp::Gt => a > v,
            CmpOp::Ge => a >= v,
            CmpOp::MaskedEq(mask) => {
                let m = match self.width {
                    Width::U64 => mask,
                    Width::U32 => mask as u32 as u64,
                };
                a & m == v
            }
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = match self.width {
            Width::U64 => "",
            Width::U32 => " (u32)",
        };
        let (arg, v) = (self.arg, self.value);
        match self.op {
            CmpOp::Eq => write!(f, "{arg}{w} == {v:#x}"),
            CmpOp::Ne => write!(f, "{arg}{w} != {v:#x}"),
            CmpOp::Lt => write!(f, "{arg}{w} < {v:#x}"),
            CmpOp::Le => write!(f, "{arg}{w} <= {v:#x}"),
            CmpOp::Gt => write!(f, "{arg}{w} > {v:#x}"),
            CmpOp::Ge => write!(f, "{arg}{w} >= {v:#x}"),
            CmpOp::MaskedEq(m) => write!(f, "{arg}{w} & {m:#x} == {v:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_index_is_bounded() {
        for i in 0..=5u8 {
            assert_eq!(ArgIndex::new(i).map(ArgIndex::get), Some(i));
        }
        assert_eq!(ArgIndex::new(6), None);
        assert_eq!(ArgIndex::new(255), None);
    }

    #[test]
    fn u64_compares_both_halves() {
        let c = Cond::eq(ArgIndex::A0, 0);
        assert!(c.matches(0));
        assert!(!c.matches(1 << 32), "high half ignored: CVE-2019-10063");
        assert!(Cond::lt(ArgIndex::A0, 1 << 32).matches(0xffff_ffff));
        assert!(!Cond::lt(ArgIndex::A0, 1 << 32).matches(1 << 32));
        assert!(Cond::gt(ArgIndex::A0, 5).matches(1 << 32));
    }

    #[test]
    fn u32_ignores_the_high_half() {
        let c = Cond::gt(ArgIndex::A2, 5).u32();
        assert!(!c.matches(1 << 32), "low half is 0");
        assert!(c.matches((1 << 32) | 6));
        let m = Cond::masked_eq(ArgIndex::A1, 0xff, 0x12).u32();
        assert!(m.matches(0xdead_0000_0000_3412));
    }
}
