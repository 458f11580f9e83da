//! `periodic_batch_small_out` (定期批量小额转出): small payments to many accounts in batches,
//! at a regular period — the "interest" or "dividends" of a Ponzi scheme, often paid to the
//! very people who paid in.
//!
//! A [`BatchTracker`] per account follows small outflows in O(1) and asks for a full
//! evaluation when the current batch reaches `min_batch_recipients` payments (and again as it
//! doubles). The evaluation segments the horizon's small outflows into batches, merges those
//! on the same payout day into events, and needs `min_batches` events at a regular period.
//! Payroll and gig platforms share the shape; the score separates them by whether the payees
//! paid in, whether the amounts are one rate of round principals and repeat period to period,
//! memo wording, the payroll channel, and payee churn.

use fundwatch_record::{format_fen, Channel, Fen};
use fundwatch_window::{AccountId, Row};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Checker, Validate};
use crate::memo::MemoTags;
use crate::units::{Span, Yuan};
use crate::{median_i64, money, ratio, sample_tx_ids, share, Ctx, Hit, RuleId, Score};

/// `[rules.periodic_batch_small_out]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodicParams {
    pub enabled: bool,
    /// Look-back for payout batches; must hold `min_batches` periods. Range 7d–400d.
    pub horizon: Span,
    /// A "small" payment is at most this. Range 1–10,000,000 yuan.
    pub max_payment: Yuan,
    /// Payments at most this far apart belong to one batch. Range 1m–24h.
    pub batch_gap: Span,
    /// Distinct payees a batch needs. Range 2–10,000.
    pub min_batch_recipients: u32,
    /// Payout events (batches on distinct days) needed. Range 2–50.
    pub min_batches: u32,
    /// Shortest period between events (weekly schemes: 7d). Range 1d–90d.
    pub min_period: Span,
    /// Longest period (monthly: up to 31d). Range 1d–180d.
    pub max_period: Span,
    /// An interval is regular within this fraction of the median period. Range 0.05–0.8.
    pub period_tolerance: f64,
    /// Hits scoring below this are not alerts. Range 0–100.
    pub confirm_score: f64,
    /// After an alert, no new one for this account and rule for this long. Range 0s–365d.
    pub cooldown: Span,
}

impl Default for PeriodicParams {
    fn default() -> Self {
        PeriodicParams {
            enabled: true,
            horizon: Span::days(100),
            max_payment: Yuan::whole(50_000),
            batch_gap: Span::hours(3),
            min_batch_recipients: 5,
            min_batches: 3,
            min_period: Span::days(5),
            max_period: Span::days(40),
            period_tolerance: 0.3,
            confirm_score: 60.0,
            cooldown: Span::days(60),
        }
    }
}

impl Validate for PeriodicParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.span("horizon", self.horizon, Span::days(7), Span::days(400));
        c.money("max_payment", self.max_payment, Yuan::whole(1), Yuan::whole(10_000_000));
        c.span("batch_gap", self.batch_gap, Span::minutes(1), Span::hours(24));
        c.range("min_batch_recipients", self.min_batch_recipients, 2, 10_000);
        c.range("min_batches", self.min_batches, 2, 50);
        c.span("min_period", self.min_period, Span::days(1), Span::days(90));
        c.span("max_period", self.max_period, Span::days(1), Span::days(180));
        c.require(
            self.min_period <= self.max_period,
            "min_period",
            "must not exceed max_period",
        );
        c.ratio("period_tolerance", self.period_tolerance, 0.05, 0.8);
        c.ratio("confirm_score", self.confirm_score, 0.0, 100.0);
        c.span("cooldown", self.cooldown, Span(0), Span::days(365));
    }
}

/// Per-account O(1) follower of the current batch of small outflows.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchTracker {
    last_ts: i64,
    count: u32,
    next_eval: u32,
}

