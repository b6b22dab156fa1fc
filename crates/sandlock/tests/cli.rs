//! The `sandlock` command: exit statuses, one-line errors naming the value,
//! flags that are not implemented yet, `--status-fd`, `--dry-run-policy`,
//! the environment, limits and process settings, profiles, `check`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Scratch, bins, gone_marked, probe_in, run_as, sandlock};

fn probe() -> String {
    bins().probe().to_string_lossy().into_owned()
}

#[test]
fn exit_status_is_the_commands() {
    assert_eq!(probe_in(0, &[], &["exit", "7"]).code, Some(7));
    assert_eq!(probe_in(0, &[], &["exit", "0"]).code, Some(0));
}

#[test]
fn death_by_signal_is_128_plus_n() {
    assert_eq!(probe_in(0, &[], &["kill", "9"]).code, Some(137));
    assert_eq!(probe_in(0, &[], &["kill", "15"]).code, Some(143));
}

#[test]
fn timeout_is_124_and_nothing_is_left() {
    let scratch = Scratch::new(0);
    let pidfile = scratch.s("bg.pid");
    let out = probe_in(
        0,
        &["-t", "1", "-w", scratch.path().to_str().unwrap()],
        &["bg", &pidfile, "sleep", "30"],
    );
    assert_eq!(out.code, Some(124), "{out:?}");
    // The pid it wrote is its pid in the sandbox's PID namespace: look for
    // it by its argv (which holds the unique pidfile path) instead.
    assert!(std::fs::read_to_string(&pidfile).is_ok(), "never ran");
    assert!(
        gone_marked(&pidfile, 10),
        "background process survived the timeout"
    );
}

#[test]
fn background_processes_end_with_the_command() {
    let scratch = Scratch::new(0);
    let pidfile = scratch.s("bg.pid");
    let out = probe_in(
        0,
        &["-w", scratch.path().to_str().unwrap()],
        &["bg", &pidfile, "exit", "3"],
    );
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(std::fs::read_to_string(&pidfile).is_ok(), "never ran");
    assert!(
        gone_marked(&pidfile, 10),
        "background process survived the command"
    );
}

#[test]
fn not_found_is_127_and_not_executable_126() {
    let out = sandlock(&["run", "--", "sandlock-no-such-command"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        "sandlock: sandlock-no-such-command: command not found"
    );
    let scratch = Scratch::new(0);
    let f = scratch.file("script", "#!/bin/sh\n");
    let out = sandlock(&[
        "run",
        "-r",
        scratch.path().to_str().unwrap(),
        "--",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(126), "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
}

/// A program outside every grant cannot be executed: Landlock says EACCES.
#[test]
fn program_outside_the_grants_is_126() {
    let scratch = Scratch::new(0);
    let copy = scratch.join("probe");
    std::fs::copy(bins().probe(), &copy).unwrap();
    let out = sandlock(&["run", "--", copy.to_str().unwrap(), "echo", "hi"]);
    assert_eq!(out.code, Some(126), "{out:?}");
    assert!(!out.stdout.contains("hi"));
}

/// Bad values: exit 125 and one line naming the flag and the value.
#[test]
fn bad_values_are_125_with_the_value_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-r", "/sandlock-nope"],
            "sandlock: -r /sandlock-nope: no such file or directory",
        ),
        (
            &["-w", "/sandlock-nope/x"],
            "sandlock: -w /sandlock-nope/x: no such file or directory",
        ),
        (&["-m", "12Q"], "sandlock: -m/--max-memory 12Q:"),
        (&["--net-bind", "70000"], "sandlock: --net-bind 70000:"),
        (&["--net-connect", "0"], "sandlock: --net-connect 0:"),
        (&["--net-bind", "http"], "sandlock: --net-bind http:"),
        (&["--max-open-files", "0"], "sandlock: --max-open-files 0:"),
        (&["-t", "0"], "sandlock: -t 0:"),
        (&["-t", "soon"], "sandlock: -t soon:"),
        (&["--cpu-cores", "x"], "sandlock: --cpu-cores x:"),
        (&["--env", "NOEQUALS"], "sandlock: --env NOEQUALS:"),
        (&["--random-seed", "x1"], "sandlock: --random-seed x1:"),
        (&["--status-fd", "x"], "sandlock: --status-fd x:"),
        (
            &["--max-open-files", "99999999999"],
            "sandlock: --max-open-files 99999999999:",
        ),
    ];
    for (flags, want) in cases {
        let out = probe_in(0, flags, &["echo", "ran"]);
        assert_eq!(out.code, Some(125), "{flags:?}: {out:?}");
        assert!(!out.stdout.contains("ran"), "{flags:?} ran the command");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{flags:?}: {out:?}");
        assert!(
            lines[0].starts_with(want),
            "{flags:?}: {:?} does not start with {want:?}",
            lines[0]
        );
    }
}

