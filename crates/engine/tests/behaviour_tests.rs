//! Detection from behaviour alone: schemes that show none of the metadata signals (no memo, no
//! industry, no round tickets, payouts from an account nobody paid into) are still caught, and
//! look-alikes that share the scheme's shape are told apart by amounts, timing and
//! counterparties. Each test names the signal it needs, so removing that signal fails it.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: &str = "2026-03-02T09:00:00+08:00";
const PERIODIC: &str = "periodic_batch_small_out";
const SCATTER: &str = "scatter_in_concentrated_out";

/// Stakes of a scheme that avoids round sums: lucky numbers and arbitrary whole yuan.
fn stakes(rng: &mut ChaCha8Rng, n: usize) -> Vec<i64> {
    (0..n)
        .map(|_| match rng.gen_range(0..3) {
            0 => yuan([8_888, 6_666, 16_800, 18_888][rng.gen_range(0..4)]),
            _ => yuan(rng.gen_range(3_000..60_000)),
        })
        .collect()
}

/// A payout account nobody paid into: topped up by one transfer a few hours before each batch,
/// then `stake × rate` to each payee, no memo, the batch spread over about three hours, the
/// payout day wandering by up to two days. `pay` gives each payee's sum in period `k`.
fn payout_account(s: &mut Stream, acct: &str, payees: usize, pay: &dyn Fn(usize, usize) -> i64) {
    let t0 = ts(T0);
    for (k, jitter) in [0i64, 2, -1, 1, -2].into_iter().enumerate() {
        let start = t0 + (k as i64 * 10 + jitter) * DAY + 10 * HOUR;
        let total: i64 = (0..payees).map(|i| pay(i, k)).sum();
        s.inflow(start - 4 * HOUR, acct, "CONTROLLER", total * 21 / 20);
        for i in 0..payees {
            s.outflow(start + i as i64 * 9 * MIN, acct, &format!("INVESTOR{i}"), pay(i, k));
        }
    }
}

#[test]
fn separate_payout_account_is_caught_by_stable_sums_and_funding() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let stake = stakes(&mut rng, 20);
    let mut s = Stream::default();
    // 1.5% a period, rounded to the fen; a fen of fee noise now and then.
    payout_account(&mut s, "PAYOUT", 20, &|i, k| {
        stake[i] * 15 / 1000 + ((i + k) % 3) as i64 - 1
    });
    let (alerts, near) = run_with_near_misses(&s.sorted());
    assert_eq!(rules_for(&alerts, "PAYOUT"), vec![PERIODIC], "{alerts:#?}{near:#?}");
    // Neither memos nor payees who paid in: the alert stands on the sums and the funding.
    let part = |sig| score_part(&alerts, &near, "PAYOUT", PERIODIC, sig).unwrap_or(0.0);
    assert_eq!(part("payees_paid_in"), 0.0);
    assert_eq!(part("payout_memos"), 0.0);
    assert!(part("same_amount_each_period") >= 14.0, "{alerts:#?}");
    assert_eq!(part("funded_for_each_batch"), 10.0, "{alerts:#?}");
    assert_eq!(part("regular_period"), 10.0, "±2 days of jitter is still a period");
}

#[test]
fn part_time_pay_by_hours_is_not_interest() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let base: Vec<i64> = (0..20).map(|_| yuan(rng.gen_range(300..1_500))).collect();
    // Hours worked change every period: sums move by up to ±40% person by person.
    let hours: Vec<Vec<i64>> = (0..5)
        .map(|_| (0..20).map(|_| rng.gen_range(60..140)).collect())
        .collect();
    let mut s = Stream::default();
    payout_account(&mut s, "SHOP_STAFF", 20, &|i, k| base[i] * hours[k][i] / 100);
    let (alerts, near) = run_with_near_misses(&s.sorted());
    assert!(rules_for(&alerts, "SHOP_STAFF").is_empty(), "{alerts:#?}");
    let part = |sig| score_part(&alerts, &near, "SHOP_STAFF", PERIODIC, sig).unwrap_or(0.0);
    assert_eq!(part("payee_amounts_vary"), -10.0, "{near:#?}");
    assert!(part("same_amount_each_period") < 5.0, "{near:#?}");
}

/// `payers` people pay `amount(i)` into `acct` within `days`, then `out` leaves in one
/// transfer two days after the last payment.
fn collection(
    s: &mut Stream,
    rng: &mut ChaCha8Rng,
    acct: &str,
    payers: usize,
    days: i64,
    amount: &dyn Fn(usize) -> i64,
    out: &dyn Fn(i64) -> i64,
) {
    let t0 = ts(T0) + 20 * DAY;
    // An ordinary account: some earlier traffic, so payers can be told new or known.
    for d in 0..20 {
        s.outflow(ts(T0) + d * DAY, acct, "SUPERMARKET", yuan(rng.gen_range(30..300)));
    }
    let mut total = 0;
    for i in 0..payers {
        let a = amount(i);
        total += a;
        s.inflow(t0 + rng.gen_range(0..days * DAY), acct, &format!("{acct}-P{i}"), a);
    }
    s.outflow(t0 + (days + 2) * DAY, acct, &format!("{acct}-DEST"), out(total));
}

