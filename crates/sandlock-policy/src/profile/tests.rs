use super::*;
use crate::{ByteSize, Cidr, PolicyBuilder, Timestamp};
use alloc::vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;

#[test]
fn reads_every_kind_of_value() {
    let p = Policy::from_toml(
        r#"
        fs_readable = ["/usr", "/lib"]
        fs_writable = ["/tmp/w"]
        fs_denied = ["/etc/shadow"]
        fs_masked = ["/etc/gshadow", "/etc/ssl/private"]
        deny_syscalls = ["ptrace"]
        syscall_errno = "ENOSYS"
        net_allow_hosts = ["10.0.0.0/8", "::1", "example.com"]
        net_bind = [8080]
        net_connect = [443, 80]
        no_raw_sockets = false
        no_udp = true
        isolate_ipc = true
        isolate_signals = true
        max_memory = "1.5G"
        max_processes = 64
        max_cpu = 50
        max_open_files = "unlimited"
        timeout = 30
        time_start = 2000-06-15T00:00:00Z
        random_seed = "18446744073709551615"
        no_randomize_memory = true
        no_huge_pages = true
        no_coredump = true
        num_cpus = 2
        cpu_cores = "0-3"
        hostname = "box"
        clean_env = true
        env = ["A=1", "B=x=y"]
        cwd = "/tmp/w"
        chroot = "/srv/root"
        compat = "best-effort"
        callback_timeout = 0.25
        "#,
    )
    .unwrap();
    assert_eq!(p.fs_readable().len(), 2);
    assert_eq!(p.fs_masked()[1].as_str(), "/etc/ssl/private");
    assert_eq!(p.syscall_errno(), sandlock_bpf::Errno::ENOSYS);
    assert_eq!(p.net_allow_hosts().len(), 3);
    assert_eq!(
        p.net_connect().iter().map(|p| p.get()).collect::<Vec<_>>(),
        [80, 443]
    );
    assert!(!p.no_raw_sockets() && p.no_udp() && p.isolate_ipc() && p.isolate_signals());
    assert_eq!(p.max_memory(), Limit::Limited(ByteSize::mib(1536).unwrap()));
    assert_eq!(p.max_processes().get().map(|n| n.get()), Some(64));
    assert_eq!(p.max_cpu().get().map(|c| c.get()), Some(50));
    assert!(p.max_open_files().is_unlimited());
    assert_eq!(p.timeout(), Some(Duration::from_secs(30)));
    assert_eq!(
        p.time_start().map(Timestamp::unix_seconds),
        Some(961_027_200)
    );
    assert_eq!(p.random_seed(), Some(u64::MAX));
    assert_eq!(p.cpu_cores().map(|c| c.len()), Some(4));
    assert_eq!(p.hostname().map(|h| h.as_str()), Some("box"));
    assert_eq!(p.env()[1].value(), "x=y");
    assert_eq!(p.workdir().map(|w| w.as_str()), Some("/tmp/w"));
    assert_eq!(p.compat(), Compat::BestEffort);
    assert_eq!(p.callback_timeout(), Duration::from_millis(250));
    assert_eq!(Policy::from_toml(&p.to_toml()).unwrap(), p);
}

#[test]
fn empty_profile_is_the_default_policy() {
    assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
    assert_eq!(
        Policy::from_toml(&Policy::default().to_toml()).unwrap(),
        Policy::default()
    );
}

