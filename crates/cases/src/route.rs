//! Routing by region (`[routing]`, clause 十四): each county or district office reads its
//! own topic. A case goes to its lead region's office; every other involved region's office
//! gets a notice naming the lead. Alerts go to their account's region's office.

use fundwatch_engine::Alert;
use fundwatch_rules::RoutingParams;

use crate::record::{CaseNotice, CaseRecord};

/// One record for one office topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub topic: String,
    /// The region the record is routed for (header `fundwatch.region`).
    pub region: String,
    /// `alert`, `case` or `notice` (header `fundwatch.kind`).
    pub kind: &'static str,
    /// Kafka key: the account (alerts) or the case id.
    pub key: String,
    /// JSON value.
    pub value: String,
}

/// Where an alert goes besides the alert topic.
pub fn route_alert(routing: &RoutingParams, alert: &Alert) -> Option<Routed> {
    let region = alert.region.as_deref()?;
    let topic = routing.route(region)?;
    Some(Routed {
        topic: topic.to_owned(),
        region: region.to_owned(),
        kind: "alert",
        key: alert.account.clone(),
        value: serde_json::to_string(alert).unwrap_or_default(),
    })
}

/// Where a case version goes besides the case topic: the whole case to the lead region's
/// office, a notice to each other involved region's office (one per office topic).
pub fn route_case(routing: &RoutingParams, case: &CaseRecord) -> Vec<Routed> {
    let mut out: Vec<Routed> = Vec::new();
    let lead_topic = case.lead_region.as_deref().and_then(|r| routing.route(r));
    if let (Some(region), Some(topic)) = (&case.lead_region, lead_topic) {
        out.push(Routed {
            topic: topic.to_owned(),
            region: region.clone(),
            kind: "case",
            key: case.case_id.clone(),
            value: serde_json::to_string(case).unwrap_or_default(),
        });
    }
    for region in &case.regions {
        if Some(region) == case.lead_region.as_ref() {
            continue;
        }
        let Some(topic) = routing.route(region) else { continue };
        if Some(topic) == lead_topic || out.iter().any(|r| r.topic == topic) {
            continue; // that office has the case (or a notice) already
        }
        let notice = CaseNotice {
            kind: "notice".into(),
            case_id: case.case_id.clone(),
            version: case.version,
            status: case.status.clone(),
            region: region.clone(),
            lead_region: case.lead_region.clone(),
            accounts: case
                .accounts
                .iter()
                .filter(|a| a.region.as_deref().is_some_and(|r| routing.route(r) == Some(topic)))
                .cloned()
                .collect(),
            summary: format!(
                "Case {} is led by region {}; region {region} is involved and cooperates (clause 十四). {}",
                case.case_id,
                case.lead_region.as_deref().unwrap_or("unknown"),
                case.summary
            ),
        };
        out.push(Routed {
            topic: topic.to_owned(),
            region: region.clone(),
            kind: "notice",
            key: case.case_id.clone(),
            value: serde_json::to_string(&notice).unwrap_or_default(),
        });
    }
    out
}
