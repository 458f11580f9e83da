//! Feeds that are not the spec's record: a bank's own field names (nested ones by dotted
//! path), its debit/credit flags, zone-less times, epoch-number times, Debezium change events
//! and Debezium `precise` decimals. The config's `[input]` section describes the feed as a
//! [`Mapping`]; [`InputDecoder::new`] compiles it once, and the pipelines pick the decoder
//! once per stream. The spec's own record without a mapping keeps the fast decoder
//! ([`crate::decode_json`]) untouched: the mapped path is a separate decoder, not branches in
//! the hot one.

use std::borrow::Cow;

use base64::Engine as _;
use sonic_rs::{JsonValueTrait, LazyValue, ObjectJsonIter};

use crate::amount::{parse_amount_json_number, parse_amount_text};
use crate::time::{parse_naive_ms, parse_rfc3339_ms};
use crate::{decode_json, parse_account_type, truncate, Channel, Direction, Field, RejectReason, Transaction};

/// The wire format of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceFormat {
    /// One record object per message or line (field names as mapped).
    #[default]
    Fundwatch,
    /// A Debezium change event, with or without the `{"schema":…,"payload":…}` wrapper:
    /// the row is `after`; only inserts (`c`) and snapshot reads (`r`) are transactions.
    Debezium,
}

/// What an epoch-number timestamp counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EpochUnit {
    Seconds,
    /// Debezium's `io.debezium.time.Timestamp`.
    #[default]
    Millis,
    /// Debezium's `io.debezium.time.MicroTimestamp`.
    Micros,
}

/// How a feed maps onto the spec's record (the checked content of `[input]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapping {
    pub format: SourceFormat,
    /// Our field → the source's field (dotted path for nested ones, relative to the row).
    /// Fields not listed are read under their own names.
    pub fields: Vec<(Field, String)>,
    /// Source values meaning a credit (`in`); empty: `"in"`.
    pub direction_in: Vec<String>,
    /// Source values meaning a debit (`out`); empty: `"out"`.
    pub direction_out: Vec<String>,
    /// Direction from the amount's sign (negative = out; the amount is taken as absolute).
    pub direction_from_sign: bool,
    /// Offset (seconds east of UTC) of timestamps that carry no zone: ISO times without an
    /// offset and epoch numbers (Debezium's DATETIME: local wall time counted as UTC). `None`:
    /// zone-less ISO times are rejected and epoch numbers are UTC.
    pub timestamp_zone_s: Option<i32>,
    pub epoch_unit: EpochUnit,
    /// Amount strings are Debezium `precise` decimals with this scale (base64 of the
    /// big-endian two's-complement unscaled value). `None`: decimal text.
    pub amount_scale: Option<u32>,
}

impl Mapping {
    /// No mapping at all: the spec's own record, read by the fast decoder.
    pub fn is_identity(&self) -> bool {
        let plain_values = |v: &[String], word: &str| v.is_empty() || (v.len() == 1 && v[0] == word);
        self.format == SourceFormat::Fundwatch
            && self.fields.iter().all(|(f, src)| f.name() == src)
            && plain_values(&self.direction_in, "in")
            && plain_values(&self.direction_out, "out")
            && !self.direction_from_sign
            && self.timestamp_zone_s.is_none()
            && self.amount_scale.is_none()
    }
}

/// Why a [`Mapping`] cannot be compiled (the config check names these per field first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("source field path {0:?} has an empty part")]
    EmptyPath(String),
    #[error("source field {path:?} is mapped twice ({first} and {second})")]
    SamePath {
        path: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("{0:?} is both an `in` and an `out` direction value")]
    AmbiguousDirection(String),
    #[error("amount_scale {0} is out of range (allowed 0 to 18)")]
    Scale(u32),
}

/// Change events that are not transactions: counted by kind and passed over, never
/// dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipKind {
    /// `op = "u"`: a ledger row changed after the fact.
    Update,
    /// `op = "d"`.
    Delete,
    /// A null or empty message value (log compaction's marker after a delete).
    Tombstone,
    /// `op = "t"`.
    Truncate,
    /// `op = "m"` (a logical decoding message).
    Message,
}

impl SkipKind {
    pub const ALL: [SkipKind; 5] = [
        SkipKind::Update,
        SkipKind::Delete,
        SkipKind::Tombstone,
        SkipKind::Truncate,
        SkipKind::Message,
    ];

    /// Stable label (summaries, the `kind` of `fundwatch_input_skipped_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::Update => "update",
            SkipKind::Delete => "delete",
            SkipKind::Tombstone => "tombstone",
            SkipKind::Truncate => "truncate",
            SkipKind::Message => "message",
        }
    }
}

