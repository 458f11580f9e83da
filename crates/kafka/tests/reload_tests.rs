//! Live config reload of a running service, against a real broker: a valid change is applied
//! (the alerts after it carry the new config_version and are exactly a replay's under the new
//! config), an invalid file or a Kafka-setting change is refused and the service keeps running
//! on the old config (its alerts still exactly replay's), and SIGHUP triggers a reload.
//!
//! Each test loads the first half of the fixture, waits until the service consumed it, changes
//! the config file, waits for the reload's verdict in the metrics, then loads the second half.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use fundwatch_kafka::{Metrics, RunOptions, RunSummary, Service, Shutdown};
use fundwatch_rules::{Config, Yuan};

/// A SIGHUP reaches every service in this process: the SIGHUP test runs alone.
static SIGNALS: RwLock<()> = RwLock::new(());

/// Sum of a metric's samples (optionally only those carrying `label`, e.g. `result="applied"`).
fn metric(m: &Metrics, family: &str, label: Option<&str>) -> f64 {
    let text = String::from_utf8(m.render()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(family).is_some_and(|r| r.starts_with(['{', ' '])))
        .filter(|l| label.is_none_or(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fixture split in two files at its middle line, and the tx_ids of the second half.
fn halves(name: &str) -> (PathBuf, PathBuf, BTreeSet<String>) {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mid = lines.len() / 2;
    let write = |part: &[&str], tag: &str| {
        let p = std::env::temp_dir().join(format!("{}-{tag}.jsonl", unique(name)));
        std::fs::write(&p, part.join("\n") + "\n").unwrap();
        p
    };
    let second_ids = lines[mid..]
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["tx_id"].as_str().map(str::to_owned))
        .collect();
    (write(&lines[..mid], "a"), write(&lines[mid..], "b"), second_ids)
}

struct Running {
    handle: JoinHandle<RunSummary>,
    metrics: Arc<Metrics>,
}

fn start(cfg: &Config, path: &Path, instance: &str, poll_ms: u64) -> Running {
    let opts = RunOptions {
        instance_id: Some(instance.into()),
        // Long enough to span the reload between the two halves.
        exit_when_idle_ms: Some(12_000),
        listen: Some("off".into()),
        config_path: Some(path.to_owned()),
        config_poll_ms: Some(poll_ms),
        ..Default::default()
    };
    let svc = Service::new(Arc::new(cfg.clone()), opts);
    let metrics = svc.metrics();
    let handle = std::thread::spawn(move || svc.run(Shutdown::new()).expect("run"));
    Running { handle, metrics }
}

fn consumed(m: &Metrics) -> f64 {
    metric(m, "fundwatch_records_consumed_total", None)
}

fn reloads(m: &Metrics, result: &str) -> f64 {
    metric(
        m,
        "fundwatch_config_reloads_total",
        Some(&format!("result=\"{result}\"")),
    )
}

fn settled(m: &Metrics) -> bool {
    metric(m, "fundwatch_ready", None) == 1.0 && metric(m, "fundwatch_partitions_rebuilding", None) == 0.0
}

/// v1 with the same topics, and v2: a lower cash line for large_value reports.
fn configs(name: &str) -> (Topics, Config, Config) {
    let b = ensure_broker();
    let topics = create_topics(&b, name, 4);
    let mut v1 = config(&b, &topics);
    v1.version = "v1".into();
    let mut v2 = v1.clone();
    v2.version = "v2".into();
    v2.rules.large_value.cash_line = Yuan::whole(20_000);
    (topics, v1, v2)
}

/// The reload between the halves, done by `change` (write the file, maybe signal).
fn applied_case(name: &str, poll_ms: u64, change: impl FnOnce(&Path, &Config, &Metrics)) {
    let t0 = Instant::now();
    let (topics, v1, v2) = configs(name);
    let (first, second, second_ids) = halves(name);
    let path = write_config(&v1, name);
    let a = produce(&v1, &first, None);
    let run = start(&v1, &path, name, poll_ms);
    wait_for("the first half", Duration::from_secs(120), || {
        consumed(&run.metrics) >= a.records as f64 && settled(&run.metrics)
    });
    change(&path, &v2, &run.metrics);
    wait_for("the reload", Duration::from_secs(60), || {
        reloads(&run.metrics, "applied") >= 1.0 && settled(&run.metrics)
    });
    assert_eq!(
        metric(&run.metrics, "fundwatch_config_info", Some("config_version=\"v2\"")),
        1.0
    );
    assert_eq!(
        metric(&run.metrics, "fundwatch_config_info", Some("config_version=\"v1\"")),
        0.0
    );
    let b = produce(&v1, &second, None);
    let summary = run.handle.join().expect("service thread");
    // At least: an abort (e.g. a broker restart by another test) re-reads records live.
    assert!(summary.records_consumed >= a.records + b.records);
    assert_eq!(summary.config_version, "v2");

    let (got, n) = committed_alerts(&ensure_broker(), &topics.alerts);
    assert_eq!(n, got.len(), "duplicates on the alert topic");
    let (want_v1, _, _) = replay_with_config(&fixture(), v1.clone());
    let (want_v2, _, _) = replay_with_config(&fixture(), v2.clone());
    for (id, a) in &got {
        match a.config_version.as_str() {
            // Released before the reload: what v1 raises.
            "v1" => assert_eq!(Some(a), want_v1.get(id), "v1 alert {id} is not replay's under v1"),
            "v2" => {}
            other => panic!("alert {id} carries config_version {other}"),
        }
    }
    // After the reload the engines are in v2's state: the alerts the second half triggers
    // are exactly replay's under v2.
    let after = |m: &std::collections::BTreeMap<String, fundwatch_engine::Alert>| {
        m.values()
            .filter(|a| second_ids.contains(&a.triggered_by))
            .map(|a| (a.alert_id.clone(), a.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (got_after, want_after) = (after(&got), after(&want_v2));
    assert!(!want_after.is_empty());
    assert_same_alerts(&got_after, got_after.len(), &want_after);
    // And the new line shows: v2 reports cash days v1 does not.
    let v2_large = got_after.values().filter(|a| a.rule == "large_value").count();
    let v1_large = after(&want_v1).values().filter(|a| a.rule == "large_value").count();
    assert!(
        v2_large > v1_large,
        "the lower cash line raises more large_value alerts ({v2_large} vs {v1_large})"
    );
    eprintln!(
        "{name}: {} alerts ({} triggered after the reload; large_value {v2_large} vs {v1_large} under v1) in {:.1}s",
        got.len(),
        got_after.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn valid_config_change_is_applied_and_later_alerts_carry_its_version() {
    init_logs();
    let _shared = SIGNALS.read().unwrap_or_else(|e| e.into_inner());
    applied_case("reload-ok", 500, |path, v2, _| {
        std::fs::write(path, v2.to_toml()).unwrap()
    });
}

#[test]
fn invalid_config_is_refused_and_the_old_one_keeps_running() {
    init_logs();
    let _shared = SIGNALS.read().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let name = "reload-bad";
    let (topics, v1, _) = configs(name);
    let (first, second, _) = halves(name);
    let path = write_config(&v1, name);
    let a = produce(&v1, &first, None);
    let run = start(&v1, &path, name, 500);
    wait_for("the first half", Duration::from_secs(120), || {
        consumed(&run.metrics) >= a.records as f64 && settled(&run.metrics)
    });
    // Out of range (0s–1d): refused, naming the field.
    let mut bad = v1.clone();
    bad.engine.allowed_lateness = fundwatch_rules::Span(5 * 86_400_000);
    std::fs::write(&path, bad.to_toml()).unwrap();
    wait_for("the refusal", Duration::from_secs(30), || {
        reloads(&run.metrics, "refused") >= 1.0
    });
    // Valid, but a Kafka setting that cannot change live: refused too.
    let mut moved = v1.clone();
    moved.kafka.group_id = format!("{}-other", v1.kafka.group_id);
    moved.rules.large_value.cash_line = Yuan::whole(20_000);
    std::fs::write(&path, moved.to_toml()).unwrap();
    wait_for("the second refusal", Duration::from_secs(30), || {
        reloads(&run.metrics, "refused") >= 2.0
    });
    assert_eq!(reloads(&run.metrics, "applied"), 0.0);
    assert_eq!(
        metric(&run.metrics, "fundwatch_config_info", Some("config_version=\"v1\"")),
        1.0
    );
    let b = produce(&v1, &second, None);
    let summary = run.handle.join().expect("service thread");
    // At least: an abort (e.g. a broker restart by another test) re-reads records live.
    assert!(summary.records_consumed >= a.records + b.records);
    assert_eq!(summary.config_version, "v1");
    // Nothing changed: exactly replay's alerts under v1, every one stamped v1.
    let (got, n) = committed_alerts(&ensure_broker(), &topics.alerts);
    let (want, _, _) = replay_with_config(&fixture(), v1.clone());
    assert_same_alerts(&got, n, &want);
    assert!(got.values().all(|a| a.config_version == "v1"));
    eprintln!("{name}: {} alerts in {:.1}s", got.len(), t0.elapsed().as_secs_f64());
}

#[test]
fn sighup_triggers_a_reload() {
    init_logs();
    let _alone = SIGNALS.write().unwrap_or_else(|e| e.into_inner());
    // File watching off (poll 0): only the signal can make the service see the new file.
    applied_case("reload-hup", 0, |path, v2, m| {
        std::fs::write(path, v2.to_toml()).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            reloads(m, "applied"),
            0.0,
            "not watching the file: nothing before the signal"
        );
        // SAFETY: sending a signal to this process; the service's handler is installed.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGHUP);
        }
    });
}
