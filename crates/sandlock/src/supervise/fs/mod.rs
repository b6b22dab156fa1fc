//! Deny rules inside allowed trees (`--fs-deny`, `fs_denied`, the
//! callback's `deny_path`) and the file events of the policy callback.
//!
//! Landlock grants trees and cannot take a path back out of one, so the
//! supervisor does it. While the policy has a deny rule, or a callback that
//! asks for file events, every syscall that opens, executes, lists,
//! changes or reveals a path is sent to the supervisor, which
//!
//! 1. copies the path once and checks the notification is still pending;
//! 2. resolves it itself, from a directory taken from the task (its root,
//!    its cwd, the dirfd it passed), so the file checked is the file used
//!    (`resolve.rs`);
//! 3. checks the pinned file's real path and identity against the deny
//!    rules (`deny.rs`);
//! 4. performs the call **on the task's behalf** on that pinned file or
//!    directory, and answers with the result; a call Landlock governs
//!    (open, create, remove, rename, link, truncate) runs on a worker
//!    thread confined by the sandbox's own Landlock ruleset
//!    (`supervise/confined.rs`), so the kernel still enforces every grant.
//!
//! No decision taken on a path string ends in CONTINUE. `execve` cannot be
//! performed for the task: see `exec.rs` for how its decision is made to
//! hold. Without a deny rule and without a callback asking for file or
//! process events, none of these syscalls is intercepted: such a sandbox
//! pays nothing.

mod args;
mod calls;
mod deny;
mod exec;
mod nspid;
mod open;
mod path;
mod percpu;
mod resolve;

use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sandlock_bpf::{Action, Errno as BpfErrno, Rule};
use sandlock_notify::decode::AT_FDCWD;
use sandlock_notify::onbehalf::ChildFds;
use sandlock_notify::{BuildError, Ctx, Reply, SupervisorBuilder};
use sandlock_policy::{Policy, SyscallCategory, SyscallEvent, Verdict};

use super::confined::{self, Worker};
use super::{Doc, Feature, Shared};
use crate::error::Error;
use deny::{Denied, Ident};
use open::Owner;
use resolve::{Dir, Found, Proc, Resolver, RootDir, Start, Task};

/// The open family.
const OPENS: [&str; 4] = ["open", "openat", "openat2", "creat"];
/// Refused while paths are resolved for the sandbox.
const REFUSED: [&str; 3] = ["chroot", "uselib", "fanotify_mark"];
/// Newer path-taking calls not resolved on the sandbox's behalf: answered
/// as a kernel without them would.
const UNSUPPORTED: [&str; 6] = [
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "file_getattr",
    "file_setattr",
];

/// The rows of the deny-list table.
pub(crate) const DOC_OPEN: Doc = Doc {
    syscalls: &["open", "openat", "openat2", "creat"],
    refused: "intercepted while a deny rule exists or the callback asks for file events",
    answer: "opened by a worker confined by the sandbox's Landlock ruleset, checked (real path and identity), injected (`NOTIF_ADDFD`); a denied file: EACCES",
    reason: "Landlock cannot close a path inside a granted tree (`--fs-deny`)",
};
/// The other path calls.
pub(crate) const DOC_CALLS: Doc = Doc {
    syscalls: args::NAMES,
    refused: "intercepted while a deny rule exists or the callback asks for file events",
    answer: "performed on the task's behalf on the pinned file (those Landlock governs, by the confined worker); a denied path: EACCES",
    reason: "rename, link, remove, truncate, list or stat a denied path; a hard link or rename of a denied inode",
};
/// Exec.
pub(crate) const DOC_EXEC: Doc = Doc {
    syscalls: &["execve", "execveat"],
    refused: "intercepted while a deny rule exists or the callback asks for process events",
    answer: "checked on the resolved file, then traced to `PTRACE_EVENT_EXEC`: a program other than the one judged is killed before it runs; a denied file: EACCES",
    reason: "run a denied program; change the path or argv after the decision",
};
/// Refused.
pub(crate) const DOC_REFUSED: Doc = Doc {
    syscalls: &["chroot", "uselib", "fanotify_mark"],
    refused: "while a deny rule exists or the callback asks for file events",
    answer: "EPERM",
    reason: "a second root would make paths resolve differently for the supervisor; whole-mount watches and library loading by path bypass the checks",
};
/// Unsupported.
pub(crate) const DOC_UNSUPPORTED: Doc = Doc {
    syscalls: &UNSUPPORTED,
    refused: "while a deny rule exists or the callback asks for file events",
    answer: "ENOSYS",
    reason: "path calls newer than the supervisor's on-behalf support: answered as an older kernel would",
};

