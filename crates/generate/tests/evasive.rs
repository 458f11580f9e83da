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
