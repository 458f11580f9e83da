//! The case-linking stage: ties the accounts of one fund-raising scheme into a case.
//!
//! It reads only the engine's account traces ([`AccountTrace`], one per change of an account
//! in play), never transactions, and keeps the latest trace per account. Two accounts are
//! tied when the people or the money tie them:
//!
//! - **`payees_paid_in`**: most of a payout account's payees paid into a collector — the
//!   "interest" goes to the investors (at least `min_shared_people`, and `min_payee_share` of
//!   the payees; estimated from bounded samples, so 50,000 investors cost what 256 do);
//! - **`funded`**: one account is a large source of the other's inflow (a collector topping
//!   up a payout account, a sweep into a pass-through account);
//! - **`shared_intermediary`**: an account outside the traces takes a large share of one's
//!   outflow and is a large source of the other's inflow (collection → a controller → the
//!   payout account), unless that intermediary is a hub named by more than
//!   `max_intermediary_degree` accounts.
//!
//! A connected group of tied accounts is a case when one of them has a behavioural alert as
//! collector or payout. A payout account below its rule's line that is tied to an alerted
//! collector by its payees gets a `periodic_batch_small_out` alert naming the link.
//!
//! **Determinism.** Ties are pure functions of the traces they join, and a case is a pure
//! function of its accounts' latest traces: id from its first collector, version = the sum of
//! its accounts' trace numbers. So the final cases depend only on each account's final trace
//! — the same in replay and on any Kafka partitioning, however the traces interleave.
//! Intermediate versions (and cases that later merge into an older one) may differ.
//!
//! **Scale.** The engine of each partition traces its own accounts; the linker sees only
//! traces — a few per account in play per day, each at most a few kilobytes — so one linker
//! serves many engine instances (see the Kafka crate for how it is placed).

pub mod record;
pub mod route;
pub mod sketch;

use std::collections::{BTreeMap, BTreeSet};

// Fx, not SipHash: the keys are account names and member hashes from our own engine, and
// the linker hashes them a few hundred thousand times per million records.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use fundwatch_engine::{linked_alert_id, AccountTrace, Alert, Clock, Flow};
use fundwatch_record::{format_day, format_fen, format_rfc3339_ms};
use fundwatch_rules::CasesParams;
use serde_json::{Map, Value};

pub use record::{CaseAccount, CaseLink, CaseNotice, CaseRecord, Growth, LineShares, WeekGrowth};
pub use route::{route_alert, route_case, Routed};

/// Records between two linker batches where one process drives both the engine and the
/// linker (replay, backtests): each case changed in between is written once, at its state
/// after the batch. Final cases do not depend on it (module doc, determinism).
pub const LINK_EVERY: u32 = 16_384;

/// Counters of a linker.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkerStats {
    /// Traces applied (stale ones excluded).
    pub traces: u64,
    /// Traces older than one already held for their account (ignored).
    pub stale_traces: u64,
    /// Accounts with a trace.
    pub accounts: u64,
    /// Ties between accounts now.
    pub links: u64,
    pub open_cases: u64,
    /// Case versions written (open and final ones).
    pub case_versions: u64,
    /// Alerts raised by a link.
    pub linked_alerts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tie {
    PayeesPaidIn,
    Funded,
    Shared,
}

/// One tie between two accounts, as stored on both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    tie: Tie,
    /// The account money or people went from (the collector, for `PayeesPaidIn`).
    from: String,
    to: String,
    via: Option<String>,
}

pub struct Linker {
    params: CasesParams,
    clock: Clock,
    emit: bool,
    traces: BTreeMap<String, AccountTrace>,
    /// Account numbers of the indexes below.
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// Member hash → collectors whose payer sample holds it.
    payer_index: HashMap<u64, Vec<u32>>,
    /// Member hash → payout candidates whose payee sample holds it.
    payee_index: HashMap<u64, Vec<u32>>,
    /// Counterparty → accounts naming it among their large receivers.
    named_receiver: HashMap<String, BTreeSet<String>>,
    /// Counterparty → accounts naming it among their large funders.
    named_funder: HashMap<String, BTreeSet<String>>,
    edges: BTreeMap<String, BTreeSet<Edge>>,
    /// Account → id of the open case holding it.
    case_of: HashMap<String, String>,
    /// Open cases as last computed.
    open: BTreeMap<String, CaseRecord>,
    /// Last version written per id (open or final).
    written: HashMap<String, u64>,
    linked: HashSet<String>,
    /// Cases touched since the last emission.
    touched: BTreeSet<String>,
    /// Accounts to re-tie at the next settle.
    dirty: BTreeSet<String>,
    retired: BTreeMap<String, CaseRecord>,
    out_cases: Vec<CaseRecord>,
    out_alerts: Vec<Alert>,
    stats: LinkerStats,
}

