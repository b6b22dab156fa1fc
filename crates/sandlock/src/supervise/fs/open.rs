//! `open`, `openat`, `openat2`, `creat`: opened on the task's behalf by the
//! confined worker, checked, and handed back with `SECCOMP_IOCTL_NOTIF_ADDFD`.
//!
//! The receive thread copies the request once (path, flags, mode, resolve
//! flags), checks the notification is still pending, pins the start
//! directory, refuses at once a path that is lexically denied, and queues
//! the rest for the confined worker, which answers the task itself:
//!
//! - **Fast path** (no `O_CREAT`, `O_TRUNC`, `O_TMPFILE`): one `openat2`
//!   with `RESOLVE_NO_SYMLINKS`; then the file's real path is the lexical
//!   one. A symlink on the way (`ELOOP`) costs a second `openat2` following
//!   symlinks and a `d_path`. Either way the opened file's identity and
//!   real path are checked *after* the open, on the descriptor that the
//!   task gets, so no later change of the path matters.
//! - **Creating or truncating**: the parent is pinned and the last
//!   component looked up first; a new file is created with `O_EXCL` under
//!   a name already checked; an existing one is checked, then reopened with
//!   the task's flags: a denied file is never created, truncated or opened.
//! - procfs and magic links go through the walker (`resolve.rs`).
//!
//! Opens never block the worker: `O_NONBLOCK` is added (and taken off the
//! file again for the task, `F_SETFL`), and a FIFO that must wait for its
//! other end is opened on a detached confined thread.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use sandlock_notify::AddFdOptions;
use sandlock_policy::{SyscallEvent, Verdict};

use super::FsCore;
use super::path::{self, lexical};
use super::resolve::{Found, Proc, Resolver, Start, Task};

/// Open flags that create or truncate.
const CREATING: OFlags = OFlags::CREATE.union(OFlags::TRUNC).union(OFlags::TMPFILE);
/// How many times an `O_CREAT` races a file appearing before giving up.
const CREATE_TRIES: u32 = 8;

/// One open, copied from the task.
#[derive(Debug)]
pub(crate) struct OpenJob {
    pub(crate) task: Task,
    pub(crate) path: Vec<u8>,
    pub(crate) flags: OFlags,
    pub(crate) mode: Mode,
    pub(crate) resolve: ResolveFlags,
    pub(crate) start: Start,
    /// The event, when it is audited.
    pub(crate) event: Option<SyscallEvent>,
}

/// What an open came to.
enum Opened {
    /// This descriptor, for the task.
    Fd(OwnedFd),
    /// A detached thread answers the task.
    Detached,
}

/// Runs `job` (on the confined worker) and answers the task.
pub(crate) fn run(core: &Arc<FsCore>, mut job: OpenJob) {
    let listener = &core.shared.listener;
    let id = job.task.id;
    match open(core, &job) {
        Ok(Opened::Fd(fd)) => {
            let opts = AddFdOptions {
                cloexec: job.flags.contains(OFlags::CLOEXEC),
                at: None,
                send: true,
            };
            // The task is gone, or out of descriptors (EMFILE).
            if let Err(sandlock_notify::ListenerError::AddFd { errno, .. }) =
                listener.add_fd(id, fd.as_fd(), opts)
            {
                let _ = listener.respond(id, errno_response(errno));
            }
        }
        Ok(Opened::Detached) => {}
        Err(e) => {
            if e == Errno::ACCESS
                && let Some(ev) = job.event.as_mut()
            {
                ev.denied = true;
                core.shared
                    .audit(ev, Verdict::DenyWith(sandlock_bpf::Errno::EACCES));
            }
            let _ = listener.respond(id, errno_response(e));
        }
    }
}

/// The answer carrying errno `e`.
pub(crate) fn errno_response(e: Errno) -> sandlock_notify::Response {
    sandlock_notify::Response::Errno(sandlock_notify::listener::errno_of(e))
}

/// The flags we open with: the task's, close-on-exec, no controlling
/// terminal, and non-blocking (taken off again after the open).
fn our_flags(flags: OFlags) -> (OFlags, bool) {
    let mut f = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
    let added = !flags.contains(OFlags::PATH) && !flags.contains(OFlags::NONBLOCK);
    if added {
        f |= OFlags::NONBLOCK;
    }
    (f, added)
}

