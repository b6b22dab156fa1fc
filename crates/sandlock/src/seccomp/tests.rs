//! Every program is run through `sandlock-bpf`'s interpreter and compared
//! with an independent statement of what the deny list means (written
//! here from the documentation, not from the rules), over every syscall
//! number and argument patterns that probe the 32-bit boundaries.

use sandlock_bpf::action::SECCOMP_RET_ALLOW;
use sandlock_bpf::{Action, Arch, Errno, SeccompData, interp};
use sandlock_policy::Policy;

use super::*;

const EPERM: Action = Action::Errno(Errno::EPERM);
const NS: u64 = 0x7e02_0000;
const NEWTIME: u64 = 0x80;

/// What the base filter should answer, written from docs/security.md.
fn meaning(arch: Arch, policy: &Policy, supervised: bool, nr: u32, a: [u64; 6]) -> Action {
    let low = |i: usize| a[i] as u32 as u64;
    let decide = if supervised { Action::UserNotif } else { EPERM };
    let Some(name) = arch.syscall_name(nr) else {
        let max = arch.max_known_nr();
        return if nr > max && nr <= max + UNKNOWN_AHEAD {
            Action::Errno(Errno::ENOSYS)
        } else {
            Action::Allow
        };
    };
    match name {
        "mount" | "umount2" | "pivot_root" | "fsopen" | "fsconfig" | "fsmount" | "fspick"
        | "move_mount" | "open_tree" | "open_tree_attr" | "mount_setattr" | "setns" | "ptrace"
        | "process_vm_readv" | "process_vm_writev" | "pidfd_getfd" | "kexec_load"
        | "kexec_file_load" | "init_module" | "finit_module" | "delete_module" | "bpf"
        | "perf_event_open" | "userfaultfd" | "io_uring_setup" | "io_uring_enter"
        | "io_uring_register" | "keyctl" | "add_key" | "request_key" | "open_by_handle_at"
        | "name_to_handle_at" | "swapon" | "swapoff" | "reboot" | "acct" | "quotactl"
        | "quotactl_fd" | "settimeofday" | "clock_settime" | "clock_adjtime" | "adjtimex"
        | "lookup_dcookie" | "iopl" | "ioperm" => EPERM,
        "clone3" => Action::Errno(Errno::ENOSYS),
        "clone" if low(0) & NS != 0 => EPERM,
        "unshare" if low(0) & (NS | NEWTIME) != 0 => EPERM,
        "personality" if ![0xffff_ffff, 0, 0x0004_0000].contains(&low(0)) => EPERM,
        "ioctl" if low(1) == 0x5412 || low(1) == 0x541c => EPERM,
        "socket" => {
            let (fam, ty, proto) = (low(0), low(1) & 0xf, low(2));
            let net = policy.has_network_rules();
            let hosts = !policy.net_allow_hosts().is_empty();
            let icmp = if fam == 2 { 1 } else { 58 };
            let ok = match fam {
                1 => true,
                16 => proto == 0,
                2 | 10 if net => {
                    (ty == 1 && (proto == 0 || proto == 6))
                        || (ty == 3 && !policy.no_raw_sockets())
                        || (hosts
                            && ty == 2
                            && (proto == icmp || (!policy.no_udp() && (proto == 0 || proto == 17))))
                }
                17 => net && !policy.no_raw_sockets(),
                _ => false,
            };
            if ok { Action::Allow } else { EPERM }
        }
        "prlimit64" | "sched_setaffinity" | "sched_setattr" | "sched_setscheduler"
        | "sched_setparam" | "migrate_pages" | "move_pages"
            if low(0) != 0 =>
        {
            decide
        }
        "setpriority" => match low(0) {
            2 => EPERM,
            0 if low(1) != 0 => decide,
            1 => decide,
            _ => Action::Allow,
        },
        "ioprio_set" => match low(0) {
            3 => EPERM,
            1 if low(1) != 0 => decide,
            2 => decide,
            _ => Action::Allow,
        },
        // Network (docs/security.md, "Network"): every connect, sendmsg and
        // sendmmsg, and sendto with an address, go to the supervisor;
        // routing options are refused once IP sockets exist.
        "connect" | "sendmsg" | "sendmmsg" if supervised => Action::UserNotif,
        "sendto" if supervised && a[4] != 0 => Action::UserNotif,
        "setsockopt" if policy.has_network_rules() && low(1) == 1 && low(2) == 60 => {
            Action::Errno(Errno::new(92).unwrap())
        }
        "setsockopt"
            if policy.has_network_rules()
                && ((low(1) == 0 && low(2) == 4)
                    || (low(1) == 41 && [5, 6, 9, 57].contains(&low(2)))) =>
        {
            EPERM
        }
        "memfd_create" if supervised => Action::UserNotif,
        "memfd_create" if low(1) & 0x8 == 0 => EPERM,
        _ => Action::Allow,
    }
}

