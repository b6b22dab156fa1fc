//! What a sandbox sees (issue 8) of its host: `--no-randomize-memory`,
//! `--no-huge-pages`, `--num-cpus`, `--cpu-cores`, `--hostname`,
//! `--clean-env` / `--env`, and the private `/proc`. Real processes under
//! the `sandlock` binary, as root and as uid 65534; `progs/view.c` is the
//! probe. The clock and randomness are tested in `view.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::view::{START, field, run, users, view};
use common::{Out, Scratch, bins, run_as};

/// The environment is on the stack: both runs get the same private
/// temporary directory (`TMPDIR`), the slot of a base of this test's own.
/// Sharing the tests' base, a run could find the slot taken by a parallel
/// test and get a directory of another name's length, shifting the stack.
#[test]
fn no_randomize_memory_gives_the_same_stack_twice() {
    let v = view();
    for uid in users() {
        let base = Scratch::new(uid);
        let stack = || {
            let args = [
                "run",
                "--no-randomize-memory",
                "--",
                v.to_str().unwrap(),
                "stack",
            ];
            let out = run_as(
                uid,
                &bins().sandlock(),
                &args,
                &[("TMPDIR", &base.path().to_string_lossy())],
            );
            field(&out, "stack")
        };
        assert_eq!(stack(), stack(), "uid {uid}");
    }
}

#[test]
fn no_huge_pages_turns_thp_off() {
    if !std::fs::read_to_string("/proc/self/status").is_ok_and(|s| s.contains("THP_enabled:")) {
        return;
    }
    let thp = |flags: &[&str]| {
        let mut f = vec!["-r", "/proc"];
        f.extend_from_slice(flags);
        run(0, &f, &["grep", "THP_enabled", "/proc/self/status"]).stdout
    };
    assert!(thp(&["--no-huge-pages"]).contains("THP_enabled:\t0"));
    assert!(thp(&[]).contains("THP_enabled:\t1"));
}

#[test]
fn num_cpus_one_is_what_everything_counts() {
    for uid in users() {
        let out = run(uid, &["--num-cpus", "1"], &["nproc"]);
        assert_eq!(out.stdout.trim(), "1", "uid {uid}: {out:?}");
        let out = run(
            uid,
            &["--num-cpus", "1", "-r", "/proc", "-r", "/sys"],
            &[
                "sh",
                "-c",
                "nproc; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; \
                 /usr/bin/python3 -c 'import os; print(os.cpu_count())'",
            ],
        );
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines, ["1", "1", "0", "1"], "uid {uid}: {out:?}");
    }
    let out = run(0, &["--num-cpus", "4096"], &["true"]);
    assert_eq!(out.code, Some(125));
    assert!(out.stderr.contains("--num-cpus 4096: only"), "{out:?}");
}

#[test]
fn cpu_cores_pins_the_tasks() {
    let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let cores = last.to_string();
    for uid in users() {
        let out = run(
            uid,
            &["--cpu-cores", &cores],
            &[
                "/usr/bin/python3",
                "-c",
                "import os; print(sorted(os.sched_getaffinity(0)))",
            ],
        );
        assert_eq!(out.stdout.trim(), format!("[{last}]"), "uid {uid}: {out:?}");
    }
}

#[test]
fn hostname_is_what_uname_and_etc_hostname_say() {
    for uid in users() {
        let out = run(
            uid,
            &["--hostname", "sandbox-42"],
            &["sh", "-c", "uname -n; cat /etc/hostname"],
        );
        assert_eq!(out.stdout, "sandbox-42\nsandbox-42\n", "uid {uid}: {out:?}");
    }
    // The host's name is untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "sandbox-42");
    // The generated file is bound from the launch's own tmpfs, not from a
    // file under the caller's temporary directory that another process of
    // the user could change before the mount.
    for uid in users() {
        let out = run(
            uid,
            &["--hostname", "sandbox-42", "-r", "/proc"],
            &["grep", " /etc/hostname ", "/proc/self/mountinfo"],
        );
        let line = out.stdout.trim();
        assert!(
            line.contains(" - tmpfs ") && line.contains(" ro,"),
            "uid {uid}: {out:?}"
        );
    }
}

#[test]
fn clean_env_hides_the_hosts_and_env_adds() {
    for uid in users() {
        let out = run_as(
            uid,
            &bins().sandlock(),
            &[
                "run",
                "--clean-env",
                "--env",
                "ADDED=yes",
                "--",
                "sh",
                "-c",
                "echo host=${HOST_ONLY:-unset} added=$ADDED; touch \"$HOME/w\" && echo home-writable",
            ],
            &[("HOST_ONLY", "leak")],
        );
        assert_eq!(
            out.stdout, "host=unset added=yes\nhome-writable\n",
            "uid {uid}: {out:?}"
        );
    }
}

