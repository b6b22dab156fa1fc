//! Running one process and measuring it: wall time with `Instant` around
//! spawn + wait, CPU time from `wait4`'s rusage, a watchdog for hangs.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a measured process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (not by the watchdog).
    Signaled(i32),
    /// Killed by the watchdog at the deadline.
    TimedOut,
}

/// The measurements of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// From just before spawn to just after the exit was seen.
    pub wall: Duration,
    /// User CPU time of the process and the descendants it waited for.
    pub user: Duration,
    /// System CPU time, likewise.
    pub sys: Duration,
    /// How it ended.
    pub ended: Ended,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Run {
    /// True when it exited with code 0.
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// A one-line account of a failure: the exit and the last stderr line.
    pub fn failure(&self) -> String {
        let how = match self.ended {
            Ended::Exited(c) => format!("exit {c}"),
            Ended::Signaled(s) => format!("killed by signal {s}"),
            Ended::TimedOut => "timed out".to_owned(),
        };
        // The first "error..." line says most; else the last thing printed.
        let lines = || {
            self.stderr
                .lines()
                .chain(self.stdout.lines())
                .map(str::trim)
        };
        let last = lines()
            .find(|l| l.to_ascii_lowercase().starts_with("error"))
            .or_else(|| {
                let rev = self.stderr.lines().rev().chain(self.stdout.lines().rev());
                rev.map(str::trim).find(|l| !l.is_empty())
            });
        match last {
            Some(line) => format!("{how}: {}", truncate(line, 200)),
            None => how,
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Runs processes one at a time, each in its own process group, stdout and
/// stderr to scratch files (no pipe to drain while timing), with a deadline.
pub struct Runner {
    out_path: PathBuf,
    err_path: PathBuf,
    watchdog: Watchdog,
}

impl Runner {
    /// A runner writing its scratch files in `scratch`.
    pub fn new(scratch: &Path) -> Self {
        Self {
            out_path: scratch.join("run.stdout"),
            err_path: scratch.join("run.stderr"),
            watchdog: Watchdog::start(),
        }
    }

    /// Runs `argv` in `cwd` and measures it.
    pub fn run(&self, argv: &[OsString], cwd: &Path, timeout: Duration) -> Result<Run, String> {
        self.run_as(argv, cwd, timeout, None)
    }

    /// [`run`](Self::run), as uid `user` (and the gid of the same number,
    /// no supplementary groups) when given: the switch happens in the
    /// child before `execve` ([`super::spawn`]), so the measured command is
    /// the same one process, started as cheaply, as otherwise.
    pub fn run_as(
        &self,
        argv: &[OsString],
        cwd: &Path,
        timeout: Duration,
        user: Option<u32>,
    ) -> Result<Run, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        let stdout = File::create(&self.out_path)
            .map_err(|e| format!("creating {}: {e}", self.out_path.display()))?;
        let stderr = File::create(&self.err_path)
            .map_err(|e| format!("creating {}: {e}", self.err_path.display()))?;
        let (start, pid) = match user {
            None => {
                let mut cmd = Command::new(program);
                cmd.args(args)
                    .current_dir(cwd)
                    .stdin(Stdio::null())
                    .stdout(stdout)
                    .stderr(stderr)
                    .process_group(0);
                let start = Instant::now();
                let child = cmd
                    .spawn()
                    .map_err(|e| format!("starting {}: {e}", program.to_string_lossy()))?;
                (start, child_pid(&child)?)
            }
            Some(uid) => {
                let stdin = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
                let fds = [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
                let mut prepared = super::spawn::Prepared::new(argv, cwd, fds, uid)?;
                let start = Instant::now();
                (start, prepared.spawn()?)
            }
        };
        self.watchdog.arm(pid, start + timeout);
        let waited = sys::wait_exit(pid);
        let wall = start.elapsed();
        let fired = self.watchdog.disarm();
        // Leftovers in the group (a sandbox's stray helpers) go too; the
        // unreaped leader keeps the group id from being reused meanwhile.
        sys::kill_group(pid);
        let reaped = sys::reap(pid);
        waited?;
        let (status, usage) = reaped?;
        let ended = if fired { Ended::TimedOut } else { status };
        Ok(Run {
            wall,
            user: usage.0,
            sys: usage.1,
            ended,
            stdout: read_lossy(&self.out_path),
            stderr: read_lossy(&self.err_path),
        })
    }
}

fn child_pid(child: &std::process::Child) -> Result<i32, String> {
    i32::try_from(child.id()).map_err(|_| format!("pid {} out of range", child.id()))
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Kills a process group when its deadline passes. One thread for the whole
/// bench, so arming costs a lock and a notify, not a thread spawn.
struct Watchdog {
    shared: Arc<(Mutex<Deadline>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Deadline {
    armed: Option<(i32, Instant)>,
    fired: bool,
    stop: bool,
}

impl Watchdog {
    fn start() -> Self {
        let shared = Arc::new((Mutex::new(Deadline::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*theirs;
            let mut d = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !d.stop {
                match d.armed {
                    None => d = cv.wait(d).unwrap_or_else(PoisonError::into_inner),
                    Some((pgid, deadline)) => {
                        let now = Instant::now();
                        if now >= deadline {
                            sys::kill_group(pgid);
                            d.fired = true;
                            d.armed = None;
                        } else {
                            d = cv
                                .wait_timeout(d, deadline - now)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                    }
                }
            }
        });
        Self {
            shared,
            thread: Some(thread),
        }
    }

    fn arm(&self, pgid: i32, deadline: Instant) {
        let (lock, cv) = &*self.shared;
        let mut d = lock.lock().unwrap_or_else(PoisonError::into_inner);
        d.armed = Some((pgid, deadline));
        d.fired = false;
        cv.notify_one();
    }

    /// Disarms; true when the deadline had fired.
    fn disarm(&self) -> bool {
        let (lock, _) = &*self.shared;
        let mut d = lock.lock().unwrap_or_else(PoisonError::into_inner);
        d.armed = None;
        std::mem::take(&mut d.fired)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The raw calls std does not offer. Every `unsafe` of the xtask is here.
pub mod sys {
    use super::Ended;
    use std::time::Duration;

    /// Blocks until `pid` has exited, without reaping it (`waitid` with
    /// `WNOWAIT`), so its process group id cannot be reused meanwhile.
    pub fn wait_exit(pid: i32) -> Result<(), String> {
        let id = libc::id_t::try_from(pid).map_err(|_| format!("bad pid {pid}"))?;
        loop {
            // SAFETY: all-zero bytes are a valid siginfo_t (a plain C struct).
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: `info` is a valid, writable siginfo_t for the call.
            let rc =
                unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("waitid({pid}): {err}"));
            }
        }
    }

    /// Reaps `pid` with `wait4`: its status and (user, system) CPU time.
    pub fn reap(pid: i32) -> Result<(Ended, (Duration, Duration)), String> {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: all-zero bytes are a valid rusage (a plain C struct).
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `status` and `usage` are valid and writable for the call.
            let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if rc == pid {
                let ended = if libc::WIFEXITED(status) {
                    Ended::Exited(libc::WEXITSTATUS(status))
                } else {
                    Ended::Signaled(libc::WTERMSIG(status))
                };
                return Ok((ended, (timeval(usage.ru_utime), timeval(usage.ru_stime))));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("wait4({pid}): {err}"));
            }
        }
    }

    fn timeval(tv: libc::timeval) -> Duration {
        let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
        let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
        Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    /// SIGKILL to the process group `pgid`; errors (group gone) are ignored.
    pub fn kill_group(pgid: i32) {
        if pgid > 1 {
            // SAFETY: kill(2) takes plain integers; a negative pid names the
            // group, and pgid > 1 never names "every process" (-1).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }

    /// Calls `listen` again on a listening socket to set its backlog (the
    /// kernel caps it at `net.core.somaxconn`); a failure keeps the old one.
    pub fn listen_backlog(socket: &impl std::os::fd::AsRawFd, backlog: i32) {
        // SAFETY: listen(2) takes an fd that stays open for the borrow and
        // an integer; it touches no memory of ours.
        unsafe {
            libc::listen(socket.as_raw_fd(), backlog);
        }
    }

    /// This process's effective uid.
    pub fn euid() -> u32 {
        // SAFETY: geteuid(2) takes nothing and cannot fail.
        unsafe { libc::geteuid() }
    }

    /// SIGTERM to the process group `pgid`; errors are ignored.
    pub fn term_group(pgid: i32) {
        if pgid > 1 {
            // SAFETY: as in `kill_group`.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-measure-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn measures_a_real_process() {
        let dir = scratch("real");
        let runner = Runner::new(&dir);
        let run = runner
            .run(
                &argv(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]),
                &dir,
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(run.ended, Ended::Exited(3));
        assert_eq!(run.stdout, "out\n");
        assert_eq!(run.stderr, "err\n");
        assert_eq!(run.failure(), "exit 3: err");
        let run = runner
            .run(
                &argv(&[
                    "/bin/sh",
                    "-c",
                    "echo 'error: bad flag' >&2; echo 'try --help' >&2; exit 2",
                ]),
                &dir,
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(run.failure(), "exit 2: error: bad flag");
        assert!(run.wall > Duration::ZERO);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cpu_time_is_reported() {
        let dir = scratch("cpu");
        let runner = Runner::new(&dir);
        // A busy loop of a few tens of milliseconds in the shell.
        let run = runner
            .run(
                &argv(&[
                    "/bin/sh",
                    "-c",
                    "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
                ]),
                &dir,
                Duration::from_secs(60),
            )
            .unwrap();
        assert!(run.success());
        assert!(run.user + run.sys > Duration::ZERO, "{run:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn watchdog_kills_the_whole_group() {
        let dir = scratch("hang");
        let runner = Runner::new(&dir);
        let pidfile = dir.join("grandchild");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let run = runner
            .run(
                &argv(&["/bin/sh", "-c", &script]),
                &dir,
                Duration::from_millis(300),
            )
            .unwrap();
        assert_eq!(run.ended, Ended::TimedOut);
        assert!(run.wall < Duration::from_secs(20));
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: it is gone (or a zombie
        // about to be reaped by init), not sleeping.
        std::thread::sleep(Duration::from_millis(200));
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "{state}");
        // The runner is still usable after a timeout.
        let ok = runner
            .run(&argv(&["/bin/true"]), &dir, Duration::from_secs(10))
            .unwrap();
        assert!(ok.success());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_program_is_an_error() {
        let dir = scratch("missing");
        let runner = Runner::new(&dir);
        let e = runner
            .run(&argv(&["/nonexistent/prog"]), &dir, Duration::from_secs(1))
            .unwrap_err();
        assert!(e.contains("/nonexistent/prog"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn run_as_switches_user_and_groups() {
        if sys::euid() != 0 {
            return; // switching needs root
        }
        let dir = scratch("run-as");
        let runner = Runner::new(&dir);
        let run = runner
            .run_as(
                &argv(&["/bin/sh", "-c", "id -u; id -g; id -G"]),
                Path::new("/"),
                Duration::from_secs(10),
                Some(65534),
            )
            .unwrap();
        assert!(run.success(), "{}", run.failure());
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines, ["65534", "65534", "65534"]);
        // Without a user, the runner's own.
        let run = runner
            .run(
                &argv(&["/bin/sh", "-c", "id -u"]),
                Path::new("/"),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(run.stdout.trim(), "0");
        // Every thread of this process kept its identity (the runner has a
        // watchdog thread; a set*id that reached it would show here).
        // (A thread of another test may end between the listing and the
        // read: it is skipped.)
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let Ok(status) = std::fs::read_to_string(task.unwrap().path().join("status")) else {
                continue;
            };
            let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
            assert!(uid.split_whitespace().skip(1).all(|u| u == "0"), "{uid}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
