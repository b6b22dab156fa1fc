//! Which tasks belong to the sandbox.
//!
//! A task belongs to the sandbox when it is the sandbox's first process
//! (`root`, sandlock's own child, kept unreaped while the supervisor runs)
//! or one of its descendants: its chain of parents, read from
//! `/proc/PID/status` and `/proc/PID/stat`, reaches `root`. Threads are
//! judged by their thread group. Every process of the sandbox inherited its
//! filter, and nothing outside can become a descendant of `root`.
//!
//! Residual behaviour, documented in `docs/security.md`:
//! - a process whose parent died is reparented outside the chain (to init,
//!   or a subreaper) and no longer counts as a member: calls aimed at it
//!   are refused (fail closed);
//! - the decision is on a pid, which the kernel looks up again when the
//!   call continues. If the target died and its pid was reused by a process
//!   outside between the two, the call would reach that process; that
//!   needs the whole pid space to wrap around in that window.
//! - pids are those of sandlock's PID namespace, which is the sandbox's
//!   (sandlock creates none).

use std::io::Read;

use rustix::io::Errno;
use sandlock_notify::procfs::parse_stat_ppid;

/// The most parents walked before giving up (refusing).
const MAX_DEPTH: usize = 4096;

/// The sandbox's tasks.
#[derive(Clone, Debug)]
pub(crate) struct Tasks {
    root: i32,
}

impl Tasks {
    /// The tasks descending from `root`.
    pub(crate) fn new(root: i32) -> Tasks {
        Tasks { root }
    }

    /// The sandbox's first process (also its process group id).
    pub(crate) fn root(&self) -> i32 {
        self.root
    }

    /// Whether task `tid` (a thread or process id) belongs to the sandbox.
    /// `Err(ESRCH)` when there is no such task.
    pub(crate) fn contains(&self, tid: i32) -> Result<bool, Errno> {
        if tid <= 0 {
            return Err(Errno::SRCH);
        }
        let status = read_proc(tid, "status")?;
        let tgid = field(&status, "Tgid:").ok_or(Errno::SRCH)?;
        let mut ppid = field(&status, "PPid:").ok_or(Errno::SRCH)?;
        if tgid == self.root {
            return Ok(true);
        }
        for _ in 0..MAX_DEPTH {
            if ppid == self.root {
                return Ok(true);
            }
            if ppid <= 1 {
                return Ok(false);
            }
            let Ok(stat) = read_proc(ppid, "stat") else {
                // An ancestor vanished while we walked: its children were
                // reparented; judge again from the start is not worth it.
                return Ok(false);
            };
            ppid = match parse_stat_ppid(&stat) {
                Some(p) => p as i32,
                None => return Ok(false),
            };
        }
        Ok(false)
    }

    /// The process group of task `tid`.
    pub(crate) fn pgrp_of(&self, tid: i32) -> Result<i32, Errno> {
        let stat = read_proc(tid, "stat")?;
        // Fields after the last ')': state ppid pgrp ...
        let end = stat.iter().rposition(|&b| b == b')').ok_or(Errno::SRCH)?;
        let rest = std::str::from_utf8(&stat[end + 1..]).map_err(|_| Errno::SRCH)?;
        rest.split_whitespace()
            .nth(2)
            .and_then(|v| v.parse().ok())
            .ok_or(Errno::SRCH)
    }
}

fn read_proc(pid: i32, file: &str) -> Result<Vec<u8>, Errno> {
    let mut buf = Vec::with_capacity(2048);
    std::fs::File::open(format!("/proc/{pid}/{file}"))
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) | None => Errno::SRCH,
            Some(n) => Errno::from_raw_os_error(n),
        })?;
    Ok(buf)
}

fn field(status: &[u8], name: &str) -> Option<i32> {
    let text = std::str::from_utf8(status).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}
