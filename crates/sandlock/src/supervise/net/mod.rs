//! The network rules: which IP hosts a sandbox reaches, and which named
//! unix sockets.
//!
//! # What is intercepted, and when
//!
//! | syscall | sent to the supervisor | why |
//! |---|---|---|
//! | `connect` | always | the destination is in memory; a unix socket path must be inside the grants in every mode |
//! | `sendto` | when the address pointer is not NULL | a plain `send()` (NULL address) goes to the connected peer, judged at `connect` |
//! | `sendmsg`, `sendmmsg` | always | the destination is in memory, and only the socket's type says whether it counts |
//! | `bind` | with a policy callback | for the callback's verdict (TCP ports are Landlock's; unix paths Landlock's `MAKE_SOCK`) |
//! | `open`, `openat`, `openat2` | when host names were given (and no deny rule or callback owns opens) | the generated `/etc/hosts` ([`hosts`]) |
//!
//! The filter cannot tell the socket behind a descriptor, so `connect` is
//! intercepted in every mode (with only TCP port rules too: a unix path
//! must be checked, and the descriptor could be either). `socket()` itself
//! is judged in BPF (`seccomp/socket.rs`): no IP socket without a network
//! rule, only TCP with port rules only, TCP, UDP (unless `no_udp`) and ICMP
//! ping sockets with host rules.
//!
//! # How a call is judged
//!
//! The handler copies the address once (bounded), checks that the
//! notification is still pending, takes its own copy of the task's socket
//! (`pidfd_getfd`: the same open file, whose family, type and protocol no
//! sibling can change), classifies the destination the way that socket's
//! protocol will use it ([`target`]), and judges it against the live
//! policy (global set and per-task override): IP hosts with
//! [`LiveState::is_connect_allowed`](sandlock_policy::LiveState::is_connect_allowed)
//! (host and TCP/UDP port rules) or `is_ip_allowed` (ICMP, raw: no port);
//! named unix sockets against the filesystem grants ([`unix`]); abstract
//! ones against `isolate_ipc`. The call is then made by the supervisor on
//! its copy of the socket with its copy of the address ([`call`]): never
//! CONTINUE, so no racing thread can change what was judged. With a policy
//! callback, the call waits for its verdict between the two.
//!
//! A refused IP destination gets `ECONNREFUSED`, as a closed port would
//! (for datagrams too): programs move on to their next address at once.
//! A unix socket outside the grants gets `EACCES` (a file there would), an
//! abstract one under `isolate_ipc` `EPERM` (as Landlock's scope answers).
//!
//! Port rules keep applying to calls made on the task's behalf (the
//! supervisor is not under the task's Landlock domain): they are checked
//! here, from the same policy.

mod call;
mod hosts;
mod msg;
mod pool;
mod target;
mod unix;

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::io::Errno;
use sandlock_bpf::{Action, ArgIndex, Cond, Rule};
use sandlock_notify::listener::errno_of;
use sandlock_notify::procfs::{ProcFs, ProcView};
use sandlock_notify::{BuildError, Ctx, Reply, Response, SupervisorBuilder};
use sandlock_policy::{NetHost, Policy, SyscallCategory, SyscallEvent, Verdict};

pub use hosts::HostTable;

use self::call::{MSG_FASTOPEN, Outgoing, Sends, Step};
use self::msg::{Control, DGRAM_MAX, MMSG_BYTES, STREAM_CHUNK};
use self::pool::Pool;
use self::target::{Call, IpRule, Kind, SockInfo, Target};
use self::unix::{Base, Grants, Pinned};
use super::{Doc, Feature, Shared};
use crate::error::Error;
use crate::seccomp::NetMode;

/// The rows of the deny-list table.
pub(crate) const DOCS: [Doc; 4] = [
    Doc {
        syscalls: &["connect", "sendmsg", "sendmmsg"],
        refused: "always intercepted",
        answer: "the supervisor: performed on the task's behalf when the destination passes \
                 (IP hosts and ports, unix paths inside the grants, abstract names unless \
                 `isolate_ipc`); else ECONNREFUSED (IP), EACCES (unix path), EPERM (abstract)",
        reason: "the destination is in memory: a racing thread could change it after a check, \
                 and Landlock does not govern connecting to a named unix socket",
    },
    Doc {
        syscalls: &["sendto"],
        refused: "intercepted when an address is given",
        answer: "as `connect`",
        reason: "a datagram (or `MSG_FASTOPEN`) names its own destination",
    },
    Doc {
        syscalls: &["setsockopt"],
        refused: "with a network rule: `IP_OPTIONS`, `IPV6_RTHDR`, `IPV6_2292RTHDR`, \
                  `IPV6_2292PKTOPTIONS`, `IPV6_NEXTHOP`",
        answer: "EPERM",
        reason: "source routing, routing headers and next hops send a packet to a host other \
                 than the judged destination first",
    },
    Doc {
        syscalls: &["open", "openat", "openat2"],
        refused: "intercepted only when host names were given (and no deny rule or callback)",
        answer: "`/etc/hosts` for reading: a sealed memfd with the allowed names; \
                 anything else: CONTINUE",
        reason: "the sandbox's own name lookups find the allowed addresses (a convenience, \
                 not a boundary)",
    },
];

