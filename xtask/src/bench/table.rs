//! The terminal table (also used, as Markdown, in docs/benchmarks.md).

use super::record::{Outcome, Record};
use super::stats::Summary;

/// A duration in nanoseconds with a readable unit.
pub fn duration(ns: f64) -> String {
    if ns == 0.0 {
        return "0".to_owned();
    }
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

fn ratio(r: Option<&Summary>) -> String {
    match r {
        Some(r) => format!("{:.2}x [{:.2}-{:.2}]", r.median, r.min, r.max),
        None => "1.00x".to_owned(),
    }
}

fn median(v: &[f64]) -> String {
    Summary::of(v).map_or_else(|| "-".to_owned(), |s| duration(s.median))
}

/// The record as a terminal table.
pub fn render(record: &Record) -> String {
    let mut out = format!(
        "sandlock bench ({} mode) — {} — commit {}{} — kernel {} — {} ({} CPUs)\n",
        record.mode,
        record.timestamp,
        short(&record.commit),
        if record.dirty { "+dirty" } else { "" },
        record.kernel,
        record.cpu,
        record.cpus
    );
    // A reason already printed for a sandbox is not repeated in full.
    let mut said: Vec<(&str, &str, &str)> = Vec::new();
    for sc in &record.scenarios {
        out.push_str(&format!("\n== {} — {}\n", sc.name, sc.title));
        if let Some(reason) = &sc.skipped {
            out.push_str(&format!("   skipped: {reason}\n"));
            continue;
        }
        if sc.name == "notify" {
            for c in record
                .criterion
                .iter()
                .filter(|c| c.id.starts_with("notify"))
            {
                out.push_str(&format!(
                    "   {:<34} {:>10}{}\n",
                    c.id,
                    duration(c.median_ns),
                    c.ratio_to_bare
                        .map(|r| format!("  {r:.2}x bare"))
                        .unwrap_or_default()
                ));
            }
            continue;
        }
        out.push_str(&format!(
            "   {:<20} {:>10} {:>10} {:>10}  {:<20} {:>9} {:>9}   ({} time, {} rounds)\n",
            "sandbox",
            "median",
            "min",
            "max",
            "ratio [min-max]",
            "user",
            "sys",
            sc.metric,
            sc.rounds
        ));
        for row in &sc.rows {
            match &row.outcome {
                Outcome::Measured(m) => {
                    out.push_str(&format!(
                        "   {:<20} {:>10} {:>10} {:>10}  {:<20} {:>9} {:>9}\n",
                        row.sandbox,
                        duration(m.summary.median),
                        duration(m.summary.min),
                        duration(m.summary.max),
                        ratio(m.ratio.as_ref()),
                        median(&m.user_ns),
                        median(&m.sys_ns),
                    ));
                    for (name, values) in &m.extra {
                        if let Some(s) = Summary::of(values) {
                            out.push_str(&format!(
                                "   {:<20} {name}: {:.0} (median)\n",
                                "", s.median
                            ));
                        }
                    }
                    for note in &row.notes {
                        out.push_str(&format!("   {:<20} note: {note}\n", ""));
                    }
                }
                Outcome::Unavailable { reason } => {
                    match said
                        .iter()
                        .find(|(s, r, _)| *s == row.sandbox && *r == reason)
                    {
                        Some((_, _, first)) => out.push_str(&format!(
                            "   {:<20} unavailable (as in {first})\n",
                            row.sandbox
                        )),
                        None => {
                            out.push_str(&format!(
                                "   {:<20} unavailable: {reason}\n",
                                row.sandbox
                            ));
                            said.push((&row.sandbox, reason, &sc.name));
                        }
                    }
                }
            }
        }
    }
    let others: Vec<_> = record
        .criterion
        .iter()
        .filter(|c| !c.id.starts_with("notify"))
        .collect();
    if !others.is_empty() {
        out.push_str("\n== criterion (sandlock-benches)\n");
        for c in others {
            out.push_str(&format!(
                "   {:<34} {:>10}{}\n",
                c.id,
                duration(c.median_ns),
                c.ratio_to_bare
                    .map(|r| format!("  {r:.2}x bare"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// The record as a Markdown table: a row per scenario, a column per
/// sandbox holding the median ratio to bare (bare holds its median time);
/// unavailable cells point to a numbered reason below the table.
pub fn markdown(record: &Record) -> String {
    let mut sandboxes: Vec<&str> = Vec::new();
    for sc in &record.scenarios {
        for row in &sc.rows {
            if !sandboxes.contains(&row.sandbox.as_str()) {
                sandboxes.push(&row.sandbox);
            }
        }
    }
    let mut reasons: Vec<String> = Vec::new();
    let mut cite = |reason: String| -> String {
        let n = match reasons.iter().position(|r| *r == reason) {
            Some(i) => i + 1,
            None => {
                reasons.push(reason);
                reasons.len()
            }
        };
        format!("n/a ({n})")
    };
    let mut out = format!("| scenario | {} |\n|---|", sandboxes.join(" | "));
    out.push_str(&"---:|".repeat(sandboxes.len()));
    out.push('\n');
    for sc in &record.scenarios {
        out.push_str(&format!("| {} |", sc.name));
        for name in &sandboxes {
            let cell = match (&sc.skipped, sc.rows.iter().find(|r| r.sandbox == *name)) {
                (Some(reason), _) => cite(format!("{}: {reason}", sc.name)),
                (None, None) => String::new(),
                (None, Some(row)) => match &row.outcome {
                    Outcome::Measured(m) => match m.ratio {
                        Some(r) => format!("{:.2}x", r.median),
                        None => duration(m.summary.median),
                    },
                    Outcome::Unavailable { reason } => cite(format!("{}: {reason}", row.sandbox)),
                },
            };
            out.push_str(&format!(" {} |", cell.replace('|', "\\|")));
        }
        out.push('\n');
    }
    if !reasons.is_empty() {
        out.push('\n');
        for (i, r) in reasons.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", i + 1, r.replace('|', "\\|")));
        }
    }
    out
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::super::record::testdata::sample_record;
    use super::*;

    #[test]
    fn units() {
        assert_eq!(duration(0.0), "0");
        assert_eq!(duration(612.0), "612 ns");
        assert_eq!(duration(1_500.0), "1.50 µs");
        assert_eq!(duration(612_000.0), "612 µs");
        assert_eq!(duration(3_100_000.0), "3.10 ms");
        assert_eq!(duration(291_258_989.0), "291 ms");
        assert_eq!(duration(12_300_000_000.0), "12.3 s");
    }

    #[test]
    fn every_row_appears_with_its_ratio_or_reason() {
        let r = sample_record(1_700_000_000, "full", 1.25);
        let t = render(&r);
        assert!(t.contains("1.25x [1.25-1.25]"), "{t}");
        assert!(t.contains("unavailable: not installed"), "{t}");
        // A second scenario with the same reason refers to the first.
        let mut twice = r.clone();
        let mut again = twice.scenarios[0].clone();
        again.name = "fork".to_owned();
        twice.scenarios.push(again);
        let t = render(&twice);
        assert_eq!(t.matches("unavailable: not installed").count(), 1, "{t}");
        assert!(t.contains("unavailable (as in open)"), "{t}");
        let md = markdown(&r);
        assert!(
            md.starts_with("| scenario | bare | sandlock | syd |\n|---|---:|---:|---:|\n"),
            "{md}"
        );
        assert!(md.contains("| open | 105 ns | 1.25x | n/a (1) |"), "{md}");
        assert!(md.contains("1. syd: not installed"), "{md}");
    }
}
