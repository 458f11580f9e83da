//! `[input] keyed_by`, against a real broker, on a Debezium change-event topic keyed by the
//! table's primary key (the transaction number), as a bank's CDC feed is by default:
//! - `keyed_by = "other"`: the service re-keys it by account exactly once; the committed alerts
//!   are exactly `replay`'s of the same events, the re-key topic holds every transaction once,
//!   keyed by its account, and each broken event is dead-lettered once;
//! - the same after kill -9 rounds while it is re-keying, and a restart;
//! - two instances sharing the input partitions, one leaving and one joining: every
//!   transaction still re-keyed once, no alert committed twice;
//! - `keyed_by = "account"` (the default) on that topic: the service stops with an error that
//!   names `keyed_by = "other"`, counts the misrouted records, and commits nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fundwatch_kafka::{RunOptions, Service, Shutdown};
use fundwatch_record::{decode_json, Direction, Transaction};
use fundwatch_rules::{Config, KeyedBy};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

/// How the bank's ledger table maps onto the spec's record.
const BANK_MAPPING: &str = r#"
[input]
format = "debezium"
timestamp_zone = "+08:00"
timestamp_unit = "ms"

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

/// One change event: its Kafka key (Debezium's default: the primary key) and value (None:
/// a tombstone).
struct Event {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

struct Feed {
    /// The events as a JSON Lines dump of the topic (a tombstone is a `null` line), for replay.
    path: PathBuf,
    events: Vec<Event>,
    /// tx_id → account of every insert.
    accounts: BTreeMap<String, String>,
    /// Events that are not transactions (updates, deletes, tombstones).
    skipped: u64,
    /// Broken events (dead-lettered).
    broken: u64,
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
        "TXN_AMT": format!("{}.{:02}", t.amount / 100, t.amount % 100),
        "CCY": if t.currency.is_empty() { Value::Null } else { json!(t.currency) },
        "CHNL_CD": t.channel.as_str(),
        "RMK": t.memo,
        "ACCT_TYP": t.account_type.as_str(),
        "CUST": {"INDUSTRY": t.industry, "BRANCH_RGN": t.region},
        "XBORDER_FLG": u8::from(t.cross_border),
    })
}

/// A generated stream as Debezium events keyed by `{"TXN_SEQ_NO": …}`, with corrections,
/// deletes, tombstones and a few broken events between the inserts.
fn feed(name: &str, records: u64, days: u32, seed: u64) -> Feed {
    let gen = fundwatch_generate::GenerateOptions {
        records,
        days,
        seed,
        ..Default::default()
    };
    let mut stream = Vec::new();
    fundwatch_generate::generate(&gen, &mut stream, std::io::sink()).expect("generate");
    let source = json!({"connector": "mysql", "db": "corebank", "table": "txn_ledger"});
    let schema = json!({"type": "struct", "name": "corebank.txn_ledger.Envelope", "fields": []});
    let mut f = Feed {
        path: std::env::temp_dir().join(format!("{}.jsonl", unique(name))),
        events: Vec::new(),
        accounts: BTreeMap::new(),
        skipped: 0,
        broken: 0,
    };
    let key = |id: &str| serde_json::to_vec(&json!({ "TXN_SEQ_NO": id })).unwrap();
    let mut n = 0u64;
    for line in stream.split(|b| *b == b'\n') {
        let Ok(t) = decode_json(line) else { continue };
        n += 1;
        let row = bank_row(&t);
        let event = json!({"before": null, "after": row, "source": source, "op": "c", "ts_ms": 1});
        // Half with the JSON converter's schema wrapper, as `schemas.enable` would write them.
        let event = if n.is_multiple_of(2) {
            json!({"schema": schema, "payload": event})
        } else {
            event
        };
        f.accounts.insert(t.tx_id.to_string(), t.account.to_string());
        f.events.push(Event {
            key: key(&t.tx_id),
            value: Some(serde_json::to_vec(&event).unwrap()),
        });
        if n.is_multiple_of(40) {
            let mut after = row.clone();
            after["RMK"] = json!("冲正");
            let u = json!({"before": row, "after": after, "source": source, "op": "u", "ts_ms": 2});
            f.events.push(Event {
                key: key(&t.tx_id),
                value: Some(serde_json::to_vec(&u).unwrap()),
            });
            f.skipped += 1;
        }
        if n.is_multiple_of(90) {
            let d = json!({"before": row, "after": null, "source": source, "op": "d", "ts_ms": 3});
            f.events.push(Event {
                key: key(&t.tx_id),
                value: Some(serde_json::to_vec(&d).unwrap()),
            });
            f.events.push(Event {
                key: key(&t.tx_id),
                value: None,
            });
            f.skipped += 2;
        }
        if n.is_multiple_of(2500) {
            let bad = json!({"op": "c", "after": {"TXN_SEQ_NO": format!("X{n}"), "TXN_DTTM": 1772442902000i64, "ACCT_NO": "A", "DR_CR_FLG": "?", "TXN_AMT": "1.00"}});
            f.events.push(Event {
                key: key(&format!("X{n}")),
                value: Some(serde_json::to_vec(&bad).unwrap()),
            });
            f.broken += 1;
        }
    }
    let mut text = Vec::new();
    for e in &f.events {
        text.extend(e.value.as_deref().unwrap_or(b"null"));
        text.push(b'\n');
    }
    std::fs::write(&f.path, text).unwrap();
    f
}

