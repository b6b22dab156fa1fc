//! seccomp user-notification supervisor.
//!
//! The layer of sandlock that answers intercepted syscalls, usable alone:
//!
//! - [`install_filter_with_listener`] (fork-safe) installs a seccomp program
//!   and returns the listener fd; [`Listener`] wraps it: `recv`, `respond`,
//!   `id_valid`, `add_fd`, SYNC_WAKE_UP.
//! - [`ChildMemory`] reads the task's memory (`process_vm_readv`, or
//!   `/proc/PID/mem`), with bounded readers in [`bounded`]; every value read
//!   comes as [`Unverified`] until `NOTIF_ID_VALID` releases it.
//! - [`decode()`] turns a notification into a [`sandlock_policy::SyscallEvent`].
//! - [`Supervisor`] runs the receive loop, dispatching by syscall number to
//!   [`Handler`]s, with an optional policy callback ([`EventSink`]) on its own
//!   thread for held syscalls.
//! - [`onbehalf`] performs connect / sendto / sendmsg / bind / open on the
//!   task's behalf with the checked copy of its arguments (the TOCTOU rule);
//!   [`handlers`] packages them as ready handlers.
//!
//! The design, the threads and the TOCTOU rule are described in `docs/notify.md`.
#![deny(unsafe_code)]

pub mod abi;
pub mod bounded;
pub mod callback;
pub mod decode;
pub mod handlers;
pub mod install;
pub mod listener;
pub mod memory;
pub mod onbehalf;
pub mod procfs;
pub mod raw;
pub mod reply;
pub mod sockaddr;
pub mod supervisor;
mod sys;
pub mod verified;

pub use abi::{SeccompData, SeccompNotif};
pub use callback::{Decision, EventSink, VerdictSource};
pub use decode::{DecodeError, decode, decode_with};
pub use install::{FilterFlags, install_filter, install_filter_with_listener, set_no_new_privs};
pub use listener::{AddFdOptions, IdCheck, Listener, ListenerError, Response};
pub use memory::{ChildMemory, FakeMemory, MemError, ProcessMemory};
pub use procfs::{FakeProc, ProcFs, ProcView};
pub use reply::{Ctx, CtxError, Handler, Hold, Reply};
pub use sockaddr::SockAddrBuf;
pub use supervisor::{
    BuildError, EndReason, ShutdownHandle, Stats, Supervisor, SupervisorBuilder, SupervisorHandle,
    WaitMode,
};
pub use verified::{Stale, Unverified, Verified};
