//! Attack class 4: pointer arguments changed between the supervisor's check
//! and the kernel's use (`race.c`), by a sibling thread, a `CLONE_VM`
//! process, and a process mapping the same memfd.
//!
//! The `*_swap` scenarios race the file system instead: a bare process
//! outside the sandbox keeps exchanging two names (`renameat2` with
//! `RENAME_EXCHANGE`: a symlink's target, a directory and a symlink) while
//! the sandbox opens the path, so what the path names changes between any
//! check and any use, at the kernel's pace rather than the supervisor's.
//!
//! Bare, each race reaches both values (the refused one included), which
//! shows the flipping works; under sandlock the refused value must never
//! take effect, and the allowed one must (or the race did not run).

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use crate::checks::{Bare, marker_lines, verdict};
use crate::harness::{Attack, Mode, Outcome, Res, Scratch, results};
use crate::observe::{LoopbackPair, UnixCounter, UnixName};
use crate::programs::callback_runner;

escape_tests!(run:
    race_connect,
    race_sendto,
    race_sendmsg,
    race_sendmmsg,
);

escape_tests!(run:
    race_open,
    race_openat,
    race_openat2,
    race_creat,
    race_exec_path,
);

escape_tests!(run:
    race_exec_argv,
);

escape_tests!(run:
    race_symlink_swap,
    race_symlink_swap_landlock,
    race_directory_swap,
    race_unlink_swap,
    race_rename_swap,
    race_link_swap,
    race_chmod_swap,
    race_exec_swap,
    race_unix_socket_swap,
    race_unix_datagram_swap,
);

const FLIPPERS: [&str; 3] = ["thread", "clonevm", "memfd"];
const NET_ITERS: &str = "3000";
const OPEN_ITERS: &str = "2000";
const EXEC_ITERS: &str = "1000";
const SWAP_ITERS: &str = "3000";
const SWAP_EXEC_ITERS: &str = "600";

/// connect/sendto/sendmsg/sendmmsg to an address flipping between
/// 127.0.0.1 (allowed) and 127.0.0.2 (refused).
fn race_net(mode: Mode, method: &str) {
    for flipper in FLIPPERS {
        let net = LoopbackPair::new();
        let out = Attack::new(mode, "race", "net")
            .arg(method)
            .arg(flipper)
            .arg("127.0.0.1")
            .arg("127.0.0.2")
            .arg(net.port())
            .arg(NET_ITERS)
            .flag("--net-allow-host")
            .flag("127.0.0.1")
            .run("");
        let (good, bad) = if method == "connect" {
            (net.good.count(), net.bad.count())
        } else {
            (net.good_udp.count(), net.bad_udp.count())
        };
        let what = format!("{method} raced by a {flipper} flipper: {bad} reached 127.0.0.2");
        verdict(mode, Bare::Works, bad > 0, &what, &out);
        if mode.sandboxed() {
            assert!(
                good > 0,
                "the allowed address was never reached\n{}",
                out.describe()
            );
        }
    }
}

fn race_connect(mode: Mode) {
    race_net(mode, "connect");
}

fn race_sendto(mode: Mode) {
    race_net(mode, "sendto");
}

fn race_sendmsg(mode: Mode) {
    race_net(mode, "sendmsg");
}

fn race_sendmmsg(mode: Mode) {
    race_net(mode, "sendmmsg");
}

/// An open-family call on a path flipping between fileA (writable) and
/// fileB (under `--fs-deny`), appending through whatever opened.
fn race_path(mode: Mode, call: &str) {
    for flipper in FLIPPERS {
        let scratch = Scratch::new(mode.user());
        let a = scratch.file("fileA", "orig");
        let b = scratch.file("fileB", "orig");
        let out = Attack::new(mode, "race", "open")
            .arg(call)
            .arg(flipper)
            .arg(&a)
            .arg(&b)
            .arg(OPEN_ITERS)
            .flag("-w")
            .flag(scratch.path())
            .flag("--fs-deny")
            .flag(&b)
            .run("");
        let b_now = fs::read_to_string(&b).unwrap_or_default();
        let what = format!("{call} raced by a {flipper} flipper writing the denied file");
        verdict(mode, Bare::Works, b_now != "orig", &what, &out);
        if mode.sandboxed() {
            let a_now = fs::read_to_string(&a).unwrap_or_default();
            assert_ne!(
                a_now,
                "orig",
                "the allowed file was never written\n{}",
                out.describe()
            );
        }
    }
}

