//! One assigned partition (`Part`): its engine, the offset it goes live from, its processed and
//! committed offsets, flush points; the commit metadata stored with its offsets; processing
//! one of its records (any thread) and going live after a rebuild.

use std::sync::Arc;

use fundwatch_engine::{AccountTrace, Alert, Engine, Origin, TimeRejected, TimeRejection};
use fundwatch_record::{Decoded, InputDecoder, SkipKind};
use rdkafka::Message;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::pipeline::Pipeline;
use crate::checkpoints::PartCheckpoint;
use crate::committed_output::Episodes;

/// Stored with each committed offset (the offset-commit metadata string).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(super) struct CommitMeta {
    pub(super) v: u32,
    /// Largest Kafka timestamp below the offset.
    pub(super) kts: i64,
    /// Largest event time below the offset.
    pub(super) ets: i64,
    /// Offsets before which the engine's reorder buffer was flushed (drain mode), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) flush: Vec<i64>,
}

pub(super) const MAX_FLUSH_POINTS: usize = 32;

/// One assigned partition.
pub(super) struct Part {
    pub(super) engine: Engine,
    pub(super) label: String,
    /// First offset processed live; below it, records rebuild state with emit off.
    pub(super) live_from: i64,
    pub(super) live: bool,
    /// Last processed offset + 1 (-1 before the first record).
    pub(super) next_offset: i64,
    /// Last committed offset (-1 none).
    pub(super) committed: i64,
    pub(super) kts: i64,
    pub(super) ets: i64,
    /// Flush points (from the commit metadata) still to apply during the rebuild.
    pub(super) pending_flush: Vec<i64>,
    /// All flush points to carry in the metadata.
    pub(super) flushes: Vec<i64>,
    pub(super) eof: bool,
    pub(super) replayed: u64,
    /// What this partition's committed checkpoints hold on the state topic.
    pub(super) ck: PartCheckpoint,
    /// Rebuilt from the input topic without a checkpoint: the alerted episodes read back from
    /// the alert topic, applied as the engine's cooldowns when it goes live.
    pub(super) seed: Option<std::sync::Arc<Episodes>>,
    /// State known to be incomplete (the input's retention deleted records the rebuild needed):
    /// what is missing, and the event time after which nothing depends on it any more.
    pub(super) gap: Option<Gap>,
    /// How its state was built when it was taken up (`Start::as_str`).
    pub(super) started_from: &'static str,
    /// The `[input]` decoder (shared by all partitions).
    pub(super) decoder: Arc<InputDecoder>,
    /// `[input] keyed_by = "account"`: compare each live record's key with its account.
    pub(super) check_keys: bool,
}

/// State a rebuild could not reconstruct.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Gap {
    pub(super) message: String,
    /// Event time (ms) from which the missing records are outside every horizon and cooldown.
    pub(super) until_ets: i64,
}

impl Part {
    pub(super) fn meta(&self) -> String {
        serde_json::to_string(&CommitMeta {
            v: 1,
            kts: self.kts,
            ets: self.ets,
            flush: self.flushes.clone(),
        })
        .unwrap_or_default()
    }
}

/// What processing one partition's records produced, in record order.
#[derive(Default)]
pub(super) struct PartOut {
    pub(super) events: Vec<Out>,
    pub(super) live: u64,
    pub(super) replayed: u64,
    pub(super) went_live: bool,
    /// Change events passed over live, by kind (indexed like `SkipKind::ALL`).
    pub(super) skipped: [u64; SkipKind::ALL.len()],
    /// Live transactions whose key was checked against their account, and those whose key
    /// was not it (`check_keys`), with the first of them described.
    pub(super) keyed: u64,
    pub(super) misrouted: u64,
    pub(super) misrouted_example: Option<String>,
}

pub(super) enum Out {
    Alert(Box<Alert>),
    /// An account trace for the linker (`kafka.trace_topic`).
    Trace(Box<AccountTrace>),
    /// `index` into the batch.
    Reject {
        index: usize,
        code: &'static str,
        reason: String,
    },
    /// A record the engine's event-time guard refused, possibly one of an earlier batch that it
    /// held (so not necessarily in this batch): its offset and bytes.
    TimeReject(Box<TimeRejected>),
}

