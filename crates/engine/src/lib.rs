//! The detection engine: one pure, deterministic core that `replay` and the Kafka service
//! both drive, one instance per partition.
//!
//! It takes validated transactions in arrival order and (1) holds them in an event-time
//! reorder buffer until the watermark (newest event time seen − allowed lateness) passes them,
//! releasing each account's records in (ts, tx_id) order whatever order they arrived in;
//! (2) appends each released record to the window store; (3) runs the rules its record could
//! complete; (4) confirms hits by score, keeps one alert per account, rule and episode, and
//! gives each alert a deterministic id. No I/O and no clocks except `detected_at`.
//!
//! **Bounded state.** Names leave the account and counterparty dictionaries once nothing
//! can remember them (see [`Engine::dictionary_stats`]): a name whose newest record is older
//! than every held window row and every waiting record, and older than the oldest record the
//! engine still admits (`max_history` behind the newest) by more than any per-account state
//! reaches (the longest cooldown, pass-through horizon and holding time, batch gap, and one
//! day for the large-value day totals), and that no account trace holds. Its id is freed and
//! reused, its per-account state reset: a record naming it later finds exactly the state a
//! new account has, which is what it would have found (see `Engine::sweep_dictionaries`).
//! The sweep runs once per Beijing day of the watermark, and only after window segments were
//! dropped (nothing else lets names out of held rows): one pass over the dictionaries per
//! 65,536 released rows at most.
//!
//! Its whole state can be checkpointed incrementally and restored ([`Engine::checkpoint`],
//! [`Engine::restore`], module `snapshot`), so a restarted service loads it instead of
//! re-reading its history; [`Engine::set_alerted_episodes`] seeds cooldowns when it must
//! re-read after all.

mod alert;
pub mod guard;
mod snapshot;
pub mod trace;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use compact_str::CompactString;
use fundwatch_record::{beijing_day, format_rfc3339_ms, AccountType, Direction, Transaction};
use fundwatch_rules::config::SegmentKey;
use fundwatch_rules::large_value::{self, LargeValueState};
use fundwatch_rules::periodic::{self, BatchTracker};
use fundwatch_rules::rapid::CycleTracker;
use fundwatch_rules::scatter::CollectionTracker;
use fundwatch_rules::{
    rapid, scatter, structuring, AccountProfile, Config, Ctx, Hit, MemoTagger, ResolvedRules, RuleId,
};
use fundwatch_window::{AccountId, Flags, Interner, NewRow, WindowStore, SEGMENT_ROWS};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use alert::Alert;
pub use guard::{Origin, TimeGuardStats, TimeRejected, TimeRejection};
pub use snapshot::{Checkpoint, SnapshotError, DICTIONARY_CHUNK, SNAPSHOT_FORMAT};
pub use trace::{AccountTrace, Flow, MemberSet, RoleFinding};

/// Counters an operator or a summary reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Valid records handed to the engine.
    pub records: u64,
    /// Records released to the rules (in event-time order).
    pub released: u64,
    /// Records that arrived later than the allowed lateness (processed on arrival).
    pub late: u64,
    /// Non-CNY records: counted and passed over until a rate table is configured.
    pub non_cny: u64,
    /// Alerts raised, by rule (indexed like [`RuleId::ALL`]).
    pub alerts: [u64; 5],
    /// Hits that scored below their rule's confirmation score.
    pub below_score: [u64; 5],
    /// Hits suppressed because the account's episode for that rule was already alerted.
    pub suppressed: [u64; 5],
    /// Full rule evaluations run.
    pub evaluations: [u64; 5],
}

/// Sizes of the engine's dictionaries (bounded state: names leave once nothing can remember
/// them, and their ids are reused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictionaryStats {
    /// Accounts in the dictionary.
    pub accounts: u64,
    /// Freed account ids waiting for reuse.
    pub accounts_free: u64,
    pub counterparties: u64,
    pub counterparties_free: u64,
    /// Accounts and counterparties evicted so far (a name evicted twice counts twice).
    pub accounts_evicted: u64,
    pub counterparties_evicted: u64,
}

/// When the dictionaries were last swept (checkpointed, so that a restored engine sweeps
/// when the uninterrupted one does and reuses the same ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SweepState {
    /// The window store's front sequence number then.
    pub front_seq: u64,
    /// Beijing day of the watermark then.
    pub day: i32,
    /// Names evicted so far: accounts, counterparties.
    pub evicted: [u64; 2],
}

impl Default for SweepState {
    fn default() -> Self {
        SweepState {
            front_seq: 0,
            day: i32::MIN,
            evicted: [0; 2],
        }
    }
}

fn rule_index(r: RuleId) -> usize {
    RuleId::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

/// Where `detected_at` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Wall,
    /// A fixed instant (epoch ms): for tests that compare whole alerts.
    Fixed(i64),
}

/// A record waiting in the reorder buffer.
struct Pending {
    ts_ms: i64,
    tx_id: CompactString,
    arrival: u64,
    account: AccountId,
    counterparty: AccountId,
    amount: i64,
    flags: Flags,
    account_type: AccountType,
    segment: (u32, u32),
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // (ts, tx_id) is what makes release order independent of arrival order; arrival only
    // breaks ties between records that repeat a tx_id at the same instant.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.ts_ms
            .cmp(&o.ts_ms)
            .then_with(|| self.tx_id.cmp(&o.tx_id))
            .then_with(|| self.arrival.cmp(&o.arrival))
    }
}

