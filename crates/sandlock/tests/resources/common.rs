//! Shared by the resource tests: the probe program, running `sandlock run`
//! as root or as uid 65534, finding processes by a unique marker.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Who runs sandlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    Root,
    Nobody,
}

/// The tests start processes as uid 65534 with `setpriv`: they need root
/// (CI runs as root). Without it, say so and skip.
pub fn have_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: the resource tests run as root (and as 65534 through setpriv)");
    }
    root
}

/// The directory of the probe program (world-readable).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // A test process re-run as 65534 uses its parent's copy.
        if let Some(d) = std::env::var_os("SANDLOCK_TEST_BIN_DIR") {
            return PathBuf::from(d);
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sandlock-resources-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/probe.c");
        let out = dir.join("probe");
        let r = Command::new("gcc")
            .args(["-O2", "-pthread", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("gcc (the resource tests compile a probe program)");
        assert!(
            r.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        for p in [dir.as_path(), out.as_path()] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The target directory's parents must be searchable by 65534.
        dir
    })
}

/// The probe program.
pub fn probe() -> PathBuf {
    bin_dir().join("probe")
}

/// A unique marker, for finding processes by their argv.
pub fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}{:04}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `sandlock run FLAGS -r BIN_DIR -- CMD...`, as `user`.
pub fn sandlock(user: User, flags: &[&str], cmd: &[&dyn AsRef<OsStr>]) -> Command {
    let exe = env!("CARGO_BIN_EXE_sandlock");
    let mut c = match user {
        User::Root => Command::new(exe),
        User::Nobody => {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                exe,
            ]);
            c
        }
    };
    c.arg("run").args(flags).arg("-r").arg(bin_dir()).arg("--");
    for a in cmd {
        c.arg(a.as_ref());
    }
    c.current_dir("/").stdin(Stdio::null());
    c
}

/// Runs `cmd` to its end.
pub fn output(mut cmd: Command) -> Output {
    cmd.output().expect("run sandlock")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything about a run, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `key=N` in `text`.
pub fn field(text: &str, key: &str) -> Option<f64> {
    let pat = format!("{key}=");
    let at = text.find(&pat)? + pat.len();
    text[at..]
        .split(|c: char| c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// Processes (pid, start time) whose argv contains `marker`, zombies left
/// out.
pub fn marked(marker: &str) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !cmd.split(|&b| b == 0).any(|a| a == marker.as_bytes()) {
            continue;
        }
        if let Some((state, start)) = state_start(pid)
            && state != "Z"
        {
            out.push((pid, start));
        }
    }
    out
}

/// State and start time of `pid`.
pub fn state_start(pid: i32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.first()?.to_string(), f.get(19)?.parse().ok()?))
}

/// Whether process `(pid, start)` still runs (not a zombie; a reused pid
/// has another start time).
pub fn alive(p: (i32, u64)) -> bool {
    state_start(p.0).is_some_and(|(s, start)| start == p.1 && s != "Z" && s != "X")
}

/// Waits until `cond` holds, at most `limit` (a liveness bound, never a
/// speed assertion).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
