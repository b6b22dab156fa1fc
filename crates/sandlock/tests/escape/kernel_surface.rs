//! Attack class 2: namespaces, mounts and the wider kernel surface
//! (`kernel.c`), and descriptors leaked into the sandbox by its parent.

use std::collections::BTreeMap;

use crate::checks::{Bare, ENOSYS, EPERM, fd_attack, namespace_attack, sysctl, verdict};
use crate::harness::{Attack, Mode, Res, Scratch, User, bins, nonce, results};
use crate::observe::LoopbackPair;
use crate::procfs;

escape_tests!(run:
    unshare_namespaces,
    setns_through_proc,
    setns_through_pidfd,
    mount_tmpfs,
    new_mount_api,
    open_tree_bind,
    bpf_map,
    perf_event_open,
    userfaultfd,
    keyring_outlives_sandbox,
    inherited_descriptors_closed,
    open_by_handle_at,
    personality_read_implies_exec,
    priv_kexec_load,
    priv_kexec_file_load,
    priv_init_module,
    priv_finit_module,
    priv_delete_module,
    priv_reboot,
    priv_swapon,
    priv_swapoff,
    priv_acct,
    priv_settimeofday,
    priv_clock_settime,
    priv_adjtimex,
    priv_clock_adjtime,
);

escape_tests!(run:
    io_uring_connect,
);

escape_tests!(run:
    host_ipc_objects,
);

fn unshare_namespaces(mode: Mode) {
    let (changed, out) = namespace_attack(Attack::new(mode, "kernel", "unshare"), "");
    let what = format!("unshare(every CLONE_NEW*): {changed:?}");
    verdict(mode, Bare::Works, !changed.is_empty(), &what, &out);
}

/// A process of `user` in its own user and UTS namespaces, to join.
fn ns_holder(user: User) -> crate::harness::Session {
    let mut holder = Attack::new(Mode::Bare(user), "helpers", "nsholder").spawn();
    holder.ready();
    holder
}

fn setns_through_proc(mode: Mode) {
    let holder = ns_holder(mode.user());
    let attack = Attack::new(mode, "kernel", "setns-proc")
        .flag("-r")
        .flag("/proc");
    let (changed, out) = namespace_attack(attack, &holder.pid().to_string());
    verdict(
        mode,
        Bare::Works,
        !changed.is_empty(),
        "setns through /proc/PID/ns/user",
        &out,
    );
}

fn setns_through_pidfd(mode: Mode) {
    let holder = ns_holder(mode.user());
    let attack = Attack::new(mode, "kernel", "setns-pidfd");
    let (changed, out) = namespace_attack(attack, &holder.pid().to_string());
    verdict(
        mode,
        Bare::Works,
        !changed.is_empty(),
        "setns through a pidfd",
        &out,
    );
}

/// Run a mount attack aimed at `scratch/mnt`; did anything get mounted
/// there, in the attacker's mount namespace or ours?
fn mount_attack(mode: Mode, attack: &str, scratch: &Scratch, args: &[&std::path::Path]) {
    let mnt = scratch.dir("mnt");
    let mut a = Attack::new(mode, "kernel", attack);
    for arg in args {
        a = a.arg(arg);
    }
    let (mounted, out) = a.arg(&mnt).probe(
        |_| String::new(),
        "HOLD",
        |s| {
            let mine = procfs::mounts_under(std::process::id() as i32, &mnt);
            let theirs = procfs::mounts_under(s.attacker(), &mnt);
            !mine.is_empty() || !theirs.is_empty()
        },
    );
    let what = format!("{attack} onto a scratch directory");
    verdict(mode, Bare::NeedsRoot("CAP_SYS_ADMIN"), mounted, &what, &out);
}

fn mount_tmpfs(mode: Mode) {
    let scratch = Scratch::new(mode.user());
    mount_attack(mode, "mount", &scratch, &[]);
}

fn new_mount_api(mode: Mode) {
    let scratch = Scratch::new(mode.user());
    mount_attack(mode, "fsmount", &scratch, &[]);
}

fn open_tree_bind(mode: Mode) {
    let scratch = Scratch::new(mode.user());
    let src = scratch.dir("src");
    mount_attack(mode, "open-tree", &scratch, &[&src]);
}

fn fd_kind(mode: Mode, attack: &str, kind: &str, bare: Bare) {
    let (gained, out) = fd_attack(Attack::new(mode, "kernel", attack), |_| String::new(), kind);
    let what = format!("{attack} giving a {kind} descriptor: {gained:?}");
    verdict(mode, bare, !gained.is_empty(), &what, &out);
}

fn bpf_map(mode: Mode) {
    let bare = match sysctl("kernel.unprivileged_bpf_disabled").as_deref() {
        Some("0") => Bare::Works,
        _ => Bare::NeedsRoot("CAP_BPF (kernel.unprivileged_bpf_disabled is set)"),
    };
    fd_kind(mode, "bpf", "bpf-map", bare);
}

