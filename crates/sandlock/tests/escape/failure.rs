//! Attack class 8: the supervisor failing. The sandlock process killed
//! mid-run, setup failures (a missing path, Landlock switched off under
//! strict and best-effort), and sandlock nested in another seccomp-notify
//! sandbox: none of them may run the command unconfined.

use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::checks::{Bare, ENOSYS, EPERM, marker_lines, namespace_attack, verdict};
use crate::harness::{Attack, Mode, Outcome, Res, Scratch, User, bins};
use crate::observe::LoopbackPair;
use crate::programs::callback_runner;

escape_tests!(run:
    sandlock_killed_mid_run,
    missing_path_never_runs,
    landlock_off_strict_never_runs,
    landlock_off_best_effort_still_filters,
    nested_in_seccomp_notify_sandbox,
);

/// SIGKILL to sandlock while the command and a setsid() grandchild keep
/// connecting to a refused host: both must die, and (while they live) every
/// notified connect must fail, since no supervisor answers any more.
/// Bare, killing the command leaves its daemon connecting freely.
fn sandlock_killed_mid_run(mode: Mode) {
    let net = LoopbackPair::new();
    let mut s = Attack::new(mode, "net", "persist")
        .arg("127.0.0.2")
        .arg(net.port())
        .arg("5")
        .flag("--net-allow-host")
        .flag("127.0.0.1")
        .spawn();
    let ran = s.wait_ready();
    s.go("");
    if ran {
        s.expect("LOOPING");
    }
    if let Some(pid) = Pid::from_raw(s.pid()) {
        let _ = kill_process(pid, Signal::KILL);
    }
    s.wait_exit();
    // Give survivors time to show themselves (connect attempts, /proc).
    let since = Instant::now();
    let mut left = s.attackers();
    while !left.is_empty() && since.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(20));
        left = s.attackers();
    }
    let reached = net.bad.count();
    s.end_survivors(&left);
    let out = s.finish();
    let what = format!("after SIGKILL to sandlock: alive {left:?}, {reached} connections");
    verdict(
        mode,
        Bare::Works,
        reached > 0 || !left.is_empty(),
        &what,
        &out,
    );
}

/// Bare, the marker runs; under sandlock with a setup failure it must not:
/// exit 125 with a message, and no marker.
fn must_not_run(mode: Mode, attack: Attack, ran_file: &std::path::Path, what: &str) -> Outcome {
    let out = attack.run("");
    let ran = !marker_lines(ran_file).is_empty();
    if mode.sandboxed() {
        assert!(!ran, "ESCAPE: {what}: the command ran\n{}", out.describe());
        assert_eq!(
            out.code(),
            Some(125),
            "{what}: exit status\n{}",
            out.describe()
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "{what}: no message\n{}",
            out.describe()
        );
    } else {
        assert!(
            ran,
            "bare {what}: the marker did not run\n{}",
            out.describe()
        );
    }
    out
}

fn missing_path_never_runs(mode: Mode) {
    let scratch = Scratch::new(mode.user());
    let missing = scratch.join("does-not-exist");
    let ran = scratch.join("ran");
    let attack = Attack::new(mode, "helpers", "marker")
        .arg(&ran)
        .flag("-r")
        .flag(&missing)
        .flag("-w")
        .flag(scratch.path());
    let out = must_not_run(mode, attack, &ran, "a missing -r path");
    if mode.sandboxed() {
        let name = missing.display().to_string();
        assert!(
            out.stderr.contains(&name),
            "the message must name {name}\n{}",
            out.describe()
        );
    }
}

/// `helpers nolandlock --`: a seccomp filter answering ENOSYS to every
/// landlock_* call, as on a kernel without Landlock.
fn without_landlock(attack: Attack) -> Attack {
    let helpers = bins().prog("helpers");
    attack.wrapped(&[
        helpers.as_os_str(),
        "wrap".as_ref(),
        "nolandlock".as_ref(),
        "--".as_ref(),
    ])
}

