//! Turning a notification and the task's memory into a [`SyscallEvent`].

use sandlock_bpf::Arch;
use sandlock_bpf::arch::X32_SYSCALL_BIT;
use sandlock_policy::{SyscallCategory, SyscallEvent};

use crate::abi::SeccompNotif;
use crate::bounded::{read_argv, read_path, read_sockaddr, read_u64};
use crate::memory::{ChildMemory, MemError};
use crate::procfs::{ProcFs, ProcView};
use crate::sockaddr::SockAddrBuf;

/// `AT_FDCWD`: a dirfd meaning "the current directory".
pub const AT_FDCWD: i32 = -100;

/// Why a notification could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// `seccomp_data.arch` is not an architecture we have a table for.
    #[error("foreign architecture {0:#x} in seccomp_data.arch")]
    ForeignArch(u32),
    /// An x32 syscall number (the x32 bit set) on x86_64.
    #[error("x32 syscall number {0:#x}")]
    X32(u32),
    /// The number is not in the architecture's table.
    #[error("unknown syscall number {nr} on {arch}")]
    UnknownSyscall {
        /// The architecture.
        arch: Arch,
        /// The number.
        nr: i32,
    },
    /// The syscall belongs to none of the event categories.
    #[error("syscall {0} carries no event")]
    NoEvent(&'static str),
    /// An argument in the task's memory could not be read.
    #[error("reading the {arg} argument of {syscall}: {source}")]
    Memory {
        /// The syscall.
        syscall: &'static str,
        /// Which argument (`"path"`, `"sockaddr"`, `"argv"`, `"msghdr"`).
        arg: &'static str,
        /// What went wrong.
        source: MemError,
    },
}

/// Where a syscall's arguments are, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A path at `path`, relative to the dirfd at `dirfd` (or to the cwd).
    Path { dirfd: Option<usize>, path: usize },
    /// execve / execveat: a path and an argv.
    Exec {
        dirfd: Option<usize>,
        path: usize,
        argv: usize,
    },
    /// A sockaddr pointer and its length (connect, bind, sendto).
    Addr { addr: usize, len: usize },
    /// sendmsg's `struct msghdr *`.
    MsgHdr,
    /// sendmmsg's `struct mmsghdr *` (the first entry is decoded).
    MmsgHdr,
    /// A size argument.
    Size(usize),
    /// Nothing beyond the name.
    Bare,
}

/// The category and argument shape of syscall `name`.
fn classify(name: &str) -> Option<(SyscallCategory, Shape)> {
    use Shape::*;
    use SyscallCategory::*;
    let at = |dirfd, path| Path {
        dirfd: Some(dirfd),
        path,
    };
    let plain = |path| Path { dirfd: None, path };
    Some(match name {
        "execve" => (
            Process,
            Exec {
                dirfd: None,
                path: 0,
                argv: 1,
            },
        ),
        "execveat" => (
            Process,
            Exec {
                dirfd: Some(0),
                path: 1,
                argv: 2,
            },
        ),
        "fork" | "vfork" | "clone" | "clone3" | "kill" | "tkill" | "tgkill" | "exit"
        | "exit_group" | "wait4" | "waitid" | "ptrace" | "pidfd_open" | "pidfd_send_signal"
        | "pidfd_getfd" | "setsid" | "setpgid" | "unshare" | "setns" => (Process, Bare),
        "connect" | "bind" => (Network, Addr { addr: 1, len: 2 }),
        "sendto" => (Network, Addr { addr: 4, len: 5 }),
        "sendmsg" => (Network, MsgHdr),
        "sendmmsg" => (Network, MmsgHdr),
        "socket" | "socketpair" | "listen" | "accept" | "accept4" | "shutdown" | "recvfrom"
        | "recvmsg" | "recvmmsg" | "setsockopt" | "getsockopt" => (Network, Bare),
        "mmap" | "munmap" | "mprotect" | "madvise" | "mlock" => (Memory, Size(1)),
        "mremap" => (Memory, Size(2)),
        "brk" => (Memory, Size(0)),
        "open" | "creat" | "stat" | "lstat" | "access" | "readlink" | "truncate" | "chdir"
        | "mkdir" | "rmdir" | "unlink" | "chmod" | "chown" | "lchown" | "utime" | "utimes"
        | "mknod" | "statfs" | "rename" | "link" | "chroot" | "setxattr" | "lsetxattr"
        | "getxattr" | "lgetxattr" | "listxattr" | "llistxattr" | "removexattr"
        | "lremovexattr" | "uselib" | "swapon" | "acct" => (File, plain(0)),
        "symlink" => (File, plain(1)),
        "openat" | "openat2" | "newfstatat" | "fstatat64" | "statx" | "faccessat"
        | "faccessat2" | "mkdirat" | "mknodat" | "unlinkat" | "renameat" | "renameat2"
        | "linkat" | "fchownat" | "fchmodat" | "fchmodat2" | "utimensat" | "futimesat"
        | "readlinkat" | "name_to_handle_at" | "open_tree" | "setxattrat" | "getxattrat"
        | "listxattrat" | "removexattrat" => (File, at(0, 1)),
        "symlinkat" => (File, at(1, 2)),
        _ => return None,
    })
}

