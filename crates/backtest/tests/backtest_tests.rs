//! The tuning tools tell the truth: a backtest is a replay, a sweep point is a backtest at
//! that value, a config compared with itself changes nothing.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fundwatch_backtest::{apply, backtest, diff, run, sweep, DecodedStream, Settings, SweepAxis};
use fundwatch_engine::{Alert, Clock};
use fundwatch_generate::labels::Labels;
use fundwatch_replay::{read_stream, replay, Item, ReplayOptions};
use fundwatch_rules::{Config, RuleId};

const CLOCK: Clock = Clock::Fixed(1_790_000_000_000);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(name)
}

fn labels() -> Labels {
    let f = std::fs::File::open(fixture("stream-20k.labels.jsonl")).unwrap();
    Labels::read(std::io::BufReader::new(f)).unwrap()
}

fn read_alerts(p: &Path) -> Vec<Alert> {
    let f = std::fs::File::open(p).unwrap();
    std::io::BufReader::new(f)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

#[test]
fn decoded_stream_hands_the_engine_the_records_the_file_holds() {
    let path = fixture("stream-20k.jsonl");
    let mut direct = Vec::new();
    let mut rejected = 0;
    read_stream(
        &path,
        |item| match item {
            Item::Record(t) => direct.push(t.into_owned()),
            Item::Rejected { .. } => rejected += 1,
        },
        |_| {},
    )
    .unwrap();
    let s = DecodedStream::load(&path).unwrap();
    let mut held = Vec::new();
    s.for_each(|t| held.push(t.clone().into_owned()));
    assert_eq!(held, direct);
    assert_eq!(s.rejected(), rejected);
    assert_eq!(s.records_read, direct.len() as u64 + rejected);
}

#[test]
fn backtest_figures_equal_replay_of_the_same_stream_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("stream-20k.jsonl");
    let mut cfg = Config::default();
    cfg.rules.scatter_in_concentrated_out.params.min_distinct_payers = 6;
    let cfg = Arc::new(cfg);
    let alerts_path = dir.path().join("alerts.jsonl");
    let summary = replay(&ReplayOptions {
        input: path.clone(),
        alerts: alerts_path.clone(),
        dead_letter: None,
        near_misses: None,
        config: cfg.clone(),
        cases: None,
        traces: None,
        route_dir: None,
        progress: false,
        clock: CLOCK,
    })
    .unwrap();
    let replayed = read_alerts(&alerts_path);
    let stream = DecodedStream::load(&path).unwrap();
    let bt = backtest(&stream, cfg, None, Some(&labels()), CLOCK);
    assert!(!replayed.is_empty());
    assert_eq!(bt.a.alerts, replayed, "same alerts, ids and order");
    assert_eq!(bt.a.alerts_by_rule(), summary.alerts_by_rule);
    assert_eq!(bt.a.config_version, summary.config_version);
    assert_eq!(stream.rejected(), summary.rejected);
    let eval = bt.eval_a.unwrap();
    let direct = labels().evaluate(replayed.iter().map(|a| (a.rule.as_str(), a.account.as_str())));
    assert_eq!(eval, direct);
}

#[test]
fn a_config_against_itself_changes_nothing() {
    let stream = DecodedStream::load(&fixture("stream-20k.jsonl")).unwrap();
    let cfg = Arc::new(Config::default());
    let bt = backtest(&stream, cfg.clone(), Some(cfg), None, CLOCK);
    let d = bt.diff.unwrap();
    assert!(d.is_empty());
    let total: u64 = d.by_rule.iter().map(|c| c.both).sum();
    assert_eq!(total, bt.a.alerts.len() as u64);
    assert!(d
        .by_rule
        .iter()
        .all(|c| c.only_a == 0 && c.only_b == 0 && c.accounts_only_a == 0));
}

