//! `--floor FILTER`: the kernel's part of sandlock's start, without
//! sandlock's own logic (its policy, the program's generation, the
//! supervisor), for the "kernel-floor" row of `cargo xtask bench`.
//!
//! The sequence is the one sandlock's launch makes for its default policy
//! (docs/namespaces.md, `crates/sandlock/src/spawn.rs`):
//!
//! - before the clone: the Landlock ruleset (built by the caller), the
//!   command's strings, a socket pair, the init's stack;
//! - the init: `clone(CLONE_VM | CLONE_NEWPID | CLONE_NEWIPC)`, with
//!   `CLONE_NEWUSER` and its id maps when the caller is not root;
//! - the init forks the command with `CLONE_VM | CLONE_VFORK`, waits for it
//!   and sends its status over the socket;
//! - the command sets `PR_SET_NO_NEW_PRIVS`, enforces the ruleset, installs
//!   the seccomp filter read from `FILTER` (raw `struct sock_filter`s) with
//!   a listener, and calls `execve`.
//!
//! What it leaves out: the listener's hand-over to the parent (the filter's
//! hand-off key is sandlock's secret; the listener is closed instead, so a
//! notified system call fails with `ENOSYS`), the process group, the
//! parent-death signal, the descriptors' closing, the private temporary
//! directory, and a mount namespace (root's default masks).

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Everything the two children read, prepared before the first clone.
struct Plan {
    ruleset: i32,
    filter: Vec<libc::sock_filter>,
    /// The strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// `/proc/self/{setgroups,uid_map,gid_map}` and what each gets, when a
    /// user namespace is made.
    id_maps: Option<[(CString, Vec<u8>); 3]>,
    /// The init's end of the socket pair.
    sock: i32,
    command_stack: Vec<u128>,
}

/// Reads a seccomp program: whole 8-byte `struct sock_filter`s.
pub fn read_filter(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > 4096 {
        return Err(format!(
            "a filter is 1 to 4096 instructions of 8 bytes: {} bytes",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Runs `command` as described in the module's documentation; returns the
/// exit code for the helper (the command's own, 128+N for signal N).
pub fn run(
    ruleset: OwnedFd,
    filter: Vec<libc::sock_filter>,
    command: &[OsString],
) -> Result<u8, String> {
    let argv = command
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("{a:?} holds a NUL byte")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    // SAFETY: geteuid and getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let cstr = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let id_maps = if uid == 0 {
        None
    } else {
        Some([
            (cstr("/proc/self/setgroups")?, b"deny".to_vec()),
            (
                cstr("/proc/self/uid_map")?,
                format!("{uid} {uid} 1\n").into_bytes(),
            ),
            (
                cstr("/proc/self/gid_map")?,
                format!("{gid} {gid} 1\n").into_bytes(),
            ),
        ])
    };
    let mut socks = [0; 2];
    // SAFETY: `socks` has room for the two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            socks.as_mut_ptr(),
        )
    } != 0
    {
        return Err(format!("socketpair: {}", std::io::Error::last_os_error()));
    }
    let mut plan = Plan {
        ruleset: ruleset.as_raw_fd(),
        filter,
        _argv: argv,
        argv_ptrs,
        id_maps,
        sock: socks[1],
        command_stack: vec![0; 64 * 1024 / 16],
    };
    let mut init_stack: Vec<u128> = vec![0; 256 * 1024 / 16];
    let mut flags = libc::CLONE_VM | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::SIGCHLD;
    if plan.id_maps.is_some() {
        flags |= libc::CLONE_NEWUSER;
    }
    let top = init_stack.as_mut_ptr_range().end.cast::<libc::c_void>();
    // SAFETY: the init runs on its own stack, reads `plan` (which outlives
    // it: this function waits for it below) and makes raw system calls
    // only.
    let init = unsafe { libc::clone(init_main, top, flags, (&raw mut plan).cast()) };
    if init < 0 {
        return Err(format!(
            "clone with new namespaces: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut msg = [0u8; 5];
    // SAFETY: `msg` is 5 writable bytes.
    let n = unsafe { libc::read(socks[0], msg.as_mut_ptr().cast(), msg.len()) };
    let mut init_status = 0;
    // SAFETY: `init` is our child.
    unsafe { libc::waitpid(init, &mut init_status, libc::__WALL) };
    drop(init_stack);
    drop(plan);
    if n != 5 || msg[0] != b'S' {
        return Err(format!(
            "the init ended without a status ({init_status:#x})"
        ));
    }
    let status = i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]);
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else {
        128u8.wrapping_add(libc::WTERMSIG(status) as u8)
    })
}

/// The init: id maps, the command forked on its own stack, its status sent.
extern "C" fn init_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` of `run`, alive until the init ends; the
    // parent does not touch it meanwhile.
    let plan = unsafe { &mut *arg.cast::<Plan>() };
    if let Some(maps) = &plan.id_maps {
        for (path, content) in maps {
            // SAFETY: a NUL-terminated path; `content` is valid for its length.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, content.as_ptr().cast(), content.len()) < 0 {
                    libc::_exit(121);
                }
                libc::close(fd);
            }
        }
    }
    let top = plan
        .command_stack
        .as_mut_ptr_range()
        .end
        .cast::<libc::c_void>();
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: as for the init: its own stack, raw system calls only; this
    // thread is suspended until the command's execve or end.
    let command = unsafe { libc::clone(command_main, top, flags, arg) };
    let mut status = 0;
    if command > 0 {
        // SAFETY: `command` is this process's child.
        unsafe { libc::waitpid(command, &mut status, libc::__WALL) };
    } else {
        status = 126 << 8;
    }
    let mut msg = [b'S', 0, 0, 0, 0];
    msg[1..].copy_from_slice(&status.to_ne_bytes());
    // SAFETY: `msg` is valid for 5 bytes; `_exit` ends the init.
    unsafe {
        libc::write(plan.sock, msg.as_ptr().cast(), msg.len());
        libc::_exit(0)
    }
}

/// The command: confined, then `execve`.
extern "C" fn command_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: as in `init_main`; the init waits while this runs.
    let plan = unsafe { &*arg.cast::<Plan>() };
    let prog = libc::sock_fprog {
        len: plan.filter.len() as u16,
        filter: plan.filter.as_ptr().cast_mut(),
    };
    // SAFETY: raw system calls on values prepared by `run`: the ruleset
    // descriptor, a filter of `len` instructions, a NULL-terminated argv.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(libc::SYS_landlock_restrict_self, plan.ruleset, 0) != 0
        {
            libc::_exit(122);
        }
        let listener = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &raw const prog,
        );
        if listener < 0 {
            libc::_exit(123);
        }
        libc::close(listener as i32);
        libc::execv(plan.argv_ptrs[0], plan.argv_ptrs.as_ptr());
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_whole_instructions() {
        let ret_allow = [6u8, 0, 0, 0, 0, 0, 0xff, 0x7f];
        let f = read_filter(&ret_allow).unwrap();
        assert_eq!((f[0].code, f[0].k), (6, 0x7fff_0000));
        assert!(read_filter(&ret_allow[..7]).is_err());
        assert!(read_filter(&[]).is_err());
    }
}
