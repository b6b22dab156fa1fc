use super::*;
use crate::{ByteSize, Limit};
use alloc::{format, vec};
use core::num::NonZeroU32;
use std::net::IpAddr;
use std::vec::Vec;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn live(p: crate::PolicyBuilder) -> LivePolicy {
    LivePolicy::new(&p.build().unwrap()).unwrap()
}

fn n(v: u32) -> Limit<NonZeroU32> {
    Limit::Limited(NonZeroU32::new(v).unwrap())
}

#[test]
fn network_modes_are_distinct() {
    // No network flag: nothing.
    let none = live(Policy::builder());
    let s = none.load();
    assert_eq!(s.hosts(), &HostAccess::NOTHING);
    assert!(!s.is_connect_allowed(1, ip("127.0.0.1"), 80));
    assert!(!s.is_bind_allowed(8080));

    // Ports only: any host, those ports.
    let ports = live(Policy::builder().net_connect(443));
    let s = ports.load();
    assert_eq!(s.hosts(), &HostAccess::Any);
    assert!(s.is_connect_allowed(1, ip("203.0.113.9"), 443));
    assert!(!s.is_connect_allowed(1, ip("203.0.113.9"), 80));

    // Hosts only: those hosts, any port.
    let hosts = live(Policy::builder().net_allow_host("127.0.0.1"));
    let s = hosts.load();
    assert_eq!(s.connect_ports(), &PortAccess::Any);
    assert!(s.is_connect_allowed(1, ip("127.0.0.1"), 9));
    assert!(!s.is_connect_allowed(1, ip("127.0.0.2"), 9));

    // Both: a destination must pass both.
    let both = live(
        Policy::builder()
            .net_allow_host("127.0.0.1")
            .net_connect(443),
    );
    let s = both.load();
    assert!(s.is_connect_allowed(1, ip("127.0.0.1"), 443));
    assert!(!s.is_connect_allowed(1, ip("127.0.0.1"), 80));
    assert!(!s.is_connect_allowed(1, ip("127.0.0.2"), 443));

    // Bind ports alone give no outgoing network.
    let bind = live(Policy::builder().net_bind(8080));
    let s = bind.load();
    assert!(s.is_bind_allowed(8080) && !s.is_bind_allowed(8081));
    assert!(!s.is_ip_allowed(1, ip("127.0.0.1")));
}

#[test]
fn address_forms_are_judged_once() {
    let l = live(Policy::builder().net_allow_host("127.0.0.1"));
    let s = l.load();
    assert!(s.is_ip_allowed(1, ip("::ffff:127.0.0.1")));
    assert!(!s.is_ip_allowed(1, ip("::ffff:127.0.0.2")));
    assert!(
        s.is_ip_allowed(1, ip("0.0.0.0")),
        "0.0.0.0 lands on loopback"
    );
    assert!(!s.is_ip_allowed(1, ip("::")), "`::` is ::1, not allowed");
    let l = live(Policy::builder().net_allow_host("10.0.0.0/8"));
    assert!(
        !l.load().is_ip_allowed(1, ip("0.0.0.0")),
        "0.0.0.0 is loopback, not in 10/8"
    );
}

#[test]
fn host_names_need_a_resolver() {
    let p = Policy::builder()
        .net_allow_host("db.example")
        .build()
        .unwrap();
    assert_eq!(
        LivePolicy::new(&p).unwrap_err(),
        LiveError::Unresolved {
            host: "db.example".into()
        }
    );
    let l = LivePolicy::with_resolver(&p, |name| {
        assert_eq!(name, "db.example");
        Ok::<_, String>(vec![ip("192.0.2.7"), ip("2001:db8::7")])
    })
    .unwrap();
    assert!(l.load().is_ip_allowed(1, ip("192.0.2.7")));
    assert!(l.load().is_ip_allowed(1, ip("2001:db8::7")));
    assert!(!l.load().is_ip_allowed(1, ip("192.0.2.8")));
    let e = LivePolicy::with_resolver(&p, |_| Err("NXDOMAIN")).unwrap_err();
    assert_eq!(
        e,
        LiveError::Resolve {
            host: "db.example".into(),
            reason: "NXDOMAIN".into()
        }
    );
    let e = LivePolicy::with_resolver(&p, |_| Ok::<_, String>(vec![])).unwrap_err();
    assert_eq!(
        e,
        LiveError::NoAddresses {
            host: "db.example".into()
        }
    );
}

