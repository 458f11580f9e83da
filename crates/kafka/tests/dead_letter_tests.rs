//! Poison records: every rejected line lands on the dead-letter topic, once, with its reason;
//! consumed = processed + dead-lettered.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fundwatch_kafka::{RunOptions, Shutdown};

#[test]
fn poison_records_are_dead_lettered_with_reason() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "dlq", 4);
    let cfg = config(&b, &topics);
    // The first 4000 fixture lines with poison mixed in.
    let text = std::fs::read(fixture()).unwrap();
    let poison: Vec<&[u8]> = vec![
        b"not json at all",
        b"{}",
        b"{\"tx_id\":\"P1\",\"ts\":\"2026-06-01T08:00:00+08:00\",\"account\":\"6222000000000000001\",\"counterparty\":\"\",\"direction\":\"sideways\",\"amount\":\"10.00\"}",
        b"{\"tx_id\":\"P2\",\"ts\":\"2026-06-01T08:00:00+08:00\",\"account\":\"6222000000000000002\",\"counterparty\":\"\",\"direction\":\"in\",\"amount\":\"-5\"}",
        b"{\"tx_id\":\"P3\",\"ts\":\"yesterday\",\"account\":\"6222000000000000003\",\"counterparty\":\"\",\"direction\":\"in\",\"amount\":\"5\"}",
        b"\xff\xfe\x00 invalid utf-8",
        b"{\"tx_id\":\"P4\",\"ts\":\"2026-06-01T08:00:00+08:00\",\"account\":\"6222000000000000004\",\"counterparty\":\"\",\"direction\":\"in\",\"amount\":\"1.234\"}",
    ];
    let path = std::env::temp_dir().join(format!("{}.jsonl", unique("poison")));
    {
        let mut f = std::fs::File::create(&path).unwrap();
        for (i, line) in text.split(|b| *b == b'\n').take(4000).enumerate() {
            f.write_all(line).unwrap();
            f.write_all(b"\n").unwrap();
            if i % 500 == 250 {
                let p = poison[(i / 500) % poison.len()];
                f.write_all(p).unwrap();
                f.write_all(b"\n").unwrap();
            }
        }
    }
    let (want_alerts, replay_summary, want_dead) = replay_with_dead(&path);
    let produced = produce(&cfg, &path, None);
    assert_eq!(produced.records, replay_summary.records_read);
    let opts = RunOptions {
        instance_id: Some("dlq".into()),
        exit_when_idle_ms: Some(2000),
        listen: Some("off".into()),
        ..Default::default()
    };
    let summary = fundwatch_kafka::run(Arc::new(cfg), opts, Shutdown::new()).expect("run");
    assert_eq!(summary.rejected, replay_summary.rejected);
    if summary.transactions_aborted == 0 {
        // consumed = processed + dead-lettered
        assert_eq!(summary.records_consumed, produced.records);
        assert_eq!(summary.records_consumed - summary.rejected, replay_summary.accepted);
    } else {
        // An abort (the restart test's broker restart, when every test binary runs at once)
        // re-reads the aborted records live.
        assert!(summary.records_consumed >= produced.records);
    }

    let dead = read_committed(&b, &topics.dead, Duration::from_secs(60));
    assert_eq!(
        dead.len() as u64,
        replay_summary.rejected,
        "each rejected record dead-lettered once"
    );
    let mut want_codes: BTreeMap<String, usize> = BTreeMap::new();
    for (code, _) in &want_dead {
        *want_codes.entry(code.clone()).or_default() += 1;
    }
    let mut got_codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for r in &dead {
        let code = r.headers.get("fundwatch.reason_code").expect("reason_code header");
        *got_codes.entry(code.clone()).or_default() += 1;
        assert!(!r.headers["fundwatch.reason"].is_empty());
        assert_eq!(r.headers["fundwatch.source.topic"], topics.input);
        let src = (
            r.headers["fundwatch.source.partition"].parse::<i32>().unwrap(),
            r.headers["fundwatch.source.offset"].parse::<i64>().unwrap(),
        );
        assert!(seen.insert(src), "source record dead-lettered twice: {src:?}");
        // The value is the original bytes.
        let original = String::from_utf8_lossy(&r.value);
        assert!(
            want_dead
                .iter()
                .any(|(_, raw)| *raw == original || raw.trim() == original.trim()),
            "dead letter value is not an original line: {original}"
        );
    }
    assert_eq!(got_codes, want_codes);
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want_alerts);
    let _ = std::fs::remove_file(path);
    eprintln!(
        "dead letters: {} ({:?}) in {:.1}s",
        dead.len(),
        got_codes,
        t0.elapsed().as_secs_f64()
    );
}
