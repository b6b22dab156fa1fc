//! Masks by overlay: the paths of `fs_masked` hidden by name.
//!
//! A mount over the masked path itself would hold its directory entry
//! only: when a process outside the sandbox renames a file over the path
//! (`passwd` with `/etc/shadow`, an editor saving), the kernel detaches
//! every mount on the old entry, in every mount namespace, and the sandbox
//! would see the new file. So the directory holding the masked paths gets
//! a read-only overlay instead: its top layer, a `tmpfs` of the
//! namespace's own, holds a whiteout (a character device 0/0) for each
//! masked name, and the directory itself is the layer below. A name is
//! looked up in the top layer first, whatever the host does to the
//! directory below: a masked path is not found (`ENOENT`), as a file or as
//! a directory.
//!
//! - Masks are grouped: one overlay over the highest directory holding a
//!   masked path (`/etc` for `/etc/shadow` and `/etc/ssl/private`; the top
//!   layer then holds `ssl/` with a whiteout `private` in it), unless a
//!   mount point lies between, which gets its own overlay.
//! - An overlay shows its lower directory's own file system only: the
//!   mount points below it (a container's `/etc/hosts`), and the writable
//!   grants below it (the overlay is read-only), are bound again on top,
//!   from descriptors opened before it covered them.
//! - Landlock skips a covered mount point when it walks up a path: the
//!   grants of the overlaid directory and below it are given again on the
//!   overlay (`MountPlan::targets`).
//! - A mask hides one path. Another mount showing the same directory
//!   elsewhere (a bind mount of it, or of a directory above it) would
//!   show the masked path there, a Landlock grant holding the directory's
//!   inode whatever the mount: such masks are refused
//!   ([`shown_elsewhere`]).
//! - What was resolved before the overlay does not pass through it: the
//!   working directory is entered again by its path after the mounts, and
//!   a standard stream that is a directory is refused (`child::run`).

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::io::Errno;

use super::mounts::{MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC};
use crate::error::Error;
use crate::sys::child::close;
use crate::sys::ns as sys;

/// The most paths one overlay binds again on top (the child keeps their
/// descriptors on its stack).
pub(crate) const MAX_REBINDS: usize = 32;

/// One overlay, as planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overlay {
    /// The directory it covers.
    pub(crate) root: PathBuf,
    /// Directories of the top layer, relative, parents first (those that
    /// hold a masked path further down).
    pub(crate) dirs: Vec<PathBuf>,
    /// Whiteouts of the top layer, relative: the masked paths.
    pub(crate) hidden: Vec<PathBuf>,
    /// Paths below `root` bound again on top, topmost only: mount points
    /// and writable grants.
    pub(crate) rebinds: Vec<PathBuf>,
}

/// Whether `path` is `outer` or below it. Both are absolute and
/// canonical (masks and writable grants are resolved, mount points are
/// as the kernel shows them), so bytes compare as components would, at a
/// fraction of `Path::starts_with`'s cost (this runs at every start as
/// root).
pub(super) fn within(path: &Path, outer: &Path) -> bool {
    let (p, o) = (path.as_os_str().as_bytes(), outer.as_os_str().as_bytes());
    let o = o.strip_suffix(b"/").unwrap_or(o);
    p.strip_prefix(o)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
}

