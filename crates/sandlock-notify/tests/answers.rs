//! A forked child under a hand-built filter, answered by a real supervisor:
//! errno, value, continue, fallback, add_fd, open on behalf, id_valid.
// Test helpers outside #[test] fns may unwrap too.
#![allow(unsafe_code, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;

use common::{Body, getppid_raw, notify_on, spawn};
use rustix::fs::ResolveFlags;
use sandlock_bpf::Errno;
use sandlock_notify::{
    AddFdOptions, CtxError, EndReason, MemError, Reply, Response, Supervisor, handlers,
};

static PARENT: AtomicI32 = AtomicI32::new(0);

fn run_getppid(
    handler: Option<fn(&sandlock_notify::Ctx) -> Reply>,
    fallback: Option<Response>,
    body: fn() -> i32,
) -> (i32, sandlock_notify::Stats) {
    PARENT.store(std::process::id() as i32, Ordering::SeqCst);
    let (child, listener) = spawn(&notify_on(&["getppid"]), Body::Fn(body));
    let mut b = Supervisor::builder(listener);
    if let Some(h) = handler {
        b = b.handle_name("getppid", h).unwrap();
    }
    if let Some(f) = fallback {
        b = b.fallback(f);
    }
    let sup = b.spawn().unwrap();
    child.go();
    let code = child.wait();
    let stats = sup.join();
    (code, stats)
}

#[test]
fn errno_answer() {
    let (code, stats) = run_getppid(Some(|_| Reply::errno(Errno::EACCES)), None, || {
        if getppid_raw() == Err(libc::EACCES) {
            0
        } else {
            1
        }
    });
    assert_eq!(code, 0);
    assert_eq!(stats.received, 1);
    assert_eq!(stats.end, EndReason::HungUp);
}

#[test]
fn value_answer() {
    let (code, _) = run_getppid(
        Some(|_| Reply::Respond(Response::Value(4242))),
        None,
        || if getppid_raw() == Ok(4242) { 0 } else { 1 },
    );
    assert_eq!(code, 0);
}

