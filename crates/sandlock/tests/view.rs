//! What a sandbox sees (issue 8): `--time-start`, `--random-seed`,
//! `--no-randomize-memory`, `--num-cpus`, `--cpu-cores`, `--hostname`,
//! `--clean-env` / `--env`, and the private `/proc`. Real processes under
//! the `sandlock` binary, as root and as uid 65534; `progs/view.c` is the
//! probe (built dynamically: glibc then reads clocks through the vDSO).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use common::{NOBODY, Out, Scratch, bins, root, run_as};

/// 2000-06-15T00:00:00Z.
const Y2000: i64 = 961_027_200;
const START: &str = "2000-06-15T00:00:00";

/// The `view` probe, next to `sandlock` (world-readable).
fn view() -> PathBuf {
    static V: OnceLock<PathBuf> = OnceLock::new();
    V.get_or_init(|| {
        let out = bins().dir().join("view");
        common::gcc("tests/progs/view.c", &out, &["-pthread"]);
        out
    })
    .clone()
}

/// The users to run as: root always; uid 65534 when the tests are root.
fn users() -> Vec<u32> {
    if root() { vec![0, NOBODY] } else { vec![0] }
}

/// `sandlock run FLAGS -- CMD...` as `uid`.
fn run(uid: u32, flags: &[&str], cmd: &[&str]) -> Out {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    run_as(uid, &bins().sandlock(), &args, &[])
}

/// The value of `key` in `key value` lines.
fn field(out: &Out, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no `{key}` in the output\n{out:?}"))
        .to_owned()
}

fn secs(out: &Out, key: &str) -> i64 {
    field(out, key).parse().unwrap()
}

#[test]
fn time_start_shifts_date_python_and_the_vdso() {
    let v = view();
    let v = v.to_str().unwrap();
    for uid in users() {
        let out = run(uid, &["--time-start", START], &["date", "+%Y"]);
        assert_eq!(out.stdout.trim(), "2000", "uid {uid}: {out:?}");
        let out = run(
            uid,
            &["--time-start", START],
            &[
                "/usr/bin/python3",
                "-c",
                "import time; print(int(time.time()))",
            ],
        );
        let t: i64 = out.stdout.trim().parse().unwrap_or(0);
        assert!((Y2000..Y2000 + 120).contains(&t), "uid {uid}: {out:?}");
        let out = run(uid, &["--time-start", START], &[v, "clock"]);
        for key in [
            "vdso",
            "syscall",
            "gettimeofday",
            "time",
            "time-syscall",
            "coarse",
        ] {
            let t = secs(&out, key);
            assert!(
                (Y2000 - 1..Y2000 + 120).contains(&t),
                "uid {uid} {key}: {out:?}"
            );
        }
        let tai = secs(&out, "tai") - secs(&out, "vdso");
        assert!(
            (0..=40).contains(&tai),
            "uid {uid}: TAI offset {tai}: {out:?}"
        );
    }
}

