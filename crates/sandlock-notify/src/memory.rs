//! Reading a traced task's memory: the [`ChildMemory`] trait, the real
//! reader (`process_vm_readv`, falling back to `/proc/PID/mem`) and a fake
//! byte image for tests and fuzzing.

use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::sys;

/// The page size used to split reads, so that no single read crosses into a
/// page that might be unmapped. 4 KiB is the smallest page size of every
/// architecture we support; a larger real page only means more reads.
pub const PAGE: u64 = 4096;

/// Why a read of child memory failed.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// Nothing is mapped (readable) at this address.
    #[error("no readable memory at {addr:#x} in the child")]
    Fault {
        /// The first address that could not be read.
        addr: u64,
    },
    /// The task is gone.
    #[error("the child task is gone")]
    Gone,
    /// A value was longer than its bound.
    #[error("value at {addr:#x} is longer than its bound of {bound} bytes")]
    TooLong {
        /// Where the value starts.
        addr: u64,
        /// The bound it exceeded.
        bound: usize,
    },
    /// The kernel refused the read for another reason.
    #[error("reading child memory at {addr:#x} failed: {errno}")]
    Os {
        /// The address.
        addr: u64,
        /// The error.
        errno: Errno,
    },
}

/// Read access to one task's address space.
pub trait ChildMemory {
    /// Copy up to `buf.len()` bytes from `addr`. Returns how many bytes were
    /// copied, which may be fewer than asked when the range runs into
    /// unreadable memory; `Err(Fault)` when not even the first byte is
    /// readable. Never reads past `buf`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemError>;

    /// Read exactly `buf.len()` bytes, in page-bounded pieces.
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0;
        while done < buf.len() {
            let at = addr
                .checked_add(done as u64)
                .ok_or(MemError::Fault { addr })?;
            let page_left = (PAGE - at % PAGE) as usize;
            let want = page_left.min(buf.len() - done);
            let n = self.read(at, &mut buf[done..done + want])?;
            if n == 0 {
                return Err(MemError::Fault { addr: at });
            }
            done += n;
        }
        Ok(())
    }
}

impl<M: ChildMemory + ?Sized> ChildMemory for &M {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemError> {
        (**self).read(addr, buf)
    }
}

/// The real reader for task `pid`: `process_vm_readv`, or `pread` on
/// `/proc/PID/mem` where `process_vm_readv` is refused (`ENOSYS`, `EPERM`).
///
/// Reading does not prove the task still waits in the syscall: check
/// `id_valid` after reading and before acting (see [`crate::Unverified`]).
#[derive(Debug)]
pub struct ProcessMemory {
    pid: u32,
    mem: OnceLock<Result<OwnedFd, Errno>>,
    force_proc_mem: bool,
}

impl ProcessMemory {
    /// A reader for task `pid` (as seen in the caller's PID namespace).
    pub fn new(pid: u32) -> ProcessMemory {
        ProcessMemory {
            pid,
            mem: OnceLock::new(),
            force_proc_mem: false,
        }
    }

    /// A reader that always uses `/proc/PID/mem` (to test the fallback).
    pub fn via_proc_mem(pid: u32) -> ProcessMemory {
        ProcessMemory {
            force_proc_mem: true,
            ..ProcessMemory::new(pid)
        }
    }

    /// The task this reads.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn read_proc_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemError> {
        let fd = self
            .mem
            .get_or_init(|| {
                let mut path = heapless::String::<32>::new();
                let _ =
                    core::fmt::Write::write_fmt(&mut path, format_args!("/proc/{}/mem", self.pid));
                rustix::fs::open(
                    path.as_str(),
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            })
            .as_ref()
            .map_err(|&e| os_error(addr, e))?;
        match rustix::io::pread(fd, &mut *buf, addr) {
            Ok(n) => Ok(n),
            Err(e) => Err(os_error(addr, e)),
        }
    }
}

fn os_error(addr: u64, errno: Errno) -> MemError {
    match errno {
        Errno::FAULT | Errno::IO => MemError::Fault { addr },
        Errno::SRCH | Errno::NOENT => MemError::Gone,
        errno => MemError::Os { addr, errno },
    }
}

impl ChildMemory for ProcessMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.force_proc_mem {
            match sys::process_vm_read(self.pid, addr, buf) {
                Ok(0) => return Err(MemError::Fault { addr }),
                Ok(n) => return Ok(n),
                Err(Errno::NOSYS | Errno::PERM) => {}
                Err(e) => return Err(os_error(addr, e)),
            }
        }
        match self.read_proc_mem(addr, buf)? {
            0 => Err(MemError::Fault { addr }),
            n => Ok(n),
        }
    }
}

/// A fake address space: a few mapped regions of bytes. For tests and fuzzing.
#[derive(Clone, Debug, Default)]
pub struct FakeMemory {
    regions: Vec<(u64, Vec<u8>)>,
}

impl FakeMemory {
    /// An empty address space (every read faults).
    pub fn new() -> FakeMemory {
        FakeMemory::default()
    }

    /// Map `bytes` at `addr` (regions must not overlap; the first match wins).
    pub fn map(mut self, addr: u64, bytes: impl Into<Vec<u8>>) -> FakeMemory {
        self.regions.push((addr, bytes.into()));
        self
    }
}

impl ChildMemory for FakeMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemError> {
        if buf.is_empty() {
            return Ok(0);
        }
        for (base, bytes) in &self.regions {
            let Some(off) = addr.checked_sub(*base) else {
                continue;
            };
            let Ok(off) = usize::try_from(off) else {
                continue;
            };
            if off >= bytes.len() {
                continue;
            }
            let n = buf.len().min(bytes.len() - off);
            buf[..n].copy_from_slice(&bytes[off..off + n]);
            return Ok(n);
        }
        Err(MemError::Fault { addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_reads_partially_and_faults() {
        let m = FakeMemory::new().map(0x1000, b"hello".to_vec());
        let mut b = [0u8; 8];
        assert_eq!(m.read(0x1000, &mut b), Ok(5));
        assert_eq!(&b[..5], b"hello");
        assert_eq!(m.read(0x1003, &mut b), Ok(2));
        assert_eq!(
            m.read(0x1005, &mut b),
            Err(MemError::Fault { addr: 0x1005 })
        );
        assert_eq!(m.read(0xfff, &mut b), Err(MemError::Fault { addr: 0xfff }));
        assert_eq!(
            m.read_exact(0x1000, &mut b),
            Err(MemError::Fault { addr: 0x1005 })
        );
        assert_eq!(
            m.read(u64::MAX, &mut b),
            Err(MemError::Fault { addr: u64::MAX })
        );
    }

    #[test]
    fn reads_own_memory() {
        let data = *b"some bytes of ours";
        let me = std::process::id();
        for m in [ProcessMemory::new(me), ProcessMemory::via_proc_mem(me)] {
            let mut b = [0u8; 18];
            m.read_exact(data.as_ptr() as u64, &mut b).unwrap();
            assert_eq!(b, data);
            assert!(
                matches!(m.read(8, &mut b), Err(MemError::Fault { .. })),
                "{m:?}"
            );
        }
    }
}