fn race_open(mode: Mode) {
    race_path(mode, "open");
}

fn race_openat(mode: Mode) {
    race_path(mode, "openat");
}

fn race_openat2(mode: Mode) {
    race_path(mode, "openat2");
}

fn race_creat(mode: Mode) {
    race_path(mode, "creat");
}

/// execve of a path flipping between markA and markB (under `--fs-deny`):
/// the marker logs the path the kernel actually executed (AT_EXECFN).
fn race_exec_path(mode: Mode) {
    for flipper in FLIPPERS {
        let scratch = Scratch::new(mode.user());
        let bin = scratch.dir("bin");
        let outdir = scratch.dir("out");
        let a = scratch.program("bin/markA", "helpers");
        let b = scratch.program("bin/markB", "helpers");
        let log = outdir.join("log");
        let out = Attack::new(mode, "race", "exec")
            .arg(flipper)
            .arg(&a)
            .arg(&b)
            .arg(&log)
            .arg(EXEC_ITERS)
            .flag("-r")
            .flag(&bin)
            .flag("-w")
            .flag(&outdir)
            .flag("--fs-deny")
            .flag(&b)
            .run("");
        let lines = marker_lines(&log);
        let ran_b = lines.iter().filter(|l| l.ends_with("markB")).count();
        let what = format!("execve raced by a {flipper} flipper: the denied program ran {ran_b}x");
        verdict(mode, Bare::Works, ran_b > 0, &what, &out);
        if mode.sandboxed() {
            assert!(
                lines.iter().any(|l| l.ends_with("markA")),
                "the allowed program never ran\n{}",
                out.describe()
            );
        }
    }
}

/// execve whose argv[4] flips between "goodarg" and "evilarg". A policy
/// callback that denies exec when argv holds "evilarg" must never see
/// "goodarg" and then let "evilarg" run. The bare half proves the flip
/// reaches the executed program; the sandboxed half runs under the library
/// (`examples/policy_callback`, a `Sandbox` whose `policy_fn` denies an
/// exec whose last argument is the word), since the CLI cannot express a
/// callback.
fn race_exec_argv(mode: Mode) {
    for flipper in FLIPPERS {
        let scratch = Scratch::new(mode.user());
        let prog = scratch.program("marker", "helpers");
        let log = scratch.join("log");
        let mut attack = Attack::new(mode, "race", "argv")
            .arg(flipper)
            .arg(&prog)
            .arg(&log)
            .arg("goodarg")
            .arg("evilarg")
            .arg(EXEC_ITERS);
        if mode.sandboxed() {
            attack = attack
                .sandlock_at(callback_runner())
                .flag("-w")
                .flag(scratch.path())
                .flag("--deny-last-arg")
                .flag("evilarg");
        }
        let out = attack.run("");
        let lines = marker_lines(&log);
        let evil = lines.iter().filter(|l| l.ends_with("evilarg")).count();
        let what = format!("argv raced by a {flipper} flipper: \"evilarg\" ran {evil}x");
        verdict(mode, Bare::Works, evil > 0, &what, &out);
        if mode.sandboxed() {
            assert!(
                lines.iter().any(|l| l.ends_with("goodarg")),
                "the allowed argv never ran\n{}",
                out.describe()
            );
        }
    }
}

/// One on-disk swap race: `op` (`race swapop`: write, unlink, chmod) is
/// applied to `path` `SWAP_ITERS` times inside the sandbox (under `flags`)
/// while a bare process of the same user exchanges `names` as fast as it
/// can. `refused_changed` must stay false; `allowed_changed` (given the
/// attack's outcome) must become true.
struct OnDisk<'a> {
    op: &'a str,
    path: &'a Path,
    /// `DEST` of the rename and link ops.
    dest: Option<&'a Path>,
    names: (&'a Path, &'a Path),
    flags: Vec<OsString>,
    refused_changed: &'a dyn Fn() -> bool,
    allowed_changed: &'a dyn Fn(&Outcome) -> bool,
    what: &'a str,
}

