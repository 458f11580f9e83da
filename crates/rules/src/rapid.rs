//! `rapid_pass_through` (快进快出): money arrives and leaves again within hours, the balance
//! returning near zero, again and again.
//!
//! A cycle opens on an inflow, gathers at most a few more inflows, and closes when outflows
//! to a few payees reach `min_out_ratio`–`max_out_ratio` of what came in within `max_hold`.
//! Overshooting (paying out an older balance, as a shop's daily sweep does) or gathering many
//! inflows (retail takings) or many payees (a payout run) is not a cycle. A hit needs
//! `min_cycles` cycles inside the horizon, the last one closed by the triggering outflow.

use fundwatch_record::{format_fen, Channel, Fen};
use fundwatch_window::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Checker, Validate};
use crate::memo::MemoTags;
use crate::units::{Span, Yuan};
use crate::{hours, median_i64, money, ratio, sample_tx_ids, share, Ctx, Hit, RuleId, Score};

/// `[rules.rapid_pass_through]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RapidParams {
    pub enabled: bool,
    /// Look-back in which cycles are counted. Range 1d–60d.
    pub horizon: Span,
    /// Longest time from a cycle's first inflow to the outflow that closes it. Range 10m–3d.
    pub max_hold: Span,
    /// Smallest inflow total of a cycle. Range 100–100,000,000 yuan.
    pub min_cycle_amount: Yuan,
    /// Outflow / inflow of a cycle must be at least this… Range 0.5–1.0.
    pub min_out_ratio: f64,
    /// …and at most this (more means an older balance left too). Range 1.0–2.0.
    pub max_out_ratio: f64,
    /// Most inflows a cycle may gather. Range 1–50.
    pub max_inflows_per_cycle: u32,
    /// Most distinct payees a cycle may pay. Range 1–50.
    pub max_payees_per_cycle: u32,
    /// Cycles needed in the horizon ("again and again"). Range 2–100.
    pub min_cycles: u32,
    /// Hits scoring below this are not alerts. Range 0–100.
    pub confirm_score: f64,
    /// After an alert, no new one for this account and rule for this long. Range 0s–365d.
    pub cooldown: Span,
}

impl Default for RapidParams {
    fn default() -> Self {
        RapidParams {
            enabled: true,
            horizon: Span::days(30),
            max_hold: Span::hours(12),
            min_cycle_amount: Yuan::whole(20_000),
            min_out_ratio: 0.85,
            max_out_ratio: 1.1,
            max_inflows_per_cycle: 5,
            max_payees_per_cycle: 5,
            min_cycles: 3,
            confirm_score: 60.0,
            cooldown: Span::days(30),
        }
    }
}

impl Validate for RapidParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.span("horizon", self.horizon, Span::days(1), Span::days(60));
        c.span("max_hold", self.max_hold, Span::minutes(10), Span::days(3));
        c.money(
            "min_cycle_amount",
            self.min_cycle_amount,
            Yuan::whole(100),
            Yuan::whole(100_000_000),
        );
        c.ratio("min_out_ratio", self.min_out_ratio, 0.5, 1.0);
        c.ratio("max_out_ratio", self.max_out_ratio, 1.0, 2.0);
        c.range("max_inflows_per_cycle", self.max_inflows_per_cycle, 1, 50);
        c.range("max_payees_per_cycle", self.max_payees_per_cycle, 1, 50);
        c.range("min_cycles", self.min_cycles, 2, 100);
        c.ratio("confirm_score", self.confirm_score, 0.0, 100.0);
        c.span("cooldown", self.cooldown, Span(0), Span::days(365));
    }
}

/// Per-account incremental copy of the cycle state machine below, O(1) per record: it says
/// when an outflow closes a cycle and enough cycles lie in the horizon, so the full evaluation
/// (which rescans the window to score and to gather evidence) runs only then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleTracker {
    open: Option<(i64, Fen, u32, Fen, u8)>, // start, in_sum, in_count, out_sum, payees (capped)
    last_payee: u32,
    carry: Fen,
    carry_ts: i64,
    /// Close times of recent cycles (newest last).
    closed: std::collections::VecDeque<i64>,
}

