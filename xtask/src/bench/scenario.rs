//! The scenarios: what runs, under which rules, how many times.

use std::ffi::OsString;
use std::time::Duration;

use super::sandbox::Rules;
use super::stage::Stage;

/// Names and one-line descriptions, in run order (for `--list` and
/// `--scenario`).
pub const CATALOGUE: &[(&str, &str)] = &[
    ("startup", "start-up: /bin/true"),
    (
        "startup-default",
        "start-up: /bin/true, sandlock with its default profile (`sandlock run -- /bin/true`)",
    ),
    (
        "startup-user",
        "start-up: /bin/true as uid 65534 (bare too), sandlock as `sandlock run -- /bin/true`",
    ),
    (
        "open",
        "open loop: open+close of one file, no rule that intercepts openat",
    ),
    (
        "open-deny",
        "open loop with an --fs-deny rule on another path (openat intercepted)",
    ),
    ("fork", "fork loop: sequential fork+wait under -P 10"),
    (
        "connect",
        "connect loop: connect+close to a loopback listener, --net-allow-host 127.0.0.1",
    ),
    ("alloc", "allocation loop: 4 KiB-1 MiB malloc+free, -m 512M"),
    (
        "clock",
        "clock loop: clock_gettime(CLOCK_REALTIME) through the vDSO, --time-start",
    ),
    (
        "clock-syscall",
        "clock loop: the clock_gettime system call itself, --time-start",
    ),
    (
        "getrandom",
        "getrandom loop: 32 bytes per call, --random-seed",
    ),
    (
        "getrandom-syscall",
        "getrandom loop: the getrandom system call itself, --random-seed",
    ),
    (
        "getrandom-unseeded",
        "getrandom loop: 32 bytes per call, no seed (nothing intercepted)",
    ),
    (
        "notify",
        "notified syscall round trip (criterion bench `notify` of sandlock-benches)",
    ),
    (
        "redis",
        "redis-benchmark -t set,get against redis-server run inside the sandbox",
    ),
];

/// What a sample of a process scenario is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Wall time of the whole process (spawn to exit).
    Wall,
    /// The workload's own loop time (`ok N NS` on stdout): sandbox set-up
    /// excluded, so a slow-starting sandbox does not drown the per-call cost.
    Loop,
}

impl Metric {
    /// Its name in the record.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Wall => "wall",
            Metric::Loop => "loop",
        }
    }
}

/// How a scenario is measured.
#[derive(Debug, Clone)]
pub enum Workload {
    /// A process run under each sandbox.
    Process {
        /// The command.
        argv: Vec<OsString>,
        /// What is sampled.
        metric: Metric,
        /// Iterations the workload must report (`ok N ...`), for `Loop`.
        iterations: Option<u64>,
        /// A command that must succeed under sandboxes enforcing `deny`.
        probe: Option<Vec<OsString>>,
    },
    /// redis-server under each sandbox, redis-benchmark bare.
    Redis {
        /// `-n` of redis-benchmark.
        requests: u32,
    },
    /// A criterion bench of sandlock-benches.
    Criterion {
        /// `--bench` name.
        bench: &'static str,
    },
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name.
    pub name: &'static str,
    /// Description with parameters.
    pub title: String,
    /// The rules every sandbox is asked to apply.
    pub rules: Rules,
    /// What runs.
    pub workload: Workload,
    /// Untimed rounds first.
    pub warmup: usize,
    /// Timed rounds.
    pub rounds: usize,
    /// Per-run deadline.
    pub timeout: Duration,
    /// Runs every command of the scenario, bare included, as this uid (and
    /// the group of the same number, without supplementary groups). The
    /// bench must run as root to switch.
    pub run_as: Option<u32>,
}

/// The unprivileged user of `startup-user` (`nobody` on Debian).
pub const NOBODY: u32 = 65534;

/// Ports the network scenarios use.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The harness' loopback listener (connect loop).
    pub listener: u16,
    /// redis-server's port.
    pub redis: u16,
}