fn landlock_off_strict_never_runs(mode: Mode) {
    if !mode.sandboxed() {
        // The wrapper really hides Landlock.
        let probe = without_landlock(Attack::new(mode, "helpers", "probe-landlock")).run("");
        let answer = probe.result("landlock_create_ruleset");
        assert_eq!(answer, Some(Res::Errno(ENOSYS)), "{}", probe.describe());
    }
    let scratch = Scratch::new(mode.user());
    let ran = scratch.join("ran");
    let attack = Attack::new(mode, "helpers", "marker")
        .arg(&ran)
        .flag("-w")
        .flag(scratch.path());
    must_not_run(
        mode,
        without_landlock(attack),
        &ran,
        "strict mode without Landlock",
    );
}

/// `--best-effort` without Landlock may run, but says so, and the seccomp
/// layer still holds (here: unshare stays refused).
fn landlock_off_best_effort_still_filters(mode: Mode) {
    let attack = without_landlock(Attack::new(mode, "kernel", "unshare").flag("--best-effort"));
    let (changed, out) = namespace_attack(attack, "");
    if mode.sandboxed() && !out.ran() {
        // Refusing to run at all is also fail-closed.
        assert_eq!(out.code(), Some(125), "{}", out.describe());
        return;
    }
    let what = format!("unshare under --best-effort without Landlock: {changed:?}");
    verdict(mode, Bare::Works, !changed.is_empty(), &what, &out);
    if mode.sandboxed() {
        let said = out.stderr.to_lowercase().contains("landlock");
        assert!(
            said,
            "best-effort must say Landlock is not enforced\n{}",
            out.describe()
        );
    }
}

/// Inside a sandbox whose seccomp filter has a listener (held by its
/// parent), the kernel refuses a second listener (EBUSY): sandlock must
/// stop with a clear error, not run without its supervisor.
fn nested_in_seccomp_notify_sandbox(mode: Mode) {
    let helpers = bins().prog("helpers");
    let nest = [
        helpers.as_os_str(),
        "wrap".as_ref(),
        "nest-notify".as_ref(),
        "--".as_ref(),
    ];
    if !mode.sandboxed() {
        // The kernel's rule that makes this case matter: no nested listener.
        let twice = Attack::new(mode, "helpers", "marker")
            .arg("/dev/null")
            .wrapped(&[&nest[..], &nest[..]].concat())
            .run("");
        let inner = twice.result("nest-filter");
        assert_eq!(
            inner,
            Some(Res::Errno(16)),
            "EBUSY expected\n{}",
            twice.describe()
        );
    }
    let scratch = Scratch::new(mode.user());
    let ran = scratch.join("ran");
    let attack = Attack::new(mode, "helpers", "marker")
        .arg(&ran)
        .flag("--net-allow-host")
        .flag("127.0.0.1")
        .flag("-w")
        .flag(scratch.path())
        .wrapped(&nest);
    must_not_run(mode, attack, &ran, "nested in a seccomp-notify sandbox");
}

/// The policy callback fails closed, run through the library
/// (`examples/policy_callback`; the CLI cannot express a callback): a held
/// syscall whose callback panics, or does not answer within the bounded
/// wait, is refused with EPERM and has no effect. Shown on an `open` with
/// `O_CREAT` (the file must not exist afterwards); the network calls are
/// held by the same worker and fail the same way.
fn callback_fails_closed(user: User, how: &str, extra: &[&str]) {
    let scratch = Scratch::new(user);
    let target = scratch.join("callback-target");
    let mut attack = Attack::new(Mode::Sandboxed(user), "helpers", "marker")
        .arg(&target)
        .sandlock_at(callback_runner())
        .flag("-w")
        .flag(scratch.path())
        .flag(how)
        .flag("callback-target");
    for f in extra {
        attack = attack.flag(f);
    }
    let out = attack.run("");
    assert_eq!(
        out.result("marker-open"),
        Some(Res::Errno(EPERM)),
        "the held open must fail with EPERM\n{}",
        out.describe()
    );
    assert!(
        !target.exists(),
        "the open took effect although the callback failed\n{}",
        out.describe()
    );
}

#[test]
fn callback_panic_denies() {
    if crate::harness::have_root() {
        for user in [User::Root, User::Nobody] {
            callback_fails_closed(user, "--panic-on", &[]);
        }
    }
}

/// A callback that never answers: denial after the bounded wait (1 s here).
#[test]
fn callback_hang_denies() {
    if crate::harness::have_root() {
        for user in [User::Root, User::Nobody] {
            callback_fails_closed(user, "--hang-on", &["--callback-timeout", "1"]);
        }
    }
}
