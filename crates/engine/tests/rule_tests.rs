//! Each behavioural rule fires on its typology and stays quiet on the benign look-alikes the
//! spec names for it.

mod common;

use common::*;
use fundwatch_record::{AccountType, Channel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: &str = "2026-03-02T09:00:00+08:00";

/// Investors pay round tickets into a scheme over `days`, then the money leaves in one transfer.
fn scatter_scheme(s: &mut Stream, rng: &mut ChaCha8Rng, acct: &str, payers: usize, days: i64, memo_text: &str) -> i64 {
    let t0 = ts(T0);
    let mut total = 0;
    for i in 0..payers {
        let amount = yuan([10_000, 20_000, 50_000, 5_000][rng.gen_range(0..4)]);
        total += amount;
        let t = s.inflow(
            t0 + rng.gen_range(0..days * DAY),
            acct,
            &format!("{acct}-INV{i}"),
            amount,
        );
        memo(t, memo_text);
    }
    s.outflow(
        t0 + days * DAY + 2 * HOUR,
        acct,
        &format!("{acct}-BOSS"),
        total * 9 / 10,
    );
    total
}

#[test]
fn scatter_in_concentrated_out_flags_a_collection_scheme() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = Stream::default();
    scatter_scheme(&mut s, &mut rng, "SCHEME", 25, 12, "投资款");
    scatter_scheme(&mut s, &mut rng, "QUIET_SCHEME", 12, 5, "");
    let alerts = run(&s.sorted());
    assert!(
        rules_for(&alerts, "SCHEME").contains(&"scatter_in_concentrated_out"),
        "{alerts:#?}"
    );
    assert!(
        rules_for(&alerts, "QUIET_SCHEME").contains(&"scatter_in_concentrated_out"),
        "{alerts:#?}"
    );
    let a = alerts
        .iter()
        .find(|a| a.account == "SCHEME" && a.rule == "scatter_in_concentrated_out")
        .unwrap();
    assert!(a.score >= 60.0);
    assert_eq!(a.evidence["distinct_payers"], 25);
    assert!(a.summary.contains("25 distinct payers"), "{}", a.summary);
}

#[test]
fn scatter_ignores_merchants_crowdfunding_and_wholesalers() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut s = Stream::default();
    let t0 = ts(T0);
    // QR merchant: ~150 customers a day, small odd amounts, daily sweep to the owner.
    for d in 0..20 {
        let mut day_total = 0;
        for _ in 0..150 {
            let amount = rng.gen_range(800..20_000);
            day_total += amount;
            let t = s.inflow(
                t0 + d * DAY + rng.gen_range(0..12 * HOUR),
                "SHOP",
                &format!("C{}", rng.gen_range(0..2_000)),
                amount,
            );
            t.channel = if rng.gen_bool(0.5) {
                Channel::Pos
            } else {
                Channel::Mobile
            };
            if rng.gen_bool(0.3) {
                memo(t, "消费");
            }
        }
        s.outflow(t0 + d * DAY + 13 * HOUR, "SHOP", "OWNER", day_total);
    }
    // Medical crowdfunding: 300 donors of 10–200 yuan, then one transfer to the hospital.
    let mut raised = 0;
    for i in 0..300 {
        let amount = yuan([10, 20, 50, 100, 200][rng.gen_range(0..5)]);
        raised += amount;
        let t = s.inflow(t0 + rng.gen_range(0..10 * DAY), "CROWD", &format!("D{i}"), amount);
        memo(t, if rng.gen_bool(0.6) { "爱心捐款" } else { "" });
    }
    s.outflow(t0 + 10 * DAY + HOUR, "CROWD", "HOSPITAL", raised);
    // Wholesaler: 12 steady customers paying odd invoices weekly, paying a supplier each week.
    for w in 0..6 {
        let mut week = 0;
        for c in 0..12 {
            let amount = rng.gen_range(800_000..6_000_000);
            week += amount;
            let t = s.inflow(t0 + w * 7 * DAY + c * HOUR, "WHOLESALE", &format!("BIZ{c}"), amount);
            t.account_type = AccountType::Corporate;
            memo(t, "货款");
        }
        let t = s.outflow(t0 + w * 7 * DAY + 2 * DAY, "WHOLESALE", "SUPPLIER", week * 8 / 10);
        t.account_type = AccountType::Corporate;
    }
    let alerts = run(&s.sorted());
    for acct in ["SHOP", "CROWD", "WHOLESALE"] {
        assert!(
            !rules_for(&alerts, acct).contains(&"scatter_in_concentrated_out"),
            "{acct} flagged: {:#?}",
            alerts.iter().filter(|a| a.account == acct).collect::<Vec<_>>()
        );
    }
}

