//! The read-back that keeps a hung-transaction recovery from emitting duplicates: it sees
//! exactly the alerts and dead letters that are committed (not aborted ones, not pending
//! ones' absence of markers, not records older than its start time).

mod common;

use std::time::Duration;

use common::*;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn alert_json(id: &str) -> String {
    format!("{{\"alert_id\":\"{id}\",\"rule\":\"large_value\",\"account\":\"6222000000000000001\"}}")
}

fn dead_letter_headers(topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "fundwatch.reason",
            value: Some("test"),
        })
        .insert(Header {
            key: "fundwatch.source.topic",
            value: Some(topic),
        })
        .insert(Header {
            key: "fundwatch.source.partition",
            value: Some(&partition.to_string()),
        })
        .insert(Header {
            key: "fundwatch.source.offset",
            value: Some(&offset.to_string()),
        })
}

#[test]
fn read_back_sees_committed_output_only() {
    init_logs();
    let b = ensure_broker();
    let topics = create_topics(&b, "readback", 3);
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("transactional.id", unique("readback-txn"))
        .create()
        .unwrap();
    let t = Duration::from_secs(30);
    producer.init_transactions(t).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let send = |topic: &str, partition: i32, payload: &str, ts: i64, headers: Option<OwnedHeaders>| {
        let mut rec = BaseRecord::<str, str>::to(topic)
            .partition(partition)
            .payload(payload)
            .key("6222000000000000001")
            .timestamp(ts);
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        producer.send(rec).map_err(|(e, _)| e).unwrap();
    };
    // Old (before `since`), committed.
    producer.begin_transaction().unwrap();
    send(&topics.alerts, 0, &alert_json("old"), now - 3_600_000, None);
    producer.commit_transaction(t).unwrap();
    // Committed, on every partition, plus two dead letters (one from another topic).
    producer.begin_transaction().unwrap();
    for p in 0..3 {
        send(&topics.alerts, p, &alert_json(&format!("committed-{p}")), now, None);
    }
    send(
        &topics.dead,
        0,
        "bad line",
        now,
        Some(dead_letter_headers(&topics.input, 2, 41)),
    );
    send(
        &topics.dead,
        0,
        "bad line",
        now,
        Some(dead_letter_headers("other-topic", 1, 7)),
    );
    producer.commit_transaction(t).unwrap();
    // Aborted.
    producer.begin_transaction().unwrap();
    send(&topics.alerts, 1, &alert_json("aborted"), now, None);
    send(
        &topics.dead,
        0,
        "bad line",
        now,
        Some(dead_letter_headers(&topics.input, 0, 5)),
    );
    // Written to the log before the abort (an abort purges what is still queued).
    producer.flush(t).unwrap();
    producer.abort_transaction(t).unwrap();
    // Committed after the aborted one.
    producer.begin_transaction().unwrap();
    send(&topics.alerts, 1, &alert_json("after-abort"), now, None);
    producer.commit_transaction(t).unwrap();

    let base = ClientConfig::new().set("bootstrap.servers", &b).clone();
    let out =
        fundwatch_kafka::read_committed_output(&base, &topics.alerts, &topics.dead, &topics.input, now - 60_000, t)
            .unwrap();
    let mut alerts: Vec<&str> = out.alerts.iter().map(String::as_str).collect();
    alerts.sort();
    assert_eq!(alerts, ["after-abort", "committed-0", "committed-1", "committed-2"]);
    assert_eq!(out.dead_letters.into_iter().collect::<Vec<_>>(), [(2, 41)]);

    // From the beginning: the old alert too.
    let out = fundwatch_kafka::read_committed_output(&base, &topics.alerts, &topics.dead, &topics.input, 0, t).unwrap();
    assert_eq!(out.alerts.len(), 5);
    assert!(out.alerts.contains("old"));
}
