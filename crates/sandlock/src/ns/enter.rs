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
/// is already in its new namespaces (`clone` created them). A generated
/// file bound over a grant's path (the seed library) is granted in
/// `ruleset` as it is bound, by its own descriptor (see `mount_content`).
pub(crate) fn enter(ns: &ChildNs, ruleset: Option<RawFd>) -> Result<(), Failure> {
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
            (Some((dir, bytes)), None) => mount_content(dir, bytes, m, &mut private, ns, ruleset),
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
///
/// A grant of the target is given here, on a descriptor of the bound file
/// itself, not later by the target's path: a process outside that
/// unlinks the target (its directory is the user's) detaches the mount in
/// every namespace, and a file it puts there would be the one granted
/// (a library of its own, preloaded into the sandbox).
fn mount_content<'a>(
    dir: &'a CStr,
    bytes: &[u8],
    m: &ChildMount,
    private: &mut Option<&'a CStr>,
    ns: &ChildNs,
    ruleset: Option<RawFd>,
) -> Result<(), Errno> {
    let source = m.source.as_deref().ok_or(Errno::INVAL)?;
    if private.is_none()
        && sys::mount(
            Some(c"tmpfs"),
            dir,
            Some(c"tmpfs"),
            MS_NOSUID | MS_NODEV,
            None,
        )
        .is_ok()
    {
        *private = Some(dir);
    }
    if private.is_some() {
        sys::create_with(source, bytes)?;
    }
    let fd = sys::open_path(source)?;
    let made =
        sys::mount(Some(source), &m.target, None, m.flags, None).and_then(|()| match ruleset {
            Some(r) => ns
                .regrants
                .iter()
                .filter(|(path, _)| path.as_c_str() == m.target.as_c_str())
                .try_for_each(|(_, access)| sys::landlock_add_path(r, *access, fd)),
            None => Ok(()),
        });
    close(fd);
    made
}

/// Whether `path` is the target of a generated file's bind, granted as it
/// was bound ([`mount_content`]).
fn granted_at_mount(ns: &ChildNs, path: &CStr) -> bool {
    ns.mounts
        .iter()
        .any(|m| m.content.is_some() && m.overlay.is_none() && m.target.as_c_str() == path)
}

/// Adds the plan's Landlock rules for the new mounts to `ruleset` (the
/// launch's own ruleset, not yet enforced). A path that does not exist on
/// the new mount (a pid of the caller's `/proc`) is skipped: it names
/// nothing inside.
pub(crate) fn regrant(ns: &ChildNs, ruleset: RawFd) -> Result<(), Failure> {
    for (i, (path, access)) in ns.regrants.iter().enumerate() {
        if granted_at_mount(ns, path) {
            continue;
        }
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
