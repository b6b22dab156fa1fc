//! Resolving a task's path to a pinned file, the way the task would.
//!
//! Every resolution starts from a directory descriptor taken from the task
//! itself ([`Start`]): its root (`/proc/ROOT/root`, opened once: sandlock
//! refuses `chroot` while paths are resolved for the sandbox, so every
//! task shares it), its working directory (`/proc/TID/cwd`) or the dirfd it
//! passed (`pidfd_getfd`). The kernel then walks the path (`openat2` with
//! `RESOLVE_NO_MAGICLINKS`, and `RESOLVE_IN_ROOT` from the root), and the
//! result is a descriptor: what is checked is what is used.
//!
//! Two things resolve differently for the supervisor than for the task,
//! and are walked component by component instead ([`Resolver::walk`]):
//!
//! - **procfs' `self` and `thread-self`** name the *opener*: the walk
//!   replaces them by the task's ids, so `/proc/self/status` (and
//!   `/etc/mtab -> ../proc/self/mounts`) mean the task's, never sandlock's;
//! - **magic links** (`/proc/PID/fd/N`, `cwd`, `root`, `exe`) are refused by
//!   `RESOLVE_NO_MAGICLINKS`: for a task of the sandbox the walk takes the
//!   target from the task itself (`pidfd_getfd`, `/proc/PID/cwd`); for any
//!   other process it fails with `EACCES`, as Landlock's ptrace scoping
//!   answers the task.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;
use sandlock_notify::onbehalf::ChildFds;

use super::path::{self, components, fd_path, trailing_slash};
use super::{FsCore, nspid};

/// The most symlinks one resolution follows (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;
/// `PROC_ROOT_INO`: the inode number of every procfs root.
const PROC_ROOT_INO: u64 = 1;

/// The notification a resolution is made for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Task {
    /// The calling thread.
    pub(crate) tid: u32,
    /// The notification id (to check the task is still waiting).
    pub(crate) id: u64,
}

/// The sandbox's root directory, pinned once.
#[derive(Debug)]
pub(crate) struct RootDir {
    pub(crate) fd: OwnedFd,
    /// Its real path in sandlock's view (`/` unless the sandbox has a mount
    /// namespace of its own).
    pub(crate) real: Vec<u8>,
    pub(crate) stat: Stat,
}

impl RootDir {
    /// The root of task `pid`.
    pub(crate) fn of(pid: i32) -> Result<RootDir, Errno> {
        let fd = rustix::fs::open(
            format!("/proc/{pid}/root").as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let real = fd_path(&fd)?;
        let stat = rustix::fs::fstat(&fd)?;
        Ok(RootDir { fd, real, stat })
    }
}

/// A directory descriptor a resolution starts from.
#[derive(Debug)]
pub(crate) enum Dir {
    /// The sandbox's root.
    Root(Arc<RootDir>),
    /// The task's cwd, or a dirfd it passed.
    Owned(OwnedFd),
}

/// Where a task's path starts, and how it may climb.
#[derive(Debug)]
pub(crate) struct Start {
    pub(crate) dir: Dir,
    /// `RESOLVE_IN_ROOT` / `RESOLVE_BENEATH` that apply (ours from the
    /// root, or the task's own `openat2` flags).
    pub(crate) scope: ResolveFlags,
}

impl Start {
    /// The descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match &self.dir {
            Dir::Root(r) => r.fd.as_fd(),
            Dir::Owned(fd) => fd.as_fd(),
        }
    }

    /// The real path of the start directory.
    pub(crate) fn real(&self) -> Result<Vec<u8>, Errno> {
        match &self.dir {
            Dir::Root(r) => Ok(r.real.clone()),
            Dir::Owned(fd) => fd_path(fd),
        }
    }
}

/// Where a pinned file sits in procfs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Proc {
    /// Not in procfs (or not reached by the walker).
    #[default]
    No,
    /// In procfs, not below a process directory (`/proc/cpuinfo`).
    Global,
    /// Below `/proc/PID` (or `/proc/PID/task/TID`): `rest` is the path below it.
    Pid {
        pid: i32,
        tid: Option<i32>,
        rest: Vec<u8>,
    },
}

