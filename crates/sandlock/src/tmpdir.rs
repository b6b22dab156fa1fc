//! The sandbox's private temporary directory: created `0700` under the
//! caller's temporary directory, writable inside the sandbox, exported as
//! `TMPDIR` (and `HOME` with `clean_env`), removed with everything in it
//! when the sandbox is dropped.

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
    /// Creates a fresh directory `sandlock-PID-N-NANOS` under `$TMPDIR` (or `/tmp`).
    pub(crate) fn create() -> Result<TempDir, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
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