/// What the feature intercepts.
#[derive(Clone, Copy, Debug)]
struct Scope {
    /// The path calls.
    files: bool,
    /// `execve`, `execveat`.
    exec: bool,
    /// Hold file calls for the callback's verdict.
    hold_files: bool,
    /// Hold execs for the callback's verdict.
    hold_exec: bool,
}

/// Whether the feature traces `execve` under `policy` (a deny rule, or a
/// callback asking for process events).
pub(crate) fn traces_exec(policy: &Policy) -> bool {
    !policy.fs_denied().is_empty()
        || (policy.policy_fn().is_some()
            && policy.policy_events().contains(SyscallCategory::Process))
}

/// Whether the feature performs the path calls under `policy` (a deny
/// rule, or a callback asking for file events).
pub(crate) fn handles_files(policy: &Policy) -> bool {
    !policy.fs_denied().is_empty()
        || (policy.policy_fn().is_some() && policy.policy_events().contains(SyscallCategory::File))
}

/// The feature: on with a deny rule, or a callback asking for file or
/// process events.
pub(crate) fn feature(policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    let cb = policy.policy_fn().is_some();
    let wants = |c| cb && policy.policy_events().contains(c);
    let scope = Scope {
        files: handles_files(policy),
        exec: traces_exec(policy),
        hold_files: wants(SyscallCategory::File),
        hold_exec: wants(SyscallCategory::Process),
    };
    Ok((scope.files || scope.exec).then(|| Box::new(Fs { scope }) as Box<dyn Feature>))
}

struct Fs {
    scope: Scope,
}

impl Feature for Fs {
    fn name(&self) -> &'static str {
        "filesystem deny rules"
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        if !supervised {
            // confine_current refuses deny rules and callbacks.
            return Vec::new();
        }
        let mut rules = Vec::new();
        if self.scope.files {
            for name in OPENS.iter().chain(args::NAMES) {
                rules.push(Rule::named(name, Action::UserNotif));
            }
            for name in REFUSED {
                rules.push(Rule::named(name, Action::Errno(BpfErrno::EPERM)));
            }
            for name in UNSUPPORTED {
                rules.push(Rule::named(name, Action::Errno(BpfErrno::ENOSYS)));
            }
        }
        if self.scope.exec {
            rules.push(Rule::named("execve", Action::UserNotif));
            rules.push(Rule::named("execveat", Action::UserNotif));
        }
        rules
    }

    fn supervises_exec(&self) -> bool {
        self.scope.exec
    }

    fn confines(&self) -> bool {
        self.scope.files
    }

    fn register(
        &self,
        mut sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        let start = |e: String| BuildError::Start(format!("filesystem deny rules: {e}"));
        let root = RootDir::of(shared.tasks.root())
            .map_err(|e| start(format!("root of the sandbox: {e}")))?;
        let core = Arc::new(FsCore {
            shared: shared.clone(),
            root: Arc::new(root),
            denied: Denied::new(shared.clone()),
            confined: if self.scope.files {
                Some(
                    percpu::PerCpu::start(
                        shared.ruleset.clone(),
                        super::single_cpu(&shared.policy),
                    )
                    .map_err(|e| start(e.to_string()))?,
                )
            } else {
                None
            },
            helper: Worker::plain("sandlock-fs-helper").map_err(|e| start(e.to_string()))?,
            tracer: if self.scope.exec {
                Some(Worker::plain("sandlock-exec").map_err(|e| start(e.to_string()))?)
            } else {
                None
            },
            procfs: Mutex::new(Vec::new()),
            host_proc: rustix::fs::stat("/proc").ok().map(|s| s.st_dev),
            own_tgid: rustix::process::getpid().as_raw_nonzero().get(),
            hold_files: self.scope.hold_files,
        });
        if self.scope.files {
            for name in OPENS {
                let c = core.clone();
                sup = handle(sup, name, move |ctx: &Ctx| open::on_open(ctx, &c))?;
            }
            sup = calls::register(sup, &core)?;
        }
        if self.scope.exec {
            sup = exec::register(sup, &core, self.scope.hold_exec)?;
        }
        Ok(sup)
    }
}