impl BatchTracker {
    /// Account for a released record; true when a full evaluation is due.
    pub fn observe(&mut self, r: &Row, p: &PeriodicParams) -> bool {
        if !p.enabled || r.flags.is_in() || r.amount > p.max_payment.fen() {
            return false;
        }
        if self.count == 0 || r.ts_ms - self.last_ts > p.batch_gap.ms() {
            self.count = 0;
            self.next_eval = p.min_batch_recipients;
        }
        self.count += 1;
        self.last_ts = self.last_ts.max(r.ts_ms);
        if self.count >= self.next_eval {
            self.next_eval = self.next_eval.saturating_mul(2);
            return true;
        }
        false
    }
}

struct Batch {
    start: i64,
    rows: Vec<Row>,
}

impl Batch {
    fn recipients(&self) -> FxHashSet<AccountId> {
        self.rows.iter().map(|r| r.counterparty).collect()
    }
}

/// "Payouts that are one fixed rate of round tickets": the unit `u` (rate × the smallest ticket)
/// such that at least 80% of the payouts are small multiples of it. Schemes often round payouts
/// to whole yuan (2.5% of 12,500 → 313), so above 5 yuan a payout may sit half a yuan off its
/// multiple; below 5 yuan it must be exact, or every whole-yuan amount would qualify. The
/// tolerance is absolute on purpose: varied salaries with cents land within half a yuan of a
/// multiple of a 5-yuan-or-larger unit by chance at most one time in ten.
/// Returns (unit in fen, share of payouts that fit).
fn rate_unit(amounts: &[Fen]) -> Option<(Fen, f64)> {
    const HALF_YUAN: Fen = 50;
    const MAX_MULTIPLE: i64 = 400;
    let mut smallest: Vec<Fen> = amounts.to_vec();
    smallest.sort_unstable();
    smallest.dedup();
    smallest.truncate(5);
    let mut best: Option<(Fen, f64)> = None;
    for &a in &smallest {
        for k in 1..=4i64 {
            // Units in hundredths of a fen, so 12.5 yuan (1250 fen) and 0.175 yuan are exact.
            let u100 = a * 100 / k;
            if u100 < 1_000 {
                continue; // under 0.10 yuan: no rate of a round ticket is that small
            }
            let tol100 = if u100 >= 50_000 { HALF_YUAN * 100 + 100 } else { 100 };
            let fits = amounts
                .iter()
                .filter(|&&x| {
                    let x100 = x * 100;
                    let m = (x100 + u100 / 2) / u100;
                    (1..=MAX_MULTIPLE).contains(&m) && (x100 - m * u100).abs() <= tol100
                })
                .count();
            let share = fits as f64 / amounts.len().max(1) as f64;
            if best.is_none_or(|(_, s)| share > s) {
                best = Some((u100 / 100, share));
            }
        }
    }
    best
}

