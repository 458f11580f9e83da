//! `fundwatch-kafka`: the Kafka service behind `fundwatch run`, plus `produce` (load a JSON
//! Lines file into a topic) and `demo` (the whole path on an in-process mock cluster).
//!
//! # Shape
//!
//! One consumer-group member reads `kafka.input_topic` (or, with `[input] keyed_by = "other"`,
//! the re-key topic, point 10) on a dedicated blocking thread
//! ([`Service::run`]). Every assigned partition gets its own [`fundwatch_engine::Engine`]:
//! the record key is the account, so an account lives in exactly one partition and the
//! engine sees its records in partition order. Records are taken from the consumer in batches
//! (what it has queued, up to 4096); a batch's partitions are decoded and run through their
//! engines in parallel on `--threads` threads (a partition's records in offset order on one
//! thread), then the polling thread sends their alerts and dead letters, partition by
//! partition in record order. Batches are joined before anything else happens (commit,
//! rebalance callback, reset, reload), and records polled before a rebalance callback are
//! dropped, so every step below sees records wholly processed or not at all, exactly as if
//! they were processed one at a time. Alerts (key = account, value = the spec's
//! alert JSON) go to `kafka.alert_topic`, rejected records (original bytes, reason in
//! headers) to `kafka.dead_letter_topic`, and the consumed offsets are committed, all in one
//! producer transaction every `kafka.commit_interval` (or every `--commit-records`).
//! Offsets are committed with `send_offsets_to_transaction(consumer.group_metadata())`
//! (KIP-447), so a member that lost its partitions in a rebalance cannot commit for them.
//! Offsets are never committed any other way (`enable.auto.commit=false`).
//! With `[cases]` on, the engines' account traces go to `kafka.trace_topic` in the same
//! transactions, and a case linker thread in every instance links them into cases (point 9).
//!
//! # Exactly-once argument
//!
//! Let C be the offset committed for a partition in transaction T, with metadata recording
//! the largest Kafka timestamp and event time seen below C and the offsets where the engine
//! was flushed (drain mode only).
//! 1. Everything the engine emitted while processing records `< C` was produced in T or an
//!    earlier committed transaction (a batch is processed, and its alerts sent, before the
//!    polling thread does anything else; a transaction commits the positions reached
//!    *after* their records' alerts were sent). Nothing emitted for records `>= C` is in a committed transaction.
//! 2. Records still held in the engine's reorder buffer at C were consumed but their alerts
//!    not yet emitted. We deliberately do NOT commit "the oldest held offset": we commit the
//!    consumed position C and rebuild. The engine decides `emit` at *release* time, not at
//!    arrival, and a rebuild replays `O..C` (O = first offset with Kafka timestamp ≥
//!    min(timestamp, event time at C) − max(max_history, longest rule horizon) − 2×lateness)
//!    with `set_emit(false)`: replay of the same records in the same order leaves the
//!    rebuilt engine in the dead engine's state at C (windows, episode cooldowns, large-value
//!    day totals) *including the same held records*, which are still unreleased when emit
//!    is switched on at C. They are released, and emitted, exactly when the dead engine
//!    would have released them. Records before O are outside every rule horizon.
//!    This is the fallback. The normal start is from a checkpoint (8), which makes the state
//!    exact whatever came before O. The fallback replays the lookback L = max(max_history,
//!    longest rule horizon, longest cooldown) and does not trust the cooldowns it infers:
//!    an alert raised before O whose evidence reached back before O cannot be re-derived, so
//!    the rebuild would miss its cooldown (and raise again inside it) or raise at another
//!    time (and silence a real alert later). Before going live it reads the behavioural
//!    alerts committed on the alert topic since the Kafka time of O (less 10 minutes of
//!    skew) and sets every account's cooldowns from them: quiet until the last alerted
//!    trigger + cooldown, for each rule. Those alerts are exactly the committed episodes
//!    of records `< C` (1), so the cooldowns are the dead owner's. When the alert topic's
//!    retention has deleted alerts that may matter, the read-back only raises cooldowns and
//!    the service says so; when the input's retention has deleted records the lookback
//!    needs, it says so in the log, `fundwatch_state_incomplete` and `/readyz`.
//! 3. Hence the alerts emitted by the new owner after C are exactly the ones the dead owner
//!    would have emitted after C, and `alert_id` is deterministic: committed(before C) ∪
//!    emitted(after C) = the uninterrupted stream's alerts, each once. Aborted transactions
//!    (failure, fencing, rebalance before commit) are invisible to `read_committed`
//!    readers, and the instance that aborted throws its engines away and rebuilds from the
//!    last committed offset, so its state again matches what was committed.
//! 4. Dead letters are produced only for records processed live (`>= C`), in the same
//!    transactions, so each rejected record is dead-lettered exactly once too.
//! 5. Drain mode (`--exit-when-idle`) flushes the reorder buffer at the end of input; the
//!    flush offset is stored in the commit metadata and a rebuild flushes (emit off) at the
//!    same offset, so even a flushed partition rebuilds to the identical state.
//! 6. Hung transactions. A broker can record a transaction as committed without writing its
//!    markers: a single-node broker shutting down takes the leaders of its partitions away
//!    (leader -1) while it still answers, and its coordinator skips markers for leaderless
//!    partitions. The transaction's records and offsets then stay pending: neither committed
//!    nor aborted. A marker ends everything a producer id has pending on a partition, so the
//!    next transaction of the same producer id decides its fate on the partitions it touches.
//!    Committing it would commit the hung records only where it writes, and leave them hung
//!    elsewhere; aborting it would end the hung offsets but not the hung records elsewhere.
//!    So after any broker connection failure the service sends no offsets until a commit has
//!    read the group's committed offsets as stable (the last transaction was not hung),
//!    aborting and rebuilding while they do not, and a rebuild whose committed-offset read
//!    times out checks whether the coordinator answers without `require_stable`. Either way,
//!    offsets that only an unstable read returns, while nothing of ours is open, mean a hung
//!    (or another producer's open) transaction, and the service aborts what its producer id
//!    has pending: a transaction with a filler record on every partition of the alert,
//!    dead-letter, trace and office topics (delivered first) and then offsets for the group, aborted. The hung
//!    transaction is thereby aborted on every partition it can have touched, the committed
//!    offsets are again the ones before it, and every partition is rebuilt from them as in 3.
//!    If the stable offsets are then below this instance's last commit, that transaction was
//!    the hung one and its counts leave the run summary (its alerts come again).
//!    (Offsets pending from *another* producer id cannot be ended this way; the service
//!    retries until that transaction times out.) The filler records are aborted, so
//!    read_committed readers never see them. The broker may have written some of the hung
//!    transaction's commit markers before the leaders went (seen: an alert partition
//!    committed, the group's offsets hung): those alerts are committed, and rebuilding from
//!    the offsets before them emits them again. So before any partition goes live after
//!    such an abort, the service reads back, read_committed, the alert and dead-letter topics
//!    from the oldest committed position's Kafka timestamp (less 10 minutes for clock skew)
//!    and does not send an alert whose `alert_id` is already there, nor a dead letter whose
//!    source partition and offset are: alert ids are deterministic (rule, account,
//!    triggering record, config version), so such an alert is the one already committed.
//!    With replicated partitions leaders move on shutdown and all markers are written.
//!    Not covered: an
//!    instance killed before its next commit, whose hung offsets are then ended by the
//!    broker aborting its next (timed-out) transaction; its hung records on output
//!    partitions stay pending (readers stop there; another producer id cannot end them), and
//!    if the same instance id later commits on such a partition they are committed with it,
//!    duplicating alerts that the partition's new owner emitted again.
//! 7. A wedged producer. librdkafka 2.12's `send_offsets_to_transaction` waits for its reply
//!    without a deadline and was seen never to return after a broker restart. The call runs
//!    on a helper thread; past its timeout plus 30 s it is abandoned and the producer is
//!    replaced as after a fatal error (3). The replacement's `init_transactions` bumps the
//!    epoch, which aborts the open transaction and fences the old producer, so nothing the
//!    abandoned call may still do can commit.
//!
//! 8. Checkpoints (`checkpoints.rs`, `service/checkpointing.rs`). At a commit, a partition
//!    whose state changed and whose `kafka.checkpoint_interval` passed (and every changed one
//!    at shutdown, revoke and the end of a drained input) has its engine state written to
//!    the compacted `kafka.state_topic` in the same transaction as its offset K (its offset is
//!    sent even if unchanged, so KIP-447 fences the checkpoint with it). The checkpoint is
//!    committed iff K is, and holds the state after records `< K` exactly (commits happen
//!    between batches). A new owner with committed offset C ≥ K restores it and replays
//!    `K..C` with emit off: the same records in the same order from the same state give the
//!    dead owner's state at C, reorder buffer, windows, cooldowns and episodes included, and
//!    from there 3 applies. Sealed window segments and full dictionary chunks are written
//!    once (immutable objects); each checkpoint rewrites only the head (open segment and the
//!    per-account state) and tombstones what is evicted. A checkpoint is not used under
//!    another config's thresholds, past C, with an object missing or corrupt, or when K is
//!    below the input's log start: then the rebuild of 2 runs.
//!
//! 9. Traces and the case linker (`service/linker.rs`). With `[cases] enabled` (default)
//!    every engine keeps ledgers of the accounts in play (they are in its checkpoint) and
//!    emits [`fundwatch_engine::AccountTrace`]s while emit is on; they go to the compacted,
//!    single-partition `kafka.trace_topic` (key = account) in the same transaction as the
//!    partition's alerts, in record order. By 1–3 and 8 the committed traces are exactly the
//!    uninterrupted engines' traces, each once (a duplicate, which only the read-back of 6
//!    could leave, is harmless: the linker ignores a trace whose `seq` is not newer).
//!    Each instance also runs a linker on its own thread: a read_committed consumer of the
//!    trace topic in the group `<group_id>.cases`, and a transactional producer whose id,
//!    `<transactional_id_prefix>-<group_id>-cases`, is the same in every instance. The
//!    trace topic has one partition, so one linker is active; the others stand by and take
//!    over through the group. Taking over, a linker first calls `init_transactions`, which
//!    fences the previous active linker and aborts its open transaction; then it reads the
//!    group's committed offset T (stable), and the trace topic from the beginning to T with
//!    emit off, as one `apply_all`; then from T to the end as its first live batch, then a
//!    batch per `kafka.commit_interval`. A batch's case versions (to `kafka.case_topic`,
//!    key = case id), linked alerts (to the alert topic, header `fundwatch.source = linker`),
//!    office records (`[routing]`) and the consumed offset are one transaction, with
//!    `send_offsets_to_transaction(group metadata)`, so a fenced or revoked linker commits
//!    nothing. Why this is exactly-once: a case is a pure function of its accounts' latest
//!    traces (crate `fundwatch-cases`), and the latest trace of every account below T is still
//!    on the compacted topic (compaction keeps the newest record per key, and an account's
//!    traces reach the topic in `seq` order: they come from the one engine partition owning it,
//!    and a new owner emits only what the old one did not commit). So the restored linker holds
//!    the cases the dead one held at T, whose outputs are committed, and what it emits after T
//!    is what the dead one would have. `apply_all` over a batch writes each changed case
//!    once, at its final state: the intermediate states compaction may have removed are never
//!    needed. The last committed version of every case is therefore the uninterrupted
//!    linker's final version; the intermediate versions, and `version` itself (the sum of the
//!    accounts' trace numbers, bumped past the last version written), may differ from replay's,
//!    which writes after every trace. A linked alert is raised once per account and first
//!    finding (deterministic id); one raised by an intermediate state the restore does not see
//!    again would be raised again later, so the restoring linker reads back the linked alerts
//!    committed on the alert topic and does not send those again. Linked alerts are not the
//!    engine's episodes: the cooldown read-back of 2 skips them (replay's engine never sees
//!    them either). Limits: a rebuild without a checkpoint (2) rebuilds ledgers from the
//!    lookback only, so its traces restart their numbering and the linker ignores them until
//!    they pass the old numbers (keep checkpoints on); and a case opened only by traces that
//!    compaction later removed below T cannot be closed by a restored linker that never saw it.
//!    Scale: the linker reads only traces — a few per account in play per day, a few kilobytes
//!    each — never transactions, so one active linker per group keeps up with many engine
//!    instances; the state it holds is the latest trace per account in play.
//!    Engine alerts go, in the engines' transactions, also to the office topic that
//!    `route_alert` names; cases and linked alerts go to theirs in the linker's.
//!
//! 10. Keys (`keys.rs`, `service/rekey.rs`). Everything above needs each account on one
//!     partition. With `[input] keyed_by = "account"` (default) every live record's Kafka key
//!     is compared with its decoded account; misrouted ones are counted, and once they exceed
//!     `max_misrouted_share` of the live records (at least 1,000 counted) the batch is not sent,
//!     the open transaction is aborted and the service stops with an error naming
//!     `keyed_by = "other"`. With `keyed_by = "other"` a re-key stage runs in every instance:
//!     group `<group_id>.rekey` on the input topic (read_committed), a transactional producer
//!     `<prefix>-<group_id>.rekey-<instance>`, and one transaction per `commit_interval` holding
//!     the records it wrote to the re-key topic (unchanged, key = account, same Kafka
//!     timestamp), the dead letters of undecodable records and the input offsets after the
//!     records written (`send_offsets_to_transaction`, so a revoked or fenced stage commits
//!     nothing). Records consumed but still held by its merge are not below those offsets. A
//!     restart, rebalance or abort re-reads from the committed offsets (a restart's
//!     `init_transactions` first aborts what the dead stage had open), so each committed input
//!     record is on the re-key topic once, in an order that depends on the input only (the
//!     merge by event time, `rekey.rs`). Detection reads the re-key topic read_committed as
//!     it would an input topic keyed by account, so 1–9 apply to it unchanged.
//!
//! Assumption: Kafka record timestamps of a partition are roughly non-decreasing
//! (CreateTime set by producers, or LogAppendTime); a record whose Kafka timestamp is much
//! later than records after it could make the rebuild start too late. Without metadata in
//! the committed offset (first start, or offsets written by another tool), the rebuild
//! starts at the beginning of the partition.

