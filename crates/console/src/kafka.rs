//! The console's Kafka side: the alert and case topics into the store, and the outbox to the
//! `reported` topic. Both run on their own threads with librdkafka's blocking clients and hand
//! the database work to the tokio runtime.
//!
//! Ingest: one consumer assigned by hand to every partition of both topics (no group
//! rebalancing: the console reads everything), `isolation.level=read_committed`, starting at
//! the offsets stored in the database; each batch's rows and next offsets are one database
//! transaction, so a kill -9 neither loses nor duplicates a record.
//!
//! Report: a transactional producer with a fixed `transactional.id` (starting it fences and
//! aborts any earlier instance's open transaction). Before producing, the reported topic is
//! read read_committed to its end and every review id found there is marked sent; the rest is
//! produced in one transaction and marked sent after the commit. A failure anywhere sends the
//! reporter back through that reconciliation, so no review is reported twice or lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use crate::error::{ConsoleError, Result};
use crate::ingest::Feed;
use crate::store::Store;
use fundwatch_kafka::ClientRole as Role;

/// Where the console connects: from the fundwatch config's `[kafka]` and `[console]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub brokers: String,
    /// `kafka.client` passthrough (`security.protocol`, `sasl.*`, `ssl.*`; `consumer.` and
    /// `producer.` prefixes for one client only; `${NAME}` from the environment).
    pub client: BTreeMap<String, String>,
    pub alert_topic: String,
    pub case_topic: String,
    pub reported_topic: String,
    pub transactional_id: String,
}

/// The same reading of `kafka.client` as the detection service's (its own builder, so the
/// `consumer.`/`producer.` prefixes and `${ENV}` secrets mean the same in both).
fn client_config(s: &KafkaSettings, role: Role) -> Result<ClientConfig> {
    fundwatch_kafka::client_config(&s.brokers, &s.client, role).map_err(|e| match e {
        fundwatch_kafka::KafkaError::MissingEnv { key, var } => ConsoleError::MissingEnv { key, var },
        fundwatch_kafka::KafkaError::Kafka(e) => ConsoleError::Kafka(e),
        other => ConsoleError::KafkaSetup(other.to_string()),
    })
}

fn read_committed_consumer(s: &KafkaSettings, group_suffix: &str, eof: bool) -> Result<BaseConsumer> {
    let mut cfg = client_config(s, Role::Consumer)?;
    cfg.set("group.id", format!("fundwatch-console-{group_suffix}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", if eof { "true" } else { "false" });
    Ok(cfg.create()?)
}

fn partitions(consumer: &BaseConsumer, topic: &str, stop: &AtomicBool) -> Result<Vec<i32>> {
    loop {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                let parts: Vec<i32> = md
                    .topics()
                    .iter()
                    .filter(|t| t.name() == topic && t.error().is_none())
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                if !parts.is_empty() {
                    return Ok(parts);
                }
                tracing::info!(topic, "waiting for the topic to exist");
            }
            Err(e) => tracing::warn!(topic, error = %e, "no metadata yet"),
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn source_key(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}:{partition}")
}

const BATCH_RECORDS: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(200);

/// The alert and case topics into the store until `stop`. Blocking: run it on its own thread.
pub fn run_ingest(store: Store, s: KafkaSettings, rt: Handle, stop: Arc<AtomicBool>) -> Result<()> {
    let consumer = read_committed_consumer(&s, "ingest", false)?;
    let stored = rt.block_on(store.positions())?;
    let mut tpl = TopicPartitionList::new();
    let mut feeds = HashMap::new();
    for (topic, feed) in [(&s.alert_topic, Feed::Alerts), (&s.case_topic, Feed::Cases)] {
        feeds.insert(topic.clone(), feed);
        for p in partitions(&consumer, topic, &stop)? {
            let offset = match stored.get(&source_key(topic, p)) {
                Some(next) => Offset::Offset(*next),
                None => Offset::Beginning,
            };
            tpl.add_partition_offset(topic, p, offset)?;
        }
    }
    consumer.assign(&tpl)?;
    tracing::info!(
        partitions = tpl.count(),
        "console reading the alert and case topics (read_committed)"
    );
    let mut items = Vec::new();
    let mut next: HashMap<String, i64> = HashMap::new();
    let mut first_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next.insert(source_key(m.topic(), m.partition()), m.offset() + 1);
                first_at.get_or_insert_with(Instant::now);
                let feed = feeds.get(m.topic()).copied().unwrap_or(Feed::Alerts);
                match m.payload().map(std::str::from_utf8) {
                    Some(Ok(text)) => match feed.parse(text) {
                        Ok(item) => items.push(item),
                        Err(e) => {
                            tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), reason = %e, "skipped a record")
                        }
                    },
                    // A tombstone on the compacted case topic, or bytes that are not text.
                    _ => tracing::debug!(
                        topic = m.topic(),
                        offset = m.offset(),
                        "skipped a record without a text value"
                    ),
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
        let due = first_at.is_some_and(|t| t.elapsed() >= BATCH_WAIT) || items.len() >= BATCH_RECORDS;
        if due && !next.is_empty() {
            let positions: Vec<(String, i64)> = next.iter().map(|(k, v)| (k.clone(), *v)).collect();
            // The batch is kept until it is stored: a database hiccup delays, never drops.
            loop {
                match rt.block_on(store.ingest(&items, &positions)) {
                    Ok(c) => {
                        tracing::debug!(?c, "ingested from kafka");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "storing a batch failed; retrying");
                        if stop.load(Ordering::Relaxed) {
                            return Err(e);
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            items.clear();
            next.clear();
            first_at = None;
        }
    }
    Ok(())
}

/// Review ids already on the reported topic, read read_committed to its end.
pub fn reported_review_ids(s: &KafkaSettings, stop: &AtomicBool) -> Result<HashSet<String>> {
    let consumer = read_committed_consumer(s, "reported-scan", true)?;
    let parts = partitions(&consumer, &s.reported_topic, stop)?;
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(&s.reported_topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut open: HashSet<i32> = parts.iter().copied().collect();
    // Empty partitions report no EOF on some brokers: they are done when low == high.
    for p in &parts {
        if let Ok((lo, hi)) = consumer.fetch_watermarks(&s.reported_topic, *p, Duration::from_secs(10)) {
            if lo == hi {
                open.remove(p);
            }
        }
    }
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !open.is_empty() {
        if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return Err(ConsoleError::Kafka(RdError::Canceled));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let from_header = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == "fundwatch.review_id")
                        .and_then(|h| h.value.and_then(|v| std::str::from_utf8(v).ok().map(str::to_owned)))
                });
                let id = from_header.or_else(|| {
                    m.payload()
                        .and_then(|p| std::str::from_utf8(p).ok())
                        .and_then(crate::report::review_id_of)
                });
                if let Some(id) = id {
                    ids.insert(id);
                }
            }
            Some(Err(RdError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "reading the reported topic"),
            None => {}
        }
    }
    Ok(ids)
}

