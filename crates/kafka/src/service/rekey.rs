//! The re-key stage of `fundwatch run` (`[input] keyed_by = "other"`; crate doc, point 10), on
//! its own thread. Every instance runs one; they form the group `<group_id>.rekey` on the
//! input topic, so its partitions are shared out as the detection group shares out the
//! re-key topic.
//!
//! Each input record is decoded with the `[input]` mapping (the engine is not run) and:
//! - a transaction is produced unchanged (payload, headers, Kafka timestamp) to the re-key
//!   topic with its account as key, so that one account's records meet on one partition;
//! - an undecodable record is dead-lettered as detection would (original key and bytes, the
//!   reason and the input position in headers);
//! - a change event that is not a transaction (Debezium u/d/t/m, tombstones) is counted in
//!   `fundwatch_input_skipped_total{kind}` and dropped.
//!
//! All of that and the consumed input offsets (`send_offsets_to_transaction` with the
//! group's metadata) are one transaction per `kafka.commit_interval`, under the transactional
//! id `<prefix>-<group_id>.rekey-<instance>`; the consumer reads read_committed. So each
//! committed input record is in the re-key topic exactly once, and detection (read_committed)
//! never sees what an aborted or fenced re-key transaction wrote.
//!
//! Order. Records of one account can come from every input partition, and detection needs
//! them in event-time order within `engine.allowed_lateness`. The stage therefore merges its
//! partitions: it writes the buffered record with the smallest event time (capped at its
//! Kafka timestamp plus `engine.max_future`, so a bogus far-future time cannot hold its
//! partition back), and only while every assigned partition has a record buffered, is at its
//! end, or has been dry for longer than `MAX_WAIT`. The output is then a function of the
//! input alone, so a restart from the committed offsets writes what the dead stage would
//! have. Limits: a partition that delivers nothing for `MAX_WAIT` while not at its end is
//! passed over until it does, and with several instances each merges only its own partitions
//! (after a backlog, records of another instance's partitions can arrive late).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fundwatch_record::{Decoded, InputDecoder, SkipKind};
use fundwatch_rules::Config;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::transactions::{init_transactions, retry, send_offsets_bounded, send_waiting, ProducerCtx};
use super::Shutdown;
use crate::client::{client_config, Role};
use crate::metrics::Metrics;
use crate::KafkaError;

/// Most records taken from the consumer per poll round.
const MAX_BATCH: usize = 4096;
/// How long the merge waits for a partition that ran dry but is not at its end.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(2);
/// Also commit after this many input records, whatever `commit_interval` says.
const COMMIT_RECORDS: usize = 100_000;

/// The transactional id of this instance's re-key stage.
pub(super) fn transactional_id(config: &Config, instance_id: &str) -> String {
    format!(
        "{}-{}.rekey-{instance_id}",
        config.kafka.transactional_id_prefix, config.kafka.group_id
    )
}

/// The re-key stage's consumer group.
pub(super) fn group_id(config: &Config) -> String {
    format!("{}.rekey", config.kafka.group_id)
}

pub(super) struct RekeyOptions {
    pub(super) config: Arc<Config>,
    pub(super) instance_id: String,
    pub(super) transactional: bool,
    pub(super) metrics: Arc<Metrics>,
    pub(super) shutdown: Shutdown,
    /// Set when the service stops (any way): commit what is open and end.
    pub(super) stop: Arc<AtomicBool>,
    /// Kept set while every assigned input partition is re-keyed to its end and committed.
    pub(super) drained: Arc<AtomicBool>,
    /// The re-key topic.
    pub(super) topic: String,
}

/// What this instance's re-key stage committed (merged into the run summary).
#[derive(Debug, Default, Clone)]
pub(super) struct RekeySummary {
    pub(super) rekeyed: u64,
    pub(super) rejected: u64,
    pub(super) rejected_by_reason: BTreeMap<String, u64>,
    pub(super) skipped: u64,
    pub(super) transactions_committed: u64,
    pub(super) transactions_aborted: u64,
}

/// A running re-key stage: stopped (and joined) when dropped.
pub(super) struct Rekey {
    stop: Arc<AtomicBool>,
    drained: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<RekeySummary, KafkaError>>>,
}

impl Rekey {
    pub(super) fn spawn(opts: RekeyOptions) -> std::io::Result<Rekey> {
        let stop = opts.stop.clone();
        let drained = opts.drained.clone();
        let thread = std::thread::Builder::new()
            .name("fundwatch-rekey".into())
            .spawn(move || {
                let r = run(opts);
                if let Err(e) = &r {
                    error!(error = %e, "the re-key stage stopped");
                }
                r
            })?;
        Ok(Rekey {
            stop,
            drained,
            thread: Some(thread),
        })
    }

