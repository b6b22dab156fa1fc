//! The hostile programs: compiled once per test process, with a copy of
//! the `sandlock` binary, into a world-readable directory under /tmp so
//! that uid 65534 can run them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;

use crate::scratch::{remove_stale, unique_dir};

const PROGRAMS: &[&str] = &[
    "helpers",
    "shape",
    "kernel",
    "supervisor",
    "race",
    "fs",
    "net",
    "resource",
];

/// The compiled programs and the copied `sandlock` binary.
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    /// The directory holding everything (world-readable).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of one compiled program.
    pub fn prog(&self, name: &str) -> PathBuf {
        assert!(PROGRAMS.contains(&name), "no escape program {name}");
        self.dir.join(name)
    }

    /// Path of the copied `sandlock` binary.
    pub fn sandlock(&self) -> PathBuf {
        self.dir.join("sandlock")
    }
}

/// Build (once per test process) the programs and copy sandlock.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(build)
}

fn build() -> Bins {
    remove_stale();
    let dir = unique_dir("bins");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/escape");
    let jobs: Vec<_> = PROGRAMS
        .iter()
        .map(|name| {
            let (src, out) = (src.clone(), dir.join(name));
            thread::spawn(move || compile(&src, name, &out))
        })
        .collect();
    for job in jobs {
        job.join().expect("compiler thread panicked");
    }
    // SANDLOCK_ESCAPE_BIN runs the suite against another build (or another
    // sandbox with the same `run FLAGS -- CMD` interface).
    let sandlock = std::env::var_os("SANDLOCK_ESCAPE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sandlock")));
    fs::copy(&sandlock, dir.join("sandlock"))
        .unwrap_or_else(|e| panic!("copy {}: {e}", sandlock.display()));
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    Bins { dir }
}

fn compile(src: &Path, name: &str, out: &Path) {
    let source = src.join(format!("{name}.c"));
    let result = Command::new("gcc")
        .args(["-O2", "-static", "-pthread", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg(&source)
        .output()
        .expect("run gcc (the escape suite needs gcc and static glibc)");
    assert!(
        result.status.success(),
        "gcc failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// The library runner `examples/policy_callback` (a `Sandbox` with a
/// policy callback, driven like `sandlock run`), brought up to date by
/// cargo (`cargo test --test escape` alone does not build examples, and a
/// stale runner would test old code; a no-op when fresh) and copied next
/// to the programs (world-readable, for uid 65534).
pub fn callback_runner() -> PathBuf {
    static RUNNER: OnceLock<PathBuf> = OnceLock::new();
    RUNNER
        .get_or_init(|| {
            let sandlock = PathBuf::from(env!("CARGO_BIN_EXE_sandlock"));
            let profile_dir = sandlock.parent().expect("target profile directory");
            let built = profile_dir.join("examples/policy_callback");
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "-p", "sandlock", "--example", "policy_callback"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.ends_with("release") {
                cargo.arg("--release");
            }
            // Under `cargo test --target T` the binaries are in
            // target/T/PROFILE: build the example for T too.
            let triple = profile_dir
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .filter(|n| n.contains("-linux-"));
            if let Some(triple) = triple {
                cargo.args(["--target", triple]);
            }
            let out = cargo.output().expect("run cargo");
            assert!(
                out.status.success(),
                "cargo build --example policy_callback:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dest = bins().dir().join("policy_callback");
            fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
            dest
        })
        .clone()
}
