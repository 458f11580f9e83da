//! Exactly-once on a stream longer than the rules' horizons and cooldowns (220 days), produced
//! with Kafka timestamps = event times (CreateTime), against a real broker:
//! - kill -9 in rounds with checkpoints in use, with checkpoints off (so the next round
//!   restores a checkpoint older than the committed offsets), and with the checkpoints gone
//!   (a fresh state topic: the fallback rebuild): the committed alert set equals replay's;
//! - a restart of a caught-up instance re-reads almost nothing;
//! - the cooldown case: an alert whose evidence reaches back beyond the rebuild's start, then
//!   a restart without checkpoints inside its cooldown: no second alert, no lost one;
//! - the input's retention deleting what a rebuild needs is reported (metric, /readyz).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use fundwatch_engine::Alert;
use fundwatch_rules::{Config, Span};
use rand::Rng;

const DAY: i64 = 86_400_000;

/// A generated 220-day stream (cached per test process). `ordered`: no late records, so a
/// drained first half flushes nothing that replay would release later.
fn long_stream(ordered: bool) -> PathBuf {
    static IN_ORDER: OnceLock<PathBuf> = OnceLock::new();
    static DISORDERED: OnceLock<PathBuf> = OnceLock::new();
    let cell = if ordered { &IN_ORDER } else { &DISORDERED };
    cell.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "{}.jsonl",
            unique(if ordered { "long-ordered" } else { "long" })
        ));
        let opts = fundwatch_generate::GenerateOptions {
            records: 150_000,
            days: 220,
            seed: 7,
            disorder_rate: if ordered { 0.0 } else { 0.02 },
            ..Default::default()
        };
        let out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        fundwatch_generate::generate(&opts, out, std::io::sink()).expect("generate");
        path
    })
    .clone()
}

fn long_topics(b: &str, name: &str) -> Topics {
    create_topics_with(b, name, 4, &[("retention.ms", "-1")])
}

fn lookback_ms(c: &Config) -> i64 {
    c.engine
        .max_history
        .ms()
        .max(c.rules.longest_horizon().ms())
        .max(c.rules.longest_cooldown().ms())
}

fn starts(summary: &serde_json::Value, how: &str) -> u64 {
    summary["partition_starts"][how].as_u64().unwrap_or(0)
}

