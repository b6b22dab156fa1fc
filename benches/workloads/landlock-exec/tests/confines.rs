//! The helper really confines: a file outside the granted paths cannot be
//! read, one inside can, and TCP connects are denied unless a port is given.

// Test helpers, like the tests, stop at the first unexpected error.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HELPER: &str = env!("CARGO_BIN_EXE_landlock-exec");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("landlock-exec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn system_dirs() -> Vec<String> {
    ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"]
        .iter()
        .filter(|p| Path::new(p).exists())
        .flat_map(|p| ["--ro".to_owned(), (*p).to_owned()])
        .collect()
}

fn run(extra: &[&str], cmd: &[&str]) -> Output {
    Command::new(HELPER)
        .args(system_dirs())
        .args(extra)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap()
}

#[test]
fn reads_only_what_is_granted() {
    let dir = scratch("read");
    let file = dir.join("secret");
    std::fs::write(&file, b"data").unwrap();
    let file = file.to_str().unwrap();

    let denied = run(&[], &["/bin/cat", file]);
    assert_eq!(denied.status.code(), Some(1), "{denied:?}");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));

    let allowed = run(&["--ro", dir.to_str().unwrap()], &["/bin/cat", file]);
    assert!(allowed.status.success(), "{allowed:?}");
    assert_eq!(allowed.stdout, b"data");

    // Read-only: writing there is refused.
    let write = run(
        &["--ro", dir.to_str().unwrap()],
        &["/bin/sh", "-c", &format!("echo x > {file}")],
    );
    assert!(!write.status.success(), "{write:?}");
    assert_eq!(std::fs::read(file).unwrap(), b"data");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tcp_connect_needs_its_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // bash's /dev/tcp does a plain connect().
    let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    if !Path::new("/bin/bash").exists() {
        return;
    }
    let denied = run(&[], &["/bin/bash", "-c", &probe]);
    assert!(!denied.status.success(), "{denied:?}");
    let allowed = run(&["--connect", &port], &["/bin/bash", "-c", &probe]);
    assert!(allowed.status.success(), "{allowed:?}");
}

#[test]
fn missing_path_is_an_error_not_a_skip() {
    let out = run(&["--ro", "/nonexistent/path"], &["/bin/true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/path"));
}