/// The syscall name of a notification, checking its architecture.
pub fn syscall_name(notif: &SeccompNotif) -> Result<&'static str, DecodeError> {
    let arch =
        Arch::from_audit_arch(notif.data.arch).ok_or(DecodeError::ForeignArch(notif.data.arch))?;
    let nr = notif.data.nr;
    if arch.has_x32_bit() && nr >= 0 && (nr as u32) & X32_SYSCALL_BIT != 0 {
        return Err(DecodeError::X32(nr as u32));
    }
    u32::try_from(nr)
        .ok()
        .and_then(|n| arch.syscall_name(n))
        .ok_or(DecodeError::UnknownSyscall { arch, nr })
}

/// Decode `notif` against the task's memory and the real `/proc`.
///
/// The result is what the task's memory held at the time of the read: before
/// acting on it, confirm with `NOTIF_ID_VALID` (wrap it in
/// [`crate::Unverified`]; the supervisor's context does).
pub fn decode(notif: &SeccompNotif, mem: &impl ChildMemory) -> Result<SyscallEvent, DecodeError> {
    decode_with(notif, mem, &ProcFs)
}

/// [`decode`] with a chosen [`ProcView`] (a fake in tests and fuzzing).
pub fn decode_with(
    notif: &SeccompNotif,
    mem: &impl ChildMemory,
    proc: &impl ProcView,
) -> Result<SyscallEvent, DecodeError> {
    let name = syscall_name(notif)?;
    let (category, shape) = classify(name).ok_or(DecodeError::NoEvent(name))?;
    let args = &notif.data.args;
    let pid = notif.pid;
    let mut ev = SyscallEvent::new(name, category, pid);
    ev.parent_pid = proc.parent_pid(pid);
    let mem_err = |arg| {
        move |source| DecodeError::Memory {
            syscall: name,
            arg,
            source,
        }
    };
    match shape {
        Shape::Path { dirfd, path } => {
            ev.path =
                Some(resolve_path(notif, mem, proc, dirfd, args[path]).map_err(mem_err("path"))?);
        }
        Shape::Exec { dirfd, path, argv } => {
            ev.path =
                Some(resolve_path(notif, mem, proc, dirfd, args[path]).map_err(mem_err("path"))?);
            ev.argv = Some(read_argv(mem, args[argv]).map_err(mem_err("argv"))?);
        }
        Shape::Addr { addr, len } => {
            if args[addr] != 0 {
                let sa = read_sockaddr(mem, args[addr], args[len]).map_err(mem_err("sockaddr"))?;
                set_host_port(&mut ev, &sa);
            }
        }
        Shape::MsgHdr => decode_msghdr(&mut ev, mem, args[1]).map_err(mem_err("msghdr"))?,
        Shape::MmsgHdr => {
            if args[2] > 0 {
                decode_msghdr(&mut ev, mem, args[1]).map_err(mem_err("mmsghdr"))?;
            }
        }
        Shape::Size(i) => ev.size = Some(args[i]),
        Shape::Bare => {}
    }
    Ok(ev)
}

fn set_host_port(ev: &mut SyscallEvent, sa: &SockAddrBuf) {
    if let Some((host, port)) = sa.host_port() {
        ev.host = Some(host);
        ev.port = Some(port);
    }
}

/// The destination in a `struct msghdr` at `addr` (`msg_name` at offset 0,
/// `msg_namelen` at offset 8, 64-bit layout).
fn decode_msghdr(ev: &mut SyscallEvent, mem: &impl ChildMemory, addr: u64) -> Result<(), MemError> {
    let name = read_u64(mem, addr)?;
    let namelen =
        read_u64(mem, addr.checked_add(8).ok_or(MemError::Fault { addr })?)? & 0xffff_ffff;
    if name != 0 && namelen != 0 {
        let sa = read_sockaddr(mem, name, namelen)?;
        set_host_port(ev, &sa);
    }
    Ok(())
}

