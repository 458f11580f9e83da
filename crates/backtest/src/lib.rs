//! Backtests, config comparisons and threshold sweeps: the engine `replay` uses, driven over
//! a stream decoded once ([`DecodedStream`]).
//!
//! Owns what a branch office asks before deploying a threshold change: what would config A
//! raise on this stream, what would B raise instead ([`diff`]), and how do the alerts (and,
//! with labels, precision and recall) move as one or two thresholds vary ([`sweep`]).
//! Tables, plots and files are the `report` crate's job.
//!
//! Why a sweep is cheap: (1) the stream is decoded once; (2) rules do not share state, so a
//! point only needs the rules its parameters can affect ([`SweepAxis::affects`]), the others'
//! alerts come from one run at the base config; (3) points are lanes of one engine
//! ([`run_lanes`]): admission, reordering and the windows are shared, each lane keeps only its
//! own trackers and evaluations; (4) the lanes are split over all cores.
//!
//! Cases too: with `[cases] enabled` (the default) a backtest and every sweep point also run
//! the case stage ([`linking`]): how many schemes, how severe, what a threshold change links
//! or unlinks. [`cases`] scores case records against the labels' scheme lines.

pub mod cases;
pub mod linking;
pub mod stream;
pub mod sweep;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fundwatch_engine::{config_version, Alert, Clock, Engine, EngineStats};
use fundwatch_generate::labels::{Evaluation, Labels};
use fundwatch_rules::{Config, RuleId};
use serde::Serialize;

pub use cases::{read_cases, score_cases, CaseRecord, CaseScore, CasesError};
pub use linking::{case_diff, run_with_cases, CaseDiff, CaseMatch, CaseRun, LinkChange, LinkKey};
pub use stream::DecodedStream;
pub use sweep::{apply, AxisValue, Kind, Settings, SweepAxis, SweepError};

/// One engine run over a decoded stream.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub config_version: String,
    /// In the order the engine raised them.
    pub alerts: Vec<Alert>,
    pub stats: EngineStats,
    pub seconds: f64,
    /// The case stage's output, when it ran ([`run_with_cases`]).
    pub cases: Option<CaseRun>,
}

impl RunOutput {
    /// Alerts per rule id, every rule listed.
    pub fn alerts_by_rule(&self) -> BTreeMap<String, u64> {
        count_by_rule(&self.alerts).0
    }

    /// Distinct accounts with an alert, per rule id.
    pub fn accounts_by_rule(&self) -> BTreeMap<String, u64> {
        count_by_rule(&self.alerts).1
    }
}

/// Alerts and distinct accounts per rule id, every rule listed.
fn count_by_rule(alerts: &[Alert]) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut n: BTreeMap<String, u64> = RuleId::ALL.iter().map(|r| (r.as_str().to_owned(), 0)).collect();
    let mut acc: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in alerts {
        *n.entry(a.rule.clone()).or_default() += 1;
        acc.entry(a.rule.as_str()).or_default().insert(a.account.as_str());
    }
    let accounts = n
        .keys()
        .map(|r| (r.clone(), acc.get(r.as_str()).map_or(0, |s| s.len() as u64)))
        .collect();
    (n, accounts)
}

/// Run the engine over the whole stream (then flush), as `replay` does.
pub fn run(stream: &DecodedStream, config: Arc<Config>, clock: Clock) -> RunOutput {
    // One config is one lane: run_lanes never falls back for its first config.
    run_lanes(stream, &[config], clock)
        .pop()
        .unwrap_or_else(|| unreachable!("one config in, one run out"))
}

