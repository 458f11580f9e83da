//! `large_value` (大额交易报告, PBOC Order 2016 No. 3): per account, Beijing calendar day,
//! direction and kind of money, a single record or the day's running total reaching the line
//! raises one alert. A reporting rule: every hit is an alert, score 100.
//!
//! State is a running total per (day, direction, kind), kept a few days so a late record
//! still lands on its own day and cannot raise the same day twice.

use fundwatch_record::{beijing_day, beijing_day_start_ms, format_day, AccountType, Channel, Direction, Fen};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Checker, Validate};
use crate::units::Yuan;
use crate::{money, sample_tx_ids, Ctx, Hit, RuleId};

/// `[rules.large_value]`. Defaults are the regulation's lines; change them only if the
/// regulation changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LargeValueParams {
    pub enabled: bool,
    /// Cash deposits or withdrawals (`channel = "cash"`), any account. Inclusive.
    pub cash_line: Yuan,
    /// Transfers of a corporate account. Inclusive.
    pub corporate_transfer_line: Yuan,
    /// Domestic transfers of a personal account. Inclusive.
    pub personal_domestic_line: Yuan,
    /// Cross-border transfers of a personal account. Inclusive.
    pub personal_cross_border_line: Yuan,
    /// Days a day's running totals are kept after the day ends, so records arriving late
    /// still add to their own day. Range 1–30.
    pub keep_days: u32,
}

impl Default for LargeValueParams {
    fn default() -> Self {
        LargeValueParams {
            enabled: true,
            cash_line: Yuan::whole(50_000),
            corporate_transfer_line: Yuan::whole(2_000_000),
            personal_domestic_line: Yuan::whole(500_000),
            personal_cross_border_line: Yuan::whole(200_000),
            keep_days: 3,
        }
    }
}

impl Validate for LargeValueParams {
    fn validate(&self, c: &mut Checker<'_>) {
        let (lo, hi) = (Yuan::whole(1), Yuan::whole(1_000_000_000));
        c.money("cash_line", self.cash_line, lo, hi);
        c.money("corporate_transfer_line", self.corporate_transfer_line, lo, hi);
        c.money("personal_domestic_line", self.personal_domestic_line, lo, hi);
        c.money("personal_cross_border_line", self.personal_cross_border_line, lo, hi);
        c.range("keep_days", self.keep_days, 1, 30);
    }
}

/// Which reporting line a record counts toward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LineKind {
    Cash,
    CorporateTransfer,
    PersonalDomestic,
    PersonalCrossBorder,
}

impl LineKind {
    pub fn of(channel: Channel, account_type: AccountType, cross_border: bool) -> LineKind {
        match (channel, account_type, cross_border) {
            (Channel::Cash, _, _) => LineKind::Cash,
            (_, AccountType::Corporate, _) => LineKind::CorporateTransfer,
            (_, AccountType::Personal, true) => LineKind::PersonalCrossBorder,
            (_, AccountType::Personal, false) => LineKind::PersonalDomestic,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Cash => "cash",
            LineKind::CorporateTransfer => "corporate_transfer",
            LineKind::PersonalDomestic => "personal_domestic",
            LineKind::PersonalCrossBorder => "personal_cross_border",
        }
    }

