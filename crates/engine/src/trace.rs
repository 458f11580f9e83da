//! Account traces: what the case-linking stage (crate `fundwatch-cases`) reads about one
//! account, so that it never needs the transactions themselves.
//!
//! An account comes *in play* when a behavioural rule finds its pattern there — an alert or
//! a near miss of `scatter_in_concentrated_out`, `periodic_batch_small_out` or
//! `rapid_pass_through` — or when it pays batches of small sums on two or more days (the
//! shape of a payout account whose rhythm the periodic rule does not see). From then on the
//! engine keeps a ledger of it: who paid in (payers) and how much, who received small sums
//! (payees), the largest sources (funders) and destinations (receivers), and its role
//! findings. The ledger starts from everything the window still holds of the account, so a
//! collector found late is measured from the start of its history.
//!
//! A trace is emitted on every new finding (a new episode, an alert, a better score), on
//! each day with a small-sum batch, and while an alerted collector keeps collecting, each
//! time its payers or their money grew by 5%. Emission depends only on the account's own records, so a trace
//! sequence is the same in replay and on any Kafka partitioning. Sets are bounded: exact up
//! to [`MAX_EXACT`] members, then counted; traces carry a bottom-[`SKETCH`] sample of member
//! hashes, from which the linker estimates overlaps and unions.
//!
//! The ledger is part of the engine's checkpoint.

use fundwatch_record::beijing_day;
use fundwatch_window::{AccountId, Interner, Row};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// Members a ledger set holds exactly; past it new members are only counted.
pub const MAX_EXACT: usize = 65_536;
/// Size of the bottom-k hash sample a trace carries per set.
pub const SKETCH: usize = 256;
/// Funders and receivers a ledger follows (space-saving counters), and a trace reports.
const FLOW_SLOTS: usize = 24;
const FLOWS_REPORTED: usize = 6;
/// Alert ids kept per account.
const MAX_ALERT_IDS: usize = 32;

/// Hash of a counterparty name, the same in every process (sketches are compared across
/// engines).
pub fn member_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(name.as_bytes(), 0x6677_6361_7365_7331)
}

/// A bounded set of counterparties as a trace reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSet {
    /// Distinct members (exact up to [`MAX_EXACT`], then a lower bound plus the members
    /// counted past the cap).
    pub count: u64,
    /// Fen moved with them.
    pub fen: i64,
    /// The [`SKETCH`] smallest [`member_hash`]es, ascending (all of them when fewer).
    pub sketch: Vec<u64>,
}

/// A large source or destination of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub counterparty: String,
    pub fen: i64,
}

/// One week of collection (weeks are Beijing days / 7 since 1970-01-01, a Thursday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Week {
    /// First Beijing day of the week, days since 1970-01-01.
    pub first_day: i32,
    /// Payers seen for the first time that week.
    pub new_payers: u64,
    /// Fen they and earlier payers paid in that week.
    pub fen: i64,
}

/// Weeks of collection a ledger and a trace keep.
pub const WEEKS: usize = 8;

/// What a rule found in the account's role, as of the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleFinding {
    /// Best score of the current episode.
    pub score: f64,
    /// The rule raised an alert in this episode…
    pub alerted: bool,
    /// …first at this event time (the linker orders a link against it, not against when
    /// the traces happen to reach it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted_ts_ms: Option<i64>,
    /// The episode's first finding: what a linked alert is built from (stable however
    /// late the link is made).
    pub first_ts_ms: i64,
    pub first_tx: String,
    pub first_score: f64,
    pub first_window_start_ms: i64,
    pub first_summary: String,
    /// Evidence of the first finding, as JSON text.
    pub first_evidence: String,
}

/// One account's state for the linker: emitted by the engine, keyed by account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountTrace {
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// 1, 2, … per account; a later trace replaces an earlier one.
    pub seq: u64,
    /// Event time of the record that produced this trace.
    pub ts_ms: i64,
    /// Event time of the first record the ledger covers.
    pub since_ms: i64,
    pub config_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<RoleFinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<RoleFinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_through: Option<RoleFinding>,
    /// Days on which the account paid a batch of small sums.
    pub batch_days: u32,
    /// Distinct payers into the account (cash excluded) and what they paid.
    pub payers: MemberSet,
    /// The latest [`WEEKS`] weeks with inflow from payers, oldest first.
    pub weekly: Vec<Week>,
    /// Payees of small outflows (at most the periodic rule's `max_payment`) paid on two or
    /// more Beijing days — who gets "interest" each period, not whom the account happened to
    /// pay once — and all they were paid.
    pub payees: MemberSet,
    /// Payees of small outflows paid on one day only (so far).
    pub one_time_payees: u64,
    /// All inflows and outflows, fen (cash included).
    pub inflow_fen: i64,
    pub outflow_fen: i64,
    /// Largest sources of inflow, largest first.
    pub funders: Vec<Flow>,
    /// Largest destinations of outflow, largest first.
    pub receivers: Vec<Flow>,
    /// Behavioural alerts raised on the account (newest last, bounded).
    pub alert_ids: Vec<String>,
}

