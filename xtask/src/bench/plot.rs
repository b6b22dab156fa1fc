//! `--plot`: an SVG of each scenario's ratio history, drawn by hand (a few
//! polylines do not need a plotting library).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::record::{Outcome, Record};

const PANEL_W: f64 = 560.0;
const PANEL_H: f64 = 250.0;
const MARGIN_L: f64 = 50.0;
const MARGIN_R: f64 = 190.0;
const MARGIN_T: f64 = 30.0;
const MARGIN_B: f64 = 35.0;
const COLUMNS: usize = 2;
const PALETTE: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

/// One line of a panel: (record index, median ratio) points.
type Series = BTreeMap<String, Vec<(usize, f64)>>;

/// Median ratios per scenario and sandbox across `records` (oldest first).
pub fn history(records: &[Record]) -> Vec<(String, Series)> {
    let mut panels: Vec<(String, Series)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        for sc in &r.scenarios {
            let idx = match panels.iter().position(|(n, _)| *n == sc.name) {
                Some(idx) => idx,
                None => {
                    panels.push((sc.name.clone(), Series::new()));
                    panels.len() - 1
                }
            };
            for row in &sc.rows {
                if let Outcome::Measured(m) = &row.outcome
                    && let Some(ratio) = m.ratio
                {
                    panels[idx]
                        .1
                        .entry(row.sandbox.clone())
                        .or_default()
                        .push((i, ratio.median));
                }
            }
        }
    }
    panels.retain(|(_, s)| !s.is_empty());
    panels
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document for `records` (oldest first).
pub fn svg(records: &[Record]) -> String {
    let panels = history(records);
    let rows = panels.len().div_ceil(COLUMNS).max(1);
    let width = PANEL_W * COLUMNS as f64;
    let height = PANEL_H * rows as f64 + 30.0;
    let mut sandboxes: Vec<&String> = panels.iter().flat_map(|(_, s)| s.keys()).collect();
    sandboxes.sort();
    sandboxes.dedup();
    let color = |name: &str| {
        let i = sandboxes.iter().position(|s| *s == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let n = records.len().max(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let span = match (records.first(), records.last()) {
        (Some(a), Some(b)) => format!(
            "{} to {}, {} records",
            a.timestamp,
            b.timestamp,
            records.len()
        ),
        _ => "no records".to_owned(),
    };
    let _ = writeln!(
        out,
        r#"<text x="10" y="18" font-size="13">sandlock bench: ratio to bare (median) per record, {}</text>"#,
        escape(&span)
    );
    if panels.is_empty() {
        let _ = writeln!(out, r#"<text x="10" y="50">no measured ratios yet</text>"#);
    }
    for (p, (name, series)) in panels.iter().enumerate() {
        let ox = (p % COLUMNS) as f64 * PANEL_W;
        let oy = 30.0 + (p / COLUMNS) as f64 * PANEL_H;
        let (x0, y0) = (ox + MARGIN_L, oy + MARGIN_T);
        let (w, h) = (PANEL_W - MARGIN_L - MARGIN_R, PANEL_H - MARGIN_T - MARGIN_B);
        let top = series
            .values()
            .flatten()
            .map(|(_, r)| *r)
            .fold(1.5_f64, f64::max)
            * 1.1;
        let x = |i: usize| {
            if n == 1 {
                x0 + w / 2.0
            } else {
                x0 + w * i as f64 / (n - 1) as f64
            }
        };
        let y = |r: f64| y0 + h - h * (r / top).clamp(0.0, 1.0);
        let _ = writeln!(
            out,
            r#"<text x="{x0}" y="{}" font-weight="bold">{}</text>"#,
            oy + 18.0,
            escape(name)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##
        );
        for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let r = top * tick;
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{r:.1}x</text>"##,
                x0 - 4.0,
                y(r) + 4.0
            );
        }
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" x2="{}" y1="{y1}" y2="{y1}" stroke="#000" stroke-dasharray="4 3"/>"##,
            x0 + w,
            y1 = y(1.0)
        );
        let _ = writeln!(
            out,
            r##"<text x="{x0}" y="{}" fill="#555">oldest</text><text x="{}" y="{}" text-anchor="end" fill="#555">newest</text>"##,
            y0 + h + 14.0,
            x0 + w,
            y0 + h + 14.0
        );
        for (k, (sandbox, points)) in series.iter().enumerate() {
            let c = color(sandbox);
            let pts: Vec<String> = points
                .iter()
                .map(|(i, r)| format!("{:.1},{:.1}", x(*i), y(*r)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5"/>"#,
                pts.join(" ")
            );
            for (i, r) in points {
                let rec = &records[*i];
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"><title>{} {}: {r:.2}x ({} {})</title></circle>"#,
                    x(*i),
                    y(*r),
                    escape(name),
                    escape(sandbox),
                    escape(&rec.timestamp),
                    escape(rec.commit.get(..10).unwrap_or(&rec.commit))
                );
            }
            let ly = y0 + 12.0 + 14.0 * k as f64;
            let last = points.last().map(|p| p.1).unwrap_or(0.0);
            let _ = writeln!(
                out,
                r#"<rect x="{}" y="{}" width="10" height="3" fill="{c}"/><text x="{}" y="{}">{} {last:.2}x</text>"#,
                x0 + w + 8.0,
                ly - 4.0,
                x0 + w + 22.0,
                ly,
                escape(sandbox)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::record::testdata::sample_record;
    use super::*;

    #[test]
    fn one_line_per_measured_sandbox() {
        let records = [
            sample_record(1, "full", 1.2),
            sample_record(2, "full", 1.4),
            sample_record(3, "full", 1.3),
        ];
        let h = history(&records);
        assert_eq!(h.len(), 1);
        let (name, series) = &h[0];
        assert_eq!(name, "open");
        // bare has no ratio; syd is unavailable: only sandlock is drawn.
        assert_eq!(series.keys().collect::<Vec<_>>(), ["sandlock"]);
        assert_eq!(series["sandlock"], [(0, 1.2), (1, 1.4), (2, 1.3)]);

        let doc = svg(&records);
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<polyline").count(), 1);
        assert_eq!(doc.matches("<circle").count(), 3);
        assert!(doc.contains("sandlock 1.30x"));
    }

    #[test]
    fn empty_history_still_renders() {
        let doc = svg(&[]);
        assert!(doc.contains("no measured ratios yet"));
    }
}
