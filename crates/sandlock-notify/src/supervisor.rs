//! The supervisor: a thread that receives notifications and dispatches them
//! by syscall number to handlers, plus (with a policy callback) a callback
//! thread and a worker for held syscalls. See `docs/notify.md`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::io::Errno;
use sandlock_bpf::Arch;
use sandlock_bpf::arch::MAX_SYSCALL_NR;

use crate::abi::SeccompNotif;
use crate::callback::{
    self, AuditFn, Counters, EventSink, HeldJob, Job, MAX_QUEUED_REPORTS, finish, join_within,
};
use crate::listener::{Listener, ListenerError, Response};
use crate::reply::{Ctx, Handler, Reply};
use crate::sys;

/// How the receive thread waits for the next notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Block in `NOTIF_RECV` directly (fastest). An explicit shutdown
    /// interrupts it with a signal (see [`SupervisorBuilder::wake_signal`]),
    /// for which a no-op handler without `SA_RESTART` is installed.
    Blocking,
    /// `poll` the listener and an eventfd, then `NOTIF_RECV`: no signal
    /// handler, one more system call per notification (about 0.4 µs here).
    Poll,
}

/// Why the receive loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// No task is left under the filter.
    HungUp,
    /// [`SupervisorHandle::shutdown`] was called.
    Shutdown,
    /// The listener failed.
    Error(ListenerError),
}

/// What a supervisor did, returned by [`SupervisorHandle::join`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Notifications received.
    pub received: u64,
    /// Syscalls held for a verdict.
    pub held: u64,
    /// Events reported without waiting.
    pub reported: u64,
    /// Reports dropped because the callback thread was too far behind.
    pub dropped_reports: u64,
    /// Held syscalls denied because the callback panicked or timed out.
    pub fail_closed: u64,
    /// Answers the kernel refused (the task was gone).
    pub send_errors: u64,
    /// Handlers that panicked (their syscall was answered `EPERM`).
    pub handler_panics: u64,
    /// Whether the callback thread was still running (stuck in the callback)
    /// at the end and had to be left behind.
    pub callback_left_running: bool,
    /// Why the loop ended.
    pub end: EndReason,
}

/// Builds and starts a supervisor on a [`Listener`].
pub struct SupervisorBuilder {
    listener: Arc<Listener>,
    handlers: Vec<Option<Box<dyn Handler>>>,
    fallback: Response,
    sink: Option<Box<dyn EventSink>>,
    deadline: Duration,
    audit: Option<Arc<AuditFn>>,
    pin_cpu: Option<usize>,
    sync_wake_up: bool,
    wait: WaitMode,
    wake_signal: Option<i32>,
}

/// Entry point: `Supervisor::builder(listener)...spawn()`.
#[derive(Debug)]
pub struct Supervisor;

impl Supervisor {
    /// A builder for a supervisor of `listener`.
    pub fn builder(listener: Listener) -> SupervisorBuilder {
        SupervisorBuilder {
            listener: Arc::new(listener),
            handlers: (0..=MAX_SYSCALL_NR).map(|_| None).collect(),
            fallback: Response::Errno(sandlock_bpf::Errno::ENOSYS),
            sink: None,
            deadline: Duration::from_secs(5),
            audit: None,
            pin_cpu: None,
            sync_wake_up: true,
            wait: WaitMode::Blocking,
            wake_signal: None,
        }
    }
}

/// A handler was registered for a syscall the native table does not know.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// No such syscall on this architecture.
    #[error("no syscall named {0:?} on this architecture")]
    UnknownSyscall(String),
    /// The number is above the table's range.
    #[error("syscall number {0} is out of range")]
    NumberOutOfRange(u32),
    /// A second handler for a syscall that already has one (two layers
    /// both wanting to answer it: one of them would silently lose).
    #[error("syscall number {0} already has a handler")]
    Duplicate(u32),
    /// Starting a thread or creating the eventfd failed.
    #[error("starting the supervisor failed: {0}")]
    Start(String),
    /// Turning SYNC_WAKE_UP on failed.
    #[error(transparent)]
    Listener(#[from] ListenerError),
}

impl SupervisorBuilder {
    /// Dispatch syscall number `nr` (native architecture) to `handler`.
    ///
    /// A syscall has one handler: registering a second one is
    /// [`BuildError::Duplicate`], never a silent replacement.
    pub fn handle(mut self, nr: u32, handler: impl Handler) -> Result<Self, BuildError> {
        let slot = self
            .handlers
            .get_mut(nr as usize)
            .ok_or(BuildError::NumberOutOfRange(nr))?;
        if slot.is_some() {
            return Err(BuildError::Duplicate(nr));
        }
        *slot = Some(Box::new(handler));
        Ok(self)
    }

