//! The listener fd: receive notifications, answer them, inject fds.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::io::Errno;

use crate::abi::{self, SeccompNotif, SeccompNotifAddfd, SeccompNotifResp, SeccompNotifSizes};
use crate::sys;

/// What went wrong with the listener or the notification ABI.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ListenerError {
    /// `SECCOMP_GET_NOTIF_SIZES` failed (no seccomp user notification here).
    #[error("the kernel does not report seccomp notification sizes: {0}")]
    NoNotifSupport(Errno),
    /// The kernel's structures are not the size this crate was built for.
    #[error(
        "seccomp notification ABI mismatch: kernel has notif={kernel_notif} resp={kernel_resp} data={kernel_data} bytes, this crate 80/24/64"
    )]
    AbiMismatch {
        /// `sizeof(struct seccomp_notif)` in the kernel.
        kernel_notif: u16,
        /// `sizeof(struct seccomp_notif_resp)` in the kernel.
        kernel_resp: u16,
        /// `sizeof(struct seccomp_data)` in the kernel.
        kernel_data: u16,
    },
    /// `NOTIF_RECV` failed.
    #[error("receiving a seccomp notification failed: {0}")]
    Recv(Errno),
    /// Every task under the filter is gone: nothing more will arrive.
    #[error("the listener hung up: no task is left under the filter")]
    HungUp,
    /// `NOTIF_SEND` failed for notification `id`.
    #[error("answering seccomp notification {id:#x} failed: {errno}")]
    Send {
        /// The notification.
        id: u64,
        /// Why (ENOENT: the task is gone or its syscall was interrupted).
        errno: Errno,
    },
    /// `NOTIF_ADDFD` failed for notification `id`.
    #[error("injecting an fd for seccomp notification {id:#x} failed: {errno}")]
    AddFd {
        /// The notification.
        id: u64,
        /// Why.
        errno: Errno,
    },
    /// `NOTIF_SET_FLAGS` failed.
    #[error("setting listener flags {flags:#x} failed: {errno}")]
    SetFlags {
        /// The flags asked for.
        flags: u64,
        /// Why (EINVAL: the kernel does not know them).
        errno: Errno,
    },
}

/// The answer to one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Let the syscall run in the kernel as if it had not been intercepted.
    ///
    /// **Only safe** when the kernel enforces again whatever was decided, or
    /// when nothing was decided on the task's memory (see `docs/notify.md`).
    Continue,
    /// Fail the syscall with this errno.
    Errno(sandlock_bpf::Errno),
    /// Make the syscall return this value without running it.
    Value(i64),
}

impl Response {
    /// The kernel structure for notification `id`.
    pub fn to_raw(self, id: u64) -> SeccompNotifResp {
        match self {
            Response::Continue => SeccompNotifResp {
                id,
                val: 0,
                error: 0,
                flags: abi::USER_NOTIF_FLAG_CONTINUE,
            },
            Response::Errno(e) => SeccompNotifResp {
                id,
                val: 0,
                error: -e.raw(),
                flags: 0,
            },
            Response::Value(v) => SeccompNotifResp {
                id,
                val: v,
                error: 0,
                flags: 0,
            },
        }
    }

    /// The answer for a syscall performed on the task's behalf: its value, or
    /// its errno.
    pub fn from_result(result: Result<i64, Errno>) -> Response {
        match result {
            Ok(v) => Response::Value(v),
            Err(e) => Response::Errno(errno_of(e)),
        }
    }
}

/// A rustix errno as an errno a seccomp answer can carry (EIO if out of range).
pub fn errno_of(e: Errno) -> sandlock_bpf::Errno {
    sandlock_bpf::Errno::new(i64::from(e.raw_os_error())).unwrap_or(sandlock_bpf::Errno::EIO)
}

/// Something that can tell whether a notification is still pending: the
/// [`Listener`], or a fake in tests.
pub trait IdCheck {
    /// Whether notification `id` still waits for an answer (the task is alive
    /// and still in that syscall).
    fn id_valid(&self, id: u64) -> bool;
}

/// Options for [`Listener::add_fd`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFdOptions {
    /// Install with `O_CLOEXEC` in the target.
    pub cloexec: bool,
    /// Install at exactly this number (`SECCOMP_ADDFD_FLAG_SETFD`).
    pub at: Option<u32>,
    /// Also answer the notification with the new fd number, atomically
    /// (`SECCOMP_ADDFD_FLAG_SEND`; emulated on kernels before 5.14 by an
    /// ADDFD followed by a value answer).
    pub send: bool,
}

/// Whether the running kernel has the sizes this crate was compiled for.
///
/// Checked once per process, on the first [`Listener::from_fd`].
pub fn check_abi() -> Result<(), ListenerError> {
    static ABI: OnceLock<Result<(), ListenerError>> = OnceLock::new();
    ABI.get_or_init(|| {
        let sizes = sys::seccomp_get_notif_sizes().map_err(ListenerError::NoNotifSupport)?;
        let ours = SeccompNotifSizes {
            seccomp_notif: size_of::<SeccompNotif>() as u16,
            seccomp_notif_resp: size_of::<SeccompNotifResp>() as u16,
            seccomp_data: size_of::<abi::SeccompData>() as u16,
        };
        if sizes == ours {
            Ok(())
        } else {
            Err(ListenerError::AbiMismatch {
                kernel_notif: sizes.seccomp_notif,
                kernel_resp: sizes.seccomp_notif_resp,
                kernel_data: sizes.seccomp_data,
            })
        }
    })
    .clone()
}

