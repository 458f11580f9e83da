//! A broker restart mid-stream loses and duplicates nothing. In a test binary of its own:
//! cargo runs test binaries one after another, so no other test's clients see the restart
//! (a librdkafka producer caught in the shutdown window was seen to stall for its whole
//! `message.timeout.ms`, which is not what the other tests are about).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The broker is restarted mid-stream: the service waits, recovers (re-creating a consumer
/// fenced as a static member, or a fenced or wedged producer), and the committed alerts are
/// still exactly replay's.
#[test]
fn broker_restart_mid_stream_loses_nothing() {
    if std::env::var("FUNDWATCH_KAFKA_BOOTSTRAP").is_ok() {
        // Restarting only works for the broker scripts/kafka.sh runs.
        eprintln!("skipped: external broker");
        return;
    }
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "restart", 4);
    let cfg = config(&b, &topics);
    let path = write_config(&cfg, "restart");
    let (want, _) = replay(&fixture());
    let feeder = {
        let cfg = cfg.clone();
        std::thread::spawn(move || produce(&cfg, &fixture(), Some(1500.0)))
    };
    let child = spawn_service(&path, "r", Some(10_000));
    std::thread::sleep(Duration::from_secs(5));
    let status = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
        .arg("restart")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "broker restart failed");
    eprintln!("broker restarted at {:.1}s", t0.elapsed().as_secs_f64());
    feeder.join().unwrap();
    let summary = wait_with_timeout(child, Duration::from_secs(240));
    eprintln!("after restart: {summary}");
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    eprintln!(
        "broker_restart_mid_stream_loses_nothing: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}
