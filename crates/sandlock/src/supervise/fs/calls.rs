//! The path calls other than opens and exec, performed on the task's behalf.
//!
//! Each call is copied once (paths, names, times, values), checked to be
//! still pending, its start directories pinned by the receive thread; then
//! the path is resolved, the pinned file (or the pinned parent and the
//! last component) checked against the deny rules, and the call made on
//! the pinned descriptors, never on the task's string again:
//!
//! | calls | performed by | on |
//! |---|---|---|
//! | `stat` family, `access` family, `readlink`, `statfs`, `getxattr`/`listxattr` | the supervisor (Landlock does not govern them) | the pinned file; the result is written into the task's buffer |
//! | `chmod`/`chown`/`utime*`/`setxattr`/`removexattr` families, `inotify_add_watch` | the supervisor (Landlock does not govern them) | the pinned file |
//! | `truncate`, `mkdir*`, `mknod*`, `symlink*`, `unlink*`, `rmdir`, `rename*`, `link*` | the confined worker (Landlock enforces them on it) | the pinned parent and one final component |
//!
//! A rename or a hard link is refused when it would move, replace or name
//! a denied file or directory, or a directory holding a denied path.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{Access, AtFlags, Mode, RenameFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use sandlock_notify::{BuildError, Ctx, Reply, Response, SupervisorBuilder, Unverified};

use super::args::{Call, NAMES, PathArg, XATTR_MAX, read_call};
use super::deny::Ident;
use super::path::{self, lexical};
use super::resolve::{Dir, Found, Proc, Resolver, Start, Task};
use super::{Fail, FsCore, handle, task_of};
use crate::sys::behalf;
pub(crate) fn register(
    mut sup: SupervisorBuilder,
    core: &Arc<FsCore>,
) -> Result<SupervisorBuilder, BuildError> {
    for name in NAMES {
        let c = core.clone();
        sup = handle(sup, name, move |ctx: &Ctx| on_call(ctx, &c))?;
    }
    Ok(sup)
}

fn errno_reply(e: Errno) -> Reply {
    Reply::errno(sandlock_notify::listener::errno_of(e))
}

/// One path call, on the receive thread: copy, check, pin; then perform it
/// (now, after the callback's verdict, or on the confined worker).
fn on_call(ctx: &Ctx, core: &Arc<FsCore>) -> Reply {
    let Ok(name) = sandlock_notify::decode::syscall_name(ctx.notif()) else {
        return Reply::errno(sandlock_bpf::Errno::ENOSYS);
    };
    if name == "utimensat" && ctx.args()[1] == 0 {
        // futimens on a descriptor the task holds: no path, no decision,
        // nothing read from memory is used; the kernel runs it as asked.
        return Reply::Respond(Response::Continue);
    }
    let task = task_of(ctx);
    let read = read_call(ctx, name).and_then(|c| ctx.verify(Unverified::new(task.id, c)));
    let (arg, call) = match read {
        Ok(v) => v.into_inner(),
        Err(e) => return Reply::errno(e.errno()),
    };
    let start = match core.start(task, arg.dirfd, &arg.path, ResolveFlags::empty()) {
        Ok(s) => s,
        Err(e) => return errno_reply(e),
    };
    let second = match &call {
        Call::Rename { to, .. } | Call::Link { to } => {
            match core.start(task, to.dirfd, &to.path, ResolveFlags::empty()) {
                Ok(s) => Some(s),
                Err(e) => return errno_reply(e),
            }
        }
        _ => None,
    };
    let event = core
        .wants_events()
        .then(|| core.event(name, task, &start, &arg.path));
    let held = event.clone();
    let c = core.clone();
    let run: Box<dyn FnOnce(&Ctx) -> Reply + Send> = if let Call::InotifyAdd { ifd, mask } = call {
        // Our copy of the task's inotify descriptor, taken now.
        let copy = sandlock_notify::onbehalf::ChildFds::open(task.tid).and_then(|f| f.get_fd(ifd));
        let copy = match copy {
            Ok(fd) => fd,
            Err(e) => return errno_reply(e),
        };
        Box::new(move |_: &Ctx| Reply::Respond(inotify(&c, task, &arg, &start, &copy, mask, event)))
    } else if call.landlocked() {
        Box::new(move |_: &Ctx| {
            let c2 = c.clone();
            c.submit(task.id, move || {
                let r = perform(&c2, task, &arg, &call, &start, second.as_ref(), event);
                let _ = c2.shared.listener.respond(task.id, r);
            })
        })
    } else {
        Box::new(move |_: &Ctx| {
            Reply::Respond(perform(
                &c,
                task,
                &arg,
                &call,
                &start,
                second.as_ref(),
                event,
            ))
        })
    };
    if core.hold_files() {
        let ev = held.unwrap_or_else(|| {
            core.event(
                name,
                task,
                &Start {
                    dir: Dir::Root(core.root.clone()),
                    scope: ResolveFlags::empty(),
                },
                b"",
            )
        });
        Reply::hold(ev, run)
    } else {
        run(ctx)
    }
}

