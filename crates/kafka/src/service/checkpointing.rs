//! Writing partition checkpoints into the open transaction at commit points, and what their
//! commit or abort means for each partition's bookkeeping (the format and the exactly-once
//! argument are in `crate::checkpoints`; restoring is in `assignment.rs`'s `plan`).

use std::time::Instant;

use rdkafka::producer::BaseRecord;
use tracing::{debug, warn};

use super::pipeline::Pipeline;
use super::transactions::send_waiting;
use crate::checkpoints::{At, StoredGap};

impl Pipeline {
    /// Live partitions whose state changed since their last checkpoint and whose interval has
    /// passed (all changed ones when `force_checkpoint` is set: shutdown, revoke, drained).
    pub(super) fn due_checkpoints(&self) -> Vec<i32> {
        let Some(ck) = &self.checkpoints else {
            return Vec::new();
        };
        self.parts
            .iter()
            .filter(|(_, part)| {
                part.live
                    && part.next_offset >= 0
                    && ck.due(
                        &part.ck,
                        part.next_offset,
                        part.flushes.last().copied(),
                        self.force_checkpoint,
                    )
            })
            .map(|(p, _)| *p)
            .collect()
    }

    /// Send the checkpoints of `parts` into the open transaction (their offsets go in the
    /// same transaction: `offsets` includes them). A failed send fails the transaction.
    pub(super) fn write_checkpoints(&mut self, parts: &[i32]) {
        let Some(ck) = self.checkpoints.clone() else { return };
        if parts.is_empty() || self.txn.txn_failed {
            return;
        }
        let started = Instant::now();
        if let Err(e) = self.ensure_txn() {
            warn!(error = %e, "cannot begin transaction");
            self.txn.txn_failed = true;
            return;
        }
        let config = self.config.clone();
        for p in parts {
            let Some(part) = self.parts.get_mut(p) else { continue };
            let at = At {
                offset: part.next_offset,
                kts: part.kts,
                ets: part.ets,
                flushes: &part.flushes,
                gap: part.gap.as_ref().map(|g| StoredGap {
                    message: g.message.clone(),
                    until_ets: g.until_ets,
                }),
            };
            let records = ck.records(*p, &mut part.ck, &part.engine, &config, at);
            let partition = ck.state_partition(*p);
            for (key, value) in &records {
                let mut rec = BaseRecord::<str, [u8]>::to(&ck.topic)
                    .partition(partition)
                    .key(key.as_str());
                if let Some(v) = value {
                    rec = rec.payload(v.as_slice());
                }
                if let Err(e) = send_waiting(&self.producer, rec) {
                    warn!(error = %e, topic = %ck.topic, "checkpoint produce failed: the transaction will be aborted");
                    self.txn.txn_failed = true;
                    return;
                }
            }
            debug!(
                partition = *p,
                records = records.len(),
                offset = part.next_offset,
                "checkpoint sent"
            );
        }
        self.metrics.checkpoint_seconds.observe(started.elapsed().as_secs_f64());
        self.summary.checkpoint_seconds += started.elapsed().as_secs_f64();
    }

    /// The transaction holding the checkpoints of `parts` committed (`ok`) or not.
    pub(super) fn checkpoints_ended(&mut self, parts: &[i32], ok: bool) {
        for p in parts {
            let Some(part) = self.parts.get_mut(p) else { continue };
            if !ok {
                part.ck.pending = None;
                self.metrics.checkpoints.with_label_values(&["aborted"]).inc();
                continue;
            }
            if let Some(bytes) = part.ck.committed() {
                self.metrics.checkpoints.with_label_values(&["committed"]).inc();
                self.metrics.checkpoint_bytes.inc_by(bytes);
                self.summary.checkpoints += 1;
                self.summary.checkpoint_bytes += bytes;
            }
        }
    }
}