/// Behavioural rules with a cooldown, in a fixed order.
const BEHAVIOURAL: [RuleId; 4] = [
    RuleId::ScatterInConcentratedOut,
    RuleId::PeriodicBatchSmallOut,
    RuleId::RapidPassThrough,
    RuleId::Structuring,
];

struct AccountState {
    segment: (u32, u32),
    account_type: AccountType,
    rules: u32,
    key_sector: bool,
    large_value: LargeValueState,
    batches: BatchTracker,
    cycles: CycleTracker,
    collection: CollectionTracker,
    /// Event time until which each behavioural rule stays quiet (its episode was alerted).
    quiet_until: [i64; 4],
}

impl AccountState {
    /// Before the account's first record in a lane (`segment` unset).
    fn placeholder() -> AccountState {
        AccountState {
            segment: (u32::MAX, u32::MAX),
            account_type: AccountType::Personal,
            rules: 0,
            key_sector: false,
            large_value: LargeValueState::default(),
            batches: BatchTracker::default(),
            cycles: CycleTracker::default(),
            collection: CollectionTracker::default(),
            quiet_until: [i64::MIN; 4],
        }
    }

    fn has_segment(&self) -> bool {
        self.segment.0 != u32::MAX
    }
}

/// Cooldown (ms) of behavioural rule `b` (an index into [`BEHAVIOURAL`]).
fn cooldown_ms(params: &ResolvedRules, b: usize) -> i64 {
    match BEHAVIOURAL[b] {
        RuleId::ScatterInConcentratedOut => params.scatter.cooldown.ms(),
        RuleId::PeriodicBatchSmallOut => params.periodic.cooldown.ms(),
        RuleId::RapidPassThrough => params.rapid.cooldown.ms(),
        _ => params.structuring.cooldown.ms(),
    }
}

/// One set of rule thresholds evaluated over the engine's shared windows. An engine has one
/// lane (its config); tuning adds lanes so that many threshold variants share one pass of
/// admission, reordering and window upkeep ([`Engine::add_lane`]).
struct Lane {
    config: Arc<Config>,
    config_version: String,
    states: Vec<AccountState>,
    resolved: Vec<ResolvedRules>,
    resolved_index: FxHashMap<(AccountType, u32, u32), u32>,
    /// Lane 0's holds the shared counters too; the others' only their rules' counters.
    stats: EngineStats,
    /// Alerts of lanes other than 0 (lane 0's go to the caller).
    alerts: Vec<Alert>,
}

impl Lane {
    fn new(config: Arc<Config>) -> Lane {
        Lane {
            config_version: config_version(&config),
            config,
            states: Vec::new(),
            resolved: Vec::new(),
            resolved_index: FxHashMap::default(),
            stats: EngineStats::default(),
            alerts: Vec::new(),
        }
    }
}

/// Why a lane cannot share an engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    #[error("a lane must have the same [engine] and [memo] sections as the engine (they shape the shared windows)")]
    Incompatible,
    #[error("lanes are added before the first record")]
    Started,
}

pub struct Engine {
    tagger: MemoTagger,
    accounts: Interner,
    counterparties: Interner,
    /// Industry and region strings.
    segments: Interner,
    lanes: Vec<Lane>,
    store: WindowStore,
    pending: BinaryHeap<Reverse<Pending>>,
    arrivals: u64,
    max_ts: i64,
    released_up_to: i64,
    emit: bool,
    keep_near_misses: bool,
    near_misses: Vec<Alert>,
    /// Keep ledgers of accounts in play and emit their traces (the case-linking stage's input).
    tracing: bool,
    traces: trace::Traces,
    traces_out: Vec<AccountTrace>,
    clock: Clock,
    /// Records more than `max_future` ahead of the stream, waiting for it to follow (module
    /// `guard`); checkpointed after the head.
    held: Vec<guard::Held>,
    time_rejected: Vec<TimeRejected>,
    guard_stats: TimeGuardStats,
    /// Names per checkpoint object of the dictionaries.
    dict_chunk: usize,
    /// Content hashes of immutable objects already encoded (they name the objects).
    object_names: Mutex<snapshot::NameCache>,
    swept: SweepState,
    /// Sweep the dictionaries (a caller's setting: off only to compare against).
    evict_names: bool,
}

impl Engine {
    pub fn new(config: Arc<Config>) -> Engine {
        Engine::with_chunk_sizes(config, SEGMENT_ROWS, DICTIONARY_CHUNK)
    }

    /// An engine whose window segments hold `segment_rows` rows (a power of two; rounded up)
    /// and whose dictionaries are checkpointed in chunks of `dictionary_chunk` names. Only
    /// tests need other sizes than [`Engine::new`]'s: detection is the same, only how many
    /// rows past the horizon are still held differs. Kept across checkpoints.
    pub fn with_chunk_sizes(config: Arc<Config>, segment_rows: usize, dictionary_chunk: usize) -> Engine {
        let tagger = MemoTagger::new(&config.memo);
        let mut counterparties = Interner::new();
        counterparties.intern(""); // cash: id 0, never a real payer
        Engine {
            tagger,
            accounts: Interner::new(),
            counterparties,
            segments: Interner::new(),
            lanes: vec![Lane::new(config)],
            store: WindowStore::with_segment_rows(segment_rows),
            pending: BinaryHeap::new(),
            arrivals: 0,
            max_ts: i64::MIN,
            released_up_to: i64::MIN,
            emit: true,
            keep_near_misses: false,
            near_misses: Vec::new(),
            tracing: false,
            traces: trace::Traces::default(),
            traces_out: Vec::new(),
            clock: Clock::Wall,
            held: Vec::new(),
            time_rejected: Vec::new(),
            guard_stats: TimeGuardStats::default(),
            dict_chunk: dictionary_chunk.clamp(1, snapshot::MAX_DICTIONARY_CHUNK),
            object_names: Mutex::default(),
            swept: SweepState::default(),
            evict_names: true,
        }
    }

