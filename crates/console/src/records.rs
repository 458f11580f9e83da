//! The alert and case records as the console reads them (spec sections 2 and 5). Read
//! leniently, by field, so the console does not link the engine: what it needs is checked,
//! everything else is kept in the raw JSON it stores and shows.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::money::json_fen;

/// Why an incoming line was not stored (logged and counted, never fatal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("{field}: {problem}")]
    Field { field: &'static str, problem: String },
}

fn field(field: &'static str, problem: impl Into<String>) -> RecordError {
    RecordError::Field {
        field,
        problem: problem.into(),
    }
}

/// RFC 3339 with an offset → epoch milliseconds.
pub fn rfc3339_ms(field_name: &'static str, text: &str) -> Result<i64, RecordError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| field(field_name, format!("not an RFC 3339 time with an offset: {text:?}")))
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub alert_id: String,
    pub rule: String,
    pub account: String,
    /// Empty when the record carries none.
    pub region: String,
    pub score: f64,
    pub window_start: String,
    pub window_end: String,
    pub window_end_ms: i64,
    pub summary: String,
    pub evidence: Map<String, Value>,
    /// The record as received.
    pub raw: String,
}

#[derive(Deserialize)]
struct AlertWire {
    alert_id: String,
    rule: String,
    account: String,
    score: f64,
    window_start: String,
    window_end: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    evidence: Map<String, Value>,
}

impl AlertRow {
    pub fn parse(raw: &str) -> Result<AlertRow, RecordError> {
        let w: AlertWire = serde_json::from_str(raw).map_err(|e| RecordError::Json(e.to_string()))?;
        if w.alert_id.trim().is_empty() {
            return Err(field("alert_id", "empty"));
        }
        if !(0.0..=100.0).contains(&w.score) {
            return Err(field("score", format!("{} is outside 0–100", w.score)));
        }
        rfc3339_ms("window_start", &w.window_start)?;
        let window_end_ms = rfc3339_ms("window_end", &w.window_end)?;
        Ok(AlertRow {
            alert_id: w.alert_id,
            rule: w.rule,
            account: w.account,
            region: w.region.unwrap_or_default(),
            score: w.score,
            window_start: w.window_start,
            window_end: w.window_end,
            window_end_ms,
            summary: w.summary,
            evidence: w.evidence,
            raw: raw.to_owned(),
        })
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct CaseAccount {
    pub account: String,
    pub role: String,
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CaseRow {
    pub case_id: String,
    pub version: i64,
    /// The linker's status: `open`, `merged`, `dissolved`.
    pub record_status: String,
    pub accounts: Vec<CaseAccount>,
    pub investors: i64,
    pub raised_fen: i64,
    pub paid_back_fen: i64,
    pub outstanding_fen: i64,
    pub regions: Vec<String>,
    /// Empty when unknown.
    pub lead_region: String,
    pub severity: String,
    pub alert_ids: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub last_seen_ms: i64,
    pub summary: String,
    pub raw: String,
}

#[derive(Deserialize)]
struct CaseWire {
    case_id: String,
    version: i64,
    #[serde(default = "open")]
    status: String,
    #[serde(default)]
    accounts: Vec<CaseAccount>,
    #[serde(default)]
    investors: i64,
    raised: Value,
    paid_back: Value,
    #[serde(default)]
    outstanding: Option<Value>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    lead_region: Option<String>,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    alert_ids: Vec<String>,
    first_seen: String,
    last_seen: String,
    #[serde(default)]
    summary: String,
}

fn open() -> String {
    "open".into()
}

impl CaseRow {
    pub fn parse(raw: &str) -> Result<CaseRow, RecordError> {
        let w: CaseWire = serde_json::from_str(raw).map_err(|e| RecordError::Json(e.to_string()))?;
        if w.case_id.trim().is_empty() {
            return Err(field("case_id", "empty"));
        }
        if w.version < 0 {
            return Err(field("version", "negative"));
        }
        let raised_fen = json_fen(&w.raised).ok_or_else(|| field("raised", "not a yuan decimal"))?;
        let paid_back_fen = json_fen(&w.paid_back).ok_or_else(|| field("paid_back", "not a yuan decimal"))?;
        let outstanding_fen = match &w.outstanding {
            Some(v) => json_fen(v).ok_or_else(|| field("outstanding", "not a yuan decimal"))?,
            None => (raised_fen - paid_back_fen).max(0),
        };
        rfc3339_ms("first_seen", &w.first_seen)?;
        let last_seen_ms = rfc3339_ms("last_seen", &w.last_seen)?;
        let mut regions = w.regions;
        let lead_region = w.lead_region.unwrap_or_default();
        // The lead region is always an involved region, whatever a producer wrote.
        if !lead_region.is_empty() && !regions.contains(&lead_region) {
            regions.push(lead_region.clone());
        }
        Ok(CaseRow {
            case_id: w.case_id,
            version: w.version,
            record_status: w.status,
            accounts: w.accounts,
            investors: w.investors.max(0),
            raised_fen,
            paid_back_fen,
            outstanding_fen,
            regions,
            lead_region,
            severity: w.severity,
            alert_ids: w.alert_ids,
            first_seen: w.first_seen,
            last_seen: w.last_seen,
            last_seen_ms,
            summary: w.summary,
            raw: raw.to_owned(),
        })
    }
}

/// One parsed line of either feed.
#[derive(Debug, Clone)]
pub enum Incoming {
    Alert(AlertRow),
    Case(CaseRow),
}
