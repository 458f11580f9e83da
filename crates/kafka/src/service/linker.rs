//! The case linker of `fundwatch run`, on its own thread (exactly-once argument: crate doc,
//! point 9). Every instance runs one; they form the group `<group_id>.cases` on the
//! single-partition trace topic, so one of them is active and the others stand by.
//!
//! The active one: fences any earlier active linker (`init_transactions` under the one
//! transactional id `<prefix>-<group_id>-cases`), reads the trace topic from the beginning up
//! to the group's committed offset T with emit off (one `apply_all`: the topic is compacted,
//! so only some keys' intermediate traces are still there), then everything after T up to
//! the end as its first live batch, then a batch per `kafka.commit_interval`. Each batch's
//! case versions (to `kafka.case_topic`), linked alerts (to `kafka.alert_topic`, header
//! `fundwatch.source = linker`), office records (`[routing]`) and the consumed offset go in
//! one transaction. On revoke or any failure it aborts and drops its state; it restores
//! again when (re)assigned.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundwatch_cases::{route_alert, route_case, Linker};
use fundwatch_engine::AccountTrace;
use fundwatch_rules::Config;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::processing::routed_headers;
use super::transactions::{init_transactions, retry, send_offsets_bounded, send_waiting, ProducerCtx};
use super::Shutdown;
use crate::client::{client_config, Role};
use crate::committed_output::{self, QuietEof, SOURCE_HEADER};
use crate::metrics::Metrics;
use crate::KafkaError;

/// The partition linked (the trace topic has one).
const PARTITION: i32 = 0;
/// Most records taken from the consumer per poll round.
const MAX_BATCH: usize = 4096;
/// In drain mode, how long a standing-by linker waits for the traces to be linked (by
/// itself once assigned, or by the active one) before it gives up.
const DRAIN_WAIT: Duration = Duration::from_secs(120);

/// What this instance's linker did (merged into the run summary).
#[derive(Debug, Default, Clone)]
pub(super) struct LinkerSummary {
    pub(super) traces: u64,
    pub(super) case_versions: u64,
    pub(super) linked_alerts: u64,
    pub(super) cases_open: u64,
    pub(super) restores: u64,
    pub(super) restored_traces: u64,
    pub(super) routed: BTreeMap<String, u64>,
}

pub(super) struct LinkerOptions {
    pub(super) config: Arc<Config>,
    pub(super) instance_id: String,
    pub(super) transactional: bool,
    pub(super) metrics: Arc<Metrics>,
    pub(super) shutdown: Shutdown,
    /// Set once the main loop has drained the input and committed (drain mode): link what
    /// is on the trace topic, commit and stop.
    pub(super) drain: Arc<AtomicBool>,
}

/// The transactional id of the linkers of `config`'s group (the same in every instance).
pub(super) fn transactional_id(config: &Config) -> String {
    format!(
        "{}-{}-cases",
        config.kafka.transactional_id_prefix, config.kafka.group_id
    )
}

pub(super) fn spawn(
    opts: LinkerOptions,
) -> std::io::Result<std::thread::JoinHandle<Result<LinkerSummary, KafkaError>>> {
    std::thread::Builder::new()
        .name("fundwatch-linker".into())
        .spawn(move || {
            let r = run(opts);
            if let Err(e) = &r {
                error!(error = %e, "the case linker stopped");
            }
            r
        })
}

enum Ev {
    Assigned,
    Revoked,
}

struct LinkCtx {
    topic: String,
    events: Mutex<Vec<Ev>>,
    generation: AtomicU64,
}

impl ClientContext for LinkCtx {
    fn error(&self, error: RdError, reason: &str) {
        match error {
            RdError::Global(RDKafkaErrorCode::PartitionEOF) => {}
            e => warn!(error = %e, reason, "linker consumer error"),
        }
    }
}

