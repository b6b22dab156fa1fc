use super::*;
use alloc::string::ToString;

fn invalid(b: PolicyBuilder) -> (&'static str, String, Reason) {
    match b.build() {
        Err(PolicyError::Invalid {
            field,
            value,
            reason,
        }) => (field, value, reason),
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn each_bad_value_names_field_and_value() {
    let b = Policy::builder;
    assert_eq!(
        invalid(b().fs_write("tmp")),
        ("fs_writable", "tmp".into(), Reason::NotAbsolute)
    );
    assert_eq!(
        invalid(b().fs_deny("")),
        ("fs_denied", "".into(), Reason::Empty)
    );
    assert_eq!(
        invalid(b().net_bind(0)),
        ("net_bind", "0".into(), Reason::Zero)
    );
    assert_eq!(
        invalid(b().net_connect("0")),
        ("net_connect", "0".into(), Reason::Zero)
    );
    assert_eq!(
        invalid(b().max_cpu(101)),
        (
            "max_cpu",
            "101".into(),
            Reason::OutOfRange { min: 1, max: 100 }
        )
    );
    assert_eq!(
        invalid(b().max_cpu(0)),
        ("max_cpu", "0".into(), Reason::Zero)
    );
    assert_eq!(
        invalid(b().syscall_errno(0)),
        ("syscall_errno", "0".into(), Reason::Zero)
    );
    assert_eq!(
        invalid(b().net_allow_host("")),
        ("net_allow_hosts", "".into(), Reason::Empty)
    );
    assert_eq!(
        invalid(b().max_open_files(0u64)),
        ("max_open_files", "0".into(), Reason::Zero)
    );
    assert_eq!(
        invalid(b().max_processes(0)),
        ("max_processes", "0".into(), Reason::Zero)
    );
    assert_eq!(
        invalid(b().timeout(0)),
        ("timeout", "0".into(), Reason::Zero)
    );
    assert_eq!(invalid(b().timeout(Duration::ZERO)).2, Reason::Zero);
    assert_eq!(invalid(b().callback_timeout("0s")).0, "callback_timeout");
    assert_eq!(
        invalid(b().num_cpus(0)),
        ("num_cpus", "0".into(), Reason::Zero)
    );
    assert_eq!(invalid(b().cpu_cores("2-1")).0, "cpu_cores");
    assert_eq!(invalid(b().hostname("a/b")).2, Reason::InvalidChar('/'));
    assert_eq!(invalid(b().env("=x")).0, "env");
    assert_eq!(invalid(b().env_var("A=B", "x")).2, Reason::InvalidChar('='));
    assert_eq!(invalid(b().workdir("rel")).0, "workdir");
    assert_eq!(invalid(b().chroot("rel")).0, "chroot");
    assert_eq!(invalid(b().time_start("yesterday")).0, "time_start");
    let (field, value, reason) = invalid(b().max_memory("12Q"));
    assert_eq!((field, value.as_str()), ("max_memory", "12Q"));
    assert!(matches!(reason, Reason::Syntax(_)));
    let (field, value, reason) = invalid(b().deny_syscall("no_such_call"));
    assert_eq!((field, value.as_str()), ("deny_syscalls", "no_such_call"));
    assert_eq!(
        reason,
        Reason::UnknownSyscall {
            arch: Arch::native()
        }
    );
    assert_eq!(invalid(b().allow_syscall("bogus")).0, "allow_syscalls");
}

#[test]
fn first_error_wins_and_message_is_one_line() {
    let e = Policy::builder()
        .fs_read("a")
        .net_bind(0)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "fs_readable");
    let e = Policy::builder().net_connect(0).build().unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"net_connect: "0" must not be 0 (leave the field unset for no limit)"#
    );
}

