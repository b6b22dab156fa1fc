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

impl SyscallCategory {
    /// Every category, in declaration order.
    pub const ALL: [SyscallCategory; 4] = [
        SyscallCategory::File,
        SyscallCategory::Network,
        SyscallCategory::Process,
        SyscallCategory::Memory,
    ];

    const fn bit(self) -> u8 {
        match self {
            SyscallCategory::File => 1,
            SyscallCategory::Network => 2,
            SyscallCategory::Process => 4,
            SyscallCategory::Memory => 8,
        }
    }
}

/// A set of [`SyscallCategory`]: the events a policy callback asks for.
///
/// The supervisor intercepts the syscalls of a category only when the
/// callback asks for it (or a static rule needs them), so a callback that
/// only watches the network costs nothing on opens.
///
/// ```
/// use sandlock_policy::{CategorySet, SyscallCategory};
/// let set: CategorySet = [SyscallCategory::Network, SyscallCategory::Process].into_iter().collect();
/// assert!(set.contains(SyscallCategory::Network));
/// assert!(!set.contains(SyscallCategory::File));
/// assert!(CategorySet::ALL.contains(SyscallCategory::Memory));
/// assert!(CategorySet::EMPTY.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CategorySet(u8);

impl CategorySet {
    /// No category.
    pub const EMPTY: CategorySet = CategorySet(0);
    /// Every category.
    pub const ALL: CategorySet = CategorySet(0b1111);

    /// The set holding `category` only.
    pub const fn of(category: SyscallCategory) -> CategorySet {
        CategorySet(category.bit())
    }

    /// This set with `category` added.
    #[must_use]
    pub const fn with(self, category: SyscallCategory) -> CategorySet {
        CategorySet(self.0 | category.bit())
    }

    /// Whether `category` is in the set.
    pub const fn contains(self, category: SyscallCategory) -> bool {
        self.0 & category.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The categories in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = SyscallCategory> {
        SyscallCategory::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl Default for CategorySet {
    /// Every category.
    fn default() -> Self {
        CategorySet::ALL
    }
}

impl core::fmt::Debug for CategorySet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<SyscallCategory> for CategorySet {
    fn from_iter<I: IntoIterator<Item = SyscallCategory>>(iter: I) -> Self {
        iter.into_iter().fold(CategorySet::EMPTY, CategorySet::with)
    }
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
