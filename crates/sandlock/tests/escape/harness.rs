//! How the escape suite runs its hostile programs: each attack is started
//! either bare or as `sandlock run FLAGS -- PROG TAG MODE ARGS`, as root or
//! through `setpriv` as uid 65534, and driven through the line protocol of
//! `common.h`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::procfs;
pub use crate::programs::bins;
pub use crate::scratch::{Scratch, nonce};

/// The unprivileged uid (and gid) of the suite, as in the project's standards.
pub const NOBODY: u32 = 65534;

/// How long any single wait of the suite may take before it is a hang.
/// This is a guard against a stuck test, never a speed assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// Who runs the program (and sandlock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// uid 0, with every capability.
    Root,
    /// uid/gid 65534, no supplementary groups.
    Nobody,
}

impl User {
    /// The numeric uid (which is also the gid).
    pub fn uid(self) -> u32 {
        match self {
            User::Root => 0,
            User::Nobody => NOBODY,
        }
    }
}

/// Bare (no sandbox: proves the attack works) or under `sandlock run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The attack runs unconfined.
    Bare(User),
    /// The attack runs under `sandlock run`, itself run by this user.
    Sandboxed(User),
}

impl Mode {
    /// Who runs it.
    pub fn user(self) -> User {
        match self {
            Mode::Bare(u) | Mode::Sandboxed(u) => u,
        }
    }

    /// Under sandlock?
    pub fn sandboxed(self) -> bool {
        matches!(self, Mode::Sandboxed(_))
    }
}

/// The suite drives other users' processes and the kernel's privileged
/// interfaces: it needs root (CI runs as root). Without it, say so and skip.
pub fn have_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("escape suite: skipped, it must run as root (CI does)");
    }
    root
}

/// The argv prefix that runs a command as `user`.
pub fn as_user(user: User) -> Vec<OsString> {
    match user {
        User::Root => vec![],
        User::Nobody => [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]
        .iter()
        .map(OsString::from)
        .collect(),
    }
}

/// One attack: a program, its mode and arguments, and (when sandboxed) the
/// sandlock flags it runs under.
pub struct Attack {
    mode: Mode,
    prog: PathBuf,
    attack: String,
    args: Vec<OsString>,
    flags: Vec<OsString>,
    wrapper: Vec<OsString>,
    sandlock: Option<PathBuf>,
    envs: Vec<(String, String)>,
    stderr: Option<Stdio>,
    tag: String,
    /// Whether sandboxed runs get `-r BINS` (not under `--chroot`, where
    /// paths are the new root's).
    bins_flag: bool,
}

impl Attack {
    /// `PROG TAG ATTACK`, bare or sandboxed according to `mode`.
    pub fn new(mode: Mode, prog: &str, attack: &str) -> Attack {
        Attack {
            mode,
            prog: bins().prog(prog),
            attack: attack.to_string(),
            args: vec![],
            flags: vec![],
            wrapper: vec![],
            sandlock: None,
            envs: vec![],
            stderr: None,
            tag: nonce("tag"),
            bins_flag: true,
        }
    }

    /// Run the program from `path` (as the process will see it, e.g. inside
    /// a new root), without `-r BINS` when sandboxed.
    pub fn prog_at(mut self, path: impl Into<PathBuf>) -> Attack {
        self.prog = path.into();
        self.bins_flag = false;
        self
    }

    /// One more argument for the program.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Attack {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// One sandlock flag or flag value (ignored when bare).
    pub fn flag(mut self, f: impl AsRef<OsStr>) -> Attack {
        self.flags.push(f.as_ref().to_owned());
        self
    }

    /// sandlock flags (ignored when bare). `-r BINS` is always added.
    pub fn flags<S: AsRef<OsStr>>(mut self, flags: &[S]) -> Attack {
        self.flags
            .extend(flags.iter().map(|f| f.as_ref().to_owned()));
        self
    }

