//! `large_value` is exact: the regulation's lines to the fen, Beijing calendar days whatever
//! the record's offset, directions and kinds summed separately, one alert per day/direction/kind.

mod common;

use common::*;
use fundwatch_record::{AccountType, Channel, Direction};

fn cash(t: &mut fundwatch_record::Transaction<'static>) {
    t.channel = Channel::Cash;
    t.counterparty = "".into();
}

#[test]
fn cash_line_to_the_fen() {
    let mut s = Stream::default();
    cash(s.inflow(ts("2026-03-02T10:00:00+08:00"), "UNDER", "", yuan(50_000) - 1));
    cash(s.inflow(ts("2026-03-02T10:00:00+08:00"), "EXACT", "", yuan(50_000)));
    let alerts = run(&s.sorted());
    assert_eq!(rules_for(&alerts, "UNDER"), Vec::<&str>::new());
    assert_eq!(rules_for(&alerts, "EXACT"), vec!["large_value"]);
    let a = &alerts[0];
    assert_eq!(a.score, 100.0);
    assert_eq!(a.evidence["line"], "50000.00");
    assert_eq!(a.evidence["day"], "2026-03-02");
    assert_eq!(a.region.as_deref(), Some("330106"));
}

#[test]
fn running_total_raises_once_on_the_record_that_reaches_the_line() {
    let mut s = Stream::default();
    let base = ts("2026-03-02T09:00:00+08:00");
    for (i, y) in [20_000, 29_999, 1, 40_000].iter().enumerate() {
        cash(s.inflow(base + i as i64 * HOUR, "A", "", yuan(*y)));
    }
    // 20,000 + 29,999 = 49,999 (no); + 1 = 50,000 (yes, T0000002); + 40,000 (same day: no second alert)
    let alerts = run(&s.sorted());
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].triggered_by, "T0000002");
    assert_eq!(alerts[0].evidence["day_total"], "50000.00");
    assert_eq!(alerts[0].evidence["records"], 3);
}

#[test]
fn beijing_midnight_splits_days_whatever_the_offset() {
    let mut s = Stream::default();
    // 23:59:59 on 03-01 and 00:00:00 on 03-02, Beijing time, written in UTC: two days.
    cash(s.inflow(ts("2026-03-01T15:59:59Z"), "SPLIT", "", yuan(30_000)));
    cash(s.inflow(ts("2026-03-01T16:00:00Z"), "SPLIT", "", yuan(30_000)));
    // Different UTC days, one Beijing day (03-02): 00:00 and 23:59:59 Beijing.
    cash(s.inflow(ts("2026-03-01T16:00:00Z"), "SAME", "", yuan(30_000)));
    cash(s.inflow(ts("2026-03-02T15:59:59Z"), "SAME", "", yuan(30_000)));
    let alerts = run(&s.sorted());
    assert_eq!(rules_for(&alerts, "SPLIT"), Vec::<&str>::new());
    assert_eq!(rules_for(&alerts, "SAME"), vec!["large_value"]);
    assert_eq!(alerts[0].evidence["day"], "2026-03-02");
}

#[test]
fn directions_and_kinds_are_summed_separately() {
    let mut s = Stream::default();
    let t0 = ts("2026-03-02T09:00:00+08:00");
    // In and out cash of 30,000 each: neither direction reaches 50,000.
    cash(s.inflow(t0, "DIR", "", yuan(30_000)));
    cash(s.outflow(t0 + HOUR, "DIR", "", yuan(30_000)));
    // 40,000 cash + 40,000 transfer: different kinds.
    cash(s.inflow(t0, "KIND", "", yuan(40_000)));
    s.inflow(t0 + HOUR, "KIND", "X1", yuan(40_000));
    // Personal domestic transfers: 499,999.99 no; corporate: 500,000 is far below 2,000,000.
    s.inflow(t0, "PDOM_UNDER", "X", yuan(500_000) - 1);
    s.inflow(t0, "PDOM", "X", yuan(300_000));
    s.inflow(t0 + MIN, "PDOM", "Y", yuan(200_000));
    s.outflow(t0, "CORP_UNDER", "X", yuan(1_999_999)).account_type = AccountType::Corporate;
    s.outflow(t0, "CORP", "X", yuan(2_000_000)).account_type = AccountType::Corporate;
    // Personal cross-border: 200,000 line; domestic transfers do not add to it.
    s.outflow(t0, "XB", "F", yuan(150_000)).cross_border = true;
    s.outflow(t0 + MIN, "XB", "F", yuan(50_000)).cross_border = true;
    s.outflow(t0, "XB_UNDER", "F", yuan(150_000)).cross_border = true;
    s.outflow(t0 + MIN, "XB_UNDER", "D", yuan(60_000));
    // Corporate cash still uses the cash line.
    let t = s.inflow(t0, "CORP_CASH", "", yuan(50_000));
    cash(t);
    t.account_type = AccountType::Corporate;
    let alerts = run(&s.sorted());
    for (acct, expected) in [
        ("DIR", 0),
        ("KIND", 0),
        ("PDOM_UNDER", 0),
        ("PDOM", 1),
        ("CORP_UNDER", 0),
        ("CORP", 1),
        ("XB", 1),
        ("XB_UNDER", 0),
        ("CORP_CASH", 1),
    ] {
        assert_eq!(rules_for(&alerts, acct).len(), expected, "{acct}: {alerts:#?}");
    }
    let xb = alerts.iter().find(|a| a.account == "XB").unwrap();
    assert_eq!(xb.evidence["line_kind"], "personal_cross_border");
    assert_eq!(xb.evidence["direction"], "out");
}

#[test]
fn one_alert_per_day_direction_and_kind() {
    let mut s = Stream::default();
    let t0 = ts("2026-03-02T09:00:00+08:00");
    for d in 0..3 {
        for k in 0..3 {
            cash(s.inflow(t0 + d * DAY + k * HOUR, "DAILY", "", yuan(60_000)));
            cash(s.outflow(t0 + d * DAY + k * HOUR + MIN, "DAILY", "", yuan(60_000)));
        }
    }
    let alerts = run(&s.sorted());
    assert_eq!(count(&alerts, "large_value"), 6, "3 days × 2 directions");
    let mut ids: Vec<&str> = alerts
        .iter()
        .filter(|a| a.rule == "large_value")
        .map(|a| a.alert_id.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "distinct ids");
}

#[test]
fn other_currencies_are_counted_and_passed_over() {
    let mut s = Stream::default();
    let t = s.inflow(ts("2026-03-02T09:00:00+08:00"), "USD", "", yuan(80_000));
    cash(t);
    t.is_cny = false;
    t.currency = "USD".into();
    let (alerts, engine) = run_with(Default::default(), &s.sorted());
    assert!(alerts.is_empty());
    assert_eq!(engine.stats().non_cny, 1);
}

#[test]
fn late_record_within_lateness_lands_on_its_own_day() {
    let mut s = Stream::default();
    // Arrival order differs from event order by 5 minutes, across Beijing midnight.
    cash(s.inflow(ts("2026-03-02T00:02:00+08:00"), "LATE", "", yuan(30_000)));
    cash(s.inflow(ts("2026-03-01T23:58:00+08:00"), "LATE", "", yuan(30_000)));
    cash(s.inflow(ts("2026-03-02T00:03:00+08:00"), "LATE", "", yuan(20_000)));
    let alerts = run(&s.txs); // arrival order as written
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].evidence["day"], "2026-03-02");
    assert_eq!(alerts[0].evidence["day_total"], "50000.00");
    assert_eq!(alerts[0].triggered_by, "T0000002");
    let _ = Direction::In;
}
