//! 1000 supervisors in sequence leave no fd and no thread behind.
//!
//! Alone in its own test binary: the counts are of the whole process.
// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Body, getppid_raw, notify_on, spawn};
use sandlock_notify::{EndReason, Reply, Response, Supervisor, WaitMode};
use sandlock_policy::Verdict;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).expect("readable /proc/self").count()
}

/// The count once threads that are on their way out have gone: the
/// smallest of reads 10 ms apart over a quarter of a second (a thread a
/// supervisor ended may still be exiting when `join` returns).
fn settled(dir: &str) -> usize {
    (0..25)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            count(dir)
        })
        .min()
        .unwrap_or(usize::MAX)
}

fn held(ctx: &sandlock_notify::Ctx) -> Reply {
    let ev = sandlock_policy::SyscallEvent::new(
        "getppid",
        sandlock_policy::SyscallCategory::Process,
        ctx.notif().pid,
    );
    Reply::hold(ev, |_| Reply::Respond(Response::Value(1)))
}

#[test]
fn a_thousand_supervisors_leak_nothing() {
    // Warm up once (lazy statics, the wake signal handler).
    let run = |i: usize| {
        let (child, l) = spawn(
            &notify_on(&["getppid"]),
            Body::Fn(|| if getppid_raw().is_ok() { 0 } else { 1 }),
        );
        let mode = if i.is_multiple_of(2) {
            WaitMode::Blocking
        } else {
            WaitMode::Poll
        };
        let mut b = Supervisor::builder(l)
            .handle_name("getppid", held)
            .unwrap()
            .wait_mode(mode);
        if i.is_multiple_of(3) {
            b = b.event_sink(|_| Verdict::Allow);
        }
        let sup = b.spawn().unwrap();
        if i % 4 == 3 {
            // Explicit shutdown while the child still waits for "go"; the
            // child's syscall then fails (ENOSYS), which it reports.
            sup.shutdown();
            assert_eq!(sup.join().end, EndReason::Shutdown);
            child.go();
            assert_eq!(child.wait(), 1);
        } else {
            child.go();
            assert_eq!(child.wait(), 0);
            assert_eq!(sup.join().end, EndReason::HungUp);
        }
    };
    run(0);
    let (fds, threads) = (count("/proc/self/fd"), settled("/proc/self/task"));
    for i in 1..=1000 {
        run(i);
    }
    assert_eq!(count("/proc/self/fd"), fds, "fds leaked");
    assert_eq!(settled("/proc/self/task"), threads, "threads leaked");
}
