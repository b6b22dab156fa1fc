//! The performance record: one JSON file per run in `target/bench/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::stats::Summary;

/// Version of the record layout; bump when a field changes meaning.
pub const SCHEMA: u32 = 1;

/// One `cargo xtask bench` run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// [`SCHEMA`] at the time of writing.
    pub schema: u32,
    /// UTC, RFC 3339 (`2026-11-28T17:00:19Z`).
    pub timestamp: String,
    /// Seconds since the epoch, for ordering.
    pub unix_time: u64,
    /// `full` or `quick`: only records of the same mode are compared.
    pub mode: String,
    /// `git rev-parse HEAD`.
    pub commit: String,
    /// Uncommitted changes were present.
    pub dirty: bool,
    /// `uname -r`.
    pub kernel: String,
    /// CPU model name.
    pub cpu: String,
    /// CPUs available to the process.
    pub cpus: usize,
    /// Versions of the comparison sandboxes and servers found.
    pub tools: BTreeMap<String, String>,
    /// The scenarios, in the order they ran.
    pub scenarios: Vec<ScenarioRecord>,
    /// Criterion medians folded in (`--criterion`, and the `notify` scenario).
    pub criterion: Vec<CriterionResult>,
}

/// One scenario: a row per sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioRecord {
    /// Short name (`--scenario NAME`).
    pub name: String,
    /// What it does, with its parameters.
    pub title: String,
    /// What a sample is (`wall` time of the process, or the workload's own
    /// `loop` time, or `client` time of a load generator).
    pub metric: String,
    /// Timed rounds (after the warm-up).
    pub rounds: usize,
    /// Why the whole scenario did not run, if it did not.
    pub skipped: Option<String>,
    /// One row per sandbox, bare first.
    pub rows: Vec<Row>,
}

/// One sandbox in one scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// `bare`, `landlock`, `sandlock`, `bwrap`, ...
    pub sandbox: String,
    /// The command that ran (wrapper and workload), for reproduction.
    pub command: Vec<String>,
    /// Where this row is not equivalent to sandlock's policy.
    pub notes: Vec<String>,
    /// Measured, or why not.
    pub outcome: Outcome,
}

/// The result of a row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// It ran every round.
    Measured(Measured),
    /// It could not run the scenario.
    Unavailable {
        /// Why (missing tool, failed validation, failure mid-run).
        reason: String,
    },
}

/// Samples of a measured row, one entry per round.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Measured {
    /// The scenario's metric, nanoseconds.
    pub samples_ns: Vec<f64>,
    /// Wall time of the whole process, nanoseconds.
    pub wall_ns: Vec<f64>,
    /// User CPU time (process and reaped descendants), nanoseconds.
    pub user_ns: Vec<f64>,
    /// System CPU time, nanoseconds.
    pub sys_ns: Vec<f64>,
    /// Summary of `samples_ns`.
    pub summary: Summary,
    /// `samples_ns[i] / bare.samples_ns[i]`, round by round.
    pub ratios: Vec<f64>,
    /// Summary of `ratios` (`None` for bare itself).
    pub ratio: Option<Summary>,
    /// Other per-round figures (e.g. redis requests per second).
    pub extra: BTreeMap<String, Vec<f64>>,
}

/// The median of one criterion benchmark.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CriterionResult {
    /// Criterion's full id (`group/function[/value]`).
    pub id: String,
    /// Median estimate, nanoseconds.
    pub median_ns: f64,
    /// Lower bound of its confidence interval.
    pub lower_ns: f64,
    /// Upper bound of its confidence interval.
    pub upper_ns: f64,
    /// Against a `bare` sibling in the same group, when there is one.
    pub ratio_to_bare: Option<f64>,
}

impl Record {
    /// The row of `sandbox` in scenario `scenario`.
    pub fn row(&self, scenario: &str, sandbox: &str) -> Option<&Row> {
        self.scenarios
            .iter()
            .find(|s| s.name == scenario)?
            .rows
            .iter()
            .find(|r| r.sandbox == sandbox)
    }

