//! The builder that validates each setting of a [`Policy`].

use alloc::string::String;
use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32, NonZeroU64};
use core::time::Duration;

use sandlock_bpf::{Arch, Errno};

use crate::arg::Arg;
use crate::bytesize::ByteSize;
use crate::cpuset::CpuSet;
use crate::error::{ParseError, PolicyError, Reason};
use crate::limit::{CpuPercent, Limit};
use crate::names::{EnvVar, Hostname};
use crate::net::NetHost;
use crate::path::AbsPath;
use crate::policy::{Compat, Policy};
use crate::time::Timestamp;

/// Builds a [`Policy`], checking every value.
///
/// Methods take a typed value or its text form (see [`Arg`]) and never fail
/// on their own: the first invalid value is kept and returned by
/// [`build`](PolicyBuilder::build) as a [`PolicyError`] naming the field and
/// the value. List settings (paths, hosts, ports, syscalls, environment)
/// append; single settings replace an earlier value.
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PolicyBuilder {
    policy: Policy,
    error: Option<PolicyError>,
}

/// Generates a boolean setter.
macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, on: bool) -> Self {
            self.policy.$name = on;
            self
        }
    )*};
}

impl PolicyBuilder {
    /// A builder starting from [`Policy::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder starting from `policy`.
    pub(crate) fn from_policy(policy: Policy) -> Self {
        PolicyBuilder {
            policy,
            error: None,
        }
    }

    /// Validates `value` for `field` and stores it with `store`, or keeps the
    /// error if it is the first one.
    fn with<T>(
        mut self,
        field: &'static str,
        value: impl Arg<T>,
        store: impl FnOnce(&mut Policy, T),
    ) -> Self {
        match value.into_arg() {
            Ok(v) => store(&mut self.policy, v),
            Err(e) => self.fail(e.in_field(field)),
        }
        self
    }

    /// Keeps `e` unless an earlier error is already kept.
    fn fail(&mut self, e: PolicyError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Allows reading and executing `path` and everything below it.
    pub fn fs_read(self, path: impl Arg<AbsPath>) -> Self {
        self.with("fs_readable", path, |p, v| p.fs_readable.push(v))
    }

    /// Allows reading, writing and creating in `path` and everything below it.
    pub fn fs_write(self, path: impl Arg<AbsPath>) -> Self {
        self.with("fs_writable", path, |p, v| p.fs_writable.push(v))
    }

    /// Closes `path` and everything below it, even inside an allowed tree.
    pub fn fs_deny(self, path: impl Arg<AbsPath>) -> Self {
        self.with("fs_denied", path, |p, v| p.fs_denied.push(v))
    }

    /// Hides `path` from the sandbox by name: not found, and its directory
    /// read-only (see [`Policy::fs_masked`]).
    pub fn fs_mask(self, path: impl Arg<AbsPath>) -> Self {
        self.with("fs_masked", path, |p, v| p.fs_masked.push(v))
    }

    /// Denies the syscall `name` on top of the default deny list. The name
    /// must exist in the native architecture's table.
    pub fn deny_syscall(mut self, name: impl AsRef<str>) -> Self {
        match checked_syscall(name.as_ref()) {
            Ok(n) => self.policy.deny_syscalls.push(n),
            Err(e) => self.fail(e.in_field("deny_syscalls")),
        }
        self
    }

    /// Switches to allow-list mode (if not already) and allows the syscall
    /// `name`. Cannot be combined with [`deny_syscall`](Self::deny_syscall).
    pub fn allow_syscall(mut self, name: impl AsRef<str>) -> Self {
        match checked_syscall(name.as_ref()) {
            Ok(n) => self
                .policy
                .allow_syscalls
                .get_or_insert_with(Vec::new)
                .push(n),
            Err(e) => self.fail(e.in_field("allow_syscalls")),
        }
        self
    }

    /// Switches to allow-list mode with `names` (possibly none) added.
    pub fn allow_syscalls<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.policy.allow_syscalls.get_or_insert_with(Vec::new);
        for n in names {
            self = self.allow_syscall(n);
        }
        self
    }

    /// The errno for syscalls refused by `deny_syscalls` or missing from
    /// `allow_syscalls` (a number in `1..=4095` or a name such as `ENOSYS`).
    pub fn syscall_errno(self, errno: impl Arg<Errno>) -> Self {
        self.with("syscall_errno", errno, |p, v| p.syscall_errno = v)
    }

