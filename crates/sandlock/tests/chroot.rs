//! `--chroot`: a directory as the sandbox's `/`, as root and as an
//! unprivileged user (through a user namespace). The policy's paths are
//! inside the new root, symbolic links of the tree cannot lead out of it,
//! and the ways out of a chroot (a second `chroot`, a directory descriptor
//! from outside) are refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{NOBODY, Out, Scratch, bins, command_as, root, run_as, run_without_user_namespaces};

/// A small tree to use as a root: the static probe in `/bin`, files in
/// `/etc` (a secret among them) and `/data`, `/tmp`, `/proc`, and two
/// symbolic links that point out of it on the host's terms: `/hostetc ->
/// /etc` and `/up -> ../../../../../../../../etc`. Next to it, `outside/`
/// holds a file the sandbox must never read.
fn tree(uid: u32) -> Scratch {
    let s = Scratch::new(uid);
    s.dir("root/bin");
    let probe = s.join("root/bin/probe");
    fs::copy(bins().probe(), &probe).unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).unwrap();
    s.dir("root/etc");
    s.file("root/etc/msg", "inside\n");
    s.file("root/etc/other", "other\n");
    s.file("root/etc/shadow", "root-secret\n");
    s.dir("root/data");
    s.file("root/data/file", "data\n");
    s.dir("root/tmp");
    s.dir("root/proc");
    symlink("/etc", s.join("root/hostetc")).unwrap();
    symlink("../../../../../../../../etc", s.join("root/up")).unwrap();
    s.dir("outside");
    s.file("outside/secret", "host-secret\n");
    s
}

/// `sandlock run --chroot ROOT FLAGS -- CMD...` as `uid`.
fn run_in(uid: u32, s: &Scratch, flags: &[&str], cmd: &[&str]) -> Out {
    let mut args = vec!["run".to_owned(), "--chroot".to_owned(), s.s("root")];
    args.extend(flags.iter().map(|f| f.to_string()));
    args.push("--".to_owned());
    args.extend(cmd.iter().map(|c| c.to_string()));
    run_as(uid, &bins().sandlock(), &args, &[("PATH", "/bin:/usr/bin")])
}

