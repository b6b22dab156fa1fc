//! Helpers of the tests of what a sandbox sees (`view.rs`, `view_host.rs`):
//! the `view` probe and `sandlock run` as a given user.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::{NOBODY, Out, bins, root, run_as};

/// 2000-06-15T00:00:00Z.
pub const Y2000: i64 = 961_027_200;
pub const START: &str = "2000-06-15T00:00:00";

/// The `view` probe, next to `sandlock` (world-readable).
pub fn view() -> PathBuf {
    static V: OnceLock<PathBuf> = OnceLock::new();
    V.get_or_init(|| {
        let out = bins().dir().join("view");
        super::gcc("tests/progs/view.c", &out, &["-pthread"]);
        out
    })
    .clone()
}

/// The users to run as: root always; uid 65534 when the tests are root.
pub fn users() -> Vec<u32> {
    if root() { vec![0, NOBODY] } else { vec![0] }
}

/// `sandlock run FLAGS -- CMD...` as `uid`.
pub fn run(uid: u32, flags: &[&str], cmd: &[&str]) -> Out {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    run_as(uid, &bins().sandlock(), &args, &[])
}

/// The value of `key` in `key value` lines.
pub fn field(out: &Out, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no `{key}` in the output\n{out:?}"))
        .to_owned()
}

/// The value of `key` as a whole number (seconds).
pub fn secs(out: &Out, key: &str) -> i64 {
    field(out, key).parse().unwrap()
}
