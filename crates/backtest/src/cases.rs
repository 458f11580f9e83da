//! Scoring case records (spec section 5) against the labels' scheme lines.
//!
//! A case file is JSON Lines, one object per version of a case; what counts is the last
//! version of each `case_id` (the highest `version`, the later line on a tie) whose `status`
//! is missing or `"open"` (`"merged"`, `"dissolved"`: the case no longer stands). Only the
//! fields scored here are read; anything else in a record is ignored.
//!
//! A scheme is *found* when an open case holds its anchor: the collector, or the payout
//! account when no collector is in the bank. That case is the scheme's case, the one its
//! figures (investors, raised, regions) are compared with. When several open cases hold the
//! anchor, the one holding most of the scheme's labelled accounts is taken (then the lowest
//! `case_id`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, BufRead};

use fundwatch_generate::labels::{parse_yuan, Labels, SchemeLabel};
use serde::{Deserialize, Serialize};

/// A relative error within this is "right" for investors and raised.
pub const TOLERANCE: f64 = 0.10;

#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error("reading cases: {0}")]
    Io(#[from] io::Error),
    /// Not JSON, or not a case record (the message says which field).
    #[error("case line {line}: {error}")]
    Json { line: usize, error: serde_json::Error },
    #[error("case line {line}: {message}")]
    Invalid { line: usize, message: String },
}

/// One account of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseAccount {
    pub account: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// A yuan amount as a case carries it: a decimal string (`"123456.78"`) or a JSON number.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(f64),
}

#[derive(Debug, Deserialize)]
struct RawCase {
    case_id: String,
    version: u64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    accounts: Vec<CaseAccount>,
    #[serde(default)]
    investors: Option<u64>,
    #[serde(default)]
    raised: Option<Amount>,
    #[serde(default)]
    paid_back: Option<Amount>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    lead_region: Option<String>,
}

/// The fields of a case record that are scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRecord {
    pub case_id: String,
    pub version: u64,
    /// As written; `None` reads as open.
    pub status: Option<String>,
    pub accounts: Vec<CaseAccount>,
    pub investors: Option<u64>,
    /// Fen.
    pub raised: Option<u64>,
    /// Fen.
    pub paid_back: Option<u64>,
    pub regions: Vec<String>,
    pub lead_region: Option<String>,
}

impl CaseRecord {
    /// Status missing or `"open"`.
    pub fn is_open(&self) -> bool {
        self.status.as_deref().is_none_or(|s| s == "open")
    }
}

fn amount_fen(a: Option<Amount>, field: &str, line: usize) -> Result<Option<u64>, CasesError> {
    let bad = |v: String| CasesError::Invalid {
        line,
        message: format!("{field} {v} is not a non-negative yuan amount"),
    };
    match a {
        None => Ok(None),
        Some(Amount::Text(s)) => parse_yuan(&s).map(Some).ok_or_else(|| bad(format!("{s:?}"))),
        Some(Amount::Number(x)) if x.is_finite() && x >= 0.0 => Ok(Some((x * 100.0).round() as u64)),
        Some(Amount::Number(x)) => Err(bad(x.to_string())),
    }
}

/// Read a case file and keep the last version of every case (open or not), by `case_id`.
/// Blank lines are skipped; anything else that is not a case record is an error naming the
/// line.
pub fn read_cases(r: impl BufRead) -> Result<Vec<CaseRecord>, CasesError> {
    let mut last: BTreeMap<String, CaseRecord> = BTreeMap::new();
    for (i, line) in r.lines().enumerate() {
        let line = line?;
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawCase = serde_json::from_str(&line).map_err(|error| CasesError::Json { line: n, error })?;
        if raw.case_id.is_empty() {
            return Err(CasesError::Invalid {
                line: n,
                message: "empty case_id".into(),
            });
        }
        let rec = CaseRecord {
            raised: amount_fen(raw.raised, "raised", n)?,
            paid_back: amount_fen(raw.paid_back, "paid_back", n)?,
            case_id: raw.case_id,
            version: raw.version,
            status: raw.status,
            accounts: raw.accounts,
            investors: raw.investors,
            regions: raw.regions,
            lead_region: raw.lead_region,
        };
        match last.get(&rec.case_id) {
            Some(prev) if prev.version > rec.version => {}
            _ => {
                last.insert(rec.case_id.clone(), rec);
            }
        }
    }
    Ok(last.into_values().collect())
}

