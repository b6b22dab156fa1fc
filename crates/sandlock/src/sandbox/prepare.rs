//! What a launch needs prepared from the policy before the fork: the
//! child's settings ([`SpawnPlan`]), its standard streams, the command's
//! path and the strings `execve` takes.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sandlock_policy::Limit;

use super::{Sandbox, Stdio, StdioFds};
use crate::error::Error;
use crate::newroot::NewRoot;
use crate::ns;
use crate::seccomp;
use crate::spawn::SpawnPlan;

impl Sandbox {
    /// The child's settings from the policy.
    pub(super) fn plan(&self, workdir: Option<&Path>) -> Result<SpawnPlan, Error> {
        let policy = &self.policy;
        let mut plan = SpawnPlan::default();
        if self.pid_namespace && ns::worth_trying() {
            plan.ns.pid = true;
            plan.ns.ipc = true;
            plan.ns.optional = true;
        }
        if let Some(root) = &self.root {
            plan.root = Some((
                cstring("chroot", root.host_path().as_os_str().to_owned())?,
                root.raw_fd(),
            ));
            // chroot needs CAP_SYS_CHROOT: a user namespace of its own for
            // a caller that is not root (required: no fallback without).
            plan.ns.user = ns::needs_user_namespace();
            plan.ns.mounts.set_root(root.host_path().to_path_buf());
        }
        if !self.masks.is_empty() {
            // Mounts need CAP_SYS_ADMIN: a user namespace of its own for a
            // caller that is not root (required: no fallback without).
            plan.ns.user |= ns::needs_user_namespace();
            for m in &self.masks {
                plan.ns.mounts.mask(m);
            }
        }
        if let Limit::Limited(n) = policy.max_open_files() {
            let n = n.get();
            let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .maximum
                .unwrap_or(u64::MAX);
            if n > hard {
                return Err(Error::Invalid {
                    field: "max_open_files",
                    value: n.to_string(),
                    why: format!("is above sandlock's own hard limit ({hard})"),
                });
            }
            plan.rlimits.push((crate::sys::RLIMIT_NOFILE, n, n));
        }
        if policy.no_coredump() {
            plan.rlimits.push((crate::sys::RLIMIT_CORE, 0, 0));
        }
        if policy.no_randomize_memory() {
            plan.personality = Some(seccomp::ADDR_NO_RANDOMIZE as u32);
        }
        plan.thp_disable = policy.no_huge_pages();
        if let Some(cores) = policy.cpu_cores() {
            plan.cpu_mask = Some(cpu_mask(cores)?);
        }
        if let Some(w) = workdir {
            plan.cwd = Some(cstring("workdir", w.as_os_str().to_owned())?);
        } else if !self.masks.is_empty() {
            // The working directory is entered again by its path once the
            // masks are mounted: the caller's is the host's directory, and
            // a relative path from it would pass under an overlay that
            // covers it (or covers a directory above it).
            let cwd = std::env::current_dir().map_err(|e| Error::Path {
                field: "working directory",
                path: ".".to_owned(),
                errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
            })?;
            plan.cwd = Some(cstring("working directory", cwd.into_os_string())?);
        }
        Ok(plan)
    }

