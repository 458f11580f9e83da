//! `[input]`: how a feed's records map onto the spec's transaction record (spec section 6).
//! Read by `run`, `replay` and `backtest` alike. Not part of `config_version`: the same
//! transactions give the same alert ids whatever their wire format.

use std::collections::BTreeMap;

use fundwatch_record::{EpochUnit, Field, InputDecoder, Mapping, SourceFormat};
use serde::{Deserialize, Serialize};

use crate::config::{Checker, Validate};

/// `[input]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputParams {
    /// `"fundwatch"`: one spec record object per message or line (fields renamed by
    /// `[input.fields]`). `"debezium"`: a Debezium change event, with or without the JSON
    /// converter's `{"schema": …, "payload": …}` wrapper; the row is `after`. Inserts (`op`
    /// `c`) and snapshot reads (`r`) are transactions; updates, deletes, truncates, messages
    /// and tombstones (null or empty values) are counted by kind and passed over, never
    /// dead-lettered.
    pub format: InputFormatName,
    /// Zone of timestamps that carry none, `"+08:00"` or `"Z"`: ISO times without an offset
    /// (`2026-03-02 09:15:02`) and epoch numbers (Debezium's `io.debezium.time.Timestamp` /
    /// `MicroTimestamp` of a DATETIME column are the local wall time counted as UTC, so the
    /// offset is taken off). Empty (default): zone-less ISO times are rejected, as the spec
    /// says, and epoch numbers are UTC.
    pub timestamp_zone: String,
    /// What an epoch-number timestamp counts: `"ms"` (default; Debezium `Timestamp`), `"us"`
    /// (`MicroTimestamp`) or `"s"`. `ZonedTimestamp` is ISO text with a zone and needs nothing.
    pub timestamp_unit: TimestampUnit,
    /// Amount strings are Debezium `precise` decimals (`decimal.handling.mode=precise`:
    /// base64 of the big-endian two's-complement unscaled value) with this many digits after
    /// the point, e.g. 2 for DECIMAL(18,2). Unset: amount strings are decimal text. JSON
    /// numbers are always read exactly from their text. Range 0–18.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_scale: Option<u32>,
    /// Read the direction from the amount's sign (negative = out, the amount taken as
    /// absolute) instead of a direction field. Cannot be combined with `fields.direction`.
    pub direction_from_sign: bool,
    /// Our field = the source's field, dotted for nested ones (`counterparty =
    /// "CP.ACCT_NO"`), relative to the row (`after` for Debezium). Our fields are the spec's:
    /// tx_id, ts, account, counterparty, direction, amount, currency, channel, memo,
    /// account_type, industry, region, cross_border. Fields not listed are read under their
    /// own names.
    pub fields: BTreeMap<String, String>,
    /// `[input.values]`: the source's own words for our enumerated values.
    pub values: InputValues,
    /// What the Kafka key of `kafka.input_topic` is (`fundwatch run` only; files have no key).
    /// `"account"` (default): the record's account, as its bytes or as a Debezium key whose
    /// one column is the account (`message.key.columns`), so that all of an account's records
    /// are on one partition, in order, as the per-account rules need. A record whose key is
    /// not its account (no key counts as not) is counted in `fundwatch_input_misrouted_total`,
    /// and past `max_misrouted_share` the service stops. `"other"` (e.g. Debezium's default,
    /// the table's primary key): the service first re-keys the topic by account through an
    /// internal topic (`kafka.rekey_topic`), exactly once, and detects on that.
    pub keyed_by: KeyedBy,
    /// With `keyed_by = "account"`: the largest share of live records whose key is not their
    /// account that the service goes on with. It stops (aborting the open transaction) once
    /// the misrouted records exceed this share of the live records read, counted as at least
    /// 1,000 (so at the start, more than 10 misrouted records stop it with the default 0.01).
    /// 0: the first misrouted record stops it. Range 0–0.5.
    pub max_misrouted_share: f64,
}

impl Default for InputParams {
    fn default() -> Self {
        InputParams {
            format: InputFormatName::default(),
            timestamp_zone: String::new(),
            timestamp_unit: TimestampUnit::default(),
            amount_scale: None,
            direction_from_sign: false,
            fields: BTreeMap::new(),
            values: InputValues::default(),
            keyed_by: KeyedBy::default(),
            max_misrouted_share: 0.01,
        }
    }
}

/// `[input].keyed_by`: what the input topic's Kafka key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyedBy {
    /// The account: each account's records on one partition, in order.
    #[default]
    Account,
    /// Anything else (a primary key, nothing): re-keyed by account before detection.
    Other,
}

impl KeyedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyedBy::Account => "account",
            KeyedBy::Other => "other",
        }
    }
}

/// `max_misrouted_share` is a share of at least this many live records.
pub const MISROUTED_MIN_RECORDS: u64 = 1_000;

impl InputParams {
    /// Whether `misrouted` records out of `seen` live ones exceed what `max_misrouted_share`
    /// tolerates (the share of at least [`MISROUTED_MIN_RECORDS`]).
    pub fn misrouted_exceeded(&self, misrouted: u64, seen: u64) -> bool {
        misrouted as f64 > self.max_misrouted_share * seen.max(MISROUTED_MIN_RECORDS) as f64
    }
}