fn open(core: &Arc<FsCore>, job: &OpenJob) -> Result<Opened, Errno> {
    if job.flags.intersects(CREATING) && !never_creates(&job.path) {
        return create(core, job);
    }
    let (flags, added) = our_flags(job.flags);
    let scope = job.resolve | job.start.scope | ResolveFlags::NO_MAGICLINKS;
    let start = job.start.fd();
    let fast = rustix::fs::openat2(
        start,
        job.path.as_slice(),
        flags,
        job.mode,
        scope | ResolveFlags::NO_SYMLINKS,
    );
    let (fd, real_of) = match fast {
        Ok(fd) => (fd, RealOf::Lexical),
        Err(Errno::LOOP) if !job.resolve.contains(ResolveFlags::NO_SYMLINKS) => {
            match rustix::fs::openat2(start, job.path.as_slice(), flags, job.mode, scope) {
                Ok(fd) => (fd, RealOf::Kernel),
                Err(Errno::LOOP) => return slow(core, job),
                Err(e) => return Err(e),
            }
        }
        Err(Errno::NXIO) if wants_blocking_fifo(job.flags) => return slow(core, job),
        Err(e) => return Err(e),
    };
    let stat = rustix::fs::fstat(&fd)?;
    if core.is_proc(stat.st_dev, &fd) {
        drop(fd);
        return slow(core, job);
    }
    let real = match real_of {
        RealOf::Lexical => lexical(&job.start.real()?, &job.path),
        RealOf::Kernel => path::fd_path(&fd)?,
    };
    if core.denied.denied(super::deny::Ident::of(&stat), &real) {
        return Err(Errno::ACCESS);
    }
    finish(core, job.task.id, fd, &stat, job.flags, added)
}

/// Where the real path of a fast open comes from.
enum RealOf {
    /// `RESOLVE_NO_SYMLINKS` held: the lexical path.
    Lexical,
    /// The kernel's `d_path`.
    Kernel,
}

/// A path whose last component can never be created (`.`, `..`, or a
/// trailing slash: the kernel answers `EISDIR`/`EEXIST`, nothing is made).
fn never_creates(p: &[u8]) -> bool {
    let (_, last) = path::split_last(p);
    last == b"." || last == b".." || path::trailing_slash(p)
}

/// A FIFO open for reading or writing that waits for its other end.
fn wants_blocking_fifo(flags: OFlags) -> bool {
    !flags.contains(OFlags::NONBLOCK) && !flags.contains(OFlags::PATH)
}

/// After an open: the task's own file status flags back, and FIFOs that
/// must wait for their other end moved off the worker.
fn finish(
    core: &Arc<FsCore>,
    id: u64,
    fd: OwnedFd,
    stat: &Stat,
    task_flags: OFlags,
    added_nonblock: bool,
) -> Result<Opened, Errno> {
    if !added_nonblock {
        return Ok(Opened::Fd(fd));
    }
    let ft = FileType::from_raw_mode(stat.st_mode);
    let acc = task_flags & OFlags::RWMODE;
    if ft == FileType::Fifo && acc == OFlags::RDONLY {
        // A blocking read open waits for a writer: done by a detached
        // confined thread, which reopens our descriptor (keeping a reader
        // on the FIFO meanwhile, as the task's own open would).
        return fifo_wait(core, id, fd, task_flags);
    }
    let status = task_flags
        & (OFlags::APPEND
            | OFlags::NONBLOCK
            | OFlags::DSYNC
            | OFlags::SYNC
            | OFlags::DIRECT
            | OFlags::NOATIME);
    rustix::fs::fcntl_setfl(&fd, status)?;
    Ok(Opened::Fd(fd))
}

