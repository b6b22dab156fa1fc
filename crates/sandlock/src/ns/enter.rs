//! The child's side of the namespace layer: raw system calls only, on data
//! [`super::NsPlan::prepare`] made before the fork.

use std::ffi::CStr;
use std::os::fd::RawFd;

use rustix::io::Errno;

use super::mounts::{MS_NODEV, MS_NOSUID};
use super::{ChildMount, ChildNs};
use crate::error::SetupStep;
use crate::sys::child::close;
use crate::sys::ns as sys;

/// A failed step: what, which operation (index into the plan's
/// descriptions, for mounts), and the errno.
pub(crate) type Failure = (SetupStep, u32, Errno);

const SETGROUPS: &std::ffi::CStr = c"/proc/self/setgroups";
const UID_MAP: &std::ffi::CStr = c"/proc/self/uid_map";
const GID_MAP: &std::ffi::CStr = c"/proc/self/gid_map";

/// Writes the id maps, makes the mounts and sets the host name. The child
/// is already in its new namespaces (`clone` created them).
pub(crate) fn enter(ns: &ChildNs) -> Result<(), Failure> {
    if let Some(maps) = &ns.id_maps {
        let step = |e| (SetupStep::UserNamespace, 0, e);
        // An unprivileged writer must give up setgroups before gid_map.
        sys::write_file(SETGROUPS, b"deny").map_err(step)?;
        sys::write_file(UID_MAP, &maps.uid_map).map_err(step)?;
        sys::write_file(GID_MAP, &maps.gid_map).map_err(step)?;
    }
    let mut private = None;
    for (i, m) in ns.mounts.iter().enumerate() {
        let made = match (&m.content, &m.overlay) {
            (_, Some(o)) => super::overlay::mount(&m.target, o),
            (Some((dir, bytes)), None) => mount_content(dir, bytes, m, &mut private),
            (None, None) => sys::mount(
                m.source.as_deref(),
                &m.target,
                m.fstype.as_deref(),
                m.flags,
                m.data.as_deref(),
            ),
        };
        made.map_err(|e| (SetupStep::Mount, i as u32, e))?;
    }
    // The binds keep the tmpfs alive; its directory shows the host's again.
    if let Some(dir) = private {
        sys::umount_detach(dir).map_err(|e| (SetupStep::Mount, ns.mounts.len() as u32, e))?;
    }
    if let Some(name) = &ns.hostname {
        sys::sethostname(name).map_err(|e| (SetupStep::Hostname, 0, e))?;
    }
    Ok(())
}

/// Binds generated content over the target of `m`. The first time, a
/// tmpfs is mounted on the directory of generated files (`dir`), seen in
/// this namespace only; the file is written there under `m.source`'s name
/// and bound, so nothing outside can reach or change it between its
/// creation and the mount. Where the tmpfs cannot be mounted, the named
/// copy sandlock wrote is bound instead.
fn mount_content<'a>(
    dir: &'a CStr,
    bytes: &[u8],
    m: &ChildMount,
    private: &mut Option<&'a CStr>,
) -> Result<(), Errno> {
    let source = m.source.as_deref().ok_or(Errno::INVAL)?;
    if private.is_none() {
        if sys::mount(
            Some(c"tmpfs"),
            dir,
            Some(c"tmpfs"),
            MS_NOSUID | MS_NODEV,
            None,
        )
        .is_err()
        {
            return sys::mount(Some(source), &m.target, None, m.flags, None);
        }
        *private = Some(dir);
    }
    sys::create_with(source, bytes)?;
    sys::mount(Some(source), &m.target, None, m.flags, None)
}

/// Adds the plan's Landlock rules for the new mounts to `ruleset` (the
/// launch's own ruleset, not yet enforced). A path that does not exist on
/// the new mount (a pid of the caller's `/proc`) is skipped: it names
/// nothing inside.
pub(crate) fn regrant(ns: &ChildNs, ruleset: RawFd) -> Result<(), Failure> {
    for (i, (path, access)) in ns.regrants.iter().enumerate() {
        let fd = match sys::open_path(path) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => continue,
            Err(e) => return Err((SetupStep::Landlock, i as u32, e)),
        };
        let r = sys::landlock_add_path(ruleset, *access, fd);
        close(fd);
        r.map_err(|e| (SetupStep::Landlock, i as u32, e))?;
    }
    Ok(())
}