    /// Allows reaching `host`: an IP address, a CIDR network or a host name.
    pub fn net_allow_host(self, host: impl Arg<NetHost>) -> Self {
        self.with("net_allow_hosts", host, |p, v| p.net_allow_hosts.push(v))
    }

    /// Allows binding TCP port `port` (0 is an error).
    pub fn net_bind(self, port: impl Arg<NonZeroU16>) -> Self {
        self.with("net_bind", port, |p, v| insert_sorted(&mut p.net_bind, v))
    }

    /// Allows connecting to TCP port `port` (0 is an error).
    pub fn net_connect(self, port: impl Arg<NonZeroU16>) -> Self {
        self.with("net_connect", port, |p, v| {
            insert_sorted(&mut p.net_connect, v)
        })
    }

    flags! {
        /// Refuses raw and packet sockets (on by default).
        no_raw_sockets;
        /// Refuses UDP sockets.
        no_udp;
        /// Makes abstract Unix sockets outside the sandbox unreachable.
        isolate_ipc;
        /// Keeps the sandbox from signalling processes outside it.
        isolate_signals;
        /// Turns address-space layout randomisation off.
        no_randomize_memory;
        /// Turns transparent huge pages off.
        no_huge_pages;
        /// Turns core dumps off.
        no_coredump;
        /// Starts the command from a minimal environment.
        clean_env;
    }

    /// Caps the sandbox's memory: a [`ByteSize`], bytes, text such as
    /// `"512M"`, or `"unlimited"`.
    pub fn max_memory(self, limit: impl Arg<Limit<ByteSize>>) -> Self {
        self.with("max_memory", limit, |p, v| p.max_memory = v)
    }

    /// Caps the tasks alive in the sandbox at once (0 is an error).
    pub fn max_processes(self, limit: impl Arg<Limit<NonZeroU32>>) -> Self {
        self.with("max_processes", limit, |p, v| p.max_processes = v)
    }

    /// Caps the sandbox's CPU use, in percent of one core (`1..=100`).
    pub fn max_cpu(self, limit: impl Arg<Limit<CpuPercent>>) -> Self {
        self.with("max_cpu", limit, |p, v| p.max_cpu = v)
    }

    /// Sets the open-file limit (0 is an error).
    pub fn max_open_files(self, limit: impl Arg<Limit<NonZeroU64>>) -> Self {
        self.with("max_open_files", limit, |p, v| p.max_open_files = v)
    }

    /// Kills the sandbox after `timeout` (a `Duration`, whole seconds, or
    /// text such as `"1.5s"`); zero is an error.
    pub fn timeout(self, timeout: impl Arg<Duration>) -> Self {
        self.with("timeout", nonzero_duration(timeout), |p, v| {
            p.timeout = Some(v)
        })
    }

    /// Starts the sandbox's realtime clocks at `start` (ISO 8601 text or a [`Timestamp`]).
    pub fn time_start(self, start: impl Arg<Timestamp>) -> Self {
        self.with("time_start", start, |p, v| p.time_start = Some(v))
    }