#[test]
fn grants_and_restrictions() {
    let l = live(
        Policy::builder()
            .net_allow_host("10.0.0.0/24")
            .max_memory("1G")
            .max_processes(100),
    );
    let start = Grants::new(
        HostAccess::NOTHING,
        Limit::Limited(ByteSize::mib(64).unwrap()),
        n(10),
    );
    let l = l.with_start(start).unwrap();
    let mut ctx = l.context();
    assert!(!l.load().is_ip_allowed(1, ip("10.0.0.5")));

    ctx.grant_network([ip("10.0.0.5")]).unwrap();
    assert!(
        l.load().is_ip_allowed(1, ip("10.0.0.5")),
        "visible to the very next read"
    );
    let e = ctx
        .grant_network([ip("10.0.0.6"), ip("10.0.1.1")])
        .unwrap_err();
    assert!(
        matches!(&e, ContextError::AboveCeiling { field: LiveField::Network, value, .. } if value == "10.0.1.1/32"),
        "{e}"
    );
    assert!(
        !l.load().is_ip_allowed(1, ip("10.0.0.6")),
        "a refused grant changes nothing"
    );

    ctx.grant_max_memory(ByteSize::mib(512).unwrap()).unwrap();
    assert_eq!(
        l.load().max_memory(),
        Limit::Limited(ByteSize::mib(512).unwrap())
    );
    ctx.grant_max_memory(ByteSize::mib(128).unwrap()).unwrap();
    assert_eq!(
        l.load().max_memory(),
        Limit::Limited(ByteSize::mib(512).unwrap()),
        "a grant never narrows"
    );
    assert!(matches!(
        ctx.grant_max_memory(Limit::Unlimited),
        Err(ContextError::AboveCeiling { .. })
    ));
    assert!(matches!(
        ctx.grant_max_processes(n(101)),
        Err(ContextError::AboveCeiling { .. })
    ));

    ctx.restrict_max_processes(n(5));
    assert_eq!(l.load().max_processes(), n(5));
    ctx.restrict_max_processes(n(50));
    assert_eq!(l.load().max_processes(), n(5), "a restriction never widens");
    let e = ctx.grant_max_processes(n(6)).unwrap_err();
    assert_eq!(
        e,
        ContextError::Restricted {
            field: LiveField::MaxProcesses
        }
    );
    assert_eq!(l.load().max_processes(), n(5));

    ctx.restrict_network([ip("10.0.0.5"), ip("10.0.0.9")]);
    assert!(l.load().is_restricted(LiveField::Network));
    assert!(matches!(
        ctx.grant_network([ip("10.0.0.9")]),
        Err(ContextError::Restricted { .. })
    ));
    assert!(
        !l.load().is_ip_allowed(1, ip("10.0.0.9")),
        "restrict intersects with what is allowed now"
    );
    assert!(ctx.current().version() > 0);
    assert_eq!(ctx.ceiling().max_processes(), n(100));
}

#[test]
fn start_is_checked() {
    let l = live(Policy::builder().max_memory("1G"));
    let wide = Grants::new(HostAccess::NOTHING, Limit::Unlimited, Limit::Unlimited);
    assert_eq!(
        l.clone().with_start(wide).unwrap_err(),
        LiveError::StartAboveCeiling
    );
    l.context().restrict_max_processes(n(3));
    let ok = Grants::new(
        HostAccess::NOTHING,
        Limit::Limited(ByteSize::mib(1).unwrap()),
        Limit::Unlimited,
    );
    assert_eq!(l.with_start(ok).unwrap_err(), LiveError::AlreadyChanged);
}

#[test]
fn pid_overrides_stay_inside_the_global_set() {
    let l = live(Policy::builder().net_allow_host("10.0.0.0/24"));
    let mut ctx = l.context();
    ctx.restrict_pid_network(7, [ip("10.0.0.1"), ip("10.0.0.2"), ip("192.0.2.1")]);
    let s = l.load();
    assert!(s.is_ip_allowed(7, ip("10.0.0.1")));
    assert!(!s.is_ip_allowed(7, ip("10.0.0.3")));
    assert!(
        !s.is_ip_allowed(7, ip("192.0.2.1")),
        "an override cannot reach outside the global set"
    );
    assert!(
        s.is_ip_allowed(8, ip("10.0.0.3")),
        "other tasks are unaffected"
    );
    drop(s);
    ctx.restrict_network([ip("10.0.0.2")]);
    assert!(
        !l.load().is_ip_allowed(7, ip("10.0.0.1")),
        "a later global restrict also binds the override"
    );
    ctx.clear_pid_override(7);
    assert!(l.load().pid_override(7).is_none());
    assert!(l.load().is_ip_allowed(7, ip("10.0.0.2")));
}

