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

use super::overlay::ChildOverlay;
use crate::error::Error;
use crate::tmpdir::TempDir;

/// `MS_RDONLY`.
pub(super) const MS_RDONLY: u64 = 0x1;
/// `MS_NOSUID`.
pub(super) const MS_NOSUID: u64 = 0x2;
/// `MS_NODEV`.
pub(super) const MS_NODEV: u64 = 0x4;
/// `MS_NOEXEC`.
pub(super) const MS_NOEXEC: u64 = 0x8;
/// `MS_REMOUNT`.
const MS_REMOUNT: u64 = 0x20;
/// `MS_NOATIME`.
const MS_NOATIME: u64 = 0x400;
/// `MS_NODIRATIME`.
const MS_NODIRATIME: u64 = 0x800;
/// `MS_BIND`.
pub(super) const MS_BIND: u64 = 0x1000;
/// `MS_REC`.
pub(super) const MS_REC: u64 = 0x4000;
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
    /// `target` hidden by name (see [`MountPlan::mask`]).
    Mask {
        target: PathBuf,
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
    /// Masks: an overlay over `target` (the other fields unused).
    pub(crate) overlay: Option<ChildOverlay>,
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

    /// Hides `target` by name: a read-only overlay over its directory,
    /// whose top layer holds a whiteout of it (see [`super::overlay`]).
    /// Masks are made before every other mount. The directory is shown
    /// read-only: callers mask only paths whose directory the sandbox may
    /// not write (`Sandbox::new` refuses the others); the writable paths
    /// below it are bound again on top.
    pub(crate) fn mask(&mut self, target: impl Into<PathBuf>) {
        self.ops.push(Op::Mask {
            target: target.into(),
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

    /// Every new mount whose grants must be given again: a bind's or a
    /// fresh `/proc`'s target, and the directory of a mask (the overlay
    /// over it covers the host's inodes the grants name; Landlock skips a
    /// covered mount point when it walks up).
    pub(crate) fn targets(&self) -> impl Iterator<Item = PathBuf> + '_ {
        let proc = self.proc_target();
        self.ops.iter().filter_map(move |o| match o {
            Op::Proc => Some(proc.clone()),
            Op::Bind { target, .. } => Some(target.clone()),
            Op::Mask { target } => target.parent().map(Path::to_path_buf),
        })
    }

    /// The child's operations (the first makes `/` private, the masks'
    /// overlays come next), their descriptions, and the directory of
    /// generated files. `writable` are the launch's writable grants: below
    /// a mask's overlay they are bound again on top, as are the mount
    /// points there.
    pub(crate) fn prepare(&self, writable: &[PathBuf]) -> Result<PreparedMounts, Error> {
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
            overlay: None,
        });
        what.push("making / private".to_owned());
        let masks: Vec<PathBuf> = self
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::Mask { target } => Some(target.clone()),
                _ => None,
            })
            .collect();
        if !masks.is_empty() {
            let table = super::overlay::mount_table()?;
            if let Some((masked, other)) = super::overlay::shown_elsewhere(&masks, &table) {
                return Err(Error::Namespace {
                    what: format!(
                        "masking {}: another mount shows it at {} (a mask hides one path; use \
                         fs_denied)",
                        masked.display(),
                        other.display()
                    ),
                    errno: Errno::PERM,
                });
            }
            let mut keep: Vec<PathBuf> = table.into_iter().map(|t| t.point).collect();
            // The writable grants in a mask's directory, bound again where
            // they lead: resolved first, so that one given by a link from
            // elsewhere into the directory is found there too. Only those
            // on a masked directory's file system can be below it without
            // a mount point between (which is bound again anyway): the
            // others are not resolved.
            let dirs: Vec<&Path> = masks.iter().filter_map(|m| m.parent()).collect();
            let devs: Vec<u64> = dirs.iter().filter_map(|d| device(d)).collect();
            keep.extend(
                writable
                    .iter()
                    .filter(|w| device(w).is_some_and(|dev| devs.contains(&dev)))
                    .map(|w| std::fs::canonicalize(w).unwrap_or_else(|_| w.clone()))
                    .filter(|w| dirs.iter().any(|d| super::overlay::within(w, d))),
            );
            let owner = !super::needs_user_namespace();
            for o in super::overlay::plan(&masks, &keep) {
                out.push(ChildMount {
                    source: None,
                    content: None,
                    target: c("masked path", &o.root)?,
                    fstype: None,
                    flags: 0,
                    data: None,
                    overlay: Some(o.prepare(owner)?),
                });
                what.push(format!("masking in {}", o.root.display()));
            }
        }
        let mut files: Option<TempDir> = None;
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Mask { .. } => {}
                Op::Proc => {
                    out.push(ChildMount {
                        source: Some(lit("proc")?),
                        content: None,
                        target: c("procfs mount point", &self.proc_target())?,
                        fstype: Some(lit("proc")?),
                        flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        data: None,
                        overlay: None,
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
                        overlay: None,
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
                        overlay: None,
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

/// The device of the file system holding `path` (links followed).
fn device(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.dev())
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
        let PreparedMounts { ops, what, files } = m.prepare(&[]).unwrap();
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
    fn masks_become_one_overlay_made_first() {
        let dir = std::env::temp_dir().join(format!("sandlock-mplan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub/x")).unwrap();
        std::fs::create_dir_all(dir.join("sub/w")).unwrap();
        std::fs::write(dir.join("secret"), b"s").unwrap();
        let mut m = MountPlan::default();
        m.bind_content("/etc/hostname", b"box\n".to_vec());
        m.mask(dir.join("secret"));
        m.mask(dir.join("sub/x"));
        assert!(m.has_masks());
        // The masks' directories' grants are given again on the overlays.
        let targets: Vec<PathBuf> = m.targets().collect();
        assert_eq!(targets[1..], [dir.clone(), dir.join("sub")]);
        let PreparedMounts { ops, what, .. } = m.prepare(&[dir.join("sub/w")]).unwrap();
        assert_eq!(ops[0].flags, MS_REC | MS_PRIVATE);
        // The overlay before the bind, which would otherwise be covered.
        let o = ops[1].overlay.as_ref().unwrap();
        assert_eq!(ops[1].target.to_str().unwrap(), dir.to_str().unwrap());
        assert_eq!(what[1], format!("masking in {}", dir.display()));
        let names = |v: &[CString]| {
            v.iter()
                .map(|c| c.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&o.hidden), ["secret", "sub/x"]);
        assert_eq!(o.dirs.len(), 1);
        assert_eq!(o.dirs[0].0.to_str().unwrap(), "sub");
        assert_eq!(names(&o.rebinds), [dir.join("sub/w").to_str().unwrap()]);
        assert!(o.tmpfs_data.to_str().unwrap().starts_with("mode=7"));
        assert!(ops[2].overlay.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
