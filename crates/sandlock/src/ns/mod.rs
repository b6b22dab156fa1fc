//! The namespace layer: new user, PID, IPC, mount and UTS namespaces for
//! the sandbox, entered by its first process between `clone` and `execve`.
//!
//! A launch carries an `NsPlan` in its `SpawnPlan`.
//! Features fill it before the fork (`Feature::prepare`); `NsPlan::prepare`
//! turns it into a `ChildNs`: clone flags, pre-formatted id maps, C
//! strings of every mount, so that the child only makes raw system calls
//! (`enter` and `reaper`). See `docs/namespaces.md` for the API and
//! what each namespace costs.
//!
//! - **User namespace**: only for a caller that is not root with
//!   `CAP_SYS_ADMIN` (and, under a process cap held by `RLIMIT_NPROC`, for
//!   root of a user namespace other than the initial one, so that the
//!   limit counts the sandbox alone). The map is the identity of
//!   the caller's effective uid and gid, one line each (`setgroups` denied
//!   first, as the kernel requires of an unprivileged writer). Files of
//!   other users then show as the overflow uid (65534).
//! - **PID namespace**: the sandbox's first process is its init
//!   (`reaper`): it forks the command, reaps every orphan, and exits with
//!   the command; the kernel then kills whatever is left. If sandlock is
//!   killed, `PR_SET_PDEATHSIG` kills the init, and with it the namespace.
//! - **IPC namespace**: SysV objects and POSIX message queues of the
//!   sandbox are its own and vanish with it.
//! - **Mount namespace**: only when the `MountPlan` is not empty. Its
//!   propagation is made private before anything is mounted, so nothing
//!   reaches the caller's namespace.
//! - **UTS namespace**: only with a host name.

mod enter;
pub(crate) mod launch;
mod mounts;
mod overlay;
pub(crate) mod reaper;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

pub(crate) use enter::{enter, regrant};
pub(crate) use mounts::{ChildMount, MountPlan};

use crate::error::Error;
use crate::tmpdir::TempDir;

/// `CLONE_NEWNS`.
pub(crate) const CLONE_NEWNS: u64 = 0x0002_0000;
/// `CLONE_NEWUTS`.
pub(crate) const CLONE_NEWUTS: u64 = 0x0400_0000;
/// `CLONE_NEWIPC`.
pub(crate) const CLONE_NEWIPC: u64 = 0x0800_0000;
/// `CLONE_NEWUSER`.
pub(crate) const CLONE_NEWUSER: u64 = 0x1000_0000;
/// `CLONE_NEWPID`.
pub(crate) const CLONE_NEWPID: u64 = 0x2000_0000;
/// `CLONE_NEWNET`.
pub(crate) const CLONE_NEWNET: u64 = 0x4000_0000;

/// The Landlock rights that change a tree (every one but execute, read
/// file and read directory): a grant with any of them is writable.
const WRITE_ACCESS: u64 = !0b1101;

/// The namespaces a launch asks for. Empty by default: no namespace.
#[derive(Debug, Default)]
pub(crate) struct NsPlan {
    /// A new PID namespace whose init is sandlock's [`reaper`].
    pub(crate) pid: bool,
    /// A new IPC namespace.
    pub(crate) ipc: bool,
    /// A new user namespace even without another namespace, for a caller
    /// that is not root of the initial one (`RLIMIT_NPROC` then counts the
    /// sandbox's tasks alone).
    pub(crate) user: bool,
    /// Whether the launch may run without the namespaces above when the
    /// machine refuses them (they are then reported, not required).
    /// Mounts and a host name are always required.
    pub(crate) optional: bool,
    /// Mounts: a mount namespace when not empty.
    pub(crate) mounts: MountPlan,
    /// A host name: a UTS namespace.
    pub(crate) hostname: Option<String>,
    /// A network namespace of its own (only a loopback device, down): for
    /// a sandbox without network, so that `/proc/net` lists its sockets
    /// alone.
    pub(crate) net: bool,
}