    pub fn config(&self) -> &Config {
        &self.lanes[0].config
    }

    /// `config_version` stamped on every alert.
    pub fn config_version(&self) -> &str {
        &self.lanes[0].config_version
    }

    /// Evaluate another set of thresholds over the same windows, in the same pass: what a
    /// separate engine with `config` would raise, for a fraction of its cost. Its `[engine]`
    /// and `[memo]` sections must equal this engine's. Returns the lane's index (1, 2, …).
    pub fn add_lane(&mut self, config: Arc<Config>) -> Result<usize, LaneError> {
        if self.arrivals > 0 || self.stats().records > 0 {
            return Err(LaneError::Started);
        }
        let first = &self.lanes[0].config;
        if config.engine != first.engine || config.memo != first.memo {
            return Err(LaneError::Incompatible);
        }
        self.lanes.push(Lane::new(config));
        Ok(self.lanes.len() - 1)
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Alerts lane `i` (≥ 1) raised since the last call.
    pub fn take_lane_alerts(&mut self, i: usize) -> Vec<Alert> {
        self.lanes
            .get_mut(i)
            .map(|l| std::mem::take(&mut l.alerts))
            .unwrap_or_default()
    }

    /// Lane `i`'s counters (the shared ones are the engine's).
    pub fn lane_stats(&self, i: usize) -> EngineStats {
        let shared = &self.lanes[0].stats;
        match self.lanes.get(i) {
            Some(l) => EngineStats {
                records: shared.records,
                released: shared.released,
                late: shared.late,
                non_cny: shared.non_cny,
                ..l.stats.clone()
            },
            None => EngineStats::default(),
        }
    }

    pub fn lane_config_version(&self, i: usize) -> &str {
        self.lanes.get(i).map_or("", |l| l.config_version.as_str())
    }

    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// While false, state is built exactly as usual but no alert is emitted (rebuilding a
    /// partition's windows from history before going live).
    pub fn set_emit(&mut self, emit: bool) {
        self.emit = emit;
    }

    /// Also keep hits that scored below their confirmation score (for tuning: what a lower
    /// `confirm_score` would add). Collected with [`Engine::take_near_misses`].
    pub fn keep_near_misses(&mut self, keep: bool) {
        self.keep_near_misses = keep;
    }

    /// Keep ledgers of the accounts rules find in play and emit [`AccountTrace`]s for the
    /// case-linking stage ([`Engine::take_traces`]). Set before the first record (ledgers
    /// start from the window, so a late start still measures held history). Traces are
    /// emitted only while [`Engine::set_emit`] is on; the ledgers are kept either way.
    pub fn enable_traces(&mut self, on: bool) {
        self.tracing = on;
    }

    pub fn traces_enabled(&self) -> bool {
        self.tracing
    }

    /// Traces emitted since the last call, in the order their records were released.
    pub fn take_traces(&mut self) -> Vec<AccountTrace> {
        std::mem::take(&mut self.traces_out)
    }

    /// Traces were emitted since the last [`Engine::drain_traces`] / [`Engine::take_traces`].
    #[inline]
    pub fn has_traces(&self) -> bool {
        !self.traces_out.is_empty()
    }

    /// Move the traces emitted since the last call onto `into` (no allocation per call,
    /// for a caller that collects them record by record).
    pub fn drain_traces(&mut self, into: &mut Vec<AccountTrace>) {
        if !self.traces_out.is_empty() {
            into.append(&mut self.traces_out);
        }
    }

    /// Accounts in play (with a ledger).
    pub fn traced_accounts(&self) -> usize {
        self.traces.ledgers()
    }

    /// Near misses gathered since the last call.
    pub fn take_near_misses(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.near_misses)
    }

    pub fn stats(&self) -> &EngineStats {
        &self.lanes[0].stats
    }

    /// The newest event time admitted (held records not included); `i64::MIN` before any.
    pub fn newest_event_ms(&self) -> i64 {
        self.max_ts
    }

    /// Event-time watermark: records at or before it have been released.
    pub fn watermark_ms(&self) -> i64 {
        self.released_up_to
    }

    /// Records waiting for the watermark.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether names nothing can remember leave the dictionaries (on by default). Output is
    /// the same either way; off, the dictionaries grow with every name seen.
    pub fn set_dictionary_eviction(&mut self, on: bool) {
        self.evict_names = on;
    }

    /// Dictionary sizes (live names, freed ids, evictions so far).
    pub fn dictionary_stats(&self) -> DictionaryStats {
        DictionaryStats {
            accounts: self.accounts.live() as u64,
            accounts_free: self.accounts.freed() as u64,
            counterparties: self.counterparties.live() as u64,
            counterparties_free: self.counterparties.freed() as u64,
            accounts_evicted: self.swept.evicted[0],
            counterparties_evicted: self.swept.evicted[1],
        }
    }

