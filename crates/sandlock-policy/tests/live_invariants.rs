//! The live policy's invariants, each a proptest over random sequences of
//! `PolicyContext` calls (at least 256 sequences of up to 64 calls; raise
//! with `PROPTEST_CASES`).
//!
//! 1. the live policy is always within the ceiling;
//! 2. a restrict never widens;
//! 3. once a field is restricted, every later grant of it fails and the value stays;
//! 4. a per-PID override is never wider than the global set when it is checked;
//! 5. `deny_path` matches whole components after normalisation, and
//!    `allow_path` lifts only a dynamic denial.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;

use proptest::prelude::*;
use sandlock_policy::live::LiveField;
use sandlock_policy::{
    ByteSize, Cidr, ContextError, Grants, HostAccess, IpSet, Limit, LivePolicy, LiveState, Policy,
    PolicyBuilder,
};

const PIDS: [u32; 4] = [1, 2, 3, 4];

/// Every address the tests ask about: inside and outside the ceiling, in
/// both families, and IPv4-mapped forms.
fn universe() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = (0u8..40)
        .map(|h| IpAddr::V4(Ipv4Addr::new(10, 0, 0, h)))
        .collect();
    v.extend((0u16..12).map(|h| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, h))));
    v.extend(
        (0u8..40)
            .step_by(3)
            .map(|h| IpAddr::V6(Ipv4Addr::new(10, 0, 0, h).to_ipv6_mapped())),
    );
    v
}

/// Paths the tests ask about, normalised or not.
const QUERIES: [&str; 16] = [
    "/",
    "/a",
    "/a/b",
    "/a/b/c",
    "/ab",
    "/ab/a",
    "/b",
    "/b/a",
    "/a/./b",
    "/a/../b",
    "/a/b/..",
    "/x/../a/b/c",
    "/a//b",
    "/a/b/",
    "a/b",
    "/..",
];

fn arb_cidr() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        (0u8..40, 29u8..=32).prop_map(|(h, p)| {
            let a = u32::from(Ipv4Addr::new(10, 0, 0, h)) & (u32::MAX << (32 - p));
            Cidr::new(IpAddr::V4(a.into()), p).unwrap()
        }),
        (0u16..12).prop_map(|h| Cidr::host(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, h)))),
        (0u8..40).prop_map(|h| Cidr::host(IpAddr::V6(Ipv4Addr::new(10, 0, 0, h).to_ipv6_mapped()))),
    ]
}

fn arb_ips() -> impl Strategy<Value = Vec<Cidr>> {
    prop::collection::vec(arb_cidr(), 0..5)
}

fn arb_mem() -> impl Strategy<Value = Limit<ByteSize>> {
    prop_oneof![1 => Just(Limit::Unlimited), 4 => (1u64..=8).prop_map(|m| Limit::Limited(ByteSize::mib(m).unwrap()))]
}

fn arb_procs() -> impl Strategy<Value = Limit<NonZeroU32>> {
    prop_oneof![1 => Just(Limit::Unlimited), 4 => (1u32..=8).prop_map(|n| Limit::Limited(NonZeroU32::new(n).unwrap()))]
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(&["a", "b", "ab", ".", "..", ""][..]),
        1..4,
    )
    .prop_map(|c| format!("/{}", c.join("/")))
}

#[derive(Clone, Debug)]
enum Op {
    GrantNet(Vec<Cidr>),
    RestrictNet(Vec<Cidr>),
    GrantMem(Limit<ByteSize>),
    RestrictMem(Limit<ByteSize>),
    GrantProcs(Limit<NonZeroU32>),
    RestrictProcs(Limit<NonZeroU32>),
    RestrictPid(u32, Vec<Cidr>),
    ClearPid(u32),
    DenyPath(String),
    AllowPath(String),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let pid = prop::sample::select(&PIDS[..]);
    prop_oneof![
        3 => arb_ips().prop_map(Op::GrantNet),
        2 => arb_ips().prop_map(Op::RestrictNet),
        2 => arb_mem().prop_map(Op::GrantMem),
        1 => arb_mem().prop_map(Op::RestrictMem),
        2 => arb_procs().prop_map(Op::GrantProcs),
        1 => arb_procs().prop_map(Op::RestrictProcs),
        2 => (pid.clone(), arb_ips()).prop_map(|(p, ips)| Op::RestrictPid(p, ips)),
        1 => pid.prop_map(Op::ClearPid),
        2 => arb_path().prop_map(Op::DenyPath),
        2 => arb_path().prop_map(Op::AllowPath),
    ]
}

