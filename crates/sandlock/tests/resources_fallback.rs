//! The fallback mechanisms of the limits and of the process tree, through
//! the library (`Sandbox::with_mechanisms`, `Sandbox::pid_namespace`): the
//! supervisor's task count for `-P`, the watchdog for `-m`, throttling for
//! `-c`, and sandlock as a child subreaper without a PID namespace. Run in
//! this process as root, and re-run as uid 65534 (the test executable runs
//! itself through `setpriv` with one case named in the environment).

// A test crate: an unwrap that fails is a failed test, reported with its line.
#![allow(clippy::unwrap_used)]

#[path = "resources/common.rs"]
mod common;

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use common::{alive, bin_dir, field, marked, nonce, probe, wait_until};
use sandlock::{
    CpuCap, Mechanisms, MemoryGuard, Policy, PolicyBuilder, ProcessCap, RunResult, Sandbox, Stdio,
};

const CASE: &str = "SANDLOCK_FALLBACK_CASE";

fn base() -> PolicyBuilder {
    sandlock::profile::default_builder(&[])
        .unwrap()
        .fs_read(bin_dir().to_str().unwrap())
        .timeout(60)
}

fn mech(processes: ProcessCap, memory: MemoryGuard, cpu: CpuCap) -> Mechanisms {
    Mechanisms {
        processes,
        memory,
        cpu,
    }
}

fn fallback() -> Mechanisms {
    mech(
        ProcessCap::Supervisor,
        MemoryGuard::Watchdog,
        CpuCap::Throttle,
    )
}

fn run<S: AsRef<OsStr>>(policy: Policy, m: Mechanisms, pidns: bool, argv: &[S]) -> RunResult {
    Sandbox::with_mechanisms(policy, m)
        .unwrap()
        .pid_namespace(pidns)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .run(argv)
        .unwrap()
}

fn text(r: &RunResult) -> String {
    format!(
        "{:?}\nstdout:\n{}\nstderr:\n{}",
        r.status,
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    )
}

/// The supervisor's count: ten children at once under -P 5 (four made,
/// six refused with EAGAIN; three and seven on a loaded machine), 300 sequential forks under -P 10, a thread
/// bomb under -P 20.
fn supervisor_counting(pidns: bool) {
    let p = probe();
    let policy = || base().max_processes(5).build().unwrap();
    let r = run(
        policy(),
        fallback(),
        pidns,
        &[p.as_os_str(), "forks".as_ref(), "10".as_ref()],
    );
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    // Never more than four. One fewer when the machine is loaded: a
    // grant whose child already exists may still count as pending for a
    // moment (the count errs on the side of the limit, see
    // limits/processes.rs); seen with 12 test threads on 2 CPUs.
    let (made, eagain) = (field(&out, "made"), field(&out, "eagain"));
    assert!(
        matches!(made, Some(m) if m == 4.0 || m == 3.0),
        "{}",
        text(&r)
    );
    assert_eq!(
        made.zip(eagain).map(|(m, e)| m + e),
        Some(10.0),
        "{}",
        text(&r)
    );

    let policy = base().max_processes(10).build().unwrap();
    let r = run(
        policy,
        fallback(),
        pidns,
        &[p.as_os_str(), "forkloop".as_ref(), "300".as_ref()],
    );
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("ok 300"),
        "{}",
        text(&r)
    );

    let policy = base().max_processes(20).build().unwrap();
    let r = run(
        policy,
        fallback(),
        pidns,
        &[p.as_os_str(), "threadbomb".as_ref(), "200".as_ref()],
    );
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(field(&out, "made").unwrap() <= 19.0, "{}", text(&r));
    assert_eq!(field(&out, "errno"), Some(11.0), "{}", text(&r));
}

/// Without a PID namespace: a timeout kills the command, its children and
/// a setsid() daemon (tracked by sandlock as a subreaper).
fn no_pidns_timeout() {
    let secs = format!("1000.{}", nonce());
    let script = format!("sleep {secs} & setsid sleep {secs} & sleep {secs}");
    let policy = base().timeout(1).build().unwrap();
    let r = run(policy, fallback(), false, &["/bin/sh", "-c", &script]);
    assert_eq!(r.code(), 124, "{}", text(&r));
    assert!(
        wait_until(Duration::from_secs(5), || marked(&secs).is_empty()),
        "left: {:?}",
        marked(&secs)
    );
}

