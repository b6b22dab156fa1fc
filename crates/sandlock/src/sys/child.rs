//! The raw system calls of the child between `clone` and `execve`.
//!
//! Every function here is async-signal-safe: it makes one or a few system
//! calls, allocates nothing, takes no lock, and touches no global state,
//! not even the thread-local `errno` (`raw_syscall!`). Arguments that need
//! memory (paths, argv, the CPU mask) are prepared by the parent before the
//! fork.

use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;

use super::{check_raw, nr};

/// `setpgid(0, 0)`: the child leads a new process group (the sandbox's).
pub(crate) fn setpgid_self() -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check_raw(unsafe { raw_syscall!(libc::SYS_setpgid, 0, 0) }).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`: die when the forking thread exits.
pub(crate) fn set_pdeathsig_kill() -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `getppid()`.
pub(crate) fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { raw_syscall!(libc::SYS_getppid) as i32 }
}

/// `dup3(src, dst, 0)`: `dst` becomes a copy of `src`, without `O_CLOEXEC`.
/// The parent makes sure `src != dst`.
pub(crate) fn dup_to(src: RawFd, dst: RawFd) -> Result<(), Errno> {
    // SAFETY: plain syscall on integer descriptors.
    check_raw(unsafe { raw_syscall!(libc::SYS_dup3, src, dst, 0) }).map(drop)
}

/// Puts `SIGPIPE` back to its default action (a Rust program ignores it,
/// and an ignored signal stays ignored across `execve`).
pub(crate) fn default_sigpipe() -> Result<(), Errno> {
    // The kernel's `struct sigaction`, all zero: handler SIG_DFL (0), no
    // flags, no restorer, an empty mask (the layout differs between
    // architectures, zeros do not).
    let act = [0u64; 4];
    // SAFETY: `act` is readable for the 32 bytes of the largest layout; the
    // kernel reads the handler, flags (restorer) and an 8-byte mask.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_rt_sigaction,
            libc::SIGPIPE,
            act.as_ptr(),
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    })
    .map(drop)
}

/// Sets the signal mask to `mask` (the parent prepares it: empty).
pub(crate) fn set_sigmask(mask: &libc::sigset_t) -> Result<(), Errno> {
    // SAFETY: `mask` is a valid sigset; `rt_sigprocmask` with the kernel's
    // sigset size (8 bytes) reads only the first 64 signals of it.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            mask as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            8usize,
        )
    })
    .map(drop)
}

/// `prctl(PR_CAPBSET_DROP, cap)`: no program executed from now on gets
/// capability `cap`. Fails with `EPERM` without `CAP_SETPCAP` (a caller
/// without capabilities, whose programs get none anyway).
pub(crate) fn drop_bounding_cap(cap: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_prctl,
            libc::PR_CAPBSET_DROP,
            cap as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `personality(persona)`.
pub(crate) fn personality(persona: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with an integer argument.
    check_raw(unsafe { raw_syscall!(libc::SYS_personality, persona as libc::c_ulong) }).map(drop)
}

/// `prctl(PR_SET_THP_DISABLE, 1)`: no transparent huge pages.
pub(crate) fn thp_disable() -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_prctl,
            libc::PR_SET_THP_DISABLE,
            1 as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `sched_setaffinity(0, mask)`: pin the calling task to the CPUs of `mask`
/// (a bitmap of 64-bit words, as the kernel reads it).
pub(crate) fn sched_setaffinity(mask: &[u64]) -> Result<(), Errno> {
    // SAFETY: `mask` is valid for `len` bytes, which the kernel only reads.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_sched_setaffinity,
            0,
            std::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// `chroot(path)` and `chdir("/")`, then checks that the new root is the
/// directory `expected` refers to (same device and inode): the path is
/// resolved in the child's mount namespace (a descriptor opened before it
/// would keep the caller's mounts), and must still name the directory the
/// parent checked. `EXDEV` when it does not.
pub(crate) fn enter_root(path: &CStr, expected: RawFd) -> Result<(), Errno> {
    // SAFETY: plain system calls on a valid C string.
    check_raw(unsafe { raw_syscall!(libc::SYS_chroot, path.as_ptr()) })?;
    // SAFETY: as above, on a static C string.
    check_raw(unsafe { raw_syscall!(libc::SYS_chdir, c"/".as_ptr()) })?;
    // SAFETY: `expected` is a descriptor the parent keeps open for the
    // launch; borrowed for this call only.
    let want = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(expected) })?;
    let have = rustix::fs::stat(c"/")?;
    if (want.st_dev, want.st_ino) == (have.st_dev, have.st_ino) {
        Ok(())
    } else {
        Err(Errno::XDEV)
    }
}

/// Whether `fd` is an open directory (`fstat`; `false` when it is not
/// open).
pub(crate) fn is_directory(fd: RawFd) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable `struct stat` on our stack; the kernel
    // fills it on success, and it is read only then.
    let ret = unsafe { raw_syscall!(libc::SYS_fstat, fd, st.as_mut_ptr()) };
    // SAFETY: initialised by the successful call.
    check_raw(ret).is_ok() && unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// `chdir(path)`.
pub(crate) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check_raw(unsafe { raw_syscall!(libc::SYS_chdir, path.as_ptr()) }).map(drop)
}

/// Reads one byte; `Ok(None)` at end of file. Retries on `EINTR`.
pub(crate) fn read_byte(fd: RawFd) -> Result<Option<u8>, Errno> {
    let mut b = 0u8;
    loop {
        // SAFETY: one byte of our stack is writable.
        let ret = unsafe { raw_syscall!(libc::SYS_read, fd, &mut b as *mut u8, 1usize) };
        match check_raw(ret) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b)),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `bytes` as one message (the socket is `SOCK_SEQPACKET`).
pub(crate) fn write_msg(fd: RawFd, bytes: &[u8]) -> Result<(), Errno> {
    loop {
        // SAFETY: `bytes` is valid for its length and only read.
        let ret = unsafe { raw_syscall!(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
        match check_raw(ret) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `close(fd)`, ignoring the result (the descriptor is ours and gone either way).
pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing a descriptor number; nothing in the child holds it
    // as an owned Rust object.
    unsafe { raw_syscall!(libc::SYS_close, fd) };
}

/// Closes every descriptor but `keep` (`close_range`, Linux 5.9; one
/// `close` per number up to `limit` on an older kernel).
pub(crate) fn close_all_but(keep: RawFd, limit: u64) {
    let keep = keep.max(0) as u32;
    let ranges = [(0u32, keep.checked_sub(1)), (keep + 1, Some(u32::MAX))];
    for (first, last) in ranges {
        let Some(last) = last else { continue };
        // SAFETY: plain syscall with integer arguments.
        let ret = unsafe { raw_syscall!(nr::CLOSE_RANGE, first, last, 0u32) };
        if ret < 0 {
            let end = u64::from(last).min(limit.max(1024));
            let mut fd = u64::from(first);
            while fd <= end {
                close(fd as RawFd);
                fd += 1;
            }
        }
    }
}

/// Marks every descriptor from `first` up close-on-exec
/// (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`, Linux 5.11). On an older
/// kernel, `fcntl(FD_CLOEXEC)` on each number up to `limit`.
pub(crate) fn cloexec_from(first: u32, limit: u64) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { raw_syscall!(nr::CLOSE_RANGE, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    match check_raw(ret) {
        Ok(_) => Ok(()),
        Err(Errno::NOSYS | Errno::INVAL) => {
            let mut fd = u64::from(first);
            while fd < limit {
                // SAFETY: fcntl on a descriptor number; EBADF for closed ones.
                unsafe { raw_syscall!(libc::SYS_fcntl, fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                fd += 1;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `landlock_restrict_self(ruleset, 0)`.
pub(crate) fn landlock_restrict_self(ruleset: RawFd) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check_raw(unsafe { raw_syscall!(nr::LANDLOCK_RESTRICT_SELF, ruleset, 0u32) }).map(drop)
}

/// `prlimit64(0, resource, {soft, hard}, NULL)`.
pub(crate) fn set_rlimit(resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit64 on our stack, only read.
    check_raw(unsafe {
        raw_syscall!(
            libc::SYS_prlimit64,
            0,
            resource,
            &lim as *const libc::rlimit64,
            std::ptr::null_mut::<libc::rlimit64>(),
        )
    })
    .map(drop)
}

/// Sends `tag` with descriptor `fd` attached (`SCM_RIGHTS`) on `sock`.
pub(crate) fn send_fd(sock: RawFd, tag: &[u8], fd: RawFd, key: [u64; 3]) -> Result<(), Errno> {
    // Room for one cmsghdr carrying one int, 8-byte aligned.
    #[repr(C, align(8))]
    struct Control([u8; 24]);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    if space > std::mem::size_of::<Control>() {
        return Err(Errno::INVAL);
    }
    let mut control = Control([0; 24]);
    let mut iov = libc::iovec {
        iov_base: tag.as_ptr() as *mut libc::c_void,
        iov_len: tag.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below points at our
    // stack, valid for the lengths given; CMSG_FIRSTHDR returns a pointer
    // inside `control` since `msg_controllen >= CMSG_LEN(4)`.
    let ret = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        loop {
            // The three unused argument registers carry the key that lets
            // this one sendmsg through the filter (`seccomp::handoff_guard`).
            let r = raw_syscall!(
                libc::SYS_sendmsg,
                sock,
                &msg as *const libc::msghdr,
                0,
                key[0],
                key[1],
                key[2],
            );
            if r == -libc::c_long::from(libc::EINTR) {
                continue;
            }
            break r;
        }
    };
    check_raw(ret).map(drop)
}

/// A program, its argv and its environment, ready for `execve`: built by
/// the parent before the fork, so the child only passes pointers.
pub(crate) struct ExecArgs {
    path: CString,
    // Owns the strings `argv` and `envp` point into.
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into `_strings`, owned by the same value and
// never mutated; moving the value to another thread moves their owner.
unsafe impl Send for ExecArgs {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    /// `execve(path, argv, env)`.
    pub(crate) fn new(path: CString, argv: Vec<CString>, env: Vec<CString>) -> ExecArgs {
        let n = argv.len();
        let mut strings = argv;
        strings.extend(env);
        // A CString's heap buffer does not move when the Vec holding it
        // does, so these pointers stay valid as long as `strings` lives.
        let ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        let mut argv: Vec<_> = ptrs[..n].to_vec();
        argv.push(std::ptr::null());
        let mut envp: Vec<_> = ptrs[n..].to_vec();
        envp.push(std::ptr::null());
        ExecArgs {
            path,
            _strings: strings,
            argv,
            envp,
        }
    }

    /// The program's path.
    pub(crate) fn path(&self) -> &CStr {
        &self.path
    }
}

/// `execve(path, argv, envp)`: returns only on failure, with its errno.
pub(crate) fn execve(args: &ExecArgs) -> Errno {
    // SAFETY: `argv` and `envp` are NULL-terminated arrays of pointers to
    // NUL-terminated strings owned by `args` (see `ExecArgs::new`), and
    // `path` is NUL-terminated; all outlive the call.
    let ret = unsafe {
        raw_syscall!(
            libc::SYS_execve,
            args.path.as_ptr(),
            args.argv.as_ptr(),
            args.envp.as_ptr(),
        )
    };
    check_raw(ret).err().unwrap_or(Errno::IO)
}

/// `_exit(code)`: ends the child without running any destructor or atexit
/// handler of the parent's copy.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: exit_group never returns and touches no user memory.
    unsafe {
        raw_syscall!(libc::SYS_exit_group, code);
    }
    // exit_group cannot return; satisfy the type checker without unsafe.
    #[allow(clippy::empty_loop)]
    loop {}
}