/// Groups `masks` (absolute, canonical paths) into overlays. `keep` are
/// the paths that must show through unchanged: mount points and writable
/// grants (absolute, canonical). A mask below another mask is dropped; a
/// path with no parent (`/`) cannot be masked (refused before:
/// `Sandbox::new`).
pub(crate) fn plan(masks: &[PathBuf], keep: &[PathBuf]) -> Vec<Overlay> {
    let masks: Vec<&PathBuf> = masks
        .iter()
        .filter(|m| !masks.iter().any(|o| o != *m && within(m, o)))
        .filter(|m| m.parent().is_some())
        .collect();
    let parents: Vec<&Path> = masks.iter().filter_map(|m| m.parent()).collect();
    // Only the keep paths below some mask's directory matter.
    let keep: Vec<&PathBuf> = keep
        .iter()
        .filter(|k| parents.iter().any(|p| within(k, p) || within(p, k)))
        .collect();
    // A keep path strictly below `outer` holding `inner` (or `inner` itself).
    let split = |outer: &Path, inner: &Path| {
        keep.iter()
            .any(|k| k.as_path() != outer && within(k, outer) && within(inner, k))
    };
    // Each mask's overlay root: the highest directory holding a mask
    // above its own, with no mount point in between.
    let root_of = |p: &Path| -> PathBuf {
        parents
            .iter()
            .filter(|q| within(p, q) && !split(q, p))
            .min_by_key(|q| q.as_os_str().len())
            .map_or(p, |q| q)
            .to_path_buf()
    };
    let rooted: Vec<(PathBuf, &PathBuf)> = masks
        .iter()
        .filter_map(|m| Some((root_of(m.parent()?), *m)))
        .collect();
    let mut roots: Vec<PathBuf> = rooted.iter().map(|(r, _)| r.clone()).collect();
    roots.sort();
    roots.dedup();
    roots
        .into_iter()
        .map(|root| {
            let mut dirs: Vec<PathBuf> = Vec::new();
            let mut hidden = Vec::new();
            for (_, m) in rooted.iter().filter(|(r, _)| *r == root) {
                let Ok(rel) = m.strip_prefix(&root) else {
                    continue;
                };
                let mut above = PathBuf::new();
                let comps: Vec<Component<'_>> = rel.components().collect();
                for c in &comps[..comps.len().saturating_sub(1)] {
                    above.push(c);
                    if !dirs.contains(&above) {
                        dirs.push(above.clone());
                    }
                }
                hidden.push(rel.to_path_buf());
            }
            let mut rebinds: Vec<PathBuf> = keep
                .iter()
                .filter(|k| k.as_path() != root && within(k, &root))
                .filter(|k| !masks.iter().any(|m| within(k, m)))
                .map(|k| k.to_path_buf())
                .collect();
            rebinds.sort();
            rebinds.dedup();
            let topmost: Vec<PathBuf> = rebinds
                .iter()
                .filter(|k| !rebinds.iter().any(|o| o != *k && within(k, o)))
                .cloned()
                .collect();
            Overlay {
                root,
                dirs,
                hidden,
                rebinds: topmost,
            }
        })
        .collect()
}

/// One mount of this namespace, from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Its file system's device (`major:minor`).
    pub(crate) dev: String,
    /// The directory of that file system it shows.
    pub(crate) root: PathBuf,
    /// Where it is mounted.
    pub(crate) point: PathBuf,
}

/// The mounts of this mount namespace (`/proc/self/mountinfo`, read
/// whole, in one large buffer: the kernel renders the table at each read).
pub(crate) fn mount_table() -> Result<Vec<Mount>, Error> {
    use std::io::Read;
    let read = || -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(16 * 1024);
        std::fs::File::open("/proc/self/mountinfo")?.read_to_end(&mut buf)?;
        Ok(buf)
    };
    let buf = read().map_err(Error::io("/proc/self/mountinfo".to_owned()))?;
    Ok(parse_mountinfo(&buf))
}

/// The mounts of `mountinfo`'s text: `ID PARENT MAJ:MIN ROOT POINT ...`,
/// paths with the kernel's octal escapes of space, tab, newline and
/// backslash.
fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    let path = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(b)));
    text.split(|&b| b == b'\n')
        .filter_map(|l| {
            let mut t = l.split(|&b| b == b' ').skip(2);
            let (dev, root, point) = (t.next()?, t.next()?, t.next()?);
            Some(Mount {
                dev: String::from_utf8_lossy(dev).into_owned(),
                root: path(root),
                point: path(point),
            })
        })
        .collect()
}

/// The first masked path that another mount shows elsewhere, with that
/// place: a mount of the same file system whose root holds it (a bind
/// mount of its directory, or of a directory above it, or of itself). A
/// mask hides one path, and a Landlock grant of the directory holds its
/// inode whatever the mount: the other place would show the path.
pub(crate) fn shown_elsewhere(masks: &[PathBuf], table: &[Mount]) -> Option<(PathBuf, PathBuf)> {
    for m in masks {
        // The mount the path is on: the deepest mount point above it (the
        // last one mounted there, when several are).
        let Some((at, on)) = table
            .iter()
            .enumerate()
            .filter(|(_, t)| within(m, &t.point))
            .max_by_key(|(i, t)| (t.point.as_os_str().len(), *i))
        else {
            continue;
        };
        let Ok(rel) = m.strip_prefix(&on.point) else {
            continue;
        };
        let inside = on.root.join(rel);
        for (i, t) in table.iter().enumerate() {
            if i == at || t.dev != on.dev || !within(&inside, &t.root) {
                continue;
            }
            if let Ok(below) = inside.strip_prefix(&t.root) {
                return Some((m.clone(), t.point.join(below)));
            }
        }
    }
    None
}

fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let octal = s
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (s[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// An overlay as the child makes it: every string prepared.
#[derive(Debug)]
pub(crate) struct ChildOverlay {
    /// The `tmpfs` options of the top layer (its root shows the covered
    /// directory's mode, and owner where it can be mapped).
    pub(crate) tmpfs_data: CString,
    /// Directories of the top layer, relative, parents first, with modes.
    pub(crate) dirs: Vec<(CString, u32)>,
    /// Whiteouts of the top layer, relative.
    pub(crate) hidden: Vec<CString>,
    /// Absolute paths bound again on top.
    pub(crate) rebinds: Vec<CString>,
}

impl Overlay {
    /// Its strings for the child. `owner`: whether the top layer's root may
    /// be given the covered directory's owner (no user namespace: every
    /// id maps).
    pub(crate) fn prepare(&self, owner: bool) -> Result<ChildOverlay, Error> {
        let c = |field: &'static str, p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
                field,
                value: p.display().to_string(),
                why: "contains a NUL byte".to_owned(),
            })
        };
        if self.rebinds.len() > MAX_REBINDS {
            return Err(Error::Invalid {
                field: "fs_masked",
                value: self.root.display().to_string(),
                why: format!(
                    "holds {} mount points and writable paths to show through a mask (at most \
                     {MAX_REBINDS})",
                    self.rebinds.len()
                ),
            });
        }
        let stat = |p: &Path| {
            rustix::fs::stat(p).map_err(|errno| Error::Path {
                field: "fs_masked",
                path: p.display().to_string(),
                errno,
            })
        };
        let st = stat(&self.root)?;
        let mut data = format!("mode={:o}", st.st_mode & 0o7777);
        if owner {
            data.push_str(&format!(",uid={},gid={}", st.st_uid, st.st_gid));
        }
        let dirs = self
            .dirs
            .iter()
            .map(|d| {
                Ok((
                    c("fs_masked", d)?,
                    stat(&self.root.join(d))?.st_mode & 0o7777,
                ))
            })
            .collect::<Result<_, Error>>()?;
        Ok(ChildOverlay {
            tmpfs_data: CString::new(data).map_err(|_| Error::os("mask plan")(Errno::INVAL))?,
            dirs,
            hidden: self
                .hidden
                .iter()
                .map(|h| c("fs_masked", h))
                .collect::<Result<_, _>>()?,
            rebinds: self
                .rebinds
                .iter()
                .map(|r| c("fs_masked", r))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Mounts the overlay `o` over `root`, in the child (raw system calls on
/// prepared strings, nothing allocated).
pub(crate) fn mount(root: &std::ffi::CStr, o: &ChildOverlay) -> Result<(), Errno> {
    let mut fds: [RawFd; MAX_REBINDS + 2] = [-1; MAX_REBINDS + 2];
    let result = mount_with(root, o, &mut fds);
    for fd in fds {
        if fd >= 0 {
            close(fd);
        }
    }
    result
}

fn mount_with(
    root: &std::ffi::CStr,
    o: &ChildOverlay,
    fds: &mut [RawFd; MAX_REBINDS + 2],
) -> Result<(), Errno> {
    if o.rebinds.len() > MAX_REBINDS {
        return Err(Errno::TOOBIG);
    }
    // Everything the overlay will cover, held first: the directory (its
    // lower layer) and what is bound again on top.
    fds[0] = sys::open_dir(root)?;
    for (i, r) in o.rebinds.iter().enumerate() {
        fds[2 + i] = sys::open_path(r)?;
    }
    sys::mount(
        Some(c"tmpfs"),
        root,
        Some(c"tmpfs"),
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        Some(&o.tmpfs_data),
    )?;
    fds[1] = sys::open_dir(root)?;
    for (d, mode) in &o.dirs {
        sys::mkdir_at(fds[1], d, *mode)?;
    }
    for h in &o.hidden {
        sys::whiteout_at(fds[1], h)?;
    }
    let mut data = sys::StackStr::new();
    data.push(b"lowerdir=")
        .fd_path(fds[1])
        .push(b":")
        .fd_path(fds[0]);
    sys::mount(
        Some(c"overlay"),
        root,
        Some(c"overlay"),
        MS_RDONLY,
        Some(data.as_cstr()?),
    )?;
    for (i, r) in o.rebinds.iter().enumerate() {
        let mut src = sys::StackStr::new();
        src.fd_path(fds[2 + i]);
        sys::mount(Some(src.as_cstr()?), r, None, MS_BIND | MS_REC, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn masks_group_under_the_highest_parent() {
        let masks = [
            p("/etc/shadow"),
            p("/etc/ssl/private"),
            p("/etc/security/opasswd"),
            p("/srv/a/key"),
            p("/etc/ssl/private/inner"),
        ];
        let keep = [p("/etc/hosts"), p("/etc"), p("/"), p("/etc/shadow")];
        let o = plan(&masks, &keep);
        assert_eq!(o.len(), 2, "{o:?}");
        assert_eq!(o[0].root, p("/etc"));
        assert_eq!(o[0].dirs, [p("ssl"), p("security")]);
        assert_eq!(
            o[0].hidden,
            [p("shadow"), p("ssl/private"), p("security/opasswd")]
        );
        // The masked mount point is hidden, not bound again.
        assert_eq!(o[0].rebinds, [p("/etc/hosts")]);
        assert_eq!(o[1].root, p("/srv/a"));
        assert_eq!(o[1].hidden, [p("key")]);
        assert!(o[1].rebinds.is_empty());
    }

    /// A mount point between two masks' directories splits them: the
    /// deeper one gets an overlay of its own, made once the mount point is
    /// bound again on the first.
    #[test]
    fn a_mount_point_between_splits_the_overlay() {
        let masks = [p("/etc/shadow"), p("/etc/ssl/private")];
        let keep = [p("/etc/ssl"), p("/etc/ssl/certs/x")];
        let o = plan(&masks, &keep);
        assert_eq!(o.len(), 2, "{o:?}");
        assert_eq!(o[0].root, p("/etc"));
        assert_eq!(o[0].hidden, [p("shadow")]);
        assert!(o[0].dirs.is_empty());
        assert_eq!(o[0].rebinds, [p("/etc/ssl")]);
        assert_eq!(o[1].root, p("/etc/ssl"));
        assert_eq!(o[1].hidden, [p("private")]);
        assert_eq!(o[1].rebinds, [p("/etc/ssl/certs/x")]);
    }

    #[test]
    fn mounts_showing_a_mask_elsewhere_are_found() {
        let text = b"22 1 254:0 / / rw - ext4 /dev/vda rw\n\
                     30 22 0:5 / /mnt/a\\040b rw - tmpfs tmpfs rw\n\
                     31 22 254:0 /run/x /run/x rw - ext4 /dev/vda rw\n\
                     32 22 254:0 /etc /srv/etc2 rw - ext4 /dev/vda rw\n";
        let table = parse_mountinfo(text);
        assert_eq!(table.len(), 4);
        assert_eq!(table[1].point, p("/mnt/a b"));
        assert_eq!(table[3].root, p("/etc"));
        let masks = [p("/etc/shadow")];
        assert_eq!(
            shown_elsewhere(&masks, &table),
            Some((p("/etc/shadow"), p("/srv/etc2/shadow")))
        );
        // Without the bind of /etc, nothing (the /run/x bind holds no mask).
        assert_eq!(shown_elsewhere(&masks, &table[..3]), None);
        // A mask on the tmpfs: another file system.
        assert_eq!(shown_elsewhere(&[p("/mnt/a b/k")], &table), None);
        assert!(mount_table().unwrap().iter().any(|m| m.point == p("/")));
    }

    #[test]
    fn stack_strings_name_descriptors() {
        let mut s = sys::StackStr::new();
        s.push(b"lowerdir=").fd_path(7).push(b":").fd_path(1234);
        assert_eq!(
            s.as_cstr().unwrap().to_bytes(),
            b"lowerdir=/proc/self/fd/7:/proc/self/fd/1234"
        );
        let mut long = sys::StackStr::new();
        for _ in 0..10 {
            long.push(b"0123456789");
        }
        assert_eq!(long.as_cstr().unwrap_err(), Errno::NAMETOOLONG);
    }
}