pub fn evaluate(ctx: &Ctx<'_>, p: &PeriodicParams) -> Option<Hit> {
    let t = ctx.trigger;
    if !p.enabled || t.flags.is_in() {
        return None;
    }
    let now = t.ts_ms;
    let rows: Vec<Row> = ctx
        .store
        .rows_since(ctx.account, now - p.horizon.ms())
        .filter(|r| r.ts_ms <= now)
        .collect();
    let cash = ctx.names.get("");

    // Batches of small outflows, then payout events (qualifying batches of one payout day).
    let mut batches: Vec<Batch> = Vec::new();
    let mut last_ts = i64::MIN;
    for r in rows
        .iter()
        .filter(|r| !r.flags.is_in() && r.amount <= p.max_payment.fen() && Some(r.counterparty) != cash)
    {
        match batches.last_mut() {
            Some(b) if r.ts_ms - last_ts <= p.batch_gap.ms() => b.rows.push(*r),
            _ => batches.push(Batch {
                start: r.ts_ms,
                rows: vec![*r],
            }),
        }
        last_ts = r.ts_ms;
    }
    let qualifies = |b: &Batch| b.recipients().len() >= p.min_batch_recipients as usize;
    if !batches
        .last()
        .is_some_and(|b| qualifies(b) && b.rows.iter().any(|r| r.seq == t.seq))
    {
        return None;
    }
    let mut events: Vec<Batch> = Vec::new();
    for b in batches.into_iter().filter(qualifies) {
        match events.last_mut() {
            Some(e) if b.start - e.start < Span::days(1).ms() => e.rows.extend(b.rows),
            _ => events.push(b),
        }
    }
    const MAX_EVENTS: usize = 12;
    if events.len() > MAX_EVENTS {
        events.drain(..events.len() - MAX_EVENTS);
    }
    if events.len() < p.min_batches as usize {
        return None;
    }
    let intervals: Vec<i64> = events.windows(2).map(|w| w[1].start - w[0].start).collect();
    let period = median_i64(&intervals);
    if period < p.min_period.ms() || period > p.max_period.ms() {
        return None;
    }
    let tol = (period as f64 * p.period_tolerance) as i64;
    let regular = intervals.iter().filter(|&&d| (d - period).abs() <= tol).count();
    let regular_share = share(regular, intervals.len());
    // The newest intervals must be regular: the current batch continues the rhythm.
    let needed = p.min_batches as usize - 1;
    if intervals.iter().rev().take(needed).any(|&d| (d - period).abs() > tol) {
        return None;
    }

    // Signals.
    let current = events.last()?;
    let cur_recipients = current.recipients();
    let first_payout: FxHashMap<AccountId, i64> =
        events
            .iter()
            .flat_map(|e| e.rows.iter())
            .fold(FxHashMap::default(), |mut m, r| {
                m.entry(r.counterparty).or_insert(r.ts_ms);
                m
            });
    let mut payers_before: FxHashSet<AccountId> = FxHashSet::default();
    for r in rows.iter().filter(|r| r.flags.is_in()) {
        if first_payout.get(&r.counterparty).is_some_and(|&first| r.ts_ms < first) {
            payers_before.insert(r.counterparty);
        }
    }
    let paid_in_share = share(payers_before.len(), first_payout.len());
    let amounts: Vec<Fen> = current.rows.iter().map(|r| r.amount).collect();
    let (g, unit_share) = rate_unit(&amounts).unwrap_or((0, 0.0));
    let structured = unit_share >= 0.8;
    let prev = events.len().checked_sub(2).map(|i| &events[i]);
    let (repeat_share, overlap) = match prev {
        Some(prev) => {
            let prev_amount: FxHashMap<AccountId, Fen> = prev.rows.iter().map(|r| (r.counterparty, r.amount)).collect();
            let same_amount = current
                .rows
                .iter()
                .filter(|r| prev_amount.get(&r.counterparty) == Some(&r.amount))
                .count();
            let overlap = cur_recipients.iter().filter(|c| prev_amount.contains_key(c)).count();
            (
                share(same_amount, current.rows.len()),
                share(overlap, cur_recipients.len()),
            )
        }
        None => (0.0, 1.0),
    };
    let all: Vec<&Row> = events.iter().flat_map(|e| e.rows.iter()).collect();
    let tag_share = |bits: u8| {
        share(
            all.iter().filter(|r| MemoTags(r.flags.memo_tags()).has(bits)).count(),
            all.len(),
        )
    };
    let payout_share = tag_share(MemoTags::PAYOUT);
    let wage_share = tag_share(MemoTags::SALARY | MemoTags::COMMISSION);
    let payroll_share = share(
        all.iter().filter(|r| r.flags.channel() == Channel::Payroll).count(),
        all.len(),
    );
    let median_payout = median_i64(&amounts);

    let mut s = Score::new(25.0);
    s.add("regular_period", 10.0 * regular_share);
    s.add("payees_paid_in", 40.0 * paid_in_share);
    s.add("fixed_rate_amounts", if structured { 15.0 } else { 0.0 });
    s.add("same_amount_each_period", 10.0 * repeat_share);
    s.add(
        "payout_size",
        if median_payout <= Yuan::whole(3_000).fen() {
            10.0
        } else if median_payout >= Yuan::whole(8_000).fen() {
            -10.0
        } else {
            -5.0
        },
    );
    s.add("payout_memos", 25.0 * payout_share);
    s.add("wage_or_commission_memos", -35.0 * wage_share);
    s.add("payroll_channel", -35.0 * payroll_share);
    s.add("key_sector", if ctx.profile.key_sector { 10.0 } else { 0.0 });
    s.add("payee_churn", if overlap < 0.3 { -10.0 } else { 0.0 });
    let score = s.total();

    let period_days = period as f64 / 86_400_000.0;
    let total: Fen = amounts.iter().sum();
    let mut ev = Map::new();
    ev.insert("payout_events".into(), Value::from(events.len()));
    ev.insert("period_days".into(), Value::from((period_days * 10.0).round() / 10.0));
    ev.insert("regular_interval_share".into(), ratio(regular_share));
    ev.insert(
        "event_starts".into(),
        Value::Array(
            events
                .iter()
                .map(|e| Value::String(fundwatch_record::format_rfc3339_ms(e.start)))
                .collect(),
        ),
    );
    ev.insert("current_batch_payees".into(), Value::from(cur_recipients.len()));
    ev.insert("current_batch_total".into(), money(total));
    ev.insert("median_payout".into(), money(median_payout));
    ev.insert("amount_unit".into(), money(g));
    ev.insert("payouts_on_unit_share".into(), ratio(unit_share));
    ev.insert("payees_who_paid_in_share".into(), ratio(paid_in_share));
    ev.insert("same_amount_as_last_period_share".into(), ratio(repeat_share));
    ev.insert("payout_memo_share".into(), ratio(payout_share));
    ev.insert("score_breakdown".into(), s.breakdown());
    ev.insert(
        "tx_ids".into(),
        sample_tx_ids(ctx, current.rows.iter().map(|r| r.seq), 10),
    );
    let summary = format!(
        "Account {} paid small sums to {} payees in one batch ({} yuan in all, median {} yuan), the {}th such batch at a regular period of about {:.0} days; {:.0}% of its payees had paid money in earlier.",
        ctx.account_name,
        cur_recipients.len(),
        format_fen(total),
        format_fen(median_payout),
        events.len(),
        period_days,
        paid_in_share * 100.0,
    );
    Some(Hit {
        rule: RuleId::PeriodicBatchSmallOut,
        score,
        window_start_ms: events[0].start,
        window_end_ms: now,
        summary,
        evidence: ev,
        episode: None,
    })
}

