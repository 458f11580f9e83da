//! `[input]`: a core-banking feed as Debezium change events (bank column names, a precise
//! DECIMAL amount, D/C flags, a DATETIME in Beijing wall time, the row nested in `after`,
//! updates, deletes and tombstones mixed in) replays to exactly the alerts of the same
//! transactions in the spec's own records; and the event-time guards dead-letter what they
//! refuse.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use fundwatch_engine::Clock;
use fundwatch_generate::{generate, GenerateOptions};
use fundwatch_record::{decode_json, Direction, Transaction};
use fundwatch_replay::{replay, ReplayOptions, ReplaySummary};
use fundwatch_rules::Config;
use serde_json::{json, Value};

const BANK_MAPPING: &str = r#"
[input]
format = "debezium"
timestamp_zone = "+08:00"
timestamp_unit = "ms"
amount_scale = 2

[input.fields]
tx_id = "TXN_SEQ_NO"
ts = "TXN_DTTM"
account = "ACCT_NO"
counterparty = "CP.ACCT_NO"
direction = "DR_CR_FLG"
amount = "TXN_AMT"
currency = "CCY"
channel = "CHNL_CD"
memo = "RMK"
account_type = "ACCT_TYP"
industry = "CUST.INDUSTRY"
region = "CUST.BRANCH_RGN"
cross_border = "XBORDER_FLG"

[input.values.direction]
in = ["C"]
out = ["D"]
"#;

