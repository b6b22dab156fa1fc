//! Threads for the calls made on a task's behalf that may block.
//!
//! A blocking `connect` or send performed for a task blocks the thread that
//! performs it for as long as it would have blocked the task (a SYN that
//! gets no answer, a full socket buffer). Done on the supervisor's receive
//! thread, it would hold up every other intercepted call of the sandbox;
//! queued behind one another on a single worker, two tasks that wait for
//! each other (one blocked sending to a full socket the other must read
//! after its own intercepted call) would deadlock. So each such call gets
//! a thread of its own: idle threads are reused, a new one is started when
//! none is idle (up to [`MAX_THREADS`]; beyond, calls wait their turn), and
//! a thread idle for [`IDLE_EXIT`] ends.
//!
//! Each job answers its notification itself.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use sandlock_bpf::Errno;
use sandlock_notify::{Ctx, Response};

/// The most threads at once.
pub(crate) const MAX_THREADS: usize = 64;
/// How long an idle thread waits for work before it ends.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so a poisoned lock holds a
        // consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool. Dropping it lets its threads end once their job is done.
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.lock();
        f.debug_struct("Pool")
            .field("threads", &s.threads)
            .field("idle", &s.idle)
            .field("queued", &s.queue.len())
            .finish()
    }
}

impl Pool {
    /// An empty pool (threads start on demand).
    pub(crate) fn new() -> Pool {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    idle: 0,
                    threads: 0,
                    closed: false,
                }),
                wake: Condvar::new(),
            }),
        }
    }

    /// Runs `call` for the notification of `ctx` on a pool thread and
    /// answers with its result. A panic in `call` answers `EPERM`.
    pub(crate) fn answer_later(
        &self,
        ctx: Ctx,
        call: impl FnOnce(&Ctx) -> Response + Send + 'static,
    ) {
        self.submit(Box::new(move || {
            let r = catch_unwind(AssertUnwindSafe(|| call(&ctx)))
                .unwrap_or(Response::Errno(Errno::EPERM));
            // The task may have been killed meanwhile: nobody to answer.
            let _ = ctx.respond(r);
        }));
    }

    fn submit(&self, job: Job) {
        let mut s = self.inner.lock();
        s.queue.push_back(job);
        if s.idle >= s.queue.len() {
            self.inner.wake.notify_one();
            return;
        }
        if s.threads >= MAX_THREADS {
            // Every thread is busy: the job waits for the first free one.
            return;
        }
        s.threads += 1;
        drop(s);
        let inner = self.inner.clone();
        let started = std::thread::Builder::new()
            .name("sandlock-net".into())
            .spawn(move || work(&inner));
        if started.is_err() {
            // No thread could be started: run the job here rather than
            // leave the task waiting.
            let mut s = self.inner.lock();
            s.threads -= 1;
            let job = s.queue.pop_back();
            drop(s);
            if let Some(job) = job {
                job();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.wake.notify_all();
    }
}

fn work(inner: &Inner) {
    let mut s = inner.lock();
    loop {
        if let Some(job) = s.queue.pop_front() {
            drop(s);
            job();
            s = inner.lock();
            continue;
        }
        if s.closed {
            break;
        }
        s.idle += 1;
        let (next, timeout) = inner
            .wake
            .wait_timeout(s, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        s = next;
        s.idle -= 1;
        if timeout.timed_out() && s.queue.is_empty() {
            break;
        }
    }
    s.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_concurrently_and_threads_are_reused() {
        let pool = Pool::new();
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        // Two jobs that wait for each other's start must not deadlock.
        for i in 0..2 {
            let (tx, gate) = (tx.clone(), gate.clone());
            pool.submit(Box::new(move || {
                let (m, c) = &*gate;
                let mut open = m.lock().unwrap();
                if i == 1 {
                    *open = true;
                    c.notify_all();
                } else {
                    while !*open {
                        open = c.wait(open).unwrap();
                    }
                }
                tx.send(i).unwrap();
            }));
        }
        let mut got: Vec<i32> = (0..2).map(|_| rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, [0, 1]);
        // Idle threads take the next jobs: no third thread. (Wait until
        // both are back to idle: a fixed sleep is not enough on a loaded
        // machine.)
        let idle = |n: usize| {
            let since = std::time::Instant::now();
            while pool.inner.lock().idle < n && since.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        idle(2);
        for _ in 0..10 {
            idle(1);
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(9).unwrap()));
            assert_eq!(rx.recv().unwrap(), 9);
        }
        assert!(pool.inner.lock().threads <= 2);
    }
}