const SOL_IP: u64 = 0;
const IP_OPTIONS: u64 = 4;
const SOL_IPV6: u64 = 41;
const IPV6_2292RTHDR: u64 = 5;
const IPV6_2292PKTOPTIONS: u64 = 6;
const IPV6_NEXTHOP: u64 = 9;
const IPV6_RTHDR: u64 = 57;

/// The feature: always on (unix sockets are checked in every mode).
pub(crate) fn feature(policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    let names = policy
        .net_allow_hosts()
        .iter()
        .any(|h| matches!(h, NetHost::Name(_)));
    Ok(Some(Box::new(Network {
        mode: NetMode::of(policy),
        callback: policy.policy_fn().is_some(),
        hosts_file: names && policy.fs_denied().is_empty() && policy.policy_fn().is_none(),
    })))
}

struct Network {
    mode: NetMode,
    callback: bool,
    hosts_file: bool,
}

impl Feature for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        let mut rules = Vec::new();
        if self.mode != NetMode::Off {
            let eperm = Action::Errno(sandlock_bpf::Errno::EPERM);
            let opt = |level: u64, name: u64| {
                Rule::named("setsockopt", eperm)
                    .when(Cond::eq(ArgIndex::A1, level).u32())
                    .when(Cond::eq(ArgIndex::A2, name).u32())
            };
            rules.push(opt(SOL_IP, IP_OPTIONS));
            for name in [IPV6_2292RTHDR, IPV6_2292PKTOPTIONS, IPV6_NEXTHOP, IPV6_RTHDR] {
                rules.push(opt(SOL_IPV6, name));
            }
        }
        if !supervised {
            // A process confining itself has no supervisor: host rules are
            // refused before (`confine_current`), and named unix sockets
            // stay unchecked (documented in docs/security.md).
            return rules;
        }
        let notif = Action::UserNotif;
        rules.push(Rule::named("connect", notif));
        rules.push(Rule::named("sendto", notif).when(Cond::ne(ArgIndex::A4, 0)));
        rules.push(Rule::named("sendmsg", notif));
        rules.push(Rule::named("sendmmsg", notif));
        if self.callback {
            rules.push(Rule::named("bind", notif));
        }
        if self.hosts_file {
            for name in ["open", "openat", "openat2"] {
                rules.push(Rule::named(name, notif));
            }
        }
        rules
    }

    fn register(
        &self,
        sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        let policy = &shared.policy;
        let mut paths: Vec<&std::path::Path> = policy
            .fs_readable()
            .iter()
            .chain(policy.fs_writable())
            .map(|p| p.as_path())
            .collect();
        if let Some(tmp) = &shared.private_tmp {
            paths.push(tmp);
        }
        let net = Arc::new(Net {
            shared: shared.clone(),
            pool: Pool::new(),
            grants: Grants::new(paths),
            isolate_ipc: policy.isolate_ipc(),
            callback: self.callback,
        });
        let n = net.clone();
        let mut sup = sup.handle_name("connect", move |ctx: &Ctx| n.connect(ctx))?;
        let n = net.clone();
        sup = sup.handle_name("sendto", move |ctx: &Ctx| n.sendto(ctx))?;
        let n = net.clone();
        sup = sup.handle_name("sendmsg", move |ctx: &Ctx| n.sendmsg(ctx))?;
        let n = net.clone();
        sup = sup.handle_name("sendmmsg", move |ctx: &Ctx| n.sendmmsg(ctx))?;
        if self.callback {
            let n = net.clone();
            sup = sup.handle_name("bind", move |ctx: &Ctx| n.bind(ctx))?;
        }
        if self.hosts_file && !shared.hosts.is_empty() {
            let file = Arc::new(
                hosts::HostsFile::new(&shared.hosts)
                    .map_err(|e| BuildError::Start(format!("/etc/hosts memfd: {e}")))?,
            );
            for name in ["open", "openat", "openat2"] {
                let Some(nr) = sandlock_bpf::Arch::native().and_then(|a| a.syscall_nr(name)) else {
                    continue;
                };
                let f = file.clone();
                sup = sup.handle(nr, move |ctx: &Ctx| hosts::on_open(ctx, &f))?;
            }
        }
        Ok(sup)
    }
}

