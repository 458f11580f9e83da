//! The `--strip` option and the evasive profile (`--profile evasive`).

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};

use common::*;
use fundwatch_generate::{GenerateOptions, Profile, StripField};

#[test]
fn strip_leaves_out_the_fields_and_nothing_else() {
    let base = opts(12_000, 5);
    let full = run(&base);
    let stripped = run(&GenerateOptions {
        strip: vec![
            StripField::Memo,
            StripField::Industry,
            StripField::Channel,
            StripField::AccountType,
        ],
        ..base.clone()
    });
    assert_eq!(full.labels, stripped.labels, "labels must not change");
    assert_eq!(full.summary, stripped.summary);
    let text = String::from_utf8(stripped.stream.clone()).unwrap_or_default();
    for key in ["\"memo\"", "\"industry\"", "\"channel\"", "\"account_type\""] {
        assert!(!text.contains(key), "{key} left in a stripped stream");
    }
    // The same records otherwise: same accounts, times, amounts, in the same order.
    let a = parse_stream(&full.stream);
    let b = parse_stream(&stripped.stream);
    assert_eq!(a.recs.len(), b.recs.len());
    assert_eq!(a.invalid.len(), b.invalid.len());
    for (x, y) in a.recs.iter().zip(&b.recs) {
        assert_eq!(
            (&x.tx_id, x.ts_ms, &x.account, &x.counterparty, x.out, x.fen),
            (&y.tx_id, y.ts_ms, &y.account, &y.counterparty, y.out, y.fen)
        );
        assert!(y.memo.is_empty() && y.industry.is_none() && y.account_type.is_none());
        assert_eq!(y.channel, "transfer");
    }
    // One field at a time leaves the others as they were.
    let memo_only = run(&GenerateOptions {
        strip: vec![StripField::Memo],
        ..base
    });
    let c = parse_stream(&memo_only.stream);
    for (x, y) in a.recs.iter().zip(&c.recs) {
        assert_eq!(
            (&x.channel, &x.industry, &x.account_type),
            (&y.channel, &y.industry, &y.account_type)
        );
        assert!(y.memo.is_empty());
    }
}

fn evasive(records: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        profile: Profile::Evasive,
        days: 75,
        ..opts(records, seed)
    }
}

#[test]
fn evasive_is_deterministic_and_valid() {
    let a = run(&evasive(20_000, 11));
    let b = run(&evasive(20_000, 11));
    assert!(
        a.stream == b.stream && a.labels == b.labels,
        "same seed, different bytes"
    );
    let p = parse_stream(&a.stream);
    let n = p.recs.len() as f64;
    assert!((n - 20_000.0).abs() <= 1_000.0, "{n} records");
    // Only the deliberately malformed lines fail validation.
    assert_eq!(p.invalid.len() as u64, a.summary.malformed, "{:?}", p.invalid.first());
    let labels = read_labels(&a.labels);
    let lv = recompute_large_value(&p.recs);
    assert_eq!(lv, labels.large_value_keys());
}

const TELLING: [&str; 8] = ["投资", "理财", "认购", "入股", "利息", "分红", "收益", "返利"];