#[cfg(test)]
mod tests {
    use super::rate_unit;

    #[test]
    fn finds_the_rate_of_round_principals() {
        // 1.5% of 10,000 / 20,000 / 50,000: exact multiples of 150.00.
        let (u, share) = rate_unit(&[15_000, 30_000, 75_000, 15_000, 30_000]).unwrap();
        assert_eq!((u, share), (15_000, 1.0));
        // 2.5% of multiples of 500, rounded to whole yuan: 12.50 per 500.
        let rounded = [
            7_500, 37_500, 31_300, 5_000, 21_300, 36_300, 16_300, 11_300, 3_800, 66_300, 2_500, 6_300,
        ];
        let (u, share) = rate_unit(&rounded).unwrap();
        assert_eq!(u, 1_250);
        assert!(share >= 0.99, "{share}");
        // The analyst's case: multiples of 0.175 yuan, exact.
        let analyst = [1_750, 3_500, 8_750, 17_500, 5_250];
        assert!(rate_unit(&analyst).unwrap().1 >= 0.99);
    }

    #[test]
    fn varied_salaries_have_no_unit() {
        let salaries = [
            852_317, 1_200_045, 467_812, 2_391_077, 733_350, 998_001, 1_534_276, 640_519, 1_107_733, 579_904,
        ];
        assert!(rate_unit(&salaries).unwrap().1 < 0.5);
        let commissions = [3_781, 15_230, 8_412, 22_907, 4_466, 17_001, 9_999, 12_345, 6_780, 2_231];
        assert!(rate_unit(&commissions).unwrap().1 < 0.8);
    }
}
