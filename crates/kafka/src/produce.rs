//! Load a JSON Lines file into a topic, optionally at a target rate (benches, demos, tests).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fundwatch_record::{Decoded, InputDecoder};
use fundwatch_rules::Config;
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use serde::Serialize;
use tracing::{info, warn};

use crate::client::{check_connection, client_config, Role};
use crate::KafkaError;

/// Options of `fundwatch produce`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProduceOptions {
    /// JSON Lines file; every line becomes one record, as-is.
    #[arg(long)]
    pub input: PathBuf,
    /// Topic to write (default: `kafka.input_topic` of the config).
    #[arg(long)]
    pub topic: Option<String>,
    /// Target rate in records per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many lines.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Skip this many lines first.
    #[arg(long, default_value_t = 0)]
    pub skip: u64,
    /// Give each record its event time (`ts`) as its Kafka timestamp (CreateTime), as a feed
    /// replayed from history carries it, instead of the time of producing. A line whose time
    /// cannot be read gets the previous record's, so timestamps stay in stream order. The
    /// topic then needs `retention.ms=-1` (or longer than the stream's age), or the broker
    /// deletes it.
    #[arg(long)]
    pub event_time: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProduceSummary {
    pub records: u64,
    /// Lines whose account could not be read: produced with an empty key.
    pub unkeyed: u64,
    pub seconds: f64,
    pub records_per_second: f64,
}

/// Counts records librdkafka gave up on (after `message.timeout.ms` of retries, or a fatal
/// idempotence error), so that a load never loses records silently.
#[derive(Default)]
struct DeliveryCount {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCount {}

impl ProducerContext for DeliveryCount {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                *self.first_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
        }
    }
}

/// The Kafka key of a line (its `account`, read through the `[input]` mapping, when one can be
/// read, else empty) and its event time, when it decodes.
fn key_and_time(decoder: &InputDecoder, line: &[u8]) -> (Vec<u8>, Option<i64>) {
    if let Decoded::Record(tx) = decoder.decode(line) {
        return (tx.account.as_bytes().to_vec(), Some(tx.ts_ms));
    }
    let key = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("account").and_then(|a| a.as_str()).map(|s| s.as_bytes().to_vec()))
        .unwrap_or_default();
    (key, None)
}

/// Produce every line of `opts.input` to the topic (key = account, value = the line).
pub fn produce(config: &Config, opts: &ProduceOptions) -> Result<ProduceSummary, KafkaError> {
    let topic = opts.topic.clone().unwrap_or_else(|| config.kafka.input_topic.clone());
    let mut pc = client_config(&config.kafka.brokers, &config.kafka.client, Role::Producer)?;
    if pc.get("enable.idempotence").is_none() {
        pc.set("enable.idempotence", "true");
    }
    if pc.get("linger.ms").is_none() {
        pc.set("linger.ms", "10");
    }
    // A refused TLS/SASL login fails here with its reason, not as a flush timeout.
    check_connection(
        &config.kafka.brokers,
        &config.kafka.client,
        Instant::now() + Duration::from_secs(30),
        || false,
    )?;
    // librdkafka delivers or fails every record within message.timeout.ms (retrying through
    // broker restarts meanwhile): the final flush waits that long, and a little more.
    let message_timeout_ms: u64 = pc
        .get("message.timeout.ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let producer: ThreadedProducer<DeliveryCount> = pc.create_with_context(DeliveryCount::default())?;
    // Keyed by account as the service's default `[input] keyed_by = "account"` checks, also
    // for a mapped feed (a Debezium dump keeps its value, and gets its account as key).
    let decoder = config
        .input
        .decoder()
        .map_err(|e| KafkaError::Other(format!("[input]: {e}")))?;
    let file = std::fs::File::open(&opts.input).map_err(|e| KafkaError::Io(opts.input.display().to_string(), e))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let started = Instant::now();
    let mut summary = ProduceSummary::default();
    let per = opts.rate.filter(|r| *r > 0.0).map(|r| 1.0 / r);
    let mut last_ts: Option<i64> = None;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| KafkaError::Io(opts.input.display().to_string(), e))?;
        if (i as u64) < opts.skip {
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if opts.limit.is_some_and(|l| summary.records >= l) {
            break;
        }
        if let Some(per) = per {
            let due = Duration::from_secs_f64(per * summary.records as f64);
            let now = started.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let (key, ts) = key_and_time(&decoder, line);
        if key.is_empty() {
            summary.unkeyed += 1;
        }
        let mut rec = BaseRecord::to(&topic).key(&key[..]).payload(line);
        if opts.event_time {
            // Not "now" for an unreadable line: one record stamped months after its
            // neighbours would make the service's rebuilds start at it.
            last_ts = ts.or(last_ts);
            if let Some(ts) = last_ts {
                rec = rec.timestamp(ts);
            }
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        summary.records += 1;
    }
    let flush_started = Instant::now();
    producer.flush(Duration::from_millis(message_timeout_ms) + Duration::from_secs(30))?;
    if flush_started.elapsed() > Duration::from_secs(10) {
        warn!(
            seconds = flush_started.elapsed().as_secs_f64(),
            "the last records took long to deliver (broker unavailable?)"
        );
    }
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = ctx
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(KafkaError::Other(format!(
            "{failed} of {} records were not delivered to {topic} (first error: {first})",
            summary.records
        )));
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.records_per_second = summary.records as f64 / summary.seconds.max(1e-9);
    info!(records = summary.records, topic = %topic, "produced");
    Ok(summary)
}
