//! `fsprobe` (tests/progs/fsprobe.c), compiled once per test process next
//! to the other test binaries (a world-readable directory).
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The compiled program, in `dir`.
pub fn fsprobe(dir: &Path) -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out_path = dir.join("fsprobe");
        crate::common::gcc("tests/progs/fsprobe.c", &out_path, &["-static", "-pthread"]);
        fs::set_permissions(&out_path, fs::Permissions::from_mode(0o755)).unwrap();
        out_path
    })
    .clone()
}
