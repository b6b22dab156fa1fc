//! How a supervisor ends: hang-up when the last task is gone, or an explicit
//! shutdown, in both wait modes.
// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, unsafe_code)]

mod common;

use std::time::Duration;

use common::{Body, getppid_raw, notify_on, spawn};
use sandlock_notify::{EndReason, Reply, Response, Supervisor, WaitMode};

fn value(_: &sandlock_notify::Ctx) -> Reply {
    Reply::Respond(Response::Value(1))
}

#[test]
fn hang_up_ends_the_loop_in_both_modes() {
    for mode in [WaitMode::Blocking, WaitMode::Poll] {
        let (child, l) = spawn(
            &notify_on(&["getppid"]),
            Body::Fn(|| if getppid_raw() == Ok(1) { 0 } else { 1 }),
        );
        let sup = Supervisor::builder(l)
            .handle_name("getppid", value)
            .unwrap()
            .wait_mode(mode)
            .spawn()
            .unwrap();
        child.go();
        assert_eq!(child.wait(), 0);
        // No shutdown: the loop must end by itself.
        let stats = sup.join();
        assert_eq!(stats.end, EndReason::HungUp, "{mode:?}");
        assert_eq!(stats.received, 1);
    }
}

#[test]
fn shutdown_ends_a_loop_whose_child_still_runs() {
    for mode in [WaitMode::Blocking, WaitMode::Poll] {
        let (child, l) = spawn(
            &notify_on(&["getppid"]),
            Body::Fn(|| {
                // Runs only after the supervisor is gone: the listener is closed,
                // so the kernel fails the notified syscall with ENOSYS.
                if getppid_raw() == Err(libc::ENOSYS) {
                    0
                } else {
                    1
                }
            }),
        );
        let sup = Supervisor::builder(l)
            .handle_name("getppid", value)
            .unwrap()
            .wait_mode(mode)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!sup.is_finished());
        sup.shutdown();
        let stats = sup.join();
        assert_eq!(stats.end, EndReason::Shutdown, "{mode:?}");
        child.go();
        assert_eq!(child.wait(), 0, "{mode:?}");
    }
}

#[test]
fn shutdown_handle_works_from_another_thread() {
    let (child, l) = spawn(&notify_on(&["getppid"]), Body::Fn(|| 0));
    let sup = Supervisor::builder(l).spawn().unwrap();
    let h = sup.shutdown_handle();
    std::thread::spawn(move || h.shutdown()).join().unwrap();
    assert_eq!(sup.join().end, EndReason::Shutdown);
    child.go();
    assert_eq!(child.wait(), 0);
}

#[test]
fn dropping_the_handle_stops_the_supervisor() {
    let (child, l) = spawn(&notify_on(&["getppid"]), Body::Fn(|| 0));
    let sup = Supervisor::builder(l).spawn().unwrap();
    drop(sup);
    child.go();
    assert_eq!(child.wait(), 0);
}

#[test]
fn shutdown_works_when_the_spawning_thread_blocks_signals() {
    let (child, l) = spawn(&notify_on(&["getppid"]), Body::Fn(|| 0));
    let stats = std::thread::spawn(move || {
        // SAFETY: blocks every signal in this thread only.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        }
        let sup = Supervisor::builder(l)
            .wait_mode(WaitMode::Blocking)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        sup.shutdown();
        sup.join()
    })
    .join()
    .unwrap();
    assert_eq!(stats.end, EndReason::Shutdown);
    child.go();
    assert_eq!(child.wait(), 0);
}

#[test]
fn a_second_handler_for_one_syscall_is_refused() {
    let (child, l) = spawn(&notify_on(&["getppid"]), Body::Fn(|| 0));
    let nr = sandlock_bpf::Arch::native()
        .and_then(|a| a.syscall_nr("getppid"))
        .unwrap();
    let err = Supervisor::builder(l)
        .handle_name("getppid", value)
        .unwrap()
        .handle_name("getppid", value)
        .err()
        .expect("a duplicate handler must be refused");
    assert_eq!(err, sandlock_notify::BuildError::Duplicate(nr));
    // The listener went with the builder: the child runs on, unanswered.
    child.go();
    assert_eq!(child.wait(), 0);
}
