//! Attack class 7: resource exhaustion and escaping the limits
//! (`resource.c`). Every bomb is bounded by its own argument, so the bare
//! runs cannot hurt the machine; under sandlock the limit must bite first.
//! What the runner measures is the kernel's count: tasks in /proc, resident
//! memory, SysV segments, descriptors, CPU time.

use std::thread;
use std::time::{Duration, Instant};

use crate::checks::{Bare, verdict};
use crate::harness::{Attack, Mode, User, nonce};
use crate::procfs;

escape_tests!(run:
    fork_bomb,
    raw_fork_bomb,
    thread_bomb,
    clone_vm_bomb,
    anon_memory,
    memfd_memory,
    sysv_shm_memory,
    setsid_escapes_timeout,
    setsid_daemon_outlives_command,
    setsid_escapes_cpu_limit,
    fd_and_pipe_flood,
);

/// Tasks (processes and threads) alive in the attack.
fn tasks(pids: &[i32]) -> usize {
    pids.iter().map(|&p| procfs::task_count(p)).sum()
}

/// `-P 10`: at most 10 tasks at once, whatever creates them.
fn bomb(mode: Mode, kind: &str) {
    let (peak, out) = Attack::new(mode, "resource", "bomb")
        .arg(kind)
        .arg("64")
        .flag("-P")
        .flag("10")
        .flag("-t")
        .flag("60")
        .probe(|_| String::new(), "RESULT bomb", |s| tasks(&s.attackers()));
    let what = format!("a {kind} bomb: {peak} tasks alive under -P 10");
    verdict(mode, Bare::Works, peak > 10, &what, &out);
}

fn fork_bomb(mode: Mode) {
    bomb(mode, "fork");
}

fn raw_fork_bomb(mode: Mode) {
    bomb(mode, "sysfork");
}

fn thread_bomb(mode: Mode) {
    bomb(mode, "thread");
}

fn clone_vm_bomb(mode: Mode) {
    bomb(mode, "clonevm");
}

/// Resident memory above `-m 64M` (with 32 MiB of slack for the program
/// itself), measured while the attacker holds what it got.
fn memory(mode: Mode, attack: &str, args: &[String]) -> (u64, crate::harness::Outcome) {
    let mut a = Attack::new(mode, "resource", attack);
    for arg in args {
        a = a.arg(arg);
    }
    a.flag("-m").flag("64M").flag("-t").flag("60").probe(
        |_| String::new(),
        "HOLD",
        |s| {
            s.attackers()
                .iter()
                .map(|&p| procfs::rss_anon_shmem_kib(p))
                .sum::<u64>()
                / 1024
        },
    )
}

const MEMORY_LIMIT_MIB: u64 = 64 + 32;

fn anon_memory(mode: Mode) {
    let (mib, out) = memory(mode, "anon", &["256".into()]);
    let what = format!("{mib} MiB of anonymous memory held under -m 64M");
    verdict(mode, Bare::Works, mib > MEMORY_LIMIT_MIB, &what, &out);
}

fn memfd_memory(mode: Mode) {
    let (mib, out) = memory(mode, "memfd", &["256".into()]);
    let what = format!("{mib} MiB of memfd memory held under -m 64M");
    verdict(mode, Bare::Works, mib > MEMORY_LIMIT_MIB, &what, &out);
}

/// A SysV segment is memory that outlives its creator: it must neither
/// exceed the limit nor be left behind when the sandbox ends.
fn sysv_shm_memory(mode: Mode) {
    let hash = nonce("shm").bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let key = 0x5e00_0000 | (hash & 0x00ff_ffff) as i32;
    let (mib, out) = memory(mode, "sysvshm", &[key.to_string(), "256".into()]);
    let left = procfs::shm_key_exists(key);
    Attack::new(Mode::Bare(User::Root), "helpers", "shmrm")
        .arg(key.to_string())
        .run("");
    let what = format!("{mib} MiB of SysV shm held under -m 64M; segment left behind: {left}");
    verdict(
        mode,
        Bare::Works,
        mib > MEMORY_LIMIT_MIB || left,
        &what,
        &out,
    );
}

