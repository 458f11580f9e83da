//! Two instances in one group; one is killed with SIGKILL mid-stream: the survivor takes over
//! its partitions (rebuilding their state) and the committed alert set is still exact.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn survivor_takes_over_killed_instance() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics(&b, "rebal", 4);
    let cfg = config(&b, &topics);
    let path = write_config(&cfg, "rebal");
    let (want, _) = replay(&fixture());
    let mut a = spawn_service(&path, "a", Some(15_000));
    let survivor = spawn_service(&path, "b", Some(15_000));
    std::thread::sleep(Duration::from_secs(3));
    let feeder = {
        let cfg = cfg.clone();
        std::thread::spawn(move || produce(&cfg, &fixture(), Some(2000.0)))
    };
    std::thread::sleep(Duration::from_secs(5));
    kill9(&mut a);
    eprintln!("killed instance a at {:.1}s", t0.elapsed().as_secs_f64());
    feeder.join().unwrap();
    let summary = wait_with_timeout(survivor, Duration::from_secs(240));
    eprintln!("survivor: {summary}");
    // The guarantee first; then that the run did exercise a takeover.
    let (got, n) = committed_alerts(&b, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    assert!(
        summary["rebalances"].as_u64().unwrap_or(0) >= 3,
        "survivor saw the rebalance"
    );
    assert!(
        summary["records_replayed"].as_u64().unwrap_or(0) > 0,
        "survivor rebuilt a's partitions"
    );
    eprintln!(
        "survivor_takes_over_killed_instance: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}
