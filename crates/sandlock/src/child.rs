//! The child's side of the confinement sequence, between `clone` and
//! `execve`.
//!
//! Only raw, async-signal-safe system calls run here ([`crate::sys::child`]
//! and `sandlock_notify`'s fork-safe installers): the parent may have other
//! threads, one of which may have held the allocator's lock at the moment
//! of the fork. Everything this code reads was prepared by the parent before
//! the fork; nothing is allocated, dropped or locked.
//!
//! Any failure writes `(step, errno)` to the parent and ends the child with
//! status 125 (126/127 for `execve` itself): the command never runs
//! unconfined.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, RawFd};

use rustix::io::Errno;
use sandlock_bpf::Insn;
use sandlock_notify::FilterFlags;

use crate::error::SetupStep;
use crate::ns::{self, ChildNs};
use crate::sys::child as sys;

/// `CAP_SYS_PTRACE`.
const CAP_SYS_PTRACE: u32 = 19;

/// The wire code of an `execve` failure (not a [`SetupStep`]).
pub(crate) const EXEC_STEP: u32 = 255;
/// The child's message tags: a failed step (`step`, `errno`, `detail`).
pub(crate) const TAG_ERROR: u8 = b'E';
/// The seccomp listener (`SCM_RIGHTS`).
pub(crate) const TAG_LISTENER: u8 = b'L';
/// The init of a PID namespace: the command called `execve`.
pub(crate) const TAG_EXECUTED: u8 = b'X';
/// The init of a PID namespace: the command ended, with this wait status.
pub(crate) const TAG_STATUS: u8 = b'S';
/// The parent's go-ahead.
pub(crate) const GO: u8 = b'G';

/// Everything the child reads, borrowed from the parent's prepared data.
pub(crate) struct ChildArgs<'a> {
    /// The child's end of the parent channel.
    pub sock: RawFd,
    /// The parent's pid, recorded before the fork.
    pub parent: i32,
    /// Descriptors to install as 0, 1, 2 (`-1`: keep the inherited one).
    pub stdio: [RawFd; 3],
    /// The signal mask the command starts with.
    pub sigmask: &'a libc::sigset_t,
    /// `personality` to set.
    pub personality: Option<u32>,
    /// `PR_SET_THP_DISABLE`.
    pub thp_disable: bool,
    /// CPU affinity mask.
    pub cpu_mask: Option<&'a [u64]>,
    /// Working directory.
    pub cwd: Option<&'a CStr>,
    /// The new root's path and a descriptor of it, entered before `cwd`.
    pub root: Option<(&'a CStr, RawFd)>,
    /// Wait for the parent's go-ahead before confining.
    pub wait_go: bool,
    /// `RLIMIT_NOFILE` soft limit (for the close-on-exec fallback).
    pub fd_limit: u64,
    /// The Landlock ruleset.
    pub landlock: Option<RawFd>,
    /// The base filter.
    pub base: &'a [Insn],
    /// Whether the base filter needs a listener.
    pub notifies: bool,
    /// The key that lets the listener's hand-over `sendmsg` through the
    /// base filter (`seccomp::handoff_guard`).
    pub handoff: [u64; 3],
    /// Resource limits `(resource, soft, hard)`.
    pub rlimits: &'a [(u32, u64, u64)],
    /// The user's syscall-list filter.
    pub user: Option<&'a [Insn]>,
    /// The program, its argv and envp.
    pub exec: &'a sys::ExecArgs,
    /// Namespaces the child is in (created by `clone`) and enters.
    pub ns: Option<&'a ChildNs>,
    /// The top of a stack for the command, when this process is the init
    /// of a PID namespace (see [`crate::sys::ns::vfork_command`]).
    pub command_stack: Option<usize>,
}

/// Reports `(step, errno, detail)` to the parent and ends the child.
fn fail(sock: RawFd, step: u32, errno: Errno, detail: u32, code: i32) -> ! {
    let mut msg = [0u8; 13];
    msg[0] = TAG_ERROR;
    msg[1..5].copy_from_slice(&step.to_le_bytes());
    msg[5..9].copy_from_slice(&errno.raw_os_error().to_le_bytes());
    msg[9..13].copy_from_slice(&detail.to_le_bytes());
    let _ = sys::write_msg(sock, &msg);
    sys::exit(code)
}

/// Reports a failed setup step and ends the child with status 125.
fn die(a: &ChildArgs<'_>, step: SetupStep, errno: Errno) -> ! {
    fail(a.sock, step.code(), errno, 0, 125)
}

