//! Attack class 3: the supervisor (the sandlock process) as the target
//! (`supervisor.c`).
//!
//! Under sandlock the target is the sandlock process itself, which carries
//! a secret in its environment (and, for /proc/PID/cmdline, in argv[0]).
//! Bare, the target is a sentinel the test started as the same user, so the
//! bare run proves each attack works without touching anything else.
//! `kill(-1)` only ever runs inside a fresh PID namespace (`helpers pidns`).

use std::os::unix::fs::symlink;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::checks::{Bare, SECRET_VAR, Sentinel, fd_attack, verdict};
use crate::harness::{Attack, HANG_GUARD, Mode, Outcome, Scratch, Session, User, bins, nonce};
use crate::procfs;
use crate::programs::callback_runner;

escape_tests!(run:
    ptrace_supervisor,
    process_vm_readv_supervisor,
    process_vm_writev_supervisor,
    prlimit_supervisor,
    setpriority_supervisor,
    sched_setaffinity_supervisor,
    sched_setattr_supervisor,
    ioprio_set_supervisor,
    robust_list_supervisor,
    kcmp_supervisor,
);

// The same without a PID namespace (the library runner, as where the
// machine refuses one): sandlock's pid is visible, and the deny list's
// argument filters and the supervisor's own checks alone stand in the way.
escape_tests!(run:
    ptrace_supervisor_no_pidns,
    process_vm_readv_supervisor_no_pidns,
    process_vm_writev_supervisor_no_pidns,
    prlimit_supervisor_no_pidns,
    setpriority_supervisor_no_pidns,
    sched_setaffinity_supervisor_no_pidns,
    sched_setattr_supervisor_no_pidns,
    ioprio_set_supervisor_no_pidns,
    robust_list_supervisor_no_pidns,
    kcmp_supervisor_no_pidns,
);

// The init of the sandbox's PID namespace (pid 1 there) runs in sandlock's
// own memory (`CLONE_VM`, docs/namespaces.md): the same attacks, aimed at
// pid 1, must not reach sandlock's memory through it.
escape_tests!(run:
    ptrace_init,
    process_vm_readv_init,
    process_vm_writev_init,
);

escape_tests!(run:
    kill_supervisor,
    kill_parent,
    kill_everything,
);

escape_tests!(run:
    kill_everything_default_policy,
);

escape_tests!(run:
    tgkill_supervisor,
    sigqueue_supervisor,
    pidfd_signal_supervisor,
    sigio_supervisor,
    kill_supervisor_no_pidns,
    tgkill_supervisor_no_pidns,
    sigqueue_supervisor_no_pidns,
    pidfd_signal_supervisor_no_pidns,
    sigio_supervisor_no_pidns,
);

escape_tests!(run:
    proc_environ_supervisor,
    proc_cmdline_supervisor,
    proc_mem_supervisor,
    proc_fd_supervisor,
);

/// Where the attack aims.
struct Target {
    pid: i32,
    addr: u64,
    len: usize,
}

/// The secret's place in the sandlock process's environment block.
fn supervisor_target(s: &Session, secret: &str) -> Target {
    let pid = s.pid();
    let env = procfs::environ(pid);
    let key = format!("{SECRET_VAR}={secret}");
    let off = env
        .windows(key.len())
        .position(|w| w == key.as_bytes())
        .expect("the secret in sandlock's environment")
        + SECRET_VAR.len()
        + 1;
    let env_start: u64 = procfs::stat_field(pid, 50)
        .and_then(|v| v.parse().ok())
        .expect("env_start of sandlock");
    Target {
        pid,
        addr: env_start + off as u64,
        len: secret.len(),
    }
}

/// What an observation of the target showed before and after the attack.
struct Observed {
    before: String,
    after: String,
    out: Outcome,
    sentinel: Option<Sentinel>,
}

/// Run `attack` against the supervisor (sandboxed) or a sentinel (bare),
/// sending "go PID ADDR LEN", and observe the target around it.
fn against_supervisor(
    mode: Mode,
    attack: Attack,
    secret: &str,
    observe: impl Fn(&Target) -> String,
) -> Observed {
    against(mode, attack, secret, observe, false)
}

