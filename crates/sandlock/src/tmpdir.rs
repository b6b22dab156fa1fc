//! The sandbox's private temporary directory: created `0700` under the
//! caller's temporary directory, writable inside the sandbox, exported as
//! `TMPDIR` (and `HOME` with `clean_env`), removed with everything in it
//! when the sandbox is dropped.
//!
//! The directories of one user live in `$TMPDIR/sandlock-UID/`. A sandlock
//! process that is killed (`SIGKILL`) cannot remove its directory:
//! [`sweep_stale`] removes those of dead sandlock processes, while a later
//! sandbox's command runs (a listing of that small directory).
//!
//! A sandbox's directory is, when it can be, its user's **slot**,
//! `sandlock-UID/slot`, taken with an exclusive `flock` that its sandlock
//! holds for the sandbox's life ([`TempDir::for_sandbox`]): an `open` and
//! a `flock` (about 4 µs), where a `mkdir` and an `rmdir` allocate and free
//! an inode and a block each time (on ext4, 50 to 110 µs of a start) and
//! two renames of a spare directory cost 20 to 40 µs. The lock lives on
//! sandlock's descriptor (close-on-exec; the sandbox's first process closes
//! every descriptor above 2 anyway): a sandlock that is killed releases it.
//! The slot is emptied through that descriptor when the sandbox ends, and
//! found empty or emptied when it is taken: a sandbox never finds what
//! another one left. Only a directory of this user, opened without
//! following a symlink, is a slot (anything else in its place is removed,
//! and a new one made). While the slot is taken, another sandbox of the
//! same user gets a new directory, removed at its end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RawDir};
use rustix::io::Errno;

use crate::error::Error;

/// The slot's name in a user's directory (see the module documentation).
const SLOT: &str = "slot";

/// The name of the reused directory of sandlock before the slot (renamed
/// in and out): a sweep removes one left there.
const OLD_SPARE: &str = "spare";

/// How deep a tree left in the slot is removed; deeper, the slot is left
/// (and the next sandbox makes a new directory).
const MAX_DEPTH: u32 = 64;

/// A private temporary directory, removed on drop (or, the slot, emptied
/// and released).
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
    /// The slot's descriptor, which holds its lock.
    slot: Option<OwnedFd>,
}

impl TempDir {
    /// Creates a fresh directory `sandlock-PID-N-NANOS` in this user's
    /// directory of private directories (see [`user_dir`]).
    pub(crate) fn create() -> Result<TempDir, Error> {
        TempDir::create_in(&user_dir())
    }

    /// A sandbox's private directory in this user's directory of private
    /// directories: the slot when it is free, else a new directory
    /// `sandlock-PID-N-NANOS` (see the module documentation).
    pub(crate) fn for_sandbox() -> Result<TempDir, Error> {
        TempDir::for_sandbox_in(&std::env::temp_dir())
    }

    /// [`for_sandbox`](Self::for_sandbox) with `base` for `$TMPDIR`.
    pub(crate) fn for_sandbox_in(base: &Path) -> Result<TempDir, Error> {
        let Some(dir) = private_dir_in(base) else {
            return TempDir::create_in(base);
        };
        let path = dir.join(SLOT);
        match take_slot(&path) {
            Some(fd) => Ok(TempDir {
                path,
                slot: Some(fd),
            }),
            None => TempDir::create_in(&dir),
        }
    }

    /// [`create`](Self::create) in directory `base`.
    pub(crate) fn create_in(base: &Path) -> Result<TempDir, Error> {
        for _ in 0..16 {
            let path = fresh_name(base);
            match rustix::fs::mkdir(&path, Mode::RWXU) {
                Ok(()) => return Ok(TempDir { path, slot: None }),
                Err(Errno::EXIST) => continue,
                Err(errno) => {
                    return Err(Error::Path {
                        field: "private temporary directory",
                        path: path.display().to_string(),
                        errno,
                    });
                }
            }
        }
        Err(Error::Path {
            field: "private temporary directory",
            path: base.display().to_string(),
            errno: Errno::EXIST,
        })
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is its user's slot (else a directory of its own, in the
    /// same parent).
    pub(crate) fn is_slot(&self) -> bool {
        self.slot.is_some()
    }
}

/// A name for a new private directory in `base`: `sandlock-PID-N-NANOS`.
fn fresh_name(base: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.join(format!("sandlock-{}-{n}-{nanos:08x}", std::process::id()))
}

/// Takes the slot at `path`: its descriptor, locked, once it is an empty
/// `0700` directory of this user (see the module documentation); `None`
/// when another sandbox holds it or it cannot be made one.
fn take_slot(path: &Path) -> Option<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            rustix::fs::mkdir(path, Mode::RWXU).ok()?;
            rustix::fs::open(path, flags, Mode::empty()).ok()?
        }
        // Not a directory (a file, a symlink): not ours to use; removed,
        // and a slot made in its place.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            rustix::fs::unlink(path).ok()?;
            rustix::fs::mkdir(path, Mode::RWXU).ok()?;
            rustix::fs::open(path, flags, Mode::empty()).ok()?
        }
        Err(_) => return None,
    };
    rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return None;
    }
    if st.st_mode & 0o7777 != 0o700 {
        rustix::fs::fchmod(&fd, Mode::RWXU).ok()?;
    }
    empty_at(&fd, 0).then_some(fd)
}