    /// A command put in front (after the user switch): it must end in `--`
    /// and exec what follows, like `helpers pidns` or `helpers leak-exec`.
    pub fn wrapped<S: AsRef<OsStr>>(mut self, words: &[S]) -> Attack {
        self.wrapper = words.iter().map(|w| w.as_ref().to_owned()).collect();
        self
    }

    /// Run sandlock from this path instead (e.g. to put a secret in argv[0]).
    pub fn sandlock_at(mut self, path: PathBuf) -> Attack {
        self.sandlock = Some(path);
        self
    }

    /// An environment variable for the process we start.
    pub fn env(mut self, key: &str, value: &str) -> Attack {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Where the program's stderr goes (default: captured).
    pub fn stderr(mut self, s: Stdio) -> Attack {
        self.stderr = Some(s);
        self
    }

    /// The full argv this attack runs.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = as_user(self.mode.user());
        argv.extend(self.wrapper.iter().cloned());
        if self.mode.sandboxed() {
            let sandlock = self.sandlock.clone().unwrap_or_else(|| bins().sandlock());
            argv.push(sandlock.into());
            argv.push("run".into());
            argv.extend(self.flags.iter().cloned());
            if self.bins_flag {
                argv.push("-r".into());
                argv.push(bins().dir().into());
            }
            argv.push("--".into());
        }
        argv.push(self.prog.clone().into());
        argv.push(self.tag.clone().into());
        argv.push(self.attack.clone().into());
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// Start it; the session then drives the line protocol.
    pub fn spawn(self) -> Session {
        let argv = self.argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(bins().dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let capture = self.stderr.is_none();
        cmd.stderr(self.stderr.unwrap_or_else(Stdio::piped));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        let (tx, lines) = channel();
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let t2 = Arc::clone(&transcript);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                t2.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if capture {
            let mut pipe = child.stderr.take().unwrap();
            let s2 = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                s2.lock().unwrap().extend(buf);
            });
        }
        Session {
            stdin: child.stdin.take(),
            child,
            argv,
            tag: self.tag,
            lines,
            transcript,
            stderr,
            status: None,
        }
    }

    /// Start it, wait for READY, send `go` + what `go` returns (it may look
    /// at the session first), wait for a line starting with `until` (or
    /// the end), then let `look` inspect the live processes before they
    /// are released. If the program never starts, `look` is not called.
    pub fn probe<T: Default>(
        self,
        go: impl FnOnce(&Session) -> String,
        until: &str,
        look: impl FnOnce(&mut Session) -> T,
    ) -> (T, Outcome) {
        let mut s = self.spawn();
        if !s.wait_ready() {
            return (T::default(), s.finish());
        }
        let words = go(&s);
        s.go(&words);
        s.next_line(until, HANG_GUARD);
        let seen = look(&mut s);
        (seen, s.finish())
    }

    /// The whole exchange for attacks that need no inspection while they
    /// run: wait for READY, send `go WORDS`, close stdin, wait for the end.
    pub fn run(self, go: &str) -> Outcome {
        let mut s = self.spawn();
        if s.wait_ready() {
            s.go(go);
        }
        s.finish()
    }
}

/// A running attack.
pub struct Session {
    child: Child,
    argv: Vec<OsString>,
    stdin: Option<ChildStdin>,
    tag: String,
    lines: Receiver<String>,
    transcript: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    status: Option<ExitStatus>,
}

