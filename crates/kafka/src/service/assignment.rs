//! Partition assignment: planning where an assigned partition starts and from which offset it
//! goes live (rebuild), the rebalance callbacks and the consumer context that runs them, the
//! once-a-second tick (go-live checks, gauges) and the end-of-input checks of drain mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fundwatch_rules::Config;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::partition::{CommitMeta, Part};
use super::pipeline::Pipeline;
use super::transactions::note_outage;
use crate::liveness::Phase;

/// Why planning failed; `unstable` when the committed-offset read itself timed out, which is
/// how pending (unstable) offsets show: librdkafka retries UNSTABLE_OFFSET_COMMIT until then.
#[derive(Debug)]
pub(super) struct PlanError {
    pub(super) error: RdError,
    pub(super) unstable: bool,
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

pub(super) fn timed_out(e: &RdError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
}

pub(super) fn horizon_ms(config: &Config) -> i64 {
    config.engine.max_history.ms().max(config.rules.longest_horizon().ms())
}

impl Pipeline {
    /// Where each partition starts and from which offset it goes live.
    pub(super) fn plan<C: ConsumerContext>(
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

    pub(super) fn on_assign<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
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
                self.needs_reset |= self.hung.read_back_pending;
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

    pub(super) fn on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
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

    pub(super) fn forget_metrics(&self, part: &Part) {
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

    pub(super) fn update_rebuilding(&self) {
        let n = self.parts.values().filter(|p| !p.live).count();
        self.metrics.partitions_rebuilding.set(n as i64);
    }

    /// Once a second: go-live checks for partitions whose rebuild range is exhausted, gauges.
    pub(super) fn tick<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, lag: bool) {
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
    pub(super) fn probe_eof<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
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

    pub(super) fn all_live_at_eof(&self) -> bool {
        !self.parts.is_empty() && self.parts.values().all(|p| p.live && p.eof)
    }
}

/// The consumer's context: rebalance callbacks work on the shared pipeline.
pub(super) struct Ctx {
    pub(super) pipe: Arc<Mutex<Pipeline>>,
    /// Shared with the pipeline: a broker connection failed (see `HungRecovery::outage`).
    pub(super) outage: Arc<AtomicBool>,
    /// Bumped by every rebalance callback: records polled before one are not processed.
    pub(super) generation: std::sync::atomic::AtomicU64,
    /// Bumped when the consumer loses a broker connection: end-of-partition flags seen before
    /// it are stale (records may have arrived meanwhile; librdkafka reports an end once).
    pub(super) disconnects: Arc<std::sync::atomic::AtomicU64>,
}

impl Ctx {
    pub(super) fn lock(&self) -> MutexGuard<'_, Pipeline> {
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
