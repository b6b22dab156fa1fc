//! The parent's side of the confinement sequence: prepare, fork, hand-shake.
//!
//! Everything the child needs is built before the fork (programs, Landlock
//! descriptor, argv/envp, limits, working directory), so that the child
//! only makes raw system calls ([`crate::child`]). The parent and child talk
//! over a `SOCK_SEQPACKET` socketpair:
//!
//! - parent → child: the go-ahead byte, when a step of the parent must
//!   happen before the child confines itself and runs the command (the
//!   terminal, a feature's `before_exec`);
//! - child → parent: the seccomp listener (`SCM_RIGHTS`), when the base
//!   filter notifies;
//! - child → parent: end of file when `execve` succeeded (the child's end
//!   is close-on-exec), or `(step, errno, detail)` when a step failed.
//!
//! With a PID namespace the first process is the namespace's init
//! ([`crate::ns::reaper`]), which keeps its end: it says "executed" once
//! the command called `execve`, and sends the command's wait status when
//! it ends.

use std::ffi::CString;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, SocketType,
};
use rustix::process::{Resource, WaitId, WaitIdOptions};

use crate::child::{self, ChildArgs};
use crate::error::{Error, SetupStep};
use crate::ns::{ChildNs, NsPlan};
use crate::seccomp::Programs;
use crate::sys;
use crate::sys::child::ExecArgs;

/// Settings of one child, prepared before the fork. Supervisor features may
/// add to it ([`crate::supervise::Feature::prepare`]).
#[derive(Default)]
pub(crate) struct SpawnPlan {
    /// Resource limits `(resource, soft, hard)`, set after the listener is
    /// handed over (so that a tiny `RLIMIT_NOFILE` cannot stop it).
    pub(crate) rlimits: Vec<(u32, u64, u64)>,
    /// Whether the child waits for the parent's go-ahead before confining
    /// itself.
    pub(crate) wait_go: bool,
    /// A `personality` for the child.
    pub(crate) personality: Option<u32>,
    /// `PR_SET_THP_DISABLE`.
    pub(crate) thp_disable: bool,
    /// CPU affinity bitmap.
    pub(crate) cpu_mask: Option<Vec<u64>>,
    /// Working directory.
    pub(crate) cwd: Option<CString>,
    /// The new root (`chroot`): its host path and a descriptor of it (to
    /// check that the path still names it), entered before `cwd`.
    pub(crate) root: Option<(CString, std::os::fd::RawFd)>,
    /// Namespaces (none by default); see [`crate::ns`].
    pub(crate) ns: NsPlan,
    /// The base filter sends the command's own `execve` to the supervisor:
    /// [`launch`] returns as soon as the listener is here, the caller
    /// starts the supervisor and then waits for the `execve`
    /// ([`finish_exec`]).
    pub(crate) exec_supervised: bool,
    /// What features keep alive for the run (dropped with the [`Child`](crate::Child)).
    pub(crate) keep: Vec<Box<dyn std::any::Any + Send>>,
    /// When the policy's timeout ends, counted from before the fork: a
    /// hand-shake still waiting then (an `execve` that hangs, a child
    /// stopped from outside) gives up with [`Error::TimedOut`].
    pub(crate) deadline: Option<(Instant, Duration)>,
}

impl std::fmt::Debug for SpawnPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnPlan")
            .field("rlimits", &self.rlimits)
            .field("wait_go", &self.wait_go)
            .field("cpu_mask", &self.cpu_mask)
            .field("ns", &self.ns)
            .field("exec_supervised", &self.exec_supervised)
            .field("keep", &self.keep.len())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The size of the command's stack in the init of a PID namespace (until
/// its `execve`, it runs only the raw system calls of the confinement).
pub(crate) const COMMAND_STACK: usize = 128 * 1024;

/// What the parent passes to [`launch`].
pub(crate) struct Launch<'a> {
    pub(crate) plan: &'a SpawnPlan,
    pub(crate) exec: &'a ExecArgs,
    /// Descriptors for the child's 0, 1, 2 (`None`: inherited).
    pub(crate) stdio: &'a [Option<OwnedFd>; 3],
    pub(crate) landlock: Option<&'a OwnedFd>,
    pub(crate) programs: &'a Programs,
    /// Prepared namespaces, and the descriptions of their mounts.
    pub(crate) ns: Option<(&'a ChildNs, &'a [String])>,
    /// Make the child's group the target of the signal forwarding handlers.
    pub(crate) forward_signals: bool,
}

