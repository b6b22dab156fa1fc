//! Running a process scenario: validate each sandbox, then interleave.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use super::measure::{Run, Runner, sys};
use super::record::{Measured, Outcome, Row, ScenarioRecord};
use super::sandbox::{Kind, Sandbox, Wrapped};
use super::scenario::{Metric, Scenario, parse_loop_line};
use super::stage::Stage;
use super::stats::{Summary, paired_ratios};

/// Everything a scenario runs with.
pub struct Ctx<'a> {
    /// The process runner (one watchdog for the whole bench).
    pub runner: &'a Runner,
    /// The scratch tree.
    pub stage: &'a Stage,
    /// Bare first, then the others.
    pub sandboxes: &'a [Sandbox],
}

/// Samples gathered for one participant.
#[derive(Debug, Default)]
pub struct Samples {
    /// The scenario's metric.
    pub metric: Vec<f64>,
    /// Whole-process wall time.
    pub wall: Vec<f64>,
    /// User CPU.
    pub user: Vec<f64>,
    /// System CPU.
    pub sys: Vec<f64>,
    /// Extra figures by name.
    pub extra: BTreeMap<String, Vec<f64>>,
}

impl Samples {
    /// Adds one round.
    pub fn push(&mut self, metric: f64, run: &Run) {
        self.metric.push(metric);
        self.wall.push(run.wall.as_nanos() as f64);
        self.user.push(run.user.as_nanos() as f64);
        self.sys.push(run.sys.as_nanos() as f64);
    }
}

/// A row in the making: its wrapped command, then its samples or the
/// reason it dropped out.
pub struct Slot {
    /// The sandbox's name.
    pub name: String,
    /// The wrapped command (empty when wrapping failed).
    pub command: Vec<String>,
    /// Notes on equivalence.
    pub notes: Vec<String>,
    /// Samples so far, or why it is out.
    pub state: Result<Samples, String>,
}

impl Slot {
    /// A slot for `sandbox`, with the wrapped command or why there is none.
    pub fn new(sandbox: &Sandbox, wrapped: Result<&Wrapped, String>) -> Self {
        match wrapped {
            Ok(w) => Self {
                name: sandbox.name.clone(),
                command: w
                    .argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                notes: w.notes.clone(),
                state: Ok(Samples::default()),
            },
            Err(reason) => Self {
                name: sandbox.name.clone(),
                command: Vec::new(),
                notes: Vec::new(),
                state: Err(reason),
            },
        }
    }

    /// Still taking part.
    pub fn live(&self) -> bool {
        self.state.is_ok()
    }
}

/// The order of round `round` over `n` participants: forward on even rounds,
/// backward on odd ones, so a steady drift in machine speed favours nobody.
pub fn round_order(round: usize, n: usize) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    }
}

/// Turns the slots (bare first) into the scenario's record.
pub fn finish(sc: &Scenario, metric: &str, slots: Vec<Slot>, rounds: usize) -> ScenarioRecord {
    let bare: Vec<f64> = match slots.first().map(|s| &s.state) {
        Some(Ok(s)) => s.metric.clone(),
        _ => Vec::new(),
    };
    let rows = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| {
            let outcome = match slot.state {
                Ok(s) => match Summary::of(&s.metric) {
                    Some(summary) => {
                        let ratios = if i == 0 {
                            Vec::new()
                        } else {
                            paired_ratios(&bare, &s.metric)
                        };
                        Outcome::Measured(Measured {
                            ratio: Summary::of(&ratios),
                            ratios,
                            summary,
                            samples_ns: s.metric,
                            wall_ns: s.wall,
                            user_ns: s.user,
                            sys_ns: s.sys,
                            extra: s.extra,
                        })
                    }
                    None => Outcome::Unavailable {
                        reason: "no samples".to_owned(),
                    },
                },
                Err(reason) => Outcome::Unavailable { reason },
            };
            Row {
                sandbox: slot.name,
                command: slot.command,
                notes: slot.notes,
                outcome,
            }
        })
        .collect();
    ScenarioRecord {
        name: sc.name.to_owned(),
        title: sc.title.clone(),
        metric: metric.to_owned(),
        rounds,
        skipped: None,
        rows,
    }
}

/// A scenario that did not run at all.
pub fn skipped(sc: &Scenario, metric: &str, reason: String) -> ScenarioRecord {
    ScenarioRecord {
        name: sc.name.to_owned(),
        title: sc.title.clone(),
        metric: metric.to_owned(),
        rounds: 0,
        skipped: Some(reason),
        rows: Vec::new(),
    }
}

