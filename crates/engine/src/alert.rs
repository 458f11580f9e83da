//! The alert record: the output side of the wire contract (`shared/spec`, section 2).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One confirmed alert, serialised exactly as the spec's alert record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic: same input and config, same id.
    pub alert_id: String,
    pub rule: String,
    pub account: String,
    /// 0–100.
    pub score: f64,
    pub window_start: String,
    pub window_end: String,
    /// `tx_id` of the record that completed the pattern.
    pub triggered_by: String,
    /// Wall-clock time the alert was produced.
    pub detected_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub summary: String,
    pub evidence: Map<String, Value>,
    pub config_version: String,
}

impl Alert {
    /// The alert with `detected_at` blanked: what must be identical between two runs.
    pub fn without_wall_clock(&self) -> Alert {
        Alert {
            detected_at: String::new(),
            ..self.clone()
        }
    }
}
