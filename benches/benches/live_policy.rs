//! The supervisor's read of the live policy: one snapshot load and an
//! `is_ip_allowed` on a 16-address set, uncontended and while another
//! thread publishes new versions in a loop; the same behind an `RwLock`,
//! and the bare query on a plain reference as the baseline.
//!
//! Two groups: `live_policy_read` in wall time, `live_policy_read_cpu` in
//! the reader thread's CPU time (see [`thread_cpu_time`]).
//!
//! Run: `cargo bench -p sandlock-benches --bench live_policy`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use sandlock_policy::{LivePolicy, LiveState, Policy};

/// 16 scattered addresses, so the set keeps 16 separate ranges.
fn addresses() -> Vec<IpAddr> {
    (1u8..=16)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, i, i.wrapping_mul(7), i)))
        .collect()
}

fn live_policy() -> LivePolicy {
    let policy = addresses()
        .into_iter()
        .fold(Policy::builder(), |b, ip| b.net_allow_host(ip))
        .fs_deny("/etc/shadow")
        .build()
        .expect("valid policy");
    LivePolicy::new(&policy).expect("no host names")
}

/// The destinations the reader asks about: half allowed, half not.
fn queries() -> Vec<IpAddr> {
    let mut q = addresses();
    q.extend((1u8..=16).map(|i| IpAddr::V4(Ipv4Addr::new(10, i, i.wrapping_mul(7), i + 1))));
    q
}

/// Pins the calling thread to `cpu` (if the machine has it), so reader and
/// writer run side by side instead of taking turns on one CPU.
fn pin_to(cpu: usize) {
    let n = thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        return;
    }
    // SAFETY: `set` is a zeroed cpu_set_t owned by this frame; CPU_SET
    // writes one bit of it; sched_setaffinity(0, ...) reads it for the
    // calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % n, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs `write` in a loop on another thread (pinned to CPU 1, the reader to
/// CPU 0) while `f` runs; returns how many writes happened.
fn with_busy_writer<R>(write: impl FnMut() + Send + 'static, f: impl FnOnce() -> R) -> (R, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let handle = {
        let (stop, writes) = (stop.clone(), writes.clone());
        let mut write = write;
        thread::spawn(move || {
            pin_to(1);
            while !stop.load(Ordering::Relaxed) {
                write();
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the writer get going before measuring.
    while writes.load(Ordering::Relaxed) < 100 {
        thread::yield_now();
    }
    let r = f();
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("writer thread");
    (r, writes.load(Ordering::Relaxed))
}

/// The calling thread's CPU time: unlike wall time, it does not count the
/// time the reader sits descheduled while the writer has the CPU (this
/// machine has 2 vCPUs shared with other work), but it does count stalls on
/// cache lines the writer took away.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Which clock a benchmark reads.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    ThreadCpu,
}

/// Benchmarks one read per iteration, cycling through the queries (32 of
/// them, so the index is a mask, not a division).
fn reads(b: &mut Bencher<'_>, clock: Clock, qs: &[IpAddr], mut read: impl FnMut(IpAddr) -> bool) {
    assert_eq!(qs.len(), 32);
    b.iter_custom(|iters| {
        let (t0, c0) = (Instant::now(), thread_cpu_time());
        let mut i = 0;
        for _ in 0..iters {
            i = (i + 1) & 31;
            black_box(read(black_box(qs[i])));
        }
        match clock {
            Clock::Wall => t0.elapsed(),
            Clock::ThreadCpu => thread_cpu_time() - c0,
        }
    })
}

fn bench(c: &mut Criterion) {
    pin_to(0);
    for (group, clock) in [
        ("live_policy_read", Clock::Wall),
        ("live_policy_read_cpu", Clock::ThreadCpu),
    ] {
        bench_group(c, group, clock);
    }
    rwlock_waits();
}

fn bench_group(c: &mut Criterion, group: &str, clock: Clock) {
    let qs = queries();
    let mut g = c.benchmark_group(group);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);

    let live = live_policy();
    let state: LiveState = (*live.load_full()).clone();
    let lock = Arc::new(RwLock::new(state.clone()));
    let mut reader = live.reader();

    g.bench_function("bare", |b| {
        reads(b, clock, &qs, |ip| black_box(&state).is_ip_allowed(1, ip))
    });
    g.bench_function("reader/uncontended", |b| {
        reads(b, clock, &qs, |ip| reader.load().is_ip_allowed(1, ip))
    });
    g.bench_function("snapshot/uncontended", |b| {
        reads(b, clock, &qs, |ip| live.load().is_ip_allowed(1, ip))
    });
    g.bench_function("rwlock/uncontended", |b| {
        reads(b, clock, &qs, |ip| {
            lock.read().expect("not poisoned").is_ip_allowed(1, ip)
        })
    });

    let publish = {
        let live = live.clone();
        move || {
            let mut ctx = live.context();
            ctx.deny_path("/tmp/x").expect("absolute");
            ctx.allow_path("/tmp/x").expect("only dynamic");
        }
    };
    let (_, writes) = with_busy_writer(publish.clone(), || {
        g.bench_function("reader/busy_writer", |b| {
            reads(b, clock, &qs, |ip| reader.load().is_ip_allowed(1, ip))
        });
    });
    eprintln!(
        "{group}/reader/busy_writer: {} versions published",
        2 * writes
    );
    let (_, writes) = with_busy_writer(publish, || {
        g.bench_function("snapshot/busy_writer", |b| {
            reads(b, clock, &qs, |ip| live.load().is_ip_allowed(1, ip))
        });
    });
    eprintln!(
        "{group}/snapshot/busy_writer: {} versions published",
        2 * writes
    );

    let writer_lock = lock.clone();
    let (_, writes) = with_busy_writer(
        move || {
            // Prepare the next version outside the lock, as a writer would.
            let next = state.clone();
            *writer_lock.write().expect("not poisoned") = next;
        },
        || {
            g.bench_function("rwlock/busy_writer", |b| {
                reads(b, clock, &qs, |ip| {
                    lock.read().expect("not poisoned").is_ip_allowed(1, ip)
                })
            });
        },
    );
    eprintln!("{group}/rwlock/busy_writer: {writes} versions published");
    g.finish();
}

/// How often an `RwLock` reader finds the busy writer holding the lock, and
/// would have to wait (an arc-swap reader never waits, by construction).
fn rwlock_waits() {
    const READS: u32 = 5_000_000;
    let state: LiveState = (*live_policy().load_full()).clone();
    let lock = Arc::new(RwLock::new(state.clone()));
    let writer_lock = lock.clone();
    let (blocked, writes) = with_busy_writer(
        move || {
            let next = state.clone();
            *writer_lock.write().expect("not poisoned") = next;
        },
        || {
            let qs = queries();
            let mut blocked = 0u32;
            for i in 0..READS {
                match lock.try_read() {
                    Ok(s) => {
                        black_box(s.is_ip_allowed(1, qs[(i & 31) as usize]));
                    }
                    Err(_) => blocked += 1,
                }
            }
            blocked
        },
    );
    eprintln!(
        "rwlock with a busy writer ({writes} versions published): {blocked} of {READS} reads \
         ({:.2}%) found the lock held and would have waited",
        f64::from(blocked) * 100.0 / f64::from(READS)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
