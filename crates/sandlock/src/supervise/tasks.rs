//! Which tasks belong to the sandbox: membership checks for the
//! supervisor, and the tree tracking that leaves nothing behind.
//!
//! **With a PID namespace** (the default where the machine allows it,
//! `crate::ns`) the sandbox is its namespace: a pid the sandbox names is
//! looked up by the kernel in that namespace, where only its tasks exist,
//! and every task of it is found by the namespace of `/proc/PID/ns/pid`.
//! Ending the sandbox is ending its init.
//!
//! **Without one**, sandlock's process is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`): a task whose parent dies is reparented to
//! sandlock instead of the machine's init. A task belongs to the sandbox
//! when it is the first process, a descendant of a member (its parent
//! chain, from `/proc/PID/stat`), or an orphan sandlock adopted that runs
//! under a seccomp filter (sandlock's other children have none). Each
//! member found is held by a pidfd (a reused pid is never signalled), and
//! ending the sandbox sends `SIGKILL` to every member until a scan finds
//! none alive; after the first process is reaped, a process with no child
//! at all skips the scan ([`Tasks::kill_rest_after_reap`]).
//! `/proc/PID/task/*/children` would make the walk cheaper, but kernels
//! built without `CONFIG_PROC_CHILDREN` (like this project's) lack it, so
//! membership is decided from a scan of `/proc`.
//!
//! Residual behaviour, documented in `docs/resources.md`:
//! - without a PID namespace, several sandboxes run by one process share
//!   its adopted orphans: each of them counts them (and kills them at its
//!   end), since nothing tells which one they came from;
//! - without a PID namespace a decision is on a pid, which the kernel looks
//!   up again when the call continues: if the target died and its pid was
//!   reused by a process outside in between, the call would reach that
//!   process (the whole pid space must wrap around in that window).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use super::procstat::{self, Stat};

/// The most parents walked before giving up (refusing).
const MAX_DEPTH: usize = 4096;

/// First processes of the sandboxes this process runs without a PID
/// namespace (an adopted orphan is never one of them).
static ROOTS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn roots() -> MutexGuard<'static, Vec<i32>> {
    ROOTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sandbox's tasks (cheap to clone: one shared state).
#[derive(Clone, Debug)]
pub(crate) struct Tasks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The first process (sandlock's child).
    root: i32,
    /// A pidfd on it.
    root_fd: Option<OwnedFd>,
    /// Whether the sandbox has a PID namespace of its own (whose init is
    /// `root`).
    pidns: bool,
    /// That namespace's inode, read when first needed (a start that never
    /// needs it does not pay it); `None` inside when it cannot be read.
    /// The first reader must not be confined (see [`Tasks::pidns_inode`]).
    pidns_ino: OnceLock<Option<u64>>,
    /// Whether `root` is sandlock's init (not one of the command's tasks).
    reaper: bool,
    /// Whether `root` has been reaped: its pid may now name another
    /// process, which must never be taken for the sandbox's.
    root_reaped: AtomicBool,
    /// sandlock's own pid (the parent of adopted orphans).
    own: i32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<i32, Entry>,
    /// Processes found not to belong, by pid and start time.
    outsiders: HashMap<i32, u64>,
}

#[derive(Debug)]
struct Entry {
    start: u64,
    pidfd: Arc<OwnedFd>,
    adopted: bool,
}

/// A process of the sandbox, as found by [`Tasks::scan`].
#[derive(Clone, Debug)]
pub(crate) struct Member {
    /// Its pid (in sandlock's PID namespace).
    pub(crate) pid: i32,
    /// A pidfd on it.
    pub(crate) pidfd: Arc<OwnedFd>,
    /// Its `/proc/PID/stat` at the scan.
    pub(crate) stat: Stat,
    /// Whether it is sandlock's init of the sandbox's PID namespace.
    pub(crate) init: bool,
}

