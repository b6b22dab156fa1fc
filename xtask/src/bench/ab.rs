//! `cargo xtask ab`: the start-up of this tree's `sandlock` against another
//! revision's, start by start.
//!
//! A bench run measures one build after the other, and the host's pace
//! drifts between them by more than most changes to the start path are
//! worth. Here both binaries are built the same way (static musl release,
//! each tree with its own code layout list), copied side by side, and
//! their page cache dropped and read back in the same way first: a copy's
//! page cache state alone moves a start by tens of µs (a freshly linked
//! binary and a copied one do not fault alike). Then each start line runs
//! both binaries alternately, A B B A ..., in two passes (A first, then B
//! first); the medians and their difference are printed per pass.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use super::measure::Runner;
use super::stats::Summary;
use super::tools::{self, MUSL_TARGET};
use crate::cli::AbOptions;
use crate::workspace;

/// The unprivileged user of the third line (`nobody` on Debian).
const NOBODY: u32 = 65534;

/// Runs `cargo xtask ab` with `opts`.
pub fn main(opts: &AbOptions) -> ExitCode {
    match ab(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask ab: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One start line: a name, the user it runs as, and sandlock's arguments.
struct Line {
    name: &'static str,
    uid: Option<u32>,
    args: Vec<OsString>,
}

fn ab(opts: &AbOptions) -> Result<(), String> {
    let dir = workspace::target_dir().join("ab");
    let rev = resolve(&opts.rev)?;
    if !tools::musl_installed() {
        return Err(format!(
            "sandlock is measured as distributed, built against musl: rustup target add {MUSL_TARGET}"
        ));
    }
    eprintln!("== building this tree's sandlock");
    let ours = tools::build(false).1?;
    if let Some((found, listed)) = crate::layout::coverage(&ours)
        && found < listed
    {
        eprintln!(
            "   warning: this tree's binary lacks {} of the {listed} start-path functions \
             crates/sandlock/link/start-order.txt lists (cargo xtask layout): they are left unplaced",
            listed - found
        );
    }
    eprintln!("== building {} ({rev})", opts.rev);
    let theirs = build_rev(&rev, &dir)?;
    let a = place(&ours, &dir.join("a"))?;
    let b = place(&theirs, &dir.join("b"))?;
    for bin in [&a, &b] {
        normalise_page_cache(bin)?;
    }

    let root = std::env::temp_dir().join(format!("sandlock-ab-{}", std::process::id()));
    let tmp = root.join("tmp");
    let runs = root.join("runs");
    // Each side's own $TMPDIR: the private directories a build reuses from
    // one run to the next (its slot, an older build's spare) must not meet
    // the other build's.
    let tmpdirs = [root.join("tmpdir-a"), root.join("tmpdir-b")];
    for d in [&root, &tmp, &runs, &tmpdirs[0], &tmpdirs[1]] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    // The working directory is granted by the default profile: nobody must
    // be able to enter it (the runs' own files go to a directory of root's).
    set_mode(&root, 0o755)?;
    set_mode(&runs, 0o700)?;
    for d in &tmpdirs {
        set_mode(d, 0o1777)?;
    }
    let result = measure(opts, &a, &b, &root, &tmp, &runs, &tmpdirs);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn measure(
    opts: &AbOptions,
    a: &Path,
    b: &Path,
    cwd: &Path,
    tmp: &Path,
    runs: &Path,
    tmpdirs: &[PathBuf; 2],
) -> Result<(), String> {
    let root = is_root();
    let os = |s: &str| OsString::from(s);
    let mut startup = vec![os("run")];
    for d in super::sandbox::system_dirs() {
        startup.push(os("-r"));
        startup.push(d.into_os_string());
    }
    startup.extend([os("-r"), cwd.as_os_str().to_owned()]);
    startup.extend([os("-w"), tmp.as_os_str().to_owned()]);
    startup.extend([os("--"), os("/bin/true")]);
    let default = vec![os("run"), os("--"), os("/bin/true")];
    // As root every line starts through the same cheap vfork (the switch
    // to uid 0 changes nothing but the supplementary groups).
    let me = root.then_some(0);
    let mut lines = vec![
        Line {
            name: "startup",
            uid: me,
            args: startup,
        },
        Line {
            name: "default",
            uid: me,
            args: default.clone(),
        },
    ];
    if root {
        lines.push(Line {
            name: "user",
            uid: Some(NOBODY),
            args: default,
        });
    } else {
        eprintln!("   not root: the line as uid {NOBODY} is skipped");
    }

    let runner = Runner::new(runs);
    println!(
        "A: this tree ({}), B: {} — {} pairs per pass, medians (µs)",
        a.display(),
        opts.rev,
        opts.pairs
    );
    println!(
        "   {:<8} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}",
        "line", "A", "B", "A-B", "A", "B", "A-B"
    );
    println!(
        "   {:<8} {:^29}   {:^29}",
        "", "pass 1 (A first)", "pass 2 (B first)"
    );
    for line in &lines {
        let mut cells = Vec::new();
        for a_first in [true, false] {
            let (ta, tb) = pass(&runner, line, [a, b], cwd, tmpdirs, opts.pairs, a_first)?;
            cells.push((ta, tb));
        }
        let [(a1, b1), (a2, b2)] = [cells[0], cells[1]];
        println!(
            "   {:<8} {a1:>9.1} {b1:>9.1} {:>+9.1}   {a2:>9.1} {b2:>9.1} {:>+9.1}",
            line.name,
            a1 - b1,
            a2 - b2
        );
    }
    Ok(())
}

/// One pass over `line`: a few untimed starts of each, then `pairs` pairs
/// alternated A B B A ... (B A A B ... unless `a_first`), each side with
/// its own `TMPDIR` (`tmpdirs`); the medians in µs.
fn pass(
    runner: &Runner,
    line: &Line,
    [a, b]: [&Path; 2],
    cwd: &Path,
    tmpdirs: &[PathBuf; 2],
    pairs: usize,
    a_first: bool,
) -> Result<(f64, f64), String> {
    let argv = |bin: &Path| {
        let mut v = vec![bin.as_os_str().to_owned()];
        v.extend(line.args.iter().cloned());
        v
    };
    let (argv_a, argv_b) = (argv(a), argv(b));
    let timeout = Duration::from_secs(30);
    let once = |argv: &[OsString]| -> Result<f64, String> {
        let side = usize::from(argv.first() != argv_a.first());
        // SAFETY: the xtask runs one thread; the spawn reads the
        // environment after this, in this thread.
        unsafe { std::env::set_var("TMPDIR", &tmpdirs[side]) };
        let run = runner.run_as(argv, cwd, timeout, line.uid)?;
        if !run.success() {
            return Err(format!("{}: {}", line.name, run.failure()));
        }
        Ok(run.wall.as_secs_f64() * 1e6)
    };
    for _ in 0..5 {
        once(&argv_a)?;
        once(&argv_b)?;
    }
    let (mut ta, mut tb) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for i in 0..pairs {
        let a_now = (i % 2 == 0) == a_first;
        for first in [a_now, !a_now] {
            if first {
                ta.push(once(&argv_a)?);
            } else {
                tb.push(once(&argv_b)?);
            }
        }
    }
    let med = |v: &[f64]| Summary::of(v).map_or(f64::NAN, |s| s.median);
    Ok((med(&ta), med(&tb)))
}

/// The full commit id of `rev`.
fn resolve(rev: &str) -> Result<String, String> {
    let out = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{rev}^{{commit}}"))
        .current_dir(workspace::root())
        .output()
        .map_err(|e| format!("git rev-parse: {e}"))?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || id.is_empty() {
        return Err(format!("--rev {rev}: not a commit of this repository"));
    }
    Ok(id)
}

/// Builds `rev`'s `sandlock` as this tree's is built, from an export of the
/// revision (`git archive`: nothing of the repository changes) into
/// `dir/src`, with a target directory of its own kept between runs.
fn build_rev(rev: &str, dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let archive = Command::new("sh")
        .arg("-c")
        .arg("git archive --format=tar \"$1\" | tar -x -C \"$2\"")
        .arg("sh")
        .arg(rev)
        .arg(&src)
        .current_dir(workspace::root())
        .status()
        .map_err(|e| format!("git archive: {e}"))?;
    if !archive.success() {
        return Err(format!("git archive {rev}: {archive}"));
    }
    let target = dir.join("target");
    let mut cmd = workspace::cargo();
    cmd.current_dir(&src)
        .env("CARGO_TARGET_DIR", &target)
        .args(["rustc", "--release", "-p", "sandlock", "--bin", "sandlock"])
        .args(["--target", MUSL_TARGET]);
    workspace::run_echo(&mut cmd).map_err(|e| format!("building {rev}: {e}"))?;
    let bin = target.join(MUSL_TARGET).join("release").join("sandlock");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("building {rev} produced no {}", bin.display()))
    }
}

/// Copies `bin` to `dir/sandlock` (both binaries then have a file of the
/// same kind, written the same way).
fn place(bin: &Path, dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let to = dir.join("sandlock");
    let _ = std::fs::remove_file(&to);
    std::fs::copy(bin, &to).map_err(|e| format!("copying {}: {e}", bin.display()))?;
    Ok(to)
}

/// Writes `path` back, drops it from the page cache, and reads it in
/// again: both binaries start from pages cached the same way.
fn normalise_page_cache(path: &Path) -> Result<(), String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(err)?;
    f.sync_all().map_err(err)?;
    // SAFETY: a valid descriptor of ours; the advice only drops clean
    // cached pages of that file.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(err(std::io::Error::from_raw_os_error(rc)));
    }
    let mut sink = Vec::new();
    f.read_to_end(&mut sink).map_err(err)?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
