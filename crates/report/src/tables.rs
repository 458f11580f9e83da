//! Every table of a report, as polars DataFrames built from the runs' alerts.

use std::collections::BTreeMap;

use fundwatch_backtest::linking::case_fen;
use fundwatch_backtest::{Backtest, CaseDiff, CaseRun, CaseScore, LinkChange, RunOutput, Sweep};
use fundwatch_engine::Alert;
use fundwatch_generate::labels::Evaluation;
use fundwatch_record::{beijing_day, format_day, format_fen, parse_rfc3339_ms};
use fundwatch_rules::RuleId;
use polars::prelude::*;

use crate::ReportError;

/// Named tables, in the order they are written.
#[derive(Default)]
pub struct Tables(pub Vec<(String, DataFrame)>);

impl Tables {
    pub fn get(&self, name: &str) -> Result<&DataFrame, ReportError> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| ReportError::Table(PolarsError::ColumnNotFound(format!("no table {name}").into())))
    }

    fn add(&mut self, name: &str, df: DataFrame) {
        self.0.push((name.to_owned(), df));
    }
}

fn s(name: &str, v: Vec<String>) -> Column {
    Column::new(name.into(), v)
}

fn u(name: &str, v: Vec<u64>) -> Column {
    Column::new(name.into(), v)
}

fn f(name: &str, v: Vec<f64>) -> Column {
    Column::new(name.into(), v)
}

/// Beijing calendar day of an alert: the day of its triggering record (`window_end`).
fn day_of(a: &Alert) -> String {
    parse_rfc3339_ms(&a.window_end)
        .map(|ms| format_day(beijing_day(ms)))
        .unwrap_or_default()
}

fn evidence_str(a: &Alert, key: &str) -> String {
    a.evidence.get(key).and_then(|v| v.as_str()).unwrap_or("").to_owned()
}

