//! `scatter_in_concentrated_out` (分散转入、集中转出): money gathered from many distinct payers,
//! then most of it sent on in a few transfers to one or a few accounts.
//!
//! Evaluated when a sizeable outflow is released. The concentrated outflow is what left in
//! the last `out_window`; the collection is every inflow since the previous sizeable outflow
//! (at most `horizon` back). The shape alone also fits shops sweeping takings to the owner,
//! wholesalers and crowdfunding, so the score weighs the signals investigators use: ticket
//! size and roundness, payers new to the account, memo wording both ways, retail channels,
//! routine repeated sweeps, repeat customers, key-sector accounts.

use fundwatch_record::{format_fen, Channel, Fen};
use fundwatch_window::AccountId;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Checker, Validate};
use crate::memo::MemoTags;
use crate::units::{Span, Yuan};
use crate::{money, ratio, sample_tx_ids, share, Ctx, Hit, RuleId, Score};

/// `[rules.scatter_in_concentrated_out]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScatterParams {
    pub enabled: bool,
    /// Longest collection period looked at. Range 1d–90d.
    pub horizon: Span,
    /// The concentrated outflow is what left within this span up to the trigger. Range 1h–14d.
    pub out_window: Span,
    /// Smallest outflow that can trigger an evaluation, and that ends a collection period.
    /// Range 100–100,000,000 yuan.
    pub min_out_amount: Yuan,
    /// Distinct payers needed in the collection. Range 2–100,000.
    pub min_distinct_payers: u32,
    /// Smallest collected total. Range 100–1,000,000,000 yuan.
    pub min_inflow_total: Yuan,
    /// The concentrated outflow goes to at most this many accounts. Range 1–20.
    pub max_out_counterparties: u32,
    /// Share of the collected total that must leave to those accounts. Range 0.05–1.0.
    pub min_out_share: f64,
    /// Share of the out-window's outflow those accounts must take. Range 0.1–1.0.
    pub min_concentration: f64,
    /// A "round ticket" is a multiple of this… Range 1–1,000,000 yuan.
    pub round_ticket_unit: Yuan,
    /// …of at least this much (10,000 and 50,000 subscriptions, not 1,000 or 2,000 yuan of
    /// wedding gifts).
    /// Range 1–10,000,000 yuan.
    pub round_ticket_min: Yuan,
    /// Hits scoring below this are not alerts. Range 0–100.
    pub confirm_score: f64,
    /// After an alert, no new one for this account and rule for this long. Range 0s–365d.
    pub cooldown: Span,
}

impl Default for ScatterParams {
    fn default() -> Self {
        ScatterParams {
            enabled: true,
            horizon: Span::days(30),
            out_window: Span::days(3),
            min_out_amount: Yuan::whole(5_000),
            min_distinct_payers: 8,
            min_inflow_total: Yuan::whole(10_000),
            max_out_counterparties: 2,
            min_out_share: 0.5,
            min_concentration: 0.8,
            round_ticket_unit: Yuan::whole(500),
            round_ticket_min: Yuan::whole(5_000),
            confirm_score: 60.0,
            cooldown: Span::days(30),
        }
    }
}

impl Validate for ScatterParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.span("horizon", self.horizon, Span::days(1), Span::days(90));
        c.span("out_window", self.out_window, Span::hours(1), Span::days(14));
        c.money(
            "min_out_amount",
            self.min_out_amount,
            Yuan::whole(100),
            Yuan::whole(100_000_000),
        );
        c.range("min_distinct_payers", self.min_distinct_payers, 2, 100_000);
        c.money(
            "min_inflow_total",
            self.min_inflow_total,
            Yuan::whole(100),
            Yuan::whole(1_000_000_000),
        );
        c.range("max_out_counterparties", self.max_out_counterparties, 1, 20);
        c.ratio("min_out_share", self.min_out_share, 0.05, 1.0);
        c.ratio("min_concentration", self.min_concentration, 0.1, 1.0);
        c.money(
            "round_ticket_unit",
            self.round_ticket_unit,
            Yuan::whole(1),
            Yuan::whole(1_000_000),
        );
        c.money(
            "round_ticket_min",
            self.round_ticket_min,
            Yuan::whole(1),
            Yuan::whole(10_000_000),
        );
        c.ratio("confirm_score", self.confirm_score, 0.0, 100.0);
        c.span("cooldown", self.cooldown, Span(0), Span::days(365));
    }
}