/// Opens `/proc/self/fd/N` of `pinned` with the task's flags on a detached
/// confined thread, which answers the task once the open returns.
fn fifo_wait(
    core: &Arc<FsCore>,
    id: u64,
    pinned: OwnedFd,
    task_flags: OFlags,
) -> Result<Opened, Errno> {
    let listener = core.shared.listener.clone();
    let entered = Arc::new(AtomicBool::new(false));
    let flag = entered.clone();
    core.confined().detach(move || {
        let link = path::proc_fd(&pinned);
        flag.store(true, Ordering::SeqCst);
        let r = rustix::fs::open(
            link.as_str(),
            task_flags | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        );
        drop(pinned);
        match r {
            Ok(fd) => {
                let opts = AddFdOptions {
                    cloexec: task_flags.contains(OFlags::CLOEXEC),
                    at: None,
                    send: true,
                };
                let _ = listener.add_fd(id, fd.as_fd(), opts);
            }
            Err(e) => {
                let _ = listener.respond(id, errno_response(e));
            }
        }
    })?;
    // Let the thread reach its open before the next job (a writer's open
    // queued behind this one must find it waiting).
    for _ in 0..1000 {
        if entered.load(Ordering::SeqCst) {
            break;
        }
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_micros(500));
    Ok(Opened::Detached)
}

/// The walker's way: procfs, magic links, and FIFOs whose open would wait.
fn slow(core: &Arc<FsCore>, job: &OpenJob) -> Result<Opened, Errno> {
    let r = Resolver {
        core,
        task: job.task,
    };
    let follow = !job.flags.contains(OFlags::NOFOLLOW);
    let found = r.find(&job.start, &job.path, follow)?;
    open_found(core, &r, job.task.id, found, job.flags)
}

/// Opens a pinned, existing file with the task's `flags` (without
/// `O_CREAT`/`O_EXCL`), after the deny and procfs checks.
fn open_found(
    core: &Arc<FsCore>,
    r: &Resolver<'_>,
    id: u64,
    found: Found,
    flags: OFlags,
) -> Result<Opened, Errno> {
    if core.found_denied(r, &found)? {
        return Err(Errno::ACCESS);
    }
    if found.is_symlink() {
        // Only reached with O_NOFOLLOW: an O_PATH of the link itself, or ELOOP.
        return if flags.contains(OFlags::PATH) {
            Ok(Opened::Fd(found.fd))
        } else {
            Err(Errno::LOOP)
        };
    }
    let flags = flags & !(OFlags::CREATE | OFlags::EXCL);
    let (ours, added) = our_flags(flags);
    if flags.contains(OFlags::DIRECTORY) && !found.is_dir() {
        return Err(Errno::NOTDIR);
    }
    let fd = match core.proc_owner(&found)? {
        Owner::Sandlock => return Err(Errno::ACCESS),
        Owner::Task { pid, rest } => match reopen(&found.fd, ours) {
            Err(Errno::ACCESS | Errno::PERM) => open_task_proc(core, pid, &rest, ours)?,
            other => other?,
        },
        Owner::None => {
            if FileType::from_raw_mode(found.stat.st_mode) == FileType::Fifo
                && wants_blocking_fifo(flags)
                && (flags & OFlags::RWMODE) == OFlags::WRONLY
            {
                return fifo_wait(core, id, found.fd, flags);
            }
            reopen(&found.fd, ours)?
        }
    };
    let stat = rustix::fs::fstat(&fd)?;
    finish(core, id, fd, &stat, flags, added)
}

/// Opens our pinned descriptor again with `flags` (`/proc/self/fd/N`): the
/// kernel checks the file's permissions and Landlock's rules on the path
/// again, on this (confined) thread.
fn reopen(pin: &OwnedFd, flags: OFlags) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path::proc_fd(pin).as_str(), flags, Mode::empty())
}

/// Who a procfs file belongs to.
pub(crate) enum Owner {
    /// Not below a process directory, or not in procfs.
    None,
    /// Below the directory of `pid`, a task of the sandbox; `rest` below it.
    Task { pid: i32, rest: Vec<u8> },
    /// Below sandlock's own directory: never for the sandbox.
    Sandlock,
}

/// `/proc/PID/REST` of a task of the sandbox. The confined worker is
/// refused the files procfs guards with a ptrace check (`maps`, `environ`,
/// `fd/`...), which the task itself may open: if the worker may open its
/// *own* `REST` with `flags` (so Landlock's path rules allow it), the
/// unconfined helper opens the task's.
fn open_task_proc(
    core: &Arc<FsCore>,
    pid: i32,
    rest: &[u8],
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let rest_s = std::str::from_utf8(rest).map_err(|_| Errno::ACCESS)?;
    let own = format!("/proc/thread-self/{rest_s}");
    drop(rustix::fs::open(own.as_str(), flags, Mode::empty())?);
    let theirs = format!("/proc/{pid}/{rest_s}");
    core.on_helper(move |_| rustix::fs::open(theirs.as_str(), flags, Mode::empty()))?
}

