//! Ready-made handlers: the network calls and `openat` performed on the
//! task's behalf, exec held for a verdict, and plain reporting.
//!
//! Each takes a `check` closure for the layer above's static policy (ports,
//! hosts, denied paths): `None` lets the call go on to the policy callback
//! (if any) and then to the on-behalf call; `Some(errno)` refuses it at once.

use rustix::fs::ResolveFlags;
use sandlock_bpf::Errno;
use sandlock_policy::{SyscallCategory, SyscallEvent};

use crate::listener::{AddFdOptions, Response};
use crate::onbehalf::{self, OpenRequest, SendMsg};
use crate::procfs::{ProcFs, ProcView};
use crate::reply::{Ctx, Handler, Reply};
use crate::sockaddr::SockAddrBuf;

/// A static check on a destination address.
pub trait AddrCheck: Fn(&SockAddrBuf) -> Option<Errno> + Send + Sync + 'static {}
impl<F: Fn(&SockAddrBuf) -> Option<Errno> + Send + Sync + 'static> AddrCheck for F {}

/// Allow every address (the policy callback, if any, still decides).
pub fn any_addr(_: &SockAddrBuf) -> Option<Errno> {
    None
}

/// An event for the task of `ctx`, with its parent pid.
fn event(ctx: &Ctx, name: &str, category: SyscallCategory) -> SyscallEvent {
    let mut ev = SyscallEvent::new(name, category, ctx.notif().pid);
    ev.parent_pid = ProcFs.parent_pid(ctx.notif().pid);
    ev
}

fn net_event(ctx: &Ctx, name: &str, addr: Option<&SockAddrBuf>) -> SyscallEvent {
    let mut ev = event(ctx, name, SyscallCategory::Network);
    if let Some((host, port)) = addr.and_then(SockAddrBuf::host_port) {
        ev.host = Some(host);
        ev.port = Some(port);
    }
    ev
}

macro_rules! try_reply {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Reply::errno(e.errno()),
        }
    };
}

/// `connect` / `bind` (which share their argument layout) on the task's behalf.
fn addr_call(name: &'static str, check: impl AddrCheck, bind: bool) -> impl Handler {
    move |ctx: &Ctx| {
        let addr = try_reply!(ctx.read_sockaddr(1, 2));
        let addr = try_reply!(ctx.verify(addr));
        let Some(addr) = addr.transpose() else {
            return Reply::errno(Errno::EINVAL);
        };
        if let Some(e) = check(&addr) {
            return Reply::errno(e);
        }
        let ev = net_event(ctx, name, Some(&addr));
        let fd = ctx.args()[0] as i32;
        Reply::hold(ev, move |ctx| {
            let child = try_reply!(ctx.child());
            if bind {
                Reply::result(onbehalf::bind(&child, fd, &addr))
            } else {
                Reply::result(onbehalf::connect(&child, fd, &addr))
            }
        })
    }
}

/// `connect(fd, addr, len)`: copy the address once, check it, hold it for
/// the callback, connect a copy of the task's socket to that same copy.
pub fn connect(check: impl AddrCheck) -> impl Handler {
    addr_call("connect", check, false)
}

/// `bind(fd, addr, len)`, like [`connect`].
pub fn bind(check: impl AddrCheck) -> impl Handler {
    addr_call("bind", check, true)
}

/// `sendto(fd, buf, len, flags, addr, addrlen)`: the destination (if any) is
/// copied and checked once and the payload sent on a copy of the socket.
/// Without a destination (connected socket) the send is still performed on
/// the task's behalf: answering CONTINUE would let a sibling thread put an
/// address in after the check.
pub fn sendto(check: impl AddrCheck) -> impl Handler {
    move |ctx: &Ctx| {
        let addr = try_reply!(ctx.read_sockaddr(4, 5));
        let addr = try_reply!(ctx.verify(addr)).transpose();
        if let Some(e) = addr.as_deref().and_then(&check) {
            return Reply::errno(e);
        }
        let ev = net_event(ctx, "sendto", addr.as_deref());
        Reply::hold(ev, move |ctx| {
            let child = try_reply!(ctx.child());
            Reply::result(onbehalf::sendto(
                &child,
                ctx.memory(),
                ctx.notif(),
                addr.as_ref(),
            ))
        })
    }
}

/// `sendmsg(fd, msg, flags)`: the whole message (destination, payload,
/// control) is copied once; the destination is checked; the copy is sent.
pub fn sendmsg(check: impl AddrCheck) -> impl Handler {
    move |ctx: &Ctx| {
        let msg = onbehalf::read_msghdr(ctx.memory(), ctx.notif().id, ctx.args()[1]);
        let msg = try_reply!(ctx.verify(try_reply!(msg.map_err(crate::CtxError::from))));
        let dest: Option<&SockAddrBuf> = msg.name.as_ref();
        if let Some(e) = dest.and_then(&check) {
            return Reply::errno(e);
        }
        let ev = net_event(ctx, "sendmsg", dest);
        let (fd, flags) = (ctx.args()[0] as i32, ctx.args()[2] as i32);
        Reply::hold(ev, move |ctx| {
            let child = try_reply!(ctx.child());
            let msg: &crate::Verified<SendMsg> = &msg;
            Reply::result(onbehalf::sendmsg(&child, fd, msg, flags))
        })
    }
}