/// `[input].format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormatName {
    #[default]
    Fundwatch,
    Debezium,
}

/// `[input].timestamp_unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TimestampUnit {
    #[serde(rename = "s")]
    Seconds,
    #[default]
    #[serde(rename = "ms")]
    Millis,
    #[serde(rename = "us")]
    Micros,
}

/// `[input.values]`: the source's own words for our enumerated values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputValues {
    /// `[input.values.direction]`: the source's debit/credit flags.
    pub direction: DirectionValues,
}

/// `[input.values.direction]`: `in = ["C", "贷"]`, `out = ["D", "借"]`. Values are compared
/// after trimming spaces (CHAR columns pad); numbers compare by their text (`in = ["1"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectionValues {
    /// Source values meaning a credit to the account. Default `["in"]`.
    #[serde(rename = "in")]
    pub credit: Vec<String>,
    /// Source values meaning a debit from the account. Default `["out"]`.
    #[serde(rename = "out")]
    pub debit: Vec<String>,
}

impl Default for DirectionValues {
    fn default() -> Self {
        DirectionValues {
            credit: vec!["in".into()],
            debit: vec!["out".into()],
        }
    }
}

/// `"+08:00"`, `"-05:30"`, `"Z"` or `"+00:00"` → seconds east of UTC.
pub fn parse_zone(s: &str) -> Option<i32> {
    let s = s.trim();
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

impl InputParams {
    /// The checked mapping (call after [`crate::Config::check`]; a bad field is skipped).
    pub fn mapping(&self) -> Mapping {
        Mapping {
            format: match self.format {
                InputFormatName::Fundwatch => SourceFormat::Fundwatch,
                InputFormatName::Debezium => SourceFormat::Debezium,
            },
            fields: self
                .fields
                .iter()
                .filter_map(|(ours, theirs)| Some((Field::from_name(ours)?, theirs.trim().to_owned())))
                .collect(),
            direction_in: self
                .values
                .direction
                .credit
                .iter()
                .map(|v| v.trim().to_owned())
                .collect(),
            direction_out: self
                .values
                .direction
                .debit
                .iter()
                .map(|v| v.trim().to_owned())
                .collect(),
            direction_from_sign: self.direction_from_sign,
            timestamp_zone_s: parse_zone(&self.timestamp_zone),
            epoch_unit: match self.timestamp_unit {
                TimestampUnit::Seconds => EpochUnit::Seconds,
                TimestampUnit::Millis => EpochUnit::Millis,
                TimestampUnit::Micros => EpochUnit::Micros,
            },
            amount_scale: self.amount_scale,
        }
    }

    /// The decoder of this feed, chosen once per stream; the spec's own fast decoder when
    /// there is nothing to map.
    pub fn decoder(&self) -> Result<InputDecoder, fundwatch_record::MappingError> {
        InputDecoder::new(&self.mapping())
    }
}

fn allowed_fields() -> String {
    Field::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

impl Validate for InputParams {
    fn validate(&self, c: &mut Checker<'_>) {
        for (ours, theirs) in &self.fields {
            let name = format!("fields.{ours}");
            if Field::from_name(ours).is_none() {
                c.require(
                    false,
                    &name,
                    &format!(
                        "is not a field of the transaction record (allowed: {})",
                        allowed_fields()
                    ),
                );
                continue;
            }
            let path = theirs.trim();
            c.require(
                !path.is_empty() && path.split('.').all(|p| !p.is_empty()),
                &name,
                &format!("{theirs:?} is not a source field name or dotted path (\"TXN_AMT\", \"after.CP.ACCT_NO\")"),
            );
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for field in Field::ALL {
            let path = self.fields.get(field.name()).map_or(field.name(), |p| p.trim());
            if let Some(first) = seen.insert(path, field.name()) {
                c.require(
                    false,
                    &format!("fields.{}", field.name()),
                    &format!("reads {path:?}, which {first} reads too"),
                );
            }
        }
        if !self.timestamp_zone.trim().is_empty() && parse_zone(&self.timestamp_zone).is_none() {
            c.require(
                false,
                "timestamp_zone",
                &format!("{:?} is not an offset like \"+08:00\" or \"Z\"", self.timestamp_zone),
            );
        }
        if let Some(s) = self.amount_scale {
            c.range("amount_scale", s, 0, 18);
        }
        c.ratio("max_misrouted_share", self.max_misrouted_share, 0.0, 0.5);
        c.require(
            !(self.direction_from_sign && self.fields.contains_key("direction")),
            "direction_from_sign",
            "cannot be combined with fields.direction (the sign gives the direction)",
        );
        let d = &self.values.direction;
        for (name, list) in [("values.direction.in", &d.credit), ("values.direction.out", &d.debit)] {
            c.require(!list.is_empty(), name, "must list at least one value");
            c.require(
                list.iter().all(|v| !v.trim().is_empty()),
                name,
                "values must not be empty strings",
            );
        }
        if let Some(both) = d.credit.iter().find(|v| d.debit.iter().any(|o| o.trim() == v.trim())) {
            c.require(
                false,
                "values.direction",
                &format!("{both:?} is listed both as in and as out"),
            );
        }
    }
}
