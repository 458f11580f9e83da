//! The consume → detect → produce loop, rebuild on assignment, transactional commits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fundwatch_engine::{Alert, Engine};
use fundwatch_record::decode_json;
use fundwatch_rules::Config;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{debug, error, info, warn};

use crate::client::{check_connection, check_env, client_config, Role};
use crate::committed_output::{self, CommittedOutput};
use crate::liveness::{Liveness, Phase, Watchdog};
use crate::metrics::{HttpServer, Metrics};
use crate::reload::{evaluate, ConfigWatcher, Verdict};
use crate::{KafkaError, RunOptions};

/// Set to stop the service: it stops consuming, commits the open transaction within
/// `service.shutdown_grace` and leaves the group.
#[derive(Clone, Default, Debug)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A token that SIGTERM and SIGINT trigger.
    pub fn on_signals() -> Result<Shutdown, KafkaError> {
        let s = Shutdown::new();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, s.0.clone())
                .map_err(|e| KafkaError::Other(format!("cannot install signal handler: {e}")))?;
        }
        Ok(s)
    }

    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub instance_id: String,
    pub transactional_id: Option<String>,
    /// Records processed live (not counting rebuild replays).
    pub records_consumed: u64,
    /// Records replayed with emit off to rebuild state.
    pub records_replayed: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Alerts in committed transactions.
    pub alerts: u64,
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub transactions_committed: u64,
    pub transactions_aborted: u64,
    pub rebalances: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    /// From the first record polled to the last one (excludes group join and idle wait).
    pub busy_seconds: f64,
    /// (live + replayed records) / busy_seconds.
    pub busy_records_per_second: f64,
    /// Wall time the polling thread spent committing transactions (or offsets).
    pub commit_seconds: f64,
    /// Why it stopped: "idle" (batch mode) or "shutdown".
    pub stopped_by: String,
    /// The config_version running at the end (stamped on the alerts).
    pub config_version: String,
    /// Config reloads by result (applied, refused, unchanged).
    pub config_reloads: BTreeMap<String, u64>,
}

/// Stored with each committed offset (the offset-commit metadata string).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct CommitMeta {
    v: u32,
    /// Largest Kafka timestamp below the offset.
    kts: i64,
    /// Largest event time below the offset.
    ets: i64,
    /// Offsets before which the engine's reorder buffer was flushed (drain mode), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    flush: Vec<i64>,
}

const MAX_FLUSH_POINTS: usize = 32;

/// One assigned partition.
struct Part {
    engine: Engine,
    label: String,
    /// First offset processed live; below it, records rebuild state with emit off.
    live_from: i64,
    live: bool,
    /// Last processed offset + 1 (-1 before the first record).
    next_offset: i64,
    /// Last committed offset (-1 none).
    committed: i64,
    kts: i64,
    ets: i64,
    /// Flush points (from the commit metadata) still to apply during the rebuild.
    pending_flush: Vec<i64>,
    /// All flush points to carry in the metadata.
    flushes: Vec<i64>,
    eof: bool,
    replayed: u64,
}

impl Part {
    fn meta(&self) -> String {
        serde_json::to_string(&CommitMeta {
            v: 1,
            kts: self.kts,
            ets: self.ets,
            flush: self.flushes.clone(),
        })
        .unwrap_or_default()
    }
}

/// Below this many records a batch is processed on the polling thread alone.
const PARALLEL_MIN_RECORDS: usize = 256;
/// Most records taken from the consumer's queue per batch.
const MAX_BATCH: usize = 4096;

/// What processing one partition's records produced, in record order.
#[derive(Default)]
struct PartOut {
    events: Vec<Out>,
    live: u64,
    replayed: u64,
    went_live: bool,
}

enum Out {
    Alert(Box<Alert>),
    /// `index` into the batch.
    Reject {
        index: usize,
        code: &'static str,
        reason: String,
    },
}

/// One partition's share of a batch.
struct Work<'a> {
    partition: i32,
    part: &'a mut Part,
    /// Indexes into the batch, in offset order.
    idx: Vec<usize>,
    out: PartOut,
}

impl Work<'_> {
    fn run<M: Message>(&mut self, msgs: &[M], hist: &prometheus::Histogram) {
        let mut scratch = Vec::new();
        for (n, &i) in self.idx.iter().enumerate() {
            // Timing one record in 16 keeps clock reads off the hot path.
            let started = (n % 16 == 0).then(Instant::now);
            let live = self.part.process(&msgs[i], i, &mut scratch, &mut self.out);
            if let (Some(t), true) = (started, live) {
                hist.observe(t.elapsed().as_secs_f64());
            }
        }
    }
}

impl Part {
    /// Decode one record of this partition and run it through the engine (any thread).
    /// Returns whether it was processed live.
    fn process<M: Message>(&mut self, msg: &M, index: usize, scratch: &mut Vec<Alert>, out: &mut PartOut) -> bool {
        let offset = msg.offset();
        if offset < self.next_offset {
            return false;
        }
        self.eof = false;
        if !self.live {
            Pipeline::apply_flushes(self, offset, scratch);
            if offset >= self.live_from {
                Pipeline::go_live(self, scratch);
                out.went_live = true;
            }
        }
        let live = self.live;
        match decode_json(msg.payload().unwrap_or(&[])) {
            Ok(tx) => {
                self.ets = self.ets.max(tx.ts_ms);
                self.engine.process(&tx, scratch);
            }
            Err(reason) if live => out.events.push(Out::Reject {
                index,
                code: reason.code(),
                reason: reason.to_string(),
            }),
            Err(_) => {}
        }
        if let Some(ts) = msg.timestamp().to_millis() {
            self.kts = self.kts.max(ts);
        }
        self.next_offset = offset + 1;
        if live {
            out.live += 1;
            out.events.extend(scratch.drain(..).map(|a| Out::Alert(Box::new(a))));
        } else {
            self.replayed += 1;
            out.replayed += 1;
            scratch.clear();
        }
        live
    }
}

type AlertHook = Box<dyn FnMut(&Alert) + Send>;

struct Pipeline {
    config: Arc<Config>,
    topic: String,
    alert_topic: String,
    dead_letter_topic: String,
    /// Shared with the helper thread of a bounded `send_offsets_to_transaction`.
    producer: Arc<ThreadedProducer<ProducerCtx>>,
    /// A `send_offsets_to_transaction` never returned: the producer is replaced, not used.
    wedged: bool,
    transactional: bool,
    parts: BTreeMap<i32, Part>,
    in_txn: bool,
    txn_failed: bool,
    needs_reset: bool,
    since_commit: usize,
    last_commit: Instant,
    /// Alerts of the open transaction, handed to the hook once committed.
    txn_alerts: Vec<Alert>,
    txn_rejects: Vec<String>,
    buf: Vec<Alert>,
    metrics: Arc<Metrics>,
    hook: Option<AlertHook>,
    fatal: Option<KafkaError>,
    summary: RunSummary,
    op_timeout: Duration,
    /// To re-create the producer after a fatal error.
    producer_config: rdkafka::ClientConfig,
    shutdown: Shutdown,
    /// Threads that process a batch's partitions.
    threads: usize,
    /// Set by the consumer's error callback when the connection to a broker failed: the first
    /// commit after it checks that the committed offsets are stable (see `abort_hung`).
    outage: Arc<AtomicBool>,
    /// A read_uncommitted consumer of the group (never subscribed): reads committed offsets
    /// without `require_stable`, to tell "offsets unstable" from "coordinator unreachable".
    probe_config: rdkafka::ClientConfig,
    /// What the last committed transaction added to the summary, taken back if that
    /// transaction turns out hung and is aborted.
    last_txn: TxnCounts,
    /// A hung transaction was aborted: the next plan tells whether it was the last one.
    hung_check: bool,
    /// A hung transaction was aborted: before going live again, read back what is already
    /// committed on the output topics (see `committed_output`).
    read_back_pending: bool,
    /// Alerts and dead letters already committed (read back after a hung transaction): not
    /// emitted again.
    committed_output: Option<CommittedOutput>,
    /// The polling loop's beat (for `/healthz`); callbacks and long recoveries beat too.
    liveness: Arc<Liveness>,
    /// A broker connection failed after the last transaction known to be complete: it may be
    /// hung. Until stable offsets prove otherwise, no offsets are sent except by `abort_hung`:
    /// any marker on the group's offsets ends a hung transaction's offsets there, and only
    /// `abort_hung` also ends its records on every output partition.
    suspect: bool,
}

