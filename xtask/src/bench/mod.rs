//! `cargo xtask bench`: end-to-end scenarios, bare against each sandbox, in
//! one interleaved run; a JSON record per run; comparison and history plot.

mod ab;
mod compare;
mod criterion;
mod floor;
mod listener;
mod measure;
mod plot;
mod record;
mod redis;
mod run;
mod sandbox;
mod scenario;
mod spawn;
mod stage;
mod stats;
mod table;
mod tools;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::BenchOptions;
use crate::workspace;
use record::{Record, SCHEMA, ScenarioRecord};
use sandbox::Kind;
pub use sandbox::SYSTEM_DIRS;
use scenario::{CATALOGUE, Workload};

pub use ab::main as ab;

/// Runs `cargo xtask bench` with `opts`.
pub fn main(opts: &BenchOptions) -> ExitCode {
    match bench(opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The directory of the records.
pub fn records_dir() -> PathBuf {
    workspace::target_dir().join("bench")
}

fn bench(opts: &BenchOptions) -> Result<ExitCode, String> {
    if opts.list {
        println!("scenarios:");
        for (name, what) in CATALOGUE {
            println!("  {name:<10} {what}");
        }
        println!(
            "sandboxes (besides bare): landlock landlock-spawn kernel-floor sandlock {} bwrap firejail syd",
            tools::SANDLOCK_CLI_VERSIONS
                .iter()
                .map(|v| format!("sandlock-cli-{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    for name in &opts.scenarios {
        if !CATALOGUE.iter().any(|(n, _)| n == name) {
            return Err(format!("unknown scenario {name:?} (see --list)"));
        }
    }
    let mode = if opts.quick { "quick" } else { "full" };
    let dir = records_dir();
    let mut current: Option<PathBuf> = None;
    if !opts.no_run {
        let record = measure(opts, mode)?;
        print!("{}", table::render(&record));
        let path = record.save(&dir)?;
        println!("\nrecord: {}", path.display());
        current = Some(path);
    }
    let mut code = ExitCode::SUCCESS;
    if opts.markdown {
        let all = record::load_all(&dir);
        let latest = match &current {
            Some(p) => all.iter().find(|(q, _)| q == p),
            None => record::previous(&all, mode, None),
        };
        match latest {
            Some((_, r)) => print!("\n{}", table::markdown(r)),
            None => return Err(format!("no {mode} record in {}", dir.display())),
        }
    }
    if opts.compare {
        let all = record::load_all(&dir);
        let now = match &current {
            Some(p) => all.iter().find(|(q, _)| q == p),
            None => record::previous(&all, mode, None),
        };
        let Some((now_path, now)) = now else {
            return Err(format!("no {mode} record in {} to compare", dir.display()));
        };
        match record::baseline(&all, mode, now_path) {
            None => println!("\n--compare: no previous {mode} record to compare with"),
            Some(prev) => {
                let lines = compare::compare(&prev, now, opts.threshold);
                println!(
                    "\n--compare: {} against the newest earlier {mode} run of each scenario \
                     (threshold {:.0}%)",
                    now_path.display(),
                    opts.threshold * 100.0
                );
                print!("{}", compare::render(&lines, opts.threshold));
                let regressions = lines.iter().filter(|l| l.regression).count();
                if regressions > 0 {
                    println!("{regressions} regression(s)");
                    code = ExitCode::FAILURE;
                }
            }
        }
    }
    if opts.plot {
        let records: Vec<Record> = record::load_all(&dir)
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.mode == mode)
            .collect();
        let name = if opts.quick {
            "history-quick.svg"
        } else {
            "history.svg"
        };
        let path = dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::write(&path, plot::svg(&records))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!(
            "plot: {} ({} {mode} records)",
            path.display(),
            records.len()
        );
    }
    Ok(code)
}

/// The distributable `sandlock` binary, built as the bench builds it.
pub fn build_sandlock() -> Result<std::path::PathBuf, String> {
    tools::build(false).1
}

fn measure(opts: &BenchOptions, mode: &str) -> Result<Record, String> {
    let selected =
        |name: &str| opts.scenarios.is_empty() || opts.scenarios.iter().any(|s| s == name);
    eprintln!("== building release binaries");
    let built = tools::build(opts.install);
    // The start path's layout (crates/sandlock/link/start-order.txt) lists
    // functions by exact name: say when the code has moved away from it.
    if let Ok(sandlock) = &built.1
        && let Some((found, listed)) = crate::layout::coverage(sandlock)
    {
        eprintln!("   start-path layout: {found} of the {listed} listed functions in the binary");
        if found < listed {
            // 24 of 317 unplaced cost 0.10-0.15 ms a start (cargo xtask ab).
            eprintln!(
                "   (not all: the figures are slower than they should be; cargo xtask layout writes the list again)"
            );
        }
    }
    let cache = workspace::tool_cache();
    let mut sandboxes = tools::select(
        tools::discover(&cache, &built, &BTreeMap::new()),
        &opts.sandboxes,
    );
    if opts.install {
        eprintln!("== installing missing sandboxes");
        let failures = tools::install(&cache, &sandboxes, selected("redis"));
        sandboxes = tools::select(tools::discover(&cache, &built, &failures), &opts.sandboxes);
    }
    for s in &sandboxes {
        if let Err(reason) = &s.program {
            eprintln!("   {}: {reason}", s.name);
        }
    }
    let stage = stage::Stage::create()?;
    if let (Ok(sandlock), Some(floor)) = (
        &built.1,
        sandboxes
            .iter_mut()
            .find(|s| s.kind == Kind::KernelFloor && s.program.is_ok()),
    ) && let Err(e) = floor::write_filter(sandlock, &stage.root.join(floor::FILTER_FILE))
    {
        eprintln!("   kernel-floor: {e}");
        floor.program = Err(e);
    }
    // The build just wrote hundreds of megabytes: their writeback (the
    // flusher kworkers, the journal) ran during the first scenario and
    // slowed its wrappers by a quarter. Flushed before anything is timed.
    let _ = std::process::Command::new("sync").status();
    let listener = if selected("connect") {
        Some(listener::Listener::start()?)
    } else {
        None
    };
    let ports = scenario::Ports {
        listener: listener.as_ref().map_or(0, listener::Listener::port),
        redis: listener::free_port()?,
    };
    let runner = measure::Runner::new(&stage.runs);
    let ctx = run::Ctx {
        runner: &runner,
        stage: &stage,
        sandboxes: &sandboxes,
    };
    let mut scenarios = Vec::new();
    let mut criterion_results = Vec::new();
    for sc in scenario::all(opts.quick, &stage, ports) {
        if !selected(sc.name) {
            continue;
        }
        eprintln!("== {}: {}", sc.name, sc.title);
        let started = std::time::Instant::now();
        let rounds = opts.rounds.unwrap_or(sc.rounds);
        let rec: ScenarioRecord = match &sc.workload {
            Workload::Process {
                argv,
                metric,
                iterations,
                probe,
            } => run::process(
                &ctx,
                &sc,
                argv,
                *metric,
                *iterations,
                probe.as_deref(),
                rounds,
            ),
            Workload::Redis { requests } => redis::scenario(&ctx, &sc, *requests, rounds),
            Workload::Criterion { bench } => {
                // With --criterion every bench runs once at the end instead.
                let result = if opts.criterion {
                    criterion_exists(bench)
                } else {
                    criterion::run(Some(bench), opts.quick).map(|r| criterion_results.extend(r))
                };
                match result {
                    Ok(()) => run::finish(&sc, "criterion", Vec::new(), 0),
                    Err(reason) => run::skipped(&sc, "criterion", reason),
                }
            }
        };
        eprintln!("   ({:.1} s)", started.elapsed().as_secs_f64());
        scenarios.push(rec);
    }
    drop(listener);
    if opts.criterion {
        eprintln!("== criterion benches of sandlock-benches");
        match criterion::run(None, opts.quick) {
            Ok(r) => criterion_results.extend(r),
            Err(e) => eprintln!("   criterion: {e}"),
        }
    }
    let (kernel, cpu, cpus) = tools::machine();
    let (commit, dirty) = tools::commit();
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Record {
        schema: SCHEMA,
        timestamp: record::rfc3339(unix_time),
        unix_time,
        mode: mode.to_owned(),
        commit,
        dirty,
        kernel,
        cpu,
        cpus,
        tools: tools::versions(&sandboxes),
        scenarios,
        criterion: criterion_results,
    })
}

fn criterion_exists(bench: &str) -> Result<(), String> {
    let file = workspace::root().join(format!("benches/benches/{bench}.rs"));
    if file.is_file() {
        Ok(())
    } else {
        Err(format!(
            "the criterion bench `{bench}` of sandlock-benches does not exist yet ({} missing)",
            file.display()
        ))
    }
}

/// `bench --quick`, for `cargo xtask ci`: fails when the run fails or a
/// scenario did not run for a reason other than a missing optional tool
/// (redis not installed, the criterion bench not written yet).
pub fn quick_smoke() -> ExitCode {
    let code = main(&BenchOptions {
        quick: true,
        ..BenchOptions::default()
    });
    if code != ExitCode::SUCCESS {
        return code;
    }
    let all = record::load_all(&records_dir());
    let Some((path, latest)) = record::previous(&all, "quick", None) else {
        eprintln!("xtask ci: the quick bench wrote no record");
        return ExitCode::FAILURE;
    };
    let failures = smoke_failures(latest);
    for f in &failures {
        eprintln!("xtask ci: {f} ({})", path.display());
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Scenarios of `record` that did not run for a reason that is a breakage.
fn smoke_failures(record: &Record) -> Vec<String> {
    record
        .scenarios
        .iter()
        .filter_map(|sc| {
            let reason = sc.skipped.as_deref()?;
            let optional = (sc.name == "redis" && reason == redis::MISSING)
                || (sc.name == "notify" && reason.contains("does not exist yet"));
            (!optional).then(|| format!("scenario {} did not run: {reason}", sc.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::record::testdata::sample_record;
    use super::*;

    #[test]
    fn smoke_tolerates_missing_tools_only() {
        let mut r = sample_record(1, "quick", 1.0);
        assert!(smoke_failures(&r).is_empty());
        let mut redis = r.scenarios[0].clone();
        redis.name = "redis".to_owned();
        redis.skipped = Some(redis::MISSING.to_owned());
        r.scenarios.push(redis);
        assert!(smoke_failures(&r).is_empty());
        r.scenarios[0].skipped = Some("bare run failed: exit 1".to_owned());
        let f = smoke_failures(&r);
        assert_eq!(f, ["scenario open did not run: bare run failed: exit 1"]);
    }
}
