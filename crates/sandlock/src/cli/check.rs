//! `sandlock check`: the kernel features sandlock uses, and what it
//! enforces on this machine.

use sandlock::Protection;
use sandlock::kernel;

/// Prints the table; always exits 0.
pub(crate) fn check() -> i32 {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    outln!("kernel {release} ({})", std::env::consts::ARCH);
    outln!();
    outln!("{:<44} {}", "feature", "available");
    let abi = kernel::landlock_status();
    match abi {
        Ok(v) => outln!("{:<44} ABI {v}", "Landlock"),
        Err(e) => outln!("{:<44} no ({})", "Landlock", sandlock::errno_text(e)),
    }
    let have = |min: i32| abi.is_ok_and(|v| v >= min);
    for (name, min) in [
        ("  filesystem rules (ABI 1)", 1),
        ("  rename/link across directories (ABI 2)", 2),
        ("  truncate (ABI 3)", 3),
        ("  TCP bind/connect ports (ABI 4)", 4),
        ("  device ioctl (ABI 5)", 5),
        ("  abstract unix socket scope (ABI 6)", 6),
        ("  signal scope (ABI 6)", 6),
        ("  audit logging flags (ABI 7)", 7),
    ] {
        outln!("{name:<44} {}", yes_no(have(min)));
    }
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    outln!("{:<44} {actions}", "seccomp actions");
    let flag = |bits: u32| match kernel::seccomp_flags_known(bits) {
        Ok(b) => yes_no(b).to_owned(),
        Err(e) => format!("unknown ({})", sandlock::errno_text(e)),
    };
    outln!(
        "{:<44} {}",
        "seccomp user notification (NEW_LISTENER)",
        flag(1 << 3)
    );
    outln!(
        "{:<44} {}",
        "  WAIT_KILLABLE_RECV",
        flag((1 << 3) | (1 << 5))
    );
    let (major, minor) = version(&release);
    let since = |a: u32, b: u32| (major, minor) >= (a, b);
    outln!("{:<44} {} (kernel >= 5.9)", "  ADDFD", yes_no(since(5, 9)));
    outln!(
        "{:<44} {} (kernel >= 5.14)",
        "  ADDFD_FLAG_SEND",
        yes_no(since(5, 14))
    );
    outln!(
        "{:<44} {} (kernel >= 6.6)",
        "  SYNC_WAKE_UP",
        yes_no(since(6, 6))
    );
    outln!("{:<44} {}", "pidfd_getfd", yes_no(pidfd_getfd_works()));
    outln!(
        "{:<44} {}",
        "memfd MFD_NOEXEC_SEAL",
        yes_no(kernel::memfd_noexec_seal())
    );
    let (cg, delegated) = cgroup();
    outln!("{:<44} {cg}", "cgroup v2");
    outln!("{:<44} {delegated}", "  writable delegated cgroup");
    outln!();
    outln!("{:<44} {}", "protection", "on this machine");
    for p in Protection::ALL {
        let state = if p.available() {
            "enforced".to_owned()
        } else {
            format!(
                "MISSING: strict refuses to run, --best-effort runs without ({})",
                p.needs()
            )
        };
        outln!(
            "{:<44} {state}",
            p.to_string().split(" [").next().unwrap_or("")
        );
    }
    outln!("{:<44} enforced", "seccomp deny list");
    outln!();
    let pidns = match sandlock::ns::probe() {
        Ok(()) => "yes: nothing outlives a killed sandlock".to_owned(),
        Err(e) => format!(
            "no ({}): a setsid() grandchild can outlive a sandlock killed with SIGKILL",
            sandlock::errno_text(e)
        ),
    };
    outln!("{:<44} {pidns}", "PID namespace for sandboxes");
    let seeded = if kernel::seed_library() {
        "in the process (seed library), system calls by the supervisor"
    } else {
        "by the supervisor (no seed library in this build)"
    };
    outln!("{:<44} {seeded}", "--random-seed getrandom() answered");
    let m = sandlock::Mechanisms::detect();
    outln!("{:<44} {}", "-P / max_processes held by", m.processes);
    outln!("{:<44} {}", "-m / max_memory held by", m.memory);
    outln!("{:<44} {}", "-c / max_cpu held by", m.cpu);
    0
}

fn version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn pidfd_getfd_works() -> bool {
    let Some(me) = rustix::process::Pid::from_raw(std::process::id() as i32) else {
        return false;
    };
    let Ok(pidfd) = rustix::process::pidfd_open(me, rustix::process::PidfdFlags::empty()) else {
        return false;
    };
    rustix::process::pidfd_getfd(&pidfd, 0, rustix::process::PidfdGetfdFlags::empty()).is_ok()
}

/// (where cgroup v2 is mounted, whether this process's cgroup is writable).
fn cgroup() -> (String, String) {
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|m| std::path::Path::new(&format!("{m}/cgroup.controllers")).exists());
    let Some(mount) = mount else {
        return ("no".to_owned(), "no".to_owned());
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        });
    let delegated = match own {
        Some(path) => {
            let dir = format!("{mount}{path}");
            let writable = rustix::fs::access(
                format!("{dir}/cgroup.procs").as_str(),
                rustix::fs::Access::WRITE_OK,
            )
            .is_ok()
                && rustix::fs::access(dir.as_str(), rustix::fs::Access::WRITE_OK).is_ok();
            if writable {
                format!("yes ({dir})")
            } else {
                format!("no ({dir} is not writable)")
            }
        }
        None => "no (process not in a v2 cgroup)".to_owned(),
    };
    (format!("yes ({mount})"), delegated)
}
