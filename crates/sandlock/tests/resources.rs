//! Resource limits and the process tree through `sandlock run`, as root
//! and as uid 65534 (the mechanisms differ: cgroups for root, a user
//! namespace's `RLIMIT_NPROC`, the supervisor's accounting and sampling for
//! 65534; `sandlock check` says which). Real processes; the assertions are
//! on what the kernel answered (errno, exit status, CPU time, processes
//! left). Time bounds are liveness guards, never speed assertions.

// A test crate: an unwrap that fails is a failed test, reported with its line.
#![allow(clippy::unwrap_used)]

#[path = "resources/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    User, alive, describe, field, marked, nonce, output, probe, sandlock, stdout, wait_until,
};
use rustix::process::{Pid, Signal, kill_process};

/// Generates `root` and `nobody` tests of a scenario `fn(User)`.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use crate::common::{User, have_root};

                #[test]
                fn root() {
                    if have_root() {
                        super::$name(User::Root);
                    }
                }

                #[test]
                fn nobody() {
                    if have_root() {
                        super::$name(User::Nobody);
                    }
                }
            }
        )+
    };
}

both!(
    p5_some_of_ten_forks_fail,
    p10_two_thousand_sequential_forks,
    p50_thread_bomb_contained,
    p50_raw_fork_bomb_contained,
    m64_python_256_mib_fails,
    m256_python_32_mib_works,
    m64_memfd_one_gib_refused,
    m256_noreserve_terabyte_then_10_mib,
    m64_touching_a_reservation_ends_the_sandbox,
    c20_busy_loop,
    c20_setsid_busy_loop,
    t2_kills_every_sleep,
    killed_sandlock_leaves_nothing,
    max_open_files,
);

const EAGAIN: f64 = 11.0;

/// `-P 5`: ten children at once; the fifth and later fail with EAGAIN.
fn p5_some_of_ten_forks_fail(user: User) {
    let o = output(sandlock(
        user,
        &["-P", "5", "-t", "30"],
        &[&probe(), &"forks", &"10"],
    ));
    let out = stdout(&o);
    let (made, eagain) = (field(&out, "made"), field(&out, "eagain"));
    assert!(o.status.success(), "{}", describe(&o));
    // The probe itself is one of the 5 tasks.
    assert_eq!(made, Some(4.0), "{}", describe(&o));
    assert_eq!(eagain, Some(6.0), "{}", describe(&o));
}

/// `-P 10` is a cap on tasks alive at once, not a budget: 2000 forks one
/// after another run to completion.
fn p10_two_thousand_sequential_forks(user: User) {
    let o = output(sandlock(
        user,
        &["-P", "10", "-t", "60"],
        &[&probe(), &"forkloop", &"2000"],
    ));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("ok 2000"), "{}", describe(&o));
}

/// A bomb of `kind` under `-P 50 -t 10`: at most 49 more tasks, refused
/// with EAGAIN, and the sandbox ends when the bomb's main thread does
/// (nothing of it left).
fn bomb(user: User, kind: &str) {
    let marker = nonce();
    let start = Instant::now();
    let o = output(sandlock(
        user,
        &["-P", "50", "-t", "10"],
        &[&probe(), &kind, &"1000", &"0", &marker.as_str()],
    ));
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "not contained in time: {}",
        describe(&o)
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{}",
        describe(&o)
    );
    let made = field(&out, "made").unwrap_or(f64::MAX);
    assert!(
        made <= 49.0,
        "{made} tasks made under -P 50: {}",
        describe(&o)
    );
    assert_eq!(field(&out, "errno"), Some(EAGAIN), "{}", describe(&o));
    assert!(
        marked(&marker).is_empty(),
        "left behind: {:?}",
        marked(&marker)
    );
}

fn p50_thread_bomb_contained(user: User) {
    bomb(user, "threadbomb");
}

fn p50_raw_fork_bomb_contained(user: User) {
    bomb(user, "forkbomb");
}

const PYTHON: &str = "/usr/bin/python3";

fn m64_python_256_mib_fails(user: User) {
    let o = output(sandlock(
        user,
        &["-m", "64M", "-t", "30"],
        &[
            &PYTHON,
            &"-c",
            &"b = bytearray(256 << 20); print('allocated')",
        ],
    ));
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(!stdout(&o).contains("allocated"), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("MemoryError"),
        "{}",
        describe(&o)
    );
}

fn m256_python_32_mib_works(user: User) {
    let o = output(sandlock(
        user,
        &["-m", "256M", "-t", "30"],
        &[
            &PYTHON,
            &"-c",
            &"b = bytearray(32 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ok', len(b))",
        ],
    ));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("ok 33554432"), "{}", describe(&o));
}