/// Summary counts and offsets of one committed transaction.
#[derive(Default)]
struct TxnCounts {
    alerts: BTreeMap<String, u64>,
    rejects: BTreeMap<String, u64>,
    offsets: BTreeMap<i32, i64>,
}

/// Why planning failed; `unstable` when the committed-offset read itself timed out, which is
/// how pending (unstable) offsets show: librdkafka retries UNSTABLE_OFFSET_COMMIT until then.
#[derive(Debug)]
struct PlanError {
    error: RdError,
    unstable: bool,
}

impl From<RdError> for PlanError {
    fn from(error: RdError) -> PlanError {
        PlanError { error, unstable: false }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

fn timed_out(e: &RdError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
}

fn horizon_ms(config: &Config) -> i64 {
    config.engine.max_history.ms().max(config.rules.longest_horizon().ms())
}

/// How long past its own timeout a `send_offsets_to_transaction` may take before the
/// producer counts as wedged.
const WEDGE_GRACE: Duration = Duration::from_secs(30);

/// `send_offsets_to_transaction` on a helper thread, waited for at most `timeout` plus
/// `WEDGE_GRACE`; None if it has not returned by then. librdkafka 2.12 waits for this call's
/// reply without a deadline of its own (`rd_kafka_txn_op_req1(.., RD_POLL_INFINITE)`,
/// relying on the request chain to time out), and after a broker restart a service was seen
/// blocked there for good (gdb: the polling thread in `rd_kafka_txn_op_req0`). The thread and
/// the producer it holds are then left behind; the caller replaces the producer.
fn send_offsets_bounded(
    producer: &Arc<ThreadedProducer<ProducerCtx>>,
    tpl: &TopicPartitionList,
    cgm: rdkafka::consumer::ConsumerGroupMetadata,
    timeout: Duration,
) -> Option<Result<(), RdError>> {
    let p = producer.clone();
    let offsets = tpl.clone();
    bounded_call("fundwatch-txn-offsets", timeout + WEDGE_GRACE, move || {
        p.send_offsets_to_transaction(&offsets, &cgm, timeout)
    })
    .unwrap_or_else(|e| {
        warn!(error = %e, "cannot start the offsets thread");
        Some(Err(RdError::Canceled))
    })
}

/// Run `f` on a new thread and wait at most `wait` for it: None if it has not returned (the
/// thread is left to finish, or not, on its own); Err if the thread cannot be started.
fn bounded_call<T: Send + 'static>(
    name: &str,
    wait: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = tx.send(f());
    })?;
    Ok(rx.recv_timeout(wait).ok())
}

fn is_retriable(e: &RdError) -> bool {
    match e {
        RdError::Transaction(t) => t.is_retriable(),
        _ => false,
    }
}

fn requires_abort(e: &RdError) -> bool {
    match e {
        RdError::Transaction(t) => t.txn_requires_abort(),
        _ => false,
    }
}

impl Pipeline {
    fn new_part(&self, partition: i32) -> Part {
        Part {
            engine: Engine::new(self.config.clone()),
            label: partition.to_string(),
            live_from: i64::MIN,
            live: true,
            next_offset: -1,
            committed: -1,
            kts: i64::MIN,
            ets: i64::MIN,
            pending_flush: Vec::new(),
            flushes: Vec::new(),
            eof: false,
            replayed: 0,
        }
    }

