//! The policy's masked paths (`fs_masked`), checked once at
//! [`Sandbox::new`](super::Sandbox::new) and mounted at each launch.

use std::path::{Path, PathBuf};

use rustix::io::Errno;
use sandlock_policy::Policy;

use crate::error::Error;

/// The masks of `policy` (host paths; a rooted policy's paths are host
/// paths already), each checked:
///
/// - a path that does not exist is left out: there is nothing to hide,
///   and the sandbox cannot create it (see the next point);
/// - a path whose directory is a writable path or lies in one is
///   refused: the directory is shown through a read-only overlay (what
///   holds the mask by name, `ns::overlay`), which would take the writes
///   away. Writable paths below the directory are bound again on top.
/// - a path right under `/`, or under the new root `root`, is refused: an
///   overlay over the process's root directory would not be seen (a
///   lookup from the root starts below what is mounted on it).
pub(crate) fn masks(policy: &Policy, root: Option<&Path>) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in policy.fs_masked() {
        // A path given by a link masks what the link leads to.
        let path = match std::fs::canonicalize(p.as_path()) {
            Ok(real) => real,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => continue,
            Err(e) => {
                return Err(Error::Path {
                    field: "fs_masked",
                    path: p.to_string(),
                    errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
                });
            }
        };
        let path = path.as_path();
        let refuse = |why: String| Error::Invalid {
            field: "fs_masked",
            value: p.to_string(),
            why,
        };
        let top = root.unwrap_or(Path::new("/"));
        let Some(dir) = path.parent().filter(|d| *d != top && within(d, top)) else {
            return Err(refuse(format!(
                "cannot be masked: its directory is the root ({}); mask a directory below it",
                top.display()
            )));
        };
        if let Some(w) = policy
            .fs_writable()
            .iter()
            .find(|w| within(dir, w.as_path()))
        {
            return Err(refuse(format!(
                "is in the writable path {w}: its directory would be shown read-only (a mask is \
                 an overlay of it); use fs_denied, or grant the writable paths below it"
            )));
        }
        out.push(path.to_path_buf());
    }
    Ok(out)
}

/// Whether `path` is `outer` or below it (by components).
fn within(path: &Path, outer: &Path) -> bool {
    path.starts_with(outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(b: sandlock_policy::PolicyBuilder) -> Policy {
        b.build().unwrap()
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("sandlock-masks-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn missing_paths_are_left_out_links_followed() {
        let dir = Scratch::new(line!().to_string().as_str());
        let file = dir.path().join("f");
        std::fs::write(&file, b"secret").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("link")).unwrap();
        let d = dir.path().to_str().unwrap();
        let p = policy(
            Policy::builder()
                .fs_read(d)
                .fs_mask(format!("{d}/link"))
                .fs_mask(d)
                .fs_mask(format!("{d}/missing"))
                .fs_mask(format!("{d}/f/below")),
        );
        assert_eq!(masks(&p, None).unwrap(), [file, dir.path().to_path_buf()]);
        // Nothing right under the root: its overlay would not be seen.
        for (masked, root) in [
            ("/", None),
            ("/usr", None),
            (d, Some(dir.path().parent().unwrap())),
        ] {
            let p = policy(Policy::builder().fs_read("/usr").fs_mask(masked));
            match masks(&p, root) {
                Err(Error::Invalid { value, why, .. }) => {
                    assert_eq!(value, masked);
                    assert!(why.contains("root"), "{why}");
                }
                other => panic!("{masked}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_path_whose_directory_is_writable_is_refused() {
        let dir = Scratch::new(line!().to_string().as_str());
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("f");
        std::fs::write(&file, b"secret").unwrap();
        let d = dir.path().to_str().unwrap();
        for masked in [&file, &sub] {
            let p = policy(
                Policy::builder()
                    .fs_write(d)
                    .fs_mask(masked.to_str().unwrap()),
            );
            match masks(&p, None) {
                Err(Error::Invalid { field, value, why }) => {
                    assert_eq!(field, "fs_masked");
                    assert_eq!(value, masked.to_str().unwrap());
                    assert!(why.contains(d), "{why}");
                }
                other => panic!("{other:?}"),
            }
        }
        // A writable path below the directory, or beside it with a common
        // prefix, is not above it.
        for w in [format!("{d}/sub/w"), format!("{d}/su")] {
            let p = policy(
                Policy::builder()
                    .fs_write(w)
                    .fs_mask(file.to_str().unwrap()),
            );
            assert_eq!(masks(&p, None).unwrap().len(), 1);
        }
    }
}