#[test]
fn evasive_schemes_hide_the_easy_signals() {
    let r = run(&evasive(200_000, 3));
    let p = parse_stream(&r.stream);
    let labels = read_labels(&r.labels);
    let mut by_acct: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for x in &p.recs {
        by_acct.entry(x.account.as_str()).or_default().push(x);
    }
    let typ: BTreeSet<&str> = labels.accounts.iter().map(|a| a.typology.as_str()).collect();
    for t in [
        "split_collector",
        "split_payout",
        "evasive_collect_and_pay",
        "evasive_periodic_payout",
        "evasive_scatter_in",
        "family_event",
        "class_fees",
        "group_buying",
        "rent_collection",
        "membership_fees",
        "rotating_savings",
        "parttime_pay",
        "fixed_salary",
        "property_fees",
        "staff_payroll",
        "staff_canteen",
    ] {
        let k = labels.accounts.iter().filter(|a| a.typology == t).count();
        assert!(k >= 2, "typology {t}: {k} accounts at 200k records ({typ:?})");
    }
    let mut collector_of: HashMap<&str, &str> = HashMap::new();
    for l in &labels.accounts {
        if l.role.as_deref() == Some("collector") {
            if let Some(s) = &l.scheme {
                collector_of.insert(s.as_str(), l.account.as_str());
            }
        }
    }
    let mut split = 0;
    for l in labels.accounts.iter().filter(|l| l.scheme.is_some()) {
        let recs = &by_acct[l.account.as_str()];
        if !l.rules.is_empty() {
            for x in recs.iter() {
                assert!(
                    !TELLING.iter().any(|w| x.memo.contains(w)),
                    "{} ({}): memo {:?}",
                    l.account,
                    l.typology,
                    x.memo
                );
                assert_ne!(x.channel, "payroll", "{}", l.account);
                assert!(x
                    .industry
                    .as_deref()
                    .is_none_or(|i| ["trading", "consulting", "tech"].contains(&i)));
            }
        }
        if l.typology != "split_payout" {
            continue;
        }
        split += 1;
        assert_eq!(l.role.as_deref(), Some("payout"));
        assert_eq!(l.rules, vec!["periodic_batch_small_out".to_string()]);
        let scheme = l.scheme.as_deref().unwrap_or_default();
        let collector = collector_of
            .get(scheme)
            .unwrap_or_else(|| panic!("{}: no collector for scheme {scheme}", l.account));
        let payers: HashSet<&str> = by_acct[collector]
            .iter()
            .filter(|x| !x.out)
            .map(|x| x.counterparty.as_str())
            .collect();
        // Payees: paid at least three times with steady amounts (the batches), not everyday
        // spending from the same account.
        let mut paid: HashMap<&str, Vec<i64>> = HashMap::new();
        for x in recs.iter().filter(|x| x.out) {
            paid.entry(x.counterparty.as_str()).or_default().push(x.fen);
        }
        let payees: Vec<&str> = paid
            .iter()
            .filter(|(_, v)| {
                let (lo, hi) = (
                    v.iter().min().copied().unwrap_or(0),
                    v.iter().max().copied().unwrap_or(0),
                );
                v.len() >= 3 && hi * 2 <= lo * 3
            })
            .map(|(k, _)| *k)
            .collect();
        assert!(payees.len() >= 8, "{}: {} payees", l.account, payees.len());
        let from = payees.iter().filter(|p| payers.contains(**p)).count();
        assert!(
            from * 2 >= payees.len(),
            "{}: only {from} of {} payees paid into collector {collector}",
            l.account,
            payees.len()
        );
        // Funded from outside its payees before paying.
        assert!(recs.iter().any(|x| !x.out && !payers.contains(x.counterparty.as_str())));
    }
    assert!(split >= 5, "{split} separate payout accounts");
}