    fn describe(self, dir: Direction) -> &'static str {
        match (self, dir) {
            (LineKind::Cash, Direction::In) => "cash deposits",
            (LineKind::Cash, Direction::Out) => "cash withdrawals",
            (LineKind::CorporateTransfer, Direction::In) => "incoming corporate transfers",
            (LineKind::CorporateTransfer, Direction::Out) => "outgoing corporate transfers",
            (LineKind::PersonalDomestic, Direction::In) => "incoming domestic transfers",
            (LineKind::PersonalDomestic, Direction::Out) => "outgoing domestic transfers",
            (LineKind::PersonalCrossBorder, Direction::In) => "incoming cross-border transfers",
            (LineKind::PersonalCrossBorder, Direction::Out) => "outgoing cross-border transfers",
        }
    }

    pub fn line(self, p: &LargeValueParams) -> Fen {
        match self {
            LineKind::Cash => p.cash_line.fen(),
            LineKind::CorporateTransfer => p.corporate_transfer_line.fen(),
            LineKind::PersonalDomestic => p.personal_domestic_line.fen(),
            LineKind::PersonalCrossBorder => p.personal_cross_border_line.fen(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DayTotal {
    day: i32,
    #[serde(with = "direction_as_bool")]
    direction: Direction,
    kind: LineKind,
    total: Fen,
    records: u32,
    first_ts: i64,
    alerted: bool,
}

/// `Direction` (a record type without serde) as `true` for out.
mod direction_as_bool {
    use fundwatch_record::Direction;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Direction, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*d == Direction::Out)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Direction, D::Error> {
        Ok(if bool::deserialize(d)? {
            Direction::Out
        } else {
            Direction::In
        })
    }
}

/// One account's running day totals (serialisable for engine checkpoints, like the other
/// rules' per-account trackers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeValueState {
    days: Vec<DayTotal>,
    newest_day: i32,
}

impl LargeValueState {
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// Add the trigger record to its day's total; a hit when that total first reaches the line.
pub fn observe(
    state: &mut LargeValueState,
    ctx: &Ctx<'_>,
    account_type: AccountType,
    p: &LargeValueParams,
) -> Option<Hit> {
    if !p.enabled {
        return None;
    }
    let r = ctx.trigger;
    let day = beijing_day(r.ts_ms);
    let dir = r.flags.direction();
    let kind = LineKind::of(r.flags.channel(), account_type, r.flags.cross_border());
    // Days past the keep period will never be added to again (in practice); pruned only
    // when a new day begins.
    if day > state.newest_day {
        state.newest_day = day;
        state.days.retain(|d| d.day + p.keep_days as i32 >= day);
    }
    let idx = match state
        .days
        .iter()
        .position(|d| d.day == day && d.direction == dir && d.kind == kind)
    {
        Some(i) => i,
        None => {
            state.days.push(DayTotal {
                day,
                direction: dir,
                kind,
                total: 0,
                records: 0,
                first_ts: r.ts_ms,
                alerted: false,
            });
            state.days.len() - 1
        }
    };
    let entry = &mut state.days[idx];
    entry.total += r.amount;
    entry.records += 1;
    entry.first_ts = entry.first_ts.min(r.ts_ms);
    let line = kind.line(p);
    if entry.alerted || entry.total < line {
        return None;
    }
    entry.alerted = true;
    let entry = entry.clone();

    // Evidence: the day's contributing records from the window.
    let day_start = beijing_day_start_ms(day);
    let contributing: Vec<u64> = ctx
        .store
        .rows_since(ctx.account, day_start)
        .filter(|x| {
            beijing_day(x.ts_ms) == day
                && x.flags.direction() == dir
                && LineKind::of(x.flags.channel(), account_type, x.flags.cross_border()) == kind
        })
        .map(|x| x.seq)
        .collect();
    let day_str = format_day(day);
    let what = kind.describe(dir);
    let mut ev = Map::new();
    ev.insert("day".into(), Value::String(day_str.clone()));
    ev.insert("direction".into(), Value::String(dir.as_str().into()));
    ev.insert("line_kind".into(), Value::String(kind.as_str().into()));
    ev.insert("line".into(), money(line));
    ev.insert("day_total".into(), money(entry.total));
    ev.insert("records".into(), Value::from(entry.records));
    ev.insert("triggering_amount".into(), money(r.amount));
    ev.insert("single_record_over_line".into(), Value::Bool(r.amount >= line));
    ev.insert("tx_ids".into(), sample_tx_ids(ctx, contributing.iter().copied(), 20));
    let summary = format!(
        "Account {}'s {what} on {day_str} (Beijing time) reached {} yuan in {} record(s), at or above the {} yuan large-value reporting line.",
        ctx.account_name,
        fundwatch_record::format_fen(entry.total),
        entry.records,
        fundwatch_record::format_fen(line),
    );
    Some(Hit {
        rule: RuleId::LargeValue,
        score: 100.0,
        window_start_ms: entry.first_ts,
        window_end_ms: r.ts_ms,
        summary,
        evidence: ev,
        episode: Some(format!("{day_str}/{}/{}", dir.as_str(), kind.as_str())),
    })
}
