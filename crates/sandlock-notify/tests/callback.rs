//! The policy callback: held syscalls wait for its verdict, reported ones do
//! not; a callback that panics or is too slow is a denial.
// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Body, getppid_raw, notify_on, spawn};
use sandlock_bpf::Errno;
use sandlock_notify::{Ctx, Decision, Reply, Response, Supervisor, VerdictSource, handlers};
use sandlock_policy::{SyscallCategory, SyscallEvent, Verdict};

/// A handler that holds getppid for a verdict and answers 7 when allowed.
fn held(ctx: &Ctx) -> Reply {
    let ev = SyscallEvent::new("getppid", SyscallCategory::Process, ctx.notif().pid);
    Reply::hold(ev, |_| Reply::Respond(Response::Value(7)))
}

type Log = Arc<Mutex<Vec<(String, Decision)>>>;

fn run(
    sink: impl FnMut(SyscallEvent) -> Verdict + Send + 'static,
    deadline: Duration,
    body: fn() -> i32,
) -> (i32, sandlock_notify::Stats, Log) {
    let (child, l) = spawn(&notify_on(&["getppid"]), Body::Fn(body));
    let log: Log = Arc::default();
    let log2 = log.clone();
    let sup = Supervisor::builder(l)
        .handle_name("getppid", held)
        .unwrap()
        .event_sink(sink)
        .callback_deadline(deadline)
        .audit(move |ev, d| log2.lock().unwrap().push((ev.syscall.clone(), *d)))
        .spawn()
        .unwrap();
    child.go();
    let code = child.wait();
    (code, sup.join(), log)
}

#[test]
fn allow_runs_the_continuation() {
    let (code, stats, log) = run(
        |_| Verdict::Allow,
        Duration::from_secs(5),
        || {
            if getppid_raw() == Ok(7) { 0 } else { 1 }
        },
    );
    assert_eq!(code, 0);
    assert_eq!((stats.held, stats.fail_closed), (1, 0));
    let d = log.lock().unwrap()[0].1;
    assert_eq!(
        (d.verdict, d.source, d.held),
        (Verdict::Allow, VerdictSource::Callback, true)
    );
}

#[test]
fn deny_and_deny_with_errno() {
    let (code, _, _) = run(
        |_| Verdict::Deny,
        Duration::from_secs(5),
        || {
            if getppid_raw() == Err(libc::EPERM) {
                0
            } else {
                1
            }
        },
    );
    assert_eq!(code, 0);
    let (code, _, _) = run(
        |_| Verdict::DenyWith(Errno::EROFS),
        Duration::from_secs(5),
        || {
            if getppid_raw() == Err(libc::EROFS) {
                0
            } else {
                1
            }
        },
    );
    assert_eq!(code, 0);
}

#[test]
fn panicking_callback_fails_closed_and_is_reported() {
    let (code, stats, log) = run(
        |_| panic!("policy bug"),
        Duration::from_secs(5),
        || {
            // Twice: the callback thread survives its panic.
            if getppid_raw() == Err(libc::EPERM) && getppid_raw() == Err(libc::EPERM) {
                0
            } else {
                1
            }
        },
    );
    assert_eq!(code, 0);
    assert_eq!(stats.fail_closed, 2);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|(_, d)| d.verdict == Verdict::Deny && d.source == VerdictSource::Panicked)
    );
}

#[test]
fn slow_callback_times_out_into_a_denial() {
    let (code, stats, log) = run(
        |_| {
            std::thread::sleep(Duration::from_millis(600));
            Verdict::Allow
        },
        Duration::from_millis(100),
        || {
            if getppid_raw() == Err(libc::EPERM) {
                0
            } else {
                1
            }
        },
    );
    assert_eq!(code, 0);
    assert_eq!(stats.fail_closed, 1);
    assert_eq!(log.lock().unwrap()[0].1.source, VerdictSource::TimedOut);
}

#[test]
fn a_callback_that_never_returns_does_not_hang_the_supervisor() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (child, l) = spawn(
        &notify_on(&["getppid"]),
        Body::Fn(|| {
            if getppid_raw() == Err(libc::EPERM) {
                0
            } else {
                1
            }
        }),
    );
    let sup = Supervisor::builder(l)
        .handle_name("getppid", held)
        .unwrap()
        .event_sink(move |_| {
            let _ = release_rx.lock().unwrap().recv();
            Verdict::Allow
        })
        .callback_deadline(Duration::from_millis(50))
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    let stats = sup.join();
    assert!(stats.callback_left_running);
    assert_eq!(stats.fail_closed, 1);
    // Let the stuck callback end, so that the thread does not outlive the test.
    release_tx.send(()).unwrap();
}

#[test]
fn reported_syscall_is_answered_without_waiting() {
    // The callback blocks until the child has finished: if the reported
    // syscall waited for it, the child would never finish.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let done_rx = Mutex::new(done_rx);
    let (child, l) = spawn(
        &notify_on(&["mmap"]),
        Body::Fn(|| {
            // SAFETY: an anonymous mapping, unmapped again.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    3 * 4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return 1;
            }
            // SAFETY: the mapping made above.
            unsafe { libc::munmap(p, 3 * 4096) };
            0
        }),
    );
    let sup = Supervisor::builder(l)
        .handle_name("mmap", handlers::report())
        .unwrap()
        .event_sink(move |ev: SyscallEvent| {
            let _ = done_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            seen2.lock().unwrap().push(ev);
            Verdict::Deny // ignored: reported syscalls are not held
        })
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    done_tx.send(()).unwrap();
    let stats = sup.join();
    assert_eq!((stats.reported, stats.held), (1, 0));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].syscall, "mmap");
    assert_eq!(seen[0].size, Some(3 * 4096));
    assert_eq!(seen[0].category, SyscallCategory::Memory);
}

#[test]
fn without_a_callback_a_hold_runs_at_once() {
    let (child, l) = spawn(
        &notify_on(&["getppid"]),
        Body::Fn(|| if getppid_raw() == Ok(7) { 0 } else { 1 }),
    );
    let sup = Supervisor::builder(l)
        .handle_name("getppid", held)
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    assert_eq!(sup.join().held, 1);
}

/// In the child: execve("/bin/true", ["true", "--held"]); 42 if it returned.
fn exec_true() -> i32 {
    let argv = [c"true".as_ptr(), c"--held".as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: NULL-terminated arrays of static C strings.
    unsafe { libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    if std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        42
    } else {
        43
    }
}

#[test]
fn exec_is_held_with_path_and_argv() {
    for (verdict, expected) in [(Verdict::Allow, 0), (Verdict::Deny, 42)] {
        let (child, l) = spawn(&notify_on(&["execve"]), Body::Fn(exec_true));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let sup = Supervisor::builder(l)
            .handle_name("execve", handlers::exec())
            .unwrap()
            .event_sink(move |ev: SyscallEvent| {
                seen2.lock().unwrap().push(ev);
                verdict
            })
            .spawn()
            .unwrap();
        child.go();
        assert_eq!(child.wait(), expected, "{verdict:?}");
        sup.join();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path.as_deref(), Some("/bin/true"));
        assert_eq!(
            seen[0].argv.as_deref(),
            Some(&["true".to_owned(), "--held".to_owned()][..])
        );
        assert_eq!(seen[0].category, SyscallCategory::Process);
        assert!(seen[0].parent_pid.is_some());
    }
}
