//! `--fs-mask`: paths a granted tree hides by name (a read-only overlay of
//! their directory in the sandbox's own mount namespace, whose top layer
//! holds a whiteout of each), as root and as uid 65534; the masks hold
//! against `umount` and against the host replacing the masked file; the
//! mount points and writable paths below the overlay show through; bad
//! masks are refused before anything runs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{NOBODY, Scratch, bins, probe_in, root, run_as, run_without_user_namespaces};

/// ```text
/// ro/secret       "SECRET"   masked (file)
/// ro/sdir/f       "SECRET"   masked (its directory)
/// ro/pub          "public"
/// ```
fn tree(uid: u32) -> Scratch {
    let s = Scratch::new(uid);
    s.dir("ro/sdir");
    s.file("ro/secret", "SECRET\n");
    s.file("ro/sdir/f", "SECRET\n");
    s.file("ro/pub", "public\n");
    s
}

fn users() -> Vec<u32> {
    if root() { vec![0, NOBODY] } else { vec![] }
}

/// A masked file and a masked directory are not found (what the
/// directory held neither); the rest of the tree is as granted, and its
/// listing leaves them out. Unmasked, the same run reads the secrets: the
/// test can fail.
#[test]
fn masked_paths_are_not_found() {
    for uid in users() {
        let s = tree(uid);
        let ops = [
            "cat",
            &s.s("ro/secret"),
            "count",
            &s.s("ro/sdir"),
            "read",
            &s.s("ro/sdir/f"),
            "count",
            &s.s("ro"),
        ];
        let ro = s.s("ro");
        let out = probe_in(uid, &["-r", &ro], &ops);
        assert_eq!(
            out.stdout, "cat SECRET\ncount 1\nread ok\ncount 3\n",
            "{uid}: {out:?}"
        );
        let masked = [
            "-r",
            &ro,
            "--fs-mask",
            &s.s("ro/secret"),
            "--fs-mask",
            &s.s("ro/sdir"),
        ];
        let out = probe_in(uid, &masked, &ops);
        assert_eq!(
            out.stdout, "cat errno=2\ncount errno=2\nread errno=2\ncount 1\n",
            "{uid}: {out:?}"
        );
        assert_eq!(out.code, Some(0), "{uid}: {out:?}");
        // The host's files are untouched.
        assert_eq!(
            std::fs::read_to_string(s.join("ro/secret")).unwrap(),
            "SECRET\n"
        );
    }
}

/// A masked file the host replaces by rename while the sandbox runs (an
/// editor saving it, `passwd` with `/etc/shadow`) stays hidden: the
/// overlay finds the name in its top layer first. (A mount over the file
/// itself, the first design, was detached by the kernel then, and the
/// sandbox read the new file.)
#[test]
fn a_masked_file_replaced_on_the_host_stays_hidden() {
    for uid in users() {
        let s = tree(uid);
        s.file("new", "REPLACED\n");
        let (ro, secret) = (s.s("ro"), s.s("ro/secret"));
        let probe = bins().probe();
        let args = [
            "run",
            "-r",
            &ro,
            "--fs-mask",
            &secret,
            "--",
            probe.to_str().unwrap(),
            "cat",
            &secret,
            "line",
            "cat",
            &secret,
        ];
        let (first, rest, code) = common::run_with_pause(uid, &args, &[], || {
            std::fs::rename(s.join("new"), s.join("ro/secret")).unwrap()
        });
        assert_eq!(code, Some(0), "{uid}: {first}{rest}");
        assert_eq!(first, "cat errno=2\n", "{uid}");
        assert_eq!(
            rest, "line got\ncat errno=2\n",
            "{uid}: the replaced file was read"
        );
        // The rename took place.
        assert_eq!(
            std::fs::read_to_string(s.join("ro/secret")).unwrap(),
            "REPLACED\n"
        );
    }
}

/// A command started in the masked path's directory (or below it) does
/// not reach the masked path by a relative path: its working directory is
/// entered again through the overlay (the caller's was the host's
/// directory, under it). A standard stream that is a directory there is
/// refused before the command runs: it would be a way around the mask.
#[test]
fn the_working_directory_goes_through_the_mask() {
    for uid in users() {
        let s = tree(uid);
        let ro = s.s("ro");
        let bin = bins().dir().to_string_lossy().into_owned();
        let probe = bins().probe();
        let flags = [
            "run",
            "-r",
            &bin,
            "-r",
            &ro,
            "--fs-mask",
            &s.s("ro/secret"),
            "--",
        ];
        for (cwd, up) in [("ro", ""), ("ro/sdir", "../")] {
            let out = common::command_as(uid, &bins().sandlock())
                .args(flags)
                .arg(&probe)
                .args(["cat", &format!("{up}secret"), "cat", &format!("{up}pub")])
                .current_dir(s.join(cwd))
                .output()
                .unwrap();
            let out = common::Out::from(out);
            assert_eq!(
                out.stdout, "cat errno=2\ncat public\n",
                "{uid} in {cwd}: {out:?}"
            );
        }
        let out = common::command_as(uid, &bins().sandlock())
            .args(flags)
            .arg(&probe)
            .args(["echo", "ran"])
            .stdin(std::fs::File::open(s.join("ro")).unwrap())
            .output()
            .unwrap();
        let out = common::Out::from(out);
        common::assert_refused(&out, &["directory"]);
    }
}

