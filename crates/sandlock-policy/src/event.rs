//! What the supervisor saw: one intercepted syscall, decoded.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

/// The broad kind of an intercepted syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyscallCategory {
    /// Opens, stats, renames, links and other path-taking calls; execve is `Process`.
    File,
    /// connect, bind, sendto, sendmsg, sendmmsg, socket.
    Network,
    /// fork, vfork, clone, execve, execveat, kill and friends.
    Process,
    /// mmap, mremap, brk, munmap and other address-space changes.
    Memory,
}

/// One intercepted syscall, decoded from the notification and the child's memory.
///
/// Every field a decoder could not fill (because the syscall does not carry it,
/// or the child's memory could not be read) is `None`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyscallEvent {
    /// The syscall's name in the native table (`"openat"`, `"connect"`).
    pub syscall: String,
    /// The syscall's category.
    pub category: SyscallCategory,
    /// The thread id of the caller, as the supervisor's PID namespace sees it.
    pub pid: u32,
    /// The caller's parent process id, if it could be read.
    pub parent_pid: Option<u32>,
    /// The path argument, made absolute where it was resolved.
    pub path: Option<String>,
    /// The destination or bound address of a network call.
    pub host: Option<IpAddr>,
    /// The destination or bound port of a network call.
    pub port: Option<u16>,
    /// The size argument of a memory call (length of mmap, new break of brk).
    pub size: Option<u64>,
    /// The argument vector of execve / execveat.
    pub argv: Option<Vec<String>>,
    /// Whether the static policy already denied this call before the callback saw it.
    pub denied: bool,
}

impl SyscallEvent {
    /// An event with only the syscall, category and pid set.
    pub fn new(syscall: impl Into<String>, category: SyscallCategory, pid: u32) -> Self {
        SyscallEvent {
            syscall: syscall.into(),
            category,
            pid,
            parent_pid: None,
            path: None,
            host: None,
            port: None,
            size: None,
            argv: None,
            denied: false,
        }
    }

    /// Whether the path is present and contains `needle`.
    pub fn path_contains(&self, needle: &str) -> bool {
        self.path.as_deref().is_some_and(|p| p.contains(needle))
    }

    /// Whether any argv element contains `needle`.
    pub fn argv_contains(&self, needle: &str) -> bool {
        self.argv
            .as_deref()
            .is_some_and(|a| a.iter().any(|s| s.contains(needle)))
    }
}
