//! `--compare`: how each ratio moved since the previous record.

use super::record::{Outcome, Record};

/// The rows whose change can fail `--compare`: ours. A comparison sandbox
/// (or Landlock alone) getting slower or going missing is the machine's or
/// its authors' business: it is shown, marked, and does not fail the run.
const OURS: &[&str] = &["sandlock"];

/// How one row changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Both records measured it: median ratios before and after.
    Ratio {
        /// Median ratio to bare in the previous record.
        old: f64,
        /// Median ratio to bare now.
        new: f64,
    },
    /// It ran before and is unavailable now.
    Lost {
        /// Why it is unavailable now.
        reason: String,
    },
    /// It was unavailable (or absent) before and ran now.
    Gained {
        /// Median ratio to bare now.
        new: f64,
    },
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Scenario name, or `criterion`.
    pub scenario: String,
    /// Sandbox name, or the criterion id.
    pub sandbox: String,
    /// What changed.
    pub change: Change,
    /// Worse by more than the threshold (or lost).
    pub worse: bool,
    /// `worse`, on one of our rows: fails `--compare`.
    pub regression: bool,
}

impl Line {
    /// Relative change of the ratio (`+0.12` = 12 % worse), when both exist.
    pub fn relative(&self) -> Option<f64> {
        match self.change {
            Change::Ratio { old, new } if old > 0.0 => Some(new / old - 1.0),
            _ => None,
        }
    }
}

/// Compares `new` with `old`; `threshold` is a fraction (0.10 = 10 %).
pub fn compare(old: &Record, new: &Record, threshold: f64) -> Vec<Line> {
    let mut lines = Vec::new();
    for scenario in &new.scenarios {
        for row in &scenario.rows {
            let now = match &row.outcome {
                Outcome::Measured(m) => m.ratio.map(|r| r.median),
                Outcome::Unavailable { .. } => None,
            };
            let before = old
                .row(&scenario.name, &row.sandbox)
                .and_then(|r| match &r.outcome {
                    Outcome::Measured(m) => m.ratio.map(|r| r.median),
                    Outcome::Unavailable { .. } => None,
                });
            let change = match (before, now, &row.outcome) {
                (Some(old), Some(new), _) => Change::Ratio { old, new },
                (None, Some(new), _) => Change::Gained { new },
                (Some(_), None, Outcome::Unavailable { reason }) => Change::Lost {
                    reason: reason.clone(),
                },
                _ => continue,
            };
            let ours = OURS.contains(&row.sandbox.as_str());
            lines.push(line(&scenario.name, &row.sandbox, change, threshold, ours));
        }
    }
    for c in &new.criterion {
        let Some(new_ratio) = c.ratio_to_bare else {
            continue;
        };
        let before = old
            .criterion
            .iter()
            .find(|o| o.id == c.id)
            .and_then(|o| o.ratio_to_bare);
        let change = match before {
            Some(old) => Change::Ratio {
                old,
                new: new_ratio,
            },
            None => Change::Gained { new: new_ratio },
        };
        lines.push(line("criterion", &c.id, change, threshold, true));
    }
    lines
}

fn line(scenario: &str, sandbox: &str, change: Change, threshold: f64, ours: bool) -> Line {
    let worse = match &change {
        Change::Ratio { old, new } => *old > 0.0 && new / old - 1.0 > threshold,
        Change::Lost { .. } => true,
        Change::Gained { .. } => false,
    };
    Line {
        scenario: scenario.to_owned(),
        sandbox: sandbox.to_owned(),
        change,
        worse,
        regression: worse && ours,
    }
}

