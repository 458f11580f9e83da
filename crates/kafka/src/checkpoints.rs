//! Checkpoints of each partition's engine state in a compacted Kafka topic (`kafka.state_topic`),
//! written inside the same transactions as the alerts and the consumed offsets.
//!
//! # Layout
//!
//! Input partition `p` keeps its state on state-topic partition `p % n` under keys that start
//! with `fw1/<group>/<input topic>/<p>/`:
//! - `o/<name>/<i>`: chunk `i` of an immutable object of the engine's checkpoint (a sealed
//!   window segment as Arrow IPC, a full dictionary chunk). Written once, when the engine
//!   first lists it; tombstoned once no checkpoint needs it (evicted).
//! - `h/<i>`: chunk `i` of the head: the open segment and every mutable piece of state.
//!   Rewritten at each checkpoint.
//! - `m`: the manifest, JSON: the input offset the state belongs to (records below it are in
//!   it), the state fingerprint of the config, every object and the head with chunk count,
//!   length and xxh3 hash, the drain-mode flush points already applied, and the largest Kafka
//!   and event timestamps below the offset.
//!
//! Chunks are at most [`CHUNK_BYTES`], under every broker's default `max.message.bytes`. The
//! topic is compacted, so only the newest value of each key stays, and a restore reads the
//! partition from its start to its last stable offset.
//!
//! # Why this keeps exactly-once
//!
//! A checkpoint of partition `p` is produced in the transaction that also commits `p`'s consumed
//! offset `K` (KIP-447: the transaction commits only if this member still owns `p` in the
//! current group generation, so a zombie cannot write one), so it is committed exactly when
//! that offset is, and it holds the engine state after records `< K`: commits happen between
//! batches, when every record below the position is wholly processed. Later transactions
//! move the committed offset `C` past `K` without a checkpoint. A new owner reads the newest
//! committed manifest (read_committed: aborted checkpoints are invisible), restores the engine
//! and replays `K..C` with emit off. The engine is deterministic and `K..C` are the same
//! records in the same order, so it reaches the dead owner's state at `C`, including its
//! reorder buffer, cooldowns and episodes, and goes live at `C` as in the rebuild argument of
//! the crate doc. A manifest is not used when its fingerprint is not the running config's
//! (thresholds changed), when `K > C` (offsets reset backwards by an operator), when an object
//! is missing or its hash differs, or when `K` is below the input's log start; the partition
//! then rebuilds from the input topic (the fallback in `service/assignment.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundwatch_engine::Engine;
use fundwatch_rules::Config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::committed_output::QuietEof;
use crate::KafkaError;

/// Largest chunk value: below the 1 MB default `max.message.bytes` of brokers and producers,
/// with room for the key and headers.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// Manifest format.
const MANIFEST_VERSION: u32 = 1;

/// Length, chunk count and hash of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjMeta {
    pub chunks: u32,
    pub len: u64,
    /// xxh3-64 of the whole object, hex.
    pub xxh3: String,
}

impl ObjMeta {
    fn of(bytes: &[u8]) -> ObjMeta {
        ObjMeta {
            chunks: bytes.len().div_ceil(CHUNK_BYTES).max(1) as u32,
            len: bytes.len() as u64,
            xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)),
        }
    }
}

/// What a checkpoint's manifest says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub v: u32,
    /// Checkpoints of this partition so far (1, 2, …).
    pub seq: u64,
    /// The input offset the state belongs to: records below it are in it.
    pub offset: i64,
    /// [`Engine::state_fingerprint`] of the config it was made under, hex.
    pub fingerprint: String,
    pub config_version: String,
    /// Largest Kafka timestamp and event time below `offset`.
    pub kts: i64,
    pub ets: i64,
    /// Drain-mode flush points already applied to this state.
    #[serde(default)]
    pub flushes: Vec<i64>,
    pub head: ObjMeta,
    pub objects: BTreeMap<String, ObjMeta>,
    /// The state lacks records the input's retention deleted (carried until it no longer matters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<StoredGap>,
    /// Rows held in the windows, for operators.
    pub held_rows: u64,
    /// Wall clock at writing (ms), for operators.
    pub written_at_ms: i64,
}

