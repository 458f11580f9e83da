//! The labels file and the account-level evaluation everyone scores against.
//!
//! Format (JSON Lines, one object per line):
//!
//! ```text
//! {"kind":"account","account":"…","typology":"ponzi_collect_and_pay","rules":["scatter_in_concentrated_out","periodic_batch_small_out"]}
//! {"kind":"account","account":"…","typology":"payroll","rules":[]}
//! {"kind":"scheme","scheme":"S000007","typology":"split_scheme","investors":41,"raised":"512345.67","paid_back":"18320.00","lead_region":"330106","regions":["330106","330110"],"accounts":[{"account":"…","role":"collector","region":"330106"},{"account":"…","role":"payout","region":"330110"}]}
//! {"kind":"large_value","account":"…","day":"2026-03-02","direction":"in","line":"cash"}
//! ```
//!
//! Account lines cover every planted scheme and every benign look-alike (look-alikes have
//! `"rules":[]`); background accounts are not listed and count as negatives. Large-value lines
//! are the exact set of (account, Beijing day, direction, line) reports the stream must raise.
//! An optional `"detail"` string on account lines describes the planted parameters; readers
//! ignore it and any other unknown field.
//!
//! Scheme lines (evasive profile only; older files have none) are the truth a case record is
//! compared against, one per scheme with a labelled collector or payout account, counted from
//! the transfers actually written: `investors` distinct payers into the collector (distinct
//! payees of the payout batches when no collector is in the bank), `raised` what they paid in
//! (`"0.00"` without a collector), `paid_back` what the payout batches paid, `lead_region` the
//! collector's region (the payout account's without one), `regions` the sorted distinct
//! regions of the scheme's labelled accounts, `accounts` those accounts with role and region.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

/// The five rule ids, in the fixed order evaluations are reported.
pub const RULES: [&str; 5] = [
    "scatter_in_concentrated_out",
    "periodic_batch_small_out",
    "rapid_pass_through",
    "structuring",
    "large_value",
];

/// Large-value line names as they appear in labels.
pub const LARGE_VALUE_LINES: [&str; 4] = [
    "cash",
    "corporate_transfer",
    "personal_domestic",
    "personal_cross_border",
];

/// `(account, day "YYYY-MM-DD" in Beijing time, direction "in"|"out", line)`.
pub type LargeValueKey = (String, String, String, String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLabel {
    pub account: String,
    pub typology: String,
    pub rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Scheme id (e.g. `S000123`), the same on every labelled account of one scheme (evasive
    /// profile; absent in the standard profile's labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The account's part in its scheme: `collector`, `payout` or `receiver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LargeValueLabel {
    pub account: String,
    pub day: String,
    pub direction: String,
    pub line: String,
}

/// One account of a scheme line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeAccount {
    pub account: String,
    /// `collector`, `payout` or `receiver`.
    pub role: String,
    /// County/district code; every in-bank account has one.
    #[serde(default)]
    pub region: Option<String>,
}

/// The truth about one scheme (a `"kind":"scheme"` line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeLabel {
    /// The scheme id its account lines carry (`S000123`).
    pub scheme: String,
    /// The generator that planted it: `split_scheme`, `collect_and_pay`, `periodic_payout`,
    /// `scatter_in`.
    pub typology: String,
    /// Distinct payers into the collector (涉众人数); distinct payees without a collector.
    pub investors: u64,
    /// Yuan paid in by the investors, decimal with two places.
    pub raised: String,
    /// Yuan the payout batches paid to investors, decimal with two places.
    pub paid_back: String,
    #[serde(default)]
    pub lead_region: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<SchemeAccount>,
}

impl SchemeLabel {
    fn with_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.accounts
            .iter()
            .filter(move |a| a.role == role)
            .map(|a| a.account.as_str())
    }

    /// The (first) collector account, if the scheme has one in the bank.
    pub fn collector(&self) -> Option<&str> {
        self.with_role("collector").next()
    }

    /// The (first) account labelled `payout`.
    pub fn payout(&self) -> Option<&str> {
        self.with_role("payout").next()
    }

    /// The account a case must hold for the scheme to count as found: the collector, else
    /// the payout account.
    pub fn anchor(&self) -> Option<&str> {
        self.collector().or_else(|| self.payout())
    }

    /// `raised` in fen.
    pub fn raised_fen(&self) -> Option<u64> {
        parse_yuan(&self.raised)
    }

    /// `paid_back` in fen.
    pub fn paid_back_fen(&self) -> Option<u64> {
        parse_yuan(&self.paid_back)
    }
}