fn ensure_topic(s: &KafkaSettings, rt: &Handle) -> Result<()> {
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = client_config(s, Role::Producer)?.create()?;
    let topic = NewTopic::new(&s.reported_topic, 3, TopicReplication::Fixed(-1));
    let results = rt.block_on(admin.create_topics([&topic], &AdminOptions::new()))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic = s.reported_topic.as_str(), "created the reported topic"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => tracing::warn!(topic = t.as_str(), ?code, "could not create the reported topic"),
        }
    }
    Ok(())
}

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The transactional producer, initialised: any transaction an earlier producer with the same
/// id left open is aborted before this one produces.
fn make_producer(s: &KafkaSettings) -> Result<BaseProducer> {
    let mut cfg = client_config(s, Role::Producer)?;
    cfg.set("transactional.id", &s.transactional_id)
        .set("enable.idempotence", "true")
        .set("acks", "all");
    let producer: BaseProducer = cfg.create()?;
    producer.init_transactions(TXN_TIMEOUT)?;
    Ok(producer)
}

/// One batch of the outbox in one transaction, committed.
fn produce_batch(
    producer: &BaseProducer,
    topic: &str,
    batch: &[crate::store::OutboxRow],
) -> std::result::Result<(), RdError> {
    producer.begin_transaction()?;
    for r in batch {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "fundwatch.region",
                value: Some(r.lead_region.as_bytes()),
            })
            .insert(Header {
                key: "fundwatch.review_id",
                value: Some(r.review_id.as_bytes()),
            });
        let mut record = BaseRecord::to(topic)
            .key(r.case_id.as_bytes())
            .payload(r.payload.as_bytes())
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((RdError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(50));
                    record = back;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    producer.commit_transaction(TXN_TIMEOUT)
}

/// The outbox to the reported topic until `stop`. Blocking: run it on its own thread.
pub fn run_reporter(store: Store, s: KafkaSettings, rt: Handle, stop: Arc<AtomicBool>) -> Result<()> {
    ensure_topic(&s, &rt)?;
    let mut producer = make_producer(&s)?;
    let mut reconcile = true;
    while !stop.load(Ordering::Relaxed) {
        if reconcile {
            match reported_review_ids(&s, &stop) {
                Ok(found) => {
                    let pending = rt.block_on(store.unsent(10_000))?;
                    let done: Vec<String> = pending
                        .into_iter()
                        .filter(|r| found.contains(&r.review_id))
                        .map(|r| r.review_id)
                        .collect();
                    if !done.is_empty() {
                        tracing::info!(reviews = done.len(), "already on the reported topic; marked sent");
                        rt.block_on(store.mark_sent(&done))?;
                    }
                    reconcile = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the reported topic; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let batch = match rt.block_on(store.unsent(100)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        let sent = produce_batch(&producer, &s.reported_topic, &batch);
        match sent {
            Ok(()) => {
                let ids: Vec<String> = batch.iter().map(|r| r.review_id.clone()).collect();
                if let Err(e) = rt.block_on(store.mark_sent(&ids)) {
                    // Committed but not marked: the next reconciliation marks them.
                    tracing::error!(error = %e, "marking reported reviews failed");
                    reconcile = true;
                } else {
                    for r in &batch {
                        tracing::info!(case = r.case_id.as_str(), review_id = r.review_id.as_str(), "reported");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reporting transaction failed; aborting and reconciling");
                if let Err(abort) = producer.abort_transaction(TXN_TIMEOUT) {
                    // A fatal producer error (fenced, for one): start a new producer, which
                    // aborts whatever the old one left open.
                    tracing::warn!(error = %abort, "abort failed; starting a new producer");
                    producer = make_producer(&s)?;
                }
                reconcile = true;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    Ok(())
}