/// A role as the engine notes it while confirming hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Role {
    Collector,
    Payout,
    PassThrough,
}

/// A finding of the record just released, noted by lane 0's confirmation step.
pub(crate) struct Note {
    pub role: Role,
    pub score: f64,
    pub alert_id: Option<String>,
    pub window_start_ms: i64,
    pub summary: String,
    pub evidence: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CpSet {
    ids: FxHashSet<u32>,
    /// Records of new-looking members once the set was full.
    overflow: u64,
    fen: i64,
    /// The [`SKETCH`] smallest member hashes, ascending, kept as members arrive: a trace
    /// then copies it instead of hashing every member's name again (a collector with
    /// 50,000 payers is traced about a hundred times).
    sketch: Vec<u64>,
}

impl CpSet {
    /// True when `id` is new to the set; `hash` (its [`member_hash`]) is asked only then.
    fn add(&mut self, id: u32, fen: i64, hash: impl FnOnce() -> u64) -> bool {
        self.fen += fen;
        let new = if self.ids.len() < MAX_EXACT {
            self.ids.insert(id)
        } else if !self.ids.contains(&id) {
            self.overflow += 1;
            true
        } else {
            false
        };
        if new {
            self.sample(hash());
        }
        new
    }

    /// Bottom-k: keep `h` if it is among the [`SKETCH`] smallest seen (each once).
    fn sample(&mut self, h: u64) {
        if self.sketch.len() == SKETCH && self.sketch.last().is_some_and(|&max| h >= max) {
            return;
        }
        if let Err(i) = self.sketch.binary_search(&h) {
            self.sketch.insert(i, h);
            self.sketch.truncate(SKETCH);
        }
    }

    fn report(&self) -> MemberSet {
        MemberSet {
            count: self.ids.len() as u64 + self.overflow,
            fen: self.fen,
            sketch: self.sketch.clone(),
        }
    }
}

/// Space-saving top-k counters of money by counterparty: exact while there are fewer than
/// [`FLOW_SLOTS`] counterparties, and the large ones are never lost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TopFlows(Vec<(u32, i64)>);

impl TopFlows {
    fn add(&mut self, id: u32, fen: i64) {
        if let Some(e) = self.0.iter_mut().find(|e| e.0 == id) {
            e.1 += fen;
        } else if self.0.len() < FLOW_SLOTS {
            self.0.push((id, fen));
        } else if let Some(min) = self.0.iter_mut().min_by_key(|e| e.1) {
            // Ties go to the first slot (not the lowest id: ids are reused, so their order
            // is not the order names were seen).
            *min = (id, min.1 + fen);
        }
    }