    /// Rows held in windows, and the heap bytes of the engine's state (columns, indexes,
    /// dictionaries with their free lists, per-account rule state, ledgers).
    pub fn state_size(&self) -> (u64, usize) {
        let bytes = self.store.heap_bytes()
            + self.accounts.heap_bytes()
            + self.counterparties.heap_bytes()
            + self.segments.heap_bytes()
            + self
                .lanes
                .iter()
                .map(|l| l.states.capacity() * std::mem::size_of::<AccountState>())
                .sum::<usize>()
            + self.traces.heap_bytes();
        (self.store.held_rows(), bytes)
    }

    /// Take one valid record (in arrival order). Alerts it lets through go to `out`. A record
    /// the event-time guards refuse goes to [`Engine::take_time_rejections`] (without an
    /// origin: pipelines that write dead letters call [`Engine::process_from`]).
    pub fn process(&mut self, tx: &Transaction<'_>, out: &mut Vec<Alert>) {
        self.process_from(tx, Origin::default(), out);
    }

    /// [`Engine::process`], naming where the record came from for its dead letter.
    pub fn process_from(&mut self, tx: &Transaction<'_>, origin: Origin<'_>, out: &mut Vec<Alert>) {
        self.lanes[0].stats.records += 1;
        if !tx.is_cny {
            self.lanes[0].stats.non_cny += 1;
            return;
        }
        let engine = &self.lanes[0].config.engine;
        let (max_future, max_history) = (engine.max_future.ms(), engine.max_history.ms());
        let reference = (self.max_ts != i64::MIN).then_some(self.max_ts);
        let implausible = !(guard::PLAUSIBLE_FROM_MS..guard::PLAUSIBLE_UNTIL_MS).contains(&tx.ts_ms);
        let too_old = reference.filter(|newest| tx.ts_ms < newest.saturating_sub(max_history));
        if implausible || too_old.is_some() {
            let reason = match too_old {
                Some(newest_ms) if !implausible => TimeRejection::TooOld {
                    ts_ms: tx.ts_ms,
                    newest_ms,
                    max_history_ms: max_history,
                },
                _ => TimeRejection::Implausible { ts_ms: tx.ts_ms },
            };
            self.reject_time(tx, origin, reason);
            return;
        }
        if !self.held.is_empty() {
            // Does the stream follow each held record?
            for h in &mut self.held {
                if tx.ts_ms >= h.tx.ts_ms.saturating_sub(max_future) {
                    h.followers += 1;
                } else {
                    h.contradictions += 1;
                }
            }
        }
        let ahead = reference.is_none_or(|r| tx.ts_ms > r.saturating_add(max_future));
        if ahead {
            self.guard_stats.held += 1;
            self.held.push(guard::Held {
                tx: tx.clone().into_owned(),
                position: origin.position,
                raw: origin.raw.to_vec(),
                followers: 0,
                contradictions: 0,
            });
        } else {
            self.admit_in_order(tx, out);
        }
        if !self.held.is_empty() {
            self.settle_held(out, false);
        }
    }

    /// Admit held records the stream followed or caught up with, in arrival order, and reject
    /// those it did not follow (`end`: input is over, nothing more will follow).
    fn settle_held(&mut self, out: &mut Vec<Alert>, end: bool) {
        let max_future = self.lanes[0].config.engine.max_future.ms();
        loop {
            let within_reach =
                |h: &guard::Held, max_ts: i64| max_ts != i64::MIN && h.tx.ts_ms <= max_ts.saturating_add(max_future);
            let admit = self
                .held
                .iter()
                .position(|h| h.followers >= guard::FOLLOWERS_TO_ADMIT || within_reach(h, self.max_ts) || end);
            let Some(i) = admit else { break };
            let h = self.held.remove(i);
            self.admit_in_order(&h.tx, out);
        }
        let reference = (self.max_ts != i64::MIN).then_some(self.max_ts);
        let mut i = 0;
        while i < self.held.len() {
            let h = &self.held[i];
            if h.contradictions >= guard::CONTRADICTIONS_TO_REJECT || self.held.len() > guard::MAX_HELD {
                let h = self.held.remove(i);
                self.guard_stats.future_time += 1;
                self.time_rejected.push(h.rejected(reference, max_future));
            } else {
                i += 1;
            }
        }
    }

    fn reject_time(&mut self, tx: &Transaction<'_>, origin: Origin<'_>, reason: TimeRejection) {
        match reason.code() {
            "future_time" => self.guard_stats.future_time += 1,
            _ => self.guard_stats.too_old += 1,
        }
        self.time_rejected.push(TimeRejected {
            position: origin.position,
            raw: origin.raw.to_vec(),
            tx_id: tx.tx_id.to_string(),
            account: tx.account.to_string(),
            reason,
        });
    }

    /// Records the event-time guards refused since the last call (module `guard`).
    pub fn take_time_rejections(&mut self) -> Vec<TimeRejected> {
        std::mem::take(&mut self.time_rejected)
    }

    /// Whether [`Engine::take_time_rejections`] has anything (cheap, for the hot path).
    pub fn has_time_rejections(&self) -> bool {
        !self.time_rejected.is_empty()
    }

    pub fn time_guard_stats(&self) -> TimeGuardStats {
        self.guard_stats
    }

