//! A running sandbox: its first process, its supervisor, and its end.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Signal, WaitId, WaitIdOptions};
use sandlock_notify::SupervisorHandle;

use std::sync::Arc;

use crate::error::Error;
use crate::limits::monitor::Monitor;
use crate::limits::{LimitExceeded, Runtime};
use crate::supervise::{self, Pending, Tasks};
use crate::sys;
use crate::terminal::Terminal;

/// What tracks a sandbox's tasks and holds its limits.
#[derive(Debug)]
pub(crate) struct Tracking {
    /// Its tasks.
    pub(crate) tasks: Tasks,
    /// Its limits' runtime.
    pub(crate) limits: Option<Arc<Runtime>>,
    /// The limits' monitor thread, if they need one.
    pub(crate) monitor: Option<Monitor>,
    /// The init of a PID namespace sends the command's status here.
    pub(crate) status_sock: Option<OwnedFd>,
}

/// The supervisor of a sandbox, if it has one.
#[derive(Debug)]
pub(crate) enum Sup {
    /// The base filter notifies nothing.
    Off,
    /// Started at the first notification.
    Pending(Box<Pending>),
    /// Running.
    Running(SupervisorHandle),
}

/// A running sandbox, returned by [`Sandbox::spawn`](crate::Sandbox::spawn).
///
/// The sandbox is its first process (the command) and everything that
/// process starts: they share the process group whose id is
/// [`id`](Child::id). When the command ends, the rest of the group is
/// killed; when the [`Child`] is dropped before, the whole sandbox is.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    pidfd: OwnedFd,
    /// The command's standard input, when it was [`Stdio::Piped`](crate::Stdio::Piped).
    pub stdin: Option<ChildStdin>,
    /// The command's standard output, when it was piped.
    pub stdout: Option<ChildStdout>,
    /// The command's standard error, when it was piped.
    pub stderr: Option<ChildStderr>,
    sup: Sup,
    tracking: Tracking,
    deadline: Option<Instant>,
    timed_out: bool,
    status: Option<ExitStatus>,
    terminal: Option<Terminal>,
    forwarding: bool,
    /// What features keep alive while the sandbox runs.
    keep: Vec<Box<dyn std::any::Any + Send>>,
}

/// A pipe read while waiting, and what was read from it.
pub(crate) struct Capture<'a> {
    pub(crate) pipe: Option<OwnedFd>,
    pub(crate) out: &'a mut Vec<u8>,
}

