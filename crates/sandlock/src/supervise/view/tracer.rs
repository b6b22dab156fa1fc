//! The tracer threads: the supervisor's one use of `ptrace`, for a few
//! microseconds per job, on one sandboxed task at a time.
//!
//! Seccomp user notification lets the supervisor answer a syscall, not edit
//! it, and gives no moment after an `execve`. Two jobs need more:
//!
//! - **After `execve`** ([`Job::Exec`]): the task is seized
//!   (`PTRACE_SEIZE` with `PTRACE_O_TRACEEXEC`) while it waits in the
//!   notification, the `execve` is let through, and at the exec stop — the
//!   new image is loaded and has not run one instruction — the fix-ups are
//!   applied ([`Fixups`]: the vDSO, `AT_RANDOM`). Then the tracer detaches.
//! - **Restart with edited arguments** ([`Job::Restart`]): the task is
//!   seized and interrupted, and its notification is answered with
//!   `-ERESTARTNOINTR`. On its way out of the syscall the task stops for the
//!   interrupt, with its registers showing the syscall to restart; the
//!   tracer edits the argument registers and detaches, and the kernel runs
//!   the syscall again with them (it restarts `ERESTARTNOINTR` when no
//!   signal handler runs, and after the handler when one does). The edited
//!   call no longer matches the filter's notify rule, or is recognised and
//!   let through.
//!
//! A job the tracer cannot do (the task is traced by someone else, or gone)
//! lets the syscall through unchanged: the determinism features are not a
//! security boundary; nothing here widens what the sandbox may do.
//!
//! ptrace binds a tracee to the attaching **thread**: every request of a
//! job comes from the one tracer thread that took it, which waits with
//! `__WNOTHREAD`, so it never sees (or reaps) the tracees of the other
//! tracer threads or the children of sandlock's other threads. The task is
//! seized while it waits in its notification, and the notification is
//! checked to be still pending after the seize: the pid then names it.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::io::Errno;
use sandlock_notify::{Ctx, Listener, Reply, Response};

use crate::sys::trace::{self, Wait};

/// `ERESTARTNOINTR`: "restart this syscall", never seen by user space.
const ERESTARTNOINTR: i64 = 513;
/// `ERESTARTSYS`.
const ERESTARTSYS: i64 = 512;
/// Tracer threads: jobs of different tasks (concurrent `execve`s of a
/// parallel build) do not wait for each other.
const THREADS: usize = 4;

/// Work on a task at its `execve` stop.
pub(crate) trait Fixups: Send + Sync + 'static {
    /// Edits the new image of task `pid`, stopped before its first
    /// instruction. An error is reported once on standard error; the
    /// image then runs unedited. `Ok(Some(site))`: also make the task
    /// non-dumpable, by running `prctl(PR_SET_DUMPABLE, 0)` in it through
    /// the `syscall` instruction at address `site`.
    fn at_exec(&self, pid: u32) -> Result<Option<u64>, String>;
}

/// A syscall to restart with some argument registers replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    /// The syscall number (checked against the stopped task's).
    pub(crate) nr: u64,
    /// `(argument index 0..6, new value)`.
    pub(crate) args: Vec<(usize, u64)>,
}

/// A job for the tracer thread.
#[derive(Debug)]
enum Job {
    Exec { tid: i32, id: u64 },
    Restart { tid: i32, id: u64, edit: Edit },
}

/// The tracer of one supervisor: started at its first job.
pub(crate) struct Tracer {
    fixups: Arc<dyn Fixups>,
    tx: OnceLock<Option<Mutex<Sender<Job>>>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

impl Tracer {
    /// A tracer applying `fixups` at every `execve`.
    pub(crate) fn new(fixups: Arc<dyn Fixups>) -> Tracer {
        Tracer {
            fixups,
            tx: OnceLock::new(),
        }
    }

