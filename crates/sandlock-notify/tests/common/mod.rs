//! Shared helpers for the real-kernel tests: hand-built filters and a forked
//! child under a filter that hands its listener to the parent.
#![allow(dead_code, unsafe_code, clippy::unwrap_used)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use sandlock_bpf::insn::op::*;
use sandlock_bpf::{Arch, Insn};
use sandlock_notify::abi::{RET_ALLOW, RET_KILL_PROCESS, RET_USER_NOTIF};
use sandlock_notify::{FilterFlags, Listener};

/// The native syscall number of `name`.
pub fn nr(name: &str) -> u32 {
    Arch::native().unwrap().syscall_nr(name).unwrap()
}

/// A filter that kills foreign arches, sends the syscalls `names` to the
/// supervisor and allows everything else.
pub fn notify_on(names: &[&str]) -> Vec<Insn> {
    let n = names.len();
    let mut p = vec![
        Insn::stmt(BPF_LD | BPF_W | BPF_ABS, 4),
        Insn::jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            Arch::native().unwrap().audit_arch(),
            1,
            0,
        ),
        Insn::stmt(BPF_RET | BPF_K, RET_KILL_PROCESS),
        Insn::stmt(BPF_LD | BPF_W | BPF_ABS, 0),
    ];
    for (i, name) in names.iter().enumerate() {
        p.push(Insn::jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            nr(name),
            (n - i) as u8,
            0,
        ));
    }
    p.push(Insn::stmt(BPF_RET | BPF_K, RET_ALLOW));
    p.push(Insn::stmt(BPF_RET | BPF_K, RET_USER_NOTIF));
    p
}

/// What the child runs once the parent says go.
pub enum Body {
    /// A function of raw syscalls only (we are in a forked child of a
    /// multi-threaded test process); its return value is the exit status.
    Fn(fn() -> i32),
    /// Re-execute this test binary to run the (ignored) test `name`, with
    /// `env` added: the child is then a normal process that may use threads.
    Exec {
        name: &'static str,
        env: Vec<(String, String)>,
    },
}

/// A forked child under a filter.
pub struct Child {
    pub pid: i32,
    sock: OwnedFd,
}

impl Child {
    /// Let the child run its body.
    pub fn go(&self) {
        rustix::io::write(&self.sock, b"g").unwrap();
    }

    /// Wait for the child; its exit code, or 128 + signal.
    pub fn wait(self) -> i32 {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid);
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        }
    }

    /// Kill the child (SIGKILL).
    pub fn kill(&self) {
        // SAFETY: kill on our own child's pid, not yet reaped.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

/// Fork a child that installs `filter` with a listener, passes the listener
/// to us and waits for [`Child::go`] before running `body`.
pub fn spawn(filter: &[Insn], body: Body) -> (Child, Listener) {
    let (parent, child) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    // Everything the child needs is built before the fork.
    let exe = CString::new(std::env::current_exe().unwrap().to_str().unwrap()).unwrap();
    let (argv, envp): (Vec<CString>, Vec<CString>) = match &body {
        Body::Exec { name, env } => {
            let argv = [
                exe.to_str().unwrap(),
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ]
            .iter()
            .map(|s| CString::new(*s).unwrap())
            .collect();
            let mut envp: Vec<CString> = std::env::vars()
                .map(|(k, v)| CString::new(format!("{k}={v}")).unwrap())
                .collect();
            envp.extend(
                env.iter()
                    .map(|(k, v)| CString::new(format!("{k}={v}")).unwrap()),
            );
            (argv, envp)
        }
        Body::Fn(_) => (vec![], vec![]),
    };
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    envp_p.push(std::ptr::null());

    // An exec'd child's test harness prints its own summary: keep it out of
    // ours (its stderr, with any failure, still shows).
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    // SAFETY: after fork the child only makes raw system calls (the
    // sandlock-notify install functions are async-signal-safe) and ends with
    // execve or _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // Close every fd but the two we need, as a sandbox launcher does: a
        // forked child must not keep other tests' listeners open.
        let mut keep = [child.as_raw_fd() as u32, devnull.as_raw_fd() as u32];
        keep.sort_unstable();
        let mut from = 3u32;
        for k in keep {
            if k > from {
                // SAFETY: close_range on fds of this (forked) process only.
                unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0) };
            }
            from = from.max(k + 1);
        }
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) };
        std::mem::forget(parent); // already closed by close_range
        let code = (|| {
            if sandlock_notify::set_no_new_privs().is_err() {
                return 120;
            }
            let Ok(listener) = sandlock_notify::install_filter_with_listener(
                filter,
                FilterFlags::WAIT_KILLABLE_RECV,
            ) else {
                return 121;
            };
            // Tell the parent the fd's number; it takes a copy with
            // pidfd_getfd (sendmsg may be one of the intercepted calls).
            let raw = listener.as_raw_fd().to_ne_bytes();
            if rustix::io::write(&child, &raw) != Ok(4) {
                return 122;
            }
            let mut b = [0u8; 1];
            if rustix::io::read(&child, &mut b).is_err() {
                return 123;
            }
            drop(listener);
            match body {
                Body::Fn(f) => f(),
                Body::Exec { .. } => {
                    // SAFETY: dup2 on two fds we own; async-signal-safe.
                    if unsafe { libc::dup2(devnull.as_raw_fd(), 1) } < 0 {
                        return 125;
                    }
                    // SAFETY: argv/envp are NULL-terminated arrays of valid C
                    // strings built before the fork.
                    unsafe { libc::execve(exe.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
                    124
                }
            }
        })();
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(code) };
    }
    drop(child);
    let mut raw = [0u8; 4];
    assert_eq!(
        rustix::io::read(&parent, &mut raw),
        Ok(4),
        "child sent no listener"
    );
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let fd = rustix::process::pidfd_getfd(
        &pidfd,
        i32::from_ne_bytes(raw),
        rustix::process::PidfdGetfdFlags::empty(),
    )
    .unwrap();
    let listener = Listener::from_fd(fd).unwrap();
    (Child { pid, sock: parent }, listener)
}

/// The raw result of a syscall in the child: `Ok(value)` or `Err(errno)`.
pub fn raw(ret: libc::c_long) -> Result<i64, i32> {
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret)
    }
}

/// `syscall(SYS_getppid)` in the child.
pub fn getppid_raw() -> Result<i64, i32> {
    // SAFETY: getppid takes no argument.
    raw(unsafe { libc::syscall(libc::SYS_getppid) })
}