/// What one message or line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    Record(Transaction<'a>),
    Skipped(SkipKind),
    Rejected(RejectReason),
}

/// The decoder of one feed, chosen once per stream.
#[derive(Debug, Clone, Default)]
pub enum InputDecoder {
    /// The spec's record: [`crate::decode_json`].
    #[default]
    Fundwatch,
    Mapped(Box<MappedDecoder>),
}

impl InputDecoder {
    pub fn new(mapping: &Mapping) -> Result<InputDecoder, MappingError> {
        if mapping.is_identity() {
            return Ok(InputDecoder::Fundwatch);
        }
        MappedDecoder::new(mapping).map(|d| InputDecoder::Mapped(Box::new(d)))
    }

    pub fn is_default(&self) -> bool {
        matches!(self, InputDecoder::Fundwatch)
    }

    /// Decode one message value or line. Pipelines that care about speed match on the
    /// decoder once and call [`decode_json`] or [`MappedDecoder::decode`] directly.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Decoded<'a> {
        match self {
            InputDecoder::Fundwatch => match decode_json(bytes) {
                Ok(t) => Decoded::Record(t),
                Err(r) => Decoded::Rejected(r),
            },
            InputDecoder::Mapped(m) => m.decode(bytes),
        }
    }
}

/// A node of the source-path tree: the keys to look for at one level of the row.
#[derive(Debug, Clone, Default)]
struct PathNode {
    children: Vec<(String, PathNode)>,
    /// The field this key holds (a leaf).
    field: Option<Field>,
}