/// Removes everything in the directory `dir`, through descriptors (never
/// following a symlink: only the tree itself goes). Whether it is empty.
fn empty_at(dir: &impl AsFd, depth: u32) -> bool {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut names: Vec<(std::ffi::CString, FileType)> = Vec::new();
    // A pass reads a buffer's worth; the removals change the directory,
    // so the listing starts again until a pass finds nothing.
    loop {
        names.clear();
        if rustix::fs::seek(dir, rustix::fs::SeekFrom::Start(0)).is_err() {
            return false;
        }
        let mut raw = RawDir::new(dir, &mut buf);
        while let Some(entry) = raw.next() {
            let Ok(e) = entry else {
                return false;
            };
            let name = e.file_name();
            if !matches!(name.to_bytes(), b"." | b"..") {
                names.push((name.to_owned(), e.file_type()));
            }
        }
        if names.is_empty() {
            return true;
        }
        for (name, ty) in &names {
            let is_dir = match ty {
                FileType::Directory => true,
                FileType::Unknown => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                _ => false,
            };
            if is_dir {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let emptied = depth < MAX_DEPTH
                    && rustix::fs::openat(dir, name, flags, Mode::empty())
                        .is_ok_and(|sub| empty_at(&sub, depth + 1));
                if !emptied || rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).is_err() {
                    return false;
                }
            } else if rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_err() {
                return false;
            }
        }
    }
}

/// Where this user's private directories go: `$TMPDIR/sandlock-UID`
/// (`/tmp` when `TMPDIR` is unset), created `0700`. If that name exists but
/// is not a directory of this user that nobody else may enter (someone
/// else created it first), `$TMPDIR` itself.
pub(crate) fn user_dir() -> std::path::PathBuf {
    let base = std::env::temp_dir();
    private_dir_in(&base).unwrap_or(base)
}

/// `base/sandlock-UID`, created `0700`, if it is a directory of this user
/// that nobody else may enter.
pub(crate) fn private_dir_in(base: &Path) -> Option<PathBuf> {
    let me = rustix::process::geteuid();
    let dir = base.join(format!("sandlock-{}", me.as_raw()));
    let ours = |st: rustix::fs::Stat| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            && st.st_uid == me.as_raw()
            && st.st_mode & 0o077 == 0
    };
    // It exists after the first run: looked at first (a refused mkdir
    // costs as much as the look).
    match rustix::fs::lstat(&dir) {
        Ok(st) => return ours(st).then_some(dir),
        Err(Errno::NOENT) => {}
        Err(_) => return None,
    }
    match rustix::fs::mkdir(&dir, Mode::RWXU) {
        Ok(()) => Some(dir),
        // Created meanwhile, by us or by someone else: judged as found.
        Err(Errno::EXIST) => rustix::fs::lstat(&dir)
            .ok()
            .filter(|st| ours(*st))
            .map(|_| dir),
        Err(_) => None,
    }
}

/// The pid in a private directory's name `sandlock-PID-N-HEX`, if it is one.
fn owner_pid(name: &str) -> Option<i32> {
    let mut parts = name.strip_prefix("sandlock-")?.split('-');
    let pid = parts.next()?.parse().ok()?;
    let n = parts.next()?;
    let hex = parts.next()?;
    let well_formed = parts.next().is_none()
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && hex.len() >= 8
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(pid)
}