/// Investors pay in, then receive `rate` of their ticket every `period` days for `periods` periods.
fn ponzi(
    s: &mut Stream,
    rng: &mut ChaCha8Rng,
    acct: &str,
    investors: usize,
    period_days: i64,
    periods: i64,
    memo_text: &str,
) {
    let t0 = ts(T0);
    let mut tickets = Vec::new();
    for i in 0..investors {
        let ticket = yuan([10_000, 20_000, 50_000][rng.gen_range(0..3)]);
        tickets.push(ticket);
        s.inflow(t0 + rng.gen_range(0..5 * DAY), acct, &format!("{acct}-INV{i}"), ticket);
    }
    for p in 1..=periods {
        let batch_start = t0 + p * period_days * DAY + rng.gen_range(-HOUR..HOUR);
        for (i, ticket) in tickets.iter().enumerate() {
            let t = s.outflow(
                batch_start + i as i64 * 2 * MIN,
                acct,
                &format!("{acct}-INV{i}"),
                ticket * 15 / 1000,
            );
            memo(t, memo_text);
        }
    }
}

#[test]
fn periodic_batch_small_out_flags_ponzi_interest() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut s = Stream::default();
    ponzi(&mut s, &mut rng, "MONTHLY", 30, 30, 3, "利息");
    ponzi(&mut s, &mut rng, "WEEKLY", 12, 7, 4, "");
    ponzi(&mut s, &mut rng, "TWO_PERIODS", 12, 30, 2, "利息");
    let alerts = run(&s.sorted());
    assert_eq!(
        rules_for(&alerts, "MONTHLY"),
        vec!["periodic_batch_small_out"],
        "{alerts:#?}"
    );
    assert_eq!(
        rules_for(&alerts, "WEEKLY"),
        vec!["periodic_batch_small_out"],
        "{alerts:#?}"
    );
    assert!(
        rules_for(&alerts, "TWO_PERIODS").is_empty(),
        "two batches are not yet a period"
    );
    let a = alerts.iter().find(|a| a.account == "MONTHLY").unwrap();
    assert_eq!(a.evidence["payees_who_paid_in_share"], 1.0);
}

#[test]
fn periodic_ignores_payroll_and_gig_platforms() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut s = Stream::default();
    let t0 = ts(T0);
    // Payroll: 40 employees, monthly, varied salaries with cents, payroll channel.
    for m in 0..4 {
        let t = s.inflow(t0 + m * 30 * DAY - DAY, "PAYROLL", "REVENUE", yuan(500_000));
        t.account_type = AccountType::Corporate;
        for e in 0..40 {
            let t = s.outflow(
                t0 + m * 30 * DAY + e * MIN,
                "PAYROLL",
                &format!("EMP{e}"),
                rng.gen_range(400_000..2_500_000),
            );
            t.account_type = AccountType::Corporate;
            t.channel = Channel::Payroll;
            memo(t, "工资");
        }
    }
    // Gig platform: weekly commissions to a changing crowd of riders.
    for w in 0..8 {
        for _ in 0..30 {
            let t = s.outflow(
                t0 + w * 7 * DAY + rng.gen_range(0..HOUR),
                "GIG",
                &format!("RIDER{}", rng.gen_range(0..2_000)),
                rng.gen_range(5_000..300_000),
            );
            t.account_type = AccountType::Corporate;
            memo(t, "骑手佣金");
        }
    }
    let alerts = run(&s.sorted());
    assert!(rules_for(&alerts, "PAYROLL").is_empty(), "{alerts:#?}");
    assert!(rules_for(&alerts, "GIG").is_empty(), "{alerts:#?}");
}

