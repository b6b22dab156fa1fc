//! Absolute paths, and lexical component-wise matching of them.
//!
//! The core of this crate is `no_std`, so paths are stored as UTF-8
//! [`String`]s rather than `std::path::PathBuf`; with the `std` feature an
//! [`AbsPath`] converts to and from `Path`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::error::{ParseError, Reason};

/// The longest path the kernel accepts, including its NUL (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// An absolute path: starts with `/`, at most `PATH_MAX - 1` bytes, no NUL.
///
/// It is kept as given (`/a/../b` stays `/a/../b`): resolving `..` lexically
/// would change its meaning when a component is a symlink, and Landlock opens
/// the path as the kernel resolves it. Use [`AbsPath::normalized`] where a
/// lexical form is wanted (deny rules compare normalised components).
///
/// ```
/// use sandlock_policy::AbsPath;
/// let p: AbsPath = "/usr/lib".parse().unwrap();
/// assert_eq!(p.as_str(), "/usr/lib");
/// assert!("usr/lib".parse::<AbsPath>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbsPath(String);

impl AbsPath {
    /// Validates `path` as an absolute path.
    pub fn new(path: impl Into<String>) -> Result<AbsPath, ParseError> {
        let path = path.into();
        let reason = if path.is_empty() {
            Some(Reason::Empty)
        } else if !path.starts_with('/') {
            Some(Reason::NotAbsolute)
        } else if path.contains('\0') {
            Some(Reason::ContainsNul)
        } else if path.len() >= PATH_MAX {
            Some(Reason::TooLong { max: PATH_MAX - 1 })
        } else {
            None
        };
        match reason {
            Some(r) => Err(ParseError::new(path, r)),
            None => Ok(AbsPath(path)),
        }
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lexically normalised form: empty and `.` components dropped, `..`
    /// removes the previous component (and stays at `/` at the root), no
    /// trailing slash. `/a/./b/../c/` becomes `/a/c`.
    pub fn normalized(&self) -> AbsPath {
        // Splitting at `/` and joining keeps UTF-8 intact.
        let n = normalize(self.0.as_bytes());
        AbsPath(match String::from_utf8(n) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The path as a `std::path::Path`.
    #[cfg(feature = "std")]
    pub fn as_path(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl fmt::Debug for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AbsPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(feature = "std")]
impl AsRef<std::path::Path> for AbsPath {
    fn as_ref(&self) -> &std::path::Path {
        self.as_path()
    }
}

impl FromStr for AbsPath {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        AbsPath::new(s)
    }
}

/// A set of absolute paths that each cover themselves and everything below
/// them, matched by whole components after lexical normalisation.
///
/// `/etc` covers `/etc` and `/etc/passwd` but not `/etcetera`; a path is
/// normalised before it is compared (`/etc/./x/../passwd` is `/etc/passwd`).
/// Paths to check are bytes, since the kernel's paths need not be UTF-8.
///
/// ```
/// use sandlock_policy::path::PathSet;
/// let mut set = PathSet::new();
/// set.insert(&"/etc".parse().unwrap());
/// assert!(set.covers("/etc/passwd"));
/// assert!(set.covers("/tmp/../etc"));
/// assert!(!set.covers("/etcetera"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathSet {
    /// Normalised entries, without exact duplicates.
    paths: Vec<String>,
}

impl PathSet {
    /// The empty set.
    pub const fn new() -> PathSet {
        PathSet { paths: Vec::new() }
    }

    /// Adds `path` (normalised). Returns `false` if it was already present.
    pub fn insert(&mut self, path: &AbsPath) -> bool {
        let n = path.normalized().0;
        if self.paths.contains(&n) {
            return false;
        }
        self.paths.push(n);
        true
    }

    /// Removes every entry equal to `path` or below it (after normalising
    /// `path`), and returns how many were removed.
    pub fn remove_under(&mut self, path: &AbsPath) -> usize {
        let n = path.normalized();
        let before = self.paths.len();
        self.paths.retain(|p| !covers(n.0.as_bytes(), p.as_bytes()));
        before - self.paths.len()
    }

    /// Whether `path` is covered by an entry. A relative path cannot be
    /// judged and counts as covered, so a caller that forgot to resolve it
    /// fails closed.
    pub fn covers(&self, path: impl AsRef<[u8]>) -> bool {
        self.covering(path).is_some()
    }

    /// The entry that covers `path`, if any (a relative path is covered by
    /// any entry, see [`covers`](Self::covers); with no entry it is not).
    pub fn covering(&self, path: impl AsRef<[u8]>) -> Option<&str> {
        if self.paths.is_empty() {
            return None;
        }
        let path = path.as_ref();
        if !path.starts_with(b"/") {
            return self.paths.first().map(String::as_str);
        }
        if is_normal(path) {
            self.find(path)
        } else {
            self.find(&normalize(path))
        }
    }

    fn find(&self, normal: &[u8]) -> Option<&str> {
        self.paths
            .iter()
            .find(|p| covers(p.as_bytes(), normal))
            .map(String::as_str)
    }

    /// The normalised entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.paths.iter().map(String::as_str)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether the set has no entry.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// Whether normalised `path` equals normalised `prefix` or is below it.
fn covers(prefix: &[u8], path: &[u8]) -> bool {
    if prefix == b"/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
        None => false,
    }
}

/// Normalises an absolute path lexically (see [`AbsPath::normalized`]).
/// A relative input is treated as if it started with `/`; callers check.
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut text = Vec::with_capacity(path.len().max(1));
    for p in &parts {
        text.push(b'/');
        text.extend_from_slice(p);
    }
    if text.is_empty() {
        text.push(b'/');
    }
    text
}

/// Whether an absolute path is already in normal form (no empty, `.` or
/// `..` components, no trailing slash), so it can be matched without copying.
fn is_normal(path: &[u8]) -> bool {
    if path == b"/" {
        return true;
    }
    match path.strip_prefix(b"/") {
        Some(rest) => rest
            .split(|&b| b == b'/')
            .all(|c| !matches!(c, b"" | b"." | b"..")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        AbsPath::new(s).unwrap().normalized().0
    }

    #[test]
    fn validation() {
        assert!(AbsPath::new("/").is_ok());
        assert_eq!(AbsPath::new("").unwrap_err().reason, Reason::Empty);
        assert_eq!(AbsPath::new("etc").unwrap_err().reason, Reason::NotAbsolute);
        assert_eq!(AbsPath::new("./etc").unwrap_err().value, "./etc");
        assert_eq!(
            AbsPath::new("/e\0tc").unwrap_err().reason,
            Reason::ContainsNul
        );
        let long = alloc::format!("/{}", "a".repeat(PATH_MAX));
        assert_eq!(
            AbsPath::new(long).unwrap_err().reason,
            Reason::TooLong { max: 4095 }
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(norm("/a/./b/../c"), "/a/c");
        assert_eq!(norm("/a//b/"), "/a/b");
        assert_eq!(norm("/../.."), "/");
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("/a/b/../../.."), "/");
        assert_eq!(norm("/.../x"), "/.../x");
        assert!(is_normal(b"/a/b"));
        assert!(is_normal(b"/"));
        assert!(!is_normal(b"/a/"));
        assert!(!is_normal(b"/a/./b"));
        assert!(!is_normal(b"/a/../b"));
        assert!(!is_normal(b"a/b"));
        assert!(!is_normal(b"//a"));
    }

    #[test]
    fn component_cover() {
        assert!(covers(b"/etc", b"/etc"));
        assert!(covers(b"/etc", b"/etc/passwd"));
        assert!(!covers(b"/etc", b"/etcetera"));
        assert!(!covers(b"/etc/passwd", b"/etc"));
        assert!(covers(b"/", b"/anything"));
    }

    #[test]
    fn path_set() {
        let p = |s: &str| AbsPath::new(s).unwrap();
        let mut set = PathSet::new();
        assert!(!set.covers("relative"), "an empty set covers nothing");
        assert!(set.insert(&p("/a/./b/../c")));
        assert!(!set.insert(&p("/a/c/")));
        assert!(set.insert(&p("/a/c/d")));
        assert!(set.insert(&p("/x")));
        assert_eq!(set.iter().collect::<Vec<_>>(), ["/a/c", "/a/c/d", "/x"]);
        assert!(set.covers("/a/c"));
        assert!(set.covers(b"/a/c/\xff"));
        assert!(set.covers("/q/../a/c/z"));
        assert!(!set.covers("/a/cc"));
        assert!(!set.covers("/a"));
        assert!(set.covers("a/c"), "relative fails closed");
        assert_eq!(set.covering("/a/c/d/e"), Some("/a/c"));
        assert_eq!(set.remove_under(&p("/a")), 2);
        assert_eq!(set.len(), 1);
        let mut root = PathSet::new();
        root.insert(&p("/"));
        assert!(root.covers("/anything/at/all"));
    }
}
