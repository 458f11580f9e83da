//! Event-time guards: a far-future record (at the start of a stream or in its middle) is
//! rejected without moving the watermark, a record older than the windows keep is rejected,
//! and everything else is processed exactly as without them.

mod common;

use std::sync::Arc;

use common::{DAY, HOUR};
use fundwatch_engine::{Alert, Clock, Engine, Origin, TimeRejected, TimeRejection};
use fundwatch_record::{decode_json, Transaction};
use fundwatch_rules::Config;

fn fixture() -> Vec<Transaction<'static>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/stream-20k.jsonl");
    let data = std::fs::read(path).expect("fixture");
    data.split(|b| *b == b'\n')
        .filter_map(|l| decode_json(l).ok().map(Transaction::into_owned))
        .collect()
}

struct Run {
    alerts: Vec<Alert>,
    rejected: Vec<TimeRejected>,
    engine: Engine,
}

fn run(txs: &[Transaction<'static>]) -> Run {
    let mut engine = Engine::new(Arc::new(Config::default()));
    engine.set_clock(Clock::Fixed(0));
    let mut alerts = Vec::new();
    for (i, t) in txs.iter().enumerate() {
        let raw = t.tx_id.as_bytes();
        engine.process_from(
            t,
            Origin {
                position: i as u64 + 1,
                raw,
            },
            &mut alerts,
        );
    }
    engine.flush(&mut alerts);
    let rejected = engine.take_time_rejections();
    Run {
        alerts,
        rejected,
        engine,
    }
}

fn ids(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.alert_id.as_str()).collect()
}

fn copy_at(t: &Transaction<'static>, tx_id: &str, ts_ms: i64) -> Transaction<'static> {
    let mut c = t.clone();
    c.tx_id = tx_id.to_owned().into();
    c.ts_ms = ts_ms;
    c
}

#[test]
fn far_future_records_at_the_start_and_in_the_middle_are_rejected_and_change_nothing_else() {
    let clean = fixture();
    let base = run(&clean);
    assert!(base.alerts.len() > 20, "the fixture raises alerts");
    assert!(
        base.rejected.is_empty(),
        "the clean stream has nothing to reject: {:?}",
        base.rejected.first()
    );

    let mid = clean.len() / 2;
    let mut dirty = clean.clone();
    // A mistyped year in the middle (plausible, so only the stream can tell), a record a month
    // ahead at the very start, and a 9999-12-31 one after it.
    dirty.insert(mid, copy_at(&clean[mid], "FUTURE-MID", clean[mid].ts_ms + 365 * DAY));
    dirty.insert(0, copy_at(&clean[0], "FUTURE-START", clean[0].ts_ms + 30 * DAY));
    dirty.insert(1, copy_at(&clean[1], "FUTURE-9999", common::ts("9999-12-31T23:59:59Z")));
    let got = run(&dirty);

    let mut rejected: Vec<(&str, &str, u64)> = got
        .rejected
        .iter()
        .map(|r| (r.tx_id.as_str(), r.reason.code(), r.position))
        .collect();
    rejected.sort();
    assert_eq!(
        rejected,
        vec![
            ("FUTURE-9999", "future_time", 2),
            ("FUTURE-MID", "future_time", mid as u64 + 3),
            ("FUTURE-START", "future_time", 1),
        ]
    );
    assert_eq!(
        got.rejected
            .iter()
            .find(|r| r.tx_id == "FUTURE-MID")
            .map(|r| r.raw.as_slice()),
        Some(&b"FUTURE-MID"[..])
    );
    assert!(matches!(
        got.rejected
            .iter()
            .find(|r| r.tx_id == "FUTURE-START")
            .map(|r| r.reason),
        Some(TimeRejection::AheadOfStream {
            reference_ms: Some(_),
            ..
        })
    ));
    assert_eq!(
        got.engine.stats().late,
        base.engine.stats().late,
        "nothing after them is late"
    );
    assert_eq!(got.engine.stats().released, base.engine.stats().released);
    assert_eq!(ids(&got.alerts), ids(&base.alerts));
    assert_eq!(got.alerts, base.alerts);
    let g = got.engine.time_guard_stats();
    assert_eq!((g.future_time, g.too_old), (3, 0));
    assert_eq!(got.engine.held(), 0);
}

#[test]
fn without_the_guard_one_far_future_record_would_make_the_rest_late() {
    // What the guard prevents: the same record admitted would move the watermark.
    let clean = fixture();
    let mut cfg = Config::default();
    cfg.engine.max_future = fundwatch_rules::Span::days(7);
    let mid = clean.len() / 2;
    let mut dirty = clean.clone();
    dirty.insert(mid, copy_at(&clean[mid], "FUTURE-MID", clean[mid].ts_ms + 6 * DAY));
    let mut engine = Engine::new(Arc::new(cfg));
    let mut out = Vec::new();
    for t in &dirty {
        engine.process(t, &mut out);
    }
    engine.flush(&mut out);
    assert!(engine.take_time_rejections().is_empty(), "within max_future: admitted");
    assert!(engine.stats().late > 1_000, "late {}", engine.stats().late);
}

#[test]
fn quiet_and_sparse_streams_are_held_then_admitted_in_order() {
    // Records days apart: every one is further than max_future ahead, and each is followed.
    let clean = fixture();
    let sparse: Vec<Transaction<'static>> = clean
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, t)| copy_at(t, &format!("S{i}"), clean[0].ts_ms + i as i64 * 3 * DAY))
        .collect();
    let got = run(&sparse);
    assert!(got.rejected.is_empty(), "{:?}", got.rejected.first());
    assert_eq!(got.engine.stats().released, 40);
    assert_eq!(got.engine.stats().late, 0);
    assert!(got.engine.time_guard_stats().held >= 39);
}

#[test]
fn records_older_than_the_windows_keep_are_rejected() {
    let clean = fixture();
    let mut dirty = clean.clone();
    let at = clean.len() - 10;
    let newest = clean[..at].iter().map(|t| t.ts_ms).max().unwrap_or_default();
    dirty.insert(at, copy_at(&clean[at], "ANCIENT", newest - 101 * DAY));
    dirty.insert(at, copy_at(&clean[at], "OLD-BUT-KEPT", newest - 99 * DAY));
    dirty.insert(
        at,
        copy_at(&clean[at], "BEFORE-1990", common::ts("1989-12-31T23:00:00Z")),
    );
    let base = run(&clean);
    let got = run(&dirty);
    let codes: Vec<(&str, &str)> = got
        .rejected
        .iter()
        .map(|r| (r.tx_id.as_str(), r.reason.code()))
        .collect();
    assert_eq!(codes, vec![("BEFORE-1990", "too_old"), ("ANCIENT", "too_old")]);
    assert!(matches!(got.rejected[1].reason, TimeRejection::TooOld { .. }));
    assert!(got.rejected[1]
        .reason
        .to_string()
        .contains("older than the windows keep (100d"));
    // The one within the horizon is processed (late), as before.
    assert_eq!(got.engine.stats().released, base.engine.stats().released + 1);
    assert_eq!(got.engine.stats().late, base.engine.stats().late + 1);
    assert_eq!(got.engine.time_guard_stats().too_old, 2);
}

#[test]
fn the_wall_clock_bound() {
    let now = common::ts("2026-03-02T09:00:00+08:00");
    assert_eq!(TimeRejection::wall_clock(now + HOUR, now, HOUR), None);
    let r = TimeRejection::wall_clock(now + HOUR + 1, now, HOUR).expect("ahead");
    assert_eq!(r.code(), "future_time");
    assert!(r.to_string().contains("ahead of the wall clock"), "{r}");
}
