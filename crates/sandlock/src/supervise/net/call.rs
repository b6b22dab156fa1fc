//! The socket calls performed on a task's behalf, on the supervisor's copy
//! of its socket, with the bytes that were judged.
//!
//! Each call is tried first where it cannot block: a connect on a
//! non-blocking socket, a send with `MSG_DONTWAIT` added. When the task
//! would have blocked (its socket is blocking and the call would wait), the
//! rest of the call moves to a pool thread ([`super::pool`]) that performs
//! it blocking, exactly as long as the task would have waited.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::net::sockopt::{Timeout, set_socket_timeout, socket_error, socket_timeout};
use sandlock_notify::{Ctx, Response};

use super::msg::{Control, MMSGHDR_LEN, MMSGHDR_SIZE};
use super::unix::Pinned;
use crate::sys;

/// `MSG_DONTWAIT`.
pub(crate) const MSG_DONTWAIT: i32 = 0x40;
/// `MSG_FASTOPEN`.
pub(crate) const MSG_FASTOPEN: i32 = 0x2000_0000;
/// `MSG_ZEROCOPY`: the kernel would send from our buffer after the call
/// returned (and we reused it); never passed on.
const MSG_ZEROCOPY: i32 = 0x0400_0000;

/// What is left to do for a call.
pub(crate) enum Step {
    /// The answer.
    Done(Response),
    /// The call must wait: finish it on a pool thread.
    Block(Box<dyn FnOnce(&Ctx) -> Response + Send>),
}

fn answer(r: Result<i64, Errno>) -> Response {
    Response::from_result(r)
}

/// Whether the open file description of `sock` is non-blocking.
fn nonblocking(sock: &OwnedFd) -> bool {
    rustix::fs::fcntl_getfl(sock).is_ok_and(|f| f.contains(OFlags::NONBLOCK))
}

/// How long a blocking loopback connect may take on the receive thread
/// before the rest of the wait moves to a pool thread (see [`connect`]).
const LOOPBACK_INLINE: Duration = Duration::from_millis(5);

/// `connect(sock, addr)`; `keep` (the pinned inode a unix address names)
/// stays open until the call is done.
///
/// A non-blocking socket connects at once (`EINPROGRESS` and all, as for
/// the task). A blocking one waits on a pool thread, except a TCP connect
/// to a loopback address (`loopback`): the handshake then completes inside
/// the call unless the listener's accept queue is full, so it is made at
/// once, with the socket's send timeout (which bounds a blocking connect)
/// cut to [`LOOPBACK_INLINE`] for the call. Should that run out, the
/// connection goes on in the kernel and a pool thread waits for its
/// outcome for the rest of the task's own timeout, as the task would have.
pub(crate) fn connect(sock: OwnedFd, addr: Vec<u8>, keep: Option<Pinned>, loopback: bool) -> Step {
    if loopback && let Ok(task_timeout) = socket_timeout(&sock, Timeout::Send) {
        let bound = task_timeout.map_or(LOOPBACK_INLINE, |t| t.min(LOOPBACK_INLINE));
        if set_socket_timeout(&sock, Timeout::Send, Some(bound)).is_ok() {
            let started = Instant::now();
            let r = sys::net::connect(sock.as_fd(), &addr);
            // Best effort: the task's value back (a failure leaves ours).
            let _ = set_socket_timeout(&sock, Timeout::Send, task_timeout);
            return match r {
                // Still connecting: the bound ran out (a blocking socket),
                // or the socket is non-blocking (the task's answer too).
                Err(Errno::INPROGRESS)
                    if task_timeout.is_none_or(|t| t > bound) && !nonblocking(&sock) =>
                {
                    let left = task_timeout.map(|t| t.saturating_sub(started.elapsed()));
                    Step::Block(Box::new(move |_| answer(wait_connected(&sock, left))))
                }
                r => Step::Done(answer(r.map(|()| 0))),
            };
        }
    }
    if nonblocking(&sock) {
        let r = answer(sys::net::connect(sock.as_fd(), &addr).map(|()| 0));
        drop(keep);
        return Step::Done(r);
    }
    Step::Block(Box::new(move |_| {
        let r = answer(sys::net::connect(sock.as_fd(), &addr).map(|()| 0));
        drop(keep);
        r
    }))
}

/// Waits (up to `left`, `None`: for ever) for a connect in progress to
/// finish; its outcome, or `EINPROGRESS` if time ran out.
fn wait_connected(sock: &OwnedFd, left: Option<Duration>) -> Result<i64, Errno> {
    let deadline = left.map(|l| Instant::now() + l);
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let rest = d.saturating_duration_since(Instant::now());
                if rest.is_zero() {
                    return Err(Errno::INPROGRESS);
                }
                Some(Timespec::try_from(rest).map_err(|_| Errno::INVAL)?)
            }
        };
        let mut fds = [PollFd::new(sock, PollFlags::OUT)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) => continue,
            Ok(_) => return socket_error(sock)?.map(|()| 0),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `bind(sock, addr)` (never blocks).
