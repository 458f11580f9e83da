//! End-to-end checks of generated streams against the wire contract and their labels (the
//! validator is in `common`, shared with the evasive profile's tests).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::*;
use fundwatch_generate::labels::RULES;
use fundwatch_generate::{generate, GenerateError, GenerateOptions};

// ---------------------------------------------------------------------------------------------

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(&opts(12_000, 42));
    let b = run(&opts(12_000, 42));
    assert!(a.stream == b.stream, "stream differs between identical runs");
    assert!(a.labels == b.labels, "labels differ between identical runs");
    assert_eq!(a.summary, b.summary);
    let c = run(&opts(12_000, 43));
    assert!(a.stream != c.stream);
    assert!(a.labels != c.labels);
}

#[test]
fn record_count_within_tolerance() {
    for (n, seed, days) in [
        (10_000u64, 1u64, 120u32),
        (25_000, 7, 120),
        (20_000, 3, 45),
        (15_000, 9, 365),
    ] {
        let o = GenerateOptions {
            records: n,
            seed,
            days,
            ..GenerateOptions::default()
        };
        let r = run(&o);
        let lines = r.stream.iter().filter(|&&c| c == b'\n').count() as u64;
        assert_eq!(lines, r.summary.records + r.summary.malformed);
        let lo = n * 95 / 100;
        let hi = n * 105 / 100;
        assert!(
            (lo..=hi).contains(&r.summary.records),
            "n={n} days={days}: got {} records",
            r.summary.records
        );
    }
}

#[test]
fn every_line_is_valid_or_deliberately_malformed() {
    let o = GenerateOptions {
        records: 40_000,
        seed: 5,
        malformed_rate: 0.01,
        ..GenerateOptions::default()
    };
    let r = run(&o);
    let p = parse_stream(&r.stream);
    assert_eq!(
        p.recs.len() as u64,
        r.summary.records,
        "valid lines: first invalid {:?}",
        p.invalid.first()
    );
    assert_eq!(p.invalid.len() as u64, r.summary.malformed);

    // Malformed share ≈ rate (binomial, ±5σ).
    let expected = 0.01 * r.summary.records as f64;
    let sd = expected.sqrt();
    assert!(
        (p.invalid.len() as f64 - expected).abs() < 5.0 * sd,
        "{} malformed, expected ≈{expected}",
        p.invalid.len()
    );

    // The malformed lines are varied.
    let kinds: BTreeSet<&str> = p
        .invalid
        .iter()
        .map(|l| match validate(l) {
            Err(e) if e.starts_with("json") => "json",
            Err(e) if e.starts_with("missing") => "missing",
            Err(e) if e.contains("amount") => "amount",
            Err(e) if e.starts_with("direction") => "direction",
            Err(e) if e.starts_with("bad ts") => "ts",
            _ => "other",
        })
        .collect();
    for k in ["json", "missing", "amount", "direction", "ts"] {
        assert!(kinds.contains(k), "no malformed line of kind {k}: {kinds:?}");
    }

    // tx_id unique across valid lines.
    let ids: HashSet<&str> = p.recs.iter().map(|r| r.tx_id.as_str()).collect();
    assert_eq!(ids.len(), p.recs.len());

    // Spelling variety the contract allows.
    let text = String::from_utf8_lossy(&r.stream);
    assert!(text.contains("+08:00\"") && text.contains("Z\""));
    assert!(p.recs.iter().any(|x| x.ts_ms % 1000 != 0), "no fractional seconds");
    let mut quoted = 0;
    let mut number = 0;
    for l in text.lines().take(5_000) {
        match raw_amount(l) {
            Some((_, true)) => quoted += 1,
            Some((_, false)) => number += 1,
            None => {}
        }
    }
    assert!(
        quoted > 1_000 && number > 1_000,
        "amount forms: {quoted} strings, {number} numbers"
    );
    let currencies: BTreeSet<&str> = p.recs.iter().map(|x| x.currency.as_str()).collect();
    assert!(currencies.contains("CNY") && currencies.len() >= 3, "{currencies:?}");
    let cny = p.recs.iter().filter(|x| x.currency == "CNY").count();
    assert!(cny as f64 > 0.97 * p.recs.len() as f64);
    let channels: BTreeSet<&str> = p.recs.iter().map(|x| x.channel.as_str()).collect();
    assert_eq!(channels.len(), CHANNELS.len(), "{channels:?}");
    assert!(p.recs.iter().any(|x| x.cross_border));
    assert!(p
        .recs
        .iter()
        .any(|x| x.memo.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))));
    let industries: BTreeSet<&str> = p.recs.iter().filter_map(|x| x.industry.as_deref()).collect();
    for k in [
        "investment",
        "elderly_care",
        "cooperative",
        "private_education",
        "retail",
        "wholesale",
    ] {
        assert!(industries.contains(k), "industry {k} missing: {industries:?}");
    }
    let regions: BTreeSet<&str> = p.recs.iter().filter_map(|x| x.region.as_deref()).collect();
    assert!(regions.len() >= 4);

    // Every account keeps one type, industry and region.
    let mut attrs: HashMap<&str, (bool, Option<&str>, Option<&str>)> = HashMap::new();
    for x in &p.recs {
        let a = (x.corporate, x.industry.as_deref(), x.region.as_deref());
        let prev = attrs.entry(x.account.as_str()).or_insert(a);
        assert_eq!(prev.0, a.0, "account {} changes type", x.account);
        if a.0 {
            assert_eq!(prev.1, a.1, "account {} changes industry", x.account);
            assert_eq!(
                x.account_type.as_deref(),
                Some("corporate"),
                "corporate records always say so"
            );
        }
        assert_eq!(prev.2, a.2, "account {} changes region", x.account);
    }
    assert_eq!(attrs.len() as u64, r.summary.accounts);

    // Both ledgers of in-bank transfers appear.
    let monitored: HashSet<&str> = attrs.keys().copied().collect();
    let outs: HashSet<(&str, &str, i64)> = p
        .recs
        .iter()
        .filter(|x| x.out)
        .map(|x| (x.account.as_str(), x.counterparty.as_str(), x.fen))
        .collect();
    let mirrored = p
        .recs
        .iter()
        .filter(|x| !x.out && monitored.contains(x.counterparty.as_str()))
        .filter(|x| outs.contains(&(x.counterparty.as_str(), x.account.as_str(), x.fen)))
        .count();
    assert!(mirrored > 100, "only {mirrored} mirrored in-bank transfers");
}

