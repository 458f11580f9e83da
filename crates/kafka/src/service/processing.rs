//! Processing one poll batch: partitions in parallel, then their alerts and dead letters sent
//! into the open transaction in record order; the drain-mode flush of held records.

use std::collections::BTreeMap;
use std::time::Instant;

use fundwatch_cases::{route_alert, Routed};
use fundwatch_engine::{AccountTrace, Alert};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::Message;
use tracing::{error, info, warn};

use super::partition::{Out, Part, PartOut, MAX_FLUSH_POINTS};
use super::pipeline::Pipeline;

/// Below this many records a batch is processed on the polling thread alone.
pub(super) const PARALLEL_MIN_RECORDS: usize = 256;

/// One partition's share of a batch.
pub(super) struct Work<'a> {
    pub(super) partition: i32,
    pub(super) part: &'a mut Part,
    /// Indexes into the batch, in offset order.
    pub(super) idx: Vec<usize>,
    pub(super) out: PartOut,
}

impl Work<'_> {
    pub(super) fn run<M: Message>(&mut self, msgs: &[M], hist: &prometheus::Histogram) {
        let mut scratch = Vec::new();
        // One wall-clock reading per batch bounds event times (`engine.max_future`).
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (n, &i) in self.idx.iter().enumerate() {
            // Timing one record in 16 keeps clock reads off the hot path.
            let started = (n % 16 == 0).then(Instant::now);
            let live = self.part.process(&msgs[i], i, now_ms, &mut scratch, &mut self.out);
            if let (Some(t), true) = (started, live) {
                hist.observe(t.elapsed().as_secs_f64());
            }
        }
    }
}

/// Where a dead letter's record came from.
struct DeadLetterSource<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: &'a [u8],
    payload: &'a [u8],
}