pub(crate) fn bind(sock: &OwnedFd, addr: &[u8]) -> Response {
    answer(sys::net::bind(sock.as_fd(), addr).map(|()| 0))
}

/// One message to send.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The destination bytes to pass (the task's, or the pinned unix path).
    pub(crate) name: Option<Vec<u8>>,
    /// The payload.
    pub(crate) data: Vec<u8>,
    /// The control messages, rewritten.
    pub(crate) control: Control,
    /// The pinned inode `name` names, for a unix path: open until sent.
    pub(crate) pinned: Option<Pinned>,
}

/// A `sendto` / `sendmsg` (one message) or `sendmmsg` (several).
#[derive(Debug)]
pub(crate) struct Sends {
    sock: OwnedFd,
    msgs: Vec<Outgoing>,
    flags: i32,
    /// Whether the task would block (blocking socket, no `MSG_DONTWAIT`),
    /// asked of the socket only when a send could not go at once.
    blocking: Option<bool>,
    /// `sendmmsg`: the task's array, to write each `msg_len` back.
    vector: Option<(u32, u64)>,
    /// Messages completely sent.
    done: usize,
    /// Bytes of `msgs[done]` already sent.
    partial: usize,
}

impl Sends {
    /// Sends of `msgs` on `sock` with the task's `flags`; `vector` is
    /// `(pid, address)` of a `sendmmsg` array.
    pub(crate) fn new(
        sock: OwnedFd,
        msgs: Vec<Outgoing>,
        flags: i32,
        vector: Option<(u32, u64)>,
    ) -> Sends {
        Sends {
            sock,
            msgs,
            flags: flags & !MSG_ZEROCOPY,
            blocking: (flags & MSG_DONTWAIT != 0).then_some(false),
            vector,
            done: 0,
            partial: 0,
        }
    }

    /// Whether the task's send would have waited.
    fn blocking(&mut self) -> bool {
        let sock = &self.sock;
        *self.blocking.get_or_insert_with(|| !nonblocking(sock))
    }

    /// Sends without blocking; the rest goes to a pool thread if the task
    /// would have waited.
    pub(crate) fn start(mut self) -> Step {
        match self.run(false) {
            Some(r) => Step::Done(r),
            None => Step::Block(Box::new(move |_| {
                self.run(true)
                    .unwrap_or(Response::Errno(sandlock_bpf::Errno::EAGAIN))
            })),
        }
    }

    /// The call's answer so far, after an error `e`.
    fn after_error(&self, e: Errno) -> Response {
        match self.vector {
            Some(_) if self.done > 0 => Response::Value(self.done as i64),
            None if self.partial > 0 => Response::Value(self.partial as i64),
            _ => answer(Err(e)),
        }
    }

    /// Sends what it can. `None`: it must wait (only when `!may_block`).
    fn run(&mut self, may_block: bool) -> Option<Response> {
        let flags = if may_block {
            self.flags
        } else {
            self.flags | MSG_DONTWAIT
        };
        while let Some(m) = self.msgs.get(self.done) {
            let data = m.data.get(self.partial..).unwrap_or_default();
            let control: &[u8] = if self.partial == 0 {
                &m.control.bytes
            } else {
                &[]
            };
            let r = sys::net::sendmsg(self.sock.as_fd(), m.name.as_deref(), data, control, flags);
            match r {
                Ok(n) => {
                    self.partial += n;
                    // Only a stream socket sends part of a message; a
                    // blocking one goes on until all is sent.
                    if self.partial < m.data.len() && self.blocking() {
                        continue;
                    }
                    // The pinned socket, if any, is no longer needed.
                    drop(self.msgs[self.done].pinned.take());
                    if let Some((pid, array)) = self.vector {
                        let at = array + MMSGHDR_SIZE * self.done as u64 + MMSGHDR_LEN;
                        // The message was sent: a failure to report its
                        // length (the task unmapped the array) does not
                        // undo that.
                        let _ = sys::behalf::write_memory(
                            pid,
                            at,
                            &(self.partial as u32).to_ne_bytes(),
                        );
                        self.done += 1;
                        self.partial = 0;
                    } else {
                        return Some(Response::Value(self.partial as i64));
                    }
                }
                Err(Errno::AGAIN) if !may_block && self.blocking() => return None,
                Err(Errno::INTR) if may_block => continue,
                Err(e) => return Some(self.after_error(e)),
            }
        }
        Some(Response::Value(self.done as i64))
    }
}
