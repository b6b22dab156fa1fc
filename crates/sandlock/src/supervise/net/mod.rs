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
//! | `bind` | with a policy callback asking for network events | for the callback's verdict (TCP ports are Landlock's; unix paths Landlock's `MAKE_SOCK`) |
//! | `open`, `openat`, `openat2` | when host names were given (and the filesystem feature does not own opens: no deny rule, no callback asking for file events) | the generated `/etc/hosts` ([`hosts`]) |
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
//! ones, under `isolate_ipc`, must be bound inside the sandbox ([`scope`]).
//! The call is then made by the supervisor on its copy of the socket with
//! its copy of the address ([`call`]): never CONTINUE, so no racing thread
//! can change what was judged. With a policy callback that asks for
//! network events, the call waits for its verdict between the two. (The socket's type is asked only when it
//! can change the answer; see [`handlers`].)
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
mod handlers;
mod hosts;
mod msg;
mod pool;
mod scope;
mod target;
mod unix;

use std::sync::Arc;

use sandlock_bpf::{Action, ArgIndex, Cond, Rule};
use sandlock_notify::{BuildError, Ctx, SupervisorBuilder};
use sandlock_policy::{NetHost, Policy, SyscallCategory};

pub use hosts::HostTable;

use self::handlers::Net;
use self::unix::Grants;
use super::{Doc, Feature, Shared};
use crate::error::Error;
use crate::seccomp::NetMode;

/// The rows of the deny-list table.
pub(crate) const DOCS: [Doc; 4] = [
    Doc {
        syscalls: &["connect", "sendmsg", "sendmmsg"],
        refused: "always intercepted",
        answer: "the supervisor: performed on the task's behalf when the destination passes \
                 (IP hosts and ports, unix paths inside the grants, abstract names bound inside \
                 the sandbox under `isolate_ipc`); else ECONNREFUSED (IP), EACCES (unix path), \
                 EPERM (abstract)",
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
                  `IPV6_2292PKTOPTIONS`, `IPV6_NEXTHOP`; `SO_ZEROCOPY`",
        answer: "EPERM; ENOPROTOOPT for `SO_ZEROCOPY`",
        reason: "source routing, routing headers and next hops send a packet to a host other \
                 than the judged destination first; zero-copy completions cannot come for \
                 sends the supervisor makes from its own copy",
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

const SOL_SOCKET: u64 = 1;
const SO_ZEROCOPY: u64 = 60;
const ENOPROTOOPT: sandlock_bpf::Errno = match sandlock_bpf::Errno::new(92) {
    Ok(e) => e,
    Err(_) => sandlock_bpf::Errno::EPERM,
};
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
    let wants = |c| policy.policy_fn().is_some() && policy.policy_events().contains(c);
    // The filesystem feature owns the open family when it has deny rules
    // or a callback asking for file events.
    let fs_opens = !policy.fs_denied().is_empty() || wants(SyscallCategory::File);
    Ok(Some(Box::new(Network {
        mode: NetMode::of(policy),
        callback: wants(SyscallCategory::Network),
        hosts_file: names && !fs_opens,
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
            // Zero-copy sends: the supervisor sends from its own copy, so
            // the completions a zero-copy sender waits for would never
            // come; the option is refused (senders fall back to copying).
            rules.push(
                Rule::named("setsockopt", Action::Errno(ENOPROTOOPT))
                    .when(Cond::eq(ArgIndex::A1, SOL_SOCKET).u32())
                    .when(Cond::eq(ArgIndex::A2, SO_ZEROCOPY).u32()),
            );
            for name in [
                IPV6_2292RTHDR,
                IPV6_2292PKTOPTIONS,
                IPV6_NEXTHOP,
                IPV6_RTHDR,
            ] {
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
        let net = Arc::new(Net::new(shared.clone(), Grants::new(paths), self.callback));
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