#[test]
fn without_time_start_the_clock_is_the_hosts() {
    let out = run(0, &[], &[view().to_str().unwrap(), "clock"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((secs(&out, "vdso") - now).abs() < 60, "{out:?}");
}

#[test]
fn sleep_still_takes_about_a_second() {
    for uid in users() {
        let t0 = Instant::now();
        let out = run(uid, &["--time-start", START], &["sleep", "1"]);
        let took = t0.elapsed().as_secs_f64();
        assert_eq!(out.code, Some(0), "{out:?}");
        // Liveness only: the sleep is not skipped, and it ends.
        assert!(
            (0.9..60.0).contains(&took),
            "uid {uid}: sleep 1 took {took} s"
        );
    }
}

#[test]
fn absolute_realtime_deadlines_follow_the_shifted_clock() {
    for uid in users() {
        let out = run(
            uid,
            &["--time-start", START],
            &[view().to_str().unwrap(), "abs"],
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        for key in [
            "nanosleep",
            "condwait",
            "semwait",
            "timerfd",
            "timer",
            "pi-timedlock",
        ] {
            // 300 ms asked: not passed at once (the year-2000 deadline read
            // as a host time), and not waiting 26 years either.
            let ms = secs(&out, key);
            assert!(
                (250..30_000).contains(&ms),
                "uid {uid} {key}: {ms} ms\n{out:?}"
            );
        }
    }
}

#[test]
fn now_time_stamps_are_shifted() {
    for uid in users() {
        let scratch = Scratch::new(uid);
        let file = scratch.s("f");
        let w = scratch.path().to_str().unwrap();
        let out = run(
            uid,
            &["--time-start", START, "-w", w],
            &[view().to_str().unwrap(), "touch", &file],
        );
        assert_eq!(field(&out, "utimensat"), "ok", "{out:?}");
        assert_eq!(field(&out, "utimes"), "ok", "{out:?}");
        for f in [file.clone(), format!("{file}.2")] {
            let m = std::fs::metadata(&f).unwrap();
            assert!(
                (Y2000..Y2000 + 120).contains(&m.mtime()),
                "uid {uid} {f}: mtime {}",
                m.mtime()
            );
            assert!(
                (Y2000..Y2000 + 120).contains(&m.atime()),
                "uid {uid} {f}: atime {}",
                m.atime()
            );
        }
    }
}

#[test]
fn random_seed_gives_the_same_bytes_every_run() {
    let py = "import os; print(os.urandom(16).hex())";
    let urandom = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo";
    let v = view();
    let v = v.to_str().unwrap();
    for uid in users() {
        let go = |seed: &str, cmd: &[&str]| {
            let out = run(uid, &["--random-seed", seed], cmd);
            assert_eq!(out.code, Some(0), "{out:?}");
            assert!(out.stdout.trim().len() >= 32, "{out:?}");
            out.stdout
        };
        for cmd in [
            &["/usr/bin/python3", "-c", py][..],
            &["sh", "-c", urandom][..],
            &[
                "sh",
                "-c",
                &format!("head -c 8 /dev/random | od -An -tx1; {v} getrandom"),
            ][..],
        ] {
            let a = go("42", cmd);
            assert_eq!(a, go("42", cmd), "uid {uid}: {cmd:?}");
            assert_ne!(a, go("7", cmd), "uid {uid}: {cmd:?}");
        }
        // Without a seed, two runs differ.
        let a = run(uid, &[], &["/usr/bin/python3", "-c", py]).stdout;
        assert_ne!(a, run(uid, &[], &["/usr/bin/python3", "-c", py]).stdout);
    }
}

#[test]
fn random_seed_answers_getrandom_in_the_process() {
    let v = view();
    let v = v.to_str().unwrap();
    let bytes = |o: &Out| ["parent", "child", "parent-after"].map(|k| field(o, k));
    for uid in users() {
        let go = |seed: &str, flags: &[&str]| {
            let mut f = vec!["--random-seed", seed];
            f.extend_from_slice(flags);
            let out = run(uid, &f, &[v, "seedlib"]);
            assert_eq!(out.code, Some(0), "uid {uid}: {out:?}");
            out
        };
        let a = go("42", &[]);
        let from = field(&a, "getrandom-from");
        assert!(from.ends_with("/libsandlock-seed.so"), "uid {uid}: {a:?}");
        assert_eq!(bytes(&a), bytes(&go("42", &[])), "uid {uid}");
        assert_ne!(bytes(&a)[0], bytes(&go("7", &[]))[0], "uid {uid}");
        // A forked child draws bytes of its own.
        let [parent, child, after] = bytes(&a);
        assert_ne!(parent[..32], child, "uid {uid}: {a:?}");
        assert_ne!(child, after, "uid {uid}: {a:?}");
        // The library cannot be changed from inside.
        for (what, done) in [("write", "opened"), ("replace", "done"), ("unlink", "done")] {
            assert_ne!(field(&a, what), done, "uid {uid}: {a:?}");
        }
        // Nor through a named copy: no mount source is left on disk.
        let dir = std::path::Path::new(&from).parent().unwrap().to_owned();
        assert!(!dir.exists(), "uid {uid}: {} is left", dir.display());
        // A sandbox granted the temporary directory gets its mount point
        // elsewhere (another process of the user could swap what a path
        // there names)...
        let tmp = std::env::temp_dir();
        let c = go("42", &["-r", tmp.to_str().unwrap()]);
        let from = field(&c, "getrandom-from");
        assert!(
            from.starts_with("/dev/shm/") && from.ends_with("/libsandlock-seed.so"),
            "uid {uid}: {c:?}"
        );
        // ... and one granted everything, no library: the system call,
        // still seeded.
        let b = go("42", &["-r", "/"]);
        assert!(
            !field(&b, "getrandom-from").contains("sandlock-seed"),
            "uid {uid}: {b:?}"
        );
        assert_eq!(bytes(&b), bytes(&go("42", &["-r", "/"])), "uid {uid}");
    }
}

#[test]
fn a_swapped_seed_library_is_never_loaded() {
    // Another process of the user (here the test, as root: stronger)
    // unlinks the library's mount point while a seeded sandbox runs, which
    // detaches the sandbox's mount, and puts a library of its own there.
    // The sandbox's later programs must not load it.
    let v = view();
    for uid in users() {
        let scratch = Scratch::new(uid);
        let evil_c = scratch.join("evil.c");
        std::fs::write(
            &evil_c,
            "#include <stdio.h>\n__attribute__((constructor)) static void f(void) \
             { fputs(\"PWNED\\n\", stderr); }\n",
        )
        .unwrap();
        let evil = scratch.join("evil.so");
        let built = std::process::Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&evil)
            .arg(&evil_c)
            .status()
            .unwrap();
        assert!(built.success());
        let tmp = scratch.path().to_str().unwrap().to_owned();
        let script = format!("sleep 1; exec {} seedlib", v.to_str().unwrap());
        let victim = std::thread::spawn(move || {
            let args = ["run", "--random-seed", "1", "--", "sh", "-c", &script];
            run_as(uid, &bins().sandlock(), &args, &[("TMPDIR", &tmp)])
        });
        let user_dir = scratch.join(&format!("sandlock-{uid}"));
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let target = loop {
            let found = std::fs::read_dir(&user_dir).ok().and_then(|rd| {
                rd.flatten()
                    .map(|e| e.path().join("libsandlock-seed.so"))
                    .find(|p| p.exists())
            });
            if let Some(p) = found {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "uid {uid}: no mount point appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        std::fs::remove_file(&target).unwrap();
        std::fs::copy(&evil, &target).unwrap();
        let out = victim.join().unwrap();
        assert_eq!(out.code, Some(0), "uid {uid}: {out:?}");
        assert!(
            !out.stdout.contains("PWNED") && !out.stderr.contains("PWNED"),
            "uid {uid}: the swapped library was loaded: {out:?}"
        );
    }
}

#[test]
fn answers_reach_the_non_dumpable_images_of_a_private_proc() {
    // With a private /proc each image is made non-dumpable; the
    // supervisor must still write its answers (the seeded bytes, the
    // shifted clock) into the task, also without root.
    let v = view();
    let v = v.to_str().unwrap();
    for uid in users() {
        let flags = ["--random-seed", "42", "--time-start", START];
        let plain = run(uid, &flags, &[v, "getrandom"]);
        assert_eq!(plain.code, Some(0), "uid {uid}: {plain:?}");
        let mut private = vec!["-r", "/proc"];
        private.extend(flags);
        let out = run(uid, &private, &[v, "getrandom"]);
        assert_eq!(out.code, Some(0), "uid {uid}: {out:?}");
        assert_eq!(out.stdout, plain.stdout, "uid {uid}");
        let out = run(uid, &private, &[v, "clock"]);
        assert_eq!(out.code, Some(0), "uid {uid}: {out:?}");
        assert!(
            (Y2000..Y2000 + 120).contains(&secs(&out, "syscall")),
            "uid {uid}: {out:?}"
        );
    }
}

#[test]
fn random_seed_hides_the_vdso_getrandom_and_time_start_keeps_the_vdso_clock() {
    let v = view();
    let out = run(
        0,
        &["--random-seed", "1", "--time-start", START],
        &[v.to_str().unwrap(), "vdso-getrandom"],
    );
    assert_eq!(field(&out, "getrandom"), "hidden", "{out:?}");
    assert_eq!(field(&out, "clock_gettime"), "present", "{out:?}");
}

#[test]
fn no_randomize_memory_gives_the_same_stack_twice() {
    let v = view();
    for uid in users() {
        let a = run(
            uid,
            &["--no-randomize-memory"],
            &[v.to_str().unwrap(), "stack"],
        );
        let b = run(
            uid,
            &["--no-randomize-memory"],
            &[v.to_str().unwrap(), "stack"],
        );
        assert_eq!(field(&a, "stack"), field(&b, "stack"), "uid {uid}");
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