#[test]
fn conflicting_modes() {
    let e = Policy::builder()
        .deny_syscall("ptrace")
        .allow_syscall("read")
        .build()
        .unwrap_err();
    assert!(matches!(
        e,
        PolicyError::Conflict {
            first: "deny_syscalls",
            second: "allow_syscalls",
            ..
        }
    ));
    assert!(e.to_string().starts_with("conflicting modes"), "{e}");
    let e = Policy::builder()
        .cpu_cores("0-1")
        .num_cpus(3)
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::Invalid {
            field: "num_cpus",
            value: "3".into(),
            reason: Reason::MoreCpusThanCores { cores: 2 }
        }
    );
}

#[test]
fn values_are_stored() {
    let p = Policy::builder()
        .fs_read("/usr")
        .fs_write("/tmp")
        .fs_deny("/etc/shadow")
        .net_connect(443)
        .net_connect(80)
        .net_connect(443)
        .net_bind("8080")
        .max_memory(ByteSize::mib(64).unwrap())
        .max_processes("unlimited")
        .max_cpu("50%")
        .timeout("1.5s")
        .env("A=1")
        .env("B=2")
        .env_var("A", "3")
        .allow_syscalls(["read", "write"])
        .syscall_errno("ENOSYS")
        .no_raw_sockets(false)
        .cwd("/tmp")
        .build()
        .unwrap();
    assert_eq!(p.fs_readable()[0].as_str(), "/usr");
    assert_eq!(
        p.net_connect().iter().map(|p| p.get()).collect::<Vec<_>>(),
        [80, 443]
    );
    assert_eq!(p.net_bind()[0].get(), 8080);
    assert_eq!(p.max_memory().get().map(ByteSize::get), Some(64 << 20));
    assert!(p.max_processes().is_unlimited());
    assert_eq!(p.max_cpu().get().map(CpuPercent::get), Some(50));
    assert_eq!(p.timeout(), Some(Duration::from_millis(1500)));
    assert_eq!(
        p.env().iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        ["A=3", "B=2"]
    );
    assert_eq!(p.allow_syscalls().map(<[String]>::len), Some(2));
    assert_eq!(p.syscall_errno(), Errno::ENOSYS);
    assert!(!p.no_raw_sockets());
    assert_eq!(p.workdir().map(AbsPath::as_str), Some("/tmp"));
    assert!(p.has_network_rules());
    assert!(!Policy::default().has_network_rules());
    assert!(Policy::default().no_raw_sockets());
    assert_eq!(Policy::default().callback_timeout(), Duration::from_secs(5));
    assert_eq!(
        Policy::builder()
            .allow_syscalls::<&str>([])
            .build()
            .unwrap()
            .allow_syscalls(),
        Some(&[][..])
    );
}

#[test]
fn to_builder_layers() {
    let base = Policy::builder()
        .fs_read("/usr")
        .max_memory("1G")
        .build()
        .unwrap();
    let layered = base
        .to_builder()
        .fs_read("/opt")
        .max_memory("512M")
        .build()
        .unwrap();
    assert_eq!(layered.fs_readable().len(), 2);
    assert_eq!(
        layered.max_memory().get().map(ByteSize::get),
        Some(512 << 20)
    );
    assert_eq!(base.to_builder().build().unwrap(), base);
}

#[cfg(feature = "std")]
#[test]
fn callback_is_cloned_and_debug_prints() {
    let p = Policy::builder()
        .policy_fn(|_, _| crate::Verdict::Deny)
        .build()
        .unwrap();
    let q = p.clone();
    assert_eq!(p, q);
    assert!(q.policy_fn().is_some());
    assert!(alloc::format!("{p:?}").contains("<policy callback>"));
    let other = Policy::builder()
        .policy_fn(|_, _| crate::Verdict::Deny)
        .build()
        .unwrap();
    assert_ne!(p, other, "distinct callbacks are different policies");
    assert!(
        p.to_builder()
            .policy_fn_shared(None)
            .build()
            .unwrap()
            .policy_fn()
            .is_none()
    );
}