/// Run several configs over the stream in one pass, as lanes of one engine (configs whose
/// `[engine]` or `[memo]` differ from the first get an engine of their own). Each output is
/// what [`run`] gives for that config; `seconds` is the whole pass's.
pub fn run_lanes(stream: &DecodedStream, configs: &[Arc<Config>], clock: Clock) -> Vec<RunOutput> {
    let Some(first) = configs.first() else {
        return Vec::new();
    };
    let start = Instant::now();
    let mut engine = Engine::new(first.clone());
    engine.set_clock(clock);
    // Lane index per config, or None: its own engine.
    let lanes: Vec<Option<usize>> = std::iter::once(Some(0))
        .chain(configs[1..].iter().map(|c| engine.add_lane(c.clone()).ok()))
        .collect();
    let mut alerts = Vec::new();
    stream.for_each(|tx| engine.process(tx, &mut alerts));
    engine.flush(&mut alerts);
    let seconds = start.elapsed().as_secs_f64();
    configs
        .iter()
        .zip(lanes)
        .map(|(cfg, lane)| match lane {
            Some(0) => RunOutput {
                config_version: engine.config_version().to_owned(),
                alerts: std::mem::take(&mut alerts),
                stats: engine.stats().clone(),
                seconds,
                cases: None,
            },
            Some(i) => RunOutput {
                config_version: engine.lane_config_version(i).to_owned(),
                alerts: engine.take_lane_alerts(i),
                stats: engine.lane_stats(i),
                seconds,
                cases: None,
            },
            None => run(stream, cfg.clone(), clock),
        })
        .collect()
}

/// What identifies "the same alert" under two configs: the rule, the account and the record
/// that completed the pattern (`alert_id` also hashes the config version, so it always differs).
pub type AlertKey = (String, String, String);

pub fn key(a: &Alert) -> AlertKey {
    (a.rule.clone(), a.account.clone(), a.triggered_by.clone())
}

/// Per-rule counts of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffCounts {
    pub rule: String,
    pub only_a: u64,
    pub only_b: u64,
    pub both: u64,
    pub accounts_only_a: u64,
    pub accounts_only_b: u64,
    pub accounts_both: u64,
}

/// Alerts config A raises that B does not, and the reverse.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub by_rule: Vec<DiffCounts>,
    pub only_a: Vec<Alert>,
    pub only_b: Vec<Alert>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.only_a.is_empty() && self.only_b.is_empty()
    }
}

/// Compare two runs alert by alert ([`key`]) and account by account.
pub fn diff(a: &[Alert], b: &[Alert]) -> Diff {
    let ka: BTreeSet<AlertKey> = a.iter().map(key).collect();
    let kb: BTreeSet<AlertKey> = b.iter().map(key).collect();
    let only_a: Vec<Alert> = a.iter().filter(|x| !kb.contains(&key(x))).cloned().collect();
    let only_b: Vec<Alert> = b.iter().filter(|x| !ka.contains(&key(x))).cloned().collect();
    let accounts = |v: &[Alert], rule: &str| -> BTreeSet<String> {
        v.iter().filter(|x| x.rule == rule).map(|x| x.account.clone()).collect()
    };
    let by_rule = RuleId::ALL
        .iter()
        .map(|r| {
            let rule = r.as_str();
            let count = |v: &[Alert]| v.iter().filter(|x| x.rule == rule).count() as u64;
            let (aa, ab) = (accounts(a, rule), accounts(b, rule));
            DiffCounts {
                rule: rule.to_owned(),
                only_a: count(&only_a),
                only_b: count(&only_b),
                both: ka.iter().filter(|k| k.0 == rule && kb.contains(*k)).count() as u64,
                accounts_only_a: aa.difference(&ab).count() as u64,
                accounts_only_b: ab.difference(&aa).count() as u64,
                accounts_both: aa.intersection(&ab).count() as u64,
            }
        })
        .collect();
    Diff {
        by_rule,
        only_a,
        only_b,
    }
}

/// Account-level precision, recall and F1 of a run's alerts.
pub fn evaluate(labels: &Labels, alerts: &[Alert]) -> Evaluation {
    labels.evaluate(alerts.iter().map(|a| (a.rule.as_str(), a.account.as_str())))
}