#[test]
fn workdir_must_be_a_directory() {
    let scratch = Scratch::new(0);
    let f = scratch.file("plain", "x");
    let out = probe_in(0, &["--workdir", f.to_str().unwrap()], &["echo", "ran"]);
    assert_eq!(out.code, Some(125));
    assert_eq!(
        out.stderr.trim(),
        format!("sandlock: --workdir {}: not a directory", f.display())
    );
    let out = probe_in(
        0,
        &["--workdir", scratch.path().to_str().unwrap()],
        &["cwd"],
    );
    assert_eq!(out.get("cwd"), scratch.path().to_str().unwrap());
}

#[test]
fn usage_errors_are_2() {
    assert_eq!(
        sandlock(&["run", "--no-such-flag", "--", "true"]).code,
        Some(2)
    );
    assert_eq!(sandlock(&["frobnicate"]).code, Some(2));
    assert_eq!(sandlock(&["run", "-r"]).code, Some(2));
    let out = sandlock::<&str>(&["run"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("no command"), "{out:?}");
}

#[test]
fn status_fd_gets_one_json_line() {
    let scratch = Scratch::new(0);
    let file = scratch.s("status");
    let script = format!(
        "exec 9>{file}; exec {} run --status-fd 9 -- {} exit 3",
        bins().sandlock().display(),
        probe()
    );
    let out = run_as(0, std::path::Path::new("/bin/sh"), &["-c", &script], &[]);
    assert_eq!(out.code, Some(3), "{out:?}");
    let line = std::fs::read_to_string(&file).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["timed_out"], false);
    let script = format!(
        "exec 9>{file}; exec {} run --status-fd 9 -r /sandlock-nope -- {} exit 3",
        bins().sandlock().display(),
        probe()
    );
    let out = run_as(0, std::path::Path::new("/bin/sh"), &["-c", &script], &[]);
    assert_eq!(out.code, Some(125));
    let v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&file).unwrap().trim()).unwrap();
    assert_eq!(v["exit_code"], 125);
    assert!(v["error"].as_str().unwrap().contains("/sandlock-nope"));
}

