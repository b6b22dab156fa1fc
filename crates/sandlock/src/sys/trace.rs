//! `ptrace` and `wait4` for the supervisor's tracer threads (see
//! `supervise/view/tracer.rs` and `supervise/fs/exec.rs`), and `tgkill`.
//!
//! The tracer attaches to one sandboxed task at a time, for a few
//! microseconds: at an `execve` (to fix up the new image before it runs)
//! or to restart a syscall with edited arguments. Every request must come
//! from the thread that attached (the kernel binds a tracee to a thread).

use rustix::io::Errno;

use super::check;

/// `PTRACE_O_TRACESYSGOOD`: syscall stops report `SIGTRAP | 0x80`.
pub(crate) const O_TRACESYSGOOD: u32 = 0x1;
/// `PTRACE_O_TRACEEXEC`: a stop after a successful `execve`.
pub(crate) const O_TRACEEXEC: u32 = 0x10;
/// `PTRACE_O_EXITKILL`: the tracee is killed if the tracer exits.
pub(crate) const O_EXITKILL: u32 = 0x10_0000;

/// `PTRACE_EVENT_EXEC`.
pub(crate) const EVENT_EXEC: u32 = 4;

const PTRACE_DETACH: libc::c_uint = 17;
const PTRACE_SYSCALL: libc::c_uint = 24;
const PTRACE_SEIZE: libc::c_uint = 0x4206;
const PTRACE_INTERRUPT: libc::c_uint = 0x4207;
#[cfg(target_arch = "x86_64")]
const PTRACE_GETREGS: libc::c_uint = 12;
#[cfg(target_arch = "x86_64")]
const PTRACE_SETREGS: libc::c_uint = 13;

/// `ptrace(request, pid, addr, data)`.
fn ptrace(request: libc::c_uint, pid: i32, addr: usize, data: usize) -> Result<(), Errno> {
    // SAFETY: the requests used here take integers (SEIZE: options in
    // `data`; INTERRUPT, DETACH, SYSCALL: a signal number in `data`)
    // or, for GETREGS/SETREGS, a pointer that `get_regs`/`set_regs` pass
    // to a live `user_regs_struct`.
    check(unsafe { libc::syscall(libc::SYS_ptrace, request, pid, addr, data) }).map(drop)
}

/// `PTRACE_SEIZE` with `options`: attach without stopping the task.
pub(crate) fn seize(tid: i32, options: u32) -> Result<(), Errno> {
    ptrace(PTRACE_SEIZE, tid, 0, options as usize)
}

/// `PTRACE_INTERRUPT`: stop a seized task at its next chance (for a task
/// in a syscall: when the syscall returns, before user code runs).
pub(crate) fn interrupt(tid: i32) -> Result<(), Errno> {
    ptrace(PTRACE_INTERRUPT, tid, 0, 0)
}

/// `PTRACE_DETACH`, delivering `sig` (0: none) from a signal-delivery stop.
pub(crate) fn detach(tid: i32, sig: i32) -> Result<(), Errno> {
    ptrace(PTRACE_DETACH, tid, 0, sig as usize)
}

/// `PTRACE_SYSCALL`: resume until the next syscall entry or exit.
pub(crate) fn resume_to_syscall(tid: i32) -> Result<(), Errno> {
    ptrace(PTRACE_SYSCALL, tid, 0, 0)
}

/// The registers of a stopped tracee.
#[cfg(target_arch = "x86_64")]
pub(crate) type Regs = libc::user_regs_struct;

/// `PTRACE_GETREGS`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn get_regs(tid: i32) -> Result<Regs, Errno> {
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    ptrace(PTRACE_GETREGS, tid, 0, &mut regs as *mut Regs as usize)?;
    Ok(regs)
}

/// `PTRACE_SETREGS`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn set_regs(tid: i32, regs: &Regs) -> Result<(), Errno> {
    ptrace(PTRACE_SETREGS, tid, 0, regs as *const Regs as usize)
}

/// How a tracee changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// It exited or was killed: it is gone.
    Gone,
    /// A ptrace event stop (`PTRACE_EVENT_*`).
    Event(u32),
    /// A syscall entry or exit stop (with `PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// A signal-delivery stop for this signal.
    Signal(i32),
}

/// Decodes a `wait4` status of a tracee.
pub(crate) fn decode_status(status: i32) -> Wait {
    if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) as u32 & 0xffff;
        if event != 0 {
            Wait::Event(event)
        } else if sig == libc::SIGTRAP | 0x80 {
            Wait::Syscall
        } else {
            Wait::Signal(sig)
        }
    } else {
        Wait::Gone
    }
}

/// `wait4(-1, &status, __WALL | __WNOTHREAD)`: the next state change of a
/// tracee of the **calling thread** (never another thread's children).
/// Retries on `EINTR`; `ECHILD` when the thread traces nothing.
pub(crate) fn wait_tracee() -> Result<(i32, Wait), Errno> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid int on our stack; no rusage pointer.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_wait4,
                -1,
                &mut status as *mut libc::c_int,
                libc::__WALL | libc::__WNOTHREAD,
                std::ptr::null_mut::<libc::rusage>(),
            )
        };
        match check(ret) {
            Ok(pid) => return Ok((pid as i32, decode_status(status))),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `tgkill(tgid, tid, sig)`.
pub(crate) fn tgkill(tgid: i32, tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) }).map(drop)
}

/// The kernel's time zone (`gettimeofday`'s second argument): minutes west
/// of Greenwich and the DST correction type.
pub(crate) fn kernel_timezone() -> (i32, i32) {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // struct timezone: two ints (minutes west, DST type).
    let mut tz = [0 as libc::c_int; 2];
    // SAFETY: both pointers point at memory on our stack, of the sizes the
    // syscall writes (a timeval, two ints).
    let ret = unsafe { libc::syscall(libc::SYS_gettimeofday, &mut tv, tz.as_mut_ptr()) };
    if ret < 0 { (0, 0) } else { (tz[0], tz[1]) }
}
