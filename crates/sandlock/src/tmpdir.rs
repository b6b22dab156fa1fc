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
//! A sandbox's directory left empty is not removed but renamed to
//! `sandlock-UID/spare`, and the next sandbox of that user renames the
//! spare to its own name instead of creating one ([`TempDir::for_sandbox`]):
//! two renames, where a `mkdir` and an `rmdir` allocate and free an inode
//! and a block each time (on ext4, 50 to 110 µs of a start, more when
//! starts follow each other quickly). Only an empty directory becomes the
//! spare, and a claimed spare is used only if it is still an empty
//! directory of this user (anything else is removed, and a new directory
//! made): a sandbox never finds what another one left.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{CWD, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::Error;

/// The spare directory's name in a user's directory (see the module
/// documentation).
const SPARE: &str = "spare";

/// A private temporary directory, removed on drop (or, when empty, kept as
/// the spare of its user's directory).
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
    /// Where the directory goes on drop if it is empty: the spare.
    spare: Option<PathBuf>,
}

impl TempDir {
    /// Creates a fresh directory `sandlock-PID-N-NANOS` in this user's
    /// directory of private directories (see [`user_dir`]).
    pub(crate) fn create() -> Result<TempDir, Error> {
        TempDir::create_in(&user_dir())
    }

    /// A sandbox's private directory, `sandlock-PID-N-NANOS` in this user's
    /// directory of private directories: the spare renamed when there is
    /// one, empty and ours, else a new one (see the module documentation).
    /// It becomes the spare again on drop if it is empty then.
    pub(crate) fn for_sandbox() -> Result<TempDir, Error> {
        TempDir::for_sandbox_in(&std::env::temp_dir())
    }

    /// [`for_sandbox`](Self::for_sandbox) with `base` for `$TMPDIR`.
    pub(crate) fn for_sandbox_in(base: &Path) -> Result<TempDir, Error> {
        let Some(dir) = private_dir_in(base) else {
            return TempDir::create_in(base);
        };
        let spare = dir.join(SPARE);
        let path = fresh_name(&dir);
        if rustix::fs::renameat_with(CWD, &spare, CWD, &path, RenameFlags::NOREPLACE).is_ok() {
            if empty_and_ours(&path, true) {
                return Ok(TempDir {
                    path,
                    spare: Some(spare),
                });
            }
            // Not a spare we left: removed (a symlink or a file as itself).
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
        let mut tmp = TempDir::create_in(&dir)?;
        tmp.spare = Some(spare);
        Ok(tmp)
    }

    /// [`create`](Self::create) in directory `base`.
    pub(crate) fn create_in(base: &Path) -> Result<TempDir, Error> {
        for _ in 0..16 {
            let path = fresh_name(base);
            match rustix::fs::mkdir(&path, Mode::RWXU) {
                Ok(()) => return Ok(TempDir { path, spare: None }),
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

/// Whether `path` is (not through a symlink) an empty directory of this
/// user; with `claim`, its mode is then made `0700` if it was not.
fn empty_and_ours(path: &Path, claim: bool) -> bool {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(path, flags, Mode::empty()) else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(&fd) else {
        return false;
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory
        || st.st_uid != rustix::process::geteuid().as_raw()
    {
        return false;
    }
    if claim && st.st_mode & 0o7777 != 0o700 && rustix::fs::fchmod(&fd, Mode::RWXU).is_err() {
        return false;
    }
    let Ok(mut dir) = rustix::fs::Dir::new(fd) else {
        return false;
    };
    while let Some(entry) = dir.read() {
        match entry {
            Ok(e) if matches!(e.file_name().to_bytes(), b"." | b"..") => {}
            _ => return false,
        }
    }
    true
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
///
/// `holds_own`: the caller's own directory is in `base`. A directory's link
/// count is 2 plus its subdirectories on the usual filesystems (ext4, xfs,
/// tmpfs): when it shows no subdirectory but the caller's, `base` is not
/// read at all (a start's worth of time). Elsewhere (btrfs counts 1) it is.
pub(crate) fn sweep_stale(base: &Path, holds_own: bool) {
    let nothing_else = 2 + u64::from(holds_own);
    // `nlink_t` is 32 bits on some architectures.
    #[allow(clippy::useless_conversion)]
    let links = rustix::fs::stat(base).map(|st| u64::from(st.st_nlink));
    // One more: the spare, when it is there.
    let spare = || {
        rustix::fs::lstat(base.join(SPARE))
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    };
    match links {
        Ok(n) if n == nothing_else => return,
        Ok(n) if n == nothing_else + 1 && spare() => return,
        _ => {}
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    let own = std::process::id() as i32;
    for e in entries.flatten() {
        let name = e.file_name();
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
        // Empty (the usual case): the spare, when there is none yet.
        if let Some(spare) = &self.spare
            && empty_and_ours(&self.path, false)
            && rustix::fs::renameat_with(CWD, &self.path, CWD, spare, RenameFlags::NOREPLACE)
                .is_ok()
        {
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
    fn an_empty_directory_is_the_next_sandboxs() {
        use std::os::unix::fs::PermissionsExt;
        let (base, user) = scratch("spare");
        let spare = user.join(SPARE);
        let a = TempDir::for_sandbox_in(&base).unwrap();
        let a_path = a.path().to_owned();
        assert!(
            a_path.starts_with(&user)
                && owner_pid(&a_path.file_name().unwrap().to_string_lossy()).is_some()
        );
        let a_inode = inode(&a_path);
        drop(a);
        assert!(!a_path.exists());
        assert_eq!(inode(&spare), a_inode);
        // The next one is the spare, renamed (and made 0700 again).
        std::fs::set_permissions(&spare, std::fs::Permissions::from_mode(0o777)).unwrap();
        let b = TempDir::for_sandbox_in(&base).unwrap();
        assert_eq!(inode(b.path()), a_inode);
        assert!(!spare.exists());
        let mode = std::fs::metadata(b.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        // Not empty: removed, no spare left.
        std::fs::create_dir(b.path().join("d")).unwrap();
        std::fs::write(b.path().join("d/f"), "x").unwrap();
        let b_path = b.path().to_owned();
        drop(b);
        assert!(!b_path.exists() && !spare.exists());
        // With no spare: a new directory, the spare on drop.
        let c = TempDir::for_sandbox_in(&base).unwrap();
        drop(c);
        assert!(spare.is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_spare_not_left_by_sandlock_is_not_used() {
        let (base, user) = scratch("badspare");
        let spare = user.join(SPARE);
        drop(TempDir::for_sandbox_in(&base).unwrap());
        assert!(spare.is_dir());
        // Not empty: its contents go, the sandbox gets a new directory.
        std::fs::write(spare.join("planted"), "x").unwrap();
        let t = TempDir::for_sandbox_in(&base).unwrap();
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_dir(&user).unwrap().count(),
            1,
            "the planted one is gone"
        );
        drop(t);
        std::fs::remove_dir(&spare).unwrap();
        // A symlink to a directory with contents: the link goes, the
        // directory and its contents stay.
        let target = base.join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(&target, &spare).unwrap();
        let t = TempDir::for_sandbox_in(&base).unwrap();
        assert!(!t.path().is_symlink() && t.path().is_dir());
        assert!(std::fs::symlink_metadata(&spare).is_err());
        assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "x");
        drop(t);
        std::fs::remove_dir(&spare).unwrap();
        // A file: removed.
        std::fs::write(&spare, "x").unwrap();
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
