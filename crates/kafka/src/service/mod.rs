//! The consume → detect → produce loop, rebuild on assignment, transactional commits.
//!
//! The exactly-once argument these files implement is in the crate doc (`lib.rs`). Who owns what:
//! - `mod.rs` (here): [`Service`], [`run`], [`Shutdown`], [`RunSummary`]; the clients' setup and
//!   the poll loop (`Service::run`): batches, end-of-partition flags, commit pacing, reload and
//!   reset triggers, the final commit on shutdown.
//! - `pipeline.rs`: `Pipeline`, the state the poll loop and the rebalance callbacks share
//!   (behind one mutex), with its transaction state (`TxnState`) and its hung-transaction
//!   recovery state (`HungRecovery`).
//! - `partition.rs`: `Part`, one assigned partition (its engine, where it goes live, offsets,
//!   flush points), the commit metadata (`CommitMeta`) and processing one record (`Part::process`).
//! - `processing.rs`: one poll batch (`process_batch`: partitions in parallel) and sending its
//!   alerts and dead letters into the open transaction; the drain-mode flush.
//! - `assignment.rs`: rebalances: planning where an assigned partition starts and goes live
//!   (`plan`: from its checkpoint, or rebuilt from the input topic with cooldowns read back
//!   from the alert topic; retention checked), `on_assign`/`on_revoke`, the consumer context
//!   `Ctx`, the once-a-second `tick` and the end-of-input checks.
//! - `checkpointing.rs`: which partitions a commit checkpoints, writing them into its
//!   transaction, and their bookkeeping once it ends (format: `crate::checkpoints`).
//! - `transactions.rs`: the producer side: beginning, sending into, committing and aborting
//!   transactions, sending offsets (bounded against a wedged producer), retries,
//!   `init_transactions`, the producer context `ProducerCtx`.
//! - `linker.rs`: the case linker thread (crate doc, point 9): group `<group_id>.cases` on the
//!   single-partition trace topic, restore on assignment, batches of traces into case
//!   versions, linked alerts and office records in its own transactions.
//! - `rekey.rs`: the re-key stage of `[input] keyed_by = "other"` (crate doc, point 10): group
//!   `<group_id>.rekey` on the input topic, records keyed by account into the re-key topic with
//!   the input offsets in its own transactions; detection then reads the re-key topic.
//! - `recovery.rs`: rebuilding from the committed offsets (`reset`), re-creating the producer,
//!   ending a hung transaction (`abort_hung`, read-back of the committed output), config reload.

mod assignment;
mod checkpointing;
mod linker;
mod partition;
mod pipeline;
mod processing;
mod recovery;
mod rekey;
mod transactions;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundwatch_engine::Alert;
use fundwatch_rules::config::KafkaParams;
use fundwatch_rules::{Config, KeyedBy};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::checkpoints::Checkpointer;
use crate::client::{check_connection, check_env, client_config, Role};
use crate::liveness::{Liveness, Phase, Watchdog};
use crate::metrics::{HttpServer, Metrics};
use crate::reload::ConfigWatcher;
use crate::{KafkaError, RunOptions};
use assignment::Ctx;
use pipeline::{HungRecovery, Pipeline, TxnState};
use recovery::TxnCounts;
use transactions::{init_transactions, ProducerCtx};

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
    /// Partitions taken up, by how their state was built: checkpoint, rebuild, empty, fresh.
    pub partition_starts: BTreeMap<String, u64>,
    /// Partition checkpoints committed, their bytes, and the time spent writing them.
    pub checkpoints: u64,
    pub checkpoint_bytes: u64,
    pub checkpoint_seconds: f64,
    /// Account traces the engines wrote to `kafka.trace_topic` (committed).
    pub traces: u64,
    /// Records routed to office topics (committed), by kind: alert, case, notice (engine
    /// alerts and the linker's records together).
    pub routed_records: BTreeMap<String, u64>,
    /// Traces the linker of this instance applied live (committed; restores not counted).
    pub linker_traces: u64,
    /// Case versions this instance's linker committed to `kafka.case_topic`.
    pub case_versions: u64,
    /// Alerts raised by a link that this instance's linker committed to the alert topic.
    pub linked_alerts: u64,
    /// Open cases of this instance's linker when it stopped (0 when it was not the active one).
    pub cases_open: u64,
    /// Times this instance's linker took the trace partition and restored its state, and the
    /// traces those restores re-read.
    pub linker_restores: u64,
    pub linker_restored_traces: u64,
    /// `[input] keyed_by = "account"`: live records whose Kafka key is not their account.
    pub input_misrouted: u64,
    /// `[input] keyed_by = "other"`: input records this instance's re-key stage committed to
    /// the re-key topic, change events it passed over, and its transactions. Its dead letters
    /// are in `rejected`.
    pub rekeyed: u64,
    pub rekey_skipped: u64,
    pub rekey_transactions_committed: u64,
    pub rekey_transactions_aborted: u64,
}

