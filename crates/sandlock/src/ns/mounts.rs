//! The mount plan: what a launch mounts in its own mount namespace.
//!
//! Features fill it before the fork; [`MountPlan::prepare`] writes the
//! generated files and turns every operation into C strings and flags for
//! the child. A memfd cannot be bind-mounted (it lives on an internal mount
//! the kernel refuses as a bind source), nor can a file without a name.
//! So the child mounts a tmpfs on a fresh `0700` directory of the caller's
//! temporary directory (in its own namespace: nothing outside ever sees
//! that tmpfs), writes each generated file there, binds it read-only over
//! its target, and detaches the tmpfs: the files are then reachable only
//! through their read-only mounts, and no other process could change them
//! between their writing and their mount. sandlock also writes a named
//! copy of each into that directory, bound instead where a tmpfs cannot be
//! mounted, and removed once the child has run.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::StatVfsMountFlags;
use rustix::io::Errno;

use crate::error::Error;
use crate::tmpdir::TempDir;

/// `MS_RDONLY`.
const MS_RDONLY: u64 = 0x1;
/// `MS_NOSUID`.
const MS_NOSUID: u64 = 0x2;
/// `MS_NODEV`.
const MS_NODEV: u64 = 0x4;
/// `MS_NOEXEC`.
const MS_NOEXEC: u64 = 0x8;
/// `MS_REMOUNT`.
const MS_REMOUNT: u64 = 0x20;
/// `MS_NOATIME`.
const MS_NOATIME: u64 = 0x400;
/// `MS_NODIRATIME`.
const MS_NODIRATIME: u64 = 0x800;
/// `MS_BIND`.
const MS_BIND: u64 = 0x1000;
/// `MS_REC`.
const MS_REC: u64 = 0x4000;
/// `MS_PRIVATE`.
const MS_PRIVATE: u64 = 1 << 18;
/// `MS_RELATIME`.
const MS_RELATIME: u64 = 1 << 21;

/// Where a bind mount's file comes from.
#[derive(Clone, Debug)]
#[allow(dead_code)] // built by the bind methods, which other features call
enum Source {
    /// An existing file or directory.
    Path(PathBuf),
    /// Bytes, written to a private file before the fork.
    Content(Vec<u8>),
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // `Bind` is built by the bind methods
enum Op {
    Proc,
    Bind {
        source: Source,
        target: PathBuf,
    },
    /// An empty read-only view over `target` (see [`MountPlan::mask`]).
    Mask {
        target: PathBuf,
        dir: bool,
    },
}

/// Mounts for a launch, in the order they were asked for. Empty: no mount
/// namespace.
#[derive(Clone, Debug, Default)]
pub(crate) struct MountPlan {
    ops: Vec<Op>,
    /// The new root's host path (`chroot`): a fresh procfs goes on its
    /// `/proc` (bind targets are given as host paths already).
    root: Option<PathBuf>,
}

/// One mount operation, as the child makes it.
#[derive(Debug)]
pub(crate) struct ChildMount {
    /// `mount`'s source (`None`: a remount or propagation change).
    pub(crate) source: Option<CString>,
    /// Generated content and a directory: the child writes the bytes to a
    /// file without a name there (`O_TMPFILE`) and binds that, so that
    /// nothing else can reach or change the file between its creation and
    /// the mount. `source`, a named copy, is bound instead where the file
    /// system has no `O_TMPFILE`.
    pub(crate) content: Option<(CString, Vec<u8>)>,
    /// `mount`'s target.
    pub(crate) target: CString,
    /// `mount`'s file-system type.
    pub(crate) fstype: Option<CString>,
    /// `MS_*` flags.
    pub(crate) flags: u64,
    /// `mount`'s data: the file system's options.
    pub(crate) data: Option<CString>,
}

impl MountPlan {
    /// Mounts a fresh procfs on `/proc`: it shows the sandbox's processes
    /// only (the launch gets a PID namespace). Asked twice, done once.
    /// Under a new root, only where the root has a `/proc` directory
    /// (not a symbolic link): without one the sandbox has no `/proc`.
    pub(crate) fn fresh_proc(&mut self) {
        if self.root.is_some()
            && !std::fs::symlink_metadata(self.proc_target()).is_ok_and(|m| m.is_dir())
        {
            return;
        }
        if !self.has_proc() {
            self.ops.push(Op::Proc);
        }
    }

    /// Binds a read-only file holding `content` over `target`, which must
    /// exist (a bind mount needs a mount point).
    // The API other features fill (issue 8: /etc/hostname, /proc/cpuinfo,
    // /sys/devices/system/cpu/online; issue 7: /etc/hosts).
    #[allow(dead_code)]
    pub(crate) fn bind_content(&mut self, target: impl Into<PathBuf>, content: impl Into<Vec<u8>>) {
        self.ops.push(Op::Bind {
            source: Source::Content(content.into()),
            target: target.into(),
        });
    }

