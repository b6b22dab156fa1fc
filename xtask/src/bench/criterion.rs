//! Running sandlock-benches' criterion benches and folding their medians in
//! (from criterion's `target/criterion/**/new/{benchmark,estimates}.json`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use super::record::CriterionResult;
use crate::workspace;

/// Runs `cargo bench -p sandlock-benches` (one bench, or all) and returns the
/// medians of every benchmark it updated.
pub fn run(bench: Option<&str>, quick: bool) -> Result<Vec<CriterionResult>, String> {
    let dir = workspace::root().join("benches/benches");
    if let Some(name) = bench {
        let file = dir.join(format!("{name}.rs"));
        if !file.is_file() {
            return Err(format!(
                "the criterion bench `{name}` of sandlock-benches does not exist yet ({} missing)",
                file.display()
            ));
        }
    } else if !dir.is_dir() {
        return Err(format!(
            "sandlock-benches has no criterion benches yet ({} missing)",
            dir.display()
        ));
    }
    let start = SystemTime::now();
    let mut cmd = workspace::cargo();
    cmd.args(["bench", "-p", "sandlock-benches"]);
    match bench {
        Some(name) => cmd.args(["--bench", name]),
        None => cmd.arg("--benches"),
    };
    cmd.args(["--", "--noplot"]);
    if quick {
        cmd.args(["--warm-up-time", "0.5", "--measurement-time", "1"]);
    }
    workspace::run_echo(&mut cmd)?;
    let results = collect(&workspace::target_dir().join("criterion"), start)?;
    if results.is_empty() {
        return Err("criterion ran but wrote no estimates".to_owned());
    }
    Ok(results)
}

#[derive(Deserialize)]
struct Benchmark {
    group_id: String,
    function_id: Option<String>,
    full_id: String,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// Reads every `new/` estimate under `root` written at or after `since`.
pub fn collect(root: &Path, since: SystemTime) -> Result<Vec<CriterionResult>, String> {
    let mut found = Vec::new();
    let mut dirs = Vec::new();
    find_new_dirs(root, &mut dirs);
    for dir in dirs {
        let est = dir.join("estimates.json");
        let fresh = est
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if !fresh {
            continue;
        }
        let bench: Benchmark = read_json(&dir.join("benchmark.json"))?;
        let e: Estimates = read_json(&est)?;
        found.push((bench, e));
    }
    let mut results: Vec<CriterionResult> = found
        .iter()
        .map(|(b, e)| {
            let bare = found.iter().find(|(o, _)| {
                o.group_id == b.group_id
                    && o.full_id != b.full_id
                    && o.function_id.as_deref().is_some_and(|f| f.contains("bare"))
            });
            let is_bare = b.function_id.as_deref().is_some_and(|f| f.contains("bare"));
            CriterionResult {
                id: b.full_id.clone(),
                median_ns: e.median.point_estimate,
                lower_ns: e.median.confidence_interval.lower_bound,
                upper_ns: e.median.confidence_interval.upper_bound,
                ratio_to_bare: match bare {
                    Some((_, be)) if !is_bare && be.median.point_estimate > 0.0 => {
                        Some(e.median.point_estimate / be.median.point_estimate)
                    }
                    _ => None,
                },
            }
        })
        .collect();
    results.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(results)
}

fn find_new_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if path.join("estimates.json").is_file() && path.join("benchmark.json").is_file() {
                out.push(path);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            find_new_dirs(&path, out);
        }
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bench(root: &Path, group: &str, function: &str, median: f64) {
        let dir = root.join(group).join(function).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("benchmark.json"),
            format!(
                r#"{{"group_id":"{group}","function_id":"{function}","value_str":null,"throughput":null,"full_id":"{group}/{function}","directory_name":"{group}/{function}","title":"{group}/{function}"}}"#
            ),
        )
        .unwrap();
        let est = |v: f64| {
            format!(
                r#"{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{},"upper_bound":{}}},"point_estimate":{v},"standard_error":1.0}}"#,
                v - 1.0,
                v + 1.0
            )
        };
        std::fs::write(
            dir.join("estimates.json"),
            format!(
                r#"{{"mean":{},"median":{},"median_abs_dev":{},"slope":null,"std_dev":{}}}"#,
                est(median + 5.0),
                est(median),
                est(1.0),
                est(2.0)
            ),
        )
        .unwrap();
    }

    #[test]
    fn reads_medians_and_ratios_to_a_bare_sibling() {
        let root = std::env::temp_dir().join(format!("xtask-criterion-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let before = SystemTime::now() - std::time::Duration::from_secs(1);
        write_bench(&root, "notify", "bare_getppid", 100.0);
        write_bench(&root, "notify", "notified_getppid", 2500.0);
        write_bench(&root, "bpf", "eval", 40.0);
        let r = collect(&root, before).unwrap();
        assert_eq!(r.len(), 3);
        let notified = r
            .iter()
            .find(|c| c.id == "notify/notified_getppid")
            .unwrap();
        assert_eq!(notified.median_ns, 2500.0);
        assert_eq!(notified.lower_ns, 2499.0);
        assert_eq!(notified.ratio_to_bare, Some(25.0));
        assert_eq!(
            r.iter()
                .find(|c| c.id == "notify/bare_getppid")
                .unwrap()
                .ratio_to_bare,
            None
        );
        assert_eq!(
            r.iter().find(|c| c.id == "bpf/eval").unwrap().ratio_to_bare,
            None
        );
        // Nothing newer than "now + 1 min": stale results are not folded in.
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(collect(&root, later).unwrap().is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