fn basics(uid: u32) {
    let s = tree(uid);
    let out = run_in(
        uid,
        &s,
        &["-r", "/etc"],
        &["/bin/probe", "cat", "/etc/msg", "cwd", "ids"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.get("cat"), "inside", "{out:?}");
    assert_eq!(out.get("cwd"), "/", "{out:?}");
    assert!(out.get("ids").starts_with("pid=2 "), "{out:?}");

    // Inside the root but not granted: Landlock's answer.
    let out = run_in(
        uid,
        &s,
        &["-r", "/etc"],
        &["/bin/probe", "cat", "/data/file"],
    );
    assert_eq!(out.get("cat"), "errno=13", "{out:?}");
    // The host's file by its host path: not there, in the new root.
    let secret = s.s("outside/secret");
    let out = run_in(uid, &s, &["-r", "/"], &["/bin/probe", "cat", &secret]);
    assert_eq!(out.get("cat"), "errno=2", "{out:?}");
    // The command is found in the root's PATH, not the host's...
    let out = run_in(uid, &s, &["-r", "/etc"], &["probe", "cat", "/etc/other"]);
    assert_eq!(out.get("cat"), "other", "{out:?}");
    // ...and a host path to it names nothing inside.
    let host_probe = bins().probe();
    let out = run_in(uid, &s, &[], &[host_probe.to_str().unwrap(), "echo", "ran"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(!out.stdout.contains("ran"), "{out:?}");
}

/// A policy path resolved in the new root through `..` (`/up`) while the
/// host renames files elsewhere: the kernel's `EAGAIN` for such a scoped
/// lookup is not a failure of the run (sandlock made the lookup again;
/// before, about one start in ten failed with "resource temporarily
/// unavailable" under a rename loop).
#[test]
fn policy_paths_resolve_while_the_host_renames() {
    let s = tree(0);
    let renamer = common::Renamer::start();
    let mut failed = Vec::new();
    for _ in 0..100 {
        let out = run_in(0, &s, &["-r", "/up", "--dry-run-policy"], &["/bin/probe"]);
        if out.code != Some(0) {
            failed.push(out);
        }
    }
    let renames = renamer.stop();
    assert!(
        failed.is_empty(),
        "{} of 100 failed ({renames} renames): {:?}",
        failed.len(),
        failed.first()
    );
}

#[test]
fn runs_in_the_new_root_as_root() {
    basics(0);
}

#[test]
fn runs_in_the_new_root_as_nobody() {
    if root() {
        basics(NOBODY);
    }
}

/// A link of the tree resolves as it will for the sandbox: `/hostetc ->
/// /etc` and `/up -> ../../..` both name the root's `/etc`, in the grant
/// as in the sandbox.
#[test]
fn links_in_the_tree_stay_inside() {
    let s = tree(0);
    let etc = s.s("root/etc");
    for link in ["/hostetc", "/up"] {
        let out = run_in(0, &s, &["-r", link, "--dry-run-policy"], &["/bin/probe"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("fs_readable"))
            .unwrap();
        assert!(line.contains(&format!("\"{etc}\"")), "{link}: {line}");
        assert!(!line.contains("\"/etc\""), "{link}: {line}");
        let path = format!("{link}/msg");
        let out = run_in(0, &s, &["-r", link], &["/bin/probe", "cat", &path]);
        assert_eq!(out.get("cat"), "inside", "{out:?}");
    }
}

fn escapes(uid: u32) {
    let s = tree(uid);
    // A second chroot (the classic way out, for root inside): refused.
    let out = run_in(
        uid,
        &s,
        &["-r", "/", "-w", "/tmp"],
        &["/bin/probe", "chroot", "/tmp"],
    );
    assert_eq!(out.get("chroot"), "errno=1", "{out:?}");

    // A directory of the host handed in as standard input: `openat` from
    // it walks outside the root, where Landlock still holds.
    let dir = || Stdio::from(fs::File::open(s.join("outside")).unwrap());
    let out = command_as(uid, &bins().sandlock())
        .args(["run", "--chroot", &s.s("root"), "-r", "/", "--"])
        .args(["/bin/probe", "fdread", "0", "secret"])
        .stdin(dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "fdread errno=13", "{out:?}");
    // The same descriptor, unconfined, reads it: the probe can fail.
    let bare = Command::new(bins().probe())
        .args(["fdread", "0", "secret"])
        .stdin(dir())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&bare.stdout).trim(), "fdread ok");
}

#[test]
fn ways_out_are_refused_as_root() {
    escapes(0);
}

#[test]
fn ways_out_are_refused_as_nobody() {
    if root() {
        escapes(NOBODY);
    }
}

/// Without policy flags, the default profile is the new root's: its
/// system directories and `/etc` minus secrets, and a private temporary
/// directory in its `/tmp`, removed at the end.
#[test]
fn default_profile_is_the_roots() {
    let s = tree(0);
    let out = run_in(
        0,
        &s,
        &[],
        &[
            "/bin/probe",
            "cat",
            "/etc/msg",
            "read",
            "/etc/shadow",
            "count",
            "/etc",
            "tmpwrite",
            "env",
            "TMPDIR",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.get("cat"), "inside", "{out:?}");
    // As root, the root's /etc is granted whole, its secrets hidden (an
    // overlay of it whose top layer holds a whiteout of each).
    assert_eq!(out.get("read"), "errno=2", "{out:?}");
    assert_eq!(out.get("count"), "2", "{out:?}");
    assert_eq!(out.get("tmpwrite"), "ok", "{out:?}");
    let tmpdir = out.get("env");
    assert!(tmpdir.starts_with("TMPDIR=/tmp/sandlock-0/"), "{out:?}");
    let left = walk(&s.join("root/tmp"));
    assert!(!left.iter().any(|p| p.ends_with("probe-tmp")), "{left:?}");
    let out = run_in(0, &s, &[], &["/bin/probe", "cat", "/etc/shadow"]);
    assert_eq!(out.stdout, "cat errno=2\n", "{out:?}");
    let out = run_in(
        0,
        &s,
        &["-r", "/etc"],
        &["/bin/probe", "cat", "/etc/shadow"],
    );
    assert_eq!(out.stdout, "cat root-secret\n", "{out:?}");
}

/// A secret the host replaces while the sandbox runs stays out of reach.
/// `passwd` and `useradd` write a new `/etc/shadow` and rename it over
/// the old one; a mount over the old file (the first masks) was detached
/// by the kernel then, and the sandbox read the new file. The root's
/// `/etc` stands in for the host's (never touched): the sandbox reads
/// the secret, waits on its standard input while the test renames a new
/// file over it, and reads it again.
#[test]
fn a_secret_replaced_on_the_host_stays_out() {
    if !root() {
        return;
    }
    let s = tree(0);
    // Written outside the granted tree, as `passwd` writes its new file
    // after the sandbox started: no rule of the sandbox's names it.
    s.file("outside/shadow.new", "replaced-secret\n");
    let args = ["run", "--chroot", &s.s("root"), "--", "/bin/probe"];
    let ops = ["cat", "/etc/shadow", "line", "cat", "/etc/shadow"];
    let args: Vec<&str> = args.iter().chain(&ops).copied().collect();
    let (first, rest, code) =
        common::run_with_pause(0, &args, &[("PATH", "/bin:/usr/bin")], || {
            fs::rename(s.join("outside/shadow.new"), s.join("root/etc/shadow")).unwrap()
        });
    assert_eq!(code, Some(0), "{first}{rest}");
    assert_eq!(first, "cat errno=2\n");
    assert_eq!(
        rest, "line got\ncat errno=2\n",
        "the replaced secret was read"
    );
    // The rename took place (with a mount over the old file, the sandbox
    // read the new one: checked).
    assert_eq!(
        fs::read_to_string(s.join("root/etc/shadow")).unwrap(),
        "replaced-secret\n"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
    }
    out
}

/// The supervisor's rules resolve paths from the sandbox's root: a deny
/// rule names a file of the new root.
#[test]
fn deny_rules_are_inside() {
    for uid in [0, NOBODY] {
        if uid != 0 && !root() {
            continue;
        }
        let s = tree(uid);
        let out = run_in(
            uid,
            &s,
            &["-r", "/etc", "--fs-deny", "/etc/msg"],
            &["/bin/probe", "read", "/etc/msg", "cat", "/etc/other"],
        );
        assert_eq!(out.get("read"), "errno=13", "{out:?}");
        assert_eq!(out.get("cat"), "other", "{out:?}");
    }
}

/// A granted `/proc` is a fresh procfs on the root's `/proc`; the working
/// directory and relative paths are inside.
#[test]
fn proc_and_workdir_are_inside() {
    let s = tree(0);
    let out = run_in(
        0,
        &s,
        &["-r", "/proc", "--workdir", "/data", "-r", "."],
        &[
            "/bin/probe",
            "cat",
            "/proc/self/comm",
            "cwd",
            "read",
            "file",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.get("cat"), "probe", "{out:?}");
    assert_eq!(out.get("cwd"), "/data", "{out:?}");
    assert_eq!(out.get("read"), "ok", "{out:?}");
}

/// Bad roots and paths: exit 125, one line naming the value.
#[test]
fn bad_roots_are_named() {
    let s = tree(0);
    let file = s.s("root/etc/msg");
    let missing = s.s("nope");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--chroot".into(), missing.clone()],
            format!("sandlock: --chroot {missing}: no such file or directory"),
        ),
        (
            vec!["--chroot".into(), file.clone()],
            format!("sandlock: --chroot {file}: not a directory"),
        ),
        (
            vec!["--chroot".into(), "/".into()],
            "sandlock: --chroot /: is the host's root already".into(),
        ),
        (
            vec!["--chroot".into(), s.s("root"), "-r".into(), "/nope".into()],
            "sandlock: -r /nope: no such file or directory".into(),
        ),
        (
            vec![
                "--chroot".into(),
                s.s("root"),
                "--workdir".into(),
                "/etc/msg".into(),
            ],
            "sandlock: --workdir /etc/msg: not a directory".into(),
        ),
        (
            vec![
                "--chroot".into(),
                s.s("root"),
                "--workdir".into(),
                "/nope".into(),
            ],
            "sandlock: --workdir /nope: no such file or directory".into(),
        ),
    ];
    for (flags, want) in cases {
        let mut args: Vec<String> = vec!["run".into()];
        args.extend(flags);
        args.extend([
            "--".into(),
            "/bin/probe".into(),
            "echo".into(),
            "ran".into(),
        ]);
        let out = run_as(0, &bins().sandlock(), &args, &[]);
        assert_eq!(out.code, Some(125), "{args:?}: {out:?}");
        assert_eq!(out.stderr.trim_end(), want, "{args:?}");
        assert!(!out.stdout.contains("ran"));
    }
}

/// Where no user namespace can be made, an unprivileged caller cannot
/// enter a new root: refused before anything runs, even in best-effort
/// mode (running outside the root would run another program).
#[test]
fn no_user_namespace_no_new_root() {
    if !root() {
        return;
    }
    let s = tree(NOBODY);
    for extra in [&[][..], &["--best-effort"][..]] {
        let root_dir = s.s("root");
        let mut args = vec!["run", "--chroot", &root_dir];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-r", "/etc", "--", "/bin/probe", "echo", "ran"]);
        let out = run_without_user_namespaces(&bins().sandlock(), &args);
        common::assert_refused(&out, &["new root (--chroot)"]);
    }
}

/// The root is checked before the fork and entered by its path after: a
/// directory put in its place in between is refused by the child (its new
/// `/` is not the directory sandlock checked), and nothing runs.
#[test]
fn a_root_swapped_after_the_check_is_refused() {
    let s = tree(0);
    let policy = sandlock::Policy::builder()
        .chroot(s.s("root"))
        .fs_read("/bin")
        .build()
        .unwrap();
    let sb = sandlock::Sandbox::new(policy)
        .unwrap()
        .stdout(sandlock::Stdio::Piped);
    // The same tree, another directory, under the same name.
    fs::rename(s.join("root"), s.join("checked")).unwrap();
    s.dir("root/bin");
    fs::copy(bins().probe(), s.join("root/bin/probe")).unwrap();
    let e = sb.run(&["/bin/probe", "echo", "ran"]).unwrap_err();
    assert!(
        matches!(
            e,
            sandlock::Error::Setup {
                step: sandlock::SetupStep::Chroot,
                errno: rustix::io::Errno::XDEV,
            }
        ),
        "{e:?}"
    );
    // Put back, the same sandbox runs.
    fs::remove_dir_all(s.join("root")).unwrap();
    fs::rename(s.join("checked"), s.join("root")).unwrap();
    let out = sb.run(&["/bin/probe", "echo", "ran"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
}

/// `--hostname` replaces the new root's `/etc/hostname` (the host's is
/// not in the sandbox's view, and stays as it was).
#[test]
fn hostname_file_is_the_roots() {
    let s = tree(0);
    s.file("root/etc/hostname", "tree\n");
    let host_before = fs::read_to_string("/etc/hostname").ok();
    let out = run_in(
        0,
        &s,
        &["-r", "/etc", "--hostname", "box"],
        &["/bin/probe", "cat", "/etc/hostname"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.get("cat"), "box", "{out:?}");
    assert_eq!(
        fs::read_to_string(s.join("root/etc/hostname")).unwrap(),
        "tree\n"
    );
    assert_eq!(fs::read_to_string("/etc/hostname").ok(), host_before);
}