    /// The queue of the thread, started with a copy of the listener of
    /// `ctx` (the thread answers the notifications of its jobs).
    fn queue(&self, ctx: &Ctx) -> Option<&Mutex<Sender<Job>>> {
        self.tx
            .get_or_init(|| {
                let fd = rustix::io::fcntl_dupfd_cloexec(ctx.listener(), 3).ok()?;
                let listener = Arc::new(Listener::from_fd(fd).ok()?);
                let (tx, rx) = mpsc::channel();
                let rx = Arc::new(Mutex::new(rx));
                for _ in 0..THREADS {
                    let (rx, listener, fixups) =
                        (rx.clone(), listener.clone(), self.fixups.clone());
                    std::thread::Builder::new()
                        .name("sandlock-tracer".into())
                        .spawn(move || run(&rx, &listener, fixups.as_ref()))
                        .ok()?;
                }
                Some(Mutex::new(tx))
            })
            .as_ref()
    }

    fn submit(&self, ctx: &Ctx, job: Job) -> Result<(), ()> {
        let queue = self.queue(ctx).ok_or(())?;
        let tx = queue.lock().map_err(|_| ())?;
        tx.send(job).map_err(|_| ())
    }

    /// Lets the `execve` of `ctx` through and applies the fix-ups at its
    /// exec stop.
    pub(crate) fn exec(&self, ctx: &Ctx) -> Reply {
        let n = ctx.notif();
        match self.submit(
            ctx,
            Job::Exec {
                tid: n.pid as i32,
                id: n.id,
            },
        ) {
            Ok(()) => Reply::Answered,
            Err(()) => {
                warn_once("the tracer thread is not running: a new image runs unedited");
                Reply::Respond(Response::Continue)
            }
        }
    }

    /// The fix-ups for task `pid`, stopped at its exec stop by the calling
    /// thread (another feature's tracer); returns whether the task was
    /// detached (it is, when it was made non-dumpable).
    pub(crate) fn at_exec_stop(&self, pid: i32) -> bool {
        fix_up(self.fixups.as_ref(), pid)
    }

    /// Restarts the syscall of `ctx` with `edit` applied.
    pub(crate) fn restart(&self, ctx: &Ctx, edit: Edit) -> Reply {
        let n = ctx.notif();
        match self.submit(
            ctx,
            Job::Restart {
                tid: n.pid as i32,
                id: n.id,
                edit,
            },
        ) {
            Ok(()) => Reply::Answered,
            Err(()) => {
                warn_once("the tracer thread is not running: a syscall runs unedited");
                Reply::Respond(Response::Continue)
            }
        }
    }
}

/// Prints `msg` on standard error, once per process.
pub(crate) fn warn_once(msg: &str) {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if let Ok(mut seen) = SEEN.lock()
        && !seen.iter().any(|m| m == msg)
    {
        seen.push(msg.to_owned());
        eprintln!("sandlock: warning: {msg}");
    }
}

/// Takes jobs until the queue closes (the supervisor's handlers are gone).
/// Each job is done whole by the thread that took it (ptrace binds a
/// tracee to the thread that attached).
fn run(rx: &Mutex<Receiver<Job>>, listener: &Listener, fixups: &dyn Fixups) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(Job::Exec { tid, id }) => exec_job(listener, fixups, tid, id),
            Ok(Job::Restart { tid, id, edit }) => restart_job(listener, tid, id, &edit),
            Err(_) => return,
        }
    }
}

/// Releases a task seized by mistake (its pid was reused after its
/// notification went away): stops it, then detaches.
fn release(tid: i32) {
    if trace::interrupt(tid).is_err() {
        return;
    }
    while let Ok((pid, what)) = trace::wait_tracee() {
        if what != Wait::Gone {
            let _ = trace::detach(pid, 0);
        }
        if pid == tid {
            return;
        }
    }
}

/// Seizes `tid` and checks that it is still the task of notification
/// `id` (a task waiting in its notification keeps its pid).
fn seize_checked(listener: &Listener, tid: i32, id: u64, options: u32) -> Result<(), Errno> {
    trace::seize(tid, options)?;
    if listener.id_valid(id) {
        Ok(())
    } else {
        release(tid);
        Err(Errno::SRCH)
    }
}