/// A path granted by the Landlock ruleset, with its access bits, as the
/// namespace layer needs it to grant it again on a new mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The path as the policy gives it.
    pub(crate) path: String,
    /// `LANDLOCK_ACCESS_FS_*` bits.
    pub(crate) access: u64,
}

/// The prepared namespaces of one launch, read by the child.
#[derive(Debug, Default)]
pub(crate) struct ChildNs {
    /// `CLONE_NEW*` flags for `clone`.
    pub(crate) clone_flags: u64,
    /// The id maps to write (a new user namespace).
    pub(crate) id_maps: Option<IdMaps>,
    /// Mount operations, in order (the first makes `/` private).
    pub(crate) mounts: Vec<ChildMount>,
    /// The host name.
    pub(crate) hostname: Option<Vec<u8>>,
    /// Landlock rules to add once mounted: the policy's grants at or under
    /// a mount target (Landlock rules are per inode: a grant of the
    /// caller's `/proc` does not cover a fresh procfs).
    pub(crate) regrants: Vec<(CString, u64)>,
    /// Whether the first process is the PID namespace's init.
    pub(crate) reaper: bool,
}

/// What a new user namespace's maps say, pre-formatted.
#[derive(Debug)]
pub(crate) struct IdMaps {
    /// `"<euid> <euid> 1\n"`.
    pub(crate) uid_map: Vec<u8>,
    /// `"<egid> <egid> 1\n"`.
    pub(crate) gid_map: Vec<u8>,
}

/// A prepared plan: the child's part and what the parent keeps alive
/// until the child has mounted (the files of generated content).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// What the child reads.
    pub(crate) child: ChildNs,
    /// Descriptions of `child.mounts`, for errors.
    pub(crate) what: Vec<String>,
    /// The directory holding generated files (removed when dropped).
    pub(crate) _files: Option<TempDir>,
}

impl Prepared {
    /// Whether the child adds Landlock rules of its own (then it needs a
    /// ruleset of its own, not one shared with other launches).
    pub(crate) fn needs_private_ruleset(&self) -> bool {
        !self.child.regrants.is_empty()
    }
}

impl ChildNs {
    /// Whether paths are masked (an overlay hides them).
    pub(crate) fn has_masks(&self) -> bool {
        self.mounts.iter().any(|m| m.overlay.is_some())
    }
}

impl NsPlan {
    /// Whether any namespace is asked for.
    pub(crate) fn is_empty(&self) -> bool {
        !self.pid
            && !self.ipc
            && !self.user
            && self.mounts.is_empty()
            && self.hostname.is_none()
            && !self.net
    }

    /// Whether the launch cannot run without its namespaces.
    pub(crate) fn required(&self) -> bool {
        !self.optional
            || self.user
            || !self.mounts.is_empty()
            || self.hostname.is_some()
            || self.net
    }

    /// Clone flags, id maps and mount strings for the child. `grants` are
    /// the Landlock ruleset's paths, to grant again on the new mounts.
    pub(crate) fn prepare(&self, grants: &[Grant]) -> Result<Prepared, Error> {
        if self.is_empty() {
            return Ok(Prepared::default());
        }
        let mut flags = 0;
        // A fresh /proc shows the processes of the mounter's PID namespace:
        // it only makes sense in a new one.
        let pid = self.pid || self.mounts.has_proc();
        if pid {
            flags |= CLONE_NEWPID;
        }
        if self.ipc {
            flags |= CLONE_NEWIPC;
        }
        if !self.mounts.is_empty() {
            flags |= CLONE_NEWNS;
        }
        if self.hostname.is_some() {
            flags |= CLONE_NEWUTS;
        }
        if self.net {
            flags |= CLONE_NEWNET;
        }
        let id_maps = if needs_user_namespace() || (self.user && !is_global_root()) {
            flags |= CLONE_NEWUSER;
            let uid = rustix::process::geteuid().as_raw();
            let gid = rustix::process::getegid().as_raw();
            Some(IdMaps {
                uid_map: format!("{uid} {uid} 1\n").into_bytes(),
                gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            })
        } else {
            None
        };
        let writable: Vec<std::path::PathBuf> = grants
            .iter()
            .filter(|g| g.access & WRITE_ACCESS != 0)
            .map(|g| std::path::PathBuf::from(&g.path))
            .collect();
        let mounts::PreparedMounts {
            ops: mounts,
            what,
            files,
        } = self.mounts.prepare(&writable)?;
        let mut regrants = Vec::new();
        let targets: Vec<std::path::PathBuf> = self.mounts.targets().collect();
        for g in grants {
            if targets.iter().any(|t| under(&g.path, t)) {
                let path = CString::new(g.path.as_bytes()).map_err(|_| Error::Invalid {
                    field: "fs_readable",
                    value: g.path.clone(),
                    why: "contains a NUL byte".to_owned(),
                })?;
                regrants.push((path, g.access));
            }
        }
        let hostname = self.hostname.as_ref().map(|h| h.as_bytes().to_vec());
        Ok(Prepared {
            child: ChildNs {
                clone_flags: flags,
                id_maps,
                mounts,
                hostname,
                regrants,
                reaper: pid,
            },
            what,
            _files: files,
        })
    }
}

