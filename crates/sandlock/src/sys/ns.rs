//! Raw system calls of the namespace layer, made by the child between
//! `clone` and `execve` (the same rules as [`super::child`]: async-signal-
//! safe, nothing allocated, every argument prepared by the parent).

use std::ffi::CStr;
use std::os::fd::RawFd;

use rustix::io::Errno;

use super::check_raw;

/// `landlock_add_rule(2)`.
const LANDLOCK_ADD_RULE: libc::c_long = 445;
/// `LANDLOCK_RULE_PATH_BENEATH`.
const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;
/// `LANDLOCK_RULE_NET_PORT`.
const LANDLOCK_RULE_NET_PORT: u32 = 2;

/// Writes all of `bytes` to the file at `path` (opened write-only), as
/// `/proc/self/uid_map` and friends want: one `write` call.
pub(crate) fn write_file(path: &CStr, bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = check_raw(unsafe {
        raw_syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
            0,
        )
    })? as RawFd;
    // SAFETY: `bytes` is valid for its length and only read.
    let ret = unsafe { raw_syscall!(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
    let result = match check_raw(ret) {
        Ok(n) if n as usize == bytes.len() => Ok(()),
        Ok(_) => Err(Errno::IO),
        Err(e) => Err(e),
    };
    super::child::close(fd);
    result
}

/// `mount(source, target, fstype, flags, data)`.
pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: u64,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that
    // outlives the call.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_mount,
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags as libc::c_ulong,
            ptr(data),
        )
    })
    .map(drop)
}

/// Creates the file `path` (which must not exist, `0444`) holding `bytes`.
pub(crate) fn create_with(path: &CStr, bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = check_raw(unsafe {
        raw_syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o444,
        )
    })? as RawFd;
    let mut done = 0;
    let mut result = Ok(());
    while done < bytes.len() {
        let rest = &bytes[done..];
        // SAFETY: `rest` is valid for its length and only read.
        let ret = unsafe { raw_syscall!(libc::SYS_write, fd, rest.as_ptr(), rest.len()) };
        match check_raw(ret) {
            Ok(0) => {
                result = Err(Errno::IO);
                break;
            }
            Ok(n) => done += n as usize,
            Err(Errno::INTR) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    super::child::close(fd);
    result
}

/// `umount2(target, MNT_DETACH)`.
pub(crate) fn umount_detach(target: &CStr) -> Result<(), Errno> {
    // SAFETY: `target` is NUL-terminated and outlives the call.
    check_raw(unsafe { raw_syscall!(libc::SYS_umount2, target.as_ptr(), libc::MNT_DETACH) })
        .map(drop)
}

/// `sethostname(name)`.
pub(crate) fn sethostname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: `name` is valid for its length and only read.
    check_raw(unsafe { raw_syscall!(libc::SYS_sethostname, name.as_ptr(), name.len()) }).map(drop)
}

/// `open(path, O_PATH | O_CLOEXEC)`.
pub(crate) fn open_path(path: &CStr) -> Result<RawFd, Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
            0,
        )
    })
    .map(|fd| fd as RawFd)
}

/// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`: a directory, as the
/// `dirfd` of the `*at` calls below.
pub(crate) fn open_dir(path: &CStr) -> Result<RawFd, Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
    })
    .map(|fd| fd as RawFd)
}

/// `mkdirat(dir, path, mode)`.
pub(crate) fn mkdir_at(dir: RawFd, path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check_raw(unsafe { raw_syscall!(libc::SYS_mkdirat, dir, path.as_ptr(), mode) }).map(drop)
}

/// `mknodat(dir, path, S_IFCHR, 0)`: an overlay whiteout, a character
/// device 0/0 (which needs no `CAP_MKNOD`), hiding `path` of the layers
/// below.
pub(crate) fn whiteout_at(dir: RawFd, path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check_raw(unsafe { raw_syscall!(libc::SYS_mknodat, dir, path.as_ptr(), libc::S_IFCHR, 0) })
        .map(drop)
}

/// A NUL-terminated string built on the stack, for the few arguments the
/// child can only write once it holds their descriptors
/// (`/proc/self/fd/N`). Too long a string is `ENAMETOOLONG`.
pub(crate) struct StackStr {
    buf: [u8; 96],
    len: usize,
    overflow: bool,
}

impl StackStr {
    /// An empty string.
    pub(crate) fn new() -> StackStr {
        StackStr {
            buf: [0; 96],
            len: 0,
            overflow: false,
        }
    }

    /// Appends `bytes`.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> &mut StackStr {
        // One byte stays for the NUL.
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) if end < 96 => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            _ => self.overflow = true,
        }
        self
    }

    /// Appends `/proc/self/fd/FD`.
    pub(crate) fn fd_path(&mut self, fd: RawFd) -> &mut StackStr {
        self.push(b"/proc/self/fd/");
        let mut digits = [0u8; 10];
        let mut n = fd.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    /// The string.
    pub(crate) fn as_cstr(&mut self) -> Result<&CStr, Errno> {
        if self.overflow {
            return Err(Errno::NAMETOOLONG);
        }
        self.buf[self.len] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).map_err(|_| Errno::INVAL)
    }
}