/// A ceiling, a (narrower) start, static deny rules and a sequence of calls.
#[derive(Clone, Debug)]
struct Case {
    policy: Policy,
    start: Option<(Vec<Cidr>, Limit<ByteSize>, Limit<NonZeroU32>)>,
    ops: Vec<Op>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        arb_mem(),
        arb_procs(),
        prop::collection::vec(arb_path(), 0..3),
        prop::option::of((arb_ips(), arb_mem(), arb_procs())),
        prop::collection::vec(arb_op(), 1..=64),
    )
        .prop_map(|(ports_only, mem, procs, denied, start, ops)| {
            let mut b: PolicyBuilder = Policy::builder().max_memory(mem).max_processes(procs);
            b = if ports_only {
                b.net_connect(443)
            } else {
                b.net_allow_host("10.0.0.0/28").net_allow_host("fd00::/126")
            };
            b = denied.iter().fold(b, |b, p| b.fs_deny(p));
            Case {
                policy: b.build().unwrap(),
                start,
                ops,
            }
        })
}

/// The live policy of a case, with its start clamped into the ceiling.
fn build(case: &Case) -> LivePolicy {
    let live = LivePolicy::new(&case.policy).unwrap();
    let Some((ips, mem, procs)) = &case.start else {
        return live;
    };
    let ceiling = live.ceiling().clone();
    let set: IpSet = ips.iter().copied().collect();
    let start = Grants::new(
        ceiling.hosts().intersection(&set),
        (*mem).min(ceiling.max_memory()),
        (*procs).min(ceiling.max_processes()),
    );
    live.with_start(start).unwrap()
}

/// One step: the state before, the call, its result, the state after.
struct Step<'a> {
    before: &'a LiveState,
    op: &'a Op,
    result: Result<(), ContextError>,
    after: &'a LiveState,
    ceiling: &'a Grants,
}

/// Runs a case, handing every step to `check`.
fn run(
    case: &Case,
    mut check: impl FnMut(&Step) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let live = build(case);
    let mut ctx = live.context();
    for op in &case.ops {
        let before = live.load_full();
        let result = match op.clone() {
            Op::GrantNet(ips) => ctx.grant_network(ips),
            Op::RestrictNet(ips) => {
                ctx.restrict_network(ips);
                Ok(())
            }
            Op::GrantMem(m) => ctx.grant_max_memory(m),
            Op::RestrictMem(m) => {
                ctx.restrict_max_memory(m);
                Ok(())
            }
            Op::GrantProcs(n) => ctx.grant_max_processes(n),
            Op::RestrictProcs(n) => {
                ctx.restrict_max_processes(n);
                Ok(())
            }
            Op::RestrictPid(pid, ips) => {
                ctx.restrict_pid_network(pid, ips);
                Ok(())
            }
            Op::ClearPid(pid) => {
                ctx.clear_pid_override(pid);
                Ok(())
            }
            Op::DenyPath(p) => ctx.deny_path(p),
            Op::AllowPath(p) => ctx.allow_path(p),
        };
        // The change is visible to the very next read.
        let after = live.load_full();
        prop_assert_eq!(after.version() > before.version(), result.is_ok());
        check(&Step {
            before: &before,
            op,
            result,
            after: &after,
            ceiling: live.ceiling(),
        })?;
    }
    Ok(())
}