/// What a state built without some deleted records lacks (see `service::partition::Gap`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredGap {
    pub message: String,
    pub until_ets: i64,
}

/// Checkpoint settings of a run.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    pub topic: String,
    /// Partitions of the state topic.
    pub partitions: i32,
    /// Longest time between checkpoints of a live partition.
    pub interval: Duration,
    /// `fw1/<group>/<input topic>`.
    prefix: String,
}

/// One partition's checkpoint bookkeeping: what is committed on the state topic.
#[derive(Debug, Clone, Default)]
pub struct PartCheckpoint {
    /// Immutable objects a committed checkpoint holds (name → meta).
    pub written: BTreeMap<String, ObjMeta>,
    /// Keys under the partition's prefix holding a committed value (tombstoned when unneeded).
    pub keys: BTreeSet<String>,
    pub seq: u64,
    /// When the last checkpoint committed (None: never in this run; due at the next commit).
    pub last: Option<Instant>,
    /// Offset and newest flush point of the last committed checkpoint: an unchanged state is
    /// not written again.
    pub at: Option<(i64, Option<i64>)>,
    /// What the open transaction writes, applied when it commits.
    pub pending: Option<Written>,
}

/// What one checkpoint wrote, applied to [`PartCheckpoint`] when its transaction commits.
#[derive(Debug, Clone)]
pub struct Written {
    pub written: BTreeMap<String, ObjMeta>,
    pub keys: BTreeSet<String>,
    pub seq: u64,
    pub bytes: u64,
    pub at: (i64, Option<i64>),
}

impl PartCheckpoint {
    /// The open transaction committed.
    pub fn committed(&mut self) -> Option<u64> {
        let w = self.pending.take()?;
        self.written = w.written;
        self.keys = w.keys;
        self.seq = w.seq;
        self.last = Some(Instant::now());
        self.at = Some(w.at);
        Some(w.bytes)
    }
}

/// The records one checkpoint sends: (key, value; None = tombstone).
pub type Records = Vec<(String, Option<Vec<u8>>)>;

/// Where the engine's state stands when a checkpoint is taken.
pub struct At<'a> {
    pub offset: i64,
    pub kts: i64,
    pub ets: i64,
    pub flushes: &'a [i64],
    pub gap: Option<StoredGap>,
}

impl Checkpointer {
    pub fn new(topic: &str, partitions: i32, interval: Duration, group: &str, input_topic: &str) -> Checkpointer {
        Checkpointer {
            topic: topic.to_owned(),
            partitions: partitions.max(1),
            interval,
            prefix: format!("fw1/{group}/{input_topic}"),
        }
    }

    /// State-topic partition of input partition `p`.
    pub fn state_partition(&self, p: i32) -> i32 {
        p.rem_euclid(self.partitions)
    }

    fn part_prefix(&self, p: i32) -> String {
        format!("{}/{p}/", self.prefix)
    }

    /// Whether a partition at `offset` (newest flush point `flush`) is due a checkpoint:
    /// its state changed since the last one, and the interval has passed (or `force`).
    pub fn due(&self, ck: &PartCheckpoint, offset: i64, flush: Option<i64>, force: bool) -> bool {
        ck.at != Some((offset, flush)) && (force || ck.last.is_none_or(|t| t.elapsed() >= self.interval))
    }

