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
//! The ruleset is built with the `landlock` crate; its descriptor is taken
//! out so that the child can call `landlock_restrict_self` as a raw,
//! async-signal-safe syscall.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use sandlock_policy::Policy;

use crate::error::Error;

/// A created ruleset, ready for `landlock_restrict_self` in a child.
#[derive(Debug)]
pub(crate) struct Landlock {
    created: Option<RulesetCreated>,
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
            created: None,
            abi,
            scopes,
            paths: Vec::new(),
            ports: Vec::new(),
        };
        this.created = Some(this.empty()?);
        for (path, (grant, field)) in merged_paths(policy) {
            this.add_path(&path, grant, field)?;
        }
        if abi >= 4 {
            let mut created = this.take()?;
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
                created = created
                    .add_rule(NetPort::new(port, access))
                    .map_err(ll_error(abi))?;
                this.ports.push((port, access));
            }
            this.created = Some(created);
        }
        Ok(this)
    }

    /// A new ruleset with this one's handled rights and scopes, no rule.
    fn empty(&self) -> Result<RulesetCreated, Error> {
        let ll = ll_error(self.abi);
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(ABI::from(self.abi)))
            .map_err(&ll)?;
        if self.abi >= 4 {
            ruleset = ruleset
                .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
                .map_err(&ll)?;
        }
        if !self.scopes.is_empty() {
            ruleset = ruleset.scope(self.scopes).map_err(&ll)?;
        }
        ruleset.create().map_err(&ll)
    }

    /// A descriptor of a new ruleset holding the same rules, for one child
    /// that adds rules of its own (the namespace layer's grants on new
    /// mounts) without reaching other children.
    pub(crate) fn fresh_fd(&self) -> Result<OwnedFd, Error> {
        let ll = ll_error(self.abi);
        let mut created = self.empty()?;
        for (fd, _, access) in &self.paths {
            created = created
                .add_rule(PathBeneath::new(fd.as_fd(), *access))
                .map_err(&ll)?;
        }
        for &(port, access) in &self.ports {
            created = created.add_rule(NetPort::new(port, access)).map_err(&ll)?;
        }
        let fd: Option<OwnedFd> = created.into();
        fd.ok_or(Error::Os {
            what: "landlock_create_ruleset",
            errno: Errno::NOSYS,
        })
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

    fn take(&mut self) -> Result<RulesetCreated, Error> {
        self.created.take().ok_or(Error::Os {
            what: "landlock ruleset",
            errno: Errno::BADF,
        })
    }

    /// Grants `grant` on `path` (given for policy field `field`).
    pub(crate) fn add_path(
        &mut self,
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
        // One path walk; the type from the descriptor.
        let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(bad_path)?;
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
        let created = self.take()?;
        self.created = Some(
            created
                .add_rule(PathBeneath::new(fd.as_fd(), access))
                .map_err(|e| Error::Invalid {
                    field,
                    value: path.to_owned(),
                    why: e.to_string(),
                })?,
        );
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
        let created = self.created.as_ref().ok_or(Error::Os {
            what: "landlock ruleset",
            errno: Errno::BADF,
        })?;
        let copy = created.try_clone().map_err(Error::io("landlock ruleset"))?;
        let fd: Option<OwnedFd> = copy.into();
        fd.ok_or(Error::Os {
            what: "landlock_create_ruleset",
            errno: Errno::NOSYS,
        })
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