    /// Dispatch the syscall called `name` (native architecture) to `handler`.
    pub fn handle_name(self, name: &str, handler: impl Handler) -> Result<Self, BuildError> {
        let nr = Arch::native()
            .and_then(|a| a.syscall_nr(name))
            .ok_or_else(|| BuildError::UnknownSyscall(name.to_owned()))?;
        self.handle(nr, handler)
    }

    /// The answer for syscalls without a handler, and for foreign-architecture
    /// notifications (default: `ENOSYS`).
    pub fn fallback(mut self, response: Response) -> Self {
        self.fallback = response;
        self
    }

    /// The policy callback, run on its own thread.
    pub fn event_sink(mut self, sink: impl EventSink) -> Self {
        self.sink = Some(Box::new(sink));
        self
    }

    /// How long a held syscall waits for the callback before it is denied
    /// (`EPERM`; default 5 s).
    pub fn callback_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// A hook that sees every event with its final decision.
    pub fn audit(
        mut self,
        audit: impl Fn(&sandlock_policy::SyscallEvent, &callback::Decision) + Send + Sync + 'static,
    ) -> Self {
        self.audit = Some(Arc::new(audit));
        self
    }

    /// Pin the receive thread to CPU `cpu` (pin the task there too: same-CPU
    /// wake-ups are the cheapest). Default: not pinned.
    pub fn pin_cpu(mut self, cpu: Option<usize>) -> Self {
        self.pin_cpu = cpu;
        self
    }

    /// Turn SYNC_WAKE_UP on where the kernel has it (default: on).
    pub fn sync_wake_up(mut self, on: bool) -> Self {
        self.sync_wake_up = on;
        self
    }

    /// How the receive thread waits (default: [`WaitMode::Blocking`]).
    pub fn wait_mode(mut self, mode: WaitMode) -> Self {
        self.wait = mode;
        self
    }

    /// The signal that interrupts a [`WaitMode::Blocking`] receive thread on
    /// shutdown (default: `SIGRTMIN + 4`). A no-op handler is installed for it
    /// process-wide.
    pub fn wake_signal(mut self, signal: i32) -> Self {
        self.wake_signal = Some(signal);
        self
    }

    /// Start the threads.
    pub fn spawn(self) -> Result<SupervisorHandle, BuildError> {
        let start = |e: std::io::Error| BuildError::Start(e.to_string());
        let os = |e: Errno| BuildError::Start(e.to_string());
        self.listener.set_sync_wake_up(self.sync_wake_up)?;
        let counters = Arc::new(Counters::default());
        let signal = self.wake_signal.unwrap_or_else(|| sys::sigrtmin() + 4);
        let eventfd = match self.wait {
            WaitMode::Poll => Some(Arc::new(
                rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                    .map_err(os)?,
            )),
            WaitMode::Blocking => {
                install_wake_handler_once(signal).map_err(os)?;
                None
            }
        };

        let (callback_tx, callback_thread) = match self.sink {
            Some(sink) => {
                let (tx, rx) = mpsc::channel::<Job>();
                let (audit, c) = (self.audit.clone(), counters.clone());
                let h = std::thread::Builder::new()
                    .name("sandlock-callback".into())
                    .spawn(move || callback::run_callback(sink, rx, audit, c))
                    .map_err(start)?;
                (Some(tx), Some(h))
            }
            None => (None, None),
        };
        let (held_tx, held_rx) = mpsc::channel::<HeldJob>();
        let worker = {
            let (to_cb, audit, c) = (callback_tx.clone(), self.audit.clone(), counters.clone());
            std::thread::Builder::new()
                .name("sandlock-worker".into())
                .spawn(move || callback::run_worker(held_rx, to_cb, audit, c))
                .map_err(start)?
        };

        let stop = Arc::new(AtomicBool::new(false));
        let lp = Loop {
            listener: self.listener,
            handlers: self.handlers,
            fallback: self.fallback,
            report_tx: callback_tx,
            held_tx,
            deadline: self.deadline,
            counters: counters.clone(),
            stop: stop.clone(),
            eventfd: eventfd.clone(),
            native_arch: Arch::native().map_or(0, Arch::audit_arch),
        };
        let pin = self.pin_cpu;
        let unblock = (self.wait == WaitMode::Blocking).then_some(signal);
        let recv = std::thread::Builder::new()
            .name("sandlock-notify".into())
            .spawn(move || {
                if let Some(sig) = unblock {
                    // Best effort: a failure leaves hang-up as the only end.
                    let _ = sys::unblock_signal(sig);
                }
                if let Some(cpu) = pin {
                    let mut set = rustix::thread::CpuSet::new();
                    set.set(cpu);
                    // Best effort: an unavailable CPU leaves the thread unpinned.
                    let _ = rustix::thread::sched_setaffinity(None, &set);
                }
                lp.run()
            })
            .map_err(start)?;
        let thread = recv.as_pthread_t();
        Ok(SupervisorHandle {
            recv: Some(recv),
            worker: Some(worker),
            callback: callback_thread,
            waker: Arc::new(Waker {
                stop,
                thread: Mutex::new(Some(thread)),
                signal,
                eventfd,
            }),
            counters,
            deadline: self.deadline,
        })
    }
}

