//! Reports say what the runs found, in files a program can read, and in a page that draws
//! its plots in a real browser without a network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use fundwatch_backtest::{backtest, sweep, DecodedStream, SweepAxis};
use fundwatch_engine::Clock;
use fundwatch_generate::labels::Labels;
use fundwatch_report::{backtest_report, plot::PALETTE, sweep_report, Meta};
use fundwatch_rules::Config;
use serde_json::Value;

const CLOCK: Clock = Clock::Fixed(1_790_000_000_000);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(name)
}

fn labels() -> Labels {
    let f = std::fs::File::open(fixture("stream-20k.labels.jsonl")).unwrap();
    Labels::read(std::io::BufReader::new(f)).unwrap()
}

fn meta(stream: &DecodedStream) -> Meta {
    Meta {
        input: stream.input.clone(),
        records_read: stream.records_read,
        accepted: stream.len() as u64,
        rejected: stream.rejected(),
        config_a: "built-in defaults".into(),
        labels: Some("stream-20k.labels.jsonl".into()),
        command: "test".into(),
        ..Meta::default()
    }
}

fn json_table(dir: &Path, name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("tables").join(format!("{name}.json"))).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

/// Self-contained: nothing the page loads comes from elsewhere.
fn assert_self_contained(html: &str) {
    for bad in ["<script", "<link", "src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(bad), "report must not load {bad}");
    }
}

#[test]
fn backtest_report_tables_match_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let stream = DecodedStream::load(&fixture("stream-20k.jsonl")).unwrap();
    let mut b = Config::default();
    b.rules.scatter_in_concentrated_out.params.min_distinct_payers = 20;
    let l = labels();
    let bt = backtest(&stream, Arc::new(Config::default()), Some(Arc::new(b)), Some(&l), CLOCK);
    let w = backtest_report(&bt, &meta(&stream), dir.path()).unwrap();
    for t in [
        "rules",
        "diff",
        "diff_alerts",
        "segments",
        "daily",
        "top_accounts",
        "alerts",
    ] {
        for ext in ["csv", "parquet", "json"] {
            let p = dir.path().join("tables").join(format!("{t}.{ext}"));
            assert!(p.metadata().unwrap().len() > 0, "{}", p.display());
        }
    }
    // Seven alert tables and four case tables, three files each.
    assert_eq!(w.tables.len(), 33);
    // Per-rule figures are the runs' own.
    let rules = json_table(dir.path(), "rules");
    for row in &rules {
        let run = if row["config"] == "A" {
            &bt.a
        } else {
            bt.b.as_ref().unwrap()
        };
        let rule = row["rule"].as_str().unwrap();
        assert_eq!(row["alerts"].as_u64().unwrap(), run.alerts_by_rule()[rule], "{rule}");
        assert!(row["precision"].as_f64().is_some());
    }
    // Segments and days partition the alerts.
    let sum = |rows: &[Value], cfg: &str| -> u64 {
        rows.iter()
            .filter(|r| r["config"] == cfg)
            .map(|r| r["alerts"].as_u64().unwrap())
            .sum()
    };
    for (cfg, run) in [("A", &bt.a), ("B", bt.b.as_ref().unwrap())] {
        assert_eq!(sum(&json_table(dir.path(), "segments"), cfg), run.alerts.len() as u64);
        assert_eq!(sum(&json_table(dir.path(), "daily"), cfg), run.alerts.len() as u64);
    }
    let diff = json_table(dir.path(), "diff");
    let scatter = diff
        .iter()
        .find(|r| r["rule"] == "scatter_in_concentrated_out")
        .unwrap();
    assert!(
        scatter["alerts_only_a"].as_u64().unwrap() > 0,
        "20 payers drops some scatter alerts"
    );
    let top = json_table(dir.path(), "top_accounts");
    assert!(top.iter().any(|r| !r["top_alert_summary"].as_str().unwrap().is_empty()));
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert_self_contained(&html);
    assert!(html.matches("<svg").count() >= 1);
}

#[test]
fn sweep_report_has_a_row_per_point_and_rule_and_its_plots() {
    let dir = tempfile::tempdir().unwrap();
    let stream = DecodedStream::load(&fixture("stream-20k.jsonl")).unwrap();
    let base = Arc::new(Config::default());
    let axis = SweepAxis::parse("scatter.min_distinct_payers=4:20:4", &base).unwrap();
    let l = labels();
    let sw = sweep(&stream, base, vec![axis], Some(&l), 2, CLOCK).unwrap();
    let w = sweep_report(&sw, &meta(&stream), dir.path()).unwrap();
    let rows = json_table(dir.path(), "sweep");
    assert_eq!(rows.len(), 5 * 5);
    for (pt, chunk) in sw.points.iter().zip(rows.chunks(5)) {
        for row in chunk {
            let rule = row["rule"].as_str().unwrap();
            assert_eq!(row["alerts"].as_u64().unwrap(), pt.alerts_by_rule[rule]);
            assert_eq!(
                row["scatter_in_concentrated_out.min_distinct_payers"].as_str().unwrap(),
                pt.settings.0[0].1.text
            );
        }
    }
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert_self_contained(&html);
    // Alerts, accounts, precision/recall/F1 and the PR curve, cases and links per value
    // (no scheme lines in these labels, so no scheme scores), then the base run's days.
    assert_eq!(html.matches("<svg").count(), 7, "plots in the page");
    screenshot_shows_plots(&w.html);
}

