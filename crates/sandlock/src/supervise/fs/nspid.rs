//! Pids in the sandbox's own `/proc`.
//!
//! With a PID namespace of its own and `/proc` granted, the sandbox sees a
//! fresh procfs whose directories are named by the pids of its namespace;
//! the supervisor, and its `/proc`, use the machine's. The walker
//! (`resolve.rs`) writes procfs' `self` and `thread-self` in the numbers of
//! the procfs it is in ([`ns_of`]), and turns a pid directory it enters
//! into the task's machine pid ([`host_of_process`], [`host_of_thread`]) so
//! that every later check (membership, magic links, the files procfs
//! guards) is made on the right task. A pid the sandbox's namespace does
//! not hold maps to nothing: `ENOENT`, as the task itself would get.

use rustix::io::Errno;

use crate::supervise::procstat;

/// The pid of machine task `host` in its innermost PID namespace (the last
/// `NSpid:` field of its status; a thread id works as well).
pub(crate) fn ns_of(host: i32) -> Result<i32, Errno> {
    let status =
        std::fs::read_to_string(format!("/proc/{host}/status")).map_err(|_| Errno::SRCH)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_ascii_whitespace().last())
        .and_then(|v| v.parse().ok())
        .ok_or(Errno::SRCH)
}

/// The machine pid of the process called `ns` in PID namespace `ns_ino`.
pub(crate) fn host_of_process(ns_ino: u64, ns: i32) -> Result<i32, Errno> {
    procstat::pids()
        .into_iter()
        .filter(|&pid| procstat::pidns_inode(pid).is_ok_and(|i| i == ns_ino))
        .find(|&pid| ns_of(pid) == Ok(ns))
        .ok_or(Errno::NOENT)
}

/// The machine id of the thread called `ns` in process `host_tgid`.
pub(crate) fn host_of_thread(host_tgid: i32, ns: i32) -> Result<i32, Errno> {
    let dir = std::fs::read_dir(format!("/proc/{host_tgid}/task")).map_err(|_| Errno::NOENT)?;
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .find(|&tid| ns_of(tid) == Ok(ns))
        .ok_or(Errno::NOENT)
}