#[test]
fn a_diff_counts_exactly_what_each_config_raises() {
    let stream = DecodedStream::load(&fixture("stream-20k.jsonl")).unwrap();
    let a = Arc::new(Config::default());
    let mut b = Config::default();
    b.rules.rapid_pass_through.params.confirm_score = 30.0;
    b.rules.periodic_batch_small_out.params.min_batch_recipients = 12;
    let bt = backtest(&stream, a, Some(Arc::new(b)), None, CLOCK);
    let (ra, rb) = (&bt.a, bt.b.as_ref().unwrap());
    let d = bt.diff.unwrap();
    assert!(!d.is_empty(), "a lower score and a stricter batch change something");
    for c in &d.by_rule {
        let na = ra.alerts.iter().filter(|x| x.rule == c.rule).count() as u64;
        let nb = rb.alerts.iter().filter(|x| x.rule == c.rule).count() as u64;
        assert_eq!(c.only_a + c.both, na, "{}", c.rule);
        assert_eq!(c.only_b + c.both, nb, "{}", c.rule);
    }
    // Rules whose thresholds did not change raise the same alerts.
    for r in ["scatter_in_concentrated_out", "structuring", "large_value"] {
        let c = d.by_rule.iter().find(|c| c.rule == r).unwrap();
        assert_eq!((c.only_a, c.only_b), (0, 0), "{r}");
    }
    assert_eq!(diff(&rb.alerts, &ra.alerts).only_a, d.only_b);
}

/// Every point of a sweep equals a full backtest of the config with that value.
fn check_points(spec: &[&str], threads: usize) {
    let stream = DecodedStream::load(&fixture("stream-20k.jsonl")).unwrap();
    let base = Arc::new(Config::default());
    let axes: Vec<SweepAxis> = spec.iter().map(|s| SweepAxis::parse(s, &base).unwrap()).collect();
    let l = labels();
    let sw = sweep(&stream, base.clone(), axes, Some(&l), threads, CLOCK).unwrap();
    let n: usize = sw.axes.iter().map(|a| a.values.len()).product();
    assert_eq!(sw.points.len(), n);
    let mut distinct = std::collections::BTreeSet::new();
    for pt in &sw.points {
        let cfg = Arc::new(apply(&base, &pt.settings).unwrap());
        let full = run(&stream, cfg, CLOCK);
        assert_eq!(pt.config_version, full.config_version, "{}", pt.settings);
        assert_eq!(pt.alerts_by_rule, full.alerts_by_rule(), "{}", pt.settings);
        assert_eq!(pt.accounts_by_rule, full.accounts_by_rule(), "{}", pt.settings);
        let affected: Vec<Alert> = full
            .alerts
            .iter()
            .filter(|a| sw.affected.contains(&RuleId::parse(&a.rule).unwrap()))
            .cloned()
            .collect();
        assert_eq!(pt.alerts, affected, "{}: same alerts, ids included", pt.settings);
        let eval = l.evaluate(full.alerts.iter().map(|a| (a.rule.as_str(), a.account.as_str())));
        assert_eq!(pt.evaluation.as_ref(), Some(&eval), "{}", pt.settings);
        distinct.insert(pt.alerts.len());
    }
    assert!(distinct.len() > 1, "the swept values must change something: {spec:?}");
}

#[test]
fn a_sweep_point_equals_a_backtest_at_that_value() {
    check_points(&["scatter_in_concentrated_out.min_distinct_payers=4:16:4"], 2);
}

#[test]
fn a_two_rule_grid_point_equals_a_backtest_at_those_values() {
    check_points(&["rapid.min_cycles=2:6:2", "periodic.min_batch_recipients=3,40"], 3);
}

#[test]
fn a_large_value_line_sweep_reruns_structuring_too() {
    check_points(&["large_value.cash_line=20000,50000"], 1);
}

#[test]
fn an_invalid_sweep_value_is_refused_before_any_work() {
    let stream = DecodedStream::from_records("empty", []);
    let base = Arc::new(Config::default());
    let axis = SweepAxis::parse("structuring.min_events=0:3:1", &base).unwrap();
    let e = match sweep(&stream, base, vec![axis], None, 1, CLOCK) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("min_events = 0 is out of range"),
    };
    assert!(
        e.contains("structuring.min_events") && e.contains("min_events=0"),
        "{e}"
    );
    assert!(apply(&Config::default(), &Settings(vec![])).is_ok());
}