impl CycleTracker {
    /// Follow a released record; true when it closed a cycle and the horizon now holds
    /// `min_cycles` of them (then [`evaluate`] decides).
    pub fn observe(&mut self, r: &fundwatch_window::Row, p: &RapidParams) -> bool {
        if !p.enabled {
            return false;
        }
        if self.open.is_some_and(|o| r.ts_ms - o.0 > p.max_hold.ms()) {
            self.open = None;
        }
        if r.flags.is_in() {
            match self.open.as_mut() {
                Some(o) if o.3 == 0 && o.2 < p.max_inflows_per_cycle => {
                    o.1 += r.amount;
                    o.2 += 1;
                }
                _ => self.open = Some((r.ts_ms, r.amount, 1, 0, 0)),
            }
            return false;
        }
        let Some(o) = self.open.as_mut() else { return false };
        o.3 += r.amount;
        // Distinct payees, approximately (consecutive repeats): a gate may over-count only
        // in the permissive direction if it under-counts, so count every change of payee.
        if o.4 == 0 || r.counterparty != self.last_payee {
            o.4 = o.4.saturating_add(1);
            self.last_payee = r.counterparty;
        }
        let carried = if o.0.saturating_sub(self.carry_ts) <= p.horizon.ms() {
            self.carry
        } else {
            0
        };
        if (o.3 as f64) >= p.min_out_ratio * o.1 as f64 {
            let ok = (o.3 as f64) <= p.max_out_ratio * (o.1 + carried) as f64 && o.1 >= p.min_cycle_amount.fen();
            let (start, in_sum, out_sum) = (o.0, o.1, o.3);
            self.open = None;
            if ok {
                self.carry = (in_sum + carried - out_sum).max(0);
                self.carry_ts = r.ts_ms;
                self.closed.push_back(start);
                let from = r.ts_ms - p.horizon.ms();
                while self.closed.front().is_some_and(|&s| s < from) {
                    self.closed.pop_front();
                }
                return self.closed.len() >= p.min_cycles as usize;
            }
        }
        false
    }
}

struct Open {
    start_ts: i64,
    in_sum: Fen,
    in_count: u32,
    benign_in: u32,
    out_sum: Fen,
    payees: Vec<AccountId>,
    payroll_out: bool,
    seqs: Vec<u64>,
}

struct Cycle {
    start_ts: i64,
    end_ts: i64,
    in_sum: Fen,
    out_sum: Fen,
    in_count: u32,
    benign_in: u32,
    payroll_out: bool,
    close_seq: u64,
    seqs: Vec<u64>,
}