/// A masked path's directory reachable through another mount of it (a
/// bind mount elsewhere) would show the path there: a Landlock grant
/// holds the directory's inode, whatever the mount. So such a mask is
/// refused (exit 125, naming the other place), and the default profile's
/// masks of `/etc` give way to `/etc` entry by entry. The bind mounts are
/// made in a mount namespace of the test's own (`unshare -m`).
#[test]
fn a_directory_mounted_elsewhere_is_not_masked_half() {
    if !root() {
        return;
    }
    let s = tree(0);
    s.dir("alt");
    s.dir("etc2");
    let sl = bins().sandlock();
    let probe = bins().probe();
    let script = format!(
        "mount --bind {ro} {alt} && mount --bind /etc {etc2} && \
         {sl} run -r {ro} --fs-mask {sec} -- {probe} cat {alt}/secret; \
         echo code=$?; exec {sl} run -- {probe} cat {etc2}/shadow cat {etc2}/passwd cat /etc/passwd",
        ro = s.s("ro"),
        alt = s.s("alt"),
        etc2 = s.s("etc2"),
        sl = sl.display(),
        sec = s.s("ro/secret"),
        probe = probe.display(),
    );
    let args = ["-m", "--propagation", "private", "sh", "-c", &script];
    let out = run_as(0, std::path::Path::new("/usr/bin/unshare"), &args, &[]);
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("code=125"), "{out:?}");
    assert!(out.stderr.contains(&s.s("alt/secret")), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    // The default profile: /etc entry by entry, through either mount.
    assert_eq!(lines.next(), Some("cat errno=13"), "{out:?}");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("cat root:")),
        "{out:?}"
    );
    assert!(
        lines.next().is_some_and(|l| l.starts_with("cat root:")),
        "{out:?}"
    );
}

/// `umount` of a mask's overlay is refused (root: by the deny list; uid
/// 65534: it has no capability in its user namespace either), and the
/// mask stays.
#[test]
fn masks_cannot_be_unmounted() {
    for uid in users() {
        let s = tree(uid);
        let flags = ["-r", &s.s("ro"), "--fs-mask", &s.s("ro/secret")];
        let out = probe_in(
            uid,
            &flags,
            &["umount", &s.s("ro"), "cat", &s.s("ro/secret")],
        );
        assert_eq!(
            out.stdout, "umount errno=1\ncat errno=2\n",
            "{uid}: {out:?}"
        );
    }
}

/// A masked path that does not exist is left alone: nothing to hide.
#[test]
fn a_missing_masked_path_is_left_alone() {
    for uid in users() {
        let s = tree(uid);
        let flags = ["-r", &s.s("ro"), "--fs-mask", &s.s("ro/none")];
        let out = probe_in(
            uid,
            &flags,
            &["read", &s.s("ro/none"), "cat", &s.s("ro/pub")],
        );
        assert_eq!(out.stdout, "read errno=2\ncat public\n", "{uid}: {out:?}");
    }
}

/// A masked path whose directory is writable is refused, before anything
/// runs, with one line naming the value: the overlay that hides it would
/// make the directory read-only. A writable path below the directory
/// shows through (bound again on top of the overlay): written there, the
/// file is on the host.
#[test]
fn writable_paths_and_masks() {
    for uid in users() {
        let s = tree(uid);
        for masked in ["ro/secret", "ro/sdir"] {
            let flags = ["-w", &s.s("ro"), "--fs-mask", &s.s(masked)];
            let out = probe_in(uid, &flags, &["echo", "ran"]);
            common::assert_refused(&out, &["--fs-mask", &s.s(masked), "writable"]);
        }
        s.dir("ro/out");
        let flags = [
            "-r",
            &s.s("ro"),
            "-w",
            &s.s("ro/out"),
            "--fs-mask",
            &s.s("ro/secret"),
        ];
        let ops = [
            "write",
            &s.s("ro/out/new"),
            "write",
            &s.s("ro/pub"),
            "cat",
            &s.s("ro/secret"),
        ];
        let out = probe_in(uid, &flags, &ops);
        assert_eq!(
            out.stdout, "write ok\nwrite errno=30\ncat errno=2\n",
            "{uid}: {out:?}"
        );
        assert!(s.join("ro/out/new").exists());
    }
}