/// How one scheme came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeMatch {
    pub scheme: String,
    pub typology: String,
    /// The open case holding the scheme's anchor (collector, else payout account).
    pub case_id: Option<String>,
    /// Collector and separate payout account in one case (`None`: the scheme has not both).
    pub payout_linked: Option<bool>,
    pub investors: u64,
    pub case_investors: Option<u64>,
    /// Fen.
    pub raised: u64,
    pub case_raised: Option<u64>,
}

/// Case-level scores against the scheme lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseScore {
    /// Scheme lines in the labels.
    pub schemes: u64,
    /// Schemes whose anchor is in an open case.
    pub schemes_found: u64,
    /// `schemes_found / schemes` (1 when there are no schemes).
    pub found_share: f64,
    pub missed_schemes: Vec<String>,
    /// Schemes with a collector and a separate account labelled `payout`.
    pub payout_link_schemes: u64,
    /// Of those, how many have both accounts in one open case (target ≥ 0.9 of them).
    pub payout_links: u64,
    /// `payout_links / payout_link_schemes` (1 when there are none).
    pub payout_link_share: f64,
    pub missed_payout_links: Vec<String>,
    /// Open cases holding labelled accounts of two or more schemes (target 0).
    pub impure_cases: u64,
    pub impure_case_ids: Vec<String>,
    /// Found schemes whose case's `investors` is within [`TOLERANCE`] of the truth; shares
    /// and medians are over found schemes (`None` when none was found).
    pub investors_within_10pct: u64,
    pub investors_within_10pct_share: Option<f64>,
    pub investors_median_rel_error: Option<f64>,
    /// The same for `raised` (a truth of 0 is right only when the case says 0).
    pub raised_within_10pct: u64,
    pub raised_within_10pct_share: Option<f64>,
    pub raised_median_rel_error: Option<f64>,
    /// Found schemes whose case names the truth's `lead_region`.
    pub lead_region_right: u64,
    pub lead_region_share: Option<f64>,
    /// Found schemes whose case's `regions` equal the truth's as sets.
    pub regions_right: u64,
    pub regions_share: Option<f64>,
    /// Open cases (last version of each `case_id`).
    pub cases: u64,
    /// Last versions not open (merged, dissolved), not scored.
    pub closed_cases: u64,
    /// Open cases without any labelled scheme account: false cases.
    pub cases_without_scheme: u64,
    pub false_case_ids: Vec<String>,
    /// Per scheme, in scheme id order.
    pub details: Vec<SchemeMatch>,
}