    /// The records of a checkpoint of `engine` at `at`, and the bookkeeping to apply once
    /// they commit (set as `ck.pending`).
    pub fn records(&self, p: i32, ck: &mut PartCheckpoint, engine: &Engine, config: &Config, at: At<'_>) -> Records {
        let prefix = self.part_prefix(p);
        let cp = engine.checkpoint(&|name| ck.written.contains_key(name));
        let mut out: Records = Vec::new();
        let mut keys = BTreeSet::new();
        let mut written = BTreeMap::new();
        let mut bytes = 0u64;
        let mut put = |key: String, value: &[u8], out: &mut Records, keys: &mut BTreeSet<String>| {
            bytes += value.len() as u64;
            keys.insert(key.clone());
            out.push((key, Some(value.to_vec())));
        };
        for (name, data) in &cp.objects {
            let meta = ObjMeta::of(data);
            for (i, chunk) in chunks(data).enumerate() {
                put(format!("{prefix}o/{name}/{i}"), chunk, &mut out, &mut keys);
            }
            written.insert(name.clone(), meta);
        }
        for name in &cp.needs {
            if written.contains_key(name) {
                continue;
            }
            if let Some(meta) = ck.written.get(name) {
                for i in 0..meta.chunks {
                    keys.insert(format!("{prefix}o/{name}/{i}"));
                }
                written.insert(name.clone(), meta.clone());
            }
        }
        let head = ObjMeta::of(&cp.head);
        for (i, chunk) in chunks(&cp.head).enumerate() {
            put(format!("{prefix}h/{i}"), chunk, &mut out, &mut keys);
        }
        let seq = ck.seq + 1;
        let manifest = Manifest {
            v: MANIFEST_VERSION,
            seq,
            offset: at.offset,
            fingerprint: format!("{:016x}", Engine::state_fingerprint(config)),
            config_version: fundwatch_engine::config_version(config),
            kts: at.kts,
            ets: at.ets,
            flushes: at.flushes.to_vec(),
            gap: at.gap,
            head,
            objects: written.clone(),
            held_rows: engine.state_size().0,
            written_at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let json = serde_json::to_vec(&manifest).unwrap_or_default();
        put(format!("{prefix}m"), &json, &mut out, &mut keys);
        // Whatever was stored and is not part of this checkpoint goes: evicted segments,
        // a longer head, objects of a state this partition no longer descends from.
        for key in ck.keys.difference(&keys) {
            out.push((key.clone(), None));
        }
        ck.pending = Some(Written {
            written,
            keys,
            seq,
            bytes,
            at: (at.offset, at.flushes.last().copied()),
        });
        out
    }

    /// Read the committed state of input partitions `parts` (newest value per key).
    pub fn load(
        &self,
        reader: &ClientConfig,
        parts: &[i32],
        timeout: Duration,
    ) -> Result<BTreeMap<i32, Stored>, KafkaError> {
        let deadline = Instant::now() + timeout;
        let mut by_state: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in parts {
            by_state.entry(self.state_partition(*p)).or_default().push(*p);
        }
        let mut out: BTreeMap<i32, Stored> = parts.iter().map(|p| (*p, Stored::default())).collect();
        let prefixes: Vec<(i32, String)> = parts.iter().map(|p| (*p, self.part_prefix(*p))).collect();
        let state_partitions: Vec<i32> = by_state.keys().copied().collect();
        read_partitions(reader, &self.topic, &state_partitions, deadline, |key, value| {
            let Some((p, prefix)) = prefixes.iter().find(|(_, pre)| key.starts_with(pre.as_str())) else {
                return;
            };
            let Some(st) = out.get_mut(p) else { return };
            let rel = key[prefix.len()..].to_owned();
            match value {
                Some(v) => {
                    st.values.insert(rel, v.to_vec());
                }
                None => {
                    st.values.remove(&rel);
                }
            }
        })?;
        for (p, st) in out.iter_mut() {
            let prefix = self.part_prefix(*p);
            st.keys = st.values.keys().map(|k| format!("{prefix}{k}")).collect();
        }
        Ok(out)
    }
}

fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    // An empty object still has one (empty) chunk, so that its key exists.
    let n = data.len().div_ceil(CHUNK_BYTES).max(1);
    (0..n).map(move |i| &data[(i * CHUNK_BYTES).min(data.len())..((i + 1) * CHUNK_BYTES).min(data.len())])
}

/// One input partition's committed values on the state topic, keys relative to its prefix.
#[derive(Debug, Default)]
pub struct Stored {
    pub values: HashMap<String, Vec<u8>>,
    /// Full keys present (for tombstoning what a new checkpoint no longer needs).
    pub keys: BTreeSet<String>,
}