#[test]
fn arrival_order_is_event_order_up_to_bounded_lateness() {
    let o = GenerateOptions {
        records: 20_000,
        seed: 11,
        disorder_secs: 300,
        disorder_rate: 0.05,
        ..GenerateOptions::default()
    };
    let r = run(&o);
    let p = parse_stream(&r.stream);
    let mut max_seen = i64::MIN;
    let mut late = 0u64;
    for x in &p.recs {
        if x.ts_ms < max_seen {
            late += 1;
            assert!(
                max_seen - x.ts_ms <= 300_000 + 999,
                "lateness {} ms",
                max_seen - x.ts_ms
            );
        }
        max_seen = max_seen.max(x.ts_ms);
    }
    assert!(late > 100, "only {late} late records");
    assert!(
        late <= r.summary.late + 50,
        "{late} out of order, {} displaced",
        r.summary.late
    );

    // No disorder requested → sorted (the sub-second part only orders within a second).
    let o = GenerateOptions {
        disorder_rate: 0.0,
        ..o
    };
    let p = parse_stream(&run(&o).stream);
    assert!(p.recs.windows(2).all(|w| w[0].ts_ms / 1000 <= w[1].ts_ms / 1000));
}

#[test]
fn large_value_labels_match_recomputation() {
    for (n, seed) in [(30_000u64, 21u64), (12_000, 22)] {
        let r = run(&opts(n, seed));
        let p = parse_stream(&r.stream);
        let labels = read_labels(&r.labels);
        let expected = recompute_large_value(&p.recs);
        let got = labels.large_value_keys();
        let missing: Vec<_> = expected.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?} extra {extra:?}"
        );
        assert_eq!(got.len(), labels.large_value.len(), "duplicate large-value lines");
        assert_eq!(r.summary.large_value_reports, got.len() as u64);
        let lines: BTreeSet<&str> = got.iter().map(|k| k.3.as_str()).collect();
        assert_eq!(lines.len(), 4, "all four lines occur: {lines:?}");

        // The boundary cases are there and behave as designed.
        let boundary: BTreeMap<&str, &str> = labels
            .accounts
            .iter()
            .filter(|a| a.typology == "lv_boundary")
            .map(|a| (a.detail.as_deref().unwrap_or(""), a.account.as_str()))
            .collect();
        let has = |case: &str, line: &str| {
            let a = boundary.get(case).copied().unwrap_or("?");
            got.iter().any(|k| k.0 == a && k.3 == line)
        };
        assert!(has("cash_day_total_exactly_50000", "cash"));
        assert!(!has("cash_single_49999.99", "cash"));
        assert!(!has("cash_day_total_49999.99", "cash"));
        assert!(!has("cash_straddles_beijing_midnight", "cash"));
        assert!(has("cash_same_beijing_day_across_utc_midnight", "cash"));
        assert!(has("cash_single_50000_at_midnight", "cash"));
        assert!(has("cash_running_total_crosses_on_third", "cash"));
        assert!(!has("kinds_and_directions_not_mixed", "cash"));
        assert!(!has("eur_cash_60000", "cash"));
        assert!(has(
            "personal_transfer_exactly_500000_and_499999.99",
            "personal_domestic"
        ));
        assert!(has(
            "cross_border_exactly_200000_and_below_and_usd",
            "personal_cross_border"
        ));
        assert!(!has("cross_border_and_domestic_not_mixed", "personal_cross_border"));
        assert!(has(
            "corporate_day_total_exactly_2000000_and_below",
            "corporate_transfer"
        ));
    }
}

