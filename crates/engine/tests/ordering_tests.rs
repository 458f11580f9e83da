//! Determinism: the same alerts (ids included) whatever the arrival order within the allowed
//! lateness, and ids that change only when input or config do.

mod common;

use common::*;
use fundwatch_engine::Alert;
use fundwatch_record::Channel;
use fundwatch_rules::Config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A stream that raises every rule.
fn mixed_stream() -> Vec<fundwatch_record::Transaction<'static>> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut s = Stream::default();
    let t0 = ts("2026-03-02T09:00:00+08:00");
    let mut tickets = Vec::new();
    for i in 0..20 {
        let ticket = yuan([10_000, 20_000, 50_000][rng.gen_range(0..3)]);
        tickets.push(ticket);
        memo(
            s.inflow(t0 + rng.gen_range(0..6 * DAY), "PONZI", &format!("INV{i}"), ticket),
            "认购",
        );
    }
    let total: i64 = tickets.iter().sum();
    s.outflow(t0 + 6 * DAY + HOUR, "PONZI", "BOSS", total * 8 / 10);
    for p in 1..=3 {
        for (i, t) in tickets.iter().enumerate() {
            s.outflow(t0 + p * 30 * DAY + i as i64 * MIN, "PONZI", &format!("INV{i}"), t / 100);
        }
    }
    for c in 0..4 {
        s.inflow(t0 + c * DAY, "MULE", &format!("S{c}"), yuan(100_000));
        s.outflow(t0 + c * DAY + 30 * MIN, "MULE", "SINK", yuan(99_500));
    }
    for d in 0..3 {
        s.inflow(t0 + d * DAY + 5 * MIN, "SMURF", "", yuan(49_000)).channel = Channel::Cash;
    }
    for k in 0..3 {
        s.inflow(t0 + 10 * DAY + k * 2 * MIN, "BIG", "", yuan(20_000)).channel = Channel::Cash;
    }
    // Background noise interleaved, with many records at identical timestamps.
    for i in 0..3_000 {
        let t = t0 + rng.gen_range(0..100 * DAY) / MIN * MIN;
        s.add(
            t,
            &format!("BG{}", i % 50),
            &format!("P{}", rng.gen_range(0..300)),
            if rng.gen_bool(0.5) {
                fundwatch_record::Direction::In
            } else {
                fundwatch_record::Direction::Out
            },
            rng.gen_range(100..2_000_000),
        );
    }
    s.sorted()
}

fn no_clock(v: &[Alert]) -> Vec<Alert> {
    v.iter().map(Alert::without_wall_clock).collect()
}

#[test]
fn same_alerts_whatever_the_arrival_order_within_lateness() {
    let ordered = mixed_stream();
    let baseline = no_clock(&run(&ordered));
    let rules: std::collections::BTreeSet<&str> = baseline.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules.len(), 5, "the stream must exercise every rule: {rules:?}");
    let lateness = Config::default().engine.allowed_lateness.ms();
    for seed in 0..5 {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        // Each record's arrival key is its event time plus a delay below the lateness bound.
        let mut keyed: Vec<(i64, _)> = ordered
            .iter()
            .cloned()
            .map(|t| (t.ts_ms + rng.gen_range(0..lateness), t))
            .collect();
        keyed.sort_by_key(|(k, _)| *k);
        let shuffled: Vec<_> = keyed.into_iter().map(|(_, t)| t).collect();
        assert_ne!(
            shuffled.iter().map(|t| &t.tx_id).collect::<Vec<_>>(),
            ordered.iter().map(|t| &t.tx_id).collect::<Vec<_>>()
        );
        assert_eq!(no_clock(&run(&shuffled)), baseline, "seed {seed}");
    }
}

#[test]
fn records_later_than_the_lateness_are_counted_and_still_processed() {
    let mut s = Stream::default();
    let t0 = ts("2026-03-02T09:00:00+08:00");
    s.inflow(t0 + 2 * HOUR, "A", "X", 100);
    s.inflow(t0, "A", "", yuan(50_000)).channel = Channel::Cash; // two hours late
    let (alerts, engine) = run_with(Config::default(), &s.txs);
    assert_eq!(engine.stats().late, 1);
    assert_eq!(rules_for(&alerts, "A"), vec!["large_value"]);
}

#[test]
fn alert_ids_are_deterministic_and_follow_the_config() {
    let stream = mixed_stream();
    let a = run(&stream);
    let b = run(&stream);
    assert_eq!(
        a.iter().map(|x| &x.alert_id).collect::<Vec<_>>(),
        b.iter().map(|x| &x.alert_id).collect::<Vec<_>>()
    );
    let cfg = Config {
        version: "branch-330100-v2".into(),
        ..Default::default()
    };
    let (c, _) = run_with(cfg, &stream);
    assert_eq!(c.len(), a.len());
    assert!(c.iter().all(|x| x.config_version == "branch-330100-v2"));
    assert!(a.iter().zip(&c).all(|(x, y)| x.alert_id != y.alert_id));
    assert!(a[0].config_version.starts_with("cfg-"));
    // Where the service connects does not change the thresholds' version; a threshold does.
    let mut elsewhere = Config::default();
    elsewhere.kafka.brokers = "kafka-1.bank.internal:9093".into();
    elsewhere.kafka.checkpoint_interval = fundwatch_rules::Span(0);
    elsewhere.service.listen = "0.0.0.0:9898".into();
    assert_eq!(fundwatch_engine::config_version(&elsewhere), a[0].config_version);
    let mut tighter = Config::default();
    tighter.rules.structuring.params.min_events = 4;
    assert_ne!(fundwatch_engine::config_version(&tighter), a[0].config_version);
}
