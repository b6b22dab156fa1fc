//! The seccomp user-notification ABI (`<linux/seccomp.h>`): structures,
//! flags and ioctl opcodes, laid out exactly as the kernel expects them.
//!
//! Nothing here makes a system call; `crate::sys` does.

use rustix::ioctl::{Opcode, opcode};

/// `struct seccomp_data`: what the filter and the supervisor see of a syscall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SeccompData {
    /// The syscall number (as the architecture numbers it).
    pub nr: i32,
    /// The `AUDIT_ARCH_*` value of the calling convention.
    pub arch: u32,
    /// The instruction pointer at the time of the call.
    pub instruction_pointer: u64,
    /// The six raw syscall arguments.
    pub args: [u64; 6],
}

/// `struct seccomp_notif`: one intercepted syscall, as `NOTIF_RECV` returns it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SeccompNotif {
    /// The cookie that names this notification in every later ioctl.
    pub id: u64,
    /// The calling thread's id, in the listener owner's PID namespace (0 if
    /// it is not visible there).
    pub pid: u32,
    /// Reserved, always 0.
    pub flags: u32,
    /// The syscall and its arguments.
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`: the answer `NOTIF_SEND` gives the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SeccompNotifResp {
    /// The notification's id.
    pub id: u64,
    /// The syscall's return value when `error` is 0 and no flag is set.
    pub val: i64,
    /// A negative errno, or 0.
    pub error: i32,
    /// [`USER_NOTIF_FLAG_CONTINUE`] or 0.
    pub flags: u32,
}

/// `struct seccomp_notif_addfd`: install a supervisor fd into the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SeccompNotifAddfd {
    /// The notification's id.
    pub id: u64,
    /// [`ADDFD_FLAG_SETFD`] and/or [`ADDFD_FLAG_SEND`].
    pub flags: u32,
    /// The fd, in the supervisor, to install.
    pub srcfd: u32,
    /// The fd number wanted in the target (with [`ADDFD_FLAG_SETFD`]), else 0.
    pub newfd: u32,
    /// `O_CLOEXEC` or 0: the flags of the new descriptor.
    pub newfd_flags: u32,
}

/// `struct seccomp_notif_sizes`: the sizes the running kernel uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SeccompNotifSizes {
    /// `sizeof(struct seccomp_notif)`.
    pub seccomp_notif: u16,
    /// `sizeof(struct seccomp_notif_resp)`.
    pub seccomp_notif_resp: u16,
    /// `sizeof(struct seccomp_data)`.
    pub seccomp_data: u16,
}

// The layouts are part of the kernel ABI: a wrong size is a compile error.
const _: () = assert!(size_of::<SeccompData>() == 64);
const _: () = assert!(size_of::<SeccompNotif>() == 80);
const _: () = assert!(size_of::<SeccompNotifResp>() == 24);
const _: () = assert!(size_of::<SeccompNotifAddfd>() == 24);
const _: () = assert!(size_of::<SeccompNotifSizes>() == 6);

/// `seccomp(2)` operation: install a filter.
pub const SET_MODE_FILTER: u32 = 1;
/// `seccomp(2)` operation: fill a [`SeccompNotifSizes`].
pub const GET_NOTIF_SIZES: u32 = 3;

/// Filter flag: synchronise all threads of the caller onto the filter.
pub const FILTER_FLAG_TSYNC: u32 = 1 << 0;
/// Filter flag: log every action but `ALLOW`.
pub const FILTER_FLAG_LOG: u32 = 1 << 1;
/// Filter flag: return a user-notification listener fd.
pub const FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
/// Filter flag: once the supervisor has received a notification, only a
/// fatal signal interrupts the waiting task (Linux 6.0).
pub const FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Response flag: let the syscall run as if it had not been intercepted.
pub const USER_NOTIF_FLAG_CONTINUE: u32 = 1;
/// Add-fd flag: install at exactly `newfd`.
pub const ADDFD_FLAG_SETFD: u32 = 1 << 0;
/// Add-fd flag: install and answer the notification with the new fd number,
/// atomically (Linux 5.14).
pub const ADDFD_FLAG_SEND: u32 = 1 << 1;
/// Listener flag: wake the supervisor and the target on the current CPU
/// (Linux 6.6).
pub const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// Filter return value: ask the supervisor.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// Filter return value: allow.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// Filter return value: fail with the errno in the low 16 bits.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// Filter return value: kill the whole process.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// The ioctl group of seccomp (`SECCOMP_IOC_MAGIC`).
const MAGIC: u8 = b'!';

/// `SECCOMP_IOCTL_NOTIF_RECV`.
pub const IOCTL_NOTIF_RECV: Opcode = opcode::read_write::<SeccompNotif>(MAGIC, 0);
/// `SECCOMP_IOCTL_NOTIF_SEND`.
pub const IOCTL_NOTIF_SEND: Opcode = opcode::read_write::<SeccompNotifResp>(MAGIC, 1);
/// `SECCOMP_IOCTL_NOTIF_ID_VALID`.
pub const IOCTL_NOTIF_ID_VALID: Opcode = opcode::write::<u64>(MAGIC, 2);
/// `SECCOMP_IOCTL_NOTIF_ADDFD`.
pub const IOCTL_NOTIF_ADDFD: Opcode = opcode::write::<SeccompNotifAddfd>(MAGIC, 3);
/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS`.
pub const IOCTL_NOTIF_SET_FLAGS: Opcode = opcode::write::<u64>(MAGIC, 4);

/// `BPF_MAXINSNS`: the longest program the kernel loads.
pub const BPF_MAXINSNS: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn opcodes_match_the_kernel_headers() {
        // Values as printed by a C program including <linux/seccomp.h> on x86_64.
        assert_eq!(IOCTL_NOTIF_RECV as u64, 0xc050_2100);
        assert_eq!(IOCTL_NOTIF_SEND as u64, 0xc018_2101);
        assert_eq!(IOCTL_NOTIF_ID_VALID as u64, 0x4008_2102);
        assert_eq!(IOCTL_NOTIF_ADDFD as u64, 0x4018_2103);
        assert_eq!(IOCTL_NOTIF_SET_FLAGS as u64, 0x4008_2104);
    }
}