/// Progress on stderr, overwritten in place (only on a terminal: a log
/// gets the scenario lines, not every round).
pub fn progress(msg: &str) {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2K  {msg}");
        let _ = err.flush();
    }
}

/// Ends a progress line.
pub fn progress_done() {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// Runs a process scenario.
pub fn process(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    argv: &[OsString],
    metric: Metric,
    iterations: Option<u64>,
    probe: Option<&[OsString]>,
    rounds: usize,
) -> ScenarioRecord {
    let cwd = &ctx.stage.root;
    let tmp = &ctx.stage.tmp;
    if let Some(uid) = sc.run_as {
        let me = sys::euid();
        if me != 0 && me != uid {
            return skipped(
                sc,
                metric.name(),
                format!(
                    "runs as uid {uid}: the bench must run as root to switch (it runs as uid {me})"
                ),
            );
        }
    }
    let sample = |run: &Run| -> Result<f64, String> {
        if !run.success() {
            return Err(run.failure());
        }
        match metric {
            Metric::Wall => Ok(run.wall.as_nanos() as f64),
            Metric::Loop => parse_loop_line(&run.stdout, iterations),
        }
    };
    let once = |argv: &[OsString]| -> Result<(f64, Run), String> {
        let run = ctx.runner.run_as(argv, cwd, sc.timeout, sc.run_as)?;
        let value = sample(&run)?;
        Ok((value, run))
    };

    // Wrap and validate: a sandbox that cannot run the workload correctly
    // (or, for the deny scenario, leaves the denied path open) is not timed.
    let mut slots = Vec::new();
    let mut commands: Vec<Vec<OsString>> = Vec::new();
    for sandbox in ctx.sandboxes {
        // The spawning helper differs from landlock-exec only in its start.
        let start_up_only = matches!(sandbox.kind, Kind::LandlockSpawn | Kind::KernelFloor);
        if start_up_only && !matches!(metric, Metric::Wall) {
            continue;
        }
        let wrapped = sandbox.wrap(&sc.rules, cwd, tmp, argv);
        let mut slot = Slot::new(sandbox, wrapped.as_ref().map_err(Clone::clone));
        if let Ok(w) = &wrapped {
            progress(&format!("{}: checking {}", sc.name, sandbox.name));
            if let (Some(probe), true) = (probe, w.enforces_deny)
                && let Ok(p) = sandbox.wrap(&sc.rules, cwd, tmp, probe)
            {
                let checked = ctx
                    .runner
                    .run_as(&p.argv, cwd, sc.timeout, sc.run_as)
                    .and_then(|run| {
                        if run.success() {
                            Ok(())
                        } else {
                            Err(run.failure())
                        }
                    });
                if let Err(e) = checked {
                    slot.state = Err(format!("deny check failed: {e}"));
                }
            }
            if slot.live()
                && let Err(e) = once(&w.argv)
            {
                slot.state = Err(e);
            }
        }
        commands.push(wrapped.map(|w| w.argv).unwrap_or_default());
        slots.push(slot);
    }
    progress_done();
    if let Some(Err(reason)) = slots.first().map(|s| &s.state) {
        return skipped(
            sc,
            metric.name(),
            format!("the workload fails bare: {reason}"),
        );
    }

    for phase in [("warm-up", sc.warmup, false), ("round", rounds, true)] {
        let (label, count, timed) = phase;
        for round in 0..count {
            progress(&format!("{}: {label} {}/{count}", sc.name, round + 1));
            for i in round_order(round, slots.len()) {
                if !slots[i].live() {
                    continue;
                }
                let result = once(&commands[i]);
                match (result, &mut slots[i].state) {
                    (Ok((value, run)), Ok(samples)) => {
                        if timed {
                            samples.push(value, &run);
                        }
                    }
                    (Err(e), state) => {
                        *state = Err(format!("failed in {label} {}: {e}", round + 1));
                    }
                    (Ok(_), Err(_)) => {}
                }
            }
            if !slots[0].live() {
                progress_done();
                let reason = slots[0].state.as_ref().err().cloned().unwrap_or_default();
                return skipped(sc, metric.name(), format!("bare run failed: {reason}"));
            }
        }
    }
    progress_done();
    finish(sc, metric.name(), slots, rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_direction() {
        assert_eq!(round_order(0, 3), [0, 1, 2]);
        assert_eq!(round_order(1, 3), [2, 1, 0]);
        assert_eq!(round_order(2, 3), [0, 1, 2]);
        assert!(round_order(0, 0).is_empty());
    }
}