impl Session {
    /// Pid of the process we started: the bare program, or sandlock.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait for a line starting with `prefix`; None if the program ended
    /// (or `timeout` passed) first.
    pub fn next_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Some(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Wait for a line starting with `prefix`, or fail the test.
    pub fn expect(&mut self, prefix: &str) -> String {
        match self.next_line(prefix, HANG_GUARD) {
            Some(line) => line,
            None => panic!("no line `{prefix}...` from the attack\n{}", self.describe()),
        }
    }

    /// Wait for READY. False means the program never started (e.g. sandlock
    /// refused to run it); the caller's assertions then report that.
    pub fn wait_ready(&mut self) -> bool {
        self.next_line("READY", HANG_GUARD).is_some()
    }

    /// Like `wait_ready`, but a missing READY fails the test.
    pub fn ready(&mut self) {
        if !self.wait_ready() {
            panic!("the attack never started (no READY)\n{}", self.describe());
        }
    }

    /// Send `go WORDS`.
    pub fn go(&mut self, words: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "go {words}");
            let _ = stdin.flush();
        }
    }

    /// Close stdin: every HOLDing process of the attack may end.
    pub fn release(&mut self) {
        self.stdin = None;
    }

    /// Pids whose argv[1] is our tag (the attacker and its children).
    pub fn attackers(&self) -> Vec<i32> {
        procfs::tagged(&self.tag)
    }

    /// The attacking process (the oldest one with our tag).
    pub fn attacker(&self) -> i32 {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(pid) = self.attackers().into_iter().min() {
                return pid;
            }
            assert!(Instant::now() < deadline, "no attacker process found");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Has the process we started ended? (Reaps it if so.)
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Wait for the process we started, killing it after the hang guard.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(st) = self.exited() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the attack did not end\n{}", self.describe());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills `pids` (survivors a test has already counted): they hold the
    /// output pipes, which [`finish`](Self::finish) would otherwise wait
    /// on for 5 s.
    pub fn end_survivors(&self, pids: &[i32]) {
        for &pid in pids {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }

    /// Close stdin, wait for the end, and collect everything.
    pub fn finish(mut self) -> Outcome {
        self.release();
        let status = self.wait_exit();
        // The reader threads end at EOF (when every holder of the pipes is
        // gone); give them a moment, but do not wait for stray holders.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (Arc::strong_count(&self.transcript) > 1 || Arc::strong_count(&self.stderr) > 1)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
        Outcome {
            status,
            lines: self.transcript.lock().unwrap().clone(),
            stderr: String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned(),
            argv: self.argv.clone(),
        }
    }

    /// What we know so far, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "argv: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.argv,
            self.transcript.lock().unwrap().join("\n"),
            String::from_utf8_lossy(&self.stderr.lock().unwrap())
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Leave nothing running, whatever the test's outcome.
        for pid in self.attackers() {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How an attack ended, and everything it printed.
pub struct Outcome {
    /// Exit status of the process we started (sandlock, when sandboxed).
    pub status: ExitStatus,
    /// Every stdout line.
    pub lines: Vec<String>,
    /// All of stderr (when captured).
    pub stderr: String,
    argv: Vec<OsString>,
}

/// One `RESULT what ...` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Res {
    /// `ok=N`
    Ok(i64),
    /// `errno=N`
    Errno(i32),
}

/// Parse the `RESULT what ok=N|errno=N` lines of a transcript.
pub fn results(lines: &[String]) -> BTreeMap<String, Res> {
    let mut out = BTreeMap::new();
    for line in lines {
        let mut words = line.split_whitespace();
        if words.next() != Some("RESULT") {
            continue;
        }
        let (Some(what), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let res = if let Some(v) = value.strip_prefix("ok=") {
            v.parse().ok().map(Res::Ok)
        } else if let Some(v) = value.strip_prefix("errno=") {
            v.parse().ok().map(Res::Errno)
        } else {
            None
        };
        if let Some(res) = res {
            out.insert(what.to_string(), res);
        }
    }
    out
}

impl Outcome {
    /// Did the program start (print READY)?
    pub fn ran(&self) -> bool {
        self.lines.iter().any(|l| l == "READY")
    }

    /// Fail unless the program started: a sandboxed test that sandlock
    /// refused to run proves nothing.
    pub fn assert_ran(&self) {
        assert!(self.ran(), "the attack never started\n{}", self.describe());
    }

    /// The answer to `what`, if reported.
    pub fn result(&self, what: &str) -> Option<Res> {
        results(&self.lines).get(what).copied()
    }

    /// Exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Killing signal, if killed.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Does any stdout line contain `needle`?
    pub fn printed(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }

    /// Everything, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "argv: {:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
            self.argv,
            self.status,
            self.lines.join("\n"),
            self.stderr
        )
    }
}