#[test]
fn path_rules() {
    let l = live(Policy::builder().fs_deny("/etc/shadow"));
    let mut ctx = l.context();
    assert!(l.load().is_path_denied("/etc/shadow"));
    assert!(!l.load().is_path_denied("/etc/shadowy"));
    ctx.deny_path("/srv/a/./b/../c").unwrap();
    let s = l.load();
    assert!(s.is_path_denied("/srv/a/c"));
    assert!(s.is_path_denied("/srv/a/c/d/e"));
    assert!(s.is_path_denied("/srv/x/../a/c"));
    assert!(!s.is_path_denied("/srv/a/cc"));
    assert!(!s.is_path_denied("/srv/a"));
    assert!(s.is_path_denied("srv/a/c"), "relative paths fail closed");
    drop(s);
    assert!(matches!(
        ctx.deny_path("rel"),
        Err(ContextError::InvalidPath {
            op: "deny_path",
            ..
        })
    ));

    let e = ctx.allow_path("/etc/shadow").unwrap_err();
    assert!(
        matches!(
            &e,
            ContextError::StillDenied {
                static_rule: true,
                ..
            }
        ),
        "{e}"
    );
    assert!(l.load().is_path_denied("/etc/shadow"));

    let e = ctx.allow_path("/srv/a/c/d").unwrap_err();
    assert!(
        matches!(&e, ContextError::StillDenied { static_rule: false, rule, .. } if rule == "/srv/a/c")
    );
    ctx.allow_path("/srv").unwrap();
    assert!(!l.load().is_path_denied("/srv/a/c"));
    assert!(l.load().dynamic_denied().is_empty());
    assert!(l.load().has_path_rules());
}

#[test]
fn concurrent_readers_see_whole_versions() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    // A writer flips a deny rule on and off; odd versions have it, even ones
    // do not. Readers check every snapshot is one whole version, never a mix.
    let l = live(Policy::builder().net_allow_host("10.0.0.0/24"));
    let stop = Arc::new(AtomicBool::new(false));
    let reads: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (l, stop, reads) = (l.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let s = l.load();
                    let v = s.version();
                    assert_eq!(
                        s.is_path_denied("/x"),
                        v % 2 == 1,
                        "torn read at version {v}"
                    );
                    reads[i].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut ctx = l.context();
    let mut flips = 0;
    while flips < 2000 || reads.iter().any(|r| r.load(Ordering::Relaxed) < 1000) {
        ctx.deny_path("/x").unwrap();
        ctx.allow_path("/x").unwrap();
        flips += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(l.load().version(), 2 * flips);
}

#[test]
fn context_from_a_callback() {
    // The callback type receives the context and can narrow the policy.
    let policy = Policy::builder()
        .net_allow_host("10.0.0.0/24")
        .policy_fn(|event, ctx| {
            if event.path_contains("secret") {
                let _ = ctx.deny_path("/data/secret");
                crate::Verdict::Deny
            } else {
                crate::Verdict::Allow
            }
        })
        .build()
        .unwrap();
    let l = LivePolicy::new(&policy).unwrap();
    let mut ctx = l.context();
    let mut ev = crate::SyscallEvent::new("openat", crate::SyscallCategory::File, 42);
    ev.path = Some("/data/secret/key".into());
    let f = policy.policy_fn().unwrap();
    assert_eq!(f(ev, &mut ctx), crate::Verdict::Deny);
    assert!(l.load().is_path_denied("/data/secret/key"));
}

#[test]
fn reader_sees_each_change_on_the_next_read() {
    use std::sync::mpsc;
    // The callback runs on its own thread and hands its verdict back over a
    // channel, as the supervisor's callback thread does.
    let l = live(Policy::builder().net_allow_host("10.0.0.0/24"));
    let mut reader = l.reader();
    let (to_cb, cb_rx) = mpsc::channel::<u8>();
    let (to_sup, sup_rx) = mpsc::channel::<()>();
    let cb_live = l.clone();
    let cb = std::thread::spawn(move || {
        let mut ctx = cb_live.context();
        for h in cb_rx {
            ctx.restrict_network(["10.0.0.0/24".parse::<crate::Cidr>().unwrap()]);
            ctx.deny_path(format!("/d/{h}")).unwrap();
            to_sup.send(()).unwrap();
        }
    });
    for h in 0..200u8 {
        assert!(!reader.load().is_path_denied(format!("/d/{h}")));
        to_cb.send(h).unwrap();
        sup_rx.recv().unwrap();
        assert!(
            reader.load().is_path_denied(format!("/d/{h}")),
            "change {h} not seen by the next read"
        );
    }
    drop(to_cb);
    cb.join().unwrap();
    assert!(format!("{reader:?}").starts_with("LiveReader"));
}