/// A child that passed `execve` (or, with `exec_supervised`, is about to).
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) listener: Option<OwnedFd>,
    /// The channel on which the init of a PID namespace sends the
    /// command's wait status ([`read_status`]).
    pub(crate) status: Option<OwnedFd>,
    /// With `exec_supervised`: the rest of the hand-shake, for
    /// [`finish_exec`] once the supervisor runs.
    pub(crate) exec_pending: Option<ExecPending>,
    /// The stack of an init that runs in this process's memory: kept as
    /// long as the sandbox (dropping it ends the init).
    pub(crate) init_stack: Option<sys::host::InitStack>,
}

/// The end of a hand-shake left for [`finish_exec`].
#[derive(Debug)]
pub(crate) struct ExecPending {
    sock: OwnedFd,
    reaper: bool,
    mounts: Vec<String>,
    deadline: Option<(Instant, Duration)>,
}

/// A message from the child.
enum Msg {
    Eof,
    Listener(OwnedFd),
    Executed,
    /// The command's status from an init (not expected during the launch).
    Status,
    Failed {
        step: u32,
        errno: Errno,
        detail: u32,
    },
}

/// Forks the child, runs the hand-shake, and returns once the command has
/// been executed. `before_exec` runs in the parent after the listener
/// arrived and before the child may `execve` (only when `plan.wait_go`).
pub(crate) fn launch(
    l: Launch<'_>,
    before_exec: &mut dyn FnMut(i32) -> Result<(), Error>,
) -> Result<Launched, Error> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(Error::os("socketpair"))?;

    // Sources for 0/1/2 must not be 0/1/2 themselves (dup3 onto itself
    // would keep O_CLOEXEC, and a later dup would overwrite it).
    let mut low: [Option<OwnedFd>; 3] = [None, None, None];
    for (slot, fd) in low.iter_mut().zip(l.stdio) {
        if let Some(fd) = fd
            && fd.as_raw_fd() < 3
        {
            *slot = Some(
                rustix::io::fcntl_dupfd_cloexec(fd, 3)
                    .map_err(Error::os("dup of a standard descriptor"))?,
            );
        }
    }
    let mut stdio_raw = [-1; 3];
    for i in 0..3 {
        stdio_raw[i] = match (&low[i], &l.stdio[i]) {
            (Some(d), _) => d.as_raw_fd(),
            (None, Some(fd)) => fd.as_raw_fd(),
            (None, None) => -1,
        };
    }
    let fd_limit = rustix::process::getrlimit(Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    let sigmask = sys::host::empty_sigset();
    let (ns, ns_what) = match l.ns {
        Some((ns, what)) => (Some(ns), what),
        None => (None, &[][..]),
    };
    let reaper = ns.is_some_and(|n| n.reaper);
    // The init shares this process's memory when it reads `args` only
    // while this function waits (the hand-shake below runs to the
    // command's execve, except for a supervised execve).
    let mut init_stack = if reaper && !l.plan.exec_supervised && sandlock_notify::raw::ERRNO_FREE {
        Some(sys::host::InitStack::new().map_err(Error::os("init stack"))?)
    } else {
        None
    };
    // The init of a PID namespace runs the command on a stack of its own
    // (see `sys::ns::vfork_command`): below the init's, in the same
    // mapping, when the init shares our memory; else a buffer of ours,
    // which the forked init gets a copy of.
    let mut command_stack: Vec<u128> = if reaper && init_stack.is_none() {
        vec![0; COMMAND_STACK / 16]
    } else {
        Vec::new()
    };
    let stack_top = match &init_stack {
        Some(stack) => Some(stack.command_top() as usize),
        None => reaper.then(|| command_stack.as_mut_ptr_range().end as usize),
    };
    let args = ChildArgs {
        sock: theirs.as_raw_fd(),
        parent: rustix::process::getpid().as_raw_nonzero().get(),
        stdio: stdio_raw,
        sigmask: &sigmask,
        personality: l.plan.personality,
        thp_disable: l.plan.thp_disable,
        cpu_mask: l.plan.cpu_mask.as_deref(),
        cwd: l.plan.cwd.as_deref(),
        root: l.plan.root.as_ref().map(|(p, fd)| (p.as_c_str(), *fd)),
        wait_go: l.plan.wait_go,
        fd_limit,
        landlock: l.landlock.map(|f| f.as_raw_fd()),
        base: l.programs.base.insns(),
        notifies: l.programs.notifies,
        handoff: l.programs.handoff,
        rlimits: &l.plan.rlimits,
        user: l.programs.user.as_ref().map(|p| p.insns()),
        exec: l.exec,
        ns,
        command_stack: stack_top,
    };

    let clone_flags = ns.map_or(0, |n| n.clone_flags);
    // A child that waits for the go-ahead, or whose execve waits for the
    // supervisor, needs the parent running, and so does the init of a PID
    // namespace (it never calls execve): a plain fork. Otherwise the
    // cheaper vfork-style clone.
    let share_memory = !l.plan.wait_go && !l.plan.exec_supervised && clone_flags == 0;
    let (pid, pidfd) = sys::host::spawn_child(
        &args,
        share_memory,
        l.forward_signals,
        clone_flags,
        init_stack.as_mut(),
    )
    .map_err(|errno| Error::Os {
        what: if clone_flags != 0 {
            "clone with new namespaces"
        } else {
            "clone"
        },
        errno,
    })?;
    drop(theirs);
    drop(low);
    // `command_stack` stays until the end: an init that shares our memory
    // forks the command on it, up to the command's execve.

    if l.plan.wait_go {
        if let Err(e) = before_exec(pid) {
            return Err(abandon(&pidfd, e));
        }
        if let Err(e) = rustix::io::write(&ours, &[child::GO]) {
            return Err(abandon(&pidfd, Error::os("go-ahead to the sandbox")(e)));
        }
    }
    let mut listener = None;
    let early = l.plan.exec_supervised && l.programs.notifies;
    let mut hs = Handshake {
        sock: &ours,
        pidfd: &pidfd,
        listener: &mut listener,
        notifies: l.programs.notifies,
        reaper,
        exec: l.exec,
        mounts: ns_what,
        deadline: l.plan.deadline,
    };
    if let Err(e) = hs.run(early) {
        return Err(abandon(&pidfd, e));
    }
    if l.programs.notifies && listener.is_none() {
        return Err(abandon(
            &pidfd,
            Error::os("seccomp listener hand-over")(Errno::PROTO),
        ));
    }
    if early {
        return Ok(Launched {
            pid,
            pidfd,
            listener,
            status: None,
            exec_pending: Some(ExecPending {
                sock: ours,
                reaper,
                mounts: ns_what.to_vec(),
                deadline: l.plan.deadline,
            }),
            init_stack,
        });
    }
    Ok(Launched {
        pid,
        pidfd,
        listener,
        status: reaper.then_some(ours),
        exec_pending: None,
        init_stack,
    })
}