#[test]
fn continue_answer_runs_the_real_syscall() {
    // CONTINUE is safe here: getppid takes no pointer, nothing was decided.
    let (code, _) = run_getppid(Some(|_| Reply::Respond(Response::Continue)), None, || {
        if getppid_raw() == Ok(i64::from(PARENT.load(Ordering::SeqCst))) {
            0
        } else {
            1
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn unhandled_syscall_gets_enosys_or_the_chosen_fallback() {
    let (code, _) = run_getppid(None, None, || {
        if getppid_raw() == Err(libc::ENOSYS) {
            0
        } else {
            1
        }
    });
    assert_eq!(code, 0);
    let (code, _) = run_getppid(None, Some(Response::Errno(Errno::EROFS)), || {
        if getppid_raw() == Err(libc::EROFS) {
            0
        } else {
            1
        }
    });
    assert_eq!(code, 0);
}

#[test]
fn handler_panic_fails_closed() {
    let (code, stats) = run_getppid(Some(|_| panic!("handler bug")), None, || {
        if getppid_raw() == Err(libc::EPERM) {
            0
        } else {
            1
        }
    });
    assert_eq!(code, 0);
    assert_eq!(stats.handler_panics, 1);
}

// One file per test (tests run in parallel; a forked child reads these).
static ADDFD_FILE: OnceLock<std::ffi::CString> = OnceLock::new();
static CLOEXEC_FILE: OnceLock<std::ffi::CString> = OnceLock::new();
static CHECK_FILE: OnceLock<std::ffi::CString> = OnceLock::new();

/// In the child: open `path` (intercepted), read it, check FD_CLOEXEC.
fn open_and_read(path: &OnceLock<std::ffi::CString>, cloexec: bool) -> i32 {
    let path = path.get().unwrap();
    let flags = libc::O_RDONLY | if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: a valid C string; raw syscalls only.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return 10;
    }
    let mut buf = [0u8; 16];
    // SAFETY: reading into a valid buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n != 8 || &buf[..8] != b"injected" {
        return 11;
    }
    // SAFETY: fcntl on our fd.
    let fdflags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if (fdflags & libc::FD_CLOEXEC != 0) != cloexec {
        return 12;
    }
    0
}

/// A file holding "injected" in a fresh directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_file(tag: &str, slot: &OnceLock<std::ffi::CString>) -> (TempFile, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sandlock-notify-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("file");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(b"injected")
        .unwrap();
    let _ = slot.set(std::ffi::CString::new(p.to_str().unwrap()).unwrap());
    (TempFile(dir), p)
}

#[test]
fn add_fd_injects_a_supervisor_fd() {
    let (_tmp, path) = temp_file("addfd", &ADDFD_FILE);
    let (child, listener) = spawn(
        &notify_on(&["openat"]),
        Body::Fn(|| open_and_read(&ADDFD_FILE, true)),
    );
    let file = std::fs::File::open(&path).unwrap();
    let sup = Supervisor::builder(listener)
        .handle_name("openat", move |ctx: &sandlock_notify::Ctx| {
            let opts = AddFdOptions {
                cloexec: true,
                at: None,
                send: true,
            };
            match ctx.listener().add_fd(ctx.notif().id, file.as_fd(), opts) {
                Ok(n) if n >= 0 => Reply::Answered,
                _ => Reply::errno(Errno::EIO),
            }
        })
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    assert_eq!(sup.join().send_errors, 0);
}

#[test]
fn open_on_behalf_honours_cloexec() {
    let (_tmp, _) = temp_file("cloexec", &CLOEXEC_FILE);
    for (cloexec, body) in [
        (true, (|| open_and_read(&CLOEXEC_FILE, true)) as fn() -> i32),
        (false, || open_and_read(&CLOEXEC_FILE, false)),
    ] {
        let (child, listener) = spawn(&notify_on(&["openat"]), Body::Fn(body));
        let sup = Supervisor::builder(listener)
            .handle_name(
                "openat",
                handlers::open(ResolveFlags::NO_MAGICLINKS, |_| None),
            )
            .unwrap()
            .spawn()
            .unwrap();
        child.go();
        assert_eq!(child.wait(), 0, "cloexec={cloexec}");
        sup.join();
    }
}

static DOTDOT_FILE: OnceLock<std::ffi::CString> = OnceLock::new();
static DOTDOT_DIR: OnceLock<std::ffi::CString> = OnceLock::new();

/// A scope the handler adds (`RESOLVE_BENEATH`) is sandlock's, not the
/// task's: a lookup through `..` that meets a rename elsewhere on the
/// machine (the kernel's `EAGAIN`, openat2(2)) is made again, and the
/// task's 2000 opens of `sub/../file` all succeed while a thread of the
/// test renames a file in a loop.
#[test]
fn open_with_an_added_scope_survives_renames_elsewhere() {
    let (_tmp, path) = temp_file("dotdot", &DOTDOT_FILE);
    let dir = path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let _ = DOTDOT_DIR.set(std::ffi::CString::new(dir.to_str().unwrap()).unwrap());
    let (child, listener) = spawn(
        &notify_on(&["openat"]),
        Body::Fn(|| {
            let dir = DOTDOT_DIR.get().unwrap();
            // SAFETY: valid C strings; each descriptor is closed.
            unsafe {
                if libc::chdir(dir.as_ptr()) != 0 {
                    return 2;
                }
                let mut failed = 0;
                for _ in 0..2000 {
                    let fd = libc::openat(libc::AT_FDCWD, c"sub/../file".as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        failed += 1;
                    } else {
                        libc::close(fd);
                    }
                }
                i32::from(failed > 0)
            }
        }),
    );
    let renames = std::env::temp_dir().join(format!("sandlock-notify-ren-{}", std::process::id()));
    std::fs::create_dir_all(&renames).unwrap();
    let (a, b) = (renames.join("a"), renames.join("b"));
    std::fs::write(&a, "x").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let renamer = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = std::fs::rename(&a, &b);
            let _ = std::fs::rename(&b, &a);
        }
    });
    let sup = Supervisor::builder(listener)
        .handle_name("openat", handlers::open(ResolveFlags::BENEATH, |_| None))
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    let code = child.wait();
    stop.store(true, Ordering::Relaxed);
    renamer.join().unwrap();
    sup.join();
    let _ = std::fs::remove_dir_all(&renames);
    assert_eq!(code, 0, "an open through .. failed");
}

#[test]
fn open_check_refuses_without_opening() {
    let (_tmp, _) = temp_file("check", &CHECK_FILE);
    let (child, listener) = spawn(
        &notify_on(&["openat"]),
        Body::Fn(|| {
            // SAFETY: a valid C string.
            let fd = unsafe {
                libc::openat(
                    libc::AT_FDCWD,
                    CHECK_FILE.get().unwrap().as_ptr(),
                    libc::O_RDONLY,
                )
            };
            let e = std::io::Error::last_os_error().raw_os_error();
            if fd < 0 && e == Some(libc::EACCES) {
                0
            } else {
                1
            }
        }),
    );
    let sup = Supervisor::builder(listener)
        .handle_name(
            "openat",
            handlers::open(ResolveFlags::empty(), |req| {
                req.path.ends_with(b"/file").then_some(Errno::EACCES)
            }),
        )
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
}

