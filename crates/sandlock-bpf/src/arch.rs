//! Architectures a program can be generated for, and their syscall tables.

use core::fmt;

/// `AUDIT_ARCH_X86_64` from `<linux/audit.h>`: `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_AARCH64` from `<linux/audit.h>`: `EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `AUDIT_ARCH_I386` from `<linux/audit.h>`: what `int $0x80` on x86_64 reports.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// The x32 ABI bit of x86_64 syscall numbers (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The highest syscall number the tables and exhaustive checks consider.
pub const MAX_SYSCALL_NR: u32 = 1023;

/// A CPU architecture with a seccomp audit value and a syscall table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86_64 (64-bit ABI; x32 and i386 entries are foreign to it).
    X86_64,
    /// aarch64 (arm64).
    Aarch64,
}

impl Arch {
    /// Every architecture this crate knows.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture this crate was compiled for, if it is one of [`Arch::ALL`].
    pub const fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub const fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The architecture whose `AUDIT_ARCH_*` value is `audit`, if known.
    pub const fn from_audit_arch(audit: u32) -> Option<Arch> {
        match audit {
            AUDIT_ARCH_X86_64 => Some(Arch::X86_64),
            AUDIT_ARCH_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// Whether syscall numbers with [`X32_SYSCALL_BIT`] reach a second table
    /// on this architecture (so a filter must refuse them).
    pub const fn has_x32_bit(self) -> bool {
        matches!(self, Arch::X86_64)
    }

    /// The number of the syscall called `name` on this architecture.
    ///
    /// ```
    /// use sandlock_bpf::Arch;
    /// assert_eq!(Arch::X86_64.syscall_nr("openat"), Some(257));
    /// assert_eq!(Arch::Aarch64.syscall_nr("openat"), Some(56));
    /// assert_eq!(Arch::Aarch64.syscall_nr("open"), None);
    /// ```
    pub fn syscall_nr(self, name: &str) -> Option<u32> {
        use crate::names::{AARCH64, X86_64, lookup};
        match self {
            Arch::X86_64 => lookup(&X86_64, name, |nr| {
                syscalls::x86_64::Sysno::new(nr).map(|s| s.name())
            }),
            Arch::Aarch64 => lookup(&AARCH64, name, |nr| {
                syscalls::aarch64::Sysno::new(nr).map(|s| s.name())
            }),
        }
    }

    /// The name of syscall number `nr` on this architecture.
    ///
    /// ```
    /// use sandlock_bpf::Arch;
    /// assert_eq!(Arch::X86_64.syscall_name(59), Some("execve"));
    /// assert_eq!(Arch::X86_64.syscall_name(1000), None);
    /// ```
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        let nr = usize::try_from(nr).ok()?;
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::new(nr).map(|s| s.name()),
            Arch::Aarch64 => syscalls::aarch64::Sysno::new(nr).map(|s| s.name()),
        }
    }

    /// Every `(number, name)` of this architecture's table, in number order.
    pub fn syscalls(self) -> impl Iterator<Item = (u32, &'static str)> {
        (0..=MAX_SYSCALL_NR).filter_map(move |nr| self.syscall_name(nr).map(|n| (nr, n)))
    }

    /// The highest syscall number in this architecture's table.
    pub fn max_known_nr(self) -> u32 {
        let last = match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::last().id(),
            Arch::Aarch64 => syscalls::aarch64::Sysno::last().id(),
        };
        u32::try_from(last).unwrap_or(0)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip() {
        for arch in Arch::ALL {
            let mut n = 0;
            for (nr, name) in arch.syscalls() {
                assert_eq!(arch.syscall_nr(name), Some(nr), "{arch} {name}");
                n += 1;
            }
            assert!(n > 300, "{arch} table has only {n} entries");
        }
    }

    #[test]
    fn audit_values() {
        for arch in Arch::ALL {
            assert_eq!(Arch::from_audit_arch(arch.audit_arch()), Some(arch));
        }
        assert_eq!(Arch::from_audit_arch(AUDIT_ARCH_I386), None);
    }

    #[test]
    fn known_numbers() {
        assert_eq!(Arch::X86_64.syscall_nr("clone3"), Some(435));
        assert_eq!(Arch::Aarch64.syscall_nr("clone3"), Some(435));
        assert_eq!(Arch::X86_64.syscall_nr("connect"), Some(42));
        assert_eq!(Arch::Aarch64.syscall_nr("connect"), Some(203));
        assert!(Arch::X86_64.max_known_nr() >= 462);
        for arch in Arch::ALL {
            let highest = arch.syscalls().map(|(nr, _)| nr).max();
            assert_eq!(Some(arch.max_known_nr()), highest, "{arch}");
        }
    }
}
