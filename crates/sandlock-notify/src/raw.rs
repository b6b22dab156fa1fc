//! System calls that leave `errno` alone, for code between `clone` and
//! `execve`.
//!
//! The C library's `syscall()` stores a failure's number in the calling
//! thread's `errno`, which lives in thread-local storage. A child created
//! with `CLONE_VM` (sandlock's init of a PID namespace, and the `vfork`
//! children) shares its parent's memory *and* the thread pointer of the
//! thread that cloned it: its `errno` is that thread's. [`syscall`] makes
//! the call with the `syscall` (x86-64) or `svc` (aarch64) instruction and
//! returns the kernel's answer as it is, so such a child writes nothing
//! but its own stack.
#![allow(unsafe_code)]

use rustix::io::Errno;

/// `syscall(nr, args...)`, without the C library: the kernel's return
/// value, where `-4095..=-1` is `-errno` (see [`result`]). Arguments
/// beyond the ones given are passed as 0.
///
/// # Safety
///
/// As for the system call `nr` itself: every pointer among `args` must be
/// valid for what the kernel does with it.
#[inline]
pub unsafe fn syscall(nr: libc::c_long, args: &[usize]) -> libc::c_long {
    let mut a = [0usize; 6];
    for (slot, &v) in a.iter_mut().zip(args) {
        *slot = v;
    }
    // SAFETY: the caller vouches for the arguments (see above).
    unsafe { arch::syscall6(nr, a) }
}

/// The kernel's return value as `Ok(value)` or `Err(errno)`.
#[inline]
pub fn result(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret)
    }
}

#[cfg(target_arch = "x86_64")]
mod arch {
    /// The `syscall` instruction: number in `rax`, arguments in `rdi`,
    /// `rsi`, `rdx`, `r10`, `r8`, `r9`; `rcx` and `r11` are clobbered.
    #[inline]
    pub(super) unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> libc::c_long {
        let ret: libc::c_long;
        // SAFETY: the caller vouches for the arguments; the instruction
        // touches no memory of ours but what the kernel is asked to.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr => ret,
                in("rdi") a[0],
                in("rsi") a[1],
                in("rdx") a[2],
                in("r10") a[3],
                in("r8") a[4],
                in("r9") a[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    /// The `svc #0` instruction: number in `x8`, arguments in `x0`-`x5`,
    /// the result in `x0`.
    #[inline]
    pub(super) unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> libc::c_long {
        let ret: libc::c_long;
        // SAFETY: as on x86-64.
        unsafe {
            core::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a[0] as libc::c_long => ret,
                in("x1") a[1],
                in("x2") a[2],
                in("x3") a[3],
                in("x4") a[4],
                in("x5") a[5],
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    /// Elsewhere, the C library's `syscall()`, translated back to the
    /// kernel's convention (`errno` is written: see the module docs).
    pub(super) unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> libc::c_long {
        // SAFETY: the caller vouches for the arguments.
        let ret = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        if ret == -1 {
            -libc::c_long::from(
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO),
            )
        } else {
            ret
        }
    }
}

/// Whether [`syscall`] leaves `errno` alone on this architecture.
pub const ERRNO_FREE: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_errors_come_back_without_errno() {
        // SAFETY: getpid takes no argument.
        let pid = unsafe { syscall(libc::SYS_getpid, &[]) };
        assert_eq!(pid, i64::from(std::process::id()) as libc::c_long);
        let before = std::io::Error::last_os_error().raw_os_error();
        // SAFETY: closing a number no descriptor has.
        let ret = unsafe { syscall(libc::SYS_close, &[1_000_000]) };
        assert_eq!(result(ret), Err(Errno::BADF));
        if ERRNO_FREE {
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), before);
        }
        // Pointer and length arguments reach the kernel.
        let (r, w) = rustix::pipe::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let buf = b"abc";
        // SAFETY: `buf` is readable for its length.
        let n = unsafe {
            syscall(
                libc::SYS_write,
                &[w.as_raw_fd() as usize, buf.as_ptr() as usize, buf.len()],
            )
        };
        assert_eq!(result(n), Ok(3));
        let mut got = [0u8; 3];
        rustix::io::read(&r, &mut got).unwrap();
        assert_eq!(&got, buf);
    }
}