impl PathNode {
    fn insert(&mut self, path: &str, field: Field) -> Result<(), MappingError> {
        let mut node = self;
        for part in path.split('.') {
            if part.is_empty() {
                return Err(MappingError::EmptyPath(path.to_owned()));
            }
            let at = match node.children.iter().position(|(k, _)| k == part) {
                Some(i) => i,
                None => {
                    node.children.push((part.to_owned(), PathNode::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        if let Some(first) = node.field {
            return Err(MappingError::SamePath {
                path: path.to_owned(),
                first: first.name(),
                second: field.name(),
            });
        }
        node.field = Some(field);
        Ok(())
    }

    fn child(&self, key: &str) -> Option<&PathNode> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
}

/// The compiled mapping.
#[derive(Debug, Clone)]
pub struct MappedDecoder {
    format: SourceFormat,
    row: PathNode,
    direction_in: Vec<String>,
    direction_out: Vec<String>,
    direction_from_sign: bool,
    zone_ms: Option<i64>,
    epoch_unit: EpochUnit,
    amount_scale: Option<u32>,
}

/// A row's values by field, as found.
type Slots<'a> = [Option<LazyValue<'a>>; 13];

impl MappedDecoder {
    pub fn new(m: &Mapping) -> Result<MappedDecoder, MappingError> {
        let mut row = PathNode::default();
        for field in Field::ALL {
            let path = m
                .fields
                .iter()
                .find(|(f, _)| *f == field)
                .map_or(field.name(), |(_, p)| p.as_str());
            row.insert(path, field)?;
        }
        let or_word = |v: &[String], w: &str| {
            if v.is_empty() {
                vec![w.to_owned()]
            } else {
                v.to_vec()
            }
        };
        let direction_in = or_word(&m.direction_in, "in");
        let direction_out = or_word(&m.direction_out, "out");
        if let Some(both) = direction_in.iter().find(|v| direction_out.contains(v)) {
            return Err(MappingError::AmbiguousDirection(both.clone()));
        }
        if let Some(s) = m.amount_scale.filter(|s| *s > 18) {
            return Err(MappingError::Scale(s));
        }
        Ok(MappedDecoder {
            format: m.format,
            row,
            direction_in,
            direction_out,
            direction_from_sign: m.direction_from_sign,
            zone_ms: m.timestamp_zone_s.map(|s| i64::from(s) * 1000),
            epoch_unit: m.epoch_unit,
            amount_scale: m.amount_scale,
        })
    }

    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Decoded<'a> {
        let Ok(text) = simdutf8::basic::from_utf8(bytes) else {
            return Decoded::Rejected(RejectReason::InvalidUtf8);
        };
        let trimmed = text.trim();
        if self.format == SourceFormat::Debezium && (trimmed.is_empty() || trimmed == "null") {
            return Decoded::Skipped(SkipKind::Tombstone);
        }
        let row = match self.format {
            SourceFormat::Fundwatch => object(trimmed),
            SourceFormat::Debezium => match debezium_row(trimmed) {
                Ok(Row::Insert(row)) => Ok(row),
                Ok(Row::Skip(kind)) => return Decoded::Skipped(kind),
                Err(e) => Err(e),
            },
        };
        match row.and_then(|r| self.read_row(r)) {
            Ok(t) => Decoded::Record(t),
            Err(e) => Decoded::Rejected(e),
        }
    }

    fn read_row<'a>(&self, row: ObjectJsonIter<'a>) -> Result<Transaction<'a>, RejectReason> {
        let mut slots: Slots<'a> = Default::default();
        collect(row, &self.row, &mut slots)?;
        let mut take = |f: Field| slots[f as usize].take().filter(|v| !v.is_null());
        let tx_id = non_empty(text(take(Field::TxId), Field::TxId)?, Field::TxId)?;
        let ts = take(Field::Ts).ok_or(RejectReason::MissingField("ts"))?;
        let account = non_empty(text(take(Field::Account), Field::Account)?, Field::Account)?;
        // A NULL counterparty column is how a bank's table says "none": cash, as "" is.
        let counterparty = text(take(Field::Counterparty), Field::Counterparty)?.unwrap_or_default();
        let amount_value = take(Field::Amount).ok_or(RejectReason::MissingField("amount"))?;
        let (amount, negative) = self.amount(&amount_value)?;
        let direction = if self.direction_from_sign {
            if negative {
                Direction::Out
            } else {
                Direction::In
            }
        } else {
            if negative {
                return Err(RejectReason::AmountNotPositive(truncate(amount_value.as_raw_str())));
            }
            let v = take(Field::Direction).ok_or(RejectReason::MissingField("direction"))?;
            self.direction(&v)?
        };
        let ts_ms = self.timestamp(&ts)?;
        let currency = text(take(Field::Currency), Field::Currency)?.unwrap_or_default();
        let is_cny = currency.is_empty() || currency.as_ref() == "CNY";
        let account_type = match text(take(Field::AccountType), Field::AccountType)? {
            Some(s) if !s.is_empty() => parse_account_type(&s)?,
            _ => Default::default(),
        };
        let channel = text(take(Field::Channel), Field::Channel)?;
        let channel = Channel::of_record(channel.as_deref(), &counterparty);
        let cross_border = match take(Field::CrossBorder) {
            None => false,
            Some(v) => boolean(&v)?,
        };
        Ok(Transaction {
            tx_id,
            ts_ms,
            account,
            counterparty,
            direction,
            amount,
            is_cny,
            currency,
            channel,
            memo: text(take(Field::Memo), Field::Memo)?.unwrap_or_default(),
            account_type,
            industry: text(take(Field::Industry), Field::Industry)?.unwrap_or_default(),
            region: text(take(Field::Region), Field::Region)?.unwrap_or_default(),
            cross_border,
        })
    }

    /// Fen and whether the source value was negative.
    fn amount(&self, v: &LazyValue<'_>) -> Result<(i64, bool), RejectReason> {
        let raw = v.as_raw_str();
        match raw.as_bytes().first() {
            Some(b'"') => {
                let s = v.as_str().ok_or_else(|| RejectReason::AmountMalformed(truncate(raw)))?;
                match self.amount_scale {
                    Some(scale) => precise_decimal(s, scale),
                    None => signed(s, parse_amount_text),
                }
            }
            Some(b'-' | b'0'..=b'9') => signed(raw, parse_amount_json_number),
            // Debezium's VariableScaleDecimal: {"scale": 2, "value": "<base64>"}.
            Some(b'{') => variable_scale_decimal(raw),
            _ => Err(RejectReason::WrongType {
                field: "amount",
                expected: "a string or a number",
            }),
        }
    }

    fn direction(&self, v: &LazyValue<'_>) -> Result<Direction, RejectReason> {
        let s = scalar_text(v).ok_or(RejectReason::WrongType {
            field: "direction",
            expected: "a string",
        })?;
        let s = s.trim();
        if self.direction_in.iter().any(|w| w == s) {
            Ok(Direction::In)
        } else if self.direction_out.iter().any(|w| w == s) {
            Ok(Direction::Out)
        } else {
            Err(RejectReason::UnknownDirection(truncate(s)))
        }
    }

    fn timestamp(&self, v: &LazyValue<'_>) -> Result<i64, RejectReason> {
        let raw = v.as_raw_str();
        if raw.starts_with('"') {
            let s = v.as_str().ok_or_else(|| RejectReason::BadTimestamp(truncate(raw)))?;
            return match (parse_rfc3339_ms(s), self.zone_ms) {
                (Ok(ms), _) => Ok(ms),
                (Err(e), None) => Err(e),
                (Err(e), Some(zone)) => parse_naive_ms(s).map(|local| local - zone).ok_or(e),
            };
        }
        let n: i64 = raw.parse().map_err(|_| RejectReason::BadTimestamp(truncate(raw)))?;
        let utc_or_local_ms = match self.epoch_unit {
            EpochUnit::Seconds => n.checked_mul(1000),
            EpochUnit::Millis => Some(n),
            EpochUnit::Micros => Some(n.div_euclid(1000)),
        }
        .ok_or_else(|| RejectReason::BadTimestamp(truncate(raw)))?;
        // Debezium writes a DATETIME's wall time as if it were UTC: take the zone off.
        Ok(utc_or_local_ms - self.zone_ms.unwrap_or(0))
    }
}

/// The top-level object of a line or message.
fn object(text: &str) -> Result<ObjectJsonIter<'_>, RejectReason> {
    match text.as_bytes().first() {
        Some(b'{') => Ok(sonic_rs::to_object_iter(text)),
        Some(_) if sonic_rs::from_str::<serde::de::IgnoredAny>(text).is_ok() => Err(RejectReason::NotAnObject),
        _ => Err(RejectReason::InvalidJson(truncate(text))),
    }
}