#[test]
fn lanes_of_one_engine_equal_separate_engines() {
    use fundwatch_backtest::run_lanes;
    let stream = DecodedStream::load(&fixture("stream-20k.jsonl")).unwrap();
    let mut fewer_cycles = Config::default();
    fewer_cycles.rules.rapid_pass_through.params.min_cycles = 2;
    let mut only_scatter = Config::default();
    only_scatter.rules.structuring.params.enabled = false;
    only_scatter.rules.large_value.enabled = false;
    // A different [engine] section cannot share the windows: it gets its own engine.
    let mut later = Config::default();
    later.engine.allowed_lateness = fundwatch_rules::Span::minutes(30);
    let configs: Vec<Arc<Config>> = [Config::default(), fewer_cycles, only_scatter, later]
        .into_iter()
        .map(Arc::new)
        .collect();
    let outs = run_lanes(&stream, &configs, CLOCK);
    assert_eq!(outs.len(), configs.len());
    for (cfg, out) in configs.iter().zip(outs) {
        let alone = run(&stream, cfg.clone(), CLOCK);
        assert_eq!(out.config_version, alone.config_version);
        assert_eq!(out.alerts, alone.alerts);
        assert_eq!(out.stats, alone.stats);
    }
}

/// An evasive generated stream (schemes hiding the planted signals, separate payout
/// accounts, look-alikes), written once for the tests of this file that need cases.
fn scheme_stream() -> (&'static PathBuf, &'static Labels) {
    static S: std::sync::OnceLock<(tempfile::TempDir, PathBuf, Labels)> = std::sync::OnceLock::new();
    let s = S.get_or_init(|| {
        use fundwatch_generate::{generate, GenerateOptions, Profile};
        let dir = tempfile::tempdir().unwrap();
        let (stream, labels) = (dir.path().join("stream.jsonl"), dir.path().join("labels.jsonl"));
        let opts = GenerateOptions {
            profile: Profile::Evasive,
            records: 150_000,
            seed: 11,
            days: 90,
            ..GenerateOptions::default()
        };
        generate(
            &opts,
            std::fs::File::create(&stream).unwrap(),
            std::fs::File::create(&labels).unwrap(),
        )
        .unwrap();
        let l = Labels::read(std::io::BufReader::new(std::fs::File::open(&labels).unwrap())).unwrap();
        (dir, stream, l)
    });
    // The directory lives in the static for the whole process.
    (&s.1, &s.2)
}