    fn report(&self, names: &Interner, total: i64) -> Vec<Flow> {
        // A flow under 5% of the total is nobody's funder or receiver (filtered before the
        // sort, which compares names on ties).
        let mut v: Vec<(u32, i64)> = self
            .0
            .iter()
            .copied()
            .filter(|e| e.1 * 20 >= total && e.1 > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| names.resolve(a.0).cmp(names.resolve(b.0))));
        v.into_iter()
            .take(FLOWS_REPORTED)
            .map(|(id, fen)| Flow {
                counterparty: names.resolve(id).to_owned(),
                fen,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoleState {
    score: f64,
    alerted: bool,
    alerted_ts_ms: Option<i64>,
    first_ts_ms: i64,
    first_tx: String,
    first_score: f64,
    first_window_start_ms: i64,
    first_summary: String,
    first_evidence: String,
    /// Event time of the episode's latest finding (a new episode starts after a quiet
    /// `max_history`).
    last_ts_ms: i64,
}

/// The ledger of one account in play.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ledger {
    seq: u64,
    since_ms: i64,
    /// In play until this event time (its latest finding + `max_history`).
    until_ms: i64,
    /// Payers and their fen at the last emission (a collector's daily trace needs news).
    emitted_payers: u64,
    emitted_fen: i64,
    payers: CpSet,
    weekly: Vec<Week>,
    payees: CpSet,
    /// Small-outflow payees not (yet) repeated: first day and fen paid.
    payees_once: FxHashMap<u32, (i32, i64)>,
    inflow: i64,
    outflow: i64,
    funders: TopFlows,
    receivers: TopFlows,
    roles: [Option<RoleState>; 3],
    batch_days: u32,
    alert_ids: Vec<String>,
}

/// The engine's traces: ledgers of accounts in play, and the batch days of accounts not yet
/// in play.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "TracesState")]
pub(crate) struct Traces {
    ledgers: FxHashMap<AccountId, Ledger>,
    /// (Beijing day of the last small-sum batch, days with one) per account.
    batches: FxHashMap<AccountId, (i32, u32)>,
    /// Watermark day of the last [`Traces::expire`].
    expired_day: i32,
    /// One bit per account id: it has a ledger. Every released record asks, and a bit is
    /// cheaper to ask than the ledger map (smaller code, one cache line).
    #[serde(skip)]
    with_ledger: Vec<u64>,
}

/// What a checkpoint holds of [`Traces`] (the same fields in the same order, without the
/// bit index, which is rebuilt).
#[derive(Deserialize)]
struct TracesState {
    ledgers: FxHashMap<AccountId, Ledger>,
    batches: FxHashMap<AccountId, (i32, u32)>,
    expired_day: i32,
}

impl From<TracesState> for Traces {
    fn from(s: TracesState) -> Traces {
        let mut t = Traces {
            ledgers: s.ledgers,
            batches: s.batches,
            expired_day: s.expired_day,
            with_ledger: Vec::new(),
        };
        t.reindex();
        t
    }
}

/// What [`Traces::observe`] needs from the engine.
pub(crate) struct TraceCtx<'a> {
    pub counterparties: &'a Interner,
    pub account: AccountId,
    pub account_name: &'a str,
    pub region: &'a str,
    pub config_version: &'a str,
    /// A small payment is at most this (fen).
    pub max_payment: i64,
    pub max_history_ms: i64,
    pub cash: u32,
}

fn role_index(r: Role) -> usize {
    match r {
        Role::Collector => 0,
        Role::Payout => 1,
        Role::PassThrough => 2,
    }
}

impl Ledger {
    fn new(since_ms: i64) -> Ledger {
        Ledger {
            seq: 0,
            since_ms,
            until_ms: i64::MIN,
            emitted_payers: 0,
            emitted_fen: 0,
            payers: CpSet::default(),
            weekly: Vec::new(),
            payees: CpSet::default(),
            payees_once: FxHashMap::default(),
            inflow: 0,
            outflow: 0,
            funders: TopFlows::default(),
            receivers: TopFlows::default(),
            roles: [None, None, None],
            batch_days: 0,
            alert_ids: Vec::new(),
        }
    }

    fn add_row(&mut self, r: &Row, cx: &TraceCtx<'_>) {
        let cp = r.counterparty;
        if r.flags.is_in() {
            self.inflow += r.amount;
            if cp != cx.cash {
                let new = self
                    .payers
                    .add(cp, r.amount, || member_hash(cx.counterparties.resolve(cp)));
                self.funders.add(cp, r.amount);
                let first_day = beijing_day(r.ts_ms).div_euclid(7) * 7;
                if self.weekly.last().is_none_or(|w| w.first_day < first_day) {
                    if self.weekly.len() == WEEKS {
                        self.weekly.remove(0);
                    }
                    self.weekly.push(Week {
                        first_day,
                        new_payers: 0,
                        fen: 0,
                    });
                }
                // A late record of an earlier week counts in the newest (weeks only move on).
                if let Some(w) = self.weekly.last_mut() {
                    w.new_payers += u64::from(new);
                    w.fen += r.amount;
                }
            }
        } else {
            self.outflow += r.amount;
            if cp != cx.cash {
                self.receivers.add(cp, r.amount);
                if r.amount <= cx.max_payment {
                    let day = beijing_day(r.ts_ms);
                    let hash = || member_hash(cx.counterparties.resolve(cp));
                    if self.payees.ids.contains(&cp) {
                        let _ = self.payees.add(cp, r.amount, hash);
                    } else if let Some(&(first, fen)) = self.payees_once.get(&cp) {
                        if first == day {
                            self.payees_once.insert(cp, (first, fen + r.amount));
                        } else {
                            self.payees_once.remove(&cp);
                            let _ = self.payees.add(cp, fen + r.amount, hash);
                        }
                    } else if self.payees_once.len() < MAX_EXACT {
                        self.payees_once.insert(cp, (day, r.amount));
                    }
                }
            }
        }
    }