/// Per-account O(1) gate. The collection is the inflows since the last sizeable outflow
/// before the out-window, so the number of inflows since then bounds the distinct payers
/// from above; with too few, no evaluation is needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionTracker {
    inflows: u32,
    /// Sizeable outflows: (event time, inflows counted before it), oldest first; only the
    /// out-window's and the one just before it are kept.
    outs: std::collections::VecDeque<(i64, u32)>,
}

impl CollectionTracker {
    /// Follow a released record; true when it is an outflow worth a full evaluation.
    pub fn observe(&mut self, r: &fundwatch_window::Row, p: &ScatterParams) -> bool {
        if r.flags.is_in() {
            self.inflows = self.inflows.saturating_add(1);
            return false;
        }
        if !p.enabled || r.amount < p.min_out_amount.fen() {
            return false;
        }
        let burst_start = r.ts_ms - p.out_window.ms();
        while self.outs.len() >= 2 && self.outs[1].0 < burst_start {
            self.outs.pop_front();
        }
        let base = match self.outs.front() {
            Some(&(ts, n)) if ts < burst_start => n,
            _ => 0,
        };
        self.outs.push_back((r.ts_ms, self.inflows));
        self.inflows - base >= p.min_distinct_payers
    }
}

/// A price behind the payments (`sorted` ascending): one amount that at least 60% of them
/// are, or a unit that is not a round sum (not a multiple of 100 yuan, under 2,000 yuan) of
/// which at least 80% are small multiples (group purchases of 1–10 items). Returns (unit,
/// share that fits).
fn fixed_price(sorted: &[Fen]) -> Option<(Fen, f64)> {
    if sorted.len() < 4 {
        return None;
    }
    let modal = sorted.chunk_by(|a, b| a == b).max_by_key(|run| run.len())?;
    let modal_share = share(modal.len(), sorted.len());
    if modal_share >= 0.6 {
        return Some((modal[0], modal_share));
    }
    let mut smallest = sorted.to_vec();
    smallest.dedup();
    smallest.truncate(4);
    let mut found: Option<(Fen, f64)> = None;
    for &a in &smallest {
        for k in 1..=3 {
            if a % k != 0 {
                continue;
            }
            let u = a / k;
            if u < 1_000 || u >= Yuan::whole(2_000).fen() || u % Yuan::whole(100).fen() == 0 {
                continue;
            }
            let fits = sorted.iter().filter(|&&x| x % u == 0 && x / u <= 10).count();
            let fit = share(fits, sorted.len());
            if fit >= 0.8 && found.is_none_or(|(_, f)| fit > f) {
                found = Some((u, fit));
            }
        }
    }
    found
}

/// At least 70% of the payments (`sorted` ascending) are distinct sums and the 90th
/// percentile is at least three times the 10th.
fn varied_sums(sorted: &[Fen]) -> bool {
    if sorted.len() < 4 {
        return false;
    }
    let (lo, hi) = (sorted[sorted.len() / 10], sorted[sorted.len() - 1 - sorted.len() / 10]);
    let distinct = sorted.chunk_by(|a, b| a == b).count();
    share(distinct, sorted.len()) >= 0.7 && hi >= 3 * lo
}

/// Time between the 10th and the 90th percentile inflow of the collection: how long the
/// money kept coming, robust to a straggler or two.
fn arrival_span(rows: &[fundwatch_window::Row], collect_start: i64) -> i64 {
    let ts: Vec<i64> = rows
        .iter()
        .filter(|r| r.flags.is_in() && r.ts_ms >= collect_start)
        .map(|r| r.ts_ms)
        .collect();
    if ts.len() < 2 {
        return 0;
    }
    let lo = ts[ts.len() / 10];
    let hi = ts[(ts.len() - 1) - ts.len() / 10];
    hi - lo
}

