//! `execve` / `execveat`: a decision that the kernel's own re-read of the
//! path and argv cannot escape.
//!
//! `execve` cannot be performed on a task's behalf, so after the decision
//! the task's own call continues and the kernel reads the path and argv
//! again: a sibling thread, a `CLONE_VM` process or a process mapping the
//! same memory (a shared memfd) could change them in between. We neither
//! freeze the sandbox (stopping every other task, or the cgroup freezer,
//! would reach processes that have nothing to do with the exec) nor refuse
//! exec from shared memory (`posix_spawn`, `vfork` and every
//! multi-threaded runtime exec from memory they share). We **verify** what
//! the kernel used, before the new program runs one instruction:
//!
//! 1. the path and (with a callback asking for process events) argv are
//!    copied once; the path is resolved and the pinned file checked
//!    against the deny rules (`EACCES`); the callback judges the copy;
//! 2. the task is traced (`PTRACE_SEIZE` with `PTRACE_O_TRACEEXEC`, and
//!    `PTRACE_O_EXITKILL` so that a dead supervisor takes it along), its
//!    syscall continues, and it is interrupted so that a failed `execve`
//!    also stops on its way back;
//! 3. at `PTRACE_EVENT_EXEC` the new image exists but has not run: its
//!    executable (`/proc/PID/exe`) must be the file checked (or, for a
//!    script, the file name the kernel used must be the path judged, and
//!    the interpreter must not be denied), and its argv (`/proc/PID/cmdline`,
//!    in memory no other task shares any more) must be the argv judged;
//!    otherwise the task is killed (`SIGKILL`) — it can only differ if a
//!    racing task changed it, which is an attack;
//! 4. the tracer detaches.
//!
//! A task that cannot be traced (already traced, or made undumpable) gets
//! `EPERM`: the decision could not be made to hold.

use std::sync::Arc;

use rustix::fs::{AtFlags, CWD, ResolveFlags};
use rustix::io::Errno;
use sandlock_notify::bounded::read_argv;
use sandlock_notify::{BuildError, Ctx, Reply, Response, SupervisorBuilder, Unverified};
use sandlock_policy::{SyscallCategory, SyscallEvent, Verdict};

use super::deny::Ident;
use super::resolve::{Found, Proc, Resolver, Task};
use super::{FsCore, handle, task_of};
use crate::sys::behalf::{self, PTRACE_EVENT_EXEC, TraceStop};
use crate::sys::trace;

const AT_EMPTY_PATH: u64 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `AT_EXECFN` in the auxiliary vector: the file name the kernel executed.
const AT_EXECFN: u64 = 31;

pub(crate) fn register(
    mut sup: SupervisorBuilder,
    core: &Arc<FsCore>,
    judge: bool,
) -> Result<SupervisorBuilder, BuildError> {
    for name in ["execve", "execveat"] {
        let c = core.clone();
        sup = handle(sup, name, move |ctx: &Ctx| on_exec(ctx, &c, judge))?;
    }
    Ok(sup)
}

/// What the decision was taken on.
struct Judged {
    /// The path as read (the kernel's file name is built from it).
    raw: Vec<u8>,
    /// The dirfd, for `execveat` (`AT_FDCWD` for `execve`).
    dirfd: i32,
    /// The resolved file.
    file: Ident,
    /// The argv judged (when the callback asked for it).
    argv: Option<Vec<String>>,
}