impl Pipeline {
    /// Process one poll batch. Each partition's records are decoded and run through its engine
    /// in offset order, partitions in parallel on up to `threads` threads; then, on this
    /// thread, alerts and dead letters are sent into the open transaction in each partition's
    /// record order. Nothing else runs meanwhile, so commits, rebalances and resets see every
    /// record either wholly processed and sent or not at all, as with one record at a time.
    pub(super) fn process_batch<M: Message + Sync>(&mut self, msgs: &[M]) {
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
        let mut outs: Vec<(i32, PartOut)> = work.into_iter().map(|w| (w.partition, w.out)).collect();
        if self.check_keys && self.misrouted(&mut outs) {
            return;
        }
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
            for (kind, n) in fundwatch_record::SkipKind::ALL.iter().zip(out.skipped) {
                if n > 0 {
                    self.metrics.input_skipped.with_label_values(&[kind.as_str()]).inc_by(n);
                }
            }
            for ev in out.events {
                match ev {
                    Out::Alert(alert) => self.emit_one(*alert),
                    Out::Trace(trace) => self.send_trace(&trace),
                    Out::Reject { index, code, reason } => self.dead_letter(&msgs[index], code, &reason),
                    Out::TimeReject(r) => self.time_dead_letter(p, &r),
                }
            }
        }
        if went_live {
            self.update_rebuilding();
        }
        self.txn.since_commit += msgs.len();
    }

    /// Count the batch's misrouted records; past `[input] max_misrouted_share`, abort the open
    /// transaction before anything of this batch is sent and stop the service (`fatal`).
    fn misrouted(&mut self, outs: &mut [(i32, PartOut)]) -> bool {
        let (mut seen, mut bad) = (0, 0);
        for (_, out) in outs.iter_mut() {
            seen += out.keyed;
            bad += out.misrouted;
            if self.keys.example.is_none() {
                self.keys.example = out.misrouted_example.take();
            }
        }
        if bad > 0 {
            self.metrics.input_misrouted.inc_by(bad);
            if self.keys.misrouted == 0 {
                warn!(
                    topic = %self.topic,
                    example = self.keys.example.as_deref().unwrap_or_default(),
                    "a record's Kafka key is not its account ([input] keyed_by = \"account\"): counted in fundwatch_input_misrouted_total"
                );
            }
        }
        self.keys.seen += seen;
        self.keys.misrouted += bad;
        self.keys.in_txn += bad;
        if !self
            .config
            .input
            .misrouted_exceeded(self.keys.misrouted, self.keys.seen)
        {
            return false;
        }
        self.abort();
        let e = crate::KafkaError::Misrouted {
            topic: self.topic.clone(),
            misrouted: self.keys.misrouted,
            seen: self.keys.seen,
            share: self.config.input.max_misrouted_share,
            example: self.keys.example.clone().unwrap_or_default(),
            committed: self.keys.committed,
        };
        error!("{e}");
        self.fatal = Some(e);
        true
    }

    pub(super) fn dead_letter<M: Message>(&mut self, msg: &M, code: &'static str, reason: &str) {
        let source = DeadLetterSource {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().unwrap_or(&[]),
            payload: msg.payload().unwrap_or(&[]),
        };
        self.send_dead_letter(&source, code, reason);
    }

    /// The dead letter of a record the engine's event-time guard refused (it may have been
    /// held since an earlier batch: its offset and bytes come from the engine). Its key is
    /// the account, as the input's is.
    pub(super) fn time_dead_letter(&mut self, partition: i32, r: &fundwatch_engine::TimeRejected) {
        let topic = self.topic.clone();
        let source = DeadLetterSource {
            topic: &topic,
            partition,
            offset: i64::try_from(r.position).unwrap_or(i64::MAX),
            key: r.account.as_bytes(),
            payload: &r.raw,
        };
        self.send_dead_letter(&source, r.reason.code(), &r.reason.to_string());
    }

    fn send_dead_letter(&mut self, msg: &DeadLetterSource<'_>, code: &'static str, reason: &str) {
        if self
            .hung
            .committed_output
            .as_ref()
            .is_some_and(|c| c.dead_letters.contains(&(msg.partition, msg.offset)))
        {
            self.metrics
                .recoveries
                .with_label_values(&["duplicate_suppressed"])
                .inc();
            info!(
                partition = msg.partition,
                offset = msg.offset,
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
                value: Some(msg.topic),
            })
            .insert(Header {
                key: "fundwatch.source.partition",
                value: Some(&msg.partition.to_string()),
            })
            .insert(Header {
                key: "fundwatch.source.offset",
                value: Some(&msg.offset.to_string()),
            });
        let topic = self.dead_letter_topic.clone();
        self.send(&topic, msg.key, msg.payload, Some(headers));
        self.metrics.records_rejected.with_label_values(&[code]).inc();
        self.metrics.dead_letters.inc();
        self.txn.txn_rejects.push(code.to_owned());
    }

    pub(super) fn emit_one(&mut self, alert: Alert) {
        if self
            .hung
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
                if !self.config.routing.is_empty() {
                    if let Some(r) = route_alert(&self.config.routing, &alert) {
                        self.send(&r.topic, r.key.as_bytes(), r.value.as_bytes(), Some(routed_headers(&r)));
                        self.metrics.routed_records.with_label_values(&[r.kind]).inc();
                        *self.txn.txn_routed.entry(r.kind).or_default() += 1;
                    }
                }
                self.txn.txn_alerts.push(alert);
            }
            Err(e) => error!(error = %e, "cannot serialise alert"),
        }
    }

    /// An engine's account trace, into the open transaction (key = account).
    pub(super) fn send_trace(&mut self, trace: &AccountTrace) {
        let Some(topic) = self.trace_topic.take() else { return };
        match serde_json::to_vec(trace) {
            Ok(json) => {
                self.send(&topic, trace.account.as_bytes(), &json, None);
                self.metrics.traces.inc();
                self.txn.txn_traces += 1;
            }
            Err(e) => error!(error = %e, "cannot serialise a trace"),
        }
        self.trace_topic = Some(topic);
    }

    pub(super) fn emit(&mut self, buf: &mut Vec<Alert>) {
        for alert in buf.drain(..) {
            self.emit_one(alert);
        }
    }

    /// Drain mode: release everything held, in the open transaction.
    pub(super) fn flush_all(&mut self) {
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
            let traces = part.engine.take_traces();
            self.emit(&mut buf);
            for t in &traces {
                self.send_trace(t);
            }
        }
        self.buf = buf;
    }
}

/// Headers of a record routed to an office topic.
pub(crate) fn routed_headers(r: &Routed) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "fundwatch.region",
            value: Some(r.region.as_str()),
        })
        .insert(Header {
            key: "fundwatch.kind",
            value: Some(r.kind),
        })
}
