//! The Landlock ruleset of a policy, created before the fork.
//!
//! - Handled: every filesystem right of the running ABI, so anything not
//!   granted is denied; TCP bind and connect from ABI 4 (no port rule means
//!   no TCP at all, enforced by the kernel itself); the abstract-unix and
//!   signal scopes from ABI 6 when the policy isolates them.
//! - `fs_readable` paths get read-file, read-dir and execute;
//!   `fs_writable` paths every right except creating character and block
//!   devices (a sandbox run as root could otherwise `mknod` a disk and read
//!   it raw; without root the kernel refuses anyway).
//! - A path that cannot be opened is an error naming it: never skipped.
//!
//! The ruleset is created with the `landlock` crate (which knows the
//! rights of each ABI); its rules are added with raw `landlock_add_rule`
//! calls on its descriptor: the crate checks each path descriptor's type
//! again, and a default policy has about 150 paths (`/etc` entry by entry
//! as root). Paths of one directory are opened relative to it.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, Ruleset, RulesetAttr,
    Scope,
};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use sandlock_policy::Policy;

use crate::error::Error;
use crate::sys::ns::{landlock_add_path, landlock_add_port};

/// A created ruleset, ready for `landlock_restrict_self` in a child.
#[derive(Debug)]
pub(crate) struct Landlock {
    ruleset: OwnedFd,
    abi: i32,
    /// What the ruleset holds, to create another one like it
    /// ([`fresh_fd`](Self::fresh_fd)): scopes, paths (an `O_PATH`
    /// descriptor each, with the path and its rights), ports.
    scopes: BitFlags<Scope>,
    paths: Vec<(OwnedFd, String, BitFlags<AccessFs>)>,
    ports: Vec<(u16, AccessNet)>,
}

/// Rights granted on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Read files, list directories, execute.
    Read,
    /// Every right but creating devices.
    Write,
}

fn ll_error(abi: i32) -> impl Fn(landlock::RulesetError) -> Error {
    move |e| Error::Invalid {
        field: "landlock",
        value: format!("ABI {abi}"),
        why: e.to_string(),
    }
}

/// The last directory opened while adding paths, to open the next path of
/// the same directory relative to it.
type LastDir = Option<(String, OwnedFd)>;

impl Landlock {
    /// Builds the ruleset of `policy` for Landlock ABI `abi`.
    pub(crate) fn build(policy: &Policy, abi: i32) -> Result<Landlock, Error> {
        let mut scopes = BitFlags::<Scope>::EMPTY;
        if abi >= 6 {
            if policy.isolate_ipc() {
                scopes |= Scope::AbstractUnixSocket;
            }
            if policy.isolate_signals() {
                scopes |= Scope::Signal;
            }
        }
        let mut this = Landlock {
            ruleset: empty(abi, scopes)?,
            abi,
            scopes,
            paths: Vec::new(),
            ports: Vec::new(),
        };
        let mut last: LastDir = None;
        for (path, (grant, field)) in merged_paths(policy) {
            this.add(&path, grant, field, Some(&mut last))?;
        }
        drop(last);
        if abi >= 4 {
            let ports = policy
                .net_bind()
                .iter()
                .map(|p| (p.get(), AccessNet::BindTcp))
                .chain(
                    policy
                        .net_connect()
                        .iter()
                        .map(|p| (p.get(), AccessNet::ConnectTcp)),
                );
            for (port, access) in ports {
                landlock_add_port(
                    this.ruleset.as_raw_fd(),
                    BitFlags::from(access).bits(),
                    port,
                )
                .map_err(|e| Error::Invalid {
                    field: "net_port",
                    value: port.to_string(),
                    why: crate::error::errno_text(e),
                })?;
                this.ports.push((port, access));
            }
        }
        Ok(this)
    }