#[test]
fn dry_run_prints_the_policy_and_the_program() {
    let out = sandlock(&["run", "--dry-run-policy", "--net-connect", "443"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("net_connect = [443]"));
    assert!(out.stdout.contains("isolate_signals = true"));
    assert!(out.stdout.contains("# seccomp: base filter"));
    assert!(out.stdout.contains("KILL_PROCESS"));
    // The printed policy is a valid profile.
    let toml: String = out.stdout.split("\n# seccomp").next().unwrap().to_owned();
    sandlock::Policy::from_toml(&toml).unwrap();
}

#[test]
fn environment_is_filtered_and_clean_env_is_minimal() {
    let probe = probe();
    let args = |extra: &[&str]| {
        let mut v = vec!["run"];
        v.extend_from_slice(extra);
        v.extend_from_slice(&[
            "--",
            &probe,
            "env",
            "GITHUB_TOKEN",
            "env",
            "SHELL_VAR",
            "env",
            "HOME",
            "env",
            "TMPDIR",
            "env",
            "ADDED",
        ]);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let env = [
        ("GITHUB_TOKEN", "secret"),
        ("SHELL_VAR", "kept"),
        ("HOME", "/root"),
    ];
    let out = run_as(0, &bins().sandlock(), &args(&["--env", "ADDED=1"]), &env);
    let r = out.results();
    assert_eq!(r["env"], "ADDED=1", "{out:?}"); // last env line wins in the map
    assert!(out.stdout.contains("env GITHUB_TOKEN=<unset>"), "{out:?}");
    assert!(out.stdout.contains("env SHELL_VAR=kept"));
    assert!(out.stdout.contains("env HOME=/root"));
    let tmpdir = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("env TMPDIR="))
        .unwrap()
        .to_owned();
    assert!(tmpdir.contains("sandlock-"), "{out:?}");
    // Removed, unless it is the user's slot, which is kept (emptied).
    assert!(
        tmpdir.ends_with("/slot") || !std::path::Path::new(&tmpdir).exists(),
        "private tmp {tmpdir} left behind"
    );
    // --env keeps a secret-looking variable; --clean-env drops the rest.
    let out = run_as(
        0,
        &bins().sandlock(),
        &args(&["--clean-env", "--env", "GITHUB_TOKEN=given"]),
        &env,
    );
    assert!(out.stdout.contains("env GITHUB_TOKEN=given"), "{out:?}");
    assert!(out.stdout.contains("env SHELL_VAR=<unset>"));
    let home = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("env HOME="))
        .unwrap();
    let tmp = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("env TMPDIR="))
        .unwrap();
    assert_eq!(home, tmp);
}

/// What the command leaves in its private directory is removed at its
/// end; the directory itself too, unless it is the user's slot (kept,
/// emptied, for the next run: `src/tmpdir.rs`).
#[test]
fn private_tmp_is_writable_and_removed() {
    let tag = format!("it-{}", std::process::id());
    let script = format!(
        "echo $TMPDIR; echo x > $TMPDIR/{tag} && mkdir $TMPDIR/{tag}.d && echo x > $TMPDIR/{tag}.d/g && cat $TMPDIR/{tag}"
    );
    let out = run_as(
        0,
        &bins().sandlock(),
        &["run", "--", "/bin/sh", "-c", &script],
        &[],
    );
    let mut lines = out.stdout.lines();
    let tmp = lines.next().unwrap_or_default().to_owned();
    assert_eq!(lines.next(), Some("x"), "{out:?}");
    let tmp = std::path::Path::new(&tmp);
    assert!(!tmp.join(&tag).exists() && !tmp.join(format!("{tag}.d")).exists());
    assert!(tmp.ends_with("slot") || !tmp.exists(), "{}", tmp.display());
    // Under this user's directory of private directories.
    let parent = tmp.parent().unwrap();
    let uid = rustix::process::geteuid().as_raw();
    assert!(
        parent.ends_with(format!("sandlock-{uid}")),
        "{}",
        tmp.display()
    );
}