/// Argument patterns: zero, high bits alone, and each interesting value
/// with and without garbage in the upper half.
fn patterns() -> Vec<[u64; 6]> {
    let values: [u64; 21] = [
        60,
        0,
        1,
        2,
        3,
        6,
        9,
        10,
        16,
        17,
        40,
        0x80,
        0x1_0000_0000,
        0x0002_0000,
        0x1000_0011,
        0x4000_0000,
        0x0004_0000,
        0xffff_ffff,
        0x5412,
        0x541c,
        0x8,
    ];
    let mut out = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for &v in &values {
        for hi in [0u64, 0xdead_beef_0000_0000] {
            for slot in 0..3 {
                let mut a = [0u64; 6];
                a[slot] = v | hi;
                out.push(a);
            }
            out.push([v | hi, 3, 0, 0, 0, 0]);
            out.push([2, v | hi, 6, 0, 0, 0]);
            out.push([16, 3, v | hi, 0, 0, 0]);
        }
    }
    // setsockopt's (level, optname) pairs the network rules name.
    for (level, name) in [
        (0, 4),
        (41, 5),
        (41, 6),
        (41, 9),
        (41, 57),
        (1, 60),
        (0, 5),
        (1, 4),
    ] {
        for hi in [0u64, 0xdead_beef_0000_0000] {
            out.push([3, level | hi, name | hi, 0, 0, 0]);
        }
    }
    for _ in 0..40 {
        let mut a = [0u64; 6];
        for x in &mut a {
            *x = rand();
        }
        out.push(a);
    }
    out
}

fn check(policy: &Policy, supervised: bool) {
    let arch = Arch::native().unwrap();
    let features = crate::supervise::features(policy).unwrap();
    let programs = build(policy, &features, supervised).unwrap();
    let memfd_feature = crate::kernel::memfd_noexec_seal();
    let all = patterns();
    let few: Vec<[u64; 6]> = all.iter().step_by(17).copied().collect();
    let interesting = [
        "clone",
        "unshare",
        "personality",
        "ioctl",
        "socket",
        "prlimit64",
        "sched_setaffinity",
        "setpriority",
        "ioprio_set",
        "memfd_create",
        "clone3",
        "mount",
        "connect",
        "sendto",
        "sendmsg",
        "setsockopt",
    ];
    for nr in 0..=sandlock_bpf::arch::MAX_SYSCALL_NR {
        let pats = match arch.syscall_name(nr) {
            Some(n) if interesting.contains(&n) => &all,
            _ => &few,
        };
        for a in pats {
            let got = interp::run(programs.base.insns(), &SeccompData::new(arch, nr, *a))
                .unwrap()
                .action()
                .unwrap();
            let mut want = meaning(arch, policy, supervised, nr, *a);
            if arch.syscall_name(nr) == Some("memfd_create") && !memfd_feature {
                want = Action::Allow;
            }
            assert_eq!(got, want, "{:?} #{nr} {a:x?}", arch.syscall_name(nr));
        }
    }
    // Foreign architectures are killed, x32 numbers get ENOSYS.
    let i386 = SeccompData::with_audit_arch(sandlock_bpf::arch::AUDIT_ARCH_I386, 1, [0; 6]);
    assert_eq!(
        interp::run(programs.base.insns(), &i386).unwrap().action(),
        Some(Action::KillProcess)
    );
    if arch.has_x32_bit() {
        let x32 = SeccompData::new(arch, 39 | sandlock_bpf::arch::X32_SYSCALL_BIT, [0; 6]);
        assert_eq!(
            interp::run(programs.base.insns(), &x32).unwrap().action(),
            Some(Action::Errno(Errno::ENOSYS))
        );
    }
}

