//! Reports on backtests and sweeps: every table built with polars from the alerts, written as
//! CSV, Parquet and JSON, and one self-contained HTML page (inline CSS and SVG plots, no
//! scripts, no network) with the tables and plots people read.
//!
//! This is the only crate that depends on polars, so the engine's edit-test loop does not
//! compile it.

pub mod plot;
mod tables;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use fundwatch_backtest::{Backtest, Sweep};
use polars::prelude::*;

pub use tables::{backtest_tables, sweep_tables, Tables};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("table: {0}")]
    Table(#[from] PolarsError),
    #[error("plot: {0}")]
    Plot(String),
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
}

/// What the report says about where its figures came from.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub input: String,
    pub records_read: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub decode_seconds: f64,
    /// Config A (or the sweep's base): its file, or "built-in defaults".
    pub config_a: String,
    pub config_b: Option<String>,
    pub labels: Option<String>,
    /// The command line that produced the report.
    pub command: String,
    /// When it was produced (RFC 3339).
    pub generated_at: String,
}

/// Files a report wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub html: PathBuf,
    pub tables: Vec<PathBuf>,
}

/// Write every table as `<dir>/tables/<name>.{csv,parquet,json}`.
pub fn write_tables(tables: &Tables, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let tdir = dir.join("tables");
    fs::create_dir_all(&tdir).map_err(|e| ReportError::Write(tdir.display().to_string(), e))?;
    let mut out = Vec::new();
    for (name, df) in &tables.0 {
        let mut df = df.clone();
        let open = |ext: &str| {
            let p = tdir.join(format!("{name}.{ext}"));
            fs::File::create(&p)
                .map(|f| (std::io::BufWriter::new(f), p.clone()))
                .map_err(|e| ReportError::Write(p.display().to_string(), e))
        };
        let (mut f, p) = open("csv")?;
        CsvWriter::new(&mut f).finish(&mut df)?;
        out.push(p);
        let (f, p) = open("parquet")?;
        ParquetWriter::new(f).finish(&mut df)?;
        out.push(p);
        let (mut f, p) = open("json")?;
        JsonWriter::new(&mut f)
            .with_json_format(JsonFormat::Json)
            .finish(&mut df)?;
        out.push(p);
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn cell(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(f) => format!("{f:.3}"),
        AnyValue::Float32(f) => format!("{f:.3}"),
        other => other.to_string(),
    }
}

/// A DataFrame as an HTML table (at most `limit` rows, saying so when cut).
fn html_table(df: &DataFrame, limit: usize) -> String {
    let mut h = String::from("<div class=\"scroll\"><table><thead><tr>");
    for c in df.columns() {
        let _ = write!(h, "<th>{}</th>", esc(c.name()));
    }
    h.push_str("</tr></thead><tbody>");
    let n = df.height().min(limit);
    for i in 0..n {
        h.push_str("<tr>");
        for c in df.columns() {
            let v = c.get(i).map(|v| cell(&v)).unwrap_or_default();
            let class = if matches!(c.dtype(), DataType::String) {
                ""
            } else {
                " class=\"n\""
            };
            let _ = write!(h, "<td{class}>{}</td>", esc(&v));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>");
    if df.height() > n {
        let _ = write!(
            h,
            "<p class=\"note\">First {n} of {} rows; all of them are in the table files.</p>",
            df.height()
        );
    }
    h
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC",sans-serif;margin:24px auto;max-width:1180px;color:#1d2430;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{margin-top:2em;border-bottom:2px solid #e3e7ee;padding-bottom:4px}
.meta{color:#566;font-size:.92em}.meta td{padding:1px 12px 1px 0}
table{border-collapse:collapse;font-size:.88em;margin:8px 0}th,td{border:1px solid #d8dde6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}.note{color:#667;font-size:.85em}
figure{margin:12px 0}figure svg{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{color:#566;font-size:.88em}
code{background:#f2f4f8;padding:1px 4px;border-radius:3px}
"#;

struct Page {
    body: String,
    plots: usize,
}

impl Page {
    fn new(title: &str, meta: &Meta) -> Page {
        let mut body = String::new();
        let _ = write!(body, "<h1>{}</h1>", esc(title));
        body.push_str("<table class=\"meta\">");
        let mut row = |k: &str, v: &str| {
            let _ = write!(body, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        };
        row("stream", &meta.input);
        row(
            "records",
            &format!(
                "{} read, {} accepted, {} rejected (decoded once in {:.2} s)",
                meta.records_read, meta.accepted, meta.rejected, meta.decode_seconds
            ),
        );
        row("config A", &meta.config_a);
        if let Some(b) = &meta.config_b {
            row("config B", b);
        }
        if let Some(l) = &meta.labels {
            row("labels", l);
        }
        row("command", &meta.command);
        row("generated", &meta.generated_at);
        body.push_str("</table>");
        Page { body, plots: 0 }
    }

    fn h2(&mut self, t: &str) {
        let _ = write!(self.body, "<h2>{}</h2>", esc(t));
    }

    fn p(&mut self, t: &str) {
        let _ = write!(self.body, "<p>{}</p>", esc(t));
    }

    fn table(&mut self, df: &DataFrame, limit: usize) {
        self.body.push_str(&html_table(df, limit));
    }

    fn plot(&mut self, chart: &plot::Chart<'_>, caption: &str) -> Result<(), ReportError> {
        if chart.series.iter().all(|s| s.points.is_empty()) {
            return Ok(());
        }
        let svg = plot::line_chart(chart)?;
        self.plots += 1;
        let _ = write!(
            self.body,
            "<figure data-plot=\"{}\">{svg}<figcaption>{}</figcaption></figure>",
            self.plots,
            esc(caption)
        );
        Ok(())
    }

    fn finish(self, title: &str) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head><body data-plots=\"{}\">{}</body></html>\n",
            esc(title),
            self.plots,
            self.body
        )
    }
}

fn write_html(dir: &Path, html: &str) -> Result<PathBuf, ReportError> {
    fs::create_dir_all(dir).map_err(|e| ReportError::Write(dir.display().to_string(), e))?;
    let p = dir.join("report.html");
    fs::write(&p, html).map_err(|e| ReportError::Write(p.display().to_string(), e))?;
    Ok(p)
}

/// A numeric column as f64 (nulls as 0).
fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    let Ok(c) = df.column(name) else {
        return Vec::new();
    };
    (0..c.len())
        .map(|i| c.get(i).ok().and_then(|v| v.extract::<f64>()).unwrap_or(0.0))
        .collect()
}

/// A column's values as text (nulls as "").
pub(crate) fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    let Ok(c) = df.column(name) else {
        return Vec::new();
    };
    (0..c.len())
        .map(|i| match c.get(i) {
            Ok(AnyValue::String(s)) => s.to_owned(),
            Ok(AnyValue::StringOwned(s)) => s.to_string(),
            Ok(AnyValue::Null) | Err(_) => String::new(),
            Ok(v) => v.to_string(),
        })
        .collect()
}

/// Alerts per day, one series per (config, rule) with any alert.
fn daily_plot(page: &mut Page, daily: &DataFrame, configs: &[&str]) -> Result<(), ReportError> {
    let days = strs(daily, "day");
    let mut all_days: Vec<String> = days.clone();
    all_days.sort();
    all_days.dedup();
    let (cfg, rule, n) = (strs(daily, "config"), strs(daily, "rule"), f64s(daily, "alerts"));
    let mut series: Vec<plot::Series> = Vec::new();
    if configs.len() > 1 {
        // Comparing configs: one line of daily totals each (rules are in the tables).
        for c in configs {
            let mut per_day = vec![0.0; all_days.len()];
            for i in (0..days.len()).filter(|&i| cfg[i] == *c) {
                if let Ok(x) = all_days.binary_search(&days[i]) {
                    per_day[x] += n[i];
                }
            }
            series.push(plot::Series {
                name: format!("config {c}: all rules"),
                points: per_day.into_iter().enumerate().map(|(x, y)| (x as f64, y)).collect(),
            });
        }
    } else {
        for r in fundwatch_rules::RuleId::ALL {
            let pts: Vec<(f64, f64)> = (0..days.len())
                .filter(|&i| rule[i] == r.as_str())
                .filter_map(|i| all_days.binary_search(&days[i]).ok().map(|x| (x as f64, n[i])))
                .collect();
            if !pts.is_empty() {
                series.push(plot::Series {
                    name: r.as_str().to_owned(),
                    points: pts,
                });
            }
        }
    }
    let lines = configs.len() > 1;
    page.plot(
        &plot::Chart {
            title: "Alerts per day (Beijing days of the triggering record)",
            x_label: "day",
            y_label: "alerts",
            series,
            y_range: None,
            x_ticks: Some(&all_days),
            lines,
        },
        if lines {
            "Alerts per day under each config."
        } else {
            "Each point is one rule's alerts on one day."
        },
    )
}

/// The backtest report: `dir/report.html` and `dir/tables/*`.
pub fn backtest_report(bt: &Backtest, meta: &Meta, dir: &Path) -> Result<Written, ReportError> {
    let t = backtest_tables(bt)?;
    let tables = write_tables(&t, dir)?;
    let title = if bt.b.is_some() {
        "fundwatch backtest: config A against config B"
    } else {
        "fundwatch backtest"
    };
    let mut page = Page::new(title, meta);
    page.h2("Alerts by rule");
    page.p("Accounts: distinct accounts with at least one alert of the rule. With labels, precision, recall and F1 are per account, as `fundwatch evaluate` scores them.");
    page.table(t.get("rules")?, 100);
    if let (Some(d), Ok(df)) = (&bt.diff, t.get("diff")) {
        page.h2("What changes from A to B");
        page.p(&format!(
            "An alert is the same in both when its rule, account and triggering record match. {} alerts only under A, {} only under B.",
            d.only_a.len(),
            d.only_b.len()
        ));
        page.table(df, 100);
        if let Ok(df) = t.get("diff_alerts") {
            if df.height() > 0 {
                page.p("The alerts that differ:");
                page.table(df, 200);
            }
        }
    }
    page.h2("Alerts per day");
    let configs: Vec<&str> = if bt.b.is_some() { vec!["A", "B"] } else { vec!["A"] };
    daily_plot(&mut page, t.get("daily")?, &configs)?;
    page.h2("By region and segment");
    page.table(t.get("segments")?, 200);
    page.h2("Top flagged accounts");
    page.p("Accounts with the most alerts (then the highest score), with the evidence of their highest-scoring alert.");
    page.table(t.get("top_accounts")?, 50);
    backtest_cases_section(&mut page, bt, &t)?;
    let html = write_html(dir, &page.finish(title))?;
    Ok(Written { html, tables })
}

const CASES_NOTE: &str = "A case is a scheme seen across accounts: a collector and the accounts the money and the people tie to it (payout accounts whose payees paid in, receivers of its outflow, intermediaries between). Severity is where it stands against the prosecution lines of [cases.prosecution] (by default 1,000,000 yuan raised, 150 people, 500,000 yuan outstanding): early below all three (打早打小), else the lines crossed. Linked alerts are periodic_batch_small_out alerts a link confirmed; replay --cases writes them with the others.";

/// Cases of a backtest: summary, the cases, and with B what changes.
fn backtest_cases_section(page: &mut Page, bt: &Backtest, t: &Tables) -> Result<(), ReportError> {
    let Some(ca) = &bt.a.cases else {
        page.h2("Cases");
        page.p("The case stage did not run ([cases] enabled = false, or --no-cases).");
        return Ok(());
    };
    page.h2("Cases");
    page.p(CASES_NOTE);
    page.p(&format!(
        "Config A: {} open cases ({} past a prosecution line), {} linked alerts.",
        ca.open().count(),
        ca.past_a_line(),
        ca.linked_alerts.len()
    ));
    page.table(t.get("case_summary")?, 10);
    page.p("The open cases, largest amount raised first:");
    page.table(t.get("cases")?, 60);
    if let Some(d) = &bt.case_diff {
        page.h2("What changes in the cases from A to B");
        page.p(&format!(
            "Cases are matched by the accounts they share (ids hash the config version). {d}."
        ));
        if let Ok(df) = t.get("case_changes") {
            if df.height() > 0 {
                page.table(df, 100);
            }
        }
        if let Ok(df) = t.get("case_links") {
            if df.height() > 0 {
                page.p("The links made and broken:");
                page.table(df, 200);
            }
        }
    }
    Ok(())
}

/// Cases of a sweep: open cases and cases past a line per value, links made and broken
/// against the base, with labels the payout-link share.
fn sweep_cases_section(page: &mut Page, sw: &Sweep, t: &Tables, x_label: &str) -> Result<(), ReportError> {
    let Ok(df) = t.get("sweep_cases") else {
        return Ok(());
    };
    page.h2("Cases per value");
    page.p(CASES_NOTE);
    let xs = f64s(df, "x");
    let second: Vec<String> = match sw.axes.get(1) {
        Some(a) => strs(df, &a.label),
        None => vec![String::new(); xs.len()],
    };
    let mut keys: Vec<String> = second.clone();
    keys.sort();
    keys.dedup();
    let series = |metrics: &[(&str, &str)]| -> Vec<plot::Series> {
        let mut out = Vec::new();
        for (m, name) in metrics {
            let ys = f64s(df, m);
            for k in &keys {
                let pts = (0..xs.len())
                    .filter(|&i| &second[i] == k)
                    .map(|i| (xs[i], ys[i]))
                    .collect();
                let name = match sw.axes.get(1) {
                    Some(a) => format!("{name}, {}={k}", a.label),
                    None => (*name).to_owned(),
                };
                out.push(plot::Series { name, points: pts });
            }
        }
        out
    };
    page.plot(
        &plot::Chart {
            title: "Open cases per value of the swept threshold",
            x_label,
            y_label: "cases",
            series: series(&[
                ("open_cases", "open cases"),
                ("early", "early"),
                ("past_people_line", "past the people line"),
                ("past_raised_line", "past the raised line"),
            ]),
            y_range: None,
            x_ticks: None,
            lines: true,
        },
        "Open cases at each value, and how many stand below every prosecution line (early) or past one.",
    )?;
    page.plot(
        &plot::Chart {
            title: "Links made and broken against the base config",
            x_label,
            y_label: "links",
            series: series(&[("links_made", "links made"), ("links_broken", "links broken")]),
            y_range: None,
            x_ticks: None,
            lines: true,
        },
        "Ties between accounts a value adds to the base config's cases, and ties of the base it loses.",
    )?;
    if df.column("payout_link_share").is_ok() {
        page.plot(
            &plot::Chart {
                title: "Cases against the scheme labels",
                x_label,
                y_label: "share",
                series: series(&[
                    ("payout_link_share", "payout accounts linked to their collector"),
                    ("investors_within_10pct", "investors within 10%"),
                    ("raised_within_10pct", "raised within 10%"),
                ]),
                y_range: Some((0.0, 1.05)),
                x_ticks: None,
                lines: true,
            },
            "Scheme-level scores of each point's cases (fundwatch score-cases).",
        )?;
    }
    page.table(df, 400);
    if let Ok(links) = t.get("sweep_case_links") {
        if links.height() > 0 {
            page.p("The links each value makes or breaks against the base config:");
            page.table(links, 200);
        }
    }
    Ok(())
}

/// The sweep report: `dir/report.html` and `dir/tables/*`.
pub fn sweep_report(sw: &Sweep, meta: &Meta, dir: &Path) -> Result<Written, ReportError> {
    let t = sweep_tables(sw)?;
    let tables = write_tables(&t, dir)?;
    let labels: Vec<String> = sw.axes.iter().map(|a| a.label.clone()).collect();
    let title = format!("fundwatch sweep: {}", labels.join(" × "));
    let mut page = Page::new(&title, meta);
    let x_axis = &sw.axes[0];
    let x_label = if x_axis.unit.is_empty() {
        x_axis.label.clone()
    } else {
        format!("{} ({})", x_axis.label, x_axis.unit)
    };
    let rerun = if sw.affected.is_empty() {
        "no rule (the swept settings change only how accounts link into cases)".to_owned()
    } else {
        sw.affected.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    };
    page.p(&format!(
        "{} points; the stream was decoded once and each point re-ran only {rerun} on {} threads ({:.2} s in all).",
        sw.points.len(),
        sw.threads,
        sw.seconds
    ));
    let points = t.get("sweep")?;
    let xs = f64s(points, "x");
    let second: Vec<String> = if sw.axes.len() == 2 {
        strs(points, &sw.axes[1].label)
    } else {
        vec![String::new(); xs.len()]
    };
    let rules = strs(points, "rule");
    // One series per affected rule (and per value of a second axis).
    let series_of = |metric: &str, only_rule: Option<&str>| -> Vec<plot::Series> {
        let ys = f64s(points, metric);
        let mut keys: Vec<(String, String)> = Vec::new();
        for i in 0..xs.len() {
            let k = (rules[i].clone(), second[i].clone());
            let wanted = sw.affected.iter().any(|r| r.as_str() == k.0) && only_rule.is_none_or(|r| r == k.0);
            if wanted && !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys.into_iter()
            .map(|(r, s)| {
                let name = match (sw.axes.get(1), only_rule) {
                    (Some(a), None) => format!("{r}, {}={s}", a.label),
                    (Some(a), Some(_)) => format!("{}={s}", a.label),
                    (None, _) => r.clone(),
                };
                let pts = (0..xs.len())
                    .filter(|&i| rules[i] == r && second[i] == s)
                    .map(|i| (xs[i], ys[i]))
                    .collect();
                plot::Series { name, points: pts }
            })
            .collect()
    };
    page.h2("Alerts per value");
    page.plot(
        &plot::Chart {
            title: "Alerts per value of the swept threshold",
            x_label: &x_label,
            y_label: "alerts",
            series: series_of("alerts", None),
            y_range: None,
            x_ticks: None,
            lines: true,
        },
        "Alerts of each affected rule at each value; the other rules do not change.",
    )?;
    page.plot(
        &plot::Chart {
            title: "Accounts flagged per value",
            x_label: &x_label,
            y_label: "accounts",
            series: series_of("accounts", None),
            y_range: None,
            x_ticks: None,
            lines: true,
        },
        "Distinct accounts with an alert of each affected rule.",
    )?;
    if meta.labels.is_some() {
        page.h2("Precision and recall");
        for r in &sw.affected {
            let rule = r.as_str();
            let mut series = Vec::new();
            for (metric, name) in [("precision", "precision"), ("recall", "recall"), ("f1", "F1")] {
                series.extend(series_of(metric, Some(rule)).into_iter().map(|q| plot::Series {
                    name: format!("{name} {}", q.name).trim().to_owned(),
                    points: q.points,
                }));
            }
            page.plot(
                &plot::Chart {
                    title: &format!("{rule}: precision, recall and F1 per value"),
                    x_label: &x_label,
                    y_label: "score",
                    series,
                    y_range: Some((0.0, 1.05)),
                    x_ticks: None,
                    lines: true,
                },
                "Account-level scores against the labels.",
            )?;
            // The precision–recall curve traced by the threshold.
            let prec = series_of("precision", Some(rule));
            let rec = series_of("recall", Some(rule));
            let curve: Vec<plot::Series> = prec
                .into_iter()
                .zip(rec)
                .map(|(p, r)| plot::Series {
                    name: p.name,
                    points: r.points.iter().zip(&p.points).map(|(r, p)| (r.1, p.1)).collect(),
                })
                .collect();
            page.plot(
                &plot::Chart {
                    title: &format!("{rule}: precision–recall curve over the swept values"),
                    x_label: "recall",
                    y_label: "precision",
                    series: curve,
                    y_range: Some((0.0, 1.05)),
                    x_ticks: None,
                    lines: true,
                },
                "Each point is one value of the swept threshold.",
            )?;
        }
    }
    sweep_cases_section(&mut page, sw, &t, &x_label)?;
    page.h2("Every point");
    page.table(points, 400);
    page.h2("Base config");
    page.p(&format!(
        "The base config ({}) on the same stream: its alerts per day and its top flagged accounts.",
        sw.base.config_version
    ));
    page.table(t.get("base_rules")?, 100);
    daily_plot(&mut page, t.get("base_daily")?, &["A"])?;
    page.table(t.get("base_top_accounts")?, 50);
    if let (Ok(sum), Ok(cases)) = (t.get("base_case_summary"), t.get("base_cases")) {
        page.p("The base config's cases:");
        page.table(sum, 10);
        page.table(cases, 60);
    }
    let html = write_html(dir, &page.finish(&title))?;
    Ok(Written { html, tables })
}
