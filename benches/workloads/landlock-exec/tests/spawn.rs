//! `landlock-exec --spawn`, run for real: the child runs confined and its
//! status becomes the helper's exit code; `--floor`'s sequence, run too.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_landlock-exec"))
}

/// `--ro` for each system directory that exists (not `/etc`).
fn system_dirs_ro() -> Vec<&'static str> {
    let mut args = Vec::new();
    for dir in ["/usr", "/bin", "/lib", "/lib64"] {
        if std::path::Path::new(dir).exists() {
            args.extend(["--ro", dir]);
        }
    }
    args
}

/// The exit code of `landlock-exec --spawn --ro / -- CMD...`.
fn spawned_code(cmd: &[&str]) -> Option<i32> {
    let mut c = helper();
    c.args(["--spawn", "--ro", "/", "--"]).args(cmd);
    c.status().unwrap().code()
}

#[test]
fn spawned_command_exit_code_is_passed_on() {
    assert_eq!(spawned_code(&["/bin/sh", "-c", "exit 3"]), Some(3));
}

#[test]
fn spawned_command_killed_by_a_signal_gives_128_plus_n() {
    assert_eq!(spawned_code(&["/bin/sh", "-c", "kill -9 $$"]), Some(137));
}

#[test]
fn spawned_command_is_confined() {
    // Only /usr, /bin, /lib* readable: /etc/hostname is not.
    let mut args = vec!["--spawn"];
    args.extend(system_dirs_ro());
    args.extend(["--", "/bin/cat", "/etc/hostname"]);
    let out = helper().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
}

#[test]
fn missing_command_gives_127() {
    assert_eq!(spawned_code(&["/nonexistent/command"]), Some(127));
}

/// A filter file of one instruction: `ret ALLOW`.
fn allow_all() -> tempfile_path::Path {
    tempfile_path::Path::new(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f])
}

/// A file removed when dropped, without a crate for it.
mod tempfile_path {
    pub struct Path(std::path::PathBuf);
    impl Path {
        pub fn new(bytes: &[u8]) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "landlock-exec-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&p, bytes).unwrap();
            Path(p)
        }
        pub fn as_str(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn floor(filter: &str, system_only: bool, cmd: &[&str]) -> std::process::Output {
    let mut args = vec!["--floor", filter];
    if system_only {
        args.extend(system_dirs_ro());
    } else {
        args.extend(["--ro", "/"]);
    }
    args.push("--");
    args.extend(cmd);
    helper().args(&args).output().unwrap()
}

#[test]
fn floor_runs_the_command_as_pid_2_of_a_new_pid_namespace() {
    let f = allow_all();
    let out = floor(f.as_str(), false, &["/bin/sh", "-c", "echo $$; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");
}

#[test]
fn floor_enforces_landlock_and_the_filter() {
    let f = allow_all();
    let out = floor(f.as_str(), true, &["/bin/cat", "/etc/hostname"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // A filter that answers EPERM to everything but execve (59) and
    // exit_group (231) stops the shell at its first other system call.
    let mut prog = Vec::new();
    for (code, jt, jf, k) in [
        (0x20u16, 0u8, 0u8, 0u32),
        (0x15, 2, 0, 59),
        (0x15, 1, 0, 231),
        (0x06, 0, 0, 0x0005_0001),
        (0x06, 0, 0, 0x7fff_0000),
    ] {
        prog.extend_from_slice(&code.to_ne_bytes());
        prog.extend_from_slice(&[jt, jf]);
        prog.extend_from_slice(&k.to_ne_bytes());
    }
    let f = tempfile_path::Path::new(&prog);
    let out = floor(f.as_str(), false, &["/bin/true"]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn floor_refuses_a_torn_filter() {
    let f = tempfile_path::Path::new(&[6, 0, 0]);
    let out = floor(f.as_str(), false, &["/bin/true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("8 bytes"),
        "{out:?}"
    );
}

#[test]
fn floor_as_a_normal_user_gets_a_user_namespace() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // switching to uid 65534 needs root
    }
    let f = allow_all();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_landlock-exec"))
        .args(["--floor", f.as_str(), "--ro", "/", "--"])
        .args([
            "/bin/sh",
            "-c",
            "echo $$ $(id -u); readlink /proc/self/ns/user",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("2 65534\nuser:["), "{text}");
    let host = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert!(!text.contains(host.to_str().unwrap()), "{text}");
}