/// `O_CREAT`, `O_TRUNC`, `O_TMPFILE`: nothing is created or truncated
/// before the name was checked.
fn create(core: &Arc<FsCore>, job: &OpenJob) -> Result<Opened, Errno> {
    let r = Resolver {
        core,
        task: job.task,
    };
    let (ours, added) = our_flags(job.flags);
    // The worker's umask is 0: the task's own applies, as the kernel would.
    let mode = Mode::from_bits_truncate(job.mode.bits() & !core.umask_of(job.task.tid));
    if job.flags.contains(OFlags::TMPFILE) {
        let dir = r.find(&job.start, &job.path, true)?;
        if core.found_denied(&r, &dir)? || dir.proc != Proc::No {
            return Err(Errno::ACCESS);
        }
        let fd = rustix::fs::openat2(&dir.fd, ".", ours, mode, ResolveFlags::BENEATH)?;
        let stat = rustix::fs::fstat(&fd)?;
        return finish(core, job.task.id, fd, &stat, job.flags, added);
    }
    let (mut parent, last) = r.parent(&job.start, &job.path)?;
    let mut last = last.to_vec();
    let mut links = 0u32;
    let mut tries = 0u32;
    loop {
        let probe = rustix::fs::openat2(
            &parent.fd,
            last.as_slice(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        );
        match probe {
            Err(Errno::NOENT) if job.flags.contains(OFlags::CREATE) => {
                let real = lexical(&parent.real, &last);
                if parent.proc != Proc::No
                    || core.denied.path_denied(&real)
                    || core
                        .denied
                        .denied(super::deny::Ident::of(&parent.stat), &parent.real)
                {
                    return Err(Errno::ACCESS);
                }
                match rustix::fs::openat2(
                    &parent.fd,
                    last.as_slice(),
                    ours | OFlags::EXCL,
                    mode,
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
                ) {
                    Ok(fd) => {
                        let stat = rustix::fs::fstat(&fd)?;
                        return finish(core, job.task.id, fd, &stat, job.flags, added);
                    }
                    Err(Errno::EXIST)
                        if !job.flags.contains(OFlags::EXCL) && tries < CREATE_TRIES =>
                    {
                        tries += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
            Ok(pin) => {
                if job.flags.contains(OFlags::CREATE | OFlags::EXCL) {
                    return Err(Errno::EXIST);
                }
                let stat = rustix::fs::fstat(&pin)?;
                if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
                    if job.flags.contains(OFlags::NOFOLLOW)
                        || job.resolve.contains(ResolveFlags::NO_SYMLINKS)
                    {
                        return Err(Errno::LOOP);
                    }
                    links += 1;
                    if links > 40 {
                        return Err(Errno::LOOP);
                    }
                    // Follow the link by hand: its target is the new name.
                    let target = super::resolve::readlink(&pin)?;
                    let from = if !target.starts_with(b"/") {
                        Start {
                            dir: super::resolve::Dir::Owned(super::path::dup(&parent.fd)?),
                            scope: ResolveFlags::empty(),
                        }
                    } else if job.resolve.contains(ResolveFlags::BENEATH) {
                        return Err(Errno::XDEV);
                    } else if job.resolve.contains(ResolveFlags::IN_ROOT) {
                        Start {
                            dir: super::resolve::Dir::Owned(super::path::dup(job.start.fd())?),
                            scope: ResolveFlags::IN_ROOT,
                        }
                    } else {
                        core.root_start()
                    };
                    let (p2, l2) = r.parent(&from, &target)?;
                    parent = p2;
                    last = l2.to_vec();
                    continue;
                }
                let found = Found {
                    fd: pin,
                    real: lexical(&parent.real, &last),
                    stat,
                    proc: match &parent.proc {
                        Proc::Pid { pid, tid, rest } => Proc::Pid {
                            pid: *pid,
                            tid: *tid,
                            rest: if rest.is_empty() {
                                last.clone()
                            } else {
                                [rest.as_slice(), b"/", &last].concat()
                            },
                        },
                        other => other.clone(),
                    },
                };
                return open_found(core, &r, job.task.id, found, job.flags);
            }
        }
    }
}
