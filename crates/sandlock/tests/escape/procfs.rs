//! What the kernel says about a process, read from /proc by the (root,
//! unconfined) runner: the suite's ground truth for side effects.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn proc(pid: i32, rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rest}"))
}

/// argv of `pid` (empty if it is gone).
pub fn cmdline(pid: i32) -> Vec<String> {
    fs::read(proc(pid, "cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every pid.
pub fn pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids whose argv[1] is `tag` and that are not zombies.
pub fn tagged(tag: &str) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&p| cmdline(p).get(1).map(String::as_str) == Some(tag) && !zombie(p))
        .collect()
}

/// Is `pid` a zombie (or gone)?
pub fn zombie(pid: i32) -> bool {
    stat_field(pid, 3).is_none_or(|s| s == "Z" || s == "X")
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
pub fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = fs::read_to_string(proc(pid, "stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    match n {
        1 => head.split_whitespace().next().map(str::to_string),
        2 => head.split_once('(').map(|(_, c)| c.to_string()),
        _ => rest.split_whitespace().nth(n - 3).map(str::to_string),
    }
}

/// Value of `key:` in /proc/PID/status.
pub fn status_value(pid: i32, key: &str) -> Option<String> {
    let status = fs::read_to_string(proc(pid, "status")).ok()?;
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

/// TracerPid of every thread of `pid`.
pub fn tracers(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(proc(pid, "task")) else {
        return vec![];
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let s = fs::read_to_string(t.path().join("status")).ok()?;
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Number of tasks (threads) of `pid`.
pub fn task_count(pid: i32) -> usize {
    fs::read_dir(proc(pid, "task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// name -> link target of every /proc/PID/ns/* entry.
pub fn ns_links(pid: i32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(dir) = fs::read_dir(proc(pid, "ns")) {
        for e in dir.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                out.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    t.to_string_lossy().into_owned(),
                );
            }
        }
    }
    out
}

/// fd -> link target of every open descriptor of `pid`.
pub fn fds(pid: i32) -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    if let Ok(dir) = fs::read_dir(proc(pid, "fd")) {
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Ok(t) = fs::read_link(e.path()) {
                out.insert(fd, t.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Socket inodes listed in /proc/PID/net/TABLE (raw, packet, tcp, ...).
pub fn net_table_inodes(pid: i32, table: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(proc(pid, &format!("net/{table}"))).unwrap_or_default();
    // The inode column: "inode" in the header names its position.
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return BTreeSet::new();
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    let Some(idx) = cols.iter().position(|c| *c == "inode" || *c == "Inode") else {
        return BTreeSet::new();
    };
    // Data rows have one field less than the header in some tables
    // (tx_queue/rx_queue are one column): count from the right instead.
    let from_right = cols.len() - idx;
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len()
                .checked_sub(from_right)
                .and_then(|i| f.get(i))
                .map(|s| s.to_string())
        })
        .collect()
}

/// Socket inodes held by `pid`'s descriptors.
pub fn socket_inodes(pid: i32) -> BTreeSet<String> {
    fds(pid)
        .values()
        .filter_map(|t| {
            t.strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect()
}

/// Mount points at or under `root` in `pid`'s mount namespace.
pub fn mounts_under(pid: i32, root: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(proc(pid, "mountinfo")).unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| PathBuf::from(unescape_octal(m)))
        .filter(|m| m.starts_with(root))
        .collect();
    // Deepest first, so that nested mounts come off before their parents.
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Raw /proc/PID/environ.
pub fn environ(pid: i32) -> Vec<u8> {
    fs::read(proc(pid, "environ")).unwrap_or_default()
}

/// The line of /proc/PID/limits starting with `name`.
pub fn limits_line(pid: i32, name: &str) -> Option<String> {
    fs::read_to_string(proc(pid, "limits"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(name))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Is there a SysV shared memory segment with this key?
pub fn shm_key_exists(key: i32) -> bool {
    fs::read_to_string("/proc/sysvipc/shm")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next() == Some(&key.to_string()))
}

/// Resident memory of `pid` in KiB: anonymous plus shared-memory pages.
pub fn rss_anon_shmem_kib(pid: i32) -> u64 {
    ["RssAnon", "RssShmem"]
        .iter()
        .filter_map(|k| status_value(pid, k))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
