//! sandlock: a lightweight process sandbox for Linux, without root.
//!
//! Three kernel mechanisms do the work: Landlock (filesystem, TCP ports,
//! abstract-unix and signal scopes), a seccomp-bpf filter (the default deny
//! list and argument checks), and a seccomp user-notification supervisor
//! for the decisions that need more than registers. This crate is the
//! facade: it re-exports the policy model ([`Policy`], [`PolicyBuilder`],
//! ...), the BPF generator ([`bpf`]) and the supervisor ([`notify`]), and
//! runs commands under a policy.
//!
//! ```no_run
//! use sandlock::{Policy, Sandbox, Stdio};
//!
//! let policy = Policy::builder()
//!     .fs_read("/usr").fs_read("/lib").fs_read("/lib64").fs_read("/etc")
//!     .fs_write("/tmp/job")
//!     .timeout(30)
//!     .build()?;
//! let result = Sandbox::new(policy)?.stdout(Stdio::Piped).run(&["ls", "/usr"])?;
//! println!("{} {}", result.code(), String::from_utf8_lossy(&result.stdout));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a command is confined
//!
//! Everything is prepared before the fork (seccomp programs, the Landlock
//! ruleset with its path descriptors, argv, environment, limits). The child
//! then makes only raw system calls: a new process group, `PR_SET_PDEATHSIG`
//! (and a check that the parent is still there), its standard descriptors,
//! personality / huge pages / CPU affinity, the working directory, the
//! parent's go-ahead (only when the parent has work to do first, such as
//! handing over the terminal), marking every descriptor above 2
//! close-on-exec, `PR_SET_NO_NEW_PRIVS`, `landlock_restrict_self`, the
//! seccomp filter with a listener (handed to the parent), resource limits,
//! the user's syscall list, `execve`. The child is created like
//! `posix_spawn` does (`CLONE_VM | CLONE_VFORK`, with `CLONE_PIDFD`) unless
//! it must wait for the go-ahead. A
//! failure at any step is reported as [`Error::Setup`] naming the step and
//! the errno: the command never runs unconfined.
//!
//! The child dies with the **thread** that forked it (`PR_SET_PDEATHSIG`
//! follows the forking thread, not the process): call [`Sandbox::spawn`] /
//! [`Sandbox::run`] from a thread that lives as long as the sandbox.
//!
//! # Deny rules and the policy callback
//!
//! `fs_deny` closes a path inside a granted tree; a policy callback
//! watches the sandbox's syscalls and changes the live policy as it runs.
//! Held syscalls (exec, the open family and the other path calls, the
//! network calls) wait for its [`Verdict`]: `Deny` answers `EPERM`,
//! `DenyWith(e)` answers `e`, `Audit` and `Allow` let the call go on. A
//! callback that panics or misses its deadline (`callback_timeout`,
//! 5 s by default) is a denial. What it changes through its
//! [`PolicyContext`] applies to the very next decision.
//!
//! ```no_run
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//!
//! use sandlock::bpf::Errno;
//! use sandlock::{Policy, Sandbox, SyscallCategory, Verdict};
//!
//! let saw_key = Arc::new(AtomicBool::new(false));
//! let flag = saw_key.clone();
//! let policy = Policy::builder()
//!     .fs_read("/usr").fs_read("/lib").fs_read("/lib64").fs_read("/etc")
//!     .fs_write("/tmp/job")
//!     .fs_deny("/tmp/job/credentials")
//!     // Only files and exec reach the callback (no memory or network events).
//!     .policy_events([SyscallCategory::File, SyscallCategory::Process])
//!     .callback_timeout("500ms")
//!     .policy_fn(move |event, ctx| {
//!         if event.syscall.starts_with("execve") && event.argv_contains("--upload") {
//!             return Verdict::DenyWith(Errno::EACCES);
//!         }
//!         if event.path_contains("/tmp/job/key") {
//!             // From now on, the output directory is closed too.
//!             flag.store(true, Ordering::Relaxed);
//!             if ctx.deny_path("/tmp/job/out").is_err() {
//!                 return Verdict::Deny;
//!             }
//!             return Verdict::Audit;
//!         }
//!         Verdict::Allow
//!     })
//!     .build()?;
//! let result = Sandbox::new(policy)?.run(&["/usr/bin/sh", "-c", "cat /tmp/job/key"])?;
//! println!("exit {}, key read: {}", result.code(), saw_key.load(Ordering::Relaxed));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/cli.md` for the command line and `docs/security.md` for what
//! is defended.
#![deny(unsafe_code)]

mod chacha;
mod child;
pub mod compat;
mod confine;
mod env;
pub mod error;
pub mod kernel;
pub mod limits;
mod newroot;
pub mod ns;
mod process;
mod procmem;
pub mod profile;
mod ruleset;
mod sandbox;
mod scoped;
pub mod seccomp;
mod seedlib;
mod spawn;
pub mod startup_arena;
mod supervise;
mod sys;
mod terminal;
mod tmpdir;
mod vdso;

pub use compat::Protection;
pub use confine::confine_current;
pub use env::{SECRET_INFIXES, SECRET_NAMES, SECRET_PREFIXES, SECRET_SUFFIXES, is_secret};
pub use error::{Error, SetupStep, errno_text};
pub use limits::{CpuCap, LimitExceeded, Mechanisms, MemoryGuard, ProcessCap};
pub use process::Child;
pub use sandbox::{RunResult, Sandbox, Stdio};
pub use supervise::AuditLog;

pub use sandlock_bpf as bpf;
pub use sandlock_notify as notify;
/// The policy model (`sandlock-policy`), for the types not re-exported at the top.
pub use sandlock_policy as policy;
pub use sandlock_policy::{
    ByteSize, Compat, CpuPercent, CpuSet, EnvVar, Limit, LivePolicy, NetHost, Policy,
    PolicyBuilder, PolicyContext, PolicyError, PolicyFn, ProfileError, SyscallCategory,
    SyscallEvent, Verdict,
};
