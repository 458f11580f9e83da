//! The case stage in a backtest, and what a threshold change does to the cases.
//!
//! [`run_with_cases`] drives the engine with traces on and a [`Linker`] over its traces in
//! batches of [`LINK_EVERY`] records, exactly as `replay --cases` does, so a backtest's cases
//! are the ones a replay (or the Kafka service) of that config would write. [`case_diff`]
//! compares the open cases of two runs: which cases only one of them has, which accounts a
//! case gains or loses, and which links (the ties that make a case) one config makes and
//! the other breaks.
//!
//! Case ids hash the config version, so the same scheme has different ids under two
//! configs: cases are matched by the accounts they share, not by id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use fundwatch_cases::{CaseLink, CaseRecord as Case, Linker, LinkerStats, LINK_EVERY};
use fundwatch_engine::{AccountTrace, Alert, Clock, Engine};
use fundwatch_generate::labels::parse_yuan;
use fundwatch_rules::{CasesParams, Config};
use serde::Serialize;

use crate::cases::{CaseAccount as ScoredAccount, CaseRecord as ScoredCase};
use crate::{DecodedStream, RunOutput};

/// What the case stage made of one run.
#[derive(Debug, Clone)]
pub struct CaseRun {
    /// The last version of every case, by `case_id`: open ones and those that ended
    /// merged or dissolved.
    pub cases: Vec<Case>,
    /// Case versions written (the lines of `replay --cases`).
    pub versions: u64,
    /// Alerts raised by a link (a payout account confirmed by a collector's payers);
    /// `replay --cases` writes them to the alert file after the rules' own.
    pub linked_alerts: Vec<Alert>,
    pub stats: LinkerStats,
}

impl CaseRun {
    /// The cases standing at the end.
    pub fn open(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|c| c.status == "open")
    }

    /// Open cases per severity (`early`, `raised`, `people+raised`, …).
    pub fn by_severity(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for c in self.open() {
            *m.entry(c.severity.clone()).or_default() += 1;
        }
        m
    }

    /// Open cases past at least one prosecution line.
    pub fn past_a_line(&self) -> u64 {
        self.open().filter(|c| c.severity != "early").count() as u64
    }

    /// The final cases as the scorer reads a case file ([`crate::score_cases`]).
    pub fn scored(&self) -> Vec<ScoredCase> {
        self.cases.iter().map(scored).collect()
    }

    /// Every link of an open case, with the case holding it.
    pub fn links(&self) -> BTreeMap<LinkKey, String> {
        let mut m = BTreeMap::new();
        for c in self.open() {
            for l in &c.links {
                m.insert(LinkKey::of(l), c.case_id.clone());
            }
        }
        m
    }
}

fn scored(c: &Case) -> ScoredCase {
    ScoredCase {
        case_id: c.case_id.clone(),
        version: c.version,
        status: Some(c.status.clone()),
        accounts: c
            .accounts
            .iter()
            .map(|a| ScoredAccount {
                account: a.account.clone(),
                role: Some(a.role.clone()),
                region: a.region.clone(),
            })
            .collect(),
        investors: Some(c.investors),
        raised: parse_yuan(&c.raised),
        paid_back: parse_yuan(&c.paid_back),
        regions: c.regions.clone(),
        lead_region: c.lead_region.clone(),
    }
}

/// Fen of a case's decimal yuan field (0 when unreadable, which the linker never writes).
pub fn case_fen(yuan: &str) -> u64 {
    parse_yuan(yuan).unwrap_or(0)
}

/// A linker fed in batches, keeping the last version of every case it writes.
pub struct CaseStage {
    linker: Linker,
    last: BTreeMap<String, Case>,
    versions: u64,
    linked: Vec<Alert>,
}

impl CaseStage {
    pub fn new(params: CasesParams, clock: Clock) -> CaseStage {
        let mut linker = Linker::new(params);
        linker.set_clock(clock);
        CaseStage {
            linker,
            last: BTreeMap::new(),
            versions: 0,
            linked: Vec::new(),
        }
    }

    /// One linker batch (replay's every [`LINK_EVERY`] records).
    pub fn batch(&mut self, traces: impl IntoIterator<Item = AccountTrace>) {
        self.linker.apply_all(traces);
        self.linked.extend(self.linker.take_alerts());
        for c in self.linker.take_cases() {
            self.versions += 1;
            self.last.insert(c.case_id.clone(), c);
        }
    }

    pub fn finish(self) -> CaseRun {
        CaseRun {
            cases: self.last.into_values().collect(),
            versions: self.versions,
            linked_alerts: self.linked,
            stats: self.linker.stats(),
        }
    }
}