fn perf_event_open(mode: Mode) {
    let paranoid: i32 = sysctl("kernel.perf_event_paranoid")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let bare = if paranoid <= 2 {
        Bare::Works
    } else {
        Bare::NeedsRoot("CAP_PERFMON (kernel.perf_event_paranoid > 2)")
    };
    fd_kind(mode, "perf", "perf_event", bare);
}

fn userfaultfd(mode: Mode) {
    fd_kind(mode, "userfaultfd", "userfaultfd", Bare::Works);
}

/// A key added to the user keyring survives the sandbox and is shared with
/// every process of the uid.
fn keyring_outlives_sandbox(mode: Mode) {
    let desc = nonce("escape-key-");
    let user = mode.user();
    let (found, out) = Attack::new(mode, "kernel", "keyctl").arg(&desc).probe(
        |_| String::new(),
        "HOLD",
        |_| {
            let look = Attack::new(Mode::Bare(user), "helpers", "keyfind")
                .arg(&desc)
                .run("");
            // "NOTFOUND" contains "FOUND": match the whole word.
            look.lines.iter().any(|l| l.starts_with("FOUND "))
        },
    );
    let what = "add_key into the user keyring, seen from outside";
    verdict(mode, Bare::Works, found, what, &out);
}

/// io_uring performs connect(2) without the connect syscall, so without
/// the supervisor seeing it.
fn io_uring_connect(mode: Mode) {
    let net = LoopbackPair::new();
    let bare = match sysctl("kernel.io_uring_disabled").as_deref() {
        Some("2") => Bare::Impossible("kernel.io_uring_disabled is 2"),
        Some("1") => Bare::NeedsRoot("membership of kernel.io_uring_group"),
        _ => Bare::Works,
    };
    let (ring, out) = Attack::new(mode, "kernel", "uring-connect")
        .arg("127.0.0.2")
        .arg(net.port())
        .flag("--net-allow-host")
        .flag("127.0.0.1")
        .probe(
            |_| String::new(),
            "HOLD",
            |s| {
                let fds = procfs::fds(s.attacker());
                fds.values().any(|t| t.contains("io_uring"))
            },
        );
    let reached = net.bad.count() > 0;
    let what = format!("IORING_OP_CONNECT to a refused host (ring made: {ring})");
    verdict(mode, bare, reached || ring, &what, &out);
}

/// The process that starts sandlock leaks an io_uring ring (fd 7) and a
/// readable file (fd 8): the sandboxed program must get no fd above 2.
fn inherited_descriptors_closed(mode: Mode) {
    let scratch = Scratch::new(User::Root);
    let secret = nonce("leaked-secret-");
    let path = scratch.file("secret", &secret);
    let helpers = bins().prog("helpers");
    let (above2, out) = Attack::new(mode, "kernel", "fd-scan")
        .wrapped(&[
            helpers.as_os_str(),
            "wrap".as_ref(),
            "leak-exec".as_ref(),
            path.as_os_str(),
            "--".as_ref(),
        ])
        .probe(
            |_| String::new(),
            "HOLD",
            |s| {
                procfs::fds(s.attacker())
                    .into_iter()
                    .filter(|(fd, _)| *fd > 2)
                    .collect::<BTreeMap<_, _>>()
            },
        );
    let leaked = above2
        .values()
        .any(|t| t.contains("io_uring") || t.contains("secret"))
        || out.printed(&secret);
    let what = format!("descriptors above 2 inherited into the program: {above2:?}");
    verdict(mode, Bare::Works, leaked, &what, &out);
    if mode.sandboxed() {
        assert!(above2.is_empty(), "{what}\n{}", out.describe());
    }
}

/// Open a file by handle, bypassing every path check (the "shocker" escape).
fn open_by_handle_at(mode: Mode) {
    let scratch = Scratch::new(User::Root);
    let secret = nonce("handle-secret-");
    let path = scratch.file("secret", &secret);
    let handle = Attack::new(Mode::Bare(User::Root), "helpers", "handle")
        .arg(&path)
        .run("");
    let line = handle
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("HANDLE "))
        .unwrap_or_else(|| panic!("no handle\n{}", handle.describe()))
        .to_string();
    // The mount fd: a directory the sandbox may read, on the same filesystem.
    let out = Attack::new(mode, "kernel", "open-by-handle")
        .arg(bins().dir())
        .run(&line);
    let what = "open_by_handle_at reading a file outside the sandbox";
    verdict(
        mode,
        Bare::NeedsRoot("CAP_DAC_READ_SEARCH"),
        out.printed(&secret),
        what,
        &out,
    );
}

fn personality_read_implies_exec(mode: Mode) {
    const READ_IMPLIES_EXEC: u64 = 0x0040_0000;
    let (persona, out) = Attack::new(mode, "kernel", "personality").probe(
        |_| String::new(),
        "HOLD",
        |s| {
            let text = std::fs::read_to_string(format!("/proc/{}/personality", s.attacker()));
            u64::from_str_radix(text.unwrap_or_default().trim(), 16).unwrap_or(0)
        },
    );
    let what = format!("personality(READ_IMPLIES_EXEC): now {persona:#x}");
    verdict(
        mode,
        Bare::Works,
        persona & READ_IMPLIES_EXEC != 0,
        &what,
        &out,
    );
}