/// A backtest of config A, optionally against config B.
pub struct Backtest {
    pub a: RunOutput,
    pub b: Option<RunOutput>,
    pub diff: Option<Diff>,
    pub eval_a: Option<Evaluation>,
    pub eval_b: Option<Evaluation>,
    /// Both runs had the case stage: how B's cases differ from A's.
    pub case_diff: Option<CaseDiff>,
    /// With labels holding scheme lines: the cases scored against them.
    pub case_score_a: Option<CaseScore>,
    pub case_score_b: Option<CaseScore>,
}

/// One run, with the case stage when its config's `[cases]` is enabled.
pub fn run_config(stream: &DecodedStream, config: Arc<Config>, clock: Clock) -> RunOutput {
    if config.cases.enabled {
        run_with_cases(stream, config, clock)
    } else {
        run(stream, config, clock)
    }
}

/// Cases scored against the labels, when there are scheme lines to score them by.
pub fn score_run(labels: Option<&Labels>, run: &RunOutput) -> Option<CaseScore> {
    let labels = labels.filter(|l| !l.schemes.is_empty())?;
    run.cases.as_ref().map(|c| score_cases(labels, &c.scored()))
}

/// Run A (and B, on a second core) over the stream; each with the case stage when its
/// config enables it.
pub fn backtest(
    stream: &DecodedStream,
    a: Arc<Config>,
    b: Option<Arc<Config>>,
    labels: Option<&Labels>,
    clock: Clock,
) -> Backtest {
    let (ra, rb) = std::thread::scope(|s| {
        let hb = b.map(|b| s.spawn(move || run_config(stream, b, clock)));
        let ra = run_config(stream, a, clock);
        // A panic in the engine is a bug; surface it rather than report half a comparison.
        let rb = hb.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        (ra, rb)
    });
    let diff = rb.as_ref().map(|rb| diff(&ra.alerts, &rb.alerts));
    let case_diff = match (&ra.cases, rb.as_ref().and_then(|b| b.cases.as_ref())) {
        (Some(ca), Some(cb)) => Some(case_diff(ca, cb)),
        _ => None,
    };
    Backtest {
        eval_a: labels.map(|l| evaluate(l, &ra.alerts)),
        eval_b: labels.and_then(|l| rb.as_ref().map(|rb| evaluate(l, &rb.alerts))),
        case_score_a: score_run(labels, &ra),
        case_score_b: rb.as_ref().and_then(|rb| score_run(labels, rb)),
        case_diff,
        a: ra,
        b: rb,
        diff,
    }
}

/// One point of a sweep: the figures a full backtest at these values gives.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub settings: Settings,
    /// `config_version` a deployment of this config would stamp on its alerts.
    pub config_version: String,
    /// Every rule: affected rules from this point's run, the others from the base run.
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub accounts_by_rule: BTreeMap<String, u64>,
    /// With labels, every rule.
    pub evaluation: Option<Evaluation>,
    /// The affected rules' alerts at this point (ids as a deployment of it would give).
    pub alerts: Vec<Alert>,
    pub seconds: f64,
    /// The case stage at this point (a full run of the point's config), when enabled.
    pub cases: Option<CasePoint>,
}

/// The cases of one sweep point.
#[derive(Debug, Clone)]
pub struct CasePoint {
    pub run: CaseRun,
    /// Against the base config's cases (when the base ran the case stage).
    pub diff: Option<CaseDiff>,
    pub score: Option<CaseScore>,
}

/// A finished sweep.
pub struct Sweep {
    pub axes: Vec<SweepAxis>,
    /// Rules re-evaluated at every point.
    pub affected: Vec<RuleId>,
    /// The base config's full run (with its cases, when enabled).
    pub base: RunOutput,
    pub base_evaluation: Option<Evaluation>,
    pub base_case_score: Option<CaseScore>,
    /// Grid order: the first axis varies slowest.
    pub points: Vec<SweepPoint>,
    pub threads: usize,
    pub seconds: f64,
}