    /// Where each partition starts and from which offset it goes live.
    fn plan<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Offset, Part)>, PlanError> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.topic, *p);
        }
        let committed = consumer
            .committed_offsets(tpl, self.op_timeout)
            .map_err(|error| PlanError {
                unstable: timed_out(&error),
                error,
            })?;
        let margin = 2 * self.config.engine.allowed_lateness.ms();
        let mut out = Vec::new();
        let mut times = TopicPartitionList::new();
        for el in committed.elements() {
            let p = el.partition();
            let mut part = self.new_part(p);
            match el.offset() {
                Offset::Offset(c) if c > 0 => {
                    part.committed = c;
                    part.live_from = c;
                    part.live = false;
                    match serde_json::from_str::<CommitMeta>(el.metadata()) {
                        Ok(meta) => {
                            part.kts = meta.kts;
                            part.flushes = meta.flush.clone();
                            part.pending_flush = meta.flush;
                            let newest = meta.kts.min(meta.ets);
                            let target = if newest == i64::MIN {
                                0
                            } else {
                                newest.saturating_sub(horizon_ms(&self.config)).saturating_sub(margin)
                            };
                            times.add_partition_offset(&self.topic, p, Offset::Offset(target.max(0)))?;
                            out.push((p, Offset::Beginning, part));
                        }
                        Err(_) => {
                            warn!(
                                partition = p,
                                offset = c,
                                "committed offset has no fundwatch metadata: rebuilding from the beginning"
                            );
                            out.push((p, Offset::Beginning, part));
                        }
                    }
                }
                Offset::Offset(c) => {
                    part.committed = c;
                    out.push((p, Offset::Offset(c), part));
                }
                _ => out.push((p, Offset::Invalid, part)),
            }
        }
        if times.count() > 0 {
            let found = consumer.offsets_for_times(times, self.op_timeout)?;
            for el in found.elements() {
                let Some(entry) = out.iter_mut().find(|(p, _, _)| *p == el.partition()) else {
                    continue;
                };
                let c = entry.2.committed;
                match el.offset() {
                    Offset::Offset(o) if o < c => entry.1 = Offset::Offset(o),
                    Offset::Offset(_) | Offset::End => {
                        // Nothing within the horizon before C: an empty engine is the state.
                        entry.1 = Offset::Offset(c);
                        entry.2.live = true;
                        entry.2.pending_flush.clear();
                    }
                    _ => {}
                }
            }
        }
        for (p, start, part) in &mut out {
            part.pending_flush.retain(|f| match start {
                Offset::Offset(o) => *f > *o,
                _ => true,
            });
            part.flushes.retain(|f| part.pending_flush.contains(f));
            if !part.live {
                self.metrics.partitions_rebuilding.inc();
            }
            info!(partition = *p, start = ?start, live_from = part.live_from, rebuilding = !part.live, "partition planned");
        }
        Ok(out)
    }

    fn on_assign<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        self.liveness.beat(Phase::Rebalancing);
        self.summary.rebalances += 1;
        self.metrics.rebalances.with_label_values(&["assign"]).inc();
        let partitions: Vec<i32> = tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect();
        let mut assign = TopicPartitionList::new();
        match self.plan(consumer, &partitions) {
            Ok(plan) => {
                self.settle_hung_check(&plan);
                // The committed output is read back from the poll loop's reset.
                self.needs_reset |= self.read_back_pending;
                for (p, start, part) in plan {
                    if let Err(e) = assign.add_partition_offset(&self.topic, p, start) {
                        self.fatal = Some(e.into());
                    }
                    self.parts.insert(p, part);
                }
            }
            Err(e) => {
                // Broker unreachable (restarting?): take the partitions now, process nothing
                // ("needs reset") and plan again from the poll loop until it answers, instead
                // of blocking in this callback.
                warn!(error = %e, "cannot plan the assigned partitions yet; retrying from the poll loop");
                for p in &partitions {
                    let part = self.new_part(*p);
                    self.parts.insert(*p, part);
                }
                self.needs_reset = true;
                assign = tpl.clone();
            }
        }
        self.metrics.partitions_assigned.set(self.parts.len() as i64);
        info!(partitions = ?partitions, "partitions assigned");
        let res = if matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative) {
            consumer.incremental_assign(&assign)
        } else {
            consumer.assign(&assign)
        };
        if let Err(e) = res {
            self.fatal = Some(e.into());
        }
    }

    fn on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        self.liveness.beat(Phase::Rebalancing);
        self.summary.rebalances += 1;
        self.metrics.rebalances.with_label_values(&["revoke"]).inc();
        let lost = consumer.assignment_lost();
        if lost {
            warn!("assignment lost: aborting the open transaction");
            self.abort();
        } else if let Err(e) = self.commit(consumer) {
            error!(error = %e, "commit on revoke failed");
        }
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        for p in &revoked {
            if let Some(part) = self.parts.remove(p) {
                self.forget_metrics(&part);
            }
        }
        if !cooperative {
            self.parts.clear();
        }
        self.needs_reset = self.needs_reset && !self.parts.is_empty();
        self.metrics.partitions_assigned.set(self.parts.len() as i64);
        self.update_rebuilding();
        info!(partitions = ?revoked, "partitions revoked");
        let res = if cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
        if let Err(e) = res {
            warn!(error = %e, "unassign failed");
        }
    }

    fn forget_metrics(&self, part: &Part) {
        for g in [
            &self.metrics.consumer_lag,
            &self.metrics.watermark_seconds,
            &self.metrics.state_bytes,
            &self.metrics.state_rows,
            &self.metrics.held_records,
        ] {
            let _ = g.remove_label_values(&[&part.label]);
        }
    }

    fn update_rebuilding(&self) {
        let n = self.parts.values().filter(|p| !p.live).count();
        self.metrics.partitions_rebuilding.set(n as i64);
    }

    /// After a fatal producer error (fenced, transaction state lost on the broker): a new
    /// producer with the same transactional id fences the old one and has the broker abort
    /// its open transaction, so every engine is rebuilt from the committed offsets. Waits
    /// for the broker as long as it takes (or until shutdown).
    fn recreate_producer(&mut self) {
        self.in_txn = false;
        self.txn_failed = false;
        self.txn_alerts.clear();
        self.txn_rejects.clear();
        self.needs_reset = !self.parts.is_empty();
        self.metrics.recoveries.with_label_values(&["producer_recreated"]).inc();
        loop {
            self.liveness.beat(Phase::RecreatingClient);
            // Replacing drops (destroys) the dead producer first-hand.
            match self
                .producer_config
                .create_with_context::<_, ThreadedProducer<ProducerCtx>>(ProducerCtx {
                    outage: self.outage.clone(),
                }) {
                Ok(p) => self.producer = Arc::new(p),
                Err(e) => {
                    self.fatal = Some(e.into());
                    return;
                }
            }
            if !self.transactional {
                return;
            }
            match init_transactions(&self.producer, self.op_timeout, &self.shutdown, None) {
                Ok(()) => {
                    info!("transactional producer re-created");
                    return;
                }
                Err(e) if self.shutdown.is_triggered() => {
                    self.fatal = Some(e.into());
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "new producer failed too; re-creating it again");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Re-read the config file (change seen, or SIGHUP) and apply it if valid. Applying keeps
    /// exactly-once: the open transaction is committed (everything before the position is then
    /// committed under the old config), and every partition is rebuilt under the new config
    /// from its committed offset exactly as on assignment (horizon replay with emit off, live
    /// at the position). Its state is then what the new config would have built, which is also
    /// what a crash right after would rebuild, and its alerts carry the new config_version.
    fn reload<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        path: &std::path::Path,
        why: &str,
    ) -> Result<(), KafkaError> {
        self.liveness.beat(Phase::Reloading);
        let result = match evaluate(&self.config, path) {
            Verdict::Refused(reason) => {
                warn!(path = %path.display(), trigger = why, config_version = %fundwatch_engine::config_version(&self.config), "config reload refused, keeping the running config: {reason}");
                "refused"
            }
            Verdict::Unchanged => {
                info!(path = %path.display(), trigger = why, "config re-read: unchanged");
                "unchanged"
            }
            Verdict::Apply(new) => {
                let old_version = fundwatch_engine::config_version(&self.config);
                let new_version = fundwatch_engine::config_version(&new);
                if old_version == new_version {
                    warn!(config_version = %new_version, "the config changed but its `version` did not: alerts before and after the reload carry the same config_version");
                }
                self.commit(consumer)?;
                self.config = Arc::new(*new);
                self.needs_reset = !self.parts.is_empty();
                let _ = self.metrics.config_info.remove_label_values(&[&old_version]);
                self.metrics.config_info.with_label_values(&[&new_version]).set(1);
                info!(path = %path.display(), trigger = why, from = %old_version, to = %new_version, "config reloaded: rebuilding every partition under it");
                "applied"
            }
        };
        self.metrics.config_reloads.with_label_values(&[result]).inc();
        *self.summary.config_reloads.entry(result.to_owned()).or_default() += 1;
        Ok(())
    }

    fn producer_fatal(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    fn ensure_txn(&mut self) -> Result<(), RdError> {
        if self.transactional && !self.in_txn {
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        Ok(())
    }

    fn send(&mut self, topic: &str, key: &[u8], payload: &[u8], headers: Option<OwnedHeaders>) {
        if self.txn_failed {
            return;
        }
        if let Err(e) = self.ensure_txn() {
            warn!(error = %e, "cannot begin transaction");
            self.txn_failed = true;
            return;
        }
        let mut rec = BaseRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => return,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => {
                    warn!(error = %e, topic, "produce failed: the transaction will be aborted");
                    self.txn_failed = true;
                    return;
                }
            }
        }
    }

    /// Apply flush points at or before `offset` (emit off: they happened before C).
    fn apply_flushes(part: &mut Part, offset: i64, scratch: &mut Vec<Alert>) {
        while part.pending_flush.first().is_some_and(|f| *f <= offset) {
            part.pending_flush.remove(0);
            part.engine.set_emit(false);
            part.engine.flush(scratch);
            scratch.clear();
        }
    }

    fn go_live(part: &mut Part, scratch: &mut Vec<Alert>) {
        Self::apply_flushes(part, part.live_from, scratch);
        part.pending_flush.clear();
        part.engine.set_emit(true);
        part.live = true;
        info!(partition = %part.label, offset = part.live_from, replayed = part.replayed, "partition rebuilt: live");
    }

    /// Process one poll batch. Each partition's records are decoded and run through its engine
    /// in offset order, partitions in parallel on up to `threads` threads; then, on this
    /// thread, alerts and dead letters are sent into the open transaction in each partition's
    /// record order. Nothing else runs meanwhile, so commits, rebalances and resets see every
    /// record either wholly processed and sent or not at all, as with one record at a time.
    fn process_batch<M: Message + Sync>(&mut self, msgs: &[M]) {
        if self.needs_reset || msgs.is_empty() {
            // Engines are stale (aborted transaction): the partitions are re-read after the reset.
            return;
        }
        let mut by_part: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, m) in msgs.iter().enumerate() {
            by_part.entry(m.partition()).or_default().push(i);
        }
        let hist = &self.metrics.processing_seconds;
        let mut work: Vec<Work<'_>> = self
            .parts
            .iter_mut()
            .filter_map(|(p, part)| {
                by_part.remove(p).map(|idx| Work {
                    partition: *p,
                    part,
                    idx,
                    out: PartOut::default(),
                })
            })
            .collect();
        let threads = self.threads.min(work.len());
        if threads <= 1 || msgs.len() < PARALLEL_MIN_RECORDS {
            for w in &mut work {
                w.run(msgs, hist);
            }
        } else {
            // Greedy split by record count; this thread takes the first group.
            work.sort_by_key(|w| std::cmp::Reverse(w.idx.len()));
            let mut groups: Vec<(usize, Vec<&mut Work<'_>>)> = (0..threads).map(|_| (0, Vec::new())).collect();
            for w in work.iter_mut() {
                if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
                    g.0 += w.idx.len();
                    g.1.push(w);
                }
            }
            std::thread::scope(|scope| {
                let mut groups = groups.into_iter();
                let mine = groups.next();
                let handles: Vec<_> = groups
                    .map(|(_, g)| {
                        scope.spawn(move || {
                            for w in g {
                                w.run(msgs, hist);
                            }
                        })
                    })
                    .collect();
                if let Some((_, g)) = mine {
                    for w in g {
                        w.run(msgs, hist);
                    }
                }
                for h in handles {
                    if let Err(panic) = h.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
            });
            work.sort_by_key(|w| w.partition);
        }
        let outs: Vec<(i32, PartOut)> = work.into_iter().map(|w| (w.partition, w.out)).collect();
        let mut went_live = false;
        for (p, out) in outs {
            went_live |= out.went_live;
            let label = p.to_string();
            if out.live > 0 {
                self.metrics
                    .records_consumed
                    .with_label_values(&[&label])
                    .inc_by(out.live);
                self.summary.records_consumed += out.live;
            }
            if out.replayed > 0 {
                self.metrics.rebuild_records.inc_by(out.replayed);
                self.summary.records_replayed += out.replayed;
            }
            for ev in out.events {
                match ev {
                    Out::Alert(alert) => self.emit_one(*alert),
                    Out::Reject { index, code, reason } => self.dead_letter(&msgs[index], code, &reason),
                }
            }
        }
        if went_live {
            self.update_rebuilding();
        }
        self.since_commit += msgs.len();
    }

    fn dead_letter<M: Message>(&mut self, msg: &M, code: &'static str, reason: &str) {
        if self
            .committed_output
            .as_ref()
            .is_some_and(|c| c.dead_letters.contains(&(msg.partition(), msg.offset())))
        {
            self.metrics
                .recoveries
                .with_label_values(&["duplicate_suppressed"])
                .inc();
            info!(
                partition = msg.partition(),
                offset = msg.offset(),
                "dead letter already committed (by a hung transaction the broker completed): not sent again"
            );
            return;
        }
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "fundwatch.reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "fundwatch.reason_code",
                value: Some(code),
            })
            .insert(Header {
                key: "fundwatch.source.topic",
                value: Some(msg.topic()),
            })
            .insert(Header {
                key: "fundwatch.source.partition",
                value: Some(&msg.partition().to_string()),
            })
            .insert(Header {
                key: "fundwatch.source.offset",
                value: Some(&msg.offset().to_string()),
            });
        let key = msg.key().unwrap_or(&[]).to_vec();
        let topic = self.dead_letter_topic.clone();
        self.send(&topic, &key, msg.payload().unwrap_or(&[]), Some(headers));
        self.metrics.records_rejected.with_label_values(&[code]).inc();
        self.metrics.dead_letters.inc();
        self.txn_rejects.push(code.to_owned());
    }

    fn emit_one(&mut self, alert: Alert) {
        if self
            .committed_output
            .as_ref()
            .is_some_and(|c| c.alerts.contains(&alert.alert_id))
        {
            self.metrics
                .recoveries
                .with_label_values(&["duplicate_suppressed"])
                .inc();
            info!(alert_id = %alert.alert_id, rule = %alert.rule, "alert already committed (by a hung transaction the broker completed): not emitted again");
            return;
        }
        match serde_json::to_vec(&alert) {
            Ok(json) => {
                let topic = std::mem::take(&mut self.alert_topic);
                self.send(&topic, alert.account.as_bytes(), &json, None);
                self.alert_topic = topic;
                self.metrics.alerts.with_label_values(&[&alert.rule]).inc();
                self.txn_alerts.push(alert);
            }
            Err(e) => error!(error = %e, "cannot serialise alert"),
        }
    }

    fn emit(&mut self, buf: &mut Vec<Alert>) {
        for alert in buf.drain(..) {
            self.emit_one(alert);
        }
    }

    /// Drain mode: release everything held, in the open transaction.
    fn flush_all(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        let keys: Vec<i32> = self.parts.keys().copied().collect();
        for p in keys {
            let Some(part) = self.parts.get_mut(&p) else { continue };
            if !part.live || part.next_offset < 0 || part.engine.pending() == 0 {
                continue;
            }
            part.engine.flush(&mut buf);
            if part.flushes.last() != Some(&part.next_offset) {
                part.flushes.push(part.next_offset);
                if part.flushes.len() > MAX_FLUSH_POINTS {
                    part.flushes.remove(0);
                }
            }
            // Make sure the flush point is committed even if the offset did not move.
            part.committed = part.committed.min(part.next_offset - 1);
            self.emit(&mut buf);
        }
        self.buf = buf;
    }

    fn offsets(&self) -> Result<TopicPartitionList, RdError> {
        let mut tpl = TopicPartitionList::new();
        for (p, part) in &self.parts {
            if part.live && part.next_offset >= 0 && part.next_offset > part.committed {
                tpl.add_partition_offset(&self.topic, *p, Offset::Offset(part.next_offset))?;
                if let Some(mut el) = tpl.find_partition(&self.topic, *p) {
                    el.set_metadata(part.meta());
                }
            }
        }
        Ok(tpl)
    }

    fn due(&self, interval: Duration, records: usize) -> bool {
        self.txn_failed
            || (records > 0 && self.since_commit >= records)
            || (self.last_commit.elapsed() >= interval && (self.in_txn || self.since_commit > 0))
    }

    /// Commit alerts, dead letters and offsets in one transaction. On an abortable error the
    /// transaction is aborted and every partition rebuilt from its committed offset.
    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), KafkaError> {
        self.liveness.beat(Phase::Committing);
        self.last_commit = Instant::now();
        self.since_commit = 0;
        if self.txn_failed {
            self.abort();
            return Ok(());
        }
        if self.needs_reset {
            // The engines' positions are past an aborted transaction: committing them would
            // skip its alerts. Nothing is open; the reset re-reads from the committed offsets.
            return Ok(());
        }
        let tpl = self.offsets()?;
        if tpl.count() == 0 && !self.in_txn {
            return Ok(());
        }
        if self.transactional && self.outage.swap(false, Ordering::SeqCst) {
            self.suspect = true;
        }
        if self.suspect && !self.offsets_stable(consumer) {
            // The last transaction before the outage may have been completed by the broker
            // without its markers: committing now would commit its pending records on the
            // partitions this one touches and leave them hung on the others.
            self.abort_hung(consumer);
            return Ok(());
        }
        let started = Instant::now();
        let result = if self.transactional {
            self.commit_txn(consumer, &tpl)
        } else {
            self.commit_plain(consumer, &tpl)
        };
        self.summary.commit_seconds += started.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                self.metrics
                    .commit_seconds
                    .with_label_values(&["committed"])
                    .observe(started.elapsed().as_secs_f64());
                self.metrics.transactions.with_label_values(&["committed"]).inc();
                self.summary.transactions_committed += 1;
                for el in tpl.elements() {
                    if let (Some(part), Offset::Offset(o)) = (self.parts.get_mut(&el.partition()), el.offset()) {
                        part.committed = o;
                    }
                }
                let mut counts = TxnCounts::default();
                for code in self.txn_rejects.drain(..) {
                    self.summary.rejected += 1;
                    *self.summary.rejected_by_reason.entry(code.clone()).or_default() += 1;
                    *counts.rejects.entry(code).or_default() += 1;
                }
                let alerts = std::mem::take(&mut self.txn_alerts);
                for a in &alerts {
                    self.summary.alerts += 1;
                    *self.summary.alerts_by_rule.entry(a.rule.clone()).or_default() += 1;
                    *counts.alerts.entry(a.rule.clone()).or_default() += 1;
                    if let Some(h) = self.hook.as_mut() {
                        h(a);
                    }
                }
                counts.offsets = tpl
                    .elements()
                    .iter()
                    .filter_map(|el| el.offset().to_raw().map(|o| (el.partition(), o)))
                    .collect();
                self.last_txn = counts;
                debug!(alerts = alerts.len(), partitions = tpl.count(), "transaction committed");
                Ok(())
            }
            Err(e) if e.is_fatal_kafka() || self.producer_fatal() => {
                error!(error = %e, "fatal producer error: re-creating the producer and rebuilding from the committed offsets");
                self.metrics.transactions.with_label_values(&["aborted"]).inc();
                self.summary.transactions_aborted += 1;
                self.recreate_producer();
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "commit failed: aborting and rebuilding from the committed offsets");
                self.metrics
                    .commit_seconds
                    .with_label_values(&["aborted"])
                    .observe(started.elapsed().as_secs_f64());
                self.abort();
                Ok(())
            }
        }
    }

    fn commit_txn<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), KafkaError> {
        self.ensure_txn()?;
        if tpl.count() > 0 {
            self.send_offsets(consumer, tpl)?;
        }
        retry(self.op_timeout, |t| self.producer.commit_transaction(t))?;
        self.in_txn = false;
        Ok(())
    }

    fn commit_plain<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), KafkaError> {
        self.producer.flush(self.op_timeout)?;
        if tpl.count() > 0 {
            consumer.commit(tpl, CommitMode::Sync)?;
        }
        Ok(())
    }

    /// Abort the open transaction; every engine then holds state that was not committed,
    /// so all partitions are rebuilt from their committed offsets.
    fn abort(&mut self) {
        if self.transactional && (self.in_txn || self.producer_fatal() || self.wedged) {
            let res = if self.producer_fatal() || std::mem::take(&mut self.wedged) {
                Err(None)
            } else {
                retry(self.op_timeout, |t| self.producer.abort_transaction(t)).map_err(Some)
            };
            if let Err(e) = res {
                // A producer that cannot abort (fenced, or the broker unreachable for longer
                // than the timeout) is replaced: the new one's init aborts the transaction.
                warn!(error = ?e.map(|e| e.to_string()), "abort failed: re-creating the producer");
                self.recreate_producer();
            }
        }
        self.in_txn = false;
        self.txn_failed = false;
        self.txn_alerts.clear();
        self.txn_rejects.clear();
        self.metrics.transactions.with_label_values(&["aborted"]).inc();
        self.summary.transactions_aborted += 1;
        self.needs_reset = !self.parts.is_empty();
    }

    /// Rebuild every assigned partition from its committed offset (after an abort).
    fn reset<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), KafkaError> {
        self.liveness.beat(Phase::Resetting);
        self.needs_reset = false;
        let partitions: Vec<i32> = self.parts.keys().copied().collect();
        if partitions.is_empty() {
            return Ok(());
        }
        let plan = match self.plan(consumer, &partitions) {
            Ok(plan) => {
                self.settle_hung_check(&plan);
                if self.read_back_pending && !self.read_back(&plan) {
                    self.needs_reset = true;
                    std::thread::sleep(Duration::from_secs(1));
                    return Ok(());
                }
                plan
            }
            Err(e) => {
                self.needs_reset = true;
                if self.transactional && e.unstable && self.coordinator_answers(&partitions) {
                    // The coordinator answers, but not with stable offsets: a transaction's
                    // offsets stay pending (see `abort_hung`). Waiting does not end it.
                    warn!(error = %e, "committed offsets are unstable (a transaction is pending on them)");
                    self.abort_hung(consumer);
                } else {
                    // Broker unreachable: keep the partitions paused in "needs reset" and retry.
                    warn!(error = %e, "cannot read committed offsets; retrying the reset");
                    std::thread::sleep(Duration::from_secs(1));
                }
                return Ok(());
            }
        };
        let mut seek = TopicPartitionList::new();
        for (p, start, part) in plan {
            let start = match start {
                Offset::Invalid => Offset::Beginning,
                s => s,
            };
            seek.add_partition_offset(&self.topic, p, start)?;
            if let Some(old) = self.parts.insert(p, part) {
                self.forget_metrics(&old);
            }
        }
        self.update_rebuilding();
        let failed = match consumer.seek_partitions(seek, self.op_timeout) {
            Ok(res) => res.elements().iter().any(|el| el.error().is_err()),
            Err(_) => true,
        };
        if failed {
            warn!("seek failed; retrying the reset");
            self.needs_reset = true;
            std::thread::sleep(Duration::from_secs(1));
            return Ok(());
        }
        info!(partitions = ?partitions, "partitions reset to their committed offsets");
        Ok(())
    }

    /// After an outage: do the group's committed offsets of the assigned partitions read as
    /// stable? Then the last transaction's markers were written and it is not hung. Any
    /// failure (pending offsets, or the broker still unreachable) leaves the suspicion.
    fn offsets_stable<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> bool {
        let mut tpl = TopicPartitionList::new();
        for p in self.parts.keys() {
            tpl.add_partition(&self.topic, *p);
        }
        match consumer.committed_offsets(tpl, self.op_timeout) {
            Ok(_) => {
                debug!("committed offsets stable after the outage");
                self.suspect = false;
                true
            }
            Err(e) => {
                warn!(error = %e, "after the broker outage the committed offsets do not read as stable: the last transaction may be hung");
                false
            }
        }
    }

    /// Whether the group coordinator answers a committed-offset read without `require_stable`
    /// (read_uncommitted), i.e. the broker is reachable and knows the group.
    fn coordinator_answers(&self, partitions: &[i32]) -> bool {
        let probe: BaseConsumer = match self.probe_config.create() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot create the offset probe consumer");
                return false;
            }
        };
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.topic, *p);
        }
        probe.committed_offsets(tpl, self.op_timeout).is_ok()
    }

    /// End a hung transaction: one the broker's coordinator recorded as complete although its
    /// markers were never written (seen when a single-node broker shuts down: the partitions
    /// lose their leader before the markers go out and the coordinator skips them). Its
    /// records and offsets stay pending for good: stable committed-offset reads never
    /// complete and read_committed readers stop at its first record. A marker ends whatever
    /// a producer id has pending on a partition, so a transaction of this producer id that
    /// writes a filler record to every partition of the alert and dead-letter topics and
    /// offsets of the group, then aborts, ends the hung one as aborted on every partition it
    /// can have touched. Every partition is then rebuilt from the committed offsets before it,
    /// as after any abort; its alerts are emitted again in later transactions.
    fn abort_hung<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        warn!(
            "aborting the pending transaction from this producer id (fillers to every output partition, offsets of the group), then rebuilding from the committed offsets"
        );
        self.metrics
            .recoveries
            .with_label_values(&["hung_transaction_aborted"])
            .inc();
        match self.fill_for_abort(consumer) {
            // Every output partition and the group's offsets are in the transaction: aborting
            // it (or, if that fails, the new producer's init) ends all the hung one left.
            Ok(()) => self.suspect = false,
            // Whatever was added is aborted below; the offsets were not sent, so they stay
            // pending and the next commit or plan tries again.
            Err(e) => warn!(error = %e, "could not add every partition to the aborting transaction"),
        }
        self.hung_check = true;
        self.read_back_pending = true;
        // abort() aborts (or, failing that, re-creates the producer, whose init aborts) and
        // marks every partition for a rebuild.
        self.in_txn = self.in_txn || self.transactional;
        self.abort();
    }

    /// After `abort_hung`, before going live: read back the alerts and dead letters already
    /// committed since the oldest committed position's Kafka timestamp (less a margin for
    /// clock skew), so that those of the hung transaction that the broker did commit are not
    /// emitted again. Returns false if the read failed (the reset is retried).
    fn read_back(&mut self, plan: &[(i32, Offset, Part)]) -> bool {
        const SKEW_MARGIN_MS: i64 = 10 * 60 * 1000;
        let since = plan
            .iter()
            .map(|(_, _, part)| part.kts)
            .filter(|t| *t > i64::MIN)
            .min()
            .map_or(0, |t| t.saturating_sub(SKEW_MARGIN_MS).max(0));
        match committed_output::read(
            &self.probe_config,
            &self.alert_topic,
            &self.dead_letter_topic,
            &self.topic,
            since,
            self.op_timeout,
        ) {
            Ok(c) => {
                info!(
                    alerts = c.alerts.len(),
                    dead_letters = c.dead_letters.len(),
                    since_ms = since,
                    "read back the committed output: what is already committed is not emitted again"
                );
                self.committed_output = Some(c);
                self.read_back_pending = false;
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot read back the committed output yet; retrying the reset");
                false
            }
        }
    }

    /// After `abort_hung`, on the first plan: if a partition's stable committed offset is now
    /// below what this instance's last transaction committed, that transaction was the hung
    /// one and is aborted: its alerts and dead letters leave the summary (they are emitted
    /// again). Otherwise the pending offsets were not its own and the summary stands.
    fn settle_hung_check(&mut self, plan: &[(i32, Offset, Part)]) {
        if !std::mem::take(&mut self.hung_check) {
            return;
        }
        let counts = std::mem::take(&mut self.last_txn);
        let aborted = plan
            .iter()
            .any(|(p, _, part)| counts.offsets.get(p).is_some_and(|o| part.committed < *o));
        if !aborted {
            info!("the pending offsets were not this instance's last transaction; nothing of it was aborted");
            return;
        }
        let n: u64 = counts.alerts.values().sum();
        warn!(
            alerts = n,
            "the hung transaction was this instance's last one: aborted, its alerts are emitted again"
        );
        for (rule, n) in counts.alerts {
            self.summary.alerts = self.summary.alerts.saturating_sub(n);
            if let Some(c) = self.summary.alerts_by_rule.get_mut(&rule) {
                *c = c.saturating_sub(n);
            }
        }
        for (code, n) in counts.rejects {
            self.summary.rejected = self.summary.rejected.saturating_sub(n);
            if let Some(c) = self.summary.rejected_by_reason.get_mut(&code) {
                *c = c.saturating_sub(n);
            }
        }
        self.summary.alerts_by_rule.retain(|_, n| *n > 0);
        self.summary.rejected_by_reason.retain(|_, n| *n > 0);
        self.summary.transactions_committed = self.summary.transactions_committed.saturating_sub(1);
    }

    fn fill_for_abort<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), KafkaError> {
        self.ensure_txn()?;
        let headers = || {
            OwnedHeaders::new().insert(Header {
                key: "fundwatch.filler",
                value: Some("aborted; ends a hung transaction"),
            })
        };
        for topic in [self.alert_topic.clone(), self.dead_letter_topic.clone()] {
            let md = self.producer.client().fetch_metadata(Some(&topic), self.op_timeout)?;
            let partitions: Vec<i32> = md
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            for p in partitions {
                let mut rec = BaseRecord::<[u8], [u8]>::to(&topic)
                    .partition(p)
                    .payload(&[][..])
                    .headers(headers());
                loop {
                    match self.producer.send(rec) {
                        Ok(()) => break,
                        Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            rec = r;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err((e, _)) => return Err(e.into()),
                    }
                }
            }
        }
        // Fillers delivered before the offsets are sent: the group's offsets must not be ended
        // unless the records on every output partition are ended with them.
        self.producer.flush(self.op_timeout)?;
        // The offsets are aborted, so their values do not matter; any assigned partition puts
        // the group's offsets partition in the transaction.
        let mut tpl = TopicPartitionList::new();
        let partitions: Vec<i32> = if self.parts.is_empty() {
            vec![0]
        } else {
            self.parts.keys().copied().collect()
        };
        for p in partitions {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(0))?;
        }
        self.send_offsets(consumer, &tpl)
    }

    /// `send_offsets_to_transaction`, retried within `op_timeout`, each attempt on a helper
    /// thread (see `send_offsets_bounded`). An attempt that never returns marks the producer
    /// wedged: `abort` then replaces it instead of calling into it again.
    fn send_offsets<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        let mut wedged = false;
        let mut no_group = false;
        let result = retry(self.op_timeout, |t| {
            let Some(cgm) = consumer.group_metadata() else {
                no_group = true;
                return Err(RdError::Canceled);
            };
            send_offsets_bounded(&producer, tpl, cgm, t).unwrap_or_else(|| {
                wedged = true;
                Err(RdError::Canceled)
            })
        });
        if wedged {
            error!(
                grace_seconds = WEDGE_GRACE.as_secs(),
                "send_offsets_to_transaction did not return within its timeout and the grace: the producer is wedged; replacing it (the new one fences it and aborts its transaction)"
            );
            self.metrics.recoveries.with_label_values(&["producer_wedged"]).inc();
            self.wedged = true;
        }
        match result {
            Ok(()) => Ok(()),
            Err(_) if no_group => Err(KafkaError::Other("consumer has no group metadata".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Once a second: go-live checks for partitions whose rebuild range is exhausted, gauges.
    fn tick<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, lag: bool) {
        let positions = consumer.position().ok();
        let mut scratch = Vec::new();
        for (p, part) in self.parts.iter_mut() {
            if !part.live {
                let pos = positions
                    .as_ref()
                    .and_then(|t| t.find_partition(&self.topic, *p))
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(-1);
                if part.next_offset >= part.live_from || pos >= part.live_from {
                    Self::go_live(part, &mut scratch);
                }
            }
            let (rows, bytes) = part.engine.state_size();
            self.metrics
                .state_rows
                .with_label_values(&[&part.label])
                .set(rows as i64);
            self.metrics
                .state_bytes
                .with_label_values(&[&part.label])
                .set(bytes as i64);
            self.metrics
                .held_records
                .with_label_values(&[&part.label])
                .set(part.engine.pending() as i64);
            let wm = part.engine.watermark_ms();
            if wm > i64::MIN {
                self.metrics
                    .watermark_seconds
                    .with_label_values(&[&part.label])
                    .set(wm / 1000);
            }
            if lag {
                if let Ok((_, high)) = consumer.fetch_watermarks(&self.topic, *p, Duration::from_secs(2)) {
                    let next = part.next_offset.max(0);
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&part.label])
                        .set((high - next).max(0));
                }
            }
        }
        self.update_rebuilding();
    }

    /// Mark live partitions whose position has reached the broker's high watermark as at
    /// their end (drain mode, after an outage cleared the end flags).
    fn probe_eof<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let positions = consumer.position().ok();
        for (p, part) in self.parts.iter_mut() {
            if !part.live || part.eof {
                continue;
            }
            let pos = positions
                .as_ref()
                .and_then(|t| t.find_partition(&self.topic, *p))
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1)
                .max(part.next_offset)
                .max(part.committed);
            if let Ok((low, high)) = consumer.fetch_watermarks(&self.topic, *p, Duration::from_secs(2)) {
                if pos >= high || (pos < 0 && high <= low) {
                    debug!(partition = *p, offset = pos, "partition at its end (broker watermark)");
                    part.eof = true;
                }
            }
        }
    }

    fn all_live_at_eof(&self) -> bool {
        !self.parts.is_empty() && self.parts.values().all(|p| p.live && p.eof)
    }
}