    /// A descriptor of a new ruleset holding the same rules, for one child
    /// that adds rules of its own (the namespace layer's grants on new
    /// mounts) without reaching other children.
    pub(crate) fn fresh_fd(&self) -> Result<OwnedFd, Error> {
        let fd = empty(self.abi, self.scopes)?;
        let failed = |e| Error::Os {
            what: "landlock_add_rule",
            errno: e,
        };
        for (path, _, access) in &self.paths {
            landlock_add_path(fd.as_raw_fd(), access.bits(), path.as_raw_fd()).map_err(failed)?;
        }
        for &(port, access) in &self.ports {
            landlock_add_port(fd.as_raw_fd(), BitFlags::from(access).bits(), port)
                .map_err(failed)?;
        }
        Ok(fd)
    }

    /// Every path of the ruleset with its access bits.
    pub(crate) fn grants(&self) -> Vec<crate::ns::Grant> {
        self.paths
            .iter()
            .map(|(_, path, access)| crate::ns::Grant {
                path: path.clone(),
                access: access.bits(),
            })
            .collect()
    }

    /// Grants `grant` on `path` (given for policy field `field`).
    pub(crate) fn add_path(
        &mut self,
        path: &str,
        grant: Grant,
        field: &'static str,
    ) -> Result<(), Error> {
        self.add(path, grant, field, None)
    }

    /// [`add_path`](Self::add_path); with `last`, opening `path` relative
    /// to it when it is in that directory (and keeping its directory there
    /// for the next path).
    fn add(
        &mut self,
        path: &str,
        grant: Grant,
        field: &'static str,
        last: Option<&mut LastDir>,
    ) -> Result<(), Error> {
        let fd = open_path(path, last).map_err(|errno| Error::Path {
            field,
            path: path.to_owned(),
            errno,
        })?;
        self.add_fd(fd, path, grant, field)
    }

    /// Grants `grant` on the file `fd` refers to (an `O_PATH` descriptor
    /// opened from `path`, which names it in errors).
    pub(crate) fn add_fd(
        &mut self,
        fd: OwnedFd,
        path: &str,
        grant: Grant,
        field: &'static str,
    ) -> Result<(), Error> {
        let abi = ABI::from(self.abi);
        let bad_path = |errno| Error::Path {
            field,
            path: path.to_owned(),
            errno,
        };
        let is_dir = rustix::fs::fstat(&fd)
            .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            .map_err(bad_path)?;
        let mut access = match grant {
            Grant::Read => AccessFs::from_read(abi),
            Grant::Write => AccessFs::from_all(abi) & !(AccessFs::MakeChar | AccessFs::MakeBlock),
        };
        if !is_dir {
            access &= AccessFs::from_file(abi);
        }
        landlock_add_path(self.ruleset.as_raw_fd(), access.bits(), fd.as_raw_fd()).map_err(
            |e| Error::Invalid {
                field,
                value: path.to_owned(),
                why: crate::error::errno_text(e),
            },
        )?;
        // The descriptor itself is kept (for `fresh_fd`): no duplicate.
        self.paths.push((fd, path.to_owned(), access));
        Ok(())
    }

    /// Whether a path rule is on one of `dirs` (device and inode numbers),
    /// so that it grants what lies beneath.
    pub(crate) fn grants_beneath(&self, dirs: &[(u64, u64)]) -> bool {
        self.paths.iter().any(|(fd, _, _)| {
            rustix::fs::fstat(fd).is_ok_and(|st| dirs.contains(&(st.st_dev, st.st_ino)))
        })
    }

    /// A descriptor of the ruleset for one child (a duplicate: rules added
    /// later do not reach a child already started).
    pub(crate) fn fd(&self) -> Result<OwnedFd, Error> {
        rustix::io::fcntl_dupfd_cloexec(self.ruleset.as_fd(), 0)
            .map_err(Error::os("landlock ruleset"))
    }
}