    /// Record a finding; true when it is news for the linker (a new episode, an alert, or
    /// a best score up by a point), not the same pattern found again as a batch grows.
    fn note(&mut self, n: &Note, ts_ms: i64, tx_id: &str, max_history_ms: i64) -> bool {
        let slot = &mut self.roles[role_index(n.role)];
        let fresh = slot
            .as_ref()
            .is_none_or(|s| ts_ms > s.last_ts_ms.saturating_add(max_history_ms));
        let mut news = fresh;
        if fresh {
            *slot = Some(RoleState {
                score: n.score,
                alerted: false,
                alerted_ts_ms: None,
                first_ts_ms: ts_ms,
                first_tx: tx_id.to_owned(),
                first_score: n.score,
                first_window_start_ms: n.window_start_ms,
                first_summary: n.summary.clone(),
                first_evidence: n.evidence.clone(),
                last_ts_ms: ts_ms,
            });
        }
        if let Some(s) = slot {
            news |= n.score >= s.score + 1.0;
            s.score = s.score.max(n.score);
            s.last_ts_ms = ts_ms;
            if let Some(id) = &n.alert_id {
                news |= !s.alerted;
                s.alerted = true;
                s.alerted_ts_ms.get_or_insert(ts_ms);
                if !self.alert_ids.contains(id) {
                    if self.alert_ids.len() >= MAX_ALERT_IDS {
                        self.alert_ids.remove(0);
                    }
                    self.alert_ids.push(id.clone());
                }
            }
        }
        self.until_ms = self.until_ms.max(ts_ms.saturating_add(max_history_ms));
        news
    }

    fn report(&self, cx: &TraceCtx<'_>, ts_ms: i64) -> AccountTrace {
        let role = |i: usize| {
            self.roles[i].as_ref().map(|s| RoleFinding {
                score: s.score,
                alerted: s.alerted,
                alerted_ts_ms: s.alerted_ts_ms,
                first_ts_ms: s.first_ts_ms,
                first_tx: s.first_tx.clone(),
                first_score: s.first_score,
                first_window_start_ms: s.first_window_start_ms,
                first_summary: s.first_summary.clone(),
                first_evidence: s.first_evidence.clone(),
            })
        };
        let names = cx.counterparties;
        AccountTrace {
            account: cx.account_name.to_owned(),
            region: (!cx.region.is_empty()).then(|| cx.region.to_owned()),
            seq: self.seq,
            ts_ms,
            since_ms: self.since_ms,
            config_version: cx.config_version.to_owned(),
            collector: role(0),
            payout: role(1),
            pass_through: role(2),
            batch_days: self.batch_days,
            payers: self.payers.report(),
            weekly: self.weekly.clone(),
            payees: self.payees.report(),
            one_time_payees: self.payees_once.len() as u64,
            inflow_fen: self.inflow,
            outflow_fen: self.outflow,
            funders: self.funders.report(names, self.inflow),
            receivers: self.receivers.report(names, self.outflow),
            alert_ids: self.alert_ids.clone(),
        }
    }
}

impl Traces {
    /// Account for a released record (already in the window store, `history` being the
    /// account's held rows oldest first, read only when the account comes in play).
    /// `notes`: lane 0's findings on it; `batch`: the record completed a small-sum batch.
    /// Returns the trace to emit, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        cx: &TraceCtx<'_>,
        row: &Row,
        tx_id: &str,
        notes: &[Note],
        batch: bool,
        history: impl FnOnce() -> Vec<Row>,
    ) -> Option<AccountTrace> {
        if !batch && notes.is_empty() {
            // Most records: an account not in play, or one whose ledger only adds the row.
            let l = self.ledgers.get_mut(&cx.account)?;
            let collector_in = l.roles[0].is_some() && row.flags.is_in();
            if row.ts_ms <= l.until_ms && !collector_in {
                l.add_row(row, cx);
                return None;
            }
        }
        let day = beijing_day(row.ts_ms);
        let history_days = (cx.max_history_ms / 86_400_000) as i32;
        // Out of play is decided on the account's own records, never on the partition's
        // watermark, so that it is the same on every partitioning ([`Traces::expire`] only
        // frees what this would drop anyway).
        if self.ledgers.get(&cx.account).is_some_and(|l| row.ts_ms > l.until_ms) {
            self.ledgers.remove(&cx.account);
            self.set_bit(cx.account, false);
        }
        if self
            .batches
            .get(&cx.account)
            .is_some_and(|e| day.saturating_sub(e.0) > history_days)
        {
            self.batches.remove(&cx.account);
        }
        let mut new_batch_day = false;
        if batch {
            let e = self.batches.entry(cx.account).or_insert((i32::MIN, 0));
            if e.0 != day {
                *e = (day, e.1 + 1);
                new_batch_day = true;
            }
        }
        let batch_days = self.batches.get(&cx.account).map_or(0, |e| e.1);
        let ledger = match self.ledgers.get_mut(&cx.account) {
            Some(l) => {
                l.add_row(row, cx);
                l
            }
            None => {
                if notes.is_empty() && batch_days < 2 {
                    return None;
                }
                let rows = history();
                let mut l = Ledger::new(rows.first().map_or(row.ts_ms, |r| r.ts_ms));
                for r in &rows {
                    l.add_row(r, cx);
                }
                self.set_bit(cx.account, true);
                self.ledgers.entry(cx.account).or_insert(l)
            }
        };
        ledger.batch_days = batch_days;
        if new_batch_day {
            ledger.until_ms = ledger.until_ms.max(row.ts_ms.saturating_add(cx.max_history_ms));
        }
        let mut found = false;
        for n in notes {
            found |= ledger.note(n, row.ts_ms, tx_id, cx.max_history_ms);
        }
        // An alerted collector's inflow is news when its payers or their money grew by 5%
        // since the last trace: the final trace then understates neither by more than that,
        // and a collection growing a hundredfold is traced about a hundred times. A collector
        // below the line is traced on its findings only (it makes a case only through a link).
        let payers = ledger.payers.ids.len() as u64 + ledger.payers.overflow;
        let grew = payers * 20 >= ledger.emitted_payers * 21 || ledger.payers.fen * 20 >= ledger.emitted_fen * 21;
        let collecting = ledger.roles[0].as_ref().is_some_and(|r| r.alerted) && row.flags.is_in() && grew;
        let due = found || new_batch_day || collecting;
        if !due {
            return None;
        }
        ledger.seq += 1;
        ledger.emitted_payers = payers;
        ledger.emitted_fen = ledger.payers.fen;
        Some(ledger.report(cx, row.ts_ms))
    }

