//! `Pipeline`: the state shared by the poll loop and the rebalance callbacks, with its open
//! transaction (`TxnState`) and hung-transaction recovery state (`HungRecovery`) grouped.
//! Its methods are spread over the sibling files by responsibility (see `mod.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundwatch_engine::Alert;
use fundwatch_rules::Config;
use rdkafka::producer::ThreadedProducer;

use super::partition::Part;
use super::recovery::TxnCounts;
use super::transactions::ProducerCtx;
use super::{AlertHook, RunSummary, Shutdown};
use crate::checkpoints::Checkpointer;
use crate::committed_output::CommittedOutput;
use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::KafkaError;

/// Everything the poll loop and the rebalance callbacks work on (behind one mutex).
pub(super) struct Pipeline {
    pub(super) config: Arc<Config>,
    /// The `[input]` decoder, built once (fixed for the life of the process).
    pub(super) decoder: Arc<fundwatch_record::InputDecoder>,
    pub(super) topic: String,
    pub(super) alert_topic: String,
    pub(super) dead_letter_topic: String,
    /// Where the engines' account traces go (None: `[cases] enabled = false`).
    pub(super) trace_topic: Option<String>,
    /// Shared with the helper thread of a bounded `send_offsets_to_transaction`.
    pub(super) producer: Arc<ThreadedProducer<ProducerCtx>>,
    /// A `send_offsets_to_transaction` never returned: the producer is replaced, not used.
    pub(super) wedged: bool,
    pub(super) transactional: bool,
    pub(super) parts: BTreeMap<i32, Part>,
    /// The open transaction and commit pacing.
    pub(super) txn: TxnState,
    pub(super) needs_reset: bool,
    pub(super) buf: Vec<Alert>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) hook: Option<AlertHook>,
    pub(super) fatal: Option<KafkaError>,
    pub(super) summary: RunSummary,
    pub(super) op_timeout: Duration,
    /// To re-create the producer after a fatal error.
    pub(super) producer_config: rdkafka::ClientConfig,
    pub(super) shutdown: Shutdown,
    /// Threads that process a batch's partitions.
    pub(super) threads: usize,
    /// Broker outages and hung transactions (see `abort_hung`).
    pub(super) hung: HungRecovery,
    /// The polling loop's beat (for `/healthz`); callbacks and long recoveries beat too.
    pub(super) liveness: Arc<Liveness>,
    /// Checkpoints on the state topic (None: `kafka.checkpoint_interval = "0s"`).
    pub(super) checkpoints: Option<Checkpointer>,
    /// The next commit checkpoints every changed partition, whatever the interval (shutdown,
    /// revoke, end of a drained input).
    pub(super) force_checkpoint: bool,
    /// `[input] keyed_by = "account"`: live records' keys are checked against their account.
    pub(super) check_keys: bool,
    pub(super) keys: KeyCheck,
}

/// The misrouted-record count of `[input] keyed_by = "account"` (this process, live records).
#[derive(Default)]
pub(super) struct KeyCheck {
    /// Live transactions whose key was checked.
    pub(super) seen: u64,
    /// Of them, those whose key is not their account.
    pub(super) misrouted: u64,
    /// Misrouted records in the open transaction, and in committed ones.
    pub(super) in_txn: u64,
    pub(super) committed: u64,
    /// The first misrouted record, described.
    pub(super) example: Option<String>,
}

/// The open transaction: whether one is open or failed, what it holds, and when the next
/// commit is due.
pub(super) struct TxnState {
    pub(super) in_txn: bool,
    pub(super) txn_failed: bool,
    pub(super) since_commit: usize,
    pub(super) last_commit: Instant,
    /// Alerts of the open transaction, handed to the hook once committed.
    pub(super) txn_alerts: Vec<Alert>,
    pub(super) txn_rejects: Vec<String>,
    /// Traces in the open transaction.
    pub(super) txn_traces: u64,
    /// Records routed to office topics in the open transaction, by kind.
    pub(super) txn_routed: BTreeMap<&'static str, u64>,
    /// What the last committed transaction added to the summary, taken back if that
    /// transaction turns out hung and is aborted.
    pub(super) last_txn: TxnCounts,
}

/// State of the hung-transaction recovery (crate doc, point 6; `recovery.rs`).
pub(super) struct HungRecovery {
    /// Set by the consumer's error callback when the connection to a broker failed: the first
    /// commit after it checks that the committed offsets are stable (see `abort_hung`).
    pub(super) outage: Arc<AtomicBool>,
    /// A read_uncommitted consumer of the group (never subscribed): reads committed offsets
    /// without `require_stable`, to tell "offsets unstable" from "coordinator unreachable".
    pub(super) probe_config: rdkafka::ClientConfig,
    /// A hung transaction was aborted: the next plan tells whether it was the last one.
    pub(super) hung_check: bool,
    /// A hung transaction was aborted: before going live again, read back what is already
    /// committed on the output topics (see `committed_output`).
    pub(super) read_back_pending: bool,
    /// Alerts and dead letters already committed (read back after a hung transaction): not
    /// emitted again.
    pub(super) committed_output: Option<CommittedOutput>,
    /// A broker connection failed after the last transaction known to be complete: it may be
    /// hung. Until stable offsets prove otherwise, no offsets are sent except by `abort_hung`:
    /// any marker on the group's offsets ends a hung transaction's offsets there, and only
    /// `abort_hung` also ends its records on every output partition.
    pub(super) suspect: bool,
}