/// With `at_init`, the sandboxed attack aims at pid 1 (the init, which
/// shares sandlock's memory: the secret is at the same address).
fn against(
    mode: Mode,
    attack: Attack,
    secret: &str,
    observe: impl Fn(&Target) -> String,
    at_init: bool,
) -> Observed {
    let sentinel = (!mode.sandboxed()).then(|| Sentinel::start(mode.user(), secret));
    let mut s = attack.env(SECRET_VAR, secret).spawn();
    if !s.wait_ready() {
        let out = s.finish();
        return Observed {
            before: String::new(),
            after: String::new(),
            out,
            sentinel,
        };
    }
    let target = match &sentinel {
        Some(x) => Target {
            pid: x.pid(),
            addr: x.addr,
            len: x.len,
        },
        None => supervisor_target(&s, secret),
    };
    let before = observe(&target);
    let aim = if at_init && sentinel.is_none() {
        1
    } else {
        target.pid
    };
    s.go(&format!("{aim} {:#x} {}", target.addr, target.len));
    s.next_line("HOLD", HANG_GUARD);
    let after = observe(&target);
    Observed {
        before,
        after,
        out: s.finish(),
        sentinel,
    }
}

/// `supervisor NAME`, run by the CLI (in its PID namespace), or with
/// `pidns` false by the library runner without one
/// (`examples/policy_callback --pid-namespace off`), as where the machine
/// refuses it: sandlock's pid is then visible from the sandbox.
fn aimed(mode: Mode, name: &str, pidns: bool) -> Attack {
    let attack = Attack::new(mode, "supervisor", name);
    if pidns || !mode.sandboxed() {
        attack
    } else {
        attack.sandlock_at(callback_runner()).flags(&[
            "--isolate-signals",
            "on",
            "--pid-namespace",
            "off",
        ])
    }
}

fn changed(mode: Mode, attack: &str, observe: impl Fn(&Target) -> String, what: &str, pidns: bool) {
    let o = against_supervisor(mode, aimed(mode, attack, pidns), "s", observe);
    let what = format!("{what}: {:?} -> {:?}", o.before, o.after);
    verdict(mode, Bare::Works, o.before != o.after, &what, &o.out);
}

fn ptrace_supervisor(mode: Mode) {
    ptrace_sup(mode, true);
}

fn ptrace_supervisor_no_pidns(mode: Mode) {
    ptrace_sup(mode, false);
}

fn ptrace_sup(mode: Mode, pidns: bool) {
    let o = against_supervisor(mode, aimed(mode, "ptrace", pidns), "s", |t| {
        format!("{:?}", procfs::tracers(t.pid))
    });
    let traced = o
        .after
        .split(|c: char| !c.is_ascii_digit())
        .any(|n| !n.is_empty() && n != "0");
    let what = format!("PTRACE_SEIZE of the supervisor (tracers {})", o.after);
    verdict(mode, Bare::Works, traced, &what, &o.out);
}

fn process_vm_readv_supervisor(mode: Mode) {
    vm_read(mode, false, "process_vm_readv of the supervisor's memory");
}

fn process_vm_writev_supervisor(mode: Mode) {
    vm_write(
        mode,
        false,
        "process_vm_writev into the supervisor's memory",
    );
}

fn process_vm_readv_supervisor_no_pidns(mode: Mode) {
    vm_read_with(
        mode,
        aimed(mode, "vm-read", false),
        false,
        "process_vm_readv of the supervisor's memory, no PID namespace",
    );
}

fn process_vm_writev_supervisor_no_pidns(mode: Mode) {
    vm_write_with(
        mode,
        aimed(mode, "vm-write", false),
        false,
        "process_vm_writev into the supervisor's memory, no PID namespace",
    );
}

fn ptrace_init(mode: Mode) {
    let attack = Attack::new(mode, "supervisor", "ptrace");
    let o = against(mode, attack, "s", |_| String::new(), true);
    let seized = o.out.printed("RESULT ptrace-seize ok=");
    let what = "PTRACE_SEIZE of pid 1 (the init)";
    verdict(mode, Bare::Works, seized, what, &o.out);
}