fn race_on_disk(mode: Mode, r: OnDisk<'_>) {
    let mut flipper = Attack::new(Mode::Bare(mode.user()), "race", "exchange")
        .arg(r.names.0)
        .arg(r.names.1)
        .spawn();
    flipper.ready();
    let mut attack = Attack::new(mode, "race", "swapop")
        .arg(r.op)
        .arg(r.path)
        .arg(SWAP_ITERS);
    if let Some(dest) = r.dest {
        attack = attack.arg(dest);
    }
    let out = attack.flags(&r.flags).run("");
    let flips = flipper.finish();
    let swaps = match results(&flips.lines).get("exchange") {
        Some(Res::Ok(n)) => *n,
        _ => 0,
    };
    assert!(
        swaps > 0,
        "the names were never exchanged\n{}",
        flips.describe()
    );
    let what = format!(
        "{}, {} ({swaps} exchanges): the refused file changed",
        r.what, r.op
    );
    verdict(mode, Bare::Works, (r.refused_changed)(), &what, &out);
    if mode.sandboxed() {
        assert!(
            (r.allowed_changed)(&out),
            "the allowed file never changed\n{}",
            out.describe()
        );
    }
}

/// Whether `path` no longer holds "orig".
fn rewritten(path: &Path) -> bool {
    fs::read_to_string(path).unwrap_or_default() != "orig"
}

/// `rw/la` and `rw/lb` are symlinks to `pub` and to `secret`, exchanged
/// from outside: `rw/la` names one file, then the other. `secret` is
/// closed by `--fs-deny` (the supervisor resolves, pins and checks).
fn race_symlink_swap(mode: Mode) {
    let s = Scratch::new(mode.user());
    s.dir("rw");
    let allowed = s.file("rw/pub", "orig");
    let refused = s.file("rw/secret", "orig");
    let (la, lb) = (s.join("rw/la"), s.join("rw/lb"));
    s.symlink("pub", "rw/la");
    s.symlink("secret", "rw/lb");
    let flags: Vec<OsString> = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        refused.clone().into(),
    ];
    race_on_disk(
        mode,
        OnDisk {
            op: "write",
            path: &la,
            dest: None,
            names: (&la, &lb),
            flags,
            refused_changed: &|| rewritten(&refused),
            allowed_changed: &|_| rewritten(&allowed),
            what: "a symlink swapped between an allowed and a denied file",
        },
    );
}

/// The same swap with the refused file outside every grant: Landlock
/// alone stands in the way (no deny rule, nothing intercepted).
fn race_symlink_swap_landlock(mode: Mode) {
    let s = Scratch::new(mode.user());
    s.dir("rw");
    s.dir("out");
    let allowed = s.file("rw/pub", "orig");
    let refused = s.file("out/secret", "orig");
    let (la, lb) = (s.join("rw/la"), s.join("rw/lb"));
    s.symlink("pub", "rw/la");
    s.symlink("../out/secret", "rw/lb");
    let flags: Vec<OsString> = vec!["-w".into(), s.join("rw").into()];
    race_on_disk(
        mode,
        OnDisk {
            op: "write",
            path: &la,
            dest: None,
            names: (&la, &lb),
            flags,
            refused_changed: &|| rewritten(&refused),
            allowed_changed: &|_| rewritten(&allowed),
            what: "a symlink swapped between a granted file and one outside every grant",
        },
    );
}

/// `rw/d` is a directory, and `rw/dx` a symlink to the denied directory
/// `rw/sdir`; exchanged from outside, `rw/d/f` names `rw/d/f` or
/// `rw/sdir/f` in turn.
fn race_directory_swap(mode: Mode) {
    let s = Scratch::new(mode.user());
    s.dir("rw");
    s.dir("rw/d");
    s.dir("rw/sdir");
    s.file("rw/d/f", "orig");
    let refused = s.file("rw/sdir/f", "orig");
    let (d, dx) = (s.join("rw/d"), s.join("rw/dx"));
    s.symlink("sdir", "rw/dx");
    let flags: Vec<OsString> = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        s.join("rw/sdir").into(),
    ];
    // The allowed file moves with its directory: after an odd number of
    // exchanges the directory is `rw/dx`. Read it wherever it is.
    let allowed = || {
        let real = if fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            &d
        } else {
            &dx
        };
        rewritten(&real.join("f"))
    };
    race_on_disk(
        mode,
        OnDisk {
            op: "write",
            path: &d.join("f"),
            dest: None,
            names: (&d, &dx),
            flags,
            refused_changed: &|| rewritten(&refused),
            allowed_changed: &|_| allowed(),
            what: "a directory swapped with a symlink to a denied directory",
        },
    );
}

