//! Guards on event time: records the windows cannot place are dead-lettered, not folded in.
//!
//! - Older than `engine.max_history` behind the newest record: the windows no longer hold
//!   that time; rejected at once (`too_old`).
//! - Outside the plausible years 1990–2199: rejected at once (`future_time` / `too_old`).
//! - More than `engine.max_future` ahead of the stream's newest event time: *held aside*
//!   (the watermark does not move) until the stream shows whether it follows. Each later
//!   record at or past the held one's time (less `max_future`) is a follower, each one that
//!   stays behind it a contradiction. Two followers admit it (in arrival order, so a quiet
//!   stream's first record after a night, or a sparse stream's next day, is processed as
//!   before); eight contradictions dead-letter it (`future_time`). With no reference yet (a
//!   stream's first records) every record is held this way, so a lone 9999-12-31 first
//!   record cannot become the reference either. At the end of input every record still held
//!   is admitted, in arrival order: with fewer than eight records after it, the stream has
//!   not shown it wrong (the plausible-year bound still applies).
//!
//! The engine cannot dead-letter: it returns the rejections ([`crate::Engine::take_time_rejections`])
//! with the caller's [`Origin`] of the record, and each pipeline writes its own dead letter.

use fundwatch_record::{format_rfc3339_ms, Transaction};
use fundwatch_rules::Span;

/// Later records at or past a held record's time that admit it.
pub const FOLLOWERS_TO_ADMIT: u32 = 2;
/// Later records behind a held record's time that reject it.
pub const CONTRADICTIONS_TO_REJECT: u32 = 8;
/// Held records beyond this many: the oldest is rejected (bounds memory on garbage input).
pub const MAX_HELD: usize = 64;
/// 1990-01-01T00:00:00Z and 2200-01-01T00:00:00Z: no bank transaction lies outside.
pub const PLAUSIBLE_FROM_MS: i64 = 631_152_000_000;
pub const PLAUSIBLE_UNTIL_MS: i64 = 7_258_118_400_000;

/// Where a record came from, so its dead letter can point at it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// Line, row or offset, as the pipeline counts.
    pub position: u64,
    /// The original bytes (copied only when the record is held or rejected).
    pub raw: &'a [u8],
}

/// Why the engine refused a record's event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeRejection {
    #[error(
        "event time {} is more than {} ahead of the stream ({}) and the stream did not follow it",
        format_rfc3339_ms(*ts_ms),
        Span(*max_future_ms),
        reference_ms.map_or_else(|| "no reference yet".to_owned(), format_rfc3339_ms)
    )]
    AheadOfStream {
        ts_ms: i64,
        reference_ms: Option<i64>,
        max_future_ms: i64,
    },
    #[error(
        "event time {} is more than {} ahead of the wall clock ({})",
        format_rfc3339_ms(*ts_ms),
        Span(*max_future_ms),
        format_rfc3339_ms(*now_ms)
    )]
    AheadOfWallClock {
        ts_ms: i64,
        now_ms: i64,
        max_future_ms: i64,
    },
    #[error("event time {} is not a plausible transaction time (1990–2199)", format_rfc3339_ms(*ts_ms))]
    Implausible { ts_ms: i64 },
    #[error(
        "event time {} is older than the windows keep ({} behind the newest record, {})",
        format_rfc3339_ms(*ts_ms),
        Span(*max_history_ms),
        format_rfc3339_ms(*newest_ms)
    )]
    TooOld {
        ts_ms: i64,
        newest_ms: i64,
        max_history_ms: i64,
    },
}

impl TimeRejection {
    /// Stable reason code (dead letters, metrics), like `RejectReason::code`.
    pub fn code(&self) -> &'static str {
        match self {
            TimeRejection::AheadOfStream { .. } | TimeRejection::AheadOfWallClock { .. } => "future_time",
            TimeRejection::Implausible { ts_ms } if *ts_ms >= PLAUSIBLE_UNTIL_MS => "future_time",
            TimeRejection::Implausible { .. } | TimeRejection::TooOld { .. } => "too_old",
        }
    }

    /// The wall-clock bound of `fundwatch run`: `None` when `ts_ms` is within `max_future_ms`
    /// of `now_ms`.
    pub fn wall_clock(ts_ms: i64, now_ms: i64, max_future_ms: i64) -> Option<TimeRejection> {
        (ts_ms > now_ms.saturating_add(max_future_ms)).then_some(TimeRejection::AheadOfWallClock {
            ts_ms,
            now_ms,
            max_future_ms,
        })
    }
}

/// A record the engine refused, with what its dead letter needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRejected {
    pub position: u64,
    pub raw: Vec<u8>,
    pub tx_id: String,
    /// The record's account (the Kafka key of its dead letter).
    pub account: String,
    pub reason: TimeRejection,
}

/// Counters of the guards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeGuardStats {
    /// Rejected as ahead of the stream (or of the plausible years).
    pub future_time: u64,
    /// Rejected as older than the windows keep (or before the plausible years).
    pub too_old: u64,
    /// Records held aside since the start (most are admitted a record or two later).
    pub held: u64,
}

/// A record held aside until the stream shows whether it follows.
pub(crate) struct Held {
    pub(crate) tx: Transaction<'static>,
    pub(crate) position: u64,
    pub(crate) raw: Vec<u8>,
    pub(crate) followers: u32,
    pub(crate) contradictions: u32,
}

impl Held {
    pub(crate) fn rejected(self, reference_ms: Option<i64>, max_future_ms: i64) -> TimeRejected {
        TimeRejected {
            position: self.position,
            tx_id: self.tx.tx_id.into_owned(),
            account: self.tx.account.into_owned(),
            reason: TimeRejection::AheadOfStream {
                ts_ms: self.tx.ts_ms,
                reference_ms,
                max_future_ms,
            },
            raw: self.raw,
        }
    }
}