pub fn evaluate(ctx: &Ctx<'_>, p: &RapidParams) -> Option<Hit> {
    let t = ctx.trigger;
    if !p.enabled || t.flags.is_in() {
        return None;
    }
    // Cheap gate: an outflow this small cannot close a qualifying cycle.
    let min_cycle = p.min_cycle_amount.fen();
    if (t.amount as f64) * f64::from(p.max_payees_per_cycle) < (min_cycle as f64) * p.min_out_ratio {
        return None;
    }
    let from = t.ts_ms - p.horizon.ms();
    let benign = MemoTags::SALARY | MemoTags::GOODS | MemoTags::CONSUMPTION;
    let mut open: Option<Open> = None;
    let mut cycles: Vec<Cycle> = Vec::new();
    // What the last closed cycle left behind (in − out), if recent: the next cycle's
    // outflow may carry it off too, and the balance still returns near zero.
    let mut carry: Fen = 0;
    let mut carry_ts = i64::MIN;
    for r in ctx.store.rows_since(ctx.account, from - p.max_hold.ms()) {
        // A late trigger can have newer rows after it; they are not part of its pattern.
        if r.ts_ms > t.ts_ms {
            continue;
        }
        if open.as_ref().is_some_and(|o| r.ts_ms - o.start_ts > p.max_hold.ms()) {
            open = None;
        }
        let tags = MemoTags(r.flags.memo_tags());
        if r.flags.is_in() {
            match open.as_mut() {
                Some(o) if o.out_sum == 0 && o.in_count < p.max_inflows_per_cycle => {
                    o.in_sum += r.amount;
                    o.in_count += 1;
                    o.benign_in += u32::from(tags.has(benign));
                    o.seqs.push(r.seq);
                }
                _ => {
                    open = Some(Open {
                        start_ts: r.ts_ms,
                        in_sum: r.amount,
                        in_count: 1,
                        benign_in: u32::from(tags.has(benign)),
                        out_sum: 0,
                        payees: Vec::new(),
                        payroll_out: false,
                        seqs: vec![r.seq],
                    })
                }
            }
        } else if let Some(o) = open.as_mut() {
            o.out_sum += r.amount;
            if !o.payees.contains(&r.counterparty) {
                o.payees.push(r.counterparty);
            }
            o.payroll_out |= r.flags.channel() == Channel::Payroll || tags.has(MemoTags::SALARY);
            o.seqs.push(r.seq);
            let carried = if o.start_ts.saturating_sub(carry_ts) <= p.horizon.ms() {
                carry
            } else {
                0
            };
            if (o.out_sum as f64) >= p.min_out_ratio * o.in_sum as f64 {
                let ok = (o.out_sum as f64) <= p.max_out_ratio * (o.in_sum + carried) as f64
                    && o.in_sum >= min_cycle
                    && o.payees.len() <= p.max_payees_per_cycle as usize;
                if ok {
                    carry = (o.in_sum + carried - o.out_sum).max(0);
                    carry_ts = r.ts_ms;
                }
                if ok && o.start_ts >= from {
                    cycles.push(Cycle {
                        start_ts: o.start_ts,
                        end_ts: r.ts_ms,
                        in_sum: o.in_sum,
                        out_sum: o.out_sum,
                        in_count: o.in_count,
                        benign_in: o.benign_in,
                        payroll_out: o.payroll_out,
                        close_seq: r.seq,
                        seqs: std::mem::take(&mut o.seqs),
                    });
                }
                open = None;
            } else if o.payees.len() > p.max_payees_per_cycle as usize {
                open = None;
            }
        }
        if r.seq == t.seq {
            break;
        }
    }
    // The trigger must close the newest cycle, or it completes nothing new.
    if cycles.last().is_none_or(|c| c.close_seq != t.seq) || cycles.len() < p.min_cycles as usize {
        return None;
    }

    let n = cycles.len();
    let holds: Vec<i64> = cycles.iter().map(|c| c.end_ts - c.start_ts).collect();
    let amounts: Vec<i64> = cycles.iter().map(|c| c.in_sum).collect();
    let mut devs: Vec<f64> = cycles
        .iter()
        .map(|c| (c.out_sum as f64 / c.in_sum as f64 - 1.0).abs())
        .collect();
    devs.sort_by(f64::total_cmp);
    let med_dev = devs[devs.len() / 2];
    let mut ratios: Vec<f64> = cycles.iter().map(|c| c.out_sum as f64 / c.in_sum as f64).collect();
    ratios.sort_by(f64::total_cmp);
    let med_ratio = ratios[ratios.len() / 2];
    let med_hold = median_i64(&holds);
    let med_amount = median_i64(&amounts);
    let inflows: u32 = cycles.iter().map(|c| c.in_count).sum();
    let benign_share = share(cycles.iter().map(|c| c.benign_in as usize).sum(), inflows as usize);
    let payroll_share = share(cycles.iter().filter(|c| c.payroll_out).count(), n);
    let total_in: Fen = cycles.iter().map(|c| c.in_sum).sum();
    // "Balance back near zero": a pass-through account's money is (nearly) all cycles; a busy
    // business account that happens to have a few in-and-out days is mostly other traffic.
    let all_in: Fen = ctx
        .store
        .rows_since(ctx.account, cycles[0].start_ts)
        .filter(|r| r.flags.is_in() && r.ts_ms <= t.ts_ms)
        .map(|r| r.amount)
        .sum();
    let coverage = total_in as f64 / all_in.max(1) as f64;
    let total_out: Fen = cycles.iter().map(|c| c.out_sum).sum();

    let mut s = Score::new(35.0);
    s.add("cycles", (10.0 + (n - p.min_cycles as usize) as f64 * 5.0).min(25.0));
    s.add(
        "fast_turnaround",
        if med_hold <= Span::hours(1).ms() {
            15.0
        } else if med_hold <= Span::hours(4).ms() {
            10.0
        } else {
            5.0
        },
    );
    s.add(
        "balance_back_to_zero",
        if med_dev <= 0.05 {
            10.0
        } else if med_dev <= 0.1 {
            5.0
        } else {
            0.0
        },
    );
    s.add(
        "cycle_size",
        if med_amount >= Yuan::whole(200_000).fen() {
            10.0
        } else if med_amount >= Yuan::whole(50_000).fen() {
            5.0
        } else {
            0.0
        },
    );
    s.add(
        "cycles_are_the_account",
        if coverage >= 0.8 {
            15.0
        } else if coverage >= 0.5 {
            5.0
        } else if coverage < 0.3 {
            -30.0
        } else {
            -10.0
        },
    );
    s.add("benign_memos", -30.0 * benign_share);
    s.add("payroll_outflows", -30.0 * payroll_share);
    s.add("key_sector", if ctx.profile.key_sector { 10.0 } else { 0.0 });
    let score = s.total();

    let mut ev = Map::new();
    ev.insert("cycles".into(), Value::from(n));
    ev.insert("median_cycle_amount".into(), money(med_amount));
    ev.insert("median_hold_hours".into(), hours(med_hold));
    ev.insert("median_out_in_ratio".into(), ratio(med_ratio));
    ev.insert("total_in".into(), money(total_in));
    ev.insert("total_out".into(), money(total_out));
    ev.insert("cycle_share_of_inflow".into(), ratio(coverage));
    ev.insert("score_breakdown".into(), s.breakdown());
    ev.insert(
        "tx_ids".into(),
        sample_tx_ids(ctx, cycles.iter().rev().flat_map(|c| c.seqs.iter().copied()), 20),
    );
    let summary = format!(
        "Account {} passed money straight through {n} times within {}: typically {} yuan arrived and {:.0}% of it left again within {:.1} hours.",
        ctx.account_name,
        p.horizon,
        format_fen(med_amount),
        100.0 * med_ratio,
        med_hold as f64 / 3_600_000.0,
    );
    Some(Hit {
        rule: RuleId::RapidPassThrough,
        score,
        window_start_ms: cycles[0].start_ts,
        window_end_ms: t.ts_ms,
        summary,
        evidence: ev,
        episode: None,
    })
}