/// The directory swap of [`race_directory_swap`], unlinking `rw/d/f`
/// (created again before each try): `rw/sdir/f` must survive untouched.
fn race_unlink_swap(mode: Mode) {
    let s = Scratch::new(mode.user());
    s.dir("rw");
    s.dir("rw/d");
    s.dir("rw/sdir");
    s.file("rw/d/f", "orig");
    let refused = s.file("rw/sdir/f", "orig");
    let (d, dx) = (s.join("rw/d"), s.join("rw/dx"));
    s.symlink("sdir", "rw/dx");
    let flags: Vec<OsString> = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        s.join("rw/sdir").into(),
    ];
    let unlinked =
        |out: &Outcome| matches!(results(&out.lines).get("unlink"), Some(Res::Ok(n)) if *n > 0);
    race_on_disk(
        mode,
        OnDisk {
            op: "unlink",
            path: &d.join("f"),
            dest: None,
            names: (&d, &dx),
            flags,
            // Unlinked, or unlinked and created again (empty) through the
            // swapped directory: no longer "orig" either way.
            refused_changed: &|| rewritten(&refused),
            allowed_changed: &unlinked,
            what: "a directory swapped with a symlink to a denied directory",
        },
    );
}

/// The directory swap of [`race_directory_swap`], moving `rw/d/f`
/// (created again before each try) out to `rw/out/moved.N`, or hard-linking
/// it there (`op`): the denied `rw/sdir/f` must stay where it is, with no
/// second name.
fn race_move_swap(mode: Mode, op: &str) {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new(mode.user());
    s.dir("rw");
    s.dir("rw/d");
    s.dir("rw/sdir");
    s.dir("rw/out");
    s.file("rw/d/f", "orig");
    let refused = s.file("rw/sdir/f", "orig");
    let (d, dx) = (s.join("rw/d"), s.join("rw/dx"));
    s.symlink("sdir", "rw/dx");
    let flags: Vec<OsString> = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        s.join("rw/sdir").into(),
    ];
    let moved = |out: &Outcome| matches!(results(&out.lines).get(op), Some(Res::Ok(n)) if *n > 0);
    let changed = || rewritten(&refused) || fs::metadata(&refused).is_ok_and(|m| m.nlink() > 1);
    race_on_disk(
        mode,
        OnDisk {
            op,
            path: &d.join("f"),
            dest: Some(&s.join("rw/out/moved")),
            names: (&d, &dx),
            flags,
            refused_changed: &changed,
            allowed_changed: &moved,
            what: "a directory swapped with a symlink to a denied directory",
        },
    );
}

fn race_rename_swap(mode: Mode) {
    race_move_swap(mode, "rename");
}

fn race_link_swap(mode: Mode) {
    race_move_swap(mode, "link");
}

/// The symlink swap of [`race_symlink_swap`], with `chmod 0600` through
/// `rw/la` (a change made on the supervisor, not by the confined worker):
/// `secret` must keep its mode.
fn race_chmod_swap(mode: Mode) {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new(mode.user());
    s.dir("rw");
    let allowed = s.file("rw/pub", "orig");
    let refused = s.file("rw/secret", "orig");
    let (la, lb) = (s.join("rw/la"), s.join("rw/lb"));
    s.symlink("pub", "rw/la");
    s.symlink("secret", "rw/lb");
    let flags: Vec<OsString> = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        refused.clone().into(),
    ];
    let mode_of = |p: &Path| fs::metadata(p).map_or(0, |m| m.permissions().mode() & 0o777);
    race_on_disk(
        mode,
        OnDisk {
            op: "chmod",
            path: &la,
            dest: None,
            names: (&la, &lb),
            flags,
            refused_changed: &|| mode_of(&refused) != 0o644,
            allowed_changed: &|_| mode_of(&allowed) == 0o600,
            what: "a symlink swapped between an allowed and a denied file",
        },
    );
}