/// Are processes of the attack still there 2 s after `since`?
fn lingering(tag_pids: impl Fn() -> Vec<i32>, since: Instant) -> Vec<i32> {
    while since.elapsed() < Duration::from_secs(2) {
        if tag_pids().is_empty() {
            return vec![];
        }
        thread::sleep(Duration::from_millis(20));
    }
    tag_pids()
}

/// `-t 2`: the command waits 10 s and a setsid() grandchild 25 s; at the
/// deadline every task must be gone and sandlock must exit 124. Bare, the
/// command ends at once and its daemon outlives it.
fn setsid_escapes_timeout(mode: Mode) {
    let stay = if mode.sandboxed() { "stay" } else { "exit" };
    let mut s = Attack::new(mode, "resource", "daemon")
        .arg(stay)
        .arg("10")
        .flag("-t")
        .flag("2")
        .spawn();
    let ran = s.wait_ready();
    s.go("");
    let status = s.wait_exit();
    let left = lingering(|| s.attackers(), Instant::now());
    s.end_survivors(&left);
    let out = s.finish();
    assert!(
        ran || !mode.sandboxed(),
        "never started\n{}",
        out.describe()
    );
    let what = format!("a setsid() daemon outliving the timeout: {left:?}");
    verdict(mode, Bare::Works, !left.is_empty(), &what, &out);
    if mode.sandboxed() {
        assert_eq!(
            status.code(),
            Some(124),
            "timeout exit status\n{}",
            out.describe()
        );
    }
}

/// The command ends at once, leaving a setsid() double-forked daemon.
fn setsid_daemon_outlives_command(mode: Mode) {
    let mut s = Attack::new(mode, "resource", "daemon")
        .arg("exit")
        .arg("30")
        .flag("-t")
        .flag("60")
        .spawn();
    s.wait_ready();
    s.go("");
    s.wait_exit();
    let left = lingering(|| s.attackers(), Instant::now());
    s.end_survivors(&left);
    let out = s.finish();
    let what = format!("a setsid() daemon outliving the sandboxed command: {left:?}");
    verdict(mode, Bare::Works, !left.is_empty(), &what, &out);
}

/// `-c 10`: a child that left the process group with setsid() and spins
/// for 3 s must still get about 10% of a CPU. The bar (20%) is loose; bare,
/// a spinning loop gets far more even on a busy 2-core machine.
fn setsid_escapes_cpu_limit(mode: Mode) {
    let out = Attack::new(mode, "resource", "cpu-setsid")
        .arg("3")
        .flag("-c")
        .flag("10")
        .run("");
    let cpu = out.lines.iter().find_map(|l| {
        let rest = l.strip_prefix("CPU ms=")?;
        let (cpu, wall) = rest.split_once(" wall_ms=")?;
        Some((cpu.parse::<u64>().ok()?, wall.parse::<u64>().ok()?))
    });
    let (cpu_ms, wall_ms) = cpu.unwrap_or((0, 1));
    if mode.sandboxed() {
        assert!(
            cpu.is_some(),
            "the spinner did not report\n{}",
            out.describe()
        );
    }
    let what = format!("a setsid() spinner used {cpu_ms} ms of CPU in {wall_ms} ms under -c 10");
    verdict(mode, Bare::Works, cpu_ms * 5 > wall_ms, &what, &out);
}

/// `--max-open-files 64`: dup(2) and pipe(2) floods stop at 64.
fn fd_and_pipe_flood(mode: Mode) {
    let (open, out) = Attack::new(mode, "resource", "fds")
        .arg("1000")
        .flag("--max-open-files")
        .flag("64")
        .probe(
            |_| String::new(),
            "HOLD",
            |s| procfs::fds(s.attacker()).len(),
        );
    let what = format!("{open} descriptors open under --max-open-files 64");
    verdict(mode, Bare::Works, open > 64, &what, &out);
}
