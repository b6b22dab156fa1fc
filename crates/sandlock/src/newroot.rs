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
        rustix::fs::openat2(
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
