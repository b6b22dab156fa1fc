//! `cargo xtask ci`: what `.ci/run` runs, then `bench --quick`.

use std::process::{Command, ExitCode};

use crate::{bench, workspace};

/// Runs `.ci/run` (fmt, clippy, the README's test command), then the quick
/// bench as a smoke test that every scenario still runs.
pub fn main() -> ExitCode {
    let script = workspace::root().join(".ci/run");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).current_dir(workspace::root());
    if let Err(e) = workspace::run_echo(&mut cmd) {
        eprintln!("xtask ci: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("== cargo xtask bench --quick (smoke test)");
    bench::quick_smoke()
}