pub fn evaluate(ctx: &Ctx<'_>, p: &ScatterParams) -> Option<Hit> {
    let t = ctx.trigger;
    if !p.enabled || t.flags.is_in() || t.amount < p.min_out_amount.fen() {
        return None;
    }
    let now = t.ts_ms;
    let burst_start = now - p.out_window.ms();
    let horizon_start = now - p.horizon.ms();
    // The concentrated outflow, from a backward scan of the out-window only: most outflows
    // fail here (not concentrated, or the trigger is not among the main receivers) before any
    // long history is read.
    let mut burst: FxHashMap<AccountId, Fen> = FxHashMap::default();
    let mut burst_total: Fen = 0;
    for r in ctx
        .store
        .rows(ctx.account)
        .rev()
        .filter(|r| r.ts_ms <= now)
        .take_while(|r| r.ts_ms >= burst_start)
    {
        if !r.flags.is_in() {
            *burst.entry(r.counterparty).or_default() += r.amount;
            burst_total += r.amount;
        }
    }
    let mut receivers: Vec<(AccountId, Fen)> = burst.into_iter().collect();
    // Equal sums by name, not id: ids are reused, so their order is not the order names
    // were seen in.
    receivers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| ctx.name(a.0).cmp(ctx.name(b.0))));
    receivers.truncate(p.max_out_counterparties as usize);
    if !receivers.iter().any(|(c, _)| *c == t.counterparty) {
        return None;
    }
    let out_top: Fen = receivers.iter().map(|(_, a)| a).sum();
    let concentration = out_top as f64 / burst_total.max(1) as f64;
    if concentration < p.min_concentration {
        return None;
    }

    // History before the collection, to tell new payers from regular ones.
    let rows: Vec<_> = ctx
        .store
        .rows_since(ctx.account, horizon_start - p.horizon.ms())
        .filter(|r| r.ts_ms <= now)
        .collect();

    // The collection: inflows since the last sizeable outflow before the burst.
    let collect_start = rows
        .iter()
        .rev()
        .find(|r| {
            !r.flags.is_in() && r.ts_ms < burst_start && r.ts_ms >= horizon_start && r.amount >= p.min_out_amount.fen()
        })
        .map(|r| r.ts_ms + 1)
        .unwrap_or(horizon_start)
        .max(horizon_start);
    let mut payers: FxHashMap<AccountId, u32> = FxHashMap::default();
    let mut amounts = Vec::new();
    let mut inflow_seqs = Vec::new();
    let (mut total_in, mut round, mut invest, mut benign, mut retail) = (0 as Fen, 0usize, 0usize, 0usize, 0usize);
    let unit = p.round_ticket_unit.fen();
    for r in rows.iter().filter(|r| r.flags.is_in() && r.ts_ms >= collect_start) {
        *payers.entry(r.counterparty).or_default() += 1;
        amounts.push(r.amount);
        inflow_seqs.push(r.seq);
        total_in += r.amount;
        round += usize::from(r.amount % unit == 0 && r.amount >= p.round_ticket_min.fen());
        let tags = MemoTags(r.flags.memo_tags());
        invest += usize::from(tags.has(MemoTags::INVESTMENT));
        benign +=
            usize::from(tags.has(MemoTags::CONSUMPTION | MemoTags::GOODS | MemoTags::DONATION | MemoTags::SALARY));
        retail += usize::from(r.flags.channel() == Channel::Pos);
    }
    let cash_payer = ctx.names.get("");
    let distinct_payers = payers.keys().filter(|k| Some(**k) != cash_payer).count();
    if distinct_payers < p.min_distinct_payers as usize || total_in < p.min_inflow_total.fen() {
        return None;
    }
    let out_share = out_top as f64 / total_in as f64;
    if out_share < p.min_out_share {
        return None;
    }

    // Signals.
    let n_in = amounts.len();
    let earlier_payers: FxHashSet<AccountId> = rows
        .iter()
        .filter(|r| r.flags.is_in() && r.ts_ms < collect_start)
        .map(|r| r.counterparty)
        .collect();
    let new_payers = payers.keys().filter(|k| !earlier_payers.contains(k)).count();
    // An earlier round of collection from other people that was moved on too: recruitment
    // that goes on in waves. (Rents, fees and customers come from the same people again.)
    let earlier_round = collect_start > horizon_start && {
        let others: Vec<&fundwatch_window::Row> = rows
            .iter()
            .filter(|r| r.flags.is_in() && r.ts_ms < collect_start && !payers.contains_key(&r.counterparty))
            .collect();
        let distinct: FxHashSet<AccountId> = others.iter().map(|r| r.counterparty).collect();
        let first = others.first().map_or(collect_start, |r| r.ts_ms);
        let collected: Fen = others.iter().map(|r| r.amount).sum();
        // …and it was moved on as this one is: most of it to at most
        // `max_out_counterparties` accounts, in sizeable transfers.
        let mut moved: FxHashMap<AccountId, Fen> = FxHashMap::default();
        for r in rows.iter().filter(|r| {
            !r.flags.is_in() && r.ts_ms >= first && r.ts_ms < collect_start && r.amount >= p.min_out_amount.fen()
        }) {
            *moved.entry(r.counterparty).or_default() += r.amount;
        }
        let mut moved: Vec<Fen> = moved.into_values().collect();
        moved.sort_unstable_by(|a, b| b.cmp(a));
        let moved: Fen = moved.iter().take(p.max_out_counterparties as usize).sum();
        distinct.len() >= (p.min_distinct_payers as usize).div_ceil(2) && moved * 2 >= collected
    };
    let new_share = share(new_payers, payers.len());
    // "Payers who never paid before" means something only if there is a before: with under a
    // week of history (a stream or an account just starting), the signal is unknown.
    let history_ms = collect_start - rows.first().map_or(collect_start, |r| r.ts_ms);
    // Known payers weigh more than new ones: a collection mostly from the account's regular
    // payers (business customers, tenants, members renewing) is routine, whatever else it
    // looks like.
    let new_payer_signal = if history_ms < Span::days(7).ms() {
        0.0
    } else if new_share >= 0.5 {
        new_share - 0.5
    } else {
        2.5 * (new_share - 0.5)
    };
    // What the "concentrated outflow" was for: wages and commissions are a business paying
    // its staff, not collected money moved on. (Goods memos are not counted: schemes often
    // label the principal transfer 货款.)
    let burst_business: Fen = rows
        .iter()
        .filter(|r| !r.flags.is_in() && r.ts_ms >= burst_start && receivers.iter().any(|(c, _)| *c == r.counterparty))
        .filter(|r| MemoTags(r.flags.memo_tags()).has(MemoTags::SALARY | MemoTags::COMMISSION))
        .map(|r| r.amount)
        .sum();
    let business_out_share = burst_business as f64 / out_top.max(1) as f64;
    let receiver_ids: Vec<AccountId> = receivers.iter().map(|(c, _)| *c).collect();
    let mut sweep_days: FxHashSet<i32> = FxHashSet::default();
    for r in rows
        .iter()
        .filter(|r| !r.flags.is_in() && r.ts_ms >= horizon_start && r.ts_ms < burst_start)
    {
        if receiver_ids.contains(&r.counterparty) {
            sweep_days.insert(fundwatch_record::beijing_day(r.ts_ms));
        }
    }
    // Collected, then moved: the running balance must actually build up. Pass-through
    // accounts (each inflow leaves within hours) have many payers too, but never accumulate;
    // a peak of under 60% of the collection means most of it left as it came.
    let (mut bal, mut peak) = (0 as Fen, 0 as Fen);
    for r in rows.iter().filter(|r| r.ts_ms >= collect_start) {
        bal += if r.flags.is_in() { r.amount } else { -r.amount };
        peak = peak.max(bal);
    }
    let accumulation = peak as f64 / total_in as f64;
    let mut sorted_amounts = amounts.clone();
    sorted_amounts.sort_unstable();
    let median_ticket = sorted_amounts[sorted_amounts.len() / 2];
    let priced = fixed_price(&sorted_amounts);
    // People stake whole yuan; invoices priced by quantity and tax carry fen, and vary as
    // much as stakes do.
    let invoices = share(amounts.iter().filter(|&&a| a % 100 != 0).count(), amounts.len()) >= 0.5;
    let arrival_span_ms = arrival_span(&rows, collect_start);
    let per_payer = share(n_in, payers.len());
    let round_share = share(round, n_in);
    let invest_share = share(invest, n_in);
    let benign_share = share(benign, n_in);
    let retail_share = share(retail, n_in);

    let mut s = Score::new(15.0);
    s.add(
        "many_payers",
        10.0 * (distinct_payers as f64 / (2.0 * f64::from(p.min_distinct_payers))).min(1.0),
    );
    // Subscriptions are thousands to tens of thousands; gifts, fees and purchases hundreds.
    s.add(
        "ticket_size",
        if median_ticket >= Yuan::whole(10_000).fen() {
            15.0
        } else if median_ticket >= Yuan::whole(3_000).fen() {
            10.0
        } else if median_ticket >= Yuan::whole(1_000).fen() {
            0.0
        } else if median_ticket >= Yuan::whole(300).fen() {
            -10.0
        } else {
            -15.0
        },
    );
    // One price paid by (nearly) everyone, or multiples of one odd unit price: fees and
    // group purchases. Investors stake what they can afford.
    s.add(
        "fixed_price_payments",
        if priced.is_some_and(|(_, fit)| fit >= 0.8 || median_ticket < Yuan::whole(10_000).fen()) {
            -20.0
        } else {
            0.0
        },
    );
    // Investors stake what each can afford: many different sums over a wide range (or round
    // tickets, counted above). Fees, gifts and rents repeat a few customary sums.
    s.add(
        "varied_stakes",
        if priced.is_none()
            && !invoices
            && round_share < 1.0 / 3.0
            && median_ticket >= Yuan::whole(3_000).fen()
            && varied_sums(&sorted_amounts)
        {
            10.0
        } else {
            0.0
        },
    );
    // A burst of modest payments within a few days is an event (wedding gifts, a class's
    // fees); collection that goes on for a week or more is recruitment.
    s.add(
        "collection_span",
        if arrival_span_ms <= Span::days(3).ms() && median_ticket < Yuan::whole(3_000).fen() {
            -10.0
        } else if arrival_span_ms >= Span::days(7).ms() {
            5.0
        } else {
            0.0
        },
    );
    // Paying out more than was collected is spending savings too (a purchase helped by
    // gifts), not moving collected money on.
    s.add(
        "outflow_exceeds_collection",
        if out_top as f64 > 1.05 * total_in as f64 {
            -10.0
        } else {
            0.0
        },
    );
    // Money raised from many people on the scale of a fund, not of a party or a term's fees.
    s.add(
        "large_collection",
        if total_in >= Yuan::whole(300_000).fen() {
            5.0
        } else {
            0.0
        },
    );
    // Round sums mark subscriptions only when investors choose among them; one round price
    // paid by everyone is a contribution or a fee (`fixed_price_payments`).
    s.add("round_tickets", if priced.is_some() { 0.0 } else { 30.0 * round_share });
    s.add("new_payers", 20.0 * new_payer_signal);
    s.add(
        "another_round_of_new_payers",
        if earlier_round && new_share >= 0.7 && !invoices {
            10.0
        } else {
            0.0
        },
    );
    s.add("investment_memos", 30.0 * invest_share);
    // Weighed less than the behaviour: schemes disguise principal as 货款 or 红包.
    s.add("benign_memos", -20.0 * benign_share);
    s.add("retail_channel", -20.0 * retail_share);
    s.add("key_sector", if ctx.profile.key_sector { 10.0 } else { 0.0 });
    s.add("wage_outflow_memos", -10.0 * business_out_share);
    s.add("outflow_share", 10.0 * out_share.min(1.0));
    s.add(
        "accumulation",
        if accumulation >= 0.75 {
            10.0
        } else if accumulation < 0.6 {
            -40.0
        } else {
            -10.0
        },
    );
    s.add("repeat_customers", if per_payer > 2.5 { -10.0 } else { 0.0 });
    s.add("routine_sweeps", if sweep_days.len() >= 4 { -15.0 } else { 0.0 });
    let score = s.total();

    let days = (now - collect_start.max(rows.first().map_or(now, |r| r.ts_ms))) as f64 / 86_400_000.0;
    let mut ev = Map::new();
    ev.insert("distinct_payers".into(), Value::from(distinct_payers));
    ev.insert("inflows".into(), Value::from(n_in));
    ev.insert("inflow_total".into(), money(total_in));
    ev.insert("median_ticket".into(), money(median_ticket));
    ev.insert("round_ticket_share".into(), ratio(round_share));
    ev.insert("new_payer_share".into(), ratio(new_share));
    ev.insert("investment_memo_share".into(), ratio(invest_share));
    ev.insert("benign_memo_share".into(), ratio(benign_share));
    ev.insert("concentrated_outflow".into(), money(out_top));
    ev.insert("outflow_share".into(), ratio(out_share));
    ev.insert("concentration".into(), ratio(concentration));
    ev.insert(
        "receivers".into(),
        Value::Array(
            receivers
                .iter()
                .map(|(c, a)| serde_json::json!({"account": ctx.name(*c), "amount": money(*a)}))
                .collect(),
        ),
    );
    ev.insert("accumulation".into(), ratio(accumulation));
    ev.insert(
        "collection_days".into(),
        Value::from((arrival_span_ms as f64 / 8_640_000.0).round() / 10.0),
    );
    if let Some((unit, fit)) = priced {
        ev.insert("price_unit".into(), money(unit));
        ev.insert("payments_at_price_share".into(), ratio(fit));
    }
    ev.insert("prior_sweep_days".into(), Value::from(sweep_days.len()));
    ev.insert("score_breakdown".into(), s.breakdown());
    ev.insert(
        "inflow_tx_ids".into(),
        sample_tx_ids(ctx, inflow_seqs.iter().copied(), 10),
    );
    ev.insert(
        "outflow_tx_ids".into(),
        sample_tx_ids(
            ctx,
            rows.iter()
                .filter(|r| !r.flags.is_in() && r.ts_ms >= burst_start && receiver_ids.contains(&r.counterparty))
                .map(|r| r.seq),
            10,
        ),
    );
    let summary = format!(
        "Account {} collected {} yuan from {distinct_payers} distinct payers over {:.1} days (median ticket {} yuan, {:.0}% round amounts, {:.0}% with investment memos), then sent {:.0}% of it to {} account(s) within {}.",
        ctx.account_name,
        format_fen(total_in),
        days,
        format_fen(median_ticket),
        round_share * 100.0,
        invest_share * 100.0,
        out_share.min(1.0) * 100.0,
        receivers.len(),
        p.out_window,
    );
    Some(Hit {
        rule: RuleId::ScatterInConcentratedOut,
        score,
        window_start_ms: rows
            .iter()
            .find(|r| r.flags.is_in() && r.ts_ms >= collect_start)
            .map_or(collect_start, |r| r.ts_ms),
        window_end_ms: now,
        summary,
        evidence: ev,
        episode: None,
    })
}