fn allowed(hosts: &HostAccess) -> Vec<bool> {
    universe()
        .into_iter()
        .map(|ip| hosts.contains(ip))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn live_is_always_within_the_ceiling(case in arb_case()) {
        run(&case, |s| {
            prop_assert!(s.after.grants().is_within(s.ceiling));
            for ip in universe() {
                prop_assert!(!s.after.hosts().contains(ip) || s.ceiling.hosts().contains(ip), "{ip} above the ceiling");
            }
            prop_assert!(s.after.max_memory() <= s.ceiling.max_memory());
            prop_assert!(s.after.max_processes() <= s.ceiling.max_processes());
            if !s.ceiling.max_memory().is_unlimited() {
                prop_assert!(!s.after.max_memory().is_unlimited());
            }
            if !s.ceiling.max_processes().is_unlimited() {
                prop_assert!(!s.after.max_processes().is_unlimited());
            }
            Ok(())
        })?;
    }

    #[test]
    fn restrict_never_widens(case in arb_case()) {
        run(&case, |s| {
            match s.op {
                Op::RestrictNet(ips) => {
                    let keep: IpSet = ips.iter().copied().collect();
                    for ip in universe() {
                        let expect = s.before.hosts().contains(ip) && keep.contains(ip);
                        prop_assert_eq!(s.after.hosts().contains(ip), expect, "{}", ip);
                    }
                }
                Op::RestrictMem(m) => prop_assert_eq!(s.after.max_memory(), s.before.max_memory().min(*m)),
                Op::RestrictProcs(n) => prop_assert_eq!(s.after.max_processes(), s.before.max_processes().min(*n)),
                Op::RestrictPid(pid, ips) => {
                    let keep: IpSet = ips.iter().copied().collect();
                    for ip in universe() {
                        let expect = s.before.is_ip_allowed(*pid, ip) && keep.contains(ip);
                        prop_assert_eq!(s.after.is_ip_allowed(*pid, ip), expect, "{}", ip);
                    }
                }
                _ => {}
            }
            if matches!(s.op, Op::RestrictNet(_) | Op::RestrictMem(_) | Op::RestrictProcs(_) | Op::RestrictPid(..)) {
                prop_assert!(s.result.is_ok());
                prop_assert!(s.after.grants().is_within(s.before.grants()));
            }
            Ok(())
        })?;
    }

    #[test]
    fn restriction_is_permanent(case in arb_case()) {
        // Which fields were restricted, tracked here independently of the
        // state's own flags.
        let mut restricted: Vec<LiveField> = Vec::new();
        run(&case, |s| {
            let grant = match s.op {
                Op::GrantNet(_) => Some(LiveField::Network),
                Op::GrantMem(_) => Some(LiveField::MaxMemory),
                Op::GrantProcs(_) => Some(LiveField::MaxProcesses),
                Op::RestrictNet(_) => { restricted.push(LiveField::Network); None }
                Op::RestrictMem(_) => { restricted.push(LiveField::MaxMemory); None }
                Op::RestrictProcs(_) => { restricted.push(LiveField::MaxProcesses); None }
                _ => None,
            };
            for f in &restricted {
                prop_assert!(s.after.is_restricted(*f), "{} forgot its restriction", f);
            }
            if let Some(field) = grant {
                if restricted.contains(&field) {
                    prop_assert_eq!(&s.result, &Err(ContextError::Restricted { field }));
                    prop_assert_eq!(s.after.grants(), s.before.grants());
                }
                // A grant never narrows anything.
                prop_assert!(s.before.grants().is_within(s.after.grants()));
                let (before, after) = (allowed(s.before.hosts()), allowed(s.after.hosts()));
                prop_assert!(before.iter().zip(&after).all(|(b, a)| !b || *a));
            }
            Ok(())
        })?;
    }

    #[test]
    fn pid_override_never_wider_than_global(case in arb_case()) {
        run(&case, |s| {
            for pid in PIDS {
                for ip in universe() {
                    if s.after.is_ip_allowed(pid, ip) {
                        prop_assert!(s.after.hosts().contains(ip), "pid {pid} reaches {ip} outside the global set");
                        if let Some(o) = s.after.pid_override(pid) {
                            prop_assert!(o.contains(ip));
                        }
                    }
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn path_rules_match_components(case in arb_case()) {
        let statics: Vec<Vec<String>> = case.policy.fs_denied().iter().map(|p| components(p.as_str())).collect();
        let mut dynamic: Vec<Vec<String>> = Vec::new();
        run(&case, |s| {
            match s.op {
                Op::DenyPath(p) => {
                    prop_assert!(s.result.is_ok());
                    dynamic.push(components(p));
                }
                Op::AllowPath(p) => {
                    let target = components(p);
                    let kept: Vec<_> = dynamic.iter().filter(|d| !is_under(d, &target)).cloned().collect();
                    let still = statics.iter().chain(&kept).any(|r| is_under(&target, r));
                    prop_assert_eq!(s.result.is_err(), still, "allow_path({}) -> {:?}", p, s.result);
                    if still {
                        let still_denied = matches!(s.result, Err(ContextError::StillDenied { .. }));
                        prop_assert!(still_denied);
                        prop_assert_eq!(s.after.dynamic_denied(), s.before.dynamic_denied());
                    } else {
                        dynamic = kept;
                    }
                }
                _ => {}
            }
            for q in QUERIES {
                let model = if q.starts_with('/') {
                    let qc = components(q);
                    statics.iter().chain(&dynamic).any(|r| is_under(&qc, r))
                } else {
                    !statics.is_empty() || !dynamic.is_empty()
                };
                prop_assert_eq!(s.after.is_path_denied(q), model, "{}", q);
            }
            Ok(())
        })?;
    }
}

/// The components of a path after resolving `.` and `..` lexically.
fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

/// Whether `path` equals `rule` or lies below it.
fn is_under(path: &[String], rule: &[String]) -> bool {
    path.len() >= rule.len() && path[..rule.len()] == *rule
}
