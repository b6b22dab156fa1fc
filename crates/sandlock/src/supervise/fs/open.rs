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
//! Only regular files and directories are opened before they are checked
//! (their open has no side effect; `statx` tells the type first and the
//! opened file must be that one). A FIFO or a device is pinned and checked
//! first; a FIFO whose open waits for its other end is opened, with the
//! task's exact flags, on a detached confined thread, so the worker never
//! blocks (the other end may be its next job).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;
use sandlock_bpf::Errno as BpfErrno;
use sandlock_notify::onbehalf::read_open_request;
use sandlock_notify::{AddFdOptions, Ctx, Reply};
use sandlock_policy::{SyscallCategory, SyscallEvent, Verdict};

use super::path::{self, lexical};
use super::resolve::{Dir, Found, Proc, Resolver, Start, Task};
use super::{Fail, FsCore, task_of};

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

/// `O_PATH` opens. `SECCOMP_IOCTL_NOTIF_ADDFD` cannot install an `O_PATH`
/// descriptor (the kernel refuses it, `EBADF`), so this is the one open
/// the task makes itself: the path is resolved and checked here, and a
/// denied file is refused; otherwise the call continues. An `O_PATH`
/// descriptor gives no access to data, and every call that opens, lists,
/// executes, links or changes a file through it (`openat`, `execveat`,
/// `linkat` with `AT_EMPTY_PATH`, `/proc/self/fd/N`) is intercepted and
/// checked again on the file it names; only `fstat`/`fstatfs` on it are
/// not. A thread racing the path can thus learn a denied file's metadata,
/// nothing more (docs/security.md).
fn open_o_path(
    core: &Arc<FsCore>,
    task: Task,
    start: &Start,
    p: &[u8],
    flags: OFlags,
    mut event: Option<SyscallEvent>,
) -> Reply {
    let r = Resolver { core, task };
    let found = match r.find(start, p, !flags.contains(OFlags::NOFOLLOW)) {
        Ok(f) => f,
        Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
    };
    match core.found_denied(&r, &found) {
        Ok(false) => {}
        Ok(true) => {
            core.audit_denied(event.as_mut());
            return Reply::errno(BpfErrno::EACCES);
        }
        Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
    }
    let cont = |_: &Ctx| Reply::Respond(sandlock_notify::Response::Continue);
    match event {
        Some(ev) if core.hold_files => Reply::hold(ev, cont),
        _ => Reply::Respond(sandlock_notify::Response::Continue),
    }
}

/// The open family, on the receive thread: copy, check, pin, queue.
pub(super) fn on_open(ctx: &Ctx, core: &Arc<FsCore>) -> Reply {
    let name = match sandlock_notify::decode::syscall_name(ctx.notif()) {
        Ok(n @ ("open" | "openat" | "openat2" | "creat")) => n,
        _ => return Reply::errno(BpfErrno::ENOSYS),
    };
    let req = match read_open_request(name, ctx.notif(), ctx.memory())
        .map_err(sandlock_notify::CtxError::from)
        .and_then(|r| ctx.verify(r))
    {
        Ok(r) => r.into_inner(),
        Err(e) => return Reply::errno(e.errno()),
    };
    let task = task_of(ctx);
    let start = match core.start(task, req.dirfd, &req.path, req.resolve) {
        Ok(s) => s,
        Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
    };
    let mut event = core
        .wants_events()
        .then(|| core.event(name, task, &start, &req.path));
    // A path named directly (absolute, no `..`) that is denied is refused
    // before anything is opened.
    if matches!(start.dir, Dir::Root(_))
        && !path::has_dotdot(&req.path)
        && core
            .denied
            .path_denied(&path::lexical(&core.root.real, &req.path))
    {
        core.audit_denied(event.as_mut());
        return Reply::errno(BpfErrno::EACCES);
    }
    if req.flags.contains(OFlags::PATH) {
        return open_o_path(core, task, &start, &req.path, req.flags, event);
    }
    // The mode is only read with O_CREAT / O_TMPFILE (else it is whatever
    // was in the register, which openat2 would refuse).
    let mode = if req.flags.intersects(OFlags::CREATE | OFlags::TMPFILE) {
        Mode::from_bits_truncate(req.mode)
    } else {
        Mode::empty()
    };
    let job = OpenJob {
        task,
        path: req.path.to_vec(),
        flags: req.flags,
        mode,
        resolve: req.resolve,
        start,
        event: if core.shared.audit.is_some() {
            event.clone()
        } else {
            None
        },
    };
    let c = core.clone();
    let id = task.id;
    if core.hold_files {
        let ev = event.unwrap_or_else(|| SyscallEvent::new(name, SyscallCategory::File, task.tid));
        let c2 = core.clone();
        return Reply::hold(ev, move |_| c2.submit(id, move || run(&c, job)));
    }
    core.submit(id, move || run(&c, job))
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
            if e == Fail::Denied
                && let Some(ev) = job.event.as_mut()
            {
                ev.denied = true;
                core.shared
                    .audit(ev, Verdict::DenyWith(sandlock_bpf::Errno::EACCES));
            }
            let _ = listener.respond(id, errno_response(e.errno()));
        }
    }
}