/// Role of an account in a case.
fn role(t: &AccountTrace) -> &'static str {
    if t.collector.is_some() {
        "collector"
    } else if t.payout.is_some() || t.batch_days >= 2 {
        "payout"
    } else {
        "receiver"
    }
}

fn is_collector(t: &AccountTrace) -> bool {
    t.collector.is_some()
}

fn is_payout_candidate(t: &AccountTrace) -> bool {
    t.payout.is_some() || t.batch_days >= 2
}

/// Flows that are at least `share` of `total`.
fn large<'a>(flows: &'a [Flow], total: i64, share: f64) -> impl Iterator<Item = &'a Flow> + 'a {
    flows
        .iter()
        .filter(move |f| total > 0 && f.fen as f64 >= share * total as f64)
}

impl Linker {
    pub fn new(params: CasesParams) -> Linker {
        Linker {
            params,
            clock: Clock::Wall,
            emit: true,
            traces: BTreeMap::new(),
            ids: HashMap::default(),
            names: Vec::new(),
            payer_index: HashMap::default(),
            payee_index: HashMap::default(),
            named_receiver: HashMap::default(),
            named_funder: HashMap::default(),
            edges: BTreeMap::new(),
            case_of: HashMap::default(),
            open: BTreeMap::new(),
            written: HashMap::default(),
            linked: HashSet::default(),
            touched: BTreeSet::new(),
            dirty: BTreeSet::new(),
            retired: BTreeMap::new(),
            out_cases: Vec::new(),
            out_alerts: Vec::new(),
            stats: LinkerStats::default(),
        }
    }

    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// While false, state is built as usual but nothing is written (a restarted linker
    /// re-reading the traces its outputs already reflect).
    pub fn set_emit(&mut self, emit: bool) {
        self.emit = emit;
    }

    pub fn stats(&self) -> LinkerStats {
        LinkerStats {
            accounts: self.traces.len() as u64,
            links: self.edges.values().map(|e| e.len() as u64).sum::<u64>() / 2,
            open_cases: self.open.len() as u64,
            ..self.stats.clone()
        }
    }

    /// The open cases as they stand.
    pub fn open_cases(&self) -> impl Iterator<Item = &CaseRecord> {
        self.open.values()
    }

    /// Case versions written since the last call, in order.
    pub fn take_cases(&mut self) -> Vec<CaseRecord> {
        std::mem::take(&mut self.out_cases)
    }

