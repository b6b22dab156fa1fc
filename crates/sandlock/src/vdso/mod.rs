//! The vDSO of sandboxed processes.
//!
//! Most time reads and, with Linux 6.11 and glibc 2.41, `getrandom` never
//! enter the kernel: the vDSO answers them in user space, out of the seccomp
//! filter's sight. With `time_start` or `random_seed`, the supervisor edits
//! the vDSO of every new image of the sandbox, at the `execve` stop, before
//! the image runs one instruction ([`Plan::apply`]):
//!
//! - time (x86-64): `clock_gettime`, `gettimeofday` and `time` in the
//!   symbol table are pointed at stubs ([`stub`]) copied into the free space
//!   after the vDSO's content; they read the vDSO's own MONOTONIC clock and
//!   add the sandbox's offset, so a read costs tens of nanoseconds. Where
//!   the vDSO has no room for them, the three symbols are hidden instead
//!   (libc then makes the system call, which the supervisor answers).
//! - `getrandom`: hidden, so the C library makes the system call.
//! - the rest of the free space holds scratch slots for syscall arguments
//!   the supervisor rewrites (see `supervise/view/tracer.rs`): the
//!   pages are read-only for the process and its own, so nothing in the
//!   process overwrites a slot the kernel is about to read.
//!
//! The vDSO's pages are private copies after the first write (the kernel
//! writes `/proc/PID/mem` with `FOLL_FORCE`, copy-on-write): other
//! processes, inside the sandbox or not, keep the kernel's pages.

mod image;
mod patch;
mod stub;

use rustix::io::Errno;

pub(crate) use image::Image;
pub(crate) use patch::{Config, Plan, StubClock, TimeReads};

use crate::procmem::{self, Mem};

/// Why a vDSO could not be read or patched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VdsoError {
    /// The image does not parse.
    #[error("malformed vDSO image: {0}")]
    Malformed(&'static str),
    /// Reading or writing the process's memory failed.
    #[error("vDSO memory: {0}")]
    Memory(Errno),
    /// The process's vDSO is not the image the plan was made for.
    #[error("the process's vDSO differs from sandlock's")]
    Differs,
    /// The process has no vDSO.
    #[error("the process has no vDSO")]
    Missing,
}

/// This process's vDSO: the image the kernel maps into every 64-bit
/// process.
pub(crate) fn read_own() -> Result<Vec<u8>, VdsoError> {
    let auxv = procmem::auxv(None).map_err(VdsoError::Memory)?;
    let base = procmem::aux_value(&auxv, procmem::AT_SYSINFO_EHDR).ok_or(VdsoError::Missing)?;
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| {
        VdsoError::Memory(e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error))
    })?;
    let len = maps
        .lines()
        .filter(|l| l.ends_with("[vdso]"))
        .find_map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            (a == base && b > a).then(|| (b - a) as usize)
        })
        .ok_or(VdsoError::Missing)?;
    if len > 1 << 20 {
        return Err(VdsoError::Malformed("a vDSO larger than 1 MiB"));
    }
    let mem = Mem::open(std::process::id()).map_err(VdsoError::Memory)?;
    let mut bytes = vec![0u8; len];
    mem.read_exact(base, &mut bytes)
        .map_err(VdsoError::Memory)?;
    Ok(bytes)
}

/// The vDSO address of task `pid` (from its auxiliary vector).
pub(crate) fn base_of(pid: u32) -> Result<u64, VdsoError> {
    let auxv = procmem::auxv(Some(pid)).map_err(VdsoError::Memory)?;
    procmem::aux_value(&auxv, procmem::AT_SYSINFO_EHDR).ok_or(VdsoError::Missing)
}
