//! The handlers of the network syscalls: copy, judge, perform on the
//! task's behalf (see the parent module for the whole picture).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use rustix::io::Errno;
use sandlock_notify::bounded::read_sockaddr;
use sandlock_notify::listener::errno_of;
use sandlock_notify::onbehalf::ChildFds;
use sandlock_notify::procfs::{ProcFs, ProcView};
use sandlock_notify::{Ctx, CtxError, Reply, Response};
use sandlock_policy::{SyscallCategory, SyscallEvent, Verdict};

use super::call::{self, MSG_FASTOPEN, Outgoing, Sends, Step};
use super::msg::{self, MMSG_BYTES, SEND_MAX};
use super::pool::Pool;
use super::scope;
use super::target::{self, Call, IpRule, Kind, SockInfo, Target};
use super::unix::{self, Base, Grants, Pinned};
use crate::supervise::Shared;

/// The handlers' state.
pub(super) struct Net {
    shared: Arc<Shared>,
    pool: Pool,
    /// pidfds of the tasks that made network calls, by tid.
    pidfds: Mutex<HashMap<u32, Arc<ChildFds>>>,
    grants: Grants,
    isolate_ipc: bool,
    callback: bool,
}

/// How an allowed call is made.
enum Plan {
    /// With the task's address bytes.
    AsGiven,
    /// With the address of a pinned unix socket.
    Unix(Pinned),
}

/// Where a connection lands on this machine's loopback interface (the
/// unspecified addresses too).
fn is_loopback(ip: std::net::IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified()
}

/// The family an address names.
fn family(addr: &[u8]) -> Option<u16> {
    addr.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]))
}

/// Early answer: an errno.
type Refusal = sandlock_bpf::Errno;

fn os(e: Errno) -> Refusal {
    errno_of(e)
}

/// What the supervisor needs to know of its copy of the socket: `SO_TYPE`,
/// `SO_PROTOCOL` for datagram sockets (ICMP or UDP), and `SO_DOMAIN`
/// unless the address names an IP family itself (`family`): an IP address
/// given to a socket of another family is refused by the kernel, so
/// judging it as the IP destination it names is safe, and saves a call
/// on every TCP connect.
fn sock_info(sock: &OwnedFd, family: Option<u16>) -> Result<SockInfo, Refusal> {
    use rustix::net::sockopt;
    let kind = match sockopt::socket_type(sock).map_err(os)?.as_raw() {
        1 => Kind::Stream,
        2 => Kind::Dgram,
        5 => Kind::SeqPacket,
        _ => Kind::Raw,
    };
    let domain = match family {
        Some(f @ (target::AF_INET | target::AF_INET6)) => f,
        _ => sockopt::socket_domain(sock).map_err(os)?.as_raw(),
    };
    let protocol = if kind == Kind::Dgram || kind == Kind::Raw {
        sockopt::socket_protocol(sock)
            .map_err(os)?
            .map_or(0, |p| p.as_raw().get() as i32)
    } else {
        0
    };
    Ok(SockInfo {
        domain,
        kind,
        protocol,
    })
}

/// The most pidfds kept (see [`Net::socket`]).
const PIDFD_CACHE: usize = 64;

impl Net {
    /// The handlers' state for one supervisor.
    pub(super) fn new(shared: Arc<Shared>, grants: Grants, callback: bool) -> Net {
        Net {
            isolate_ipc: shared.policy.isolate_ipc(),
            shared,
            pool: Pool::new(),
            pidfds: Mutex::new(HashMap::new()),
            grants,
            callback,
        }
    }