/// A file a path resolved to, pinned.
#[derive(Debug)]
pub(crate) struct Found {
    /// `O_PATH` (or, from a task's `fd/N`, a copy of its descriptor).
    pub(crate) fd: OwnedFd,
    /// Its real path.
    pub(crate) real: Vec<u8>,
    pub(crate) stat: Stat,
    pub(crate) proc: Proc,
}

impl Found {
    /// Whether it is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        FileType::from_raw_mode(self.stat.st_mode) == FileType::Directory
    }

    /// Whether it is a symlink (a final component not followed).
    pub(crate) fn is_symlink(&self) -> bool {
        FileType::from_raw_mode(self.stat.st_mode) == FileType::Symlink
    }
}

/// A magic link of a process directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Magic {
    Fd(i32),
    Cwd,
    Root,
    Exe,
}

/// The procfs state of the walk's current directory.
#[derive(Clone, Debug, PartialEq, Eq)]
enum At {
    /// Not in procfs.
    Out,
    /// A procfs root.
    Root,
    /// In procfs, not in a process directory.
    Global,
    /// In a process (or `task/TID`) directory, `rest` components below it.
    Pid {
        pid: i32,
        tid: Option<i32>,
        rest: Vec<Vec<u8>>,
    },
}

/// Resolves paths for one task.
pub(crate) struct Resolver<'a> {
    pub(crate) core: &'a FsCore,
    pub(crate) task: Task,
}

fn open_path(
    dir: BorrowedFd<'_>,
    p: &[u8],
    follow: bool,
    scope: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let p = if p.is_empty() { &b"."[..] } else { p };
    crate::scoped::openat2(
        dir,
        p,
        flags,
        Mode::empty(),
        scope | ResolveFlags::NO_MAGICLINKS,
    )
}

fn parse_int(c: &[u8]) -> Option<i32> {
    if c.is_empty() || c.len() > 10 || !c.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(c).ok()?.parse().ok()
}

