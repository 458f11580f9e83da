//! Partition assignment: planning where an assigned partition starts and from which offset it
//! goes live (rebuild), the rebalance callbacks and the consumer context that runs them, the
//! once-a-second tick (go-live checks, gauges) and the end-of-input checks of drain mode.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fundwatch_rules::Config;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::partition::{CommitMeta, Gap, Part};
use super::pipeline::Pipeline;
use super::transactions::note_outage;
use crate::checkpoints::Unusable;
use crate::committed_output;
use crate::liveness::Phase;
use crate::KafkaError;

/// Why planning failed; `unstable` when the committed-offset read itself timed out, which is
/// how pending (unstable) offsets show: librdkafka retries UNSTABLE_OFFSET_COMMIT until then.
#[derive(Debug)]
pub(super) struct PlanError {
    pub(super) error: KafkaError,
    pub(super) unstable: bool,
}

impl From<RdError> for PlanError {
    fn from(error: RdError) -> PlanError {
        PlanError {
            error: error.into(),
            unstable: false,
        }
    }
}

impl From<KafkaError> for PlanError {
    fn from(error: KafkaError) -> PlanError {
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

/// How far back (event time) a rebuild without a checkpoint replays: every rule horizon, the
/// window history, and the longest cooldown (an alert that long ago still silences the next).
pub(super) fn lookback_ms(config: &Config) -> i64 {
    config
        .engine
        .max_history
        .ms()
        .max(config.rules.longest_horizon().ms())
        .max(config.rules.longest_cooldown().ms())
}

/// Committed alerts are produced after their records: read them back from this much before
/// the rebuild's first record's Kafka time (clock skew between producers and this service).
const EPISODE_SKEW_MS: i64 = 10 * 60 * 1000;

/// How a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Nothing committed: a new engine from the group's reset position.
    Fresh,
    /// A checkpoint, then the records after it up to the committed offset.
    Checkpoint,
    /// No usable checkpoint: rebuilt from the input topic's lookback.
    Rebuild,
    /// Committed, but nothing within the lookback before it: a new engine, live at once.
    Empty,
}

impl Start {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Start::Fresh => "fresh",
            Start::Checkpoint => "checkpoint",
            Start::Rebuild => "rebuild",
            Start::Empty => "empty",
        }
    }
}