/// `inotify_add_watch` on our copy of the task's inotify descriptor, with
/// the pinned file named through `/proc/self/fd/N`.
fn inotify(
    core: &Arc<FsCore>,
    task: Task,
    arg: &PathArg,
    start: &Start,
    copy: &OwnedFd,
    mask: u32,
    mut event: Option<sandlock_policy::SyscallEvent>,
) -> Response {
    let r = Resolver { core, task };
    let found = match target(&r, arg, start) {
        Ok(f) => f,
        Err(e) => return super::open::errno_response(e),
    };
    match core.found_denied(&r, &found) {
        Ok(false) => {}
        Ok(true) => {
            core.audit_denied(event.as_mut());
            return super::open::errno_response(Errno::ACCESS);
        }
        Err(e) => return super::open::errno_response(e),
    }
    let link = path::proc_fd(&found.fd);
    let flags = rustix::fs::inotify::WatchFlags::from_bits_retain(mask);
    Response::from_result(rustix::fs::inotify::add_watch(copy, link.as_str(), flags).map(i64::from))
}

/// The file `arg` names, pinned.
fn target(r: &Resolver<'_>, arg: &PathArg, start: &Start) -> Result<Found, Errno> {
    if arg.path.is_empty() {
        if !arg.empty {
            return Err(Errno::NOENT);
        }
        let fd = super::path::dup(start.fd())?;
        let stat = rustix::fs::fstat(&fd)?;
        let real = path::fd_path(&fd)?;
        return Ok(Found {
            fd,
            real,
            stat,
            proc: Proc::No,
        });
    }
    r.find(start, &arg.path, arg.follow)
}

/// The parent of `arg`'s last component (pinned), its real path, the last
/// component, and the file there if any (not followed).
struct Entry {
    parent: Found,
    name: Vec<u8>,
    real: Vec<u8>,
    existing: Option<rustix::fs::Stat>,
}

fn entry(r: &Resolver<'_>, arg: &PathArg, start: &Start) -> Result<Entry, Errno> {
    let (parent, name) = r.parent(start, &arg.path)?;
    let name = name.to_vec();
    let real = lexical(&parent.real, &name);
    let existing = rustix::fs::statat(&parent.fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW).ok();
    Ok(Entry {
        parent,
        name,
        real,
        existing,
    })
}

/// Whether `e` may not be created, removed or replaced.
fn entry_denied(core: &FsCore, r: &Resolver<'_>, e: &Entry) -> Result<bool, Errno> {
    Ok(core.found_denied(r, &e.parent)?
        || core.denied.holds_denied(&e.real)
        || e.existing
            .as_ref()
            .is_some_and(|st| core.denied.id_denied(Ident::of(st))))
}