impl Resolver<'_> {
    /// Resolves `p` from `start`, following a final symlink when `follow`.
    /// The kernel walks it in one call; procfs results and magic links are
    /// walked again component by component.
    pub(crate) fn find(&self, start: &Start, p: &[u8], follow: bool) -> Result<Found, Errno> {
        if p.is_empty() {
            return Err(Errno::NOENT);
        }
        // Without symlinks the real path is the lexical one, and an error
        // is the task's own (it was met before any symlink).
        let scope = start.scope | ResolveFlags::NO_SYMLINKS;
        let (fd, lexical) = match open_path(start.fd(), p, follow, scope) {
            Ok(fd) => (fd, true),
            Err(Errno::LOOP) => match open_path(start.fd(), p, follow, start.scope) {
                Ok(fd) => (fd, false),
                // A symlink was followed: procfs' `self` or a magic link may
                // have resolved differently for us than for the task.
                Err(_) => return self.walk(start, p, follow),
            },
            Err(e) => return Err(e),
        };
        let stat = rustix::fs::fstat(&fd)?;
        if self.core.is_proc(stat.st_dev, &fd) {
            return self.walk(start, p, follow);
        }
        let real = if lexical {
            path::lexical(&start.real()?, p)
        } else {
            fd_path(&fd)?
        };
        Ok(Found {
            fd,
            real,
            stat,
            proc: Proc::No,
        })
    }

    /// The directory holding `p`'s last component, and that component.
    pub(crate) fn parent<'p>(
        &self,
        start: &Start,
        p: &'p [u8],
    ) -> Result<(Found, &'p [u8]), Errno> {
        if p.is_empty() {
            return Err(Errno::NOENT);
        }
        let (dir, last) = path::split_last(p);
        let found = self.find(start, dir, true)?;
        if !found.is_dir() {
            return Err(Errno::NOTDIR);
        }
        Ok((found, last))
    }

    /// The component-by-component walk (see the module documentation).
    pub(crate) fn walk(&self, start: &Start, p: &[u8], follow: bool) -> Result<Found, Errno> {
        let root = &self.core.root;
        let mut todo: VecDeque<Vec<u8>> = components(p).map(<[u8]>::to_vec).collect();
        let mut must_be_dir = trailing_slash(p);
        let absolute = p.starts_with(b"/");
        let in_root = start.scope.contains(ResolveFlags::IN_ROOT);
        let (mut cur, mut real) = if absolute && !in_root {
            (super::path::dup(&root.fd)?, root.real.clone())
        } else {
            (super::path::dup(start.fd())?, start.real()?)
        };
        let floor_stat = if absolute && !in_root {
            root.stat
        } else if in_root {
            rustix::fs::fstat(start.fd())?
        } else {
            root.stat
        };
        let mut stat = rustix::fs::fstat(&cur)?;
        let mut at = self.at_of(&cur, &stat, &real);
        let mut links = 0u32;
        while let Some(c) = todo.pop_front() {
            let last = todo.is_empty();
            if c == b".." {
                if same(&stat, &floor_stat) {
                    continue;
                }
                if start.scope.contains(ResolveFlags::BENEATH)
                    && same(&stat, &rustix::fs::fstat(start.fd())?)
                {
                    return Err(Errno::XDEV);
                }
                cur = open_path(cur.as_fd(), b"..", false, ResolveFlags::empty())?;
                stat = rustix::fs::fstat(&cur)?;
                real = fd_path(&cur)?;
                at = self.at_of(&cur, &stat, &real);
                continue;
            }
            let next = crate::scoped::openat2(
                &cur,
                c.as_slice(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
            )?;
            let nst = rustix::fs::fstat(&next)?;
            let is_link = FileType::from_raw_mode(nst.st_mode) == FileType::Symlink;
            if is_link && (!last || follow || must_be_dir) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP);
                }
                let target: Vec<u8> = match &at {
                    At::Root => match c.as_slice() {
                        b"self" | b"thread-self" => {
                            let (mut tgid, mut tid) = (self.tgid()?, self.task.tid as i32);
                            if self.core.private_proc(stat.st_dev).is_some() {
                                (tgid, tid) = self.core.on_helper(move |_| {
                                    Ok::<_, Errno>((nspid::ns_of(tgid)?, nspid::ns_of(tid)?))
                                })??;
                            }
                            if c.as_slice() == b"self" {
                                tgid.to_string().into_bytes()
                            } else {
                                format!("{tgid}/task/{tid}").into_bytes()
                            }
                        }
                        _ => readlink(&next)?,
                    },
                    At::Pid { pid, tid, rest } => {
                        let magic = match (rest.as_slice(), c.as_slice()) {
                            ([], b"cwd") => Magic::Cwd,
                            ([], b"root") => Magic::Root,
                            ([], b"exe") => Magic::Exe,
                            ([fd], n) if fd.as_slice() == b"fd" => {
                                Magic::Fd(parse_int(n).ok_or(Errno::ACCESS)?)
                            }
                            _ => return Err(Errno::ACCESS),
                        };
                        let owner = tid.unwrap_or(*pid);
                        cur = self.magic(owner, magic)?;
                        stat = rustix::fs::fstat(&cur)?;
                        real = fd_path(&cur)?;
                        at = if real.starts_with(b"/") {
                            self.at_of(&cur, &stat, &real)
                        } else {
                            At::Out
                        };
                        continue;
                    }
                    At::Global | At::Out => readlink(&next)?,
                };
                for comp in components(&target).rev() {
                    todo.push_front(comp.to_vec());
                }
                if target.starts_with(b"/") {
                    if in_root {
                        cur = super::path::dup(start.fd())?;
                        real = start.real()?;
                    } else {
                        cur = super::path::dup(&root.fd)?;
                        real = root.real.clone();
                    }
                    stat = rustix::fs::fstat(&cur)?;
                    at = self.at_of(&cur, &stat, &real);
                }
                if last && trailing_slash(&target) {
                    must_be_dir = true;
                }
                continue;
            }
            at = match (&at, self.core.is_proc(nst.st_dev, &next)) {
                (_, false) => At::Out,
                (_, true) if nst.st_ino == PROC_ROOT_INO => At::Root,
                (At::Root, true) => match parse_int(&c) {
                    Some(pid) => At::Pid {
                        pid: self.host_pid(nst.st_dev, pid, None)?,
                        tid: None,
                        rest: Vec::new(),
                    },
                    None => At::Global,
                },
                (
                    At::Pid {
                        pid,
                        tid: None,
                        rest,
                    },
                    true,
                ) if rest.len() == 1 && rest[0] == b"task" => match parse_int(&c) {
                    Some(t) => At::Pid {
                        pid: *pid,
                        tid: Some(self.host_pid(nst.st_dev, t, Some(*pid))?),
                        rest: Vec::new(),
                    },
                    None => At::Pid {
                        pid: *pid,
                        tid: None,
                        rest: vec![rest[0].clone(), c.clone()],
                    },
                },
                (At::Pid { pid, tid, rest }, true) => {
                    let mut rest = rest.clone();
                    rest.push(c.clone());
                    At::Pid {
                        pid: *pid,
                        tid: *tid,
                        rest,
                    }
                }
                (_, true) => At::Global,
            };
            if real != b"/" {
                real.push(b'/');
            }
            real.extend_from_slice(&c);
            cur = next;
            stat = nst;
        }
        if must_be_dir && FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return Err(Errno::NOTDIR);
        }
        let proc = match at {
            At::Out => Proc::No,
            At::Root | At::Global => Proc::Global,
            At::Pid { pid, tid, rest } => Proc::Pid {
                pid,
                tid,
                rest: rest.join(&b'/'),
            },
        };
        Ok(Found {
            fd: cur,
            real,
            stat,
            proc,
        })
    }

    /// The procfs state of a directory reached by a jump (the start, the
    /// root, a magic link): only its own kind, no process context.
    fn at_of(&self, fd: &OwnedFd, st: &Stat, _real: &[u8]) -> At {
        if !self.core.is_proc(st.st_dev, fd) {
            At::Out
        } else if st.st_ino == PROC_ROOT_INO {
            At::Root
        } else {
            // A jump into the middle of procfs (a dirfd inside /proc/PID):
            // its process is unknown, so its magic links are refused.
            At::Global
        }
    }

    /// The machine pid of the pid directory `pid` of procfs device `dev`
    /// (of a thread of machine process `of`, if given): itself, unless that
    /// procfs is the sandbox's own.
    fn host_pid(&self, dev: u64, pid: i32, of: Option<i32>) -> Result<i32, Errno> {
        let Some(ns) = self.core.private_proc(dev) else {
            return Ok(pid);
        };
        self.core.on_helper(move |_| match of {
            Some(tgid) => nspid::host_of_thread(tgid, pid),
            None => nspid::host_of_process(ns, pid),
        })?
    }

    /// The calling task's thread-group id.
    pub(crate) fn tgid(&self) -> Result<i32, Errno> {
        let tid = self.task.tid;
        self.core.on_helper(move |_| tgid_of(tid as i32))?
    }

    /// The target of a magic link of task `owner`, which must belong to
    /// the sandbox (taken on the unconfined helper: the confined worker
    /// cannot reach the sandbox's processes).
    fn magic(&self, owner: i32, magic: Magic) -> Result<OwnedFd, Errno> {
        self.core.on_helper(move |core| {
            let pidfd = ChildFds::open(owner as u32)?;
            if !core.tasks.contains_host(owner).unwrap_or(false) {
                return Err(Errno::ACCESS);
            }
            let fd = match magic {
                Magic::Fd(n) => pidfd.get_fd(n)?,
                Magic::Cwd | Magic::Root | Magic::Exe => {
                    let name = match magic {
                        Magic::Cwd => "cwd",
                        Magic::Root => "root",
                        _ => "exe",
                    };
                    rustix::fs::open(
                        format!("/proc/{owner}/{name}").as_str(),
                        OFlags::PATH | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?
                }
            };
            // The pidfd pinned the task: if it still runs, `owner` was not
            // reused by another process while we looked.
            if !core.tasks.contains_host(owner).unwrap_or(false) {
                return Err(Errno::ACCESS);
            }
            Ok(fd)
        })?
    }
}

/// Whether two stats name the same file.
pub(crate) fn same(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// The target of the symlink pinned by `fd` (`O_PATH | O_NOFOLLOW`).
pub(crate) fn readlink(fd: &OwnedFd) -> Result<Vec<u8>, Errno> {
    Ok(rustix::fs::readlinkat(fd, "", Vec::with_capacity(64))?.into_bytes())
}

/// The `Tgid:` of task `tid` (`/proc/TID/status`).
pub(crate) fn tgid_of(tid: i32) -> Result<i32, Errno> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|_| Errno::SRCH)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Errno::SRCH)
}