    /// Records held aside, waiting for the stream to follow them.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Into the reorder buffer (or, later than the allowed lateness, straight to the rules).
    fn admit_in_order(&mut self, tx: &Transaction<'_>, out: &mut Vec<Alert>) {
        let p = self.admit(tx);
        let lateness = self.lanes[0].config.engine.allowed_lateness.ms();
        if p.ts_ms < self.max_ts.saturating_sub(lateness) {
            // Later than the allowed lateness: everything before the watermark has been
            // released, so its place in event time is gone; process it now, counted.
            self.lanes[0].stats.late += 1;
            self.release(p, out);
            return;
        }
        self.max_ts = self.max_ts.max(p.ts_ms);
        self.pending.push(Reverse(p));
        let watermark = self.max_ts.saturating_sub(lateness);
        self.release_until(watermark, out);
    }

    /// End of input: settle held records, then release everything still waiting.
    pub fn flush(&mut self, out: &mut Vec<Alert>) {
        if !self.held.is_empty() {
            self.settle_held(out, true);
        }
        self.release_until(i64::MAX, out);
    }

    /// Seed cooldowns after a rebuild from history, from the alerts that were really raised:
    /// (account, rule, trigger event time = the alert's `window_end`, epoch ms). For every
    /// account in the dictionary and behavioural rule, each lane's quiet-until becomes the
    /// latest given trigger + that account's cooldown for the rule (at least 1 ms, as when
    /// alerting). `replace`: accounts and rules without a given alert forget their cooldown
    /// (the rebuild's own alerts were not raised); otherwise cooldowns are only raised.
    /// Entries of unknown accounts, or of `large_value` (no cooldown), are ignored; returns
    /// how many were applied.
    pub fn set_alerted_episodes(&mut self, alerted: &[(String, RuleId, i64)], replace: bool) -> usize {
        let given: Vec<(AccountId, usize, i64)> = alerted
            .iter()
            .filter_map(|(a, r, t)| Some((self.accounts.get(a)?, BEHAVIOURAL.iter().position(|x| x == r)?, *t)))
            .collect();
        // Accounts not yet released in a lane get their segment from their first waiting record.
        let mut first_pending: FxHashMap<AccountId, &Pending> = FxHashMap::default();
        for Reverse(p) in &self.pending {
            let e = first_pending.entry(p.account).or_insert(p);
            if p < *e {
                *e = p;
            }
        }
        for lane in &mut self.lanes {
            if replace {
                for st in &mut lane.states {
                    st.quiet_until = [i64::MIN; 4];
                }
            }
            for &(account, b, trigger) in &given {
                let idx = account as usize;
                let rules = match (lane.states.get(idx), first_pending.get(&account)) {
                    (Some(st), _) if st.has_segment() => Some(st.rules),
                    (_, Some(p)) => Some(lane.resolve_rules(p.account_type, p.segment, &self.segments)),
                    _ => None,
                };
                // Every dictionary account was released (segment set) or is waiting.
                let Some(rules) = rules else { continue };
                let cooldown = cooldown_ms(&lane.resolved[rules as usize], b);
                if idx >= lane.states.len() {
                    lane.states.resize_with(idx + 1, AccountState::placeholder);
                }
                let q = &mut lane.states[idx].quiet_until[b];
                *q = (*q).max(trigger.saturating_add(cooldown.max(1)));
            }
        }
        given.len()
    }

    fn admit(&mut self, tx: &Transaction<'_>) -> Pending {
        let account = self.accounts.intern_at(&tx.account, tx.ts_ms);
        let counterparty = self.counterparties.intern_at(&tx.counterparty, tx.ts_ms);
        // An account's industry and region rarely change: compare before hashing.
        let segment = match self.lanes[0].states.get(account as usize) {
            Some(st)
                if st.segment.0 != u32::MAX
                    && self.segments.resolve(st.segment.0) == tx.industry
                    && self.segments.resolve(st.segment.1) == tx.region =>
            {
                st.segment
            }
            _ => (self.segments.intern(&tx.industry), self.segments.intern(&tx.region)),
        };
        let tags = self.tagger.tag(&tx.memo);
        self.arrivals += 1;
        Pending {
            ts_ms: tx.ts_ms,
            tx_id: CompactString::from(tx.tx_id.as_ref()),
            arrival: self.arrivals,
            account,
            counterparty,
            amount: tx.amount,
            flags: Flags::new(tx.channel, tx.direction, tx.cross_border, tags.0),
            account_type: tx.account_type,
            segment,
        }
    }

    fn release_until(&mut self, watermark: i64, out: &mut Vec<Alert>) {
        while self.pending.peek().is_some_and(|Reverse(p)| p.ts_ms <= watermark) {
            if let Some(Reverse(p)) = self.pending.pop() {
                self.released_up_to = self.released_up_to.max(p.ts_ms);
                self.release(p, out);
            }
        }
        if watermark != i64::MAX && self.released_up_to > i64::MIN {
            // Whole segments past the longest horizon go; cheap when there are none.
            let keep = self.lanes[0].config.engine.max_history.ms();
            self.store.evict_before(self.released_up_to.saturating_sub(keep));
            if self.tracing {
                self.traces.expire(self.released_up_to, keep);
            }
            if self.evict_names && self.store.front_seq() != self.swept.front_seq {
                self.sweep_dictionaries();
            }
        }
    }

