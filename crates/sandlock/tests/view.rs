//! What a sandbox sees (issue 8), its clock and randomness:
//! `--time-start` and `--random-seed`. Real processes under the `sandlock`
//! binary, as root and as uid 65534; `progs/view.c` is the probe (built
//! dynamically: glibc then reads clocks through the vDSO). The rest of the
//! view (memory layout, CPUs, host name, environment, the private `/proc`)
//! is tested in `view_host.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use common::view::{START, Y2000, field, run, secs, users, view};
use common::{Out, Scratch, bins, run_as};

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