impl Child {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pid: i32,
        pidfd: OwnedFd,
        sup: Sup,
        tracking: Tracking,
        timeout: Option<Duration>,
        terminal: Option<Terminal>,
        forwarding: bool,
    ) -> Child {
        Child {
            pid,
            pidfd,
            stdin: None,
            stdout: None,
            stderr: None,
            sup,
            tracking,
            deadline: timeout.map(|t| Instant::now() + t),
            timed_out: false,
            status: None,
            terminal,
            forwarding,
            keep: Vec::new(),
        }
    }

    /// Keeps `things` alive as long as the sandbox (see `SpawnPlan::keep`).
    pub(crate) fn keep(&mut self, things: Vec<Box<dyn std::any::Any + Send>>) {
        self.keep.extend(things);
    }

    /// The pid of the sandbox's first process, which is also the id of its
    /// process group.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// A pidfd on the first process (readable once it has exited).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the sandbox was killed because its timeout passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The limits' runtime (tests).
    #[cfg(test)]
    pub(crate) fn limits(&self) -> Option<Arc<Runtime>> {
        self.tracking.limits.clone()
    }

    /// Why sandlock ended the sandbox, if a limit that only a kill can
    /// hold was passed.
    pub fn limit_exceeded(&self) -> Option<LimitExceeded> {
        self.tracking.limits.as_ref().and_then(|l| l.exceeded())
    }

    /// Starts the supervisor now, if it is still waiting for the first
    /// notification.
    pub(crate) fn start_supervisor(&mut self) -> Result<(), Error> {
        if let Sup::Pending(_) = self.sup {
            let Sup::Pending(p) = std::mem::replace(&mut self.sup, Sup::Off) else {
                return Ok(());
            };
            self.sup = Sup::Running(supervise::start(*p)?);
        }
        Ok(())
    }

    /// Kills the whole sandbox: every task of it, whatever its process
    /// group or session (see `docs/resources.md`).
    pub fn kill(&mut self) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        self.tracking.tasks.kill_all();
        match rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::os("pidfd_send_signal")(e)),
        }
    }

    /// Waits for the command to end (killing the sandbox at its timeout),
    /// then kills what is left of the sandbox and returns the command's
    /// status.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.wait_capturing(&mut [])
    }

    /// The status if the command has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        if self.exited(Some(Duration::ZERO))? {
            return self.finish().map(Some);
        }
        Ok(None)
    }

    /// Whether the first process has exited, within `timeout`.
    fn exited(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        let ts = timeout.map(timespec);
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(Errno::INTR) => Ok(!fds[0].revents().is_empty()),
            Err(e) => Err(Error::os("poll")(e)),
        }
    }

    /// Waits like [`wait`](Self::wait) while reading `captures` to their end.
    pub(crate) fn wait_capturing(
        &mut self,
        captures: &mut [Capture<'_>],
    ) -> Result<ExitStatus, Error> {
        if let Some(st) = self.status {
            return Ok(st);
        }
        loop {
            let timeout = match self.deadline {
                Some(d) if !self.timed_out => Some(d.saturating_duration_since(Instant::now())),
                _ => None,
            };
            let (exited, notified, ready) = self.poll_once(captures, timeout)?;
            if notified {
                self.start_supervisor()?;
            }
            for i in ready {
                read_some(&mut captures[i]);
            }
            if exited {
                break;
            }
            if let Some(d) = self.deadline
                && !self.timed_out
                && Instant::now() >= d
            {
                self.timed_out = true;
                self.kill()?;
            }
        }
        // Output written just before the end is already in the pipes; a
        // process that escaped the group may hold them open: read what is
        // there, do not wait for it.
        loop {
            let (_, _, ready) = self.poll_once(captures, Some(Duration::ZERO))?;
            if ready.is_empty() {
                break;
            }
            for i in ready {
                read_some(&mut captures[i]);
            }
        }
        self.finish()
    }

    /// One poll over the pidfd, the pending listener and the open pipes:
    /// (first process exited, first notification arrived, readable pipes).
    fn poll_once(
        &mut self,
        captures: &[Capture<'_>],
        timeout: Option<Duration>,
    ) -> Result<(bool, bool, Vec<usize>), Error> {
        let mut fds = vec![PollFd::new(&self.pidfd, PollFlags::IN)];
        let listener = match &self.sup {
            Sup::Pending(p) => {
                fds.push(PollFd::new(&p.listener, PollFlags::IN));
                true
            }
            _ => false,
        };
        let first_pipe = fds.len();
        let mut which = Vec::new();
        for (i, c) in captures.iter().enumerate() {
            if let Some(p) = &c.pipe {
                fds.push(PollFd::new(p, PollFlags::IN));
                which.push(i);
            }
        }
        let ts = timeout.map(timespec);
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) => {}
            Err(Errno::INTR) => return Ok((false, false, Vec::new())),
            Err(e) => return Err(Error::os("poll")(e)),
        }
        let exited = !fds[0].revents().is_empty();
        let (mut notified, mut hung_up) = (false, false);
        if listener {
            let r = fds[1].revents();
            if r.contains(PollFlags::IN) {
                notified = true;
            } else if !r.is_empty() {
                hung_up = true;
            }
        }
        let ready = which
            .into_iter()
            .enumerate()
            .filter(|(k, _)| !fds[first_pipe + k].revents().is_empty())
            .map(|(_, i)| i)
            .collect();
        drop(fds);
        if hung_up {
            // Every task under the filter is gone: nothing to supervise.
            self.sup = Sup::Off;
        }
        Ok((exited, notified, ready))
    }

    /// The first process has exited: kill its process group while its
    /// zombie still holds the group id (with a PID namespace, that ends the
    /// sandbox), stop the supervisor while the zombie still holds its pid,
    /// reap, then kill whatever is left (without a PID namespace).
    fn finish(&mut self) -> Result<ExitStatus, Error> {
        // The monitor first: it must not stop or continue what we kill.
        drop(self.tracking.monitor.take());
        self.tracking.tasks.kill_first();
        match std::mem::replace(&mut self.sup, Sup::Off) {
            Sup::Running(h) => {
                h.shutdown();
                let _ = h.join();
            }
            Sup::Pending(_) | Sup::Off => {}
        }
        let st = loop {
            match rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED)
            {
                Ok(Some(st)) => break st,
                Ok(None) => continue,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    // Not reaped here: the rest is killed as before a reap.
                    self.tracking.tasks.kill_all();
                    return Err(Error::os("waitid")(e));
                }
            }
        };
        self.tracking.tasks.kill_rest_after_reap();
        if let Some(l) = &self.tracking.limits {
            l.ended();
        }
        let own = match (st.exit_status(), st.terminating_signal()) {
            (Some(code), _) => (code & 0xff) << 8,
            (None, Some(sig)) => sig | if st.dumped() { 0x80 } else { 0 },
            (None, None) => 0,
        };
        // With a PID namespace the first process is its init: the
        // command's own status, if the init sent it, is the one to report.
        let raw = self
            .tracking
            .status_sock
            .as_ref()
            .and_then(crate::spawn::read_status)
            .unwrap_or(own);
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        self.cleanup();
        Ok(status)
    }

    fn cleanup(&mut self) {
        if let Some(t) = self.terminal.take() {
            t.restore();
        }
        if self.forwarding {
            sys::host::forward_signals_to(0);
            self.forwarding = false;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
            let _ = self.finish();
        }
        self.cleanup();
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// The most one read of a captured pipe takes.
const READ_CHUNK: usize = 64 * 1024;

/// Reads what is available from a captured pipe; closes it at its end.
///
/// The bytes go straight into the output's spare room: a 64 KiB buffer on
/// the stack would make every caller's frame that large, and the stack
/// probe at its entry touch 16 pages at every start, captured or not.
fn read_some(c: &mut Capture<'_>) {
    let Some(pipe) = &c.pipe else { return };
    c.out.reserve(READ_CHUNK);
    match rustix::io::read(pipe, rustix::buffer::spare_capacity(c.out)) {
        Ok(0) => c.pipe = None,
        Ok(_) => {}
        Err(Errno::INTR | Errno::AGAIN) => {}
        Err(_) => c.pipe = None,
    }
}