/// Performs `call` on `arg` (and, for rename and link, `second`).
fn perform(
    core: &Arc<FsCore>,
    task: Task,
    arg: &PathArg,
    call: &Call,
    start: &Start,
    second: Option<&Start>,
    mut event: Option<sandlock_policy::SyscallEvent>,
) -> Response {
    let r = Resolver { core, task };
    match perform_inner(core, &r, arg, call, start, second) {
        Ok(v) => Response::Value(v),
        Err(e) => {
            if e == Fail::Denied {
                core.audit_denied(event.as_mut());
            }
            super::open::errno_response(e.errno())
        }
    }
}

fn perform_inner(
    core: &Arc<FsCore>,
    r: &Resolver<'_>,
    arg: &PathArg,
    call: &Call,
    start: &Start,
    second: Option<&Start>,
) -> Result<i64, Fail> {
    let denied = Fail::Denied;
    if call.on_parent() {
        let e = entry(r, arg, start)?;
        if entry_denied(core, r, &e)? {
            return Err(denied);
        }
        let (p, n) = (&e.parent.fd, e.name.as_slice());
        return match call {
            Call::Mkdir { mode } => {
                let m = Mode::from_bits_truncate(mode & !core.umask_of(r.task.tid));
                rustix::fs::mkdirat(p, n, m).map(|()| 0).map_err(Fail::from)
            }
            Call::Mknod { mode, dev } => {
                let m = *mode & !core.umask_of(r.task.tid);
                let ft = rustix::fs::FileType::from_raw_mode(m);
                rustix::fs::mknodat(p, n, ft, Mode::from_bits_truncate(m), *dev)
                    .map(|()| 0)
                    .map_err(Fail::from)
            }
            Call::Symlink { target } => rustix::fs::symlinkat(target.as_slice(), p, n)
                .map(|()| 0)
                .map_err(Fail::from),
            Call::Unlink { dir } => {
                let f = if *dir {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                rustix::fs::unlinkat(p, n, f)
                    .map(|()| 0)
                    .map_err(Fail::from)
            }
            Call::Rename { to, flags } => {
                let s2 = second.ok_or(Errno::INVAL)?;
                let e2 = entry(r, to, s2)?;
                if entry_denied(core, r, &e2)? {
                    return Err(denied);
                }
                rustix::fs::renameat_with(
                    p,
                    n,
                    &e2.parent.fd,
                    e2.name.as_slice(),
                    RenameFlags::from_bits_retain(*flags),
                )
                .map(|()| 0)
                .map_err(Fail::from)
            }
            _ => Err(Errno::INVAL.into()),
        };
    }
    if let Call::Link { to } = call {
        let s2 = second.ok_or(Errno::INVAL)?;
        let e2 = entry(r, to, s2)?;
        if entry_denied(core, r, &e2)? {
            return Err(denied);
        }
        if arg.follow || arg.path.is_empty() {
            let old = target(r, arg, start)?;
            if core.found_denied(r, &old)? || old.proc != Proc::No {
                return Err(denied);
            }
            let link = path::proc_fd(&old.fd);
            return rustix::fs::linkat(
                rustix::fs::CWD,
                link.as_str(),
                &e2.parent.fd,
                e2.name.as_slice(),
                AtFlags::SYMLINK_FOLLOW,
            )
            .map(|()| 0)
            .map_err(Fail::from);
        }
        let old = entry(r, arg, start)?;
        if entry_denied(core, r, &old)? {
            return Err(denied);
        }
        return rustix::fs::linkat(
            &old.parent.fd,
            old.name.as_slice(),
            &e2.parent.fd,
            e2.name.as_slice(),
            AtFlags::empty(),
        )
        .map(|()| 0)
        .map_err(Fail::from);
    }
    let found = target(r, arg, start)?;
    if core.found_denied(r, &found)? {
        return Err(denied);
    }
    if matches!(core.proc_owner(&found)?, super::open::Owner::Sandlock) {
        return Err(denied);
    }
    let fd = found.fd.as_fd();
    let link = path::proc_fd(&found.fd);
    let pid = r.task.tid;
    match call {
        Call::Stat { buf } => write(pid, *buf, &behalf::stat_bytes(fd)?)
            .map(|()| 0)
            .map_err(Fail::from),
        Call::Statx { buf, flags, mask } => {
            write(pid, *buf, &behalf::statx_bytes(fd, *flags, *mask)?)
                .map(|()| 0)
                .map_err(Fail::from)
        }
        Call::Statfs { buf } => write(pid, *buf, &behalf::statfs_bytes(fd)?)
            .map(|()| 0)
            .map_err(Fail::from),
        Call::Access { mode, eaccess } => {
            let mut f = AtFlags::EMPTY_PATH;
            if *eaccess {
                f |= AtFlags::EACCESS;
            }
            rustix::fs::accessat(fd, "", Access::from_bits_retain(*mode), f)
                .map(|()| 0)
                .map_err(Fail::from)
        }
        Call::Readlink { buf, size } => {
            if *size == 0 || *size > i32::MAX as u64 {
                return Err(Errno::INVAL.into());
            }
            let t = rustix::fs::readlinkat(fd, "", Vec::new())?.into_bytes();
            let n = t.len().min(*size as usize);
            Ok(write(pid, *buf, &t[..n]).map(|()| n as i64)?)
        }
        Call::GetXattr { name, buf, size } => {
            let mut v = vec![0u8; (*size as usize).min(XATTR_MAX)];
            let n = rustix::fs::getxattr(link.as_str(), name.as_c_str(), &mut v)?;
            if *size != 0 {
                write(pid, *buf, &v[..n.min(v.len())])?;
            }
            Ok(n as i64)
        }
        Call::ListXattr { buf, size } => {
            let mut v = vec![0u8; (*size as usize).min(XATTR_MAX)];
            let n = rustix::fs::listxattr(link.as_str(), &mut v)?;
            if *size != 0 {
                write(pid, *buf, &v[..n.min(v.len())])?;
            }
            Ok(n as i64)
        }
        Call::Chmod { mode } => {
            if found.is_symlink() {
                return Err(Errno::OPNOTSUPP.into());
            }
            rustix::fs::chmod(link.as_str(), Mode::from_bits_truncate(*mode))
                .map(|()| 0)
                .map_err(Fail::from)
        }
        Call::Chown { uid, gid } => rustix::fs::chownat(
            fd,
            "",
            uid.map(rustix::fs::Uid::from_raw),
            gid.map(rustix::fs::Gid::from_raw),
            AtFlags::EMPTY_PATH,
        )
        .map(|()| 0)
        .map_err(Fail::from),
        Call::Utimes { times } => {
            let now = Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            };
            let [a, m] = times.unwrap_or([now, now]);
            let ts = Timestamps {
                last_access: a,
                last_modification: m,
            };
            rustix::fs::utimensat(fd, "", &ts, AtFlags::EMPTY_PATH)
                .map(|()| 0)
                .map_err(Fail::from)
        }
        Call::SetXattr { name, value, flags } => rustix::fs::setxattr(
            link.as_str(),
            name.as_c_str(),
            value,
            rustix::fs::XattrFlags::from_bits_retain(*flags as u32),
        )
        .map(|()| 0)
        .map_err(Fail::from),
        Call::RemoveXattr { name } => rustix::fs::removexattr(link.as_str(), name.as_c_str())
            .map(|()| 0)
            .map_err(Fail::from),
        Call::Truncate { len } => {
            let c = CString::new(link).map_err(|_| Errno::INVAL)?;
            behalf::truncate(&c, *len).map(|()| 0).map_err(Fail::from)
        }
        _ => Err(Errno::INVAL.into()),
    }
}

fn write(pid: u32, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    behalf::write_memory(pid, addr, bytes)
}