#[test]
fn default_deny_list_means_what_the_docs_say() {
    check(&Policy::default(), true);
}

#[test]
fn tcp_port_rules_allow_plain_tcp_only() {
    let p = Policy::builder()
        .net_connect(443)
        .net_bind(8080)
        .build()
        .unwrap();
    check(&p, true);
}

#[test]
fn host_rules_allow_tcp_udp_and_ping_sockets() {
    let p = Policy::builder()
        .net_allow_host("127.0.0.1")
        .build()
        .unwrap();
    check(&p, true);
    let p = Policy::builder()
        .net_allow_host("10.0.0.0/8")
        .net_connect(443)
        .no_udp(true)
        .build()
        .unwrap();
    check(&p, true);
}

/// The listener's hand-over passes with its key, and only with it.
#[test]
fn only_the_keyed_sendmsg_passes_unexamined() {
    let arch = Arch::native().unwrap();
    let policy = Policy::default();
    let features = crate::supervise::features(&policy).unwrap();
    let p = build(&policy, &features, true).unwrap();
    let nr = arch.syscall_nr("sendmsg").unwrap();
    let run = |a: [u64; 6]| {
        interp::run(p.base.insns(), &SeccompData::new(arch, nr, a))
            .unwrap()
            .action()
            .unwrap()
    };
    let k = p.handoff;
    assert_eq!(run([5, 0, 0, k[0], k[1], k[2]]), Action::Allow);
    for wrong in [[k[0], k[1], !k[2]], [k[0] ^ 1, k[1], k[2]], [0, 0, 0]] {
        assert_eq!(
            run([5, 0, 0, wrong[0], wrong[1], wrong[2]]),
            Action::UserNotif
        );
    }
    // Each sandbox draws its own key.
    let q = build(&policy, &features, true).unwrap();
    assert_ne!(p.handoff, q.handoff);
}

#[test]
fn raw_sockets_need_a_network_rule_and_the_opt_out() {
    let p = Policy::builder()
        .net_connect(443)
        .no_raw_sockets(false)
        .build()
        .unwrap();
    check(&p, true);
    check(
        &Policy::builder().no_raw_sockets(false).build().unwrap(),
        true,
    );
}

#[test]
fn without_a_supervisor_nothing_notifies() {
    check(&Policy::default(), false);
    let features = crate::supervise::features(&Policy::default()).unwrap();
    let p = build(&Policy::default(), &features, false).unwrap();
    assert!(!p.notifies);
}

/// Syscalls without argument rules stay in the kernel's action cache.
#[test]
fn every_syscall_without_argument_rules_is_const_allow() {
    let arch = Arch::native().unwrap();
    let policy = Policy::default();
    let features = crate::supervise::features(&policy).unwrap();
    let rules = base_rules(arch, &policy, &features, true);
    let p = build(&policy, &features, true).unwrap();
    let with_rules: Vec<u32> = rules
        .iter()
        .map(|r| match r.syscall() {
            sandlock_bpf::Syscall::Nr(n) => *n,
            sandlock_bpf::Syscall::Name(n) => arch.syscall_nr(n).unwrap(),
        })
        .collect();
    let mut cached = 0;
    for (nr, name) in arch.syscalls() {
        if with_rules.contains(&nr) {
            continue;
        }
        assert_eq!(
            p.base.const_action(arch.audit_arch(), nr),
            Some(SECCOMP_RET_ALLOW),
            "{name} is not const-allow"
        );
        cached += 1;
    }
    assert!(cached > 300, "only {cached} syscalls cached");
    for hot in [
        "openat",
        "read",
        "write",
        "close",
        "mmap",
        "futex",
        "newfstatat",
        "execve",
    ] {
        let nr = arch.syscall_nr(hot).unwrap();
        assert_eq!(
            p.base.const_action(arch.audit_arch(), nr),
            Some(SECCOMP_RET_ALLOW),
            "{hot}"
        );
    }
}