/// Most records taken from the consumer's queue per batch.
const MAX_BATCH: usize = 4096;

type AlertHook = Box<dyn FnMut(&Alert) + Send>;

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

        // With keyed_by = "other" detection reads the re-key topic, which the re-key stage
        // fills from the input topic; otherwise it reads the input topic itself.
        let rekeyed = self.config.input.keyed_by == KeyedBy::Other;
        let topic = if rekeyed {
            let t = kafka.rekey_topic();
            ensure_rekey_topic(kafka, &t, op_timeout)?;
            t
        } else {
            kafka.input_topic.clone()
        };
        let checkpoints = if kafka.checkpoint_interval.ms() > 0 {
            let md = producer.client().fetch_metadata(Some(&topic), op_timeout)?;
            let input_partitions = md.topics().first().map_or(1, |t| t.partitions().len() as i32);
            let admin = client_config(&kafka.brokers, &kafka.client, Role::Admin)?;
            let n = crate::checkpoints::ensure_topic(&admin, &kafka.state_topic, input_partitions, op_timeout)?;
            info!(topic = %kafka.state_topic, partitions = n, interval = %kafka.checkpoint_interval, "checkpoints on");
            Some(Checkpointer::new(
                &kafka.state_topic,
                n,
                Duration::from_millis(kafka.checkpoint_interval.ms() as u64),
                &kafka.group_id,
                &topic,
            ))
        } else {
            warn!("checkpoints off (kafka.checkpoint_interval = \"0s\"): every restart rebuilds from the input topic");
            None
        };

        let cases = self.config.cases.enabled;
        {
            // The trace topic has one partition: one active linker per group links them all.
            let mut wanted = Vec::new();
            if cases {
                wanted.push(crate::topics::Wanted {
                    name: &kafka.trace_topic,
                    partitions: 1,
                    compacted: true,
                    what: "trace topic",
                    configs: Vec::new(),
                });
                wanted.push(crate::topics::Wanted {
                    name: &kafka.case_topic,
                    partitions: 1,
                    compacted: true,
                    what: "case topic",
                    configs: Vec::new(),
                });
            }
            let offices: std::collections::BTreeSet<&String> = self.config.routing.regions.values().collect();
            for t in offices {
                wanted.push(crate::topics::Wanted {
                    name: t,
                    partitions: 1,
                    compacted: false,
                    what: "office topic",
                    configs: Vec::new(),
                });
            }
            if !wanted.is_empty() {
                let admin = client_config(&kafka.brokers, &kafka.client, Role::Admin)?;
                crate::topics::ensure(&admin, &wanted, op_timeout)?;
            }
        }
        let drain = Arc::new(AtomicBool::new(false));
        let linker_thread = if cases {
            let t = linker::spawn(linker::LinkerOptions {
                config: self.config.clone(),
                instance_id: id.clone(),
                transactional,
                metrics: self.metrics.clone(),
                shutdown: shutdown.clone(),
                drain: drain.clone(),
            })
            .map_err(|e| KafkaError::Other(format!("cannot start the linker thread: {e}")))?;
            info!(topic = %kafka.trace_topic, case_topic = %kafka.case_topic, transactional_id = %linker::transactional_id(&self.config), "traces on; case linker started");
            Some(t)
        } else {
            info!("[cases] enabled = false: no traces, no case linker");
            None
        };

        let mut rekey = if rekeyed {
            let r = rekey::Rekey::spawn(rekey::RekeyOptions {
                config: self.config.clone(),
                instance_id: id.clone(),
                transactional,
                metrics: self.metrics.clone(),
                shutdown: shutdown.clone(),
                stop: Arc::new(AtomicBool::new(false)),
                drained: Arc::new(AtomicBool::new(false)),
                topic: topic.clone(),
            })
            .map_err(|e| KafkaError::Other(format!("cannot start the re-key thread: {e}")))?;
            info!(from = %kafka.input_topic, to = %topic, group = %rekey::group_id(&self.config), "[input] keyed_by = \"other\": re-key stage started; detection reads the re-key topic");
            Some(r)
        } else {
            None
        };
        let mut cc = client_config(&kafka.brokers, &kafka.client, Role::Consumer)?;
        cc.set("group.id", &kafka.group_id);
        cc.set("enable.auto.commit", "false");
        cc.set("enable.auto.offset.store", "false");
        let mut probe_config = cc.clone();
        probe_config.set("isolation.level", "read_uncommitted");
        let decoder = self
            .config
            .input
            .decoder()
            .map_err(|e| KafkaError::Other(format!("[input]: {e}")))?;
        let pipe = Arc::new(Mutex::new(Pipeline {
            config: self.config.clone(),
            decoder: Arc::new(decoder),
            topic: topic.clone(),
            alert_topic: kafka.alert_topic.clone(),
            dead_letter_topic: kafka.dead_letter_topic.clone(),
            trace_topic: cases.then(|| kafka.trace_topic.clone()),
            producer: Arc::new(producer),
            wedged: false,
            transactional,
            parts: BTreeMap::new(),
            txn: TxnState {
                in_txn: false,
                txn_failed: false,
                since_commit: 0,
                last_commit: Instant::now(),
                txn_alerts: Vec::new(),
                txn_rejects: Vec::new(),
                txn_traces: 0,
                txn_routed: BTreeMap::new(),
                last_txn: TxnCounts::default(),
            },
            needs_reset: false,
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
            hung: HungRecovery {
                outage: outage.clone(),
                probe_config,
                hung_check: false,
                read_back_pending: false,
                committed_output: None,
                suspect: false,
            },
            liveness: liveness.clone(),
            checkpoints,
            force_checkpoint: false,
            check_keys: !rekeyed,
            keys: Default::default(),
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
            consumer.subscribe(&[&topic])?;
            Ok(consumer)
        };
        let mut consumer = new_consumer()?;
        info!(group = %kafka.group_id, topic = %topic, instance = %id, "consuming");

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
        // Drain mode with the re-key stage: since when it has reported every input partition
        // re-keyed to its end and committed.
        let mut rekey_drained: Option<Instant> = None;
        loop {
            liveness.beat(Phase::Polling);
            if shutdown.is_triggered() {
                stopped_by = "shutdown";
                break;
            }
            if let Some(e) = lock(&pipe) {
                return Err(e);
            }
            if let Some(r) = rekey.take_if(|r| r.ended()) {
                // The stage ends on its own only on an error: detection would starve.
                return Err(match r.finish() {
                    Err(e) => e,
                    Ok(_) => KafkaError::Other("the re-key stage stopped".into()),
                });
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
                if let Some(e) = p.fatal.take() {
                    // Nothing of this batch was sent, and the open transaction is aborted.
                    return Err(e);
                }
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
                let upstream_done = match &rekey {
                    None => true,
                    Some(r) if r.drained() => {
                        // Its last records reach this consumer a moment after its commit:
                        // wait the idle time once more from when it said so.
                        rekey_drained.get_or_insert_with(Instant::now).elapsed() >= idle
                    }
                    Some(_) => {
                        rekey_drained = None;
                        false
                    }
                };
                if upstream_done && p.all_live_at_eof() && last_msg.elapsed() >= idle && !p.needs_reset {
                    p.flush_all();
                    p.force_checkpoint = true;
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
            p.force_checkpoint = true;
            p.commit(&consumer)?;
            if p.txn.in_txn {
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
        let rekeyed_summary = match rekey.map(rekey::Rekey::finish) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return Err(e),
        };
        // The linker links what the engines committed (drain mode: to the end) and stops.
        drain.store(true, Ordering::SeqCst);
        let linked = match linker_thread.map(|t| t.join()) {
            None => None,
            Some(Ok(Ok(s))) => Some(s),
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(_)) => return Err(KafkaError::Other("the linker thread panicked".into())),
        };
        let mut p = pipe.lock().unwrap_or_else(|e| e.into_inner());
        let mut summary = std::mem::take(&mut p.summary);
        if let Some(l) = linked {
            summary.linker_traces = l.traces;
            summary.case_versions = l.case_versions;
            summary.linked_alerts = l.linked_alerts;
            summary.cases_open = l.cases_open;
            summary.linker_restores = l.restores;
            summary.linker_restored_traces = l.restored_traces;
            summary.alerts += l.linked_alerts;
            if l.linked_alerts > 0 {
                *summary
                    .alerts_by_rule
                    .entry("periodic_batch_small_out".into())
                    .or_default() += l.linked_alerts;
            }
            for (k, n) in l.routed {
                *summary.routed_records.entry(k).or_default() += n;
            }
        }
        if let Some(r) = rekeyed_summary {
            summary.rekeyed = r.rekeyed;
            summary.rekey_skipped = r.skipped;
            summary.rekey_transactions_committed = r.transactions_committed;
            summary.rekey_transactions_aborted = r.transactions_aborted;
            summary.rejected += r.rejected;
            for (code, n) in r.rejected_by_reason {
                *summary.rejected_by_reason.entry(code).or_default() += n;
            }
        }
        summary.input_misrouted = p.keys.misrouted;
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

/// Create the re-key topic when missing: as many partitions as the input (or
/// `kafka.rekey_partitions`), the input's retention (its records keep their Kafka timestamps,
/// so what the input keeps by time this keeps too), CreateTime timestamps.
fn ensure_rekey_topic(kafka: &KafkaParams, topic: &str, timeout: Duration) -> Result<(), KafkaError> {
    let admin = client_config(&kafka.brokers, &kafka.client, Role::Admin)?;
    let partitions = match kafka.rekey_partitions {
        0 => {
            let n = crate::topics::partition_count(&admin, &kafka.input_topic, timeout)?;
            if n == 0 {
                return Err(KafkaError::Other(format!(
                    "the input topic {} does not exist: the re-key topic {topic} takes its partition count from it (or set kafka.rekey_partitions)",
                    kafka.input_topic
                )));
            }
            n
        }
        n => i32::try_from(n).unwrap_or(i32::MAX),
    };
    let mut configs = vec![("message.timestamp.type", "CreateTime".to_owned())];
    if let Some(ms) = crate::topics::topic_config(&admin, &kafka.input_topic, "retention.ms", timeout) {
        configs.push(("retention.ms", ms));
    }
    crate::topics::ensure(
        &admin,
        &[crate::topics::Wanted {
            name: topic,
            partitions,
            compacted: false,
            what: "re-key topic",
            configs,
        }],
        timeout,
    )
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
