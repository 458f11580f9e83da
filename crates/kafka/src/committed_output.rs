//! What is already committed on the alert and dead-letter topics, read back after a hung
//! transaction was ended (see `Pipeline::abort_hung` in `service/recovery.rs`).
//!
//! Why: a single-node broker that shuts down can complete a transaction's commit while
//! writing its markers only to the partitions that still had a leader (Kafka's marker sender
//! skips leaderless partitions as if deleted). Some of that transaction's alerts are then
//! committed while its consumed offsets stay pending. `abort_hung` aborts what is still
//! pending, the partitions are rebuilt from the offsets before it, and their alerts are
//! emitted again: those that were already committed would be duplicates. Alert ids are
//! deterministic (rule, account, triggering record, config version), so an alert whose id
//! is already committed is the same alert; a dead letter is identified by its source
//! partition and offset. The rebuilt pipeline skips both.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fundwatch_record::parse_rfc3339_ms;
use fundwatch_rules::RuleId;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Deserialize;

use crate::KafkaError;

/// Output already committed since a point in time.
#[derive(Debug, Default)]
pub struct CommittedOutput {
    /// `alert_id`s on the alert topic.
    pub alerts: HashSet<String>,
    /// (source partition, source offset) of the dead letters on the dead-letter topic.
    pub dead_letters: HashSet<(i32, i64)>,
}

#[derive(Deserialize)]
struct AlertId {
    alert_id: String,
}

/// Which (account, rule) episodes were alerted, from the committed alert topic: what decides
/// the cooldowns of a partition rebuilt from the input topic without a checkpoint.
#[derive(Debug, Default)]
pub struct Episodes {
    /// (account, rule, trigger event time = the alert's `window_end`) of behavioural alerts.
    pub alerted: Vec<(String, RuleId, i64)>,
    /// Every alert partition was read from the requested time (none had deleted records
    /// after it): the list is the whole truth and replaces what the rebuild inferred.
    pub complete: bool,
}

#[derive(Deserialize)]
struct AlertEpisode {
    rule: String,
    account: String,
    window_end: String,
}

/// Read the behavioural alerts committed on `alert_topic` since Kafka time `since_ms`.
pub fn episodes(
    base: &ClientConfig,
    alert_topic: &str,
    since_ms: i64,
    timeout: Duration,
) -> Result<Episodes, KafkaError> {
    let deadline = Instant::now() + timeout;
    let mut out = Episodes {
        alerted: Vec::new(),
        complete: true,
    };
    let cut = read_topic(base, alert_topic, since_ms, deadline, |msg| {
        if from_linker(msg) {
            // Raised by the case linker, not an episode of the engine (replay's engine never
            // sees them either): no cooldown of the engine depends on it.
            return;
        }
        let Some(a) = msg
            .payload()
            .and_then(|p| serde_json::from_slice::<AlertEpisode>(p).ok())
        else {
            return;
        };
        let (Some(rule), Ok(end)) = (RuleId::parse(&a.rule), parse_rfc3339_ms(&a.window_end)) else {
            return;
        };
        if rule != RuleId::LargeValue {
            out.alerted.push((a.account, rule, end));
        }
    })?;
    out.complete = !cut;
    Ok(out)
}

/// Header naming who wrote an alert: `linker` for alerts raised by a link.
pub const SOURCE_HEADER: &str = "fundwatch.source";

/// An alert the case linker wrote (header `fundwatch.source = linker`).
pub fn from_linker<M: Message>(msg: &M) -> bool {
    msg.headers().is_some_and(|h| {
        h.iter()
            .any(|h| h.key == SOURCE_HEADER && h.value == Some(&b"linker"[..]))
    })
}

/// Ids of the linked alerts (header `fundwatch.source = linker`) committed on `alert_topic`:
/// a restored linker does not send them again (it rebuilds its state from the final traces
/// and may not have seen the intermediate one that raised an alert).
pub fn linked_alerts(base: &ClientConfig, alert_topic: &str, timeout: Duration) -> Result<HashSet<String>, KafkaError> {
    let deadline = Instant::now() + timeout;
    let mut out = HashSet::new();
    read_topic(base, alert_topic, 0, deadline, |msg| {
        if from_linker(msg) {
            if let Some(id) = msg.payload().and_then(|p| serde_json::from_slice::<AlertId>(p).ok()) {
                out.insert(id.alert_id);
            }
        }
    })?;
    Ok(out)
}