/// `|case - truth| / truth`; a missing figure is 100 % off, and so is any non-zero figure
/// against a truth of 0.
fn rel_error(truth: u64, case: Option<u64>) -> f64 {
    let c = case.unwrap_or(0) as f64;
    if truth == 0 {
        return if case == Some(0) { 0.0 } else { 1.0 };
    }
    let e = (c - truth as f64).abs() / truth as f64;
    if case.is_none() {
        1.0
    } else {
        e
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn share(k: u64, n: u64) -> f64 {
    if n == 0 {
        1.0
    } else {
        k as f64 / n as f64
    }
}

fn share_of_found(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// Score the final case versions `cases` (as [`read_cases`] gives them; those not open are
/// left out) against the scheme lines and scheme account labels of `labels`.
pub fn score_cases(labels: &Labels, cases: &[CaseRecord]) -> CaseScore {
    let open: Vec<&CaseRecord> = cases.iter().filter(|c| c.is_open()).collect();
    // Which scheme(s) each labelled account belongs to.
    let mut scheme_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in &labels.accounts {
        if let Some(s) = &a.scheme {
            scheme_of.entry(a.account.as_str()).or_default().insert(s.as_str());
        }
    }
    for s in &labels.schemes {
        for a in &s.accounts {
            scheme_of
                .entry(a.account.as_str())
                .or_default()
                .insert(s.scheme.as_str());
        }
    }
    // Open cases holding each account.
    let mut cases_of: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut impure_case_ids = Vec::new();
    let mut false_case_ids = Vec::new();
    for (i, c) in open.iter().enumerate() {
        let mut touched: BTreeSet<&str> = BTreeSet::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for a in &c.accounts {
            if !seen.insert(a.account.as_str()) {
                continue;
            }
            cases_of.entry(a.account.as_str()).or_default().push(i);
            if let Some(s) = scheme_of.get(a.account.as_str()) {
                touched.extend(s.iter().copied());
            }
        }
        match touched.len() {
            0 => false_case_ids.push(c.case_id.clone()),
            1 => {}
            _ => impure_case_ids.push(c.case_id.clone()),
        }
    }
    let holds = |i: usize, acct: &str| cases_of.get(acct).is_some_and(|v| v.contains(&i));

    let mut details = Vec::new();
    let mut missed_schemes = Vec::new();
    let mut missed_payout_links = Vec::new();
    let (mut link_schemes, mut links) = (0u64, 0u64);
    let (mut inv_ok, mut raised_ok, mut lead_ok, mut regions_ok) = (0u64, 0u64, 0u64, 0u64);
    let (mut inv_err, mut raised_err) = (Vec::new(), Vec::new());
    for s in &labels.schemes {
        let case = s
            .anchor()
            .and_then(|anchor| best_case(s, anchor, &open, &cases_of, holds));
        let payout_linked = match (s.collector(), s.payout()) {
            (Some(c), Some(p)) if c != p => {
                link_schemes += 1;
                let linked = cases_of.get(c).is_some_and(|v| v.iter().any(|&i| holds(i, p)));
                if linked {
                    links += 1;
                } else {
                    missed_payout_links.push(s.scheme.clone());
                }
                Some(linked)
            }
            _ => None,
        };
        let raised = s.raised_fen().unwrap_or(0);
        match case {
            Some(i) => {
                let c = open[i];
                let ie = rel_error(s.investors, c.investors);
                let re = rel_error(raised, c.raised);
                inv_ok += u64::from(ie <= TOLERANCE);
                raised_ok += u64::from(re <= TOLERANCE);
                inv_err.push(ie);
                raised_err.push(re);
                lead_ok += u64::from(c.lead_region.is_some() && c.lead_region == s.lead_region);
                let want: BTreeSet<&str> = s.regions.iter().map(String::as_str).collect();
                let got: BTreeSet<&str> = c.regions.iter().map(String::as_str).collect();
                regions_ok += u64::from(want == got);
            }
            None => missed_schemes.push(s.scheme.clone()),
        }
        details.push(SchemeMatch {
            scheme: s.scheme.clone(),
            typology: s.typology.clone(),
            case_id: case.map(|i| open[i].case_id.clone()),
            payout_linked,
            investors: s.investors,
            case_investors: case.and_then(|i| open[i].investors),
            raised,
            case_raised: case.and_then(|i| open[i].raised),
        });
    }
    let schemes = labels.schemes.len() as u64;
    let found = schemes - missed_schemes.len() as u64;
    CaseScore {
        schemes,
        schemes_found: found,
        found_share: share(found, schemes),
        missed_schemes,
        payout_link_schemes: link_schemes,
        payout_links: links,
        payout_link_share: share(links, link_schemes),
        missed_payout_links,
        impure_cases: impure_case_ids.len() as u64,
        impure_case_ids,
        investors_within_10pct: inv_ok,
        investors_within_10pct_share: share_of_found(inv_ok, found),
        investors_median_rel_error: median(inv_err),
        raised_within_10pct: raised_ok,
        raised_within_10pct_share: share_of_found(raised_ok, found),
        raised_median_rel_error: median(raised_err),
        lead_region_right: lead_ok,
        lead_region_share: share_of_found(lead_ok, found),
        regions_right: regions_ok,
        regions_share: share_of_found(regions_ok, found),
        cases: open.len() as u64,
        closed_cases: (cases.len() - open.len()) as u64,
        cases_without_scheme: false_case_ids.len() as u64,
        false_case_ids,
        details,
    }
}

/// The open case standing for scheme `s`: among those holding `anchor`, the one with most of
/// the scheme's accounts, then the lowest `case_id`.
fn best_case(
    s: &SchemeLabel,
    anchor: &str,
    open: &[&CaseRecord],
    cases_of: &BTreeMap<&str, Vec<usize>>,
    holds: impl Fn(usize, &str) -> bool,
) -> Option<usize> {
    let candidates = cases_of.get(anchor)?;
    candidates.iter().copied().max_by(|&a, &b| {
        let n = |i: usize| s.accounts.iter().filter(|x| holds(i, &x.account)).count();
        n(a).cmp(&n(b)).then_with(|| open[b].case_id.cmp(&open[a].case_id))
    })
}

impl fmt::Display for CaseScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", 100.0 * v));
        const SHOW: usize = 5;
        let list = |xs: &[String]| -> String {
            let mut s = xs.iter().take(SHOW).cloned().collect::<Vec<_>>().join(", ");
            if xs.len() > SHOW {
                s.push_str(&format!(", … (+{})", xs.len() - SHOW));
            }
            s
        };
        let found = self.schemes_found;
        writeln!(f, "{:<30} {:>7} {:>7} {:>8}", "", "right", "of", "share")?;
        let mut row =
            |name: &str, k: u64, n: u64, s: Option<f64>| writeln!(f, "{name:<30} {k:>7} {n:>7} {:>8}", pct(s));
        row("schemes found", found, self.schemes, Some(self.found_share))?;
        row(
            "payout linked to collector",
            self.payout_links,
            self.payout_link_schemes,
            Some(self.payout_link_share),
        )?;
        row(
            "investors within 10%",
            self.investors_within_10pct,
            found,
            self.investors_within_10pct_share,
        )?;
        row(
            "raised within 10%",
            self.raised_within_10pct,
            found,
            self.raised_within_10pct_share,
        )?;
        row("lead region", self.lead_region_right, found, self.lead_region_share)?;
        row("regions (set)", self.regions_right, found, self.regions_share)?;
        writeln!(
            f,
            "median relative error: investors {}, raised {}",
            pct(self.investors_median_rel_error),
            pct(self.raised_median_rel_error)
        )?;
        writeln!(
            f,
            "open cases {}: impure {} (accounts of several schemes), without a scheme {}; {} merged/dissolved not scored",
            self.cases, self.impure_cases, self.cases_without_scheme, self.closed_cases
        )?;
        for (name, xs) in [
            ("missed schemes", &self.missed_schemes),
            ("payout not linked", &self.missed_payout_links),
            ("impure cases", &self.impure_case_ids),
            ("false cases", &self.false_case_ids),
        ] {
            if !xs.is_empty() {
                writeln!(f, "  {name}: {}", list(xs))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S1: collector A, payout P, receiver R (split scheme). S2: collector B, payout Q.
    /// S3: payout-only U. S4: scatter-in collector D (missed).
    const LABELS: &str = r#"{"kind":"account","account":"A","typology":"split_collector","rules":["scatter_in_concentrated_out"],"scheme":"S000001","role":"collector"}
{"kind":"account","account":"P","typology":"split_payout","rules":["periodic_batch_small_out"],"scheme":"S000001","role":"payout"}
{"kind":"account","account":"R","typology":"scheme_receiver","rules":[],"scheme":"S000001","role":"receiver"}
{"kind":"account","account":"B","typology":"split_collector","rules":["scatter_in_concentrated_out"],"scheme":"S000002","role":"collector"}
{"kind":"account","account":"Q","typology":"split_payout","rules":["periodic_batch_small_out"],"scheme":"S000002","role":"payout"}
{"kind":"account","account":"U","typology":"evasive_periodic_payout","rules":["periodic_batch_small_out"],"scheme":"S000003","role":"payout"}
{"kind":"account","account":"D","typology":"evasive_scatter_in","rules":["scatter_in_concentrated_out"],"scheme":"S000004","role":"collector"}
{"kind":"account","account":"L","typology":"payroll","rules":[]}
{"kind":"scheme","scheme":"S000001","typology":"split_scheme","investors":100,"raised":"1000000.00","paid_back":"20000.00","lead_region":"330106","regions":["330106","330110","330122"],"accounts":[{"account":"A","role":"collector","region":"330106"},{"account":"P","role":"payout","region":"330110"},{"account":"R","role":"receiver","region":"330122"}]}
{"kind":"scheme","scheme":"S000002","typology":"split_scheme","investors":40,"raised":"200000.00","paid_back":"5000.00","lead_region":"330102","regions":["330102"],"accounts":[{"account":"B","role":"collector","region":"330102"},{"account":"Q","role":"payout","region":"330102"}]}
{"kind":"scheme","scheme":"S000003","typology":"periodic_payout","investors":20,"raised":"0.00","paid_back":"3000.00","lead_region":"330281","regions":["330281"],"accounts":[{"account":"U","role":"payout","region":"330281"}]}
{"kind":"scheme","scheme":"S000004","typology":"scatter_in","investors":12,"raised":"50000.00","paid_back":"0.00","lead_region":"330106","regions":["330106"],"accounts":[{"account":"D","role":"collector","region":"330106"}]}
"#;

    /// c1: S1 whole, close figures (v1 superseded by v2). c2: B only (payout link missed),
    /// figures off. c3: Q with U: impure (S2 and S3). c4: L and a stranger: a false case.
    /// c5: D, but merged: ignored, so S4 is missed.
    const CASES: &str = r#"{"case_id":"c1","version":1,"accounts":[{"account":"A","role":"collector","region":"330106"}],"investors":10,"raised":"1.00","paid_back":"0","regions":["330106"],"lead_region":"330106"}
{"case_id":"c2","version":1,"status":"open","accounts":[{"account":"B","role":"collector","region":"330102"}],"investors":30,"raised":"150000","paid_back":"0","regions":["330102","330106"],"lead_region":"330106"}

{"case_id":"c1","version":2,"accounts":[{"account":"A","role":"collector","region":"330106"},{"account":"P","role":"payout","region":"330110"},{"account":"R","role":"receiver"}],"investors":95,"raised":"1050000.00","paid_back":"19000.00","regions":["330122","330106","330110"],"lead_region":"330106","severity":"early","summary":"x"}
{"case_id":"c3","version":4,"accounts":[{"account":"Q","role":"payout"},{"account":"U","role":"payout"}],"investors":22,"raised":"0.00","paid_back":"3000.00","regions":["330281","330102"],"lead_region":"330281"}
{"case_id":"c4","version":1,"accounts":[{"account":"L","role":"payout"},{"account":"X","role":"receiver"}],"investors":9,"raised":"10.00","paid_back":"1.00","regions":[],"lead_region":null}
{"case_id":"c5","version":1,"accounts":[{"account":"D","role":"collector"}],"investors":12,"raised":"50000.00","paid_back":"0","regions":["330106"],"lead_region":"330106"}
{"case_id":"c5","version":2,"status":"merged","accounts":[{"account":"D","role":"collector"}],"investors":12,"raised":"50000.00","paid_back":"0","regions":["330106"],"lead_region":"330106"}
{"case_id":"c1","version":1,"status":"dissolved","accounts":[],"investors":0,"raised":"0"}
"#;

    fn score() -> CaseScore {
        let labels = Labels::read(LABELS.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let cases = read_cases(CASES.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        score_cases(&labels, &cases)
    }

    #[test]
    fn last_versions() {
        let cases = read_cases(CASES.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<(&str, u64, bool)> = cases
            .iter()
            .map(|c| (c.case_id.as_str(), c.version, c.is_open()))
            .collect();
        // c1: the stale version 1 line at the end does not replace version 2.
        assert_eq!(
            ids,
            [
                ("c1", 2, true),
                ("c2", 1, true),
                ("c3", 4, true),
                ("c4", 1, true),
                ("c5", 2, false)
            ]
        );
        assert_eq!(cases[0].raised, Some(105_000_000));
        assert_eq!(cases[1].raised, Some(15_000_000));
    }

    #[test]
    fn scores_the_hand_made_file() {
        let s = score();
        assert_eq!((s.schemes, s.schemes_found), (4, 3));
        assert_eq!(s.missed_schemes, ["S000004"], "the merged case must not count");
        assert_eq!((s.payout_link_schemes, s.payout_links), (2, 1));
        assert_eq!(s.missed_payout_links, ["S000002"]);
        assert!((s.payout_link_share - 0.5).abs() < 1e-12);
        assert_eq!(s.impure_case_ids, ["c3"]);
        assert_eq!(s.impure_cases, 1);
        assert_eq!((s.cases, s.closed_cases), (4, 1));
        assert_eq!(s.false_case_ids, ["c4"]);
        // Found: S1 in c1 (95 of 100, 1.05 M of 1 M: both within 10 %), S2 in c2 (30 of 40,
        // 150k of 200k: both 25 % off), S3 in c3 (22 of 20: 10 % off, within; raised 0 = 0).
        assert_eq!(s.investors_within_10pct, 2);
        assert_eq!(s.raised_within_10pct, 2);
        let med = s.investors_median_rel_error.unwrap_or(f64::NAN);
        assert!((med - 0.1).abs() < 1e-9, "{med}");
        let med = s.raised_median_rel_error.unwrap_or(f64::NAN);
        assert!((med - 0.05).abs() < 1e-9, "{med}");
        // Lead region: c1 right, c2 wrong, c3 right. Regions: c1 right (order ignored), c2
        // has an extra region, c3 has S2's region too.
        assert_eq!((s.lead_region_right, s.regions_right), (2, 1));
        assert!((s.lead_region_share.unwrap_or(0.0) - 2.0 / 3.0).abs() < 1e-12);
        let d: Vec<(&str, Option<&str>, Option<bool>)> = s
            .details
            .iter()
            .map(|m| (m.scheme.as_str(), m.case_id.as_deref(), m.payout_linked))
            .collect();
        assert_eq!(
            d,
            [
                ("S000001", Some("c1"), Some(true)),
                ("S000002", Some("c2"), Some(false)),
                ("S000003", Some("c3"), None),
                ("S000004", None, None)
            ]
        );
        let text = s.to_string();
        assert!(
            text.contains("payout linked to collector") && text.contains("impure 1"),
            "{text}"
        );
        assert!(serde_json::to_string(&s).is_ok());
    }

    #[test]
    fn nothing_to_score() {
        let s = score_cases(&Labels::default(), &[]);
        assert_eq!(
            (s.schemes, s.cases, s.found_share, s.payout_link_share),
            (0, 0, 1.0, 1.0)
        );
        assert_eq!(s.investors_within_10pct_share, None);
        assert_eq!(s.investors_median_rel_error, None);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = read_cases("\n{\"case_id\":\"c\"}\n".as_bytes());
        assert!(matches!(e, Err(CasesError::Json { line: 2, .. })), "{e:?}");
        let e = read_cases("{\"case_id\":\"c\",\"version\":1,\"raised\":\"1,000\"}\n".as_bytes());
        assert!(matches!(e, Err(CasesError::Invalid { line: 1, .. })), "{e:?}");
        let e = read_cases("{\"case_id\":\"\",\"version\":1}\n".as_bytes());
        assert!(matches!(e, Err(CasesError::Invalid { line: 1, .. })), "{e:?}");
        // Numbers are accepted for amounts.
        let ok = read_cases("{\"case_id\":\"c\",\"version\":1,\"raised\":12.5}\n".as_bytes());
        assert_eq!(ok.ok().and_then(|v| v.first().and_then(|c| c.raised)), Some(1250));
    }
}