    /// Alerts raised by links since the last call.
    pub fn take_alerts(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.out_alerts)
    }

    /// Apply one trace and write what changed (replay: every change).
    pub fn apply(&mut self, t: AccountTrace) {
        self.absorb(t);
        self.settle();
        self.emit_touched();
    }

    /// Apply many traces, then write each changed case once, at its final state (the Kafka
    /// linker: one batch per transaction; a restart's catch-up is one batch).
    pub fn apply_all(&mut self, traces: impl IntoIterator<Item = AccountTrace>) {
        for t in traces {
            self.absorb(t);
        }
        self.settle();
        self.emit_touched();
    }

    fn absorb(&mut self, t: AccountTrace) {
        if self.traces.get(&t.account).is_some_and(|old| old.seq >= t.seq) {
            self.stats.stale_traces += 1;
            return;
        }
        self.stats.traces += 1;
        let account = t.account.clone();
        let old = self.traces.insert(account.clone(), t);
        // Intermediaries whose hub status changes re-tie every account naming them.
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.insert(account.clone());
        let before: BTreeSet<String> = old.as_ref().map(|o| self.named(o)).unwrap_or_default();
        let degree_before: Vec<(String, bool)> = before.iter().map(|n| (n.clone(), self.is_hub(n))).collect();
        let id = self.id_of(&account);
        {
            let new = &self.traces[&account];
            let none: &[u64] = &[];
            let old_payers = old
                .as_ref()
                .filter(|o| is_collector(o))
                .map_or(none, |o| &o.payers.sketch[..]);
            let new_payers = if is_collector(new) {
                &new.payers.sketch[..]
            } else {
                none
            };
            let old_payees = old
                .as_ref()
                .filter(|o| is_payout_candidate(o))
                .map_or(none, |o| &o.payees.sketch[..]);
            let new_payees = if is_payout_candidate(new) {
                &new.payees.sketch[..]
            } else {
                none
            };
            reindex(&mut self.payer_index, id, old_payers, new_payers);
            reindex(&mut self.payee_index, id, old_payees, new_payees);
        }
        if let Some(o) = &old {
            self.unname(o);
        }
        let Some(new) = self.traces.remove(&account) else {
            return;
        };
        self.name(&new);
        let after = self.named(&new);
        self.traces.insert(account.clone(), new);
        for (n, hub) in degree_before {
            if self.is_hub(&n) != hub {
                dirty.extend(self.naming(&n));
            }
        }
        for n in after.difference(&before) {
            // A newly named intermediary may just have become a hub.
            let was_hub = self.degree(n).saturating_sub(1) > self.params.max_intermediary_degree as usize;
            if self.is_hub(n) != was_hub {
                dirty.extend(self.naming(n));
            }
        }
        // Accounts that name this one tie to it directly.
        dirty.extend(self.naming(&account));
        self.dirty = dirty;
    }

    /// Re-tie the accounts changed since the last call and recompute their cases.
    fn settle(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() {
            return;
        }
        let mut affected: BTreeSet<String> = BTreeSet::new();
        for a in &dirty {
            affected.extend(
                self.edges
                    .get(a)
                    .into_iter()
                    .flatten()
                    .flat_map(|e| [e.from.clone(), e.to.clone()]),
            );
            self.retie(a);
            affected.extend(
                self.edges
                    .get(a)
                    .into_iter()
                    .flatten()
                    .flat_map(|e| [e.from.clone(), e.to.clone()]),
            );
            affected.insert(a.clone());
        }
        self.recompute(&affected);
    }

    /// Counterparties this trace names as large funders or receivers.
    fn named(&self, t: &AccountTrace) -> BTreeSet<String> {
        let s = self.params.min_funding_share;
        large(&t.funders, t.inflow_fen, s)
            .chain(large(&t.receivers, t.outflow_fen, s))
            .map(|f| f.counterparty.clone())
            .collect()
    }

    fn naming(&self, name: &str) -> BTreeSet<String> {
        let mut v = BTreeSet::new();
        v.extend(self.named_receiver.get(name).into_iter().flatten().cloned());
        v.extend(self.named_funder.get(name).into_iter().flatten().cloned());
        v
    }

    fn degree(&self, name: &str) -> usize {
        let r = self.named_receiver.get(name);
        let f = self.named_funder.get(name);
        match (r, f) {
            (Some(r), Some(f)) => r.len() + f.iter().filter(|a| !r.contains(*a)).count(),
            (Some(x), None) | (None, Some(x)) => x.len(),
            (None, None) => 0,
        }
    }

    fn is_hub(&self, name: &str) -> bool {
        self.degree(name) > self.params.max_intermediary_degree as usize
    }

    fn id_of(&mut self, account: &str) -> u32 {
        if let Some(&id) = self.ids.get(account) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(account.to_owned());
        self.ids.insert(account.to_owned(), id);
        id
    }

    fn name(&mut self, t: &AccountTrace) {
        let s = self.params.min_funding_share;
        for f in large(&t.receivers, t.outflow_fen, s) {
            self.named_receiver
                .entry(f.counterparty.clone())
                .or_default()
                .insert(t.account.clone());
        }
        for f in large(&t.funders, t.inflow_fen, s) {
            self.named_funder
                .entry(f.counterparty.clone())
                .or_default()
                .insert(t.account.clone());
        }
    }

    fn unname(&mut self, t: &AccountTrace) {
        fn drop_from(m: &mut HashMap<String, BTreeSet<String>>, k: &str, a: &str) {
            if let Some(s) = m.get_mut(k) {
                s.remove(a);
                if s.is_empty() {
                    m.remove(k);
                }
            }
        }
        for f in &t.receivers {
            drop_from(&mut self.named_receiver, &f.counterparty, &t.account);
        }
        for f in &t.funders {
            drop_from(&mut self.named_funder, &f.counterparty, &t.account);
        }
    }

    /// Recompute every tie of `a` (both ends).
    fn retie(&mut self, a: &str) {
        if let Some(old) = self.edges.remove(a) {
            for e in old {
                let other = if e.from == a { &e.to } else { &e.from };
                if let Some(s) = self.edges.get_mut(other) {
                    s.remove(&e);
                    if s.is_empty() {
                        self.edges.remove(other);
                    }
                }
            }
        }
        let Some(t) = self.traces.get(a) else { return };
        let mut found: BTreeSet<Edge> = BTreeSet::new();
        // People: this payout's payees among collectors' payers, and the reverse.
        if is_payout_candidate(t) {
            for c in self.candidates(&t.payees.sketch, &self.payer_index) {
                if c != a && self.payees_paid_in(t, &self.traces[&c]) {
                    found.insert(Edge {
                        tie: Tie::PayeesPaidIn,
                        from: c,
                        to: a.to_owned(),
                        via: None,
                    });
                }
            }
        }
        if is_collector(t) {
            for p in self.candidates(&t.payers.sketch, &self.payee_index) {
                if p != a && self.payees_paid_in(&self.traces[&p], t) {
                    found.insert(Edge {
                        tie: Tie::PayeesPaidIn,
                        from: a.to_owned(),
                        to: p,
                        via: None,
                    });
                }
            }
        }
        // Money, judged by the receiving side: a large share of its inflow.
        let s = self.params.min_funding_share;
        for f in large(&t.funders, t.inflow_fen, s) {
            if f.counterparty != a && self.traces.contains_key(&f.counterparty) {
                found.insert(Edge {
                    tie: Tie::Funded,
                    from: f.counterparty.clone(),
                    to: a.to_owned(),
                    via: None,
                });
            }
        }
        for b in self.named_funder.get(a).into_iter().flatten() {
            if b != a {
                found.insert(Edge {
                    tie: Tie::Funded,
                    from: a.to_owned(),
                    to: b.clone(),
                    via: None,
                });
            }
        }
        // Through one intermediary outside the traces: a's outflow funds b, or b's funds a.
        let sides = [
            (&t.receivers, t.outflow_fen, &self.named_funder, true),
            (&t.funders, t.inflow_fen, &self.named_receiver, false),
        ];
        for (flows, total, named, outgoing) in sides {
            for f in large(flows, total, s) {
                let x = &f.counterparty;
                if self.traces.contains_key(x) || self.is_hub(x) {
                    continue;
                }
                for b in named.get(x).into_iter().flatten().filter(|b| *b != a) {
                    let (from, to) = if outgoing {
                        (a.to_owned(), b.clone())
                    } else {
                        (b.clone(), a.to_owned())
                    };
                    found.insert(Edge {
                        tie: Tie::Shared,
                        from,
                        to,
                        via: Some(x.clone()),
                    });
                }
            }
        }
        for e in found {
            let other = if e.from == a { e.to.clone() } else { e.from.clone() };
            self.edges.entry(other).or_default().insert(e.clone());
            self.edges.entry(a.to_owned()).or_default().insert(e);
        }
    }

    /// Accounts whose sample in `index` shares two or more hashes with `sketch`, in account
    /// order.
    fn candidates(&self, sketch: &[u64], index: &HashMap<u64, Vec<u32>>) -> Vec<String> {
        let mut c: HashMap<u32, u32> = HashMap::default();
        for h in sketch {
            for &i in index.get(h).into_iter().flatten() {
                *c.entry(i).or_default() += 1;
            }
        }
        // One shared member in the samples is chance, whatever the estimate makes of it.
        let mut v: Vec<String> = c
            .into_iter()
            .filter(|&(_, n)| n >= 2)
            .map(|(i, _)| self.names[i as usize].clone())
            .collect();
        v.sort();
        v
    }

    fn payees_paid_in(&self, payout: &AccountTrace, collector: &AccountTrace) -> bool {
        if payout.payees.count == 0 {
            return false;
        }
        let n = sketch::shared(&payout.payees, &collector.payers);
        n >= self.params.min_shared_people as f64 && n >= self.params.min_payee_share * payout.payees.count as f64
    }

    /// Recompute the cases around `affected` accounts.
    fn recompute(&mut self, affected: &BTreeSet<String>) {
        let mut seen: HashSet<String> = HashSet::default();
        let mut old_ids: BTreeSet<String> = BTreeSet::new();
        let mut new_cases: Vec<(Vec<String>, Option<String>)> = Vec::new();
        // The components around the affected accounts, then around every account of the old
        // cases they touch (those that lost their ties), until nothing new turns up.
        let mut work: BTreeSet<String> = affected.clone();
        while !work.is_empty() {
            for start in std::mem::take(&mut work) {
                if seen.contains(&start) || !self.traces.contains_key(&start) {
                    continue;
                }
                let comp = self.component(start, &mut seen, &mut old_ids);
                let id = self.case_id(&comp);
                new_cases.push((comp, id));
            }
            for id in &old_ids {
                for acc in self.open.get(id).into_iter().flat_map(|c| &c.accounts) {
                    if self.traces.contains_key(&acc.account) && !seen.contains(&acc.account) {
                        work.insert(acc.account.clone());
                    }
                }
            }
        }
        // Unassign, then assign the recomputed components.
        for id in &old_ids {
            if let Some(c) = self.open.get(id) {
                for acc in &c.accounts {
                    if self.case_of.get(&acc.account) == Some(id) {
                        self.case_of.remove(&acc.account);
                    }
                }
            }
        }
        let mut live: BTreeSet<String> = BTreeSet::new();
        for (comp, id) in new_cases {
            let Some(id) = id else { continue };
            let case = self.build(&id, &comp);
            for acc in &case.accounts {
                if self.traces.contains_key(&acc.account) {
                    self.case_of.insert(acc.account.clone(), id.clone());
                }
            }
            live.insert(id.clone());
            self.retired.remove(&id);
            if self.open.get(&id).is_none_or(|old| !same_case(old, &case)) {
                self.touched.insert(id.clone());
            }
            self.open.insert(id, case);
        }
        for id in old_ids.difference(&live) {
            if let Some(mut c) = self.open.remove(id) {
                // Merged into the case now holding its first account, or dissolved.
                let heir = c.accounts.iter().find_map(|a| self.case_of.get(&a.account)).cloned();
                c.status = if heir.is_some() { "merged" } else { "dissolved" }.to_owned();
                c.merged_into = heir;
                self.retired.insert(id.clone(), c);
                self.touched.insert(id.clone());
            }
        }
    }

    /// The traced accounts tied to `start`, breadth-first (untraced intermediaries are not
    /// nodes), sorted; notes the open cases they were in.
    fn component(&self, start: String, seen: &mut HashSet<String>, old_ids: &mut BTreeSet<String>) -> Vec<String> {
        let mut comp = Vec::new();
        seen.insert(start.clone());
        let mut queue = vec![start];
        while let Some(a) = queue.pop() {
            if let Some(id) = self.case_of.get(&a) {
                old_ids.insert(id.clone());
            }
            for e in self.edges.get(&a).into_iter().flatten() {
                for b in [&e.from, &e.to] {
                    if self.traces.contains_key(b) && seen.insert(b.clone()) {
                        queue.push(b.clone());
                    }
                }
            }
            comp.push(a);
        }
        comp.sort();
        comp
    }

    /// A component's case id, or None when it is not a case (no alerted collector or payout).
    fn case_id(&self, comp: &[String]) -> Option<String> {
        let ts: Vec<&AccountTrace> = comp.iter().filter_map(|a| self.traces.get(a)).collect();
        let alerted = ts
            .iter()
            .any(|t| t.collector.as_ref().is_some_and(|r| r.alerted) || t.payout.as_ref().is_some_and(|r| r.alerted));
        if !alerted {
            return None;
        }
        let first = ts
            .iter()
            .filter_map(|t| t.collector.as_ref().map(|r| (r.first_ts_ms, &t.account)))
            .min()
            .or_else(|| {
                ts.iter()
                    .filter_map(|t| t.payout.as_ref().map(|r| (r.first_ts_ms, &t.account)))
                    .min()
            })?;
        let version = ts.first().map_or("", |t| t.config_version.as_str());
        let key = format!("{version}\u{1f}{}", first.1);
        Some(format!("case-{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())))
    }

    fn build(&mut self, id: &str, comp: &[String]) -> CaseRecord {
        let ts: Vec<&AccountTrace> = comp.iter().filter_map(|a| self.traces.get(a)).collect();
        let members: BTreeSet<&str> = ts.iter().map(|t| t.account.as_str()).collect();
        let edges: BTreeSet<&Edge> = comp
            .iter()
            .flat_map(|a| self.edges.get(a).into_iter().flatten())
            .collect();
        let mut accounts: BTreeMap<String, CaseAccount> = BTreeMap::new();
        for t in &ts {
            accounts.insert(
                t.account.clone(),
                CaseAccount {
                    account: t.account.clone(),
                    role: role(t).to_owned(),
                    region: t.region.clone(),
                },
            );
        }
        let s = self.params.min_funding_share;
        let collectors: Vec<&&AccountTrace> = ts.iter().filter(|t| is_collector(t)).collect();
        // Where the collected money went, and intermediaries that tie accounts.
        let mut receivers: BTreeSet<String> = BTreeSet::new();
        for c in &collectors {
            for f in large(&c.receivers, c.outflow_fen, s) {
                if !members.contains(f.counterparty.as_str()) && !self.is_hub(&f.counterparty) {
                    receivers.insert(f.counterparty.clone());
                }
            }
        }
        receivers.extend(edges.iter().filter_map(|e| e.via.clone()));
        for r in receivers {
            accounts.entry(r.clone()).or_insert(CaseAccount {
                account: r,
                role: "receiver".into(),
                region: None,
            });
        }

        // People and money in: the collectors' payers, less the case's own accounts.
        let internal = |c: &AccountTrace| -> (u64, i64) {
            c.funders
                .iter()
                .filter(|f| accounts.contains_key(&f.counterparty) && f.counterparty != c.account)
                .fold((0, 0), |(n, fen), f| (n + 1, fen + f.fen))
        };
        let (investors, raised) = if collectors.is_empty() {
            let payees: Vec<&fundwatch_engine::MemberSet> = ts.iter().map(|t| &t.payees).collect();
            (sketch::union_count(&payees).round() as u64, 0i64)
        } else {
            let sets: Vec<&fundwatch_engine::MemberSet> = collectors.iter().map(|c| &c.payers).collect();
            let (n_int, fen_int) = collectors
                .iter()
                .map(|c| internal(c))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            let union = sketch::union_count(&sets).round() as u64;
            let fen: i64 = collectors.iter().map(|c| c.payers.fen).sum();
            (union.saturating_sub(n_int), fen - fen_int)
        };
        let paid_back: i64 = ts
            .iter()
            .filter(|t| t.payout.is_some() || (!is_collector(t) && t.batch_days >= 2))
            .map(|t| t.payees.fen)
            .sum();
        let outstanding = (raised - paid_back).max(0);

        let mut regions: BTreeSet<String> = BTreeSet::new();
        for a in accounts.values() {
            if let Some(r) = &a.region {
                regions.insert(r.clone());
            }
        }
        // The main collector (most raised) leads; without one, the largest payout account.
        let lead = collectors
            .iter()
            .map(|c| (c.payers.fen, std::cmp::Reverse(c.account.as_str()), c.region.clone()))
            .max()
            .map(|x| x.2)
            .or_else(|| {
                ts.iter()
                    .map(|t| (t.payees.fen, std::cmp::Reverse(t.account.as_str()), t.region.clone()))
                    .max()
                    .map(|x| x.2)
            })
            .flatten();

        let p = &self.params.prosecution;
        let shares = LineShares {
            raised: round3(raised as f64 / p.raised.fen().max(1) as f64),
            people: round3(investors as f64 / p.people.max(1) as f64),
            loss: round3(outstanding as f64 / p.loss.fen().max(1) as f64),
        };
        let crossed: Vec<&str> = [
            ("raised", shares.raised >= 1.0),
            ("people", shares.people >= 1.0),
            ("loss", shares.loss >= 1.0),
        ]
        .into_iter()
        .filter(|x| x.1)
        .map(|x| x.0)
        .collect();
        let severity = if crossed.is_empty() {
            "early".to_owned()
        } else {
            crossed.join("+")
        };

        // Weekly collection over the collectors.
        let mut weeks: BTreeMap<i32, (u64, i64)> = BTreeMap::new();
        for c in &collectors {
            for w in &c.weekly {
                let e = weeks.entry(w.first_day).or_default();
                e.0 += w.new_payers;
                e.1 += w.fen;
            }
        }
        let last_seen_ms = ts.iter().map(|t| t.ts_ms).max().unwrap_or(0);
        let growth: Vec<WeekGrowth> = weeks
            .iter()
            .rev()
            .take(fundwatch_engine::trace::WEEKS)
            .rev()
            .map(|(d, (n, fen))| WeekGrowth {
                week_of: format_day(*d),
                new_investors: *n,
                raised: format_fen(*fen),
            })
            .collect();
        let today = fundwatch_record::beijing_day(last_seen_ms);
        let complete: Vec<(u64, i64)> = weeks
            .iter()
            .filter(|(d, _)| **d + 7 <= today)
            .rev()
            .take(4)
            .map(|(_, v)| *v)
            .collect();
        let k = complete.len().max(1) as i64;
        let growth_per_week = Growth {
            investors: complete.iter().map(|v| v.0).sum::<u64>() / k as u64,
            raised: format_fen(complete.iter().map(|v| v.1).sum::<i64>() / k),
        };

        // Alerts, including those this linker raises.
        let mut alert_ids: BTreeSet<String> = ts.iter().flat_map(|t| t.alert_ids.iter().cloned()).collect();
        for t in &ts {
            if let Some(a) = self.linked_alert(t, &edges) {
                alert_ids.insert(a.alert_id.clone());
                if self.linked.insert(a.alert_id.clone()) {
                    self.stats.linked_alerts += 1;
                    if self.emit {
                        self.out_alerts.push(a);
                    }
                }
            }
        }

        let links: Vec<CaseLink> = edges
            .iter()
            .map(|e| CaseLink {
                kind: match e.tie {
                    Tie::PayeesPaidIn => "payees_paid_in",
                    Tie::Funded => "funded",
                    Tie::Shared => "shared_intermediary",
                }
                .to_owned(),
                from: e.from.clone(),
                to: e.to.clone(),
                via: e.via.clone(),
            })
            .collect();
        let first_seen_ms = ts
            .iter()
            .flat_map(|t| [&t.collector, &t.payout, &t.pass_through])
            .filter_map(|r| r.as_ref().map(|r| r.first_ts_ms))
            .min()
            .unwrap_or(last_seen_ms);
        let version: u64 = ts.iter().map(|t| t.seq).sum();
        let accounts: Vec<CaseAccount> = accounts.into_values().collect();
        let n_role = |r: &str| accounts.iter().filter(|a| a.role == r).count();
        let summary = format!(
            "{} people paid {} yuan into {} collector account(s){}; {} yuan paid back by {} payout account(s), {} outstanding; {} receiver(s); regions {}; {}.",
            investors,
            format_fen(raised),
            n_role("collector"),
            lead.as_deref().map(|r| format!(" led from region {r}")).unwrap_or_default(),
            format_fen(paid_back),
            n_role("payout"),
            format_fen(outstanding),
            n_role("receiver"),
            if regions.is_empty() { "unknown".to_owned() } else { regions.iter().cloned().collect::<Vec<_>>().join(", ") },
            if crossed.is_empty() {
                format!(
                    "below the prosecution lines ({} yuan, {} people, {} yuan loss): early",
                    p.raised, p.people, p.loss
                )
            } else {
                format!("past the prosecution line(s): {}", crossed.join(", "))
            }
        );
        CaseRecord {
            case_id: id.to_owned(),
            version,
            status: "open".into(),
            merged_into: None,
            accounts,
            investors,
            raised: format_fen(raised),
            paid_back: format_fen(paid_back),
            outstanding: format_fen(outstanding),
            regions: regions.into_iter().collect(),
            lead_region: lead,
            severity,
            against_lines: shares,
            growth,
            growth_per_week,
            alert_ids: alert_ids.into_iter().collect(),
            links,
            first_seen: format_rfc3339_ms(first_seen_ms),
            last_seen: format_rfc3339_ms(last_seen_ms),
            summary,
            config_version: ts.first().map(|t| t.config_version.clone()).unwrap_or_default(),
        }
    }

    /// The alert a link gives a payout account below its line: tied by its payees to an
    /// alerted collector.
    fn linked_alert(&self, t: &AccountTrace, edges: &BTreeSet<&Edge>) -> Option<Alert> {
        let p = t.payout.as_ref()?;
        if p.first_score < self.params.linked_alert_min_score {
            return None;
        }
        // The link confirms the payout account at the event time both ends stood so: its
        // first finding and the collector's alert. Raised when that came before the account's
        // own alert (or there is none), whenever the linker learns of it, so the alert does
        // not depend on how traces of different partitions interleave.
        let (_, collector) = edges
            .iter()
            .filter(|e| e.tie == Tie::PayeesPaidIn && e.to == t.account && e.from != t.account)
            .filter_map(|e| self.traces.get(&e.from))
            .filter_map(|c| {
                let at = c.collector.as_ref()?.alerted_ts_ms?;
                Some((at.max(p.first_ts_ms), c.account.clone()))
            })
            .filter(|(at, _)| p.alerted_ts_ms.is_none_or(|own| own > *at))
            .min()?;
        let mut evidence: Map<String, Value> = serde_json::from_str(&p.first_evidence).unwrap_or_default();
        evidence.insert("confirmed_by".into(), Value::String("payees_paid_in".into()));
        evidence.insert("linked_collector".into(), Value::String(collector.clone()));
        let detected_at = match self.clock {
            Clock::Wall => now_ms(),
            Clock::Fixed(ms) => ms,
        };
        Some(Alert {
            alert_id: linked_alert_id(&t.config_version, &t.account, &p.first_tx),
            rule: "periodic_batch_small_out".into(),
            account: t.account.clone(),
            score: p.first_score,
            window_start: format_rfc3339_ms(p.first_window_start_ms),
            window_end: format_rfc3339_ms(p.first_ts_ms),
            triggered_by: p.first_tx.clone(),
            detected_at: format_rfc3339_ms(detected_at),
            region: t.region.clone(),
            summary: format!(
                "{} Below the rule's line on its own, confirmed by a link: its payees paid into collector account {collector}.",
                p.first_summary
            ),
            evidence,
            config_version: t.config_version.clone(),
        })
    }

    fn emit_touched(&mut self) {
        for id in std::mem::take(&mut self.touched) {
            let case = match (self.open.get(&id), self.retired.get(&id)) {
                (Some(c), _) => c.clone(),
                (None, Some(c)) => c.clone(),
                _ => continue,
            };
            let last = self.written.get(&id).copied();
            let mut case = case;
            if case.status != "open" {
                // A final version follows the last one written; nothing to close if none was.
                let Some(last) = last else {
                    self.retired.remove(&id);
                    continue;
                };
                case.version = last + 1;
                self.retired.remove(&id);
            } else if let Some(last) = last {
                // Versions only increase, even if an account left the case.
                case.version = case.version.max(last + 1);
            }
            if let Some(o) = self.open.get_mut(&id) {
                o.version = case.version;
            }
            self.written.insert(id, case.version);
            self.stats.case_versions += 1;
            if self.emit {
                self.out_cases.push(case);
            }
        }
    }
}

/// Move `id` in a hash index from the hashes of `old` to those of `new` (both ascending),
/// touching only the hashes that differ.
fn reindex(index: &mut HashMap<u64, Vec<u32>>, id: u32, old: &[u64], new: &[u64]) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let (o, n) = (old.get(i), new.get(j));
        match (o, n) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a < b) => {
                if let Some(v) = index.get_mut(a) {
                    if let Some(k) = v.iter().position(|x| *x == id) {
                        v.swap_remove(k);
                    }
                    if v.is_empty() {
                        index.remove(a);
                    }
                }
                i += 1;
            }
            (_, Some(b)) => {
                index.entry(*b).or_default().push(id);
                j += 1;
            }
            _ => break,
        }
    }
}

/// Two versions of a case say the same (version and the wall clock aside).
fn same_case(a: &CaseRecord, b: &CaseRecord) -> bool {
    let strip = |c: &CaseRecord| CaseRecord {
        version: 0,
        ..c.clone()
    };
    strip(a) == strip(b)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