/// Kills and reaps a child whose launch failed; returns `err`.
pub(crate) fn abandon(pidfd: &OwnedFd, err: Error) -> Error {
    let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
    let _ = rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED);
    err
}

/// Waits for the command's `execve` left pending by [`launch`] (the
/// supervisor must be running: it answers that `execve`). Returns the
/// channel of the command's wait status (a PID namespace's init). On an
/// error the child is killed.
pub(crate) fn finish_exec(
    p: ExecPending,
    pidfd: &OwnedFd,
    exec: &ExecArgs,
) -> Result<Option<OwnedFd>, Error> {
    let mut none = None;
    let mut hs = Handshake {
        sock: &p.sock,
        pidfd,
        listener: &mut none,
        notifies: false,
        reaper: p.reaper,
        exec,
        mounts: &p.mounts,
        deadline: p.deadline,
    };
    if let Err(e) = hs.run(false) {
        return Err(abandon(pidfd, e));
    }
    Ok(p.reaper.then_some(p.sock))
}

/// The parent's side of the hand-shake.
struct Handshake<'a> {
    sock: &'a OwnedFd,
    pidfd: &'a OwnedFd,
    listener: &'a mut Option<OwnedFd>,
    notifies: bool,
    reaper: bool,
    exec: &'a ExecArgs,
    mounts: &'a [String],
    deadline: Option<(Instant, Duration)>,
}

impl Handshake<'_> {
    /// Receives the child's messages until the command called `execve`
    /// (or, with `until_listener`, until the listener is here), or until
    /// the deadline.
    fn run(&mut self, until_listener: bool) -> Result<(), Error> {
        loop {
            if let Some((at, timeout)) = self.deadline
                && !readable_before(self.sock, at)?
            {
                return Err(Error::TimedOut { timeout });
            }
            match recv(self.sock)? {
                Msg::Listener(fd) if self.listener.is_none() && self.notifies => {
                    *self.listener = Some(fd);
                    if until_listener {
                        return Ok(());
                    }
                }
                Msg::Failed {
                    step,
                    errno,
                    detail,
                } => return Err(step_error(step, errno, detail, self.exec, self.mounts)),
                Msg::Executed if self.reaper => return Ok(()),
                Msg::Eof if !self.reaper => return Ok(()),
                Msg::Eof => return Err(died(self.pidfd)),
                _ => return Err(Error::os("sandbox hand-shake")(Errno::PROTO)),
            }
        }
    }
}

/// Waits until `sock` is readable (a message, or its end); `false` when
/// `at` passes first.
fn readable_before(sock: &OwnedFd, at: Instant) -> Result<bool, Error> {
    loop {
        let left = at.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            sock,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => return Ok(true),
            Err(e) => return Err(Error::os("sandbox hand-shake")(e)),
        }
    }
}