/// `landlock_add_rule(ruleset, PATH_BENEATH, {access, fd}, 0)`.
pub(crate) fn landlock_add_path(ruleset: RawFd, access: u64, fd: RawFd) -> Result<(), Errno> {
    // The kernel's `struct landlock_path_beneath_attr` is packed.
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = PathBeneath {
        allowed_access: access,
        parent_fd: fd,
    };
    // SAFETY: `attr` is a valid, packed attribute on our stack, only read.
    check_raw(unsafe {
        raw_syscall!(
            LANDLOCK_ADD_RULE,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneath,
            0u32,
        )
    })
    .map(drop)
}

/// `landlock_add_rule(ruleset, NET_PORT, {access, port}, 0)`.
pub(crate) fn landlock_add_port(ruleset: RawFd, access: u64, port: u16) -> Result<(), Errno> {
    #[repr(C)]
    struct NetPort {
        allowed_access: u64,
        port: u64,
    }
    let attr = NetPort {
        allowed_access: access,
        port: u64::from(port),
    };
    // SAFETY: `attr` is a valid attribute on our stack, only read.
    check_raw(unsafe {
        raw_syscall!(
            LANDLOCK_ADD_RULE,
            ruleset,
            LANDLOCK_RULE_NET_PORT,
            &attr as *const NetPort,
            0u32,
        )
    })
    .map(drop)
}

/// Whether the peer of socket `fd` is gone (`POLLHUP`), without waiting.
pub(crate) fn peer_gone(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: one pollfd and a timespec on our stack; no signal mask.
    let ret = unsafe {
        raw_syscall!(
            libc::SYS_ppoll,
            &mut p as *mut libc::pollfd,
            1usize,
            &zero as *const libc::timespec,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    ret > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// Forks the command from the init of a PID namespace, as `posix_spawn`
/// does: `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` on `args.command_stack`
/// (prepared by sandlock before the init was created: the lower part of
/// the init's own stack mapping when the init shares sandlock's memory,
/// else the init's copy of a buffer): no page table is copied, and the init sleeps until the
/// command has called `execve` (or ended). The child runs
/// [`crate::child::confine_and_exec`] and never returns from here; the
/// parent gets the child's pid. Without a stack, a `CLONE_VFORK` fork.
pub(crate) fn vfork_command(args: &crate::child::ChildArgs<'_>) -> Result<i32, Errno> {
    extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&ChildArgs` passed below; the init is
        // suspended (CLONE_VFORK) and keeps it alive until we execve.
        let args = unsafe { &*(arg as *const crate::child::ChildArgs<'_>) };
        crate::child::confine_and_exec(args)
    }
    let ret = match args.command_stack {
        Some(top) => {
            // SAFETY: `top` is the end of a live, 16-byte aligned region of
            // the init's memory that nothing else uses (a buffer, or the
            // part of the init's stack mapping below its own stack); the child only runs
            // `confine_and_exec` (raw, async-signal-safe syscalls on data
            // the init keeps alive and does not touch while suspended by
            // CLONE_VFORK), writing nothing but that stack.
            let r = unsafe {
                libc::clone(
                    entry,
                    top as *mut libc::c_void,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    args as *const crate::child::ChildArgs<'_> as *mut libc::c_void,
                )
            };
            if r < 0 {
                // The C library's clone wrapper (the child needs its new
                // stack from the first instruction) reports in `errno`.
                // In an init that shares sandlock's memory that is the
                // `errno` of the thread that cloned the init: read at once,
                // on this failure path only, before the init reports and
                // exits.
                return Err(super::errno());
            }
            libc::c_long::from(r)
        }
        // SAFETY: with a null stack the child runs on a copy of our stack,
        // like fork(); it only runs `confine_and_exec` (see above).
        None => unsafe {
            let r = raw_syscall!(
                libc::SYS_clone,
                (libc::CLONE_VFORK | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            );
            if r == 0 {
                crate::child::confine_and_exec(args);
            }
            r
        },
    };
    check_raw(ret).map(|pid| pid as i32)
}

/// `wait4(-1, &status, __WALL, NULL)`, retried on `EINTR`: any child,
/// process or thread clone. Returns its pid and raw wait status.
pub(crate) fn wait_any() -> Result<(i32, i32), Errno> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid int on our stack; no rusage.
        let ret = unsafe {
            raw_syscall!(
                libc::SYS_wait4,
                -1i32,
                &mut status as *mut libc::c_int,
                libc::__WALL,
                std::ptr::null_mut::<libc::rusage>(),
            )
        };
        if ret == -libc::c_long::from(libc::EINTR) {
            continue;
        }
        return check_raw(ret).map(|pid| (pid as i32, status));
    }
}
