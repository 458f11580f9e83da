//! Every table of a report, as polars DataFrames built from the runs' alerts.

use std::collections::BTreeMap;

use fundwatch_backtest::{Backtest, RunOutput, Sweep};
use fundwatch_engine::Alert;
use fundwatch_generate::labels::Evaluation;
use fundwatch_record::{beijing_day, format_day, parse_rfc3339_ms};
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

/// Tables of a backtest: `rules`, `segments`, `daily`, `top_accounts`, `alerts`, and with
/// `--against` `diff` and `diff_alerts`.
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
    Ok(t)
}

/// Tables of a sweep: `sweep` (one row per point and rule), `sweep_alerts`, and the base
/// config's `base_rules`, `base_daily`, `base_top_accounts`.
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
    Ok(t)
}