#[test]
fn bad_pointer_gives_a_typed_fault() {
    let (tx, rx) = mpsc::channel();
    let (child, listener) = spawn(
        &notify_on(&["openat"]),
        Body::Fn(|| {
            // An address that is never mapped in user space.
            let bad = 0x10 as *const libc::c_char;
            // SAFETY: the kernel (not we) dereferences the pointer, and the
            // supervisor answers before it does.
            let fd = unsafe { libc::openat(libc::AT_FDCWD, bad, libc::O_RDONLY) };
            let e = std::io::Error::last_os_error().raw_os_error();
            if fd < 0 && e == Some(libc::EFAULT) {
                0
            } else {
                1
            }
        }),
    );
    let tx = std::sync::Mutex::new(tx);
    let sup = Supervisor::builder(listener)
        .handle_name("openat", move |ctx: &sandlock_notify::Ctx| {
            match ctx.read_path(1) {
                Ok(_) => Reply::errno(Errno::EIO),
                Err(e) => {
                    let errno = e.errno();
                    tx.lock().unwrap().send(e).unwrap();
                    Reply::errno(errno)
                }
            }
        })
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
    assert_eq!(
        rx.recv().unwrap(),
        CtxError::Memory(MemError::Fault { addr: 0x10 })
    );
}

#[test]
fn id_valid_turns_false_when_the_child_is_killed() {
    let (child, listener) = spawn(
        &notify_on(&["getppid"]),
        Body::Fn(|| getppid_raw().map_or(1, |_| 0)),
    );
    child.go();
    let notif = listener.recv().unwrap();
    assert_eq!(notif.pid as i32, child.pid);
    assert!(listener.id_valid(notif.id));
    assert!(!listener.is_hung_up());
    let pending = sandlock_notify::Unverified::new(notif.id, "read from the child");
    child.kill();
    assert_eq!(child.wait(), 128 + libc::SIGKILL);
    assert!(!listener.id_valid(notif.id));
    assert!(pending.verify(&listener).is_err());
    let err = listener.respond(notif.id, Response::Continue).unwrap_err();
    assert!(
        matches!(err, sandlock_notify::ListenerError::Send { errno, .. } if errno == rustix::io::Errno::NOENT)
    );
    // Nobody is left: the listener reports hang-up.
    assert!(listener.is_hung_up());
    assert_eq!(
        listener.recv().unwrap_err(),
        sandlock_notify::ListenerError::HungUp
    );
}

#[test]
fn sync_wake_up_is_available_and_switchable() {
    let (child, listener) = spawn(&notify_on(&["getppid"]), Body::Fn(|| 0));
    assert!(
        listener.set_sync_wake_up(true).unwrap(),
        "this kernel has SYNC_WAKE_UP (6.6+)"
    );
    assert!(listener.sync_wake_up());
    assert!(!listener.set_sync_wake_up(false).unwrap());
    child.go();
    assert_eq!(child.wait(), 0);
}

/// The same tests, run by an unprivileged user (uid/gid 65534): the
/// supervisor and the child both lack root, as sandlock's users do.
#[test]
fn as_an_unprivileged_user() {
    if !rustix::process::geteuid().is_root() {
        return; // already unprivileged: the other tests cover it
    }
    let dir = std::env::temp_dir().join(format!("sandlock-notify-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let exe = dir.join("answers");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let tests = [
        "errno_answer",
        "value_answer",
        "add_fd_injects_a_supervisor_fd",
        "open_on_behalf_honours_cloexec",
        "bad_pointer_gives_a_typed_fault",
        "id_valid_turns_false_when_the_child_is_killed",
    ];
    // A child forked by a parallel test may still hold the copy open for
    // writing (fork without exec): retry while the kernel says ETXTBSY.
    let mut tries = 0;
    let out = loop {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .args(tests)
            .args(["--exact", "--test-threads=1"])
            .env("TMPDIR", &dir)
            .output()
            .expect("setpriv runs");
        tries += 1;
        if tries < 100 && String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        break out;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "unprivileged run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{} passed", tests.len())),
        "{stdout}"
    );
}
