//! Attack class 4, on paths: what a path names on disk changes between any
//! check and any use. A bare process of the same user, outside the
//! sandbox, exchanges two names as fast as it can (`race exchange`:
//! `renameat2` with `RENAME_EXCHANGE`, about ten exchanges per call of the
//! sandbox) while the sandbox uses the path (`race swapop`, `swapexec`,
//! `swapconnect`): the change comes at the kernel's pace, not the
//! supervisor's.
//!
//! Bare, each race reaches the refused side, which shows the swapping
//! works; under sandlock the refused side must never change, and the
//! allowed one must (or the race did not run).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checks::{Bare, marker_lines, verdict};
use crate::harness::{Attack, Mode, Outcome, Res, Scratch, Session, results};
use crate::observe::{UnixCounter, UnixName};

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

const SWAP_ITERS: &str = "3000";
const SWAP_EXEC_ITERS: &str = "600";

/// A bare process of the attacker's user exchanging `a` and `b` until its
/// input ends.
fn exchanger(mode: Mode, a: &Path, b: &Path) -> Session {
    let mut flipper = Attack::new(Mode::Bare(mode.user()), "race", "exchange")
        .arg(a)
        .arg(b)
        .spawn();
    flipper.ready();
    flipper
}

/// Stops the exchanger; fails unless it exchanged at all. Its count.
fn exchanges(flipper: Session) -> i64 {
    let flips = flipper.finish();
    match results(&flips.lines).get("exchange") {
        Some(Res::Ok(n)) if *n > 0 => *n,
        _ => panic!("the names were never exchanged\n{}", flips.describe()),
    }
}

/// Whether the attack reported at least one success of `op`.
fn succeeded(out: &Outcome, op: &str) -> bool {
    matches!(results(&out.lines).get(op), Some(Res::Ok(n)) if *n > 0)
}

/// Whether `path` no longer holds "orig" (gone, or rewritten).
fn rewritten(path: &Path) -> bool {
    fs::read_to_string(path).unwrap_or_default() != "orig"
}

/// One `race swapop` race: `op` applied to `path` `SWAP_ITERS` times in
/// the sandbox (under `flags`) while `names` are exchanged from outside.
struct OnDisk<'a> {
    op: &'a str,
    path: &'a Path,
    /// `DEST` of the rename and link ops.
    dest: Option<&'a Path>,
    names: (&'a Path, &'a Path),
    flags: &'a [OsString],
    /// Must stay false.
    refused_changed: &'a dyn Fn() -> bool,
    /// Must become true (given the attack's outcome).
    allowed_changed: &'a dyn Fn(&Outcome) -> bool,
    what: &'a str,
}

fn race_on_disk(mode: Mode, r: OnDisk<'_>) {
    let flipper = exchanger(mode, r.names.0, r.names.1);
    let mut attack = Attack::new(mode, "race", "swapop")
        .arg(r.op)
        .arg(r.path)
        .arg(SWAP_ITERS);
    if let Some(dest) = r.dest {
        attack = attack.arg(dest);
    }
    let out = attack.flags(r.flags).run("");
    let swaps = exchanges(flipper);
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

/// The symlink swaps' tree: `rw/pub` and the denied `rw/secret` (both
/// "orig"), `rw/la -> pub` and `rw/lb -> secret`, exchanged from outside
/// so that `rw/la` names one, then the other. The supervisor resolves,
/// pins and checks.
struct LinkTree {
    _s: Scratch,
    allowed: PathBuf,
    refused: PathBuf,
    la: PathBuf,
    lb: PathBuf,
    flags: Vec<OsString>,
}

fn link_tree(mode: Mode) -> LinkTree {
    let s = Scratch::new(mode.user());
    s.dir("rw");
    let allowed = s.file("rw/pub", "orig");
    let refused = s.file("rw/secret", "orig");
    s.symlink("pub", "rw/la");
    s.symlink("secret", "rw/lb");
    let flags = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        refused.clone().into(),
    ];
    LinkTree {
        allowed,
        refused,
        la: s.join("rw/la"),
        lb: s.join("rw/lb"),
        flags,
        _s: s,
    }
}

/// The directory swaps' tree: the directory `rw/d` and the denied
/// `rw/sdir`, each holding `f` ("orig"), `rw/dx -> sdir`, and `rw/out`.
/// Exchanged from outside, `rw/d/f` names `rw/d/f` or `rw/sdir/f` in turn.
struct DirTree {
    s: Scratch,
    d: PathBuf,
    dx: PathBuf,
    refused: PathBuf,
    flags: Vec<OsString>,
}

fn dir_tree(mode: Mode) -> DirTree {
    let s = Scratch::new(mode.user());
    for dir in ["rw", "rw/d", "rw/sdir", "rw/out"] {
        s.dir(dir);
    }
    s.file("rw/d/f", "orig");
    let refused = s.file("rw/sdir/f", "orig");
    s.symlink("sdir", "rw/dx");
    let flags = vec![
        "-w".into(),
        s.join("rw").into(),
        "--fs-deny".into(),
        s.join("rw/sdir").into(),
    ];
    DirTree {
        d: s.join("rw/d"),
        dx: s.join("rw/dx"),
        refused,
        flags,
        s,
    }
}