trait FatalExt {
    fn is_fatal_kafka(&self) -> bool;
}

impl FatalExt for KafkaError {
    fn is_fatal_kafka(&self) -> bool {
        match self {
            KafkaError::Kafka(RdError::Transaction(t)) => t.is_fatal(),
            KafkaError::Other(_) => false,
            _ => false,
        }
    }
}

/// Retry a transactional call while librdkafka says the error is retriable, within `budget`
/// in all (each call gets the time left), so a broker outage cannot block the loop for
/// longer: the caller then aborts, or re-creates the producer.
fn retry<T>(budget: Duration, mut f: impl FnMut(Duration) -> Result<T, RdError>) -> Result<T, RdError> {
    let deadline = Instant::now() + budget;
    let mut attempts = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match f(left.max(Duration::from_millis(500))) {
            Err(e) if is_retriable(&e) && Instant::now() + Duration::from_millis(500) < deadline => {
                attempts += 1;
                warn!(error = %e, attempts, "retriable transaction error; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

/// `init_transactions`, retried (the broker may be starting, or still aborting a fenced
/// instance's transaction) until it succeeds, fails fatally, `deadline` passes or shutdown.
fn init_transactions(
    producer: &ThreadedProducer<ProducerCtx>,
    timeout: Duration,
    shutdown: &Shutdown,
    deadline: Option<Instant>,
) -> Result<(), RdError> {
    loop {
        match producer.init_transactions(timeout) {
            Ok(()) => return Ok(()),
            Err(e)
                if deadline.is_none_or(|d| Instant::now() < d)
                    && !shutdown.is_triggered()
                    && !requires_abort(&e)
                    && producer.client().fatal_error().is_none() =>
            {
                warn!(error = %e, "init_transactions failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A broker connection failed: the next commit checks for a hung transaction. Returns
/// whether `e` was such a failure.
fn note_outage(outage: &AtomicBool, e: &RdError) -> bool {
    let failed = matches!(
        e,
        RdError::Global(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
    );
    if failed {
        outage.store(true, Ordering::SeqCst);
    }
    failed
}

/// The producer's context: notes broker connection failures; deliveries need no callback
/// (a failed one fails the transaction's commit).
struct ProducerCtx {
    outage: Arc<AtomicBool>,
}

impl ClientContext for ProducerCtx {
    fn error(&self, error: RdError, reason: &str) {
        note_outage(&self.outage, &error);
        warn!(error = %error, reason, "kafka producer error");
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The consumer's context: rebalance callbacks work on the shared pipeline.
struct Ctx {
    pipe: Arc<Mutex<Pipeline>>,
    /// Shared with the pipeline: a broker connection failed (see `Pipeline::outage`).
    outage: Arc<AtomicBool>,
    /// Bumped by every rebalance callback: records polled before one are not processed.
    generation: std::sync::atomic::AtomicU64,
    /// Bumped when the consumer loses a broker connection: end-of-partition flags seen before
    /// it are stale (records may have arrived meanwhile; librdkafka reports an end once).
    disconnects: Arc<std::sync::atomic::AtomicU64>,
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Pipeline> {
        self.pipe.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: RdError, reason: &str) {
        match error {
            RdError::Global(RDKafkaErrorCode::PartitionEOF) => debug!(reason, "end of partition"),
            e => {
                if note_outage(&self.outage, &e) {
                    self.disconnects.fetch_add(1, Ordering::SeqCst);
                }
                warn!(error = %e, reason, "kafka client error")
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut pipe = self.lock();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => pipe.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => pipe.on_revoke(consumer, tpl),
            other => {
                error!(error = ?other, "rebalance error");
                let all = consumer.assignment().unwrap_or_default();
                pipe.on_revoke(consumer, &all);
            }
        }
    }
}

/// The service: build with [`Service::new`], optionally hook alerts, then [`Service::run`].
pub struct Service {
    config: Arc<Config>,
    opts: RunOptions,
    metrics: Arc<Metrics>,
    hook: Option<AlertHook>,
}

fn instance_id(opts: &RunOptions) -> String {
    if let Some(id) = opts.instance_id.as_ref().filter(|s| !s.is_empty()) {
        return id.clone();
    }
    if let Ok(id) = std::env::var("FUNDWATCH_INSTANCE_ID") {
        if !id.is_empty() {
            return id;
        }
    }
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end]) {
            if !s.is_empty() {
                return s.to_owned();
            }
        }
    }
    format!("pid{}", std::process::id())
}

/// The consumer's default `fetch.queue.backoff.ms`. librdkafka postpones a partition's next
/// fetch by this much once its local queue is over the thresholds (default 1 s): a consumer
/// that decodes and detects drains that queue within milliseconds and then starved
/// (measured: 161k -> 343k records/s). The benchmark's bare readers use it too.
pub const FETCH_QUEUE_BACKOFF_MS: &str = "10";

fn set_default(cfg: &mut rdkafka::ClientConfig, key: &str, value: &str) {
    if cfg.get(key).is_none() {
        cfg.set(key, value);
    }
}

impl Service {
    pub fn new(config: Arc<Config>, opts: RunOptions) -> Service {
        Service {
            config,
            opts,
            metrics: Arc::new(Metrics::new()),
            hook: None,
        }
    }

    /// Called with every alert once its transaction has committed.
    pub fn on_alert(mut self, f: impl FnMut(&Alert) + Send + 'static) -> Service {
        self.hook = Some(Box::new(f));
        self
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Run until `shutdown` (or, in batch mode, until idle).
    pub fn run(self, shutdown: Shutdown) -> Result<RunSummary, KafkaError> {
        let started = Instant::now();
        let kafka = &self.config.kafka;
        check_env(&kafka.client)?;
        let id = instance_id(&self.opts);
        let transactional = !self.opts.no_transactions;
        let tid = format!("{}-{}-{}", kafka.transactional_id_prefix, kafka.group_id, id);
        let ready = Arc::new(AtomicBool::new(false));
        let liveness = Arc::new(Liveness::default());
        let _watchdog = Watchdog::start(liveness.clone());
        let listen = self
            .opts
            .listen
            .clone()
            .unwrap_or_else(|| self.config.service.listen.clone());
        let _http = if listen.is_empty() || listen == "off" {
            None
        } else {
            let s = HttpServer::start(&listen, self.metrics.clone(), ready.clone(), liveness.clone())?;
            info!(addr = %s.addr, "serving /metrics /healthz /readyz");
            Some(s)
        };

        // Bounds the wait for the brokers at start: the connection check, then init_transactions.
        let start_deadline = Instant::now() + Duration::from_secs(120);
        check_connection(&kafka.brokers, &kafka.client, start_deadline, || {
            shutdown.is_triggered()
        })?;
        let mut pc = client_config(&kafka.brokers, &kafka.client, Role::Producer)?;
        if transactional {
            pc.set("transactional.id", &tid);
            set_default(&mut pc, "transaction.timeout.ms", "30000");
        }
        set_default(&mut pc, "enable.idempotence", "true");
        set_default(&mut pc, "linger.ms", "5");
        // Either client may be the one that reports a broker connection failure.
        let outage = Arc::new(AtomicBool::new(false));
        let producer: ThreadedProducer<ProducerCtx> = pc.create_with_context(ProducerCtx { outage: outage.clone() })?;
        let op_timeout = Duration::from_secs(30);
        if transactional {
            init_transactions(&producer, op_timeout, &shutdown, Some(start_deadline))?;
            info!(transactional_id = %tid, "transactional producer initialised");
        }

        let mut cc = client_config(&kafka.brokers, &kafka.client, Role::Consumer)?;
        cc.set("group.id", &kafka.group_id);
        cc.set("enable.auto.commit", "false");
        cc.set("enable.auto.offset.store", "false");
        let mut probe_config = cc.clone();
        probe_config.set("isolation.level", "read_uncommitted");
        let pipe = Arc::new(Mutex::new(Pipeline {
            config: self.config.clone(),
            topic: kafka.input_topic.clone(),
            alert_topic: kafka.alert_topic.clone(),
            dead_letter_topic: kafka.dead_letter_topic.clone(),
            producer: Arc::new(producer),
            wedged: false,
            transactional,
            parts: BTreeMap::new(),
            in_txn: false,
            txn_failed: false,
            needs_reset: false,
            since_commit: 0,
            last_commit: Instant::now(),
            txn_alerts: Vec::new(),
            txn_rejects: Vec::new(),
            buf: Vec::new(),
            metrics: self.metrics.clone(),
            hook: self.hook,
            fatal: None,
            summary: RunSummary {
                instance_id: id.clone(),
                transactional_id: transactional.then(|| tid.clone()),
                ..Default::default()
            },
            op_timeout,
            producer_config: pc,
            shutdown: shutdown.clone(),
            threads: self
                .opts
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)),
            outage: outage.clone(),
            probe_config,
            last_txn: TxnCounts::default(),
            hung_check: false,
            read_back_pending: false,
            committed_output: None,
            liveness: liveness.clone(),
            suspect: false,
        }));

        cc.set("isolation.level", "read_committed");
        cc.set("enable.partition.eof", "true");
        set_default(&mut cc, "auto.offset.reset", "earliest");
        set_default(&mut cc, "session.timeout.ms", "10000");
        set_default(&mut cc, "heartbeat.interval.ms", "1000");
        set_default(&mut cc, "fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
        // Static membership (KIP-345): a restarted instance gets its partitions back at once,
        // without waiting for the session timeout or disturbing the other members.
        set_default(&mut cc, "group.instance.id", &id);
        let disconnects = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let new_consumer = || -> Result<BaseConsumer<Ctx>, KafkaError> {
            let consumer: BaseConsumer<Ctx> = cc.create_with_context(Ctx {
                pipe: pipe.clone(),
                outage: outage.clone(),
                generation: Default::default(),
                disconnects: disconnects.clone(),
            })?;
            consumer.subscribe(&[&kafka.input_topic])?;
            Ok(consumer)
        };
        let mut consumer = new_consumer()?;
        info!(group = %kafka.group_id, topic = %kafka.input_topic, instance = %id, "consuming");

        self.metrics
            .config_info
            .with_label_values(&[&fundwatch_engine::config_version(&self.config)])
            .set(1);
        let mut watcher = match &self.opts.config_path {
            Some(path) => Some(ConfigWatcher::new(path.clone(), self.opts.config_poll())?),
            None => None,
        };
        let commit_interval = |c: &Config| Duration::from_millis(c.kafka.commit_interval.ms().max(10) as u64);
        let mut interval = commit_interval(&self.config);
        let idle = self.opts.exit_when_idle();
        let mut last_msg = Instant::now();
        let mut first_msg: Option<Instant> = None;
        let mut last_tick = Instant::now();
        let mut last_lag = Instant::now() - Duration::from_secs(60);
        let mut seen_disconnects = 0;
        let mut last_eof_probe = Instant::now();
        let lock = |p: &Arc<Mutex<Pipeline>>| p.lock().unwrap_or_else(|e| e.into_inner()).fatal.take();
        let stopped_by;
        let mut consumer_fatal = false;
        loop {
            liveness.beat(Phase::Polling);
            if shutdown.is_triggered() {
                stopped_by = "shutdown";
                break;
            }
            if let Some(e) = lock(&pipe) {
                return Err(e);
            }
            if consumer_fatal {
                consumer_fatal = false;
                // A fatal consumer (e.g. a static member fenced after a broker restart, when a
                // retried JoinGroup replaced its member id) never fetches again: replace it.
                // Its partitions' uncommitted work is aborted; the new member's assignment
                // rebuilds them from the committed offsets.
                let reason = consumer.client().fatal_error().map(|(c, r)| format!("{c:?}: {r}"));
                error!(reason = ?reason, "consumer failed fatally: re-creating it and rejoining the group");
                self.metrics.recoveries.with_label_values(&["consumer_recreated"]).inc();
                {
                    let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
                    p.abort();
                    let parts = std::mem::take(&mut p.parts);
                    for part in parts.values() {
                        p.forget_metrics(part);
                    }
                    p.needs_reset = false;
                    p.metrics.partitions_assigned.set(0);
                    p.update_rebuilding();
                }
                liveness.beat(Phase::RecreatingClient);
                drop(consumer);
                consumer = new_consumer()?;
                continue;
            }
            // A batch: what the consumer has queued, up to MAX_BATCH records, ended by any
            // other event (EOF, error), which is handled after the batch's records.
            let mut batch = Vec::new();
            let mut event = consumer.poll(Duration::from_millis(100));
            while let Some(Ok(msg)) = event {
                batch.push(msg);
                if batch.len() >= MAX_BATCH {
                    event = None;
                    break;
                }
                let generation = consumer.context().generation.load(Ordering::SeqCst);
                event = consumer.poll(Duration::ZERO);
                if consumer.context().generation.load(Ordering::SeqCst) != generation {
                    // A rebalance ran inside that poll: what was polled before it belongs to
                    // the old assignment (the new one starts from its planned offsets).
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                liveness.beat(Phase::Processing);
                last_msg = Instant::now();
                first_msg.get_or_insert(last_msg);
                let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
                p.process_batch(&batch);
            }
            drop(batch);
            match event {
                None | Some(Ok(_)) => {}
                Some(Err(RdError::PartitionEOF(part))) => {
                    let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(st) = p.parts.get_mut(&part) {
                        st.eof = true;
                    }
                }
                Some(Err(e)) => {
                    warn!(error = %e, "consumer error");
                    consumer_fatal = matches!(e, RdError::MessageConsumptionFatal(_));
                }
            }
            let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
            let d = disconnects.load(Ordering::SeqCst);
            if d != seen_disconnects {
                // Records may arrive once the broker is back: an end seen before is stale, and
                // the outage does not count as idle time.
                seen_disconnects = d;
                for part in p.parts.values_mut() {
                    part.eof = false;
                }
                last_msg = Instant::now();
            }
            if p.due(interval, self.opts.commit_records) {
                p.commit(&consumer)?;
            }
            if let Some(why) = watcher.as_mut().and_then(|w| w.due()) {
                let path = watcher.as_ref().map(|w| w.path().to_owned()).unwrap_or_default();
                p.reload(&consumer, &path, why)?;
                interval = commit_interval(&p.config);
            }
            if p.needs_reset {
                p.reset(&consumer)?;
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                let lag = last_lag.elapsed() >= Duration::from_secs(5);
                if lag {
                    last_lag = Instant::now();
                }
                p.tick(&consumer, lag);
                last_tick = Instant::now();
                consumer_fatal |= consumer.client().fatal_error().is_some();
                let is_ready = !p.parts.values().any(|x| !x.live) && consumer.assignment().is_ok();
                ready.store(is_ready, Ordering::Relaxed);
                self.metrics.ready.set(is_ready as i64);
            }
            if let Some(idle) = idle {
                if last_msg.elapsed() >= idle
                    && !p.all_live_at_eof()
                    && last_eof_probe.elapsed() >= Duration::from_secs(1)
                {
                    // librdkafka reports a partition's end once per offset: after an outage
                    // that cleared the flags, ask the broker whether the partition is at its end.
                    last_eof_probe = Instant::now();
                    p.probe_eof(&consumer);
                }
                if p.all_live_at_eof() && last_msg.elapsed() >= idle && !p.needs_reset {
                    p.flush_all();
                    p.commit(&consumer)?;
                    if !p.needs_reset {
                        stopped_by = "idle";
                        break;
                    }
                }
            }
        }
        ready.store(false, Ordering::Relaxed);
        liveness.beat(Phase::Stopping);
        // Final commit within the grace period, then leave the group.
        {
            let grace = Duration::from_millis(p_grace(&pipe));
            let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
            p.op_timeout = grace;
            p.commit(&consumer)?;
            if p.in_txn {
                p.abort();
            }
        }
        consumer.unsubscribe();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let _ = consumer.poll(Timeout::After(Duration::from_millis(50)));
            if pipe.lock().unwrap_or_else(|e| e.into_inner()).parts.is_empty() {
                break;
            }
        }
        drop(consumer);
        let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
        let mut summary = std::mem::take(&mut p.summary);
        summary.seconds = started.elapsed().as_secs_f64();
        summary.records_per_second =
            (summary.records_consumed + summary.records_replayed) as f64 / summary.seconds.max(1e-9);
        summary.stopped_by = stopped_by.to_owned();
        summary.config_version = fundwatch_engine::config_version(&p.config);
        if let Some(first) = first_msg {
            summary.busy_seconds = last_msg.duration_since(first).as_secs_f64();
            summary.busy_records_per_second =
                (summary.records_consumed + summary.records_replayed) as f64 / summary.busy_seconds.max(1e-9);
        }
        info!(?summary, "stopped");
        Ok(summary)
    }
}

fn p_grace(pipe: &Mutex<Pipeline>) -> u64 {
    let p = pipe.lock().unwrap_or_else(|e| e.into_inner());
    p.config.service.shutdown_grace.ms().max(1000) as u64
}

/// Run the Kafka service until `shutdown` is triggered (or, with `exit_when_idle_ms`, until
/// the input is drained).
pub fn run(config: Arc<Config>, opts: RunOptions, shutdown: Shutdown) -> Result<RunSummary, KafkaError> {
    Service::new(config, opts).run(shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_call_gives_up_on_a_call_that_does_not_return() {
        let quick = bounded_call("t-quick", Duration::from_secs(5), || 7).unwrap();
        assert_eq!(quick, Some(7));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let started = Instant::now();
        let stuck = bounded_call("t-stuck", Duration::from_millis(200), move || wait.recv().is_ok()).unwrap();
        assert_eq!(stuck, None);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(release); // lets the left-behind thread end
    }
}