/// Fen as a yuan decimal with two places (`12345` → `"123.45"`).
pub fn format_yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// A non-negative yuan decimal (`"123"`, `"123.4"`, `"123.45"`) in fen; `None` for anything
/// else, including more than two decimal places.
pub fn parse_yuan(s: &str) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let mut fen: u64 = int.parse::<u64>().ok()?.checked_mul(100)?;
    let f = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().ok()? * 10,
        _ => frac.parse::<u64>().ok()?,
    };
    fen = fen.checked_add(f)?;
    Some(fen)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LabelLine {
    Account(AccountLabel),
    Scheme(SchemeLabel),
    LargeValue(LargeValueLabel),
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("reading labels: {0}")]
    Io(#[from] io::Error),
    #[error("labels line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("labels line {line}: {message}")]
    Invalid { line: usize, message: String },
}

/// All labels of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub accounts: Vec<AccountLabel>,
    /// Scheme truth lines, by scheme id (empty for the standard profile and older files).
    pub schemes: Vec<SchemeLabel>,
    pub large_value: Vec<LargeValueLabel>,
}

impl Labels {
    /// Parse a labels file. Blank lines are skipped; anything else that is not a valid label
    /// line is an error naming the line.
    pub fn read(r: impl BufRead) -> Result<Labels, LabelsError> {
        let mut labels = Labels::default();
        for (i, line) in r.lines().enumerate() {
            let line = line?;
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: LabelLine =
                serde_json::from_str(&line).map_err(|source| LabelsError::Json { line: n, source })?;
            match parsed {
                LabelLine::Account(a) => {
                    if let Some(bad) = a.rules.iter().find(|r| !RULES.contains(&r.as_str())) {
                        return Err(LabelsError::Invalid {
                            line: n,
                            message: format!("unknown rule id {bad:?}"),
                        });
                    }
                    labels.accounts.push(a);
                }
                LabelLine::Scheme(sc) => {
                    for (name, v) in [("raised", &sc.raised), ("paid_back", &sc.paid_back)] {
                        if parse_yuan(v).is_none() {
                            return Err(LabelsError::Invalid {
                                line: n,
                                message: format!("scheme {}: {name} {v:?} is not a yuan decimal", sc.scheme),
                            });
                        }
                    }
                    labels.schemes.push(sc);
                }
                LabelLine::LargeValue(l) => {
                    if l.direction != "in" && l.direction != "out" {
                        return Err(LabelsError::Invalid {
                            line: n,
                            message: format!("direction {:?}", l.direction),
                        });
                    }
                    if !LARGE_VALUE_LINES.contains(&l.line.as_str()) {
                        return Err(LabelsError::Invalid {
                            line: n,
                            message: format!("unknown line {:?}", l.line),
                        });
                    }
                    labels.large_value.push(l);
                }
            }
        }
        Ok(labels)
    }

    /// Write in the documented format (account lines first, then scheme lines, then
    /// large-value lines).
    pub fn write(&self, mut w: impl Write) -> Result<(), LabelsError> {
        for a in &self.accounts {
            let line = serde_json::to_string(&LabelLine::Account(a.clone()))
                .map_err(|source| LabelsError::Json { line: 0, source })?;
            writeln!(w, "{line}")?;
        }
        for sc in &self.schemes {
            let line = serde_json::to_string(&LabelLine::Scheme(sc.clone()))
                .map_err(|source| LabelsError::Json { line: 0, source })?;
            writeln!(w, "{line}")?;
        }
        for l in &self.large_value {
            let line = serde_json::to_string(&LabelLine::LargeValue(l.clone()))
                .map_err(|source| LabelsError::Json { line: 0, source })?;
            writeln!(w, "{line}")?;
        }
        Ok(())
    }

    /// The exact set of expected large-value reports.
    pub fn large_value_keys(&self) -> BTreeSet<LargeValueKey> {
        self.large_value
            .iter()
            .map(|l| (l.account.clone(), l.day.clone(), l.direction.clone(), l.line.clone()))
            .collect()
    }