fn on_exec(ctx: &Ctx, core: &Arc<FsCore>, judge: bool) -> Reply {
    let a = *ctx.args();
    let at = ctx.notif().data.nr as i64 != execve_nr();
    let (dirfd, path_arg, argv_arg, flags) = if at {
        (a[0] as i32, 1, a[2], a[4])
    } else {
        (sandlock_notify::decode::AT_FDCWD, 0, a[1], 0)
    };
    let task = task_of(ctx);
    let read = ctx.read_path(path_arg).and_then(|p| {
        let argv = if judge {
            Some(read_argv(ctx.memory(), argv_arg)?)
        } else {
            None
        };
        let raw = p.into_inner_unchecked().to_vec();
        ctx.verify(Unverified::new(task.id, (raw, argv)))
    });
    let (raw, argv) = match read {
        Ok(v) => v.into_inner(),
        Err(e) => return Reply::errno(e.errno()),
    };
    let start = match core.start(task, dirfd, &raw, ResolveFlags::empty()) {
        Ok(s) => s,
        Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
    };
    let r = Resolver { core, task };
    let found = if raw.is_empty() && flags & AT_EMPTY_PATH != 0 {
        let fd = match super::path::dup(start.fd()) {
            Ok(fd) => fd,
            Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
        };
        rustix::fs::fstat(&fd).and_then(|stat| {
            Ok(Found {
                real: super::path::fd_path(&fd)?,
                fd,
                stat,
                proc: Proc::No,
            })
        })
    } else {
        r.find(&start, &raw, flags & AT_SYMLINK_NOFOLLOW == 0)
    };
    let mut event = SyscallEvent::new(
        if at { "execveat" } else { "execve" },
        SyscallCategory::Process,
        task.tid,
    );
    event.parent_pid = sandlock_notify::ProcView::parent_pid(&sandlock_notify::ProcFs, task.tid);
    event.argv = argv.clone();
    let found = match found {
        Ok(f) => f,
        // Not found, not a directory...: the kernel would say the same, and
        // nothing runs. Answered from our resolution, never CONTINUE.
        Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
    };
    event.path = Some(String::from_utf8_lossy(&found.real).into_owned());
    match core.found_denied(&r, &found) {
        Ok(false) => {}
        Ok(true) => {
            core.audit_denied(Some(&mut event));
            return Reply::errno(sandlock_bpf::Errno::EACCES);
        }
        Err(e) => return Reply::errno(sandlock_notify::listener::errno_of(e)),
    }
    let judged = Judged {
        raw,
        dirfd,
        file: Ident::of(&found.stat),
        argv,
    };
    let c = core.clone();
    let audit_event = event.clone();
    // The exec is traced by the feature's own tracer thread (a tracer must
    // stay the same thread from PTRACE_SEIZE to PTRACE_DETACH, and waits as
    // long as the exec takes). Held first for the callback when it asks
    // for process events.
    let go = move || -> Reply {
        let c2 = c.clone();
        match c
            .tracer()
            .submit(move || trace_exec(&c2, task, &judged, audit_event))
        {
            Ok(()) => Reply::Answered,
            Err(_) => Reply::errno(sandlock_bpf::Errno::EPERM),
        }
    };
    if judge {
        Reply::hold(event, move |_: &Ctx| go())
    } else {
        core.shared.audit(&event, Verdict::Allow);
        go()
    }
}

fn execve_nr() -> i64 {
    sandlock_bpf::Arch::native()
        .and_then(|a| a.syscall_nr("execve"))
        .map_or(-1, i64::from)
}

/// Continues the task's exec under trace and checks the new image.
fn trace_exec(core: &Arc<FsCore>, task: Task, judged: &Judged, mut event: SyscallEvent) {
    let listener = &core.shared.listener;
    let tid = task.tid as i32;
    // TRACESYSGOOD: an exec-stop hook of another feature (the view's) may
    // step the new image through a syscall and tell its stops apart.
    let options = trace::O_TRACEEXEC | trace::O_EXITKILL | trace::O_TRACESYSGOOD;
    if trace::seize(tid, options).is_err() {
        event.denied = true;
        core.shared.audit(&event, Verdict::Deny);
        let _ = listener.respond(task.id, Response::Errno(sandlock_bpf::Errno::EPERM));
        return;
    }
    // CONTINUE after a decision on memory is safe here only because the
    // exec is verified at PTRACE_EVENT_EXEC, before the new image runs.
    if listener.respond(task.id, Response::Continue).is_err() {
        let _ = trace::interrupt(tid);
        let _ = settle(core, None);
        return;
    }
    // A failed execve returns to the old program: stop it there too.
    let _ = trace::interrupt(tid);
    let _ = settle(core, Some((judged, &mut event)));
}

/// Waits for the traced exec to end (new image or back in the old one),
/// verifies a new image against `judged`, kills it if it differs, and
/// detaches.
fn settle(
    core: &Arc<FsCore>,
    mut judged: Option<(&Judged, &mut SyscallEvent)>,
) -> Result<(), Errno> {
    let root = core.shared.tasks.root();
    loop {
        match behalf::wait_tracee(root)? {
            TraceStop::Gone { .. } => return Ok(()),
            TraceStop::Stopped { pid, status } => {
                let event = (status >> 16) & 0xff;
                if event == PTRACE_EVENT_EXEC {
                    if let Some((j, ev)) = judged.take()
                        && !verify(core, pid, j)
                    {
                        ev.denied = true;
                        core.shared.audit(ev, Verdict::Deny);
                        let _ = trace::tgkill(pid, pid, libc::SIGKILL);
                        continue;
                    }
                    if let Some(hook) = core.shared.exec_stop.get()
                        && hook(pid)
                    {
                        return Ok(());
                    }
                    let _ = trace::detach(pid, 0);
                    return Ok(());
                }
                // The interrupt (the exec failed and returned), or a signal
                // for the task: hand that signal over as we leave.
                let sig = status >> 8 & 0xff;
                let deliver = if event == 0 && sig != libc::SIGTRAP {
                    sig
                } else {
                    0
                };
                let _ = trace::detach(pid, deliver);
                return Ok(());
            }
        }
    }
}

