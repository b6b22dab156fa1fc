//! The init of a sandbox's PID namespace.
//!
//! The sandbox's first process is pid 1 of its namespace. It does not run
//! the command itself: an init ignores every signal it has no handler for
//! (even `SIGKILL` from inside its namespace), and orphans are reparented
//! to it, so a command run as pid 1 would neither stop on `SIGTERM` nor
//! reap the zombies its descendants leave. Instead it forks the command
//! (pid 2) and only reaps, with raw system calls; it never executes
//! anything. When the command ends it sends the command's wait status to
//! the parent and exits: the kernel then kills every other task of the
//! namespace before the parent sees it gone, so nothing outlives the
//! command. If sandlock dies, `PR_SET_PDEATHSIG` ends the init, and the
//! namespace with it.
//!
//! It is not confined (no Landlock domain, no seccomp filter): it runs no
//! code but this, and tasks of the sandbox cannot reach it (signals to an
//! init without handlers are dropped; ptrace and `/proc/1/mem` are out of
//! their Landlock domain's reach; `process_vm_*` are denied).

use std::os::fd::RawFd;

use crate::child::{TAG_EXECUTED, TAG_STATUS};
use crate::sys::child::{close_all_but, exit, write_msg};
use crate::sys::ns::wait_any;

/// Runs the init after the command (`command`, pid 2) called `execve` or
/// ended: tells the parent, then reaps until the command ends. Never
/// returns.
pub(crate) fn run(sock: RawFd, command: i32, fd_limit: u64) -> ! {
    // The command's own confinement messages (listener, errors) were sent
    // before its execve, hence before this one.
    let _ = write_msg(sock, &[TAG_EXECUTED]);
    // The init never calls execve, so close-on-exec closes nothing here:
    // it keeps nothing open but its channel (a copy of a pipe's write end
    // would keep its reader from ever seeing the end of the file).
    close_all_but(sock, fd_limit);
    loop {
        match wait_any() {
            Ok((pid, status)) if pid == command => {
                let mut msg = [0u8; 5];
                msg[0] = TAG_STATUS;
                msg[1..5].copy_from_slice(&status.to_le_bytes());
                let _ = write_msg(sock, &msg);
                exit(code_of(status))
            }
            Ok(_) => continue,
            // No child left (cannot happen before the command is reaped).
            Err(_) => exit(125),
        }
    }
}

/// The exit code mirroring a wait status: the code, or 128 + the signal.
fn code_of(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

#[cfg(test)]
mod tests {
    use super::code_of;

    #[test]
    fn exit_codes() {
        assert_eq!(code_of(0), 0);
        assert_eq!(code_of(3 << 8), 3);
        assert_eq!(code_of(9), 137);
        assert_eq!(code_of(0x80 | 11), 139);
    }
}