impl ConsumerContext for LinkCtx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // Always from the beginning: the restore reads up to the committed offset.
                let mut assign = TopicPartitionList::new();
                let ours = tpl
                    .elements()
                    .iter()
                    .any(|e| e.topic() == self.topic && e.partition() == PARTITION);
                if ours {
                    let _ = assign.add_partition_offset(&self.topic, PARTITION, Offset::Beginning);
                }
                let res = if cooperative {
                    consumer.incremental_assign(&assign)
                } else {
                    consumer.assign(&assign)
                };
                match res {
                    Ok(()) if ours => events.push(Ev::Assigned),
                    Ok(()) => {}
                    Err(e) => error!(error = %e, "linker: assign failed"),
                }
                info!(active = ours, "linker: trace partition assigned");
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    error!(error = ?err, "linker: rebalance error");
                }
                events.push(Ev::Revoked);
                let res = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = res {
                    warn!(error = %e, "linker: unassign failed");
                }
                info!("linker: trace partition revoked");
            }
        }
    }
}

enum Phase {
    /// Reading the traces below the committed offset with emit off.
    Restoring {
        target: i64,
        buf: Vec<AccountTrace>,
    },
    /// The first live batch: everything after the committed offset up to the end.
    CatchUp {
        until: i64,
    },
    Live,
}

/// The active linker: its state, producer and transaction.
struct Active {
    linker: Linker,
    producer: Arc<ThreadedProducer<ProducerCtx>>,
    phase: Phase,
    pending: Vec<AccountTrace>,
    /// Last record's offset + 1 (-1 none yet).
    next_offset: i64,
    committed: i64,
    in_txn: bool,
    last_commit: Instant,
    /// Linked alerts already committed on the alert topic: not sent again.
    linked_done: HashSet<String>,
}

struct Ctl {
    opts: LinkerOptions,
    topic: String,
    producer_config: ClientConfig,
    reader_config: ClientConfig,
    op_timeout: Duration,
    summary: LinkerSummary,
}