/// The scheme lines are the truth a case is scored against: recount them from the records.
#[test]
fn scheme_lines_match_the_records() {
    let r = run(&evasive(60_000, 7));
    let p = parse_stream(&r.stream);
    let labels = read_labels(&r.labels);
    let mut by_acct: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for x in &p.recs {
        by_acct.entry(x.account.as_str()).or_default().push(x);
    }
    let typologies: BTreeSet<&str> = labels.schemes.iter().map(|s| s.typology.as_str()).collect();
    assert_eq!(
        typologies,
        BTreeSet::from(["collect_and_pay", "periodic_payout", "scatter_in", "split_scheme"])
    );
    let ids: Vec<&str> = labels.schemes.iter().map(|s| s.scheme.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "one line per scheme, in id order");
    // Every scheme with a labelled collector or payout has a line, and only those.
    let anchored: BTreeSet<&str> = labels
        .accounts
        .iter()
        .filter(|a| matches!(a.role.as_deref(), Some("collector" | "payout")))
        .filter_map(|a| a.scheme.as_deref())
        .collect();
    assert_eq!(anchored, ids.iter().copied().collect());

    let fen = |s: &str| fundwatch_generate::labels::parse_yuan(s).unwrap_or_else(|| panic!("amount {s:?}")) as i64;
    let mut invested_in: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for s in &labels.schemes {
        // The accounts are exactly the scheme's account labels, roles included.
        let mut want: Vec<(&str, &str)> = labels
            .accounts
            .iter()
            .filter(|a| a.scheme.as_deref() == Some(s.scheme.as_str()))
            .map(|a| (a.account.as_str(), a.role.as_deref().unwrap_or("")))
            .collect();
        let mut got: Vec<(&str, &str)> = s
            .accounts
            .iter()
            .map(|a| (a.account.as_str(), a.role.as_str()))
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}", s.scheme);
        // Regions as the records carry them.
        for a in &s.accounts {
            let rec_region = by_acct[a.account.as_str()].iter().find_map(|x| x.region.clone());
            assert_eq!(a.region, rec_region, "{} {}", s.scheme, a.account);
        }
        let mut regions: Vec<String> = s.accounts.iter().filter_map(|a| a.region.clone()).collect();
        regions.sort();
        regions.dedup();
        assert_eq!(s.regions, regions, "{}", s.scheme);
        let lead = s
            .anchor()
            .unwrap_or_else(|| panic!("{}: no collector or payout", s.scheme));
        let lead_region = s
            .accounts
            .iter()
            .find(|a| a.account == lead)
            .and_then(|a| a.region.clone());
        assert_eq!(s.lead_region, lead_region, "{}", s.scheme);

        let raised = fen(&s.raised);
        let paid_back = fen(&s.paid_back);
        match s.collector() {
            Some(c) => {
                let ins: Vec<&&Rec> = by_acct[c].iter().filter(|x| !x.out).collect();
                let payers: BTreeSet<&str> = ins.iter().map(|x| x.counterparty.as_str()).collect();
                let sum: i64 = ins.iter().map(|x| x.fen).sum();
                if s.typology == "collect_and_pay" {
                    // The controller may top the account up before a batch.
                    assert!(s.investors <= payers.len() as u64 && raised <= sum, "{}", s.scheme);
                    assert!(s.investors * 10 >= payers.len() as u64 * 8, "{}", s.scheme);
                } else {
                    // Only investors pay into a split or scatter-in collector.
                    assert_eq!(s.investors, payers.len() as u64, "{} investors", s.scheme);
                    assert_eq!(raised, sum, "{} raised", s.scheme);
                }
                for x in &ins {
                    invested_in
                        .entry(x.counterparty.as_str())
                        .or_default()
                        .insert(s.scheme.as_str());
                }
                assert!(s.investors >= 8, "{}: {} investors", s.scheme, s.investors);
            }
            None => {
                assert_eq!(s.typology, "periodic_payout", "{}", s.scheme);
                assert_eq!(raised, 0);
                let payout = s.payout().unwrap_or_default();
                let payees: BTreeSet<&str> = by_acct[payout]
                    .iter()
                    .filter(|x| x.out)
                    .map(|x| x.counterparty.as_str())
                    .collect();
                assert!(s.investors >= 8 && s.investors <= payees.len() as u64, "{}", s.scheme);
            }
        }
        // Paid back: out of the paying account, at most all it sent.
        let payer = match s.typology.as_str() {
            "collect_and_pay" => s.collector(),
            _ => s.payout(),
        };
        match payer {
            Some(a) => {
                let out: i64 = by_acct[a].iter().filter(|x| x.out).map(|x| x.fen).sum();
                assert!(paid_back <= out, "{}", s.scheme);
                if s.payout().is_some() {
                    assert!(paid_back > 0, "{}: a payout account that paid nothing", s.scheme);
                }
            }
            None => assert!(s.typology == "scatter_in" || paid_back > 0 || s.payout().is_none()),
        }
        if s.typology == "scatter_in" {
            assert_eq!(paid_back, 0, "{}", s.scheme);
        }
    }
    // Some people put money into more than one scheme.
    let repeat = invested_in.values().filter(|v| v.len() >= 2).count();
    assert!(repeat >= 3, "{repeat} investors in two or more schemes");
}
