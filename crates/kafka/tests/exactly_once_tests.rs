//! Exactly-once against a real broker: the committed alert set equals `replay`'s, with and
//! without the service being killed with SIGKILL mid-stream.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fundwatch_kafka::{RunOptions, Shutdown};
use rand::Rng;

#[test]
fn run_equals_replay() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "eq", 4);
    let cfg = config(&b, &topics);
    let produced = produce(&cfg, &fixture(), None);
    let (want, replay_summary) = replay(&fixture());
    assert_eq!(produced.records, replay_summary.records_read);
    let opts = RunOptions {
        instance_id: Some("eq".into()),
        exit_when_idle_ms: Some(2000),
        listen: Some("off".into()),
        ..Default::default()
    };
    let summary = fundwatch_kafka::run(Arc::new(cfg), opts, Shutdown::new()).expect("run");
    if summary.transactions_aborted == 0 {
        assert_eq!(summary.records_consumed, produced.records);
    } else {
        // The restart test's broker restart can abort a transaction here, whose records are
        // then read live again.
        assert!(summary.records_consumed >= produced.records);
    }
    assert_eq!(summary.alerts as usize, want.len());
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    eprintln!(
        "run_equals_replay: {} alerts in {:.1}s",
        want.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn kill9_restarts_equal_replay() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "kill", 4);
    let cfg = config(&b, &topics);
    let path = write_config(&cfg, "kill");
    let (want, _) = replay(&fixture());
    // The stream keeps arriving while the service is killed and restarted.
    let feeder = {
        let cfg = cfg.clone();
        std::thread::spawn(move || produce(&cfg, &fixture(), Some(2500.0)))
    };
    let mut rng = rand::thread_rng();
    for round in 0..4 {
        let mut child = spawn_service(&path, "k", None);
        let ms = rng.gen_range(1500..4500);
        std::thread::sleep(Duration::from_millis(ms));
        kill9(&mut child);
        eprintln!("round {round}: killed after {ms} ms");
    }
    feeder.join().unwrap();
    let child = spawn_service(&path, "k", Some(3000));
    let summary = wait_with_timeout(child, Duration::from_secs(180));
    eprintln!("final run: {summary}");
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    eprintln!(
        "kill9_restarts_equal_replay: {} alerts in {:.1}s",
        want.len(),
        t0.elapsed().as_secs_f64()
    );
}