/// A seccomp user-notification listener: owns the fd.
///
/// All methods take `&self`: one thread may block in [`recv`](Self::recv)
/// while others answer with [`respond`](Self::respond) or
/// [`add_fd`](Self::add_fd) (the kernel serialises them).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    /// Whether ADDFD_FLAG_SEND is still believed to work.
    addfd_send: AtomicBool,
    /// Whether SYNC_WAKE_UP is on.
    sync_wake_up: AtomicBool,
}

impl Listener {
    /// Take ownership of a listener fd (from [`crate::install_filter_with_listener`]
    /// in a child, received over a socket, or obtained elsewhere).
    ///
    /// Checks the notification ABI sizes against the kernel once per process.
    /// SYNC_WAKE_UP is not turned on here: see [`set_sync_wake_up`](Self::set_sync_wake_up).
    pub fn from_fd(fd: OwnedFd) -> Result<Listener, ListenerError> {
        check_abi()?;
        Ok(Listener {
            fd,
            addfd_send: AtomicBool::new(true),
            sync_wake_up: AtomicBool::new(false),
        })
    }

    /// Turn `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` on or off. Returns whether
    /// it is now on: `false` with `on == true` when the kernel lacks it
    /// (before 6.6), which is not an error.
    pub fn set_sync_wake_up(&self, on: bool) -> Result<bool, ListenerError> {
        let flags = if on {
            abi::USER_NOTIF_FD_SYNC_WAKE_UP
        } else {
            0
        };
        match sys::notif_set_flags(self.fd.as_fd(), flags) {
            Ok(()) => {
                self.sync_wake_up.store(on, Ordering::Relaxed);
                Ok(on)
            }
            Err(Errno::INVAL) if on => Ok(false),
            Err(errno) => Err(ListenerError::SetFlags { flags, errno }),
        }
    }

    /// Whether SYNC_WAKE_UP is on.
    pub fn sync_wake_up(&self) -> bool {
        self.sync_wake_up.load(Ordering::Relaxed)
    }

    /// Block until the next notification.
    ///
    /// [`ListenerError::HungUp`] for `ENOENT`, which the kernel returns when
    /// no task is left under the filter (Linux 6.6+) but also when the
    /// notification it woke us for was withdrawn (its task was killed):
    /// confirm with [`is_hung_up`](Self::is_hung_up) before giving up.
    /// `EINTR` is returned as `Recv(Errno::INTR)` so that a caller can check
    /// for a shutdown.
    pub fn recv(&self) -> Result<SeccompNotif, ListenerError> {
        let mut notif = SeccompNotif::default();
        self.recv_into(&mut notif)?;
        Ok(notif)
    }

    /// [`recv`](Self::recv) into a caller's buffer.
    pub fn recv_into(&self, notif: &mut SeccompNotif) -> Result<(), ListenerError> {
        match sys::notif_recv(self.fd.as_fd(), notif) {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(ListenerError::HungUp),
            Err(e) => Err(ListenerError::Recv(e)),
        }
    }

    /// Answer notification `id`.
    ///
    /// `ENOENT` (the task died or its syscall was interrupted) is an error the
    /// caller may ignore: there is nobody left to answer.
    pub fn respond(&self, id: u64, response: Response) -> Result<(), ListenerError> {
        sys::notif_send(self.fd.as_fd(), &response.to_raw(id))
            .map_err(|errno| ListenerError::Send { id, errno })
    }

    /// Whether the listener reports hang-up (`POLLHUP`): every task under the
    /// filter is gone and nothing more will arrive.
    pub fn is_hung_up(&self) -> bool {
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(_) => fds[0].revents().contains(rustix::event::PollFlags::HUP),
            Err(_) => true,
        }
    }

    /// Whether notification `id` is still pending (`NOTIF_ID_VALID`).
    pub fn id_valid(&self, id: u64) -> bool {
        sys::notif_id_valid(self.fd.as_fd(), id).is_ok()
    }

    /// Install `src` (one of ours) into the target of notification `id` and
    /// return its number there. With `opts.send`, the notification is also
    /// answered with that number (the syscall returns it), atomically where the
    /// kernel has `SECCOMP_ADDFD_FLAG_SEND`.
    pub fn add_fd(
        &self,
        id: u64,
        src: BorrowedFd<'_>,
        opts: AddFdOptions,
    ) -> Result<i32, ListenerError> {
        let raw = |flags: u32| SeccompNotifAddfd {
            id,
            flags: flags
                | if opts.at.is_some() {
                    abi::ADDFD_FLAG_SETFD
                } else {
                    0
                },
            srcfd: src.as_raw_fd() as u32,
            newfd: opts.at.unwrap_or(0),
            newfd_flags: if opts.cloexec {
                rustix::fs::OFlags::CLOEXEC.bits()
            } else {
                0
            },
        };
        let err = |errno| ListenerError::AddFd { id, errno };
        if opts.send && self.addfd_send.load(Ordering::Relaxed) {
            match sys::notif_addfd(self.fd.as_fd(), &raw(abi::ADDFD_FLAG_SEND)) {
                Err(Errno::INVAL) => self.addfd_send.store(false, Ordering::Relaxed),
                other => return other.map_err(err),
            }
        }
        let fd = sys::notif_addfd(self.fd.as_fd(), &raw(0)).map_err(err)?;
        if opts.send {
            self.respond(id, Response::Value(i64::from(fd)))?;
        }
        Ok(fd)
    }
}

impl IdCheck for Listener {
    fn id_valid(&self, id: u64) -> bool {
        Listener::id_valid(self, id)
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