fn install_wake_handler_once(signal: i32) -> Result<(), Errno> {
    static INSTALLED: OnceLock<Mutex<Vec<i32>>> = OnceLock::new();
    let mut done = INSTALLED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !done.contains(&signal) {
        sys::install_wake_handler(signal)?;
        done.push(signal);
    }
    Ok(())
}

/// What wakes the receive thread for a shutdown.
#[derive(Debug)]
struct Waker {
    stop: Arc<AtomicBool>,
    /// The receive thread, while it has not been joined.
    thread: Mutex<Option<std::os::unix::thread::RawPthread>>,
    signal: i32,
    eventfd: Option<Arc<OwnedFd>>,
}

impl Waker {
    fn wake(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(fd) = &self.eventfd {
            let _ = rustix::io::write(fd.as_fd(), &1u64.to_ne_bytes());
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = *thread {
            let _ = sys::signal_thread(t, self.signal);
        }
    }
}

/// A cloneable handle that asks a supervisor to stop (from any thread).
#[derive(Clone, Debug)]
pub struct ShutdownHandle(Arc<Waker>);

impl ShutdownHandle {
    /// Ask the receive loop to end. Pending held syscalls are still answered.
    pub fn shutdown(&self) {
        self.0.wake();
    }
}

/// A running supervisor. Dropping it shuts it down and joins its threads.
#[derive(Debug)]
pub struct SupervisorHandle {
    recv: Option<JoinHandle<EndReason>>,
    worker: Option<JoinHandle<()>>,
    callback: Option<JoinHandle<()>>,
    waker: Arc<Waker>,
    counters: Arc<Counters>,
    deadline: Duration,
}

impl SupervisorHandle {
    /// A handle to stop the supervisor from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.waker.clone())
    }

    /// Ask the receive loop to end.
    pub fn shutdown(&self) {
        self.waker.wake();
    }

    /// Whether the receive loop has ended (hang-up, shutdown or error).
    pub fn is_finished(&self) -> bool {
        self.recv.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Wait for the receive loop to end on its own (hang-up), then join the
    /// other threads. Use [`shutdown`](Self::shutdown) first to force it.
    pub fn join(mut self) -> Stats {
        self.join_inner()
    }

    fn join_inner(&mut self) -> Stats {
        let end = match self.recv.take() {
            Some(recv) => {
                // Blocking mode: a wake signal that arrived just before the
                // thread entered NOTIF_RECV is lost, so repeat it until the
                // thread is out.
                while self.waker.stop.load(Ordering::SeqCst) && !recv.is_finished() {
                    self.waker.wake();
                    std::thread::sleep(Duration::from_millis(2));
                }
                *self.waker.thread.lock().unwrap_or_else(|e| e.into_inner()) = None;
                recv.join()
                    .unwrap_or(EndReason::Error(ListenerError::HungUp))
            }
            None => EndReason::Shutdown,
        };
        // The loop dropped its senders: the worker drains and ends (each held
        // syscall waits at most the deadline), then the callback thread.
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        let callback_left_running = match self.callback.take() {
            Some(cb) => !join_within(cb, self.deadline),
            None => false,
        };
        let c = &self.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            received: get(&c.received),
            held: get(&c.held),
            reported: get(&c.reported),
            dropped_reports: get(&c.dropped_reports),
            fail_closed: get(&c.fail_closed),
            send_errors: get(&c.send_errors),
            handler_panics: get(&c.handler_panics),
            callback_left_running,
            end,
        }
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        if self.recv.is_some() {
            self.waker.wake();
            let _ = self.join_inner();
        }
    }
}