#[cfg(test)]
mod tests {
    use fundwatch_record::Fen;

    fn fixed_price(amounts: &[Fen]) -> Option<(Fen, f64)> {
        let mut sorted = amounts.to_vec();
        sorted.sort_unstable();
        super::fixed_price(&sorted)
    }

    #[test]
    fn one_fee_or_one_unit_price_is_a_price() {
        // A class fee of 3,580 paid by nearly every parent, two paying for twins.
        let fees = [
            358_000, 358_000, 358_000, 716_000, 358_000, 358_000, 358_000, 716_000, 358_000, 358_000,
        ];
        assert_eq!(fixed_price(&fees), Some((358_000, 0.8)));
        // Group buying at 89.90 a box, 1–6 boxes each.
        let boxes = [
            8_990, 17_980, 26_970, 8_990, 53_940, 35_960, 8_990, 17_980, 44_950, 8_990,
        ];
        assert_eq!(fixed_price(&boxes), Some((8_990, 1.0)));
    }

    #[test]
    fn stakes_and_round_tickets_are_not_a_price() {
        // Investors staking what they can: lucky numbers and arbitrary sums.
        let stakes = [
            888_800, 1_345_700, 666_600, 2_710_300, 1_888_800, 500_000, 3_141_500, 1_000_000,
        ];
        assert_eq!(fixed_price(&stakes), None);
        // Round tickets of 10,000 / 20,000 / 50,000: multiples of a round unit are not a price.
        let round = [
            1_000_000, 2_000_000, 5_000_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 1_000_000,
        ];
        assert_eq!(fixed_price(&round), None);
    }
}