    /// Accounts that are positive for `rule`.
    pub fn truth(&self, rule: &str) -> BTreeSet<&str> {
        let mut t: BTreeSet<&str> = self
            .accounts
            .iter()
            .filter(|a| a.rules.iter().any(|r| r == rule))
            .map(|a| a.account.as_str())
            .collect();
        if rule == "large_value" {
            t.extend(self.large_value.iter().map(|l| l.account.as_str()));
        }
        t
    }

    /// Score alerts `(rule, account)` at account level: an account is predicted for a rule when
    /// it has at least one alert of that rule.
    pub fn evaluate<'a>(&self, alerts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Evaluation {
        let mut predicted: BTreeMap<&str, BTreeSet<String>> = RULES.iter().map(|r| (*r, BTreeSet::new())).collect();
        let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
        for (rule, account) in alerts {
            match predicted.get_mut(rule) {
                Some(set) => {
                    set.insert(account.to_string());
                }
                None => *unknown.entry(rule.to_string()).or_insert(0) += 1,
            }
        }
        let rules = RULES
            .iter()
            .map(|&rule| {
                let truth = self.truth(rule);
                let pred = &predicted[rule];
                let tp = pred.iter().filter(|a| truth.contains(a.as_str())).count() as u64;
                let false_accounts: Vec<String> =
                    pred.iter().filter(|a| !truth.contains(a.as_str())).cloned().collect();
                let missed: Vec<String> = truth
                    .iter()
                    .filter(|a| !pred.contains(**a))
                    .map(|a| a.to_string())
                    .collect();
                RuleScore::new(rule, truth.len() as u64, pred.len() as u64, tp, missed, false_accounts)
            })
            .collect();
        Evaluation {
            rules,
            unknown_rule_alerts: unknown,
        }
    }
}

/// Account-level confusion counts and derived scores for one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleScore {
    pub rule: String,
    /// Accounts labelled positive.
    pub truth: u64,
    /// Accounts with at least one alert.
    pub predicted: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Positive accounts without an alert, sorted.
    pub missed: Vec<String>,
    /// Alerted accounts that are not positive, sorted.
    pub false_accounts: Vec<String>,
}

impl RuleScore {
    fn new(rule: &str, truth: u64, predicted: u64, tp: u64, missed: Vec<String>, false_accounts: Vec<String>) -> Self {
        let fp = predicted - tp;
        let fneg = truth - tp;
        // Conventions: no predictions is perfect precision only if there was nothing to find;
        // nothing to find is perfect recall.
        let precision = if predicted == 0 {
            if truth == 0 {
                1.0
            } else {
                0.0
            }
        } else {
            tp as f64 / predicted as f64
        };
        let recall = if truth == 0 { 1.0 } else { tp as f64 / truth as f64 };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        RuleScore {
            rule: rule.to_string(),
            truth,
            predicted,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fneg,
            precision,
            recall,
            f1,
            missed,
            false_accounts,
        }
    }
}

/// Scores for all five rules, in [`RULES`] order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub rules: Vec<RuleScore>,
    /// Alerts whose rule id is not one of [`RULES`], counted per id.
    pub unknown_rule_alerts: BTreeMap<String, u64>,
}

impl Evaluation {
    pub fn rule(&self, rule: &str) -> Option<&RuleScore> {
        self.rules.iter().find(|r| r.rule == rule)
    }

    /// Unweighted mean F1 over the five rules.
    pub fn macro_f1(&self) -> f64 {
        if self.rules.is_empty() {
            return 0.0;
        }
        self.rules.iter().map(|r| r.f1).sum::<f64>() / self.rules.len() as f64
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6}",
            "rule", "truth", "pred", "TP", "FP", "FN", "precision", "recall", "F1"
        )?;
        for r in &self.rules {
            writeln!(
                f,
                "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9.3} {:>7.3} {:>6.3}",
                r.rule,
                r.truth,
                r.predicted,
                r.true_positives,
                r.false_positives,
                r.false_negatives,
                r.precision,
                r.recall,
                r.f1
            )?;
        }
        writeln!(f, "{:<28} {:>62.3}", "macro F1", self.macro_f1())?;
        const SHOW: usize = 5;
        for r in &self.rules {
            let list = |xs: &[String]| -> String {
                let mut s = xs.iter().take(SHOW).cloned().collect::<Vec<_>>().join(", ");
                if xs.len() > SHOW {
                    s.push_str(&format!(", … (+{})", xs.len() - SHOW));
                }
                s
            };
            if !r.missed.is_empty() {
                writeln!(f, "  {} missed: {}", r.rule, list(&r.missed))?;
            }
            if !r.false_accounts.is_empty() {
                writeln!(f, "  {} false: {}", r.rule, list(&r.false_accounts))?;
            }
        }
        for (rule, n) in &self.unknown_rule_alerts {
            writeln!(f, "  unknown rule {rule:?}: {n} alerts ignored")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"kind":"account","account":"A","typology":"ponzi_collect_and_pay","rules":["scatter_in_concentrated_out","periodic_batch_small_out"]}
{"kind":"account","account":"B","typology":"scatter_in","rules":["scatter_in_concentrated_out"],"detail":"x"}
{"kind":"account","account":"C","typology":"payroll","rules":[]}

