//! One run of a program, single-stepped with `ptrace`: which of its own
//! instructions it executes, in the order first executed.
//!
//! A sampling profile misses the functions that run once for a few
//! microseconds, and those are most of a start: each still costs the page
//! fault that maps its code. Stepping every instruction finds them all. A
//! start of `sandlock` is some 300 000 steps, about 20 s.

use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Offsets into `binary`'s image of the instructions that `binary args`
/// executes, each once, in the order first executed: in its own process
/// and every process it starts, until that process executes another
/// program. The run must exit with status 0.
#[cfg(target_arch = "x86_64")]
pub fn first_executed(binary: &Path, args: &[String]) -> Result<Vec<u64>, String> {
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| format!("{b:?}: a NUL byte"));
    let path = cstr(binary.as_os_str().as_bytes())?;
    let owned = std::iter::once(Ok(path.clone()))
        .chain(args.iter().map(|a| cstr(a.as_bytes())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());

    // SAFETY: the child calls only async-signal-safe functions (ptrace,
    // execv, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; `argv` is NULL-terminated and outlives execv.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::execv(path.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    let mut tracer = Tracer {
        main: pid,
        status: None,
        image: (0, 0),
        seen: Vec::new(),
        order: Vec::new(),
    };
    let result = tracer.run(binary);
    if result.is_err() {
        // SAFETY: plain system calls on our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            while libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL) > 0 {}
        }
    }
    result?;
    match tracer.status {
        Some(0) => Ok(tracer.order),
        Some(st) => Err(format!(
            "{} ended with wait status {st:#x}",
            binary.display()
        )),
        None => Err(format!("{} was not seen to end", binary.display())),
    }
}

/// Elsewhere: no single-stepping code for this architecture.
#[cfg(not(target_arch = "x86_64"))]
pub fn first_executed(_binary: &Path, _args: &[String]) -> Result<Vec<u64>, String> {
    Err("the layout tracer reads x86-64 registers only".to_owned())
}

#[cfg(target_arch = "x86_64")]
struct Tracer {
    main: libc::pid_t,
    /// The main process's wait status once it ended.
    status: Option<i32>,
    /// Where the binary is mapped: its load address and end.
    image: (u64, u64),
    seen: Vec<bool>,
    order: Vec<u64>,
}

#[cfg(target_arch = "x86_64")]
impl Tracer {
    fn run(&mut self, binary: &Path) -> Result<(), String> {
        let mut st = 0;
        // SAFETY: waits for our own child, stopped at its execve.
        if unsafe { libc::waitpid(self.main, &mut st, 0) } != self.main || !libc::WIFSTOPPED(st) {
            return Err(format!("{} did not stop at its start", binary.display()));
        }
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.main))
            .map_err(|e| format!("/proc/{}/maps: {e}", self.main))?;
        let real =
            std::fs::canonicalize(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        self.image = image(&maps, &real.to_string_lossy())
            .ok_or_else(|| format!("{} is not in its own memory map", real.display()))?;
        self.seen = vec![false; (self.image.1 - self.image.0) as usize];
        let options = libc::PTRACE_O_TRACECLONE
            | libc::PTRACE_O_TRACEFORK
            | libc::PTRACE_O_TRACEVFORK
            | libc::PTRACE_O_TRACEEXEC
            | libc::PTRACE_O_EXITKILL;
        // SAFETY: ptrace requests on our stopped tracee.
        unsafe {
            libc::ptrace(libc::PTRACE_SETOPTIONS, self.main, 0, options);
            libc::ptrace(libc::PTRACE_SINGLESTEP, self.main, 0, 0);
        }
        loop {
            // SAFETY: waits for any tracee; `st` is ours.
            let pid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
            if pid < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => return Ok(()),
                    _ => return Err(format!("waitpid: {e}")),
                }
            }
            if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
                if pid == self.main {
                    self.status = Some(st);
                }
                continue;
            }
            if !libc::WIFSTOPPED(st) {
                continue;
            }
            let (sig, event) = (libc::WSTOPSIG(st), st >> 16);
            if event == libc::PTRACE_EVENT_EXEC {
                // Another program from here on: not the binary's code.
                // SAFETY: detaching our stopped tracee.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
                continue;
            }
            // Pass on real signals; swallow the traps and stops of tracing.
            let deliver = if event == 0 && sig != libc::SIGTRAP && sig != libc::SIGSTOP {
                sig
            } else {
                0
            };
            self.note(pid);
            // SAFETY: resuming our stopped tracee for one instruction.
            unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, deliver) };
        }
    }

    /// Records where `pid` stands, if in the binary and new.
    fn note(&mut self, pid: libc::pid_t) {
        let mut regs = std::mem::MaybeUninit::<libc::user_regs_struct>::uninit();
        // SAFETY: PTRACE_GETREGS fills a user_regs_struct of a stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, regs.as_mut_ptr()) } != 0 {
            return;
        }
        // SAFETY: filled by the successful call above.
        let ip = unsafe { regs.assume_init() }.rip;
        if (self.image.0..self.image.1).contains(&ip) {
            let off = ip - self.image.0;
            if !std::mem::replace(&mut self.seen[off as usize], true) {
                self.order.push(off);
            }
        }
    }
}

/// The load address and end of `path`'s mappings in a `/proc/PID/maps`
/// text (the load address is the first mapping's start less its offset).
pub fn image(maps: &str, path: &str) -> Option<(u64, u64)> {
    let mut found: Option<(u64, u64)> = None;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), _, Some(offset), _, _, Some(name)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if name != path {
            continue;
        }
        let (start, end) = range.split_once('-')?;
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        let (start, end, offset) = (hex(start)?, hex(end)?, hex(offset)?);
        found = Some(match found {
            None => (start.checked_sub(offset)?, end),
            Some((base, top)) => (base, top.max(end)),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::image;

    #[test]
    fn the_image_spans_every_mapping_of_the_binary() {
        let maps = "\
7f0000000000-7f0000010000 r--p 00000000 08:01 42    /opt/sandlock
7f0000010000-7f0000200000 r-xp 00010000 08:01 42    /opt/sandlock
7f0000200000-7f0000210000 rw-p 00200000 08:01 42    /opt/sandlock
7f0000210000-7f0000300000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
";
        assert_eq!(
            image(maps, "/opt/sandlock"),
            Some((0x7f00_0000_0000, 0x7f00_0021_0000))
        );
        assert_eq!(image(maps, "/opt/other"), None);
    }
}
