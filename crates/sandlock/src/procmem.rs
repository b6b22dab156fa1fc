//! Another process's memory and auxiliary vector, through `/proc/PID/mem`
//! and `/proc/PID/auxv`.
//!
//! Writes go through `/proc/PID/mem`, which the kernel performs with
//! `FOLL_FORCE`: a read-only private mapping (such as the vDSO's code) is
//! copied on write for that process alone. The caller opens the file
//! **before** checking that the notification it acts on is still pending
//! (`NOTIF_ID_VALID`): the descriptor then names the notifying task's
//! memory even if the pid is reused afterwards.
//!
//! A non-dumpable image (the private `/proc`, `supervise/view/tracer.rs`)
//! of a sandbox in a user namespace has its `/proc/PID/mem` owned by the
//! initial namespace's root, which an unprivileged sandlock cannot open,
//! although `ptrace` access to the task is still its own (it owns the
//! namespace). Such a task's memory is reached with `process_vm_readv` /
//! `process_vm_writev` instead, by task id: the id could only name another
//! task if the task died and the kernel's cyclic pid allocator wrapped
//! around between the caller's `NOTIF_ID_VALID` and the call.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// `AT_RANDOM`: address of 16 random bytes the kernel put on the stack.
pub(crate) const AT_RANDOM: u64 = 25;
/// `AT_SYSINFO_EHDR`: address of the vDSO.
pub(crate) const AT_SYSINFO_EHDR: u64 = 33;

/// One task's memory.
#[derive(Debug)]
pub(crate) enum Mem {
    /// `/proc/PID/mem`, open for reading and writing.
    File(OwnedFd),
    /// Task `pid`, reached by `process_vm_*` (its `/proc/PID/mem` is
    /// closed to us: see the module's documentation).
    Task(u32),
}

impl Mem {
    /// Opens task `pid`'s memory.
    pub(crate) fn open(pid: u32) -> Result<Mem, Errno> {
        match rustix::fs::open(
            format!("/proc/{pid}/mem"),
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Mem::File(fd)),
            Err(Errno::ACCESS) => Ok(Mem::Task(pid)),
            Err(e) => Err(e),
        }
    }

    /// Reads exactly `buf.len()` bytes at `addr` (`EFAULT` when short).
    pub(crate) fn read_exact(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let fd = match self {
            Mem::File(fd) => fd,
            Mem::Task(pid) => return crate::sys::behalf::read_memory(*pid, addr, buf),
        };
        let mut done = 0;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or(Errno::FAULT)?;
            match rustix::io::pread(fd, &mut buf[done..], at) {
                Ok(0) => return Err(Errno::FAULT),
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::IO) => return Err(Errno::FAULT),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `bytes` at `addr` (`EFAULT` when short).
    pub(crate) fn write_all(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let fd = match self {
            Mem::File(fd) => fd,
            Mem::Task(pid) => return crate::sys::behalf::write_memory(*pid, addr, bytes),
        };
        let mut done = 0;
        while done < bytes.len() {
            let at = addr.checked_add(done as u64).ok_or(Errno::FAULT)?;
            match rustix::io::pwrite(fd, &bytes[done..], at) {
                Ok(0) => return Err(Errno::FAULT),
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(Errno::IO) => return Err(Errno::FAULT),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd on a thread, not only on a
/// thread-group leader.
const PIDFD_THREAD: u32 = 0o200;
/// Most tasks whose memory descriptor is kept.
const CACHED: usize = 64;

/// `/proc/TID/mem` descriptors of the tasks that made notified calls
/// lately, so that answering a call costs a `pwrite`, not an `open`.
///
/// A descriptor names the address space the task had when it was opened.
/// An entry is used only while the task is alive (a pidfd on the thread,
/// polled: a live task keeps its id) and until its process calls `execve`
/// ([`forget_all`](Self::forget_all), which the supervisor calls at every
/// `execve`): the only two ways a task id could come to name another
/// address space. Without `PIDFD_THREAD` (before Linux 6.9) nothing is
/// cached.
#[derive(Debug, Default)]
pub(crate) struct MemCache {
    slots: Mutex<Vec<(u32, OwnedFd, Arc<Mem>)>>,
}

impl MemCache {
    /// The memory of task `tid`, and whether it was opened now: then the
    /// caller must check that its notification is still pending before
    /// writing (a cached entry is the task itself: it was checked when it
    /// was opened, and its task is still alive).
    pub(crate) fn get(&self, tid: u32) -> Result<(Arc<Mem>, bool), Errno> {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(i) = slots.iter().position(|(t, _, _)| *t == tid)
        {
            if alive(&slots[i].1) {
                return Ok((slots[i].2.clone(), false));
            }
            slots.remove(i);
        }
        let mem = Arc::new(Mem::open(tid)?);
        let Some(pid) = rustix::process::Pid::from_raw(tid as i32) else {
            return Ok((mem, true));
        };
        let flags = rustix::process::PidfdFlags::from_bits_retain(PIDFD_THREAD);
        if let Ok(pidfd) = rustix::process::pidfd_open(pid, flags)
            && let Ok(mut slots) = self.slots.lock()
        {
            if slots.len() >= CACHED {
                slots.remove(0);
            }
            slots.push((tid, pidfd, mem.clone()));
        }
        Ok((mem, true))
    }

    /// Drops every entry (an `execve` replaces an address space).
    pub(crate) fn forget_all(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.clear();
        }
    }
}

/// Whether the task of `pidfd` is still running (a pidfd polls readable
/// once its task has exited).
fn alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        pidfd,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(0))
}

/// The auxiliary vector of task `pid` (`self` for this process), as
/// `(type, value)` pairs up to `AT_NULL`.
pub(crate) fn auxv(pid: Option<u32>) -> Result<Vec<(u64, u64)>, Errno> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/auxv"),
        None => "/proc/self/auxv".to_owned(),
    };
    let bytes = std::fs::read(path)
        .map_err(|e| e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error))?;
    Ok(parse_auxv(&bytes))
}

