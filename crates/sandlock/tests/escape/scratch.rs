//! Scratch directories: world-readable, owned by the attacking user,
//! removed without ever crossing into a mount an attack may have left.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::User;
use crate::procfs;
use crate::programs::bins;

const PREFIX: &str = "sandlock-escape-";

/// A new, empty, world-readable directory /tmp/sandlock-escape-PID-KIND-N.
pub fn unique_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{PREFIX}{}-{kind}-{n}", std::process::id()));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Remove what earlier, killed runs of the suite left in /tmp.
pub fn remove_stale() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            remove_tree(&entry.path());
        }
    }
}

/// Delete a scratch tree without ever leaving its filesystem: mounts an
/// attack left under it are detached first, and nothing on another device
/// is descended into.
pub fn remove_tree(root: &Path) {
    for mount in procfs::mounts_under(std::process::id() as i32, root) {
        let _ = rustix::mount::unmount(&mount, rustix::mount::UnmountFlags::DETACH);
    }
    let Ok(meta) = fs::symlink_metadata(root) else {
        return;
    };
    remove_same_dev(root, std::os::unix::fs::MetadataExt::dev(&meta));
}

fn remove_same_dev(path: &Path, dev: u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.dev() != dev {
        return;
    }
    if meta.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                remove_same_dev(&entry.path(), dev);
            }
        }
        let _ = fs::remove_dir(path);
    } else {
        let _ = fs::remove_file(path);
    }
}

/// A per-test scratch directory, owned by the attacking user so that only
/// the sandbox (never plain file permissions) stands in the attack's way.
pub struct Scratch {
    path: PathBuf,
    owner: u32,
}

impl Scratch {
    /// A fresh directory owned by `owner`.
    pub fn new(owner: User) -> Scratch {
        let path = unique_dir("scratch");
        chown(&path, Some(owner.uid()), Some(owner.uid())).unwrap();
        Scratch {
            path,
            owner: owner.uid(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside (not created).
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Create directory `rel` (and parents), owned by the owner, mode 0755.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        chown(&p, Some(self.owner), Some(self.owner)).unwrap();
        p
    }

    /// Create file `rel` with `content`, owned by the owner, mode 0644.
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.join(rel);
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        chown(&p, Some(self.owner), Some(self.owner)).unwrap();
        p
    }

    /// Create symlink `rel` pointing to `target`, owned by the owner.
    pub fn symlink(&self, target: &str, rel: &str) -> PathBuf {
        let p = self.join(rel);
        std::os::unix::fs::symlink(target, &p).unwrap();
        std::os::unix::fs::lchown(&p, Some(self.owner), Some(self.owner)).unwrap();
        p
    }

    /// Copy one of the compiled programs to `rel`, executable.
    pub fn program(&self, rel: &str, prog: &str) -> PathBuf {
        let p = self.join(rel);
        fs::copy(bins().prog(prog), &p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        chown(&p, Some(self.owner), Some(self.owner)).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

/// A unique word: tags processes, names keys, fills secrets.
pub fn nonce(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{what}{}x{n}x{t:08x}", std::process::id())
}
