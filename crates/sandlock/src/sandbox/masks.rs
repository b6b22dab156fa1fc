//! The policy's masked paths (`fs_masked`), checked once at
//! [`Sandbox::new`](super::Sandbox::new) and mounted at each launch.

use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use rustix::io::Errno;
use sandlock_policy::Policy;

use crate::error::Error;

/// One path to mask: its host path and whether it is a directory (the
/// mount over it must be of the same kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mask {
    /// The host path (a rooted policy's paths are host paths already).
    pub(crate) path: PathBuf,
    /// Whether it is a directory (an empty read-only tmpfs goes over it),
    /// else `/dev/null` does.
    pub(crate) dir: bool,
}

/// The masks of `policy`, each checked:
///
/// - a path that does not exist is left out: there is nothing to hide,
///   and the sandbox cannot create it (see the next point);
/// - a file (anything but a directory) under a writable path is refused:
///   the sandbox could open the mask for writing, and what it wrote would
///   be lost to `/dev/null`. A masked directory is read-only (`EROFS`).
pub(crate) fn masks(policy: &Policy) -> Result<Vec<Mask>, Error> {
    let mut out = Vec::new();
    for p in policy.fs_masked() {
        let path = p.as_path();
        let kind = match rustix::fs::stat(path) {
            Ok(st) => FileType::from_raw_mode(st.st_mode),
            Err(Errno::NOENT | Errno::NOTDIR) => continue,
            Err(errno) => {
                return Err(Error::Path {
                    field: "fs_masked",
                    path: p.to_string(),
                    errno,
                });
            }
        };
        let dir = kind == FileType::Directory;
        if !dir
            && let Some(w) = policy
                .fs_writable()
                .iter()
                .find(|w| within(path, w.as_path()))
        {
            return Err(Error::Invalid {
                field: "fs_masked",
                value: p.to_string(),
                why: format!(
                    "is a file in the writable path {w}: what the sandbox wrote to it would be lost \
                     (/dev/null is mounted over a masked file); use fs_denied, or mask a directory"
                ),
            });
        }
        out.push(Mask {
            path: path.to_path_buf(),
            dir,
        });
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
    fn kinds_are_read_and_missing_paths_left_out() {
        let dir = Scratch::new(line!().to_string().as_str());
        let file = dir.path().join("f");
        std::fs::write(&file, b"secret").unwrap();
        let d = dir.path().to_str().unwrap();
        let p = policy(
            Policy::builder()
                .fs_read(d)
                .fs_mask(file.to_str().unwrap())
                .fs_mask(d)
                .fs_mask(format!("{d}/missing"))
                .fs_mask(format!("{d}/f/below")),
        );
        let m = masks(&p).unwrap();
        assert_eq!(
            m,
            [
                Mask {
                    path: file.clone(),
                    dir: false
                },
                Mask {
                    path: dir.path().to_path_buf(),
                    dir: true
                },
            ]
        );
    }

    #[test]
    fn a_file_under_a_writable_path_is_refused_a_directory_is_not() {
        let dir = Scratch::new(line!().to_string().as_str());
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("f");
        std::fs::write(&file, b"secret").unwrap();
        let d = dir.path().to_str().unwrap();
        let file_mask = policy(
            Policy::builder()
                .fs_write(d)
                .fs_mask(file.to_str().unwrap()),
        );
        match masks(&file_mask) {
            Err(Error::Invalid { field, value, why }) => {
                assert_eq!(field, "fs_masked");
                assert_eq!(value, file.to_str().unwrap());
                assert!(why.contains(d), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let dir_mask = policy(Policy::builder().fs_write(d).fs_mask(sub.to_str().unwrap()));
        assert_eq!(masks(&dir_mask).unwrap().len(), 1);
        // A writable path beside the file, with a common prefix, is not above it.
        let beside = policy(
            Policy::builder()
                .fs_write(format!("{}/su", d))
                .fs_mask(file.to_str().unwrap()),
        );
        assert_eq!(masks(&beside).unwrap().len(), 1);
    }
}
