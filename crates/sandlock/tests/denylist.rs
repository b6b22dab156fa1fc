//! Every entry of the default deny list, tried by a real process inside a
//! real sandbox (as root and as uid 65534): the kernel answered with the
//! filter's errno, and where a side effect is observable, it did not happen.
#![allow(clippy::unwrap_used)]

mod common;

use common::{NOBODY, Scratch, probe_in, root};

const EPERM: &str = "errno=1";
const ENOSYS: &str = "errno=38";

/// The answers the sandbox must give, probe by probe.
const EXPECTED: &[(&str, &str)] = &[
    ("mount", EPERM),
    ("umount2", EPERM),
    ("pivot_root", EPERM),
    ("fsopen", EPERM),
    ("fsconfig", EPERM),
    ("fsmount", EPERM),
    ("fspick", EPERM),
    ("move_mount", EPERM),
    ("open_tree", EPERM),
    ("open_tree_attr", EPERM),
    ("mount_setattr", EPERM),
    ("setns", EPERM),
    ("ptrace", EPERM),
    ("process_vm_readv", EPERM),
    ("process_vm_writev", EPERM),
    ("pidfd_getfd", EPERM),
    ("kexec_load", EPERM),
    ("kexec_file_load", EPERM),
    ("init_module", EPERM),
    ("finit_module", EPERM),
    ("delete_module", EPERM),
    ("bpf", EPERM),
    ("perf_event_open", EPERM),
    ("userfaultfd", EPERM),
    ("io_uring_setup", EPERM),
    ("io_uring_enter", EPERM),
    ("io_uring_register", EPERM),
    ("keyctl", EPERM),
    ("add_key", EPERM),
    ("request_key", EPERM),
    ("open_by_handle_at", EPERM),
    ("name_to_handle_at", EPERM),
    ("swapon", EPERM),
    ("swapoff", EPERM),
    ("reboot", EPERM),
    ("acct", EPERM),
    ("settimeofday", EPERM),
    ("clock_settime", EPERM),
    ("clock_adjtime", EPERM),
    ("adjtimex", EPERM),
    ("quotactl", EPERM),
    ("quotactl_fd", EPERM),
    ("lookup_dcookie", EPERM),
    ("iopl", EPERM),
    ("ioperm", EPERM),
    ("personality_rie", EPERM),
    ("personality_hibit", EPERM),
    ("personality_query", "ok"),
    ("personality_norandom", "ok"),
    ("personality_linux", "ok"),
    ("personality_unchanged", "yes"),
    ("tiocsti", EPERM),
    ("tiocsti_hibit", EPERM),
    ("tioclinux", EPERM),
    // Another ioctl on the same descriptor reaches the kernel (ENOTTY).
    ("fionread", "errno=25"),
    ("socket_unix", "ok"),
    ("socket_netlink_route", "ok"),
    ("socket_netlink_audit", EPERM),
    ("socket_packet", EPERM),
    ("socket_packet_hibit", EPERM),
    ("socket_inet_raw", EPERM),
    ("socket_inet_raw_hibit", EPERM),
    // No network flag: no IP socket at all.
    ("socket_inet_tcp", EPERM),
    ("socket_inet6_tcp", EPERM),
    ("socket_inet_udp", EPERM),
    ("socket_inet_mptcp", EPERM),
    ("socket_vsock", EPERM),
    ("clone_newuser", EPERM),
    ("clone_hibit", EPERM),
    ("clone_plain", "ok"),
    ("clone3", ENOSYS),
    ("prlimit_parent", EPERM),
    ("prlimit_self0", "ok"),
    ("prlimit_self", "ok"),
    ("prlimit_child", "ok"),
    ("setpriority_child", "ok"),
    ("setpriority_parent", EPERM),
    ("setpriority_user", EPERM),
    ("setpriority_self", "ok"),
    ("sched_setaffinity_parent", EPERM),
    ("sched_setaffinity_self", "ok"),
    ("sched_setattr_parent", EPERM),
    ("sched_setscheduler_parent", EPERM),
    ("ioprio_set_parent", EPERM),
    ("ioprio_set_user", EPERM),
    ("x32_getpid", ENOSYS),
    ("unshare_files", "ok"),
    ("unshare_hibit", EPERM),
    ("unshare_time", EPERM),
    ("unshare_user", EPERM),
];

