//! Reading and writing inside and outside the granted trees, through
//! symlinks and `..`, and what the default profile grants.
#![allow(clippy::unwrap_used)]

mod common;

use common::{NOBODY, Scratch, probe_in, root};

const EACCES: &str = "errno=13";

/// ```text
/// ro/data            -r ro
/// rw/mine            -w rw
/// rw/link-out -> ../outside/target
/// outside/target     not granted
/// ```
struct Tree {
    s: Scratch,
}

impl Tree {
    fn new(uid: u32) -> Tree {
        let s = Scratch::new(uid);
        s.dir("ro/sub");
        s.file("ro/data", "ro");
        s.dir("rw");
        s.file("rw/mine", "mine");
        s.dir("outside");
        s.file("outside/target", "out");
        std::os::unix::fs::symlink("../outside/target", s.join("rw/link-out")).unwrap();
        if root() {
            std::os::unix::fs::lchown(s.join("rw/link-out"), Some(uid), Some(uid)).unwrap();
        }
        Tree { s }
    }

    fn flags(&self) -> Vec<String> {
        vec!["-r".into(), self.s.s("ro"), "-w".into(), self.s.s("rw")]
    }

    fn run(&self, uid: u32, ops: &[&str]) -> common::Out {
        let flags = self.flags();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        probe_in(uid, &flags, ops)
    }

    fn body(&self, p: &str) -> String {
        std::fs::read_to_string(self.s.join(p)).unwrap_or_default()
    }
}

fn paths_are_confined(uid: u32) {
    let t = Tree::new(uid);
    let p = |x: &str| t.s.s(x);
    let cases: &[(&[&str], &str)] = &[
        (&["read", &p("ro/data")], "ok"),
        (&["ls", &p("ro/sub")], "ok"),
        (&["write", &p("ro/data")], EACCES),
        (&["trunc", &p("ro/data")], EACCES),
        (&["mkdir", &p("ro/new")], EACCES),
        (&["unlink", &p("ro/data")], EACCES),
        (&["read", &p("rw/mine")], "ok"),
        (&["write", &p("rw/new")], "ok"),
        (&["mkdir", &p("rw/dir")], "ok"),
        (&["read", &p("outside/target")], EACCES),
        (&["ls", &p("outside")], EACCES),
        (&["write", &p("outside/target")], EACCES),
        (&["write", &p("outside/new")], EACCES),
        (&["write", &p("rw/link-out")], EACCES),
        (&["read", &p("rw/link-out")], EACCES),
        (&["write", &p("rw/../outside/target")], EACCES),
        (&["read", &p("ro/../outside/target")], EACCES),
        (&["symlink", &p("outside/target"), &p("rw/l2")], "ok"),
        (&["read", &p("rw/l2")], EACCES),
        (
            &["write", "/proc/self/root/tmp/sandlock-should-not-exist"],
            EACCES,
        ),
    ];
    for (ops, want) in cases {
        let out = t.run(uid, ops);
        let got = out.results().into_values().next().unwrap_or_default();
        assert_eq!(&got, want, "{ops:?} as {uid}: {out:?}");
    }
    // Moving or linking a read-only file into the writable tree is refused.
    for op in ["rename", "link"] {
        let out = t.run(uid, &[op, &p("ro/data"), &p("rw/stolen")]);
        assert_ne!(out.get(op), "ok", "{op}: {out:?}");
    }
    assert_eq!(t.body("ro/data"), "ro");
    assert_eq!(t.body("outside/target"), "out");
    assert!(!t.s.join("outside/new").exists());
    assert!(!t.s.join("rw/stolen").exists());
    assert!(!std::path::Path::new("/tmp/sandlock-should-not-exist").exists());
}

#[test]
fn paths_are_confined_as_root() {
    if root() {
        paths_are_confined(0);
    }
}

#[test]
fn paths_are_confined_as_nobody() {
    if root() {
        paths_are_confined(NOBODY);
    }
}