#[test]
fn labels_name_stream_accounts_and_cover_every_typology() {
    let r = run(&opts(10_000, 3));
    let p = parse_stream(&r.stream);
    let labels = read_labels(&r.labels);
    let accounts: HashSet<&str> = p.recs.iter().map(|x| x.account.as_str()).collect();
    for a in &labels.accounts {
        assert!(
            accounts.contains(a.account.as_str()),
            "labelled account {} not in stream",
            a.account
        );
    }
    let typ: BTreeSet<&str> = labels.accounts.iter().map(|a| a.typology.as_str()).collect();
    for t in [
        "scatter_in",
        "ponzi_collect_and_pay",
        "periodic_payout",
        "rapid_pass_through",
        "structuring",
        "qr_merchant",
        "wholesaler",
        "payroll",
        "gig_platform",
        "crowdfunding",
        "salary_same_day",
    ] {
        assert!(typ.contains(t), "typology {t} missing at 10k records");
    }
    for rule in RULES {
        let n = labels.truth(rule).len();
        assert!(n >= 3, "rule {rule}: only {n} positives at 10k records");
        assert_eq!(r.summary.positives_by_rule.get(rule).copied(), Some(n as u64));
    }
    // Look-alikes are negatives for every rule.
    for a in labels.accounts.iter().filter(|a| a.rules.is_empty()) {
        assert!(![
            "scatter_in",
            "ponzi_collect_and_pay",
            "periodic_payout",
            "rapid_pass_through",
            "structuring"
        ]
        .contains(&a.typology.as_str()));
    }

    // Perfect alerts score perfectly; no alerts score zero recall.
    let mut alerts: Vec<(String, String)> = Vec::new();
    for rule in RULES {
        for a in labels.truth(rule) {
            alerts.push((rule.to_string(), a.to_string()));
        }
    }
    let ev = labels.evaluate(alerts.iter().map(|(r, a)| (r.as_str(), a.as_str())));
    for s in &ev.rules {
        assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0), "{}", s.rule);
    }
    let ev = labels.evaluate(std::iter::empty());
    assert!(ev.rules.iter().all(|s| s.recall == 0.0 && s.false_negatives == s.truth));
}

