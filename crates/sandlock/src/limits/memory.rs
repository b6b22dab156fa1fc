//! `max_memory`: the supervisor's accounting of the calls that grow a
//! sandbox's memory.
//!
//! The sandbox's memory is what it holds: resident anonymous and shared
//! memory plus swap of every task (`RssAnon + RssShmem + VmSwap`), or what
//! its memory cgroup is charged for anonymous memory, shared memory and
//! swap. A call that asks for more is intercepted and judged before it
//! runs:
//!
//! | call | charged |
//! |---|---|
//! | `mmap` with `PROT_WRITE`, without `MAP_NORESERVE` (others pass in BPF) | its length, unless it is a shared mapping of a file that is not in memory (not tmpfs, memfd or hugetlbfs) |
//! | `mremap` | the growth (`new_len - old_len`) |
//! | `brk` | the growth of the heap (a shrink credits what it gave back) |
//! | `shmget` with `IPC_CREAT` | the size |
//!
//! The call is refused with `ENOMEM` (`brk`: answered with the current
//! break, as the kernel does) when the sandbox's memory, plus what was
//! granted since it was last measured, plus the request, is over the
//! limit. Before refusing, every task is measured again (grants that were
//! never touched then stop counting), and without a cgroup the measure is
//! made exact for memory shared between processes (`Pss` of
//! `smaps_rollup`: copy-on-write pages of a fork count once).
//!
//! Reservations (`PROT_NONE`, `MAP_NORESERVE`) are not charged for being
//! reserved: only what is touched in them counts, and that growth has no
//! call to refuse. The memory cgroup (root) or the watchdog (every 100 ms,
//! [`super::monitor`]) ends the sandbox when it is over the limit.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use sandlock_notify::Ctx;

use super::Runtime;
use crate::supervise::procstat;

/// Page size used to round requests (every architecture sandlock runs on
/// uses 4 KiB base pages for these calls' rounding).
const PAGE: u64 = 4096;
/// `TMPFS_MAGIC` (memfds and `/dev/shm` too).
const TMPFS_MAGIC: i64 = 0x0102_1994;
/// `HUGETLBFS_MAGIC`.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
/// `MAP_SHARED`, `MAP_SHARED_VALIDATE`, `MAP_ANONYMOUS`.
const MAP_SHARED: u64 = 0x01;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_ANONYMOUS: u64 = 0x20;
/// A heap growth above this is checked against `/proc` (an `execve` since
/// the last call gives the process a new heap elsewhere).
const BRK_RESYNC: u64 = 64 << 20;
/// How old a measure may be before a decision near the limit measures
/// again.
const FRESH: Duration = Duration::from_millis(20);

/// The accounting state of one sandbox.
#[derive(Debug)]
pub(crate) struct Meter {
    state: std::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Last measured memory of each process (pid → bytes).
    usage: HashMap<i32, u64>,
    /// A cgroup's figure, when the sandbox has one.
    cgroup: Option<u64>,
    /// Granted since the last full measure.
    pending: u64,
    /// SysV segments created (never credited without a cgroup: their
    /// removal happens in a namespace sandlock cannot look into).
    sysv: u64,
    /// The heap of each process: (start of the heap, current break).
    heaps: HashMap<i32, (u64, u64)>,
    /// Thread → thread group, for the heaps (cleared at each measure).
    groups: HashMap<i32, i32>,
    measured: Option<Instant>,
}

impl State {
    fn estimate(&self) -> u64 {
        let base = match self.cgroup {
            Some(c) => c,
            None => self.usage.values().sum::<u64>().saturating_add(self.sysv),
        };
        base.saturating_add(self.pending)
    }
}

/// What a call asks for, from its registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Bytes of new memory.
    Bytes(u64),
    /// A shared mapping of descriptor `fd`: its length if the file is in
    /// memory.
    SharedFile { fd: i32, len: u64 },
    /// `brk(addr)`.
    Brk(u64),
    /// A SysV segment of this size.
    Sysv(u64),
    /// Nothing to charge.
    Nothing,
}

fn page_up(n: u64) -> u64 {
    n.saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// The request of a call, by syscall name and registers.
pub(crate) fn request(name: &str, args: &[u64; 6]) -> Request {
    match name {
        "mmap" => {
            let len = page_up(args[1]);
            let flags = args[3];
            let shared = matches!(flags & MAP_TYPE, MAP_SHARED | MAP_SHARED_VALIDATE);
            if shared && flags & MAP_ANONYMOUS == 0 {
                Request::SharedFile {
                    fd: args[4] as u32 as i32,
                    len,
                }
            } else {
                Request::Bytes(len)
            }
        }
        "mremap" => Request::Bytes(page_up(args[2]).saturating_sub(page_up(args[1]))),
        "brk" => Request::Brk(args[0]),
        "shmget" => Request::Sysv(page_up(args[1])),
        _ => Request::Nothing,
    }
}

/// The answer to a judged call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Let it run.
    Allow,
    /// Refuse with `ENOMEM`.
    NoMemory,
    /// `brk`: answer with this break (the current one: a refused growth).
    Break(u64),
}

