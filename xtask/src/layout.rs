//! `cargo xtask layout`: the list of functions a sandbox's start runs,
//! hottest first, that release builds of `sandlock` lay out side by side
//! (`crates/sandlock/build.rs`, `crates/sandlock/link/start-order.txt`).
//!
//! It builds the binary as the bench does, samples `perf record -e
//! cpu-clock:u` over many starts (the default profile, and the bench's
//! start-up grants), and writes the sampled functions of the binary, most
//! sampled first, with their exact (mangled) names: lld's
//! `--symbol-ordering-file` takes names, and ignores those the binary no
//! longer has. Run it again after large changes to the start path.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use crate::workspace;

/// Where the list goes, from the workspace root.
const ORDER_FILE: &str = "crates/sandlock/link/start-order.txt";

/// Runs `cargo xtask layout` with `starts` starts of each kind.
pub fn main(starts: u32) -> ExitCode {
    match run(starts) {
        Ok(n) => {
            println!("layout: {n} functions in {ORDER_FILE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask layout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(starts: u32) -> Result<usize, String> {
    let has_perf = Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_perf {
        return Err("perf is not installed (Debian: apt-get install linux-perf)".to_owned());
    }
    let sandlock = crate::bench::build_sandlock()?;
    let scratch = std::env::temp_dir().join(format!("xtask-layout-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let data = scratch.join("perf.data");
    let s = sandlock.display();
    let w = scratch.display();
    let script = format!(
        "for i in $(seq {starts}); do \
         {s} run -- /bin/true; \
         {s} run -r /usr -r /bin -r /etc -w {w} -- /bin/true; \
         done >/dev/null"
    );
    let recorded = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock:u", "-F", "30000", "-o"])
        .arg(&data)
        .args(["--", "sh", "-c", &script])
        .status()
        .map_err(|e| format!("perf record: {e}"))?;
    if !recorded.success() {
        return Err(format!("perf record failed ({recorded})"));
    }
    let report = Command::new("perf")
        .args(["report", "--stdio", "--no-demangle", "-g", "none"])
        .args(["--comm", "sandlock", "--sort", "dso,sym", "-i"])
        .arg(&data)
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    let _ = std::fs::remove_dir_all(&scratch);
    if !report.status.success() {
        return Err(format!("perf report failed ({})", report.status));
    }
    let dso = sandlock
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let names = functions(&String::from_utf8_lossy(&report.stdout), &dso);
    if names.is_empty() {
        return Err("perf sampled no function of the binary".to_owned());
    }
    let path = workspace::root().join(ORDER_FILE);
    write(&path, &names)?;
    Ok(names.len())
}

/// How many of the listed functions `binary` still has, of how many
/// listed: a list that names few of them no longer lays the start path
/// out (`nm` reads the names; `None` when it cannot).
pub fn coverage(binary: &Path) -> Option<(usize, usize)> {
    let listed = std::fs::read_to_string(workspace::root().join(ORDER_FILE)).ok()?;
    let out = Command::new("nm").arg(binary).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let have: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    Some(present(&listed, &have))
}

/// (listed names in `have`, listed names).
fn present(listed: &str, have: &std::collections::HashSet<&str>) -> (usize, usize) {
    let names: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let found = names.iter().filter(|n| have.contains(*n)).count();
    (found, names.len())
}

/// The functions of `dso` in a `perf report --sort dso,sym` listing, in its
/// order (most samples first).
fn functions(report: &str, dso: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, d, kind, sym) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (d == dso && kind == "[.]" && !sym.starts_with("0x")).then(|| sym.to_owned())
        })
        .collect()
}

fn write(path: &Path, names: &[String]) -> Result<(), String> {
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{functions, present};

    #[test]
    fn coverage_counts_the_listed_names_the_binary_has() {
        let have = ["memcpy", "a", "b"].into_iter().collect();
        assert_eq!(present("memcpy\nb\ngone\n\n", &have), (2, 3));
    }

    #[test]
    fn the_binarys_sampled_functions_in_order() {
        let report = "\
# Overhead  Shared Object  Symbol
#
     5.10%  sandlock       [.] memcpy
     3.02%  [kernel.kallsyms]  [k] clear_page_erms
     2.50%  sandlock       [.] _ZN8sandlock3cli4main17h0123456789abcdefE
     1.00%  libc.so.6      [.] __libc_start_main
     0.40%  sandlock       [.] 0x00000000000a3770
     0.20%  sandlock       [.] _ZN8sandlock7ruleset8Landlock3add17hE.llvm.42
";
        assert_eq!(
            functions(report, "sandlock"),
            [
                "memcpy",
                "_ZN8sandlock3cli4main17h0123456789abcdefE",
                "_ZN8sandlock7ruleset8Landlock3add17hE.llvm.42",
            ]
        );
    }
}
