//! Attack class 1: the shape of the seccomp filter (`shape.c`).
//!
//! Other syscall tables (x32, the i386 gate), garbage in the upper half of
//! int arguments, clone3, and numbers past the newest syscall the filter
//! knows. Architecture first: an i386 entry must kill the process, which
//! sandlock reports as 128 + SIGSYS.

use std::sync::OnceLock;

use crate::checks::{
    Bare, ENOSYS, EPERM, KILLED_BY_SIGSYS, Sentinel, marker_lines, namespace_attack, sysctl,
    verdict,
};
use crate::harness::{Attack, Mode, Res, Scratch, User};
use crate::observe::{LoopbackPair, Pty};
use crate::procfs;

escape_tests!(run:
    x32_unshare,
    i386_unshare,
    i386_ptrace,
    hibit_ioctl_tiocsti,
    hibit_socket_raw,
    hibit_socket_packet,
    hibit_clone_newuser,
    clone3_namespaces,
    syscall_numbers_past_the_table,
);

escape_tests!(run:
    i386_socketcall_connect,
    i386_direct_connect,
);

escape_tests!(run:
    i386_execve,
);

/// Does this kernel have the x32 ABI? (Asked bare, once.)
fn x32_available() -> bool {
    static X32: OnceLock<bool> = OnceLock::new();
    *X32.get_or_init(|| {
        let out = Attack::new(Mode::Bare(User::Root), "shape", "x32-probe").run("");
        matches!(out.result("x32-getpid"), Some(Res::Ok(_)))
    })
}

/// In the sandbox, an i386 entry is a foreign architecture: killed.
fn assert_killed_at_the_gate(mode: Mode, out: &crate::harness::Outcome) {
    if mode.sandboxed() {
        assert_eq!(
            out.code(),
            Some(KILLED_BY_SIGSYS),
            "an i386 syscall must kill the sandboxed process (exit 128+SIGSYS)\n{}",
            out.describe()
        );
    }
}

fn x32_unshare(mode: Mode) {
    let (changed, out) = namespace_attack(Attack::new(mode, "shape", "x32-unshare"), "");
    let bare = if x32_available() {
        Bare::Works
    } else {
        Bare::Impossible("the kernel has no x32 ABI (CONFIG_X86_X32_ABI); the BPF tests cover it")
    };
    verdict(
        mode,
        bare,
        !changed.is_empty(),
        "x32 unshare(CLONE_NEWUSER)",
        &out,
    );
}

fn i386_unshare(mode: Mode) {
    let (changed, out) = namespace_attack(Attack::new(mode, "shape", "i386-unshare"), "");
    verdict(
        mode,
        Bare::Works,
        !changed.is_empty(),
        "i386 unshare(CLONE_NEWUSER)",
        &out,
    );
    assert_killed_at_the_gate(mode, &out);
}

fn i386_ptrace(mode: Mode) {
    let sentinel = Sentinel::start(mode.user(), "ptrace-target");
    let target = sentinel.pid();
    let (traced, out) = Attack::new(mode, "shape", "i386-ptrace").probe(
        |_| target.to_string(),
        "HOLD",
        |_| procfs::tracers(target).iter().any(|&t| t != 0),
    );
    verdict(
        mode,
        Bare::Works,
        traced,
        "i386 PTRACE_SEIZE of an outside process",
        &out,
    );
    assert_killed_at_the_gate(mode, &out);
}

fn i386_connect(mode: Mode, attack: &str) {
    let net = LoopbackPair::new();
    let out = Attack::new(mode, "shape", attack)
        .arg("127.0.0.2")
        .arg(net.port())
        .flags(&["--net-allow-host", "127.0.0.1"])
        .run("");
    let reached = net.bad.count() > 0;
    verdict(
        mode,
        Bare::Works,
        reached,
        &format!("{attack} to a refused host"),
        &out,
    );
    assert_killed_at_the_gate(mode, &out);
}

fn i386_socketcall_connect(mode: Mode) {
    i386_connect(mode, "i386-socketcall");
}

fn i386_direct_connect(mode: Mode) {
    i386_connect(mode, "i386-connect");
}

