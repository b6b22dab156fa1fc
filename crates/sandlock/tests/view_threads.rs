//! The threads `--time-start` and `--random-seed` start (tracer threads,
//! the random-device writer) end with their sandbox: a process that runs
//! many sandboxes does not accumulate them. Alone in its test binary, so
//! that no other test's threads are counted.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sandlock::{Policy, Sandbox, Stdio};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn view_threads_end_with_each_sandbox() {
    let mut b = Policy::builder()
        .fs_read("/usr")
        .fs_read("/etc")
        .time_start("2000-06-15T00:00:00")
        .random_seed(5);
    for p in ["/lib", "/lib64", "/bin", "/dev/urandom"] {
        if std::path::Path::new(p).exists() {
            b = b.fs_read(p);
        }
    }
    let sb = Sandbox::new(b.build().unwrap())
        .unwrap()
        .stdout(Stdio::Piped);
    let before = threads();
    for _ in 0..10 {
        let r = sb
            .run(&[
                "/bin/sh",
                "-c",
                "date +%Y; head -c 4 /dev/urandom >/dev/null",
            ])
            .unwrap();
        assert_eq!(r.stdout, b"2000\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        threads() <= before,
        "{} threads left over {before}",
        threads() - before
    );
}