enum Row<'a> {
    Insert(ObjectJsonIter<'a>),
    Skip(SkipKind),
}

/// The `after` row of an insert or snapshot read; the kind of anything else.
fn debezium_row(text: &str) -> Result<Row<'_>, RejectReason> {
    let (mut op, mut after, mut payload) = (None, None, None);
    for item in object(text)? {
        let (k, v) = item.map_err(json_error)?;
        match k.as_ref() {
            "op" => op = Some(v),
            "after" => after = Some(v),
            "payload" => payload = Some(v),
            _ => {}
        }
    }
    if op.is_none() {
        match payload {
            // The JSON converter's `{"schema": …, "payload": …}` wrapper.
            Some(p) if p.is_null() => return Ok(Row::Skip(SkipKind::Tombstone)),
            Some(p) if p.is_object() => {
                let inner = p.into_object_iter().ok_or(RejectReason::NotAnObject)?;
                for item in inner {
                    let (k, v) = item.map_err(json_error)?;
                    match k.as_ref() {
                        "op" => op = Some(v),
                        "after" => after = Some(v),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let op = op.ok_or(RejectReason::MissingField("op"))?;
    match op.as_str() {
        Some("c" | "r") => {}
        Some("u") => return Ok(Row::Skip(SkipKind::Update)),
        Some("d") => return Ok(Row::Skip(SkipKind::Delete)),
        Some("t") => return Ok(Row::Skip(SkipKind::Truncate)),
        Some("m") => return Ok(Row::Skip(SkipKind::Message)),
        _ => return Err(RejectReason::UnknownOperation(truncate(op.as_raw_str()))),
    }
    match after {
        Some(a) if a.is_object() => a.into_object_iter().map(Row::Insert).ok_or(RejectReason::NotAnObject),
        Some(a) if !a.is_null() => Err(RejectReason::WrongType {
            field: "after",
            expected: "an object",
        }),
        _ => Err(RejectReason::MissingField("after")),
    }
}

fn json_error(e: sonic_rs::Error) -> RejectReason {
    RejectReason::InvalidJson(truncate(&e.to_string()))
}

/// Walk one object level, keeping the values of mapped paths.
fn collect<'a>(iter: ObjectJsonIter<'a>, node: &PathNode, slots: &mut Slots<'a>) -> Result<(), RejectReason> {
    for item in iter {
        let (k, v) = item.map_err(json_error)?;
        let Some(child) = node.child(&k) else { continue };
        if !child.children.is_empty() && v.is_object() {
            if let Some(inner) = v.clone().into_object_iter() {
                collect(inner, child, slots)?;
            }
        }
        if let Some(f) = child.field {
            slots[f as usize] = Some(v);
        }
    }
    Ok(())
}

/// A string value (borrowed unless it had escapes) or a number's text (account numbers
/// stored as BIGINT); `None` for a missing or null value.
fn text<'a>(v: Option<LazyValue<'a>>, field: Field) -> Result<Option<Cow<'a, str>>, RejectReason> {
    let Some(v) = v else { return Ok(None) };
    let wrong = RejectReason::WrongType {
        field: field.name(),
        expected: "a string",
    };
    if v.is_str() {
        if let Cow::Borrowed(raw) = v.as_raw_cow() {
            if !raw.contains('\\') && raw.len() >= 2 {
                return Ok(Some(Cow::Borrowed(&raw[1..raw.len() - 1])));
            }
        }
        return v.as_str().map(|s| Some(Cow::Owned(s.to_owned()))).ok_or(wrong);
    }
    if v.is_number() {
        return Ok(Some(v.as_raw_cow()));
    }
    Err(wrong)
}

fn non_empty<'a>(v: Option<Cow<'a, str>>, field: Field) -> Result<Cow<'a, str>, RejectReason> {
    match v {
        None => Err(RejectReason::MissingField(field.name())),
        Some(s) if s.is_empty() => Err(RejectReason::EmptyField(field.name())),
        Some(s) => Ok(s),
    }
}