/// Render the page in headless Chromium and look for the plot colours in the screenshot.
/// Without Chromium the check is skipped, unless FUNDWATCH_REQUIRE_BROWSER=1 (CI sets it).
fn screenshot_shows_plots(html: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/report-screenshot.sh");
    let png = html.with_file_name("report.png");
    let out = Command::new("bash")
        .arg(&script)
        .arg(html)
        .arg(&png)
        .arg("1280x2600")
        .output()
        .unwrap();
    if out.status.code() == Some(3) {
        assert!(
            std::env::var("FUNDWATCH_REQUIRE_BROWSER").is_err(),
            "FUNDWATCH_REQUIRE_BROWSER is set but no Chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("skipped the browser check: no Chromium installed");
        return;
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    // Pixels of the first three series colours (lines and markers), and that the page is
    // not blank.
    let mut hits = [0usize; 3];
    let mut non_white = 0usize;
    for p in px.chunks(channels) {
        let (r, g, b) = (p[0], p[1], p[2]);
        if (r, g, b) != (255, 255, 255) {
            non_white += 1;
        }
        for (i, c) in PALETTE.iter().take(3).enumerate() {
            if r.abs_diff(c.0) <= 6 && g.abs_diff(c.1) <= 6 && b.abs_diff(c.2) <= 6 {
                hits[i] += 1;
            }
        }
    }
    let total = px.len() / channels;
    assert!(non_white > total / 50, "the page rendered mostly blank");
    assert!(
        hits.iter().all(|n| *n > 100),
        "plot series colours missing from the screenshot: {hits:?} (screenshot {})",
        png.display()
    );
}

#[test]
fn case_tables_and_sections_follow_the_case_stage() {
    use fundwatch_generate::{generate, GenerateOptions, Profile};
    let dir = tempfile::tempdir().unwrap();
    let (stream_p, labels_p) = (dir.path().join("s.jsonl"), dir.path().join("l.jsonl"));
    let opts = GenerateOptions {
        profile: Profile::Evasive,
        records: 120_000,
        seed: 3,
        days: 90,
        ..GenerateOptions::default()
    };
    generate(
        &opts,
        std::fs::File::create(&stream_p).unwrap(),
        std::fs::File::create(&labels_p).unwrap(),
    )
    .unwrap();
    let l = Labels::read(std::io::BufReader::new(std::fs::File::open(&labels_p).unwrap())).unwrap();
    let stream = DecodedStream::load(&stream_p).unwrap();
    let mut b = Config::default();
    b.cases.min_shared_people = 10_000;
    let bt = backtest(&stream, Arc::new(Config::default()), Some(Arc::new(b)), Some(&l), CLOCK);
    let out = dir.path().join("bt");
    let w = backtest_report(&bt, &meta(&stream), &out).unwrap();
    let summary = json_table(&out, "case_summary");
    let ca = bt.a.cases.as_ref().unwrap();
    assert_eq!(summary.len(), 2);
    assert_eq!(summary[0]["open_cases"].as_u64().unwrap(), ca.open().count() as u64);
    assert_eq!(
        summary[0]["linked_alerts"].as_u64().unwrap(),
        ca.linked_alerts.len() as u64
    );
    assert!(
        summary[0]["payout_link_share"].as_f64().is_some(),
        "scored against the scheme lines"
    );
    let early: u64 = summary[0]["early"].as_u64().unwrap();
    assert_eq!(early, ca.open().filter(|c| c.severity == "early").count() as u64);
    let cases = json_table(&out, "cases");
    let n_b = bt.b.as_ref().unwrap().cases.as_ref().unwrap().open().count();
    assert_eq!(cases.len(), ca.open().count() + n_b);
    let d = bt.case_diff.as_ref().unwrap();
    let links = json_table(&out, "case_links");
    assert!(!d.links_broken.is_empty(), "no payee tie survives 10,000 shared people");
    assert_eq!(links.len(), d.links_made.len() + d.links_broken.len());
    assert_eq!(
        links.iter().filter(|r| r["change"] == "broken").count(),
        d.links_broken.len()
    );
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("What changes in the cases from A to B"));

    let base = Arc::new(Config::default());
    let axis = SweepAxis::parse("cases.min_payee_share=0.2,0.6,0.95", &base).unwrap();
    let sw = sweep(&stream, base, vec![axis], Some(&l), 2, CLOCK).unwrap();
    let out = dir.path().join("sw");
    let w = sweep_report(&sw, &meta(&stream), &out).unwrap();
    let rows = json_table(&out, "sweep_cases");
    assert_eq!(rows.len(), 3);
    for (row, pt) in rows.iter().zip(&sw.points) {
        let c = pt.cases.as_ref().unwrap();
        assert_eq!(row["open_cases"].as_u64().unwrap(), c.run.open().count() as u64);
        assert_eq!(
            row["links_broken"].as_u64().unwrap(),
            c.diff.as_ref().unwrap().links_broken.len() as u64
        );
    }
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert!(html.contains("Cases per value"));
    // Cases per value, links made/broken, the scheme scores; then the base run's days.
    assert!(html.matches("<svg").count() >= 4, "case plots in the page");
}
