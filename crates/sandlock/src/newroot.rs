//! `chroot`: a directory of the host as the sandbox's `/`.
//!
//! The policy names paths as the sandbox sees them, inside the new root.
//! Before anything else, [`NewRoot::rooted`] turns each of them into the
//! host path it names: resolved from the root's descriptor with
//! `RESOLVE_IN_ROOT`, so a symbolic link of the tree (`/bin -> /usr/bin`,
//! or `../../../../etc`) resolves as it will for the sandbox and can never
//! lead out of it. Everything after that (the Landlock ruleset, the deny
//! rules, the mounts) works on host paths as without a new root; the
//! child enters the root once its mounts are made, before it confines
//! itself: `chroot` by the root's host path (resolved in the child's own
//! mount namespace, where the mounts are), then a check that its new `/`
//! is the directory of the descriptor (`sys::child::enter_root`).
//!
//! What is given by its path inside: the command's path (found in the new root's
//! `PATH`), the working directory (`/` of the new root unless `workdir`
//! says otherwise), and the private temporary directory, made in the new
//! root's `/tmp` and exported by its inside path.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sandlock_policy::{AbsPath, Policy};

use crate::error::Error;

/// The new root: a directory descriptor and its canonical host path.
#[derive(Debug)]
pub(crate) struct NewRoot {
    fd: OwnedFd,
    host: PathBuf,
}

impl NewRoot {
    /// Opens `dir` (a host path), which must be a directory.
    pub(crate) fn open(dir: &Path) -> Result<NewRoot, Error> {
        let err = |errno| Error::Path {
            field: "chroot",
            path: dir.display().to_string(),
            errno,
        };
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        let host = real_path(&fd).map_err(err)?;
        if host == Path::new("/") {
            // Nothing to enter: refused rather than silently meaningless.
            return Err(Error::Invalid {
                field: "chroot",
                value: dir.display().to_string(),
                why: "is the host's root already".to_owned(),
            });
        }
        Ok(NewRoot { fd, host })
    }

    /// The root's canonical host path.
    pub(crate) fn host_path(&self) -> &Path {
        &self.host
    }