/// Drive the engine with traces on, handing `batch` the traces of every [`LINK_EVERY`]
/// records and, after the flush, the rest (the batches `replay --cases` links).
fn traced(
    stream: &DecodedStream,
    config: Arc<Config>,
    clock: Clock,
    mut batch: impl FnMut(Vec<AccountTrace>),
) -> RunOutput {
    let start = Instant::now();
    let mut engine = Engine::new(config);
    engine.set_clock(clock);
    engine.enable_traces(true);
    let mut alerts = Vec::new();
    let mut pending = Vec::new();
    let mut since = 0u32;
    stream.for_each(|tx| {
        engine.process(tx, &mut alerts);
        engine.drain_traces(&mut pending);
        since += 1;
        if since >= LINK_EVERY {
            since = 0;
            batch(std::mem::take(&mut pending));
        }
    });
    engine.flush(&mut alerts);
    engine.drain_traces(&mut pending);
    batch(pending);
    RunOutput {
        config_version: engine.config_version().to_owned(),
        alerts,
        stats: engine.stats().clone(),
        seconds: start.elapsed().as_secs_f64(),
        cases: None,
    }
}

/// The engine over the stream with the case stage, as `replay --cases` runs it. The
/// alerts are the rules' own (what [`crate::run`] gives); the linked ones are in
/// [`RunOutput::cases`].
pub fn run_with_cases(stream: &DecodedStream, config: Arc<Config>, clock: Clock) -> RunOutput {
    let mut stage = CaseStage::new(config.cases.clone(), clock);
    let mut out = traced(stream, config, clock, |b| stage.batch(b));
    out.cases = Some(stage.finish());
    out
}

/// One traced run of `config`, then a linker per `[cases]` variant over the same traces:
/// what a sweep of `[cases]` settings needs (the rules do not change, only the linking).
/// The first output is `config`'s own run with its cases; then one case run per variant.
pub fn link_variants(
    stream: &DecodedStream,
    config: Arc<Config>,
    variants: &[CasesParams],
    clock: Clock,
) -> (RunOutput, Vec<CaseRun>) {
    let mut batches: Vec<Vec<AccountTrace>> = Vec::new();
    let mut out = traced(stream, config.clone(), clock, |b| batches.push(b));
    let link = |params: &CasesParams| {
        let mut stage = CaseStage::new(params.clone(), clock);
        for b in &batches {
            stage.batch(b.iter().cloned());
        }
        stage.finish()
    };
    out.cases = Some(link(&config.cases));
    let runs = variants.iter().map(link).collect();
    (out, runs)
}

/// A link as two runs compare it: kind, the two accounts, the intermediary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LinkKey {
    pub kind: String,
    pub from: String,
    pub to: String,
    pub via: Option<String>,
}

impl LinkKey {
    pub fn of(l: &CaseLink) -> LinkKey {
        LinkKey {
            kind: l.kind.clone(),
            from: l.from.clone(),
            to: l.to.clone(),
            via: l.via.clone(),
        }
    }
}

/// A link one run has and the other has not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkChange {
    pub link: LinkKey,
    /// The case holding it in run A (for a broken link), or the A case holding either of
    /// its accounts (for a made one).
    pub case_a: Option<String>,
    /// The same in run B.
    pub case_b: Option<String>,
}

/// One case present under both configs (they share accounts) and how it differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseMatch {
    pub case_a: String,
    pub case_b: String,
    pub severity_a: String,
    pub severity_b: String,
    pub investors_a: u64,
    pub investors_b: u64,
    /// Fen.
    pub raised_a: u64,
    pub raised_b: u64,
    /// Accounts in B's case and not in A's.
    pub accounts_joined: Vec<String>,
    /// Accounts in A's case and not in B's.
    pub accounts_left: Vec<String>,
}

impl CaseMatch {
    /// Anything but the id differs.
    pub fn changed(&self) -> bool {
        self.severity_a != self.severity_b
            || self.investors_a != self.investors_b
            || self.raised_a != self.raised_b
            || !self.accounts_joined.is_empty()
            || !self.accounts_left.is_empty()
    }
}

/// How the open cases of run B differ from run A's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaseDiff {
    pub cases_a: u64,
    pub cases_b: u64,
    /// Pairs of cases sharing accounts, each case in at most one pair (most shared
    /// accounts first).
    pub matched: Vec<CaseMatch>,
    /// Open cases of A with no counterpart in B, and the reverse (ids).
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    /// Links B has and A has not (the change makes them), and the reverse.
    pub links_made: Vec<LinkChange>,
    pub links_broken: Vec<LinkChange>,
    /// Links both have.
    pub links_both: u64,
}

impl CaseDiff {
    pub fn is_empty(&self) -> bool {
        self.only_a.is_empty()
            && self.only_b.is_empty()
            && self.links_made.is_empty()
            && self.links_broken.is_empty()
            && !self.matched.iter().any(CaseMatch::changed)
    }