/// Read, as read_committed consumers outside any group, every record with a Kafka
/// timestamp at or after `since_ms` on the alert and dead-letter topics, up to their ends
/// (the last stable offsets). Fails (the caller retries) if an end is not reached within
/// `timeout`.
pub fn read(
    base: &ClientConfig,
    alert_topic: &str,
    dead_letter_topic: &str,
    input_topic: &str,
    since_ms: i64,
    timeout: Duration,
) -> Result<CommittedOutput, KafkaError> {
    let deadline = Instant::now() + timeout;
    let mut out = CommittedOutput::default();
    read_topic(base, alert_topic, since_ms, deadline, |msg| {
        if let Some(id) = msg.payload().and_then(|p| serde_json::from_slice::<AlertId>(p).ok()) {
            out.alerts.insert(id.alert_id);
        }
    })?;
    read_topic(base, dead_letter_topic, since_ms, deadline, |msg| {
        if let Some(source) = dead_letter_source(msg, input_topic) {
            out.dead_letters.insert(source);
        }
    })?;
    Ok(out)
}

/// One consumer per topic: a partition-EOF event names only the partition. Returns whether
/// retention may have cut the read short: on some partition the first record at or after
/// `since_ms` is the first one kept (log start above 0).
fn read_topic(
    base: &ClientConfig,
    topic: &str,
    since_ms: i64,
    deadline: Instant,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<bool, KafkaError> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut cc = base.clone();
    cc.set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    // librdkafka wants a group id even to assign; this consumer never joins or commits.
    if cc.get("group.id").is_none() {
        cc.set("group.id", "fundwatch-read-back");
    }
    let consumer: BaseConsumer<QuietEof> = cc.create_with_context(QuietEof)?;
    let md = consumer.fetch_metadata(Some(topic), left())?;
    let mut times = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            times.add_partition_offset(topic, p.id(), Offset::Offset(since_ms.max(0)))?;
        }
    }
    let found = consumer.offsets_for_times(times, left())?;
    let mut assign = TopicPartitionList::new();
    let mut open: HashSet<i32> = HashSet::new();
    let mut cut = false;
    for el in found.elements() {
        // `End`: nothing at or after `since_ms` on this partition.
        if let Offset::Offset(o) = el.offset() {
            assign.add_partition_offset(topic, el.partition(), Offset::Offset(o))?;
            open.insert(el.partition());
            if o > 0 {
                let (low, _) = consumer.fetch_watermarks(topic, el.partition(), left())?;
                cut |= o <= low;
            }
        }
    }
    if open.is_empty() {
        return Ok(cut);
    }
    consumer.assign(&assign)?;
    while !open.is_empty() {
        if left().is_zero() {
            return Err(KafkaError::Other(format!(
                "reading back the committed records of {topic}: {} partition(s) not read to their end in time",
                open.len()
            )));
        }
        match consumer.poll(left().min(Duration::from_millis(200))) {
            None => {}
            Some(Ok(msg)) => each(&msg),
            Some(Err(RdError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
        }
    }
    Ok(cut)
}

/// A reader's client context: reaching a partition's end is what a read-back waits for, not
/// an error to log (librdkafka also reports it through the error callback).
pub(crate) struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: RdError, reason: &str) {
        match error {
            RdError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF) => {}
            e => tracing::warn!(error = %e, reason, "kafka reader error"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

fn dead_letter_source<M: Message>(msg: &M, input_topic: &str) -> Option<(i32, i64)> {
    let headers = msg.headers()?;
    let mut topic = None;
    let mut partition = None;
    let mut offset = None;
    for h in headers.iter() {
        let v = h.value.and_then(|v| std::str::from_utf8(v).ok());
        match h.key {
            "fundwatch.source.topic" => topic = v,
            "fundwatch.source.partition" => partition = v.and_then(|v| v.parse().ok()),
            "fundwatch.source.offset" => offset = v.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    (topic == Some(input_topic)).then_some(())?;
    Some((partition?, offset?))
}