mod checkpoints;
mod client;
mod committed_output;
mod demo;
mod keys;
mod liveness;
mod metrics;
mod produce;
mod reload;
mod service;
mod topics;

use std::path::PathBuf;
use std::time::Duration;

pub use client::{check_connection, check_env, client_config, expand_env, Role as ClientRole};
/// Read-back of the committed output after a hung transaction; public for its integration test.
#[doc(hidden)]
pub use committed_output::{read as read_committed_output, CommittedOutput};
pub use demo::{demo, DemoOptions, DemoSummary};
pub use metrics::Metrics;
pub use produce::{produce, ProduceOptions, ProduceSummary};
pub use service::{run, RunSummary, Service, Shutdown, FETCH_QUEUE_BACKOFF_MS};

/// Errors of the Kafka service.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka.client.\"{key}\": environment variable {var} is not set")]
    MissingEnv { key: String, var: String },
    /// TLS or SASL refused: librdkafka would retry it forever, so the service stops.
    #[error("kafka: cannot connect securely to {brokers}: {reason} (check the TLS/SASL settings in [kafka.client])")]
    Security { brokers: String, reason: String },
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// `[input] keyed_by = "account"`, but more records than `max_misrouted_share` allows
    /// carry a Kafka key that is not their account.
    #[error(
        "the input topic {topic} is not keyed by account: {misrouted} of the {seen} live records read carry a Kafka key that is not their account (the first: {example}), more than [input] max_misrouted_share = {share} allows (counted over at least 1,000 records). An account's records then spread over partitions and the per-account rules miss what they do together. Set [input] keyed_by = \"other\" to have the service re-key the topic by account (README: \"Connect your core banking feed\"), or key the topic by account. The open transaction was aborted; {committed} misrouted record(s) had been committed before it"
    )]
    Misrouted {
        topic: String,
        misrouted: u64,
        seen: u64,
        share: f64,
        example: String,
        committed: u64,
    },
    #[error("cannot listen on {0}: {1}")]
    Listen(String, String),
    #[error("{0}")]
    Other(String),
}