fn opts(input: &Path, dir: &Path, config: Config) -> ReplayOptions {
    ReplayOptions {
        input: input.to_owned(),
        alerts: dir.join(format!("{}.alerts.jsonl", input.file_name().unwrap().to_string_lossy())),
        dead_letter: Some(dir.join(format!("{}.dead.jsonl", input.file_name().unwrap().to_string_lossy()))),
        near_misses: None,
        config: Arc::new(config),
        cases: None,
        traces: None,
        route_dir: None,
        progress: false,
        clock: Clock::Fixed(0),
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn alert_ids(o: &ReplayOptions) -> Vec<String> {
    lines(&o.alerts)
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Minimal big-endian two's complement, as Kafka Connect writes a DECIMAL's unscaled value.
fn precise(fen: i64) -> String {
    let bytes = fen.to_be_bytes();
    let mut start = 0;
    while start < 7 && bytes[start] == 0 && bytes[start + 1] & 0x80 == 0 {
        start += 1;
    }
    base64::engine::general_purpose::STANDARD.encode(&bytes[start..])
}

/// The row a core-banking table would hold for a transaction.
fn bank_row(t: &Transaction<'_>) -> Value {
    const BEIJING_MS: i64 = 8 * 3_600_000;
    json!({
        "TXN_SEQ_NO": t.tx_id,
        // DATETIME: Beijing wall time, which Debezium writes as if it were UTC.
        "TXN_DTTM": t.ts_ms + BEIJING_MS,
        "ACCT_NO": t.account,
        "CP": {"ACCT_NO": if t.counterparty.is_empty() { Value::Null } else { json!(t.counterparty) }},
        "DR_CR_FLG": if t.direction == Direction::In { "C" } else { "D" },
        "TXN_AMT": precise(t.amount),
        "CCY": if t.currency.is_empty() { Value::Null } else { json!(t.currency) },
        "CHNL_CD": t.channel.as_str(),
        "RMK": t.memo,
        "ACCT_TYP": t.account_type.as_str(),
        "CUST": {"INDUSTRY": t.industry, "BRANCH_RGN": t.region},
        "XBORDER_FLG": u8::from(t.cross_border),
    })
}

struct Converted {
    events: Vec<u8>,
    updates: u64,
    deletes: u64,
    tombstones: u64,
    records: u64,
}

/// Every valid record of a spec stream as a Debezium insert (or snapshot read), alternately
/// with and without the JSON converter's schema wrapper, with other change events between.
fn to_debezium(stream: &[u8]) -> Converted {
    let mut c = Converted {
        events: Vec::new(),
        updates: 0,
        deletes: 0,
        tombstones: 0,
        records: 0,
    };
    let schema =
        json!({"type": "struct", "name": "corebank.public.txn_ledger.Envelope", "optional": false, "fields": []});
    let source = json!({"connector": "mysql", "db": "corebank", "table": "txn_ledger"});
    for line in stream.split(|b| *b == b'\n') {
        let Ok(t) = decode_json(line) else { continue };
        c.records += 1;
        let n = c.records;
        let row = bank_row(&t);
        let op = if n.is_multiple_of(7) { "r" } else { "c" };
        let event = json!({"before": null, "after": row, "source": source, "op": op, "ts_ms": 1});
        let event = if n.is_multiple_of(2) {
            json!({"schema": schema, "payload": event})
        } else {
            event
        };
        c.events.extend(serde_json::to_vec(&event).unwrap());
        c.events.push(b'\n');
        if n.is_multiple_of(50) {
            // A correction of the row: not a new transaction.
            let mut after = row.clone();
            after["RMK"] = json!("冲正");
            let u = json!({"before": row, "after": after, "source": source, "op": "u", "ts_ms": 2});
            c.events.extend(serde_json::to_vec(&u).unwrap());
            c.events.push(b'\n');
            c.updates += 1;
        }
        if n.is_multiple_of(70) {
            let d = json!({"schema": schema, "payload": {"before": row, "after": null, "source": source, "op": "d", "ts_ms": 3}});
            c.events.extend(serde_json::to_vec(&d).unwrap());
            c.events.extend(b"\nnull\n");
            c.deletes += 1;
            c.tombstones += 1;
        }
    }
    c
}

fn skipped(s: &ReplaySummary, kind: &str) -> u64 {
    s.skipped_by_kind.get(kind).copied().unwrap_or(0)
}

#[test]
fn a_debezium_bank_feed_gives_exactly_the_alerts_of_the_plain_records() {
    let dir = tempfile::tempdir().unwrap();
    let gen = GenerateOptions {
        records: 20_000,
        seed: 12,
        days: 60,
        ..GenerateOptions::default()
    };
    let (mut stream, mut labels) = (Vec::new(), Vec::new());
    generate(&gen, &mut stream, &mut labels).unwrap();
    let plain = dir.path().join("plain.jsonl");
    std::fs::write(&plain, &stream).unwrap();
    let converted = to_debezium(&stream);
    let cdc = dir.path().join("cdc.jsonl");
    std::fs::write(&cdc, &converted.events).unwrap();

    let plain_opts = opts(&plain, dir.path(), Config::default());
    let mapped = Config::from_toml(BANK_MAPPING).unwrap();
    let cdc_opts = opts(&cdc, dir.path(), mapped);
    let p = replay(&plain_opts).unwrap();
    let m = replay(&cdc_opts).unwrap();

    let (want, got) = (alert_ids(&plain_opts), alert_ids(&cdc_opts));
    assert!(want.len() > 30, "the stream raises alerts: {}", want.len());
    assert_eq!(got, want, "the same transactions give the same alert ids");
    assert_eq!(
        m.config_version, p.config_version,
        "[input] is not part of config_version"
    );
    assert_eq!(
        lines(&cdc_opts.alerts),
        lines(&plain_opts.alerts),
        "whole alerts, evidence included"
    );
    assert_eq!(m.accepted, p.accepted);
    assert_eq!(m.accepted, converted.records);
    assert_eq!(m.late, p.late);
    assert!(p.rejected > 0, "the generator writes some malformed lines");
    assert_eq!(m.rejected, 0, "{:?}", m.rejected_by_reason);
    assert_eq!(skipped(&m, "update"), converted.updates);
    assert_eq!(skipped(&m, "delete"), converted.deletes);
    assert_eq!(skipped(&m, "tombstone"), converted.tombstones);
    assert!(converted.updates > 100 && converted.tombstones > 100);
    assert!(p.skipped_by_kind.is_empty());
    assert!(
        lines(cdc_opts.dead_letter.as_ref().unwrap()).is_empty(),
        "skipped events are not dead letters"
    );
    let summary = serde_json::to_value(&m).unwrap();
    assert_eq!(summary["skipped_by_kind"]["update"], json!(converted.updates));
    assert!(m.to_string().contains("skipped:  tombstone"), "{m}");

    // A broken event is still a dead letter, with its reason.
    let mut bad = converted.events.clone();
    bad.extend(br#"{"op":"c","after":{"TXN_SEQ_NO":"X1","TXN_DTTM":1772442902000,"ACCT_NO":"A","CP":{"ACCT_NO":"B"},"DR_CR_FLG":"?","TXN_AMT":"TEtA"}}"#);
    bad.extend(b"\n{\"op\":\"z\",\"after\":{}}\n");
    let cdc_bad = dir.path().join("cdc-bad.jsonl");
    std::fs::write(&cdc_bad, &bad).unwrap();
    let bad_opts = opts(&cdc_bad, dir.path(), Config::from_toml(BANK_MAPPING).unwrap());
    let b = replay(&bad_opts).unwrap();
    assert_eq!(b.rejected, 2);
    let dead = lines(bad_opts.dead_letter.as_ref().unwrap());
    let codes: Vec<&str> = dead.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["unknown_direction", "unknown_op"]);
}

#[test]
fn a_mapping_refuses_csv_rather_than_half_applying() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, "tx_id,ts,account,counterparty,direction,amount\n").unwrap();
    let o = opts(&csv, dir.path(), Config::from_toml(BANK_MAPPING).unwrap());
    let e = replay(&o).expect_err("refused");
    assert!(e.to_string().contains("JSON Lines"), "{e}");
}

#[test]
fn far_future_and_too_old_records_are_dead_lettered_and_the_rest_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let clean = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/stream-20k.jsonl")).unwrap();
    let clean_path = dir.path().join("clean.jsonl");
    std::fs::write(&clean_path, &clean).unwrap();
    let mut lines_of: Vec<&[u8]> = clean.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let first = String::from_utf8_lossy(lines_of[0]).into_owned();
    let ts = |l: &str| -> String {
        let v: Value = serde_json::from_str(l).unwrap();
        v["ts"].as_str().unwrap().to_owned()
    };
    let t0 = ts(&first);
    let at_start = first
        .replace(&t0, "2099-01-01T00:00:00+08:00")
        .replacen("\"tx_id\":\"", "\"tx_id\":\"F1-", 1);
    let mid_line = String::from_utf8_lossy(lines_of[10_000]).into_owned();
    let tm = ts(&mid_line);
    let year_later = format!("{}{}", (tm[..4].parse::<u32>().unwrap() + 1), &tm[4..]);
    let mid = mid_line
        .replace(&tm, &year_later)
        .replacen("\"tx_id\":\"", "\"tx_id\":\"F2-", 1);
    let old = mid_line
        .replace(&tm, "2025-01-01T00:00:00+08:00")
        .replacen("\"tx_id\":\"", "\"tx_id\":\"OLD-", 1);
    lines_of.insert(10_000, old.as_bytes());
    lines_of.insert(10_000, mid.as_bytes());
    lines_of.insert(0, at_start.as_bytes());
    let dirty_path = dir.path().join("dirty.jsonl");
    std::fs::write(&dirty_path, lines_of.join(&b"\n"[..])).unwrap();

    let c = opts(&clean_path, dir.path(), Config::default());
    let d = opts(&dirty_path, dir.path(), Config::default());
    let (cs, ds) = (replay(&c).unwrap(), replay(&d).unwrap());
    assert_eq!(alert_ids(&d), alert_ids(&c));
    assert_eq!(ds.late, cs.late, "nothing after the far-future records is late");
    assert_eq!(ds.accepted, cs.accepted);
    assert_eq!(ds.rejected, cs.rejected + 3);
    assert_eq!(ds.rejected_by_reason.get("future_time"), Some(&2));
    assert_eq!(ds.rejected_by_reason.get("too_old"), Some(&1));
    let dead = lines(d.dead_letter.as_ref().unwrap());
    let guard: Vec<(&str, u64)> = dead
        .iter()
        .filter(|l| l.get("tx_id").is_some())
        .map(|l| (l["code"].as_str().unwrap(), l["position"].as_u64().unwrap()))
        .collect();
    assert_eq!(guard.len(), 3, "{dead:?}");
    assert!(guard.contains(&("future_time", 1)), "{guard:?}");
    let f2 = dead
        .iter()
        .find(|l| l["tx_id"].as_str().is_some_and(|t| t.starts_with("F2-")))
        .expect("F2");
    assert_eq!(f2["raw"].as_str(), Some(mid.as_str()), "the original line");
    assert!(f2["reason"].as_str().unwrap().contains("ahead of the stream"), "{f2}");
}