/// [`seize_checked`]; when it fails, warns once (`what`: what then goes
/// unedited; nothing for a task that is gone), lets the call go on, and
/// returns `false`.
fn seize_or_continue(listener: &Listener, tid: i32, id: u64, options: u32, what: &str) -> bool {
    match seize_checked(listener, tid, id, options) {
        Ok(()) => true,
        Err(e) => {
            if e != Errno::SRCH {
                warn_once(&format!("{what} ({})", crate::errno_text(e)));
            }
            answer(listener, id, Response::Continue);
            false
        }
    }
}

/// Answers `id`, ignoring a notification that is gone (its task died).
fn answer(listener: &Listener, id: u64, r: Response) {
    let _ = listener.respond(id, r);
}

fn exec_job(listener: &Listener, fixups: &dyn Fixups, tid: i32, id: u64) {
    if !seize_or_continue(
        listener,
        tid,
        id,
        trace::O_TRACEEXEC | trace::O_TRACESYSGOOD,
        "cannot trace a sandboxed execve: its new image runs unedited",
    ) {
        return;
    }
    // Interrupt first: if the execve fails, the task stops on its way out
    // of the syscall, and is released there.
    let _ = trace::interrupt(tid);
    answer(listener, id, Response::Continue);
    loop {
        let Ok((pid, what)) = trace::wait_tracee() else {
            return;
        };
        match what {
            Wait::Gone if pid == tid => return,
            Wait::Gone => continue,
            Wait::Event(trace::EVENT_EXEC) => {
                // After an exec by a non-leader thread, `pid` is the
                // thread group's id, which the task now has.
                if !fix_up(fixups, pid) {
                    // Detaching also drops the pending interrupt.
                    let _ = trace::detach(pid, 0);
                }
                return;
            }
            Wait::Signal(sig) => {
                let _ = trace::detach(pid, sig);
                if pid == tid {
                    return;
                }
            }
            Wait::Event(_) | Wait::Syscall => {
                let _ = trace::detach(pid, 0);
                if pid == tid {
                    return;
                }
            }
        }
    }
}

/// Applies `fixups` to `pid`, stopped at its exec stop by this thread;
/// returns whether the task was detached (after being made non-dumpable).
fn fix_up(fixups: &dyn Fixups, pid: i32) -> bool {
    match fixups.at_exec(pid as u32) {
        Ok(Some(site)) => {
            make_nondumpable(pid, site);
            true
        }
        Ok(None) => false,
        Err(msg) => {
            warn_once(&msg);
            false
        }
    }
}

/// `PR_SET_DUMPABLE`.
const PR_SET_DUMPABLE: u64 = 4;