    /// Matched cases whose severity differs.
    pub fn severity_changes(&self) -> u64 {
        self.matched.iter().filter(|m| m.severity_a != m.severity_b).count() as u64
    }
}

/// One sentence for people: what B makes and breaks, and which cases only one config has.
impl std::fmt::Display for CaseDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "B makes {} links A has not and breaks {} of A's ({} in both); {} cases only under A, {} only under B, {} change severity",
            self.links_made.len(),
            self.links_broken.len(),
            self.links_both,
            self.only_a.len(),
            self.only_b.len(),
            self.severity_changes()
        )
    }
}

/// Compare the open cases of two runs.
pub fn case_diff(a: &CaseRun, b: &CaseRun) -> CaseDiff {
    let open_a: Vec<&Case> = a.open().collect();
    let open_b: Vec<&Case> = b.open().collect();
    let accounts = |c: &Case| -> BTreeSet<String> { c.accounts.iter().map(|x| x.account.clone()).collect() };
    let acc_a: Vec<BTreeSet<String>> = open_a.iter().map(|c| accounts(c)).collect();
    let acc_b: Vec<BTreeSet<String>> = open_b.iter().map(|c| accounts(c)).collect();
    let mut where_a: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in acc_a.iter().enumerate() {
        for x in s {
            where_a.entry(x.as_str()).or_default().push(i);
        }
    }
    // Every (A, B) pair sharing an account, most shared first; ids break ties.
    let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
    for (j, s) in acc_b.iter().enumerate() {
        let mut shared: BTreeMap<usize, usize> = BTreeMap::new();
        for x in s {
            for &i in where_a.get(x.as_str()).map_or(&[][..], Vec::as_slice) {
                *shared.entry(i).or_default() += 1;
            }
        }
        pairs.extend(shared.into_iter().map(|(i, n)| (n, i, j)));
    }
    pairs.sort_by(|x, y| {
        y.0.cmp(&x.0)
            .then_with(|| open_a[x.1].case_id.cmp(&open_a[y.1].case_id))
            .then_with(|| open_b[x.2].case_id.cmp(&open_b[y.2].case_id))
    });
    let (mut used_a, mut used_b) = (vec![false; open_a.len()], vec![false; open_b.len()]);
    let mut matched = Vec::new();
    for (_, i, j) in pairs {
        if used_a[i] || used_b[j] {
            continue;
        }
        used_a[i] = true;
        used_b[j] = true;
        let (ca, cb) = (open_a[i], open_b[j]);
        matched.push(CaseMatch {
            case_a: ca.case_id.clone(),
            case_b: cb.case_id.clone(),
            severity_a: ca.severity.clone(),
            severity_b: cb.severity.clone(),
            investors_a: ca.investors,
            investors_b: cb.investors,
            raised_a: case_fen(&ca.raised),
            raised_b: case_fen(&cb.raised),
            accounts_joined: acc_b[j].difference(&acc_a[i]).cloned().collect(),
            accounts_left: acc_a[i].difference(&acc_b[j]).cloned().collect(),
        });
    }
    matched.sort_by(|x, y| x.case_a.cmp(&y.case_a));
    let only = |open: &[&Case], used: &[bool]| -> Vec<String> {
        let mut v: Vec<String> = open
            .iter()
            .zip(used)
            .filter(|(_, u)| !**u)
            .map(|(c, _)| c.case_id.clone())
            .collect();
        v.sort();
        v
    };
    let (links_a, links_b) = (a.links(), b.links());
    let holder = |open: &[&Case], l: &LinkKey| -> Option<String> {
        open.iter()
            .find(|c| c.accounts.iter().any(|x| x.account == l.from || x.account == l.to))
            .map(|c| c.case_id.clone())
    };
    let links_made = links_b
        .iter()
        .filter(|(k, _)| !links_a.contains_key(*k))
        .map(|(k, case)| LinkChange {
            link: k.clone(),
            case_a: holder(&open_a, k),
            case_b: Some(case.clone()),
        })
        .collect();
    let links_broken = links_a
        .iter()
        .filter(|(k, _)| !links_b.contains_key(*k))
        .map(|(k, case)| LinkChange {
            link: k.clone(),
            case_a: Some(case.clone()),
            case_b: holder(&open_b, k),
        })
        .collect();
    CaseDiff {
        cases_a: open_a.len() as u64,
        cases_b: open_b.len() as u64,
        only_a: only(&open_a, &used_a),
        only_b: only(&open_b, &used_b),
        links_both: links_a.keys().filter(|k| links_b.contains_key(*k)).count() as u64,
        matched,
        links_made,
        links_broken,
    }
}
