//! What a handler gets (the context of one notification) and returns.

use std::sync::Arc;

use rustix::io::Errno;
use sandlock_policy::SyscallEvent;

use crate::abi::SeccompNotif;
use crate::bounded::{self, PathBuf};
use crate::decode::{self, DecodeError};
use crate::listener::{Listener, Response};
use crate::memory::{MemError, ProcessMemory};
use crate::onbehalf::ChildFds;
use crate::sockaddr::SockAddrBuf;
use crate::verified::{Stale, Unverified, Verified};

/// Everything a handler may use for one notification. Owned (no borrow of
/// the loop), so that a held syscall can carry it to the worker thread.
#[derive(Debug)]
pub struct Ctx {
    listener: Arc<Listener>,
    notif: SeccompNotif,
    mem: ProcessMemory,
}

/// Why a handler could not read or decode what it needed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CtxError {
    /// Reading the task's memory failed.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// Decoding failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The notification went away between the read and the check.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// A system call (pidfd_open, ...) failed.
    #[error("{0}")]
    Os(Errno),
}

impl CtxError {
    /// The errno a task should get for this failure: `EFAULT` for unreadable
    /// memory (what the kernel would say), `ENAMETOOLONG`/`EINVAL` for
    /// oversized values, `EPERM` otherwise (fail closed).
    pub fn errno(&self) -> sandlock_bpf::Errno {
        use sandlock_bpf::Errno as E;
        match self {
            CtxError::Memory(MemError::Fault { .. })
            | CtxError::Decode(DecodeError::Memory {
                source: MemError::Fault { .. },
                ..
            }) => E::EFAULT,
            CtxError::Memory(MemError::TooLong { bound, .. })
            | CtxError::Decode(DecodeError::Memory {
                source: MemError::TooLong { bound, .. },
                ..
            }) => {
                if *bound == bounded::PATH_MAX - 1 {
                    E::ENAMETOOLONG
                } else {
                    E::EINVAL
                }
            }
            CtxError::Os(e) => crate::listener::errno_of(*e),
            _ => E::EPERM,
        }
    }
}

/// A second context for the same notification (with a fresh memory
/// reader), for a handler that answers later from another thread: it
/// returns [`Reply::Answered`] and moves the clone there.
impl Clone for Ctx {
    fn clone(&self) -> Ctx {
        Ctx::new(self.listener.clone(), self.notif)
    }
}

impl Ctx {
    /// A context for `notif` received on `listener`.
    pub fn new(listener: Arc<Listener>, notif: SeccompNotif) -> Ctx {
        Ctx {
            mem: ProcessMemory::new(notif.pid),
            listener,
            notif,
        }
    }

    /// The notification.
    pub fn notif(&self) -> &SeccompNotif {
        &self.notif
    }

    /// The six syscall arguments.
    pub fn args(&self) -> &[u64; 6] {
        &self.notif.data.args
    }

    /// The listener (to answer, inject fds, check ids).
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// The task's memory.
    pub fn memory(&self) -> &ProcessMemory {
        &self.mem
    }

    /// A pidfd on the task, verified to still be the notification's task.
    pub fn child(&self) -> Result<ChildFds, CtxError> {
        let child = ChildFds::open(self.notif.pid).map_err(CtxError::Os)?;
        // The pidfd pins the task: if the notification is still pending now,
        // the pid named the notifying task when it was opened.
        Unverified::new(self.notif.id, child)
            .verify(self.listener.as_ref())
            .map(Verified::into_inner)
            .map_err(CtxError::from)
    }

    /// Check that the notification is still pending and release `value`.
    pub fn verify<T>(&self, value: Unverified<T>) -> Result<Verified<T>, CtxError> {
        Ok(value.verify(self.listener.as_ref())?)
    }

    /// Read the path at argument `arg` (bounded by `PATH_MAX`).
    pub fn read_path(&self, arg: usize) -> Result<Unverified<PathBuf>, CtxError> {
        let p = bounded::read_path(&self.mem, self.arg(arg))?;
        Ok(Unverified::new(self.notif.id, p))
    }

    /// Read the sockaddr at argument `addr_arg` whose length is argument
    /// `len_arg` (bounded by `sockaddr_storage`); `None` for a NULL pointer.
    pub fn read_sockaddr(
        &self,
        addr_arg: usize,
        len_arg: usize,
    ) -> Result<Unverified<Option<SockAddrBuf>>, CtxError> {
        let addr = self.arg(addr_arg);
        let sa = if addr == 0 {
            None
        } else {
            Some(bounded::read_sockaddr(&self.mem, addr, self.arg(len_arg))?)
        };
        Ok(Unverified::new(self.notif.id, sa))
    }

    /// Decode the notification into an event and confirm it is still pending.
    pub fn decode(&self) -> Result<Verified<SyscallEvent>, CtxError> {
        let ev = decode::decode(&self.notif, &self.mem)?;
        self.verify(Unverified::new(self.notif.id, ev))
    }

    /// Answer the notification now (for handlers that answer themselves and
    /// return [`Reply::Answered`]).
    pub fn respond(&self, response: Response) -> Result<(), crate::ListenerError> {
        self.listener.respond(self.notif.id, response)
    }

    fn arg(&self, i: usize) -> u64 {
        self.notif.data.args.get(i).copied().unwrap_or(0)
    }
}

/// What to do after a verdict allowed a held syscall: runs on the worker
/// thread with the notification's context.
pub type Continuation = Box<dyn FnOnce(&Ctx) -> Reply + Send>;

/// A syscall held for the policy callback's verdict.
pub struct Hold {
    /// The event the callback judges.
    pub event: SyscallEvent,
    /// What to do if the verdict allows (`Allow` or `Audit`); a denial is
    /// answered with its errno without calling this.
    pub then: Continuation,
}

impl core::fmt::Debug for Hold {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hold")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// A handler's answer to one notification.
#[derive(Debug)]
pub enum Reply {
    /// Answer now.
    Respond(Response),
    /// The handler already answered (e.g. `add_fd` with `send`).
    Answered,
    /// Report `event` to the policy callback without waiting, and answer now.
    Report {
        /// The event.
        event: SyscallEvent,
        /// The answer.
        response: Response,
    },
    /// Wait for the policy callback's verdict (on the worker thread), then
    /// run the continuation. Without a callback the continuation runs at once
    /// as if allowed: the layer that registered the handler already decided.
    Hold(Hold),
}

impl Reply {
    /// Answer with an errno.
    pub fn errno(e: sandlock_bpf::Errno) -> Reply {
        Reply::Respond(Response::Errno(e))
    }

    /// Answer with the result of a syscall performed on the task's behalf.
    pub fn result(r: Result<i64, Errno>) -> Reply {
        Reply::Respond(Response::from_result(r))
    }

    /// Hold for a verdict, then run `then`.
    pub fn hold(event: SyscallEvent, then: impl FnOnce(&Ctx) -> Reply + Send + 'static) -> Reply {
        Reply::Hold(Hold {
            event,
            then: Box::new(then),
        })
    }
}

/// A syscall handler registered with the supervisor.
pub trait Handler: Send + Sync + 'static {
    /// Handle one notification.
    fn handle(&self, ctx: &Ctx) -> Reply;
}

impl<F: Fn(&Ctx) -> Reply + Send + Sync + 'static> Handler for F {
    fn handle(&self, ctx: &Ctx) -> Reply {
        self(ctx)
    }
}