    /// Seeds the sandbox's random stream.
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.policy.random_seed = Some(seed);
        self
    }

    /// Shows the sandbox `n` CPUs (0 is an error).
    pub fn num_cpus(self, n: impl Arg<NonZeroU32>) -> Self {
        self.with("num_cpus", n, |p, v| p.num_cpus = Some(v))
    }

    /// Pins the sandbox to `cores` (a CPU list such as `"0-3,6"`).
    pub fn cpu_cores(self, cores: impl Arg<CpuSet>) -> Self {
        self.with("cpu_cores", cores, |p, v| p.cpu_cores = Some(v))
    }

    /// Sets the host name the sandbox sees.
    pub fn hostname(self, name: impl Arg<Hostname>) -> Self {
        self.with("hostname", name, |p, v| p.hostname = Some(v))
    }

    /// Adds or overrides an environment variable, given as `"KEY=VALUE"` or an [`EnvVar`].
    pub fn env(self, var: impl Arg<EnvVar>) -> Self {
        self.with("env", var, set_env)
    }

    /// Adds or overrides the environment variable `key` with `value`.
    pub fn env_var(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with("env", EnvVar::new(key, value), set_env)
    }

    /// Sets the command's working directory.
    pub fn workdir(self, dir: impl Arg<AbsPath>) -> Self {
        self.with("workdir", dir, |p, v| p.workdir = Some(v))
    }

    /// Same as [`workdir`](Self::workdir).
    pub fn cwd(self, dir: impl Arg<AbsPath>) -> Self {
        self.workdir(dir)
    }

    /// Makes `dir` the sandbox's root directory.
    pub fn chroot(self, dir: impl Arg<AbsPath>) -> Self {
        self.with("chroot", dir, |p, v| p.chroot = Some(v))
    }

    /// Chooses what to do when the kernel cannot enforce a protection.
    pub fn compat(mut self, compat: Compat) -> Self {
        self.policy.compat = compat;
        self
    }

    /// How long a held syscall waits for the callback's verdict (zero is an error).
    pub fn callback_timeout(self, timeout: impl Arg<Duration>) -> Self {
        self.with("callback_timeout", nonzero_duration(timeout), |p, v| {
            p.callback_timeout = v;
        })
    }

    /// The event categories the policy callback asks for (default: all).
    /// Syscalls of a category nobody asks for are not intercepted: a
    /// callback that only watches the network adds nothing to opens.
    pub fn policy_events(
        mut self,
        categories: impl IntoIterator<Item = crate::SyscallCategory>,
    ) -> Self {
        self.policy.policy_events = categories.into_iter().collect();
        self
    }

    /// Sets the policy callback, replacing any earlier one.
    #[cfg(feature = "std")]
    pub fn policy_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(crate::SyscallEvent, &mut crate::PolicyContext) -> crate::Verdict
            + Send
            + Sync
            + 'static,
    {
        self.policy.policy_fn = Some(crate::policy::Callback(alloc::sync::Arc::new(f)));
        self
    }

    /// Sets (or with `None` removes) an already shared policy callback.
    #[cfg(feature = "std")]
    pub fn policy_fn_shared(mut self, f: Option<crate::PolicyFn>) -> Self {
        self.policy.policy_fn = f.map(crate::policy::Callback);
        self
    }

    /// Checks the settings together and returns the policy, or the first
    /// invalid value.
    pub fn build(self) -> Result<Policy, PolicyError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let p = self.policy;
        if !p.deny_syscalls.is_empty() && p.allow_syscalls.is_some() {
            return Err(PolicyError::Conflict {
                first: "deny_syscalls",
                second: "allow_syscalls",
                why: "an allow-list replaces the deny list",
            });
        }
        if let (Some(n), Some(cores)) = (p.num_cpus, &p.cpu_cores)
            && n.get() as usize > cores.len()
        {
            return Err(PolicyError::Invalid {
                field: "num_cpus",
                value: alloc::format!("{n}"),
                reason: Reason::MoreCpusThanCores { cores: cores.len() },
            });
        }
        Ok(p)
    }
}

/// Checks a syscall name against the native table (every known table when
/// the native architecture is not supported).
fn checked_syscall(name: &str) -> Result<String, ParseError> {
    let native = Arch::native();
    let known = match native {
        Some(arch) => arch.syscall_nr(name).is_some(),
        None => Arch::ALL.iter().any(|a| a.syscall_nr(name).is_some()),
    };
    if known {
        Ok(String::from(name))
    } else if name.is_empty() {
        Err(ParseError::new(name, Reason::Empty))
    } else {
        Err(ParseError::new(
            name,
            Reason::UnknownSyscall { arch: native },
        ))
    }
}

/// Converts a duration argument and refuses zero.
fn nonzero_duration(d: impl Arg<Duration>) -> Result<Duration, ParseError> {
    let d = d.into_arg()?;
    if d.is_zero() {
        Err(ParseError::new("0", Reason::Zero))
    } else {
        Ok(d)
    }
}

/// Inserts a port keeping the list sorted and free of duplicates.
fn insert_sorted(list: &mut Vec<NonZeroU16>, port: NonZeroU16) {
    if let Err(i) = list.binary_search(&port) {
        list.insert(i, port);
    }
}

/// Sets a variable, replacing an earlier one with the same key in place.
fn set_env(p: &mut Policy, var: EnvVar) {
    match p.env.iter_mut().find(|v| v.key() == var.key()) {
        Some(old) => *old = var,
        None => p.env.push(var),
    }
}

#[cfg(test)]
mod tests;