impl Pipeline {
    /// Where each partition starts and from which offset it goes live: from its newest usable
    /// checkpoint, replaying the records between it and the committed offset; otherwise by a
    /// rebuild from the input topic over the lookback, with cooldowns read back from the
    /// committed alerts. Says when the input no longer holds what the start needs.
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
                error: error.into(),
            })?;
        let with_commits: Vec<i32> = committed
            .elements()
            .iter()
            .filter(|el| matches!(el.offset(), Offset::Offset(c) if c > 0))
            .map(|el| el.partition())
            .collect();
        let mut stored = match &self.checkpoints {
            Some(ck) if !with_commits.is_empty() => ck.load(&self.hung.probe_config, &with_commits, self.op_timeout)?,
            _ => Default::default(),
        };
        let margin = 2 * self.config.engine.allowed_lateness.ms();
        let lookback = lookback_ms(&self.config);
        // (partition, start offset, part, how, Kafka time from which the rebuild reads)
        let mut out: Vec<(i32, Offset, Part, Start, i64)> = Vec::new();
        let mut times = TopicPartitionList::new();
        // Each partition's log start (the first offset retention kept).
        let mut log_starts: BTreeMap<i32, i64> = BTreeMap::new();
        for el in committed.elements() {
            let p = el.partition();
            let mut part = self.new_part(p);
            let c = match el.offset() {
                Offset::Offset(c) if c > 0 => c,
                Offset::Offset(c) => {
                    part.committed = c;
                    out.push((p, Offset::Offset(c), part, Start::Fresh, 0));
                    continue;
                }
                _ => {
                    out.push((p, Offset::Invalid, part, Start::Fresh, 0));
                    continue;
                }
            };
            part.committed = c;
            part.live_from = c;
            part.live = false;
            let meta = serde_json::from_str::<CommitMeta>(el.metadata()).ok();
            let (low, _) = consumer.fetch_watermarks(&self.topic, p, self.op_timeout)?;
            log_starts.insert(p, low);
            if let Some(st) = stored.remove(&p) {
                match st.restore(&self.config, c) {
                    Ok(r) if r.manifest.offset < low => warn!(
                        partition = p,
                        checkpoint = r.manifest.offset,
                        log_start = low,
                        "checkpoint not used: the records between it and the committed offset were deleted by the input's retention"
                    ),
                    Ok(r) => {
                        let k = r.manifest.offset;
                        let applied = r.manifest.flushes.clone();
                        part.engine = r.engine;
                        // A restored engine comes back with tracing off (its ledgers are in
                        // the checkpoint).
                        part.engine.enable_traces(self.config.cases.enabled);
                        part.ck = r.ck;
                        part.kts = r.manifest.kts;
                        part.ets = r.manifest.ets;
                        part.gap = r.manifest.gap.clone().map(|g| Gap {
                            message: g.message,
                            until_ets: g.until_ets,
                        });
                        let flushes = meta.as_ref().map_or(applied.clone(), |m| m.flush.clone());
                        part.pending_flush = flushes
                            .iter()
                            .copied()
                            .filter(|f| *f > k || (*f == k && !applied.contains(f)))
                            .collect();
                        part.flushes = flushes;
                        if k >= c {
                            part.live = true;
                            part.pending_flush.clear();
                        }
                        info!(
                            partition = p,
                            checkpoint = k,
                            committed = c,
                            held_rows = r.manifest.held_rows,
                            "restored from checkpoint"
                        );
                        out.push((p, Offset::Offset(k), part, Start::Checkpoint, 0));
                        continue;
                    }
                    Err(Unusable::None) => {}
                    Err(e) => warn!(partition = p, reason = %e, "checkpoint not used; rebuilding from the input topic"),
                }
            }
            match meta {
                Some(meta) => {
                    part.kts = meta.kts;
                    part.ets = meta.ets;
                    part.flushes = meta.flush.clone();
                    part.pending_flush = meta.flush;
                    let newest = meta.kts.min(meta.ets);
                    let target = if newest == i64::MIN {
                        0
                    } else {
                        newest.saturating_sub(lookback).saturating_sub(margin)
                    };
                    times.add_partition_offset(&self.topic, p, Offset::Offset(target.max(0)))?;
                    out.push((p, Offset::Beginning, part, Start::Rebuild, target.max(0)));
                }
                None => {
                    warn!(
                        partition = p,
                        offset = c,
                        "committed offset has no fundwatch metadata: rebuilding from the beginning"
                    );
                    if low > 0 {
                        part.gap = Some(self.gap(p, low, None, None));
                    }
                    out.push((p, Offset::Beginning, part, Start::Rebuild, 0));
                }
            }
        }
        if times.count() > 0 {
            let targets: Vec<(i32, i64)> = times
                .elements()
                .iter()
                .filter_map(|el| el.offset().to_raw().map(|t| (el.partition(), t)))
                .collect();
            let found = consumer.offsets_for_times(times, self.op_timeout)?;
            for el in found.elements() {
                let Some(entry) = out.iter_mut().find(|e| e.0 == el.partition()) else {
                    continue;
                };
                let c = entry.2.committed;
                let low = log_starts.get(&entry.0).copied().unwrap_or(0);
                let target = targets.iter().find(|t| t.0 == entry.0).map(|t| t.1);
                match el.offset() {
                    Offset::Offset(o) if o < c => {
                        entry.1 = Offset::Offset(o);
                        if o <= low && low > 0 {
                            // The first record the lookback wants is the first one kept: older
                            // ones it may also want were deleted by retention.
                            entry.2.gap = Some(self.gap(entry.0, low, target, Some(entry.2.ets)));
                        }
                    }
                    Offset::Offset(_) => {
                        // Every record before C is older than the lookback: an empty engine is
                        // the state.
                        entry.1 = Offset::Offset(c);
                        entry.2.live = true;
                        entry.2.pending_flush.clear();
                        entry.3 = Start::Empty;
                    }
                    _ => {
                        // No offset for the time (End: seen right after records were deleted,
                        // although later ones are there): rebuild from the log start.
                        entry.1 = Offset::Beginning;
                        if low > 0 {
                            entry.2.gap = Some(self.gap(entry.0, low, target, Some(entry.2.ets)));
                        }
                    }
                }
            }
        }
        // Partitions rebuilt without a checkpoint take their cooldowns from the alert topic.
        let since = out.iter().filter(|e| e.3 == Start::Rebuild).map(|e| e.4).min();
        if let Some(since) = since {
            let episodes = committed_output::episodes(
                &self.hung.probe_config,
                &self.alert_topic,
                since.saturating_sub(EPISODE_SKEW_MS).max(0),
                self.op_timeout,
            )?;
            if !episodes.complete {
                warn!(
                    alert_topic = %self.alert_topic,
                    "the alert topic's retention deleted alerts the rebuild needs: cooldowns of those episodes cannot be rebuilt (only the ones still on the topic are applied)"
                );
            }
            let episodes = Arc::new(episodes);
            for e in out.iter_mut().filter(|e| e.3 == Start::Rebuild) {
                e.2.seed = Some(episodes.clone());
            }
        }
        let mut plan = Vec::with_capacity(out.len());
        for (p, start, mut part, how, _) in out {
            if how == Start::Rebuild {
                part.pending_flush.retain(|f| match start {
                    Offset::Offset(o) => *f > o,
                    _ => true,
                });
                part.flushes.retain(|f| part.pending_flush.contains(f));
            }
            if !part.live {
                self.metrics.partitions_rebuilding.inc();
            }
            self.metrics.partition_starts.with_label_values(&[how.as_str()]).inc();
            part.started_from = how.as_str();
            if let Some(g) = &part.gap {
                error!(partition = p, "{}", g.message);
                self.metrics.state_incomplete.with_label_values(&[&part.label]).set(1);
                self.metrics
                    .set_problem(&format!("partition {p}"), Some(g.message.clone()));
            } else {
                self.metrics.set_problem(&format!("partition {p}"), None);
            }
            info!(partition = p, start = ?start, live_from = part.live_from, rebuilding = !part.live, from = how.as_str(), "partition planned");
            plan.push((p, start, part));
        }
        Ok(plan)
    }

    /// The input's retention deleted records (below `low`) that a start needed.
    fn gap(&self, p: i32, low: i64, target_kts: Option<i64>, newest_ets: Option<i64>) -> Gap {
        let lookback = lookback_ms(&self.config);
        let since = target_kts.map_or("the beginning".to_owned(), |t| {
            format!("Kafka time {}", fundwatch_record::format_rfc3339_ms(t))
        });
        Gap {
            message: format!(
                "partition {p}: the input topic {} no longer holds what this partition's state needs: it needs records from {since}, but offsets below {low} were deleted by retention; alerts whose evidence or cooldown reaches into the deleted span can be missed or repeated until event time passes the lookback ({} days) after it. Keep kafka.checkpoint_interval on (a checkpoint makes retention moot) or raise the topic's retention.ms",
                self.topic,
                lookback / 86_400_000
            ),
            // Unknown until records are read: `tick` sets it from the watermark then.
            until_ets: newest_ets.filter(|t| *t > i64::MIN).map_or(i64::MAX, |t| t.saturating_add(lookback)),
        }
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
                    *self
                        .summary
                        .partition_starts
                        .entry(part.started_from.to_owned())
                        .or_default() += 1;
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
        } else {
            // The next owner restores from here instead of re-reading.
            self.force_checkpoint = true;
            if let Err(e) = self.commit(consumer) {
                error!(error = %e, "commit on revoke failed");
            }
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
            &self.metrics.state_incomplete,
        ] {
            let _ = g.remove_label_values(&[&part.label]);
        }
        for kind in ["account", "counterparty"] {
            let _ = self.metrics.dictionary_names.remove_label_values(&[&part.label, kind]);
        }
        self.metrics.set_problem(&format!("partition {}", part.label), None);
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
            let wm = part.engine.watermark_ms();
            if let (Some(g), true) = (part.gap.as_mut(), wm > i64::MIN) {
                if g.until_ets == i64::MAX {
                    g.until_ets = wm.saturating_add(lookback_ms(&self.config));
                } else if wm >= g.until_ets {
                    info!(partition = *p, "the records the input's retention deleted are now outside every horizon and cooldown: state complete");
                    part.gap = None;
                    self.metrics.state_incomplete.with_label_values(&[&part.label]).set(0);
                    self.metrics.set_problem(&format!("partition {p}"), None);
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
            let d = part.engine.dictionary_stats();
            for (kind, n) in [("account", d.accounts), ("counterparty", d.counterparties)] {
                self.metrics
                    .dictionary_names
                    .with_label_values(&[&part.label, kind])
                    .set(n as i64);
            }
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