fn i386_execve(mode: Mode) {
    let scratch = Scratch::new(mode.user());
    let denied = scratch.dir("denied");
    let outdir = scratch.dir("out");
    let prog = scratch.program("denied/marker", "helpers");
    let log = outdir.join("log");
    let out = Attack::new(mode, "shape", "i386-execve")
        .arg(&prog)
        .arg(&log)
        .flag("-r")
        .flag(scratch.path())
        .flag("-w")
        .flag(&outdir)
        .flag("--fs-deny")
        .flag(&denied)
        .run("");
    let ran = !marker_lines(&log).is_empty();
    verdict(
        mode,
        Bare::Works,
        ran,
        "i386 execve of a denied program",
        &out,
    );
    assert_killed_at_the_gate(mode, &out);
}

fn hibit_ioctl_tiocsti(mode: Mode) {
    let pty = Pty::open(mode.user());
    let (input, out) = Attack::new(mode, "shape", "hibit-tiocsti")
        .stderr(pty.slave().into())
        .probe(
            |_| String::new(),
            "RESULT hibit-tiocsti",
            |_| pty.pending_input(),
        );
    let bare = if sysctl("dev.tty.legacy_tiocsti").as_deref() == Some("0") {
        Bare::NeedsRoot("CAP_SYS_ADMIN (dev.tty.legacy_tiocsti is 0)")
    } else {
        Bare::Works
    };
    let what = format!("ioctl(TIOCSTI | 1<<32) pushing {input:?} into the terminal");
    verdict(mode, bare, input.is_some(), &what, &out);
}

fn hibit_socket(mode: Mode, kind: &str, table: &str) {
    let (made, out) = Attack::new(mode, "shape", "hibit-socket").arg(kind).probe(
        |_| String::new(),
        "HOLD",
        |s| {
            let pid = s.attacker();
            !procfs::socket_inodes(pid).is_disjoint(&procfs::net_table_inodes(pid, table))
        },
    );
    let what = format!("a {kind} socket with 1<<32 in an int argument");
    verdict(mode, Bare::NeedsRoot("CAP_NET_RAW"), made, &what, &out);
}

fn hibit_socket_raw(mode: Mode) {
    hibit_socket(mode, "raw", "raw");
}

fn hibit_socket_packet(mode: Mode) {
    hibit_socket(mode, "packet", "packet");
}

fn hibit_clone_newuser(mode: Mode) {
    let (changed, out) = namespace_attack(Attack::new(mode, "shape", "hibit-clone"), "");
    let what = "clone(CLONE_NEWUSER | 1<<32) making a child in a new namespace";
    verdict(mode, Bare::Works, !changed.is_empty(), what, &out);
}

fn clone3_namespaces(mode: Mode) {
    let (changed, out) = namespace_attack(Attack::new(mode, "shape", "clone3-ns"), "");
    let what = format!("clone3 with every CLONE_NEW* flag: {changed:?}");
    verdict(mode, Bare::Works, !changed.is_empty(), &what, &out);
}

/// Every number from past the newest syscall sandlock's table knows up to
/// 1023 must be refused by the filter (ENOSYS, EPERM or a kill), never
/// handed to the kernel. Bare, the probe starts 10 numbers lower, inside
/// the table, to show that it does see syscalls the kernel implements.
/// (On a kernel no newer than the table, numbers past it are ENOSYS from
/// the kernel too: the sandboxed test can only fail on a newer kernel.)
fn syscall_numbers_past_the_table(mode: Mode) {
    let max = sandlock_bpf::Arch::X86_64.max_known_nr();
    let first = if mode.sandboxed() { max + 1 } else { max - 9 };
    let out = Attack::new(mode, "shape", "high-nrs")
        .arg(first.to_string())
        .arg("1023")
        .run("");
    let mut reached = vec![];
    for line in &out.lines {
        let mut w = line.split_whitespace();
        if w.next() != Some("NR") {
            continue;
        }
        let nr: u32 = w.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let refused = match w.next() {
            Some(v) if v.starts_with("errno=") => {
                let e: i32 = v[6..].parse().unwrap_or(-1);
                e == ENOSYS || e == EPERM
            }
            Some("signal=31") => true,
            _ => false,
        };
        if !refused {
            reached.push(nr);
        }
    }
    if mode.sandboxed() {
        assert!(
            out.printed("DONE"),
            "the probe did not finish\n{}",
            out.describe()
        );
    } else {
        let past: Vec<_> = reached.iter().filter(|&&n| n > max).collect();
        eprintln!("note: syscalls past the table ({max}) that this kernel implements: {past:?}");
    }
    let what = format!("syscall numbers {first}..=1023 reaching the kernel: {reached:?}");
    verdict(mode, Bare::Works, !reached.is_empty(), &what, &out);
}