    /// The longest any per-account rule state reaches past an account's newest record, over
    /// every lane and every segment's resolved thresholds: cooldowns (a quiet episode), the
    /// pass-through horizon and holding time (open and closed cycles, carried balance, the
    /// last payee of an open cycle), the batch gap (a batch under way) and a day (the
    /// large-value day totals). A record that much newer than an account's last one finds
    /// its state as a new account's would be, except for the collection gate, which only
    /// over-counts inflows (evaluating more, never finding differently).
    fn state_slack_ms(&self) -> i64 {
        let mut slack: i64 = 86_400_000;
        for r in self.lanes.iter().flat_map(|l| l.resolved.iter()) {
            for ms in [
                r.scatter.cooldown.ms(),
                r.periodic.cooldown.ms(),
                r.rapid.cooldown.ms(),
                r.structuring.cooldown.ms(),
                r.rapid.horizon.ms(),
                r.rapid.max_hold.ms(),
                r.periodic.batch_gap.ms(),
            ] {
                slack = slack.max(ms);
            }
        }
        slack.saturating_add(1)
    }

    /// Free the account and counterparty names that nothing can remember. A name goes when
    /// its newest record (its stamp, an upper bound) is (1) older than every held window row,
    /// so no row names it, (2) no later than the watermark, so no waiting record names it,
    /// and (3) older, by [`Engine::state_slack_ms`], than the oldest record still admitted
    /// (`max_history` behind the newest; older ones are refused), so any record that names
    /// it again finds reset state; and (4) no ledger holds it (an account in play, with
    /// batch days, or a counterparty in a ledger's sets) and no seeded cooldown outlasts (3).
    /// Runs once per Beijing day of the watermark, after segments were dropped.
    fn sweep_dictionaries(&mut self) {
        let day = beijing_day(self.released_up_to);
        if day == self.swept.day {
            return;
        }
        self.swept.day = day;
        self.swept.front_seq = self.store.front_seq();
        let max_history = self.lanes[0].config.engine.max_history.ms();
        let admitted_from = self.max_ts.saturating_sub(max_history);
        let before = self
            .store
            .min_held_ts()
            .min(self.released_up_to)
            .min(admitted_from.saturating_sub(self.state_slack_ms()));

        let (traces, lanes) = (&self.traces, &self.lanes);
        let freed = self.accounts.evict(before, |id| {
            traces.in_play(id)
                || traces.has_batch_days(id)
                || lanes.iter().any(|l| {
                    l.states
                        .get(id as usize)
                        .is_some_and(|st| st.quiet_until.iter().any(|&q| q > admitted_from))
                })
        });
        for &id in &freed {
            for lane in &mut self.lanes {
                if let Some(st) = lane.states.get_mut(id as usize) {
                    *st = AccountState::placeholder();
                }
            }
            self.store.forget(id);
        }
        self.swept.evicted[0] += freed.len() as u64;

        // Counterparties a ledger holds (in its sets or flows) stay: a bitmap by id.
        let mut held = vec![0u64; self.counterparties.len().div_ceil(64)];
        self.traces.for_each_counterparty(|id| {
            if let Some(w) = held.get_mut(id as usize / 64) {
                *w |= 1 << (id % 64);
            }
        });
        let cash = 0; // the empty name: every cash record's counterparty
        let freed = self.counterparties.evict(before, |id| {
            id == cash || held.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
        });
        self.swept.evicted[1] += freed.len() as u64;
    }

    fn release(&mut self, p: Pending, out: &mut Vec<Alert>) {
        self.lanes[0].stats.released += 1;
        let seq = self.store.push(
            p.account,
            NewRow {
                ts_ms: p.ts_ms,
                amount: p.amount,
                counterparty: p.counterparty,
                flags: p.flags,
                tx_id: &p.tx_id,
            },
        );
        let trigger = self.store.row(seq);
        let mut notes: Vec<trace::Note> = Vec::new();
        let mut batch = false;
        let shared = Shared {
            store: &self.store,
            accounts: &self.accounts,
            counterparties: &self.counterparties,
            segments: &self.segments,
            emit: self.emit,
            clock: self.clock,
        };
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            if i == 0 {
                let near = self.keep_near_misses.then_some(&mut self.near_misses);
                let notes = self.tracing.then_some((&mut notes, &self.traces));
                batch = lane.release(&shared, &p, &trigger, out, near, notes);
            } else {
                let mut buf = std::mem::take(&mut lane.alerts);
                lane.release(&shared, &p, &trigger, &mut buf, None, None);
                lane.alerts = buf;
            }
        }
        // Most records: no finding, no batch, an account not in play — nothing to trace.
        if self.tracing && (batch || !notes.is_empty() || self.traces.in_play(p.account)) {
            self.trace_release(&p, &trigger, &notes, batch);
        }
    }

    /// The released record's part in its account's ledger, and the trace it makes, if any
    /// (out of line: most records never get here, and the per-record path stays small).
    #[inline(never)]
    fn trace_release(&mut self, p: &Pending, trigger: &fundwatch_window::Row, notes: &[trace::Note], batch: bool) {
        let lane = &self.lanes[0];
        let config = &lane.config;
        let cx = trace::TraceCtx {
            counterparties: &self.counterparties,
            account: p.account,
            account_name: self.accounts.resolve(p.account),
            region: self.segments.resolve(p.segment.1),
            config_version: &lane.config_version,
            max_payment: config.rules.periodic_batch_small_out.params.max_payment.fen(),
            max_history_ms: config.engine.max_history.ms(),
            cash: 0,
        };
        let store = &self.store;
        let emitted = self
            .traces
            .observe(&cx, trigger, &p.tx_id, notes, batch, || store.rows(p.account).collect());
        // Not `if let (Some(t), true) = (emitted, …)`: that tuple copies the whole (large)
        // trace on every record, emitted or not.
        if let Some(t) = emitted {
            if self.emit {
                self.traces_out.push(t);
            }
        }
    }
}