#[test]
fn kill9_rounds_on_a_long_stream_equal_replay() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let stream = long_stream(false);
    let (want, replay_summary) = replay(&stream);
    assert!(want.values().any(|a| a.rule == "periodic_batch_small_out"));
    let topics = long_topics(&b, "ck-kill");
    let mut cfg = config(&b, &topics);
    cfg.kafka.checkpoint_interval = Span(1_000);
    let on = write_config(&cfg, "ck-on");
    let mut off_cfg = cfg.clone();
    off_cfg.kafka.checkpoint_interval = Span(0);
    let off = write_config(&off_cfg, "ck-off");
    let mut gone_cfg = cfg.clone();
    gone_cfg.kafka.state_topic = format!("{}-empty", topics.state);
    let gone = write_config(&gone_cfg, "ck-gone");
    let feeder = {
        let cfg = cfg.clone();
        let stream = stream.clone();
        std::thread::spawn(move || produce_event_time(&cfg, &stream, Some(12_000.0), 0, None))
    };
    let mut rng = rand::thread_rng();
    // on, on: checkpoints restored after each kill; off: offsets move past the last
    // checkpoint; on: that older checkpoint is restored and the records after it replayed;
    // gone: no checkpoint at all (rebuild from the input, cooldowns from the alert topic); on.
    for (round, path) in [&on, &on, &off, &on, &gone, &on].into_iter().enumerate() {
        let mut child = spawn_service(path, "ck", None);
        let ms = rng.gen_range(2500..5000);
        std::thread::sleep(Duration::from_millis(ms));
        kill9(&mut child);
        eprintln!("round {round} ({}): killed after {ms} ms", path.display());
    }
    let produced = feeder.join().unwrap();
    assert_eq!(produced.records, replay_summary.records_read);
    let child = spawn_service(&on, "ck", Some(3000));
    let summary = wait_with_timeout(child, Duration::from_secs(300));
    eprintln!("final run: {summary}");
    assert!(
        starts(&summary, "checkpoint") > 0,
        "the final run restored no checkpoint: {summary}"
    );
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    eprintln!(
        "kill9_rounds_on_a_long_stream_equal_replay: {} alerts in {:.1}s",
        want.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn restart_of_a_caught_up_instance_rereads_little() {
    init_logs();
    let b = ensure_broker();
    let stream = long_stream(false);
    let (want, _) = replay(&stream);
    let topics = long_topics(&b, "ck-restart");
    let cfg = config(&b, &topics);
    let on = write_config(&cfg, "ck-restart-on");
    let mut off_cfg = cfg.clone();
    off_cfg.kafka.checkpoint_interval = Span(0);
    let off = write_config(&off_cfg, "ck-restart-off");
    let produced = produce_event_time(&cfg, &stream, None, 0, None);
    let first = wait_with_timeout(spawn_service(&on, "r", Some(2000)), Duration::from_secs(300));
    assert!(first["checkpoints"].as_u64().unwrap_or(0) >= 4, "{first}");
    // Caught up: restarted, it restores the checkpoints written at the end of the first run.
    let t = Instant::now();
    let again = wait_with_timeout(spawn_service(&on, "r", Some(2000)), Duration::from_secs(300));
    let with_ck = t.elapsed();
    let replayed = again["records_replayed"].as_u64().unwrap_or(u64::MAX);
    eprintln!(
        "caught-up restart with checkpoints: {replayed} of {} records re-read, {:.1}s to idle exit: {again}",
        produced.records,
        with_ck.as_secs_f64()
    );
    assert_eq!(starts(&again, "checkpoint"), 4, "{again}");
    assert!(
        replayed * 20 <= produced.records,
        "re-read {replayed} of {}",
        produced.records
    );
    // Without checkpoints the same restart rebuilds from the input's lookback.
    let t = Instant::now();
    let rebuilt = wait_with_timeout(spawn_service(&off, "r", Some(2000)), Duration::from_secs(300));
    eprintln!(
        "caught-up restart without checkpoints: {} re-read, {:.1}s: {rebuilt}",
        rebuilt["records_replayed"],
        t.elapsed().as_secs_f64()
    );
    assert_eq!(starts(&rebuilt, "rebuild"), 4, "{rebuilt}");
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
}

/// A behavioural alert whose evidence starts more than (lookback − cooldown/2) before it: a
/// restart half-way through its cooldown rebuilds from after the evidence started.
fn alert_with_long_evidence(want: &std::collections::BTreeMap<String, Alert>, cfg: &Config) -> Option<(Alert, i64)> {
    let lookback = lookback_ms(cfg);
    let cooldown = cfg.rules.periodic_batch_small_out.params.cooldown.ms();
    want.values()
        .filter(|a| a.rule == "periodic_batch_small_out")
        .filter_map(|a| {
            let start = fundwatch_record::parse_rfc3339_ms(&a.window_start).ok()?;
            let end = fundwatch_record::parse_rfc3339_ms(&a.window_end).ok()?;
            let restart = end + cooldown / 2;
            (start < restart - lookback - DAY).then(|| (a.clone(), restart))
        })
        .min_by_key(|(_, t)| *t)
}

/// Where to split `stream` (in event-time order) before its first valid record at or after
/// `ts_ms`: (raw lines to skip for the second half, records to produce in the first).
fn split_before(stream: &Path, ts_ms: i64) -> (u64, u64) {
    let text = std::fs::read_to_string(stream).unwrap();
    let mut records = 0;
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if fundwatch_record::decode_json(line.as_bytes()).is_ok_and(|tx| tx.ts_ms >= ts_ms) {
            return (i as u64, records);
        }
        records += 1;
    }
    (u64::MAX, records)
}

