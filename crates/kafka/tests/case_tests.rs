//! The case stage exactly-once, against a real broker, on a generated evasive stream: engines
//! write account traces in their transactions, the linker (one active per group) turns them
//! into case versions and linked alerts in its own. After kill -9 rounds, and after a
//! two-instance run where one instance leaves and another joins mid-stream:
//! - the cases whose last version on the case topic is open are replay's final open cases;
//! - the alert topic holds exactly replay's alerts (the engines' and the linker's), each once;
//! - each office topic of `[routing]` holds exactly the alerts replay routes there, each once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use fundwatch_cases::{route_alert, CaseRecord};
use fundwatch_engine::{Alert, Clock};
use fundwatch_rules::{Config, Span};
use rand::Rng;

/// The generated evasive stream (cached per test process).
fn evasive_stream() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("{}.jsonl", unique("evasive")));
        let opts = fundwatch_generate::GenerateOptions {
            records: 250_000,
            days: 120,
            seed: 21,
            profile: fundwatch_generate::Profile::Evasive,
            ..Default::default()
        };
        let out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        fundwatch_generate::generate(&opts, out, std::io::sink()).expect("generate");
        path
    })
    .clone()
}

struct Reference {
    alerts: BTreeMap<String, Alert>,
    /// Final open cases (last version per case id, status open).
    open: BTreeMap<String, CaseRecord>,
    linked: u64,
}

fn routing(name: &str) -> fundwatch_rules::RoutingParams {
    let base = unique(name);
    let mut r = fundwatch_rules::RoutingParams::default();
    r.regions.insert("3301".into(), format!("{base}-office-hz"));
    r.regions.insert("330106".into(), format!("{base}-office-xihu"));
    r.regions.insert("31".into(), format!("{base}-office-sh"));
    r
}

/// Replay with the case stage: the reference alerts (engine and linked) and final open cases.
fn reference(config: &Config) -> Reference {
    let alerts = std::env::temp_dir().join(format!("{}.jsonl", unique("ref-alerts")));
    let cases = std::env::temp_dir().join(format!("{}.jsonl", unique("ref-cases")));
    let opts = fundwatch_replay::ReplayOptions {
        input: evasive_stream(),
        alerts: alerts.clone(),
        dead_letter: None,
        near_misses: None,
        config: Arc::new(config.clone()),
        cases: Some(cases.clone()),
        traces: None,
        route_dir: None,
        progress: false,
        clock: Clock::Fixed(0),
    };
    let summary = fundwatch_replay::replay(&opts).expect("replay");
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
    {
        let a: Alert = serde_json::from_str(line).unwrap();
        assert!(
            out.insert(a.alert_id.clone(), a.without_wall_clock()).is_none(),
            "replay repeats an alert"
        );
    }
    let mut last: BTreeMap<String, CaseRecord> = BTreeMap::new();
    for line in std::fs::read_to_string(&cases)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
    {
        let c: CaseRecord = serde_json::from_str(line).unwrap();
        last.insert(c.case_id.clone(), c);
    }
    let _ = std::fs::remove_file(alerts);
    let _ = std::fs::remove_file(cases);
    let open: BTreeMap<String, CaseRecord> = last.into_iter().filter(|(_, c)| c.status == "open").collect();
    let linked = summary.cases.as_ref().map_or(0, |c| c.linker.linked_alerts);
    eprintln!(
        "reference: {} alerts ({} linked), {} open cases",
        out.len(),
        linked,
        open.len()
    );
    Reference {
        alerts: out,
        open,
        linked,
    }
}

fn case_config(b: &str, t: &Topics, name: &str) -> Config {
    let mut c = config(b, t);
    c.kafka.trace_topic = format!("{}-traces", t.state);
    c.kafka.case_topic = format!("{}-cases", t.state);
    c.kafka.checkpoint_interval = Span(1_000);
    c.routing = routing(name);
    c
}

/// Last version per case id on the case topic (read_committed); the open ones.
fn committed_open_cases(b: &str, topic: &str) -> (BTreeMap<String, CaseRecord>, usize) {
    let recs = read_committed(b, topic, Duration::from_secs(120));
    let n = recs.len();
    let mut last: BTreeMap<String, CaseRecord> = BTreeMap::new();
    for r in recs {
        let c: CaseRecord = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(r.key, c.case_id.as_bytes(), "case key is the case id");
        if let Some(region) = &c.lead_region {
            assert_eq!(r.headers.get("fundwatch.region"), Some(region), "region header");
        }
        if let Some(prev) = last.get(&c.case_id) {
            assert!(c.version > prev.version, "versions of {} go back", c.case_id);
        }
        last.insert(c.case_id.clone(), c);
    }
    (last.into_iter().filter(|(_, c)| c.status == "open").collect(), n)
}

fn assert_same_cases(got: &BTreeMap<String, CaseRecord>, want: &BTreeMap<String, CaseRecord>) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "open cases differ: missing {missing:?}, extra {extra:?}"
    );
    // `version` is the sum of the accounts' trace numbers, bumped past the last version
    // written: replay writes after every trace, the linker once per batch, so replay's can be
    // higher where the sum did not grow between two writes. Every other field must be equal.
    let mut versions = 0;
    for (id, c) in want {
        let g = &got[id];
        let strip = |c: &CaseRecord| CaseRecord {
            version: 0,
            ..c.clone()
        };
        assert_eq!(strip(g), strip(c), "case {id} differs");
        if g.version != c.version {
            versions += 1;
            eprintln!(
                "case {id}: version {} on the case topic, {} in replay (all else equal)",
                g.version, c.version
            );
        }
    }
    eprintln!("{versions} of {} open cases differ in version only", want.len());
}