fn scalar_text<'a>(v: &'a LazyValue<'_>) -> Option<Cow<'a, str>> {
    if v.is_str() {
        v.as_str().map(Cow::Borrowed)
    } else if v.is_number() || v.is_boolean() {
        Some(Cow::Borrowed(v.as_raw_str()))
    } else {
        None
    }
}

fn boolean(v: &LazyValue<'_>) -> Result<bool, RejectReason> {
    let bad = || RejectReason::BadBool(truncate(v.as_raw_str()));
    match scalar_text(v).ok_or_else(bad)?.trim() {
        "true" | "TRUE" | "True" | "1" | "Y" | "y" => Ok(true),
        "false" | "FALSE" | "False" | "0" | "N" | "n" | "" => Ok(false),
        _ => Err(bad()),
    }
}

/// Parse a possibly negative amount with a parser of non-negative ones.
fn signed(s: &str, parse: fn(&str) -> Result<i64, RejectReason>) -> Result<(i64, bool), RejectReason> {
    let t = s.trim();
    match t.strip_prefix('-') {
        Some(rest) if rest.starts_with(['-', '+']) => Err(RejectReason::AmountMalformed(truncate(s))),
        Some(rest) => parse(rest).map(|fen| (fen, true)).map_err(|e| match e {
            RejectReason::AmountNotPositive(_) => RejectReason::AmountNotPositive(truncate(s)),
            other => other,
        }),
        None => parse(t).map(|fen| (fen, false)),
    }
}

/// Debezium's `decimal.handling.mode=precise`: base64 of the unscaled value, big-endian
/// two's complement; `scale` digits after the point.
pub fn precise_decimal(b64: &str, scale: u32) -> Result<(i64, bool), RejectReason> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| RejectReason::AmountMalformed(truncate(b64)))?;
    if bytes.is_empty() {
        return Err(RejectReason::AmountMalformed(truncate(b64)));
    }
    if bytes.len() > 16 {
        return Err(RejectReason::AmountTooLarge(truncate(b64)));
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut buf = [if negative { 0xff } else { 0 }; 16];
    buf[16 - bytes.len()..].copy_from_slice(&bytes);
    let unscaled = i128::from_be_bytes(buf);
    let magnitude = unscaled.unsigned_abs();
    let text = || truncate(&format!("{unscaled}e-{scale}"));
    let fen = if scale <= 2 {
        magnitude.checked_mul(10u128.pow(2 - scale))
    } else {
        let div = 10u128
            .checked_pow(scale - 2)
            .ok_or_else(|| RejectReason::AmountMalformed(text()))?;
        if magnitude % div != 0 {
            // Trailing digits that are not zero: more than 2 decimals.
            let mut m = magnitude;
            let mut decimals = scale as usize;
            while m % 10 == 0 && decimals > 2 {
                m /= 10;
                decimals -= 1;
            }
            return Err(RejectReason::AmountDecimals { decimals, text: text() });
        }
        Some(magnitude / div)
    };
    let fen = fen
        .and_then(|f| i64::try_from(f).ok())
        .filter(|f| *f <= crate::amount::MAX_FEN_I64)
        .ok_or_else(|| RejectReason::AmountTooLarge(text()))?;
    if fen == 0 {
        return Err(RejectReason::AmountNotPositive(text()));
    }
    Ok((fen, negative))
}

