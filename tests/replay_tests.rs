//! End-to-end replay over the committed fixtures: detection quality against their labels,
//! the same alerts from every input format, every rejected line dead-lettered, determinism,
//! and the command line's contract (exit codes, summary).

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use fundwatch_engine::{Alert, Clock};
use fundwatch_generate::labels::Labels;
use fundwatch_replay::{replay, ReplayOptions, ReplaySummary};
use fundwatch_rules::Config;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn run(input: &Path, dir: &Path) -> (Vec<Alert>, ReplaySummary, Vec<serde_json::Value>) {
    let alerts = dir.join("alerts.jsonl");
    let dead = dir.join("dead.jsonl");
    let summary = replay(&ReplayOptions {
        input: input.to_owned(),
        alerts: alerts.clone(),
        dead_letter: Some(dead.clone()),
        near_misses: None,
        config: Arc::new(Config::default()),
        cases: None,
        traces: None,
        route_dir: None,
        progress: false,
        clock: Clock::Fixed(0),
    })
    .expect("replay");
    let read = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let a = read(&alerts).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let d = read(&dead).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    (a, summary, d)
}

fn labels(name: &str) -> Labels {
    Labels::read(BufReader::new(std::fs::File::open(fixture(name)).unwrap())).unwrap()
}

#[test]
fn fixtures_meet_precision_and_recall_and_large_value_is_exact() {
    for name in ["stream-20k", "stream-50k"] {
        let dir = tempfile::tempdir().unwrap();
        let (alerts, summary, _) = run(&fixture(&format!("{name}.jsonl")), dir.path());
        let labels = labels(&format!("{name}.labels.jsonl"));
        let eval = labels.evaluate(alerts.iter().map(|a| (a.rule.as_str(), a.account.as_str())));
        println!("{name}\n{eval}\n{summary}");
        for r in &eval.rules {
            let need = if r.rule == "large_value" { 1.0 } else { 0.95 };
            assert!(
                r.precision >= need && r.recall >= need,
                "{name}: {} precision {} recall {}",
                r.rule,
                r.precision,
                r.recall
            );
            assert!(r.truth > 0, "{name}: the fixture must plant {}", r.rule);
        }
        // large_value exact at report level: (account, day, direction, line), not just accounts.
        let got: BTreeSet<(String, String, String, String)> = alerts
            .iter()
            .filter(|a| a.rule == "large_value")
            .map(|a| {
                let e = &a.evidence;
                (
                    a.account.clone(),
                    e["day"].as_str().unwrap().into(),
                    e["direction"].as_str().unwrap().into(),
                    e["line_kind"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String, String, String)> = labels.large_value_keys();
        assert_eq!(got, want, "{name}: large_value reports");
        assert_eq!(
            alerts.iter().filter(|a| a.rule == "large_value").count(),
            want.len(),
            "one alert per report"
        );
    }
}

#[test]
fn every_rejected_line_is_dead_lettered_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("stream-20k.jsonl");
    let (_, summary, dead) = run(&input, dir.path());
    let lines = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    assert_eq!(summary.records_read, lines);
    assert_eq!(summary.accepted + summary.rejected, lines);
    assert!(summary.rejected > 0, "the fixture carries malformed lines");
    assert_eq!(dead.len() as u64, summary.rejected);
    let by_reason: u64 = summary.rejected_by_reason.values().sum();
    assert_eq!(by_reason, summary.rejected);
    let text = std::fs::read_to_string(&input).unwrap();
    let all: Vec<&str> = text.lines().collect();
    for d in &dead {
        let pos = d["position"].as_u64().unwrap() as usize;
        assert_eq!(
            d["raw"].as_str().unwrap(),
            all[pos - 1],
            "dead letter keeps the original line"
        );
        assert!(!d["reason"].as_str().unwrap().is_empty());
    }
}

#[test]
fn csv_and_parquet_give_the_same_alerts_as_json_lines() {
    use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("stream-20k.jsonl");
    let (json_alerts, json_summary, _) = run(&input, dir.path());

    // Valid records only, re-encoded as CSV and Parquet (amounts as exact text).
    let text = std::fs::read_to_string(&input).unwrap();
    let recs: Vec<fundwatch_record::Transaction<'_>> = text
        .lines()
        .filter_map(|l| fundwatch_record::decode_json(l.as_bytes()).ok())
        .collect();
    let cols = [
        "tx_id",
        "ts",
        "account",
        "counterparty",
        "direction",
        "amount",
        "currency",
        "channel",
        "memo",
        "account_type",
        "industry",
        "region",
    ];
    let value = |t: &fundwatch_record::Transaction<'_>, c: &str| -> String {
        match c {
            "tx_id" => t.tx_id.to_string(),
            "ts" => fundwatch_record::format_rfc3339_ms(t.ts_ms),
            "account" => t.account.to_string(),
            "counterparty" => t.counterparty.to_string(),
            "direction" => t.direction.as_str().into(),
            "amount" => fundwatch_record::format_fen(t.amount),
            "currency" => t.currency.to_string(),
            "channel" => t.channel.as_str().into(),
            "memo" => t.memo.to_string(),
            "account_type" => t.account_type.as_str().into(),
            "industry" => t.industry.to_string(),
            "region" => t.region.to_string(),
            _ => unreachable!(),
        }
    };
    let csv_path = dir.path().join("stream.csv");
    let mut w = csv::Writer::from_path(&csv_path).unwrap();
    let mut header: Vec<&str> = cols.to_vec();
    header.push("cross_border");
    w.write_record(&header).unwrap();
    for t in &recs {
        let mut row: Vec<String> = cols.iter().map(|c| value(t, c)).collect();
        row.push(t.cross_border.to_string());
        w.write_record(&row).unwrap();
    }
    w.flush().unwrap();

    let pq_path = dir.path().join("stream.parquet");
    let mut arrays: Vec<(&str, ArrayRef)> = cols
        .iter()
        .map(|c| {
            (
                *c,
                Arc::new(StringArray::from(recs.iter().map(|t| value(t, c)).collect::<Vec<_>>())) as ArrayRef,
            )
        })
        .collect();
    arrays.push((
        "cross_border",
        Arc::new(BooleanArray::from(
            recs.iter().map(|t| t.cross_border).collect::<Vec<_>>(),
        )),
    ));
    let batch = RecordBatch::try_from_iter(arrays).unwrap();
    let file = std::fs::File::create(&pq_path).unwrap();
    let mut pw = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    pw.write(&batch).unwrap();
    pw.close().unwrap();

    let strip = |v: &[Alert]| v.iter().map(Alert::without_wall_clock).collect::<Vec<_>>();
    for path in [csv_path, pq_path] {
        let sub = tempfile::tempdir().unwrap();
        let (alerts, summary, dead) = run(&path, sub.path());
        assert!(dead.is_empty(), "{}: {dead:?}", path.display());
        assert_eq!(summary.accepted, json_summary.accepted, "{}", path.display());
        assert_eq!(strip(&alerts), strip(&json_alerts), "{}", path.display());
    }
}

#[test]
fn replay_is_deterministic_to_the_byte() {
    let bin = env!("CARGO_BIN_EXE_fundwatch");
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("a{i}.jsonl"));
        let st = Command::new(bin)
            .args([
                "replay",
                "--no-progress",
                "--fixed-detected-at",
                "2026-11-26T00:00:00Z",
                "--input",
            ])
            .arg(fixture("stream-20k.jsonl"))
            .arg("--alerts")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn command_line_contract() {
    let bin = env!("CARGO_BIN_EXE_fundwatch");
    let dir = tempfile::tempdir().unwrap();
    // Malformed records do not fail a replay; the summary says what happened.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n{\"tx_id\":\"1\"}\n\n").unwrap();
    let out = Command::new(bin)
        .args(["replay", "--no-progress", "--input"])
        .arg(&bad)
        .arg("--alerts")
        .arg(dir.path().join("a.jsonl"))
        .arg("--dead-letter")
        .arg(dir.path().join("d.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rejected 2"), "{stdout}");
    assert!(stdout.contains("missing_field"), "{stdout}");
    // Unreadable input is an error, with the path in the message.
    let out = Command::new(bin)
        .args(["replay", "--no-progress", "--input", "/nonexistent/x.jsonl", "--alerts"])
        .arg(dir.path().join("a.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.jsonl"));
    // check-config: the shipped file is valid; a bad one names its fields.
    let ok = Command::new(bin)
        .arg("check-config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fundwatch.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let badcfg = dir.path().join("bad.toml");
    std::fs::write(&badcfg, "[rules.structuring]\nband = 0.9\nmin_days = 0\n").unwrap();
    let out = Command::new(bin).arg("check-config").arg(&badcfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rules.structuring.band: 0.9 is out of range (allowed 0.01 to 0.5)"),
        "{err}"
    );
    assert!(err.contains("rules.structuring.min_days"), "{err}");
}