/// Runs the confinement sequence and `execve`. Never returns.
///
/// With a PID namespace ([`ChildNs::reaper`]) this process is the
/// namespace's init: it sets up what every task inherits (namespaces,
/// descriptors, working directory), forks the command, which confines
/// itself and executes, and becomes the [`ns::reaper`].
pub(crate) fn run(a: &ChildArgs<'_>) -> ! {
    // A process group of its own: the whole sandbox can be signalled at
    // once, and the parent's terminal signals do not reach it.
    if let Err(e) = sys::setpgid_self() {
        die(a, SetupStep::ProcessGroup, e);
    }
    // Die with the thread that forked us; if it already died, the kernel
    // reparented us and PDEATHSIG will never fire: give up.
    if let Err(e) = sys::set_pdeathsig_kill() {
        die(a, SetupStep::DeathSignal, e);
    }
    let reaper = a.ns.is_some_and(|n| n.reaper);
    if reaper {
        // In a new PID namespace getppid() is 0: the parent is outside.
        // Its end of the channel tells whether it is still there.
        if crate::sys::ns::peer_gone(a.sock) {
            sys::exit(125);
        }
    } else if sys::getppid() != a.parent {
        sys::exit(125);
    }
    if let Some(n) = a.ns
        && let Err((step, detail, e)) = ns::enter(n, a.landlock)
    {
        fail(a.sock, step.code(), e, detail, 125);
    }
    // The grants on the new mounts, by their host paths: before the root
    // changes. The ruleset is the launch's own (shared with the command).
    if let (Some(n), Some(fd)) = (a.ns, a.landlock)
        && let Err((step, detail, e)) = ns::regrant(n, fd)
    {
        fail(a.sock, step.code(), e, detail, 125);
    }
    // The new root, once mounted in: the init's too, so that no process
    // of the sandbox has a root (`/proc/1/root`) outside it.
    if let Some((path, fd)) = a.root
        && let Err(e) = sys::enter_root(path, fd)
    {
        die(a, SetupStep::Chroot, e);
    }
    for (target, &src) in a.stdio.iter().enumerate() {
        if src >= 0
            && let Err(e) = sys::dup_to(src, target as RawFd)
        {
            die(a, SetupStep::Stdio, e);
        }
    }
    // A directory as a standard stream would reach a masked path's
    // directory under its mask (the overlay covers the host's directory,
    // which such a descriptor holds): refused.
    if a.ns.is_some_and(ChildNs::has_masks) && (0..3).any(sys::is_directory) {
        die(a, SetupStep::Stdio, Errno::ISDIR);
    }
    if let Err(e) = sys::default_sigpipe() {
        die(a, SetupStep::Signals, e);
    }
    if let Some(p) = a.personality
        && let Err(e) = sys::personality(p)
    {
        die(a, SetupStep::Personality, e);
    }
    if a.thp_disable
        && let Err(e) = sys::thp_disable()
    {
        die(a, SetupStep::HugePages, e);
    }
    if let Some(mask) = a.cpu_mask
        && let Err(e) = sys::sched_setaffinity(mask)
    {
        die(a, SetupStep::CpuAffinity, e);
    }
    if let Some(cwd) = a.cwd
        && let Err(e) = sys::chdir(cwd)
    {
        die(a, SetupStep::WorkDir, e);
    }
    if a.wait_go {
        match sys::read_byte(a.sock) {
            Ok(Some(GO)) => {}
            // The parent gave up (or died): nothing to report to.
            Ok(_) => sys::exit(125),
            Err(e) => die(a, SetupStep::WaitGo, e),
        }
    }
    if reaper {
        // The command runs `confine_and_exec` in a child; this process
        // resumes once it called execve (or ended).
        match crate::sys::ns::vfork_command(a) {
            Ok(pid) => ns::reaper::run(a.sock, pid, a.fd_limit),
            Err(e) => die(a, SetupStep::Reaper, e),
        }
    }
    confine_and_exec(a)
}

/// Everything after the shared set-up: close-on-exec, no new privileges,
/// Landlock, seccomp (the listener handed over), limits, `execve`.
pub(crate) fn confine_and_exec(a: &ChildArgs<'_>) -> ! {
    // Every descriptor above 2 is closed by execve: the channel to the
    // parent stays open until then, so an execve failure is reported.
    if let Err(e) = sys::cloexec_from(3, a.fd_limit) {
        die(a, SetupStep::CloseFds, e);
    }
    // No program of the sandbox gets CAP_SYS_PTRACE (as root): it would
    // pass over Landlock's ptrace scoping and the other tasks' being
    // non-dumpable, to read /proc/PID/{mem,environ,fd} of sandlock or of
    // a sibling. Without CAP_SETPCAP (no capabilities) there is nothing to
    // drop.
    match sys::drop_bounding_cap(CAP_SYS_PTRACE) {
        Ok(()) | Err(Errno::PERM) | Err(Errno::INVAL) => {}
        Err(e) => die(a, SetupStep::NoNewPrivs, e),
    }
    if let Err(e) = sandlock_notify::set_no_new_privs() {
        die(a, SetupStep::NoNewPrivs, e);
    }
    if let Some(fd) = a.landlock {
        if let Err(e) = sys::landlock_restrict_self(fd) {
            die(a, SetupStep::Landlock, e);
        }
        sys::close(fd);
    }
    if a.notifies {
        match sandlock_notify::install_filter_with_listener(a.base, FilterFlags::WAIT_KILLABLE_RECV)
        {
            Ok(listener) => {
                let raw = listener.as_raw_fd();
                // The OwnedFd must not be dropped here (no destructor runs
                // in the child): hand it over, then close the number.
                std::mem::forget(listener);
                if let Err(e) = sys::send_fd(a.sock, &[TAG_LISTENER], raw, a.handoff) {
                    die(a, SetupStep::SendListener, e);
                }
                sys::close(raw);
            }
            Err(e) => die(a, SetupStep::Seccomp, e),
        }
    } else if let Err(e) = sandlock_notify::install_filter(a.base, FilterFlags::EMPTY) {
        die(a, SetupStep::Seccomp, e);
    }
    for &(resource, soft, hard) in a.rlimits {
        if let Err(e) = sys::set_rlimit(resource, soft, hard) {
            die(a, SetupStep::Rlimits, e);
        }
    }
    if let Err(e) = sys::set_sigmask(a.sigmask) {
        die(a, SetupStep::Signals, e);
    }
    if let Some(user) = a.user
        && let Err(e) = sandlock_notify::install_filter(user, FilterFlags::EMPTY)
    {
        die(a, SetupStep::SeccompUser, e);
    }
    let e = sys::execve(a.exec);
    let code = if e == Errno::NOENT || e == Errno::NOTDIR {
        127
    } else {
        126
    };
    fail(a.sock, EXEC_STEP, e, 0, code)
}
