//! What a path call asked, copied once from the task: its path arguments
//! (with their dirfd and whether a last symlink is followed) and the rest
//! of its arguments (buffers to fill, modes, times, xattr names and values).

use std::ffi::CString;

use rustix::fs::Timespec;
use rustix::io::Errno;
use sandlock_notify::{ChildMemory, Ctx, CtxError};

/// Every call this module answers.
pub(crate) const NAMES: &[&str] = &[
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "statfs",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "chmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "setxattr",
    "lsetxattr",
    "removexattr",
    "lremovexattr",
    "inotify_add_watch",
    "truncate",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
];

const AT_FDCWD: i32 = sandlock_notify::decode::AT_FDCWD;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
const IN_DONT_FOLLOW: u32 = 0x0200_0000;
/// `XATTR_SIZE_MAX` / `XATTR_LIST_MAX`.
pub(crate) const XATTR_MAX: usize = 65536;
/// `XATTR_NAME_MAX`.
const XATTR_NAME_MAX: usize = 255;

/// A path argument.
#[derive(Debug)]
pub(crate) struct PathArg {
    pub(crate) dirfd: i32,
    pub(crate) path: Vec<u8>,
    /// Follow a final symlink.
    pub(crate) follow: bool,
    /// `AT_EMPTY_PATH`: an empty path names the dirfd itself.
    pub(crate) empty: bool,
}

