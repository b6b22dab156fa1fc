//! Which sockets a sandbox may create (`socket(2)`, checked in BPF on the
//! family, type and protocol registers, all C `int`s: low 32 bits).
//!
//! The families are an allow-list: `AF_UNIX` (governed by the filesystem
//! rules and `isolate_ipc`), `AF_NETLINK` with `NETLINK_ROUTE` only (how
//! libc lists interfaces), and the IP families only when the policy has a
//! network rule. Every other family (packet, vsock, bluetooth, CAN, XDP,
//! `AF_ALG`...) reaches hardware, the hypervisor or the kernel outside the
//! IP rules, and is refused.

use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};
use sandlock_policy::Policy;

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const AF_NETLINK: u64 = 16;
const AF_PACKET: u64 = 17;
const NETLINK_ROUTE: u64 = 0;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_RAW: u64 = 3;
/// The type bits of `socket`'s type argument (`SOCK_TYPE_MASK`); the
/// others are `SOCK_NONBLOCK` / `SOCK_CLOEXEC`.
const SOCK_TYPE_MASK: u64 = 0xf;
const IPPROTO_ICMP: u64 = 1;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;
const IPPROTO_ICMPV6: u64 = 58;

/// What the policy's network rules allow, as far as sockets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetMode {
    /// No network rule: no IP socket at all.
    Off,
    /// Only TCP port rules (`net_bind`, `net_connect`), which Landlock
    /// enforces: only plain TCP sockets (UDP, SCTP, MPTCP and ICMP sockets
    /// would escape the port rules).
    TcpPorts,
    /// Host rules (`net_allow_hosts`), checked by the supervisor: TCP,
    /// UDP (unless `no_udp`) and ICMP ping sockets.
    Hosts,
}

impl NetMode {
    /// The mode of `policy`.
    pub(crate) fn of(policy: &Policy) -> NetMode {
        if !policy.net_allow_hosts().is_empty() {
            NetMode::Hosts
        } else if policy.has_network_rules() {
            NetMode::TcpPorts
        } else {
            NetMode::Off
        }
    }
}

const EPERM: Action = Action::Errno(Errno::EPERM);

fn sock(action: Action, conds: &[Cond]) -> Rule {
    Rule::named("socket", action).when_all(conds.iter().copied())
}

fn family(f: u64) -> Cond {
    Cond::eq(ArgIndex::A0, f).u32()
}

fn sock_type(t: u64) -> Cond {
    Cond::masked_eq(ArgIndex::A1, SOCK_TYPE_MASK, t).u32()
}

fn protocol(p: u64) -> Cond {
    Cond::eq(ArgIndex::A2, p).u32()
}

/// Rules that come before every other rule on `socket`: refusals.
pub(crate) fn head(_policy: &Policy) -> Vec<Rule> {
    vec![sock(
        EPERM,
        &[
            family(AF_NETLINK),
            Cond::ne(ArgIndex::A2, NETLINK_ROUTE).u32(),
        ],
    )]
}

/// Rules that come after the supervisor features' rules on `socket`: the
/// allowed shapes, then a refusal of everything else.
pub(crate) fn tail(policy: &Policy) -> Vec<Rule> {
    let allow = Action::Allow;
    let mut rules = vec![
        sock(allow, &[family(AF_UNIX)]),
        sock(allow, &[family(AF_NETLINK)]),
    ];
    let mode = NetMode::of(policy);
    for fam in [AF_INET, AF_INET6] {
        match mode {
            NetMode::Off => {}
            NetMode::TcpPorts => {
                for proto in [0, IPPROTO_TCP] {
                    rules.push(sock(
                        allow,
                        &[family(fam), sock_type(SOCK_STREAM), protocol(proto)],
                    ));
                }
            }
            NetMode::Hosts => {
                for proto in [0, IPPROTO_TCP] {
                    rules.push(sock(
                        allow,
                        &[family(fam), sock_type(SOCK_STREAM), protocol(proto)],
                    ));
                }
                if !policy.no_udp() {
                    for proto in [0, IPPROTO_UDP] {
                        rules.push(sock(
                            allow,
                            &[family(fam), sock_type(SOCK_DGRAM), protocol(proto)],
                        ));
                    }
                }
                // ICMP "ping" sockets: their destinations follow the host
                // rules like UDP's (the kernel's `ping_group_range` still
                // decides who may open one).
                let icmp = if fam == AF_INET {
                    IPPROTO_ICMP
                } else {
                    IPPROTO_ICMPV6
                };
                rules.push(sock(
                    allow,
                    &[family(fam), sock_type(SOCK_DGRAM), protocol(icmp)],
                ));
            }
        }
        if mode != NetMode::Off && !policy.no_raw_sockets() {
            rules.push(sock(allow, &[family(fam), sock_type(SOCK_RAW)]));
        }
    }
    if mode != NetMode::Off && !policy.no_raw_sockets() {
        rules.push(sock(allow, &[family(AF_PACKET)]));
    }
    rules.push(Rule::named("socket", EPERM));
    rules
}

/// The deny-list row of `socket`, for the documentation.
pub const ENTRY_REFUSED: &str = "family other than `AF_UNIX`, `AF_NETLINK` (`NETLINK_ROUTE` only) \
and, with a network rule, `AF_INET`/`AF_INET6`; with only TCP port rules, anything but plain TCP \
(`SOCK_STREAM`, protocol 0 or `IPPROTO_TCP`); with host rules, anything but TCP, UDP (not under \
`no_udp`) and ICMP ping sockets (`SOCK_DGRAM` with `IPPROTO_ICMP` / `IPPROTO_ICMPV6`); `SOCK_RAW` and \
`AF_PACKET` unless `no_raw_sockets = false` and a network rule is given";
/// Why.
pub const ENTRY_REASON: &str = "no network means no IP socket at all; raw, packet, vsock, \
bluetooth, CAN, XDP... sockets reach past the host and port rules; UDP, SCTP, MPTCP and ICMP \
escape Landlock's TCP port rules";