#[test]
fn rebuild_without_checkpoint_inside_a_cooldown_keeps_it() {
    init_logs();
    let b = ensure_broker();
    let stream = long_stream(true);
    let (want, _) = replay(&stream);
    let topics = long_topics(&b, "ck-cool");
    let mut cfg = config(&b, &topics);
    cfg.kafka.checkpoint_interval = Span(0);
    let (alert, restart) = alert_with_long_evidence(&want, &cfg)
        .expect("the stream has an alert whose evidence reaches back beyond a rebuild inside its cooldown");
    let (skip, first_records) = split_before(&stream, restart);
    eprintln!(
        "alert {} on {} ({} .. {}); restart at {} after {first_records} records",
        alert.alert_id,
        alert.account,
        alert.window_start,
        alert.window_end,
        fundwatch_record::format_rfc3339_ms(restart)
    );
    let path = write_config(&cfg, "ck-cool");
    produce_event_time(&cfg, &stream, None, 0, Some(first_records));
    let first = wait_with_timeout(spawn_service(&path, "c", Some(2000)), Duration::from_secs(300));
    eprintln!("first half: {first}");
    produce_event_time(&cfg, &stream, None, skip, None);
    let second = wait_with_timeout(spawn_service(&path, "c", Some(2000)), Duration::from_secs(300));
    eprintln!("second half: {second}");
    assert!(starts(&second, "rebuild") > 0, "{second}");
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert!(
        got.contains_key(&alert.alert_id),
        "the alert before the restart is missing"
    );
    assert_same_alerts(&got, n, &want);
}

#[test]
fn deleted_input_records_a_rebuild_needs_are_reported() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    init_logs();
    let b = ensure_broker();
    let stream = long_stream(false);
    let topics = long_topics(&b, "ck-ret");
    let mut cfg = config(&b, &topics);
    cfg.kafka.checkpoint_interval = Span(0);
    let path = write_config(&cfg, "ck-ret");
    let produced = produce_event_time(&cfg, &stream, None, 0, None);
    wait_with_timeout(spawn_service(&path, "t", Some(2000)), Duration::from_secs(300));
    // Retention: the oldest records of partition 0 go, up to three quarters of the stream
    // (day ~165 of 220: inside the 100-day lookback of a restart at its end).
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    let cut = (produced.records / 4 * 3 / 4) as i64;
    tpl.add_partition_offset(&topics.input, 0, Offset::Offset(cut)).unwrap();
    futures_executor(admin.delete_records(&tpl, &AdminOptions::new())).expect("delete records");
    let service = fundwatch_kafka::Service::new(
        Arc::new(cfg),
        fundwatch_kafka::RunOptions {
            instance_id: Some("t".into()),
            listen: Some("off".into()),
            ..Default::default()
        },
    );
    let metrics = service.metrics();
    let shutdown = fundwatch_kafka::Shutdown::new();
    let handle = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || service.run(shutdown))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let problem = loop {
        let p = metrics.problems.lock().unwrap().get("partition 0").cloned();
        if let Some(p) = p {
            break p;
        }
        assert!(Instant::now() < deadline, "no problem reported for partition 0");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("reported: {problem}");
    assert!(
        problem.contains("partition 0") && problem.contains(&format!("offsets below {cut}")),
        "{problem}"
    );
    let text = String::from_utf8(metrics.render()).unwrap();
    assert!(text.contains("fundwatch_state_incomplete{partition=\"0\"} 1"), "{text}");
    assert!(!text.contains("fundwatch_state_incomplete{partition=\"1\"} 1"));
    shutdown.trigger();
    handle.join().unwrap().expect("run");
}
