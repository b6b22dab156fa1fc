//! Round trip of one notified syscall answered with CONTINUE, against the
//! same syscall not intercepted, and against a minimal C supervisor
//! (`notify_ref.c`, compiled here with gcc), with and without SYNC_WAKE_UP
//! and same-CPU pinning. Two more C rows answer each call as an intercepted
//! open is answered, with `NOTIF_ADDFD` + `SECCOMP_ADDFD_FLAG_SEND` of an
//! open descriptor (which the child closes): the kernel's floor for any
//! supervisor that opens files on a task's behalf.
//!
//! A forked child calls `getppid` in a loop and times itself; the bench asks
//! it for N calls at a time over a socket. Run:
//! `cargo bench -p sandlock-benches --bench notify`.
// A bench is test code: a failed set-up step should stop it loudly.
#![allow(unsafe_code, missing_docs, clippy::unwrap_used)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags};
use sandlock_bpf::insn::op::*;
use sandlock_bpf::{Arch, Insn};
use sandlock_notify::abi::{RET_ALLOW, RET_USER_NOTIF};
use sandlock_notify::{
    FilterFlags, Listener, Reply, Response, Supervisor, SupervisorHandle, WaitMode,
};

/// A filter sending `nr` to the supervisor and allowing the rest.
fn filter(nr: u32) -> Vec<Insn> {
    vec![
        Insn::stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        Insn::stmt(BPF_RET | BPF_K, RET_USER_NOTIF),
        Insn::stmt(BPF_RET | BPF_K, RET_ALLOW),
    ]
}

fn nr(name: &str) -> u32 {
    Arch::native()
        .and_then(|a| a.syscall_nr(name))
        .expect("native syscall")
}

/// A child under a filter that runs getppid loops on request.
struct LoopChild {
    pid: i32,
    sock: OwnedFd,
}

impl LoopChild {
    /// Fork; the child pins itself to CPU 0 if `pin`, installs a filter that
    /// notifies `notified`, and serves loop requests.
    fn spawn(notified: u32, pin: bool) -> (LoopChild, Listener) {
        let prog = filter(notified);
        let (parent, child) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        // SAFETY: the child only makes raw system calls and ends in _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            if pin {
                let mut set = rustix::thread::CpuSet::new();
                set.set(0);
                let _ = rustix::thread::sched_setaffinity(None, &set);
            }
            let code = (|| {
                sandlock_notify::set_no_new_privs().ok()?;
                let l = sandlock_notify::install_filter_with_listener(&prog, FilterFlags::EMPTY)
                    .ok()?;
                rustix::io::write(&child, &l.as_raw_fd().to_ne_bytes()).ok()?;
                loop {
                    let mut n = [0u8; 8];
                    if rustix::io::read(&child, &mut n).ok()? != 8 {
                        return None;
                    }
                    let n = u64::from_ne_bytes(n);
                    if n == 0 {
                        return Some(0);
                    }
                    let t0 = now_ns();
                    for _ in 0..n {
                        // SAFETY: getppid takes no argument.
                        unsafe { libc::syscall(libc::SYS_getppid) };
                    }
                    let dt = now_ns() - t0;
                    rustix::io::write(&child, &dt.to_ne_bytes()).ok()?;
                }
            })()
            .unwrap_or(1);
            // SAFETY: async-signal-safe exit of the forked child.
            unsafe { libc::_exit(code) };
        }
        drop(child);
        let mut raw = [0u8; 4];
        assert_eq!(rustix::io::read(&parent, &mut raw), Ok(4));
        let pidfd =
            rustix::process::pidfd_open(Pid::from_raw(pid).unwrap(), PidfdFlags::empty()).unwrap();
        let fd =
            rustix::process::pidfd_getfd(&pidfd, i32::from_ne_bytes(raw), PidfdGetfdFlags::empty())
                .unwrap();
        (
            LoopChild { pid, sock: parent },
            Listener::from_fd(fd).unwrap(),
        )
    }

    /// Run `n` calls in the child; its elapsed time.
    fn run(&self, n: u64) -> Duration {
        rustix::io::write(&self.sock, &n.to_ne_bytes()).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(rustix::io::read(&self.sock, &mut b), Ok(8));
        Duration::from_nanos(u64::from_ne_bytes(b))
    }

    fn finish(self) {
        let _ = rustix::io::write(&self.sock, &0u64.to_ne_bytes());
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime (vDSO) writes into a valid timespec; async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn cont(_: &sandlock_notify::Ctx) -> Reply {
    // CONTINUE is safe: getppid takes no pointer and nothing is decided.
    Reply::Respond(Response::Continue)
}

/// A Rust configuration: a child and (unless bare) its supervisor.
struct Setup {
    child: LoopChild,
    sup: Option<SupervisorHandle>,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    name: &'static str,
    notified: bool,
    sync: bool,
    pin: bool,
    wait: WaitMode,
}

fn setup(c: Config) -> Setup {
    // Bare: the same filter shape, intercepting a syscall the loop never makes.
    let target = if c.notified {
        nr("getppid")
    } else {
        nr("uname")
    };
    let (child, l) = LoopChild::spawn(target, c.pin);
    let sup = Supervisor::builder(l)
        .handle(nr("getppid"), cont)
        .unwrap()
        .sync_wake_up(c.sync)
        .pin_cpu(c.pin.then_some(0))
        .wait_mode(c.wait)
        .spawn()
        .unwrap();
    Setup {
        child,
        sup: Some(sup),
    }
}

impl Setup {
    fn finish(mut self) {
        self.child.finish();
        if let Some(s) = self.sup.take() {
            s.join();
        }
    }
}

const CONFIGS: &[Config] = &[
    Config {
        name: "bare",
        notified: false,
        sync: true,
        pin: false,
        wait: WaitMode::Blocking,
    },
    Config {
        name: "rust/sync+pin",
        notified: true,
        sync: true,
        pin: true,
        wait: WaitMode::Blocking,
    },
    Config {
        name: "rust/sync",
        notified: true,
        sync: true,
        pin: false,
        wait: WaitMode::Blocking,
    },
    Config {
        name: "rust/nosync+pin",
        notified: true,
        sync: false,
        pin: true,
        wait: WaitMode::Blocking,
    },
    Config {
        name: "rust/nosync",
        notified: true,
        sync: false,
        pin: false,
        wait: WaitMode::Blocking,
    },
    Config {
        name: "rust/sync/poll",
        notified: true,
        sync: true,
        pin: false,
        wait: WaitMode::Poll,
    },
];

/// A C reference row: its name and the loop's settings.
#[derive(Clone, Copy)]
struct CConfig {
    name: &'static str,
    sync: bool,
    pin: bool,
    /// Answer with `NOTIF_ADDFD` (a descriptor) instead of CONTINUE.
    addfd: bool,
}

const fn c(name: &'static str, sync: bool, pin: bool, addfd: bool) -> CConfig {
    CConfig {
        name,
        sync,
        pin,
        addfd,
    }
}

const C_CONFIGS: &[CConfig] = &[
    c("c/sync+pin", true, true, false),
    c("c/sync", true, false, false),
    c("c/nosync+pin", false, true, false),
    c("c/nosync", false, false, false),
    c("c/addfd/sync+pin", true, true, true),
    c("c/addfd/sync", true, false, true),
];

/// Compile the C reference; `None` (and a note) without gcc.
fn c_reference() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sandlock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let src = dir.join("notify_ref.c");
    let bin = dir.join("notify_ref");
    std::fs::write(&src, include_str!("notify_ref.c")).ok()?;
    let ok = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("notify bench: gcc failed or missing, skipping the C reference");
        return None;
    }
    Some(bin)
}