/// The grid of settings for one or two axes.
pub fn grid(axes: &[SweepAxis]) -> Vec<Settings> {
    let mut out = vec![Settings(Vec::new())];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|s| {
                axis.values.iter().map(move |v| {
                    let mut next = s.0.clone();
                    next.push((axis.path.clone(), v.clone()));
                    Settings(next)
                })
            })
            .collect();
    }
    out
}

/// Evaluate the stream at every point of the grid of `axes` around `base`.
///
/// Every point's config is validated first (an invalid value stops the sweep before any
/// work, naming the value and the field's allowed range).
pub fn sweep(
    stream: &DecodedStream,
    base: Arc<Config>,
    axes: Vec<SweepAxis>,
    labels: Option<&Labels>,
    threads: usize,
    clock: Clock,
) -> Result<Sweep, SweepError> {
    let start = Instant::now();
    match axes.len() {
        1 | 2 => {}
        n => return Err(SweepError::TooManyAxes(n)),
    }
    if axes.len() == 2 && axes[0].path == axes[1].path {
        return Err(SweepError::Repeated(axes[0].path.clone()));
    }
    let mut affected: Vec<RuleId> = axes.iter().flat_map(|a| a.affects()).collect();
    affected.sort();
    affected.dedup();
    let settings = grid(&axes);
    // (full config, isolated config) per point: the isolated one runs only the affected
    // rules but carries the full config's version, so its alerts are the ones a deployment
    // of the full config would raise, ids included.
    let mut configs = Vec::with_capacity(settings.len());
    let mut fulls = Vec::with_capacity(settings.len());
    for s in &settings {
        let full = apply(&base, s)?;
        let version = config_version(&full);
        fulls.push(Arc::new(full.clone()));
        let mut iso = full;
        iso.version = version.clone();
        disable_except(&mut iso, &affected);
        configs.push((version, Arc::new(iso)));
    }
    // Task 0 is the base run; task i + 1 is point i. Each thread takes a contiguous share of
    // the tasks and runs them as lanes of ONE engine: one pass of admission, reordering and
    // window upkeep for all of them, each lane only its own rule trackers and evaluations.
    let mut tasks: Vec<Arc<Config>> = vec![base.clone()];
    tasks.extend(configs.iter().map(|c| c.1.clone()));
    let threads = threads.clamp(1, tasks.len());
    let per = tasks.len().div_ceil(threads);
    let results: Mutex<Vec<Option<RunOutput>>> = Mutex::new(vec![None; tasks.len()]);
    std::thread::scope(|s| {
        for (chunk, group) in tasks.chunks(per).enumerate() {
            let results = &results;
            s.spawn(move || {
                let outs = run_lanes(stream, group, clock);
                if let Ok(mut r) = results.lock() {
                    for (i, out) in outs.into_iter().enumerate() {
                        r[chunk * per + i] = Some(out);
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter();
    let base_run = results
        .next()
        .flatten()
        .unwrap_or_else(|| run(stream, base.clone(), clock));
    let is_affected = |a: &Alert| RuleId::parse(&a.rule).is_some_and(|r| affected.contains(&r));
    let kept: Vec<Alert> = base_run.alerts.iter().filter(|a| !is_affected(a)).cloned().collect();
    let mut points = Vec::with_capacity(settings.len());
    for ((s, (version, cfg)), out) in settings.into_iter().zip(configs).zip(results) {
        let out = out.unwrap_or_else(|| run(stream, cfg, clock));
        let alerts: Vec<Alert> = out.alerts.into_iter().filter(|a| is_affected(a)).collect();
        let mut all = kept.clone();
        all.extend(alerts.iter().cloned());
        let (alerts_by_rule, accounts_by_rule) = count_by_rule(&all);
        points.push(SweepPoint {
            settings: s,
            config_version: version,
            alerts_by_rule,
            accounts_by_rule,
            evaluation: labels.map(|l| evaluate(l, &all)),
            alerts,
            seconds: out.seconds,
            cases: None,
        });
    }
    let mut base_run = base_run;
    sweep_cases(
        stream,
        &base,
        &axes,
        &fulls,
        &mut base_run,
        &mut points,
        labels,
        threads,
        clock,
    );
    Ok(Sweep {
        axes,
        affected,
        base_evaluation: labels.map(|l| evaluate(l, &base_run.alerts)),
        base_case_score: score_run(labels, &base_run),
        base: base_run,
        points,
        threads,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The case stage of a sweep, when the base or any point enables it. Axes of `[cases]`
/// only: one traced run, a linker per point over its traces. Otherwise each point is a
/// full run of its config with the case stage (the lanes share no traces), spread over
/// `threads`.
#[allow(clippy::too_many_arguments)]
fn sweep_cases(
    stream: &DecodedStream,
    base: &Arc<Config>,
    axes: &[SweepAxis],
    fulls: &[Arc<Config>],
    base_run: &mut RunOutput,
    points: &mut [SweepPoint],
    labels: Option<&Labels>,
    threads: usize,
    clock: Clock,
) {
    if !base.cases.enabled && !fulls.iter().any(|c| c.cases.enabled) {
        return;
    }
    let mut runs: Vec<Option<CaseRun>> = if axes.iter().all(SweepAxis::cases_only) {
        let variants: Vec<_> = fulls.iter().map(|c| c.cases.clone()).collect();
        let (b, per) = linking::link_variants(stream, base.clone(), &variants, clock);
        let mut v = vec![b.cases.filter(|_| base.cases.enabled)];
        v.extend(per.into_iter().zip(fulls).map(|(r, c)| c.cases.enabled.then_some(r)));
        v
    } else {
        let mut tasks: Vec<Arc<Config>> = vec![base.clone()];
        tasks.extend(fulls.iter().cloned());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let out: Mutex<Vec<Option<CaseRun>>> = Mutex::new(vec![None; tasks.len()]);
        std::thread::scope(|s| {
            for _ in 0..threads.clamp(1, tasks.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(cfg) = tasks.get(i) else { break };
                    if !cfg.cases.enabled {
                        continue;
                    }
                    let r = run_with_cases(stream, cfg.clone(), clock).cases;
                    if let Ok(mut o) = out.lock() {
                        o[i] = r;
                    }
                });
            }
        });
        out.into_inner().unwrap_or_else(|e| e.into_inner())
    };
    let base_cases = runs.first_mut().and_then(Option::take);
    for (pt, run) in points.iter_mut().zip(runs.into_iter().skip(1)) {
        pt.cases = run.map(|run| CasePoint {
            diff: base_cases.as_ref().map(|b| case_diff(b, &run)),
            score: labels
                .filter(|l| !l.schemes.is_empty())
                .map(|l| score_cases(l, &run.scored())),
            run,
        });
    }
    base_run.cases = base_cases;
}

/// Switch off every rule not in `keep` (their alerts come from the base run).
fn disable_except(cfg: &mut Config, keep: &[RuleId]) {
    let r = &mut cfg.rules;
    let on = |id: RuleId| keep.contains(&id);
    if !on(RuleId::ScatterInConcentratedOut) {
        off(&mut r.scatter_in_concentrated_out, |p| p.enabled = false);
    }
    if !on(RuleId::PeriodicBatchSmallOut) {
        off(&mut r.periodic_batch_small_out, |p| p.enabled = false);
    }
    if !on(RuleId::RapidPassThrough) {
        off(&mut r.rapid_pass_through, |p| p.enabled = false);
    }
    if !on(RuleId::Structuring) {
        off(&mut r.structuring, |p| p.enabled = false);
    }
    if !on(RuleId::LargeValue) {
        r.large_value.enabled = false;
    }
}

/// Disable a rule in its base parameters and in every override (an override could switch
/// it back on for a segment).
fn off<P>(section: &mut fundwatch_rules::config::RuleSection<P>, f: impl Fn(&mut P)) {
    f(&mut section.params);
    for o in &mut section.overrides {
        o.set.insert("enabled".into(), toml::Value::Boolean(false));
    }
}

/// Cores to use by default.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