#[test]
fn allow_list_is_a_real_allow_list() {
    let arch = Arch::native().unwrap();
    let p = Policy::builder()
        .allow_syscalls(["read", "write", "exit_group", "ptrace", "prlimit64"])
        .syscall_errno("EACCES")
        .build()
        .unwrap();
    let features = crate::supervise::features(&p).unwrap();
    let progs = build(&p, &features, true).unwrap();
    let user = progs.user.unwrap();
    let run = |nr: &str, a: [u64; 6]| {
        let d = SeccompData::new(arch, arch.syscall_nr(nr).unwrap(), a);
        // The kernel keeps the strictest answer of every filter.
        let base = interp::run(progs.base.insns(), &d)
            .unwrap()
            .action()
            .unwrap();
        let user = interp::run(user.insns(), &d).unwrap().action().unwrap();
        strictest(base, user)
    };
    let eacces = Action::Errno(Errno::EACCES);
    assert_eq!(run("read", [0; 6]), Action::Allow);
    assert_eq!(run("openat", [0; 6]), eacces);
    // Listed, but on the deny list: still refused.
    assert_eq!(run("ptrace", [0; 6]), EPERM);
    // Listed and intercepted by a feature: still intercepted.
    assert_eq!(run("prlimit64", [1, 0, 0, 0, 0, 0]), Action::UserNotif);
    // Intercepted by a feature but not listed: refused, not notified.
    assert_eq!(run("memfd_create", [0; 6]), eacces);
    assert_eq!(run("setpriority", [1, 0, 0, 0, 0, 0]), eacces);
}

#[test]
fn deny_syscalls_adds_to_the_list() {
    let arch = Arch::native().unwrap();
    let p = Policy::builder()
        .deny_syscall("getpid")
        .syscall_errno(38)
        .build()
        .unwrap();
    let features = crate::supervise::features(&p).unwrap();
    let progs = build(&p, &features, true).unwrap();
    let user = progs.user.unwrap();
    let d = |n: &str| SeccompData::new(arch, arch.syscall_nr(n).unwrap(), [0; 6]);
    let act = |d: &SeccompData| interp::run(user.insns(), d).unwrap().action().unwrap();
    assert_eq!(act(&d("getpid")), Action::Errno(Errno::ENOSYS));
    assert_eq!(act(&d("getppid")), Action::Allow);
}

/// The precedence the kernel applies between filters (lower action value wins).
fn strictest(a: Action, b: Action) -> Action {
    let rank = |x: Action| (x.to_ret() & sandlock_bpf::action::SECCOMP_RET_ACTION_FULL) as i32;
    if rank(a) <= rank(b) { a } else { b }
}

/// The deny-list section of docs/security.md is generated from the same
/// data as the filter.
#[test]
fn security_doc_lists_the_deny_list() {
    let doc = include_str!("../../../../docs/security.md");
    let table = deny_list_markdown();
    assert!(
        doc.contains(&table),
        "docs/security.md is out of date: put this table in its deny-list section:\n\n{table}"
    );
}

/// The policies whose base filters are carried prebuilt, with what they are.
fn prebuilt_policies() -> Vec<(&'static str, Policy)> {
    let cli = crate::profile::default_builder(&[])
        .and_then(|b| b.build().map_err(Error::from))
        .unwrap();
    // Any existing directory but `/` stands for the new root: the filter
    // only depends on there being one (`chroot` refused).
    let root = std::env::temp_dir().to_string_lossy().into_owned();
    let rooted = cli.to_builder().chroot(root).build().unwrap();
    vec![
        (
            "the default profile of `sandlock run` (whatever paths it grants),",
            cli,
        ),
        ("`Policy::default()`.", Policy::default()),
        (
            "the default profile of `sandlock run` with a new root (`--chroot`).",
            rooted,
        ),
    ]
}

