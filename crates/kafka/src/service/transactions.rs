//! The producer side: transactions begun, records sent into them, committed (with the consumed
//! offsets) or aborted; `send_offsets_to_transaction` bounded against a wedged producer;
//! retries of retriable transaction errors; the producer context.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, warn};

use super::pipeline::Pipeline;
use super::recovery::TxnCounts;
use super::Shutdown;
use crate::liveness::Phase;
use crate::KafkaError;

/// How long past its own timeout a `send_offsets_to_transaction` may take before the
/// producer counts as wedged.
pub(super) const WEDGE_GRACE: Duration = Duration::from_secs(30);

/// `send_offsets_to_transaction` on a helper thread, waited for at most `timeout` plus
/// `WEDGE_GRACE`; None if it has not returned by then. librdkafka 2.12 waits for this call's
/// reply without a deadline of its own (`rd_kafka_txn_op_req1(.., RD_POLL_INFINITE)`,
/// relying on the request chain to time out), and after a broker restart a service was seen
/// blocked there for good (gdb: the polling thread in `rd_kafka_txn_op_req0`). The thread and
/// the producer it holds are then left behind; the caller replaces the producer.
pub(super) fn send_offsets_bounded(
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
pub(super) fn bounded_call<T: Send + 'static>(
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

pub(super) fn is_retriable(e: &RdError) -> bool {
    match e {
        RdError::Transaction(t) => t.is_retriable(),
        _ => false,
    }
}

pub(super) fn requires_abort(e: &RdError) -> bool {
    match e {
        RdError::Transaction(t) => t.txn_requires_abort(),
        _ => false,
    }
}

/// Send `rec`, waiting while librdkafka's local queue is full.
pub(super) fn send_waiting<K: rdkafka::message::ToBytes + ?Sized, P: rdkafka::message::ToBytes + ?Sized>(
    producer: &ThreadedProducer<ProducerCtx>,
    mut rec: BaseRecord<'_, K, P>,
) -> Result<(), RdError> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

impl Pipeline {
    pub(super) fn producer_fatal(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    pub(super) fn ensure_txn(&mut self) -> Result<(), RdError> {
        if self.transactional && !self.txn.in_txn {
            self.producer.begin_transaction()?;
            self.txn.in_txn = true;
        }
        Ok(())
    }

    pub(super) fn send(&mut self, topic: &str, key: &[u8], payload: &[u8], headers: Option<OwnedHeaders>) {
        if self.txn.txn_failed {
            return;
        }
        if let Err(e) = self.ensure_txn() {
            warn!(error = %e, "cannot begin transaction");
            self.txn.txn_failed = true;
            return;
        }
        let mut rec = BaseRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        if let Err(e) = send_waiting(&self.producer, rec) {
            warn!(error = %e, topic, "produce failed: the transaction will be aborted");
            self.txn.txn_failed = true;
        }
    }

    /// Offsets to commit: every live partition that moved, and those checkpointed now (so
    /// that their checkpoint is fenced with them, even when the offset did not move).
    pub(super) fn offsets(&self, checkpointed: &[i32]) -> Result<TopicPartitionList, RdError> {
        let mut tpl = TopicPartitionList::new();
        for (p, part) in &self.parts {
            if part.live && part.next_offset >= 0 && (part.next_offset > part.committed || checkpointed.contains(p)) {
                tpl.add_partition_offset(&self.topic, *p, Offset::Offset(part.next_offset))?;
                if let Some(mut el) = tpl.find_partition(&self.topic, *p) {
                    el.set_metadata(part.meta());
                }
            }
        }
        Ok(tpl)
    }

    pub(super) fn due(&self, interval: Duration, records: usize) -> bool {
        self.txn.txn_failed
            || (records > 0 && self.txn.since_commit >= records)
            || (self.txn.last_commit.elapsed() >= interval && (self.txn.in_txn || self.txn.since_commit > 0))
    }

    /// Commit alerts, dead letters and offsets in one transaction. On an abortable error the
    /// transaction is aborted and every partition rebuilt from its committed offset.
    pub(super) fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), KafkaError> {
        self.liveness.beat(Phase::Committing);
        self.txn.last_commit = Instant::now();
        self.txn.since_commit = 0;
        if self.txn.txn_failed {
            self.abort();
            return Ok(());
        }
        if self.needs_reset {
            // The engines' positions are past an aborted transaction: committing them would
            // skip its alerts. Nothing is open; the reset re-reads from the committed offsets.
            return Ok(());
        }
        let checkpointed = self.due_checkpoints();
        self.force_checkpoint = false;
        let tpl = self.offsets(&checkpointed)?;
        if tpl.count() == 0 && !self.txn.in_txn {
            return Ok(());
        }
        if self.transactional && self.hung.outage.swap(false, Ordering::SeqCst) {
            self.hung.suspect = true;
        }
        if self.hung.suspect && !self.offsets_stable(consumer) {
            // The last transaction before the outage may have been completed by the broker
            // without its markers: committing now would commit its pending records on the
            // partitions this one touches and leave them hung on the others.
            self.abort_hung(consumer);
            return Ok(());
        }
        let started = Instant::now();
        self.write_checkpoints(&checkpointed);
        let result = if self.txn.txn_failed {
            Err(KafkaError::Other(
                "a record of the transaction could not be sent".into(),
            ))
        } else if self.transactional {
            self.commit_txn(consumer, &tpl)
        } else {
            self.commit_plain(consumer, &tpl)
        };
        self.summary.commit_seconds += started.elapsed().as_secs_f64();
        self.checkpoints_ended(&checkpointed, result.is_ok());
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
                for code in self.txn.txn_rejects.drain(..) {
                    self.summary.rejected += 1;
                    *self.summary.rejected_by_reason.entry(code.clone()).or_default() += 1;
                    *counts.rejects.entry(code).or_default() += 1;
                }
                self.summary.traces += std::mem::take(&mut self.txn.txn_traces);
                self.keys.committed += std::mem::take(&mut self.keys.in_txn);
                for (kind, n) in std::mem::take(&mut self.txn.txn_routed) {
                    *self.summary.routed_records.entry(kind.to_owned()).or_default() += n;
                }
                let alerts = std::mem::take(&mut self.txn.txn_alerts);
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
                self.txn.last_txn = counts;
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

    pub(super) fn commit_txn<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), KafkaError> {
        self.ensure_txn()?;
        if tpl.count() > 0 {
            self.send_offsets(consumer, tpl)?;
        }
        retry(self.op_timeout, |t| self.producer.commit_transaction(t))?;
        self.txn.in_txn = false;
        Ok(())
    }

    pub(super) fn commit_plain<C: ConsumerContext>(
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
    pub(super) fn abort(&mut self) {
        if self.transactional && (self.txn.in_txn || self.producer_fatal() || self.wedged) {
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
        self.txn.in_txn = false;
        self.txn.txn_failed = false;
        self.txn.txn_alerts.clear();
        self.txn.txn_rejects.clear();
        self.txn.txn_traces = 0;
        self.txn.txn_routed.clear();
        self.keys.in_txn = 0;
        self.metrics.transactions.with_label_values(&["aborted"]).inc();
        self.summary.transactions_aborted += 1;
        self.needs_reset = !self.parts.is_empty();
    }

    /// `send_offsets_to_transaction`, retried within `op_timeout`, each attempt on a helper
    /// thread (see `send_offsets_bounded`). An attempt that never returns marks the producer
    /// wedged: `abort` then replaces it instead of calling into it again.
    pub(super) fn send_offsets<C: ConsumerContext>(
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
}

pub(super) trait FatalExt {
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
pub(super) fn retry<T>(budget: Duration, mut f: impl FnMut(Duration) -> Result<T, RdError>) -> Result<T, RdError> {
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
pub(super) fn init_transactions(
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
pub(super) fn note_outage(outage: &AtomicBool, e: &RdError) -> bool {
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
pub(super) struct ProducerCtx {
    pub(super) outage: Arc<AtomicBool>,
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