fn run_c(bin: &PathBuf, iters: u64, cfg: CConfig) -> Duration {
    let out = Command::new(bin)
        .args([
            iters.to_string(),
            u8::from(cfg.sync).to_string(),
            u8::from(cfg.pin).to_string(),
            u8::from(cfg.addfd).to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "C reference failed: {out:?}");
    let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_nanos(ns)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("notify_roundtrip");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    for &cfg in CONFIGS {
        let s = setup(cfg);
        g.bench_function(cfg.name, |b| b.iter_custom(|n| s.child.run(n)));
        s.finish();
    }
    if let Some(bin) = c_reference() {
        for &cfg in C_CONFIGS {
            g.bench_function(cfg.name, |b| b.iter_custom(|n| run_c(&bin, n, cfg)));
        }
    }
    g.finish();
}

/// One interleaved pass at a fixed count, printed as µs/call and ratios.
fn summary() {
    const N: u64 = 100_000;
    let c_bin = c_reference();
    let mut rows: Vec<(String, f64)> = Vec::new();
    for _ in 0..3 {
        for &cfg in CONFIGS {
            let s = setup(cfg);
            let d = s.child.run(N);
            s.finish();
            rows.push((cfg.name.to_owned(), d.as_secs_f64() * 1e6 / N as f64));
        }
        if let Some(bin) = &c_bin {
            for &cfg in C_CONFIGS {
                let d = run_c(bin, N, cfg);
                rows.push((cfg.name.to_owned(), d.as_secs_f64() * 1e6 / N as f64));
            }
        }
    }
    let median = |name: &str| {
        let mut v: Vec<f64> = rows
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let bare = median("bare").unwrap_or(f64::NAN);
    println!("\nnotify round trip, median of 3 interleaved passes of {N} calls:");
    for name in CONFIGS
        .iter()
        .map(|c| c.name)
        .chain(C_CONFIGS.iter().map(|c| c.name))
    {
        if let Some(t) = median(name) {
            let vs_c = name
                .strip_prefix("rust/")
                .and_then(|rest| median(&format!("c/{}", rest.trim_end_matches("/poll"))))
                .map_or(String::new(), |c| format!("  {:.2}x the C loop", t / c));
            println!("  {name:<16} {t:7.3} µs/call  {:6.1}x bare{vs_c}", t / bare);
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    summary();
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("sandlock-bench-{}", std::process::id())),
    );
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