/// Why a stored checkpoint is not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("no checkpoint")]
    None,
    #[error("manifest unreadable: {0}")]
    Manifest(String),
    #[error("made under another config (fingerprint {found}, running {running})")]
    OtherConfig { found: String, running: String },
    #[error("checkpoint at offset {checkpoint} is past the committed offset {committed} (offsets reset?)")]
    AheadOfCommitted { checkpoint: i64, committed: i64 },
    #[error("object {0}: {1}")]
    Object(String, String),
    #[error("engine state: {0}")]
    Engine(String),
}

/// A restored engine and the manifest it came from.
pub struct Restored {
    pub engine: Engine,
    pub manifest: Manifest,
    pub ck: PartCheckpoint,
}

impl Stored {
    pub fn manifest(&self) -> Result<Manifest, Unusable> {
        let raw = self.values.get("m").ok_or(Unusable::None)?;
        let m: Manifest = serde_json::from_slice(raw).map_err(|e| Unusable::Manifest(e.to_string()))?;
        if m.v != MANIFEST_VERSION {
            return Err(Unusable::Manifest(format!(
                "format {} (this build reads {MANIFEST_VERSION})",
                m.v
            )));
        }
        Ok(m)
    }

    fn object(&self, key: &str, meta: &ObjMeta) -> Result<Vec<u8>, String> {
        let mut data = Vec::with_capacity(meta.len as usize);
        for i in 0..meta.chunks {
            let chunk = self
                .values
                .get(&format!("{key}/{i}"))
                .ok_or_else(|| format!("chunk {i} of {} missing", meta.chunks))?;
            data.extend_from_slice(chunk);
        }
        if data.len() as u64 != meta.len || format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&data)) != meta.xxh3 {
            return Err(format!("{} bytes, hash differs from the manifest", data.len()));
        }
        Ok(data)
    }

    /// The engine of the newest checkpoint, if it can be used for a partition whose committed
    /// offset is `committed` under `config`.
    pub fn restore(&self, config: &Arc<Config>, committed: i64) -> Result<Restored, Unusable> {
        let m = self.manifest()?;
        let running = format!("{:016x}", Engine::state_fingerprint(config));
        if m.fingerprint != running {
            return Err(Unusable::OtherConfig {
                found: m.fingerprint,
                running,
            });
        }
        if m.offset > committed {
            return Err(Unusable::AheadOfCommitted {
                checkpoint: m.offset,
                committed,
            });
        }
        let head = self
            .object("h", &m.head)
            .map_err(|e| Unusable::Object("head".into(), e))?;
        let mut objects: HashMap<&str, Vec<u8>> = HashMap::new();
        for (name, meta) in &m.objects {
            let data = self
                .object(&format!("o/{name}"), meta)
                .map_err(|e| Unusable::Object(name.clone(), e))?;
            objects.insert(name.as_str(), data);
        }
        let engine = Engine::restore(config.clone(), &head, &|name: &str| objects.get(name).cloned())
            .map_err(|e| Unusable::Engine(e.to_string()))?;
        let ck = PartCheckpoint {
            written: m.objects.clone(),
            keys: self.keys.clone(),
            seq: m.seq,
            last: None,
            at: Some((m.offset, m.flushes.last().copied())),
            pending: None,
        };
        Ok(Restored {
            engine,
            manifest: m,
            ck,
        })
    }
}