{"kind":"large_value","account":"D","day":"2026-01-02","direction":"in","line":"cash"}
{"kind":"large_value","account":"D","day":"2026-01-03","direction":"out","line":"personal_domestic","extra":1}
{"kind":"large_value","account":"A","day":"2026-01-05","direction":"out","line":"corporate_transfer"}
"#;

    #[test]
    fn reads_and_round_trips() -> Result<(), LabelsError> {
        let l = Labels::read(SAMPLE.as_bytes())?;
        assert_eq!(l.accounts.len(), 3);
        assert_eq!(l.large_value.len(), 3);
        assert_eq!(l.large_value_keys().len(), 3);
        let mut out = Vec::new();
        l.write(&mut out)?;
        let again = Labels::read(out.as_slice())?;
        assert_eq!(l, again);
        Ok(())
    }

    const WITH_SCHEMES: &str = r#"{"kind":"account","account":"A","typology":"split_collector","rules":["scatter_in_concentrated_out"],"scheme":"S000001","role":"collector"}
{"kind":"account","account":"P","typology":"split_payout","rules":["periodic_batch_small_out"],"scheme":"S000001","role":"payout"}
{"kind":"scheme","scheme":"S000001","typology":"split_scheme","investors":3,"raised":"1500.50","paid_back":"30.00","lead_region":"330106","regions":["330106","330110"],"accounts":[{"account":"A","role":"collector","region":"330106"},{"account":"P","role":"payout","region":"330110"}],"future_field":[1,2]}
{"kind":"scheme","scheme":"S000002","typology":"periodic_payout","investors":9,"raised":"0.00","paid_back":"99.9","accounts":[{"account":"Q","role":"payout"}]}
{"kind":"large_value","account":"D","day":"2026-01-02","direction":"in","line":"cash"}
"#;

    #[test]
    fn old_files_have_no_schemes() -> Result<(), LabelsError> {
        let l = Labels::read(SAMPLE.as_bytes())?;
        assert!(l.schemes.is_empty());
        let mut out = Vec::new();
        l.write(&mut out)?;
        assert!(!String::from_utf8_lossy(&out).contains("\"kind\":\"scheme\""));
        Ok(())
    }

    #[test]
    fn scheme_lines_round_trip() -> Result<(), LabelsError> {
        let l = Labels::read(WITH_SCHEMES.as_bytes())?;
        assert_eq!((l.accounts.len(), l.schemes.len(), l.large_value.len()), (2, 2, 1));
        let s = &l.schemes[0];
        assert_eq!(s.collector(), Some("A"));
        assert_eq!(s.payout(), Some("P"));
        assert_eq!(s.anchor(), Some("A"));
        assert_eq!(s.raised_fen(), Some(150_050));
        assert_eq!(s.lead_region.as_deref(), Some("330106"));
        // Missing region, lead_region and regions read as absent / empty.
        let q = &l.schemes[1];
        assert_eq!((q.collector(), q.anchor()), (None, Some("Q")));
        assert_eq!(q.lead_region, None);
        assert!(q.regions.is_empty());
        assert_eq!(q.accounts[0].region, None);
        assert_eq!(q.paid_back_fen(), Some(9_990));
        let mut out = Vec::new();
        l.write(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let kinds: Vec<&str> = text
            .lines()
            .map(|x| if x.contains("\"kind\":\"scheme\"") { "s" } else { "o" })
            .collect();
        assert_eq!(kinds, ["o", "o", "s", "s", "o"]);
        assert_eq!(Labels::read(out.as_slice())?, l);
        // A bad amount names the line.
        let bad = WITH_SCHEMES.replace("\"1500.50\"", "\"1,500.50\"");
        assert!(matches!(
            Labels::read(bad.as_bytes()),
            Err(LabelsError::Invalid { line: 3, .. })
        ));
        Ok(())
    }

    #[test]
    fn yuan_decimals() {
        assert_eq!(format_yuan(0), "0.00");
        assert_eq!(format_yuan(1_234_507), "12345.07");
        for (s, v) in [
            ("0", Some(0)),
            ("12.3", Some(1230)),
            ("12.34", Some(1234)),
            ("7.05", Some(705)),
        ] {
            assert_eq!(parse_yuan(s), v, "{s}");
        }
        for s in ["", ".5", "1.", "1.234", "-1", "1e3", "1,0", " 1"] {
            assert_eq!(parse_yuan(s), None, "{s}");
        }
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(matches!(
            Labels::read("{\"kind\":\"x\"}\n".as_bytes()),
            Err(LabelsError::Json { line: 1, .. })
        ));
        let bad = "{\"kind\":\"account\",\"account\":\"A\",\"typology\":\"t\",\"rules\":[\"nope\"]}\n";
        assert!(matches!(
            Labels::read(bad.as_bytes()),
            Err(LabelsError::Invalid { line: 1, .. })
        ));
        let bad = "\n{\"kind\":\"large_value\",\"account\":\"A\",\"day\":\"2026-01-01\",\"direction\":\"up\",\"line\":\"cash\"}\n";
        assert!(matches!(
            Labels::read(bad.as_bytes()),
            Err(LabelsError::Invalid { line: 2, .. })
        ));
    }

    #[test]
    fn evaluation_arithmetic() -> Result<(), LabelsError> {
        let l = Labels::read(SAMPLE.as_bytes())?;
        let alerts = [
            ("scatter_in_concentrated_out", "A"),
            ("scatter_in_concentrated_out", "A"), // duplicates count once
            ("scatter_in_concentrated_out", "C"),
            ("scatter_in_concentrated_out", "E"),
            ("periodic_batch_small_out", "A"),
            ("large_value", "D"),
            ("large_value", "C"),
            ("no_such_rule", "A"),
        ];
        let ev = l.evaluate(alerts.iter().copied());
        let names: Vec<&str> = ev.rules.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(names, RULES.to_vec());

        let s = ev.rule("scatter_in_concentrated_out").ok_or(LabelsError::Invalid {
            line: 0,
            message: "missing".into(),
        })?;
        assert_eq!(
            (
                s.truth,
                s.predicted,
                s.true_positives,
                s.false_positives,
                s.false_negatives
            ),
            (2, 3, 1, 2, 1)
        );
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert!((s.f1 - 0.4).abs() < 1e-12);
        assert_eq!(s.missed, vec!["B".to_string()]);
        assert_eq!(s.false_accounts, vec!["C".to_string(), "E".to_string()]);

        let p = &ev.rules[1];
        assert_eq!((p.true_positives, p.false_positives, p.false_negatives), (1, 0, 0));
        assert_eq!((p.precision, p.recall, p.f1), (1.0, 1.0, 1.0));

        // No truth, no predictions: precision 1, recall 1.
        let r = &ev.rules[2];
        assert_eq!(
            (r.truth, r.predicted, r.precision, r.recall, r.f1),
            (0, 0, 1.0, 1.0, 1.0)
        );

        // Large value truth = accounts with large_value lines: A and D.
        let lv = &ev.rules[4];
        assert_eq!(
            (lv.truth, lv.true_positives, lv.false_positives, lv.false_negatives),
            (2, 1, 1, 1)
        );
        assert_eq!(lv.missed, vec!["A".to_string()]);

        assert_eq!(ev.unknown_rule_alerts.get("no_such_rule"), Some(&1));
        let text = ev.to_string();
        assert!(text.contains("scatter_in_concentrated_out"));
        assert!(text.contains("macro F1"));

        // Truth but no predictions: precision 0, recall 0, F1 0.
        let none = l.evaluate(std::iter::empty());
        let s = &none.rules[0];
        assert_eq!((s.precision, s.recall, s.f1), (0.0, 0.0, 0.0));
        Ok(())
    }
}
