//! What to write into each vDSO of a sandbox, computed once from
//! sandlock's own vDSO (the kernel maps the same image into every 64-bit
//! process), and applied to each new image of the sandbox.

use std::ops::Range;

use super::VdsoError;
use super::image::Image;
use super::stub;
use crate::procmem::Mem;

/// Bytes of one scratch slot (two `timespec`s).
pub(crate) const SLOT: usize = 32;
/// At most this many scratch slots.
const MAX_SLOTS: usize = 64;

/// The sandbox's clock, in the form the stubs read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StubClock {
    /// Sandbox realtime minus `CLOCK_MONOTONIC`, whole seconds.
    pub(crate) off_sec: i64,
    /// ... and nanoseconds, `0..10⁹`.
    pub(crate) off_nsec: i64,
    /// `CLOCK_TAI` minus `CLOCK_REALTIME`, seconds.
    pub(crate) tai_sec: i64,
}

/// What to change in every vDSO of the sandbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Config {
    /// Shift time reads by this clock (`None`: leave them alone).
    pub(crate) clock: Option<StubClock>,
    /// Send time reads to the kernel even where the stubs fit (for
    /// measuring, and a fallback a caller may choose).
    pub(crate) time_via_kernel: bool,
    /// Hide `getrandom` (libc then makes the system call).
    pub(crate) hide_getrandom: bool,
}

/// How time reads of the sandbox are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeReads {
    /// Not shifted (no `time_start`).
    Untouched,
    /// In user space, by the stubs.
    UserSpace,
    /// By the kernel: the vDSO's time functions are hidden.
    Kernel,
}

/// The writes for one sandbox.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    original: Vec<u8>,
    writes: Vec<(usize, Vec<u8>)>,
    time: TimeReads,
    scratch: Range<usize>,
    syscall_site: Option<usize>,
}

/// The time symbols and the stub entry each one is pointed at.
const TIME_SYMBOLS: [(&str, usize); 6] = [
    ("clock_gettime", stub::CLOCK_GETTIME),
    ("__vdso_clock_gettime", stub::CLOCK_GETTIME),
    ("gettimeofday", stub::GETTIMEOFDAY),
    ("__vdso_gettimeofday", stub::GETTIMEOFDAY),
    ("time", stub::TIME),
    ("__vdso_time", stub::TIME),
];

/// Makes the symbol table entry at `entry` undefined (`st_shndx` and
/// `st_value` 0): symbol lookups skip it.
fn hide(writes: &mut Vec<(usize, Vec<u8>)>, entry: usize) {
    writes.push((entry + 6, 0u16.to_le_bytes().to_vec()));
    writes.push((entry + 8, 0u64.to_le_bytes().to_vec()));
}

impl Plan {
    /// The plan for `image` under `config`.
    pub(crate) fn new(image: &Image, config: &Config) -> Plan {
        let mut writes = Vec::new();
        let slack = image.slack();
        let mut free = slack.clone();
        let mut time = TimeReads::Untouched;
        if let Some(clock) = config.clock {
            let originals = (
                image.function("__vdso_clock_gettime"),
                image.function("__vdso_gettimeofday"),
            );
            let fits = slack.len() >= stub::STUB.len();
            match originals {
                (Some(cgt), Some(gtod)) if fits && !config.time_via_kernel => {
                    let block = slack.start;
                    let mut code = stub::STUB.to_vec();
                    let mut put = |at: usize, v: i64| {
                        code[at..at + 8].copy_from_slice(&v.to_le_bytes());
                    };
                    put(stub::OFF_SEC, clock.off_sec);
                    put(stub::OFF_NSEC, clock.off_nsec);
                    put(stub::TAI_SEC, clock.tai_sec);
                    put(stub::REL_CLOCK_GETTIME, cgt as i64 - block as i64);
                    put(stub::REL_GETTIMEOFDAY, gtod as i64 - block as i64);
                    writes.push((block, code));
                    for (name, entry) in TIME_SYMBOLS {
                        for sym in image.symbols(name).filter(|s| s.shndx != 0) {
                            let value = image.value_of(block + entry);
                            writes.push((sym.entry + 8, value.to_le_bytes().to_vec()));
                        }
                    }
                    free.start = (block + stub::STUB.len()).div_ceil(SLOT) * SLOT;
                    time = TimeReads::UserSpace;
                }
                _ => {
                    for (name, _) in TIME_SYMBOLS {
                        for sym in image.symbols(name) {
                            hide(&mut writes, sym.entry);
                        }
                    }
                    time = TimeReads::Kernel;
                }
            }
        }
        if config.hide_getrandom {
            for name in ["getrandom", "__vdso_getrandom"] {
                for sym in image.symbols(name) {
                    hide(&mut writes, sym.entry);
                }
            }
        }
        let free_start = free.start.min(free.end);
        let slots = ((free.end - free_start) / SLOT).min(MAX_SLOTS);
        Plan {
            original: image.bytes().to_vec(),
            writes,
            time,
            scratch: free_start..free_start + slots * SLOT,
            syscall_site: image.syscall_site(),
        }
    }