/// A writable path below a mask's directory given by a link from
/// elsewhere (`-w ~/link`, `~/link -> ro/out`) shows through as it does
/// given directly: bound again on top, by where it leads.
#[test]
fn writable_paths_reached_by_a_link_show_through() {
    for uid in users() {
        let s = tree(uid);
        s.dir("ro/out");
        let link = s.join("link");
        std::os::unix::fs::symlink(s.join("ro/out"), &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(uid), Some(uid)).unwrap();
        let flags = [
            "-r",
            &s.s("ro"),
            "-w",
            &s.s("link"),
            "--fs-mask",
            &s.s("ro/secret"),
        ];
        let ops = [
            "write",
            &s.s("link/a"),
            "write",
            &s.s("ro/out/b"),
            "cat",
            &s.s("ro/secret"),
        ];
        let out = probe_in(uid, &flags, &ops);
        assert_eq!(
            out.stdout, "write ok\nwrite ok\ncat errno=2\n",
            "{uid}: {out:?}"
        );
        assert!(s.join("ro/out/a").exists() && s.join("ro/out/b").exists());
    }
}

/// A mount point below a mask's directory (a container's `/etc/hosts`)
/// shows through the overlay: it is bound again on top. The mount is
/// made in a mount namespace of the test's own (`unshare -m`), around
/// sandlock: nothing is mounted on the host.
#[test]
fn mount_points_below_a_mask_show_through() {
    if !root() {
        return;
    }
    let s = tree(0);
    s.dir("ro/mnt");
    s.dir("elsewhere");
    s.file("elsewhere/f", "mounted\n");
    let script = format!(
        "mount --bind {e} {m} && exec {sl} run -r {ro} --fs-mask {sec} -- {probe} cat {m}/f cat {sec}",
        e = s.s("elsewhere"),
        m = s.s("ro/mnt"),
        sl = bins().sandlock().display(),
        ro = s.s("ro"),
        sec = s.s("ro/secret"),
        probe = bins().probe().display(),
    );
    let args = ["-m", "--propagation", "private", "sh", "-c", &script];
    let out = run_as(0, std::path::Path::new("/usr/bin/unshare"), &args, &[]);
    assert_eq!(out.stdout, "cat mounted\ncat errno=2\n", "{out:?}");
    assert!(!s.join("ro/mnt/f").exists());
}

/// Without user namespaces, a normal user's masks cannot be mounted: the
/// run is refused (exit 125), in best-effort mode too, and nothing runs.
#[test]
fn no_user_namespace_no_masks() {
    if !root() {
        return;
    }
    let s = tree(NOBODY);
    for extra in [&[][..], &["--best-effort"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let ro = s.s("ro");
        let secret = s.s("ro/secret");
        let probe = bins().probe();
        let probe = probe.to_str().unwrap();
        args.extend_from_slice(&["-r", &ro, "--fs-mask", &secret, "--", probe, "echo", "ran"]);
        let out = run_without_user_namespaces(&bins().sandlock(), &args);
        common::assert_refused(&out, &["masked paths (--fs-mask)"]);
    }
}

/// Where root's mounts are refused (a container's security module; here a
/// seccomp filter of the test's, `progs/nomount.c`), the default profile's
/// masks cannot be made: the command did not start, and `sandlock run`
/// runs it again with `/etc` granted entry by entry, which keeps the
/// secrets out as well (`EACCES`, not `ENOENT`), silently. Masks the user asked for are
/// not dropped: that run fails (exit 125).
#[test]
fn refused_mounts_turn_the_default_masks_into_entries() {
    if !root() || !std::path::Path::new("/etc/shadow").exists() {
        return;
    }
    let nomount = bins().dir().join("nomount");
    common::gcc("tests/progs/nomount.c", &nomount, &[]);
    let sandlock = bins().sandlock();
    let probe = bins().probe();
    let mut args = vec![sandlock.to_str().unwrap(), "run", "--"];
    args.extend([probe.to_str().unwrap(), "cat", "/etc/shadow", "ls", "/etc"]);
    let out = run_as(0, &nomount, &args, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "cat errno=13\nls errno=13\n", "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    // The same line without the filter: masked (the test can fail).
    let out = run_as(0, &sandlock, &args[1..], &[]);
    assert_eq!(out.stdout, "cat errno=2\nls ok\n", "{out:?}");
    // Masks the user asked for.
    let s = tree(0);
    let mut args = vec![sandlock.to_str().unwrap().to_owned(), "run".to_owned()];
    args.extend([
        "-r".to_owned(),
        s.s("ro"),
        "--fs-mask".to_owned(),
        s.s("ro/secret"),
    ]);
    args.extend([
        "--".to_owned(),
        probe.to_string_lossy().into_owned(),
        "echo".to_owned(),
        "ran".to_owned(),
    ]);
    let out = run_as(0, &nomount, &args, &[]);
    common::assert_refused(&out, &["sandbox namespaces", "operation not permitted"]);
}
