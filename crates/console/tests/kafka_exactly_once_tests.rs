//! Against a real broker (scripts/kafka.sh; started when none answers, like the Kafka crate's
//! tests; a broker that cannot be started fails the test, it is never skipped): the reporter
//! reports each confirmed case exactly once across a crash after a commit and a crash inside a
//! transaction, and the ingest reads read_committed, stores offsets with the rows, and resumes
//! without duplicates.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fundwatch_console::auth::{parse_regions, Role, User};
use fundwatch_console::kafka::{run_ingest, run_reporter, KafkaSettings};
use fundwatch_console::store::{Action, ItemKind, ReviewInput, Table};
use fundwatch_console::Store;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn bootstrap() -> String {
    std::env::var("FUNDWATCH_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

fn broker_up(b: &str) -> bool {
    let c: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", b)
        .set("log_level", "0")
        .create()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    c.fetch_metadata(None, Duration::from_secs(3)).is_ok()
}

fn ensure_broker() -> String {
    let b = bootstrap();
    if !broker_up(&b) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/kafka.sh");
        let status = std::process::Command::new(script)
            .arg("start")
            .env("KAFKA_PORT", b.rsplit(':').next().unwrap_or("19092"))
            .status()
            .expect("run scripts/kafka.sh start");
        assert!(
            status.success() && broker_up(&b),
            "no Kafka broker at {b} and scripts/kafka.sh could not start one"
        );
    }
    b
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("console-test-{name}-{}-{nanos}", std::process::id())
}

fn settings(b: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: b.into(),
        client: Default::default(),
        alert_topic: unique("alerts"),
        case_topic: unique("cases"),
        reported_topic: unique("reported"),
        transactional_id: unique("reporter"),
    }
}

async fn create_topics(b: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", b).create().expect("admin");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(new.iter(), &AdminOptions::new())
        .await
        .expect("create topics")
    {
        r.expect("topic created");
    }
}

/// Every record of a topic, read_committed: (key, value, headers).
fn read_all(b: &str, topic: &str) -> Vec<(String, String, HashMap<String, String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b)
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut open: std::collections::HashSet<i32> = parts.into_iter().collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let mut headers = HashMap::new();
                if let Some(h) = m.headers() {
                    for x in h.iter() {
                        headers.insert(
                            x.key.to_owned(),
                            String::from_utf8_lossy(x.value.unwrap_or_default()).to_string(),
                        );
                    }
                }
                out.push((
                    String::from_utf8_lossy(m.key().unwrap_or_default()).to_string(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string(),
                    headers,
                ));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "did not reach the end of {topic}");
    out
}

fn everyone() -> User {
    User {
        name: "all_super".into(),
        role: Role::Supervisor,
        prefixes: parse_regions("*").expect("regions"),
    }
}

fn confirm(id: &str) -> ReviewInput {
    ReviewInput {
        kind: ItemKind::Case,
        item_id: id.into(),
        action: Action::Confirm,
        reason_code: String::new(),
        notes: format!("confirmed {id}"),
        seen_actions: None,
    }
}

