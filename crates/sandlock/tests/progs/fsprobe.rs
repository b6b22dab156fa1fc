//! `fsprobe` (tests/progs/fsprobe.c), compiled once per test process next
//! to the other test binaries (a world-readable directory).
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The compiled program, in `dir`.
pub fn fsprobe(dir: &Path) -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out_path = dir.join("fsprobe");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/progs/fsprobe.c");
        let out = Command::new("gcc")
            .args([
                "-O2", "-static", "-pthread", "-Wall", "-Wextra", "-Werror", "-o",
            ])
            .arg(&out_path)
            .arg(&src)
            .output()
            .expect("gcc (the tests need gcc and a static glibc)");
        assert!(
            out.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::set_permissions(&out_path, fs::Permissions::from_mode(0o755)).unwrap();
        out_path
    })
    .clone()
}