    /// Descriptors for the child's 0/1/2 and the parent's ends of pipes.
    pub(super) fn stdio_fds(&self, for_run: bool) -> Result<(StdioFds, StdioFds), Error> {
        let mut child: [Option<OwnedFd>; 3] = [None, None, None];
        let mut parent: [Option<OwnedFd>; 3] = [None, None, None];
        for (i, s) in self.stdio.iter().enumerate() {
            match s {
                Stdio::Inherit => {}
                Stdio::Null => {
                    let flags = if i == 0 {
                        OFlags::RDONLY
                    } else {
                        OFlags::WRONLY
                    };
                    child[i] = Some(
                        rustix::fs::open("/dev/null", flags | OFlags::CLOEXEC, Mode::empty())
                            .map_err(Error::os("open /dev/null"))?,
                    );
                }
                Stdio::Piped if i == 0 && for_run => {
                    // `run` feeds no input: the command reads end of file.
                    child[i] = Some(
                        rustix::fs::open(
                            "/dev/null",
                            OFlags::RDONLY | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(Error::os("open /dev/null"))?,
                    );
                }
                Stdio::Piped => {
                    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                        .map_err(Error::os("pipe"))?;
                    let (c, p) = if i == 0 { (r, w) } else { (w, r) };
                    child[i] = Some(c);
                    parent[i] = Some(p);
                }
                Stdio::Fd(fd) => {
                    child[i] =
                        Some(rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(Error::os("dup"))?);
                }
            }
        }
        Ok((child, parent))
    }
}

/// A `CString`, or an error naming the value with a NUL byte.
pub(super) fn cstring(field: &'static str, s: OsString) -> Result<CString, Error> {
    CString::new(s.into_vec()).map_err(|e| Error::Invalid {
        field,
        value: String::from_utf8_lossy(&e.into_vec()).into_owned(),
        why: "contains a NUL byte".to_owned(),
    })
}

/// The working directory must be a directory (of the new root, with one).
pub(super) fn check_dir(dir: &Path, root: Option<&NewRoot>) -> Result<(), Error> {
    let err = |errno| Error::Path {
        field: "workdir",
        path: dir.display().to_string(),
        errno,
    };
    let kind = match root {
        Some(r) => r.kind(dir).map_err(err)?,
        None => FileType::from_raw_mode(rustix::fs::stat(dir).map_err(err)?.st_mode),
    };
    if kind != FileType::Directory {
        return Err(err(Errno::NOTDIR));
    }
    Ok(())
}

/// Finds `cmd` in `path` (a command without a `/`), as the shell would;
/// with a new root, in the root (the result is then a path inside it).
pub(super) fn resolve(
    cmd: &OsStr,
    path: &OsStr,
    workdir: Option<&Path>,
    root: Option<&NewRoot>,
) -> Result<PathBuf, Error> {
    if cmd.is_empty() {
        return Err(Error::NotFound {
            command: String::new(),
        });
    }
    if cmd.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(cmd));
    }
    let mut denied = false;
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
        let mut candidate = PathBuf::from(OsStr::from_bytes(dir)).join(cmd);
        if candidate.is_relative()
            && let Some(w) = workdir
        {
            candidate = w.join(candidate);
        }
        let found = match root {
            Some(r) => r.executable(&candidate),
            None => executable(&candidate),
        };
        match found {
            Some((FileType::RegularFile, true)) => return Ok(candidate),
            Some((FileType::RegularFile, false)) => denied = true,
            _ => {}
        }
    }
    let command = cmd.to_string_lossy().into_owned();
    if denied {
        Err(Error::Exec {
            command,
            errno: Errno::ACCESS,
        })
    } else {
        Err(Error::NotFound { command })
    }
}

/// The file type of `p` and whether sandlock may execute it.
fn executable(p: &Path) -> Option<(FileType, bool)> {
    let st = rustix::fs::stat(p).ok()?;
    let x = rustix::fs::accessat(rustix::fs::CWD, p, Access::EXEC_OK, AtFlags::EACCESS).is_ok();
    Some((FileType::from_raw_mode(st.st_mode), x))
}

/// The affinity bitmap of `cores`; an error when none is usable here.
pub(crate) fn cpu_mask(cores: &sandlock_policy::CpuSet) -> Result<Vec<u64>, Error> {
    let max = cores.iter().max().unwrap_or(0) as usize;
    let mut mask = vec![0u64; max / 64 + 1];
    for c in cores.iter() {
        mask[c as usize / 64] |= 1 << (c % 64);
    }
    let usable = rustix::thread::sched_getaffinity(None)
        .map(|have| {
            cores
                .iter()
                .any(|c| (c as usize) < rustix::thread::CpuSet::MAX_CPU && have.is_set(c as usize))
        })
        .unwrap_or(true);
    if !usable {
        let list: Vec<String> = cores.iter().map(|c| c.to_string()).collect();
        return Err(Error::Invalid {
            field: "cpu_cores",
            value: list.join(","),
            why: "none of these CPUs is available to sandlock".to_owned(),
        });
    }
    Ok(mask)
}