/// Whether `path` is `target` or below it (by components).
fn under(path: &str, target: &Path) -> bool {
    let path = path.trim_end_matches('/');
    let target = target.as_os_str().as_bytes();
    let target = std::str::from_utf8(target)
        .unwrap_or("")
        .trim_end_matches('/');
    !target.is_empty()
        && (path == target
            || path
                .strip_prefix(target)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// Whether new namespaces need a new user namespace: the caller is not
/// root with `CAP_SYS_ADMIN` in effect. Root of another user namespace (a
/// container's) creates them in its own; where `RLIMIT_NPROC` must count
/// the sandbox's tasks alone (`-P`), the launch asks for a user namespace
/// anyway ([`NsPlan::user`], with [`is_global_root`]).
pub(crate) fn needs_user_namespace() -> bool {
    !is_admin_root()
}

/// Whether this process is root with `CAP_SYS_ADMIN` in effect: it
/// creates namespaces and mounts without a user namespace. One `capget`
/// and one `geteuid`, no `/proc` (see [`is_global_root`]).
pub(crate) fn is_admin_root() -> bool {
    static ADMIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ADMIN.get_or_init(admin_root)
}

fn admin_root() -> bool {
    let admin = rustix::thread::capabilities(None)
        .map(|c| {
            c.effective
                .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
        })
        .unwrap_or(false);
    admin && rustix::process::geteuid().is_root()
}

/// Whether this process is root of the initial user namespace, with
/// `CAP_SYS_ADMIN` in effect: [`is_admin_root`], and the user namespace
/// is the initial one. Only where that difference counts: it costs a
/// `readlink` in `/proc`, about 22 µs in a fresh process (the kernel
/// makes the process's `/proc` entries on first use).
pub(crate) fn is_global_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| is_admin_root() && in_initial_user_namespace())
}

/// The inode number of the initial user namespace (`PROC_USER_INIT_INO`:
/// the initial namespaces have fixed numbers, since Linux 3.8).
#[cfg(test)]
const INITIAL_USER_NS_INO: u64 = 0xEFFF_FFFD;

/// What `/proc/self/ns/user` reads in the initial user namespace: its
/// inode number, [`INITIAL_USER_NS_INO`], in decimal.
const INITIAL_USER_NS_LINK: &[u8] = b"user:[4026531837]";

/// Whether this process's user namespace is the initial one: one
/// `readlink` of `/proc/self/ns/user`. Its inode number tells, where the
/// uid map does not: a user namespace created by root may map the whole
/// range onto itself. The link's text is the number, formatted by the
/// kernel; a `stat` of it would also make the namespace an nsfs inode
/// (5-10 µs more here). Without `/proc`, no.
fn in_initial_user_namespace() -> bool {
    let mut link = [0u8; 32];
    rustix::fs::readlinkat_raw(rustix::fs::CWD, c"/proc/self/ns/user", &mut link[..])
        .is_ok_and(|n| link.get(..n) == Some(INITIAL_USER_NS_LINK))
}