/// The command's wait status, if the init of its PID namespace sent it
/// (read without waiting, once the init has ended).
pub(crate) fn read_status(sock: &OwnedFd) -> Option<i32> {
    loop {
        let mut buf = [0u8; 16];
        match rustix::net::recv(sock, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((5, _)) if buf[0] == child::TAG_STATUS => {
                return Some(i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]));
            }
            // Anything else before it (nothing is expected): skip.
            Ok((n, _)) if n > 0 => continue,
            _ => return None,
        }
    }
}

fn step_error(step: u32, errno: Errno, detail: u32, exec: &ExecArgs, mounts: &[String]) -> Error {
    if step == child::EXEC_STEP {
        return Error::Exec {
            command: exec.path().to_string_lossy().into_owned(),
            errno,
        };
    }
    match SetupStep::from_code(step) {
        Some(SetupStep::Mount) => Error::Namespace {
            what: mounts
                .get(detail as usize)
                .cloned()
                .unwrap_or_else(|| format!("mount {detail}")),
            errno,
        },
        Some(SetupStep::UserNamespace) => Error::Namespace {
            what: "writing the user namespace's id maps".to_owned(),
            errno,
        },
        Some(step) => Error::Setup { step, errno },
        None => Error::os("sandbox hand-shake")(Errno::PROTO),
    }
}

/// The child ended without a word (killed during its setup).
fn died(pidfd: &OwnedFd) -> Error {
    let status = rustix::process::waitid(
        WaitId::PidFd(pidfd.as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    );
    let what = match status {
        Ok(Some(st)) => match (st.exit_status(), st.terminating_signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (_, Some(sig)) => format!("signal {sig}"),
            _ => "unknown status".to_owned(),
        },
        _ => "unknown status".to_owned(),
    };
    Error::SetupDied(what)
}

/// Receives one message from the child, retrying on `EINTR`.
fn recv(sock: &OwnedFd) -> Result<Msg, Error> {
    let mut buf = [0u8; 16];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    loop {
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let got = match rustix::net::recvmsg(sock, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => m.bytes,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os("sandbox hand-shake")(e)),
        };
        let mut fd: Option<OwnedFd> = None;
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                for f in fds {
                    fd.get_or_insert(f);
                }
            }
        }
        let word = |i: usize| [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        let protocol = || Error::os("sandbox hand-shake")(Errno::PROTO);
        return Ok(match (got, buf[0]) {
            (0, _) => Msg::Eof,
            (_, child::TAG_LISTENER) => match fd {
                Some(fd) => Msg::Listener(fd),
                None => return Err(Error::os("seccomp listener hand-over")(Errno::PROTO)),
            },
            (1, child::TAG_EXECUTED) => Msg::Executed,
            (5, child::TAG_STATUS) => Msg::Status,
            (13, child::TAG_ERROR) => Msg::Failed {
                step: u32::from_le_bytes(word(1)),
                // An errno out of the kernel's range (1 to 4095) is no
                // report of ours: a protocol error, not a panic.
                errno: match i32::from_le_bytes(word(5)) {
                    n @ 1..=4095 => Errno::from_raw_os_error(n),
                    _ => return Err(protocol()),
                },
                detail: u32::from_le_bytes(word(9)),
            },
            _ => return Err(protocol()),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};

    /// A failure report as the child writes it.
    fn report(errno: i32) -> [u8; 13] {
        let mut msg = [0u8; 13];
        msg[0] = child::TAG_ERROR;
        msg[1..5].copy_from_slice(&7u32.to_le_bytes());
        msg[5..9].copy_from_slice(&errno.to_le_bytes());
        msg[9..13].copy_from_slice(&3u32.to_le_bytes());
        msg
    }

    #[test]
    fn reports_decode_and_bad_errnos_are_protocol_errors() {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::io::write(&theirs, &report(13)).unwrap();
        match recv(&ours).unwrap() {
            Msg::Failed {
                step,
                errno,
                detail,
            } => assert_eq!((step, errno, detail), (7, Errno::ACCESS, 3)),
            _ => panic!("not a failure report"),
        }
        for bad in [0, -1, 4096, i32::MIN] {
            rustix::io::write(&theirs, &report(bad)).unwrap();
            match recv(&ours) {
                Err(Error::Os {
                    what: "sandbox hand-shake",
                    errno: Errno::PROTO,
                }) => {}
                _ => panic!("errno {bad} was not refused"),
            }
        }
        drop(theirs);
        assert!(matches!(recv(&ours).unwrap(), Msg::Eof));
    }
}