#[test]
fn env_may_be_a_table() {
    let p = Policy::from_toml("[env]\nA = \"1\"\nB = \"2\"").unwrap();
    assert_eq!(
        p.env().iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        ["A=1", "B=2"]
    );
    let e = Policy::from_toml("[env]\nA = 1").unwrap_err();
    assert!(
        matches!(
            e,
            ProfileError::Invalid(PolicyError::Invalid { field: "env", .. })
        ),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_named() {
    for (text, key) in [
        ("max_memroy = \"1G\"", "max_memroy"),
        ("[fs]\nread = [\"/usr\"]", "fs"),
        ("fs_readable = []\nzzz = 1\naaa = 2", "aaa"),
    ] {
        assert_eq!(
            Policy::from_toml(text),
            Err(ProfileError::UnknownKey { key: key.into() })
        );
    }
}

#[test]
fn invalid_values_name_field_and_value() {
    let invalid = |text: &str| match Policy::from_toml(text) {
        Err(ProfileError::Invalid(PolicyError::Invalid { field, value, .. })) => (field, value),
        other => panic!("{text}: expected an invalid value, got {other:?}"),
    };
    assert_eq!(
        invalid("fs_readable = [\"usr\"]"),
        ("fs_readable", "usr".into())
    );
    assert_eq!(invalid("net_connect = [0]"), ("net_connect", "0".into()));
    assert_eq!(invalid("net_bind = [70000]"), ("net_bind", "70000".into()));
    assert_eq!(invalid("net_bind = [-1]"), ("net_bind", "-1".into()));
    assert_eq!(invalid("max_cpu = 150"), ("max_cpu", "150".into()));
    assert_eq!(
        invalid("max_memory = \"lots\""),
        ("max_memory", "lots".into())
    );
    assert_eq!(invalid("max_memory = 0"), ("max_memory", "0".into()));
    assert_eq!(
        invalid("max_processes = -3"),
        ("max_processes", "-3".into())
    );
    assert_eq!(invalid("syscall_errno = 0"), ("syscall_errno", "0".into()));
    assert_eq!(
        invalid("net_allow_hosts = [\"\"]"),
        ("net_allow_hosts", "".into())
    );
    assert_eq!(invalid("timeout = 0"), ("timeout", "0".into()));
    assert_eq!(invalid("timeout = -1"), ("timeout", "-1".into()));
    assert_eq!(
        invalid("deny_syscalls = [\"nope\"]"),
        ("deny_syscalls", "nope".into())
    );
    assert_eq!(invalid("random_seed = -1"), ("random_seed", "-1".into()));
    assert_eq!(invalid("compat = \"lax\""), ("compat", "lax".into()));
    assert_eq!(
        invalid("time_start = \"2001-02-29\""),
        ("time_start", "2001-02-29".into())
    );
    let e =
        Policy::from_toml("deny_syscalls = [\"ptrace\"]\nallow_syscalls = [\"read\"]").unwrap_err();
    assert!(
        matches!(e, ProfileError::Invalid(PolicyError::Conflict { .. })),
        "{e}"
    );
}

#[test]
fn wrong_types_and_syntax() {
    let e = Policy::from_toml("fs_readable = \"/usr\"").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"fs_readable: expected an array of strings, found "/usr""#
    );
    assert!(matches!(
        Policy::from_toml("no_udp = 1"),
        Err(ProfileError::Type { key: "no_udp", .. })
    ));
    assert!(matches!(
        Policy::from_toml("net_bind = [\"80\"]"),
        Err(ProfileError::Type {
            key: "net_bind",
            ..
        })
    ));
    assert!(matches!(
        Policy::from_toml("max_memory = [1]"),
        Err(ProfileError::Type {
            key: "max_memory",
            ..
        })
    ));
    match Policy::from_toml("fs_readable = []\nmax_memory = = 3") {
        Err(ProfileError::Syntax { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Policy::from_toml_bytes(b"a = \"\xff\""),
        Err(ProfileError::NotUtf8 { offset: 5 })
    );
}

#[test]
fn callback_is_not_written() {
    let p = Policy::builder()
        .policy_fn(|_, _| crate::Verdict::Allow)
        .build()
        .unwrap();
    let back = Policy::from_toml(&p.to_toml()).unwrap();
    assert!(back.policy_fn().is_none());
    assert_eq!(back, Policy::default());
}

#[test]
fn layering_a_profile_under_flags() {
    let b = Policy::from_toml("fs_readable = [\"/usr\"]\nmax_memory = \"1G\"")
        .unwrap()
        .to_builder();
    let p = b.fs_read("/opt").max_memory("256M").build().unwrap();
    assert_eq!(p.fs_readable().len(), 2);
    assert_eq!(p.max_memory().get().map(ByteSize::get), Some(256 << 20));
    let p = PolicyBuilder::new()
        .apply_toml("fs_readable = [\"/a\"]")
        .unwrap()
        .apply_toml("fs_readable = [\"/b\"]")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(p.fs_readable().len(), 2);
}

fn arb_path() -> impl Strategy<Value = String> {
    "/[^\u{0}]{0,24}"
}

fn arb_host() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string()),
        any::<u128>().prop_map(|a| Ipv6Addr::from(a).to_string()),
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| {
            let masked = if p == 0 {
                0
            } else {
                a & (u32::MAX << (32 - p))
            };
            Cidr::new(IpAddr::V4(masked.into()), p).unwrap().to_string()
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| {
            let masked = if p == 0 {
                0
            } else {
                a & (u128::MAX << (128 - p))
            };
            Cidr::new(IpAddr::V6(masked.into()), p).unwrap().to_string()
        }),
        "[a-z][a-z0-9-]{0,8}[a-z](\\.[a-z]{1,6}){0,2}",
    ]
}

fn arb_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..100_000).prop_map(Duration::from_secs),
        (any::<u64>(), 0u32..1_000_000_000).prop_filter_map("zero", |(s, n)| {
            let d = Duration::new(s, n);
            (!d.is_zero()).then_some(d)
        }),
    ]
}

