//! Reading `/proc/PID/stat` and `/proc/PID/status` of the sandbox's tasks,
//! with bounded buffers and no panic on any content.

use std::io::Read;

use rustix::io::Errno;

/// The fields of `/proc/PID/stat` sandlock uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stat {
    /// State letter (`R`, `S`, `Z`, ...).
    pub(crate) state: u8,
    /// Parent pid (as seen from sandlock's PID namespace).
    pub(crate) ppid: i32,
    /// Process group.
    pub(crate) pgrp: i32,
    /// User and system CPU time of the thread group, in clock ticks.
    pub(crate) cpu: u64,
    /// CPU time of the children it reaped (`cutime + cstime`), in ticks.
    pub(crate) children_cpu: u64,
    /// Threads in the group.
    pub(crate) threads: u64,
    /// Start time after boot, in clock ticks (with the pid, a process's
    /// identity: a reused pid has a later start time).
    pub(crate) start: u64,
}

impl Stat {
    /// Whether the process has ended (a zombie, or dead).
    pub(crate) fn ended(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Reads a small `/proc` file into `buf` (up to its capacity).
pub(crate) fn read_into(path: &str, buf: &mut Vec<u8>) -> Result<(), Errno> {
    buf.clear();
    std::fs::File::open(path)
        .and_then(|f| f.take(16 * 1024).read_to_end(buf))
        .map(drop)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) | None => Errno::SRCH,
            Some(n) => Errno::from_raw_os_error(n),
        })
}

/// `/proc/PID/stat`.
pub(crate) fn stat(pid: i32) -> Result<Stat, Errno> {
    let mut buf = Vec::with_capacity(512);
    read_into(&format!("/proc/{pid}/stat"), &mut buf)?;
    parse_stat(&buf).ok_or(Errno::SRCH)
}

/// Parses a `stat` line: the fields after the **last** `)` (the command
/// name may hold spaces and parentheses).
pub(crate) fn parse_stat(line: &[u8]) -> Option<Stat> {
    let end = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(line.get(end + 1..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state).
    let n = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
    let i = |i: usize| -> Option<i32> { f.get(i)?.parse().ok() };
    Some(Stat {
        state: *f.first()?.as_bytes().first()?,
        ppid: i(1)?,
        pgrp: i(2)?,
        cpu: n(11)?.saturating_add(n(12)?),
        children_cpu: n(13)?.saturating_add(n(14)?),
        threads: n(17)?,
        start: n(19)?,
    })
}

/// `start_brk` (field 47) of a `stat` line: where the heap starts.
pub(crate) fn parse_start_brk(line: &[u8]) -> Option<u64> {
    let end = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(line.get(end + 1..)?).ok()?;
    rest.split_ascii_whitespace().nth(44)?.parse().ok()
}

/// The value of `key` (like `"RssAnon:"`) in a `status` file, in the
/// file's unit (kB for sizes).
pub(crate) fn status_field(status: &[u8], key: &str) -> Option<u64> {
    let text = std::str::from_utf8(status).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_ascii_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The pid namespace inode of `pid` (`/proc/PID/ns/pid`).
pub(crate) fn pidns_inode(pid: i32) -> Result<u64, Errno> {
    let link =
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | None => Errno::SRCH,
            Some(n) => Errno::from_raw_os_error(n),
        })?;
    let s = link.to_str().ok_or(Errno::INVAL)?;
    s.strip_prefix("pid:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .ok_or(Errno::INVAL)
}

/// Every pid listed in `/proc` (processes, not threads).
pub(crate) fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// Clock ticks per second of `/proc`'s CPU times: the kernel's `USER_HZ`,
/// 100 on x86_64 and aarch64.
pub(crate) const CLOCK_TICKS: u64 = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_after_the_last_parenthesis() {
        let line = b"42 (a) b) (c) S 7 42 42 0 -1 4194560 100 0 0 0 15 5 3 4 20 0 3 0 12345 100 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 7);
        assert_eq!(s.pgrp, 42);
        assert_eq!(s.cpu, 20);
        assert_eq!(s.children_cpu, 7);
        assert_eq!(s.threads, 3);
        assert_eq!(s.start, 12345);
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b"1 (x) S").is_none());
    }

    #[test]
    fn own_stat_and_status() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(s.threads >= 1 && !s.ended());
        let mut buf = Vec::new();
        read_into("/proc/self/status", &mut buf).unwrap();
        assert!(status_field(&buf, "VmRSS:").unwrap() > 0);
        assert!(pidns_inode(me).unwrap() > 0);
        assert!(pids().contains(&me));
    }

    /// The pidfd's answer (used at every start) is the `/proc` link's.
    #[test]
    fn pid_namespace_through_a_pidfd_is_the_proc_links() {
        let me = rustix::process::getpid();
        let pidfd = rustix::process::pidfd_open(me, rustix::process::PidfdFlags::empty()).unwrap();
        match crate::sys::host::pidfd_pidns_inode(&pidfd) {
            Ok(ino) => assert_eq!(ino, pidns_inode(me.as_raw_nonzero().get()).unwrap()),
            // Before Linux 6.11 the launch falls back to the link.
            Err(e) => assert!(
                [rustix::io::Errno::NOTTY, rustix::io::Errno::INVAL].contains(&e),
                "{e:?}"
            ),
        }
    }
}