/// Engine and linked alerts routed to the office topics: exactly replay's, each once.
fn assert_routed(b: &str, cfg: &Config, want: &BTreeMap<String, Alert>) {
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in want.values() {
        if let Some(r) = route_alert(&cfg.routing, a) {
            expected.entry(r.topic).or_default().insert(a.alert_id.clone());
        }
    }
    assert!(!expected.is_empty(), "nothing routed: check the test's [routing]");
    let offices: BTreeSet<&String> = cfg.routing.regions.values().collect();
    for topic in offices {
        let mut ids = Vec::new();
        for r in read_committed(b, topic, Duration::from_secs(60)) {
            let kind = r.headers.get("fundwatch.kind").cloned().unwrap_or_default();
            assert!(r.headers.contains_key("fundwatch.region"), "region header on {topic}");
            if kind == "alert" {
                let a: Alert = serde_json::from_slice(&r.value).unwrap();
                ids.push(a.alert_id);
            } else {
                assert!(kind == "case" || kind == "notice", "kind {kind:?} on {topic}");
            }
        }
        let got: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(got.len(), ids.len(), "an alert routed twice to {topic}");
        assert_eq!(
            &got,
            expected.get(topic).unwrap_or(&BTreeSet::new()),
            "alerts routed to {topic}"
        );
    }
}

fn check(b: &str, cfg: &Config, want: &Reference) {
    let (open, versions) = committed_open_cases(b, &cfg.kafka.case_topic);
    eprintln!("case topic: {versions} versions, {} open at the end", open.len());
    assert_same_cases(&open, &want.open);
    let (got, n) = committed_alerts(b, &cfg.kafka.alert_topic);
    eprintln!(
        "alert topic: {n} alerts, replay has {} ({} linked)",
        want.alerts.len(),
        want.linked
    );
    assert_same_alerts(&got, n, &want.alerts);
    assert_routed(b, cfg, &want.alerts);
}

#[test]
fn cases_and_linked_alerts_survive_kill9_rounds_exactly_once() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics_with(
        &b,
        "cases-kill",
        4,
        &[("retention.ms", "-1"), ("retention.bytes", "-1")],
    );
    let cfg = case_config(&b, &topics, "cases-kill");
    let want = reference(&cfg);
    assert!(!want.open.is_empty(), "the stream has open cases and linked alerts");
    let path = write_config(&cfg, "cases-kill");
    let feeder = {
        let cfg = cfg.clone();
        std::thread::spawn(move || produce_event_time(&cfg, &evasive_stream(), Some(25_000.0), 0, None))
    };
    let mut rng = rand::thread_rng();
    for round in 0..5 {
        let mut child = spawn_service(&path, "k", None);
        let ms = rng.gen_range(2500..6000);
        std::thread::sleep(Duration::from_millis(ms));
        kill9(&mut child);
        eprintln!(
            "round {round}: killed after {ms} ms ({:.1}s)",
            t0.elapsed().as_secs_f64()
        );
    }
    feeder.join().unwrap();
    let summary = wait_with_timeout(spawn_service(&path, "k", Some(3000)), Duration::from_secs(300));
    eprintln!("final run: {summary}");
    assert!(summary["linker_restores"].as_u64().unwrap_or(0) >= 1, "{summary}");
    check(&b, &cfg, &want);
    eprintln!(
        "cases_and_linked_alerts_survive_kill9_rounds_exactly_once: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn cases_and_linked_alerts_survive_a_rebalance_exactly_once() {
    init_logs();
    let t0 = Instant::now();
    let b = ensure_broker();
    let topics = create_topics_with(
        &b,
        "cases-rebal",
        4,
        &[("retention.ms", "-1"), ("retention.bytes", "-1")],
    );
    let cfg = case_config(&b, &topics, "cases-rebal");
    let want = reference(&cfg);
    let path = write_config(&cfg, "cases-rebal");
    let a = spawn_service(&path, "a", Some(8_000));
    let bb = spawn_service(&path, "b", Some(8_000));
    std::thread::sleep(Duration::from_secs(3));
    let feeder = {
        let cfg = cfg.clone();
        std::thread::spawn(move || produce_event_time(&cfg, &evasive_stream(), Some(15_000.0), 0, None))
    };
    std::thread::sleep(Duration::from_secs(5));
    // a leaves (SIGTERM: commits within the grace and stops), c joins.
    unsafe {
        libc::kill(a.id() as i32, libc::SIGTERM);
    }
    let left = wait_with_timeout(a, Duration::from_secs(60));
    eprintln!("a left at {:.1}s: {left}", t0.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(3));
    let c = spawn_service(&path, "c", Some(8_000));
    eprintln!("c joined at {:.1}s", t0.elapsed().as_secs_f64());
    feeder.join().unwrap();
    let sb = wait_with_timeout(bb, Duration::from_secs(300));
    let sc = wait_with_timeout(c, Duration::from_secs(300));
    eprintln!("b: {sb}\nc: {sc}");
    let restores: u64 = [&left, &sb, &sc]
        .iter()
        .map(|s| s["linker_restores"].as_u64().unwrap_or(0))
        .sum();
    assert!(restores >= 2, "the linker moved between instances: {restores} restores");
    check(&b, &cfg, &want);
    eprintln!(
        "cases_and_linked_alerts_survive_a_rebalance_exactly_once: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}
