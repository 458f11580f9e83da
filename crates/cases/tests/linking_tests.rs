//! The linking stage's guarantees, on an evasive generated stream (schemes paying interest
//! from a separate account, among look-alikes):
//! - its final cases depend only on each account's final trace: the same whether traces are
//!   applied one by one, all at once, or partition by partition in any interleaving (what a
//!   Kafka deployment does);
//! - separate payout accounts are linked to their collector, and no case joins two schemes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use fundwatch_cases::{CaseRecord, Linker};
use fundwatch_engine::{AccountTrace, Alert, Clock, Engine};
use fundwatch_generate::labels::Labels;
use fundwatch_generate::{generate, GenerateOptions, Profile};
use fundwatch_rules::Config;

struct Run {
    traces: Vec<AccountTrace>,
    labels: Labels,
}

fn traced_stream(records: u64, seed: u64) -> Run {
    let opts = GenerateOptions {
        profile: Profile::Evasive,
        records,
        seed,
        days: 90,
        ..GenerateOptions::default()
    };
    let (mut stream, mut labels) = (Vec::new(), Vec::new());
    generate(&opts, &mut stream, &mut labels).expect("generate");
    let labels = Labels::read(&labels[..]).expect("labels");
    let mut engine = Engine::new(Arc::new(Config::default()));
    engine.set_clock(Clock::Fixed(0));
    engine.enable_traces(true);
    let mut alerts: Vec<Alert> = Vec::new();
    let mut traces = Vec::new();
    for line in stream.split(|b| *b == b'\n') {
        if let Ok(tx) = fundwatch_record::decode_json(line) {
            engine.process(&tx, &mut alerts);
            traces.extend(engine.take_traces());
        }
    }
    engine.flush(&mut alerts);
    traces.extend(engine.take_traces());
    Run { traces, labels }
}

fn linker() -> Linker {
    let mut l = Linker::new(Config::default().cases);
    l.set_clock(Clock::Fixed(0));
    l
}

/// Last version per case id, and the linked alerts' ids.
fn finish(
    l: &mut Linker,
    written: &mut Vec<CaseRecord>,
    alerts: &mut BTreeSet<String>,
) -> BTreeMap<String, CaseRecord> {
    written.extend(l.take_cases());
    alerts.extend(l.take_alerts().into_iter().map(|a| a.alert_id));
    let mut last: BTreeMap<String, CaseRecord> = BTreeMap::new();
    for c in written.drain(..) {
        if let Some(old) = last.get(&c.case_id) {
            assert!(
                c.version > old.version,
                "{}: version {} after {}",
                c.case_id,
                c.version,
                old.version
            );
        }
        last.insert(c.case_id.clone(), c);
    }
    last.into_iter().filter(|(_, c)| c.status == "open").collect()
}

#[test]
fn final_cases_do_not_depend_on_how_traces_interleave() {
    let run = traced_stream(150_000, 11);
    assert!(run.traces.len() > 200, "{} traces", run.traces.len());

    let mut written = Vec::new();
    let mut ids = BTreeSet::new();
    let mut one = linker();
    for t in run.traces.iter().cloned() {
        one.apply(t);
        written.extend(one.take_cases());
        ids.extend(one.take_alerts().into_iter().map(|a| a.alert_id));
    }
    let reference = finish(&mut one, &mut written, &mut ids);
    let reference_alerts = ids.clone();
    assert!(!reference.is_empty());

    // All at once.
    let mut all = linker();
    all.apply_all(run.traces.iter().cloned());
    let (mut w, mut a) = (Vec::new(), BTreeSet::new());
    assert_eq!(finish(&mut all, &mut w, &mut a), reference, "one batch");
    assert_eq!(a, reference_alerts, "one batch: linked alerts");

    // Four "partitions" (by account), drained at different speeds, in batches.
    let part = |t: &AccountTrace| (xxhash_rust::xxh3::xxh3_64(t.account.as_bytes()) % 4) as usize;
    let mut queues: Vec<Vec<AccountTrace>> = vec![Vec::new(); 4];
    for t in &run.traces {
        queues[part(t)].push(t.clone());
    }
    let mut mixed = linker();
    let (mut w, mut a) = (Vec::new(), BTreeSet::new());
    let mut pos = [0usize; 4];
    let speed = [7usize, 1, 31, 3];
    while (0..4).any(|p| pos[p] < queues[p].len()) {
        let mut batch = Vec::new();
        for p in 0..4 {
            let end = (pos[p] + speed[p]).min(queues[p].len());
            batch.extend(queues[p][pos[p]..end].iter().cloned());
            pos[p] = end;
        }
        mixed.apply_all(batch);
        w.extend(mixed.take_cases());
        a.extend(mixed.take_alerts().into_iter().map(|x| x.alert_id));
    }
    let got = finish(&mut mixed, &mut w, &mut a);
    assert_eq!(got.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>());
    for (id, c) in &reference {
        assert_eq!(&got[id], c, "case {id} differs across interleavings");
    }
    assert_eq!(a, reference_alerts, "interleaved: linked alerts");

    // A restarted linker: the traces so far silently, the rest live.
    let half = run.traces.len() / 2;
    let mut restarted = linker();
    restarted.set_emit(false);
    restarted.apply_all(run.traces[..half].iter().cloned());
    restarted.set_emit(true);
    restarted.apply_all(run.traces[half..].iter().cloned());
    let open: BTreeMap<String, CaseRecord> = restarted.open_cases().map(|c| (c.case_id.clone(), c.clone())).collect();
    assert_eq!(open, reference, "restarted linker");
}

#[test]
fn payout_accounts_are_linked_to_their_collector_and_schemes_stay_apart() {
    let run = traced_stream(300_000, 5);
    let mut l = linker();
    l.apply_all(run.traces.iter().cloned());
    let cases: Vec<CaseRecord> = l.open_cases().cloned().collect();
    let mut case_of: HashMap<&str, &str> = HashMap::new();
    for c in &cases {
        for a in &c.accounts {
            case_of.insert(a.account.as_str(), c.case_id.as_str());
        }
    }
    let mut schemes: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for a in &run.labels.accounts {
        if let (Some(s), Some(r)) = (&a.scheme, &a.role) {
            schemes.entry(s).or_default().push((a.account.as_str(), r.as_str()));
        }
    }
    let (mut pairs, mut linked) = (0, 0);
    for accounts in schemes.values() {
        let collector = accounts.iter().find(|a| a.1 == "collector");
        let payout = accounts.iter().find(|a| a.1 == "payout");
        if let (Some(c), Some(p)) = (collector, payout) {
            if c.0 != p.0 {
                pairs += 1;
                if case_of.contains_key(c.0) && case_of.get(c.0) == case_of.get(p.0) {
                    linked += 1;
                }
            }
        }
    }
    assert!(pairs >= 10, "only {pairs} split schemes generated");
    assert!(
        linked as f64 >= 0.9 * pairs as f64,
        "{linked} of {pairs} payout accounts linked"
    );
    let scheme_of: HashMap<&str, &str> = run
        .labels
        .accounts
        .iter()
        .filter_map(|a| Some((a.account.as_str(), a.scheme.as_deref()?)))
        .collect();
    for c in &cases {
        let s: BTreeSet<&str> = c
            .accounts
            .iter()
            .filter_map(|a| scheme_of.get(a.account.as_str()).copied())
            .collect();
        assert!(s.len() <= 1, "case {} joins schemes {s:?}", c.case_id);
    }
}