/// What every lane reads while releasing a record.
struct Shared<'a> {
    store: &'a WindowStore,
    accounts: &'a Interner,
    counterparties: &'a Interner,
    segments: &'a Interner,
    emit: bool,
    clock: Clock,
}

impl Lane {
    /// Index into `resolved` of a segment's parameters (resolved on first use).
    fn resolve_rules(&mut self, account_type: AccountType, segment: (u32, u32), segments: &Interner) -> u32 {
        let key = (account_type, segment.0, segment.1);
        if let Some(&i) = self.resolved_index.get(&key) {
            return i;
        }
        let seg = SegmentKey {
            account_type,
            industry: segments.resolve(segment.0),
            region: segments.resolve(segment.1),
        };
        self.resolved.push(self.config.rules.resolve(&seg));
        let i = (self.resolved.len() - 1) as u32;
        self.resolved_index.insert(key, i);
        i
    }

    fn is_key_sector(&self, industry: &str) -> bool {
        !industry.is_empty() && self.config.segments.key_sectors.iter().any(|k| k == industry)
    }

    fn state_for(&mut self, p: &Pending, segments: &Interner) -> usize {
        let idx = p.account as usize;
        if idx >= self.states.len() {
            self.states.resize_with(idx + 1, AccountState::placeholder);
        }
        let st = &self.states[idx];
        if st.segment != p.segment || st.account_type != p.account_type {
            let rules = self.resolve_rules(p.account_type, p.segment, segments);
            let key_sector = self.is_key_sector(segments.resolve(p.segment.0));
            let st = &mut self.states[idx];
            st.segment = p.segment;
            st.account_type = p.account_type;
            st.rules = rules;
            st.key_sector = key_sector;
        }
        idx
    }

    fn release(
        &mut self,
        sh: &Shared<'_>,
        p: &Pending,
        trigger: &fundwatch_window::Row,
        out: &mut Vec<Alert>,
        near: Option<&mut Vec<Alert>>,
        notes: Option<(&mut Vec<trace::Note>, &trace::Traces)>,
    ) -> bool {
        let trigger = *trigger;
        let idx = self.state_for(p, sh.segments);
        let st = &mut self.states[idx];
        let params = &self.resolved[st.rules as usize];
        let ctx = Ctx {
            store: sh.store,
            names: sh.counterparties,
            account: p.account,
            account_name: sh.accounts.resolve(p.account),
            profile: AccountProfile {
                account_type: p.account_type,
                key_sector: st.key_sector,
            },
            trigger,
        };
        let mut hits: Vec<Hit> = Vec::new();
        let lv = &self.config.rules.large_value;
        if let Some(h) = large_value::observe(&mut st.large_value, &ctx, p.account_type, lv) {
            hits.push(h);
        }
        // Rules in an alerted episode still evaluate, so a continuing pattern is counted
        // (as suppressed) rather than invisible.
        let mut evals = [0u64; 5];
        let mut batch = false;
        let cycle_closed = st.cycles.observe(&trigger, &params.rapid);
        let collection_due = st.collection.observe(&trigger, &params.scatter);
        if structuring::may_complete(&ctx, p.account_type, &params.structuring, lv) {
            evals[rule_index(RuleId::Structuring)] += 1;
            hits.extend(structuring::evaluate(&ctx, p.account_type, &params.structuring, lv));
        }
        if p.flags.direction() == Direction::Out {
            if collection_due {
                evals[rule_index(RuleId::ScatterInConcentratedOut)] += 1;
                hits.extend(scatter::evaluate(&ctx, &params.scatter));
            }
            if cycle_closed {
                evals[rule_index(RuleId::RapidPassThrough)] += 1;
                hits.extend(rapid::evaluate(&ctx, &params.rapid));
            }
            if st.batches.observe(&trigger, &params.periodic) {
                batch = true;
                evals[rule_index(RuleId::PeriodicBatchSmallOut)] += 1;
                hits.extend(periodic::evaluate(&ctx, &params.periodic));
            }
        }
        for (total, n) in self.stats.evaluations.iter_mut().zip(evals) {
            *total += n;
        }
        if hits.is_empty() {
            return batch;
        }
        let tx_id = p.tx_id.to_string();
        let mut near = near;
        let (mut notes, traces) = match notes {
            Some((n, t)) => (Some(n), Some(t)),
            None => (None, None),
        };
        let max_history = self.config.engine.max_history.ms();
        for hit in hits {
            let note = traces.and_then(|t| {
                let role = trace_role(hit.rule)?;
                // Only an episode's first finding keeps its words (building them is not free).
                let first = t.is_fresh(p.account, role, p.ts_ms, max_history);
                Some(trace::Note {
                    role,
                    score: hit.score,
                    alert_id: None,
                    window_start_ms: hit.window_start_ms,
                    summary: if first { hit.summary.clone() } else { String::new() },
                    evidence: if first {
                        serde_json::to_string(&hit.evidence).unwrap_or_default()
                    } else {
                        String::new()
                    },
                })
            });
            let alerted = self.confirm(sh, hit, idx, p, &tx_id, out, near.as_deref_mut());
            if let (Some(notes), Some(mut note)) = (notes.as_deref_mut(), note) {
                note.alert_id = alerted;
                notes.push(note);
            }
        }
        batch
    }