/// `bin/la` and `bin/lb` are symlinks to two copies of a program, `markA`
/// and `markB` (under `--fs-deny`), exchanged from outside while the
/// sandbox executes `bin/la`: the supervisor checks the file the path
/// names, then the kernel resolves the path again for the exec itself.
/// Each copy logs the file it is an image of (`/proc/self/exe`).
fn race_exec_swap(mode: Mode) {
    let s = Scratch::new(mode.user());
    s.dir("bin");
    let outdir = s.dir("out");
    s.program("bin/markA", "helpers");
    let b = s.program("bin/markB", "helpers");
    let (la, lb) = (s.join("bin/la"), s.join("bin/lb"));
    s.symlink("markA", "bin/la");
    s.symlink("markB", "bin/lb");
    let log = outdir.join("log");
    let mut flipper = Attack::new(Mode::Bare(mode.user()), "race", "exchange")
        .arg(&la)
        .arg(&lb)
        .spawn();
    flipper.ready();
    let out = Attack::new(mode, "race", "swapexec")
        .arg(&la)
        .arg(&log)
        .arg(SWAP_EXEC_ITERS)
        .flag("-r")
        .flag(s.join("bin"))
        .flag("-w")
        .flag(&outdir)
        .flag("--fs-deny")
        .flag(&b)
        .run("");
    let flips = flipper.finish();
    assert!(
        matches!(results(&flips.lines).get("exchange"), Some(Res::Ok(n)) if *n > 0),
        "the names were never exchanged\n{}",
        flips.describe()
    );
    let lines = marker_lines(&log);
    let ran_b = lines.iter().filter(|l| l.ends_with("/markB")).count();
    let what =
        format!("execve of a symlink swapped between two programs: the denied one ran {ran_b}x");
    verdict(mode, Bare::Works, ran_b > 0, &what, &out);
    if mode.sandboxed() {
        assert!(
            lines.iter().any(|l| l.ends_with("/markA")),
            "the allowed program never ran\n{}",
            out.describe()
        );
    }
}

/// `rw/la` and `rw/lb` are symlinks to a socket inside the grants
/// (`rw/ok.sock`) and to a "host daemon" outside them
/// (`outside/daemon.sock`), exchanged from outside while the sandbox
/// connects (or sends a datagram) to `rw/la`. Landlock does not govern
/// reaching a named socket: the supervisor resolves and checks the path,
/// then uses the pinned inode, never the task's path again.
fn race_unix_swap(mode: Mode, kind: &str) {
    let s = Scratch::new(mode.user());
    let rw = s.dir("rw");
    s.dir("outside");
    let counter = |rel: &str| {
        let name = UnixName::Path(s.join(rel));
        match kind {
            "stream" => UnixCounter::stream(name),
            _ => UnixCounter::dgram(name),
        }
        .expect("unix socket")
    };
    let daemon = counter("outside/daemon.sock");
    let allowed = counter("rw/ok.sock");
    let (la, lb) = (s.join("rw/la"), s.join("rw/lb"));
    s.symlink("ok.sock", "rw/la");
    s.symlink("../outside/daemon.sock", "rw/lb");
    let mut flipper = Attack::new(Mode::Bare(mode.user()), "race", "exchange")
        .arg(&la)
        .arg(&lb)
        .spawn();
    flipper.ready();
    let out = Attack::new(mode, "race", "swapconnect")
        .arg(kind)
        .arg(&la)
        .arg(SWAP_ITERS)
        .flag("-w")
        .flag(&rw)
        .run("");
    let flips = flipper.finish();
    assert!(
        matches!(results(&flips.lines).get("exchange"), Some(Res::Ok(n)) if *n > 0),
        "the names were never exchanged\n{}",
        flips.describe()
    );
    let reached = daemon.count();
    let what = format!(
        "a {kind} unix socket reached through a symlink swapped to one outside the grants: \
         {reached} reached it"
    );
    verdict(mode, Bare::Works, reached > 0, &what, &out);
    if mode.sandboxed() {
        assert!(
            allowed.count() > 0,
            "the allowed socket was never reached\n{}",
            out.describe()
        );
    }
}

fn race_unix_socket_swap(mode: Mode) {
    race_unix_swap(mode, "stream");
}

fn race_unix_datagram_swap(mode: Mode) {
    race_unix_swap(mode, "dgram");
}