fn process_vm_readv_init(mode: Mode) {
    vm_read(
        mode,
        true,
        "process_vm_readv of pid 1 (the init, in sandlock's memory)",
    );
}

fn process_vm_writev_init(mode: Mode) {
    vm_write(
        mode,
        true,
        "process_vm_writev into pid 1 (the init, in sandlock's memory)",
    );
}

/// `process_vm_readv` of the secret, aimed at sandlock or (`at_init`) at
/// pid 1.
fn vm_read(mode: Mode, at_init: bool, what: &str) {
    vm_read_with(
        mode,
        Attack::new(mode, "supervisor", "vm-read"),
        at_init,
        what,
    );
}

fn vm_read_with(mode: Mode, attack: Attack, at_init: bool, what: &str) {
    let secret = nonce("vm-secret-");
    let o = against(mode, attack, &secret, |_| String::new(), at_init);
    verdict(mode, Bare::Works, o.out.printed(&secret), what, &o.out);
}

/// `process_vm_writev` over the secret, aimed at sandlock or (`at_init`)
/// at pid 1; the secret is then looked for in sandlock's environment.
fn vm_write(mode: Mode, at_init: bool, what: &str) {
    vm_write_with(
        mode,
        Attack::new(mode, "supervisor", "vm-write"),
        at_init,
        what,
    );
}

fn vm_write_with(mode: Mode, attack: Attack, at_init: bool, what: &str) {
    let secret = nonce("vm-secret-");
    let environ = |t: &Target| String::from_utf8_lossy(&procfs::environ(t.pid)).into_owned();
    let o = against(mode, attack, &secret, environ, at_init);
    let overwritten = match o.sentinel {
        Some(sentinel) => sentinel.secret_now() != secret,
        None => !o.after.contains(&secret),
    };
    verdict(mode, Bare::Works, overwritten, what, &o.out);
}

fn robust_list_supervisor(mode: Mode) {
    answered(mode, "robust-list", "get_robust_list", true);
}

fn robust_list_supervisor_no_pidns(mode: Mode) {
    answered(mode, "robust-list", "get_robust_list", false);
}

fn kcmp_supervisor(mode: Mode) {
    answered(mode, "kcmp", "kcmp", true);
}

fn kcmp_supervisor_no_pidns(mode: Mode) {
    answered(mode, "kcmp", "kcmp", false);
}

/// An attack that only reads (an address of the supervisor's memory, what
/// its descriptors are): the kernel answering it at all is the leak.
fn answered(mode: Mode, attack: &str, call: &str, pidns: bool) {
    let o = against_supervisor(mode, aimed(mode, attack, pidns), "s", |_| String::new());
    let leaked = o.out.printed(&format!("RESULT {call} ok="));
    let what = format!("{call} on the supervisor answered");
    verdict(mode, Bare::Works, leaked, &what, &o.out);
}

fn prlimit_supervisor(mode: Mode) {
    prlimit(mode, true);
}

fn prlimit_supervisor_no_pidns(mode: Mode) {
    prlimit(mode, false);
}

fn prlimit(mode: Mode, pidns: bool) {
    let observe = |t: &Target| procfs::limits_line(t.pid, "Max msgqueue size").unwrap_or_default();
    changed(
        mode,
        "prlimit",
        observe,
        "prlimit64 on the supervisor",
        pidns,
    );
}

fn setpriority_supervisor(mode: Mode) {
    setpriority(mode, true);
}

fn setpriority_supervisor_no_pidns(mode: Mode) {
    setpriority(mode, false);
}

fn setpriority(mode: Mode, pidns: bool) {
    let observe = |t: &Target| procfs::stat_field(t.pid, 19).unwrap_or_default();
    changed(
        mode,
        "setpriority",
        observe,
        "setpriority (nice) of the supervisor",
        pidns,
    );
}

fn sched_setaffinity_supervisor(mode: Mode) {
    sched_setaffinity(mode, true);
}

fn sched_setaffinity_supervisor_no_pidns(mode: Mode) {
    sched_setaffinity(mode, false);
}

fn sched_setaffinity(mode: Mode, pidns: bool) {
    let observe = |t: &Target| procfs::status_value(t.pid, "Cpus_allowed_list").unwrap_or_default();
    changed(
        mode,
        "affinity",
        observe,
        "sched_setaffinity of the supervisor",
        pidns,
    );
}

