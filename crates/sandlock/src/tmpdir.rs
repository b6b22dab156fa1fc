//! The sandbox's private temporary directory: created `0700` under the
//! caller's temporary directory, writable inside the sandbox, exported as
//! `TMPDIR` (and `HOME` with `clean_env`), removed with everything in it
//! when the sandbox is dropped.
//!
//! The directories of one user live in `$TMPDIR/sandlock-UID/`. A sandlock
//! process that is killed (`SIGKILL`) cannot remove its directory:
//! [`sweep_stale`] removes those of dead sandlock processes, while a later
//! sandbox's command runs (a listing of that small directory).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::Mode;
use rustix::io::Errno;

use crate::error::Error;

/// A private temporary directory, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh directory `sandlock-PID-N-NANOS` in this user's
    /// directory of private directories (see [`user_dir`]).
    pub(crate) fn create() -> Result<TempDir, Error> {
        TempDir::create_in(&user_dir())
    }

    /// [`create`](Self::create) in directory `base`.
    pub(crate) fn create_in(base: &Path) -> Result<TempDir, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!("sandlock-{}-{n}-{nanos:08x}", std::process::id()));
            match rustix::fs::mkdir(&path, Mode::RWXU) {
                Ok(()) => return Ok(TempDir { path }),
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
    if rustix::fs::stat(base).is_ok_and(|st| u64::from(st.st_nlink) == nothing_else) {
        return;
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
        // Empty (the usual case): one rmdir. Otherwise remove_dir_all, which
        // does not follow symlinks (it walks with openat and O_NOFOLLOW), so
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
