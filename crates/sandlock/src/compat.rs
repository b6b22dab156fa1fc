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
}

impl Protection {
    /// Every protection.
    pub const ALL: [Protection; 7] = [
        Protection::Filesystem,
        Protection::Truncate,
        Protection::TcpPorts,
        Protection::DeviceIoctl,
        Protection::AbstractUnixScope,
        Protection::SignalScope,
        Protection::MemfdNoExec,
    ];

    /// The Landlock ABI this protection needs (`None`: not a Landlock right).
    pub fn landlock_abi(self) -> Option<i32> {
        match self {
            Protection::Filesystem => Some(1),
            Protection::Truncate => Some(3),
            Protection::TcpPorts => Some(4),
            Protection::DeviceIoctl => Some(5),
            Protection::AbstractUnixScope | Protection::SignalScope => Some(6),
            Protection::MemfdNoExec => None,
        }
    }

    /// Whether the running kernel provides this protection.
    pub fn available(self) -> bool {
        match self.landlock_abi() {
            Some(abi) => kernel::landlock_abi().is_some_and(|have| have >= abi),
            None => kernel::memfd_noexec_seal(),
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
        };
        write!(f, "{what} [{}]", self.needs())
    }
}

/// The protections `policy` asks for that this kernel lacks.
pub fn missing(policy: &Policy) -> Vec<Protection> {
    Protection::ALL
        .into_iter()
        .filter(|p| p.asked_by(policy) && !p.available())
        .collect()
}
