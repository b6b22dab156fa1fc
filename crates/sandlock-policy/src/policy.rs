//! The static policy: everything a sandbox may do, fixed before it starts.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::num::{NonZeroU16, NonZeroU32, NonZeroU64};
use core::str::FromStr;
use core::time::Duration;

use sandlock_bpf::Errno;

use crate::builder::PolicyBuilder;
use crate::bytesize::ByteSize;
use crate::cpuset::CpuSet;
use crate::error::{ParseError, Reason};
use crate::event::CategorySet;
use crate::limit::{CpuPercent, Limit};
use crate::names::{EnvVar, Hostname};
use crate::net::NetHost;
use crate::path::AbsPath;
use crate::time::Timestamp;

/// How to treat a protection the running kernel cannot enforce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compat {
    /// Refuse to start when any protection the policy asks for is missing (the default).
    #[default]
    Strict,
    /// Start anyway, and report once each protection that is not enforced.
    BestEffort,
}

impl Compat {
    /// The profile spelling: `strict` or `best-effort`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compat::Strict => "strict",
            Compat::BestEffort => "best-effort",
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compat {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "strict" => Ok(Compat::Strict),
            "best-effort" | "best_effort" => Ok(Compat::BestEffort),
            _ => Err(ParseError::new(
                s,
                Reason::Syntax("`strict` or `best-effort`"),
            )),
        }
    }
}

/// The policy callback: called (on the supervisor's callback thread) with
/// each event the policy asks for and a [`PolicyContext`](crate::PolicyContext)
/// through which it may change the live policy; its [`Verdict`](crate::Verdict)
/// decides a held syscall.
///
/// Shared (`Arc`) so that [`Policy`] stays `Clone`. Only with the `std`
/// feature, because its context drives the `std`-only live policy.
#[cfg(feature = "std")]
pub type PolicyFn = alloc::sync::Arc<
    dyn Fn(crate::SyscallEvent, &mut crate::PolicyContext) -> crate::Verdict + Send + Sync,
>;

/// The callback slot: compared by identity, printed without its contents.
#[cfg(feature = "std")]
#[derive(Clone)]
pub(crate) struct Callback(pub(crate) PolicyFn);

#[cfg(feature = "std")]
impl PartialEq for Callback {
    fn eq(&self, other: &Self) -> bool {
        alloc::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(feature = "std")]
impl Eq for Callback {}

#[cfg(feature = "std")]
impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<policy callback>")
    }
}

/// A validated sandbox policy.
///
/// Built with [`Policy::builder`] (or read from a TOML profile with the
/// `std` feature); every field is checked on the way in, and the fields are
/// private, so a `Policy` value is always valid. Accessors carry each field's
/// meaning; [`Policy::to_builder`] turns a policy back into a builder so more
/// settings can be layered on top (command-line flags over a profile).
///
/// `Policy::default()` allows nothing optional: no readable or writable
/// path, no network, no limits, raw sockets refused.
///
/// ```
/// use sandlock_policy::{Limit, Policy};
/// let policy = Policy::builder()
///     .fs_read("/usr")
///     .fs_write("/tmp/work")
///     .net_allow_host("10.0.0.0/8")
///     .net_connect(443)
///     .max_memory("512M")
///     .max_processes(64)
///     .build()?;
/// assert_eq!(policy.max_memory().get().map(|m| m.get()), Some(512 << 20));
/// assert!(policy.no_raw_sockets());
///
/// let err = Policy::builder().fs_read("usr").build().unwrap_err();
/// assert_eq!(err.to_string(), r#"fs_readable: "usr" is not an absolute path"#);
/// # Ok::<(), sandlock_policy::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub(crate) fs_readable: Vec<AbsPath>,
    pub(crate) fs_writable: Vec<AbsPath>,
    pub(crate) fs_denied: Vec<AbsPath>,
    pub(crate) fs_masked: Vec<AbsPath>,
    pub(crate) deny_syscalls: Vec<String>,
    pub(crate) allow_syscalls: Option<Vec<String>>,
    pub(crate) syscall_errno: Errno,
    pub(crate) net_allow_hosts: Vec<NetHost>,
    pub(crate) net_bind: Vec<NonZeroU16>,
    pub(crate) net_connect: Vec<NonZeroU16>,
    pub(crate) no_raw_sockets: bool,
    pub(crate) no_udp: bool,
    pub(crate) isolate_ipc: bool,
    pub(crate) isolate_signals: bool,
    pub(crate) max_memory: Limit<ByteSize>,
    pub(crate) max_processes: Limit<NonZeroU32>,
    pub(crate) max_cpu: Limit<CpuPercent>,
    pub(crate) max_open_files: Limit<NonZeroU64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) time_start: Option<Timestamp>,
    pub(crate) random_seed: Option<u64>,
    pub(crate) no_randomize_memory: bool,
    pub(crate) no_huge_pages: bool,
    pub(crate) no_coredump: bool,
    pub(crate) num_cpus: Option<NonZeroU32>,
    pub(crate) cpu_cores: Option<CpuSet>,
    pub(crate) hostname: Option<Hostname>,
    pub(crate) clean_env: bool,
    pub(crate) env: Vec<EnvVar>,
    pub(crate) workdir: Option<AbsPath>,
    pub(crate) chroot: Option<AbsPath>,
    pub(crate) compat: Compat,
    pub(crate) callback_timeout: Duration,
    pub(crate) policy_events: CategorySet,
    #[cfg(feature = "std")]
    pub(crate) policy_fn: Option<Callback>,
}