/// The planted cases have the shape their labels claim (loose checks a reasonable detector
/// would need to pass), at a scale with hundreds of cases.
#[test]
fn planted_cases_have_their_shape() {
    let r = run(&opts(120_000, 8));
    let p = parse_stream(&r.stream);
    let labels = read_labels(&r.labels);
    let mut by_acct: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for x in &p.recs {
        by_acct.entry(x.account.as_str()).or_default().push(x);
    }
    for v in by_acct.values_mut() {
        v.sort_by_key(|x| x.ts_ms);
    }
    let has = |a: &str, rule: &str| {
        labels
            .accounts
            .iter()
            .any(|l| l.account == a && l.rules.iter().any(|x| x == rule))
    };
    for l in &labels.accounts {
        let recs = &by_acct[l.account.as_str()];
        if has(&l.account, "scatter_in_concentrated_out") {
            let payers: HashSet<&str> = recs
                .iter()
                .filter(|x| !x.out && !x.counterparty.is_empty())
                .map(|x| x.counterparty.as_str())
                .collect();
            assert!(
                payers.len() >= 10,
                "{}: {} payers ({:?})",
                l.account,
                payers.len(),
                l.detail
            );
        }
        if has(&l.account, "periodic_batch_small_out") {
            // Days with ≥8 distinct recipients of outgoing transfers.
            let mut per_day: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
            for x in recs.iter().filter(|x| x.out) {
                per_day
                    .entry(beijing_day(x.ts_ms))
                    .or_default()
                    .insert(x.counterparty.as_str());
            }
            let batches = per_day.values().filter(|s| s.len() >= 8).count();
            assert!(batches >= 3, "{}: {batches} batches ({:?})", l.account, l.detail);
        }
        if has(&l.account, "rapid_pass_through") {
            let big_in = recs.iter().filter(|x| !x.out && x.fen >= 2_000_000).count();
            assert!(big_in >= 3, "{}: {big_in} sizeable inflows ({:?})", l.account, l.detail);
        }
        if has(&l.account, "structuring") {
            let mut per_day: BTreeMap<(String, bool, bool), i64> = BTreeMap::new();
            for x in recs.iter() {
                *per_day
                    .entry((beijing_day(x.ts_ms), x.out, x.channel == "cash"))
                    .or_insert(0) += x.fen;
            }
            let near = per_day
                .iter()
                .filter(|((_, _, cash), v)| {
                    if *cash {
                        (4_000_000..5_000_000).contains(*v)
                    } else {
                        (40_000_000..50_000_000).contains(*v)
                    }
                })
                .count();
            assert!(near >= 3, "{}: {near} near-line days ({:?})", l.account, l.detail);
        }
    }
    let n_pos: usize = RULES[..4].iter().map(|r| labels.truth(r).len()).sum();
    assert!(n_pos >= 40, "{n_pos} planted positives at 120k records");
}

#[test]
fn invalid_options_are_rejected() {
    let bad = [
        GenerateOptions {
            records: 10,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            start: "2026-02-30".into(),
            ..GenerateOptions::default()
        },
        GenerateOptions {
            start: "yesterday".into(),
            ..GenerateOptions::default()
        },
        GenerateOptions {
            days: 5,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            disorder_rate: 1.5,
            ..GenerateOptions::default()
        },
        GenerateOptions {
            malformed_rate: f64::NAN,
            ..GenerateOptions::default()
        },
    ];
    for o in bad {
        let r = generate(&o, Vec::new(), Vec::new());
        assert!(matches!(r, Err(GenerateError::InvalidOption { .. })), "{o:?} accepted");
    }
}

#[test]
fn io_errors_surface() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let r = generate(&opts(10_000, 1), Broken, Vec::new());
    assert!(matches!(r, Err(GenerateError::Io(_))));
}

#[test]
fn command_line_flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        g: GenerateOptions,
    }
    let cli = match Cli::try_parse_from([
        "generate",
        "--records",
        "20000",
        "--seed",
        "9",
        "--start",
        "2026-03-01",
        "--days",
        "60",
        "--disorder-secs",
        "120",
        "--disorder-rate",
        "0.05",
        "--malformed-rate",
        "0.001",
    ]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let g = cli.g;
    assert_eq!(
        (g.records, g.seed, g.start.as_str(), g.days),
        (20_000, 9, "2026-03-01", 60)
    );
    assert_eq!((g.disorder_secs, g.disorder_rate, g.malformed_rate), (120, 0.05, 0.001));
    let d = match Cli::try_parse_from(["generate"]) {
        Ok(c) => c.g,
        Err(e) => panic!("{e}"),
    };
    let def = GenerateOptions::default();
    assert_eq!(
        (d.records, d.seed, d.start, d.days),
        (def.records, def.seed, def.start, def.days)
    );
    assert_eq!(
        (d.disorder_secs, d.disorder_rate, d.malformed_rate),
        (240, 0.02, 0.0005)
    );
}