    /// Every assigned input partition is re-keyed to its end and committed.
    pub(super) fn drained(&self) -> bool {
        self.drained.load(Ordering::SeqCst)
    }

    /// The thread ended on its own (it only does so on an error).
    pub(super) fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stop the stage (it commits what is open) and wait for it.
    pub(super) fn finish(mut self) -> Result<RekeySummary, KafkaError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(|t| t.join()) {
            None => Ok(RekeySummary::default()),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(KafkaError::Other("the re-key thread panicked".into())),
        }
    }
}

impl Drop for Rekey {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One buffered input record and what decoding it said.
struct Held {
    msg: OwnedMessage,
    /// Merge order: event time capped at the Kafka timestamp + max_future; i64::MIN for
    /// records that are not transactions (they go out as soon as they are first in line).
    order: i64,
    what: What,
}

enum What {
    Record { account: String },
    Skipped(SkipKind),
    Rejected { code: &'static str, reason: String },
}

/// One assigned input partition.
struct Lane {
    buf: VecDeque<Held>,
    /// At its end (no record buffered means no record there).
    eof: bool,
    /// Since when it has had nothing buffered without being at its end.
    dry_since: Option<Instant>,
    /// Offset after the last record written (or dropped) into the open transaction (-1 none).
    emitted: i64,
    /// Offset last committed by this stage (-1 none).
    committed: i64,
    /// Records below this offset are stale (polled before a seek).
    next: i64,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            buf: VecDeque::new(),
            eof: false,
            dry_since: Some(Instant::now()),
            emitted: -1,
            committed: -1,
            next: -1,
        }
    }

    /// The merge may go on without a record from this partition.
    fn passable(&self) -> bool {
        !self.buf.is_empty() || self.eof || self.dry_since.is_some_and(|t| t.elapsed() >= MAX_WAIT)
    }
}

/// The stage's state, shared by its loop and its consumer's rebalance callbacks.
struct Stage {
    config: Arc<Config>,
    decoder: InputDecoder,
    input_topic: String,
    topic: String,
    dead_letter_topic: String,
    transactional: bool,
    producer: Arc<ThreadedProducer<ProducerCtx>>,
    producer_config: ClientConfig,
    lanes: BTreeMap<i32, Lane>,
    /// A rebalance assigned partitions at least once (before that, nothing is drained).
    assigned: bool,
    in_txn: bool,
    txn_failed: bool,
    txn_rekeyed: u64,
    txn_skipped: u64,
    txn_rejects: Vec<&'static str>,
    since_commit: usize,
    last_commit: Instant,
    needs_reset: bool,
    metrics: Arc<Metrics>,
    summary: RekeySummary,
    op_timeout: Duration,
    shutdown: Shutdown,
    stop: Arc<AtomicBool>,
    fatal: Option<KafkaError>,
}

struct RekeyCtx {
    stage: Arc<Mutex<Stage>>,
    /// Bumped by every rebalance callback: records polled before one are not taken.
    generation: AtomicU64,
}

impl RekeyCtx {
    fn lock(&self) -> MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for RekeyCtx {
    fn error(&self, error: RdError, reason: &str) {
        match error {
            RdError::Global(RDKafkaErrorCode::PartitionEOF) => {}
            e => warn!(error = %e, reason, "re-key consumer error"),
        }
    }
}

impl ConsumerContext for RekeyCtx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut st = self.lock();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => st.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => st.on_revoke(consumer, tpl),
            other => {
                error!(error = ?other, "re-key: rebalance error");
                let all = consumer.assignment().unwrap_or_default();
                st.on_revoke(consumer, &all);
            }
        }
    }
}

fn lock(s: &Mutex<Stage>) -> MutexGuard<'_, Stage> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_default(cfg: &mut ClientConfig, key: &str, value: &str) {
    if cfg.get(key).is_none() {
        cfg.set(key, value);
    }
}