/// Produce every event in order (key = the primary key, so librdkafka's partitioner spreads
/// one account's records over all partitions).
fn produce_events(bootstrap: &str, topic: &str, events: &[Event]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for e in events {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).key(&e.key[..]);
        if let Some(v) = &e.value {
            rec = rec.payload(&v[..]);
        }
        let mut rec = rec;
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).expect("flush");
}

fn bank_config(b: &str, t: &Topics, keyed_by: KeyedBy) -> Config {
    let mut c = config(b, t);
    c.input = Config::from_toml(BANK_MAPPING).unwrap().input;
    c.input.keyed_by = keyed_by;
    // Linked alerts are the case stage's, which replay runs only with --cases.
    c.cases.enabled = false;
    c.kafka.checkpoint_interval = fundwatch_rules::Span(1_000);
    c
}

/// The re-key topic holds every transaction of the feed once, keyed by its account.
fn assert_rekeyed_once(b: &str, c: &Config, f: &Feed) {
    let recs = read_committed(b, &c.kafka.rekey_topic(), Duration::from_secs(120));
    let decoder = c.input.decoder().unwrap();
    let mut seen = BTreeSet::new();
    for r in &recs {
        let fundwatch_record::Decoded::Record(tx) = decoder.decode(&r.value) else {
            panic!(
                "a re-keyed record is not a transaction: {}",
                String::from_utf8_lossy(&r.value)
            );
        };
        assert_eq!(r.key, tx.account.as_bytes(), "re-keyed by account");
        assert_eq!(f.accounts.get(tx.tx_id.as_ref()), Some(&tx.account.to_string()));
        assert!(seen.insert(tx.tx_id.to_string()), "{} re-keyed twice", tx.tx_id);
    }
    assert_eq!(seen.len(), f.accounts.len(), "every transaction re-keyed");
}

/// Each broken event dead-lettered once, naming its input position. Returns how many dead
/// letters detection wrote besides (event-time guards; they name the re-key topic).
fn assert_dead_letters(b: &str, t: &Topics, f: &Feed) -> usize {
    let all = read_committed(b, &t.dead, Duration::from_secs(60));
    let (dead, detection): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|r| r.headers["fundwatch.source.topic"] == t.input);
    let mut sources = BTreeSet::new();
    for r in &dead {
        assert_eq!(r.headers["fundwatch.source.topic"], t.input);
        assert_eq!(r.headers["fundwatch.reason_code"], "unknown_direction");
        let src = (
            r.headers["fundwatch.source.partition"].clone(),
            r.headers["fundwatch.source.offset"].clone(),
        );
        assert!(sources.insert(src), "an event dead-lettered twice");
        assert!(
            String::from_utf8_lossy(&r.key).contains("TXN_SEQ_NO"),
            "the original key"
        );
    }
    assert_eq!(dead.len() as u64, f.broken);
    detection.len()
}