/// memfd + ftruncate(1 GiB) + mmap + touch: refused at the mmap (or the
/// sandbox ended); never 1 GiB touched.
fn m64_memfd_one_gib_refused(user: User) {
    let o = output(sandlock(
        user,
        &["-m", "64M", "-t", "30"],
        &[&probe(), &"memfd", &"1024"],
    ));
    assert!(!stdout(&o).contains("touched"), "{}", describe(&o));
    let refused = stdout(&o).contains("mmap errno=12");
    let ended = o.status.code() == Some(137);
    assert!(refused || ended, "{}", describe(&o));
}

/// A 1 TiB MAP_NORESERVE reservation is not refused for being reserved;
/// touching 10 MiB of it works.
fn m256_noreserve_terabyte_then_10_mib(user: User) {
    let o = output(sandlock(
        user,
        &["-m", "256M", "-t", "30"],
        &[&probe(), &"noreserve", &"10"],
    ));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(stdout(&o).contains("touched 10"), "{}", describe(&o));
}

/// Touching 200 MiB of a reservation under -m 64M has no call to refuse:
/// the memory cgroup (root) or the watchdog (65534) ends the sandbox, and
/// sandlock says why.
fn m64_touching_a_reservation_ends_the_sandbox(user: User) {
    let o = output(sandlock(
        user,
        &["-m", "64M", "-t", "30"],
        &[&probe(), &"noreserve", &"200", &"5"],
    ));
    assert_eq!(o.status.code(), Some(137), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("memory limit"),
        "{}",
        describe(&o)
    );
}

/// `-c 20` and a 3 s busy loop (in the command, or in a child that left
/// the session with setsid()): about 0.6 s of CPU; at most 0.9 s.
fn cpu(user: User, setsid: bool) {
    let p = probe();
    let mut cmd: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&p, &"cpu", &"3"];
    if setsid {
        cmd.push(&"setsid");
    }
    let o = output(sandlock(user, &["-c", "20", "-t", "30"], &cmd));
    assert!(o.status.success(), "{}", describe(&o));
    let used = field(&stdout(&o), "user").unwrap();
    assert!(used <= 0.9, "{used} s of CPU under -c 20: {}", describe(&o));
    assert!(used > 0.1, "the loop did not run: {}", describe(&o));
}

fn c20_busy_loop(user: User) {
    cpu(user, false);
}

fn c20_setsid_busy_loop(user: User) {
    cpu(user, true);
}

/// `-t 2` with `sh -c 'sleep & setsid sleep & sleep'`: 124 at the deadline,
/// and none of the sleeps left (found by pid, through a unique argument).
fn t2_kills_every_sleep(user: User) {
    let n = nonce();
    let secs = format!("1000.{n}");
    let script = format!("sleep {secs} & setsid sleep {secs} & sleep {secs}");
    let mut child = sandlock(user, &["-t", "2"], &[&"/bin/sh", &"-c", &script.as_str()])
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    wait_until(Duration::from_secs(10), || {
        seen = marked(&secs);
        seen.len() == 3
    });
    let status = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "no timeout");
    assert_eq!(seen.len(), 3, "the three sleeps never ran: {seen:?}");
    assert_eq!(status.code(), Some(124));
    let left: Vec<_> = seen.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "left after the deadline: {left:?}");
}

/// SIGKILL to sandlock while its command sleeps (and a setsid() daemon):
/// both gone within a second or so.
fn killed_sandlock_leaves_nothing(user: User) {
    let n = nonce();
    let secs = format!("1000.{n}");
    let script = format!("setsid sleep {secs} & sleep {secs}");
    let mut child = sandlock(user, &[], &[&"/bin/sh", &"-c", &script.as_str()])
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    wait_until(Duration::from_secs(10), || {
        seen = marked(&secs);
        seen.len() == 2
    });
    assert_eq!(seen.len(), 2, "the sleeps never ran");
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::KILL).unwrap();
    child.wait().unwrap();
    let gone = wait_until(Duration::from_secs(5), || seen.iter().all(|&p| !alive(p)));
    assert!(gone, "left after sandlock was killed: {seen:?}");
}

/// `--max-open-files 16`: the 17th descriptor is refused; 0 is an error.
fn max_open_files(user: User) {
    let o = output(sandlock(
        user,
        &["--max-open-files", "16"],
        &[&"/bin/sh", &"-c", &"ulimit -n; ulimit -Hn"],
    ));
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(stdout(&o), "16\n16\n", "{}", describe(&o));
    let o = output(sandlock(user, &["--max-open-files", "0"], &[&"/bin/true"]));
    assert_eq!(o.status.code(), Some(125), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--max-open-files"),
        "{}",
        describe(&o)
    );
}