fn run(opts: LinkerOptions) -> Result<LinkerSummary, KafkaError> {
    let kafka = &opts.config.kafka;
    let topic = kafka.trace_topic.clone();
    let mut pc = client_config(&kafka.brokers, &kafka.client, Role::Producer)?;
    if opts.transactional {
        pc.set("transactional.id", transactional_id(&opts.config));
        if pc.get("transaction.timeout.ms").is_none() {
            pc.set("transaction.timeout.ms", "30000");
        }
    }
    if pc.get("enable.idempotence").is_none() {
        pc.set("enable.idempotence", "true");
    }
    if pc.get("linger.ms").is_none() {
        pc.set("linger.ms", "5");
    }
    let base = client_config(&kafka.brokers, &kafka.client, Role::Consumer)?;
    let mut cc = base.clone();
    let group = format!("{}.cases", kafka.group_id);
    cc.set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    for (k, v) in [
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
        ("fetch.queue.backoff.ms", super::FETCH_QUEUE_BACKOFF_MS),
        ("group.instance.id", opts.instance_id.as_str()),
    ] {
        if cc.get(k).is_none() {
            cc.set(k, v);
        }
    }
    let mut reader_config = base;
    reader_config.set("group.id", &group);
    let consumer: BaseConsumer<LinkCtx> = cc.create_with_context(LinkCtx {
        topic: topic.clone(),
        events: Mutex::new(Vec::new()),
        generation: AtomicU64::new(0),
    })?;
    consumer.subscribe(&[&topic])?;
    info!(group = %group, topic = %topic, "linker: standing by for the trace partition");
    let mut ctl = Ctl {
        topic,
        producer_config: pc,
        reader_config,
        op_timeout: Duration::from_secs(30),
        summary: LinkerSummary::default(),
        opts,
    };
    let interval = Duration::from_millis(ctl.opts.config.kafka.commit_interval.ms().max(10) as u64);
    let mut active: Option<Active> = None;
    let mut eof = false;
    let mut drain_started: Option<Instant> = None;
    let mut last_drain_check = Instant::now() - Duration::from_secs(10);
    loop {
        if ctl.opts.shutdown.is_triggered() {
            let grace = Duration::from_millis(ctl.opts.config.service.shutdown_grace.ms().max(1000) as u64);
            ctl.op_timeout = grace;
            if let Some(mut a) = active.take() {
                if matches!(a.phase, Phase::Live | Phase::CatchUp { .. }) {
                    if let Err(e) = ctl.commit(&consumer, &mut a, eof) {
                        warn!(error = %e, "linker: final commit failed; aborted");
                    }
                }
                ctl.abort(&mut a);
            }
            break;
        }
        // A batch of records, ended by an event or by a rebalance inside a poll.
        let generation = consumer.context().generation.load(Ordering::SeqCst);
        let mut batch = Vec::new();
        let mut event = consumer.poll(Duration::from_millis(100));
        while let Some(Ok(msg)) = event {
            batch.push(msg);
            if batch.len() >= MAX_BATCH {
                event = None;
                break;
            }
            event = consumer.poll(Duration::ZERO);
        }
        let events: Vec<Ev> = std::mem::take(&mut *consumer.context().events.lock().unwrap_or_else(|e| e.into_inner()));
        if consumer.context().generation.load(Ordering::SeqCst) != generation {
            // Records polled around a rebalance belong to the old assignment.
            batch.clear();
        }
        for ev in events {
            match ev {
                Ev::Revoked => {
                    if let Some(mut a) = active.take() {
                        info!("linker: partition revoked: aborting and dropping the linker's state");
                        ctl.abort(&mut a);
                    }
                    ctl.opts.metrics.cases_open.set(0);
                }
                Ev::Assigned => {
                    if let Some(mut a) = active.take() {
                        ctl.abort(&mut a);
                    }
                    eof = false;
                    active = ctl.activate(&consumer);
                }
            }
        }
        let mut failed = false;
        if let Some(a) = active.as_mut() {
            for msg in &batch {
                if msg.partition() != PARTITION {
                    continue;
                }
                eof = false;
                let offset = msg.offset();
                let trace = msg
                    .payload()
                    .and_then(|p| serde_json::from_slice::<AccountTrace>(p).ok());
                if trace.is_none() && msg.payload().is_some() {
                    warn!(offset, "linker: a record of the trace topic is not a trace; skipped");
                }
                if restore_target(a).is_some_and(|t| offset >= t) {
                    ctl.finish_restore(&consumer, a);
                }
                match &mut a.phase {
                    Phase::Restoring { buf, .. } => buf.extend(trace),
                    Phase::CatchUp { .. } | Phase::Live => a.pending.extend(trace),
                }
                a.next_offset = offset + 1;
                if let Phase::CatchUp { until } = a.phase {
                    if a.next_offset >= until {
                        failed |= ctl.finish_catch_up(&consumer, a, false);
                    }
                }
            }
            if let Some(Err(RdError::PartitionEOF(PARTITION))) = &event {
                eof = true;
            }
            if eof {
                if let Some(target) = restore_target(a) {
                    let at = position(&consumer, &ctl.topic).max(a.next_offset);
                    if at >= target {
                        ctl.finish_restore(&consumer, a);
                    }
                }
                if matches!(a.phase, Phase::CatchUp { .. }) {
                    failed |= ctl.finish_catch_up(&consumer, a, true);
                }
            }
            if !failed && matches!(a.phase, Phase::Live) && a.last_commit.elapsed() >= interval {
                if let Err(e) = ctl.commit(&consumer, a, eof) {
                    warn!(error = %e, "linker: commit failed: aborting and restoring");
                    failed = true;
                }
            }
        }
        match &event {
            Some(Err(RdError::PartitionEOF(_))) | None | Some(Ok(_)) => {}
            Some(Err(e)) => warn!(error = %e, "linker: consumer error"),
        }
        if failed {
            if let Some(mut a) = active.take() {
                ctl.abort(&mut a);
            }
            // Still assigned: restore again from the beginning.
            if consumer
                .seek(&ctl.topic, PARTITION, Offset::Beginning, Duration::from_secs(10))
                .is_ok()
            {
                eof = false;
                active = ctl.activate(&consumer);
            } else {
                warn!("linker: cannot seek back; waiting for a rebalance");
            }
        }
        if ctl.opts.drain.load(Ordering::SeqCst) {
            let started = *drain_started.get_or_insert_with(Instant::now);
            if last_drain_check.elapsed() >= Duration::from_millis(500) {
                last_drain_check = Instant::now();
                let idle = match active.as_mut() {
                    Some(a) => {
                        eof && matches!(a.phase, Phase::Live) && {
                            if !a.pending.is_empty() || a.in_txn {
                                if let Err(e) = ctl.commit(&consumer, a, eof) {
                                    warn!(error = %e, "linker: commit failed");
                                }
                            }
                            a.pending.is_empty() && !a.in_txn
                        }
                    }
                    None => true,
                };
                // The active linker knows its own committed offset: at the topic's end, all is
                // linked without asking the group (the in-process mock cluster of `demo` does
                // not report transactional offset commits back, so asking alone waits out
                // DRAIN_WAIT there).
                let at_end = idle
                    && active
                        .as_ref()
                        .is_some_and(|a| a.committed >= ctl.end_offset(&consumer));
                if idle && (at_end || ctl.all_linked(&consumer)) {
                    info!("linker: every committed trace is linked; stopping (drain mode)");
                    if let Some(mut a) = active.take() {
                        ctl.abort(&mut a);
                    }
                    break;
                }
                if started.elapsed() >= DRAIN_WAIT {
                    warn!(
                        waited_s = DRAIN_WAIT.as_secs(),
                        "linker: traces are still unlinked; stopping anyway (the next active linker links them)"
                    );
                    if let Some(mut a) = active.take() {
                        ctl.abort(&mut a);
                    }
                    break;
                }
            }
        }
    }
    consumer.unsubscribe();
    ctl.opts.metrics.cases_open.set(0);
    Ok(ctl.summary)
}

