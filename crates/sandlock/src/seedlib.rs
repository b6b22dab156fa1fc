//! The seed library: `getrandom()` of a `random_seed` sandbox answered
//! inside the process.
//!
//! A notified `getrandom` costs one supervisor round trip (about 25 times
//! the bare call). Dynamically linked programs call it through libc, so a
//! library preloaded into them (`LD_PRELOAD`) can answer instead: it takes
//! one 32-byte key per process from the supervisor's seeded stream (the
//! system call, notified as before), then draws ChaCha20 blocks under that
//! key in the process. The source is `seedlib/seed.c`, compiled by
//! `build.rs` and embedded here; `docs/determinism.md` defines the stream.
//!
//! The sandbox must not be able to change the library, nor may any other
//! process of the user (another sandbox granted `/tmp`, say) between the
//! moment sandlock writes it and the moment the command loads it. So it is
//! never a named file on disk: in the launch's mount namespace (a seeded
//! sandbox has one, for its random devices), the child writes it on a
//! tmpfs of that namespace alone and binds it, read-only, over an empty
//! file of a private directory (`ns::mounts`), which is what `LD_PRELOAD`
//! names and what Landlock grants.
//!
//! Another process of the user could still unlink that empty file from
//! outside, which detaches the mount, and put a file of its own in its
//! place. So the mount point goes where the sandbox cannot otherwise read
//! or write: `$TMPDIR/sandlock-UID/`, else `/dev/shm/sandlock-UID/` (a
//! policy granting `/tmp` is common); a sandbox that can reach both gets
//! no library. Those, statically linked programs, and programs that drop
//! `LD_PRELOAD` from the environment of what they run make the system
//! call, which the supervisor answers as before.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ns::MountPlan;
use crate::tmpdir::TempDir;

/// The library, when this build has one (x86-64).
#[cfg(sandlock_seedlib)]
const LIBRARY: Option<&[u8]> = Some(include_bytes!(concat!(
    env!("OUT_DIR"),
    "/libsandlock-seed.so"
)));
#[cfg(not(sandlock_seedlib))]
const LIBRARY: Option<&[u8]> = None;

/// The file name the sandbox loads.
const NAME: &str = "libsandlock-seed.so";

/// Whether this build can answer `getrandom()` in the process.
pub(crate) fn available() -> bool {
    LIBRARY.is_some()
}

/// Where a sandbox finds the library: an empty file in a private
/// directory, over which each launch binds the library in its mount
/// namespace. Removed when dropped.
#[derive(Debug)]
pub(crate) struct Preload {
    _dir: TempDir,
    file: PathBuf,
}

/// Where mount points may go, besides `$TMPDIR/sandlock-UID`: a policy
/// granting the temporary directory (`-w /tmp`) is common, one granting
/// `/dev/shm` less so.
const OTHER_BASES: [&str; 1] = ["/dev/shm"];

impl Preload {
    /// A mount point that `acceptable` accepts (see `holders`): in this
    /// user's private directory of `$TMPDIR`, else of [`OTHER_BASES`];
    /// `None` when none is, or when this build has no library.
    pub(crate) fn create(acceptable: impl Fn(&Preload) -> bool) -> Result<Option<Preload>, Error> {
        if LIBRARY.is_none() {
            return Ok(None);
        }
        let first = Preload::create_in(&crate::tmpdir::user_dir())?;
        if acceptable(&first) {
            return Ok(Some(first));
        }
        drop(first);
        for base in OTHER_BASES {
            let Some(dir) = crate::tmpdir::private_dir_in(Path::new(base)) else {
                continue;
            };
            // Those of sandlock processes killed before they could clean up.
            crate::tmpdir::sweep_stale(&dir, false);
            if let Ok(p) = Preload::create_in(&dir)
                && acceptable(&p)
            {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// An empty file in a fresh private directory under `base`.
    fn create_in(base: &Path) -> Result<Preload, Error> {
        let dir = TempDir::create_in(base)?;
        let file = dir.path().join(NAME);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&file)
            .map_err(Error::io(format!("random_seed library {}", file.display())))?;
        Ok(Preload { _dir: dir, file })
    }

    /// The directories that hold the mount point (its own and every
    /// ancestor), as device and inode numbers.
    pub(crate) fn holders(&self) -> Vec<(u64, u64)> {
        self.file
            .ancestors()
            .skip(1)
            .filter_map(|d| rustix::fs::stat(d).ok())
            .map(|st| (st.st_dev, st.st_ino))
            .collect()
    }

    /// The path the sandbox loads (`LD_PRELOAD`).
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }

    /// Binds the library over the mount point in the launch's namespace.
    pub(crate) fn mount(&self, mounts: &mut MountPlan) {
        if let Some(bytes) = LIBRARY {
            mounts.bind_content(self.file.clone(), bytes.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_has_the_library_on_x86_64() {
        assert_eq!(available(), cfg!(target_arch = "x86_64"));
        if let Some(lib) = LIBRARY {
            assert_eq!(&lib[..4], b"\x7fELF");
        }
    }

    #[test]
    fn the_mount_point_is_an_empty_read_only_file_removed_on_drop() {
        let Some(p) = Preload::create(|_| true).unwrap() else {
            return;
        };
        let meta = std::fs::metadata(p.path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.len(), meta.mode() & 0o777), (0, 0o444));
        let mut plan = MountPlan::default();
        p.mount(&mut plan);
        assert_eq!(plan.targets().collect::<Vec<_>>(), [p.path()]);
        let path = p.path().to_path_buf();
        drop(p);
        assert!(!path.exists());
    }
}