#[test]
fn quiet_scheme_is_caught_by_varied_stakes() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let stake = stakes(&mut rng, 16);
    let mut s = Stream::default();
    collection(&mut s, &mut rng, "QUIET", 16, 12, &|i| stake[i], &|t| t * 85 / 100);
    let (alerts, near) = run_with_near_misses(&s.sorted());
    assert_eq!(rules_for(&alerts, "QUIET"), vec![SCATTER], "{near:#?}");
    let part = |sig| score_part(&alerts, &near, "QUIET", SCATTER, sig).unwrap_or(0.0);
    assert_eq!(part("round_tickets"), 0.0);
    assert_eq!(part("investment_memos"), 0.0);
    assert_eq!(part("varied_stakes"), 10.0, "{alerts:#?}");
    assert_eq!(part("collection_span"), 5.0, "{alerts:#?}");
}

#[test]
fn wedding_gifts_and_class_fees_are_not_a_collection_scheme() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let gifts: Vec<i64> = (0..60)
        .map(|_| yuan([200, 500, 600, 800, 888, 1_000, 1_314, 2_000][rng.gen_range(0..8)]))
        .collect();
    let mut s = Stream::default();
    // 60 guests within two days, then the banquet and a car paid with savings on top.
    collection(&mut s, &mut rng, "WEDDING", 60, 2, &|i| gifts[i], &|t| t * 13 / 10);
    // One fee from 40 parents within ten days, passed to the school in one transfer.
    collection(
        &mut s,
        &mut rng,
        "CLASS",
        40,
        10,
        &|i| if i % 13 == 0 { yuan(7_160) } else { yuan(3_580) },
        &|t| t,
    );
    let (alerts, near) = run_with_near_misses(&s.sorted());
    assert!(rules_for(&alerts, "WEDDING").is_empty(), "{alerts:#?}");
    assert!(rules_for(&alerts, "CLASS").is_empty(), "{alerts:#?}");
    let part = |acct, sig| score_part(&alerts, &near, acct, SCATTER, sig).unwrap_or(0.0);
    assert_eq!(part("WEDDING", "collection_span"), -10.0, "{near:#?}");
    assert_eq!(part("WEDDING", "outflow_exceeds_collection"), -10.0, "{near:#?}");
    assert_eq!(part("WEDDING", "ticket_size"), -10.0, "{near:#?}");
    assert_eq!(part("CLASS", "fixed_price_payments"), -20.0, "{near:#?}");
}

#[test]
fn rotating_savings_one_round_price_is_a_contribution_not_tickets() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut s = Stream::default();
    // 互助会: twelve members put in 10,000 each; the pot goes to this round's member.
    collection(&mut s, &mut rng, "CLUB", 12, 2, &|_| yuan(10_000), &|t| t);
    let (alerts, near) = run_with_near_misses(&s.sorted());
    assert!(rules_for(&alerts, "CLUB").is_empty(), "{alerts:#?}");
    let part = |sig| score_part(&alerts, &near, "CLUB", SCATTER, sig).unwrap_or(0.0);
    assert_eq!(part("round_tickets"), 0.0, "one round price is not a menu of tickets");
    assert_eq!(part("fixed_price_payments"), -20.0, "{near:#?}");
}

#[test]
fn a_second_round_of_new_investors_counts() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let stake = stakes(&mut rng, 24);
    let mut s = Stream::default();
    let t0 = ts(T0) + 20 * DAY;
    for d in 0..20 {
        s.outflow(ts(T0) + d * DAY, "WAVES", "SUPERMARKET", yuan(rng.gen_range(30..300)));
    }
    // Two waves of twelve different investors, each moved on to the controller.
    for wave in 0..2i64 {
        let start = t0 + wave * 12 * DAY;
        let mut total = 0;
        for i in 0..12 {
            let a = stake[wave as usize * 12 + i];
            total += a;
            s.inflow(start + rng.gen_range(0..4 * DAY), "WAVES", &format!("W{wave}-P{i}"), a);
        }
        s.outflow(start + 5 * DAY, "WAVES", "CONTROLLER", total * 9 / 10);
    }
    // No cooldown, so the second wave is evaluated and alerted on its own.
    let cfg =
        fundwatch_rules::Config::from_toml("[rules.scatter_in_concentrated_out]\ncooldown = \"0s\"\n").expect("config");
    let (alerts, _) = run_with(cfg, &s.sorted());
    let waves: Vec<_> = alerts
        .iter()
        .filter(|a| a.account == "WAVES" && a.rule == SCATTER)
        .collect();
    assert_eq!(waves.len(), 2, "{alerts:#?}");
    let part = |a: &fundwatch_engine::Alert| a.evidence["score_breakdown"]["another_round_of_new_payers"].as_f64();
    assert_eq!(part(waves[0]), None, "the first wave has no earlier round");
    assert_eq!(part(waves[1]), Some(10.0), "{:#?}", waves[1]);
}
