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
    /// An interval is regular within this fraction of the median period… Range 0.05–0.8.
    pub period_tolerance: f64,
    /// …plus this much, since each payout day may wander by a day or two (a weekend, a
    /// holiday, a scheme avoiding a fixed day), which moves two intervals. Range 0s–7d.
    pub period_jitter: Span,
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
            period_jitter: Span::days(2),
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
        c.span("period_jitter", self.period_jitter, Span(0), Span::days(7));
        c.ratio("confirm_score", self.confirm_score, 0.0, 100.0);
        c.span("cooldown", self.cooldown, Span(0), Span::days(365));
    }
}

/// Per-account O(1) follower of the current batch of small outflows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Tolerance of "the same sum again": rounding to the yuan and small fees move a payout by
/// well under 2%; pay by hours worked or commissions move by far more.
const AMOUNT_TOLERANCE: f64 = 0.02;

/// How one event's sums follow the previous event's, payee by payee.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tracking {
    /// Share of the later event's payees also paid in the earlier one.
    common_share: f64,
    /// Share of those whose sum is the earlier sum times one common factor (the median
    /// ratio; 1.0 when nothing changed), within [`AMOUNT_TOLERANCE`].
    fit_of_common: f64,
}

/// Compare two events; `None` when fewer than `min_pairs` payees were paid in both.
fn amounts_track(earlier: &Batch, later: &Batch, min_pairs: usize) -> Option<Tracking> {
    let sums = |b: &Batch| {
        b.rows.iter().fold(FxHashMap::<AccountId, Fen>::default(), |mut m, r| {
            *m.entry(r.counterparty).or_default() += r.amount;
            m
        })
    };
    let (a, b) = (sums(earlier), sums(later));
    let ratios: Vec<f64> = b
        .iter()
        .filter_map(|(c, &x)| a.get(c).map(|&y| x as f64 / y.max(1) as f64))
        .collect();
    if ratios.len() < min_pairs.max(2) {
        return None;
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let factor = sorted[sorted.len() / 2];
    let fits = ratios
        .iter()
        .filter(|&&r| (r / factor - 1.0).abs() <= AMOUNT_TOLERANCE)
        .count();
    Some(Tracking {
        common_share: share(ratios.len(), b.len()),
        fit_of_common: share(fits, ratios.len()),
    })
}

/// How the payouts were paid for: the share of payout events (the last six) topped up just
/// before — inflows from at most three sources within two days before the event, together
/// between 0.8 and 2 times the event's total, so the batch drains what came in — or 1.0 when
/// one earlier injection covers all the events (a payout account funded once). A business
/// paying wages or commissions out of its takings shows neither.
fn funded_before_payouts(rows: &[Row], events: &[Batch], cash: Option<AccountId>) -> f64 {
    const LEAD_MS: i64 = 2 * 86_400_000;
    let recent = &events[events.len().saturating_sub(6)..];
    let total = |e: &Batch| e.rows.iter().map(|r| r.amount).sum::<Fen>();
    // The newest event may still be under way (the rule runs as a batch grows), so it is
    // measured against the largest earlier event as well as against itself.
    let earlier_max = recent[..recent.len().saturating_sub(1)]
        .iter()
        .map(total)
        .max()
        .unwrap_or(0);
    let mut funded = 0usize;
    for (i, e) in recent.iter().enumerate() {
        let end = e.rows.iter().map(|r| r.ts_ms).max().unwrap_or(e.start);
        // Rows are in event-time order: only the lead-up to this event is read.
        let from = rows.partition_point(|r| r.ts_ms < e.start - LEAD_MS);
        let to = rows.partition_point(|r| r.ts_ms <= end);
        let mut by_source: FxHashMap<AccountId, Fen> = FxHashMap::default();
        for r in rows[from..to.max(from)].iter().filter(|r| r.flags.is_in()) {
            *by_source.entry(r.counterparty).or_default() += r.amount;
        }
        let mut amounts: Vec<Fen> = by_source.values().copied().collect();
        amounts.sort_unstable_by(|x, y| y.cmp(x));
        let top: Fen = amounts.iter().take(3).sum();
        let all: Fen = amounts.iter().sum();
        let b = total(e);
        let cap = if i + 1 == recent.len() { b.max(earlier_max) } else { b };
        if top * 10 >= all * 8 && top * 10 >= b * 8 && top <= cap * 2 {
            funded += 1;
        }
    }
    let per_batch = share(funded, recent.len());
    // One injection before the first event that pays for everything since, and is most of
    // what the account received (a business's large customer payment is not).
    let first = events.first().map_or(i64::MAX, |e| e.start);
    let paid: Fen = events.iter().map(total).sum();
    let received: Fen = rows.iter().filter(|r| r.flags.is_in()).map(|r| r.amount).sum();
    let injected = rows
        .iter()
        .filter(|r| r.flags.is_in() && r.ts_ms < first && Some(r.counterparty) != cash)
        .any(|r| r.amount * 10 >= paid * 8 && r.amount * 2 <= paid * 5 && r.amount * 2 >= received);
    if injected {
        1.0
    } else {
        per_batch
    }
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
    // One payout event may spread over hours or be split across two days; batches starting
    // within `merge_ms` of an event's start belong to it. Kept well under the shortest period
    // so that jittered periods (±2 days on a week) still separate their events.
    let merge_ms = Span::days(2).ms().min(p.min_period.ms() / 2).max(Span::days(1).ms());
    let mut events: Vec<Batch> = Vec::new();
    for b in batches.into_iter().filter(qualifies) {
        match events.last_mut() {
            Some(e) if b.start - e.start < merge_ms => e.rows.extend(b.rows),
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
    let tol = (period as f64 * p.period_tolerance) as i64 + p.period_jitter.ms();
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
    let overlap = match prev {
        Some(prev) => {
            let prev_payees = prev.recipients();
            share(
                cur_recipients.iter().filter(|c| prev_payees.contains(c)).count(),
                cur_recipients.len(),
            )
        }
        None => 1.0,
    };
    // Interest is a stake times a rate: each payee's sum repeats period to period (within
    // rounding and fees), or every sum moves by one factor when the rate changes. Averaged
    // over the last two intervals so one irregular period does not decide it.
    let tracking: Vec<Tracking> = events
        .windows(2)
        .rev()
        .take(2)
        .filter_map(|w| amounts_track(&w[0], &w[1], p.min_batch_recipients as usize))
        .collect();

    // Same payees, other sums each period: pay by hours worked or commissions.
    let varying = tracking.iter().any(|t| t.common_share >= 0.5 && t.fit_of_common < 0.3);
    let repeat_share =
        tracking.iter().map(|t| t.common_share * t.fit_of_common).sum::<f64>() / tracking.len().max(1) as f64;
    let funded_share = funded_before_payouts(&rows, &events, cash);
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
    s.add("same_amount_each_period", 15.0 * repeat_share);
    s.add("funded_for_each_batch", 10.0 * funded_share);
    s.add("payee_amounts_vary", if varying { -10.0 } else { 0.0 });
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
    ev.insert("batches_funded_just_before_share".into(), ratio(funded_share));
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
    use super::{amounts_track, funded_before_payouts, rate_unit, Batch, Tracking};
    use fundwatch_record::{Channel, Direction};
    use fundwatch_window::{Flags, Row};

    const DAY: i64 = 86_400_000;

    fn row(ts_ms: i64, cp: u32, amount: i64, dir: Direction) -> Row {
        Row {
            seq: 0,
            ts_ms,
            amount,
            counterparty: cp,
            flags: Flags::new(Channel::Transfer, dir, false, 0),
        }
    }

    fn batch(start: i64, amounts: &[(u32, i64)]) -> Batch {
        Batch {
            start,
            rows: amounts
                .iter()
                .enumerate()
                .map(|(i, &(cp, a))| row(start + i as i64 * 600_000, cp, a, Direction::Out))
                .collect(),
        }
    }

    /// Stakes of 8,888, 13,457 and other odd sums at 1.5% a period: the sums repeat within a
    /// fen or two of fee noise, or all move by one factor when the rate changes.
    #[test]
    fn stake_times_rate_tracks_from_period_to_period() {
        let stakes = [888_800i64, 1_345_700, 2_710_300, 566_600, 1_999_900, 3_141_500];
        let pay = |rate_ppm: i64, noise: i64| -> Vec<(u32, i64)> {
            stakes
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u32, s * rate_ppm / 1_000_000 + (i as i64 % 3 - 1) * noise))
                .collect()
        };
        let a = batch(0, &pay(15_000, 0));
        let b = batch(30 * DAY, &pay(15_000, 1));
        let all = Some(Tracking {
            common_share: 1.0,
            fit_of_common: 1.0,
        });
        assert_eq!(amounts_track(&a, &b, 5), all);
        // A rate cut from 1.5% to 1.2%: every sum moves by 0.8.
        let c = batch(60 * DAY, &pay(12_000, 1));
        assert_eq!(amounts_track(&b, &c, 5), all);
        // Pay by hours worked: the same people, sums up and down by 5–40%.
        let hours: Vec<(u32, i64)> = pay(15_000, 0)
            .into_iter()
            .enumerate()
            .map(|(i, (c, x))| (c, x * [105, 140, 60, 88, 120, 75][i] / 100))
            .collect();
        let t = amounts_track(&a, &batch(30 * DAY, &hours), 5).unwrap();
        assert!(t.common_share == 1.0 && t.fit_of_common < 0.4, "{t:?}");
        // Too few payees paid in both periods: no evidence either way.
        assert_eq!(amounts_track(&a, &batch(30 * DAY, &pay(15_000, 0)[..3]), 5), None);
    }

    #[test]
    fn payout_account_topped_up_before_each_batch() {
        let events: Vec<Batch> = (0..4)
            .map(|k| batch(10 * DAY + k * 7 * DAY, &[(1, 50_000), (2, 70_000), (3, 30_000)]))
            .collect();
        let total = 150_000;
        // One transfer from the controller a few hours before each batch, a little above it.
        let mut rows: Vec<Row> = events
            .iter()
            .map(|e| row(e.start - 5 * 3_600_000, 99, total * 11 / 10, Direction::In))
            .collect();
        rows.sort_by_key(|r| r.ts_ms);
        assert_eq!(funded_before_payouts(&rows, &events, None), 1.0);
        // A business paying out of its takings: many customers, no top-up shaped like a batch.
        let takings: Vec<Row> = (0..200)
            .map(|i| row(i * 3_600_000 * 3, 1_000 + i as u32, 9_000, Direction::In))
            .collect();
        assert_eq!(funded_before_payouts(&takings, &events, None), 0.0);
        // One injection up front that pays for all four batches.
        let once = vec![row(9 * DAY, 99, 4 * total, Direction::In)];
        assert_eq!(funded_before_payouts(&once, &events, None), 1.0);
    }

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