/// A new ruleset handling every right of `abi` (and its TCP rights from
/// ABI 4), with `scopes`, and no rule.
fn empty(abi: i32, scopes: BitFlags<Scope>) -> Result<OwnedFd, Error> {
    let ll = ll_error(abi);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::from(abi)))
        .map_err(&ll)?;
    if abi >= 4 {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(&ll)?;
    }
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(&ll)?;
    }
    let fd: Option<OwnedFd> = ruleset.create().map_err(&ll)?.into();
    fd.ok_or(Error::Os {
        what: "landlock_create_ruleset",
        errno: Errno::NOSYS,
    })
}

/// `open(path, O_PATH)`; with `last`, relative to it when `path` is in
/// that directory, otherwise `last` becomes `path`'s directory, when it
/// opens.
fn open_path(path: &str, last: Option<&mut LastDir>) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let (Some(last), Some((dir, name))) = (last, path.rsplit_once('/')) else {
        return rustix::fs::open(path, flags, Mode::empty());
    };
    let dir = if dir.is_empty() { "/" } else { dir };
    if name.is_empty() || name == "." || name == ".." {
        return rustix::fs::open(path, flags, Mode::empty());
    }
    if last.as_ref().is_none_or(|(d, _)| d != dir) {
        *last = rustix::fs::open(dir, flags | OFlags::DIRECTORY, Mode::empty())
            .ok()
            .map(|fd| (dir.to_owned(), fd));
    }
    match last {
        Some((_, dirfd)) => rustix::fs::openat(dirfd.as_fd(), name, flags, Mode::empty()),
        None => rustix::fs::open(path, flags, Mode::empty()),
    }
}

/// The policy's paths, each once (trailing slashes ignored), write winning
/// over read; with the field each first came from.
fn merged_paths(policy: &Policy) -> BTreeMap<String, (Grant, &'static str)> {
    let mut out: BTreeMap<String, (Grant, &'static str)> = BTreeMap::new();
    let key = |p: &str| {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_owned()
        } else {
            t.to_owned()
        }
    };
    for p in policy.fs_readable() {
        out.entry(key(p.as_str()))
            .or_insert((Grant::Read, "fs_readable"));
    }
    for p in policy.fs_writable() {
        out.entry(key(p.as_str()))
            .and_modify(|g| g.0 = Grant::Write)
            .or_insert((Grant::Write, "fs_writable"));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ino(fd: &OwnedFd) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn paths_of_one_directory_are_opened_relative_to_it() {
        let mut last: LastDir = None;
        let a = open_path("/usr/bin", Some(&mut last)).unwrap();
        assert_eq!(last.as_ref().map(|(d, _)| d.as_str()), Some("/usr"));
        let kept = ino(&last.as_ref().unwrap().1);
        let b = open_path("/usr/lib", Some(&mut last)).unwrap();
        // The same directory descriptor served both.
        assert_eq!(ino(&last.as_ref().unwrap().1), kept);
        assert_eq!(ino(&a), rustix::fs::stat("/usr/bin").unwrap().st_ino);
        assert_eq!(ino(&b), rustix::fs::stat("/usr/lib").unwrap().st_ino);
        // Another directory replaces it; "/" and dot names open directly.
        open_path("/etc/hostname", Some(&mut last)).unwrap();
        assert_eq!(last.as_ref().map(|(d, _)| d.as_str()), Some("/etc"));
        for p in ["/", "/usr/.", "/usr/.."] {
            let fd = open_path(p, Some(&mut last)).unwrap();
            assert_eq!(ino(&fd), rustix::fs::stat(p).unwrap().st_ino, "{p}");
        }
        // Without `last`, one open of the whole path; errors name nothing
        // more than the kernel's.
        assert!(open_path("/usr", None).is_ok());
        assert_eq!(
            open_path("/usr/no-such-entry", Some(&mut last)).unwrap_err(),
            Errno::NOENT
        );
        assert_eq!(
            open_path("/no-such-dir/x", Some(&mut last)).unwrap_err(),
            Errno::NOENT
        );
    }
}
