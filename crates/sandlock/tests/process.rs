//! The sandbox's processes: no inherited descriptor above 2 (the seccomp
//! listener first of all), children and grandchildren confined like their
//! parent, the sandbox dies with sandlock, and its timeout holds before
//! the command has started too.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{
    NOBODY, Scratch, bins, descendants, gcc, gone_marked, gone_within, probe_in, root, run_as,
};

/// Descriptors 7 and 9 are open in sandlock (inherited from the shell), and
/// sandlock itself holds the listener and its socket: the command sees 0-2.
#[test]
fn only_the_standard_descriptors_reach_the_command() {
    let script = format!(
        "exec 7</dev/null 9>/dev/null; exec {} run -- {} fds",
        bins().sandlock().display(),
        bins().probe().display()
    );
    let out = run_as(0, std::path::Path::new("/bin/sh"), &["-c", &script], &[]);
    assert_eq!(out.stdout, "fds 0 1 2\n", "{out:?}");
    // Bare, the same shell line leaks them: the test can fail.
    let bare = format!(
        "exec 7</dev/null 9>/dev/null; exec {} fds",
        bins().probe().display()
    );
    let out = run_as(0, std::path::Path::new("/bin/sh"), &["-c", &bare], &[]);
    assert!(out.stdout.starts_with("fds 0 1 2 7 9"), "{out:?}");
}

fn inherited(uid: u32) {
    let s = Scratch::new(uid);
    s.dir("rw");
    s.dir("outside");
    let out_file = s.s("outside/x");
    let rw = s.s("rw");
    // A child and a grandchild each try the deny list and a write outside.
    let out = probe_in(
        uid,
        &["-w", &rw],
        &[
            "spawn",
            "2",
            "write",
            &out_file,
            "write",
            &format!("{rw}/ok"),
            "deny",
        ],
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"write errno=13"), "{out:?}");
    assert!(lines.contains(&"write ok"), "{out:?}");
    assert!(lines.contains(&"mount errno=1"), "{out:?}");
    assert!(lines.contains(&"ptrace errno=1"), "{out:?}");
    assert!(lines.contains(&"clone3 errno=38"), "{out:?}");
    // Its parent is in the sandbox too: allowed; the user form never is.
    assert!(lines.contains(&"prlimit_parent ok"), "{out:?}");
    assert!(lines.contains(&"setpriority_user errno=1"), "{out:?}");
    assert!(lines.contains(&"prlimit_child ok"), "{out:?}");
    assert!(lines.contains(&"socket_inet_tcp errno=1"), "{out:?}");
    assert!(!s.join("outside/x").exists());
    assert!(s.join("rw/ok").exists());
}

#[test]
fn grandchildren_inherit_everything() {
    inherited(0);
}

#[test]
fn grandchildren_inherit_everything_as_nobody() {
    if root() {
        inherited(NOBODY);
    }
}

/// SIGKILL to sandlock: its child dies with it (PR_SET_PDEATHSIG).
#[test]
fn sandbox_dies_with_sandlock() {
    let mut child = Command::new(bins().sandlock())
        .current_dir(bins().dir())
        .args(["run", "--"])
        .arg(bins().probe())
        .args(["ids", "sleep", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("pid="), "{line}");
    // Its pid as it printed it is the one in the sandbox's PID namespace:
    // take sandlock's descendants from /proc instead.
    let tree = descendants(child.id() as i32);
    assert!(!tree.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    for pid in tree {
        assert!(
            gone_within(pid, 10),
            "the sandboxed process {pid} outlived sandlock"
        );
    }
}

/// A process that left the sandbox's process group is still in the
/// sandbox (same filter, same Landlock domain).
#[test]
fn setsid_does_not_leave_the_sandbox() {
    let s = Scratch::new(0);
    let pidfile = s.s("daemon.pid");
    let out = probe_in(
        0,
        &["-w", s.path().to_str().unwrap()],
        &["daemon", &pidfile],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    // The daemon is killed when the command ends, maybe before it wrote
    // its pid (which would be its pid in the sandbox's PID namespace
    // anyway): find it by its argv, which holds the unique pidfile path.
    assert!(gone_marked(&pidfile, 10), "the daemon outlived the sandbox");
}

/// `-t` counts from the start: an `execve` that never completes (held at
/// its entry by a tracer, as a binary on a hung network file system would
/// hold it) ends with exit 124 at the timeout, the sandbox killed, rather
/// than a sandlock waiting for it forever.
fn timeout_before_the_command_started(uid: u32) {
    let holdexec = bins().dir().join(format!("holdexec-{uid}"));
    gcc("tests/progs/holdexec.c", &holdexec, &[]);
    let started = std::time::Instant::now();
    let out = run_as(
        uid,
        &holdexec,
        &[
            "30",
            bins().sandlock().to_str().unwrap(),
            "run",
            "-t",
            "1",
            "--",
            "/bin/true",
        ],
        &[],
    );
    assert!(out.stdout.contains("HELD"), "no execve was held: {out:?}");
    assert!(out.stdout.contains("EXIT 124"), "{out:?}");
    assert_eq!(out.code, Some(124), "{out:?}");
    assert!(
        out.stderr
            .contains("timed out after 1 s before the command started"),
        "{out:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn timeout_before_the_command_started_root() {
    timeout_before_the_command_started(0);
}

#[test]
fn timeout_before_the_command_started_nobody() {
    if root() {
        timeout_before_the_command_started(NOBODY);
    }
}

/// Where the kernel refuses the namespaces (here `user.max_user_namespaces`
/// set to 0 in a user namespace of the test's own, which limits only what
/// is created inside it, for uid 65534 there), the clone fails, the launch
/// runs again without them, and the command runs confined as ever:
/// Landlock refuses the write outside its grants. Run as `uid` directly,
/// the same line gets its PID namespace (the command is pid 2): the test
/// tells the two apart.
fn refused_namespaces(uid: u32) {
    let args = |s: &Scratch| -> Vec<String> {
        vec![
            "run".into(),
            "-w".into(),
            s.s("rw"),
            "--".into(),
            bins().probe().to_string_lossy().into_owned(),
            "ids".into(),
            "write".into(),
            s.s("outside/x"),
            "write".into(),
            s.s("rw/ok"),
        ]
    };
    let tree = |uid: u32| {
        let s = Scratch::new(uid);
        s.dir("rw");
        s.dir("outside");
        s
    };
    let pid = |out: &common::Out| {
        out.get("ids")
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pid="))
            .unwrap()
            .to_owned()
    };
    let s = tree(uid);
    let usual = run_as(uid, &bins().sandlock(), &args(&s), &[]);
    assert_eq!(usual.code, Some(0), "{usual:?}");
    assert_eq!(pid(&usual), "2", "{usual:?}");
    let s = tree(NOBODY);
    let refused = common::run_without_user_namespaces(&bins().sandlock(), &args(&s));
    assert_eq!(refused.code, Some(0), "{refused:?}");
    assert_ne!(pid(&refused), "2", "{refused:?}");
    let lines: Vec<&str> = refused.stdout.lines().collect();
    assert!(lines.contains(&"write errno=13"), "{refused:?}");
    assert!(lines.contains(&"write ok"), "{refused:?}");
}

#[test]
fn refused_namespaces_root() {
    if root() {
        refused_namespaces(0);
    }
}

#[test]
fn refused_namespaces_nobody() {
    if root() {
        refused_namespaces(NOBODY);
    }
}