#[test]
fn rapid_pass_through_flags_repeated_in_and_out() {
    let mut s = Stream::default();
    let t0 = ts(T0);
    for c in 0..5 {
        let t = t0 + c * 2 * DAY;
        s.inflow(t, "MULE", &format!("SRC{c}"), yuan(300_000));
        s.outflow(t + 40 * MIN, "MULE", "SINK", yuan(299_000));
    }
    let alerts = run(&s.sorted());
    let r: Vec<_> = alerts
        .iter()
        .filter(|a| a.account == "MULE" && a.rule == "rapid_pass_through")
        .collect();
    assert_eq!(r.len(), 1, "one alert per episode: {alerts:#?}");
    assert_eq!(
        r[0].triggered_by, "T0000005",
        "the third cycle's outflow completes the pattern"
    );
    assert_eq!(r[0].evidence["cycles"], 3);
}

#[test]
fn rapid_ignores_salary_spent_the_same_day_and_merchant_sweeps() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut s = Stream::default();
    let t0 = ts(T0);
    for m in 0..3 {
        let t = s.inflow(t0 + m * 30 * DAY, "SALARIED", "EMPLOYER", yuan(25_000));
        memo(t, "工资");
        s.outflow(t0 + m * 30 * DAY + 3 * HOUR, "SALARIED", "LANDLORD", yuan(24_000));
    }
    for d in 0..14 {
        let mut total = 0;
        for _ in 0..60 {
            let a = rng.gen_range(2_000..100_000);
            total += a;
            s.inflow(
                t0 + d * DAY + rng.gen_range(0..10 * HOUR),
                "STALL",
                &format!("C{}", rng.gen_range(0..500)),
                a,
            )
            .channel = Channel::Mobile;
        }
        s.outflow(t0 + d * DAY + 11 * HOUR, "STALL", "STALL_OWNER", total);
    }
    let alerts = run(&s.sorted());
    assert!(rules_for(&alerts, "SALARIED").is_empty(), "{alerts:#?}");
    assert!(
        !rules_for(&alerts, "STALL").contains(&"rapid_pass_through"),
        "{alerts:#?}"
    );
}

#[test]
fn structuring_flags_repeated_deposits_just_under_the_cash_line() {
    let mut s = Stream::default();
    let t0 = ts(T0);
    for (d, y) in [(0, 49_000), (1, 48_500), (3, 49_800)] {
        let t = s.inflow(t0 + d * DAY, "SMURF", "", yuan(y));
        t.channel = Channel::Cash;
    }
    // Split days: two deposits a day totalling just under the line, on three days.
    for d in 0..3 {
        for (h, y) in [(0, 24_000), (3, 24_500)] {
            let t = s.inflow(t0 + d * DAY + h * HOUR, "SPLITTER", "", yuan(y));
            t.channel = Channel::Cash;
        }
    }
    // One near-line deposit is not a pattern; nor are three on one day (that day is reported).
    s.inflow(t0, "ONCE", "", yuan(49_500)).channel = Channel::Cash;
    for h in 0..3 {
        s.inflow(t0 + h * HOUR, "ONE_DAY", "", yuan(49_000)).channel = Channel::Cash;
    }
    let alerts = run(&s.sorted());
    assert_eq!(rules_for(&alerts, "SMURF"), vec!["structuring"], "{alerts:#?}");
    assert_eq!(rules_for(&alerts, "SPLITTER"), vec!["structuring"], "{alerts:#?}");
    assert!(rules_for(&alerts, "ONCE").is_empty());
    assert_eq!(rules_for(&alerts, "ONE_DAY"), vec!["large_value"]);
}
