//! Abstract unix sockets under `isolate_ipc`.
//!
//! With `isolate_ipc`, Landlock's abstract-unix scope (ABI 6) refuses a
//! connect or send from the sandbox to an abstract socket created outside
//! it. The supervisor makes every connect and addressed send on the task's
//! behalf, and the supervisor is outside the sandbox's Landlock domain, so
//! it applies the scope itself: an abstract name is reachable only when the
//! socket bound to it is held by a process of the sandbox.
//!
//! How: the sockets bound to the name are looked up in `/proc/net/unix`
//! (the network namespace is the sandbox's), and the sandbox's processes
//! (the descendants of its first process, through
//! `/proc/PID/task/TID/children`) are searched for a descriptor of one of
//! them. It costs a few milliseconds on a busy machine; abstract connects
//! are rare.
//!
//! Residual behaviour: a name whose bytes hold `@` or NUL is refused
//! (`/proc/net/unix` prints a NUL as `@`, so such names cannot be told
//! apart); a socket created outside and handed to a sandboxed process
//! counts as the sandbox's; and if the sandbox's socket is closed and an
//! outside process binds the same name between the check and the connect,
//! the connect reaches it (that takes the outside process's help).

use std::collections::HashSet;

use super::super::Tasks;

/// The most processes searched.
const MAX_TASKS: usize = 4096;

/// The inodes of the sockets bound to abstract `name`.
fn bound_to(name: &[u8]) -> HashSet<u64> {
    let mut found = HashSet::new();
    let Ok(table) = std::fs::read("/proc/net/unix") else {
        return found;
    };
    let mut want = b"@".to_vec();
    want.extend_from_slice(name);
    for line in table.split(|&b| b == b'\n').skip(1) {
        // Num RefCount Protocol Flags Type St Inode Path
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let Some(inode) = fields.nth(6) else { continue };
        if fields.next() == Some(&want[..])
            && let Some(ino) = std::str::from_utf8(inode).ok().and_then(|s| s.parse().ok())
        {
            found.insert(ino);
        }
    }
    found
}

/// The sandbox's processes, its first one first.
fn processes(tasks: &Tasks) -> Vec<i32> {
    let mut out = vec![tasks.root()];
    let mut i = 0;
    while i < out.len() && out.len() < MAX_TASKS {
        let pid = out[i];
        i += 1;
        let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in threads.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            out.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// Whether process `pid` holds a descriptor of one of `inodes`.
fn holds(pid: i32, inodes: &HashSet<u64>) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|ino| inodes.contains(&ino))
        })
    })
}

/// Whether abstract `name` is bound by a socket the sandbox holds.
pub(crate) fn inside(name: &[u8], tasks: &Tasks) -> bool {
    if name.is_empty() || name.iter().any(|&b| b == 0 || b == b'@') {
        return false;
    }
    let inodes = bound_to(name);
    !inodes.is_empty() && processes(tasks).into_iter().any(|p| holds(p, &inodes))
}
