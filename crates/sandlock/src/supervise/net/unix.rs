//! Named unix sockets follow the filesystem rules.
//!
//! Landlock (up to ABI 7) governs creating a socket file (`bind`) but not
//! connecting or sending to one: without this module a sandbox could talk
//! to any daemon whose socket path it can name (`docker.sock`, the system
//! bus...). The supervisor therefore resolves the path itself, the way the
//! kernel's `connect` does, and lets the call through only when the socket
//! lies inside a granted tree:
//!
//! 1. The path is resolved from the task's root (`/proc/TID/root`, with
//!    `RESOLVE_IN_ROOT`) or working directory (`/proc/TID/cwd`), every
//!    symbolic link followed as the kernel would (40 at most), but no link
//!    in `/proc` (`RESOLVE_NO_MAGICLINKS`, and links found on procfs are
//!    refused: `/proc/self/fd/N` read by the supervisor would name its own
//!    descriptors), ending in an `O_PATH`
//!    descriptor of the socket inode and one of the directory holding it.
//! 2. From that directory the supervisor walks up with `..` to the root,
//!    comparing each directory's identity (device, inode) with the
//!    directories granted by `-r` / `-w` (and the private temporary
//!    directory): the socket is reachable when one of them is an ancestor,
//!    or when the socket itself was granted as a file. This is Landlock's
//!    own notion of "beneath" (its rules are attached to inodes and
//!    checked along the path's ancestors, across mount points).
//!    A socket under an `fs_denied` path is refused too.
//! 3. The connect or send then names the pinned inode,
//!    `/proc/self/fd/N`, never the task's path again: renaming or swapping
//!    a link after the check changes nothing.
//!
//! A socket outside the grants gets `EACCES`, as a file there would.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sandlock_notify::sockaddr::SockAddrBuf;

/// The most symbolic links followed in one resolution (the kernel's).
const MAX_LINKS: usize = 40;
/// The most `..` steps of the ancestry walk.
const MAX_DEPTH: usize = 4096;

type Id = (u64, u64);

fn id_of(fd: impl AsFd) -> Result<(Id, FileType), Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok(((st.st_dev, st.st_ino), FileType::from_raw_mode(st.st_mode)))
}

/// The directories and files under which unix sockets may be reached.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    dirs: HashSet<Id>,
    files: HashSet<Id>,
}

impl Grants {
    /// The grants of `paths` (followed as Landlock follows them); a path
    /// that cannot be opened grants nothing.
    pub(crate) fn new<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Grants {
        let mut g = Grants::default();
        for p in paths {
            let Ok(fd) = rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) else {
                continue;
            };
            if let Ok((id, kind)) = id_of(&fd) {
                if kind == FileType::Directory {
                    g.dirs.insert(id);
                } else {
                    g.files.insert(id);
                }
            }
        }
        g
    }

    /// Whether the socket `sock`, found in directory `dir`, is granted.
    fn covers(&self, dir: &OwnedFd, sock: Id) -> Result<bool, Errno> {
        if self.files.contains(&sock) {
            return Ok(true);
        }
        let (mut here, _) = id_of(dir)?;
        let mut cur = rustix::io::dup(dir)?;
        for _ in 0..MAX_DEPTH {
            if self.dirs.contains(&here) {
                return Ok(true);
            }
            let up = rustix::fs::openat(
                &cur,
                "..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let (above, _) = id_of(&up)?;
            if above == here {
                return Ok(false);
            }
            (cur, here) = (up, above);
        }
        Ok(false)
    }
}

/// A named socket found by [`resolve`]: its inode, pinned.
#[derive(Debug)]
pub(crate) struct Pinned {
    sock: OwnedFd,
    /// The address to connect or send to instead of the task's:
    /// `/proc/self/fd/N` of the pinned inode.
    addr: SockAddrBuf,
}

impl Pinned {
    /// The address naming the pinned inode.
    pub(crate) fn addr(&self) -> &SockAddrBuf {
        &self.addr
    }

    /// The socket's path as the supervisor sees it (for deny rules).
    fn path(&self) -> Option<Vec<u8>> {
        let link = format!("/proc/self/fd/{}", self.sock.as_raw_fd());
        rustix::fs::readlink(link, Vec::new())
            .ok()
            .map(|p| p.into_bytes())
    }
}

/// Where a task's path starts: its root and its working directory.
#[derive(Debug)]
pub(crate) struct Base {
    root: OwnedFd,
    cwd: OwnedFd,
}