impl Tasks {
    /// The tasks of the sandbox whose first process is `root`; `pidns`:
    /// in a PID namespace of its own, whose init is `root`.
    pub(crate) fn new(root: i32, root_fd: &OwnedFd, pidns: bool) -> Tasks {
        if !pidns {
            // Orphans come back to us rather than to the machine's init
            // (set before the fork already, by the launch).
            let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
            roots().push(root);
        }
        Tasks {
            inner: Arc::new(Inner {
                root,
                root_fd: root_fd.try_clone().ok(),
                pidns,
                pidns_ino: OnceLock::new(),
                reaper: pidns,
                root_reaped: AtomicBool::new(false),
                own: rustix::process::getpid().as_raw_nonzero().get(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The sandbox's first process (also its process group id).
    pub(crate) fn root(&self) -> i32 {
        self.inner.root
    }

    /// Whether the sandbox has a PID namespace of its own.
    pub(crate) fn has_pidns(&self) -> bool {
        self.inner.pidns
    }

    /// The inode of the sandbox's own PID namespace, if it has one and it
    /// can be read: through the init's pidfd (no `/proc` lookup, no pid
    /// that could have been reused), else its `/proc` link, checked
    /// against the pidfd. Read once, on first use.
    ///
    /// The first call must come from an unconfined thread: a Landlock-
    /// confined worker passes neither the pidfd's ptrace-mode check nor
    /// `/proc`. The supervisor asks before it starts any
    /// ([`crate::supervise::start`]).
    pub(crate) fn pidns_inode(&self) -> Option<u64> {
        if !self.inner.pidns {
            return None;
        }
        *self.inner.pidns_ino.get_or_init(|| {
            let fd = self.inner.root_fd.as_ref()?;
            crate::sys::host::pidfd_pidns_inode(fd).ok().or_else(|| {
                let ino = procstat::pidns_inode(self.inner.root).ok()?;
                // Still our init, not reaped (running, or a zombie whose
                // pid cannot be reused yet): the link read was its.
                let opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
                rustix::process::waitid(WaitId::PidFd(fd.as_fd()), opts)
                    .ok()
                    .map(|_| ino)
            })
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether machine pid `pid` is sandlock's init of the sandbox's PID
    /// namespace (sandlock's, not the command's: its memory, environment
    /// and descriptors are sandlock's).
    pub(crate) fn is_init(&self, pid: i32) -> bool {
        self.inner.reaper && pid == self.inner.root
    }

    /// Whether task `tid`, as sandlock names it (a pid of sandlock's own
    /// namespace, as in a notification), belongs to the sandbox; never
    /// sandlock's init. `Err(ESRCH)` when there is no such task.
    pub(crate) fn contains_host(&self, tid: i32) -> Result<bool, Errno> {
        if !self.inner.pidns {
            return self.contains(tid);
        }
        if tid <= 0 {
            return Err(Errno::SRCH);
        }
        // Without the namespace's inode, no task is taken for a member.
        let Some(ns) = self.pidns_inode() else {
            return Ok(false);
        };
        Ok(procstat::pidns_inode(tid)? == ns && !self.is_init(tid))
    }

    /// Whether task `tid`, as the sandbox names it (a pid of its own
    /// namespace, as in a syscall's arguments), belongs to the sandbox.
    /// `Err(ESRCH)` when there is no such task.
    pub(crate) fn contains(&self, tid: i32) -> Result<bool, Errno> {
        if tid <= 0 {
            return Err(Errno::SRCH);
        }
        if self.inner.pidns {
            // The kernel looks the pid up in the caller's namespace, where
            // only the sandbox's tasks exist, and sandlock's init (pid 1):
            // that one is sandlock's, not the command's.
            return Ok(tid != 1);
        }
        let mut buf = Vec::with_capacity(2048);
        procstat::read_into(&format!("/proc/{tid}/status"), &mut buf)?;
        let tgid = procstat::status_field(&buf, "Tgid:").ok_or(Errno::SRCH)? as i32;
        let mut pid = tgid;
        for _ in 0..MAX_DEPTH {
            if pid == self.inner.root {
                return Ok(true);
            }
            let Ok(st) = procstat::stat(pid) else {
                // An ancestor vanished while we walked: refuse.
                return Ok(false);
            };
            if st.ppid == self.inner.own {
                return Ok(self.is_adopted(pid, st.start));
            }
            if st.ppid <= 1 {
                return Ok(false);
            }
            pid = st.ppid;
        }
        Ok(false)
    }

    /// Whether `pid` (started at `start`) is an orphan of this sandbox
    /// that sandlock adopted.
    fn is_adopted(&self, pid: i32, start: u64) -> bool {
        if let Some(e) = self.state().members.get(&pid) {
            return e.start == start;
        }
        self.scan()
            .iter()
            .any(|m| m.pid == pid && m.stat.start == start)
    }

    /// The process group of task `tid`.
    pub(crate) fn pgrp_of(&self, tid: i32) -> Result<i32, Errno> {
        procstat::stat(tid).map(|s| s.pgrp)
    }

    /// Finds every process of the sandbox now (zombies included).
    pub(crate) fn scan(&self) -> Vec<Member> {
        let mut stats: HashMap<i32, Stat> = HashMap::new();
        // Without the namespace's inode (it could not be read), members
        // are found by ancestry, as without a namespace.
        let ns = self.pidns_inode();
        for pid in procstat::pids() {
            // With a PID namespace, the namespace link (one readlink) tells
            // a member from the rest of the machine's processes; only
            // members' stat files are read.
            if let Some(ns) = ns
                && !procstat::pidns_inode(pid).is_ok_and(|i| i == ns)
            {
                continue;
            }
            if let Ok(st) = procstat::stat(pid) {
                stats.insert(pid, st);
            }
        }
        let mut state = self.state();
        let State { members, outsiders } = &mut *state;
        members.retain(|pid, e| stats.get(pid).is_some_and(|s| s.start == e.start));
        outsiders.retain(|pid, start| stats.get(pid).is_some_and(|s| s.start == *start));
        let mut new: Vec<(i32, bool)> = Vec::new();
        match ns {
            Some(_) => {
                for &pid in stats.keys() {
                    if !members.contains_key(&pid) {
                        new.push((pid, false));
                    }
                }
            }
            None => self.walk(&stats, members, outsiders, &mut new),
        }
        for (pid, adopted) in new {
            let Some(st) = stats.get(&pid) else { continue };
            let Some(p) = Pid::from_raw(pid) else {
                continue;
            };
            let Ok(fd) = rustix::process::pidfd_open(p, PidfdFlags::empty()) else {
                continue;
            };
            // The pidfd names whatever has the pid now: the same process
            // only if it still has the start time we judged.
            if procstat::stat(pid).is_ok_and(|s| s.start == st.start) {
                members.insert(
                    pid,
                    Entry {
                        start: st.start,
                        pidfd: Arc::new(fd),
                        adopted,
                    },
                );
            }
        }
        members
            .iter()
            .filter_map(|(&pid, e)| {
                Some(Member {
                    pid,
                    pidfd: e.pidfd.clone(),
                    stat: *stats.get(&pid)?,
                    init: self.inner.reaper && pid == self.inner.root,
                })
            })
            .collect()
    }

    /// Without a PID namespace: members are the root, descendants of
    /// members, and sandboxed orphans sandlock adopted.
    fn walk(
        &self,
        stats: &HashMap<i32, Stat>,
        members: &HashMap<i32, Entry>,
        outsiders: &mut HashMap<i32, u64>,
        new: &mut Vec<(i32, bool)>,
    ) {
        let root = self.inner.root;
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for (&pid, st) in stats {
            children.entry(st.ppid).or_default().push(pid);
        }
        let mut seen: HashSet<i32> = members.keys().copied().collect();
        let mut queue: Vec<i32> = seen.iter().copied().collect();
        let reaped = self.inner.root_reaped.load(Ordering::SeqCst);
        if !reaped && stats.contains_key(&root) && seen.insert(root) {
            new.push((root, false));
            queue.push(root);
        }
        let others: Vec<i32> = roots().iter().copied().filter(|&r| r != root).collect();
        for &pid in children.get(&self.inner.own).into_iter().flatten() {
            if seen.contains(&pid) || others.contains(&pid) {
                continue;
            }
            let Some(st) = stats.get(&pid) else { continue };
            if outsiders.get(&pid) == Some(&st.start) {
                continue;
            }
            if sandboxed(pid) {
                seen.insert(pid);
                new.push((pid, true));
                queue.push(pid);
            } else {
                outsiders.insert(pid, st.start);
            }
        }
        while let Some(p) = queue.pop() {
            for &c in children.get(&p).into_iter().flatten() {
                if seen.insert(c) {
                    new.push((c, false));
                    queue.push(c);
                }
            }
        }
    }

    /// Tasks (threads) of the sandbox's command alive now, zombies
    /// included, sandlock's init excluded.
    pub(crate) fn count_tasks(&self) -> u64 {
        self.scan()
            .iter()
            .filter(|m| !m.init)
            .map(|m| m.stat.threads.max(1))
            .sum()
    }

    /// Reaps the adopted orphans that have ended (they are sandlock's
    /// children; nobody else will).
    pub(crate) fn reap_adopted(&self) {
        let ended: Vec<(i32, Arc<OwnedFd>)> = {
            let state = self.state();
            state
                .members
                .iter()
                .filter(|(_, e)| e.adopted)
                .map(|(&p, e)| (p, e.pidfd.clone()))
                .collect()
        };
        for (pid, fd) in ended {
            let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
            if let Ok(Some(_)) = rustix::process::waitid(WaitId::PidFd((*fd).as_fd()), opts) {
                self.state().members.remove(&pid);
            }
        }
    }

    /// Kills the first process and its process group; with a PID
    /// namespace (the first process is its init) the kernel then ends every
    /// other task. Call before the first process is reaped: until then its
    /// zombie holds the group id, which no other group can take.
    pub(crate) fn kill_first(&self) {
        if let Some(p) = Pid::from_raw(self.inner.root) {
            let _ = rustix::process::kill_process_group(p, Signal::KILL);
        }
        if let Some(fd) = &self.inner.root_fd {
            let _ = rustix::process::pidfd_send_signal(fd, Signal::KILL);
        }
    }

    /// Kills every task of the sandbox. With a PID namespace, killing its
    /// init is enough (the kernel kills the rest); without, every member
    /// is killed until a scan finds none alive.
    pub(crate) fn kill_all(&self) {
        self.kill_first();
        if !self.inner.pidns {
            self.kill_members();
        }
    }

    /// Once the first process is reaped (by [`kill_first`](Self::kill_first)'s
    /// caller): without a PID namespace, kills what is left of the sandbox.
    ///
    /// Every task of the sandbox descends from this process, a child
    /// subreaper: an orphan is reparented to its nearest living ancestor
    /// that is one, at worst this process. So while any task of the sandbox
    /// lives, this process has a child (or a tracee), and when it has none
    /// at all nothing of the sandbox is left: no scan of `/proc` is needed
    /// (about 10 µs per process of the machine). With a child of any kind
    /// (another sandbox's, the caller's own), or if this process is not a
    /// subreaper, the scan runs as before.
    pub(crate) fn kill_rest_after_reap(&self) {
        self.inner.root_reaped.store(true, Ordering::SeqCst);
        if self.inner.pidns {
            return;
        }
        let subreaper = rustix::process::child_subreaper().is_ok_and(|p| p.is_some());
        if subreaper && !crate::sys::host::has_children() {
            return;
        }
        self.kill_members();
    }

    /// Without a PID namespace: kills every member found until a scan
    /// finds none alive.
    fn kill_members(&self) {
        for _ in 0..1000 {
            let members = self.scan();
            let mut alive = false;
            for m in &members {
                if !m.stat.ended() {
                    alive = true;
                    let _ = rustix::process::pidfd_send_signal(&*m.pidfd, Signal::KILL);
                }
            }
            self.reap_adopted();
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.pidns {
            roots().retain(|&r| r != self.root);
        }
    }
}

/// Whether `pid` runs under a seccomp filter (every task of a sandbox
/// does; sandlock's other children normally do not).
fn sandboxed(pid: i32) -> bool {
    let mut buf = Vec::with_capacity(2048);
    procstat::read_into(&format!("/proc/{pid}/status"), &mut buf).is_ok()
        && procstat::status_field(&buf, "Seccomp:") == Some(2)
}