/// The answer carrying errno `e`.
pub(crate) fn errno_response(e: Errno) -> sandlock_notify::Response {
    sandlock_notify::Response::Errno(sandlock_notify::listener::errno_of(e))
}

/// The flags we open with: the task's, close-on-exec, and no controlling
/// terminal (never for sandlock).
fn our_flags(flags: OFlags) -> OFlags {
    if flags.contains(OFlags::PATH) {
        // O_PATH takes no other flag but these (openat2 is strict).
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    }
}

fn open(core: &Arc<FsCore>, job: &OpenJob) -> Result<Opened, Fail> {
    if job.flags.intersects(CREATING) && !never_creates(&job.path) {
        return create(core, job);
    }
    // The type first: only a regular file or a directory is opened before
    // it is checked (opening one has no side effect); anything else (a FIFO
    // would block, a device may act on open) is pinned and checked first.
    let nofollow = if job.flags.contains(OFlags::NOFOLLOW) {
        AtFlags::SYMLINK_NOFOLLOW
    } else {
        AtFlags::empty()
    };
    let hint = match rustix::fs::statx(
        job.start.fd(),
        job.path.as_slice(),
        nofollow | AtFlags::NO_AUTOMOUNT,
        StatxFlags::TYPE | StatxFlags::INO,
    ) {
        Ok(st) => st,
        Err(_) => return slow(core, job),
    };
    let ft = FileType::from_raw_mode(u32::from(hint.stx_mode));
    if ft != FileType::RegularFile && ft != FileType::Directory {
        return slow(core, job);
    }
    let flags = our_flags(job.flags);
    let scope = job.resolve | job.start.scope | ResolveFlags::NO_MAGICLINKS;
    let start = job.start.fd();
    let fast = crate::scoped::openat2(
        start,
        job.path.as_slice(),
        flags,
        job.mode,
        scope | ResolveFlags::NO_SYMLINKS,
    );
    let (fd, lexical_real) = match fast {
        Ok(fd) => (fd, true),
        Err(Errno::LOOP) if !job.resolve.contains(ResolveFlags::NO_SYMLINKS) => {
            match crate::scoped::openat2(start, job.path.as_slice(), flags, job.mode, scope) {
                Ok(fd) => (fd, false),
                // A magic link (ELOOP), or procfs' `self` resolved for us
                // rather than for the task: walk it component by component.
                Err(_) => return slow(core, job),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    if stat.st_ino != hint.stx_ino || core.is_proc(stat.st_dev, &fd) {
        // Not the file the type was taken from (it changed meanwhile), or
        // procfs: the careful way.
        drop(fd);
        return slow(core, job);
    }
    let real = if lexical_real {
        lexical(&job.start.real()?, &job.path)
    } else {
        path::fd_path(&fd)?
    };
    if core.denied.denied(super::deny::Ident::of(&stat), &real) {
        return Err(Fail::Denied);
    }
    Ok(Opened::Fd(fd))
}

/// A path whose last component can never be created (`.`, `..`, or a
/// trailing slash: the kernel answers `EISDIR`/`EEXIST`, nothing is made).
fn never_creates(p: &[u8]) -> bool {
    let (_, last) = path::split_last(p);
    last == b"." || last == b".." || path::trailing_slash(p)
}

/// Opens `/proc/self/fd/N` of `pinned` (a FIFO) with the task's exact
/// flags on a detached confined thread, which answers the task when the
/// open returns: a FIFO's open waits for its other end, which may be the
/// next job of the worker.
fn fifo_wait(
    core: &Arc<FsCore>,
    id: u64,
    pinned: OwnedFd,
    task_flags: OFlags,
) -> Result<Opened, Fail> {
    let listener = core.shared.listener.clone();
    core.confined().detach(move || {
        let link = path::proc_fd(&pinned);
        let r = rustix::fs::open(link.as_str(), our_flags(task_flags), Mode::empty());
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
    Ok(Opened::Detached)
}

/// The walker's way: procfs, magic links, and FIFOs whose open would wait.
fn slow(core: &Arc<FsCore>, job: &OpenJob) -> Result<Opened, Fail> {
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
) -> Result<Opened, Fail> {
    if core.found_denied(r, &found)? {
        return Err(Fail::Denied);
    }
    if found.is_symlink() {
        // Only reached with O_NOFOLLOW: an O_PATH of the link itself, or ELOOP.
        return if flags.contains(OFlags::PATH) {
            Ok(Opened::Fd(found.fd))
        } else {
            Err(Errno::LOOP.into())
        };
    }
    let flags = flags & !(OFlags::CREATE | OFlags::EXCL);
    if flags.contains(OFlags::DIRECTORY) && !found.is_dir() {
        return Err(Errno::NOTDIR.into());
    }
    let ft = FileType::from_raw_mode(found.stat.st_mode);
    let blocking = !flags.intersects(OFlags::NONBLOCK | OFlags::PATH);
    let owner = core.proc_owner(&found)?;
    if matches!(owner, Owner::Sandlock) {
        // As Landlock's ptrace scoping answers the task.
        return Err(Errno::ACCESS.into());
    }
    if ft == FileType::Fifo && blocking && !matches!(owner, Owner::Task { .. }) {
        return fifo_wait(core, id, found.fd, flags);
    }
    // A device is opened non-blocking (a terminal would wait for its
    // carrier), its blocking mode given back afterwards.
    let device = matches!(ft, FileType::CharacterDevice | FileType::BlockDevice) && blocking;
    let ours = if device {
        our_flags(flags) | OFlags::NONBLOCK
    } else {
        our_flags(flags)
    };
    let fd = match owner {
        Owner::Task { pid, rest } => match reopen(&found.fd, ours) {
            Err(Errno::ACCESS | Errno::PERM) => open_task_proc(core, pid, &rest, ours)?,
            other => other?,
        },
        _ => reopen(&found.fd, ours)?,
    };
    if device {
        rustix::fs::fcntl_setfl(&fd, flags & STATUS_FLAGS)?;
    }
    Ok(Opened::Fd(fd))
}

/// The file status flags `F_SETFL` sets.
const STATUS_FLAGS: OFlags = OFlags::APPEND
    .union(OFlags::NONBLOCK)
    .union(OFlags::DSYNC)
    .union(OFlags::SYNC)
    .union(OFlags::DIRECT)
    .union(OFlags::NOATIME);

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
fn create(core: &Arc<FsCore>, job: &OpenJob) -> Result<Opened, Fail> {
    let r = Resolver {
        core,
        task: job.task,
    };
    let ours = our_flags(job.flags);
    // The worker's umask is 0: the task's own applies, as the kernel would.
    let mode = Mode::from_bits_truncate(job.mode.bits() & !core.umask_of(job.task.tid));
    if job.flags.contains(OFlags::TMPFILE) {
        let dir = r.find(&job.start, &job.path, true)?;
        if core.found_denied(&r, &dir)? || dir.proc != Proc::No {
            return Err(Fail::Denied);
        }
        let fd = crate::scoped::openat2(&dir.fd, ".", ours, mode, ResolveFlags::BENEATH)?;
        return Ok(Opened::Fd(fd));
    }
    let (mut parent, last) = r.parent(&job.start, &job.path)?;
    let mut last = last.to_vec();
    let mut links = 0u32;
    let mut tries = 0u32;
    loop {
        let probe = crate::scoped::openat2(
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
                    return Err(Fail::Denied);
                }
                match crate::scoped::openat2(
                    &parent.fd,
                    last.as_slice(),
                    ours | OFlags::EXCL,
                    mode,
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
                ) {
                    Ok(fd) => return Ok(Opened::Fd(fd)),
                    Err(Errno::EXIST)
                        if !job.flags.contains(OFlags::EXCL) && tries < CREATE_TRIES =>
                    {
                        tries += 1;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
            Ok(pin) => {
                if job.flags.contains(OFlags::CREATE | OFlags::EXCL) {
                    return Err(Errno::EXIST.into());
                }
                let stat = rustix::fs::fstat(&pin)?;
                if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
                    if job.flags.contains(OFlags::NOFOLLOW)
                        || job.resolve.contains(ResolveFlags::NO_SYMLINKS)
                    {
                        return Err(Errno::LOOP.into());
                    }
                    links += 1;
                    if links > 40 {
                        return Err(Errno::LOOP.into());
                    }
                    // Follow the link by hand: its target is the new name.
                    let target = super::resolve::readlink(&pin)?;
                    let from = if !target.starts_with(b"/") {
                        Start {
                            dir: super::resolve::Dir::Owned(super::path::dup(&parent.fd)?),
                            scope: ResolveFlags::empty(),
                        }
                    } else if job.resolve.contains(ResolveFlags::BENEATH) {
                        return Err(Errno::XDEV.into());
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