impl Base {
    /// The root and working directory of task `tid`. Check that the
    /// notification is still pending afterwards (the tid was not reused).
    pub(crate) fn of(tid: u32) -> Result<Base, Errno> {
        let open = |what: &str| {
            rustix::fs::open(
                format!("/proc/{tid}/{what}"),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| if e == Errno::NOENT { Errno::SRCH } else { e })
        };
        Ok(Base {
            root: open("root")?,
            cwd: open("cwd")?,
        })
    }
}

/// Opens `path` from `dir` (or from the root, `RESOLVE_IN_ROOT`, for an
/// absolute path), following links but no magic ones.
fn open_at(
    base: &Base,
    dir: Option<&OwnedFd>,
    path: &[u8],
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let (from, rel, extra) = match path.strip_prefix(b"/") {
        Some(rel) => (&base.root, rel, ResolveFlags::IN_ROOT),
        None => (dir.unwrap_or(&base.cwd), path, ResolveFlags::empty()),
    };
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    let rel = OsStr::from_bytes(rel);
    crate::scoped::openat2(
        from,
        rel,
        flags | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_MAGICLINKS | extra,
    )
}

/// Says whether a path is denied (`fs_denied` and the callback's rules).
pub(crate) type Denied<'a> = dyn Fn(&[u8]) -> bool + 'a;

/// Finds the socket `path` names for the task whose root and working
/// directory are `base`, checks it against `grants` (and the deny rules
/// when `denied` says a path is denied), and pins it.
pub(crate) fn resolve(
    base: &Base,
    path: &[u8],
    grants: &Grants,
    denied: Option<&Denied<'_>>,
) -> Result<Pinned, Errno> {
    let mut path = path.to_vec();
    let mut dir: Option<OwnedFd> = None;
    for _ in 0..=MAX_LINKS {
        // Split into the directory part and the last component.
        let trimmed_len = path.len() - path.iter().rev().take_while(|&&b| b == b'/').count();
        if trimmed_len != path.len() {
            // "sock/": a trailing slash asks for a directory.
            return Err(if trimmed_len == 0 {
                Errno::CONNREFUSED
            } else {
                Errno::NOTDIR
            });
        }
        let (parent, last): (&[u8], &[u8]) = match path.iter().rposition(|&b| b == b'/') {
            Some(0) => (b"/", &path[1..]),
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (b".", &path[..]),
        };
        if last == b"." || last == b".." {
            return Err(Errno::CONNREFUSED);
        }
        let parent_fd = open_at(base, dir.as_ref(), parent, OFlags::DIRECTORY)?;
        let last_os = OsStr::from_bytes(last);
        let fd = crate::scoped::openat2(
            &parent_fd,
            last_os,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_MAGICLINKS | ResolveFlags::BENEATH,
        )?;
        let (id, kind) = id_of(&fd)?;
        match kind {
            // A link in /proc (`self`, `fd/N`, `cwd`...) would be read in
            // the supervisor's context, not the task's: refused.
            FileType::Symlink if on_procfs(&parent_fd)? => return Err(Errno::LOOP),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                path = target.into_bytes();
                if path.is_empty() {
                    return Err(Errno::NOENT);
                }
                dir = Some(parent_fd);
            }
            FileType::Socket => {
                if !grants.covers(&parent_fd, id)? {
                    return Err(Errno::ACCESS);
                }
                let pinned = Pinned {
                    addr: proc_fd_addr(fd.as_raw_fd()),
                    sock: fd,
                };
                if let Some(denied) = denied {
                    // No path (the socket was unlinked meanwhile): refuse.
                    match pinned.path() {
                        Some(p) if !denied(&p) => {}
                        _ => return Err(Errno::ACCESS),
                    }
                }
                return Ok(pinned);
            }
            // What the kernel answers for a path that is not a socket.
            _ => return Err(Errno::CONNREFUSED),
        }
    }
    Err(Errno::LOOP)
}

/// `PROC_SUPER_MAGIC`.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

fn on_procfs(dir: &OwnedFd) -> Result<bool, Errno> {
    Ok(rustix::fs::fstatfs(dir)?.f_type as i64 == PROC_SUPER_MAGIC)
}

/// `sockaddr_un` for `/proc/self/fd/FD`.
fn proc_fd_addr(fd: i32) -> SockAddrBuf {
    let mut b = 1u16.to_ne_bytes().to_vec();
    b.extend_from_slice(format!("/proc/self/fd/{fd}").as_bytes());
    b.push(0);
    SockAddrBuf::from_bytes(&b).unwrap_or_default()
}
