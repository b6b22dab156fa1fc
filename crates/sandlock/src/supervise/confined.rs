//! Worker threads that perform operations on the sandbox's behalf, **inside
//! the sandbox's own Landlock domain**.
//!
//! The supervisor is not confined: an `open`, `rename` or `connect` it
//! makes for a task would bypass the task's Landlock rules (it could open
//! `/etc/shadow` for the task). Landlock and `no_new_privs` are attributes
//! of a *thread*, so a [`Worker::confined`] thread sets `no_new_privs` and
//! calls `landlock_restrict_self` with the very ruleset the sandbox's first
//! process applied (the same rules, created from the same policy before the
//! fork), on itself only. Every filesystem operation done for a task then
//! runs on that thread, and the kernel enforces on it what it enforces on
//! the task: paths, rights, `truncate`, `refer`, TCP ports.
//!
//! What stays outside: the thread is in a domain of its own, a sibling of
//! the sandbox's, so Landlock's ptrace scoping refuses it the sandbox's
//! memory, descriptors and `/proc/PID` magic links. Reading a task's
//! arguments, `pidfd_getfd` and the task's `cwd`/`root` are the job of the
//! unconfined supervisor thread, which hands the result (a descriptor, a
//! copied path) to the worker.
//!
//! Jobs are closures run in order. A job that may block for long (opening a
//! FIFO that waits for a writer) goes to [`Worker::detach`], a short-lived
//! thread confined the same way, so the queue never stalls behind it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::io::Errno;

use crate::error::Error;
use crate::sys::behalf;

/// How long dropping a worker waits for its last job.
const DROP_GRACE: Duration = Duration::from_secs(2);

/// A job for a worker.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How a worker thread is confined.
#[derive(Clone, Debug)]
enum Confinement {
    /// Not at all (a helper of the supervisor's own).
    None,
    /// `no_new_privs` and this Landlock ruleset (`None`: the kernel has no
    /// Landlock, and neither does the sandbox).
    Landlock(Option<Arc<OwnedFd>>),
}

/// The worker is gone (its thread ended): the job was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// A thread running jobs in order (see the module documentation).
#[derive(Debug)]
pub(crate) struct Worker {
    name: &'static str,
    confinement: Confinement,
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

/// The job queue: a locked deque, and a worker that parks on a pipe when
/// it is empty.
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    pending: AtomicUsize,
    parked: AtomicBool,
    closed: AtomicBool,
    /// The worker parks on reading `bell.0`; a producer rings by writing a
    /// byte to `bell.1`. A pipe write is a *synchronous* wake-up (the kernel
    /// runs the worker on the ringing thread's CPU), where a futex wake
    /// would place it anywhere: the worker then shares a CPU with the
    /// supervisor and the task without being pinned.
    bell: Option<(OwnedFd, OwnedFd)>,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            jobs: Mutex::default(),
            pending: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            bell: rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok(),
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Queue {
    fn push(&self, job: Job) -> Result<(), Gone> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Gone);
        }
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.parked.swap(false, Ordering::SeqCst) {
            self.ring();
        }
        Ok(())
    }

    /// The next job; `None` once closed and empty.
    fn pop(&self) -> Option<Job> {
        loop {
            if self.pending.load(Ordering::SeqCst) > 0 {
                let job = self
                    .jobs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front();
                if let Some(job) = job {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                    return Some(job);
                }
            }
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            self.parked.store(true, Ordering::SeqCst);
            if self.pending.load(Ordering::SeqCst) == 0 && !self.closed.load(Ordering::SeqCst) {
                self.wait();
            }
            self.parked.store(false, Ordering::SeqCst);
        }
    }

    /// Wakes the parked worker.
    fn ring(&self) {
        // Without a pipe (none could be created) the worker polls.
        if let Some((_, w)) = &self.bell {
            let _ = rustix::io::write(w, &[1]);
        }
    }

    /// Parks until rung (a spurious return is harmless: the caller looks
    /// at the queue again).
    fn wait(&self) {
        match &self.bell {
            Some((r, _)) => {
                let mut b = [0u8; 64];
                let _ = rustix::io::read(r, &mut b);
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.ring();
    }
}

impl Worker {
    /// A worker confined by `ruleset` (the sandbox's Landlock ruleset; `None`
    /// when the kernel has no Landlock). Fails, naming the step, if the
    /// thread cannot be started or confined: nothing is ever done for the
    /// sandbox by an unconfined thread by mistake.
    pub(crate) fn confined(
        name: &'static str,
        ruleset: Option<Arc<OwnedFd>>,
    ) -> Result<Worker, Error> {
        Worker::start(name, Confinement::Landlock(ruleset))
    }

    /// An unconfined worker, for the supervisor's own work off the receive
    /// thread (reading `/proc`, copying a task's descriptor).
    pub(crate) fn plain(name: &'static str) -> Result<Worker, Error> {
        Worker::start(name, Confinement::None)
    }

    fn start(name: &'static str, confinement: Confinement) -> Result<Worker, Error> {
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), Errno>>(1);
        let conf = confinement.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let confined = confine(&conf);
                let ok = confined.is_ok();
                let _ = ready_tx.send(confined);
                if ok {
                    while let Some(job) = q.pop() {
                        job();
                    }
                }
            })
            .map_err(|e| Error::Supervisor(format!("{name}: starting the thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker {
                name,
                confinement,
                queue,
                thread: Some(thread),
            }),
            Ok(Err(errno)) => {
                let _ = thread.join();
                Err(Error::Os {
                    what: "confining a supervisor thread (landlock_restrict_self)",
                    errno,
                })
            }
            Err(_) => Err(Error::Supervisor(format!("{name}: the thread died"))),
        }
    }

    /// Queues `job`.
    pub(crate) fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Gone> {
        self.queue.push(Box::new(job))
    }

    /// Runs `f` on the worker and waits for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Gone> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(move || {
            let _ = tx.send(f());
        })?;
        rx.recv().map_err(|_| Gone)
    }

    /// Runs `job` on a new thread confined like this worker, without
    /// waiting for it (for a call that may block: the job must answer the
    /// task itself). The thread ends with the job.
    pub(crate) fn detach(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Errno> {
        let conf = self.confinement.clone();
        std::thread::Builder::new()
            .name(format!("{}-b", self.name))
            .spawn(move || {
                if confine(&conf).is_ok() {
                    job();
                }
            })
            .map(drop)
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::AGAIN))
    }

    /// Pins the worker's thread to CPU `cpu` (best effort).
    pub(crate) fn pin(&self, cpu: usize) {
        let _ = self.submit(move || {
            let mut set = rustix::thread::CpuSet::new();
            set.set(cpu);
            let _ = rustix::thread::sched_setaffinity(None, &set);
        });
    }

    /// Whether the worker applies a Landlock ruleset to itself.
    #[cfg(test)]
    pub(crate) fn is_landlocked(&self) -> bool {
        matches!(&self.confinement, Confinement::Landlock(Some(_)))
    }
}