    /// The descriptor the child checks its new root against (it enters the
    /// root by its path, in its own mount namespace).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens `inside` (a path of the sandbox's view) with `O_PATH`,
    /// resolved within the root.
    fn open_inside(&self, inside: &Path) -> Result<OwnedFd, Errno> {
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        crate::scoped::openat2(
            self.fd.as_fd(),
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Whether `inside` exists in the new root.
    pub(crate) fn has(&self, inside: &Path) -> bool {
        self.open_inside(inside).is_ok()
    }

    /// An `O_PATH` descriptor of `host`, a directory sandlock just made
    /// under the root, opened from the root by its inside path: `EXDEV`
    /// when that is not the directory at `host` (a link of the tree,
    /// changed meanwhile, took the making elsewhere). Granting this
    /// descriptor grants what the sandbox will see at that path.
    pub(crate) fn made_dir(&self, host: &Path) -> Result<OwnedFd, Errno> {
        let inside = self.inside(host).ok_or(Errno::XDEV)?;
        let fd = self.open_inside(&inside)?;
        let want = rustix::fs::lstat(host)?;
        let have = rustix::fs::fstat(&fd)?;
        if (want.st_dev, want.st_ino) == (have.st_dev, have.st_ino) {
            Ok(fd)
        } else {
            Err(Errno::XDEV)
        }
    }

    /// The host path that `inside` names in the new root (it must exist).
    pub(crate) fn host(&self, inside: &Path) -> Result<PathBuf, Errno> {
        let fd = self.open_inside(inside)?;
        let host = real_path(&fd)?;
        // RESOLVE_IN_ROOT keeps the walk beneath the root; a root renamed
        // meanwhile would show here.
        if host.starts_with(&self.host) {
            Ok(host)
        } else {
            Err(Errno::XDEV)
        }
    }

    /// `host` as the sandbox sees it (`None`: outside the root).
    pub(crate) fn inside(&self, host: &Path) -> Option<PathBuf> {
        let rest = host.strip_prefix(&self.host).ok()?;
        Some(Path::new("/").join(rest))
    }

    /// The host path of `p`, a path of the sandbox's view, for features
    /// that name fixed paths (`/etc/hostname`, the CPU files): resolved in
    /// the root as [`host`](Self::host) does (`None` when it does not
    /// exist there).
    pub(crate) fn existing(&self, p: &str) -> Option<String> {
        self.host(Path::new(p))
            .ok()
            .map(|h| h.to_string_lossy().into_owned())
    }

    /// The file type of `inside`.
    pub(crate) fn kind(&self, inside: &Path) -> Result<FileType, Errno> {
        let fd = self.open_inside(inside)?;
        Ok(FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode))
    }

    /// The file type of `inside` and whether sandlock may execute it.
    pub(crate) fn executable(&self, inside: &Path) -> Option<(FileType, bool)> {
        let fd = self.open_inside(inside).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        // The file itself, through its descriptor's magic link (an O_PATH
        // descriptor has no other way to `faccessat` it).
        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let x = rustix::fs::accessat(
            rustix::fs::CWD,
            link.as_str(),
            Access::EXEC_OK,
            AtFlags::EACCESS,
        )
        .is_ok();
        Some((FileType::from_raw_mode(st.st_mode), x))
    }

    /// `policy` with its file-system paths (readable, writable, denied)
    /// turned into the host paths they name inside the root, and `chroot`
    /// the root's canonical path. A path that does not resolve is an error
    /// naming it as the policy gave it.
    pub(crate) fn rooted(&self, policy: &Policy) -> Result<Policy, Error> {
        let mapped = policy.map_fs_paths(|kind, p| {
            let host = self
                .host(Path::new(p.as_str()))
                .map_err(|errno| Error::Path {
                    field: kind,
                    path: p.as_str().to_owned(),
                    errno,
                })?;
            AbsPath::new(host.to_string_lossy().into_owned()).map_err(|e| Error::Invalid {
                field: kind,
                value: p.as_str().to_owned(),
                why: e.to_string(),
            })
        })?;
        mapped
            .to_builder()
            .chroot(self.host.to_string_lossy().into_owned())
            .build()
            .map_err(Error::from)
    }
}

/// The path of the file `fd` refers to, as this process sees it.
fn real_path(fd: &OwnedFd) -> Result<PathBuf, Errno> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let target = rustix::fs::readlink(link.as_str(), Vec::new())?;
    let bytes = target.as_bytes();
    if !bytes.starts_with(b"/") || bytes.ends_with(b" (deleted)") {
        return Err(Errno::NOENT);
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A scratch directory, removed at drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let p = std::env::temp_dir().join(format!("newroot-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Tmp(p.canonicalize().unwrap())
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn paths_resolve_inside_the_root() {
        let t = Tmp::new("links");
        let r = t.0.join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../../../etc", r.join("up")).unwrap();
        let root = NewRoot::open(&r).unwrap();
        assert_eq!(root.host_path(), r);
        for p in ["/etc", "/abs", "/up", "/abs/../etc"] {
            assert_eq!(root.host(Path::new(p)).unwrap(), r.join("etc"), "{p}");
        }
        assert_eq!(root.host(Path::new("/")).unwrap(), r);
        assert_eq!(root.host(Path::new("/nope")), Err(Errno::NOENT));
        assert_eq!(root.inside(&r.join("etc/x")), Some(PathBuf::from("/etc/x")));
        assert_eq!(root.inside(Path::new("/etc")), None);
    }

    #[test]
    fn bad_roots_are_refused() {
        let t = Tmp::new("bad");
        std::fs::write(t.0.join("file"), "x").unwrap();
        let e = NewRoot::open(&t.0.join("file")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Path {
                    errno: Errno::NOTDIR,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = NewRoot::open(&t.0.join("none")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Path {
                    errno: Errno::NOENT,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = NewRoot::open(Path::new("/")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "chroot",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    /// A directory made through a link that leads out of the root (in the
    /// host's view) is not the one the sandbox would see there.
    #[test]
    fn a_made_directory_is_checked_from_the_root() {
        let t = Tmp::new("made");
        let r = t.0.join("root");
        let outside = t.0.join("outside");
        std::fs::create_dir_all(r.join("tmp/made")).unwrap();
        std::fs::create_dir_all(outside.join("made")).unwrap();
        // The same name inside the root, so that the inside path resolves.
        std::fs::create_dir_all(r.join(outside.strip_prefix("/").unwrap()).join("made")).unwrap();
        symlink(&outside, r.join("link")).unwrap();
        let root = NewRoot::open(&r).unwrap();
        assert!(root.made_dir(&r.join("tmp/made")).is_ok());
        assert_eq!(
            root.made_dir(&r.join("link/made")).map(drop),
            Err(Errno::XDEV)
        );
        assert_eq!(
            root.made_dir(&outside.join("made")).map(drop),
            Err(Errno::XDEV)
        );
    }
}