const DIR_SWAP: &str = "a directory swapped with a symlink to a denied directory";
const LINK_SWAP: &str = "a symlink swapped between an allowed and a denied file";

fn race_symlink_swap(mode: Mode) {
    let t = link_tree(mode);
    race_on_disk(
        mode,
        OnDisk {
            op: "write",
            path: &t.la,
            dest: None,
            names: (&t.la, &t.lb),
            flags: &t.flags,
            refused_changed: &|| rewritten(&t.refused),
            allowed_changed: &|_| rewritten(&t.allowed),
            what: LINK_SWAP,
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
    let (la, lb) = (
        s.symlink("pub", "rw/la"),
        s.symlink("../out/secret", "rw/lb"),
    );
    race_on_disk(
        mode,
        OnDisk {
            op: "write",
            path: &la,
            dest: None,
            names: (&la, &lb),
            flags: &["-w".into(), s.join("rw").into()],
            refused_changed: &|| rewritten(&refused),
            allowed_changed: &|_| rewritten(&allowed),
            what: "a symlink swapped between a granted file and one outside every grant",
        },
    );
}

/// `chmod 0600` through `rw/la` (a change the supervisor makes itself,
/// not the confined worker): `secret` keeps its mode.
fn race_chmod_swap(mode: Mode) {
    use std::os::unix::fs::PermissionsExt;
    let t = link_tree(mode);
    let mode_of = |p: &Path| fs::metadata(p).map_or(0, |m| m.permissions().mode() & 0o777);
    race_on_disk(
        mode,
        OnDisk {
            op: "chmod",
            path: &t.la,
            dest: None,
            names: (&t.la, &t.lb),
            flags: &t.flags,
            refused_changed: &|| mode_of(&t.refused) != 0o644,
            allowed_changed: &|_| mode_of(&t.allowed) == 0o600,
            what: LINK_SWAP,
        },
    );
}

fn race_directory_swap(mode: Mode) {
    let t = dir_tree(mode);
    // The allowed file moves with its directory: after an odd number of
    // exchanges the directory is `rw/dx`. Read it wherever it is.
    let allowed = || {
        let real = if fs::symlink_metadata(&t.d).is_ok_and(|m| m.is_dir()) {
            &t.d
        } else {
            &t.dx
        };
        rewritten(&real.join("f"))
    };
    race_on_disk(
        mode,
        OnDisk {
            op: "write",
            path: &t.d.join("f"),
            dest: None,
            names: (&t.d, &t.dx),
            flags: &t.flags,
            refused_changed: &|| rewritten(&t.refused),
            allowed_changed: &|_| allowed(),
            what: DIR_SWAP,
        },
    );
}

/// Unlinking `rw/d/f` (created again before each try): `rw/sdir/f` must
/// survive untouched (unlinked, or created again empty, would both show).
fn race_unlink_swap(mode: Mode) {
    let t = dir_tree(mode);
    race_on_disk(
        mode,
        OnDisk {
            op: "unlink",
            path: &t.d.join("f"),
            dest: None,
            names: (&t.d, &t.dx),
            flags: &t.flags,
            refused_changed: &|| rewritten(&t.refused),
            allowed_changed: &|out| succeeded(out, "unlink"),
            what: DIR_SWAP,
        },
    );
}

/// Moving `rw/d/f` (created again before each try) out to
/// `rw/out/moved.N`, or hard-linking it there (`op`): the denied
/// `rw/sdir/f` must stay where it is, unchanged, with no second name.
fn race_move_swap(mode: Mode, op: &str) {
    use std::os::unix::fs::MetadataExt;
    let t = dir_tree(mode);
    let changed = || rewritten(&t.refused) || fs::metadata(&t.refused).is_ok_and(|m| m.nlink() > 1);
    race_on_disk(
        mode,
        OnDisk {
            op,
            path: &t.d.join("f"),
            dest: Some(&t.s.join("rw/out/moved")),
            names: (&t.d, &t.dx),
            flags: &t.flags,
            refused_changed: &changed,
            allowed_changed: &|out| succeeded(out, op),
            what: DIR_SWAP,
        },
    );
}

fn race_rename_swap(mode: Mode) {
    race_move_swap(mode, "rename");
}

fn race_link_swap(mode: Mode) {
    race_move_swap(mode, "link");
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
    let (la, lb) = (s.symlink("markA", "bin/la"), s.symlink("markB", "bin/lb"));
    let log = outdir.join("log");
    let flipper = exchanger(mode, &la, &lb);
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
    exchanges(flipper);
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
    let la = s.symlink("ok.sock", "rw/la");
    let lb = s.symlink("../outside/daemon.sock", "rw/lb");
    let flipper = exchanger(mode, &la, &lb);
    let out = Attack::new(mode, "race", "swapconnect")
        .arg(kind)
        .arg(&la)
        .arg(SWAP_ITERS)
        .flag("-w")
        .flag(&rw)
        .run("");
    exchanges(flipper);
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
