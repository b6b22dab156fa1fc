//! Syscall names to numbers, through a hash table of each architecture's
//! numbers computed when the crate is compiled.
//!
//! The `syscalls` crate reads a name with one `match` over every name of
//! its table, which the compiler turns into a chain of comparisons: about
//! 540 instructions a name, a sixth of what a start runs to build its
//! filters (written with names). Here a name is hashed, and the number in
//! its slot named back (`Sysno::name`) to confirm it: about a hundred. The
//! table holds numbers only, so nothing in it is relocated at start-up.

/// Slots of a table: a power of two, more than twice the largest table.
const SLOTS: usize = 1024;

/// An empty slot.
const EMPTY: u16 = u16::MAX;

/// A table: each syscall's number in the first free slot from its name's
/// hash on.
pub(crate) type Table = [u16; SLOTS];

/// FNV-1a of `name`, as a slot.
const fn slot(name: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < name.len() {
        h ^= name[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h as usize & (SLOTS - 1)
}

/// The table of one `Sysno` type of the `syscalls` crate.
macro_rules! table {
    ($sysno:ty) => {{
        const T: Table = {
            let mut t = [EMPTY; SLOTS];
            let last = <$sysno>::last().id() as usize;
            assert!(last < EMPTY as usize && <$sysno>::count() * 2 < SLOTS);
            let mut id = 0;
            while id <= last {
                if let Some(s) = <$sysno>::new(id) {
                    let mut i = slot(s.name().as_bytes());
                    while t[i] != EMPTY {
                        i = (i + 1) & (SLOTS - 1);
                    }
                    t[i] = id as u16;
                }
                id += 1;
            }
            t
        };
        T
    }};
}

/// The x86_64 table.
pub(crate) static X86_64: Table = table!(syscalls::x86_64::Sysno);
/// The aarch64 table.
pub(crate) static AARCH64: Table = table!(syscalls::aarch64::Sysno);

/// The number of syscall `name` in `table`, whose numbers `name_of` names.
pub(crate) fn lookup(
    table: &Table,
    name: &str,
    name_of: impl Fn(usize) -> Option<&'static str>,
) -> Option<u32> {
    let mut i = slot(name.as_bytes());
    // At most half the slots are taken: an empty one ends every probe.
    loop {
        let nr = table[i];
        if nr == EMPTY {
            return None;
        }
        if name_of(usize::from(nr)) == Some(name) {
            return Some(u32::from(nr));
        }
        i = (i + 1) & (SLOTS - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscalls::{aarch64, x86_64};

    fn x86(name: &str) -> Option<u32> {
        lookup(&X86_64, name, |nr| x86_64::Sysno::new(nr).map(|s| s.name()))
    }

    fn arm(name: &str) -> Option<u32> {
        lookup(&AARCH64, name, |nr| {
            aarch64::Sysno::new(nr).map(|s| s.name())
        })
    }

    #[test]
    fn every_number_once_and_found_by_its_name() {
        for (table, count) in [
            (&X86_64, x86_64::Sysno::count()),
            (&AARCH64, aarch64::Sysno::count()),
        ] {
            assert_eq!(table.iter().filter(|&&n| n != EMPTY).count(), count);
        }
        for nr in 0..2048 {
            if let Some(s) = x86_64::Sysno::new(nr) {
                assert_eq!(x86(s.name()), Some(nr as u32), "{}", s.name());
            }
            if let Some(s) = aarch64::Sysno::new(nr) {
                assert_eq!(arm(s.name()), Some(nr as u32), "{}", s.name());
            }
        }
    }

    #[test]
    fn other_names_are_not_found() {
        for absent in [
            "", "reads", "opena", "READ", "open\0", "x32_read", "sys_read",
        ] {
            assert_eq!(x86(absent), None, "{absent:?}");
        }
        assert_eq!(arm("open"), None);
        assert_eq!(x86("open"), Some(2));
    }
}
