//! [`confine_current`]: Landlock and the deny filter on the calling process.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use sandlock_notify::FilterFlags;
use sandlock_policy::{Limit, Policy};

use crate::error::{Error, SetupStep};
use crate::ruleset::Landlock;
use crate::sandbox::{check_kernel, cpu_mask};
use crate::sys::child as sys;
use crate::{kernel, seccomp, supervise};

/// Confines the calling process for the rest of its life, irreversibly:
/// its resource limits and scheduling settings, `PR_SET_NO_NEW_PRIVS`, the
/// policy's Landlock ruleset, and its seccomp programs. There is no
/// supervisor: calls a sandbox would send to one are refused with an errno
/// instead (`prlimit64` and friends on another pid: `EPERM`;
/// `memfd_create` without `MFD_NOEXEC_SEAL`: `EPERM`).
///
/// Refused (with an error, before anything is applied): a process with
/// more than one thread (Landlock would confine only the calling one),
/// and the settings that need a parent, a supervisor or namespaces:
/// `timeout`, `time_start`, `random_seed`, `chroot`, `hostname`,
/// `num_cpus`, a private `/proc` (strict mode), the resource limits,
/// `net_allow_hosts`, `fs_denied`, `fs_masked`, `policy_fn`, `clean_env` and `env`.
pub fn confine_current(policy: &Policy) -> Result<(), Error> {
    let refuse = |field: &'static str, why: &str| Error::Invalid {
        field,
        value: "confine_current".to_owned(),
        why: why.to_owned(),
    };
    if policy.timeout().is_some() {
        return Err(refuse("timeout", "needs a parent to kill the sandbox"));
    }
    if policy.time_start().is_some() {
        return Err(refuse("time_start", "needs a supervisor"));
    }
    if policy.random_seed().is_some() {
        return Err(refuse("random_seed", "needs a supervisor"));
    }
    if policy.chroot().is_some() {
        return Err(refuse(
            "chroot",
            "needs a launched sandbox: a running process keeps the root it has",
        ));
    }
    if policy.hostname().is_some() {
        return Err(refuse(
            "hostname",
            "needs a new UTS namespace, which a running process cannot enter here",
        ));
    }
    if policy.num_cpus().is_some() {
        return Err(refuse("num_cpus", "needs a mount namespace of its own"));
    }
    if crate::compat::grants_proc(policy) && policy.compat() == sandlock_policy::Compat::Strict {
        return Err(refuse(
            "fs_readable",
            "a private /proc needs a new PID namespace, which a running process cannot enter (best-effort: the host's /proc)",
        ));
    }
    for (field, limited) in [
        ("max_processes", !policy.max_processes().is_unlimited()),
        ("max_memory", !policy.max_memory().is_unlimited()),
        ("max_cpu", !policy.max_cpu().is_unlimited()),
    ] {
        if limited {
            return Err(refuse(
                field,
                "is held for a whole sandbox, by its supervisor or its cgroups: use Sandbox",
            ));
        }
    }
    if !policy.net_allow_hosts().is_empty() {
        return Err(refuse(
            "net_allow_hosts",
            "host rules need the supervisor, which a process confining itself has not",
        ));
    }
    if !policy.fs_denied().is_empty() {
        return Err(refuse(
            "fs_denied",
            "needs a supervisor (Sandbox::run or spawn)",
        ));
    }
    if !policy.fs_masked().is_empty() {
        return Err(refuse(
            "fs_masked",
            "needs a mount namespace of the sandbox's own, which a running process cannot enter (use Sandbox)",
        ));
    }
    if policy.policy_fn().is_some() {
        return Err(refuse(
            "policy_fn",
            "needs a supervisor (Sandbox::run or spawn)",
        ));
    }
    if policy.clean_env() || !policy.env().is_empty() {
        return Err(refuse(
            "env",
            "the environment of a running process is its own",
        ));
    }
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        })
        .unwrap_or(1);
    if threads != 1 {
        return Err(refuse(
            "threads",
            &format!("the process has {threads} threads; Landlock would confine only this one"),
        ));
    }
    check_kernel(policy)?;
    let features = supervise::features(policy)?;
    let programs = seccomp::build(policy, &features, false)?;
    let landlock = kernel::landlock_abi()
        .map(|abi| Landlock::build(policy, abi).and_then(|l| l.fd()))
        .transpose()?;
    let cwd = policy
        .workdir()
        .map(|w| CString::new(w.as_path().as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| refuse("workdir", "contains a NUL byte"))?;

    let setup = |step: SetupStep| move |errno| Error::Setup { step, errno };
    if let Some(cwd) = &cwd {
        sys::chdir(cwd).map_err(setup(SetupStep::WorkDir))?;
    }
    if let Limit::Limited(n) = policy.max_open_files() {
        sys::set_rlimit(crate::sys::RLIMIT_NOFILE, n.get(), n.get())
            .map_err(setup(SetupStep::Rlimits))?;
    }
    if policy.no_coredump() {
        sys::set_rlimit(crate::sys::RLIMIT_CORE, 0, 0).map_err(setup(SetupStep::Rlimits))?;
    }
    if policy.no_randomize_memory() {
        sys::personality(seccomp::ADDR_NO_RANDOMIZE as u32)
            .map_err(setup(SetupStep::Personality))?;
    }
    if policy.no_huge_pages() {
        sys::thp_disable().map_err(setup(SetupStep::HugePages))?;
    }
    if let Some(cores) = policy.cpu_cores() {
        sys::sched_setaffinity(&cpu_mask(cores)?).map_err(setup(SetupStep::CpuAffinity))?;
    }
    sandlock_notify::set_no_new_privs().map_err(setup(SetupStep::NoNewPrivs))?;
    if let Some(fd) = &landlock {
        sys::landlock_restrict_self(fd.as_raw_fd()).map_err(setup(SetupStep::Landlock))?;
    }
    sandlock_notify::install_filter(programs.base.insns(), FilterFlags::EMPTY)
        .map_err(setup(SetupStep::Seccomp))?;
    if let Some(user) = &programs.user {
        sandlock_notify::install_filter(user.insns(), FilterFlags::EMPTY)
            .map_err(setup(SetupStep::SeccompUser))?;
    }
    Ok(())
}