/// Random valid policies, built through the builder.
fn arb_policy() -> impl Strategy<Value = Policy> {
    const CALLS: [&str; 6] = ["read", "write", "openat", "ptrace", "mount", "bpf"];
    let fs = (
        prop::collection::vec(arb_path(), 0..3),
        prop::collection::vec(arb_path(), 0..3),
        prop::collection::vec(arb_path(), 0..3),
        prop::collection::vec(arb_path(), 0..3),
        prop::option::of(arb_path()),
        prop::option::of(arb_path()),
    );
    let sys = (
        prop::collection::vec(prop::sample::select(&CALLS[..]), 0..4),
        any::<bool>(),
        1i32..=4095,
    );
    let net = (
        prop::collection::vec(arb_host(), 0..4),
        prop::collection::vec(1u16.., 0..4),
        prop::collection::vec(1u16.., 0..4),
        any::<[bool; 4]>(),
    );
    let res = (
        prop::option::of(1u64..),
        prop::option::of(1u32..),
        prop::option::of(1u32..=100),
        prop::option::of(1u64..),
        prop::option::of(arb_duration()),
        arb_duration(),
    );
    let det = (
        prop::option::of((-62_167_219_200i64..=253_402_300_799, 0u32..1_000_000_000)),
        prop::option::of(any::<u64>()),
        any::<[bool; 5]>(),
        prop::option::of(1u32..4),
        prop::option::of(prop::collection::btree_set(0u32..16, 4..8)),
        prop::option::of("[^\u{0}/]{1,16}"),
        prop::collection::vec(("[A-Z_][A-Z0-9_]{0,6}", "[^\u{0}]{0,12}"), 0..4),
    );
    (fs, sys, net, res, det).prop_map(|(fs, sys, net, res, det)| {
        let mut b = Policy::builder();
        let (r, w, d, m, wd, ch) = fs;
        b = r.iter().fold(b, |b, p| b.fs_read(p));
        b = w.iter().fold(b, |b, p| b.fs_write(p));
        b = d.iter().fold(b, |b, p| b.fs_deny(p));
        b = m.iter().fold(b, |b, p| b.fs_mask(p));
        if let Some(p) = wd {
            b = b.workdir(p);
        }
        if let Some(p) = ch {
            b = b.chroot(p);
        }
        let (calls, allow_mode, errno) = sys;
        b = if allow_mode {
            b.allow_syscalls(calls)
        } else {
            calls.iter().fold(b, |b, c| b.deny_syscall(c))
        };
        b = b.syscall_errno(errno);
        let (hosts, bind, connect, flags) = net;
        b = hosts.iter().fold(b, |b, h| b.net_allow_host(h));
        b = bind.into_iter().fold(b, PolicyBuilder::net_bind);
        b = connect.into_iter().fold(b, PolicyBuilder::net_connect);
        b = b
            .no_raw_sockets(flags[0])
            .no_udp(flags[1])
            .isolate_ipc(flags[2])
            .isolate_signals(flags[3]);
        let (mem, procs, cpu, files, timeout, cb) = res;
        if let Some(m) = mem {
            b = b.max_memory(m);
        }
        if let Some(n) = procs {
            b = b.max_processes(n);
        }
        if let Some(c) = cpu {
            b = b.max_cpu(c);
        }
        if let Some(f) = files {
            b = b.max_open_files(f);
        }
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b = b.callback_timeout(cb).compat(if flags[0] {
            Compat::Strict
        } else {
            Compat::BestEffort
        });
        let (start, seed, dflags, ncpu, cores, host, env) = det;
        if let Some((s, n)) = start {
            b = b.time_start(Timestamp::from_unix(s, n).unwrap());
        }
        if let Some(s) = seed {
            b = b.random_seed(s);
        }
        b = b
            .no_randomize_memory(dflags[0])
            .no_huge_pages(dflags[1])
            .no_coredump(dflags[2])
            .clean_env(dflags[3]);
        if let Some(n) = ncpu {
            b = b.num_cpus(n);
        }
        if let Some(c) = cores {
            let list = c
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",");
            b = b.cpu_cores(list);
        }
        if let Some(h) = host {
            b = b.hostname(h);
        }
        b = env.into_iter().fold(b, |b, (k, v)| b.env_var(k, v));
        b.build().unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_is_lossless(p in arb_policy()) {
        let text = p.to_toml();
        let back = Policy::from_toml(&text);
        prop_assert_eq!(back.as_ref(), Ok(&p), "profile:\n{}", text);
        // Writing again gives the same text.
        prop_assert_eq!(back.unwrap().to_toml(), text);
    }

    #[test]
    fn any_bytes_give_a_policy_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Policy::from_toml_bytes(&bytes);
    }

    #[test]
    fn any_known_key_with_junk_is_an_error_not_a_panic(
        key in prop::sample::select(&KEYS[..]),
        value in prop_oneof![
            Just("0".to_string()), Just("-1".to_string()), Just("1e400".to_string()), Just("nan".to_string()),
            Just("[0, -1, 99999999999]".to_string()), Just("\"\"".to_string()), Just("{}".to_string()),
            Just("[[]]".to_string()), Just("1979-05-27".to_string()), Just("\"\\u0000\"".to_string()),
            "\"[^\"\\\\]{0,12}\"",
        ],
    ) {
        let _ = Policy::from_toml(&alloc::format!("{key} = {value}"));
    }
}

#[test]
fn junk_durations_and_huge_numbers() {
    assert!(Policy::from_toml("timeout = nan").is_err());
    assert!(Policy::from_toml("timeout = -0.5").is_err());
    assert!(Policy::from_toml("timeout = 1e300").is_err());
    let p = Policy::from_toml("max_open_files = \"18446744073709551615\"").unwrap();
    assert_eq!(p.max_open_files().get().map(|n| n.get()), Some(u64::MAX));
    assert!(
        p.to_toml()
            .contains("max_open_files = \"18446744073709551615\"")
    );
}