/// Whether the new image of `pid` is what was judged.
fn verify(core: &FsCore, pid: i32, j: &Judged) -> bool {
    let exe = format!("/proc/{pid}/exe");
    let Ok(st) = rustix::fs::statat(CWD, exe.as_str(), AtFlags::empty()) else {
        return false;
    };
    let exe_id = Ident::of(&st);
    let exe_real = rustix::fs::readlink(exe.as_str(), Vec::new())
        .map(|p| p.into_bytes())
        .unwrap_or_default();
    let name = kernel_filename(j);
    if exe_id != j.file {
        // A script (the interpreter runs), or the file changed under the
        // same name: the kernel must have used the very name judged, and
        // what runs must not be denied.
        if execfn(pid).as_deref() != Some(name.as_slice()) || core.denied.denied(exe_id, &exe_real)
        {
            return false;
        }
    }
    match &j.argv {
        None => true,
        Some(judged) => match cmdline(pid) {
            Some(now) => argv_matches(judged, &now, &name),
            None => false,
        },
    }
}

/// The file name the kernel gives the new image (`bprm->filename`).
fn kernel_filename(j: &Judged) -> Vec<u8> {
    if j.dirfd == sandlock_notify::decode::AT_FDCWD || j.raw.starts_with(b"/") {
        j.raw.clone()
    } else if j.raw.is_empty() {
        format!("/dev/fd/{}", j.dirfd).into_bytes()
    } else {
        [format!("/dev/fd/{}/", j.dirfd).as_bytes(), &j.raw].concat()
    }
}

/// argv of the new image against the one judged: equal, or (a script) the
/// interpreter's words, then the script's name, then the judged argv
/// without its first word. An empty argv runs as `[""]`.
fn argv_matches(judged: &[String], now: &[String], name: &[u8]) -> bool {
    if now == judged || (judged.is_empty() && now.len() == 1 && now[0].is_empty()) {
        return true;
    }
    let tail = judged.get(1..).unwrap_or(&[]);
    if now.len() < tail.len() + 2 || !now.ends_with(tail) {
        return false;
    }
    let before = &now[now.len() - tail.len() - 1];
    before.as_bytes() == String::from_utf8_lossy(name).as_bytes()
}

/// `/proc/PID/cmdline`, split into words (lossy, like the judged copy).
fn cmdline(pid: i32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let body = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
    Some(
        body.split(|&b| b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect(),
    )
}

/// The string at `AT_EXECFN` of the new image.
fn execfn(pid: i32) -> Option<Vec<u8>> {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).ok()?;
    let addr = auxv.chunks_exact(16).find_map(|e| {
        let k = u64::from_ne_bytes(e[..8].try_into().ok()?);
        let v = u64::from_ne_bytes(e[8..].try_into().ok()?);
        (k == AT_EXECFN).then_some(v)
    })?;
    let mem = sandlock_notify::ProcessMemory::new(pid as u32);
    let s = sandlock_notify::bounded::read_path(&mem, addr).ok()?;
    Some(s.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn argv_of_binaries_and_scripts() {
        assert!(argv_matches(
            &v(&["ls", "-l"]),
            &v(&["ls", "-l"]),
            b"/bin/ls"
        ));
        assert!(!argv_matches(
            &v(&["ls", "-l"]),
            &v(&["ls", "-x"]),
            b"/bin/ls"
        ));
        // #!/bin/sh -e  run as ./s.sh a b
        assert!(argv_matches(
            &v(&["./s.sh", "a", "b"]),
            &v(&["/bin/sh", "-e", "./s.sh", "a", "b"]),
            b"./s.sh"
        ));
        assert!(!argv_matches(
            &v(&["./s.sh", "a", "b"]),
            &v(&["/bin/sh", "./evil", "a", "b"]),
            b"./s.sh"
        ));
        assert!(!argv_matches(
            &v(&["./s.sh", "good"]),
            &v(&["/bin/sh", "./s.sh", "evil"]),
            b"./s.sh"
        ));
        assert!(argv_matches(&[], &v(&[""]), b"/bin/x"));
    }

    #[test]
    fn kernel_file_names() {
        let j = |raw: &str, dirfd| Judged {
            raw: raw.as_bytes().to_vec(),
            dirfd,
            file: Ident { dev: 0, ino: 0 },
            argv: None,
        };
        assert_eq!(kernel_filename(&j("/bin/ls", 3)), b"/bin/ls");
        assert_eq!(kernel_filename(&j("ls", -100)), b"ls");
        assert_eq!(kernel_filename(&j("ls", 3)), b"/dev/fd/3/ls");
        assert_eq!(kernel_filename(&j("", 3)), b"/dev/fd/3");
    }
}
