//! Attack class 4: pointer arguments changed between the supervisor's check
//! and the kernel's use (`race.c`), by a sibling thread, a `CLONE_VM`
//! process, and a process mapping the same memfd.
//!
//! Races on what a path names on disk are in `path_races`.
//!
//! Bare, each race reaches both values (the refused one included), which
//! shows the flipping works; under sandlock the refused value must never
//! take effect, and the allowed one must (or the race did not run).

use std::fs;

use crate::checks::{Bare, marker_lines, verdict};
use crate::harness::{Attack, Mode, Scratch};
use crate::observe::LoopbackPair;
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

const FLIPPERS: [&str; 3] = ["thread", "clonevm", "memfd"];
const NET_ITERS: &str = "3000";
const OPEN_ITERS: &str = "2000";
const EXEC_ITERS: &str = "1000";

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