fn deny_list(uid: u32) {
    let scratch = Scratch::new(uid);
    let target = scratch.dir("mnt");
    let out = probe_in(uid, &[], &["deny", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let got = out.results();
    let mut wrong = Vec::new();
    for (op, want) in EXPECTED {
        match got.get(*op) {
            Some(v) if v == want => {}
            #[cfg(not(target_arch = "x86_64"))]
            None if ["iopl", "ioperm", "x32_getpid"].contains(op) => {}
            other => wrong.push(format!("{op}: got {other:?}, want {want}")),
        }
    }
    assert!(wrong.is_empty(), "{}\n{out:?}", wrong.join("\n"));
    // The tmpfs was not mounted on the scratch directory.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(target.to_str().unwrap()));
}

#[test]
fn deny_list_as_root() {
    if root() {
        deny_list(0);
    }
}

#[test]
fn deny_list_as_nobody() {
    if root() {
        deny_list(NOBODY);
    }
}

/// With only TCP port rules, plain TCP sockets exist, nothing else of IP.
#[test]
fn tcp_port_rules_allow_plain_tcp_sockets_only() {
    let out = probe_in(0, &["--net-connect", "443"], &["deny"]);
    let r = out.results();
    assert_eq!(r["socket_inet_tcp"], "ok", "{out:?}");
    assert_eq!(r["socket_inet6_tcp"], "ok");
    assert_eq!(r["socket_inet_udp"], EPERM);
    assert_eq!(r["socket_inet_mptcp"], EPERM);
    assert_eq!(r["socket_inet_raw"], EPERM);
    assert_eq!(r["socket_vsock"], EPERM);
}

/// The i386 entry point kills the process (SIGSYS: 128 + 31).
#[test]
#[cfg(target_arch = "x86_64")]
fn int80_is_killed() {
    let out = probe_in(0, &[], &["echo", "started", "int80"]);
    assert!(out.stdout.contains("started"), "{out:?}");
    assert!(!out.stdout.contains("int80 returned"), "{out:?}");
    assert_eq!(out.code, Some(128 + 31), "{out:?}");
}

/// A memfd cannot be made executable, so it cannot be run.
#[test]
fn memfd_cannot_be_executed() {
    if !sandlock::kernel::memfd_noexec_seal() {
        return;
    }
    let out = probe_in(0, &[], &["memfd"]);
    assert_eq!(out.get("memfd_create"), "ok", "{out:?}");
    assert_eq!(out.get("memfd_exec"), "refused", "{out:?}");
    assert_eq!(out.get("memfd_fchmod"), EPERM, "{out:?}");
    assert_eq!(out.get("memfd_create_exec"), "errno=13", "{out:?}");
    // Bare, the same program runs it: the test can fail.
    let bare = common::run_as::<&str>(0, &common::bins().probe(), &["memfd"], &[]);
    assert_eq!(bare.get("memfd_exec"), "ran", "{bare:?}");
}

/// `--audit` logs the supervisor's decisions.
#[test]
fn audit_log_records_decisions() {
    let scratch = Scratch::new(0);
    let log = scratch.s("audit.jsonl");
    let out = probe_in(0, &["--audit", &log], &["deny"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |sys: &str, verdict: &str| {
        lines
            .iter()
            .any(|l| l["syscall"] == sys && l["verdict"] == verdict)
    };
    assert!(find("prlimit64", "deny"), "{text}");
    assert!(find("prlimit64", "allow"), "{text}");
    assert!(find("setpriority", "deny"), "{text}");
}