    /// How time reads are answered under this plan.
    pub(crate) fn time_reads(&self) -> TimeReads {
        self.time
    }

    /// Whether the plan changes anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Applies the plan to the vDSO at `base` of the process whose memory
    /// `mem` is. Refuses a vDSO that is not the plan's image.
    pub(crate) fn apply(&self, mem: &Mem, base: u64) -> Result<(), VdsoError> {
        let mut now = vec![0u8; self.original.len()];
        mem.read_exact(base, &mut now).map_err(VdsoError::Memory)?;
        if now != self.original {
            return Err(VdsoError::Differs);
        }
        for (off, bytes) in &self.writes {
            mem.write_all(base + *off as u64, bytes)
                .map_err(VdsoError::Memory)?;
        }
        Ok(())
    }

    /// The address of thread `tid`'s scratch slot in the vDSO at `base`
    /// (`None` when the vDSO has no room for one).
    pub(crate) fn scratch_slot(&self, base: u64, tid: u32) -> Option<u64> {
        let slots = self.scratch.len() / SLOT;
        (slots > 0).then(|| base + (self.scratch.start + (tid as usize % slots) * SLOT) as u64)
    }

    /// The address of a `syscall` instruction in the vDSO at `base`.
    pub(crate) fn syscall_site(&self, base: u64) -> Option<u64> {
        self.syscall_site.map(|s| base + s as u64)
    }

    /// The writes, for tests.
    #[cfg(test)]
    pub(crate) fn writes(&self) -> &[(usize, Vec<u8>)] {
        &self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Option<Image> {
        super::super::read_own()
            .ok()
            .map(|b| Image::parse(b).unwrap())
    }

    /// Applies the plan's writes to a copy of the image.
    fn patched(image: &Image, plan: &Plan) -> Image {
        let mut b = image.bytes().to_vec();
        for (off, bytes) in plan.writes() {
            b[*off..*off + bytes.len()].copy_from_slice(bytes);
        }
        Image::parse(b).unwrap()
    }

    const CLOCK: StubClock = StubClock {
        off_sec: -1_000_000,
        off_nsec: 5,
        tai_sec: 37,
    };

    #[test]
    fn time_symbols_point_at_the_stubs() {
        let Some(image) = own() else { return };
        let config = Config {
            clock: Some(CLOCK),
            ..Config::default()
        };
        let plan = Plan::new(&image, &config);
        if image.slack().len() < stub::STUB.len() {
            assert_eq!(plan.time_reads(), TimeReads::Kernel);
            return;
        }
        assert_eq!(plan.time_reads(), TimeReads::UserSpace);
        let after = patched(&image, &plan);
        let block = image.slack().start;
        assert_eq!(
            after.function("clock_gettime"),
            Some(block + stub::CLOCK_GETTIME)
        );
        assert_eq!(after.function("__vdso_time"), Some(block + stub::TIME));
        assert_eq!(
            after.function("gettimeofday"),
            Some(block + stub::GETTIMEOFDAY)
        );
        // The original functions are untouched, and the data holds the
        // distances to them.
        let cgt = image.function("__vdso_clock_gettime").unwrap();
        let rel = &after.bytes()[block + stub::REL_CLOCK_GETTIME..][..8];
        assert_eq!(
            i64::from_le_bytes(rel.try_into().unwrap()),
            cgt as i64 - block as i64
        );
        assert_eq!(after.bytes()[cgt..cgt + 64], image.bytes()[cgt..cgt + 64]);
        // getrandom untouched without the flag.
        assert_eq!(after.function("getrandom"), image.function("getrandom"));
        // Scratch slots after the stub, inside the mapping.
        let slot = plan.scratch_slot(0x1000_0000, 7).unwrap();
        let off = (slot - 0x1000_0000) as usize;
        assert!(off >= block + stub::STUB.len() && off + SLOT <= image.bytes().len());
    }

    #[test]
    fn kernel_mode_and_getrandom_hide_symbols() {
        let Some(image) = own() else { return };
        let config = Config {
            clock: Some(CLOCK),
            time_via_kernel: true,
            hide_getrandom: true,
        };
        let plan = Plan::new(&image, &config);
        assert_eq!(plan.time_reads(), TimeReads::Kernel);
        let after = patched(&image, &plan);
        for name in [
            "clock_gettime",
            "__vdso_gettimeofday",
            "time",
            "getrandom",
            "__vdso_getrandom",
        ] {
            assert_eq!(after.function(name), None, "{name} still visible");
        }
        assert!(after.function("__vdso_clock_getres").is_some());
        let nothing = Plan::new(&image, &Config::default());
        assert!(nothing.is_empty());
        assert_eq!(nothing.time_reads(), TimeReads::Untouched);
    }
}