/// Read `partitions` of `topic` from their start to their last stable offsets, read_committed,
/// in one consumer, handing each record's key and value (None: tombstone) to `each`.
fn read_partitions(
    base: &ClientConfig,
    topic: &str,
    partitions: &[i32],
    deadline: Instant,
    mut each: impl FnMut(&str, Option<&[u8]>),
) -> Result<(), KafkaError> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut cc = base.clone();
    cc.set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608");
    if cc.get("group.id").is_none() {
        cc.set("group.id", "fundwatch-state-reader");
    }
    let consumer: BaseConsumer<QuietEof> = cc.create_with_context(QuietEof)?;
    let mut tpl = TopicPartitionList::new();
    let mut open = BTreeSet::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, left())?;
        if high > low {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
            open.insert(*p);
        }
    }
    if open.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    while !open.is_empty() {
        if left().is_zero() {
            return Err(KafkaError::Other(format!(
                "reading checkpoints from {topic}: partitions {open:?} not at their end in time"
            )));
        }
        match consumer.poll(left().min(Duration::from_millis(200))) {
            None => {}
            Some(Ok(msg)) => {
                if let Some(key) = msg.key().and_then(|k| std::str::from_utf8(k).ok()) {
                    each(key, msg.payload());
                }
            }
            Some(Err(RdError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Make sure the state topic exists (created compacted, with as many partitions as the input,
/// if missing) and say so if its cleanup policy would delete checkpoints. Returns its
/// partition count; Err when it neither exists nor can be created.
pub fn ensure_topic(
    admin: &ClientConfig,
    topic: &str,
    input_partitions: i32,
    timeout: Duration,
) -> Result<i32, KafkaError> {
    let client: AdminClient<DefaultClientContext> = admin.create()?;
    let existing = |client: &AdminClient<DefaultClientContext>| -> Result<i32, KafkaError> {
        let md = client.inner().fetch_metadata(Some(topic), timeout)?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32))
    };
    let mut n = existing(&client)?;
    if n == 0 {
        let partitions = input_partitions.max(1);
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1))
            .set("cleanup.policy", "compact")
            .set("segment.bytes", "67108864")
            .set("min.cleanable.dirty.ratio", "0.1");
        let opts = AdminOptions::new().operation_timeout(Some(timeout));
        let res = futures_executor::block_on(client.create_topics([&new], &opts))?;
        for r in res {
            match r {
                Ok(_) => info!(topic, partitions, "created the checkpoint topic (compacted)"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(KafkaError::Other(format!(
                        "checkpoint topic {topic} does not exist and cannot be created ({code}); create it with cleanup.policy=compact, or set kafka.checkpoint_interval = \"0s\" to run without checkpoints"
                    )))
                }
            }
        }
        let until = Instant::now() + timeout;
        while n == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
            n = existing(&client)?;
        }
        if n == 0 {
            return Err(KafkaError::Other(format!(
                "checkpoint topic {topic} created but not visible yet"
            )));
        }
    }
    // Advisory, and a broker without DescribeConfigs (the in-process mock of `demo`) would
    // hold start-up for the whole timeout: a short bound.
    let bound = timeout.min(Duration::from_secs(3));
    if let Some(policy) = crate::topics::topic_config(admin, topic, "cleanup.policy", bound) {
        if !policy.contains("compact") {
            warn!(
                topic,
                cleanup_policy = %policy,
                "the checkpoint topic is not compacted: retention will delete checkpoints (restarts then rebuild from the input topic); set cleanup.policy=compact"
            );
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_object_and_an_empty_one_has_one() {
        let data: Vec<u8> = (0..(CHUNK_BYTES * 2 + 7)).map(|i| i as u8).collect();
        let parts: Vec<&[u8]> = chunks(&data).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), data);
        assert_eq!(ObjMeta::of(&data).chunks, 3);
        assert_eq!(chunks(&[]).count(), 1);
        assert_eq!(ObjMeta::of(&[]).chunks, 1);
    }

    #[test]
    fn state_partitions_wrap() {
        let c = Checkpointer::new("s", 3, Duration::from_secs(1), "g", "in");
        assert_eq!(c.state_partition(4), 1);
        assert_eq!(c.part_prefix(4), "fw1/g/in/4/");
    }

    #[test]
    fn a_stored_object_is_checked_against_its_manifest() {
        let mut st = Stored::default();
        let data = vec![7u8; CHUNK_BYTES + 10];
        let meta = ObjMeta::of(&data);
        st.values.insert("o/x/0".into(), data[..CHUNK_BYTES].to_vec());
        assert!(st.object("o/x", &meta).unwrap_err().contains("chunk 1 of 2 missing"));
        st.values.insert("o/x/1".into(), data[CHUNK_BYTES..].to_vec());
        assert_eq!(st.object("o/x", &meta).unwrap(), data);
        st.values.insert("o/x/1".into(), vec![8u8; 10]);
        assert!(st.object("o/x", &meta).unwrap_err().contains("hash differs"));
        assert!(matches!(st.manifest(), Err(Unusable::None)));
    }
}