    /// Writes the record as `<dir>/<compact timestamp>.json` (never
    /// overwriting) and returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let stem: String = self
            .timestamp
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let mut path = dir.join(format!("{stem}.json"));
        let mut n = 1;
        while path.exists() {
            path = dir.join(format!("{stem}-{n}.json"));
            n += 1;
        }
        let json =
            serde_json::to_string_pretty(self).map_err(|e| format!("encoding record: {e}"))?;
        std::fs::write(&path, json + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Reads one record.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a bench record: {e}", path.display()))
    }
}

/// Every readable record in `dir`, oldest first, with its path. Files that
/// are not records are reported on stderr and skipped.
pub fn load_all(dir: &Path) -> Vec<(PathBuf, Record)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut records: Vec<(PathBuf, Record)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| match Record::load(&p) {
            Ok(r) => Some((p, r)),
            Err(e) => {
                eprintln!("warning: skipping {e}");
                None
            }
        })
        .collect();
    records.sort_by(|a, b| (a.1.unix_time, &a.0).cmp(&(b.1.unix_time, &b.0)));
    records
}

/// The newest record of `mode` among `records` (oldest first), skipping `current`.
pub fn previous<'a>(
    records: &'a [(PathBuf, Record)],
    mode: &str,
    current: Option<&Path>,
) -> Option<&'a (PathBuf, Record)> {
    records
        .iter()
        .rev()
        .filter(|(p, r)| r.mode == mode && Some(p.as_path()) != current)
        .find(|(_, r)| r.schema == SCHEMA)
}

/// What `--compare` compares against: for each scenario, its newest earlier
/// run of `mode` that did not skip it (a run with `--scenario` measures only
/// some); likewise for each criterion id. `None` when there is no earlier
/// record of that mode.
pub fn baseline(records: &[(PathBuf, Record)], mode: &str, current: &Path) -> Option<Record> {
    let mut earlier = records
        .iter()
        .rev()
        .filter(|(p, r)| r.mode == mode && r.schema == SCHEMA && p != current);
    let (_, newest) = earlier.next()?;
    let mut base = newest.clone();
    for (_, r) in earlier {
        for sc in &r.scenarios {
            let known = base
                .scenarios
                .iter()
                .any(|b| b.name == sc.name && b.skipped.is_none());
            if !known && sc.skipped.is_none() {
                base.scenarios.retain(|b| b.name != sc.name);
                base.scenarios.push(sc.clone());
            }
        }
        for c in &r.criterion {
            if !base.criterion.iter().any(|b| b.id == c.id) {
                base.criterion.push(c.clone());
            }
        }
    }
    Some(base)
}