    #[allow(clippy::too_many_arguments)]
    fn confirm(
        &mut self,
        sh: &Shared<'_>,
        hit: Hit,
        idx: usize,
        p: &Pending,
        tx_id: &str,
        out: &mut Vec<Alert>,
        near: Option<&mut Vec<Alert>>,
    ) -> Option<String> {
        let ri = rule_index(hit.rule);
        let st = &mut self.states[idx];
        let params = &self.resolved[st.rules as usize];
        let (confirm_score, cooldown) = match hit.rule {
            RuleId::ScatterInConcentratedOut => (params.scatter.confirm_score, params.scatter.cooldown),
            RuleId::PeriodicBatchSmallOut => (params.periodic.confirm_score, params.periodic.cooldown),
            RuleId::RapidPassThrough => (params.rapid.confirm_score, params.rapid.cooldown),
            RuleId::Structuring => (params.structuring.confirm_score, params.structuring.cooldown),
            RuleId::LargeValue => (0.0, fundwatch_rules::Span(0)),
        };
        if hit.score < confirm_score {
            self.stats.below_score[ri] += 1;
            if let (Some(near), true) = (near, sh.emit) {
                near.push(self.make_alert(sh, hit, p, tx_id));
            }
            return None;
        }
        if let Some(b) = BEHAVIOURAL.iter().position(|r| *r == hit.rule) {
            // One alert per episode: the pattern continuing within the cooldown is the same case.
            if p.ts_ms < st.quiet_until[b] {
                self.stats.suppressed[ri] += 1;
                return None;
            }
            st.quiet_until[b] = p.ts_ms.saturating_add(cooldown.ms().max(1));
        }
        self.stats.alerts[ri] += 1;
        if !sh.emit {
            // The alert was raised before (a rebuild): its id is what a ledger records.
            let account = sh.accounts.resolve(p.account);
            return Some(alert_id(
                &self.config_version,
                hit.rule,
                account,
                tx_id,
                hit.episode.as_deref(),
            ));
        }
        let alert = self.make_alert(sh, hit, p, tx_id);
        let id = alert.alert_id.clone();
        out.push(alert);
        Some(id)
    }

    fn make_alert(&self, sh: &Shared<'_>, hit: Hit, p: &Pending, tx_id: &str) -> Alert {
        let account = sh.accounts.resolve(p.account).to_owned();
        let region = sh.segments.resolve(p.segment.1);
        let alert_id = alert_id(&self.config_version, hit.rule, &account, tx_id, hit.episode.as_deref());
        let detected_at = match sh.clock {
            Clock::Wall => chrono::Utc::now().timestamp_millis(),
            Clock::Fixed(ms) => ms,
        };
        let mut evidence = hit.evidence;
        evidence.insert("account_type".into(), Value::String(p.account_type.as_str().into()));
        let industry = sh.segments.resolve(p.segment.0);
        if !industry.is_empty() {
            evidence.insert("industry".into(), Value::String(industry.into()));
        }
        Alert {
            alert_id,
            rule: hit.rule.as_str().to_owned(),
            account,
            score: hit.score,
            window_start: format_rfc3339_ms(hit.window_start_ms),
            window_end: format_rfc3339_ms(hit.window_end_ms),
            triggered_by: tx_id.to_owned(),
            detected_at: format_rfc3339_ms(detected_at),
            region: (!region.is_empty()).then(|| region.to_owned()),
            summary: hit.summary,
            evidence,
            config_version: self.config_version.clone(),
        }
    }
}

/// The role a behavioural rule's finding gives an account in a scheme.
fn trace_role(rule: RuleId) -> Option<trace::Role> {
    match rule {
        RuleId::ScatterInConcentratedOut => Some(trace::Role::Collector),
        RuleId::PeriodicBatchSmallOut => Some(trace::Role::Payout),
        RuleId::RapidPassThrough => Some(trace::Role::PassThrough),
        _ => None,
    }
}

/// The id the linking stage gives a `periodic_batch_small_out` alert it confirms by a link
/// (the payout episode's first finding identifies it, however late the link is made).
pub fn linked_alert_id(config_version: &str, account: &str, first_tx: &str) -> String {
    alert_id(
        config_version,
        RuleId::PeriodicBatchSmallOut,
        account,
        first_tx,
        Some("linked"),
    )
}

/// Stable 128-bit hash of what identifies an alert, as 32 hex digits.
fn alert_id(version: &str, rule: RuleId, account: &str, tx_id: &str, episode: Option<&str>) -> String {
    let key = format!(
        "{version}\u{1f}{}\u{1f}{account}\u{1f}{tx_id}\u{1f}{}",
        rule.as_str(),
        episode.unwrap_or("")
    );
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

/// The config's own `version`, or a hash of the effective thresholds
/// ([`Config::thresholds_toml`]: where the service connects to does not change what it detects).
pub fn config_version(cfg: &Config) -> String {
    if !cfg.version.trim().is_empty() {
        return cfg.version.trim().to_owned();
    }
    let canonical = cfg.thresholds_toml();
    format!("cfg-{:012x}", xxhash_rust::xxh3::xxh3_64(canonical.as_bytes()) >> 16)
}
