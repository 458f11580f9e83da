//! Transaction records: the input side of the wire contract (`shared/spec`, section 1).
//!
//! This crate owns turning bytes into a typed, validated [`Transaction`]: JSON Lines / Kafka
//! message values ([`decode_json`]) and text-typed rows from CSV or Parquet ([`TextFields`]).
//! Money is parsed exactly into integer fen, time into UTC epoch milliseconds, and every
//! rejection carries a specific [`RejectReason`]. Nothing here allocates on the happy path of
//! JSON decoding: strings borrow from the input unless they contain escapes.

mod amount;
mod json;
mod mapped;
mod scan;
mod text;
mod time;

use std::borrow::Cow;

pub use amount::{format_fen, parse_amount_json_number, parse_amount_text};
pub use json::decode_json;
pub use mapped::{
    precise_decimal, Decoded, EpochUnit, InputDecoder, MappedDecoder, Mapping, MappingError, SkipKind, SourceFormat,
};
pub use text::{Field, TextFields};
pub use time::{beijing_day, beijing_day_start_ms, format_day, format_rfc3339_ms, parse_rfc3339_ms};

/// Integer fen (0.01 yuan). Money never touches a float.
pub type Fen = i64;

/// One yuan in fen.
pub const YUAN: Fen = 100;

/// Credit to (`In`) or debit from (`Out`) the monitored account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// `account_type` of the spec; `Personal` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum AccountType {
    #[default]
    Personal,
    Corporate,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Personal => "personal",
            AccountType::Corporate => "corporate",
        }
    }
}

/// The channels rules care about; anything else the spec's open list allows is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Channel {
    #[default]
    Transfer = 0,
    Cash = 1,
    Pos = 2,
    Mobile = 3,
    Online = 4,
    Atm = 5,
    Counter = 6,
    Payroll = 7,
    Other = 8,
}

impl Channel {
    /// The channel of a record: its `channel` field, or, when the feed leaves it out (or
    /// empty), cash for an entry without a counterparty (the spec's empty counterparty means
    /// cash) and a transfer otherwise — so feeds without a channel column still meet the cash
    /// reporting line.
    pub fn of_record(channel: Option<&str>, counterparty: &str) -> Channel {
        match channel {
            Some(c) if !c.is_empty() => Channel::parse(c),
            _ if counterparty.is_empty() => Channel::Cash,
            _ => Channel::Transfer,
        }
    }

    pub fn parse(s: &str) -> Channel {
        match s {
            "" | "transfer" => Channel::Transfer,
            "cash" => Channel::Cash,
            "pos" => Channel::Pos,
            "mobile" => Channel::Mobile,
            "online" => Channel::Online,
            "atm" => Channel::Atm,
            "counter" => Channel::Counter,
            "payroll" => Channel::Payroll,
            _ => Channel::Other,
        }
    }

    pub fn from_u8(v: u8) -> Channel {
        match v {
            0 => Channel::Transfer,
            1 => Channel::Cash,
            2 => Channel::Pos,
            3 => Channel::Mobile,
            4 => Channel::Online,
            5 => Channel::Atm,
            6 => Channel::Counter,
            7 => Channel::Payroll,
            _ => Channel::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Transfer => "transfer",
            Channel::Cash => "cash",
            Channel::Pos => "pos",
            Channel::Mobile => "mobile",
            Channel::Online => "online",
            Channel::Atm => "atm",
            Channel::Counter => "counter",
            Channel::Payroll => "payroll",
            Channel::Other => "other",
        }
    }
}

/// A validated ledger entry. Strings borrow from the input where they can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction<'a> {
    pub tx_id: Cow<'a, str>,
    /// Event time, UTC epoch milliseconds.
    pub ts_ms: i64,
    pub account: Cow<'a, str>,
    /// Empty for cash.
    pub counterparty: Cow<'a, str>,
    pub direction: Direction,
    pub amount: Fen,
    /// True unless `currency` was given and is not `CNY`.
    pub is_cny: bool,
    pub currency: Cow<'a, str>,
    pub channel: Channel,
    pub memo: Cow<'a, str>,
    pub account_type: AccountType,
    pub industry: Cow<'a, str>,
    pub region: Cow<'a, str>,
    pub cross_border: bool,
}