/// What the task asked, copied.
#[derive(Debug)]
pub(crate) enum Call {
    Stat {
        buf: u64,
    },
    Statx {
        buf: u64,
        flags: i32,
        mask: u32,
    },
    Statfs {
        buf: u64,
    },
    Access {
        mode: u32,
        eaccess: bool,
    },
    Readlink {
        buf: u64,
        size: u64,
    },
    GetXattr {
        name: CString,
        buf: u64,
        size: u64,
    },
    ListXattr {
        buf: u64,
        size: u64,
    },
    Chmod {
        mode: u32,
    },
    Chown {
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Utimes {
        times: Option<[Timespec; 2]>,
    },
    SetXattr {
        name: CString,
        value: Vec<u8>,
        flags: i32,
    },
    RemoveXattr {
        name: CString,
    },
    InotifyAdd {
        ifd: i32,
        mask: u32,
    },
    Truncate {
        len: i64,
    },
    Mkdir {
        mode: u32,
    },
    Mknod {
        mode: u32,
        dev: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    Unlink {
        dir: bool,
    },
    Rename {
        to: PathArg,
        flags: u32,
    },
    Link {
        to: PathArg,
    },
}

impl Call {
    /// Whether the confined worker performs it.
    pub(crate) fn landlocked(&self) -> bool {
        matches!(
            self,
            Call::Truncate { .. }
                | Call::Mkdir { .. }
                | Call::Mknod { .. }
                | Call::Symlink { .. }
                | Call::Unlink { .. }
                | Call::Rename { .. }
                | Call::Link { .. }
        )
    }

    /// Whether it works on the parent and last component of its path
    /// (not on the file the path names).
    pub(crate) fn on_parent(&self) -> bool {
        matches!(
            self,
            Call::Mkdir { .. }
                | Call::Mknod { .. }
                | Call::Symlink { .. }
                | Call::Unlink { .. }
                | Call::Rename { .. }
        )
    }
}

/// Reads what `name` needs from the task: (the path argument, the call).
pub(crate) fn read_call(ctx: &Ctx, name: &str) -> Result<(PathArg, Call), CtxError> {
    let a = *ctx.args();
    let path = |i: usize| -> Result<Vec<u8>, CtxError> {
        Ok(ctx.read_path(i)?.into_inner_unchecked().to_vec())
    };
    let p = |i: usize, follow: bool| -> Result<PathArg, CtxError> {
        Ok(PathArg {
            dirfd: AT_FDCWD,
            path: path(i)?,
            follow,
            empty: false,
        })
    };
    let at = |d: usize, i: usize, flags: u64, follow_default: bool| -> Result<PathArg, CtxError> {
        Ok(PathArg {
            dirfd: a[d] as i32,
            path: path(i)?,
            follow: if follow_default {
                flags & AT_SYMLINK_NOFOLLOW == 0
            } else {
                flags & AT_SYMLINK_FOLLOW != 0
            },
            empty: flags & AT_EMPTY_PATH != 0,
        })
    };
    let name_at = |i: usize| -> Result<CString, CtxError> {
        let n = path(i)?;
        if n.len() > XATTR_NAME_MAX {
            return Err(CtxError::Os(Errno::RANGE));
        }
        CString::new(n).map_err(|_| CtxError::Os(Errno::INVAL))
    };
    let mem = ctx.memory();
    let read = |addr: u64, len: usize| -> Result<Vec<u8>, CtxError> {
        let mut v = vec![0u8; len];
        mem.read_exact(addr, &mut v)?;
        Ok(v)
    };
    let u64_at =
        |b: &[u8], i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    // utime: {actime, modtime}; utimes/futimesat: 2 x {sec, usec}; utimensat: 2 x {sec, nsec}.
    let times = |addr: u64, kind: u8| -> Result<Option<[Timespec; 2]>, CtxError> {
        if addr == 0 {
            return Ok(None);
        }
        let b = read(addr, if kind == b'b' { 16 } else { 32 })?;
        let ts = |sec: u64, nsec: u64| Timespec {
            tv_sec: sec as i64,
            tv_nsec: nsec as _,
        };
        Ok(Some(match kind {
            b'b' => [ts(u64_at(&b, 0), 0), ts(u64_at(&b, 1), 0)],
            b'v' => [
                ts(u64_at(&b, 0), u64_at(&b, 1).wrapping_mul(1000)),
                ts(u64_at(&b, 2), u64_at(&b, 3).wrapping_mul(1000)),
            ],
            _ => [
                ts(u64_at(&b, 0), u64_at(&b, 1)),
                ts(u64_at(&b, 2), u64_at(&b, 3)),
            ],
        }))
    };
    let id32 = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    Ok(match name {
        "stat" => (p(0, true)?, Call::Stat { buf: a[1] }),
        "lstat" => (p(0, false)?, Call::Stat { buf: a[1] }),
        "newfstatat" => (at(0, 1, a[3], true)?, Call::Stat { buf: a[2] }),
        "statx" => (
            at(0, 1, a[2], true)?,
            Call::Statx {
                buf: a[4],
                flags: a[2] as i32,
                mask: a[3] as u32,
            },
        ),
        "statfs" => (p(0, true)?, Call::Statfs { buf: a[1] }),
        "access" => (
            p(0, true)?,
            Call::Access {
                mode: a[1] as u32,
                eaccess: false,
            },
        ),
        "faccessat" => (
            at(0, 1, 0, true)?,
            Call::Access {
                mode: a[2] as u32,
                eaccess: false,
            },
        ),
        "faccessat2" => (
            at(0, 1, a[3], true)?,
            Call::Access {
                mode: a[2] as u32,
                eaccess: a[3] & 0x200 != 0,
            },
        ),
        "readlink" => (
            p(0, false)?,
            Call::Readlink {
                buf: a[1],
                size: a[2],
            },
        ),
        "readlinkat" => (
            PathArg {
                empty: true,
                ..at(0, 1, AT_SYMLINK_NOFOLLOW, true)?
            },
            Call::Readlink {
                buf: a[2],
                size: a[3],
            },
        ),
        "getxattr" | "lgetxattr" => (
            p(0, name == "getxattr")?,
            Call::GetXattr {
                name: name_at(1)?,
                buf: a[2],
                size: a[3],
            },
        ),
        "listxattr" | "llistxattr" => (
            p(0, name == "listxattr")?,
            Call::ListXattr {
                buf: a[1],
                size: a[2],
            },
        ),
        "chmod" => (p(0, true)?, Call::Chmod { mode: a[1] as u32 }),
        "fchmodat" => (at(0, 1, 0, true)?, Call::Chmod { mode: a[2] as u32 }),
        "fchmodat2" => (at(0, 1, a[3], true)?, Call::Chmod { mode: a[2] as u32 }),
        "chown" | "lchown" => (
            p(0, name == "chown")?,
            Call::Chown {
                uid: id32(a[1]),
                gid: id32(a[2]),
            },
        ),
        "fchownat" => (
            at(0, 1, a[4], true)?,
            Call::Chown {
                uid: id32(a[2]),
                gid: id32(a[3]),
            },
        ),
        "utime" => (
            p(0, true)?,
            Call::Utimes {
                times: times(a[1], b'b')?,
            },
        ),
        "utimes" => (
            p(0, true)?,
            Call::Utimes {
                times: times(a[1], b'v')?,
            },
        ),
        "futimesat" => (
            at(0, 1, 0, true)?,
            Call::Utimes {
                times: times(a[2], b'v')?,
            },
        ),
        "utimensat" => {
            if a[1] == 0 {
                // No path: the descriptor itself (futimens). Handled by the caller.
                return Err(CtxError::Os(Errno::NOTSUP));
            }
            (
                at(0, 1, a[3], true)?,
                Call::Utimes {
                    times: times(a[2], b'n')?,
                },
            )
        }
        "setxattr" | "lsetxattr" => {
            let size = (a[3] as usize).min(XATTR_MAX + 1);
            if size > XATTR_MAX {
                return Err(CtxError::Os(Errno::TOOBIG));
            }
            (
                p(0, name == "setxattr")?,
                Call::SetXattr {
                    name: name_at(1)?,
                    value: if size == 0 {
                        Vec::new()
                    } else {
                        read(a[2], size)?
                    },
                    flags: a[4] as i32,
                },
            )
        }
        "removexattr" | "lremovexattr" => (
            p(0, name == "removexattr")?,
            Call::RemoveXattr { name: name_at(1)? },
        ),
        "inotify_add_watch" => (
            PathArg {
                follow: (a[2] as u32) & IN_DONT_FOLLOW == 0,
                ..p(1, true)?
            },
            Call::InotifyAdd {
                ifd: a[0] as i32,
                mask: (a[2] as u32) & !IN_DONT_FOLLOW,
            },
        ),
        "truncate" => (p(0, true)?, Call::Truncate { len: a[1] as i64 }),
        "mkdir" => (p(0, false)?, Call::Mkdir { mode: a[1] as u32 }),
        "mkdirat" => (
            at(0, 1, AT_SYMLINK_NOFOLLOW, true)?,
            Call::Mkdir { mode: a[2] as u32 },
        ),
        "mknod" => (
            p(0, false)?,
            Call::Mknod {
                mode: a[1] as u32,
                dev: a[2],
            },
        ),
        "mknodat" => (
            at(0, 1, AT_SYMLINK_NOFOLLOW, true)?,
            Call::Mknod {
                mode: a[2] as u32,
                dev: a[3],
            },
        ),
        "symlink" => (p(1, false)?, Call::Symlink { target: path(0)? }),
        "symlinkat" => (
            at(1, 2, AT_SYMLINK_NOFOLLOW, true)?,
            Call::Symlink { target: path(0)? },
        ),
        "unlink" => (p(0, false)?, Call::Unlink { dir: false }),
        "rmdir" => (p(0, false)?, Call::Unlink { dir: true }),
        "unlinkat" => (
            at(0, 1, AT_SYMLINK_NOFOLLOW, true)?,
            Call::Unlink {
                dir: a[2] & AT_REMOVEDIR != 0,
            },
        ),
        "rename" => (
            p(0, false)?,
            Call::Rename {
                to: p(1, false)?,
                flags: 0,
            },
        ),
        "renameat" | "renameat2" => (
            at(0, 1, AT_SYMLINK_NOFOLLOW, true)?,
            Call::Rename {
                to: at(2, 3, AT_SYMLINK_NOFOLLOW, true)?,
                flags: if name == "renameat2" { a[4] as u32 } else { 0 },
            },
        ),
        "link" => (p(0, false)?, Call::Link { to: p(1, false)? }),
        "linkat" => (
            at(0, 1, a[4], false)?,
            Call::Link {
                to: at(2, 3, AT_SYMLINK_NOFOLLOW, true)?,
            },
        ),
        _ => return Err(CtxError::Os(Errno::NOSYS)),
    })
}