/// The numeric entries of `/proc` in a sandbox.
fn proc_pids(out: &Out) -> BTreeSet<u32> {
    out.stdout
        .lines()
        .take_while(|l| *l != "--")
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn proc_shows_only_the_sandbox() {
    let me = std::process::id();
    let v = view();
    for uid in users() {
        let out = run(
            uid,
            &["-r", "/proc"],
            &["sh", "-c", "ls /proc; echo --; head -1 /proc/1/status"],
        );
        let pids = proc_pids(&out);
        assert!(
            !pids.is_empty() && pids.len() <= 4,
            "uid {uid}: {pids:?}\n{out:?}"
        );
        assert!(
            !pids.contains(&me),
            "uid {uid}: the test process {me} is listed"
        );
        // pid 1 is the sandbox's init, not the host's.
        assert!(out.stdout.contains("Name:\tsandlock"), "uid {uid}: {out:?}");
        let out = run(
            uid,
            &["-r", "/proc"],
            &[v.to_str().unwrap(), "host", &me.to_string()],
        );
        for op in ["proc", "root-proc"] {
            assert_eq!(field(&out, op), "errno=2", "uid {uid} {op}: {out:?}"); // ENOENT
        }
        for op in ["kill", "pidfd"] {
            assert_eq!(field(&out, op), "errno=3", "uid {uid} {op}: {out:?}"); // ESRCH
        }
    }
}

#[test]
fn proc_net_lists_only_the_sandboxs_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!(":{:04X}", listener.local_addr().unwrap().port());
    let host = std::fs::read_to_string("/proc/net/tcp").unwrap();
    assert!(
        host.contains(&port),
        "the listener is not in the host's table"
    );
    for uid in users() {
        let out = run(
            uid,
            &["-r", "/proc"],
            &["cat", "/proc/net/tcp", "/proc/net/udp"],
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(!out.stdout.contains(&port), "uid {uid}: {out:?}");
        assert_eq!(
            out.stdout.lines().count(),
            2,
            "uid {uid}: only the headers\n{out:?}"
        );
    }
}

#[test]
fn siblings_memory_is_closed() {
    let v = view();
    for uid in users() {
        let out = run(
            uid,
            &["-r", "/proc"],
            &[v.to_str().unwrap(), "sibling", "/bin/sleep"],
        );
        // EACCES: the sibling is non-dumpable.
        assert_eq!(field(&out, "mem"), "errno=13", "uid {uid}: {out:?}");
        if uid != 0 {
            for f in ["environ", "maps", "fd/0"] {
                assert_eq!(field(&out, f), "errno=13", "uid {uid} {f}: {out:?}");
            }
        }
    }
}

#[test]
fn without_the_flags_nothing_is_intercepted() {
    use sandlock::bpf::{Action, Arch, SeccompData, interp};
    let policy = sandlock::Policy::builder().fs_read("/usr").build().unwrap();
    let sb = sandlock::Sandbox::new(policy).unwrap();
    let arch = Arch::native().unwrap();
    for name in [
        "clock_gettime",
        "gettimeofday",
        "time",
        "clock_nanosleep",
        "futex",
        "getrandom",
        "utimensat",
        "timerfd_settime",
        "execve",
    ] {
        let nr = arch.syscall_nr(name).unwrap();
        let args = [0, 0x101 | 1, 0, 8, 0, 0];
        let got = interp::run(
            sb.programs().base.insns(),
            &SeccompData::new(arch, nr, args),
        )
        .unwrap()
        .action();
        assert_eq!(got, Some(Action::Allow), "{name}");
    }
}

/// `--fs-deny` traces each execve and performs the path calls for the
/// sandbox; the view's fix-ups then run at its exec stops, and the paths
/// are resolved in the sandbox's own `/proc` and mounts.
#[test]
fn fs_deny_combines_with_the_view() {
    let v = view();
    let v = v.to_str().unwrap();
    for uid in users() {
        let scratch = Scratch::new(uid);
        let secret = scratch.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let dir = scratch.path().to_str().unwrap().to_owned();
        let secret = secret.to_str().unwrap().to_owned();
        let script = format!(
            "date +%Y; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; \
             cat {secret}; echo cat=$?; head -1 /proc/self/status; \
             cat /proc/1/environ; echo environ=$?; ls /proc | grep -c '^[0-9]'"
        );
        let view_flags = ["-r", "/proc", "--time-start", START, "--random-seed", "42"];
        let mut flags: Vec<&str> = view_flags.to_vec();
        flags.extend(["-r", &dir, "--fs-deny", &secret]);
        let out = run(uid, &flags, &["sh", "-c", &script]);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.first(), Some(&"2000"), "uid {uid}: {out:?}");
        let plain = run(uid, &view_flags, &["sh", "-c", &script]);
        assert_eq!(
            lines.get(1),
            plain.stdout.lines().nth(1).as_ref(),
            "uid {uid}: the seeded bytes differ with --fs-deny\n{out:?}\n{plain:?}"
        );
        assert!(!out.stdout.contains("s3cret"), "uid {uid}: {out:?}");
        assert!(out.stdout.contains("cat=1"), "uid {uid}: {out:?}");
        assert!(out.stdout.contains("Name:\thead"), "uid {uid}: {out:?}");
        assert!(out.stdout.contains("environ=1"), "uid {uid}: {out:?}");
        let count: usize = lines.last().unwrap().trim().parse().unwrap();
        assert!((1..=6).contains(&count), "uid {uid}: {out:?}");
        // The images are still made non-dumpable.
        let mut flags: Vec<&str> = vec!["-r", "/proc", "--fs-deny", &secret];
        flags.extend(["-r", &dir]);
        let out = run(uid, &flags, &[v, "sibling", "/bin/sleep"]);
        assert_eq!(field(&out, "mem"), "errno=13", "uid {uid}: {out:?}");
    }
}