fn variable_scale_decimal(raw: &str) -> Result<(i64, bool), RejectReason> {
    #[derive(serde::Deserialize)]
    struct Vsd<'a> {
        scale: u32,
        #[serde(borrow)]
        value: Cow<'a, str>,
    }
    let v: Vsd<'_> = sonic_rs::from_str(raw).map_err(|_| RejectReason::WrongType {
        field: "amount",
        expected: "a string, a number or {\"scale\", \"value\"}",
    })?;
    precise_decimal(&v.value, v.scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(unscaled: i128, len: usize) -> String {
        let bytes = unscaled.to_be_bytes();
        base64::engine::general_purpose::STANDARD.encode(&bytes[16 - len..])
    }

    #[test]
    fn precise_decimals() {
        // 50000.00 at scale 2 = 5000000 unscaled = 0x4C4B40.
        assert_eq!(precise_decimal("TEtA", 2), Ok((5_000_000, false)));
        assert_eq!(precise_decimal(&b64(5_000_000, 3), 2), Ok((5_000_000, false)));
        assert_eq!(precise_decimal(&b64(-4_990, 2), 2), Ok((4_990, true)));
        assert_eq!(precise_decimal(&b64(499, 2), 1), Ok((4_990, false)));
        assert_eq!(precise_decimal(&b64(50, 1), 0), Ok((5_000, false)));
        assert_eq!(precise_decimal(&b64(49_900, 3), 3), Ok((4_990, false)));
        assert_eq!(
            precise_decimal(&b64(128, 2), 2),
            Ok((128, false)),
            "a leading zero byte keeps it positive"
        );
        assert!(matches!(
            precise_decimal(&b64(49_901, 3), 3),
            Err(RejectReason::AmountDecimals { decimals: 3, .. })
        ));
        assert!(matches!(
            precise_decimal("AA==", 2),
            Err(RejectReason::AmountNotPositive(_))
        ));
        assert!(matches!(
            precise_decimal("not base64!", 2),
            Err(RejectReason::AmountMalformed(_))
        ));
        assert!(matches!(precise_decimal("", 2), Err(RejectReason::AmountMalformed(_))));
        assert!(matches!(
            precise_decimal(&b64(i128::MAX / 4, 16), 2),
            Err(RejectReason::AmountTooLarge(_))
        ));
    }

    #[test]
    fn signed_amounts() {
        assert_eq!(signed("-49.90", parse_amount_text), Ok((4_990, true)));
        assert_eq!(signed("49.9", parse_amount_text), Ok((4_990, false)));
        assert_eq!(signed("-4.99e1", parse_amount_json_number), Ok((4_990, true)));
        assert!(matches!(
            signed("-0", parse_amount_text),
            Err(RejectReason::AmountNotPositive(_))
        ));
        assert!(matches!(
            signed("--5", parse_amount_text),
            Err(RejectReason::AmountMalformed(_))
        ));
    }

    fn decoder(m: Mapping) -> MappedDecoder {
        MappedDecoder::new(&m).unwrap()
    }

    fn record(d: &MappedDecoder, s: &str) -> Transaction<'static> {
        match d.decode(s.as_bytes()) {
            Decoded::Record(t) => t.into_owned(),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn rejected(d: &MappedDecoder, s: &str) -> RejectReason {
        match d.decode(s.as_bytes()) {
            Decoded::Rejected(r) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn bank() -> Mapping {
        Mapping {
            format: SourceFormat::Debezium,
            fields: vec![
                (Field::TxId, "TXN_ID".into()),
                (Field::Ts, "TXN_DTTM".into()),
                (Field::Account, "ACCT_NO".into()),
                (Field::Counterparty, "CP.ACCT_NO".into()),
                (Field::Direction, "DR_CR_FLG".into()),
                (Field::Amount, "TXN_AMT".into()),
                (Field::Memo, "RMK".into()),
            ],
            direction_in: vec!["C".into(), "贷".into()],
            direction_out: vec!["D".into(), "借".into()],
            timestamp_zone_s: Some(8 * 3600),
            amount_scale: Some(2),
            ..Mapping::default()
        }
    }

    const ROW: &str = r#"{"TXN_ID":"T1","TXN_DTTM":1772442902000,"ACCT_NO":6222020200001234567,"CP":{"ACCT_NO":"6217"},"DR_CR_FLG":"C","TXN_AMT":"TEtA","RMK":"\u7406\u8d22"}"#;

    #[test]
    fn debezium_events_with_and_without_the_wrapper() {
        let d = decoder(bank());
        let plain = format!(r#"{{"before":null,"after":{ROW},"op":"c","ts_ms":1}}"#);
        let wrapped = format!(r#"{{"schema":{{"type":"struct","fields":[]}},"payload":{plain}}}"#);
        for s in [&plain, &wrapped] {
            let t = record(&d, s);
            assert_eq!(t.tx_id, "T1");
            assert_eq!(t.account, "6222020200001234567", "a BIGINT account reads as its digits");
            assert_eq!(t.counterparty, "6217");
            assert_eq!(t.direction, Direction::In);
            assert_eq!(t.amount, 5_000_000);
            assert_eq!(t.memo, "理财");
            // 1772442902000 is 2026-03-02T09:15:02 wall time counted as UTC; Beijing wall time.
            assert_eq!(t.ts_ms, parse_rfc3339_ms("2026-03-02T09:15:02+08:00").unwrap());
        }
        let read = plain.replace(r#""op":"c""#, r#""op":"r""#);
        assert_eq!(record(&d, &read).tx_id, "T1");
        for (op, kind) in [
            ("u", SkipKind::Update),
            ("d", SkipKind::Delete),
            ("t", SkipKind::Truncate),
            ("m", SkipKind::Message),
        ] {
            let s = plain.replace(r#""op":"c""#, &format!(r#""op":"{op}""#));
            assert_eq!(d.decode(s.as_bytes()), Decoded::Skipped(kind));
        }
        for tomb in ["", "  ", "null", r#"{"schema":null,"payload":null}"#] {
            assert_eq!(
                d.decode(tomb.as_bytes()),
                Decoded::Skipped(SkipKind::Tombstone),
                "{tomb:?}"
            );
        }
        assert_eq!(
            rejected(&d, &plain.replace(r#""op":"c""#, r#""op":"x""#)),
            RejectReason::UnknownOperation("\"x\"".into())
        );
        assert_eq!(rejected(&d, r#"{"after":{}}"#), RejectReason::MissingField("op"));
        assert_eq!(
            rejected(&d, r#"{"op":"c","after":null}"#),
            RejectReason::MissingField("after")
        );
        assert!(matches!(
            rejected(&d, "{\"op\":\"c\",\"after\":"),
            RejectReason::InvalidJson(_)
        ));
        assert_eq!(rejected(&d, "[1]"), RejectReason::NotAnObject);
        let debit = plain.replace(r#""DR_CR_FLG":"C""#, r#""DR_CR_FLG":"借""#);
        assert_eq!(record(&d, &debit).direction, Direction::Out);
        let unknown = plain.replace(r#""DR_CR_FLG":"C""#, r#""DR_CR_FLG":"X""#);
        assert_eq!(rejected(&d, &unknown), RejectReason::UnknownDirection("X".into()));
        let cash = plain.replace(r#""CP":{"ACCT_NO":"6217"}"#, r#""CP":null"#);
        let t = record(&d, &cash);
        assert_eq!(
            (t.counterparty.as_ref(), t.channel),
            ("", Channel::Cash),
            "a NULL counterparty is cash"
        );
        let no_account = plain.replace(r#""ACCT_NO":6222020200001234567,"#, "");
        assert_eq!(rejected(&d, &no_account), RejectReason::MissingField("account"));
    }

    #[test]
    fn timestamps() {
        let zone = |z: Option<i32>, unit: EpochUnit| {
            decoder(Mapping {
                timestamp_zone_s: z,
                epoch_unit: unit,
                ..Mapping::default()
            })
        };
        let line = |ts: &str| {
            format!(r#"{{"tx_id":"a","ts":{ts},"account":"A","counterparty":"B","direction":"in","amount":1}}"#)
        };
        let want = parse_rfc3339_ms("2026-03-02T09:15:02+08:00").unwrap();
        let beijing = zone(Some(8 * 3600), EpochUnit::Millis);
        for ts in [
            r#""2026-03-02T09:15:02""#,
            r#""2026-03-02 09:15:02""#,
            r#""2026-03-02T01:15:02Z""#,
            r#""2026-03-02T09:15:02+08:00""#,
            "1772442902000",
        ] {
            assert_eq!(record(&beijing, &line(ts)).ts_ms, want, "{ts}");
        }
        assert_eq!(
            record(&beijing, &line(r#""2026-03-02 09:15:02.250""#)).ts_ms,
            want + 250
        );
        let micros = zone(Some(8 * 3600), EpochUnit::Micros);
        assert_eq!(record(&micros, &line("1772442902000123")).ts_ms, want);
        let seconds = zone(Some(0), EpochUnit::Seconds);
        assert_eq!(record(&seconds, &line("1772414102")).ts_ms, want);
        // Without a zone, epoch numbers are UTC and zone-less text is refused (as the spec does).
        let utc = zone(None, EpochUnit::Millis);
        assert_eq!(record(&utc, &line("1772414102000")).ts_ms, want);
        assert!(matches!(
            rejected(&utc, &line(r#""2026-03-02T09:15:02""#)),
            RejectReason::BadTimestamp(_)
        ));
        assert!(matches!(
            rejected(&beijing, &line(r#""03/02/2026""#)),
            RejectReason::BadTimestamp(_)
        ));
        assert!(matches!(
            rejected(&beijing, &line("1.5")),
            RejectReason::BadTimestamp(_)
        ));
    }

    #[test]
    fn amounts_and_direction_from_sign() {
        let d = decoder(Mapping {
            direction_from_sign: true,
            ..Mapping::default()
        });
        let line = |amount: &str| {
            format!(r#"{{"tx_id":"a","ts":"2026-03-02T01:15:02Z","account":"A","counterparty":"B","amount":{amount}}}"#)
        };
        let got = |a: &str| {
            let t = record(&d, &line(a));
            (t.amount, t.direction)
        };
        assert_eq!(got(r#""-49.90""#), (4_990, Direction::Out));
        assert_eq!(got(r#""49.9""#), (4_990, Direction::In));
        assert_eq!(got("-5000"), (500_000, Direction::Out));
        assert_eq!(
            got("1234567890123.45"),
            (123_456_789_012_345, Direction::In),
            "exact, no float"
        );
        assert!(matches!(rejected(&d, &line("0")), RejectReason::AmountNotPositive(_)));
        assert!(matches!(
            rejected(&d, &line("1.001")),
            RejectReason::AmountDecimals { .. }
        ));
        assert!(matches!(rejected(&d, &line("true")), RejectReason::WrongType { .. }));
        assert_eq!(
            got(r#"{"scale":3,"value":"AMLs"}"#),
            (4_990, Direction::In),
            "VariableScaleDecimal 49.900"
        );
        // Without sign mode a negative amount is refused, as the spec's record is.
        let plain = decoder(Mapping {
            fields: vec![(Field::Amount, "amt".into())],
            ..Mapping::default()
        });
        let l =
            r#"{"tx_id":"a","ts":"2026-03-02T01:15:02Z","account":"A","counterparty":"B","direction":"out","amt":-5}"#;
        assert!(matches!(rejected(&plain, l), RejectReason::AmountNotPositive(_)));
        // A mapped record's own names are not read any more.
        let l = r#"{"tx_id":"a","ts":"2026-03-02T01:15:02Z","account":"A","counterparty":"B","direction":"out","amount":5}"#;
        assert_eq!(rejected(&plain, l), RejectReason::MissingField("amount"));
    }

    #[test]
    fn flags_padding_numbers_and_booleans() {
        let d = decoder(Mapping {
            fields: vec![(Field::Direction, "DC".into()), (Field::CrossBorder, "XB".into())],
            direction_in: vec!["1".into()],
            direction_out: vec!["2".into()],
            ..Mapping::default()
        });
        let line = |dc: &str, xb: &str| {
            format!(
                r#"{{"tx_id":7,"ts":"2026-03-02T01:15:02Z","account":"A","counterparty":"B","DC":{dc},"XB":{xb},"amount":"5","memo":null,"region":330106}}"#
            )
        };
        let t = record(&d, &line("1", "true"));
        assert_eq!(
            (t.direction, t.cross_border),
            (Direction::In, true),
            "a numeric flag compares by its text"
        );
        assert_eq!(t.tx_id, "7", "a numeric id reads as its digits");
        assert_eq!(t.region, "330106");
        assert_eq!(t.memo, "", "null is absent");
        assert_eq!(
            record(&d, &line(r#""2 ""#, r#""Y""#)).direction,
            Direction::Out,
            "CHAR padding is trimmed"
        );
        assert!(!record(&d, &line("2", "0")).cross_border);
        assert!(!record(&d, &line("2", "null")).cross_border);
        assert!(matches!(
            rejected(&d, &line("2", r#""maybe""#)),
            RejectReason::BadBool(_)
        ));
        assert!(matches!(
            rejected(&d, &line("[2]", "0")),
            RejectReason::WrongType { field: "direction", .. }
        ));
        let l = line("1", "0").replace(r#""account":"A""#, r#""account":{"n":1}"#);
        assert_eq!(
            rejected(&d, &l),
            RejectReason::WrongType {
                field: "account",
                expected: "a string"
            }
        );
        let l = line("1", "0").replace(r#""account":"A""#, r#""account":"""#);
        assert_eq!(rejected(&d, &l), RejectReason::EmptyField("account"));
    }

    #[test]
    fn mapped_fundwatch_records_decode_as_the_spec_decoder_does() {
        // A mapping that renames nothing but is not the identity (a zone) must read spec
        // records exactly as decode_json does.
        let d = decoder(Mapping {
            timestamp_zone_s: Some(8 * 3600),
            ..Mapping::default()
        });
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/stream-20k.jsonl");
        let data = std::fs::read(path).unwrap();
        let mut records = 0;
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(want) = decode_json(line) {
                records += 1;
                assert_eq!(d.decode(line), Decoded::Record(want));
            }
        }
        assert!(records > 19_000);
    }

    #[test]
    fn mapping_errors() {
        let err = |m: Mapping| MappedDecoder::new(&m).unwrap_err();
        assert_eq!(
            err(Mapping {
                fields: vec![(Field::Memo, "a..b".into())],
                ..Mapping::default()
            }),
            MappingError::EmptyPath("a..b".into())
        );
        assert!(matches!(
            err(Mapping {
                fields: vec![(Field::Memo, "tx_id".into())],
                ..Mapping::default()
            }),
            MappingError::SamePath { .. }
        ));
        assert_eq!(
            err(Mapping {
                direction_in: vec!["C".into()],
                direction_out: vec!["C".into()],
                ..Mapping::default()
            }),
            MappingError::AmbiguousDirection("C".into())
        );
        assert!(Mapping::default().is_identity());
        assert!(InputDecoder::new(&Mapping::default()).unwrap().is_default());
        assert!(!InputDecoder::new(&bank()).unwrap().is_default());
    }
}
