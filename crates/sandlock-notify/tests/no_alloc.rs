//! The receive loop does not allocate in the steady state for syscalls
//! answered at once. A counting global allocator counts the allocations of
//! the receive thread (marked by the handler, which runs on it).
// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Body, getppid_raw, notify_on, spawn};
use sandlock_notify::{Reply, Response, Supervisor};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the receive thread once it is warm.
    static MARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if MARKED.with(|m| m.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);
static AT_10: AtomicUsize = AtomicUsize::new(0);
static AT_1010: AtomicUsize = AtomicUsize::new(0);

fn handler(_: &sandlock_notify::Ctx) -> Reply {
    match CALLS.fetch_add(1, Ordering::SeqCst) + 1 {
        10 => {
            MARKED.with(|m| m.set(true));
            AT_10.store(ALLOCS.load(Ordering::SeqCst), Ordering::SeqCst)
        }
        1010 => AT_1010.store(ALLOCS.load(Ordering::SeqCst), Ordering::SeqCst),
        _ => {}
    }
    Reply::Respond(Response::Value(5))
}

#[test]
fn steady_state_allocates_nothing() {
    let (child, l) = spawn(
        &notify_on(&["getppid"]),
        Body::Fn(|| {
            for _ in 0..1100 {
                if getppid_raw() != Ok(5) {
                    return 1;
                }
            }
            0
        }),
    );
    let sup = Supervisor::builder(l)
        .handle_name("getppid", handler)
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
    assert_eq!(CALLS.load(Ordering::SeqCst), 1100);
    let (a, b) = (AT_10.load(Ordering::SeqCst), AT_1010.load(Ordering::SeqCst));
    assert_eq!(b - a, 0, "1000 notifications allocated {} times", b - a);
}