/// Options of `fundwatch run` beyond the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunOptions {
    /// This instance's id, appended to `kafka.transactional_id_prefix` and the group id to
    /// form the transactional id. Must be stable across restarts of one instance (a restart
    /// then fences and aborts the dead instance's open transaction at once) and unique among
    /// the running instances. Default: $FUNDWATCH_INSTANCE_ID, else the host name.
    #[arg(long)]
    pub instance_id: Option<String>,
    /// Batch mode: once every assigned partition has been read to its end and nothing new
    /// arrived for this many milliseconds, release the records still held for lateness,
    /// commit and exit. Without it the service runs until SIGTERM/SIGINT.
    #[arg(long, value_name = "MS")]
    pub exit_when_idle_ms: Option<u64>,
    /// Also commit after this many records, whatever `commit_interval` says (0 = never by count).
    /// Bounds a transaction's size on a fast stream; not lower, as back-to-back transactions
    /// measured ~85 ms per commit against ~30 ms for ones `commit_interval` apart.
    #[arg(long, default_value_t = 200_000)]
    pub commit_records: usize,
    /// Threads that decode records and run the partitions' engines (default: the number of
    /// CPUs, at most 8; 1 = everything on the polling thread).
    #[arg(long)]
    pub threads: Option<usize>,
    /// At-least-once instead of exactly-once: no producer transaction; offsets are
    /// committed by the consumer after the producer flushed. For brokers without
    /// transaction support.
    #[arg(long)]
    pub no_transactions: bool,
    /// Address for /metrics, /healthz, /readyz instead of `service.listen`; "off" disables.
    #[arg(long)]
    pub listen: Option<String>,
    /// The config file the service was started with (`fundwatch run --config`): re-read when
    /// its content changes or on SIGHUP, and applied live when valid. None: no reload.
    #[arg(skip)]
    pub config_path: Option<PathBuf>,
    /// How often to check the config file for a change, in ms (default 1000; 0: only on SIGHUP).
    #[arg(long, value_name = "MS")]
    pub config_poll_ms: Option<u64>,
}

impl RunOptions {
    pub fn exit_when_idle(&self) -> Option<Duration> {
        self.exit_when_idle_ms.map(Duration::from_millis)
    }

    /// Interval of the config file check; None when only SIGHUP reloads.
    pub fn config_poll(&self) -> Option<Duration> {
        match self.config_poll_ms {
            None => Some(reload::DEFAULT_POLL),
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
        }
    }
}
