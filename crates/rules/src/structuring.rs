//! `structuring` (拆分交易): money moved repeatedly just under a large-value reporting line,
//! spread over days, so no single day is reported. A near-line event is a record whose amount
//! is within `band` below the line, or a day whose total of several smaller records is.

use fundwatch_record::{beijing_day, format_fen, AccountType, Direction, Fen};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Checker, Validate};
use crate::large_value::{LargeValueParams, LineKind};
use crate::units::Span;
use crate::{money, ratio, sample_tx_ids, Ctx, Hit, RuleId, Score};

/// `[rules.structuring]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StructuringParams {
    pub enabled: bool,
    /// Look-back for near-line events. Range 1d–60d.
    pub horizon: Span,
    /// "Just under": within this fraction below the line (0.1 with the 50,000 cash line:
    /// 45,000.00 to 49,999.99). Range 0.01–0.5.
    pub band: f64,
    /// Near-line events needed. Range 2–100.
    pub min_events: u32,
    /// Distinct Beijing days they must span ("spread over days"). Range 1–30.
    pub min_days: u32,
    /// Also watch transfers under the transfer lines, not only cash.
    pub include_transfers: bool,
    /// A day of several records counts when its total is in the band and it has at most this
    /// many records (more is ordinary busy-account traffic). Range 2–50.
    pub max_records_per_split_day: u32,
    /// Hits scoring below this are not alerts. Range 0–100.
    pub confirm_score: f64,
    /// After an alert, no new one for this account and rule for this long. Range 0s–365d.
    pub cooldown: Span,
}

impl Default for StructuringParams {
    fn default() -> Self {
        StructuringParams {
            enabled: true,
            horizon: Span::days(14),
            band: 0.1,
            min_events: 3,
            min_days: 2,
            include_transfers: true,
            max_records_per_split_day: 6,
            confirm_score: 60.0,
            cooldown: Span::days(14),
        }
    }
}

impl Validate for StructuringParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.span("horizon", self.horizon, Span::days(1), Span::days(60));
        c.ratio("band", self.band, 0.01, 0.5);
        c.range("min_events", self.min_events, 2, 100);
        c.range("min_days", self.min_days, 1, 30);
        c.range("max_records_per_split_day", self.max_records_per_split_day, 2, 50);
        c.ratio("confirm_score", self.confirm_score, 0.0, 100.0);
        c.span("cooldown", self.cooldown, Span(0), Span::days(365));
    }
}

#[derive(Default)]
struct Day {
    day: i32,
    total: Fen,
    records: u32,
    near_records: Vec<u64>,
    all: Vec<u64>,
}

/// Cheap gate: the record is below its line and large enough to be part of a near-line day.
pub fn may_complete(ctx: &Ctx<'_>, account_type: AccountType, p: &StructuringParams, lv: &LargeValueParams) -> bool {
    let t = ctx.trigger;
    let kind = LineKind::of(t.flags.channel(), account_type, t.flags.cross_border());
    if !p.enabled || (kind != LineKind::Cash && !p.include_transfers) {
        return false;
    }
    let line = kind.line(lv);
    let low = line - ((line as f64) * p.band) as Fen;
    t.amount < line && t.amount * i64::from(p.max_records_per_split_day) >= low
}