#[test]
fn backtest_cases_equal_replay_cases() {
    use fundwatch_cases::CaseRecord;
    let (path, labels) = scheme_stream();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(Config::default());
    let (alerts_path, cases_path) = (dir.path().join("alerts.jsonl"), dir.path().join("cases.jsonl"));
    replay(&ReplayOptions {
        input: path.clone(),
        alerts: alerts_path.clone(),
        dead_letter: None,
        near_misses: None,
        config: cfg.clone(),
        cases: Some(cases_path.clone()),
        traces: None,
        route_dir: None,
        progress: false,
        clock: CLOCK,
    })
    .unwrap();
    let stream = DecodedStream::load(path).unwrap();
    let bt = backtest(&stream, cfg, None, Some(labels), CLOCK);
    let cases = bt.a.cases.as_ref().expect("[cases] is enabled by default");
    let lines: Vec<CaseRecord> = std::fs::read_to_string(&cases_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut last: std::collections::BTreeMap<String, CaseRecord> = Default::default();
    for c in &lines {
        last.insert(c.case_id.clone(), c.clone());
    }
    assert!(cases.open().count() >= 5, "the evasive stream has schemes");
    assert_eq!(cases.versions, lines.len() as u64, "the same versions");
    assert_eq!(
        cases.cases,
        last.into_values().collect::<Vec<_>>(),
        "the same final cases"
    );
    // The replay's alert file is the rules' alerts plus the linked ones.
    let replayed = read_alerts(&alerts_path);
    let ids = |v: &[Alert]| -> std::collections::BTreeSet<String> { v.iter().map(|a| a.alert_id.clone()).collect() };
    let mut ours = ids(&bt.a.alerts);
    ours.extend(ids(&cases.linked_alerts));
    assert_eq!(ours, ids(&replayed));
    assert_eq!(bt.a.alerts.len() + cases.linked_alerts.len(), replayed.len());
    let score = bt.case_score_a.as_ref().expect("the labels have scheme lines");
    assert_eq!(score, &fundwatch_backtest::score_cases(labels, &cases.scored()));
    assert!(score.payout_link_schemes > 0 && score.schemes_found > 0, "{score:?}");
}

#[test]
fn a_link_threshold_change_breaks_exactly_the_links_it_should() {
    let (path, labels) = scheme_stream();
    let stream = DecodedStream::load(path).unwrap();
    let a = Arc::new(Config::default());
    let same = backtest(&stream, a.clone(), Some(a.clone()), None, CLOCK);
    assert!(same.case_diff.as_ref().unwrap().is_empty(), "a config against itself");
    let mut b = Config::default();
    // No payout account can have 10,000 shared payees: every payees_paid_in tie goes.
    b.cases.min_shared_people = 10_000;
    let bt = backtest(&stream, a, Some(Arc::new(b)), Some(labels), CLOCK);
    let d = bt.case_diff.as_ref().unwrap();
    let (la, lb) = (
        bt.a.cases.as_ref().unwrap().links(),
        bt.b.as_ref().unwrap().cases.as_ref().unwrap().links(),
    );
    assert_eq!(la.len() as u64, d.links_both + d.links_broken.len() as u64);
    assert_eq!(lb.len() as u64, d.links_both + d.links_made.len() as u64);
    assert!(lb.keys().all(|k| k.kind != "payees_paid_in"));
    let paid_in = la.keys().filter(|k| k.kind == "payees_paid_in").count();
    assert!(paid_in > 0, "the evasive stream's payouts are tied by their payees");
    assert!(
        d.links_broken
            .iter()
            .filter(|l| l.link.kind == "payees_paid_in")
            .count()
            == paid_in,
        "every payee tie is broken"
    );
    for l in &d.links_broken {
        assert!(!lb.contains_key(&l.link) && la.contains_key(&l.link));
    }
    for l in &d.links_made {
        assert!(lb.contains_key(&l.link) && !la.contains_key(&l.link));
    }
    assert!(
        bt.case_score_b.as_ref().unwrap().payout_links < bt.case_score_a.as_ref().unwrap().payout_links,
        "without payee ties fewer payout accounts join their collector"
    );
    assert_eq!(d.cases_a, bt.a.cases.as_ref().unwrap().open().count() as u64);
}

#[test]
fn a_cases_sweep_point_equals_a_backtest_at_that_value() {
    use fundwatch_backtest::{case_diff, run_with_cases};
    let (path, labels) = scheme_stream();
    let stream = DecodedStream::load(path).unwrap();
    let base = Arc::new(Config::default());
    for spec in ["cases.min_payee_share=0.2,0.9", "periodic.min_batch_recipients=6,30"] {
        let axes = vec![SweepAxis::parse(spec, &base).unwrap()];
        let sw = sweep(&stream, base.clone(), axes, Some(labels), 2, CLOCK).unwrap();
        let base_cases = sw.base.cases.as_ref().expect("the base runs the case stage");
        let mut distinct = std::collections::BTreeSet::new();
        for pt in &sw.points {
            let full = run_with_cases(&stream, Arc::new(apply(&base, &pt.settings).unwrap()), CLOCK);
            let (want, got) = (full.cases.as_ref().unwrap(), &pt.cases.as_ref().unwrap().run);
            assert_eq!(got.cases, want.cases, "{spec}: {}", pt.settings);
            assert_eq!(got.linked_alerts, want.linked_alerts, "{spec}: {}", pt.settings);
            let d = pt.cases.as_ref().unwrap().diff.as_ref().unwrap();
            assert_eq!(d, &case_diff(base_cases, want), "{spec}: {}", pt.settings);
            distinct.insert(want.links().len());
        }
        assert!(distinct.len() > 1, "{spec}: the values must change the links");
    }
}