/// Sum of a group's committed offsets on `topic` (0 when none, or not readable now).
fn committed_offsets(b: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    match consumer.committed_offsets(tpl, Duration::from_secs(5)) {
        Ok(t) => t
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .sum(),
        Err(_) => 0,
    }
}

/// Committed input offsets of the re-key group, summed over partitions.
fn rekey_progress(b: &str, c: &Config, partitions: i32) -> i64 {
    committed_offsets(
        b,
        &format!("{}.rekey", c.kafka.group_id),
        &c.kafka.input_topic,
        partitions,
    )
}

#[test]
fn a_topic_keyed_by_primary_key_is_rekeyed_exactly_once() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "rekey", 4);
    let cfg = bank_config(&b, &topics, KeyedBy::Other);
    let f = feed("rekey-feed", 20_000, 45, 31);
    let (want, replay_summary, _) = replay_with_config(&f.path, cfg.clone());
    assert!(want.len() > 20, "the stream raises alerts: {}", want.len());
    assert_eq!(replay_summary.rejected, f.broken);
    produce_events(&b, &topics.input, &f.events);
    let opts = RunOptions {
        instance_id: Some("rk".into()),
        exit_when_idle_ms: Some(3000),
        listen: Some("off".into()),
        ..Default::default()
    };
    let summary = fundwatch_kafka::run(Arc::new(cfg.clone()), opts, Shutdown::new()).expect("run");
    eprintln!("run: {}", serde_json::to_string(&summary).unwrap());
    if summary.rekey_transactions_aborted == 0 && summary.transactions_aborted == 0 {
        assert_eq!(summary.rekeyed, f.accounts.len() as u64);
        assert_eq!(summary.rekey_skipped, f.skipped);
        assert_eq!(summary.records_consumed, f.accounts.len() as u64);
    }
    assert_eq!(summary.rejected, f.broken);
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    assert_rekeyed_once(&b, &cfg, &f);
    assert_eq!(
        assert_dead_letters(&b, &topics, &f),
        0,
        "replay dead-letters nothing else"
    );
    eprintln!(
        "rekeyed exactly once: {} events, {} alerts in {:.1}s",
        f.events.len(),
        want.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(&f.path);
}

#[test]
fn kill9_while_rekeying_then_restart_equals_replay() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "rekey-kill", 4);
    let cfg = bank_config(&b, &topics, KeyedBy::Other);
    let path = write_config(&cfg, "rekey-kill");
    let f = feed("rekey-kill-feed", 80_000, 90, 32);
    let (want, _, _) = replay_with_config(&f.path, cfg.clone());
    produce_events(&b, &topics.input, &f.events);
    let total = f.events.len() as i64;
    // Each round is killed as soon as its re-key stage has committed a transaction, so it
    // dies mid-stream with work committed before it and work open after it.
    let mut last = 0;
    for round in 0..3 {
        let mut child = spawn_service(&path, "rk", None);
        let until = Instant::now() + Duration::from_secs(120);
        let at = loop {
            let done = rekey_progress(&b, &cfg, 4);
            if done > last {
                break done;
            }
            assert!(Instant::now() < until, "round {round}: no re-key progress");
            assert!(child.try_wait().unwrap().is_none(), "round {round}: the service exited");
            std::thread::sleep(Duration::from_millis(20));
        };
        kill9(&mut child);
        eprintln!("round {round}: killed with {at} of {total} input events re-keyed");
        assert!(at < total, "round {round}: killed while re-keying");
        last = at;
    }
    let child = spawn_service(&path, "rk", Some(3000));
    let summary = wait_with_timeout(child, Duration::from_secs(300));
    eprintln!("final run: {summary}");
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    assert_rekeyed_once(&b, &cfg, &f);
    assert_eq!(
        assert_dead_letters(&b, &topics, &f),
        0,
        "replay dead-letters nothing else"
    );
    assert_eq!(rekey_progress(&b, &cfg, 4), total, "the whole input re-keyed");
    eprintln!(
        "kill9_while_rekeying: {} events, {} alerts in {:.1}s",
        f.events.len(),
        want.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(&f.path);
    let _ = std::fs::remove_file(&path);
}