/// The default bounded wait for a policy callback's verdict.
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fs_readable: Vec::new(),
            fs_writable: Vec::new(),
            fs_denied: Vec::new(),
            fs_masked: Vec::new(),
            deny_syscalls: Vec::new(),
            allow_syscalls: None,
            syscall_errno: Errno::EPERM,
            net_allow_hosts: Vec::new(),
            net_bind: Vec::new(),
            net_connect: Vec::new(),
            no_raw_sockets: true,
            no_udp: false,
            isolate_ipc: false,
            isolate_signals: false,
            max_memory: Limit::Unlimited,
            max_processes: Limit::Unlimited,
            max_cpu: Limit::Unlimited,
            max_open_files: Limit::Unlimited,
            timeout: None,
            time_start: None,
            random_seed: None,
            no_randomize_memory: false,
            no_huge_pages: false,
            no_coredump: false,
            num_cpus: None,
            cpu_cores: None,
            hostname: None,
            clean_env: false,
            env: Vec::new(),
            workdir: None,
            chroot: None,
            compat: Compat::Strict,
            callback_timeout: DEFAULT_CALLBACK_TIMEOUT,
            policy_events: CategorySet::ALL,
            #[cfg(feature = "std")]
            policy_fn: None,
        }
    }
}

impl Policy {
    /// A builder starting from [`Policy::default`].
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::new()
    }

    /// A builder starting from this policy, to layer more settings on top.
    /// List fields append; single values replace.
    pub fn to_builder(&self) -> PolicyBuilder {
        PolicyBuilder::from_policy(self.clone())
    }

    /// Paths (and everything below them) the sandbox may read and execute.
    pub fn fs_readable(&self) -> &[AbsPath] {
        &self.fs_readable
    }

    /// Paths (and everything below them) the sandbox may read, write and create in.
    pub fn fs_writable(&self) -> &[AbsPath] {
        &self.fs_writable
    }

    /// Paths that stay closed even inside a readable or writable tree.
    pub fn fs_denied(&self) -> &[AbsPath] {
        &self.fs_denied
    }

    /// Paths hidden from the sandbox by name: in the sandbox's own mount
    /// namespace, a read-only overlay of each one's directory holds a
    /// whiteout of its name, so it is not found, even when the host
    /// replaces it. Unlike [`fs_denied`](Self::fs_denied), nothing is
    /// intercepted at run time: the mounts are the whole cost, paid once
    /// at the start.
    pub fn fs_masked(&self) -> &[AbsPath] {
        &self.fs_masked
    }

    /// Syscalls denied on top of the default deny list (names in the native table).
    pub fn deny_syscalls(&self) -> &[String] {
        &self.deny_syscalls
    }

    /// In allow-list mode, the only syscalls allowed (replacing the default
    /// deny list); `None` when not in allow-list mode.
    pub fn allow_syscalls(&self) -> Option<&[String]> {
        self.allow_syscalls.as_deref()
    }

    /// The errno returned by a syscall refused through [`deny_syscalls`](Self::deny_syscalls)
    /// or missing from [`allow_syscalls`](Self::allow_syscalls); `EPERM` by default.
    pub fn syscall_errno(&self) -> Errno {
        self.syscall_errno
    }

    /// Hosts the sandbox may reach: names (resolved once at start), addresses, networks.
    pub fn net_allow_hosts(&self) -> &[NetHost] {
        &self.net_allow_hosts
    }

    /// TCP ports the sandbox may bind, ascending.
    pub fn net_bind(&self) -> &[NonZeroU16] {
        &self.net_bind
    }

    /// TCP ports the sandbox may connect to, ascending.
    pub fn net_connect(&self) -> &[NonZeroU16] {
        &self.net_connect
    }

    /// Whether raw and packet sockets are refused (default `true`).
    pub fn no_raw_sockets(&self) -> bool {
        self.no_raw_sockets
    }

    /// Whether UDP sockets are refused.
    pub fn no_udp(&self) -> bool {
        self.no_udp
    }

    /// Whether abstract Unix sockets outside the sandbox are unreachable.
    pub fn isolate_ipc(&self) -> bool {
        self.isolate_ipc
    }

    /// Whether processes outside the sandbox cannot be signalled.
    pub fn isolate_signals(&self) -> bool {
        self.isolate_signals
    }

    /// The memory the whole sandbox may hold.
    pub fn max_memory(&self) -> Limit<ByteSize> {
        self.max_memory
    }

    /// The tasks (processes and threads) alive in the sandbox at once.
    pub fn max_processes(&self) -> Limit<NonZeroU32> {
        self.max_processes
    }

    /// The CPU share of the whole sandbox, in percent of one core.
    pub fn max_cpu(&self) -> Limit<CpuPercent> {
        self.max_cpu
    }

    /// The open-file limit (`RLIMIT_NOFILE`).
    pub fn max_open_files(&self) -> Limit<NonZeroU64> {
        self.max_open_files
    }

    /// The wall-clock time after which the whole sandbox is killed (never zero).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The instant the sandbox's realtime clocks start at.
    pub fn time_start(&self) -> Option<Timestamp> {
        self.time_start
    }

    /// The seed of the sandbox's deterministic random stream.
    pub fn random_seed(&self) -> Option<u64> {
        self.random_seed
    }

    /// Whether address-space layout randomisation is off for the sandbox.
    pub fn no_randomize_memory(&self) -> bool {
        self.no_randomize_memory
    }

    /// Whether transparent huge pages are off for the sandbox.
    pub fn no_huge_pages(&self) -> bool {
        self.no_huge_pages
    }

    /// Whether core dumps are off (`RLIMIT_CORE` 0).
    pub fn no_coredump(&self) -> bool {
        self.no_coredump
    }

    /// The number of CPUs the sandbox sees.
    pub fn num_cpus(&self) -> Option<NonZeroU32> {
        self.num_cpus
    }

    /// The CPUs the sandbox's tasks are pinned to.
    pub fn cpu_cores(&self) -> Option<&CpuSet> {
        self.cpu_cores.as_ref()
    }

    /// The host name the sandbox sees.
    pub fn hostname(&self) -> Option<&Hostname> {
        self.hostname.as_ref()
    }

    /// Whether the command starts from a minimal environment instead of the caller's.
    pub fn clean_env(&self) -> bool {
        self.clean_env
    }

    /// Variables added to (or overriding) the command's environment, one per key.
    pub fn env(&self) -> &[EnvVar] {
        &self.env
    }

    /// The command's working directory.
    pub fn workdir(&self) -> Option<&AbsPath> {
        self.workdir.as_ref()
    }

    /// The directory that becomes the sandbox's root. The policy's other
    /// paths are then paths inside it.
    pub fn chroot(&self) -> Option<&AbsPath> {
        self.chroot.as_ref()
    }

    /// A copy of this policy with each file-system path (`fs_readable`,
    /// `fs_writable`, `fs_denied`, `fs_masked`, in that order) replaced by what `f`
    /// returns for it; `f` also gets the field's name. The first error
    /// stops the mapping and is returned.
    ///
    /// ```
    /// use sandlock_policy::{AbsPath, Policy};
    ///
    /// let p = Policy::builder().fs_read("/usr").fs_deny("/usr/secret").build()?;
    /// let moved = p.map_fs_paths(|_, path| {
    ///     AbsPath::new(format!("/srv/root{}", path.as_str()))
    /// })?;
    /// assert_eq!(moved.fs_readable()[0].as_str(), "/srv/root/usr");
    /// assert_eq!(moved.fs_denied()[0].as_str(), "/srv/root/usr/secret");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_fs_paths<E>(
        &self,
        mut f: impl FnMut(&'static str, &AbsPath) -> Result<AbsPath, E>,
    ) -> Result<Policy, E> {
        let mut out = self.clone();
        for (field, list) in [
            ("fs_readable", &mut out.fs_readable),
            ("fs_writable", &mut out.fs_writable),
            ("fs_denied", &mut out.fs_denied),
            ("fs_masked", &mut out.fs_masked),
        ] {
            for p in list.iter_mut() {
                *p = f(field, p)?;
            }
        }
        Ok(out)
    }

    /// What to do when the kernel cannot enforce a protection.
    pub fn compat(&self) -> Compat {
        self.compat
    }

    /// How long a held syscall waits for the callback's verdict before it is
    /// refused (default 5 s; never zero).
    pub fn callback_timeout(&self) -> Duration {
        self.callback_timeout
    }

    /// The event categories the policy callback asks for (default: all).
    /// Like the callback, not part of a TOML profile.
    pub fn policy_events(&self) -> CategorySet {
        self.policy_events
    }

    /// The policy callback, if any. It is not part of a TOML profile.
    #[cfg(feature = "std")]
    pub fn policy_fn(&self) -> Option<&PolicyFn> {
        self.policy_fn.as_ref().map(|c| &c.0)
    }

    /// Whether any network rule is present (hosts, connect or bind ports).
    /// Without one, the sandbox gets no IP network at all.
    pub fn has_network_rules(&self) -> bool {
        !self.net_allow_hosts.is_empty()
            || !self.net_connect.is_empty()
            || !self.net_bind.is_empty()
    }
}