    /// Free what [`Traces::observe`] would drop at the account's next record anyway: ledgers
    /// out of play and batch days older than `max_history` (bounded state). Runs once per
    /// Beijing day of the watermark.
    #[inline]
    pub fn expire(&mut self, watermark_ms: i64, max_history_ms: i64) {
        let today = beijing_day(watermark_ms);
        if today != self.expired_day {
            self.expire_day(today, watermark_ms, max_history_ms);
        }
    }

    #[inline(never)]
    fn expire_day(&mut self, today: i32, watermark_ms: i64, max_history_ms: i64) {
        self.expired_day = today;
        // A record up to the watermark is still to come only if late; those are not worth
        // keeping a ledger for, but one day of slack keeps this a pure optimisation.
        let horizon = watermark_ms.saturating_sub(86_400_000);
        let before = self.ledgers.len();
        self.ledgers.retain(|_, l| l.until_ms >= horizon);
        if self.ledgers.len() != before {
            self.reindex();
        }
        let cut = today.saturating_sub((max_history_ms / 86_400_000) as i32 + 1);
        self.batches.retain(|_, e| e.0 >= cut);
    }

    /// Whether a finding of `role` at `ts_ms` would start a new episode of the account's
    /// ledger (exactly as [`Traces::observe`] decides it).
    pub fn is_fresh(&self, account: AccountId, role: Role, ts_ms: i64, max_history_ms: i64) -> bool {
        match self.ledgers.get(&account) {
            Some(l) if ts_ms <= l.until_ms => l.roles[role_index(role)]
                .as_ref()
                .is_none_or(|s| ts_ms > s.last_ts_ms.saturating_add(max_history_ms)),
            _ => true,
        }
    }

    /// The account has small-sum batch days on record (not yet expired).
    pub fn has_batch_days(&self, account: AccountId) -> bool {
        self.batches.contains_key(&account)
    }

