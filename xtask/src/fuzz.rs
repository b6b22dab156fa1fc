//! `cargo xtask fuzz`: runs every cargo-fuzz target on nightly for a while
//! each, reports coverage growth, and any crash with how to reproduce it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::cli::FuzzOptions;
use crate::workspace;

/// Runs `cargo xtask fuzz` with `opts`.
pub fn main(opts: &FuzzOptions) -> ExitCode {
    match fuzz(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask fuzz: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One libFuzzer status line (`#4096 pulse cov: 81 ft: 120 corp: 12/96b ...`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// Executions so far.
    pub execs: u64,
    /// `INITED`, `NEW`, `REDUCE`, `pulse`, `DONE`, ...
    pub event: String,
    /// Coverage (edges/counters).
    pub cov: Option<u64>,
    /// Features.
    pub ft: Option<u64>,
    /// Corpus entries.
    pub corpus: Option<u64>,
    /// Executions per second.
    pub exec_per_sec: Option<u64>,
}

/// Parses a libFuzzer status line; `None` for any other line.
pub fn parse_status(line: &str) -> Option<Status> {
    let rest = line.strip_prefix('#')?;
    let mut words = rest.split_whitespace();
    let execs = words.next()?.parse().ok()?;
    let event = words.next()?.to_owned();
    let mut s = Status {
        execs,
        event,
        ..Status::default()
    };
    let words: Vec<&str> = words.collect();
    for pair in words.windows(2) {
        let number = |w: &str| w.parse::<u64>().ok();
        match pair[0] {
            "cov:" => s.cov = number(pair[1]),
            "ft:" => s.ft = number(pair[1]),
            "corp:" => s.corpus = pair[1].split('/').next().and_then(number),
            "exec/s:" => s.exec_per_sec = number(pair[1]),
            _ => {}
        }
    }
    Some(s)
}

/// The input libFuzzer saved for a crash, timeout or leak, if the line says.
pub fn parse_artifact(line: &str) -> Option<PathBuf> {
    let (_, path) = line.split_once("Test unit written to ")?;
    let path = path.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// The coverage story of one target run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Growth {
    /// First status with coverage (after loading the corpus: `INITED`).
    pub first: Option<Status>,
    /// Last status seen.
    pub last: Option<Status>,
    /// Highest exec/s seen.
    pub peak_exec_per_sec: u64,
    /// Inputs that crashed, timed out or leaked.
    pub artifacts: Vec<PathBuf>,
    /// A libFuzzer or panic message line, for the report.
    pub error: Option<String>,
    /// `stat::number_of_executed_units` from the final stats.
    pub total_execs: Option<u64>,
    /// `stat::average_exec_per_sec` from the final stats.
    pub average_exec_per_sec: Option<u64>,
}

impl Growth {
    /// Takes one line of the fuzzer's output.
    pub fn feed(&mut self, line: &str) {
        if let Some(s) = parse_status(line) {
            if self.first.is_none() && s.cov.is_some() {
                self.first = Some(s.clone());
            }
            self.peak_exec_per_sec = self.peak_exec_per_sec.max(s.exec_per_sec.unwrap_or(0));
            self.last = Some(s);
        } else if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            self.total_execs = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            self.average_exec_per_sec = v.trim().parse().ok();
        } else if let Some(p) = parse_artifact(line) {
            self.artifacts.push(p);
        } else if self.error.is_none()
            && (line.contains("ERROR: libFuzzer")
                || line.contains("panicked at")
                || line.contains("ERROR: AddressSanitizer"))
        {
            self.error = Some(line.trim().to_owned());
        }
    }

    /// "cov 34 -> 81 (+47), ft 35 -> 120"
    pub fn describe(&self) -> String {
        let pair = |f: fn(&Status) -> Option<u64>| match (
            self.first.as_ref().and_then(f),
            self.last.as_ref().and_then(f),
        ) {
            (Some(a), Some(b)) => format!("{a} -> {b} (+{})", b.saturating_sub(a)),
            (None, Some(b)) => b.to_string(),
            _ => "-".to_owned(),
        };
        format!("cov {}, ft {}", pair(|s| s.cov), pair(|s| s.ft))
    }
}

/// The targets of the cargo-fuzz project in `dir`: `fuzz_targets/*.rs`.
pub fn discover(dir: &Path) -> Result<Vec<String>, String> {
    let targets_dir = dir.join("fuzz_targets");
    let entries = std::fs::read_dir(&targets_dir)
        .map_err(|e| format!("no fuzz targets: reading {}: {e}", targets_dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no fuzz targets in {}", targets_dir.display()));
    }
    Ok(names)
}

fn ensure_tools() -> Result<(), String> {
    let toolchains = workspace::output_of("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        return Err(
            "the nightly toolchain is missing: rustup toolchain install nightly".to_owned(),
        );
    }
    let has_fuzz = workspace::rustup_cargo("nightly")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_fuzz {
        eprintln!("== cargo-fuzz is missing: installing it");
        let mut cmd = workspace::cargo();
        cmd.args(["install", "cargo-fuzz"]);
        workspace::run_echo(&mut cmd)?;
    }
    Ok(())
}

fn fuzz(opts: &FuzzOptions) -> Result<bool, String> {
    let root = workspace::root();
    let dir = root.join(&opts.fuzz_dir);
    let found = discover(&dir)?;
    let targets = if opts.targets.is_empty() {
        found
    } else {
        for t in &opts.targets {
            if !found.contains(t) {
                return Err(format!(
                    "no fuzz target {t:?} (found: {})",
                    found.join(", ")
                ));
            }
        }
        opts.targets.clone()
    };
    ensure_tools()?;
    let mut summary = Vec::new();
    let mut clean = true;
    for target in &targets {
        let (growth, ok, elapsed) = run_target(&dir, target, opts.seconds)?;
        clean &= ok;
        summary.push((target.clone(), growth, ok, elapsed));
    }
    println!(
        "\n{:<20} {:>6} {:>12} {:>9} {:>8}  coverage",
        "target", "secs", "execs", "exec/s", "corpus"
    );
    for (target, g, ok, elapsed) in &summary {
        let last = g.last.clone().unwrap_or_default();
        println!(
            "{:<20} {:>6.0} {:>12} {:>9} {:>8}  {}{}",
            target,
            elapsed.as_secs_f64(),
            g.total_execs.unwrap_or(last.execs),
            g.average_exec_per_sec
                .or(last.exec_per_sec)
                .map_or("-".to_owned(), |r| r.to_string()),
            last.corpus.map_or("-".to_owned(), |c| c.to_string()),
            g.describe(),
            if *ok { "" } else { "  FAILED" }
        );
    }
    Ok(clean)
}

/// Runs one target; returns its growth, whether it ended clean, and how long
/// it fuzzed (from libFuzzer's first status line, so the build is not counted).
fn run_target(dir: &Path, target: &str, seconds: u64) -> Result<(Growth, bool, Duration), String> {
    let root = workspace::root();
    let seeds = dir.join("corpus").join(target);
    // New inputs go to a scratch corpus, so the committed seeds stay as
    // committed; libFuzzer writes into the first corpus directory given.
    let scratch = workspace::target_dir().join("fuzz-corpus").join(target);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let fuzz_dir_arg = dir.strip_prefix(&root).unwrap_or(dir).to_path_buf();
    let mut cmd = workspace::rustup_cargo("nightly");
    cmd.args(["fuzz", "run", "--fuzz-dir"])
        .arg(&fuzz_dir_arg)
        .arg(target)
        .arg(&scratch);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    } else {
        eprintln!("   note: no committed seed corpus at {}", seeds.display());
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    eprintln!(
        "== fuzz {target} for {seconds} s\n$ {}",
        workspace::display(&cmd)
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", workspace::display(&cmd)))?;
    let mut growth = Growth::default();
    let mut last_print = Instant::now();
    let mut printed_cov = None;
    let mut tail: Vec<String> = Vec::new();
    let mut fuzz_start: Option<Instant> = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            growth.feed(&line);
            let status = parse_status(&line);
            if status.is_some() && fuzz_start.is_none() {
                fuzz_start = Some(Instant::now());
            }
            match &status {
                Some(s) if s.cov.is_some() => {
                    // A progress line when coverage moved (at most every
                    // 5 s), and every 30 s in any case.
                    let since = last_print.elapsed();
                    let due = (since >= Duration::from_secs(5) && s.cov != printed_cov)
                        || since >= Duration::from_secs(30);
                    if s.event == "INITED" || s.event == "DONE" || due {
                        eprintln!(
                            "   {target} {:>5.0}s  {:<6} execs {:>10}  cov {:>6}  ft {:>6}  corp {:>5}  exec/s {:>7}",
                            fuzz_start.map_or(0.0, |t| t.elapsed().as_secs_f64()),
                            s.event,
                            s.execs,
                            s.cov.unwrap_or(0),
                            s.ft.unwrap_or(0),
                            s.corpus.unwrap_or(0),
                            s.exec_per_sec.unwrap_or(0)
                        );
                        last_print = Instant::now();
                        printed_cov = s.cov;
                    }
                }
                _ => {
                    tail.push(line);
                    if tail.len() > 40 {
                        tail.remove(0);
                    }
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo fuzz: {e}"))?;
    let elapsed = fuzz_start.map_or(Duration::ZERO, |t| t.elapsed());
    let ok = status.success() && growth.artifacts.is_empty();
    if !ok {
        eprintln!("   {target}: FAILED ({status})");
        if let Some(err) = &growth.error {
            eprintln!("   {err}");
        }
        for artifact in &growth.artifacts {
            eprintln!(
                "   crash input: {}\n   reproduce:   cargo +nightly fuzz run --fuzz-dir {} {target} {}",
                artifact.display(),
                fuzz_dir_arg.display(),
                artifact.display()
            );
        }
        if growth.artifacts.is_empty() {
            eprintln!("   last output:");
            for line in &tail {
                eprintln!("   | {line}");
            }
        }
    }
    Ok((growth, ok, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let s = parse_status(
            "#4096\tpulse  cov: 81 ft: 120 corp: 12/96b lim: 4 exec/s: 2048 rss: 31Mb",
        )
        .unwrap();
        assert_eq!(
            s,
            Status {
                execs: 4096,
                event: "pulse".to_owned(),
                cov: Some(81),
                ft: Some(120),
                corpus: Some(12),
                exec_per_sec: Some(2048),
            }
        );
        let s = parse_status("#2\tINITED cov: 34 ft: 35 corp: 1/1b exec/s: 0 rss: 30Mb").unwrap();
        assert_eq!(
            (s.event.as_str(), s.cov, s.corpus),
            ("INITED", Some(34), Some(1))
        );
        assert!(parse_status("INFO: Seed: 12345").is_none());
        assert!(parse_status("#include <x>").is_none());
    }

    #[test]
    fn growth_tracks_first_and_last_and_crashes() {
        let mut g = Growth::default();
        for line in [
            "INFO: Running with entropic power schedule (0xFF, 100).",
            "#2\tINITED cov: 34 ft: 35 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#30\tNEW    cov: 40 ft: 50 corp: 2/5b lim: 4 exec/s: 0 rss: 30Mb L: 4/4 MS: 1 InsertByte-",
            "#65536\tpulse  cov: 81 ft: 120 corp: 12/96b lim: 4 exec/s: 21845 rss: 31Mb",
            "thread '<unnamed>' panicked at src/decode.rs:10:5:",
            "==42== ERROR: libFuzzer: deadly signal",
            "stat::number_of_executed_units: 70000",
            "stat::average_exec_per_sec:     23333",
            "artifact_prefix='/w/fuzz/artifacts/decode_event/'; Test unit written to /w/fuzz/artifacts/decode_event/crash-0123abcd",
        ] {
            g.feed(line);
        }
        assert_eq!(g.first.as_ref().unwrap().cov, Some(34));
        assert_eq!(g.last.as_ref().unwrap().execs, 65536);
        assert_eq!(g.peak_exec_per_sec, 21845);
        assert_eq!(g.describe(), "cov 34 -> 81 (+47), ft 35 -> 120 (+85)");
        assert_eq!(
            g.artifacts,
            [PathBuf::from(
                "/w/fuzz/artifacts/decode_event/crash-0123abcd"
            )]
        );
        assert!(g.error.as_ref().unwrap().contains("panicked at"));
        assert_eq!(
            (g.total_execs, g.average_exec_per_sec),
            (Some(70000), Some(23333))
        );
    }

    #[test]
    fn discovers_targets_sorted() {
        let dir = std::env::temp_dir().join(format!("xtask-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(discover(&dir).unwrap_err().contains("fuzz_targets"));
        std::fs::create_dir_all(dir.join("fuzz_targets")).unwrap();
        assert!(discover(&dir).unwrap_err().contains("no fuzz targets"));
        for name in ["decode_event.rs", "bpf_generate.rs", "README.md"] {
            std::fs::write(dir.join("fuzz_targets").join(name), "").unwrap();
        }
        assert_eq!(discover(&dir).unwrap(), ["bpf_generate", "decode_event"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