/// A call that would change the machine, made with an argument the kernel
/// rejects only after its permission check (see `kernel.c`). `reached` is
/// the kernel's answer once past that check; `root_only` says whether the
/// check needs a capability. Bare root proves the call gets that far; a
/// sandbox must answer it first (EPERM, ENOSYS or a kill).
fn privileged(mode: Mode, call: &str, reached: Res, root_only: bool) {
    let scratch = Scratch::new(mode.user());
    let missing = scratch.join("no-such-file");
    let run = |m: Mode| {
        Attack::new(m, "kernel", "priv")
            .arg(call)
            .arg(&missing)
            .run("")
    };
    let built_in = run(Mode::Bare(User::Root)).result(call) != Some(Res::Errno(ENOSYS));
    let out = run(mode);
    let answer = out.result(call);
    let bare = if !built_in {
        Bare::Impossible("the call is not built into this kernel (ENOSYS)")
    } else if root_only {
        Bare::NeedsRoot("its capability")
    } else {
        Bare::Works
    };
    if mode == Mode::Bare(User::Nobody) && built_in && root_only {
        assert_eq!(answer, Some(Res::Errno(EPERM)), "{}", out.describe());
    }
    let what = format!("{call} reaching the kernel past its permission check ({answer:?})");
    verdict(mode, bare, answer == Some(reached), &what, &out);
}

const EINVAL: Res = Res::Errno(22);
const ENOENT: Res = Res::Errno(2);

fn priv_kexec_load(mode: Mode) {
    privileged(mode, "kexec_load", EINVAL, true);
}

fn priv_kexec_file_load(mode: Mode) {
    privileged(mode, "kexec_file_load", EINVAL, true);
}

fn priv_init_module(mode: Mode) {
    privileged(mode, "init_module", Res::Errno(8 /* ENOEXEC */), true);
}

fn priv_finit_module(mode: Mode) {
    privileged(mode, "finit_module", Res::Errno(9 /* EBADF */), true);
}

fn priv_delete_module(mode: Mode) {
    privileged(mode, "delete_module", ENOENT, true);
}

fn priv_reboot(mode: Mode) {
    privileged(mode, "reboot", EINVAL, true);
}

fn priv_swapon(mode: Mode) {
    privileged(mode, "swapon", ENOENT, true);
}

fn priv_swapoff(mode: Mode) {
    privileged(mode, "swapoff", ENOENT, true);
}

fn priv_acct(mode: Mode) {
    privileged(mode, "acct", ENOENT, true);
}

fn priv_settimeofday(mode: Mode) {
    privileged(mode, "settimeofday", Res::Ok(0), true);
}

/// The kernel validates the time before the permission check, so every
/// user gets EINVAL bare; only a filter can answer something else.
fn priv_clock_settime(mode: Mode) {
    privileged(mode, "clock_settime", EINVAL, false);
}

fn priv_adjtimex(mode: Mode) {
    privileged(mode, "adjtimex", EINVAL, true);
}

fn priv_clock_adjtime(mode: Mode) {
    privileged(mode, "clock_adjtime", EINVAL, true);
}

/// The host's SysV shared memory, message queue and semaphore (under a
/// key) and a POSIX message queue, all mode 0666, made by a bare root
/// process: the sandbox, in its own IPC namespace, must change none of
/// them (Landlock does not cover them).
fn host_ipc_objects(mode: Mode) {
    let hash = nonce("ipc").bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let key = 0x5f00_0000 | (hash & 0x00ff_ffff) as i32;
    let name = nonce("sandlock-escape-mq-");
    let mut host = Attack::new(Mode::Bare(User::Root), "helpers", "ipchost")
        .arg(key.to_string())
        .arg(&name)
        .spawn();
    host.ready();
    let out = Attack::new(mode, "kernel", "ipc")
        .arg(key.to_string())
        .arg(&name)
        .run("");
    let host = host.finish();
    let changed: Vec<&str> = ["shm", "msg", "sem", "mq"]
        .into_iter()
        .filter(|k| results(&host.lines).get(*k) == Some(&Res::Ok(1)))
        .collect();
    assert!(
        ["shm", "msg", "sem", "mq"]
            .iter()
            .all(|k| results(&host.lines).contains_key(*k)),
        "the host's objects were not reported\n{}",
        host.describe()
    );
    let what = format!("the host's IPC objects changed: {changed:?}");
    verdict(mode, Bare::Works, !changed.is_empty(), &what, &out);
    if !mode.sandboxed() {
        // Bare, every one of them is reachable (mode 0666), for both users.
        assert_eq!(changed.len(), 4, "{}", out.describe());
    }
}
