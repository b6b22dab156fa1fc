//! Shared helpers of the integration tests: the `sandlock` binary and the
//! `probe` program (compiled with gcc) in a world-readable directory, so
//! that uid 65534 can run them too; scratch directories; running and
//! parsing.
#![allow(dead_code, clippy::unwrap_used)]

pub mod view;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The unprivileged uid/gid of the tests.
pub const NOBODY: u32 = 65534;

/// Where the binaries live (world-readable, under /tmp).
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn sandlock(&self) -> PathBuf {
        self.dir.join("sandlock")
    }
    pub fn probe(&self) -> PathBuf {
        self.dir.join("probe")
    }
}

/// Compiles `src` (relative to the crate) into `out` with `gcc -O2 -Wall
/// -Wextra -Werror` and `flags`; a failure is the test's, with gcc's
/// message.
pub fn gcc(src: &str, out: &Path, flags: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let r = Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror"])
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(&src)
        .output()
        .expect("gcc (the tests need gcc and a static glibc)");
    assert!(
        r.status.success(),
        "gcc {}: {}",
        src.display(),
        String::from_utf8_lossy(&r.stderr)
    );
}

/// The binaries, built once per test process.
pub fn bins() -> &'static Bins {
    static B: OnceLock<Bins> = OnceLock::new();
    B.get_or_init(|| {
        remove_stale();
        let dir = std::env::temp_dir().join(format!("sandlock-it-bins-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        gcc("tests/progs/probe.c", &dir.join("probe"), &["-static"]);
        fs::copy(env!("CARGO_BIN_EXE_sandlock"), dir.join("sandlock")).unwrap();
        for f in ["probe", "sandlock"] {
            fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        Bins { dir }
    })
}

/// Removes what earlier test processes (now dead) left in the temp dir:
/// the binaries directory cannot be removed by the process that uses it.
fn remove_stale() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("sandlock-it-") else {
            continue;
        };
        let pid = rest
            .trim_start_matches("bins-")
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Whether the tests run as root (CI does); the unprivileged variants
/// need it to switch to uid 65534.
pub fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A scratch directory, removed at drop.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A fresh directory owned by `uid` (mode 0755).
    pub fn new(uid: u32) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "sandlock-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        if root() {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        }
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    /// `p` as a string.
    pub fn s(&self, p: &str) -> String {
        self.join(p).to_string_lossy().into_owned()
    }

    /// Creates directory `p` (owned like the scratch).
    pub fn dir(&self, p: &str) -> PathBuf {
        let d = self.join(p);
        fs::create_dir_all(&d).unwrap();
        self.own(&d);
        d
    }

    /// Creates file `p` with `body`.
    pub fn file(&self, p: &str, body: &str) -> PathBuf {
        let f = self.join(p);
        fs::write(&f, body).unwrap();
        self.own(&f);
        f
    }

    fn own(&self, p: &Path) {
        if root() {
            let uid = fs::metadata(&self.path)
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                .unwrap();
            std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Out {
        Out {
            code: out.status.code(),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Out {
    /// `OP -> "ok" | "errno=N"` from the probe's lines.
    pub fn results(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    }

    /// The answer to `op`.
    pub fn get(&self, op: &str) -> String {
        self.results()
            .get(op)
            .cloned()
            .unwrap_or_else(|| panic!("no `{op}` in the output\n{self:?}"))
    }
}

/// A command that runs `program` as `uid` (0: as we are; else through
/// setpriv, without supplementary groups).
pub fn command_as(uid: u32, program: &Path) -> Command {
    if uid == 0 {
        return Command::new(program);
    }
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(program);
    c
}

/// `program args` as `uid` (see [`command_as`]), from the binaries'
/// directory, with `env` added; its standard streams left to the caller.
fn command_in_bins<S: AsRef<OsStr>>(
    uid: u32,
    program: &Path,
    args: &[S],
    env: &[(&str, &str)],
) -> Command {
    let mut cmd = command_as(uid, program);
    cmd.args(args).current_dir(bins().dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `program args` as `uid` (0: as we are; else through setpriv),
/// from the binaries' directory, with `env` added.
pub fn run_as<S: AsRef<OsStr>>(uid: u32, program: &Path, args: &[S], env: &[(&str, &str)]) -> Out {
    let out = command_in_bins(uid, program, args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Out::from(out)
}

/// `sandlock ARGS` as root (or whoever runs the tests).
pub fn sandlock<S: AsRef<OsStr>>(args: &[S]) -> Out {
    run_as(0, &bins().sandlock(), args, &[])
}

/// `sandlock run FLAGS -- probe OPS`.
pub fn probe_in(uid: u32, flags: &[&str], ops: &[&str]) -> Out {
    let probe = bins().probe();
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.push(probe.to_string_lossy().into_owned());
    args.extend(ops.iter().map(|s| s.to_string()));
    run_as(uid, &bins().sandlock(), &args, &[])
}

/// Runs `sandlock ARGS` as `uid` whose command prints one line, then
/// waits for a line on its standard input (probe's `line`): `meanwhile`
/// runs on the host in between. Returns the first line, the rest of the
/// output, and the exit code.
pub fn run_with_pause<S: AsRef<OsStr>>(
    uid: u32,
    args: &[S],
    env: &[(&str, &str)],
    meanwhile: impl FnOnce(),
) -> (String, String, Option<i32>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = command_in_bins(uid, &bins().sandlock(), args, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    meanwhile();
    // The command may have ended already (a failed start): no error.
    let _ = child.stdin.take().unwrap().write_all(b"\n");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    (first, rest, child.wait().unwrap().code())
}

/// Every descendant of `pid` now (from the parents in `/proc/*/stat`).
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent = BTreeMap::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some(pp) = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|v| v.parse::<i32>().ok())
        {
            parent.insert(p, pp);
        }
    }
    let mut out = vec![];
    let mut todo = vec![pid];
    while let Some(q) = todo.pop() {
        for (&c, &pp) in &parent {
            if pp == q {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// Whether every process whose argv holds `marker` has ended within `secs`.
pub fn gone_marked(marker: &str, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let alive = fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                return false;
            };
            let marked = fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == marker.as_bytes()));
            marked
                && fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    let state = s
                        .rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().next());
                    state != Some("Z") && state != Some("X")
                })
        });
        if !alive {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether process `pid` has ended (or is a zombie) within `secs`.
pub fn gone_within(pid: i32, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) => {
                let state = s
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                if state == Some("Z") || state == Some("X") {
                    return true;
                }
            }
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `program args` as uid 65534 where no user namespace can be made:
/// in a user namespace of the test's own (mapping uids and gids 0-65535 to
/// the same host ids, so that 65534 is itself there) whose
/// `user.max_user_namespaces` is 0. The host's setting is left alone. The
/// test must run as root (it writes the maps from outside).
pub fn run_without_user_namespaces<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> Out {
    use std::io::Write;
    // The shell unshare runs has no capability (its uid was not mapped
    // yet at its exec); the one it execs once the maps are written is root
    // of the namespace.
    let script = "read go && exec /bin/sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && \
                  exec setpriv --reuid=65534 --regid=65534 --clear-groups -- \"$@\"' sh \"$@\"";
    let mut child = Command::new("/usr/bin/unshare")
        .args(["-U", "--", "/bin/sh", "-c", script, "sh"])
        .arg(program)
        .args(args)
        .current_dir(bins().dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The maps can be written once unshare has made the namespace.
    let ours = fs::read_link("/proc/self/ns/user").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while fs::read_link(format!("/proc/{pid}/ns/user")).ok().as_ref() == Some(&ours) {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare made no namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    fs::write(format!("/proc/{pid}/uid_map"), "0 0 65536\n").unwrap();
    fs::write(format!("/proc/{pid}/gid_map"), "0 0 65536\n").unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    Out::from(child.wait_with_output().unwrap())
}

/// `out` is sandlock's refusal before anything ran: exit 125, one line on
/// standard error holding each of `names`, and no `ran` from the command.
pub fn assert_refused(out: &Out, names: &[&str]) {
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(!out.stdout.contains("ran"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    for n in names {
        assert!(out.stderr.contains(n), "{n}: {out:?}");
    }
}

/// A thread of the test renaming a file of its own scratch directory back
/// and forth, as fast as it can, until dropped: a lookup through `..`
/// with `RESOLVE_IN_ROOT` or `RESOLVE_BENEATH` anywhere on the machine
/// then sometimes gets `EAGAIN` from the kernel (openat2(2)).
#[allow(dead_code)]
pub struct Renamer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
    _dir: Scratch,
}

#[allow(dead_code)]
impl Renamer {
    pub fn start() -> Renamer {
        let dir = Scratch::new(0);
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, "x").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let _ = fs::rename(&a, &b);
                let _ = fs::rename(&b, &a);
                n += 2;
            }
            n
        });
        Renamer {
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Stops the thread; how many renames it made.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for Renamer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
