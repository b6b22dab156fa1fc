//! Paths as bytes: lexical joins and normalisation, components, and the
//! real path of a descriptor (`/proc/self/fd/N`).
//!
//! A lexical result is only trusted where no symlink can change it: the
//! resolver uses [`lexical`] after the kernel walked the same path with
//! `RESOLVE_NO_SYMLINKS`, and the real path ([`fd_path`]) otherwise.

use std::os::fd::{AsFd, AsRawFd};

use rustix::io::Errno;

/// `base` joined with `rel` (`rel` absolute: `rel` alone), normalised:
/// no `.`, no `..` (a `..` at the root stays there), no `//`, no trailing
/// slash. `base` must be absolute.
pub(crate) fn lexical(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(base.len() + rel.len() + 1);
    let push_all = |out: &mut Vec<u8>, p: &[u8]| {
        for c in p.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    out.truncate(cut);
                }
                c => {
                    out.push(b'/');
                    out.extend_from_slice(c);
                }
            }
        }
    };
    if !rel.starts_with(b"/") {
        push_all(&mut out, base);
    }
    push_all(&mut out, rel);
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Whether `path` has a `..` component.
pub(crate) fn has_dotdot(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|c| c == b"..")
}

/// Whether `outer` is `inner` or one of its ancestors, by whole components
/// (both normalised and absolute).
pub(crate) fn is_within(outer: &[u8], inner: &[u8]) -> bool {
    if outer == b"/" {
        return inner.starts_with(b"/");
    }
    inner.starts_with(outer) && (inner.len() == outer.len() || inner[outer.len()] == b'/')
}

/// `path` split into the directory part and its last component, trailing
/// slashes ignored: `a/b/` gives (`a`, `b`), `b` gives (`.`, `b`), `/b`
/// gives (`/`, `b`), `/` gives (`/`, `.`).
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    let trimmed = &path[..end];
    if trimmed == b"/" {
        return (b"/", b".");
    }
    match trimmed.iter().rposition(|&b| b == b'/') {
        None => (b".", trimmed),
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
    }
}

/// Whether `path` ends with a slash (the kernel then requires a directory).
pub(crate) fn trailing_slash(path: &[u8]) -> bool {
    path.len() > 1 && path.ends_with(b"/")
}

/// A close-on-exec duplicate of `fd`.
pub(crate) fn dup(fd: impl AsFd) -> Result<std::os::fd::OwnedFd, Errno> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
}

/// `"/proc/self/fd/N"` for our descriptor `fd`.
pub(crate) fn proc_fd(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// The real path of our descriptor `fd` (the kernel's `d_path`, through
/// `/proc/self/fd/N`). An unlinked file ends in ` (deleted)`; a file of an
/// internal mount (a pipe, a socket) is not absolute (`pipe:[123]`).
pub(crate) fn fd_path(fd: impl AsFd) -> Result<Vec<u8>, Errno> {
    let link = proc_fd(fd);
    let p = rustix::fs::readlink(link.as_str(), Vec::with_capacity(128))?;
    Ok(p.into_bytes())
}

/// The components of a relative or absolute path, in order (empty and `.`
/// components dropped; `..` kept).
pub(crate) fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_joins_and_normalises() {
        assert_eq!(lexical(b"/a/b", b"c"), b"/a/b/c");
        assert_eq!(lexical(b"/a/b", b"../c"), b"/a/c");
        assert_eq!(lexical(b"/a/b", b"/x//y/./z/"), b"/x/y/z");
        assert_eq!(lexical(b"/", b"../../.."), b"/");
        assert_eq!(lexical(b"/a", b""), b"/a");
        assert_eq!(lexical(b"/", b"."), b"/");
    }

    #[test]
    fn within_is_by_components() {
        assert!(is_within(b"/w/secret", b"/w/secret"));
        assert!(is_within(b"/w/secret", b"/w/secret/x"));
        assert!(!is_within(b"/w/secret", b"/w/secretary"));
        assert!(!is_within(b"/w/secret/x", b"/w/secret"));
        assert!(is_within(b"/", b"/anything"));
    }

    #[test]
    fn split_last_handles_slashes() {
        assert_eq!(split_last(b"a/b/"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_last(b"b"), (&b"."[..], &b"b"[..]));
        assert_eq!(split_last(b"/b"), (&b"/"[..], &b"b"[..]));
        assert_eq!(split_last(b"/"), (&b"/"[..], &b"."[..]));
        assert_eq!(split_last(b"/a/b//"), (&b"/a"[..], &b"b"[..]));
        assert!(has_dotdot(b"a/../b") && !has_dotdot(b"a/..b"));
        assert!(trailing_slash(b"a/") && !trailing_slash(b"/"));
    }
}