/// The default profile: system directories, /etc without its secrets, the
/// current directory, the devices; not /proc, not $HOME, not the rest of /tmp.
#[test]
fn default_profile_grants() {
    let cases: &[(&str, &str, &str)] = &[
        ("read", "/usr/bin/env", "ok"),
        ("read", "/etc/passwd", "ok"),
        ("read", "/proc/self/status", EACCES),
        ("write", "/dev/null", "ok"),
        ("read", "/dev/urandom", "ok"),
        ("write", "/usr/sandlock-no", EACCES),
        ("ls", "/", EACCES),
        ("ls", "/root", EACCES),
    ];
    for (op, path, want) in cases {
        let out = probe_in(0, &[], &[op, path]);
        assert_eq!(&out.get(op), want, "{op} {path}: {out:?}");
    }
    // /etc is not writable: Landlock refuses, and as root (below) the
    // overlay that hides the secrets is read-only first.
    let out = probe_in(0, &[], &["write", "/etc/passwd"]);
    let refused = if root() { "errno=30" } else { EACCES };
    assert_eq!(out.get("write"), refused, "{out:?}");
    // As root every file is readable by permissions: /etc is granted whole
    // and its secrets hidden by name (an overlay of /etc in the sandbox's
    // mount namespace, whose top layer holds a whiteout of each).
    if root() && std::path::Path::new("/etc/shadow").exists() {
        let out = probe_in(0, &[], &["cat", "/etc/shadow", "ls", "/etc"]);
        assert_eq!(out.stdout, "cat errno=2\nls ok\n", "{out:?}");
        // Bare, root reads it: the test can fail.
        let bare = common::run_as(0, &common::bins().probe(), &["cat", "/etc/shadow"], &[]);
        assert!(bare.get("cat").starts_with("root:"), "{bare:?}");
        // Granting /etc explicitly grants all of it (the user asked).
        let out = probe_in(0, &["-r", "/etc"], &["cat", "/etc/shadow"]);
        assert_eq!(out.get("cat"), bare.get("cat"), "{out:?}");
        // And so does granting the secret itself.
        let out = probe_in(0, &["-r", "/etc/shadow"], &["cat", "/etc/shadow"]);
        assert_eq!(out.get("cat"), bare.get("cat"), "{out:?}");
        // The policy says so.
        let out = common::sandlock(&["run", "--dry-run-policy", "--", "/bin/true"]);
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("fs_masked = [") && l.contains("\"/etc/shadow\"")),
            "{out:?}"
        );
    }
    if root() && std::path::Path::new("/etc/ssl/private").is_dir() {
        let out = probe_in(
            0,
            &[],
            &["count", "/etc/ssl/private", "ls", "/etc/ssl/certs"],
        );
        assert_eq!(out.stdout, "count errno=2\nls ok\n", "{out:?}");
    }
    // And as uid 65534, /etc/shadow is unreadable by its permissions.
    if root() {
        let out = probe_in(
            NOBODY,
            &[],
            &["read", "/etc/shadow", "read", "/etc/passwd", "ls", "/etc"],
        );
        assert_eq!(out.stdout, "read errno=13\nread ok\nls ok\n", "{out:?}");
    }
}

/// The current directory is readable, other directories are not.
#[test]
fn current_directory_is_readable() {
    let t = Tree::new(0);
    let probe = common::bins().probe();
    let out = std::process::Command::new(common::bins().sandlock())
        .args(["run", "-r", common::bins().dir().to_str().unwrap(), "--"])
        .arg(&probe)
        .args(["read", "data", "ls", "."])
        .current_dir(t.s.join("ro"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "read ok\nls ok\n");
    let out = std::process::Command::new(common::bins().sandlock())
        .args(["run", "-r", common::bins().dir().to_str().unwrap(), "--"])
        .arg(&probe)
        .arg("read")
        .arg(t.s.join("ro/data"))
        .current_dir(t.s.join("outside"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "read errno=13\n");
}

/// A user's sandboxes take turns in its slot, `sandlock-UID/slot`
/// (`src/tmpdir.rs`). A sandbox that may write its user's directory of
/// private directories replaces the slot with a directory holding a file,
/// then with a symlink to a directory outside its grants (empty, so that
/// only the symlink gives it away): the next sandbox, with the default
/// profile, finds an empty directory of its own, and writes nothing
/// through the symlink.
fn slot_tmp_is_not_a_trap(uid: u32) {
    let s = Scratch::new(uid);
    let tmp = s.dir("tmp");
    s.dir("target");
    let tmp_s = s.s("tmp");
    let env = [("TMPDIR", tmp_s.as_str())];
    let slot = tmp.join(format!("sandlock-{uid}/slot"));
    let sandlock = common::bins().sandlock();
    let target = s.s("target");
    let plants = [
        "mkdir \"$U/slot\" && echo planted > \"$U/slot/planted\"".to_owned(),
        format!("ln -s {target} \"$U/slot\""),
    ];
    for plant in &plants {
        // Its own slot (empty) removed first, by its name.
        let script = format!("U=$(dirname \"$TMPDIR\"); rmdir \"$U/slot\"; {plant}");
        let args = ["run", "-w", &tmp_s, "--", "/bin/sh", "-c", &script];
        let out = common::run_as(uid, &sandlock, &args, &env);
        assert_eq!(out.code, Some(0), "{plant}: {out:?}");
        // What it planted is in the slot's place.
        assert!(std::fs::symlink_metadata(&slot).is_ok(), "{plant}");
        let probe = "ls -A \"$TMPDIR\"; echo new > \"$TMPDIR/probe\" && echo wrote";
        let args = ["run", "--", "/bin/sh", "-c", probe];
        let out = common::run_as(uid, &sandlock, &args, &env);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "wrote\n"),
            "{plant}: {out:?}"
        );
        let written = std::fs::read_dir(s.join("target")).unwrap().count();
        assert_eq!(written, 0, "{plant}: written through the slot");
    }
}

#[test]
fn slot_tmp_is_not_a_trap_root() {
    slot_tmp_is_not_a_trap(0);
}

#[test]
fn slot_tmp_is_not_a_trap_nobody() {
    if root() {
        slot_tmp_is_not_a_trap(NOBODY);
    }
}
