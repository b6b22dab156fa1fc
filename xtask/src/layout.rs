//! `cargo xtask layout`: the list of functions a sandbox's start runs, in
//! the order first run, that release builds of `sandlock` lay out side by
//! side (`crates/sandlock/build.rs`, `crates/sandlock/link/start-order.txt`).
//!
//! It builds the binary as the bench does, runs a few kinds of start
//! (the default profile, the bench's start-up grants, a writable
//! directory) single-stepped ([`trace`]), and writes every function of the
//! binary they executed with its exact (mangled) name: lld's
//! `--symbol-ordering-file` takes names, and ignores those the binary no
//! longer has. The workspace's crates are built in one codegen unit in
//! release (`Cargo.toml`), so their functions carry no per-build suffix and
//! the names hold across edits; run it again after large changes to the
//! start path.

mod trace;

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::workspace;

/// Where the list goes, from the workspace root.
const ORDER_FILE: &str = "crates/sandlock/link/start-order.txt";

/// Runs `cargo xtask layout` (`check`: only [`check`]).
pub fn main(check_only: bool) -> ExitCode {
    if check_only {
        return match check() {
            Ok(n) => {
                println!("layout: the binary has all {n} functions of {ORDER_FILE}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask layout --check: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run() {
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

fn run() -> Result<usize, String> {
    let sandlock = crate::bench::build_sandlock()?;
    let scratch = std::env::temp_dir().join(format!("xtask-layout-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let run = |flags: &[&str]| -> Vec<String> {
        std::iter::once("run")
            .chain(flags.iter().copied())
            .chain(["--", "/bin/true"])
            .map(str::to_owned)
            .collect()
    };
    let mut grants = Vec::new();
    for dir in crate::bench::SYSTEM_DIRS {
        grants.extend(["-r", dir]);
    }
    let scratch_str = scratch.to_string_lossy().into_owned();
    let kinds = [
        run(&[]),
        run(&grants),
        run(&["-r", "/usr", "-r", "/bin", "-r", "/etc", "-w", &scratch_str]),
    ];
    let traces: Result<Vec<_>, String> = kinds
        .iter()
        .map(|args| {
            println!("layout: tracing sandlock {}", args.join(" "));
            trace::first_executed(&sandlock, args)
        })
        .collect();
    let _ = std::fs::remove_dir_all(&scratch);
    let traces = traces?;
    let out = Command::new("nm")
        .args(["-n", "-S", "--defined-only"])
        .arg(&sandlock)
        .output()
        .map_err(|e| format!("nm: {e}"))?;
    if !out.status.success() {
        return Err(format!("nm failed ({})", out.status));
    }
    let funcs = functions(&String::from_utf8_lossy(&out.stdout));
    let names = in_order(&traces, &funcs);
    if names.is_empty() {
        return Err("the traced starts ran no named function of the binary".to_owned());
    }
    let path = workspace::root().join(ORDER_FILE);
    write(&path, &names)?;
    Ok(names.len())
}

/// A function of the binary: where its code starts and ends, its name.
#[derive(Debug, PartialEq)]
struct Func {
    start: u64,
    end: u64,
    name: String,
}

/// The functions of an `nm -n -S` listing, by address. A symbol without
/// a size (hand-written assembly) ends where the next one starts.
fn functions(nm: &str) -> Vec<Func> {
    let mut funcs: Vec<(u64, Option<u64>, String)> = nm
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, size, kind, name) = match f[..] {
                [a, s, k, n] => (a, Some(s), k, n),
                [a, k, n] => (a, None, k, n),
                _ => return None,
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                return None;
            }
            let hex = |s: &str| u64::from_str_radix(s, 16).ok();
            let size = match size {
                Some(s) => Some(hex(s)?).filter(|&n| n > 0),
                None => None,
            };
            Some((hex(addr)?, size, name.to_owned()))
        })
        .collect();
    funcs.sort_by_key(|f| f.0);
    let next: Vec<u64> = funcs.iter().skip(1).map(|f| f.0).collect();
    funcs
        .into_iter()
        .enumerate()
        .filter_map(|(i, (start, size, name))| {
            let end = match size {
                Some(n) => start + n,
                None => *next.get(i)?,
            };
            Some(Func { start, end, name })
        })
        .collect()
}

/// The functions holding the traced offsets, each once: the first trace's
/// in its order, then what each further trace adds.
fn in_order(traces: &[Vec<u64>], funcs: &[Func]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::new();
    for off in traces.iter().flatten() {
        let i = funcs.partition_point(|f| f.start <= *off);
        let Some(f) = i.checked_sub(1).map(|i| &funcs[i]) else {
            continue;
        };
        if *off < f.end && seen.insert(f.name.as_str()) {
            names.push(f.name.clone());
        }
    }
    names
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

/// Builds the release binary and checks it has every function the list
/// names. A function whose symbol changed (its signature, or a type it
/// uses: the hash in its mangled name follows them) is left out of the
/// layout without a word from the linker; two dozen of them cost a start
/// about 0.1 ms. Returns the number of names.
fn check() -> Result<usize, String> {
    let sandlock = crate::bench::build_sandlock()?;
    let listed = std::fs::read_to_string(workspace::root().join(ORDER_FILE))
        .map_err(|e| format!("{ORDER_FILE}: {e}"))?;
    let out = Command::new("nm")
        .arg(&sandlock)
        .output()
        .map_err(|e| format!("nm: {e}"))?;
    if !out.status.success() {
        return Err(format!("nm failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let have: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let missing = absent(&listed, &have);
    if missing.is_empty() {
        return Ok(listed.lines().filter(|l| !l.is_empty()).count());
    }
    let mut msg = format!(
        "{} function(s) of {ORDER_FILE} are not in the binary (run cargo xtask layout):",
        missing.len()
    );
    for m in missing.iter().take(10) {
        msg.push_str("\n  ");
        msg.push_str(m);
    }
    Err(msg)
}

/// The listed names not in `have`.
fn absent<'a>(listed: &'a str, have: &std::collections::HashSet<&str>) -> Vec<&'a str> {
    listed
        .lines()
        .filter(|l| !l.is_empty() && !have.contains(l))
        .collect()
}

/// (listed names in `have`, listed names).
fn present(listed: &str, have: &std::collections::HashSet<&str>) -> (usize, usize) {
    let names: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let found = names.iter().filter(|n| have.contains(*n)).count();
    (found, names.len())
}

fn write(path: &Path, names: &[String]) -> Result<(), String> {
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{absent, functions, in_order, present};

    #[test]
    fn coverage_counts_the_listed_names_the_binary_has() {
        let have = ["memcpy", "a", "b"].into_iter().collect();
        assert_eq!(present("memcpy\nb\ngone\n\n", &have), (2, 3));
        assert_eq!(absent("memcpy\nb\ngone\n\n", &have), vec!["gone"]);
        assert!(absent("memcpy\nb\n", &have).is_empty());
    }

    #[test]
    fn functions_end_at_their_size_or_the_next_symbol() {
        let nm = "\
00000000000a3990 t __memcpy_fwd
00000000000a39c2 0000000000000040 T _start_c
00000000000a3a10 0000000000000000 T zero_sized
00000000000a3a20 0000000000000010 D some_data
00000000000a3b00 0000000000000030 W weak_fn
";
        let f = functions(nm);
        let spans: Vec<(u64, u64, &str)> = f
            .iter()
            .map(|f| (f.start, f.end, f.name.as_str()))
            .collect();
        assert_eq!(
            spans,
            [
                (0xa3990, 0xa39c2, "__memcpy_fwd"),
                (0xa39c2, 0xa3a02, "_start_c"),
                (0xa3a10, 0xa3b00, "zero_sized"),
                (0xa3b00, 0xa3b30, "weak_fn"),
            ]
        );
    }

    #[test]
    fn names_in_the_order_first_run_each_once() {
        let funcs = functions(
            "0000000000000100 0000000000000010 t a\n\
             0000000000000200 0000000000000010 t b\n\
             0000000000000300 0000000000000010 t c\n",
        );
        // 0x50 is before every function, 0x180 between two: neither counts.
        let traces = [vec![0x204, 0x50, 0x100, 0x208, 0x180], vec![0x300, 0x104]];
        assert_eq!(in_order(&traces, &funcs), ["b", "a", "c"]);
    }
}