pub fn evaluate(ctx: &Ctx<'_>, account_type: AccountType, p: &StructuringParams, lv: &LargeValueParams) -> Option<Hit> {
    if !p.enabled {
        return None;
    }
    let t = ctx.trigger;
    let kind = LineKind::of(t.flags.channel(), account_type, t.flags.cross_border());
    if kind != LineKind::Cash && !p.include_transfers {
        return None;
    }
    let dir = t.flags.direction();
    let line = kind.line(lv);
    let low = line - ((line as f64) * p.band) as Fen;
    // Cheap gate: too small to be a meaningful part of a near-line day.
    if t.amount >= line || t.amount * i64::from(p.max_records_per_split_day) < low {
        return None;
    }
    let same = |r: &fundwatch_window::Row| {
        r.flags.direction() == dir && LineKind::of(r.flags.channel(), account_type, r.flags.cross_border()) == kind
    };
    let trig_day = beijing_day(t.ts_ms);
    let mut days: Vec<Day> = Vec::new();
    for r in ctx.store.rows_since(ctx.account, t.ts_ms - p.horizon.ms()) {
        if r.ts_ms > t.ts_ms || !same(&r) {
            continue;
        }
        let d = beijing_day(r.ts_ms);
        if days.last().is_none_or(|x| x.day != d) {
            days.push(Day {
                day: d,
                ..Default::default()
            });
        }
        let Some(day) = days.last_mut() else { continue };
        day.total += r.amount;
        day.records += 1;
        day.all.push(r.seq);
        if r.amount >= low && r.amount < line {
            day.near_records.push(r.seq);
        }
    }
    let in_band = |x: Fen| x >= low && x < line;
    let day_events = |d: &Day| -> usize {
        let split = d.records >= 2 && d.records <= p.max_records_per_split_day && in_band(d.total);
        d.near_records.len().max(usize::from(split))
    };
    // The trigger must be what makes its day near-line, or it completes nothing new.
    let today = days.iter().find(|d| d.day == trig_day)?;
    if day_events(today) == 0 {
        return None;
    }
    let events: usize = days.iter().map(day_events).sum();
    let near_days = days.iter().filter(|d| day_events(d) > 0).count();
    if events < p.min_events as usize || near_days < p.min_days as usize {
        return None;
    }

    // Closeness: how far under the line the near-line amounts sit, on average.
    let mut gaps = Vec::new();
    let mut evidence_seqs = Vec::new();
    let mut first_ts = t.ts_ms;
    for d in days.iter().filter(|d| day_events(d) > 0) {
        if d.near_records.is_empty() {
            gaps.push(1.0 - d.total as f64 / line as f64);
            evidence_seqs.extend(d.all.iter().copied());
        } else {
            for &s in &d.near_records {
                gaps.push(1.0 - ctx.store.row(s).amount as f64 / line as f64);
            }
            evidence_seqs.extend(d.near_records.iter().copied());
        }
        if let Some(&s) = evidence_seqs.first() {
            first_ts = first_ts.min(ctx.store.row(s).ts_ms);
        }
    }
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;

    // Structuring avoids reports; an account over the line on other days is not avoiding it.
    let over_days = days.iter().filter(|d| d.total >= line).count();
    let mut s = Score::new(60.0);
    s.add("reported_anyway_days", -10.0 * over_days.min(3) as f64);
    s.add(
        "extra_events",
        ((events - p.min_events as usize) as f64 * 5.0).min(20.0),
    );
    s.add("many_days", if near_days >= 3 { 5.0 } else { 0.0 });
    s.add(
        "closeness_to_line",
        if mean_gap <= 0.02 {
            20.0
        } else if mean_gap <= 0.05 {
            10.0
        } else {
            0.0
        },
    );
    s.add("key_sector", if ctx.profile.key_sector { 5.0 } else { 0.0 });
    let score = s.total();

    let what = match (kind, dir) {
        (LineKind::Cash, Direction::In) => "cash deposits",
        (LineKind::Cash, Direction::Out) => "cash withdrawals",
        (_, Direction::In) => "incoming transfers",
        (_, Direction::Out) => "outgoing transfers",
    };
    let mut ev = Map::new();
    ev.insert("line_kind".into(), Value::String(kind.as_str().into()));
    ev.insert("direction".into(), Value::String(dir.as_str().into()));
    ev.insert("line".into(), money(line));
    ev.insert("band_low".into(), money(low));
    ev.insert("near_line_events".into(), Value::from(events));
    ev.insert("near_line_days".into(), Value::from(near_days));
    ev.insert("mean_gap_below_line".into(), ratio(mean_gap));
    ev.insert("days_over_line".into(), Value::from(over_days));
    ev.insert("score_breakdown".into(), s.breakdown());
    ev.insert("tx_ids".into(), sample_tx_ids(ctx, evidence_seqs.iter().copied(), 20));
    let summary = format!(
        "Account {} made {events} {what} just under the {} yuan reporting line on {near_days} different days within {}, on average {:.1}% below the line.",
        ctx.account_name,
        format_fen(line),
        p.horizon,
        mean_gap * 100.0
    );
    Some(Hit {
        rule: RuleId::Structuring,
        score,
        window_start_ms: first_ts,
        window_end_ms: t.ts_ms,
        summary,
        evidence: ev,
        episode: None,
    })
}