    /// Every counterparty id a ledger holds (with repeats), so that the dictionary keeps it.
    pub fn for_each_counterparty(&self, mut f: impl FnMut(u32)) {
        for l in self.ledgers.values() {
            l.payers.ids.iter().chain(&l.payees.ids).for_each(|&id| f(id));
            l.payees_once.keys().for_each(|&id| f(id));
            l.funders.0.iter().chain(&l.receivers.0).for_each(|e| f(e.0));
        }
    }

    /// The account has a ledger (it may still be found out of play at its next record).
    #[inline]
    pub fn in_play(&self, account: AccountId) -> bool {
        self.with_ledger
            .get(account as usize / 64)
            .is_some_and(|w| w & (1 << (account % 64)) != 0)
    }

    fn set_bit(&mut self, account: AccountId, on: bool) {
        let (i, bit) = (account as usize / 64, 1u64 << (account % 64));
        if i >= self.with_ledger.len() {
            if !on {
                return;
            }
            self.with_ledger.resize(i + 1, 0);
        }
        if on {
            self.with_ledger[i] |= bit;
        } else {
            self.with_ledger[i] &= !bit;
        }
    }

    /// Rebuild the bit index from the ledgers (after a restore, or an expiry sweep).
    fn reindex(&mut self) {
        self.with_ledger.iter_mut().for_each(|w| *w = 0);
        let ids: Vec<AccountId> = self.ledgers.keys().copied().collect();
        for id in ids {
            self.set_bit(id, true);
        }
    }

    pub fn ledgers(&self) -> usize {
        self.ledgers.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.ledgers
            .values()
            .map(|l| {
                std::mem::size_of::<Ledger>()
                    + (l.payers.ids.capacity() + l.payees.ids.capacity()) * 8
                    + l.payees_once.capacity() * 16
                    + (l.funders.0.capacity() + l.receivers.0.capacity()) * 16
            })
            .sum::<usize>()
            + self.batches.capacity() * 16
            + self.with_ledger.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_flows_keep_the_large_ones() {
        let mut t = TopFlows::default();
        for i in 0..1000u32 {
            t.add(i + 10, 100);
        }
        t.add(1, 1_000_000);
        t.add(2, 500_000);
        for i in 0..1000u32 {
            t.add(i + 5000, 100);
        }
        let top: Vec<u32> = {
            let mut v = t.0.clone();
            v.sort_by_key(|e| std::cmp::Reverse(e.1));
            v.iter().take(2).map(|e| e.0).collect()
        };
        assert_eq!(top, vec![1, 2]);
    }

    #[test]
    fn sets_count_past_the_cap() {
        let mut s = CpSet::default();
        for i in 0..(MAX_EXACT as u32 + 10) {
            s.add(i, 1, || member_hash(&i.to_string()));
        }
        s.add(3, 1, || unreachable!("a member already in the set is not hashed again"));
        assert_eq!(s.ids.len() as u64 + s.overflow, MAX_EXACT as u64 + 10);
        assert_eq!(s.fen, MAX_EXACT as i64 + 11);
    }

    #[test]
    fn the_running_sketch_is_the_bottom_k_of_all_members() {
        let mut s = CpSet::default();
        let names: Vec<String> = (0..5_000).map(|i| format!("6222{i:08}")).collect();
        for (i, n) in names.iter().enumerate() {
            s.add(i as u32, 1, || member_hash(n));
            // Repeats change nothing.
            s.add(i as u32 / 2, 1, || member_hash(&names[i / 2]));
        }
        let mut all: Vec<u64> = names.iter().map(|n| member_hash(n)).collect();
        all.sort_unstable();
        all.truncate(SKETCH);
        assert_eq!(s.report().sketch, all);
        assert_eq!(s.report().count, 5_000);
    }

    #[test]
    fn the_in_play_bits_follow_the_ledgers_through_a_checkpoint_and_an_expiry() {
        let mut t = Traces::default();
        for (id, until) in [(3u32, 10_000_000_000i64), (70, 1)] {
            let mut l = Ledger::new(0);
            l.until_ms = until;
            t.ledgers.insert(id, l);
            t.set_bit(id, true);
        }
        let bytes = postcard::to_allocvec(&t).expect("serialise");
        let mut back: Traces = postcard::from_bytes(&bytes).expect("deserialise");
        assert!(back.in_play(3) && back.in_play(70) && !back.in_play(4) && !back.in_play(1_000_000));
        back.expire(86_400_000 * 3, 86_400_000);
        assert!(
            back.in_play(3) && !back.in_play(70),
            "the expired ledger's bit is cleared"
        );
        assert_eq!(back.ledgers(), 1);
    }
}