/// Run the reporter until the outbox is empty (or 90 s), then stop it.
async fn report_until_drained(store: &Store, s: &KafkaSettings) {
    let stop = Arc::new(AtomicBool::new(false));
    let (st, ks, rt, flag) = (
        store.clone(),
        s.clone(),
        tokio::runtime::Handle::current(),
        stop.clone(),
    );
    let reporter = std::thread::spawn(move || run_reporter(st, ks, rt, flag));
    let deadline = Instant::now() + Duration::from_secs(90);
    while !store.unsent(10).await.expect("outbox").is_empty() {
        assert!(Instant::now() < deadline, "the reporter did not drain the outbox");
        assert!(!reporter.is_finished(), "the reporter stopped early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let result = tokio::task::spawn_blocking(move || reporter.join())
        .await
        .expect("join");
    result.expect("reporter thread").expect("reporter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_confirmed_case_is_reported_once_across_crashes_after_commit_and_inside_a_transaction() {
    let b = ensure_broker();
    let s = settings(&b);
    create_topics(&b, &[(s.reported_topic.as_str(), 3)]).await;
    let c = console_with(sample_items()).await;
    let sh = c.store.review(&everyone(), &confirm("c-sh")).await.expect("confirm");
    let js = c.store.review(&everyone(), &confirm("c-js")).await.expect("confirm");
    let rows = c.store.unsent(10).await.expect("outbox");
    let row = |id: &str| rows.iter().find(|r| r.review_id == id).expect("row").clone();

    // A crash after the commit, before marking: c-sh is on the topic, still unsent here.
    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .create()
        .expect("producer");
    let r = row(&sh);
    let headers = OwnedHeaders::new().insert(Header {
        key: "fundwatch.review_id",
        value: Some(r.review_id.as_bytes()),
    });
    plain
        .send(
            BaseRecord::to(&s.reported_topic)
                .key(r.case_id.as_bytes())
                .payload(r.payload.as_bytes())
                .headers(headers),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    plain.flush(Duration::from_secs(10)).expect("flush");
    // A crash inside a transaction: c-js produced under the reporter's transactional id, never
    // committed. The restarted reporter's init fences and aborts it.
    let crashed: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("transactional.id", &s.transactional_id)
        .create()
        .expect("producer");
    crashed.init_transactions(Duration::from_secs(30)).expect("init");
    crashed.begin_transaction().expect("begin");
    let r = row(&js);
    crashed
        .send(
            BaseRecord::to(&s.reported_topic)
                .key(r.case_id.as_bytes())
                .payload(r.payload.as_bytes()),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    crashed.flush(Duration::from_secs(10)).expect("flush");
    std::mem::forget(crashed); // no abort, no commit: as if killed

    report_until_drained(&c.store, &s).await;
    let reported = read_all(&b, &s.reported_topic);
    let mut keys: Vec<&str> = reported.iter().map(|(k, _, _)| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, vec!["c-js", "c-sh"], "each confirmed case once");
    let js_record = reported.iter().find(|(k, _, _)| k == "c-js").expect("c-js");
    assert_eq!(js_record.2.get("fundwatch.region").map(String::as_str), Some("320102"));
    let v: serde_json::Value = serde_json::from_str(&js_record.1).expect("json");
    assert_eq!(v["review"]["review_id"], js.as_str());
    assert_eq!(v["case_id"], "c-js");

    // A restart with one more confirmation reports only that one.
    c.store.review(&everyone(), &confirm("c-cross")).await.expect("confirm");
    report_until_drained(&c.store, &s).await;
    let again = read_all(&b, &s.reported_topic);
    let mut keys: Vec<&str> = again.iter().map(|(k, _, _)| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, vec!["c-cross", "c-js", "c-sh"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reads_committed_records_only_and_resumes_from_the_stored_offsets() {
    let b = ensure_broker();
    let s = settings(&b);
    create_topics(&b, &[(s.alert_topic.as_str(), 2), (s.case_topic.as_str(), 1)]).await;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("transactional.id", unique("feed"))
        .create()
        .expect("producer");
    producer.init_transactions(Duration::from_secs(30)).expect("init");
    let send = |topic: &str, key: &str, value: String| {
        producer
            .send(BaseRecord::to(topic).key(key.as_bytes()).payload(value.as_bytes()))
            .map_err(|(e, _)| e)
            .expect("send");
    };
    producer.begin_transaction().expect("begin");
    send(
        &s.alert_topic,
        "acct-1",
        alert_json("k1", "3101", "scatter_in_concentrated_out", 81.0, 3),
    );
    send(
        &s.alert_topic,
        "acct-2",
        alert_json("k2", "3201", "rapid_pass_through", 71.0, 4),
    );
    send(
        &s.case_topic,
        "case-1",
        case_json("kc", 1, "3101", &["3101"], &["k1"], 30, "1000.00"),
    );
    producer.commit_transaction(Duration::from_secs(30)).expect("commit");
    producer.begin_transaction().expect("begin");
    send(
        &s.alert_topic,
        "acct-3",
        alert_json("aborted", "3101", "structuring", 60.0, 5),
    );
    // A BaseProducer serves its delivery reports only when polled: flush before the abort.
    producer.flush(Duration::from_secs(10)).expect("flush");
    producer.abort_transaction(Duration::from_secs(30)).expect("abort");

    let c = console_with(Vec::new()).await;
    let run_until = |want_alerts: i64, want_case_version: i64| {
        let (store, ks) = (c.store.clone(), s.clone());
        async move {
            let stop = Arc::new(AtomicBool::new(false));
            let (st, rt, flag) = (store.clone(), tokio::runtime::Handle::current(), stop.clone());
            let ingest = std::thread::spawn(move || run_ingest(st, ks, rt, flag));
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let alerts = store.count(Table::Alerts).await.expect("count");
                let version = store
                    .case(&everyone(), "kc")
                    .await
                    .expect("case")
                    .map(|k| k.version)
                    .unwrap_or(0);
                if alerts >= want_alerts && version >= want_case_version {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "ingest did not catch up ({alerts} alerts, case v{version})"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // Let it read past anything else there is.
            tokio::time::sleep(Duration::from_millis(800)).await;
            stop.store(true, Ordering::Relaxed);
            let r = tokio::task::spawn_blocking(move || ingest.join()).await.expect("join");
            r.expect("ingest thread").expect("ingest");
        }
    };
    run_until(2, 1).await;
    assert_eq!(c.store.count(Table::Alerts).await.expect("n"), 2);
    assert!(
        c.store.alert(&everyone(), "aborted").await.expect("alert").is_none(),
        "an aborted record was stored"
    );
    let positions = c.store.positions().await.expect("positions");
    assert_eq!(positions.get(&format!("kafka:{}:0", s.case_topic)), Some(&1));

    // More records, then a restart: it resumes after the stored offsets, nothing twice.
    producer.begin_transaction().expect("begin");
    send(
        &s.case_topic,
        "case-1",
        case_json("kc", 2, "3101", &["3101", "3201"], &["k1", "k2"], 45, "2500.00"),
    );
    send(
        &s.alert_topic,
        "acct-1",
        alert_json("k1", "3101", "scatter_in_concentrated_out", 81.0, 3),
    );
    producer.commit_transaction(Duration::from_secs(30)).expect("commit");
    run_until(2, 2).await;
    assert_eq!(c.store.count(Table::Alerts).await.expect("n"), 2);
    assert_eq!(c.store.count(Table::Cases).await.expect("n"), 1);
    let kc = c.store.case(&everyone(), "kc").await.expect("case").expect("kc");
    assert_eq!((kc.version, kc.investors, kc.max_score), (2, 45, 81.0));
    // Offset 1 is the first transaction's commit marker; the second version is at 2.
    assert_eq!(
        c.store
            .positions()
            .await
            .expect("positions")
            .get(&format!("kafka:{}:0", s.case_topic)),
        Some(&3)
    );
}