    /// A pidfd on task `tid` from the cache, if one is there.
    fn cached(&self, tid: u32) -> Option<Arc<ChildFds>> {
        let cache = self.pidfds.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&tid).cloned()
    }

    /// Keeps (or, with `None`, forgets) the pidfd of task `tid`.
    fn cache(&self, tid: u32, child: Option<&Arc<ChildFds>>) {
        let mut cache = self.pidfds.lock().unwrap_or_else(|e| e.into_inner());
        match child {
            Some(c) => {
                if cache.len() >= PIDFD_CACHE {
                    cache.clear();
                }
                cache.insert(tid, c.clone());
            }
            None => {
                cache.remove(&tid);
            }
        }
    }

    /// Our copy of the task's socket `fd`.
    ///
    /// Called after every read of the task's memory a decision depends
    /// on: one `NOTIF_ID_VALID`, after the pidfd is at hand, confirms that
    /// the notification is still pending, which releases what was read
    /// (the task did not die and its tid was not reused meanwhile) and,
    /// for a pidfd opened now, proves it names the notifying task.
    ///
    /// pidfds are kept by tid: a kept pidfd names one task for good. If
    /// that task died (and another took its tid), `pidfd_getfd` on it
    /// fails with `ESRCH` and a fresh pidfd is opened; if it lives, it is
    /// the notifying task, since two live tasks never share a tid.
    fn socket(&self, ctx: &Ctx, fd: u64) -> Result<(Arc<ChildFds>, OwnedFd), Refusal> {
        let tid = ctx.notif().pid;
        let pending = || ctx.listener().id_valid(ctx.notif().id);
        let kept = self.cached(tid);
        let mut got = None;
        if let Some(child) = kept {
            if !pending() {
                return Err(Refusal::EPERM);
            }
            match child.get_fd(fd as i32) {
                Ok(sock) => got = Some((child, sock)),
                Err(Errno::SRCH) => self.cache(tid, None),
                Err(e) => return Err(os(e)),
            }
        }
        let (child, sock) = match got {
            Some(g) => g,
            None => {
                let child = Arc::new(ChildFds::open(tid).map_err(os)?);
                if !pending() {
                    return Err(Refusal::EPERM);
                }
                self.cache(tid, Some(&child));
                let sock = child.get_fd(fd as i32).map_err(os)?;
                (child, sock)
            }
        };
        Ok((child, sock))
    }

    /// Judges `target` for the task of `ctx`.
    fn judge(&self, ctx: &Ctx, target: Target<'_>) -> Result<Plan, Refusal> {
        let pid = ctx.notif().pid;
        match target {
            Target::Peer | Target::Unjudged => Ok(Plan::AsGiven),
            Target::Refuse(e) => Err(os(e)),
            Target::Ip { ip, port, rule } => {
                let live = self.shared.live.load();
                let ok = match rule {
                    IpRule::HostAndPort => live.is_connect_allowed(pid, ip, port),
                    IpRule::HostOnly => live.is_ip_allowed(pid, ip),
                };
                if ok {
                    Ok(Plan::AsGiven)
                } else {
                    Err(Refusal::ECONNREFUSED)
                }
            }
            // isolate_ipc: the supervisor applies Landlock's scope itself.
            Target::UnixAbstract(name) if self.isolate_ipc => {
                if scope::inside(name, &self.shared.tasks) {
                    Ok(Plan::AsGiven)
                } else {
                    Err(Refusal::EPERM)
                }
            }
            Target::UnixAbstract(_) => Ok(Plan::AsGiven),
            Target::UnixPath(path) => {
                let base = Base::of(pid).map_err(os)?;
                // The tid named the notifying task when /proc/TID was read.
                if !ctx.listener().id_valid(ctx.notif().id) {
                    return Err(Refusal::EPERM);
                }
                let live = self.shared.live.load();
                let pinned = if live.has_path_rules() {
                    let denied = |p: &[u8]| live.is_path_denied(p);
                    unix::resolve(&base, path, &self.grants, Some(&denied))
                } else {
                    unix::resolve(&base, path, &self.grants, None)
                };
                pinned.map(Plan::Unix).map_err(os)
            }
        }
    }

    /// The event for the audit log and the callback (built only when one
    /// of them will see it).
    fn event(&self, ctx: &Ctx, name: &str, target: &Target<'_>) -> Option<SyscallEvent> {
        if !self.callback && self.shared.audit.is_none() {
            return None;
        }
        let pid = ctx.notif().pid;
        let mut ev = SyscallEvent::new(name, SyscallCategory::Network, pid);
        if self.callback {
            ev.parent_pid = ProcFs.parent_pid(pid);
        }
        match target {
            Target::Ip { ip, port, .. } => {
                ev.host = Some(ip.to_canonical());
                ev.port = Some(*port);
            }
            Target::UnixPath(p) => ev.path = Some(String::from_utf8_lossy(p).into_owned()),
            _ => {}
        }
        Some(ev)
    }

    /// Answers a refusal, recording it.
    fn refuse(&self, ev: Option<SyscallEvent>, e: Refusal) -> Reply {
        if let Some(mut ev) = ev {
            ev.denied = true;
            self.shared.audit(&ev, Verdict::DenyWith(e));
        }
        Reply::errno(e)
    }

    /// Runs an allowed call: at once, or after the callback's verdict.
    fn perform(
        self: &Arc<Self>,
        ctx: &Ctx,
        ev: Option<SyscallEvent>,
        op: impl FnOnce() -> Step + Send + 'static,
    ) -> Reply {
        if self.callback
            && let Some(ev) = ev
        {
            let net = self.clone();
            return Reply::hold(ev, move |ctx| net.finish(ctx, op()));
        }
        if let Some(ev) = ev {
            self.shared.audit(&ev, Verdict::Allow);
        }
        self.finish(ctx, op())
    }

    fn finish(&self, ctx: &Ctx, step: Step) -> Reply {
        match step {
            Step::Done(r) => Reply::Respond(r),
            Step::Block(f) => {
                self.pool.answer_later(ctx.clone(), f);
                Reply::Answered
            }
        }
    }

    /// The address at argument `ptr_arg` of argument `len_arg` bytes
    /// (`None` for a NULL pointer), copied once (bounded by
    /// `sockaddr_storage`); verified by [`Net::socket`].
    fn copy_addr(ctx: &Ctx, ptr_arg: usize, len_arg: usize) -> Result<Option<Vec<u8>>, Refusal> {
        let a = ctx.args();
        if a[ptr_arg] == 0 {
            return Ok(None);
        }
        let addr = read_sockaddr(ctx.memory(), a[ptr_arg], a[len_arg])
            .map_err(|e| CtxError::from(e).errno())?;
        Ok(Some(addr.as_bytes().to_vec()))
    }

    pub(super) fn connect(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let addr = match Self::copy_addr(ctx, 1, 2) {
            // connect(fd, NULL, len): the kernel copies nothing and
            // refuses a missing address, or faults on a length.
            Ok(None) if a[2] as u32 != 0 => return Reply::errno(Refusal::EFAULT),
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return Reply::errno(e),
        };
        let (_, sock) = match self.socket(ctx, a[0]) {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        // An IP address is judged without asking the socket first (the hot
        // path: one getsockopt fewer), as a TCP or UDP destination: an IP
        // address given to a socket of another family is refused by the
        // kernel. Only a refusal asks whether the socket is an ICMP or raw
        // one, which have no port rule.
        let ip_family = matches!(family(&addr), Some(target::AF_INET | target::AF_INET6));
        let mut info = SockInfo {
            domain: family(&addr).unwrap_or(0),
            kind: Kind::Stream,
            protocol: 0,
        };
        if !ip_family {
            info = match sock_info(&sock, None) {
                Ok(i) => i,
                Err(e) => return Reply::errno(e),
            };
        }
        let mut target = target::classify(&info, Call::Connect, Some(&addr));
        let mut judged = self.judge(ctx, target);
        if ip_family && judged.is_err() {
            info = match sock_info(&sock, family(&addr)) {
                Ok(i) => i,
                Err(e) => return Reply::errno(e),
            };
            target = target::classify(&info, Call::Connect, Some(&addr));
            judged = self.judge(ctx, target);
        }
        let ev = self.event(ctx, "connect", &target);
        let plan = match judged {
            Ok(p) => p,
            Err(e) => return self.refuse(ev, e),
        };
        // A loopback connect is made at once (with a bounded wait).
        let loopback = matches!(target, Target::Ip { ip, .. } if is_loopback(ip));
        self.perform(ctx, ev, move || match plan {
            Plan::AsGiven => call::connect(sock, addr, None, loopback),
            Plan::Unix(p) => {
                let addr = p.addr().as_bytes().to_vec();
                call::connect(sock, addr, Some(p), false)
            }
        })
    }

    pub(super) fn sendto(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let flags = a[3] as i32;
        let name = match Self::copy_addr(ctx, 4, 5) {
            Ok(n) => n,
            Err(e) => return Reply::errno(e),
        };
        let m = msg::MsgHdr {
            name,
            iov: vec![(a[1], a[2])],
            control: Vec::new(),
        };
        let copied = match msg::Copied::of(ctx.memory(), m, SEND_MAX) {
            Ok(c) => c,
            Err(e) => return Reply::errno(os(e)),
        };
        self.send(ctx, "sendto", a[0], flags, vec![copied], None)
    }

    pub(super) fn sendmsg(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let flags = a[2] as i32;
        let copied = msg::read_msghdr(ctx.memory(), a[1])
            .and_then(|m| msg::Copied::of(ctx.memory(), m, SEND_MAX));
        match copied {
            Ok(c) => self.send(ctx, "sendmsg", a[0], flags, vec![c], None),
            Err(e) => Reply::errno(os(e)),
        }
    }

    /// `sendmmsg`: entries are judged in order and sent up to the first
    /// refused one (whose errno is the answer when it is the first), as
    /// the kernel's own `sendmmsg` stops at the first failing entry; at
    /// most [`MMSG_BYTES`] of payload per call (the task's next call goes
    /// on from there). With a callback, one call sends only the leading
    /// entries with the same destination as the first, judged as one
    /// event; the task's next call starts at the next destination.
    pub(super) fn sendmmsg(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let flags = a[3] as i32;
        let msgs = match msg::read_mmsghdr(ctx.memory(), a[1], a[2]) {
            Ok(m) => m,
            Err(e) => return Reply::errno(os(e)),
        };
        let Some(first) = msgs.first().map(|m| m.name.clone()) else {
            return Reply::Respond(Response::Value(0));
        };
        let mut copied = Vec::new();
        let mut budget = MMSG_BYTES;
        for m in msgs {
            if (self.callback && m.name != first) || (budget < m.len() && !copied.is_empty()) {
                break;
            }
            match msg::Copied::of(ctx.memory(), m, budget.min(SEND_MAX)) {
                Ok(c) => {
                    budget = budget.saturating_sub(c.data.len() as u64);
                    copied.push(c);
                }
                Err(e) if copied.is_empty() => return Reply::errno(os(e)),
                Err(_) => break,
            }
        }
        self.send(ctx, "sendmmsg", a[0], flags, copied, Some(a[1]))
    }

    /// The common part of the three sends: our copy of the socket, each
    /// message's destination judged (a refused first one is the answer, a
    /// later one ends the batch before it), control messages rewritten,
    /// then the send on the task's behalf. `vector` is the address of a
    /// `sendmmsg` array.
    ///
    /// The socket's type and protocol are asked only when they can change
    /// the answer: a message without an address goes to the connected peer
    /// whatever the socket, and IP addresses are first judged as UDP
    /// destinations (host and port), the strictest reading; only a
    /// refusal, another family or a payload too large to copy whole asks
    /// the socket (a TCP socket ignores the address, an ICMP one has no
    /// port, a datagram must be sent whole).
    fn send(
        self: &Arc<Self>,
        ctx: &Ctx,
        name: &str,
        fd: u64,
        flags: i32,
        msgs: Vec<msg::Copied>,
        vector: Option<u64>,
    ) -> Reply {
        let fastopen = flags & MSG_FASTOPEN != 0;
        let ip = |n: &[u8]| matches!(family(n), Some(target::AF_INET | target::AF_INET6));
        let plain = msgs
            .iter()
            .all(|m| m.len <= m.data.len() as u64 && m.name.as_deref().is_none_or(ip));
        // SO_DOMAIN is not needed when every address names an IP family.
        let fam = msgs
            .iter()
            .all(|m| m.name.as_deref().is_some_and(ip))
            .then(|| {
                msgs.first()
                    .and_then(|m| m.name.as_deref())
                    .and_then(family)
            })
            .flatten();
        let (child, sock) = match self.socket(ctx, fd) {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        let judge_all = |info: &SockInfo| -> Vec<Result<Plan, Refusal>> {
            msgs.iter()
                .map(|m| {
                    let t = target::classify(info, Call::Send { fastopen }, m.name.as_deref());
                    self.judge(ctx, t)
                })
                .collect()
        };
        let udp = SockInfo {
            domain: target::AF_INET,
            kind: Kind::Dgram,
            protocol: 0,
        };
        let first = plain.then(|| judge_all(&udp));
        let (info, plans) = match first {
            Some(plans) if plans.iter().all(Result::is_ok) => (udp, plans),
            _ => match sock_info(&sock, fam) {
                Ok(info) => {
                    let plans = judge_all(&info);
                    (info, plans)
                }
                Err(e) => return Reply::errno(e),
            },
        };
        let ev = msgs.first().and_then(|m| {
            let t = target::classify(&info, Call::Send { fastopen }, m.name.as_deref());
            self.event(ctx, name, &t)
        });
        let mut outs = Vec::with_capacity(msgs.len());
        for (m, plan) in msgs.into_iter().zip(plans) {
            let out = plan.and_then(|plan| {
                // A datagram must go whole (the kernel's EMSGSIZE); a
                // stream send may be short.
                if info.kind != Kind::Stream && m.len > m.data.len() as u64 {
                    return Err(os(Errno::MSGSIZE));
                }
                outgoing(&child, m, plan)
            });
            match out {
                Ok(o) => outs.push(o),
                Err(e) if outs.is_empty() => return self.refuse(ev, e),
                Err(_) => break,
            }
        }
        let vector = vector.map(|v| (ctx.notif().pid, v));
        self.perform(ctx, ev, move || {
            Sends::new(sock, outs, flags, vector).start()
        })
    }

    /// `bind` (intercepted only with a policy callback): IP binds are
    /// judged by the TCP bind port rules (as Landlock would for the task),
    /// held for the callback, and made on the task's behalf; unix binds go
    /// on in the kernel, under Landlock.
    pub(super) fn bind(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let addr = match Self::copy_addr(ctx, 1, 2) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return Reply::errno(e),
        };
        let (sock, info) = match self
            .socket(ctx, a[0])
            .and_then(|(_, s)| sock_info(&s, None).map(|i| (s, i)))
        {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        let mut ev = self.event(ctx, "bind", &Target::Peer);
        let ip_target = target::classify(&info, Call::Connect, Some(&addr));
        if let (Some(ev), Target::Ip { ip, port, .. }) = (ev.as_mut(), ip_target) {
            ev.host = Some(ip.to_canonical());
            ev.port = Some(port);
        }
        match info.domain {
            target::AF_INET | target::AF_INET6 => {
                // The port field, whatever the family says: IPv4 also binds
                // an AF_UNSPEC address (as INADDR_ANY) to its port.
                let port = addr
                    .get(2..4)
                    .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
                let tcp = info.kind == Kind::Stream;
                if tcp && !self.shared.live.load().is_bind_allowed(port) {
                    return self.refuse(ev, Refusal::EACCES);
                }
            }
            // A unix bind creates a file, which the kernel judges again by
            // the task's Landlock domain (`MAKE_SOCK`): it goes on in the
            // kernel. The supervisor is not under that domain, so it could
            // not make it on the task's behalf. (A sibling swapping the
            // descriptor for an IP socket meanwhile gets a bind the kernel
            // judges too: Landlock's TCP bind ports; UDP binds are free.)
            _ => return Reply::Respond(Response::Continue),
        }
        self.perform(ctx, ev, move || Step::Done(call::bind(&sock, &addr)))
    }
}

/// One message made ready to send by `plan`: the name to pass, the
/// control messages rewritten for the supervisor's descriptors.
fn outgoing(child: &ChildFds, m: msg::Copied, plan: Plan) -> Result<Outgoing, Refusal> {
    let (name, pinned) = match plan {
        Plan::AsGiven => (m.name, None),
        Plan::Unix(p) => (Some(p.addr().as_bytes().to_vec()), Some(p)),
    };
    let control = msg::rewrite_control(&m.control, child).map_err(os)?;
    Ok(Outgoing {
        name,
        data: m.data,
        control,
        pinned,
    })
}