thread_local! {
    /// Whether this thread confined itself ([`Worker::confined`]).
    static CONFINED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is a confined worker (or one of its detached
/// threads): work that needs the supervisor's own rights must be sent to
/// an unconfined thread from there.
pub(crate) fn on_confined_thread() -> bool {
    CONFINED.with(Cell::get)
}

/// Applies `conf` to the calling thread.
fn confine(conf: &Confinement) -> Result<(), Errno> {
    match conf {
        Confinement::None => Ok(()),
        Confinement::Landlock(ruleset) => {
            behalf::restrict_thread(ruleset.as_ref().map(|fd| fd.as_fd()))?;
            CONFINED.with(|c| c.set(true));
            Ok(())
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The thread ends once the queue is empty and closed. A worker
        // dropped by one of its own jobs (it held the last reference to
        // its owner) cannot wait for itself: it is left to end alone.
        // A job stuck in the kernel (a call the sandbox made block) is not
        // waited for past a grace period: its thread is left to end alone.
        self.queue.close();
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let until = std::time::Instant::now() + DROP_GRACE;
            while !t.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    /// A ruleset that grants reading `dir` only.
    fn ruleset_for(dir: &std::path::Path) -> Option<Arc<OwnedFd>> {
        use landlock::{
            ABI, Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
        };
        let abi = crate::kernel::landlock_abi()?;
        let created = Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::from(abi)))
            .ok()?
            .create()
            .ok()?
            .add_rule(PathBeneath::new(
                PathFd::new(dir).ok()?,
                AccessFs::from_read(ABI::from(abi)),
            ))
            .ok()?;
        let fd: Option<OwnedFd> = created.into();
        fd.map(Arc::new)
    }

    #[test]
    fn confined_worker_is_under_landlock_and_the_caller_is_not() {
        let allowed =
            std::env::temp_dir().join(format!("sandlock-confined-{}", std::process::id()));
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::write(allowed.join("ok"), b"x").unwrap();
        let Some(ruleset) = ruleset_for(&allowed) else {
            eprintln!("no Landlock: skipped");
            return;
        };
        let w = Worker::confined("test-confined", Some(ruleset)).unwrap();
        assert!(w.is_landlocked());
        let inside = allowed.join("ok");
        let r = w
            .call(move || rustix::fs::open(&inside, OFlags::RDONLY, Mode::empty()).map(drop))
            .unwrap();
        assert_eq!(r, Ok(()));
        let r = w
            .call(|| rustix::fs::open("/etc/hostname", OFlags::RDONLY, Mode::empty()).map(drop))
            .unwrap();
        assert_eq!(r, Err(Errno::ACCESS), "the worker must be confined");
        // Only that thread: this one still opens what it likes.
        assert!(rustix::fs::open("/etc/hostname", OFlags::RDONLY, Mode::empty()).is_ok());
        // A detached helper is confined the same way.
        let (tx, rx) = mpsc::channel();
        w.detach(move || {
            let _ =
                tx.send(rustix::fs::open("/etc/hostname", OFlags::RDONLY, Mode::empty()).map(drop));
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap(), Err(Errno::ACCESS));
        drop(w);
        std::fs::remove_dir_all(&allowed).unwrap();
    }

    #[test]
    fn jobs_run_in_order_and_a_dropped_worker_is_gone() {
        let w = Worker::plain("test-plain").unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            w.submit(move || tx.send(i).unwrap()).unwrap();
        }
        let got: Vec<i32> = (0..100).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(w.call(|| 7).unwrap(), 7);
    }
}
