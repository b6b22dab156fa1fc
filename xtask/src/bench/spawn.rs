//! Starting a measured process as another user as cheaply as the runner
//! starts any other: `clone(CLONE_VM | CLONE_VFORK)` on a stack of its own,
//! the identity switched in the child just before `execve`. std's
//! `Command` with `uid()` forks the whole harness instead (a copy of its
//! page tables and copy-on-write faults), which adds about 0.25 ms to every
//! run and would dilute a start-up ratio.

use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The child's stack.
const STACK: usize = 64 * 1024;

/// A command ready to start as another user: everything the child reads,
/// prepared before the clone (and before the caller starts its clock).
pub struct Prepared {
    args: Args,
    /// The child's stack (allocated with the rest, outside the clock).
    stack: Vec<u128>,
    program: String,
    /// Keep the strings the pointers of `args` point into.
    _strings: (Vec<CString>, Vec<CString>),
}

struct Args {
    path: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: CString,
    stdio: [RawFd; 3],
    uid: u32,
    /// Written by the child when a step fails: (step, errno).
    failed: (&'static str, i32),
}

impl Prepared {
    /// `argv` to run in `cwd` as `uid` (and gid `uid`, no supplementary
    /// groups), in a process group of its own, with `stdio` as 0/1/2 (each
    /// above 2) and this process's environment.
    pub fn new(argv: &[OsString], cwd: &Path, stdio: [RawFd; 3], uid: u32) -> Result<Self, String> {
        let program = argv.first().ok_or("empty command")?;
        let path = resolve(Path::new(program))
            .ok_or_else(|| format!("starting {}: not found", program.to_string_lossy()))?;
        let cstr = |b: &[u8]| CString::new(b).map_err(|_| "a NUL byte in the command".to_owned());
        let strings: Vec<CString> = argv
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let env: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<_, _>>()?;
        let pointers = |v: &[CString]| {
            let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        if stdio.iter().any(|&fd| fd < 3) {
            return Err("standard streams must come from descriptors above 2".to_owned());
        }
        let args = Args {
            path: cstr(path.as_os_str().as_bytes())?,
            argv: pointers(&strings),
            envp: pointers(&env),
            cwd: cstr(cwd.as_os_str().as_bytes())?,
            stdio,
            uid,
            failed: ("", 0),
        };
        Ok(Self {
            args,
            stack: vec![0u128; STACK / 16],
            program: program.to_string_lossy().into_owned(),
            _strings: (strings, env),
        })
    }

    /// Starts it; returns its pid (the caller waits for it and reaps it).
    pub fn spawn(&mut self) -> Result<i32, String> {
        let args = &mut self.args;
        args.failed = ("", 0);
        let uid = args.uid;
        let top = self.stack.as_mut_ptr_range().end;
        // SAFETY: `top` is the end of a live, 16-byte aligned buffer nothing
        // else uses; the child runs `child` (async-signal-safe calls on `args`,
        // which stays alive and untouched while CLONE_VFORK suspends us) and
        // writes nothing but that stack and `args.failed`.
        let pid = unsafe {
            libc::clone(
                child,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::from_mut(args).cast(),
            )
        };
        if pid < 0 {
            return Err(format!("clone: {}", std::io::Error::last_os_error()));
        }
        let (step, errno) = args.failed;
        if errno != 0 {
            let _ = super::measure::sys::reap(pid);
            return Err(format!(
                "starting {} as uid {uid}: {step}: {}",
                self.program,
                std::io::Error::from_raw_os_error(errno)
            ));
        }
        Ok(pid)
    }
}

/// The child: switches identity and executes. Never returns.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&mut Args` of `Prepared::spawn`, alive and not
    // used by the parent until we execve or exit (CLONE_VFORK).
    let a = unsafe { &mut *arg.cast::<Args>() };
    let fail = |a: &mut Args, step: &'static str| -> libc::c_int {
        a.failed = (
            step,
            std::io::Error::last_os_error().raw_os_error().unwrap_or(1),
        );
        // SAFETY: _exit ends this process at once, running nothing else.
        unsafe { libc::_exit(127) }
    };
    let empty: libc::sigset_t = {
        // SAFETY: all-zero bytes are a valid sigset_t; sigemptyset makes
        // it the empty set.
        let mut s = unsafe { std::mem::zeroed() };
        // SAFETY: `s` is a valid, writable sigset_t.
        unsafe { libc::sigemptyset(&mut s) };
        s
    };
    // SAFETY: each call takes integers or pointers to data `a` and this
    // frame keep alive; none touches the harness' allocator or locks.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return fail(a, "setpgid");
        }
        for (target, &src) in a.stdio.iter().enumerate() {
            if libc::dup2(src, target as RawFd) < 0 {
                return fail(a, "dup2");
            }
        }
        // Rust ignores SIGPIPE in the harness; the command gets the default.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return fail(a, "sigprocmask");
        }
        if libc::chdir(a.cwd.as_ptr()) != 0 {
            return fail(a, "chdir");
        }
        // Raw system calls: the C library's set*id wrappers apply the change
        // to every thread of the process they believe they are in, which
        // in a CLONE_VM child is the harness.
        let id = libc::c_long::from(a.uid);
        if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0 {
            return fail(a, "setgroups");
        }
        if libc::syscall(libc::SYS_setresgid, id, id, id) != 0 {
            return fail(a, "setresgid");
        }
        if libc::syscall(libc::SYS_setresuid, id, id, id) != 0 {
            return fail(a, "setresuid");
        }
        libc::execve(a.path.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
    }
    fail(a, "execve")
}

/// `program` itself when it names a path, else the first executable of
/// that name in `$PATH`.
fn resolve(program: &Path) -> Option<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Some(program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
}