/// Every scenario, sized for `quick` or full runs.
pub fn all(quick: bool, stage: &Stage, ports: Ports) -> Vec<Scenario> {
    let q = |full: u64, reduced: u64| if quick { reduced } else { full };
    let loop_rounds = q(7, 2) as usize;
    let long = Duration::from_secs(300);
    let os = |s: &str| OsString::from(s);
    let count = |n: u64| OsString::from(n.to_string());
    let bin = |name: &str| stage.workload(name).into_os_string();
    let read_bin = Rules {
        read: vec![stage.bin.clone()],
        ..Rules::default()
    };

    let opens = q(200_000, 20_000);
    let open_argv = vec![
        bin("openloop"),
        count(opens),
        stage.file.clone().into_os_string(),
    ];
    let open_rules = Rules {
        read: vec![stage.bin.clone(), stage.data.clone()],
        ..Rules::default()
    };
    let forks = q(2000, 300);
    let connects = q(5000, 1000);
    let allocs = q(20_000, 3000);
    let clocks = q(5_000_000, 500_000);
    let clock_calls = q(100_000, 10_000);
    let randoms = q(100_000, 10_000);
    let start = "2000-06-15T00:00:00".to_owned();
    let requests = q(100_000, 10_000);

    // The getrandom loops: `randloop N [MODE]`, with or without a seed.
    let random_loop = |name: &'static str, what: &str, seed: Option<u64>, mode: &[&str]| {
        let mut argv = vec![bin("randloop"), count(randoms)];
        argv.extend(mode.iter().map(|m| os(m)));
        let flag = seed.map_or("no seed".to_owned(), |s| format!("--random-seed {s}"));
        Scenario {
            name,
            title: format!("getrandom loop: {randoms} {what} of 32 bytes, {flag}"),
            rules: Rules {
                random_seed: seed,
                ..read_bin.clone()
            },
            workload: Workload::Process {
                argv,
                metric: Metric::Loop,
                iterations: Some(randoms),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        }
    };

    // `/bin/true` started and waited for: the wall time of the whole.
    let start_up = |name: &'static str, title: &str, rules: Rules| Scenario {
        name,
        title: title.to_owned(),
        rules,
        workload: Workload::Process {
            argv: vec![os("/bin/true")],
            metric: Metric::Wall,
            iterations: None,
            probe: None,
        },
        warmup: q(5, 1) as usize,
        rounds: q(60, 10) as usize,
        timeout: Duration::from_secs(30),
        run_as: None,
    };

    let mut v = vec![
        start_up("startup", "start-up: /bin/true", Rules::default()),
        start_up(
            "startup-default",
            "start-up: /bin/true; sandlock as `sandlock run -- /bin/true` (its default \
             profile: as root, /etc with its secrets hidden by an overlay), the others with the same grants",
            Rules {
                sandlock_default: true,
                ..Rules::default()
            },
        ),
        Scenario {
            run_as: Some(NOBODY),
            ..start_up(
                "startup-user",
                "start-up: /bin/true as uid 65534 (bare too); sandlock as `sandlock run -- \
                 /bin/true` (its default profile: /etc whole, the secrets being unreadable \
                 to that user), the others with the same grants",
                Rules {
                    sandlock_default: true,
                    ..Rules::default()
                },
            )
        },
        Scenario {
            name: "open",
            title: format!("open loop: {opens} open+close, no intercepting rule"),
            rules: open_rules.clone(),
            workload: Workload::Process {
                argv: open_argv.clone(),
                metric: Metric::Loop,
                iterations: Some(opens),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "open-deny",
            title: format!("open loop: {opens} open+close, --fs-deny on another path"),
            rules: Rules {
                deny: vec![stage.secret.clone()],
                ..open_rules
            },
            workload: Workload::Process {
                argv: open_argv,
                metric: Metric::Loop,
                iterations: Some(opens),
                probe: Some(vec![
                    bin("openloop"),
                    count(1),
                    stage.file.clone().into_os_string(),
                    os("--probe-denied"),
                    stage.secret_file.clone().into_os_string(),
                ]),
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "fork",
            title: format!("fork loop: {forks} fork+wait, -P 10"),
            rules: Rules {
                max_processes: Some(10),
                ..read_bin.clone()
            },
            workload: Workload::Process {
                argv: vec![bin("forkloop"), count(forks)],
                metric: Metric::Loop,
                iterations: Some(forks),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "connect",
            title: format!(
                "connect loop: {connects} connect+close to 127.0.0.1, --net-allow-host 127.0.0.1"
            ),
            rules: Rules {
                net_allow_hosts: vec!["127.0.0.1".to_owned()],
                connects_to: vec![ports.listener],
                ..read_bin.clone()
            },
            workload: Workload::Process {
                argv: vec![
                    bin("connectloop"),
                    count(connects),
                    os("127.0.0.1"),
                    count(u64::from(ports.listener)),
                ],
                metric: Metric::Loop,
                iterations: Some(connects),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "alloc",
            title: format!("allocation loop: {allocs} malloc+free of 4 KiB-1 MiB, -m 512M"),
            rules: Rules {
                max_memory: Some("512M".to_owned()),
                ..read_bin.clone()
            },
            workload: Workload::Process {
                argv: vec![bin("allocloop"), count(allocs)],
                metric: Metric::Loop,
                iterations: Some(allocs),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "clock",
            title: format!("clock loop: {clocks} clock_gettime(CLOCK_REALTIME), --time-start"),
            rules: Rules {
                time_start: Some(start.clone()),
                ..read_bin.clone()
            },
            workload: Workload::Process {
                argv: vec![bin("clockloop"), count(clocks)],
                metric: Metric::Loop,
                iterations: Some(clocks),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "clock-syscall",
            title: format!(
                "clock loop: {clock_calls} clock_gettime system calls (no vDSO), --time-start"
            ),
            rules: Rules {
                time_start: Some(start),
                ..read_bin.clone()
            },
            workload: Workload::Process {
                argv: vec![bin("clockloop"), count(clock_calls), os("syscall")],
                metric: Metric::Loop,
                iterations: Some(clock_calls),
                probe: None,
            },
            warmup: 1,
            rounds: loop_rounds,
            timeout: long,
            run_as: None,
        },
        random_loop("getrandom", "calls", Some(42), &[]),
        random_loop(
            "getrandom-syscall",
            "getrandom system calls",
            Some(42),
            &["syscall"],
        ),
        random_loop("getrandom-unseeded", "calls", None, &[]),
        Scenario {
            name: "notify",
            title: "notified syscall round trip (criterion: sandlock-benches --bench notify)"
                .to_owned(),
            rules: Rules::default(),
            workload: Workload::Criterion { bench: "notify" },
            warmup: 0,
            rounds: 0,
            timeout: long,
            run_as: None,
        },
        Scenario {
            name: "redis",
            title: format!(
                "redis-benchmark -t set,get -n {requests} against a sandboxed redis-server"
            ),
            rules: Rules {
                write: vec![stage.redis.clone()],
                net_bind: vec![ports.redis],
                connects_to: vec![],
                ..Rules::default()
            },
            workload: Workload::Redis {
                requests: u32::try_from(requests).unwrap_or(u32::MAX),
            },
            warmup: 0,
            rounds: q(5, 2) as usize,
            timeout: Duration::from_secs(600),
            run_as: None,
        },
    ];
    debug_assert!(v.iter().map(|s| s.name).eq(CATALOGUE.iter().map(|c| c.0)));
    v.shrink_to_fit();
    v
}

/// Parses a workload's `ok N NS` line: the loop time in nanoseconds, after
/// checking that `N` is the iteration count asked for.
pub fn parse_loop_line(stdout: &str, iterations: Option<u64>) -> Result<f64, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("ok "))
        .ok_or_else(|| format!("no `ok N NS` line in the output {:?}", stdout.trim()))?;
    let mut words = line.split_whitespace().skip(1);
    let n: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("bad iteration count in {line:?}"))?;
    let ns: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("bad loop time in {line:?}"))?;
    if let Some(want) = iterations
        && n != want
    {
        return Err(format!("workload did {n} iterations, {want} asked"));
    }
    if ns == 0 {
        return Err(format!("zero loop time in {line:?}"));
    }
    Ok(ns as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_line() {
        assert_eq!(
            parse_loop_line("ok 200 12345\n", Some(200)).unwrap(),
            12345.0
        );
        assert_eq!(parse_loop_line("noise\nok 5 7\n", None).unwrap(), 7.0);
        assert!(
            parse_loop_line("ok 199 12345", Some(200))
                .unwrap_err()
                .contains("199")
        );
        assert!(parse_loop_line("", None).unwrap_err().contains("no `ok"));
        assert!(
            parse_loop_line("ok x 1", None)
                .unwrap_err()
                .contains("iteration")
        );
        assert!(
            parse_loop_line("ok 1", None)
                .unwrap_err()
                .contains("loop time")
        );
        assert!(
            parse_loop_line("ok 1 0", None)
                .unwrap_err()
                .contains("zero")
        );
    }

    #[test]
    fn catalogue_matches_the_scenarios() {
        let stage = Stage {
            root: "/s".into(),
            bin: "/s/bin".into(),
            data: "/s/data".into(),
            file: "/s/data/file".into(),
            secret: "/s/data/secret".into(),
            secret_file: "/s/data/secret/file".into(),
            tmp: "/s/tmp".into(),
            redis: "/s/redis".into(),
            runs: "/nonexistent-runs".into(),
        };
        let ports = Ports {
            listener: 1,
            redis: 2,
        };
        for quick in [false, true] {
            let all = all(quick, &stage, ports);
            let names: Vec<_> = all.iter().map(|s| s.name).collect();
            let want: Vec<_> = CATALOGUE.iter().map(|c| c.0).collect();
            assert_eq!(names, want);
        }
        let full = all(false, &stage, ports);
        let open = full.iter().find(|s| s.name == "open").unwrap();
        assert!(open.title.contains("200000"));
        let deny = full.iter().find(|s| s.name == "open-deny").unwrap();
        assert_eq!(
            deny.rules.deny,
            [std::path::PathBuf::from("/s/data/secret")]
        );
        std::mem::forget(stage); // its Drop would remove /s
    }
}
