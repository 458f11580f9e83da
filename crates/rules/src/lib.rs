//! Detection rules: what each fund-raising pattern is, how strongly the evidence matches, and
//! the thresholds behind both.
//!
//! Each rule is its own type with its own parameter section ([`config`]): it reads one
//! account's held history from the window store when the record just released could complete
//! its pattern, and returns a [`Hit`] with a 0–100 score, the figures that drove the score,
//! and a sentence an officer can read. Rules are pure functions of the window; deciding which
//! hits become alerts (confirmation score, one alert per episode, ids) is the engine's job.
//! The O(1) per-account trackers that gate evaluations are serde types, so the engine can
//! checkpoint them; their fields are part of that format (changing them means bumping
//! `fundwatch_engine::SNAPSHOT_FORMAT`).

pub mod cases_config;
pub mod config;
pub mod console_config;
pub mod input_config;
pub mod large_value;
pub mod memo;
pub mod periodic;
pub mod rapid;
pub mod scatter;
pub mod structuring;
pub mod units;

use fundwatch_record::{format_fen, AccountType, Fen};
use fundwatch_window::{AccountId, Interner, Row, WindowStore};
use serde_json::{Map, Value};

pub use cases_config::{CasesParams, ProsecutionLines, RoutingParams};
pub use config::{Config, ConfigError, ConfigIssue, ResolvedRules, SegmentKey};
pub use console_config::ConsoleParams;
pub use input_config::{InputParams, KeyedBy};
pub use memo::{MemoTagger, MemoTags};
pub use units::{Span, Yuan};

/// The spec's rule ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    ScatterInConcentratedOut,
    PeriodicBatchSmallOut,
    RapidPassThrough,
    Structuring,
    LargeValue,
}

impl RuleId {
    pub const ALL: [RuleId; 5] = [
        RuleId::ScatterInConcentratedOut,
        RuleId::PeriodicBatchSmallOut,
        RuleId::RapidPassThrough,
        RuleId::Structuring,
        RuleId::LargeValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::ScatterInConcentratedOut => "scatter_in_concentrated_out",
            RuleId::PeriodicBatchSmallOut => "periodic_batch_small_out",
            RuleId::RapidPassThrough => "rapid_pass_through",
            RuleId::Structuring => "structuring",
            RuleId::LargeValue => "large_value",
        }
    }

    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule knows about the account whose record was just released.
#[derive(Debug, Clone, Copy)]
pub struct AccountProfile {
    pub account_type: AccountType,
    /// In one of `[segments].key_sectors`.
    pub key_sector: bool,
}

/// Everything a rule may read when it evaluates.
pub struct Ctx<'a> {
    pub store: &'a WindowStore,
    /// Counterparty dictionary (the ids in [`Row::counterparty`]).
    pub names: &'a Interner,
    /// Window index of the account (an id in the engine's account dictionary).
    pub account: AccountId,
    pub account_name: &'a str,
    pub profile: AccountProfile,
    /// The record that was just released (already in the store).
    pub trigger: Row,
}

impl Ctx<'_> {
    pub fn tx_id(&self, seq: u64) -> &str {
        self.store.tx_id(seq)
    }
    pub fn name(&self, id: AccountId) -> &str {
        self.names.resolve(id)
    }
}

/// A rule's raw finding: not yet an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: RuleId,
    pub score: f64,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub summary: String,
    pub evidence: Map<String, Value>,
    /// For rules with more than one independent episode at a time (large_value: one per
    /// day, direction and kind), what distinguishes this one.
    pub episode: Option<String>,
}

/// A score built from named signals, so the evidence can show what drove it.
#[derive(Debug, Default, Clone)]
pub struct Score {
    parts: Vec<(&'static str, f64)>,
}

impl Score {
    pub fn new(base: f64) -> Self {
        Score {
            parts: vec![("pattern_matched", base)],
        }
    }
    pub fn add(&mut self, signal: &'static str, points: f64) {
        if points != 0.0 && points.is_finite() {
            self.parts.push((signal, (points * 10.0).round() / 10.0));
        }
    }
    pub fn total(&self) -> f64 {
        let t: f64 = self.parts.iter().map(|(_, p)| p).sum();
        ((t.clamp(0.0, 100.0)) * 10.0).round() / 10.0
    }
    pub fn breakdown(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.parts {
            m.insert((*k).to_owned(), Value::from(*v));
        }
        Value::Object(m)
    }
}

/// Money for evidence: yuan with 2 decimals, as a string (exact).
pub fn money(fen: Fen) -> Value {
    Value::String(format_fen(fen))
}

/// Up to `n` tx_ids for evidence.
pub fn sample_tx_ids(ctx: &Ctx<'_>, seqs: impl IntoIterator<Item = u64>, n: usize) -> Value {
    Value::Array(
        seqs.into_iter()
            .take(n)
            .map(|s| Value::String(ctx.tx_id(s).to_owned()))
            .collect(),
    )
}

/// Median of a small list (sorts a copy).
pub fn median_i64(v: &[i64]) -> i64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

/// Fraction, 0 when the denominator is 0.
pub fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Hours, to one decimal, for evidence.
pub fn hours(ms: i64) -> Value {
    Value::from(((ms as f64 / 3_600_000.0) * 10.0).round() / 10.0)
}

/// Round a ratio for evidence.
pub fn ratio(v: f64) -> Value {
    Value::from((v * 1000.0).round() / 1000.0)
}
