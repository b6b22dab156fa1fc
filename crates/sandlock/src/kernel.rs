//! Probes of the running kernel's features, each asked once per process.

use std::sync::OnceLock;

use rustix::fs::MemfdFlags;
use rustix::io::Errno;

use crate::sys;

/// The Landlock ABI version, or `None` when Landlock is missing or off.
pub fn landlock_abi() -> Option<i32> {
    landlock_status().ok()
}

/// The Landlock ABI version, or why there is none (`ENOSYS`: not built in;
/// `EOPNOTSUPP`: built in but not enabled at boot).
pub fn landlock_status() -> Result<i32, Errno> {
    static ABI: OnceLock<Result<i32, Errno>> = OnceLock::new();
    *ABI.get_or_init(sys::host::landlock_abi)
}

/// Whether `memfd_create` knows `MFD_NOEXEC_SEAL` (Linux 6.3).
pub fn memfd_noexec_seal() -> bool {
    static SEAL: OnceLock<bool> = OnceLock::new();
    *SEAL.get_or_init(|| {
        sys::host::memfd_flags_known((MemfdFlags::CLOEXEC | MemfdFlags::NOEXEC_SEAL).bits())
    })
}

/// Whether the kernel accepts seccomp filter flags `flags` (see
/// [`sandlock_notify::FilterFlags`]); installs nothing.
pub fn seccomp_flags_known(flags: u32) -> Result<bool, Errno> {
    sys::host::seccomp_filter_flags_known(flags)
}

/// Whether this build carries the seed library, which answers a
/// dynamically linked program's `getrandom()` inside the process under
/// `random_seed` (x86-64; see `docs/determinism.md`).
pub fn seed_library() -> bool {
    crate::seedlib::available()
}