/// The comparison as text, one line per row, regressions marked.
pub fn render(lines: &[Line], threshold: f64) -> String {
    let mut out = format!(
        "{:<14} {:<22} {:>8} {:>8} {:>8}\n",
        "scenario", "sandbox", "before", "now", "change"
    );
    for l in lines {
        let mark = if l.regression {
            format!("  REGRESSION (> {:.0}%)", threshold * 100.0)
        } else if l.worse {
            "  worse (not ours: does not fail)".to_owned()
        } else {
            String::new()
        };
        let body = match &l.change {
            Change::Ratio { old, new } => format!(
                "{:>7.2}x {:>7.2}x {:>+7.1}%",
                old,
                new,
                l.relative().unwrap_or(0.0) * 100.0
            ),
            Change::Gained { new } => format!("{:>8} {:>7.2}x {:>8}", "-", new, "new"),
            Change::Lost { reason } => format!("lost: {reason}"),
        };
        out.push_str(&format!(
            "{:<14} {:<22} {body}{mark}\n",
            l.scenario, l.sandbox
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::record::testdata::sample_record;
    use super::super::record::{CriterionResult, Outcome, Record};
    use super::*;

    #[test]
    fn worse_by_more_than_the_threshold_is_a_regression() {
        let old = sample_record(1, "full", 1.20);
        let new = sample_record(2, "full", 1.35);
        let lines = compare(&old, &new, 0.10);
        let l = lines.iter().find(|l| l.sandbox == "sandlock").unwrap();
        assert_eq!(
            l.change,
            Change::Ratio {
                old: 1.20,
                new: 1.35
            }
        );
        assert!((l.relative().unwrap() - 0.125).abs() < 1e-9);
        assert!(l.regression);
        // A looser threshold lets it pass.
        assert!(!compare(&old, &new, 0.15).iter().any(|l| l.regression));
    }

    #[test]
    fn within_threshold_or_better_is_not() {
        let old = sample_record(1, "full", 1.20);
        assert!(
            !compare(&old, &sample_record(2, "full", 1.30), 0.10)
                .iter()
                .any(|l| l.regression)
        );
        assert!(
            !compare(&old, &sample_record(2, "full", 0.90), 0.10)
                .iter()
                .any(|l| l.regression)
        );
    }

    #[test]
    fn bare_and_unavailable_rows_produce_no_ratio_line() {
        let lines = compare(
            &sample_record(1, "full", 1.0),
            &sample_record(2, "full", 1.0),
            0.1,
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].sandbox, "sandlock");
    }

    #[test]
    fn losing_our_row_is_a_regression_losing_a_peer_is_not() {
        let old = sample_record(1, "full", 1.2);
        let mut new = sample_record(2, "full", 1.2);
        for row in &mut new.scenarios[0].rows {
            if row.sandbox == "sandlock" {
                row.outcome = Outcome::Unavailable {
                    reason: "exit 125".to_owned(),
                };
            }
        }
        let lines = compare(&old, &new, 0.1);
        assert!(matches!(&lines[0].change, Change::Lost { reason } if reason == "exit 125"));
        assert!(lines[0].regression);

        // syd gained: reported, not a regression; then lost: not ours.
        let mut gained = sample_record(3, "full", 1.2);
        let mut syd = gained.scenarios[0].rows[1].clone();
        syd.sandbox = "syd".to_owned();
        gained.scenarios[0].rows[2] = syd;
        let lines = compare(&old, &gained, 0.1);
        assert!(
            lines
                .iter()
                .any(|l| l.sandbox == "syd" && l.change == Change::Gained { new: 1.2 })
        );
        let lines = compare(&gained, &old, 0.1);
        let syd = lines.iter().find(|l| l.sandbox == "syd").unwrap();
        assert!(matches!(syd.change, Change::Lost { .. }) && syd.worse && !syd.regression);
    }

    #[test]
    fn a_peer_getting_slower_is_shown_but_does_not_fail() {
        let rename = |mut r: Record| {
            r.scenarios[0].rows[1].sandbox = "bwrap".to_owned();
            r
        };
        let old = rename(sample_record(1, "full", 1.0));
        let new = rename(sample_record(2, "full", 2.0));
        let lines = compare(&old, &new, 0.1);
        assert!(lines[0].worse && !lines[0].regression);
        assert!(render(&lines, 0.1).contains("not ours"));
    }

    #[test]
    fn criterion_ratios_are_compared() {
        let crit = |r: f64| CriterionResult {
            id: "notify/roundtrip".to_owned(),
            median_ns: 1000.0 * r,
            lower_ns: 0.0,
            upper_ns: 0.0,
            ratio_to_bare: Some(r),
        };
        let mut old = sample_record(1, "full", 1.0);
        old.criterion.push(crit(10.0));
        let mut new = sample_record(2, "full", 1.0);
        new.criterion.push(crit(12.0));
        let lines = compare(&old, &new, 0.1);
        let l = lines.iter().find(|l| l.scenario == "criterion").unwrap();
        assert!(l.regression);
        assert!(render(&lines, 0.1).contains("REGRESSION"));
    }
}
