//! The library: `Sandbox::run` / `spawn`, `Child`, errors, timeouts,
//! `confine_current`, and spawning from a busy multi-threaded process.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{Scratch, bins, gone_marked, gone_within};
use sandlock::{Error, Policy, Sandbox, SetupStep, Stdio};

fn base() -> sandlock::PolicyBuilder {
    let mut b = Policy::builder()
        .fs_read(bins().dir().to_str().unwrap())
        .fs_read("/usr")
        .fs_read("/etc");
    for p in ["/lib", "/lib64", "/bin"] {
        if std::path::Path::new(p).exists() {
            b = b.fs_read(p);
        }
    }
    b
}

fn probe() -> String {
    bins().probe().to_string_lossy().into_owned()
}

#[test]
fn run_captures_output_and_status() {
    let sb = Sandbox::new(base().build().unwrap())
        .unwrap()
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    let r = sb
        .run(&[
            probe(),
            "echo".into(),
            "out".into(),
            "stderr".into(),
            "err".into(),
            "exit".into(),
            "5".into(),
        ])
        .unwrap();
    assert_eq!(r.stdout, b"out\n");
    assert_eq!(r.stderr, b"err\n");
    assert_eq!(r.status.code(), Some(5));
    assert_eq!(r.code(), 5);
    assert!(!r.timed_out);
    // The same sandbox runs again.
    let r = sb.run(&[probe(), "exit".into(), "0".into()]).unwrap();
    assert_eq!(r.code(), 0);
}

/// Output larger than one read (64 KiB) on both pipes at once comes back
/// whole, byte for byte, in order.
#[test]
fn run_captures_large_output_whole() {
    let sb = Sandbox::new(base().build().unwrap())
        .unwrap()
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    // 3 MiB of lines on stdout, then 1 MiB on stderr.
    let script = "yes 0123456789abcdef | head -c 3145728; \
                  yes fedcba9876543210 | head -c 1048576 >&2";
    let r = sb
        .run(&["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()])
        .unwrap();
    assert_eq!(r.code(), 0);
    let want =
        |line: &[u8], len: usize| -> Vec<u8> { line.iter().copied().cycle().take(len).collect() };
    assert_eq!(r.stdout.len(), 3 << 20);
    assert!(
        r.stdout == want(b"0123456789abcdef\n", 3 << 20),
        "stdout differs"
    );
    assert_eq!(r.stderr.len(), 1 << 20);
    assert!(
        r.stderr == want(b"fedcba9876543210\n", 1 << 20),
        "stderr differs"
    );
}

/// `finish_before_exit` removes the private temporary directory, files
/// and all (empties it, when it is its user's slot), as dropping the
/// sandbox does.
#[test]
fn finish_before_exit_removes_the_private_tmp() {
    let sb = Sandbox::new(base().build().unwrap())
        .unwrap()
        .with_private_tmp()
        .unwrap();
    let tmp = sb.private_tmp().unwrap().to_owned();
    let r = sb
        .run(&[
            probe(),
            "write".into(),
            tmp.join("f").to_string_lossy().into_owned(),
        ])
        .unwrap();
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(tmp.join("f").exists());
    sb.finish_before_exit();
    assert!(!tmp.join("f").exists(), "{} is still there", tmp.display());
    // The directory too, unless it is the user's slot (kept, emptied).
    assert!(
        tmp.ends_with("slot") || !tmp.exists(),
        "{} is still there",
        tmp.display()
    );
}

#[test]
fn spawn_gives_pipes_pid_and_pidfd() {
    let sb = Sandbox::new(base().build().unwrap())
        .unwrap()
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped);
    let mut child = sb.spawn(&["/bin/cat"]).unwrap();
    assert!(child.id() > 0);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through the sandbox\n")
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "through the sandbox\n");
    assert!(child.wait().unwrap().success());
    // pidfd of an exited, reaped process: still a valid descriptor.
    let _ = child.pidfd();
}

#[test]
fn kill_ends_the_whole_sandbox() {
    let s = Scratch::new(0);
    let pidfile = s.s("bg.pid");
    let sb = Sandbox::new(base().fs_write(s.path().to_str().unwrap()).build().unwrap()).unwrap();
    let mut child = sb
        .spawn(&[
            probe(),
            "bg".into(),
            pidfile.clone(),
            "sleep".into(),
            "60".into(),
        ])
        .unwrap();
    let mut bg = 0;
    for _ in 0..500 {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            bg = p;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(bg > 0);
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(9));
    assert!(gone_within(child.id() as i32, 5));
    // `bg` is its pid in the sandbox's PID namespace: find it by its argv
    // (which holds the unique pidfile path).
    assert!(gone_marked(&pidfile, 5));
}

#[test]
fn timeout_kills_and_says_so() {
    let sb = Sandbox::new(base().timeout("300ms").build().unwrap()).unwrap();
    let r = sb.run(&[probe(), "sleep".into(), "30".into()]).unwrap();
    assert!(r.timed_out);
    assert_eq!(r.code(), 124);
    assert_eq!(r.status.signal(), Some(9));
    let mut c = sb.spawn(&[probe(), "sleep".into(), "30".into()]).unwrap();
    let st = c.wait().unwrap();
    assert!(c.timed_out());
    assert_eq!(st.signal(), Some(9));
}