impl Meter {
    pub(crate) fn new() -> Meter {
        Meter {
            state: std::sync::Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Judges a call of thread `tid`.
    pub(crate) fn judge(&self, rt: &Runtime, ctx: Option<&Ctx>, tid: i32, req: Request) -> Answer {
        let Some(limit) = rt.live_memory() else {
            return Answer::Allow;
        };
        let bytes = match req {
            Request::Nothing => return Answer::Allow,
            Request::Bytes(b) | Request::Sysv(b) => b,
            Request::SharedFile { fd, len } => match ctx.map(|c| in_memory_file(c, fd)) {
                Some(false) => return Answer::Allow,
                _ => len,
            },
            Request::Brk(addr) => {
                let pid = self.group_of(tid);
                return self.brk(rt, pid, addr, limit);
            }
        };
        if self.charge(rt, bytes, limit) {
            if let Request::Sysv(b) = req
                && rt.memory_cg.is_none()
            {
                let mut s = self.state();
                s.sysv = s.sysv.saturating_add(b);
                s.pending = s.pending.saturating_sub(b);
            }
            Answer::Allow
        } else {
            Answer::NoMemory
        }
    }

    /// The thread group of `tid` (cached until the next measure: a thread
    /// id reused meanwhile by another process would point at a stale heap,
    /// which the next growth check against `/proc` corrects).
    fn group_of(&self, tid: i32) -> i32 {
        if let Some(&g) = self.state().groups.get(&tid) {
            return g;
        }
        let mut buf = Vec::with_capacity(1024);
        let g = procstat::read_into(&format!("/proc/{tid}/status"), &mut buf)
            .ok()
            .and_then(|()| procstat::status_field(&buf, "Tgid:"))
            .map_or(tid, |t| t as i32);
        let mut s = self.state();
        if s.groups.len() > 4096 {
            s.groups.clear();
        }
        s.groups.insert(tid, g);
        g
    }

    /// Charges `bytes` if the sandbox stays within `limit`.
    fn charge(&self, rt: &Runtime, bytes: u64, limit: u64) -> bool {
        let mut s = self.state();
        if s.estimate().saturating_add(bytes) > limit {
            let stale = s.measured.is_none_or(|t| t.elapsed() >= FRESH);
            if stale {
                measure(rt, &mut s, false);
            }
            if s.estimate().saturating_add(bytes) > limit && rt.memory_cg.is_none() {
                measure(rt, &mut s, true);
            }
            if s.estimate().saturating_add(bytes) > limit {
                return false;
            }
        }
        s.pending = s.pending.saturating_add(bytes);
        true
    }

    fn brk(&self, rt: &Runtime, pid: i32, addr: u64, limit: u64) -> Answer {
        if addr == 0 {
            return Answer::Allow;
        }
        let known = self.state().heaps.get(&pid).copied();
        let (start, cur) = match known {
            Some((start, cur)) if addr >= start && addr.saturating_sub(cur) < BRK_RESYNC => {
                (start, cur)
            }
            _ => match heap_of(pid) {
                Some(h) => h,
                None => return Answer::Allow,
            },
        };
        if addr < start {
            // Below the heap: the kernel refuses it by itself.
            return Answer::Allow;
        }
        let (new, old) = (page_up(addr), page_up(cur));
        if new <= old {
            let mut s = self.state();
            s.pending = s.pending.saturating_sub(old - new);
            s.heaps.insert(pid, (start, addr));
            return Answer::Allow;
        }
        if self.charge(rt, new - old, limit) {
            self.state().heaps.insert(pid, (start, addr));
            Answer::Allow
        } else {
            // The kernel answers a refused brk with the current break.
            let cur = heap_of(pid).map_or(cur, |(_, c)| c);
            self.state().heaps.insert(pid, (start, cur));
            Answer::Break(cur)
        }
    }

    /// Measures every task again (the monitor's tick); returns the
    /// sandbox's memory and whether it is over the limit, measured exactly
    /// (PSS) when the quick measure says it is.
    pub(crate) fn watch(&self, rt: &Runtime) -> Option<(u64, u64)> {
        let limit = rt.live_memory()?;
        let mut s = self.state();
        measure(rt, &mut s, false);
        if s.estimate() > limit && rt.memory_cg.is_none() {
            measure(rt, &mut s, true);
        }
        let used = s.estimate();
        (used > limit).then_some((used, limit))
    }
}

/// Measures the sandbox: the cgroup's figure, or every task's resident
/// memory (`exact`: proportional set size, slower). Grants since the last
/// measure are then part of it (or were never touched).
fn measure(rt: &Runtime, s: &mut State, exact: bool) {
    s.pending = 0;
    s.measured = Some(Instant::now());
    if let Some(cg) = &rt.memory_cg {
        s.cgroup = cg.memory_used();
        if s.cgroup.is_some() {
            return;
        }
    }
    let mut usage = HashMap::new();
    let mut buf = Vec::with_capacity(4096);
    for m in rt.tasks.scan() {
        if m.stat.ended() {
            continue;
        }
        let kib = if exact {
            procstat::read_into(&format!("/proc/{}/smaps_rollup", m.pid), &mut buf)
                .ok()
                .map(|()| {
                    ["Pss_Anon:", "Pss_Shmem:", "SwapPss:"]
                        .iter()
                        .filter_map(|k| procstat::status_field(&buf, k))
                        .sum::<u64>()
                })
        } else {
            procstat::read_into(&format!("/proc/{}/status", m.pid), &mut buf)
                .ok()
                .map(|()| {
                    ["RssAnon:", "RssShmem:", "VmSwap:"]
                        .iter()
                        .filter_map(|k| procstat::status_field(&buf, k))
                        .sum::<u64>()
                })
        };
        if let Some(kib) = kib {
            usage.insert(m.pid, kib.saturating_mul(1024));
        }
    }
    s.usage = usage;
    let State { heaps, usage, .. } = s;
    heaps.retain(|pid, _| usage.contains_key(pid));
    s.groups.clear();
}

/// The heap of `pid`: its start (`start_brk`, `/proc/PID/stat`) and its
/// current end (the `[heap]` mapping, or the start when it has none).
fn heap_of(pid: i32) -> Option<(u64, u64)> {
    let mut buf = Vec::with_capacity(512);
    procstat::read_into(&format!("/proc/{pid}/stat"), &mut buf).ok()?;
    let start = procstat::parse_start_brk(&buf)?;
    let maps = std::fs::read(format!("/proc/{pid}/maps")).ok()?;
    let end = maps
        .split(|&b| b == b'\n')
        .find(|l| l.ends_with(b"[heap]"))
        .and_then(|l| {
            let range = l.split(|&b| b == b' ').next()?;
            let end = range.split(|&b| b == b'-').nth(1)?;
            u64::from_str_radix(std::str::from_utf8(end).ok()?, 16).ok()
        })
        .unwrap_or(start);
    Some((start, end))
}

/// Whether the caller's descriptor `fd` is a file held in memory (tmpfs,
/// memfd, hugetlbfs). Unknown (the descriptor cannot be copied): yes.
fn in_memory_file(ctx: &Ctx, fd: i32) -> bool {
    let Ok(child) = ctx.child() else { return true };
    let Ok(file) = child.get_fd(fd) else {
        return true;
    };
    match rustix::fs::fstatfs(file.as_fd()) {
        Ok(st) => {
            // `f_type`'s type differs between architectures.
            #[allow(clippy::useless_conversion)]
            let t = i64::from(st.f_type);
            t == TMPFS_MAGIC || t == HUGETLBFS_MAGIC
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_registers() {
        let a = |a0, a1, a2, a3, a4| [a0, a1, a2, a3, a4, 0];
        // Private anonymous: its length, rounded to pages.
        assert_eq!(
            request("mmap", &a(0, 5000, 3, 0x22, u64::MAX)),
            Request::Bytes(8192)
        );
        // Shared anonymous: memory too.
        assert_eq!(
            request("mmap", &a(0, 4096, 3, 0x21, u64::MAX)),
            Request::Bytes(4096)
        );
        // Shared file: depends on the file.
        assert_eq!(
            request("mmap", &a(0, 4096, 3, 0x01, 7)),
            Request::SharedFile { fd: 7, len: 4096 }
        );
        // fd is an int: the upper half of the register is ignored.
        assert_eq!(
            request("mmap", &a(0, 4096, 3, 0x03, 1 << 32 | 7)),
            Request::SharedFile { fd: 7, len: 4096 }
        );
        // Private file mapping (copy-on-write): its length.
        assert_eq!(
            request("mmap", &a(0, 4096, 3, 0x02, 7)),
            Request::Bytes(4096)
        );
        assert_eq!(
            request("mremap", &a(0, 4096, 3 * 4096, 1, 0)),
            Request::Bytes(8192)
        );
        assert_eq!(
            request("mremap", &a(0, 8192, 4096, 1, 0)),
            Request::Bytes(0)
        );
        assert_eq!(request("brk", &a(0x5000, 0, 0, 0, 0)), Request::Brk(0x5000));
        assert_eq!(
            request("shmget", &a(1, 100, 0o1600, 0, 0)),
            Request::Sysv(4096)
        );
        assert_eq!(request("getpid", &a(0, 0, 0, 0, 0)), Request::Nothing);
        assert_eq!(page_up(u64::MAX), !(PAGE - 1));
    }

    #[test]
    fn own_heap() {
        let me = std::process::id() as i32;
        let (start, end) = heap_of(me).unwrap();
        assert!(end >= start && start > 0);
    }
}
