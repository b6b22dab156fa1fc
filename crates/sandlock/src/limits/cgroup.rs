//! Cgroups for a sandbox: one per controller (`pids`, `memory`, `cpu`), a
//! child of sandlock's own cgroup in that controller's hierarchy, created
//! before the fork, joined by the first process before it runs anything
//! (so every task of the sandbox is in it), removed at the end.
//!
//! Version 1 hierarchies (`/sys/fs/cgroup/<controller>`) are used where the
//! controller is mounted there and sandlock may create a directory (root);
//! a version 2 cgroup where sandlock's own cgroup is writable and already
//! delegates the controller to its children (`cgroup.subtree_control`).
//! sandlock never enables a controller itself: in version 2 that would
//! move the caller's own processes' accounting.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::io::Errno;

/// A controller sandlock uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Controller {
    /// Tasks (`pids.max`).
    Pids,
    /// Memory (`memory.limit_in_bytes` / `memory.max`).
    Memory,
    /// CPU bandwidth (`cpu.cfs_quota_us` / `cpu.max`).
    Cpu,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
        }
    }
}

/// Where a controller's cgroups are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// sandlock's own cgroup directory in that hierarchy.
    pub(crate) parent: PathBuf,
    /// Whether it is a version 2 (unified) hierarchy.
    pub(crate) v2: bool,
}

/// Where `c`'s cgroups would be made, if this process may make them.
pub(crate) fn locate(c: Controller) -> Option<Location> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Version 1: a hierarchy with this controller.
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrls.split(',').any(|x| x == c.name())
            && let Some(mnt) = mount_point(&mounts, Some(c.name()))
        {
            let parent = mnt.join(path.trim_start_matches('/'));
            if writable(&parent) {
                return Some(Location { parent, v2: false });
            }
        }
    }
    // Version 2: a delegated cgroup with the controller enabled below it.
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mnt = mount_point(&mounts, None)?;
    let parent = mnt.join(path.trim_start_matches('/'));
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    (enabled.split_whitespace().any(|x| x == c.name()) && writable(&parent))
        .then_some(Location { parent, v2: true })
}

/// The mount point of the v1 hierarchy holding `controller`, or of the v2
/// hierarchy (`None`), from `/proc/self/mountinfo`.
fn mount_point(mountinfo: &str, controller: Option<&str>) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        let (pre, post) = line.split_once(" - ")?;
        let mut post = post.split_whitespace();
        let fstype = post.next()?;
        let _source = post.next();
        let options = post.next().unwrap_or("");
        let point = pre.split_whitespace().nth(4)?;
        let hit = match controller {
            Some(c) => fstype == "cgroup" && options.split(',').any(|o| o == c),
            None => fstype == "cgroup2",
        };
        if hit {
            return Some(PathBuf::from(point.replace("\\040", " ")));
        }
    }
    None
}

fn writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

/// A cgroup made for one sandbox; removed when dropped.
#[derive(Debug)]
pub(crate) struct Cgroup {
    controller: Controller,
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// Makes a new cgroup for `c` at `loc`.
    pub(crate) fn create(c: Controller, loc: &Location) -> Result<Cgroup, Errno> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = loc
            .parent
            .join(format!("sandlock-{}-{n}", std::process::id()));
        rustix::fs::mkdir(&dir, rustix::fs::Mode::from_raw_mode(0o755))?;
        Ok(Cgroup {
            controller: c,
            dir,
            v2: loc.v2,
        })
    }

    fn write(&self, file: &str, value: &str) -> Result<(), Errno> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error))
    }

    pub(crate) fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file)).ok()
    }

    /// Moves process `pid` (and, from then on, every child it makes) in.
    pub(crate) fn attach(&self, pid: i32) -> Result<(), Errno> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// `pids.max`.
    pub(crate) fn set_pids_max(&self, n: u64) -> Result<(), Errno> {
        debug_assert_eq!(self.controller, Controller::Pids);
        self.write("pids.max", &n.to_string())
    }

    /// The memory limit (and the same for memory plus swap, where the
    /// kernel accounts swap), so the sandbox cannot swap its way past it.
    pub(crate) fn set_memory_max(&self, bytes: u64) -> Result<(), Errno> {
        debug_assert_eq!(self.controller, Controller::Memory);
        if self.v2 {
            self.write("memory.max", &bytes.to_string())?;
            let _ = self.write("memory.swap.max", "0");
            Ok(())
        } else {
            self.write("memory.limit_in_bytes", &bytes.to_string())?;
            if self.dir.join("memory.memsw.limit_in_bytes").exists() {
                self.write("memory.memsw.limit_in_bytes", &bytes.to_string())?;
            }
            Ok(())
        }
    }

    /// A CPU quota of `percent` of one CPU per 100 ms period.
    pub(crate) fn set_cpu_percent(&self, percent: u32) -> Result<(), Errno> {
        debug_assert_eq!(self.controller, Controller::Cpu);
        let period = 100_000u64;
        let quota = period * u64::from(percent) / 100;
        if self.v2 {
            self.write("cpu.max", &format!("{quota} {period}"))
        } else {
            self.write("cpu.cfs_period_us", &period.to_string())?;
            self.write("cpu.cfs_quota_us", &quota.to_string())
        }
    }

    /// Anonymous, shared-memory and swapped bytes charged to the cgroup.
    pub(crate) fn memory_used(&self) -> Option<u64> {
        let stat = self.read("memory.stat")?;
        let keys: &[&str] = if self.v2 {
            &["anon", "shmem"]
        } else {
            &["total_rss", "total_shmem", "total_swap"]
        };
        let mut sum = 0u64;
        for line in stat.lines() {
            let mut f = line.split_whitespace();
            if let (Some(k), Some(v)) = (f.next(), f.next())
                && keys.contains(&k)
            {
                sum = sum.saturating_add(v.parse().unwrap_or(0));
            }
        }
        if self.v2
            && let Some(swap) = self.read("memory.swap.current")
        {
            sum = sum.saturating_add(swap.trim().parse().unwrap_or(0));
        }
        Some(sum)
    }

    /// How many tasks the kernel's OOM killer ended in the cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.read(file)
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Its tasks are gone (or going: the last ones may still be exiting).
        for _ in 0..50 {
            match rustix::fs::rmdir(&self.dir) {
                Ok(()) | Err(Errno::NOENT) => return,
                Err(Errno::BUSY) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_from_mountinfo() {
        let info = "\
30 25 0:26 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/unified rw,relatime shared:11 - cgroup2 cgroup2 rw
";
        assert_eq!(
            mount_point(info, Some("pids")),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            mount_point(info, Some("cpu")),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(mount_point(info, Some("memory")), None);
        assert_eq!(
            mount_point(info, None),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }
}