/// `sendmmsg(fd, msgvec, vlen, flags)`: every entry is copied once and the
/// call is performed on the task's behalf, entry by entry.
///
/// Only the leading run of entries with the **same destination** as the
/// first is sent in one call: it is checked once and judged by the callback
/// as one event. The call then returns that (short) count, as the kernel's
/// own `sendmmsg` may, and the task's next call starts at the first entry
/// with another destination, which is checked and judged in turn. A refused
/// first destination is the call's errno.
pub fn sendmmsg(check: impl AddrCheck) -> impl Handler {
    move |ctx: &Ctx| {
        let a = *ctx.args();
        let msgs = onbehalf::read_mmsghdr(ctx.memory(), ctx.notif().id, a[1], a[2]);
        let msgs = try_reply!(ctx.verify(try_reply!(msgs.map_err(crate::CtxError::from))));
        let Some(first) = msgs.first() else {
            return Reply::Respond(Response::Value(0));
        };
        let dest = first.name.clone();
        if let Some(e) = dest.as_ref().and_then(&check) {
            return Reply::errno(e);
        }
        let run = msgs.iter().take_while(|m| m.name == dest).count();
        let ev = net_event(ctx, "sendmmsg", dest.as_ref());
        let (fd, flags) = (a[0] as i32, a[3] as i32);
        Reply::hold(ev, move |ctx| {
            let child = try_reply!(ctx.child());
            let run = msgs.truncated(run);
            Reply::result(onbehalf::sendmmsg(&child, fd, a[1], &run, flags))
        })
    }
}

/// `open` / `openat` / `openat2` / `creat`: read the request once, check it,
/// hold it, open it on the task's behalf with `resolve` added (for example
/// `RESOLVE_NO_MAGICLINKS`) and inject the fd (`NOTIF_ADDFD` with
/// `SEND`), honouring the task's `O_CLOEXEC`.
///
/// Register it on any of those four syscalls: the layout of the arguments is
/// chosen from the notification's syscall number.
pub fn open(
    resolve: ResolveFlags,
    check: impl Fn(&OpenRequest) -> Option<Errno> + Send + Sync + 'static,
) -> impl Handler {
    move |ctx: &Ctx| {
        let name = match crate::decode::syscall_name(ctx.notif()) {
            Ok(n @ ("open" | "openat" | "openat2" | "creat")) => n,
            _ => return Reply::errno(Errno::ENOSYS),
        };
        let req = onbehalf::read_open_request(name, ctx.notif(), ctx.memory());
        let req = try_reply!(ctx.verify(try_reply!(req.map_err(crate::CtxError::from))));
        if let Some(e) = check(&req) {
            return Reply::errno(e);
        }
        let mut ev = event(ctx, name, SyscallCategory::File);
        ev.path = Some(String::from_utf8_lossy(&req.path).into_owned());
        Reply::hold(ev, move |ctx| {
            let child = try_reply!(ctx.child());
            let (fd, cloexec) = match onbehalf::open(&child, &req, resolve) {
                Ok(v) => v,
                Err(e) => return Reply::Respond(Response::from_result(Err(e))),
            };
            let opts = AddFdOptions {
                cloexec,
                at: None,
                send: true,
            };
            match ctx
                .listener()
                .add_fd(ctx.notif().id, rustix::fd::AsFd::as_fd(&fd), opts)
            {
                Ok(_) => Reply::Answered,
                Err(_) => Reply::errno(Errno::EMFILE),
            }
        })
    }
}

/// `execve` / `execveat`: decode path and argv, hold for the verdict, then
/// CONTINUE.
///
/// Why CONTINUE is acceptable here, and its limit: the kernel reads the path
/// and argv again when it execs, so a sibling thread (or a process sharing
/// the memory) could change them after the check. The verdict is therefore
/// only as strong as what the kernel enforces again: Landlock's execute
/// rights on the file (`LANDLOCK_ACCESS_FS_EXECUTE`) and the seccomp filter
/// of the new program. A decision on argv alone needs the layer above to
/// freeze the task's siblings while deciding (issue 7), or to refuse.
pub fn exec() -> impl Handler {
    |ctx: &Ctx| {
        let ev = match ctx.decode() {
            Ok(ev) => ev.into_inner(),
            Err(e) => return Reply::errno(e.errno()),
        };
        // CONTINUE after the verdict: see the function's documentation.
        Reply::hold(ev, |_| Reply::Respond(Response::Continue))
    }
}

/// Report the decoded event to the callback without waiting, and CONTINUE.
///
/// CONTINUE is safe: nothing is decided on the task's memory (the verdict of
/// a reported event is not applied), so the kernel runs the syscall exactly
/// as the filter allowed it. Undecodable notifications are not reported.
pub fn report() -> impl Handler {
    |ctx: &Ctx| match ctx.decode() {
        Ok(ev) => Reply::Report {
            event: ev.into_inner(),
            response: Response::Continue,
        },
        // No decision was taken: the same reasoning as above.
        Err(_) => Reply::Respond(Response::Continue),
    }
}
