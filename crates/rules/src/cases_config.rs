//! `[cases]` and `[routing]`: how the case-linking stage ties accounts into schemes, where it
//! grades them, and which office's topic each alert and case goes to. Neither is part of
//! `config_version` (they change no alert of the per-account rules; a case carries the
//! engine's version).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Checker, ConfigIssue, Validate};
use crate::units::Yuan;

/// `[cases]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CasesParams {
    /// Link accounts into cases at all (replay's `--cases`, the service's case topic).
    pub enabled: bool,
    /// A payout account and a collector are one scheme when at least this many of the
    /// payout's payees paid into the collector… Range 2–10,000.
    pub min_shared_people: u32,
    /// …and they are at least this share of the payout's payees (interest goes to the
    /// investors; a payroll's employees are not a collector's payers). Range 0.05–1.0.
    pub min_payee_share: f64,
    /// Money ties two accounts when one sent the other (directly, or through one
    /// intermediary both name) at least this share of the receiving account's inflow.
    /// Range 0.01–1.0.
    pub min_funding_share: f64,
    /// An intermediary named by more than this many accounts in play is a hub (a payment
    /// institution, an exchange) and ties none of them. Range 1–100.
    pub max_intermediary_degree: u32,
    /// A payout account below its rule's line whose payees are a collector's payers gets a
    /// `periodic_batch_small_out` alert naming the link, if its own score reached this.
    /// Range 0–100.
    pub linked_alert_min_score: f64,
    /// Prosecution lines a case is graded against (default: the Supreme People's Court's
    /// 2022 revised interpretation on illegal fund-raising: 1,000,000 yuan raised, 150
    /// people, 500,000 yuan direct loss). Below all three a case is `early` (打早打小).
    pub prosecution: ProsecutionLines,
}

impl Default for CasesParams {
    fn default() -> Self {
        CasesParams {
            enabled: true,
            min_shared_people: 5,
            min_payee_share: 0.4,
            min_funding_share: 0.2,
            max_intermediary_degree: 3,
            linked_alert_min_score: 35.0,
            prosecution: ProsecutionLines::default(),
        }
    }
}

/// `[cases.prosecution]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProsecutionLines {
    /// Yuan raised. Range 1–10,000,000,000.
    pub raised: Yuan,
    /// People involved (涉众人数). Range 1–10,000,000.
    pub people: u64,
    /// Direct loss (raised less paid back), yuan. Range 1–10,000,000,000.
    pub loss: Yuan,
}

impl Default for ProsecutionLines {
    fn default() -> Self {
        ProsecutionLines {
            raised: Yuan::whole(1_000_000),
            people: 150,
            loss: Yuan::whole(500_000),
        }
    }
}

impl Validate for CasesParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.range("min_shared_people", self.min_shared_people, 2, 10_000);
        c.ratio("min_payee_share", self.min_payee_share, 0.05, 1.0);
        c.ratio("min_funding_share", self.min_funding_share, 0.01, 1.0);
        c.range("max_intermediary_degree", self.max_intermediary_degree, 1, 100);
        c.ratio("linked_alert_min_score", self.linked_alert_min_score, 0.0, 100.0);
        let big = Yuan::whole(10_000_000_000);
        c.money("prosecution.raised", self.prosecution.raised, Yuan::whole(1), big);
        c.range("prosecution.people", self.prosecution.people, 1, 10_000_000);
        c.money("prosecution.loss", self.prosecution.loss, Yuan::whole(1), big);
    }
}

/// `[routing]`: region code prefix → the topic (or, in replay, file) of the office that
/// handles it. The longest matching prefix wins; a region no prefix matches goes to no
/// office topic (the main alert and case topics always get everything).
///
/// ```toml
/// [routing.regions]
/// "3301" = "office-hangzhou"      # every district of Hangzhou
/// "330106" = "office-xihu"        # but Xihu district has its own
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingParams {
    pub regions: BTreeMap<String, String>,
}

impl RoutingParams {
    /// The office topic of a region, by longest prefix.
    pub fn route(&self, region: &str) -> Option<&str> {
        self.regions
            .iter()
            .filter(|(prefix, _)| region.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, topic)| topic.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub(crate) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        for (prefix, topic) in &self.regions {
            let field = format!("routing.regions.\"{prefix}\"");
            if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                issues.push(ConfigIssue {
                    field: field.clone(),
                    problem: "a region prefix is letters and digits, not empty".into(),
                });
            }
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if topic.is_empty() || topic.len() > 249 || !topic.chars().all(legal) {
                issues.push(ConfigIssue {
                    field,
                    problem: format!("{topic:?} is not a Kafka topic name (1–249 of letters, digits, '.', '_', '-')"),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let mut r = RoutingParams::default();
        r.regions.insert("3301".into(), "hz".into());
        r.regions.insert("330106".into(), "xihu".into());
        assert_eq!(r.route("330106"), Some("xihu"));
        assert_eq!(r.route("330102"), Some("hz"));
        assert_eq!(r.route("310115"), None);
    }

    #[test]
    fn bad_routes_name_the_field() {
        let mut r = RoutingParams::default();
        r.regions.insert("33 01".into(), "a topic".into());
        let mut issues = Vec::new();
        r.validate(&mut issues);
        assert_eq!(issues.len(), 2);
        assert!(issues[0].field.starts_with("routing.regions."));
    }
}
