//! The case record (`shared/spec`, section 5) and the notice an involved region's office
//! gets about a case led elsewhere.

use serde::{Deserialize, Serialize};

/// One account of a case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CaseAccount {
    pub account: String,
    /// `collector`, `payout` or `receiver`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Collection in one week, summed over the case's collectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekGrowth {
    /// First Beijing date of the week (weeks of seven days counted from 1970-01-01, as the
    /// engine buckets them).
    pub week_of: String,
    /// People who paid in for the first time that week.
    pub new_investors: u64,
    /// Yuan paid in that week.
    pub raised: String,
}

/// One version of a case. Consumers keep the last version per `case_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// `case-` and 16 hex digits of a hash of the case's first collector (or, without one,
    /// its first payout account): the same input and config give the same ids.
    pub case_id: String,
    /// Increases with every change.
    pub version: u64,
    /// `open`; `merged` when the case joined an older one (`merged_into`); `dissolved`
    /// when what tied it no longer holds. The last two are final versions.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    pub accounts: Vec<CaseAccount>,
    /// Distinct payers into the collectors (涉众人数); estimated past 256 per collector
    /// when several collectors' payers overlap.
    pub investors: u64,
    /// Yuan the collectors took in from their payers, decimal.
    pub raised: String,
    /// Yuan the payout accounts paid out in small sums, decimal.
    pub paid_back: String,
    /// `raised` less `paid_back`: the direct loss if it stopped now.
    pub outstanding: String,
    pub regions: Vec<String>,
    #[serde(default)]
    pub lead_region: Option<String>,
    /// `early` below every prosecution line, else the lines crossed joined by `+`
    /// (`raised`, `people`, `loss`).
    pub severity: String,
    /// Where the case stands against each line, as a share of it (1.0 = at the line).
    pub against_lines: LineShares,
    /// Collection in the latest weeks, oldest first.
    pub growth: Vec<WeekGrowth>,
    /// People and yuan per week over the latest complete weeks (up to four).
    pub growth_per_week: Growth,
    pub alert_ids: Vec<String>,
    /// What ties the accounts: `payees_paid_in` (a payout's payees paid into a collector),
    /// `funded` (one sent the other money), `shared_intermediary` (both deal with one
    /// account, named in `via`).
    pub links: Vec<CaseLink>,
    pub first_seen: String,
    pub last_seen: String,
    pub summary: String,
    pub config_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineShares {
    pub raised: f64,
    pub people: f64,
    pub loss: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Growth {
    pub investors: u64,
    pub raised: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CaseLink {
    pub kind: String,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// What an involved region's office gets about a case another region leads (clause 十四:
/// the lead region coordinates, involved regions cooperate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseNotice {
    pub kind: String,
    pub case_id: String,
    pub version: u64,
    pub status: String,
    pub region: String,
    pub lead_region: Option<String>,
    /// This region's accounts in the case.
    pub accounts: Vec<CaseAccount>,
    pub summary: String,
}