/// Registers `handler` for `name` when the native table has it.
fn handle(
    sup: SupervisorBuilder,
    name: &str,
    handler: impl sandlock_notify::Handler,
) -> Result<SupervisorBuilder, BuildError> {
    match sandlock_bpf::Arch::native().and_then(|a| a.syscall_nr(name)) {
        Some(nr) => sup.handle(nr, handler),
        None => Ok(sup),
    }
}

/// The state the handlers and the workers share.
pub(crate) struct FsCore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) root: Arc<RootDir>,
    pub(crate) denied: Denied,
    confined: Option<percpu::PerCpu>,
    helper: Worker,
    /// The tracer of execs (present whenever exec is intercepted).
    tracer: Option<Worker>,
    /// Devices known to be (or not to be) procfs.
    procfs: Mutex<Vec<(u64, bool)>>,
    /// The device of sandlock's own `/proc`: another procfs, with the
    /// sandbox in a PID namespace, is the sandbox's private one (`nspid`).
    host_proc: Option<u64>,
    own_tgid: i32,
    hold_files: bool,
}

impl FsCore {
    /// The confined worker of the calling thread's CPU (present whenever
    /// path calls are intercepted).
    pub(crate) fn confined(&self) -> &Worker {
        match &self.confined {
            Some(w) => w.here(),
            // register() creates it with the path calls' handlers.
            None => &self.helper,
        }
    }

    /// The exec tracer.
    pub(crate) fn tracer(&self) -> &Worker {
        self.tracer.as_ref().unwrap_or(&self.helper)
    }