/// Without a PID namespace: a double-forked setsid() daemon does not
/// outlive the command that left it.
fn no_pidns_daemon() {
    let secs = format!("1000.{}", nonce());
    let script = format!("(setsid sleep {secs} &) ; sleep 0.3");
    let r = run(
        base().build().unwrap(),
        fallback(),
        false,
        &["/bin/sh", "-c", &script],
    );
    assert!(r.status.success(), "{}", text(&r));
    let left = marked(&secs);
    let info: Vec<String> = left
        .iter()
        .map(|&(p, _)| std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default())
        .collect();
    assert!(
        left.iter().all(|&p| !alive(p)),
        "left: {left:?} (test process {}):\n{}",
        std::process::id(),
        info.join("\n")
    );
}

/// Without a PID namespace: a task that makes itself a child subreaper
/// keeps the orphans of its own subtree from reaching sandlock, then is
/// orphaned itself when the command ends. Nothing of it survives: the end
/// of the sandbox must not take "sandlock has no child" for "nothing is
/// left" while such a subtree lives.
fn no_pidns_inner_subreaper() {
    let secs = format!("1000.{}", nonce());
    // The command forks P and ends after 0.3 s. P becomes a subreaper,
    // forks C, which forks a setsid() sleeper and exits (the sleeper goes
    // to P, not to sandlock); P then becomes a sleeper too.
    let code = format!(
        "import ctypes, os, time\n\
         if os.fork() == 0:\n\
         \x20   ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n\
         \x20   if os.fork() == 0:\n\
         \x20       if os.fork() == 0:\n\
         \x20           os.setsid()\n\
         \x20           os.execvp('sleep', ['sleep', '{secs}'])\n\
         \x20       os._exit(0)\n\
         \x20   time.sleep(0.1)\n\
         \x20   os.execvp('sleep', ['sleep', '{secs}'])\n\
         time.sleep(0.3)\n"
    );
    let r = run(
        base().build().unwrap(),
        fallback(),
        false,
        &["/usr/bin/python3", "-c", &code],
    );
    assert!(r.status.success(), "{}", text(&r));
    let left = marked(&secs);
    assert!(left.iter().all(|&p| !alive(p)), "left: {left:?}");
}

/// The watchdog ends a sandbox whose touched reservation passes -m.
fn watchdog() {
    let p = probe();
    let policy = base().max_memory("64M").build().unwrap();
    let r = run(
        policy,
        fallback(),
        true,
        &[
            p.as_os_str(),
            "noreserve".as_ref(),
            "200".as_ref(),
            "5".as_ref(),
        ],
    );
    assert!(r.limit_exceeded.is_some(), "{}", text(&r));
    assert!(!r.status.success(), "{}", text(&r));
}

/// Throttling holds -c 20 over a setsid() child's 3 s busy loop.
fn throttle() {
    let p = probe();
    let policy = base().max_cpu(20).build().unwrap();
    let r = run(
        policy,
        fallback(),
        true,
        &[
            p.as_os_str(),
            "cpu".as_ref(),
            "3".as_ref(),
            "setsid".as_ref(),
        ],
    );
    assert!(r.status.success(), "{}", text(&r));
    let used = field(&String::from_utf8_lossy(&r.stdout), "user").unwrap();
    assert!(used <= 0.9 && used > 0.1, "{used} s: {}", text(&r));
}

fn case(name: &str) {
    match name {
        "supervisor_counting" => supervisor_counting(true),
        "supervisor_counting_no_pidns" => supervisor_counting(false),
        "no_pidns_timeout" => no_pidns_timeout(),
        "no_pidns_daemon" => no_pidns_daemon(),
        "no_pidns_inner_subreaper" => no_pidns_inner_subreaper(),
        "watchdog" => watchdog(),
        "throttle" => throttle(),
        other => panic!("no case {other}"),
    }
}

/// Runs `name` in a copy of this test executable as uid 65534.
fn as_nobody(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args([
            "--exact",
            "helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CASE, name)
        .env("SANDLOCK_TEST_BIN_DIR", bin_dir())
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("1 passed"),
        "{name} as 65534:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The entry point of the re-run as 65534.
#[test]
#[ignore = "run by the tests below as uid 65534"]
fn helper() {
    if let Ok(name) = std::env::var(CASE) {
        case(&name);
    }
}

macro_rules! cases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn root() {
                    if crate::common::have_root() {
                        super::case(stringify!($name));
                    }
                }

                #[test]
                fn nobody() {
                    if crate::common::have_root() {
                        super::as_nobody(stringify!($name));
                    }
                }
            }
        )+
    };
}

cases!(
    supervisor_counting,
    supervisor_counting_no_pidns,
    no_pidns_timeout,
    no_pidns_daemon,
    no_pidns_inner_subreaper,
    watchdog,
    throttle,
);