/// Whether a launch found the mounts that mask paths refused (its mount
/// namespace, or a mount in it: a container's security module may refuse
/// root either): remembered for the life of the process.
static MASKS_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that a launch with masked paths could not make them.
pub(crate) fn record_masks_refused() {
    MASKS_REFUSED.store(true, Ordering::Relaxed);
}

/// Whether a launch of this process found the masks' mounts refused.
pub(crate) fn masks_refused() -> bool {
    MASKS_REFUSED.load(Ordering::Relaxed)
}

/// Whether this machine gave sandboxes their namespaces: unknown until a
/// launch tries, then remembered for the life of the process.
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const WORKS: u8 = 1;
const REFUSED: u8 = 2;

/// `Some(false)` once the kernel refused optional namespaces (later
/// launches then do without them), `Some(true)` once they worked.
pub(crate) fn known_available() -> Option<bool> {
    match STATE.load(Ordering::Relaxed) {
        WORKS => Some(true),
        REFUSED => Some(false),
        _ => None,
    }
}

/// Records whether a launch with namespaces worked.
pub(crate) fn record(worked: bool) {
    STATE.store(if worked { WORKS } else { REFUSED }, Ordering::Relaxed);
}

/// Whether a PID namespace can be created here without root, as far as
/// the machine's settings tell (the kernel has the last word: a launch
/// that is refused runs without, and is remembered).
pub(crate) fn probably_available() -> bool {
    if let Some(known) = known_available() {
        return known;
    }
    static SETTINGS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SETTINGS.get_or_init(|| is_admin_root() || settings_allow())
}

/// Whether a launch should ask for its optional namespaces (a PID
/// namespace, with a user namespace for a caller that is not root): unless
/// one was refused in this process, or Ubuntu's AppArmor switch is on. The
/// kernel refuses the clone at once where `user.max_user_namespaces` is 0,
/// Debian's `kernel.unprivileged_userns_clone` is 0 or user namespaces are
/// not built in, and the launch then runs without them (`launch`): cheaper
/// than reading those settings before every launch (35-50 µs here). Under
/// AppArmor's switch the clone succeeds and only writing the id maps
/// fails, which would cost a whole clone each time.
pub(crate) fn worth_trying() -> bool {
    if let Some(known) = known_available() {
        return known;
    }
    is_admin_root() || !apparmor_restricts()
}

/// A number from a sysctl file, if readable.
fn read_sysctl(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
}

/// Ubuntu's AppArmor switch: the namespace is created, but without the
/// capabilities to write its id maps or mount anything.
fn apparmor_restricts() -> bool {
    read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_some_and(|v| v != 0)
}

/// Whether the machine's settings allow unprivileged user namespaces.
fn settings_allow() -> bool {
    // Unreadable: no /proc (the id maps could not be written either).
    let Some(max) = read_sysctl("/proc/sys/user/max_user_namespaces") else {
        return false;
    };
    // Debian and Ubuntu kernels' switch for unprivileged user namespaces.
    let clone = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").unwrap_or(1);
    // A kernel built without user namespaces refuses the clone (EINVAL):
    // the launch then runs without, and remembers it (`launch`).
    max > 0 && clone != 0 && !apparmor_restricts()
}