/// The text `prebuilt.rs` should have on this architecture.
fn prebuilt_text() -> String {
    let arch = Arch::native().unwrap();
    // Policies with the same filter share one entry.
    let mut filters: Vec<(Vec<u64>, Vec<&str>, Filter)> = Vec::new();
    for (what, policy) in prebuilt_policies() {
        let features = crate::supervise::features(&policy).unwrap();
        let (filter, _) = base_filter(arch, &policy, &features, true);
        let key = filter.key().unwrap();
        match filters.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, names, _)) => names.push(what),
            None => filters.push((key, vec![what], filter)),
        }
    }
    let mut entries = String::new();
    for (_, names, filter) in filters {
        for (i, what) in names.iter().enumerate() {
            let lead = if i == 0 {
                "The base filter of"
            } else {
                "and of"
            };
            entries.push_str(&format!("    // {lead} {what}\n"));
        }
        entries.push_str("    ");
        entries.push_str(&filter.prebuilt_source().unwrap().replace('\n', "\n    "));
        entries.push_str(",\n");
    }
    format!(
        "//! Base filters generated ahead of time for the usual policies (on x86_64),\n\
         //! so that a start does not generate them again (`seccomp::build`, and\n\
         //! `sandlock_bpf::prebuilt` for why a carried program is used only for\n\
         //! exactly the filter it was generated from).\n\
         //!\n\
         //! Written by the test `prebuilt_programs_are_current` (`seccomp/tests.rs`)\n\
         //! with `SANDLOCK_BLESS=1`; do not edit. That test fails when a rule of\n\
         //! the deny list or of a feature changes until the file is written again.\n\
         \n\
         #[cfg(target_arch = \"x86_64\")]\n\
         use sandlock_bpf::Insn;\n\
         use sandlock_bpf::Prebuilt;\n\
         \n\
         /// The carried base filters.\n\
         #[cfg(target_arch = \"x86_64\")]\n\
         #[rustfmt::skip]\n\
         pub(crate) static PREBUILT: &[Prebuilt] = &[\n\
         {entries}];\n\
         \n\
         /// None on this architecture: every filter is generated.\n\
         #[cfg(not(target_arch = \"x86_64\"))]\n\
         pub(crate) static PREBUILT: &[Prebuilt] = &[];\n"
    )
}

/// `prebuilt.rs` holds what the generator makes of the policies it is for
/// (so that the usual policies find their program there); with
/// `SANDLOCK_BLESS=1` this test writes it instead.
///
/// The file is for kernels with `MFD_NOEXEC_SEAL` (6.3), where the memfd
/// feature adds its rule: on an older one the filters differ, are
/// generated at each start, and the file is not compared.
#[test]
fn prebuilt_programs_are_current() {
    if !cfg!(target_arch = "x86_64") || !crate::kernel::memfd_noexec_seal() {
        return;
    }
    let want = prebuilt_text();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/seccomp/prebuilt.rs");
    let have = std::fs::read_to_string(&path).unwrap();
    if have == want {
        return;
    }
    if std::env::var_os("SANDLOCK_BLESS").is_some() {
        std::fs::write(&path, want).unwrap();
        return;
    }
    panic!(
        "{} is out of date: write it again with \
         `SANDLOCK_BLESS=1 cargo test -p sandlock --lib prebuilt_programs_are_current`",
        path.display()
    );
}

/// A carried program is the one the generator makes, and a policy whose
/// rules differ gets its own.
#[test]
fn a_prebuilt_program_serves_its_policy_only() {
    let arch = Arch::native().unwrap();
    for (_, policy) in prebuilt_policies() {
        let features = crate::supervise::features(&policy).unwrap();
        let (filter, _) = base_filter(arch, &policy, &features, true);
        let generated = filter.build().unwrap();
        assert_eq!(
            filter.build_or_prebuilt(prebuilt::PREBUILT).unwrap(),
            generated
        );
        if cfg!(target_arch = "x86_64") && crate::kernel::memfd_noexec_seal() {
            let key = filter.key().unwrap();
            assert!(prebuilt::PREBUILT.iter().any(|p| p.key == key.as_slice()));
        }
    }
    let other = Policy::builder().net_connect(443).build().unwrap();
    let features = crate::supervise::features(&other).unwrap();
    let (filter, _) = base_filter(arch, &other, &features, true);
    let key = filter.key().unwrap();
    assert!(prebuilt::PREBUILT.iter().all(|p| p.key != key.as_slice()));
}