    /// Binds the existing file or directory `source` over `target`,
    /// read-only.
    #[allow(dead_code)]
    pub(crate) fn bind_path(&mut self, source: impl Into<PathBuf>, target: impl Into<PathBuf>) {
        self.ops.push(Op::Bind {
            source: Source::Path(source.into()),
            target: target.into(),
        });
    }

    /// Hides what `target` holds: a directory gets an empty read-only
    /// tmpfs over it (the first one; the next ones a bind of that first),
    /// anything else `/dev/null`, which reads empty. `dir` says which
    /// `target` is (a mount must match its mount point's kind).
    ///
    /// What is written to a masked file goes to `/dev/null`: callers mask
    /// only paths the sandbox cannot write (`Sandbox::new` refuses a mask
    /// under a writable path).
    pub(crate) fn mask(&mut self, target: impl Into<PathBuf>, dir: bool) {
        self.ops.push(Op::Mask {
            target: target.into(),
            dir,
        });
    }

    /// Mounts under the new root at `root` (a host path): see
    /// [`MountPlan::proc_target`].
    pub(crate) fn set_root(&mut self, root: PathBuf) {
        self.root = Some(root);
    }

    /// Where a fresh procfs goes: `/proc`, or the new root's `/proc`.
    pub(crate) fn proc_target(&self) -> PathBuf {
        match &self.root {
            Some(r) => r.join("proc"),
            None => PathBuf::from("/proc"),
        }
    }

    /// Whether nothing is to be mounted.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Whether any path is masked.
    pub(crate) fn has_masks(&self) -> bool {
        self.ops.iter().any(|o| matches!(o, Op::Mask { .. }))
    }

    /// Whether a fresh `/proc` is asked for.
    pub(crate) fn has_proc(&self) -> bool {
        self.ops.iter().any(|o| matches!(o, Op::Proc))
    }

    /// Every target that shows something to grant: not the masks (a
    /// path under a mask is hidden, not granted again).
    pub(crate) fn targets(&self) -> impl Iterator<Item = PathBuf> + '_ {
        let proc = self.proc_target();
        self.ops.iter().filter_map(move |o| match o {
            Op::Proc => Some(proc.clone()),
            Op::Bind { target, .. } => Some(target.clone()),
            Op::Mask { .. } => None,
        })
    }

    /// The child's operations (the first makes `/` private), their
    /// descriptions, and the directory of generated files.
    pub(crate) fn prepare(&self) -> Result<PreparedMounts, Error> {
        let mut out = Vec::new();
        let mut what = Vec::new();
        if self.ops.is_empty() {
            return Ok(PreparedMounts::default());
        }
        let c = |field: &'static str, p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
                field,
                value: p.display().to_string(),
                why: "contains a NUL byte".to_owned(),
            })
        };
        let lit = |s: &str| CString::new(s).map_err(|_| Error::os("mount plan")(Errno::INVAL));
        out.push(ChildMount {
            source: None,
            content: None,
            target: lit("/")?,
            fstype: None,
            flags: MS_REC | MS_PRIVATE,
            data: None,
        });
        what.push("making / private".to_owned());
        let mut files: Option<TempDir> = None;
        // The first masked directory: its empty tmpfs is bound over the
        // next ones (a bind costs a quarter of a new tmpfs).
        let mut empty_dir: Option<CString> = None;
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Mask { target, dir } => {
                    let t = c("masked path", target)?;
                    let (source, fstype, flags, data) = match (dir, &empty_dir) {
                        (false, _) => (lit("/dev/null")?, None, MS_BIND, None),
                        (true, Some(first)) => (first.clone(), None, MS_BIND, None),
                        (true, None) => {
                            empty_dir = Some(t.clone());
                            (
                                lit("tmpfs")?,
                                Some(lit("tmpfs")?),
                                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                // Shown as what it is: empty and read-only
                                // (a tmpfs root is 1777 otherwise).
                                Some(lit("mode=555")?),
                            )
                        }
                    };
                    out.push(ChildMount {
                        source: Some(source),
                        content: None,
                        target: t,
                        fstype,
                        flags,
                        data,
                    });
                    what.push(format!("masking {}", target.display()));
                }
                Op::Proc => {
                    out.push(ChildMount {
                        source: Some(lit("proc")?),
                        content: None,
                        target: c("procfs mount point", &self.proc_target())?,
                        fstype: Some(lit("proc")?),
                        flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        data: None,
                    });
                    what.push("a fresh /proc".to_owned());
                }
                Op::Bind { source, target } => {
                    let mut content = None;
                    let src = match source {
                        Source::Path(p) => p.clone(),
                        Source::Content(bytes) => {
                            if files.is_none() {
                                files = Some(TempDir::create()?);
                            }
                            let dir = files.as_ref().map(TempDir::path).unwrap_or(Path::new("/"));
                            let p = dir.join(format!("content-{i}"));
                            std::fs::write(&p, bytes).map_err(Error::io(format!(
                                "generated file for {}",
                                target.display()
                            )))?;
                            content = Some((c("generated file directory", dir)?, bytes.clone()));
                            p
                        }
                    };
                    let locked = locked_flags(&src).map_err(|errno| Error::Path {
                        field: "bind mount source",
                        path: src.display().to_string(),
                        errno,
                    })?;
                    out.push(ChildMount {
                        source: Some(c("bind mount source", &src)?),
                        content,
                        target: c("bind mount target", target)?,
                        fstype: None,
                        flags: MS_BIND,
                        data: None,
                    });
                    what.push(format!("a bind mount on {}", target.display()));
                    // Read-only, keeping the flags the kernel locks on a
                    // mount inherited from a more privileged namespace.
                    out.push(ChildMount {
                        source: None,
                        content: None,
                        target: c("bind mount target", target)?,
                        fstype: None,
                        flags: MS_BIND | MS_REMOUNT | MS_RDONLY | locked,
                        data: None,
                    });
                    what.push(format!("making {} read-only", target.display()));
                }
            }
        }
        Ok(PreparedMounts {
            ops: out,
            what,
            files,
        })
    }
}

