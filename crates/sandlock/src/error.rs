//! Errors: what failed, and on which value.

use std::fmt;

use rustix::io::Errno;
use sandlock_policy::{PolicyError, ProfileError};

use crate::compat::Protection;

/// Why a sandbox could not be set up or run. Every message names the value
/// at fault; the command never runs when one of these is returned by
/// [`Sandbox::spawn`](crate::Sandbox::spawn) or [`Sandbox::run`](crate::Sandbox::run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy value is invalid (the field and value are named).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A profile could not be read or parsed.
    #[error("profile {name}: {source}")]
    Profile {
        /// The profile's name or path.
        name: String,
        /// What is wrong with it.
        source: ProfileError,
    },
    /// A setting that this version of sandlock does not implement yet: it
    /// is refused rather than silently ignored.
    #[error("{setting}: not implemented yet ({issue})")]
    NotImplemented {
        /// The policy field.
        setting: &'static str,
        /// Where its implementation is tracked.
        issue: &'static str,
    },
    /// A path of the policy cannot be used (missing, unreadable, not a
    /// directory where one is needed).
    #[error("{field} {path}: {}", errno_text(*errno))]
    Path {
        /// The policy field the path was given for.
        field: &'static str,
        /// The path.
        path: String,
        /// Why it cannot be used.
        errno: Errno,
    },
    /// A value the policy accepts but this machine or this call cannot use.
    #[error("{field} {value}: {why}")]
    Invalid {
        /// The policy field or argument.
        field: &'static str,
        /// The value, as given.
        value: String,
        /// Why it cannot be used.
        why: String,
    },
    /// The kernel lacks a protection the policy asks for, and the policy is
    /// `strict` (the default), or the protection is one a sandbox never
    /// runs without (a new root).
    #[error("not enforced by this kernel: {0}{hint}", hint = unsupported_hint(*.0))]
    Unsupported(Protection),
    /// The seccomp program could not be built.
    #[error("seccomp filter: {0}")]
    Filter(#[from] sandlock_bpf::BuildError),
    /// A step of the child's confinement failed; the command did not run.
    #[error("sandbox setup failed at {step}: {}", setup_text(*step, *errno))]
    Setup {
        /// The step that failed.
        step: SetupStep,
        /// Its errno.
        errno: Errno,
    },
    /// The sandbox's first process ended before its setup completed,
    /// without reporting a failed step (it was killed).
    #[error("the sandbox ended during its setup ({0})")]
    SetupDied(String),
    /// The command was not found in `PATH`.
    #[error("{command}: command not found")]
    NotFound {
        /// The command, as given.
        command: String,
    },
    /// `execve` of the command failed (after confinement).
    #[error("{command}: {}", errno_text(*errno))]
    Exec {
        /// The command, as given.
        command: String,
        /// `execve`'s errno.
        errno: Errno,
    },
    /// The command line is empty.
    #[error("no command given")]
    NoCommand,
    /// The policy's timeout ended before the command had started (its
    /// `execve` hung, or the sandbox was stopped from outside); the
    /// sandbox was killed.
    #[error("timed out after {} before the command started", secs(*timeout))]
    TimedOut {
        /// The policy's timeout.
        timeout: std::time::Duration,
    },
    /// A system call of sandlock itself failed.
    #[error("{what}: {}", errno_text(*errno))]
    Os {
        /// What sandlock was doing.
        what: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// An I/O error of sandlock itself (temp directory, audit log, pipes).
    #[error("{what}: {}", io_text(source))]
    Io {
        /// What sandlock was doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The supervisor could not be started.
    #[error("supervisor: {0}")]
    Supervisor(String),
    /// The sandbox's namespaces could not be set up (`what` names the
    /// step: the user namespace's id maps, a mount and its target, the
    /// host name); the command did not run.
    #[error("sandbox namespaces: {what}: {}", errno_text(*errno))]
    Namespace {
        /// What failed.
        what: String,
        /// Its errno.
        errno: Errno,
    },
}

impl Error {
    /// The exit status the `sandlock` command uses for this error: 127 when
    /// the command was not found, 126 when it could not be executed, 124
    /// when the timeout ended before it started, 125 for every failure of
    /// sandlock itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound { .. } => 127,
            Error::Exec { errno, .. } if *errno == Errno::NOENT || *errno == Errno::NOTDIR => 127,
            Error::Exec { .. } => 126,
            Error::TimedOut { .. } => 124,
            _ => 125,
        }
    }

    pub(crate) fn os(what: &'static str) -> impl FnOnce(Errno) -> Error {
        move |errno| Error::Os { what, errno }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// An errno as a short lower-case message (`no such file or directory`).
pub fn errno_text(errno: Errno) -> String {
    let full = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    let text = match full.find(" (os error") {
        Some(i) => &full[..i],
        None => &full,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {}", errno.raw_os_error()),
    }
}

/// An I/O error as a short lower-case message, like [`errno_text`].
pub fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) if n > 0 && n < 4096 => errno_text(Errno::from_raw_os_error(n)),
        _ => e.to_string(),
    }
}