/// RFC 3339 UTC time of `unix` seconds (proleptic Gregorian calendar).
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Year, month, day of the day `days` after 1970-01-01 (Howard Hinnant's
/// well-known days-to-civil arithmetic, restricted to dates after 1970).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
pub mod testdata {
    //! Records for tests of the modules that read them.
    use super::*;

    /// A record with one scenario `open`: bare, sandlock at `ratio`, syd unavailable.
    pub fn sample_record(unix_time: u64, mode: &str, ratio: f64) -> Record {
        let bare = Measured {
            samples_ns: vec![100.0, 110.0],
            wall_ns: vec![100.0, 110.0],
            user_ns: vec![1.0, 1.0],
            sys_ns: vec![2.0, 2.0],
            summary: Summary::of(&[100.0, 110.0]).unwrap(),
            ratios: vec![],
            ratio: None,
            extra: BTreeMap::new(),
        };
        let mut sandboxed = bare.clone();
        sandboxed.ratios = vec![ratio, ratio];
        sandboxed.ratio = Summary::of(&[ratio, ratio]);
        Record {
            schema: SCHEMA,
            timestamp: rfc3339(unix_time),
            unix_time,
            mode: mode.to_owned(),
            commit: "abc".to_owned(),
            dirty: false,
            kernel: "6.18".to_owned(),
            cpu: "cpu".to_owned(),
            cpus: 2,
            tools: BTreeMap::new(),
            scenarios: vec![ScenarioRecord {
                name: "open".to_owned(),
                title: "open loop".to_owned(),
                metric: "loop".to_owned(),
                rounds: 2,
                skipped: None,
                rows: vec![
                    Row {
                        sandbox: "bare".to_owned(),
                        command: vec![],
                        notes: vec![],
                        outcome: Outcome::Measured(bare),
                    },
                    Row {
                        sandbox: "sandlock".to_owned(),
                        command: vec![],
                        notes: vec![],
                        outcome: Outcome::Measured(sandboxed),
                    },
                    Row {
                        sandbox: "syd".to_owned(),
                        command: vec![],
                        notes: vec![],
                        outcome: Outcome::Unavailable {
                            reason: "not installed".to_owned(),
                        },
                    },
                ],
            }],
            criterion: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::sample_record;
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn save_load_roundtrip_and_ordering() {
        let dir = std::env::temp_dir().join(format!("xtask-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = sample_record(1_700_000_000, "full", 1.2);
        let b = sample_record(1_700_000_100, "quick", 1.3);
        let c = sample_record(1_700_000_200, "full", 1.4);
        let pc = c.save(&dir).unwrap();
        let pa = a.save(&dir).unwrap();
        let pa2 = a.save(&dir).unwrap();
        assert_ne!(
            pa, pa2,
            "a second save in the same second must not overwrite"
        );
        b.save(&dir).unwrap();
        std::fs::write(dir.join("junk.json"), "{}").unwrap();
        assert_eq!(Record::load(&pa).unwrap(), a);

        let all = load_all(&dir);
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0].1.unix_time <= w[1].1.unix_time));
        let prev = previous(&all, "full", Some(&pc)).unwrap();
        assert_eq!(prev.1, a);
        assert_eq!(previous(&all, "full", None).unwrap().0, pc);
        assert!(previous(&all, "none", None).is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn baseline_takes_each_scenario_from_its_newest_run() {
        let mut old = sample_record(1, "full", 1.1);
        old.scenarios[0].name = "fork".to_owned();
        let mut open_only = sample_record(2, "full", 1.2);
        let mut skipped = open_only.scenarios[0].clone();
        skipped.name = "fork".to_owned();
        skipped.skipped = Some("bare failed".to_owned());
        skipped.rows.clear();
        open_only.scenarios.push(skipped);
        let quick = sample_record(3, "quick", 9.0);
        let now = sample_record(4, "full", 1.3);
        let records: Vec<(PathBuf, Record)> = [old, open_only, quick, now]
            .into_iter()
            .enumerate()
            .map(|(i, r)| (PathBuf::from(format!("{i}.json")), r))
            .collect();
        let base = baseline(&records, "full", Path::new("3.json")).unwrap();
        assert_eq!(base.unix_time, 2);
        let ratio = |name: &str| match &base.row(name, "sandlock").unwrap().outcome {
            Outcome::Measured(m) => m.ratio.unwrap().median,
            Outcome::Unavailable { .. } => panic!("unavailable"),
        };
        assert_eq!(ratio("open"), 1.2);
        // The skipped fork of record 2 gives way to record 1's measured one.
        assert_eq!(ratio("fork"), 1.1);
        assert!(baseline(&records[..1], "full", Path::new("0.json")).is_none());
    }

    #[test]
    fn unavailable_rows_serialise_with_their_reason() {
        let r = sample_record(0, "full", 1.0);
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""status":"unavailable","reason":"not installed""#),
            "{json}"
        );
        assert!(json.contains(r#""status":"measured""#));
    }
}