    /// Runs `f` with sandlock's own rights: on this thread if it is not
    /// confined, else on the unconfined helper.
    pub(crate) fn on_helper<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> R + Send + 'static,
    ) -> Result<R, Errno> {
        if confined::on_confined_thread() {
            let shared = self.shared.clone();
            self.helper
                .call(move || f(&shared))
                .map_err(|_| Errno::PERM)
        } else {
            Ok(f(&self.shared))
        }
    }

    /// The PID namespace whose pids name the directories of procfs device
    /// `dev`, when it is the sandbox's own and not sandlock's.
    pub(crate) fn private_proc(&self, dev: u64) -> Option<u64> {
        let ns = self.shared.tasks.pidns_inode()?;
        (self.host_proc != Some(dev)).then_some(ns)
    }

    /// Whether device `dev` (of the file `fd`) is a procfs.
    pub(crate) fn is_proc(&self, dev: u64, fd: impl AsFd) -> bool {
        let mut known = self.procfs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, p)) = known.iter().find(|(d, _)| *d == dev) {
            return p;
        }
        let p = rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
        if known.len() < 64 {
            known.push((dev, p));
        }
        p
    }

    /// A start at the sandbox's root (absolute paths).
    pub(crate) fn root_start(&self) -> Start {
        Start {
            dir: Dir::Root(self.root.clone()),
            scope: ResolveFlags::IN_ROOT,
        }
    }

    /// Where `task`'s path `p` starts: the root for an absolute path, else
    /// its cwd or the dirfd it passed (with `scope`, the task's own
    /// `openat2` `RESOLVE_IN_ROOT` / `RESOLVE_BENEATH`).
    pub(crate) fn start(
        &self,
        task: Task,
        dirfd: i32,
        p: &[u8],
        scope: ResolveFlags,
    ) -> Result<Start, Errno> {
        let scope = scope & (ResolveFlags::IN_ROOT | ResolveFlags::BENEATH);
        if p.starts_with(b"/") && scope.is_empty() {
            return Ok(self.root_start());
        }
        let dir = if dirfd == AT_FDCWD {
            rustix::fs::open(
                format!("/proc/{}/cwd", task.tid).as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?
        } else {
            ChildFds::open(task.tid)?.get_fd(dirfd)?
        };
        // The task still waits: the cwd or descriptor we took is its own.
        if !self.shared.listener.id_valid(task.id) {
            return Err(Errno::SRCH);
        }
        Ok(Start {
            dir: Dir::Owned(dir),
            scope,
        })
    }

    /// Whether `found` is denied: its identity, its real path, and for the
    /// task's own procfs directory the `/proc/self` spellings of it.
    pub(crate) fn found_denied(&self, r: &Resolver<'_>, found: &Found) -> Result<bool, Errno> {
        if self.denied.denied(Ident::of(&found.stat), &found.real) {
            return Ok(true);
        }
        if let Proc::Pid { pid, tid, rest } = &found.proc
            && self.denied.any()
        {
            let below = |base: String| {
                let mut p = base.into_bytes();
                if !rest.is_empty() {
                    p.push(b'/');
                    p.extend_from_slice(rest);
                }
                p
            };
            if *pid == r.tgid()? {
                let self_path = match tid {
                    Some(t) => below(format!("/proc/self/task/{t}")),
                    None => below("/proc/self".to_owned()),
                };
                if self.denied.path_denied(&self_path) {
                    return Ok(true);
                }
                if *tid == Some(r.task.tid as i32)
                    && self
                        .denied
                        .path_denied(&below("/proc/thread-self".to_owned()))
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Who a pinned procfs file belongs to.
    pub(crate) fn proc_owner(&self, found: &Found) -> Result<Owner, Errno> {
        let Proc::Pid { pid, tid, rest } = &found.proc else {
            return Ok(Owner::None);
        };
        let (pid, own) = (*pid, self.own_tgid);
        let is_task = self.on_helper(move |shared| match resolve::tgid_of(pid) {
            Ok(t) if t == own => Some(false),
            Ok(_) => Some(shared.tasks.contains_host(pid).unwrap_or(false)),
            Err(_) => None,
        })?;
        Ok(match is_task {
            Some(false)
                if resolve::tgid_of(pid)
                    .is_ok_and(|t| t == own || self.shared.tasks.is_init(t)) =>
            {
                Owner::Sandlock
            }
            Some(true) => Owner::Task {
                pid,
                rest: match tid {
                    Some(t) => [format!("task/{t}/").as_bytes(), rest].concat(),
                    None => rest.clone(),
                },
            },
            _ => Owner::None,
        })
    }

    /// The task's umask (`/proc/TID/status`), 0o022 if it cannot be read.
    pub(crate) fn umask_of(&self, tid: u32) -> u32 {
        self.on_helper(move |_| {
            std::fs::read_to_string(format!("/proc/{tid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Umask:"))
                        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
                })
                .unwrap_or(0o022)
        })
        .unwrap_or(0o022)
    }

    /// An event for a path call of `task`, with the path made absolute where
    /// that is cheap (an absolute path, or the start directory's real path).
    pub(crate) fn event(&self, name: &str, task: Task, start: &Start, p: &[u8]) -> SyscallEvent {
        let mut ev = SyscallEvent::new(name, SyscallCategory::File, task.tid);
        ev.parent_pid = sandlock_notify::ProcView::parent_pid(&sandlock_notify::ProcFs, task.tid);
        let shown = if p.starts_with(b"/") {
            path::lexical(b"/", p)
        } else {
            start
                .real()
                .map(|b| path::lexical(&b, p))
                .unwrap_or_else(|_| p.to_vec())
        };
        ev.path = Some(String::from_utf8_lossy(&shown).into_owned());
        ev
    }

    /// Whether events of path calls are wanted (held for the callback, or
    /// written to the audit log).
    pub(crate) fn wants_events(&self) -> bool {
        self.hold_files || self.shared.audit.is_some()
    }

    /// Records a refusal by a deny rule.
    pub(crate) fn audit_denied(&self, ev: Option<&mut SyscallEvent>) {
        if let Some(ev) = ev {
            ev.denied = true;
            self.shared.audit(ev, Verdict::DenyWith(BpfErrno::EACCES));
        }
    }

    /// Queues `job` on the confined worker, or answers `EPERM` if it is gone.
    pub(crate) fn submit(&self, id: u64, job: impl FnOnce() + Send + 'static) -> Reply {
        match self.confined().submit(job) {
            Ok(()) => Reply::Answered,
            Err(_) => {
                let _ = self
                    .shared
                    .listener
                    .respond(id, open::errno_response(Errno::PERM));
                Reply::Answered
            }
        }
    }

    /// Whether path calls wait for the callback's verdict.
    pub(crate) fn hold_files(&self) -> bool {
        self.hold_files
    }
}

/// Why a call made on the sandbox's behalf failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// A deny rule closed the path: answered `EACCES`, and audited.
    Denied,
    /// The system call (or the emulation of a kernel check) failed with
    /// this errno, which is the answer.
    Os(Errno),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Os(e)
    }
}

impl Fail {
    /// The errno the task gets.
    pub(crate) fn errno(self) -> Errno {
        match self {
            Fail::Denied => Errno::ACCESS,
            Fail::Os(e) => e,
        }
    }
}

/// The task of a notification.
pub(crate) fn task_of(ctx: &Ctx) -> Task {
    Task {
        tid: ctx.notif().pid,
        id: ctx.notif().id,
    }
}