#[test]
fn limits_and_process_settings() {
    let out = probe_in(0, &["--max-open-files", "64", "--no-coredump"], &["limits"]);
    assert_eq!(out.get("limits"), "nofile=64/64 core=0/0", "{out:?}");
    let out = probe_in(
        0,
        &["--no-randomize-memory", "--no-huge-pages"],
        &["persona"],
    );
    assert_eq!(out.get("persona"), "0x40000 thp_disable=1", "{out:?}");
    let out = probe_in(0, &[], &["persona"]);
    assert_eq!(out.get("persona"), "0 thp_disable=0", "{out:?}");
    let out = probe_in(0, &["--cpu-cores", "0"], &["affinity"]);
    assert_eq!(out.get("affinity"), "0", "{out:?}");
    let out = probe_in(0, &["--cpu-cores", "4000"], &["affinity"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(
        out.stderr.starts_with("sandlock: --cpu-cores 4000:"),
        "{out:?}"
    );
}

/// The sandbox is its own process group.
#[test]
fn own_process_group() {
    let out = probe_in(0, &[], &["ids"]);
    let ids = out.get("ids");
    let field = |k: &str| {
        ids.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap()
            .to_owned()
    };
    // The command leads its group, or (in the sandbox's PID namespace) is
    // in the group of the namespace's init, sandlock's.
    let (pid, pgid) = (field("pid="), field("pgid="));
    assert!(pid == pgid || pgid == "1", "{out:?}");
}

#[test]
fn exec_shell_runs_through_sh() {
    let out = sandlock(&["run", "-e", "echo $((6*7))"]);
    assert_eq!(out.stdout.trim(), "42", "{out:?}");
}

#[test]
fn profiles_list_show_delete_and_use() {
    let cfg = Scratch::new(0);
    let dir = cfg.dir("sandlock/profiles");
    std::fs::write(
        dir.join("tight.toml"),
        "fs_readable = [\"/usr\"]\nmax_open_files = 32\n",
    )
    .unwrap();
    std::fs::write(dir.join("mem.toml"), "max_memory = \"64M\"\n").unwrap();
    let env = [("XDG_CONFIG_HOME", cfg.path().to_str().unwrap())];
    let sl = bins().sandlock();
    let out = run_as(0, &sl, &["profile", "list"], &env);
    assert_eq!(out.stdout, "mem\ntight\n", "{out:?}");
    let out = run_as(0, &sl, &["profile", "show", "tight"], &env);
    assert!(out.stdout.contains("max_open_files = 32"));
    let out = run_as(0, &sl, &["profile", "show", "default"], &env);
    assert!(out.stdout.contains("isolate_signals = true"), "{out:?}");
    assert!(out.stdout.contains("\"/usr\""));
    // A profile replaces the default one: only /usr is readable (the
    // probe's directory is not), so the probe cannot even be executed.
    let probe = probe();
    let out = run_as(
        0,
        &sl,
        &[
            "run",
            "-p",
            "tight",
            "-r",
            bins().dir().to_str().unwrap(),
            "--",
            &probe,
            "limits",
        ],
        &env,
    );
    assert!(out.stdout.contains("nofile=32/32"), "{out:?}");
    let out = run_as(
        0,
        &sl,
        &["run", "-p", "tight", "--", &probe, "limits"],
        &env,
    );
    assert_eq!(out.code, Some(126), "{out:?}");
    // A limit from a profile applies.
    let dir = bins().dir().to_str().unwrap().to_owned();
    let out = run_as(
        0,
        &sl,
        &["run", "-p", "mem", "-r", &dir, "--", &probe, "limits"],
        &env,
    );
    assert!(out.stdout.contains("nofile="), "{out:?}");
    let out = run_as(0, &sl, &["profile", "delete", "mem"], &env);
    assert_eq!(out.code, Some(0));
    let out = run_as(0, &sl, &["profile", "list"], &env);
    assert_eq!(out.stdout, "tight\n");
    let out = run_as(0, &sl, &["profile", "show", "../etc/passwd"], &env);
    assert_eq!(out.code, Some(125));
    let out = run_as(0, &sl, &["run", "-p", "missing", "--", &probe], &env);
    assert_eq!(out.code, Some(125));
}

#[test]
fn check_reports_the_kernel() {
    let out = sandlock(&["check"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("Landlock"), "{out:?}");
    assert!(out.stdout.contains("seccomp user notification"));
    assert!(out.stdout.contains("cgroup v2"));
    assert!(out.stdout.contains("signal scoping"));
}

/// `-i` makes the sandbox the terminal's foreground process group.
#[test]
fn interactive_gets_the_terminal() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let slave = ptsname(&master, Vec::new()).unwrap();
    let slave = slave.to_str().unwrap().to_owned();
    let inner = format!(
        "{} run -i -- {} tty; {} run -- {} tty",
        bins().sandlock().display(),
        probe(),
        bins().sandlock().display(),
        probe()
    );
    let script = format!("exec <{slave} >{slave} 2>&1; exec setsid -c /bin/sh -c '{inner}'");
    let out = run_as(0, std::path::Path::new("/bin/sh"), &["-c", &script], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = rustix::io::ioctl_fionbio(&master, true);
    while let Ok(n) = rustix::io::read(&master, &mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("tty"))
        .collect();
    assert_eq!(lines, ["tty foreground=yes", "tty foreground=no"], "{text}");
}

/// The command line as uid 65534 (setpriv), with the binary copied to a
/// world-readable directory.
#[test]
fn cli_as_nobody() {
    if !common::root() {
        return;
    }
    let nobody = common::NOBODY;
    assert_eq!(probe_in(nobody, &[], &["exit", "3"]).code, Some(3));
    assert_eq!(probe_in(nobody, &[], &["kill", "9"]).code, Some(137));
    let out = probe_in(nobody, &["-r", "/sandlock-nope"], &["exit", "0"]);
    assert_eq!(out.code, Some(125));
    assert_eq!(
        out.stderr.trim(),
        "sandlock: -r /sandlock-nope: no such file or directory"
    );
    assert_eq!(
        probe_in(nobody, &["-t", "1"], &["sleep", "30"]).code,
        Some(124)
    );
    let out = probe_in(
        nobody,
        &[],
        &["ids", "env", "TMPDIR", "write", "/tmp/sandlock-nobody-no"],
    );
    assert!(out.get("ids").ends_with("uid=65534"), "{out:?}");
    assert_eq!(out.get("write"), "errno=13");
    let tmp = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("env TMPDIR="))
        .unwrap();
    // Removed, unless it is the user's slot (kept, emptied).
    assert!(tmp.ends_with("/slot") || !std::path::Path::new(tmp).exists());
    let out = run_as(nobody, &bins().sandlock(), &["check"], &[]);
    assert_eq!(out.code, Some(0));
}

/// SIGTERM to sandlock reaches the sandbox (whose process group is not
/// the terminal's): the command dies of it, sandlock reports 143.
#[test]
fn signals_are_forwarded_to_the_sandbox() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bins().sandlock())
        .current_dir(bins().dir())
        .args(["run", "--"])
        .arg(bins().probe())
        .args(["ids", "sleep", "60"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ids "), "{line}");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(143), "{st:?}");
}

/// A private directory left by a sandlock that was killed is removed by
/// the next run (of the same user).
#[test]
fn stale_private_directories_are_swept() {
    let dead = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let user_dir =
        std::env::temp_dir().join(format!("sandlock-{}", rustix::process::geteuid().as_raw()));
    let _ = probe_in(0, &[], &["exit", "0"]);
    let stale = user_dir.join(format!("sandlock-{pid}-0-deadbeef"));
    // Alone beside the run's own directory (the user directory's link
    // count then shows one subdirectory more than the run's).
    std::fs::create_dir_all(&stale).unwrap();
    let out = probe_in(0, &[], &["exit", "0"]);
    assert_eq!(out.code, Some(0));
    assert!(!stale.exists(), "{} left behind", stale.display());
    // With contents, beside a directory of a live process.
    std::fs::create_dir_all(stale.join("sub")).unwrap();
    std::fs::write(stale.join("sub/file"), "x").unwrap();
    let keep = user_dir.join(format!("sandlock-{}-0-deadbeef", std::process::id()));
    std::fs::create_dir_all(&keep).unwrap();
    let out = probe_in(0, &[], &["exit", "0"]);
    assert_eq!(out.code, Some(0));
    assert!(!stale.exists(), "{} left behind", stale.display());
    assert!(keep.exists(), "the directory of a live process was removed");
    std::fs::remove_dir(&keep).unwrap();
}