/// A timeout as the command line spells it (`-t 2` is "2 s").
fn secs(d: std::time::Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn setup_text(step: SetupStep, errno: Errno) -> String {
    if step == SetupStep::Seccomp && errno == Errno::BUSY {
        return "another seccomp supervisor already watches this process (EBUSY): \
                sandlock cannot run inside a seccomp-notify sandbox"
            .to_owned();
    }
    errno_text(errno)
}

/// What to do about a missing protection.
fn unsupported_hint(p: Protection) -> &'static str {
    match p {
        Protection::NewRoot => " (a new root is never skipped, even in best-effort mode)",
        Protection::MaskedPaths => " (masked paths are never skipped, even in best-effort mode)",
        _ => " (use best-effort compatibility to run without it)",
    }
}

/// One step of the child's confinement sequence, for [`Error::Setup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetupStep {
    /// `setpgid(0, 0)`.
    ProcessGroup,
    /// `PR_SET_PDEATHSIG`.
    DeathSignal,
    /// Standard input, output or error.
    Stdio,
    /// Signal mask and `SIGPIPE`.
    Signals,
    /// `personality` (`no_randomize_memory`).
    Personality,
    /// `PR_SET_THP_DISABLE` (`no_huge_pages`).
    HugePages,
    /// `sched_setaffinity` (`cpu_cores`).
    CpuAffinity,
    /// `chdir` to the working directory.
    WorkDir,
    /// Waiting for the parent's go-ahead.
    WaitGo,
    /// Marking inherited descriptors close-on-exec.
    CloseFds,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// `landlock_restrict_self`.
    Landlock,
    /// Installing the seccomp filter.
    Seccomp,
    /// Handing the seccomp listener to the parent.
    SendListener,
    /// `setrlimit` (`max_open_files`, `no_coredump`).
    Rlimits,
    /// Installing the user's syscall list (a second filter).
    SeccompUser,
    /// Writing the id maps of the sandbox's user namespace.
    UserNamespace,
    /// A mount of the sandbox's mount plan.
    Mount,
    /// `sethostname` in the sandbox's UTS namespace.
    Hostname,
    /// Forking the command from the init of the sandbox's PID namespace.
    Reaper,
    /// Entering the new root (`chroot`).
    Chroot,
}

impl SetupStep {
    /// Every step, in wire order.
    pub(crate) const ALL: [SetupStep; 21] = [
        SetupStep::ProcessGroup,
        SetupStep::DeathSignal,
        SetupStep::Stdio,
        SetupStep::Signals,
        SetupStep::Personality,
        SetupStep::HugePages,
        SetupStep::CpuAffinity,
        SetupStep::WorkDir,
        SetupStep::WaitGo,
        SetupStep::CloseFds,
        SetupStep::NoNewPrivs,
        SetupStep::Landlock,
        SetupStep::Seccomp,
        SetupStep::SendListener,
        SetupStep::Rlimits,
        SetupStep::SeccompUser,
        SetupStep::UserNamespace,
        SetupStep::Mount,
        SetupStep::Hostname,
        SetupStep::Reaper,
        SetupStep::Chroot,
    ];

    /// The step's number on the child-to-parent channel.
    pub(crate) fn code(self) -> u32 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as u32
    }

    /// The step with number `code`.
    pub(crate) fn from_code(code: u32) -> Option<SetupStep> {
        Self::ALL.get(code as usize).copied()
    }
}

impl fmt::Display for SetupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetupStep::ProcessGroup => "setpgid",
            SetupStep::DeathSignal => "PR_SET_PDEATHSIG",
            SetupStep::Stdio => "standard descriptors",
            SetupStep::Signals => "signal mask",
            SetupStep::Personality => "personality (no_randomize_memory)",
            SetupStep::HugePages => "PR_SET_THP_DISABLE (no_huge_pages)",
            SetupStep::CpuAffinity => "sched_setaffinity (cpu_cores)",
            SetupStep::WorkDir => "chdir (workdir)",
            SetupStep::WaitGo => "waiting for the parent",
            SetupStep::CloseFds => "close_range",
            SetupStep::NoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            SetupStep::Landlock => "landlock_restrict_self",
            SetupStep::Seccomp => "seccomp filter",
            SetupStep::SendListener => "handing over the seccomp listener",
            SetupStep::Rlimits => "setrlimit (max_open_files, no_coredump)",
            SetupStep::SeccompUser => "seccomp filter of the syscall list",
            SetupStep::UserNamespace => "the user namespace's id maps",
            SetupStep::Mount => "a mount of the sandbox's mount namespace",
            SetupStep::Hostname => "sethostname",
            SetupStep::Reaper => "forking the command from the PID namespace's init",
            SetupStep::Chroot => "chroot (entering the new root)",
        })
    }
}