/// The receive loop's state, owned by its thread.
struct Loop {
    listener: Arc<Listener>,
    handlers: Vec<Option<Box<dyn Handler>>>,
    fallback: Response,
    report_tx: Option<Sender<Job>>,
    held_tx: Sender<HeldJob>,
    deadline: Duration,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    eventfd: Option<Arc<OwnedFd>>,
    native_arch: u32,
}

impl Loop {
    fn run(self) -> EndReason {
        let mut notif = SeccompNotif::default();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return EndReason::Shutdown;
            }
            if let Some(efd) = &self.eventfd {
                match self.poll(efd) {
                    Some(end) => return end,
                    None => continue,
                }
            }
            match self.listener.recv_into(&mut notif) {
                Ok(()) => self.dispatch(&notif),
                Err(ListenerError::Recv(Errno::INTR)) => continue,
                // ENOENT: the last task is gone (6.6+), or a notification was
                // withdrawn (its task was killed) before we took it.
                Err(ListenerError::HungUp) => {
                    if self.listener.is_hung_up() {
                        return EndReason::HungUp;
                    }
                }
                Err(e) => return EndReason::Error(e),
            }
        }
    }

    /// Poll mode: wait for a notification or the shutdown eventfd.
    /// `Some(end)` when the loop should end, `None` to go on.
    fn poll(&self, efd: &OwnedFd) -> Option<EndReason> {
        let mut fds = [
            PollFd::new(self.listener.as_ref(), PollFlags::IN),
            PollFd::new(efd, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Some(EndReason::Error(ListenerError::Recv(e))),
        }
        let (l, e) = (fds[0].revents(), fds[1].revents());
        if !e.is_empty() || self.stop.load(Ordering::SeqCst) {
            return Some(EndReason::Shutdown);
        }
        if l.contains(PollFlags::HUP) && !l.contains(PollFlags::IN) {
            return Some(EndReason::HungUp);
        }
        if l.contains(PollFlags::IN) {
            let mut notif = SeccompNotif::default();
            return match self.listener.recv_into(&mut notif) {
                Ok(()) => {
                    self.dispatch(&notif);
                    None
                }
                Err(ListenerError::Recv(Errno::INTR) | ListenerError::HungUp) => None,
                Err(e) => Some(EndReason::Error(e)),
            };
        }
        None
    }

    fn dispatch(&self, notif: &SeccompNotif) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let handler = if notif.data.arch == self.native_arch {
            usize::try_from(notif.data.nr)
                .ok()
                .and_then(|nr| self.handlers.get(nr))
                .and_then(Option::as_ref)
        } else {
            None
        };
        let Some(handler) = handler else {
            // No handler: the caller's fallback (ENOSYS by default). If the
            // caller chose CONTINUE as fallback, no decision was taken on the
            // task's memory, so CONTINUE is as safe as the filter that sent it.
            if self.listener.respond(notif.id, self.fallback).is_err() {
                self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        let ctx = Ctx::new(self.listener.clone(), *notif);
        let reply =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(&ctx))) {
                Ok(r) => r,
                Err(_) => {
                    self.counters.handler_panics.fetch_add(1, Ordering::Relaxed);
                    Reply::errno(sandlock_bpf::Errno::EPERM)
                }
            };
        match reply {
            Reply::Hold(hold) => {
                self.counters.held.fetch_add(1, Ordering::Relaxed);
                let job = HeldJob {
                    ctx,
                    event: hold.event,
                    then: hold.then,
                    deadline: Instant::now() + self.deadline,
                };
                if let Err(mpsc::SendError(job)) = self.held_tx.send(job) {
                    finish(
                        &job.ctx,
                        Reply::errno(sandlock_bpf::Errno::EPERM),
                        &self.counters,
                    );
                }
            }
            Reply::Report { event, response } => {
                finish(&ctx, Reply::Respond(response), &self.counters);
                self.report(event);
            }
            other => finish(&ctx, other, &self.counters),
        }
    }

    fn report(&self, event: sandlock_policy::SyscallEvent) {
        let Some(tx) = &self.report_tx else { return };
        let c = &self.counters;
        if c.queued_reports.load(Ordering::Relaxed) >= MAX_QUEUED_REPORTS {
            c.dropped_reports.fetch_add(1, Ordering::Relaxed);
            return;
        }
        c.queued_reports.fetch_add(1, Ordering::Relaxed);
        if tx.send(Job { event, reply: None }).is_ok() {
            c.reported.fetch_add(1, Ordering::Relaxed);
        } else {
            c.queued_reports.fetch_sub(1, Ordering::Relaxed);
            c.dropped_reports.fetch_add(1, Ordering::Relaxed);
        }
    }
}