/// Runs `prctl(PR_SET_DUMPABLE, 0)` in `pid`, stopped at its exec stop,
/// through the `syscall` instruction at `site`, then lets it start its new
/// image as if nothing happened: from the exit of `execve` (a syscall
/// stop), the registers are saved, pointed at `site` with the `prctl`
/// arguments, and restored at the `prctl`'s exit. A signal arriving
/// meanwhile is held and sent again (`tgkill`) after the tracer detaches.
#[cfg(target_arch = "x86_64")]
fn make_nondumpable(pid: i32, site: u64) {
    #[derive(PartialEq)]
    enum Stage {
        ExecExit,
        PrctlEntry,
        PrctlExit,
    }
    let mut stage = Stage::ExecExit;
    let mut saved: Option<trace::Regs> = None;
    let mut held: Option<i32> = None;
    let finish = |saved: &Option<trace::Regs>, held: Option<i32>| {
        if let Some(r) = saved {
            let _ = trace::set_regs(pid, r);
        }
        let _ = trace::detach(pid, 0);
        if let Some(sig) = held {
            let _ = trace::tgkill(pid, pid, sig);
        }
    };
    if trace::resume_to_syscall(pid).is_err() {
        return finish(&saved, held);
    }
    loop {
        let Ok((p, what)) = trace::wait_tracee() else {
            return;
        };
        if p != pid {
            if what != Wait::Gone {
                let _ = trace::detach(p, 0);
            }
            continue;
        }
        let step = match what {
            Wait::Gone => return,
            Wait::Syscall => match stage {
                Stage::ExecExit => match trace::get_regs(pid) {
                    Ok(regs) => {
                        let mut r = regs;
                        saved = Some(regs);
                        r.rip = site;
                        r.rax = libc::SYS_prctl as u64;
                        r.rdi = PR_SET_DUMPABLE;
                        (r.rsi, r.rdx, r.r10, r.r8) = (0, 0, 0, 0);
                        stage = Stage::PrctlEntry;
                        trace::set_regs(pid, &r)
                    }
                    Err(e) => Err(e),
                },
                Stage::PrctlEntry => {
                    stage = Stage::PrctlExit;
                    Ok(())
                }
                Stage::PrctlExit => {
                    if !trace::get_regs(pid).is_ok_and(|r| r.rax == 0) {
                        warn_once("a sandboxed process could not be made non-dumpable");
                    }
                    return finish(&saved, held);
                }
            },
            // The interrupt of the exec job, or a group stop: go on.
            Wait::Event(_) => Ok(()),
            Wait::Signal(sig) => {
                held = Some(sig);
                Ok(())
            }
        };
        if step.and_then(|()| trace::resume_to_syscall(pid)).is_err() {
            return finish(&saved, held);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn make_nondumpable(pid: i32, _site: u64) {
    let _ = trace::detach(pid, 0);
}

#[cfg(target_arch = "x86_64")]
fn set_arg(regs: &mut trace::Regs, i: usize, v: u64) {
    match i {
        0 => regs.rdi = v,
        1 => regs.rsi = v,
        2 => regs.rdx = v,
        3 => regs.r10 = v,
        4 => regs.r8 = v,
        _ => regs.r9 = v,
    }
}

/// Edits the registers of `tid`, stopped on its way out of syscall
/// `edit.nr` with a restart code. `false` if it is not there.
#[cfg(target_arch = "x86_64")]
fn edit_regs(tid: i32, edit: &Edit) -> bool {
    let Ok(mut regs) = trace::get_regs(tid) else {
        return false;
    };
    let ret = regs.rax as i64;
    if regs.orig_rax != edit.nr || (ret != -ERESTARTNOINTR && ret != -ERESTARTSYS) {
        return false;
    }
    for &(i, v) in &edit.args {
        set_arg(&mut regs, i, v);
    }
    trace::set_regs(tid, &regs).is_ok()
}

#[cfg(not(target_arch = "x86_64"))]
fn edit_regs(_tid: i32, _edit: &Edit) -> bool {
    false
}

fn restart_job(listener: &Listener, tid: i32, id: u64, edit: &Edit) {
    if !seize_or_continue(
        listener,
        tid,
        id,
        0,
        "cannot trace a sandboxed task: a deadline or time stamp stays unshifted",
    ) {
        return;
    }
    let _ = trace::interrupt(tid);
    let restart = sandlock_bpf::Errno::new(ERESTARTNOINTR).unwrap_or(sandlock_bpf::Errno::EINTR);
    answer(listener, id, Response::Errno(restart));
    loop {
        let Ok((pid, what)) = trace::wait_tracee() else {
            return;
        };
        match what {
            Wait::Gone if pid == tid => return,
            Wait::Gone => continue,
            Wait::Event(_) | Wait::Syscall | Wait::Signal(_) if pid != tid => {
                let _ = trace::detach(pid, 0);
            }
            Wait::Signal(sig) => {
                edit_regs(tid, edit);
                let _ = trace::detach(tid, sig);
                return;
            }
            Wait::Event(_) | Wait::Syscall => {
                edit_regs(tid, edit);
                let _ = trace::detach(tid, 0);
                return;
            }
        }
    }
}

/// Whether the tracer can work on this architecture.
pub(crate) const SUPPORTED: bool = cfg!(target_arch = "x86_64");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_code_is_an_errno_seccomp_accepts() {
        assert!(sandlock_bpf::Errno::new(ERESTARTNOINTR).is_ok());
    }

    #[test]
    fn edits_are_plain_data() {
        let e = Edit {
            nr: 230,
            args: vec![(0, 1), (2, 0x1000)],
        };
        assert_eq!(e.clone(), e);
    }
}