/// Native-endian 64-bit pairs, up to the first `AT_NULL`.
pub(crate) fn parse_auxv(bytes: &[u8]) -> Vec<(u64, u64)> {
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_ne_bytes(w)
    };
    bytes
        .chunks_exact(16)
        .map(|c| (word(&c[..8]), word(&c[8..])))
        .take_while(|&(t, _)| t != 0)
        .collect()
}

/// The value of auxiliary-vector entry `kind`, if present and non-zero.
pub(crate) fn aux_value(auxv: &[(u64, u64)], kind: u64) -> Option<u64> {
    auxv.iter()
        .find(|&&(t, _)| t == kind)
        .map(|&(_, v)| v)
        .filter(|&v| v != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auxv_parses_and_stops_at_null() {
        let mut b = Vec::new();
        for (t, v) in [(33u64, 0x7000u64), (25, 0x1234), (0, 0), (9, 9)] {
            b.extend_from_slice(&t.to_ne_bytes());
            b.extend_from_slice(&v.to_ne_bytes());
        }
        let a = parse_auxv(&b);
        assert_eq!(a, [(33, 0x7000), (25, 0x1234)]);
        assert_eq!(aux_value(&a, AT_RANDOM), Some(0x1234));
        assert_eq!(aux_value(&a, 9), None);
        assert_eq!(parse_auxv(&b[..17]), [(33, 0x7000)]);
    }

    #[test]
    fn own_memory_round_trip() {
        let a = auxv(None).unwrap();
        let Some(random) = aux_value(&a, AT_RANDOM) else {
            return;
        };
        let mem = Mem::open(std::process::id()).unwrap();
        let mut bytes = [0u8; 16];
        mem.read_exact(random, &mut bytes).unwrap();
        assert_eq!(mem.read_exact(8, &mut bytes), Err(Errno::FAULT));
    }
}
