//! The monitor thread of a sandbox with limits only sampling can hold:
//! CPU throttling ([`super::cpu`]), the memory watchdog (every 100 ms:
//! resident memory of every task, or the memory cgroup's OOM counter),
//! and reaping sandlock's adopted orphans (no PID namespace).
//!
//! It ends the sandbox ([`Runtime::end`]) when its memory is over the
//! limit, and stops when its [`Monitor`] is dropped.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{LimitExceeded, Runtime};

/// How often memory is sampled.
const MEMORY_EVERY: Duration = Duration::from_millis(100);

/// A running monitor thread; stopped and joined when dropped.
#[derive(Debug)]
pub(crate) struct Monitor {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts the monitor of `rt`, if it has work.
    pub(crate) fn start(rt: &Arc<Runtime>) -> std::io::Result<Option<Monitor>> {
        if !rt.needs_monitor() {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel();
        let rt = rt.clone();
        let thread = std::thread::Builder::new()
            .name("sandlock-limits".to_owned())
            .spawn(move || run(&rt, &rx))?;
        Ok(Some(Monitor {
            stop: Some(tx),
            thread: Some(thread),
        }))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rt: &Runtime, stop: &mpsc::Receiver<()>) {
    let own = std::process::id() as i32;
    let mut memory_due = Instant::now();
    loop {
        let mut wait = MEMORY_EVERY;
        if let Some(t) = &rt.throttle {
            let members = rt.tasks.scan();
            wait = t.tick(&members, own);
        }
        if let Some(m) = &rt.memory
            && Instant::now() >= memory_due
        {
            memory_due = Instant::now() + MEMORY_EVERY;
            if let Some(cg) = &rt.memory_cg
                && cg.oom_kills() > 0
            {
                rt.end(LimitExceeded::Memory {
                    limit: rt.live_memory().unwrap_or(0),
                    used: 0,
                });
                return;
            }
            if let Some((used, limit)) = m.watch(rt) {
                rt.end(LimitExceeded::Memory { limit, used });
                return;
            }
        }
        if !rt.tasks.has_pidns() {
            rt.tasks.reap_adopted();
        }
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