/// Two instances share the input partitions out in the re-key group; one leaves mid-stream
/// (SIGTERM) and another joins: every transaction is still on the re-key topic exactly once,
/// each broken event dead-lettered once, and no alert is committed twice. Alerts and
/// detection's event-time dead letters are not compared with replay: the second half is
/// written while the stages are live (at their partitions' ends, so the merge does not wait),
/// and in a generated stream minutes of event time pass between records, so a few
/// milliseconds between partitions put records hours out of order (on a real feed event time
/// moves with the clock); two stages also merge only their own partitions (README, limits).
#[test]
fn rekey_stages_share_the_input_and_hand_it_over_exactly_once() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "rekey-rebal", 4);
    let cfg = bank_config(&b, &topics, KeyedBy::Other);
    let path = write_config(&cfg, "rekey-rebal");
    let f = feed("rekey-rebal-feed", 40_000, 60, 35);
    let (want, _, _) = replay_with_config(&f.path, cfg.clone());
    // The first half is there when a and b start; the second half comes once a has left and
    // c has joined, so that the stages left have input to share out.
    let (first, second) = f.events.split_at(f.events.len() / 2);
    produce_events(&b, &topics.input, first);
    let total = f.events.len() as i64;
    let a = spawn_service(&path, "a", Some(10_000));
    let bb = spawn_service(&path, "b", Some(10_000));
    let until = Instant::now() + Duration::from_secs(120);
    while rekey_progress(&b, &cfg, 4) < first.len() as i64 {
        assert!(Instant::now() < until, "the first half not re-keyed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // a leaves (commits within the grace and stops), c joins.
    unsafe {
        libc::kill(a.id() as i32, libc::SIGTERM);
    }
    let left = wait_with_timeout(a, Duration::from_secs(60));
    eprintln!("a left at {:.1}s: {left}", t0.elapsed().as_secs_f64());
    let c = spawn_service(&path, "c", Some(10_000));
    std::thread::sleep(Duration::from_secs(4));
    produce_events(&b, &topics.input, second);
    let sb = wait_with_timeout(bb, Duration::from_secs(300));
    let sc = wait_with_timeout(c, Duration::from_secs(300));
    eprintln!("b: {sb}\nc: {sc}");
    let rekeyed: u64 = [&left, &sb, &sc]
        .iter()
        .map(|s| s["rekeyed"].as_u64().unwrap_or(0))
        .sum();
    let stages = [&left, &sb, &sc]
        .iter()
        .filter(|s| s["rekeyed"].as_u64().unwrap_or(0) > 0)
        .count();
    assert!(stages >= 2, "the input was handed over between re-key stages");
    assert!(rekeyed >= f.accounts.len() as u64);
    assert_rekeyed_once(&b, &cfg, &f);
    // The second half is re-keyed live, as fast as it is written: see the function's doc.
    let guarded = assert_dead_letters(&b, &topics, &f);
    assert_eq!(rekey_progress(&b, &cfg, 4), total, "the whole input re-keyed");
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_eq!(n, got.len(), "no alert committed twice");
    let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
    let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
    eprintln!(
        "rekey_stages_share_the_input: {} alerts ({} replay's; {missing} of replay's missing, {extra} not in replay), {guarded} event-time dead letters of detection, in {:.1}s",
        got.len(),
        want.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(&f.path);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_topic_not_keyed_by_account_stops_the_default_service() {
    init_logs();
    let b = ensure_broker();
    let topics = create_topics(&b, "misrouted", 4);
    let cfg = bank_config(&b, &topics, KeyedBy::Account);
    let f = feed("misrouted-feed", 10_000, 30, 33);
    produce_events(&b, &topics.input, &f.events);

    // In process: the error, and the metric.
    let opts = RunOptions {
        instance_id: Some("mr".into()),
        exit_when_idle_ms: Some(3000),
        listen: Some("off".into()),
        ..Default::default()
    };
    let service = Service::new(Arc::new(cfg.clone()), opts);
    let metrics = service.metrics();
    let err = service
        .run(Shutdown::new())
        .expect_err("a topic keyed by tx_id is refused");
    let msg = err.to_string();
    eprintln!("error: {msg}");
    assert!(msg.contains("[input] keyed_by = \"other\""), "{msg}");
    assert!(msg.contains("TXN_SEQ_NO"), "the message shows a misrouted key: {msg}");
    let misrouted = metrics.input_misrouted.get();
    assert!(misrouted > 10, "misrouted records counted: {misrouted}");
    assert!(
        String::from_utf8_lossy(&metrics.render()).contains(&format!("fundwatch_input_misrouted_total {misrouted}")),
        "served on /metrics"
    );

    // As a process: a non-zero exit with that message on stderr.
    let path = write_config(&cfg, "misrouted");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fundwatch-kafka-test-service"))
        .arg("--config")
        .arg(&path)
        .args(["--instance-id", "mr2", "--listen", "off", "--exit-when-idle-ms", "3000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn service");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "exits non-zero: {status}");
    assert!(stderr.contains("keyed_by = \"other\""), "{stderr}");

    // Nothing of the misrouted records was committed: no alert, no dead letter, no offset.
    let (alerts, n) = committed_alerts(&b, &topics.alerts);
    assert!(alerts.is_empty() && n == 0, "{n} alerts committed");
    assert!(read_committed(&b, &topics.dead, Duration::from_secs(60)).is_empty());
    assert_eq!(committed_offsets(&b, &cfg.kafka.group_id, &topics.input, 4), 0);
    let _ = std::fs::remove_file(&f.path);
    let _ = std::fs::remove_file(&path);
}

/// What re-keying costs: the same Debezium feed run keyed by account (`keyed_by = "account"`)
/// and keyed by primary key (`keyed_by = "other"`), from a full topic to drained; prints the
/// busy time of each. `cargo test -p fundwatch-kafka --features broker-tests --test rekey_tests -- --ignored --nocapture`
/// (release: add `--release`).
#[test]
#[ignore = "a measurement, not a check"]
fn rekey_cost() {
    init_logs();
    let b = ensure_broker();
    let f = feed("rekey-cost-feed", 60_000, 60, 34);
    let mut rows = Vec::new();
    for keyed_by in [KeyedBy::Account, KeyedBy::Other] {
        let topics = create_topics(&b, "rekey-cost", 4);
        let cfg = bank_config(&b, &topics, keyed_by);
        if keyed_by == KeyedBy::Account {
            // Keyed by account, as Debezium's message.key.columns would key it.
            let decoder = cfg.input.decoder().unwrap();
            let by_account: Vec<Event> = f
                .events
                .iter()
                .map(|e| {
                    let account = e.value.as_deref().and_then(|v| match decoder.decode(v) {
                        fundwatch_record::Decoded::Record(tx) => Some(tx.account.to_string()),
                        _ => None,
                    });
                    Event {
                        key: account.map_or_else(|| e.key.clone(), |a| a.into_bytes()),
                        value: e.value.clone(),
                    }
                })
                .collect();
            produce_events(&b, &topics.input, &by_account);
        } else {
            produce_events(&b, &topics.input, &f.events);
        }
        let opts = RunOptions {
            instance_id: Some("cost".into()),
            exit_when_idle_ms: Some(2000),
            listen: Some("off".into()),
            ..Default::default()
        };
        let started = Instant::now();
        let cpu0 = cpu_seconds();
        let s = fundwatch_kafka::run(Arc::new(cfg), opts, Shutdown::new()).expect("run");
        let cpu = cpu_seconds() - cpu0;
        rows.push((keyed_by, started.elapsed().as_secs_f64(), s.busy_seconds, cpu, s.alerts));
    }
    for (k, wall, busy, cpu, alerts) in rows {
        eprintln!(
            "rekey_cost: keyed_by = {:?}: {} events, CPU {cpu:.2}s of this process, wall {wall:.1}s (incl. start and idle wait), detection busy {busy:.2}s, {alerts} alerts",
            k.as_str(),
            f.events.len()
        );
    }
}

/// User + system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage for getrusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
