//! `landlock-exec --spawn`, run for real: the child runs confined and its
//! status becomes the helper's exit code.

use std::process::Command;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_landlock-exec"))
}

#[test]
fn spawned_command_exit_code_is_passed_on() {
    let status = helper()
        .args(["--spawn", "--ro", "/", "--", "/bin/sh", "-c", "exit 3"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn spawned_command_killed_by_a_signal_gives_128_plus_n() {
    let status = helper()
        .args(["--spawn", "--ro", "/", "--", "/bin/sh", "-c", "kill -9 $$"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(137));
}

#[test]
fn spawned_command_is_confined() {
    // Only /usr, /bin, /lib* readable: /etc/hostname is not.
    let mut args = vec!["--spawn"];
    for dir in ["/usr", "/bin", "/lib", "/lib64"] {
        if std::path::Path::new(dir).exists() {
            args.extend(["--ro", dir]);
        }
    }
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
    let status = helper()
        .args(["--spawn", "--ro", "/", "--", "/nonexistent/command"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(127));
}