fn restore_target(a: &Active) -> Option<i64> {
    match a.phase {
        Phase::Restoring { target, .. } => Some(target),
        _ => None,
    }
}

/// The consumer's position on the trace partition (-1 unknown).
fn position<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str) -> i64 {
    let Ok(t) = consumer.position() else { return -1 };
    t.find_partition(topic, PARTITION)
        .and_then(|e| e.offset().to_raw())
        .unwrap_or(-1)
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

impl Ctl {
    /// Take over the trace partition: a producer under the linkers' transactional id (its
    /// `init_transactions` fences the previous active linker and aborts its open
    /// transaction), the committed offset, the linked alerts already committed.
    fn activate<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Option<Active> {
        let started = Instant::now();
        let shutdown = self.opts.shutdown.clone();
        let producer = loop {
            if shutdown.is_triggered() {
                return None;
            }
            let p: ThreadedProducer<ProducerCtx> = match self.producer_config.create_with_context(ProducerCtx {
                outage: Arc::new(AtomicBool::new(false)),
            }) {
                Ok(p) => p,
                Err(e) => {
                    warn!(error = %e, "linker: cannot create the producer; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if !self.opts.transactional {
                break p;
            }
            match init_transactions(&p, self.op_timeout, &shutdown, Some(Instant::now() + self.op_timeout)) {
                Ok(()) => break p,
                Err(e) => {
                    warn!(error = %e, "linker: init_transactions failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        let committed = loop {
            if shutdown.is_triggered() {
                return None;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, PARTITION);
            match consumer.committed_offsets(tpl, self.op_timeout) {
                Ok(t) => {
                    break t
                        .find_partition(&self.topic, PARTITION)
                        .and_then(|e| e.offset().to_raw())
                        .filter(|o| *o >= 0)
                        .unwrap_or(0)
                }
                Err(e) => {
                    warn!(error = %e, "linker: cannot read the committed offset yet; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        let linked_done = loop {
            if shutdown.is_triggered() {
                return None;
            }
            match committed_output::linked_alerts(
                &self.reader_config,
                &self.opts.config.kafka.alert_topic,
                self.op_timeout,
            ) {
                Ok(s) => break s,
                Err(e) => {
                    warn!(error = %e, "linker: cannot read back the linked alerts yet; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        let mut linker = Linker::new(self.opts.config.cases.clone());
        linker.set_emit(false);
        info!(
            committed,
            linked_alerts_committed = linked_done.len(),
            seconds = started.elapsed().as_secs_f64(),
            "linker: active; restoring from the trace topic"
        );
        Some(Active {
            linker,
            producer: Arc::new(producer),
            phase: Phase::Restoring {
                target: committed,
                buf: Vec::new(),
            },
            pending: Vec::new(),
            next_offset: -1,
            committed,
            in_txn: false,
            last_commit: Instant::now(),
            linked_done,
        })
    }

    /// Everything below the committed offset is read: apply it with emit off (one batch),
    /// then catch up to the end as the first live batch.
    fn finish_restore<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, a: &mut Active) {
        let Phase::Restoring { target, buf } = std::mem::replace(&mut a.phase, Phase::Live) else {
            return;
        };
        let n = buf.len() as u64;
        a.linker.apply_all(buf);
        drop(a.linker.take_cases());
        drop(a.linker.take_alerts());
        a.linker.set_emit(true);
        let until = consumer
            .fetch_watermarks(&self.topic, PARTITION, Duration::from_secs(10))
            .map_or(i64::MAX, |(_, high)| high);
        self.summary.restores += 1;
        self.summary.restored_traces += n;
        self.opts.metrics.linker_restores.inc();
        let open = a.linker.stats().open_cases;
        self.opts.metrics.cases_open.set(open as i64);
        info!(
            traces = n,
            committed = target,
            open_cases = open,
            catch_up_to = until,
            "linker: restored; catching up as one batch"
        );
        a.phase = Phase::CatchUp { until };
    }

    /// The first live batch is complete; returns whether its commit failed.
    fn finish_catch_up<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, a: &mut Active, eof: bool) -> bool {
        a.phase = Phase::Live;
        let n = a.pending.len();
        match self.commit(consumer, a, eof) {
            Ok(()) => {
                info!(traces = n, "linker: caught up; live");
                false
            }
            Err(e) => {
                warn!(error = %e, "linker: catch-up commit failed: aborting and restoring");
                true
            }
        }
    }

    fn send(&self, a: &mut Active, topic: &str, key: &str, value: &[u8], headers: OwnedHeaders) -> Result<(), RdError> {
        if self.opts.transactional && !a.in_txn {
            a.producer.begin_transaction()?;
            a.in_txn = true;
        }
        send_waiting(
            &a.producer,
            BaseRecord::to(topic).key(key).payload(value).headers(headers),
        )
    }

    /// Apply the pending traces as one batch and commit its outputs with the offset.
    fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        a: &mut Active,
        eof: bool,
    ) -> Result<(), KafkaError> {
        a.last_commit = Instant::now();
        let config = self.opts.config.clone();
        let kafka = &config.kafka;
        let traces = a.pending.len() as u64;
        a.linker.apply_all(std::mem::take(&mut a.pending));
        let cases = a.linker.take_cases();
        let alerts = a.linker.take_alerts();
        let mut routed: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut linked = Vec::new();
        for c in &cases {
            let json = serde_json::to_vec(c).map_err(|e| KafkaError::Other(format!("case: {e}")))?;
            let mut h = OwnedHeaders::new();
            if let Some(r) = &c.lead_region {
                h = h.insert(header("fundwatch.region", r));
            }
            self.send(a, &kafka.case_topic, &c.case_id, &json, h)?;
            for r in route_case(&config.routing, c) {
                self.send(a, &r.topic, &r.key, r.value.as_bytes(), routed_headers(&r))?;
                *routed.entry(r.kind).or_default() += 1;
            }
        }
        for al in &alerts {
            if a.linked_done.contains(&al.alert_id) {
                info!(alert_id = %al.alert_id, "linker: linked alert already committed; not sent again");
                continue;
            }
            let json = serde_json::to_vec(al).map_err(|e| KafkaError::Other(format!("alert: {e}")))?;
            let h = OwnedHeaders::new().insert(header(SOURCE_HEADER, "linker"));
            self.send(a, &kafka.alert_topic, &al.account, &json, h)?;
            if let Some(r) = route_alert(&config.routing, al) {
                self.send(a, &r.topic, &r.key, r.value.as_bytes(), routed_headers(&r))?;
                *routed.entry(r.kind).or_default() += 1;
            }
            linked.push(al.alert_id.clone());
        }
        let mut next = a.next_offset.max(a.committed);
        if eof {
            next = next.max(position(consumer, &self.topic));
        }
        let mut tpl = TopicPartitionList::new();
        if next > a.committed {
            tpl.add_partition_offset(&self.topic, PARTITION, Offset::Offset(next))?;
        }
        if tpl.count() == 0 && !a.in_txn {
            return Ok(());
        }
        if self.opts.transactional {
            if !a.in_txn {
                a.producer.begin_transaction()?;
                a.in_txn = true;
            }
            if tpl.count() > 0 {
                let producer = a.producer.clone();
                retry(self.op_timeout, |t| {
                    let cgm = consumer.group_metadata().ok_or(RdError::Canceled)?;
                    send_offsets_bounded(&producer, &tpl, cgm, t).unwrap_or(Err(RdError::Canceled))
                })?;
            }
            retry(self.op_timeout, |t| a.producer.commit_transaction(t))?;
            a.in_txn = false;
        } else {
            a.producer.flush(self.op_timeout)?;
            if tpl.count() > 0 {
                consumer.commit(&tpl, CommitMode::Sync)?;
            }
        }
        a.committed = next;
        a.linked_done.extend(linked.iter().cloned());
        let m = &self.opts.metrics;
        m.linker_traces.inc_by(traces);
        m.case_versions.inc_by(cases.len() as u64);
        m.linked_alerts.inc_by(linked.len() as u64);
        for (kind, n) in &routed {
            m.routed_records.with_label_values(&[kind]).inc_by(*n);
        }
        let open = a.linker.stats().open_cases;
        m.cases_open.set(open as i64);
        let s = &mut self.summary;
        s.traces += traces;
        s.case_versions += cases.len() as u64;
        s.linked_alerts += linked.len() as u64;
        s.cases_open = open;
        for (kind, n) in routed {
            *s.routed.entry(kind.to_owned()).or_default() += n;
        }
        debug!(
            traces,
            cases = cases.len(),
            linked = linked.len(),
            offset = next,
            "linker: committed"
        );
        Ok(())
    }

    /// Abort what is open; the state is dropped with `a`.
    fn abort(&self, a: &mut Active) {
        if a.in_txn && self.opts.transactional {
            if let Err(e) = a.producer.abort_transaction(self.op_timeout) {
                // Fenced, or the broker gone: the next active linker's init aborts it.
                warn!(error = %e, "linker: abort failed");
            }
        }
        a.in_txn = false;
    }

    /// The trace partition's high watermark (`i64::MAX` when it cannot be read, so nothing
    /// is taken as linked on a failed query).
    fn end_offset<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> i64 {
        consumer
            .fetch_watermarks(&self.topic, PARTITION, Duration::from_secs(5))
            .map_or(i64::MAX, |(_, high)| high)
    }

    /// Drain mode: no committed trace beyond the group's committed offset.
    fn all_linked<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> bool {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, PARTITION);
        let committed = match consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            Ok(t) => t
                .find_partition(&self.topic, PARTITION)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0)
                .unwrap_or(0),
            Err(_) => return false,
        };
        match traces_from(&self.reader_config, &self.topic, committed, Duration::from_secs(10)) {
            Ok(n) => {
                debug!(committed, unlinked = n, "linker: drain check");
                n == 0
            }
            Err(e) => {
                debug!(error = %e, "linker: drain check failed");
                false
            }
        }
    }
}

/// Committed traces at or after `offset` (read_committed, outside the group).
fn traces_from(base: &ClientConfig, topic: &str, offset: i64, timeout: Duration) -> Result<u64, KafkaError> {
    let mut cc = base.clone();
    cc.set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let c: BaseConsumer<QuietEof> = cc.create_with_context(QuietEof)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, PARTITION, Offset::Offset(offset))?;
    c.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut n = 0;
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.payload().is_some() => n += 1,
            Some(Ok(_)) | None => {}
            Some(Err(RdError::PartitionEOF(_))) => return Ok(n),
            Some(Err(e)) => return Err(e.into()),
        }
    }
    Err(KafkaError::Other(
        "drain check: end of the trace topic not reached in time".into(),
    ))
}