#[test]
fn errors_name_what_failed() {
    let e = Sandbox::new(base().fs_read("/sandlock-nope").build().unwrap()).unwrap_err();
    assert!(
        matches!(&e, Error::Path { field: "fs_readable", path, errno } if path == "/sandlock-nope" && *errno == rustix::io::Errno::NOENT),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 125);
    assert_eq!(
        e.to_string(),
        "fs_readable /sandlock-nope: no such file or directory"
    );

    let e = Sandbox::new(base().chroot("/").build().unwrap()).unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field: "chroot", value, .. } if value == "/"),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 125);
    let e = Sandbox::new(base().chroot("/sandlock-nope").build().unwrap()).unwrap_err();
    assert!(
        matches!(&e, Error::Path { field: "chroot", errno, .. } if *errno == rustix::io::Errno::NOENT),
        "{e:?}"
    );

    let sb = Sandbox::new(base().build().unwrap()).unwrap();
    let e = sb.run(&["sandlock-no-such-command"]).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 127);
    let e = sb.run::<&str>(&[]).unwrap_err();
    assert!(matches!(e, Error::NoCommand));
    let e = sb.run(&["/sandlock/no/such/program"]).unwrap_err();
    assert!(
        matches!(e, Error::Exec { errno, .. } if errno == rustix::io::Errno::NOENT),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 127);
    // Outside every grant: Landlock refuses the execve.
    let s = Scratch::new(0);
    let copy = s.join("probe");
    std::fs::copy(bins().probe(), &copy).unwrap();
    let e = sb.run(&[copy.to_str().unwrap()]).unwrap_err();
    assert!(
        matches!(e, Error::Exec { errno, .. } if errno == rustix::io::Errno::ACCESS),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 126);
    // An argument with a NUL byte.
    let e = sb.run(&["/bin/true", "a\0b"]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "command",
                ..
            }
        ),
        "{e:?}"
    );
    // A user syscall list that forbids execve: the child reports the exec.
    let sb = Sandbox::new(base().deny_syscall("execve").build().unwrap()).unwrap();
    let e = sb.run(&["/bin/true"]).unwrap_err();
    assert!(
        matches!(e, Error::Exec { errno, .. } if errno == rustix::io::Errno::PERM),
        "{e:?}"
    );
}

/// The setup-step names a failure reports.
#[test]
fn setup_errors_name_the_step() {
    let e = Error::Setup {
        step: SetupStep::Landlock,
        errno: rustix::io::Errno::PERM,
    };
    assert_eq!(
        e.to_string(),
        "sandbox setup failed at landlock_restrict_self: operation not permitted"
    );
    let e = Error::Setup {
        step: SetupStep::Seccomp,
        errno: rustix::io::Errno::BUSY,
    };
    assert!(e.to_string().contains("seccomp-notify sandbox"), "{e}");
}

/// Forking from a process whose other threads allocate and lock all the
/// time: the child only makes raw syscalls, so it never deadlocks.
#[test]
fn spawn_from_a_busy_multithreaded_process() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut v: Vec<Vec<u8>> = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    v.push(vec![1; 4096]);
                    if v.len() > 64 {
                        v.clear();
                    }
                    let _ = format!("{}", v.len());
                }
            })
        })
        .collect();
    let sb = Sandbox::new(base().build().unwrap())
        .unwrap()
        .stdout(Stdio::Piped);
    for i in 0..40 {
        let r = sb
            .run(&[probe(), "exit".into(), (i % 7).to_string()])
            .unwrap();
        assert_eq!(r.code(), i % 7);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

/// `confine_current` in a forked child of this test (which then has one
/// thread): it can no longer read outside, mount, or touch another
/// process's limits; the parent checks its exit status.
#[test]
fn confine_current_confines_this_process() {
    let inside = Scratch::new(0);
    inside.file("inside", "in");
    let outside = Scratch::new(0);
    outside.file("secret", "s");
    // SAFETY: the child runs the checks and leaves with _exit; glibc's fork
    // handlers make malloc usable in it, and the other threads of the test
    // harness only wait.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| confined_body(&inside, &outside)).is_ok();
        // SAFETY: ends the forked child without running the harness's code.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child we forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(
        status, 0,
        "the confined child failed (see its output above)"
    );
}

fn confined_body(s: &Scratch, outside: &Scratch) {
    // A running process keeps its root: refused before anything applies.
    let e =
        sandlock::confine_current(&Policy::builder().chroot("/srv").build().unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "chroot",
                ..
            }
        ),
        "{e:?}"
    );
    // Masks need a mount namespace of the sandbox's own: refused too.
    let masked = Policy::builder()
        .fs_read("/etc")
        .fs_mask("/etc/shadow")
        .build()
        .unwrap();
    let e = sandlock::confine_current(&masked).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "fs_masked",
                ..
            }
        ),
        "{e:?}"
    );
    // A policy with a timeout needs a parent: refused before anything applies.
    let e = sandlock::confine_current(&Policy::builder().timeout(5).build().unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                field: "timeout",
                ..
            }
        ),
        "{e:?}"
    );
    let policy = Policy::builder()
        .fs_read(s.path().to_str().unwrap())
        .build()
        .unwrap();
    sandlock::confine_current(&policy).unwrap();
    assert_eq!(std::fs::read_to_string(s.join("inside")).unwrap(), "in");
    let e = std::fs::read_to_string(outside.join("secret")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc_eacces()));
    let e = std::fs::write(s.join("new"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc_eacces()));
    // The deny list holds, without a supervisor: other pids are refused.
    let one = rustix::process::Pid::from_raw(1).unwrap();
    assert_eq!(
        rustix::process::prlimit(
            Some(one),
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: None,
                maximum: None
            }
        )
        .unwrap_err(),
        rustix::io::Errno::PERM
    );
    assert_eq!(
        rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap_err(),
        rustix::io::Errno::PERM
    );
    rustix::fs::memfd_create(
        "x",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::NOEXEC_SEAL,
    )
    .unwrap();
    // SAFETY: a raw unshare that the filter refuses; nothing changes.
    let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    assert_eq!(r, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(1));
}

fn libc_eacces() -> i32 {
    13
}