/// Creates the namespaces a sandbox would get here (PID, IPC, and a user
/// namespace with its id maps for a caller that is not root), in a child
/// that exits at once: `Ok(())` or why not (for `sandlock check`).
pub fn probe() -> Result<(), rustix::io::Errno> {
    let mut flags = CLONE_NEWPID | CLONE_NEWIPC;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let (u, g) = (format!("{uid} {uid} 1\n"), format!("{gid} {gid} 1\n"));
    let maps = if needs_user_namespace() {
        flags |= CLONE_NEWUSER;
        Some((u.as_bytes(), g.as_bytes()))
    } else {
        None
    };
    match crate::sys::host::probe_namespaces(flags, maps)? {
        true => Ok(()),
        false => Err(rustix::io::Errno::PERM),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the test process (the initial user namespace, as in CI): yes. In
    /// a forked copy that entered a new user namespace whose uid map is the
    /// whole range onto itself (which root may write, and which the map
    /// alone cannot tell from the initial one): no. The parent writes the
    /// map; the copy's answer comes back in its exit code.
    #[test]
    #[allow(unsafe_code)]
    fn the_initial_user_namespace_is_told_by_its_inode_number() {
        assert_eq!(
            INITIAL_USER_NS_LINK,
            format!("user:[{INITIAL_USER_NS_INO}]").as_bytes()
        );
        if !rustix::process::geteuid().is_root() {
            return;
        }
        assert!(in_initial_user_namespace());
        // The link agrees with the inode.
        assert_eq!(
            rustix::fs::stat("/proc/self/ns/user").unwrap().st_ino,
            INITIAL_USER_NS_INO
        );
        let (mut up, mut down) = ([0i32; 2], [0i32; 2]);
        // SAFETY: two arrays of two ints for the pipes' ends.
        unsafe {
            assert_eq!(libc::pipe(up.as_mut_ptr()), 0);
            assert_eq!(libc::pipe(down.as_mut_ptr()), 0);
        }
        // SAFETY: the forked copy makes only raw system calls (unshare,
        // write, read, readlink) and `_exit` before it ends.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut b = [0u8; 1];
            // SAFETY: as above; `b` is a local byte.
            let code = unsafe {
                if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                    2
                } else if libc::write(up[1], b.as_ptr().cast(), 1) != 1
                    || libc::read(down[0], b.as_mut_ptr().cast(), 1) != 1
                {
                    3
                } else {
                    i32::from(in_initial_user_namespace())
                }
            };
            // SAFETY: ends the forked copy without running anything else.
            unsafe { libc::_exit(code) };
        }
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a local from our pipe.
        assert_eq!(unsafe { libc::read(up[0], b.as_mut_ptr().cast(), 1) }, 1);
        std::fs::write(format!("/proc/{pid}/uid_map"), "0 0 4294967295\n").unwrap();
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert_eq!(
            map.split_whitespace().collect::<Vec<_>>(),
            ["0", "0", "4294967295"]
        );
        // SAFETY: writing one byte from a local to our pipe.
        assert_eq!(unsafe { libc::write(down[1], b.as_ptr().cast(), 1) }, 1);
        let mut status = 0;
        // SAFETY: waiting for our own child into a local int; closing our
        // own pipe ends.
        unsafe {
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            for fd in up.into_iter().chain(down) {
                libc::close(fd);
            }
        }
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "1: taken for the initial one");
    }

    #[test]
    fn under_matches_components() {
        assert!(under("/proc", Path::new("/proc")));
        assert!(under("/proc/", Path::new("/proc")));
        assert!(under("/proc/cpuinfo", Path::new("/proc")));
        assert!(!under("/processes", Path::new("/proc")));
        assert!(!under("/", Path::new("/proc")));
        assert!(under("/etc/hostname", Path::new("/etc/hostname")));
        assert!(!under("/etc", Path::new("/etc/hostname")));
    }

    #[test]
    fn empty_plan_prepares_nothing() {
        let p = NsPlan::default().prepare(&[]).unwrap();
        assert_eq!(p.child.clone_flags, 0);
        assert!(!p.child.reaper);
    }

    #[test]
    fn fresh_proc_implies_pid_namespace_and_regrants() {
        let mut plan = NsPlan::default();
        plan.mounts.fresh_proc();
        let grants = [
            Grant {
                path: "/proc".into(),
                access: 7,
            },
            Grant {
                path: "/usr".into(),
                access: 5,
            },
        ];
        let p = plan.prepare(&grants).unwrap();
        let f = p.child.clone_flags;
        assert_ne!(f & CLONE_NEWPID, 0);
        assert_ne!(f & CLONE_NEWNS, 0);
        assert!(p.child.reaper);
        assert_eq!(p.child.regrants.len(), 1);
        assert_eq!(p.child.regrants[0].0.as_bytes(), b"/proc");
        assert!(p.needs_private_ruleset());
    }
}
