//! The shipped Grafana dashboard (deploy/grafana) parses, reads the provisioned data source,
//! and queries only metrics that the service's `/metrics` really serves after a run against
//! a real broker (no Docker needed to catch a renamed metric or a typo in a query).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn dashboard() -> serde_json::Value {
    let p = repo_root().join("deploy/grafana/dashboards/fundwatch.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// Every `fundwatch_*` name in the dashboard's queries.
fn queried(d: &serde_json::Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let panels = d["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 6,
        "throughput, lag, alerts, rejects, commit latency, rebuild"
    );
    for p in panels {
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {} has no targets", p["title"]));
        assert!(!targets.is_empty(), "panel {} has no queries", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("fundwatch_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
            assert_eq!(
                t["datasource"]["uid"], "fundwatch-prometheus",
                "panel {} queries another data source",
                p["title"]
            );
        }
    }
    names
}

#[test]
fn the_dashboard_and_its_provisioning_parse() {
    let d = dashboard();
    assert_eq!(d["uid"], "fundwatch");
    let titles: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for want in [
        "Throughput",
        "Consumer lag",
        "Alerts by rule",
        "Rejected records",
        "Commit latency",
        "Rebuild progress",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(want)),
            "no {want} panel in {titles:?}"
        );
    }
    let ds =
        std::fs::read_to_string(repo_root().join("deploy/grafana/provisioning/datasources/prometheus.yml")).unwrap();
    assert!(ds.contains("uid: fundwatch-prometheus") && ds.contains("url: http://prometheus:9090"));
    let prov =
        std::fs::read_to_string(repo_root().join("deploy/grafana/provisioning/dashboards/fundwatch.yml")).unwrap();
    assert!(prov.contains("path: /var/lib/grafana/dashboards"));
    let compose = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    assert!(compose.contains("./deploy/grafana/dashboards:/var/lib/grafana/dashboards"));
    let prom = std::fs::read_to_string(repo_root().join("deploy/prometheus/prometheus.yml")).unwrap();
    assert!(prom.contains("fundwatch:9898"));
}

#[test]
fn every_metric_the_dashboard_queries_is_served() {
    init_logs();
    let b = ensure_broker();
    let topics = create_topics(&b, "dash", 2);
    let cfg = config(&b, &topics);
    // The fixture (54 alerts) with a bad line, so that rejects have a reason label.
    let text = std::fs::read(fixture()).unwrap();
    let path = std::env::temp_dir().join(format!("{}.jsonl", unique("dash")));
    {
        let mut f = std::fs::File::create(&path).unwrap();
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            f.write_all(line).unwrap();
            f.write_all(b"\n").unwrap();
            if i == 100 {
                f.write_all(b"not json at all\n").unwrap();
            }
        }
    }
    produce(&cfg, &path, None);
    let service = fundwatch_kafka::Service::new(
        Arc::new(cfg),
        fundwatch_kafka::RunOptions {
            instance_id: Some("dash".into()),
            listen: Some("off".into()),
            ..Default::default()
        },
    );
    let metrics = service.metrics();
    let shutdown = fundwatch_kafka::Shutdown::new();
    let handle = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || service.run(shutdown))
    };
    let wanted = queried(&dashboard());
    // What a scrape of the running service shows (per-partition series go when the
    // partitions are revoked at shutdown): poll until every queried metric is there.
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let served = String::from_utf8(metrics.render()).unwrap();
        let missing: Vec<String> = wanted.iter().filter(|n| !serves(&served, n)).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (missing, served);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    shutdown.trigger();
    let summary = handle.join().unwrap().expect("run");
    assert!(summary.alerts > 0 && summary.rejected >= 1, "{summary:?}");
    assert!(
        missing.0.is_empty(),
        "the dashboard queries {:?}, which /metrics does not serve:\n{}",
        missing.0,
        missing.1
    );
}

/// `/metrics` text serves `name`: a counter or gauge family, or a histogram's
/// `_bucket`/`_sum`/`_count` series.
fn serves(served: &str, name: &str) -> bool {
    let types: BTreeSet<(&str, &str)> = served
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let histogram = |n: &str| types.contains(&(n, "histogram"));
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|b| histogram(b)));
    match base {
        Some(_) => served.lines().any(|l| l.starts_with(name)),
        None => types.iter().any(|(n, _)| *n == name) && !histogram(name),
    }
}