/// The handlers' state.
struct Net {
    shared: Arc<Shared>,
    pool: Pool,
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

/// Early answer: an errno.
type Refusal = sandlock_bpf::Errno;

fn os(e: Errno) -> Refusal {
    errno_of(e)
}

/// `SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL` of our copy of the socket.
fn sock_info(sock: &OwnedFd) -> Result<SockInfo, Refusal> {
    use rustix::net::sockopt;
    let domain = sockopt::socket_domain(sock).map_err(os)?.as_raw();
    let kind = match sockopt::socket_type(sock).map_err(os)?.as_raw() {
        1 => Kind::Stream,
        2 => Kind::Dgram,
        5 => Kind::SeqPacket,
        _ => Kind::Raw,
    };
    let protocol = sockopt::socket_protocol(sock)
        .map_err(os)?
        .map_or(0, |p| p.as_raw().get() as i32);
    Ok(SockInfo {
        domain,
        kind,
        protocol,
    })
}

impl Net {
    /// Our copy of the task's socket `fd`, with its description.
    fn socket(&self, ctx: &Ctx, fd: u64) -> Result<(sandlock_notify::onbehalf::ChildFds, OwnedFd, SockInfo), Refusal> {
        let child = ctx.child().map_err(|e| e.errno())?;
        let sock = child.get_fd(fd as i32).map_err(os)?;
        let info = sock_info(&sock)?;
        Ok((child, sock, info))
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
            Target::UnixAbstract if self.isolate_ipc => Err(Refusal::EPERM),
            Target::UnixAbstract => Ok(Plan::AsGiven),
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

    /// The address at `ptr` of `len` bytes (`None` for a NULL pointer),
    /// copied once and verified.
    fn read_addr(ctx: &Ctx, ptr_arg: usize, len_arg: usize) -> Result<Option<Vec<u8>>, Refusal> {
        let a = ctx.args();
        if a[ptr_arg] == 0 {
            return Ok(None);
        }
        let addr = ctx.read_sockaddr(ptr_arg, len_arg).map_err(|e| e.errno())?;
        let addr = ctx.verify(addr).map_err(|e| e.errno())?.into_inner();
        Ok(addr.map(|a| a.as_bytes().to_vec()))
    }

    fn connect(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let addr = match Self::read_addr(ctx, 1, 2) {
            // connect(fd, NULL, len): the kernel copies nothing and
            // refuses a missing address, or faults on a length.
            Ok(None) if a[2] as u32 != 0 => return Reply::errno(Refusal::EFAULT),
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return Reply::errno(e),
        };
        let (_, sock, info) = match self.socket(ctx, a[0]) {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        let target = target::classify(&info, Call::Connect, Some(&addr));
        let ev = self.event(ctx, "connect", &target);
        let plan = match self.judge(ctx, target) {
            Ok(p) => p,
            Err(e) => return self.refuse(ev, e),
        };
        self.perform(ctx, ev, move || match plan {
            Plan::AsGiven => call::connect(sock, addr, None),
            Plan::Unix(p) => {
                let addr = p.addr().as_bytes().to_vec();
                call::connect(sock, addr, Some(p))
            }
        })
    }

    /// Judges one message's destination: its plan, and the name to pass.
    fn destination(
        &self,
        ctx: &Ctx,
        info: &SockInfo,
        flags: i32,
        name: Option<Vec<u8>>,
    ) -> Result<(Option<Vec<u8>>, Option<Pinned>), Refusal> {
        let fastopen = flags & MSG_FASTOPEN != 0;
        let target = target::classify(info, Call::Send { fastopen }, name.as_deref());
        match self.judge(ctx, target)? {
            Plan::AsGiven => Ok((name, None)),
            Plan::Unix(p) => Ok((Some(p.addr().as_bytes().to_vec()), Some(p))),
        }
    }

    /// The most payload to copy for one message of `len` bytes.
    fn payload_limit(info: &SockInfo, len: u64) -> Result<u64, Refusal> {
        if info.kind == Kind::Stream {
            Ok(len.min(STREAM_CHUNK))
        } else if len > DGRAM_MAX {
            Err(os(Errno::MSGSIZE))
        } else {
            Ok(len)
        }
    }

    fn sendto(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let flags = a[3] as i32;
        let name = match Self::read_addr(ctx, 4, 5) {
            Ok(n) => n,
            Err(e) => return Reply::errno(e),
        };
        let (_, sock, info) = match self.socket(ctx, a[0]) {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        let fastopen = flags & MSG_FASTOPEN != 0;
        let ev = {
            let t = target::classify(&info, Call::Send { fastopen }, name.as_deref());
            self.event(ctx, "sendto", &t)
        };
        let (name, pinned) = match self.destination(ctx, &info, flags, name) {
            Ok(d) => d,
            Err(e) => return self.refuse(ev, e),
        };
        let limit = match Self::payload_limit(&info, a[2]) {
            Ok(l) => l,
            Err(e) => return Reply::errno(e),
        };
        let data = match msg::gather(ctx.memory(), &[(a[1], a[2])], limit) {
            Ok(d) => d,
            Err(e) => return Reply::errno(os(e)),
        };
        let out = Outgoing {
            name,
            data,
            control: Control::default(),
            pinned,
        };
        let stream = info.kind == Kind::Stream;
        self.perform(ctx, ev, move || Sends::new(sock, vec![out], flags, stream, None).start())
    }

    /// One `msghdr` made ready to send: destination judged, payload and
    /// control copied.
    fn outgoing(
        &self,
        ctx: &Ctx,
        child: &sandlock_notify::onbehalf::ChildFds,
        info: &SockInfo,
        flags: i32,
        m: msg::MsgHdr,
        budget: u64,
    ) -> Result<Outgoing, Refusal> {
        let len = m.len();
        let (name, pinned) = self.destination(ctx, info, flags, m.name)?;
        let limit = Self::payload_limit(info, len)?.min(budget.max(1));
        let data = msg::gather(ctx.memory(), &m.iov, limit).map_err(os)?;
        let control = msg::rewrite_control(&m.control, child).map_err(os)?;
        Ok(Outgoing {
            name,
            data,
            control,
            pinned,
        })
    }

    fn sendmsg(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let flags = a[2] as i32;
        let m = match msg::read_msghdr(ctx.memory(), a[1]) {
            Ok(m) => m,
            Err(e) => return Reply::errno(os(e)),
        };
        if !ctx.listener().id_valid(ctx.notif().id) {
            return Reply::errno(Refusal::EPERM);
        }
        let (child, sock, info) = match self.socket(ctx, a[0]) {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        let fastopen = flags & MSG_FASTOPEN != 0;
        let ev = {
            let t = target::classify(&info, Call::Send { fastopen }, m.name.as_deref());
            self.event(ctx, "sendmsg", &t)
        };
        let out = match self.outgoing(ctx, &child, &info, flags, m, u64::MAX) {
            Ok(o) => o,
            Err(e) => return self.refuse(ev, e),
        };
        let stream = info.kind == Kind::Stream;
        self.perform(ctx, ev, move || Sends::new(sock, vec![out], flags, stream, None).start())
    }

    /// `sendmmsg`: entries are judged in order and sent up to the first
    /// refused one (whose errno is the answer when it is the first), as
    /// the kernel's own `sendmmsg` stops at the first failing entry. With
    /// a callback, one call sends only the leading entries with the same
    /// destination as the first, judged as one event; the task's next call
    /// starts at the next destination.
    fn sendmmsg(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let flags = a[3] as i32;
        let msgs = match msg::read_mmsghdr(ctx.memory(), a[1], a[2]) {
            Ok(m) => m,
            Err(e) => return Reply::errno(os(e)),
        };
        if !ctx.listener().id_valid(ctx.notif().id) {
            return Reply::errno(Refusal::EPERM);
        }
        if msgs.is_empty() {
            return Reply::Respond(Response::Value(0));
        }
        let (child, sock, info) = match self.socket(ctx, a[0]) {
            Ok(s) => s,
            Err(e) => return Reply::errno(e),
        };
        let fastopen = flags & MSG_FASTOPEN != 0;
        let first = msgs[0].name.clone();
        let ev = {
            let t = target::classify(&info, Call::Send { fastopen }, first.as_deref());
            self.event(ctx, "sendmmsg", &t)
        };
        let mut outs = Vec::new();
        let mut budget = MMSG_BYTES;
        for m in msgs {
            if self.callback && m.name != first {
                break;
            }
            if budget == 0 {
                break;
            }
            match self.outgoing(ctx, &child, &info, flags, m, budget) {
                Ok(o) => {
                    budget = budget.saturating_sub(o.data.len() as u64);
                    outs.push(o);
                }
                Err(e) if outs.is_empty() => return self.refuse(ev, e),
                Err(_) => break,
            }
        }
        let stream = info.kind == Kind::Stream;
        let vector = Some((ctx.notif().pid, a[1]));
        self.perform(ctx, ev, move || Sends::new(sock, outs, flags, stream, vector).start())
    }

    /// `bind` (intercepted only with a policy callback): IP binds are
    /// judged by the TCP bind port rules (as Landlock would for the task),
    /// held for the callback, and made on the task's behalf; unix binds go
    /// on in the kernel, under Landlock.
    fn bind(self: &Arc<Self>, ctx: &Ctx) -> Reply {
        let a = *ctx.args();
        let addr = match Self::read_addr(ctx, 1, 2) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return Reply::errno(e),
        };
        let (_, sock, info) = match self.socket(ctx, a[0]) {
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
                let port = addr.get(2..4).map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
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