fn new_producer(
    config: &ClientConfig,
    transactional: bool,
    timeout: Duration,
    shutdown: &Shutdown,
    stop: &AtomicBool,
) -> Result<ThreadedProducer<ProducerCtx>, KafkaError> {
    loop {
        let p: ThreadedProducer<ProducerCtx> = config.create_with_context(ProducerCtx {
            outage: Arc::new(AtomicBool::new(false)),
        })?;
        if !transactional {
            return Ok(p);
        }
        match init_transactions(&p, timeout, shutdown, Some(Instant::now() + timeout)) {
            Ok(()) => return Ok(p),
            Err(e) if shutdown.is_triggered() || stop.load(Ordering::SeqCst) => return Err(e.into()),
            Err(e) => {
                warn!(error = %e, "re-key: init_transactions failed; retrying with a new producer");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn run(opts: RekeyOptions) -> Result<RekeySummary, KafkaError> {
    let config = opts.config.clone();
    let kafka = &config.kafka;
    let op_timeout = Duration::from_secs(30);
    let mut pc = client_config(&kafka.brokers, &kafka.client, Role::Producer)?;
    if opts.transactional {
        pc.set("transactional.id", transactional_id(&config, &opts.instance_id));
        set_default(&mut pc, "transaction.timeout.ms", "30000");
    }
    set_default(&mut pc, "enable.idempotence", "true");
    set_default(&mut pc, "linger.ms", "5");
    // Fences this instance's previous re-key stage and aborts its open transaction before the
    // consumer reads the group's committed offsets.
    let producer = new_producer(&pc, opts.transactional, op_timeout, &opts.shutdown, &opts.stop)?;
    let decoder = config
        .input
        .decoder()
        .map_err(|e| KafkaError::Other(format!("[input]: {e}")))?;
    let group = group_id(&config);
    let mut cc = client_config(&kafka.brokers, &kafka.client, Role::Consumer)?;
    cc.set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // What a transactional feed (Debezium with exactly.once.support) aborted is not input.
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true");
    set_default(&mut cc, "auto.offset.reset", "earliest");
    set_default(&mut cc, "session.timeout.ms", "10000");
    set_default(&mut cc, "heartbeat.interval.ms", "1000");
    set_default(&mut cc, "fetch.queue.backoff.ms", super::FETCH_QUEUE_BACKOFF_MS);
    set_default(&mut cc, "group.instance.id", &opts.instance_id);
    let stage = Arc::new(Mutex::new(Stage {
        config: config.clone(),
        decoder,
        input_topic: kafka.input_topic.clone(),
        topic: opts.topic.clone(),
        dead_letter_topic: kafka.dead_letter_topic.clone(),
        transactional: opts.transactional,
        producer: Arc::new(producer),
        producer_config: pc,
        lanes: BTreeMap::new(),
        assigned: false,
        in_txn: false,
        txn_failed: false,
        txn_rekeyed: 0,
        txn_skipped: 0,
        txn_rejects: Vec::new(),
        since_commit: 0,
        last_commit: Instant::now(),
        needs_reset: false,
        metrics: opts.metrics.clone(),
        summary: RekeySummary::default(),
        op_timeout,
        shutdown: opts.shutdown.clone(),
        stop: opts.stop.clone(),
        fatal: None,
    }));
    let consumer: BaseConsumer<RekeyCtx> = cc.create_with_context(RekeyCtx {
        stage: stage.clone(),
        generation: AtomicU64::new(0),
    })?;
    consumer.subscribe(&[&kafka.input_topic])?;
    info!(group = %group, topic = %kafka.input_topic, to = %opts.topic, transactional_id = %transactional_id(&config, &opts.instance_id), "re-key stage: consuming");
    let interval = Duration::from_millis(kafka.commit_interval.ms().max(10) as u64);
    loop {
        if opts.stop.load(Ordering::SeqCst) || opts.shutdown.is_triggered() {
            break;
        }
        if let Some(e) = lock(&stage).fatal.take() {
            return Err(e);
        }
        let generation = consumer.context().generation.load(Ordering::SeqCst);
        let mut batch = Vec::new();
        let mut event = consumer.poll(Duration::from_millis(100));
        while let Some(Ok(msg)) = event {
            batch.push(msg.detach());
            if batch.len() >= MAX_BATCH {
                event = None;
                break;
            }
            event = consumer.poll(Duration::ZERO);
        }
        if consumer.context().generation.load(Ordering::SeqCst) != generation {
            // Records polled around a rebalance belong to the old assignment.
            batch.clear();
        }
        let mut st = lock(&stage);
        if !st.needs_reset {
            for msg in batch {
                st.take(msg);
            }
        }
        match event {
            Some(Err(RdError::PartitionEOF(p))) => {
                if let Some(lane) = st.lanes.get_mut(&p) {
                    lane.eof = true;
                    lane.dry_since = None;
                }
            }
            Some(Err(e)) => warn!(error = %e, "re-key: consumer error"),
            None | Some(Ok(_)) => {}
        }
        if !st.needs_reset {
            st.emit_ready();
        }
        if st.txn_failed
            || (st.last_commit.elapsed() >= interval && (st.in_txn || st.since_commit > 0))
            || st.since_commit >= COMMIT_RECORDS
        {
            st.commit(&consumer);
        }
        if st.needs_reset {
            st.reset(&consumer);
        }
        let drained = st.assigned && st.at_end() && !st.in_txn && !st.needs_reset && st.all_committed();
        opts.drained.store(drained, Ordering::SeqCst);
    }
    // Stopping: commit what was written (within the grace), then leave the group.
    {
        let mut st = lock(&stage);
        st.op_timeout = Duration::from_millis(config.service.shutdown_grace.ms().max(1000) as u64);
        st.commit(&consumer);
        if st.in_txn {
            st.abort();
        }
        st.lanes.clear();
    }
    consumer.unsubscribe();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(50));
        if !consumer.assignment().is_ok_and(|a| a.count() > 0) {
            break;
        }
    }
    drop(consumer);
    let summary = std::mem::take(&mut lock(&stage).summary);
    info!(?summary, "re-key stage stopped");
    Ok(summary)
}

impl Stage {
    fn on_assign<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        self.assigned = true;
        let mut assign = TopicPartitionList::new();
        for el in tpl.elements().iter().filter(|e| e.topic() == self.input_topic) {
            // Offset::Invalid: from the group's committed offset (read stable, read_committed).
            let _ = assign.add_partition_offset(&self.input_topic, el.partition(), Offset::Invalid);
            self.lanes.insert(el.partition(), Lane::new());
        }
        let partitions: Vec<i32> = self.lanes.keys().copied().collect();
        info!(partitions = ?partitions, "re-key: input partitions assigned");
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
        if consumer.assignment_lost() {
            warn!("re-key: assignment lost: aborting the open transaction");
            self.abort();
        } else {
            // The next owner goes on from what was written.
            self.commit(consumer);
            if self.in_txn {
                self.abort();
            }
        }
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        for p in &revoked {
            self.lanes.remove(p);
        }
        if !cooperative {
            self.lanes.clear();
        }
        // The kept lanes' positions are past whatever was aborted: re-read them.
        self.needs_reset = self.needs_reset && !self.lanes.is_empty();
        info!(partitions = ?revoked, "re-key: input partitions revoked");
        let res = if cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
        if let Err(e) = res {
            warn!(error = %e, "re-key: unassign failed");
        }
    }

    /// Decode one polled record and buffer it in its partition's lane.
    fn take(&mut self, msg: OwnedMessage) {
        let Some(lane) = self.lanes.get_mut(&msg.partition()) else {
            return;
        };
        if msg.offset() < lane.next {
            return;
        }
        lane.next = msg.offset() + 1;
        lane.eof = false;
        lane.dry_since = None;
        let max_future = self.config.engine.max_future.ms();
        let (order, what) = match self.decoder.decode(msg.payload().unwrap_or(&[])) {
            Decoded::Record(tx) => {
                let cap = msg
                    .timestamp()
                    .to_millis()
                    .map_or(i64::MAX, |kts| kts.saturating_add(max_future));
                (
                    tx.ts_ms.min(cap),
                    What::Record {
                        account: tx.account.into_owned(),
                    },
                )
            }
            Decoded::Skipped(kind) => (i64::MIN, What::Skipped(kind)),
            Decoded::Rejected(reason) => (
                i64::MIN,
                What::Rejected {
                    code: reason.code(),
                    reason: reason.to_string(),
                },
            ),
        };
        lane.buf.push_back(Held { msg, order, what });
    }

    /// Write buffered records in merge order while the merge may go on.
    fn emit_ready(&mut self) {
        loop {
            if self.txn_failed || !self.lanes.values().all(Lane::passable) {
                return;
            }
            let next = self
                .lanes
                .iter()
                .filter_map(|(p, l)| l.buf.front().map(|h| (h.order, *p)))
                .min();
            let Some((_, p)) = next else { return };
            let Some(lane) = self.lanes.get_mut(&p) else { return };
            let Some(held) = lane.buf.pop_front() else { return };
            if lane.buf.is_empty() && !lane.eof {
                lane.dry_since = Some(Instant::now());
            }
            lane.emitted = held.msg.offset() + 1;
            self.since_commit += 1;
            self.write(held);
        }
    }

    fn ensure_txn(&mut self) -> bool {
        if self.transactional && !self.in_txn {
            if let Err(e) = self.producer.begin_transaction() {
                warn!(error = %e, "re-key: cannot begin a transaction");
                self.txn_failed = true;
                return false;
            }
            self.in_txn = true;
        }
        true
    }

    fn write(&mut self, held: Held) {
        if !self.ensure_txn() {
            return;
        }
        let msg = &held.msg;
        let sent = match &held.what {
            What::Record { account } => {
                let mut rec = BaseRecord::to(&self.topic)
                    .key(account.as_str())
                    .payload(msg.payload().unwrap_or(&[]));
                // The service bounds a record's event time by its Kafka timestamp.
                if let Some(ts) = msg.timestamp().to_millis() {
                    rec = rec.timestamp(ts);
                }
                if let Some(h) = msg.headers() {
                    rec = rec.headers(h.clone());
                }
                let r = send_waiting(&self.producer, rec);
                if r.is_ok() {
                    self.txn_rekeyed += 1;
                    self.metrics.rekeyed.inc();
                }
                r
            }
            What::Skipped(kind) => {
                self.txn_skipped += 1;
                self.metrics.input_skipped.with_label_values(&[kind.as_str()]).inc();
                Ok(())
            }
            What::Rejected { code, reason } => {
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "fundwatch.reason",
                        value: Some(reason.as_str()),
                    })
                    .insert(Header {
                        key: "fundwatch.reason_code",
                        value: Some(*code),
                    })
                    .insert(Header {
                        key: "fundwatch.source.topic",
                        value: Some(self.input_topic.as_str()),
                    })
                    .insert(Header {
                        key: "fundwatch.source.partition",
                        value: Some(&msg.partition().to_string()),
                    })
                    .insert(Header {
                        key: "fundwatch.source.offset",
                        value: Some(&msg.offset().to_string()),
                    });
                let rec = BaseRecord::to(&self.dead_letter_topic)
                    .key(msg.key().unwrap_or(&[]))
                    .payload(msg.payload().unwrap_or(&[]))
                    .headers(headers);
                let r = send_waiting(&self.producer, rec);
                if r.is_ok() {
                    self.metrics.records_rejected.with_label_values(&[code]).inc();
                    self.metrics.dead_letters.inc();
                    self.txn_rejects.push(code);
                }
                r
            }
        };
        if let Err(e) = sent {
            warn!(error = %e, "re-key: produce failed: the transaction will be aborted");
            self.txn_failed = true;
        }
    }

    /// Every assigned partition read to its end and written out.
    fn at_end(&self) -> bool {
        self.lanes.values().all(|l| l.eof && l.buf.is_empty())
    }

    fn all_committed(&self) -> bool {
        self.lanes.values().all(|l| l.emitted <= l.committed)
    }

    fn offsets(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (p, lane) in &self.lanes {
            if lane.emitted >= 0 && lane.emitted > lane.committed {
                let _ = tpl.add_partition_offset(&self.input_topic, *p, Offset::Offset(lane.emitted));
            }
        }
        tpl
    }

    /// Commit what was written with the input offsets it consumed. On failure the transaction
    /// is aborted and every partition re-read from its committed offset.
    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.last_commit = Instant::now();
        self.since_commit = 0;
        if self.txn_failed {
            self.abort();
            return;
        }
        if self.needs_reset {
            return;
        }
        let tpl = self.offsets();
        if tpl.count() == 0 && !self.in_txn {
            return;
        }
        let started = Instant::now();
        let result: Result<(), KafkaError> = if self.transactional {
            self.commit_txn(consumer, &tpl)
        } else {
            self.producer
                .flush(self.op_timeout)
                .map_err(KafkaError::from)
                .and_then(|()| {
                    if tpl.count() > 0 {
                        consumer.commit(&tpl, CommitMode::Sync)?;
                    }
                    Ok(())
                })
        };
        match result {
            Ok(()) => {
                self.in_txn = false;
                for el in tpl.elements() {
                    if let (Some(lane), Offset::Offset(o)) = (self.lanes.get_mut(&el.partition()), el.offset()) {
                        lane.committed = o;
                    }
                }
                let s = &mut self.summary;
                s.rekeyed += std::mem::take(&mut self.txn_rekeyed);
                s.skipped += std::mem::take(&mut self.txn_skipped);
                for code in self.txn_rejects.drain(..) {
                    s.rejected += 1;
                    *s.rejected_by_reason.entry(code.to_owned()).or_default() += 1;
                }
                s.transactions_committed += 1;
                self.metrics.rekey_transactions.with_label_values(&["committed"]).inc();
                debug!(
                    partitions = tpl.count(),
                    seconds = started.elapsed().as_secs_f64(),
                    "re-key: committed"
                );
            }
            Err(e) => {
                warn!(error = %e, "re-key: commit failed: aborting and re-reading from the committed offsets");
                self.abort();
            }
        }
    }

    fn commit_txn<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), KafkaError> {
        if !self.ensure_txn() {
            return Err(KafkaError::Other("cannot begin a transaction".into()));
        }
        if tpl.count() > 0 {
            let producer = self.producer.clone();
            let mut wedged = false;
            let r = retry(self.op_timeout, |t| {
                let cgm = consumer.group_metadata().ok_or(RdError::Canceled)?;
                send_offsets_bounded(&producer, tpl, cgm, t).unwrap_or_else(|| {
                    wedged = true;
                    Err(RdError::Canceled)
                })
            });
            if wedged {
                // The call never returned: the producer is replaced (the new one fences it).
                self.txn_failed = true;
                self.recreate_producer();
                return Err(KafkaError::Other("send_offsets_to_transaction did not return".into()));
            }
            r?;
        }
        retry(self.op_timeout, |t| self.producer.commit_transaction(t))?;
        Ok(())
    }

    /// Abort the open transaction; every lane's position is then past records that were not
    /// committed, so all are re-read from the committed offsets.
    fn abort(&mut self) {
        if self.transactional && (self.in_txn || self.producer.client().fatal_error().is_some()) {
            let fatal = self.producer.client().fatal_error().is_some();
            let res = if fatal {
                Err(None)
            } else {
                retry(self.op_timeout, |t| self.producer.abort_transaction(t)).map_err(Some)
            };
            if let Err(e) = res {
                warn!(error = ?e.map(|e| e.to_string()), "re-key: abort failed: re-creating the producer");
                self.recreate_producer();
            }
            self.metrics.rekey_transactions.with_label_values(&["aborted"]).inc();
            self.summary.transactions_aborted += 1;
        }
        self.in_txn = false;
        self.txn_failed = false;
        self.txn_rekeyed = 0;
        self.txn_skipped = 0;
        self.txn_rejects.clear();
        self.needs_reset = !self.lanes.is_empty();
    }

    /// A new producer under the same transactional id: its `init_transactions` fences the old
    /// one and aborts whatever it had open.
    fn recreate_producer(&mut self) {
        self.in_txn = false;
        match new_producer(
            &self.producer_config,
            self.transactional,
            self.op_timeout,
            &self.shutdown,
            &self.stop,
        ) {
            Ok(p) => {
                self.producer = Arc::new(p);
                info!("re-key: transactional producer re-created");
            }
            Err(e) => self.fatal = Some(e),
        }
        self.needs_reset = !self.lanes.is_empty();
    }

    /// Re-read every lane from the group's committed offset (after an abort).
    fn reset<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut tpl = TopicPartitionList::new();
        for p in self.lanes.keys() {
            tpl.add_partition(&self.input_topic, *p);
        }
        let committed = match consumer.committed_offsets(tpl, self.op_timeout) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "re-key: cannot read the committed offsets; retrying the reset");
                std::thread::sleep(Duration::from_secs(1));
                return;
            }
        };
        let mut seek = TopicPartitionList::new();
        for el in committed.elements() {
            let Some(lane) = self.lanes.get_mut(&el.partition()) else {
                continue;
            };
            *lane = Lane::new();
            let start = match el.offset() {
                Offset::Offset(o) if o >= 0 => {
                    lane.committed = o;
                    lane.next = o;
                    Offset::Offset(o)
                }
                _ => Offset::Beginning,
            };
            let _ = seek.add_partition_offset(&self.input_topic, el.partition(), start);
        }
        let failed = match consumer.seek_partitions(seek, self.op_timeout) {
            Ok(res) => res.elements().iter().any(|el| el.error().is_err()),
            Err(_) => true,
        };
        if failed {
            warn!("re-key: seek failed; retrying the reset");
            std::thread::sleep(Duration::from_secs(1));
            return;
        }
        self.needs_reset = false;
        info!(partitions = ?self.lanes.keys().collect::<Vec<_>>(), "re-key: partitions reset to their committed offsets");
    }
}