impl Transaction<'_> {
    /// Detach from the input buffer (for the few places that must keep a record).
    pub fn into_owned(self) -> Transaction<'static> {
        fn own(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        Transaction {
            tx_id: own(self.tx_id),
            ts_ms: self.ts_ms,
            account: own(self.account),
            counterparty: own(self.counterparty),
            direction: self.direction,
            amount: self.amount,
            is_cny: self.is_cny,
            currency: own(self.currency),
            channel: self.channel,
            memo: own(self.memo),
            account_type: self.account_type,
            industry: own(self.industry),
            region: own(self.region),
            cross_border: self.cross_border,
        }
    }
}

/// Why a record was rejected. The `Display` text is what goes into dead letters and logs;
/// [`RejectReason::code`] is the stable label for metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    #[error("unreadable row: {0}")]
    MalformedRow(String),
    #[error("record is not a JSON object")]
    NotAnObject,
    #[error("record is not valid UTF-8")]
    InvalidUtf8,
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field {field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field {0} is empty")]
    EmptyField(&'static str),
    #[error("amount must be positive, got {0}")]
    AmountNotPositive(String),
    #[error("amount has {decimals} decimals, at most 2 allowed: {text}")]
    AmountDecimals { decimals: usize, text: String },
    #[error("amount is not a decimal number of yuan: {0:?}")]
    AmountMalformed(String),
    #[error("amount is too large: {0}")]
    AmountTooLarge(String),
    #[error("direction must be \"in\" or \"out\", got {0:?}")]
    UnknownDirection(String),
    #[error("account_type must be \"personal\" or \"corporate\", got {0:?}")]
    UnknownAccountType(String),
    #[error("ts is not an RFC 3339 time with an offset: {0:?}")]
    BadTimestamp(String),
    #[error("cross_border must be true or false, got {0:?}")]
    BadBool(String),
    #[error("Debezium op must be c, r, u, d, t or m, got {0}")]
    UnknownOperation(String),
}

impl RejectReason {
    /// Stable, low-cardinality label (metrics, summaries).
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::InvalidJson(_) => "invalid_json",
            RejectReason::MalformedRow(_) => "malformed_row",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::MissingField(_) => "missing_field",
            RejectReason::WrongType { .. } => "wrong_type",
            RejectReason::EmptyField(_) => "empty_field",
            RejectReason::AmountNotPositive(_) => "amount_not_positive",
            RejectReason::AmountDecimals { .. } => "amount_decimals",
            RejectReason::AmountMalformed(_) => "amount_malformed",
            RejectReason::AmountTooLarge(_) => "amount_too_large",
            RejectReason::UnknownDirection(_) => "unknown_direction",
            RejectReason::UnknownAccountType(_) => "unknown_account_type",
            RejectReason::BadTimestamp(_) => "bad_timestamp",
            RejectReason::BadBool(_) => "bad_bool",
            RejectReason::UnknownOperation(_) => "unknown_op",
        }
    }
}

pub(crate) fn parse_direction(s: &str) -> Result<Direction, RejectReason> {
    match s {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        other => Err(RejectReason::UnknownDirection(truncate(other))),
    }
}

pub(crate) fn parse_account_type(s: &str) -> Result<AccountType, RejectReason> {
    match s {
        "personal" => Ok(AccountType::Personal),
        "corporate" => Ok(AccountType::Corporate),
        other => Err(RejectReason::UnknownAccountType(truncate(other))),
    }
}

/// Bad values are echoed in reasons; keep a hostile 1 MB field from being echoed whole.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