/// One row per alert, tagged with its config ("A", "B", or a sweep point).
pub fn alerts_frame(runs: &[(&str, &[Alert])]) -> Result<DataFrame, ReportError> {
    let mut c: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut score = Vec::new();
    let cols = [
        "config",
        "rule",
        "account",
        "region",
        "account_type",
        "industry",
        "day",
        "triggered_by",
        "window_start",
        "window_end",
        "summary",
        "evidence",
        "config_version",
        "alert_id",
    ];
    for (cfg, alerts) in runs {
        for a in *alerts {
            let vals = [
                (*cfg).to_owned(),
                a.rule.clone(),
                a.account.clone(),
                a.region.clone().unwrap_or_default(),
                evidence_str(a, "account_type"),
                evidence_str(a, "industry"),
                day_of(a),
                a.triggered_by.clone(),
                a.window_start.clone(),
                a.window_end.clone(),
                a.summary.clone(),
                serde_json::to_string(&a.evidence).unwrap_or_default(),
                a.config_version.clone(),
                a.alert_id.clone(),
            ];
            for (k, v) in cols.iter().zip(vals) {
                c.entry(k).or_default().push(v);
            }
            score.push(a.score);
        }
    }
    let mut columns: Vec<Column> = cols.iter().map(|k| s(k, c.remove(k).unwrap_or_default())).collect();
    columns.insert(3, f("score", score));
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Account-level score columns, filled row by row.
#[derive(Default)]
struct ScoreCols {
    truth: Vec<u64>,
    tp: Vec<u64>,
    fp: Vec<u64>,
    fne: Vec<u64>,
    p: Vec<f64>,
    r: Vec<f64>,
    f1: Vec<f64>,
}

impl ScoreCols {
    fn push(&mut self, sc: &fundwatch_generate::labels::RuleScore) {
        self.truth.push(sc.truth);
        self.tp.push(sc.true_positives);
        self.fp.push(sc.false_positives);
        self.fne.push(sc.false_negatives);
        self.p.push(sc.precision);
        self.r.push(sc.recall);
        self.f1.push(sc.f1);
    }

    fn columns(self, with_truth: bool) -> Vec<Column> {
        let mut c = Vec::new();
        if with_truth {
            c.push(u("labelled_positive", self.truth));
        }
        c.extend([
            u("true_positives", self.tp),
            u("false_positives", self.fp),
            u("false_negatives", self.fne),
            f("precision", self.p),
            f("recall", self.r),
            f("f1", self.f1),
        ]);
        c
    }
}

/// Per config and rule: alerts, accounts and (with labels) the account-level scores.
fn rules_frame(runs: &[(&str, &RunOutput, Option<&Evaluation>)]) -> Result<DataFrame, ReportError> {
    let (mut cfg, mut ver, mut rule, mut alerts, mut accounts) = (vec![], vec![], vec![], vec![], vec![]);
    let mut scores = ScoreCols::default();
    let labelled = runs.iter().all(|x| x.2.is_some());
    for (name, run, eval) in runs {
        let (n, acc) = (run.alerts_by_rule(), run.accounts_by_rule());
        for id in RuleId::ALL {
            let k = id.as_str();
            cfg.push((*name).to_owned());
            ver.push(run.config_version.clone());
            rule.push(k.to_owned());
            alerts.push(n.get(k).copied().unwrap_or(0));
            accounts.push(acc.get(k).copied().unwrap_or(0));
            if let Some(sc) = eval.and_then(|e| e.rule(k)) {
                scores.push(sc);
            }
        }
    }
    let mut cols = vec![
        s("config", cfg),
        s("config_version", ver),
        s("rule", rule),
        u("alerts", alerts),
        u("accounts", accounts),
    ];
    if labelled {
        cols.extend(scores.columns(true));
    }
    Ok(DataFrame::new_infer_height(cols)?)
}

fn segments_frame(alerts: &DataFrame) -> Result<DataFrame, ReportError> {
    Ok(alerts
        .clone()
        .lazy()
        .group_by([
            col("config"),
            col("rule"),
            col("region"),
            col("account_type"),
            col("industry"),
        ])
        .agg([
            len().cast(DataType::UInt64).alias("alerts"),
            col("account").n_unique().cast(DataType::UInt64).alias("accounts"),
            col("score").mean().alias("mean_score"),
        ])
        .sort_by_exprs(
            [col("config"), col("rule"), col("alerts"), col("region")],
            SortMultipleOptions::default().with_order_descending_multi([false, false, true, false]),
        )
        .collect()?)
}

fn daily_frame(alerts: &DataFrame) -> Result<DataFrame, ReportError> {
    Ok(alerts
        .clone()
        .lazy()
        .group_by([col("config"), col("day"), col("rule")])
        .agg([
            len().cast(DataType::UInt64).alias("alerts"),
            col("account").n_unique().cast(DataType::UInt64).alias("accounts"),
        ])
        .sort(["config", "day", "rule"], SortMultipleOptions::default())
        .collect()?)
}

/// The `top` accounts of each config by alerts, then highest score, with the evidence of
/// their highest-scoring alert.
fn top_accounts_frame(alerts_df: &DataFrame, runs: &[(&str, &[Alert])], top: u32) -> Result<DataFrame, ReportError> {
    let mut out: Option<DataFrame> = None;
    for (cfg, alerts) in runs {
        let mut df = alerts_df
            .clone()
            .lazy()
            .filter(col("config").eq(lit(*cfg)))
            .group_by([col("config"), col("account")])
            .agg([
                len().cast(DataType::UInt64).alias("alerts"),
                col("rule").n_unique().cast(DataType::UInt64).alias("rules"),
                col("score").max().alias("max_score"),
                col("region").first().alias("region"),
            ])
            .sort_by_exprs(
                [col("alerts"), col("max_score"), col("account")],
                SortMultipleOptions::default().with_order_descending_multi([true, true, false]),
            )
            .limit(top)
            .collect()?;
        // The evidence people read: which rules, and the best alert's summary and breakdown.
        let accounts = crate::strs(&df, "account");
        let (mut which, mut summary, mut breakdown) = (vec![], vec![], vec![]);
        for acc in &accounts {
            let mine: Vec<&Alert> = alerts.iter().filter(|a| &a.account == acc).collect();
            let mut rules: Vec<&str> = mine.iter().map(|a| a.rule.as_str()).collect();
            rules.sort();
            rules.dedup();
            which.push(rules.join(", "));
            let best = mine.iter().max_by(|a, b| a.score.total_cmp(&b.score));
            summary.push(best.map(|a| a.summary.clone()).unwrap_or_default());
            breakdown.push(
                best.and_then(|a| a.evidence.get("score_breakdown"))
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
        }
        df.with_column(s("rule_list", which))?;
        df.with_column(s("top_alert_summary", summary))?;
        df.with_column(s("top_alert_score_breakdown", breakdown))?;
        out = Some(match out {
            None => df,
            Some(mut o) => {
                o.vstack_mut(&df)?;
                o
            }
        });
    }
    match out {
        Some(o) => Ok(o),
        None => Ok(DataFrame::empty()),
    }
}

/// Tables of a backtest: `rules`, `segments`, `daily`, `top_accounts`, `alerts`, with
/// `--against` `diff` and `diff_alerts`, and with the case stage the case tables.
pub fn backtest_tables(bt: &Backtest) -> Result<Tables, ReportError> {
    let mut runs: Vec<(&str, &[Alert])> = vec![("A", &bt.a.alerts)];
    let mut rr: Vec<(&str, &RunOutput, Option<&Evaluation>)> = vec![("A", &bt.a, bt.eval_a.as_ref())];
    if let Some(b) = &bt.b {
        runs.push(("B", &b.alerts));
        rr.push(("B", b, bt.eval_b.as_ref()));
    }
    let alerts = alerts_frame(&runs)?;
    let mut t = Tables::default();
    t.add("rules", rules_frame(&rr)?);
    if let Some(d) = &bt.diff {
        let c = &d.by_rule;
        t.add(
            "diff",
            DataFrame::new_infer_height(vec![
                s("rule", c.iter().map(|x| x.rule.clone()).collect()),
                u("alerts_only_a", c.iter().map(|x| x.only_a).collect()),
                u("alerts_only_b", c.iter().map(|x| x.only_b).collect()),
                u("alerts_both", c.iter().map(|x| x.both).collect()),
                u("accounts_only_a", c.iter().map(|x| x.accounts_only_a).collect()),
                u("accounts_only_b", c.iter().map(|x| x.accounts_only_b).collect()),
                u("accounts_both", c.iter().map(|x| x.accounts_both).collect()),
            ])?,
        );
        let side: Vec<(&str, &Alert)> = d
            .only_a
            .iter()
            .map(|a| ("only A", a))
            .chain(d.only_b.iter().map(|a| ("only B", a)))
            .collect();
        t.add(
            "diff_alerts",
            DataFrame::new_infer_height(vec![
                s("side", side.iter().map(|x| x.0.to_owned()).collect()),
                s("rule", side.iter().map(|x| x.1.rule.clone()).collect()),
                s("account", side.iter().map(|x| x.1.account.clone()).collect()),
                f("score", side.iter().map(|x| x.1.score).collect()),
                s("day", side.iter().map(|x| day_of(x.1)).collect()),
                s("triggered_by", side.iter().map(|x| x.1.triggered_by.clone()).collect()),
                s("summary", side.iter().map(|x| x.1.summary.clone()).collect()),
            ])?,
        );
    }
    t.add("segments", segments_frame(&alerts)?);
    t.add("daily", daily_frame(&alerts)?);
    t.add("top_accounts", top_accounts_frame(&alerts, &runs, 25)?);
    t.add("alerts", alerts);
    backtest_case_tables(bt, &mut t)?;
    Ok(t)
}

/// Tables of a sweep: `sweep` (one row per point and rule), `sweep_alerts`, the base
/// config's `base_rules`, `base_daily`, `base_top_accounts`, and with the case stage the
/// case tables.
pub fn sweep_tables(sw: &Sweep) -> Result<Tables, ReportError> {
    let mut axis_cols: Vec<Vec<String>> = vec![Vec::new(); sw.axes.len()];
    let (mut x, mut ver, mut rule, mut affected, mut alerts, mut accounts) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut scores = ScoreCols::default();
    let labelled = sw.points.iter().all(|pt| pt.evaluation.is_some()) && !sw.points.is_empty();
    for pt in &sw.points {
        for id in RuleId::ALL {
            let k = id.as_str();
            for (i, (_, v)) in pt.settings.0.iter().enumerate() {
                axis_cols[i].push(v.text.clone());
            }
            x.push(pt.settings.0.first().map_or(0.0, |(_, v)| v.x));
            ver.push(pt.config_version.clone());
            rule.push(k.to_owned());
            affected.push(sw.affected.contains(&id));
            alerts.push(pt.alerts_by_rule.get(k).copied().unwrap_or(0));
            accounts.push(pt.accounts_by_rule.get(k).copied().unwrap_or(0));
            if let Some(sc) = pt.evaluation.as_ref().and_then(|e| e.rule(k)) {
                scores.push(sc);
            }
        }
    }
    let mut cols: Vec<Column> = sw.axes.iter().zip(axis_cols).map(|(a, v)| s(&a.label, v)).collect();
    cols.extend([
        f("x", x),
        s("config_version", ver),
        s("rule", rule),
        Column::new("affected".into(), affected),
        u("alerts", alerts),
        u("accounts", accounts),
    ]);
    if labelled {
        cols.extend(scores.columns(false));
    }
    let mut t = Tables::default();
    t.add("sweep", DataFrame::new_infer_height(cols)?);
    let names: Vec<String> = sw.points.iter().map(|pt| pt.settings.to_string()).collect();
    let runs: Vec<(&str, &[Alert])> = names
        .iter()
        .zip(&sw.points)
        .map(|(n, pt)| (n.as_str(), pt.alerts.as_slice()))
        .collect();
    let point_alerts = alerts_frame(&runs)?;
    t.add(
        "sweep_alerts",
        point_alerts.select([
            "config",
            "rule",
            "account",
            "score",
            "day",
            "triggered_by",
            "config_version",
            "alert_id",
        ])?,
    );
    let base: Vec<(&str, &[Alert])> = vec![("A", &sw.base.alerts)];
    let base_alerts = alerts_frame(&base)?;
    t.add(
        "base_rules",
        rules_frame(&[("A", &sw.base, sw.base_evaluation.as_ref())])?,
    );
    t.add("base_daily", daily_frame(&base_alerts)?);
    t.add("base_top_accounts", top_accounts_frame(&base_alerts, &base, 25)?);
    sweep_case_tables(sw, &mut t)?;
    Ok(t)
}

/// A case's accounts of one role, joined.
fn accounts_of(c: &fundwatch_cases::CaseRecord, role: &str) -> String {
    c.accounts
        .iter()
        .filter(|a| a.role == role)
        .map(|a| a.account.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Per config: open cases by severity, what they add up to, the linking stage's counters
/// and, with scheme labels, how the cases score against them.
pub(crate) fn case_summary_frame(runs: &[(&str, &CaseRun, Option<&CaseScore>)]) -> Result<DataFrame, ReportError> {
    let mut c: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let num = [
        "open_cases",
        "closed_cases",
        "early",
        "past_raised_line",
        "past_people_line",
        "past_loss_line",
        "accounts",
        "investors",
        "raised_fen",
        "paid_back_fen",
        "outstanding_fen",
        "links",
        "linked_alerts",
        "case_versions",
    ];
    let (mut cfg, mut raised_y, mut out_y) = (vec![], vec![], vec![]);
    for (name, run, _) in runs {
        let open: Vec<&fundwatch_cases::CaseRecord> = run.open().collect();
        let has = |tok: &str| open.iter().filter(|x| x.severity.split('+').any(|t| t == tok)).count() as u64;
        let sum = |f: &dyn Fn(&fundwatch_cases::CaseRecord) -> u64| open.iter().map(|x| f(x)).sum::<u64>();
        let raised = sum(&|x| case_fen(&x.raised));
        let outstanding = sum(&|x| case_fen(&x.outstanding));
        let vals = [
            open.len() as u64,
            run.cases.len() as u64 - open.len() as u64,
            has("early"),
            has("raised"),
            has("people"),
            has("loss"),
            sum(&|x| x.accounts.len() as u64),
            sum(&|x| x.investors),
            raised,
            sum(&|x| case_fen(&x.paid_back)),
            outstanding,
            sum(&|x| x.links.len() as u64),
            run.linked_alerts.len() as u64,
            run.versions,
        ];
        for (k, v) in num.iter().zip(vals) {
            c.entry(k).or_default().push(v);
        }
        cfg.push((*name).to_owned());
        raised_y.push(format_fen(raised as i64));
        out_y.push(format_fen(outstanding as i64));
    }
    let mut cols = vec![s("config", cfg)];
    for k in num {
        cols.push(u(k, c.remove(k).unwrap_or_default()));
    }
    cols.push(s("raised", raised_y));
    cols.push(s("outstanding", out_y));
    if runs.iter().all(|r| r.2.is_some()) && !runs.is_empty() {
        let sc: Vec<&CaseScore> = runs.iter().filter_map(|r| r.2).collect();
        let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
        cols.extend([
            u("schemes", sc.iter().map(|x| x.schemes).collect()),
            u("schemes_found", sc.iter().map(|x| x.schemes_found).collect()),
            u(
                "payout_link_schemes",
                sc.iter().map(|x| x.payout_link_schemes).collect(),
            ),
            f("payout_link_share", sc.iter().map(|x| x.payout_link_share).collect()),
            u("impure_cases", sc.iter().map(|x| x.impure_cases).collect()),
            u(
                "cases_without_scheme",
                sc.iter().map(|x| x.cases_without_scheme).collect(),
            ),
            f(
                "investors_within_10pct",
                sc.iter().map(|x| opt(x.investors_within_10pct_share)).collect(),
            ),
            f(
                "raised_within_10pct",
                sc.iter().map(|x| opt(x.raised_within_10pct_share)).collect(),
            ),
            f(
                "lead_region_right",
                sc.iter().map(|x| opt(x.lead_region_share)).collect(),
            ),
            f("regions_right", sc.iter().map(|x| opt(x.regions_share)).collect()),
        ]);
    }
    Ok(DataFrame::new_infer_height(cols)?)
}

/// One row per open case, largest raised first within each config.
pub(crate) fn cases_frame(runs: &[(&str, &CaseRun)]) -> Result<DataFrame, ReportError> {
    let mut rows: Vec<(&str, &fundwatch_cases::CaseRecord)> = Vec::new();
    for (name, run) in runs {
        let mut open: Vec<&fundwatch_cases::CaseRecord> = run.open().collect();
        open.sort_by(|a, b| {
            case_fen(&b.raised)
                .cmp(&case_fen(&a.raised))
                .then_with(|| a.case_id.cmp(&b.case_id))
        });
        rows.extend(open.into_iter().map(|c| (*name, c)));
    }
    let col_s =
        |name: &str, g: &dyn Fn(&fundwatch_cases::CaseRecord) -> String| s(name, rows.iter().map(|r| g(r.1)).collect());
    let col_u =
        |name: &str, g: &dyn Fn(&fundwatch_cases::CaseRecord) -> u64| u(name, rows.iter().map(|r| g(r.1)).collect());
    Ok(DataFrame::new_infer_height(vec![
        s("config", rows.iter().map(|r| r.0.to_owned()).collect()),
        col_s("case_id", &|c| c.case_id.clone()),
        col_s("severity", &|c| c.severity.clone()),
        col_u("investors", &|c| c.investors),
        col_s("raised", &|c| c.raised.clone()),
        col_s("paid_back", &|c| c.paid_back.clone()),
        col_s("outstanding", &|c| c.outstanding.clone()),
        col_u("raised_fen", &|c| case_fen(&c.raised)),
        col_s("collectors", &|c| accounts_of(c, "collector")),
        col_s("payouts", &|c| accounts_of(c, "payout")),
        col_s("receivers", &|c| accounts_of(c, "receiver")),
        col_u("links", &|c| c.links.len() as u64),
        col_s("lead_region", &|c| c.lead_region.clone().unwrap_or_default()),
        col_s("regions", &|c| c.regions.join(" ")),
        col_s("growth_per_week", &|c| {
            format!(
                "{} people, {} yuan",
                c.growth_per_week.investors, c.growth_per_week.raised
            )
        }),
        col_u("alerts", &|c| c.alert_ids.len() as u64),
        col_s("first_seen", &|c| c.first_seen.clone()),
        col_s("last_seen", &|c| c.last_seen.clone()),
        col_u("version", &|c| c.version),
        col_s("summary", &|c| c.summary.clone()),
    ])?)
}

/// The links one config makes and the other breaks, tagged with the comparison
/// (`A→B`, or a sweep point against its base).
pub(crate) fn case_links_frame(diffs: &[(&str, &CaseDiff)]) -> Result<DataFrame, ReportError> {
    let mut rows: Vec<(&str, &str, &LinkChange)> = Vec::new();
    for (name, d) in diffs {
        rows.extend(d.links_made.iter().map(|l| (*name, "made", l)));
        rows.extend(d.links_broken.iter().map(|l| (*name, "broken", l)));
    }
    let g = |name: &str, f: &dyn Fn(&LinkChange) -> String| s(name, rows.iter().map(|r| f(r.2)).collect());
    Ok(DataFrame::new_infer_height(vec![
        s("comparison", rows.iter().map(|r| r.0.to_owned()).collect()),
        s("change", rows.iter().map(|r| r.1.to_owned()).collect()),
        g("kind", &|l| l.link.kind.clone()),
        g("from", &|l| l.link.from.clone()),
        g("to", &|l| l.link.to.clone()),
        g("via", &|l| l.link.via.clone().unwrap_or_default()),
        g("case_a", &|l| l.case_a.clone().unwrap_or_default()),
        g("case_b", &|l| l.case_b.clone().unwrap_or_default()),
    ])?)
}

/// Cases that differ between A and B: only in one, or in both with other accounts,
/// figures or severity.
pub(crate) fn case_changes_frame(d: &CaseDiff) -> Result<DataFrame, ReportError> {
    let mut change = Vec::new();
    let (mut ca, mut cb, mut sa, mut sb) = (vec![], vec![], vec![], vec![]);
    let (mut ia, mut ib, mut ra, mut rb) = (vec![], vec![], vec![], vec![]);
    let (mut joined, mut left) = (vec![], vec![]);
    for m in d.matched.iter().filter(|m| m.changed()) {
        change.push("changed".to_owned());
        ca.push(m.case_a.clone());
        cb.push(m.case_b.clone());
        sa.push(m.severity_a.clone());
        sb.push(m.severity_b.clone());
        ia.push(Some(m.investors_a));
        ib.push(Some(m.investors_b));
        ra.push(format_fen(m.raised_a as i64));
        rb.push(format_fen(m.raised_b as i64));
        joined.push(m.accounts_joined.join(" "));
        left.push(m.accounts_left.join(" "));
    }
    for (side, ids) in [("only in A", &d.only_a), ("only in B", &d.only_b)] {
        for id in ids {
            change.push(side.to_owned());
            let (a, b) = if side == "only in A" {
                (id.clone(), String::new())
            } else {
                (String::new(), id.clone())
            };
            ca.push(a);
            cb.push(b);
            for v in [&mut sa, &mut sb, &mut ra, &mut rb, &mut joined, &mut left] {
                v.push(String::new());
            }
            ia.push(None);
            ib.push(None);
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        s("change", change),
        s("case_a", ca),
        s("case_b", cb),
        s("severity_a", sa),
        s("severity_b", sb),
        Column::new("investors_a".into(), ia),
        Column::new("investors_b".into(), ib),
        s("raised_a", ra),
        s("raised_b", rb),
        s("accounts_joined", joined),
        s("accounts_left", left),
    ])?)
}

/// Tables of the cases of a backtest: `case_summary`, `cases`, and with B `case_changes`
/// and `case_links`. Nothing when the case stage did not run.
fn backtest_case_tables(bt: &Backtest, t: &mut Tables) -> Result<(), ReportError> {
    let Some(ca) = &bt.a.cases else { return Ok(()) };
    let mut runs: Vec<(&str, &CaseRun, Option<&CaseScore>)> = vec![("A", ca, bt.case_score_a.as_ref())];
    if let Some(cb) = bt.b.as_ref().and_then(|b| b.cases.as_ref()) {
        runs.push(("B", cb, bt.case_score_b.as_ref()));
    }
    t.add("case_summary", case_summary_frame(&runs)?);
    let plain: Vec<(&str, &CaseRun)> = runs.iter().map(|r| (r.0, r.1)).collect();
    t.add("cases", cases_frame(&plain)?);
    if let Some(d) = &bt.case_diff {
        t.add("case_changes", case_changes_frame(d)?);
        t.add("case_links", case_links_frame(&[("A→B", d)])?);
    }
    Ok(())
}

/// Tables of the cases of a sweep: `sweep_cases` (one row per point), `sweep_case_links`
/// (what each point links or unlinks against the base), `base_cases`.
fn sweep_case_tables(sw: &Sweep, t: &mut Tables) -> Result<(), ReportError> {
    let Some(base) = &sw.base.cases else { return Ok(()) };
    let pts: Vec<(&fundwatch_backtest::SweepPoint, &fundwatch_backtest::CasePoint)> = sw
        .points
        .iter()
        .filter_map(|p| p.cases.as_ref().map(|c| (p, c)))
        .collect();
    let names: Vec<String> = pts.iter().map(|p| p.0.settings.to_string()).collect();
    let runs: Vec<(&str, &CaseRun, Option<&CaseScore>)> = names
        .iter()
        .zip(&pts)
        .map(|(n, p)| (n.as_str(), &p.1.run, p.1.score.as_ref()))
        .collect();
    let mut df = case_summary_frame(&runs)?;
    let mut axis_cols: Vec<Vec<String>> = vec![Vec::new(); sw.axes.len()];
    for (p, _) in &pts {
        for (i, (_, v)) in p.settings.0.iter().enumerate() {
            axis_cols[i].push(v.text.clone());
        }
    }
    let x: Vec<f64> = pts
        .iter()
        .map(|p| p.0.settings.0.first().map_or(0.0, |(_, v)| v.x))
        .collect();
    let diff_u =
        |g: &dyn Fn(&CaseDiff) -> u64| -> Vec<u64> { pts.iter().map(|p| p.1.diff.as_ref().map_or(0, g)).collect() };
    let mut extra: Vec<Column> = sw.axes.iter().zip(axis_cols).map(|(a, v)| s(&a.label, v)).collect();
    extra.push(f("x", x));
    extra.extend([
        u("links_made", diff_u(&|d| d.links_made.len() as u64)),
        u("links_broken", diff_u(&|d| d.links_broken.len() as u64)),
        u("cases_new", diff_u(&|d| d.only_b.len() as u64)),
        u("cases_gone", diff_u(&|d| d.only_a.len() as u64)),
        u("severity_changes", diff_u(&|d| d.severity_changes())),
    ]);
    for (i, c) in extra.into_iter().enumerate() {
        df.insert_column(i, c)?;
    }
    t.add("sweep_cases", df);
    let diffs: Vec<(&str, &CaseDiff)> = names
        .iter()
        .zip(&pts)
        .filter_map(|(n, p)| p.1.diff.as_ref().map(|d| (n.as_str(), d)))
        .collect();
    t.add("sweep_case_links", case_links_frame(&diffs)?);
    t.add(
        "base_case_summary",
        case_summary_frame(&[("base", base, sw.base_case_score.as_ref())])?,
    );
    t.add("base_cases", cases_frame(&[("base", base)])?);
    Ok(())
}
