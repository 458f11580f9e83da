//! Recovery: rebuilding every partition from its committed offsets after an abort (`reset`),
//! re-creating a fatally failed producer, ending a hung transaction (`abort_hung`, then the
//! read-back of the committed output and the summary correction), and config reload (which
//! rebuilds every partition under the new config).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use super::partition::Part;
use super::pipeline::Pipeline;
use super::transactions::{init_transactions, send_waiting, ProducerCtx};
use crate::committed_output::{self};
use crate::liveness::Phase;
use crate::reload::{evaluate, Verdict};
use crate::KafkaError;

/// Summary counts and offsets of one committed transaction.
#[derive(Default)]
pub(super) struct TxnCounts {
    pub(super) alerts: BTreeMap<String, u64>,
    pub(super) rejects: BTreeMap<String, u64>,
    pub(super) offsets: BTreeMap<i32, i64>,
}

impl Pipeline {
    /// After a fatal producer error (fenced, transaction state lost on the broker): a new
    /// producer with the same transactional id fences the old one and has the broker abort
    /// its open transaction, so every engine is rebuilt from the committed offsets. Waits
    /// for the broker as long as it takes (or until shutdown).
    pub(super) fn recreate_producer(&mut self) {
        self.txn.in_txn = false;
        self.txn.txn_failed = false;
        self.txn.txn_alerts.clear();
        self.txn.txn_rejects.clear();
        self.txn.txn_traces = 0;
        self.txn.txn_routed.clear();
        self.needs_reset = !self.parts.is_empty();
        self.metrics.recoveries.with_label_values(&["producer_recreated"]).inc();
        loop {
            self.liveness.beat(Phase::RecreatingClient);
            // Replacing drops (destroys) the dead producer first-hand.
            match self
                .producer_config
                .create_with_context::<_, ThreadedProducer<ProducerCtx>>(ProducerCtx {
                    outage: self.hung.outage.clone(),
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
    pub(super) fn reload<C: ConsumerContext>(
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

    /// Rebuild every assigned partition from its committed offset (after an abort).
    pub(super) fn reset<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), KafkaError> {
        self.liveness.beat(Phase::Resetting);
        self.needs_reset = false;
        let partitions: Vec<i32> = self.parts.keys().copied().collect();
        if partitions.is_empty() {
            return Ok(());
        }
        let plan = match self.plan(consumer, &partitions) {
            Ok(plan) => {
                self.settle_hung_check(&plan);
                if self.hung.read_back_pending && !self.read_back(&plan) {
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
            *self
                .summary
                .partition_starts
                .entry(part.started_from.to_owned())
                .or_default() += 1;
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
    pub(super) fn offsets_stable<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> bool {
        let mut tpl = TopicPartitionList::new();
        for p in self.parts.keys() {
            tpl.add_partition(&self.topic, *p);
        }
        match consumer.committed_offsets(tpl, self.op_timeout) {
            Ok(_) => {
                debug!("committed offsets stable after the outage");
                self.hung.suspect = false;
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
    pub(super) fn coordinator_answers(&self, partitions: &[i32]) -> bool {
        let probe: BaseConsumer = match self.hung.probe_config.create() {
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
    pub(super) fn abort_hung<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
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
            Ok(()) => self.hung.suspect = false,
            // Whatever was added is aborted below; the offsets were not sent, so they stay
            // pending and the next commit or plan tries again.
            Err(e) => warn!(error = %e, "could not add every partition to the aborting transaction"),
        }
        self.hung.hung_check = true;
        self.hung.read_back_pending = true;
        // abort() aborts (or, failing that, re-creates the producer, whose init aborts) and
        // marks every partition for a rebuild.
        self.txn.in_txn = self.txn.in_txn || self.transactional;
        self.abort();
    }

    /// After `abort_hung`, before going live: read back the alerts and dead letters already
    /// committed since the oldest committed position's Kafka timestamp (less a margin for
    /// clock skew), so that those of the hung transaction that the broker did commit are not
    /// emitted again. Returns false if the read failed (the reset is retried).
    pub(super) fn read_back(&mut self, plan: &[(i32, Offset, Part)]) -> bool {
        const SKEW_MARGIN_MS: i64 = 10 * 60 * 1000;
        let since = plan
            .iter()
            .map(|(_, _, part)| part.kts)
            .filter(|t| *t > i64::MIN)
            .min()
            .map_or(0, |t| t.saturating_sub(SKEW_MARGIN_MS).max(0));
        match committed_output::read(
            &self.hung.probe_config,
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
                self.hung.committed_output = Some(c);
                self.hung.read_back_pending = false;
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
    pub(super) fn settle_hung_check(&mut self, plan: &[(i32, Offset, Part)]) {
        if !std::mem::take(&mut self.hung.hung_check) {
            return;
        }
        let counts = std::mem::take(&mut self.txn.last_txn);
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

    pub(super) fn fill_for_abort<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), KafkaError> {
        self.ensure_txn()?;
        let headers = || {
            OwnedHeaders::new().insert(Header {
                key: "fundwatch.filler",
                value: Some("aborted; ends a hung transaction"),
            })
        };
        // Every topic the engines' transactions write: alerts, dead letters, traces, offices.
        let mut topics = vec![self.alert_topic.clone(), self.dead_letter_topic.clone()];
        topics.extend(self.trace_topic.clone());
        let offices: std::collections::BTreeSet<String> = self.config.routing.regions.values().cloned().collect();
        topics.extend(offices);
        for topic in topics {
            let md = self.producer.client().fetch_metadata(Some(&topic), self.op_timeout)?;
            let partitions: Vec<i32> = md
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            for p in partitions {
                // Keyed: the trace topic (and an office topic may be) is compacted, and a
                // compacted topic refuses a record without a key, which would fail the
                // whole filler transaction and leave the hung one pending for good.
                let rec = BaseRecord::<[u8], [u8]>::to(&topic)
                    .partition(p)
                    .key(&b"fundwatch.filler"[..])
                    .payload(&[][..])
                    .headers(headers());
                send_waiting(&self.producer, rec)?;
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
}