fn sched_setattr_supervisor(mode: Mode) {
    sched_setattr(mode, true);
}

fn sched_setattr_supervisor_no_pidns(mode: Mode) {
    sched_setattr(mode, false);
}

fn sched_setattr(mode: Mode, pidns: bool) {
    let observe = |t: &Target| procfs::stat_field(t.pid, 41).unwrap_or_default();
    changed(
        mode,
        "setattr",
        observe,
        "sched_setattr (policy) of the supervisor",
        pidns,
    );
}

fn ioprio_set_supervisor(mode: Mode) {
    ioprio_set(mode, true);
}

fn ioprio_set_supervisor_no_pidns(mode: Mode) {
    ioprio_set(mode, false);
}

fn ioprio_set(mode: Mode, pidns: bool) {
    let observe = |t: &Target| {
        let out = Command::new("ionice")
            .arg("-p")
            .arg(t.pid.to_string())
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    changed(
        mode,
        "ioprio",
        observe,
        "ioprio_set of the supervisor",
        pidns,
    );
}

/// Wait (bounded) for a sentinel to die; its killing signal, if it did.
fn sentinel_killed(sentinel: &mut Sentinel) -> Option<i32> {
    for _ in 0..200 {
        if let Some(sig) = sentinel.killed_by() {
            return Some(sig);
        }
        if !sentinel.alive() {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

fn kill_supervisor(mode: Mode) {
    signal(mode, "kill", 9, true);
}

/// `kill`, or another way of sending a signal (`supervisor signal
/// METHOD`), aimed at the supervisor (the sentinel bare): it must not die
/// of `sig`. With `pidns` false the sandbox runs without a PID namespace
/// (the library, `examples/policy_callback`), as where the machine refuses
/// one: the supervisor's pid is then visible, and Landlock's signal scope
/// alone stands in the way.
fn signal(mode: Mode, method: &str, sig: i32, pidns: bool) {
    let mut attack = if method == "kill" {
        aimed(mode, "kill", pidns)
    } else {
        aimed(mode, "signal", pidns).arg(method)
    };
    if pidns {
        attack = attack.flag("--isolate-signals");
    }
    let o = against_supervisor(mode, attack, "s", |_| String::new());
    let killed = match o.sentinel {
        Some(mut sentinel) => sentinel_killed(&mut sentinel) == Some(sig),
        None => o.out.signal() == Some(sig),
    };
    let what = format!("{method} to the supervisor (signal {sig}, PID namespace: {pidns})");
    verdict(mode, Bare::Works, killed, &what, &o.out);
}

fn kill_supervisor_no_pidns(mode: Mode) {
    signal(mode, "kill", 9, false);
}

fn tgkill_supervisor_no_pidns(mode: Mode) {
    signal(mode, "tgkill", 9, false);
}

fn sigqueue_supervisor_no_pidns(mode: Mode) {
    signal(mode, "sigqueue", 9, false);
}

fn pidfd_signal_supervisor_no_pidns(mode: Mode) {
    signal(mode, "pidfd", 9, false);
}

fn sigio_supervisor_no_pidns(mode: Mode) {
    signal(mode, "sigio", 29, false);
}

fn tgkill_supervisor(mode: Mode) {
    signal(mode, "tgkill", 9, true);
}

fn sigqueue_supervisor(mode: Mode) {
    signal(mode, "sigqueue", 9, true);
}

fn pidfd_signal_supervisor(mode: Mode) {
    signal(mode, "pidfd", 9, true);
}

/// `SIGIO` (29) from a pipe whose owner (`F_SETOWN`) is the target.
fn sigio_supervisor(mode: Mode) {
    signal(mode, "sigio", 29, true);
}

/// kill(getppid(), SIGKILL). Everything runs under a throwaway `sh` that
/// reports its child's status: bare, that `sh` is the parent and dies;
/// sandboxed, sandlock is the parent (`PARENT-STATUS 137` if it is killed)
/// and, should a sandbox ever exec the command in its own place, the
/// victim is still that `sh`, never the test process.
fn kill_parent(mode: Mode) {
    let out = Attack::new(mode, "supervisor", "kill-parent")
        .flag("--isolate-signals")
        .wrapped(&["sh", "-c", "\"$@\"; echo PARENT-STATUS $?", "sh"])
        .run("");
    let killed = out.signal() == Some(9) || out.printed("PARENT-STATUS 137");
    verdict(
        mode,
        Bare::Works,
        killed,
        "kill(getppid(), SIGKILL) killing the parent",
        &out,
    );
}

/// kill(-1, SIGKILL) inside a fresh PID namespace holding the attack and a
/// sentinel of the same uid: only they can be hit, whatever happens.
fn kill_all_in_pidns(mode: Mode, flags: &[&str]) {
    let helpers = bins().prog("helpers");
    let uid = mode.user().uid().to_string();
    // The launcher runs as root (it makes the namespace) and drops to uid.
    let outer = match mode {
        Mode::Bare(_) => Mode::Bare(User::Root),
        Mode::Sandboxed(_) => Mode::Sandboxed(User::Root),
    };
    let out = Attack::new(outer, "supervisor", "kill-all")
        .flags(flags)
        .wrapped(&[
            helpers.as_os_str(),
            "wrap".as_ref(),
            "pidns".as_ref(),
            uid.as_ref(),
            "--".as_ref(),
        ])
        .run("");
    assert!(
        out.printed("SENTINEL "),
        "the pidns launcher failed\n{}",
        out.describe()
    );
    let what = "kill(-1, SIGKILL) reaching a same-uid process outside the sandbox";
    verdict(
        mode,
        Bare::Works,
        out.printed("SENTINEL killed"),
        what,
        &out,
    );
}

fn kill_everything(mode: Mode) {
    kill_all_in_pidns(mode, &["--isolate-signals"]);
}

fn kill_everything_default_policy(mode: Mode) {
    kill_all_in_pidns(mode, &[]);
}

fn proc_read(mode: Mode, file: &str, attack: Attack, secret: &str) {
    let attack = attack.arg(file).flag("-r").flag("/proc");
    let o = against_supervisor(mode, attack, secret, |_| String::new());
    let what = format!("reading the supervisor's /proc/PID/{file}");
    verdict(mode, Bare::Works, o.out.printed(secret), &what, &o.out);
}

fn proc_environ_supervisor(mode: Mode) {
    let secret = nonce("environ-secret-");
    proc_read(
        mode,
        "environ",
        Attack::new(mode, "supervisor", "proc-read"),
        &secret,
    );
}

fn proc_cmdline_supervisor(mode: Mode) {
    let secret = nonce("cmdline-secret-");
    // Under sandlock the secret is in sandlock's argv[0]: a symlink's path.
    let scratch = Scratch::new(mode.user());
    let link = scratch.dir(&secret).join("sandlock");
    symlink(bins().sandlock(), &link).unwrap();
    let attack = Attack::new(mode, "supervisor", "proc-read").sandlock_at(link);
    proc_read(mode, "cmdline", attack, &secret);
}

fn proc_mem_supervisor(mode: Mode) {
    let secret = nonce("mem-secret-");
    let attack = Attack::new(mode, "supervisor", "proc-mem")
        .flag("-r")
        .flag("/proc");
    let o = against_supervisor(mode, attack, &secret, |_| String::new());
    let what = "reading the supervisor's /proc/PID/mem";
    verdict(mode, Bare::Works, o.out.printed(&secret), what, &o.out);
}

/// Opening /proc/SUPERVISOR/fd/N would hand the sandbox the supervisor's
/// descriptors (its seccomp listener among them).
fn proc_fd_supervisor(mode: Mode) {
    let sentinel = (!mode.sandboxed()).then(|| Sentinel::start(mode.user(), "fd"));
    let target = sentinel.as_ref().map(Sentinel::pid);
    let attack = Attack::new(mode, "supervisor", "proc-fd")
        .flag("-r")
        .flag("/proc");
    let (gained, out) = fd_attack(attack, |s| target.unwrap_or(s.pid()).to_string(), "");
    let what = format!("descriptors taken from the supervisor through /proc: {gained:?}");
    verdict(mode, Bare::Works, !gained.is_empty(), &what, &out);
}