/// A prepared mount plan.
#[derive(Debug, Default)]
pub(crate) struct PreparedMounts {
    /// The child's operations.
    pub(crate) ops: Vec<ChildMount>,
    /// A description of each, for errors.
    pub(crate) what: Vec<String>,
    /// The directory of generated files (removed when dropped).
    pub(crate) files: Option<TempDir>,
}

/// The `MS_*` flags of the mount holding `path` that a remount must keep.
fn locked_flags(path: &Path) -> Result<u64, Errno> {
    let st = rustix::fs::statvfs(path)?;
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms) in [
        (StatVfsMountFlags::NOSUID, MS_NOSUID),
        (StatVfsMountFlags::NODEV, MS_NODEV),
        (StatVfsMountFlags::NOEXEC, MS_NOEXEC),
        (StatVfsMountFlags::NOATIME, MS_NOATIME),
        (StatVfsMountFlags::NODIRATIME, MS_NODIRATIME),
        (StatVfsMountFlags::RELATIME, MS_RELATIME),
    ] {
        if f.contains(st_flag) {
            out |= ms;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_prepares_private_root_then_ops() {
        let mut m = MountPlan::default();
        m.fresh_proc();
        m.fresh_proc();
        m.bind_content("/etc/hostname", b"box\n".to_vec());
        let PreparedMounts { ops, what, files } = m.prepare().unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].flags, MS_REC | MS_PRIVATE);
        assert_eq!(
            ops[1].fstype.as_deref().map(|c| c.to_bytes()),
            Some(&b"proc"[..])
        );
        assert_eq!(ops[2].flags, MS_BIND);
        assert_ne!(ops[3].flags & MS_RDONLY, 0);
        assert_eq!(what.len(), 4);
        let dir = files.unwrap();
        let src = ops[2].source.as_ref().unwrap().to_str().unwrap().to_owned();
        assert!(src.starts_with(dir.path().to_str().unwrap()));
        assert_eq!(std::fs::read(&src).unwrap(), b"box\n");
        let (cdir, bytes) = ops[2].content.as_ref().unwrap();
        assert_eq!(cdir.to_str().unwrap(), dir.path().to_str().unwrap());
        assert_eq!(bytes, b"box\n");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn masks_mount_dev_null_then_one_tmpfs_bound_again() {
        let mut m = MountPlan::default();
        m.mask("/etc/shadow", false);
        m.mask("/etc/ssl/private", true);
        m.mask("/etc/sudoers.d", true);
        assert!(m.has_masks());
        // Nothing under a mask is granted again.
        assert_eq!(m.targets().count(), 0);
        let PreparedMounts { ops, what, files } = m.prepare().unwrap();
        assert!(files.is_none());
        let s = |c: &Option<CString>| c.as_ref().map(|c| c.to_str().unwrap().to_owned());
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].flags, MS_REC | MS_PRIVATE);
        assert_eq!(s(&ops[1].source).as_deref(), Some("/dev/null"));
        assert_eq!(ops[1].flags, MS_BIND);
        assert_eq!(s(&ops[2].fstype).as_deref(), Some("tmpfs"));
        assert_eq!(s(&ops[2].data).as_deref(), Some("mode=555"));
        assert_ne!(ops[2].flags & MS_RDONLY, 0);
        assert_eq!(s(&ops[3].source).as_deref(), Some("/etc/ssl/private"));
        assert_eq!(ops[3].target.to_str().unwrap(), "/etc/sudoers.d");
        assert_eq!(ops[3].flags, MS_BIND);
        assert_eq!(what[3], "masking /etc/sudoers.d");
    }
}