/// Removes, under `base`, the private directories of sandlock processes
/// that are gone (killed before they could clean up), owned by this user.
/// A directory whose pid is alive is kept, whoever holds that pid now.
///
/// `holds_own`: the caller's own directory, other than the slot, is in
/// `base`. A directory's link count is 2 plus its subdirectories on the
/// usual filesystems (ext4, xfs, tmpfs): when it shows no subdirectory but
/// the caller's and the slot, `base` is not read at all (a start's worth of
/// time). Elsewhere (btrfs counts 1) it is.
pub(crate) fn sweep_stale(base: &Path, holds_own: bool) {
    let nothing_else = 2 + u64::from(holds_own);
    // `nlink_t` is 32 bits on some architectures.
    #[allow(clippy::useless_conversion)]
    let links = rustix::fs::stat(base).map(|st| u64::from(st.st_nlink));
    // One more: the slot, when it is there.
    let slot = || {
        rustix::fs::lstat(base.join(SLOT))
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    };
    match links {
        Ok(n) if n == nothing_else => return,
        Ok(n) if n == nothing_else + 1 && slot() => return,
        _ => {}
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    let own = std::process::id() as i32;
    for e in entries.flatten() {
        let name = e.file_name();
        if name == OLD_SPARE {
            let _ = std::fs::remove_dir_all(e.path());
            continue;
        }
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid == own || pid <= 0 || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        if meta.is_dir() && meta.uid() == me {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // The slot: emptied through its descriptor (wherever a sandbox that
        // could write its parent moved it), then released with the lock.
        // One left full is emptied by the next sandbox that takes it.
        if let Some(fd) = self.slot.take() {
            empty_at(&fd, 0);
            return;
        }
        // Else one rmdir, or remove_dir_all when not empty, which does not
        // follow symlinks (it walks with openat and O_NOFOLLOW), so
        // whatever the sandbox left there, only the tree itself goes.
        if std::fs::remove_dir(&self.path).is_err() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_base_is_ours_or_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let me = rustix::process::geteuid().as_raw();
        let scratch = std::env::temp_dir().join(format!("sandlock-pdi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        let want = scratch.join(format!("sandlock-{me}"));
        // Absent: created 0700; present and ours: found.
        assert_eq!(private_dir_in(&scratch), Some(want.clone()));
        let mode = std::fs::metadata(&want).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(private_dir_in(&scratch), Some(want.clone()));
        // Others may enter: not used.
        std::fs::set_permissions(&want, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir_in(&scratch), None);
        std::fs::remove_dir(&want).unwrap();
        // A file, or a symlink to a directory of ours: not used either.
        std::fs::write(&want, "x").unwrap();
        assert_eq!(private_dir_in(&scratch), None);
        std::fs::remove_file(&want).unwrap();
        let real = scratch.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&real, &want).unwrap();
        assert_eq!(private_dir_in(&scratch), None);
        std::fs::remove_dir_all(&scratch).unwrap();
    }

    /// A scratch `$TMPDIR` and the user's directory in it.
    fn scratch(name: &str) -> (PathBuf, PathBuf) {
        let me = rustix::process::geteuid().as_raw();
        let base = std::env::temp_dir().join(format!("sandlock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let user = base.join(format!("sandlock-{me}"));
        (base, user)
    }

    fn inode(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).unwrap().ino()
    }

    #[test]
    fn the_slot_is_the_next_sandboxs_emptied() {
        use std::os::unix::fs::PermissionsExt;
        let (base, user) = scratch("slot");
        let slot = user.join(SLOT);
        let a = TempDir::for_sandbox_in(&base).unwrap();
        assert_eq!(a.path(), slot);
        let a_inode = inode(&slot);
        // Taken: the next sandbox gets a new directory, removed at its end.
        let b = TempDir::for_sandbox_in(&base).unwrap();
        let b_path = b.path().to_owned();
        assert!(owner_pid(&b_path.file_name().unwrap().to_string_lossy()).is_some());
        drop(b);
        assert!(!b_path.exists());
        // What the sandbox left goes (a tree, a symlink: not what it names).
        let outside = base.join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::fs::create_dir_all(slot.join("d/e")).unwrap();
        std::fs::write(slot.join("d/e/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, slot.join("link")).unwrap();
        drop(a);
        assert_eq!(std::fs::read_dir(&slot).unwrap().count(), 0);
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        // The next one is the slot again (made 0700 again).
        std::fs::set_permissions(&slot, std::fs::Permissions::from_mode(0o777)).unwrap();
        let c = TempDir::for_sandbox_in(&base).unwrap();
        assert_eq!(inode(c.path()), a_inode);
        let mode = std::fs::metadata(c.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        drop(c);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_slot_not_left_by_sandlock_is_not_a_trap() {
        let (base, user) = scratch("badslot");
        let slot = user.join(SLOT);
        drop(TempDir::for_sandbox_in(&base).unwrap());
        assert!(slot.is_dir());
        // Not empty (its sandlock was killed, or another sandbox planted
        // something): emptied before it is used.
        std::fs::write(slot.join("planted"), "x").unwrap();
        let t = TempDir::for_sandbox_in(&base).unwrap();
        assert_eq!(t.path(), slot);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        drop(t);
        std::fs::remove_dir(&slot).unwrap();
        // A symlink to a directory with contents: the link goes, the
        // directory and its contents stay.
        let target = base.join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(&target, &slot).unwrap();
        let t = TempDir::for_sandbox_in(&base).unwrap();
        assert!(!t.path().is_symlink() && t.path().is_dir());
        assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "x");
        drop(t);
        std::fs::remove_dir(&slot).unwrap();
        // A file: removed.
        std::fs::write(&slot, "x").unwrap();
        let t = TempDir::for_sandbox_in(&base).unwrap();
        assert!(t.path().is_dir());
        assert_eq!(std::fs::read_dir(&user).unwrap().count(), 1);
        drop(t);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn only_private_directory_names_are_recognised() {
        assert_eq!(owner_pid("sandlock-123-0-0a1b2c3d"), Some(123));
        assert_eq!(owner_pid("sandlock-123-17-fffffffff"), Some(123));
        for other in [
            "sandlock-bench-x",
            "sandlock-escape-12-bins-0",
            "sandlock-it-12-3",
            "sandlock-123-0-xyz12345",
            "sandlock-123-0-0a1b",
            "sandlock-123-0-0a1b2c3d-x",
            "sandlock-123",
            "other",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }
}