/// The path argument at `ptr`, made absolute against the dirfd (`AT_FDCWD`:
/// the cwd) when it is relative and the base is known; an empty path names
/// the dirfd itself (`AT_EMPTY_PATH`). A NULL pointer is an empty path.
fn resolve_path(
    notif: &SeccompNotif,
    mem: &impl ChildMemory,
    proc: &impl ProcView,
    dirfd: Option<usize>,
    ptr: u64,
) -> Result<String, MemError> {
    let raw = if ptr == 0 {
        heapless::Vec::new()
    } else {
        read_path(mem, ptr)?
    };
    let path = String::from_utf8_lossy(&raw);
    if path.starts_with('/') {
        return Ok(path.into_owned());
    }
    // The kernel reads a dirfd argument as an `int`: truncation is intended.
    let fd = dirfd.map_or(AT_FDCWD, |i| notif.data.args[i] as i32);
    let base = if fd == AT_FDCWD {
        proc.cwd(notif.pid)
    } else {
        proc.fd_path(notif.pid, fd)
    };
    Ok(match base {
        Some(base) if path.is_empty() => base,
        Some(base) => {
            let sep = if base.ends_with('/') { "" } else { "/" };
            format!("{base}{sep}{path}")
        }
        None => path.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FakeMemory;
    use crate::procfs::FakeProc;
    use sandlock_bpf::arch::AUDIT_ARCH_X86_64;

    fn notif(name: &str, args: [u64; 6]) -> SeccompNotif {
        SeccompNotif {
            pid: 42,
            data: crate::SeccompData {
                arch: AUDIT_ARCH_X86_64,
                nr: Arch::X86_64.syscall_nr(name).unwrap() as i32,
                args,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn proc() -> FakeProc {
        FakeProc {
            ppid: Some(7),
            cwd: Some("/home/u".into()),
            fds: vec![(3, "/etc".into())],
        }
    }

    #[test]
    fn openat_relative_to_cwd_and_dirfd() {
        let m = FakeMemory::new().map(0x1000, b"a/b\0".to_vec());
        let e = decode_with(
            &notif("openat", [AT_FDCWD as u32 as u64, 0x1000, 0, 0, 0, 0]),
            &m,
            &proc(),
        )
        .unwrap();
        assert_eq!(e.path.as_deref(), Some("/home/u/a/b"));
        assert_eq!(
            (e.pid, e.parent_pid, e.category),
            (42, Some(7), SyscallCategory::File)
        );
        let e = decode_with(&notif("openat", [3, 0x1000, 0, 0, 0, 0]), &m, &proc()).unwrap();
        assert_eq!(e.path.as_deref(), Some("/etc/a/b"));
        let e = decode_with(&notif("openat", [9, 0x1000, 0, 0, 0, 0]), &m, &proc()).unwrap();
        assert_eq!(e.path.as_deref(), Some("a/b"));
    }

    #[test]
    fn connect_v4_and_mapped_v6() {
        let sa = SockAddrBuf::from_socket_addr("[::ffff:10.1.2.3]:99".parse().unwrap());
        let m = FakeMemory::new().map(0x1000, sa.as_bytes().to_vec());
        let e = decode_with(&notif("connect", [3, 0x1000, 28, 0, 0, 0]), &m, &proc()).unwrap();
        assert_eq!(e.host, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(e.port, Some(99));
        assert_eq!(e.category, SyscallCategory::Network);
    }

    #[test]
    fn execve_path_and_argv() {
        let mut ptrs = Vec::new();
        for p in [0x2000u64, 0x2008, 0] {
            ptrs.extend_from_slice(&p.to_ne_bytes());
        }
        let m = FakeMemory::new()
            .map(0x1000, b"/bin/ls\0".to_vec())
            .map(0x2000, b"ls\0\0\0\0\0\0-la\0".to_vec())
            .map(0x3000, ptrs);
        let e = decode_with(&notif("execve", [0x1000, 0x3000, 0, 0, 0, 0]), &m, &proc()).unwrap();
        assert_eq!(e.path.as_deref(), Some("/bin/ls"));
        assert_eq!(e.argv.unwrap(), ["ls", "-la"]);
    }

    #[test]
    fn sizes_and_errors() {
        let m = FakeMemory::new();
        let e = decode_with(&notif("mmap", [0, 8192, 0, 0, 0, 0]), &m, &proc()).unwrap();
        assert_eq!((e.size, e.category), (Some(8192), SyscallCategory::Memory));
        let err = decode_with(&notif("openat", [0, 0xdead, 0, 0, 0, 0]), &m, &proc()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Memory {
                arg: "path",
                source: MemError::Fault { addr: 0xdead },
                ..
            }
        ));
        assert_eq!(
            decode_with(&notif("getpid", [0; 6]), &m, &proc()),
            Err(DecodeError::NoEvent("getpid"))
        );
        let mut n = notif("getpid", [0; 6]);
        n.data.arch = 0x4000_0003;
        assert_eq!(
            decode_with(&n, &m, &proc()),
            Err(DecodeError::ForeignArch(0x4000_0003))
        );
        n.data.arch = AUDIT_ARCH_X86_64;
        n.data.nr = 0x4000_0001;
        assert_eq!(
            decode_with(&n, &m, &proc()),
            Err(DecodeError::X32(0x4000_0001))
        );
        n.data.nr = -1;
        assert!(matches!(
            decode_with(&n, &m, &proc()),
            Err(DecodeError::UnknownSyscall { .. })
        ));
    }
}
