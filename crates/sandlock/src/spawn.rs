//! The parent's side of the confinement sequence: prepare, fork, hand-shake.
//!
//! Everything the child needs is built before the fork (programs, Landlock
//! descriptor, argv/envp, limits, working directory), so that the child
//! only makes raw system calls ([`crate::child`]). The parent and child talk
//! over a `SOCK_SEQPACKET` socketpair:
//!
//! 1. parent → child: the go-ahead byte, when a step of the parent must
//!    happen before the child confines itself and runs the command (the
//!    terminal, a feature's `before_exec`);
//! 2. child → parent: the seccomp listener (`SCM_RIGHTS`), when the base
//!    filter notifies;
//! 3. child → parent: end of file when `execve` succeeded (the child's end
//!    is close-on-exec), or `(step, errno)` when a step failed.

use std::ffi::CString;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, SocketType,
};
use rustix::process::{Resource, WaitId, WaitIdOptions};

use crate::child::{self, ChildArgs};
use crate::error::{Error, SetupStep};
use crate::seccomp::Programs;
use crate::sys;
use crate::sys::child::ExecArgs;

/// Settings of one child, prepared before the fork. Supervisor features may
/// add to it ([`crate::supervise::Feature::prepare`]).
#[derive(Debug, Default)]
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
}

/// What the parent passes to [`launch`].
pub(crate) struct Launch<'a> {
    pub(crate) plan: &'a SpawnPlan,
    pub(crate) exec: &'a ExecArgs,
    /// Descriptors for the child's 0, 1, 2 (`None`: inherited).
    pub(crate) stdio: [Option<OwnedFd>; 3],
    pub(crate) landlock: Option<OwnedFd>,
    pub(crate) programs: &'a Programs,
    /// Make the child's group the target of the signal forwarding handlers.
    pub(crate) forward_signals: bool,
    /// Takes the listener as soon as it arrives, before the command's
    /// `execve` (which the supervisor may have to answer); the child is
    /// then a plain fork, never suspending this thread.
    pub(crate) on_listener: Option<&'a mut dyn FnMut(i32, OwnedFd) -> Result<(), Error>>,
}

/// A child that passed `execve`.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) listener: Option<OwnedFd>,
}

/// A message from the child.
enum Msg {
    Eof,
    Listener(OwnedFd),
    Failed { step: u32, errno: Errno },
}

/// Forks the child, runs the hand-shake, and returns once the command has
/// been executed. `before_exec` runs in the parent before the child may
/// confine itself and `execve` (only when `plan.wait_go`).
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
    let mut stdio_owned: [Option<OwnedFd>; 3] = [None, None, None];
    for (slot, fd) in stdio_owned.iter_mut().zip(l.stdio) {
        *slot = match fd {
            Some(fd) if fd.as_raw_fd() < 3 => Some(
                rustix::io::fcntl_dupfd_cloexec(&fd, 3)
                    .map_err(Error::os("dup of a standard descriptor"))?,
            ),
            other => other,
        };
    }
    let stdio_raw = stdio_owned
        .each_ref()
        .map(|fd| fd.as_ref().map_or(-1, |f| f.as_raw_fd()));
    let fd_limit = rustix::process::getrlimit(Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    let sigmask = sys::host::empty_sigset();
    let args = ChildArgs {
        sock: theirs.as_raw_fd(),
        parent: rustix::process::getpid().as_raw_nonzero().get(),
        stdio: stdio_raw,
        sigmask: &sigmask,
        personality: l.plan.personality,
        thp_disable: l.plan.thp_disable,
        cpu_mask: l.plan.cpu_mask.as_deref(),
        cwd: l.plan.cwd.as_deref(),
        wait_go: l.plan.wait_go,
        fd_limit,
        landlock: l.landlock.as_ref().map(|f| f.as_raw_fd()),
        base: l.programs.base.insns(),
        notifies: l.programs.notifies,
        handoff: l.programs.handoff,
        rlimits: &l.plan.rlimits,
        user: l.programs.user.as_ref().map(|p| p.insns()),
        exec: l.exec,
    };

    // A child that waits for the go-ahead needs the parent running: a plain
    // fork. Otherwise the cheaper vfork-style clone.
    let mut on_listener = l.on_listener;
    let share_memory = !l.plan.wait_go && on_listener.is_none();
    let (pid, pidfd) = sys::host::spawn_child(&args, share_memory, l.forward_signals)
        .map_err(Error::os("clone"))?;
    drop(theirs);
    drop(stdio_owned);
    drop(l.landlock);

    let fail = |pidfd: &OwnedFd, err: Error| -> Error {
        let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
        let _ = rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED);
        err
    };
    if l.plan.wait_go {
        if let Err(e) = before_exec(pid) {
            return Err(fail(&pidfd, e));
        }
        if let Err(e) = rustix::io::write(&ours, &[child::GO]) {
            return Err(fail(&pidfd, Error::os("go-ahead to the sandbox")(e)));
        }
    }
    let listener = if l.programs.notifies {
        match recv(&ours) {
            Ok(Msg::Listener(fd)) => match on_listener.as_mut() {
                Some(take) => match take(pid, fd) {
                    Ok(()) => None,
                    Err(e) => return Err(fail(&pidfd, e)),
                },
                None => Some(fd),
            },
            Ok(Msg::Failed { step, errno }) => {
                return Err(fail(&pidfd, step_error(step, errno, l.exec)));
            }
            Ok(Msg::Eof) => return Err(fail(&pidfd, died(&pidfd))),
            Err(e) => return Err(fail(&pidfd, e)),
        }
    } else {
        None
    };
    match recv(&ours) {
        Ok(Msg::Eof) => Ok(Launched {
            pid,
            pidfd,
            listener,
        }),
        Ok(Msg::Failed { step, errno }) => Err(fail(&pidfd, step_error(step, errno, l.exec))),
        Ok(Msg::Listener(_)) => Err(fail(&pidfd, Error::os("sandbox hand-shake")(Errno::PROTO))),
        Err(e) => Err(fail(&pidfd, e)),
    }
}

fn step_error(step: u32, errno: Errno, exec: &ExecArgs) -> Error {
    if step == child::EXEC_STEP {
        return Error::Exec {
            command: exec.path().to_string_lossy().into_owned(),
            errno,
        };
    }
    match SetupStep::from_code(step) {
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
        return Ok(match (got, buf[0]) {
            (0, _) => Msg::Eof,
            (_, child::TAG_LISTENER) => match fd {
                Some(fd) => Msg::Listener(fd),
                None => return Err(Error::os("seccomp listener hand-over")(Errno::PROTO)),
            },
            (9, child::TAG_ERROR) => Msg::Failed {
                step: u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]),
                errno: Errno::from_raw_os_error(i32::from_le_bytes([
                    buf[5], buf[6], buf[7], buf[8],
                ])),
            },
            _ => return Err(Error::os("sandbox hand-shake")(Errno::PROTO)),
        });
    }
}
