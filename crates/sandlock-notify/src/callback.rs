//! The policy callback thread and the worker that completes held syscalls.
//!
//! ```text
//!  receive loop ──Report──────────────────────────────▶ callback thread
//!       │                                                  (runs the sink,
//!       └──Hold──▶ worker ──event + reply channel──▶        catch_unwind)
//!                    │ ◀────────── verdict ──────────────────┘
//!                    └─ waits until the deadline, then runs the
//!                       continuation (allow) or answers the errno (deny)
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use sandlock_policy::{SyscallEvent, Verdict};

use crate::listener::Response;
use crate::reply::{Continuation, Ctx, Reply};

/// The policy callback: judges one event. Runs on its own thread.
pub trait EventSink: Send + 'static {
    /// The verdict on `event` (ignored for reported, non-held syscalls).
    fn on_event(&mut self, event: SyscallEvent) -> Verdict;
}

impl<F: FnMut(SyscallEvent) -> Verdict + Send + 'static> EventSink for F {
    fn on_event(&mut self, event: SyscallEvent) -> Verdict {
        self(event)
    }
}

/// Where a verdict came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictSource {
    /// The callback answered in time.
    Callback,
    /// The callback panicked: denied (fail closed).
    Panicked,
    /// The callback did not answer before the deadline: denied (fail closed).
    TimedOut,
    /// No callback is installed: the handler's own decision stands.
    NoCallback,
}

/// The final decision on one event, for auditing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The verdict applied.
    pub verdict: Verdict,
    /// Where it came from.
    pub source: VerdictSource,
    /// Whether the syscall waited for it (held) or was only reported.
    pub held: bool,
}

/// The audit hook: sees every event with its decision.
pub type AuditFn = dyn Fn(&SyscallEvent, &Decision) + Send + Sync;

/// One event for the callback thread; `reply` is set for held syscalls.
pub(crate) struct Job {
    pub(crate) event: SyscallEvent,
    pub(crate) reply: Option<SyncSender<Option<Verdict>>>,
}

/// One held syscall for the worker.
pub(crate) struct HeldJob {
    pub(crate) ctx: Ctx,
    pub(crate) event: SyscallEvent,
    pub(crate) then: Continuation,
    pub(crate) deadline: Instant,
}

/// Counters shared by the supervisor's threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) held: AtomicU64,
    pub(crate) reported: AtomicU64,
    pub(crate) dropped_reports: AtomicU64,
    pub(crate) fail_closed: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    /// Reports queued for the callback thread and not yet handled.
    pub(crate) queued_reports: AtomicUsize,
}

/// The most reports waiting for the callback thread; more are dropped (and
/// counted) so that a slow callback cannot make the supervisor's memory grow.
pub(crate) const MAX_QUEUED_REPORTS: usize = 4096;

/// Run the callback thread: judge every job, in order, until the channel
/// closes. A panic is caught and becomes `None` (deny).
pub(crate) fn run_callback(
    mut sink: Box<dyn EventSink>,
    jobs: Receiver<Job>,
    audit: Option<Arc<AuditFn>>,
    counters: Arc<Counters>,
) {
    for job in jobs {
        let audit_copy = match (&audit, &job.reply) {
            (Some(_), None) => Some(job.event.clone()),
            _ => None,
        };
        let held = job.reply.is_some();
        let verdict = catch_unwind(AssertUnwindSafe(|| sink.on_event(job.event))).ok();
        match job.reply {
            // The worker may have given up (deadline): nobody to tell.
            Some(reply) => {
                let _ = reply.try_send(verdict);
            }
            None => {
                counters.queued_reports.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if let (Some(audit), Some(ev), false) = (&audit, audit_copy, held) {
            let (verdict, source) = match verdict {
                Some(v) => (v, VerdictSource::Callback),
                None => (Verdict::Deny, VerdictSource::Panicked),
            };
            audit(
                &ev,
                &Decision {
                    verdict,
                    source,
                    held: false,
                },
            );
        }
    }
}

/// Run the worker: for each held syscall, ask the callback and wait until the
/// deadline; deny on panic or timeout; otherwise run the continuation.
pub(crate) fn run_worker(
    held: Receiver<HeldJob>,
    to_callback: Option<Sender<Job>>,
    audit: Option<Arc<AuditFn>>,
    counters: Arc<Counters>,
) {
    for job in held {
        let HeldJob {
            ctx,
            mut event,
            then,
            deadline,
        } = job;
        let (verdict, source) = match &to_callback {
            None => (Verdict::Allow, VerdictSource::NoCallback),
            Some(tx) => ask(tx, &event, deadline),
        };
        if source != VerdictSource::Callback && source != VerdictSource::NoCallback {
            counters.fail_closed.fetch_add(1, Ordering::Relaxed);
        }
        let reply = match verdict.errno() {
            Some(e) => Reply::errno(e),
            None => match catch_unwind(AssertUnwindSafe(|| then(&ctx))) {
                Ok(Reply::Hold(_)) | Err(_) => Reply::errno(sandlock_bpf::Errno::EPERM),
                Ok(r) => r,
            },
        };
        finish(&ctx, reply, &counters);
        if let Some(audit) = &audit {
            event.denied = !verdict.is_allowed();
            audit(
                &event,
                &Decision {
                    verdict,
                    source,
                    held: true,
                },
            );
        }
    }
}

/// Send `event` to the callback thread and wait for its verdict until `deadline`.
fn ask(tx: &Sender<Job>, event: &SyscallEvent, deadline: Instant) -> (Verdict, VerdictSource) {
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    if tx
        .send(Job {
            event: event.clone(),
            reply: Some(reply_tx),
        })
        .is_err()
    {
        return (Verdict::Deny, VerdictSource::Panicked);
    }
    let wait = deadline.saturating_duration_since(Instant::now());
    match reply_rx.recv_timeout(wait) {
        Ok(Some(v)) => (v, VerdictSource::Callback),
        Ok(None) | Err(RecvTimeoutError::Disconnected) => (Verdict::Deny, VerdictSource::Panicked),
        Err(RecvTimeoutError::Timeout) => (Verdict::Deny, VerdictSource::TimedOut),
    }
}

/// Answer a notification with a handler's final reply.
pub(crate) fn finish(ctx: &Ctx, reply: Reply, counters: &Counters) {
    let response = match reply {
        Reply::Respond(r) | Reply::Report { response: r, .. } => r,
        Reply::Answered => return,
        Reply::Hold(_) => Response::Errno(sandlock_bpf::Errno::EPERM),
    };
    if ctx.respond(response).is_err() {
        counters.send_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Join `handle` if it ends within `grace`; else leave it running (a
/// callback that never returns cannot be stopped) and return `false`.
pub(crate) fn join_within(handle: std::thread::JoinHandle<()>, grace: Duration) -> bool {
    let start = Instant::now();
    while !handle.is_finished() {
        if start.elapsed() >= grace {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = handle.join();
    true
}