impl Part {
    /// Decode one record of this partition and run it through the engine (any thread).
    /// Returns whether it was processed live.
    pub(super) fn process<M: Message>(
        &mut self,
        msg: &M,
        index: usize,
        now_ms: i64,
        scratch: &mut Vec<Alert>,
        out: &mut PartOut,
    ) -> bool {
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
        let payload = msg.payload().unwrap_or(&[]);
        match self.decoder.decode(payload) {
            Decoded::Record(tx) => {
                if live && self.check_keys {
                    out.keyed += 1;
                    if !crate::keys::is_account(msg.key(), &tx.account) {
                        out.misrouted += 1;
                        if out.misrouted_example.is_none() {
                            let key = msg.key().map_or("none".to_owned(), |k| {
                                format!("{:?}", String::from_utf8_lossy(&k[..k.len().min(120)]))
                            });
                            out.misrouted_example = Some(format!(
                                "partition {} offset {offset}: key {key} for account {:?}",
                                msg.partition(),
                                tx.account
                            ));
                        }
                    }
                }
                let max_future = self.engine.config().engine.max_future.ms();
                // The record's Kafka timestamp is the wall clock when it was written; bounded
                // by it (not by the clock now), a rebuild decides as the first pass did.
                let wall_ms = msg.timestamp().to_millis().map_or(now_ms, |kts| kts.min(now_ms));
                match TimeRejection::wall_clock(tx.ts_ms, wall_ms, max_future) {
                    Some(r) if live => out.events.push(Out::Reject {
                        index,
                        code: r.code(),
                        reason: r.to_string(),
                    }),
                    Some(_) => {}
                    None => {
                        let origin = Origin {
                            position: u64::try_from(offset).unwrap_or_default(),
                            raw: payload,
                        };
                        self.engine.process_from(&tx, origin, scratch);
                        self.ets = self.ets.max(self.engine.newest_event_ms());
                    }
                }
                if self.engine.has_time_rejections() {
                    let rejected = self.engine.take_time_rejections();
                    if live {
                        out.events
                            .extend(rejected.into_iter().map(|r| Out::TimeReject(Box::new(r))));
                    }
                }
            }
            Decoded::Skipped(_) if !live => {}
            Decoded::Skipped(kind) => {
                if let Some(i) = SkipKind::ALL.iter().position(|k| *k == kind) {
                    out.skipped[i] += 1;
                }
            }
            Decoded::Rejected(reason) if live => out.events.push(Out::Reject {
                index,
                code: reason.code(),
                reason: reason.to_string(),
            }),
            Decoded::Rejected(_) => {}
        }
        if let Some(ts) = msg.timestamp().to_millis() {
            self.kts = self.kts.max(ts);
        }
        self.next_offset = offset + 1;
        if live {
            out.live += 1;
            out.events.extend(scratch.drain(..).map(|a| Out::Alert(Box::new(a))));
            if self.engine.traces_enabled() {
                out.events
                    .extend(self.engine.take_traces().into_iter().map(|t| Out::Trace(Box::new(t))));
            }
        } else {
            self.replayed += 1;
            out.replayed += 1;
            scratch.clear();
            // Emit is off: nothing is traced, but never carry anything into the live part.
            drop(self.engine.take_traces());
        }
        live
    }
}

impl Pipeline {
    pub(super) fn new_part(&self, partition: i32) -> Part {
        let mut engine = Engine::new(self.config.clone());
        engine.enable_traces(self.config.cases.enabled);
        Part {
            engine,
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
            ck: PartCheckpoint::default(),
            seed: None,
            gap: None,
            started_from: "fresh",
            decoder: self.decoder.clone(),
            check_keys: self.check_keys,
        }
    }

    /// Apply flush points at or before `offset` (emit off: they happened before C).
    pub(super) fn apply_flushes(part: &mut Part, offset: i64, scratch: &mut Vec<Alert>) {
        while part.pending_flush.first().is_some_and(|f| *f <= offset) {
            part.pending_flush.remove(0);
            part.engine.set_emit(false);
            part.engine.flush(scratch);
            scratch.clear();
            drop(part.engine.take_traces());
        }
    }

    pub(super) fn go_live(part: &mut Part, scratch: &mut Vec<Alert>) {
        Self::apply_flushes(part, part.live_from, scratch);
        part.pending_flush.clear();
        if let Some(seed) = part.seed.take() {
            // The rebuild saw only the lookback: which episodes were alerted, and so which
            // cooldowns run, is what the alert topic says (see `committed_output::episodes`).
            let applied = part.engine.set_alerted_episodes(&seed.alerted, seed.complete);
            info!(partition = %part.label, applied, replaced = seed.complete, "cooldowns set from the committed alerts");
        }
        part.engine.set_emit(true);
        part.live = true;
        info!(partition = %part.label, offset = part.live_from, replayed = part.replayed, "partition rebuilt: live");
    }
}
