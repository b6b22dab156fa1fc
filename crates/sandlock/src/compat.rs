//! Which protections the policy asks for, and which the running kernel has.

use std::fmt;

use sandlock_policy::Policy;

use crate::kernel;

/// A protection that depends on a kernel feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Protection {
    /// Filesystem rules (Landlock, Linux 5.13).
    Filesystem,
    /// Truncation of files outside the writable trees (Landlock ABI 3, Linux 6.2).
    Truncate,
    /// TCP port rules, `net_bind` / `net_connect` (Landlock ABI 4, Linux 6.7).
    TcpPorts,
    /// Device ioctls on files opened read-only (Landlock ABI 5, Linux 6.10).
    DeviceIoctl,
    /// Abstract unix sockets outside the sandbox, `isolate_ipc` (Landlock ABI 6, Linux 6.12).
    AbstractUnixScope,
    /// Signals to processes outside the sandbox, `isolate_signals` (Landlock ABI 6, Linux 6.12).
    SignalScope,
    /// Executing a memfd (`MFD_NOEXEC_SEAL`, Linux 6.3).
    MemfdNoExec,
    /// The host name inside, `hostname` (a UTS namespace: user namespaces
    /// for a caller that is not root).
    HostName,
    /// `/proc/cpuinfo` and `/sys/devices/system/cpu/*` agreeing with
    /// `num_cpus` (a mount namespace).
    CpuView,
    /// A private `/proc` when the policy grants it: only the sandbox's
    /// processes (PID and mount namespaces).
    PrivateProc,
    /// `/dev/urandom` and `/dev/random` following `random_seed` (a mount
    /// namespace).
    SeededDevices,
    /// A directory as the sandbox's root, `chroot` (`CAP_SYS_CHROOT`: root,
    /// or a user namespace). Never skipped, even in best-effort mode: the
    /// policy's paths are inside the new root.
    NewRoot,
    /// Paths hidden by name, `fs_masked` (a mount namespace: user namespaces
    /// for a caller that is not root). Never skipped, even in best-effort
    /// mode: what the masks hide, the policy's grants would show.
    MaskedPaths,
}

impl Protection {
    /// Every protection.
    pub const ALL: [Protection; 13] = [
        Protection::Filesystem,
        Protection::Truncate,
        Protection::TcpPorts,
        Protection::DeviceIoctl,
        Protection::AbstractUnixScope,
        Protection::SignalScope,
        Protection::MemfdNoExec,
        Protection::HostName,
        Protection::CpuView,
        Protection::PrivateProc,
        Protection::SeededDevices,
        Protection::NewRoot,
        Protection::MaskedPaths,
    ];

    /// The Landlock ABI this protection needs (`None`: not a Landlock right).
    pub fn landlock_abi(self) -> Option<i32> {
        match self {
            Protection::Filesystem => Some(1),
            Protection::Truncate => Some(3),
            Protection::TcpPorts => Some(4),
            Protection::DeviceIoctl => Some(5),
            Protection::AbstractUnixScope | Protection::SignalScope => Some(6),
            _ => None,
        }
    }

    /// Whether the running kernel provides this protection.
    pub fn available(self) -> bool {
        match self {
            Protection::MemfdNoExec => kernel::memfd_noexec_seal(),
            Protection::HostName
            | Protection::CpuView
            | Protection::PrivateProc
            | Protection::SeededDevices => crate::ns::probably_available(),
            Protection::NewRoot | Protection::MaskedPaths => {
                crate::ns::is_admin_root() || crate::ns::probably_available()
            }
            _ => self
                .landlock_abi()
                .is_some_and(|abi| kernel::landlock_abi().is_some_and(|have| have >= abi)),
        }
    }

    /// Whether `policy` asks for this protection.
    pub fn asked_by(self, policy: &Policy) -> bool {
        match self {
            Protection::Filesystem
            | Protection::Truncate
            | Protection::DeviceIoctl
            | Protection::MemfdNoExec => true,
            // Without any network rule, sockets of the IP families are
            // refused by the seccomp filter: Landlock's TCP rules add
            // defence in depth but are not needed.
            Protection::TcpPorts => {
                !policy.net_bind().is_empty() || !policy.net_connect().is_empty()
            }
            Protection::AbstractUnixScope => policy.isolate_ipc(),
            Protection::SignalScope => policy.isolate_signals(),
            Protection::HostName => policy.hostname().is_some(),
            Protection::CpuView => policy.num_cpus().is_some(),
            Protection::PrivateProc => grants_proc(policy),
            Protection::SeededDevices => policy.random_seed().is_some(),
            Protection::NewRoot => policy.chroot().is_some(),
            Protection::MaskedPaths => !policy.fs_masked().is_empty(),
        }
    }

    /// What the protection needs from the kernel.
    pub fn needs(self) -> &'static str {
        match self {
            Protection::Filesystem => "Landlock, Linux 5.13",
            Protection::Truncate => "Landlock ABI 3, Linux 6.2",
            Protection::TcpPorts => "Landlock ABI 4, Linux 6.7",
            Protection::DeviceIoctl => "Landlock ABI 5, Linux 6.10",
            Protection::AbstractUnixScope | Protection::SignalScope => "Landlock ABI 6, Linux 6.12",
            Protection::MemfdNoExec => "MFD_NOEXEC_SEAL, Linux 6.3",
            Protection::HostName
            | Protection::CpuView
            | Protection::PrivateProc
            | Protection::SeededDevices
            | Protection::NewRoot
            | Protection::MaskedPaths => "namespaces: root, or unprivileged user namespaces",
        }
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Protection::Filesystem => "filesystem rules",
            Protection::Truncate => "truncate rule",
            Protection::TcpPorts => "TCP port rules (net_bind, net_connect)",
            Protection::DeviceIoctl => "device ioctl rule",
            Protection::AbstractUnixScope => "abstract unix socket scoping (isolate_ipc)",
            Protection::SignalScope => "signal scoping (isolate_signals)",
            Protection::MemfdNoExec => "non-executable memfds",
            Protection::HostName => "host name (--hostname)",
            Protection::CpuView => "CPU files (--num-cpus)",
            Protection::PrivateProc => "private /proc",
            Protection::SeededDevices => "seeded random devices (--random-seed)",
            Protection::NewRoot => "new root (--chroot)",
            Protection::MaskedPaths => "masked paths (--fs-mask)",
        };
        write!(f, "{what} [{}]", self.needs())
    }
}

/// Whether `policy` grants `/proc` or part of it (a grant of `/` does too).
/// With a new root, the policy's paths are host paths already
/// (`NewRoot::rooted`) and its `/proc` is the root's.
pub(crate) fn grants_proc(policy: &Policy) -> bool {
    let root = policy
        .chroot()
        .map_or("", |r| r.as_str().trim_end_matches('/'));
    policy
        .fs_readable()
        .iter()
        .chain(policy.fs_writable())
        .any(|p| {
            // The path as the sandbox sees it (every path of a rooted
            // policy is under the root).
            let Some(p) = p.as_str().trim_end_matches('/').strip_prefix(root) else {
                return false;
            };
            p.is_empty() || p == "/proc" || p.starts_with("/proc/")
        })
}

/// The protections `policy` asks for that this kernel lacks.
pub fn missing(policy: &Policy) -> Vec<Protection> {
    Protection::ALL
        .into_iter()
        .filter(|p| p.asked_by(policy) && !p.available())
        .collect()
}
