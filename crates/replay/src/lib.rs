//! Offline replay: the same engine as the Kafka service, over a recorded stream file.
//!
//! Owns file formats ([`source`]), dead-letter files, the alert file and the run summary.
//! Deterministic: the same file and config give the same alerts (ids included) every run.

pub mod source;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundwatch_cases::{route_alert, route_case, Linker, LinkerStats, Routed, LINK_EVERY};
use fundwatch_engine::{Alert, Clock, Engine, EngineStats};
use fundwatch_rules::{Config, RuleId};
use serde::Serialize;

pub use source::{read_stream, read_stream_with, Format, Input, Item};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot open {0}: {1}")]
    Open(String, std::io::Error),
    #[error("cannot read input: {0}")]
    Read(std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
    #[error("unknown input format .{0} (use .jsonl, .csv or .parquet)")]
    UnknownFormat(String),
    #[error("cannot read CSV: {0}")]
    Csv(String),
    #[error("cannot read Parquet: {0}")]
    Parquet(String),
    #[error("the [input] mapping reads JSON Lines (Debezium events, a bank's JSON); {0} is CSV or Parquet, which are read by the spec's column names: leave [input] at its defaults for it")]
    MappingNeedsJson(String),
    #[error("[input]: {0}")]
    Input(String),
    #[error("case linking: {0}")]
    Linker(String),
}

pub struct ReplayOptions {
    pub input: PathBuf,
    pub alerts: PathBuf,
    pub dead_letter: Option<PathBuf>,
    /// Hits that scored below confirmation, as alert records (for tuning).
    pub near_misses: Option<PathBuf>,
    pub config: Arc<Config>,
    /// Case records (every version, in order), from the linking stage over the engine's
    /// account traces.
    pub cases: Option<PathBuf>,
    /// The account traces themselves (what the Kafka service writes to its trace topic).
    pub traces: Option<PathBuf>,
    /// One JSON Lines file per office topic of `[routing]` (`DIR/<topic>.jsonl`): alerts,
    /// cases and notices for the regions it serves.
    pub route_dir: Option<PathBuf>,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    pub clock: Clock,
}

/// What a replay did, for people and for scripts (`Serialize`).
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub input: String,
    pub records_read: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Change events that are not transactions (`[input] format = "debezium"`: update,
    /// delete, tombstone, truncate, message), passed over and not dead-lettered.
    pub skipped_by_kind: BTreeMap<String, u64>,
    pub late: u64,
    pub non_cny_passed_over: u64,
    pub alerts: u64,
    pub alerts_by_rule: BTreeMap<String, u64>,
    pub hits_below_score_by_rule: BTreeMap<String, u64>,
    pub suppressed_in_episode_by_rule: BTreeMap<String, u64>,
    /// Full rule evaluations run (records that passed a rule's cheap gates).
    pub evaluations_by_rule: BTreeMap<String, u64>,
    pub seconds: f64,
    pub records_per_second: f64,
    pub held_rows_at_end: u64,
    pub window_state_bytes_at_end: usize,
    /// Dictionary sizes at the end (bounded state: names evicted, ids reused).
    pub dictionaries_at_end: fundwatch_engine::DictionaryStats,
    pub config_version: String,
    /// With `--cases`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cases: Option<CasesSummary>,
}

/// What the linking stage did in a replay.
#[derive(Debug, Clone, Serialize)]
pub struct CasesSummary {
    pub open_cases: u64,
    pub open_by_severity: BTreeMap<String, u64>,
    /// Accounts in play (traced) at the end.
    pub traced_accounts_at_end: u64,
    pub linker: LinkerStats,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "replay of {}", self.input)?;
        writeln!(
            f,
            "  records read   {:>12}   accepted {}   rejected {}   late {}   non-CNY passed over {}",
            self.records_read, self.accepted, self.rejected, self.late, self.non_cny_passed_over
        )?;
        for (reason, n) in &self.rejected_by_reason {
            writeln!(f, "    rejected: {reason:<22} {n:>10}")?;
        }
        for (kind, n) in &self.skipped_by_kind {
            writeln!(f, "    skipped:  {kind:<22} {n:>10}")?;
        }
        writeln!(
            f,
            "  alerts         {:>12}   (config {})",
            self.alerts, self.config_version
        )?;
        for (rule, n) in &self.alerts_by_rule {
            writeln!(f, "    {rule:<30} {n:>8}")?;
        }
        if let Some(c) = &self.cases {
            let sev: Vec<String> = c.open_by_severity.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(
                f,
                "  cases          {:>12}   ({}; {} versions; {} alerts raised by a link; {} traces)",
                c.open_cases,
                if sev.is_empty() {
                    "none".to_owned()
                } else {
                    sev.join(", ")
                },
                c.linker.case_versions,
                c.linker.linked_alerts,
                c.linker.traces
            )?;
        }
        writeln!(
            f,
            "  time           {:>11.2}s   {:.0} records/s",
            self.seconds, self.records_per_second
        )?;
        let per = if self.held_rows_at_end > 0 {
            self.window_state_bytes_at_end as f64 / self.held_rows_at_end as f64
        } else {
            0.0
        };
        write!(
            f,
            "  window state   {:>12} rows held, {:.1} MiB ({per:.1} bytes/row)",
            self.held_rows_at_end,
            self.window_state_bytes_at_end as f64 / (1024.0 * 1024.0)
        )?;
        let d = &self.dictionaries_at_end;
        write!(
            f,
            "\n  dictionaries   {} accounts, {} counterparties live; {} + {} ids free; {} + {} evicted",
            d.accounts,
            d.counterparties,
            d.accounts_free,
            d.counterparties_free,
            d.accounts_evicted,
            d.counterparties_evicted
        )
    }
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    position: u64,
    code: &'static str,
    reason: String,
    raw: Cow<'a, str>,
    /// Records refused on their event time (CSV and Parquet rows have no raw line).
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<&'a str>,
}

/// The dead-letter file and the rejection counts of a replay.
struct Rejections {
    out: Option<BufWriter<File>>,
    count: u64,
    by_reason: BTreeMap<String, u64>,
}

impl Rejections {
    fn push(&mut self, dl: &DeadLetter<'_>, err: &mut Option<ReplayError>) {
        self.count += 1;
        *self.by_reason.entry(dl.code.to_owned()).or_default() += 1;
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = write_line(out, dl) {
                err.get_or_insert(ReplayError::Write("dead-letter file".into(), e));
            }
        }
    }

    /// Dead letters of the records the engine's event-time guards refused.
    fn take_from(&mut self, engine: &mut Engine, err: &mut Option<ReplayError>) {
        for r in engine.take_time_rejections() {
            let dl = DeadLetter {
                position: r.position,
                code: r.reason.code(),
                reason: r.reason.to_string(),
                raw: String::from_utf8_lossy(&r.raw),
                tx_id: Some(&r.tx_id),
            };
            self.push(&dl, err);
        }
    }
}

use std::borrow::Cow;

fn create(path: &Path) -> Result<BufWriter<File>, ReplayError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| ReplayError::Write(path.display().to_string(), e))
}

fn write_line(out: &mut impl Write, v: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

fn by_rule(counts: &[u64; 5]) -> BTreeMap<String, u64> {
    RuleId::ALL
        .iter()
        .zip(counts)
        .map(|(r, n)| (r.as_str().to_owned(), *n))
        .collect()
}

/// Run the engine over a file; alerts and dead letters are written as they happen.
pub fn replay(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let mut engine = Engine::new(opts.config.clone());
    engine.set_clock(opts.clock);
    engine.keep_near_misses(opts.near_misses.is_some());
    let linking = opts.cases.is_some() || opts.traces.is_some() || opts.route_dir.is_some();
    engine.enable_traces(linking);
    let mut cases = linking.then(|| CaseStage::new(opts));
    if let Some(c) = cases.as_mut() {
        c.open()?;
    }
    let mut near_out = opts.near_misses.as_deref().map(create).transpose()?;
    let mut alerts_out = create(&opts.alerts)?;
    let decoder = opts
        .config
        .input
        .decoder()
        .map_err(|e| ReplayError::Input(e.to_string()))?;
    let mut rejections = Rejections {
        out: opts.dead_letter.as_deref().map(create).transpose()?,
        count: 0,
        by_reason: BTreeMap::new(),
    };
    let mut skipped_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let alerts_path = opts.alerts.display().to_string();
    let mut read = 0u64;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut write_err: Option<ReplayError> = None;
    let bar = progress_bar(opts.progress, &opts.input);
    let start = Instant::now();

    let mut emit = |alerts: &mut Vec<Alert>, write_err: &mut Option<ReplayError>| {
        for a in alerts.drain(..) {
            let res = serde_json::to_writer(&mut alerts_out, &a)
                .map_err(std::io::Error::other)
                .and_then(|_| alerts_out.write_all(b"\n"));
            if let Err(e) = res {
                write_err.get_or_insert(ReplayError::Write(alerts_path.clone(), e));
            }
        }
    };

    read_stream_with(
        &opts.input,
        &decoder,
        |item| {
            read += 1;
            match item {
                Input::Record { tx, position, raw } => {
                    engine.process_from(&tx, fundwatch_engine::Origin { position, raw }, &mut alerts);
                    if engine.has_time_rejections() {
                        rejections.take_from(&mut engine, &mut write_err);
                    }
                    if let Some(c) = cases.as_mut() {
                        c.step(&mut engine, &mut alerts, &mut write_err, false);
                    }
                    if !alerts.is_empty() {
                        emit(&mut alerts, &mut write_err);
                    }
                    if let Some(out) = near_out.as_mut() {
                        for a in engine.take_near_misses() {
                            if let Err(e) = write_line(out, &a) {
                                write_err.get_or_insert(ReplayError::Write("near-miss file".into(), e));
                            }
                        }
                    }
                }
                Input::Rejected { position, reason, raw } => {
                    let dl = DeadLetter {
                        position,
                        code: reason.code(),
                        reason: reason.to_string(),
                        raw: String::from_utf8_lossy(&raw),
                        tx_id: None,
                    };
                    rejections.push(&dl, &mut write_err);
                }
                Input::Skipped { kind, .. } => {
                    *skipped_by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
                }
            }
        },
        |done| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        },
    )?;
    engine.flush(&mut alerts);
    rejections.take_from(&mut engine, &mut write_err);
    if let Some(c) = cases.as_mut() {
        c.step(&mut engine, &mut alerts, &mut write_err, true);
    }
    emit(&mut alerts, &mut write_err);
    if let Some(mut out) = near_out {
        for a in engine.take_near_misses() {
            write_line(&mut out, &a).map_err(|e| ReplayError::Write("near-miss file".into(), e))?;
        }
        out.flush()
            .map_err(|e| ReplayError::Write("near-miss file".into(), e))?;
    }
    if let Some(e) = write_err {
        return Err(e);
    }
    alerts_out
        .flush()
        .map_err(|e| ReplayError::Write(opts.alerts.display().to_string(), e))?;
    if let Some(mut d) = rejections.out.take() {
        d.flush()
            .map_err(|e| ReplayError::Write("dead-letter file".into(), e))?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let cases_summary = match cases {
        Some(c) => Some(c.finish(&engine)?),
        None => None,
    };
    let elapsed = start.elapsed();
    let mut summary = summarise(
        opts,
        engine.stats(),
        &engine,
        read,
        rejections.count,
        rejections.by_reason,
        elapsed,
    );
    summary.skipped_by_kind = skipped_by_kind;
    if let Some(c) = cases_summary {
        // Alerts a link raised are in the alert file too.
        summary.alerts += c.linker.linked_alerts;
        *summary
            .alerts_by_rule
            .entry(RuleId::PeriodicBatchSmallOut.as_str().to_owned())
            .or_default() += c.linker.linked_alerts;
        summary.cases = Some(c);
    }
    Ok(summary)
}

/// The linking stage of a replay and its files.
///
/// The linker runs on a thread of its own, a batch behind the engine: the engine hands it the
/// traces of every [`LINK_EVERY`] records and meanwhile goes on with the next ones, as the
/// Kafka service's linker (a consumer of its own) does. Batches are the same as when linking
/// in line, so the case file is the same byte for byte; a batch's linked alerts are written
/// when the next batch is handed over (or at the end), a fixed point in the alert file.
/// All files are written by the engine's thread, in a fixed order.
struct CaseStage<'o> {
    opts: &'o ReplayOptions,
    worker: Option<LinkWorker>,
    /// A batch was handed over and its result not collected yet.
    in_flight: bool,
    pending: Vec<fundwatch_engine::AccountTrace>,
    since_link: u32,
    routing: bool,
    cases: Option<BufWriter<File>>,
    traces: Option<BufWriter<File>>,
    routes: BTreeMap<String, BufWriter<File>>,
}

/// The linker's thread and its two channels.
struct LinkWorker {
    batches: std::sync::mpsc::SyncSender<Vec<fundwatch_engine::AccountTrace>>,
    results: std::sync::mpsc::Receiver<Linked>,
    thread: std::thread::JoinHandle<Linker>,
}

/// What the linker made of one batch: its alerts, the case versions as JSON lines, and
/// their office copies.
struct Linked {
    alerts: Vec<Alert>,
    case_lines: Vec<u8>,
    routed: Vec<Routed>,
}

impl LinkWorker {
    fn start(config: Arc<Config>, clock: Clock, routing: bool) -> Result<LinkWorker, ReplayError> {
        let (batches, batch_rx) = std::sync::mpsc::sync_channel::<Vec<fundwatch_engine::AccountTrace>>(1);
        let (result_tx, results) = std::sync::mpsc::sync_channel::<Linked>(1);
        let thread = std::thread::Builder::new()
            .name("case-linker".into())
            .spawn(move || {
                let mut linker = Linker::new(config.cases.clone());
                linker.set_clock(clock);
                for batch in batch_rx {
                    linker.apply_all(batch);
                    let mut done = Linked {
                        alerts: linker.take_alerts(),
                        case_lines: Vec::new(),
                        routed: Vec::new(),
                    };
                    for c in linker.take_cases() {
                        // Writing to a Vec cannot fail; a case that cannot be serialised
                        // would be a bug, and its line is then missing rather than torn.
                        let _ = write_line(&mut done.case_lines, &c);
                        if routing {
                            done.routed.extend(route_case(&config.routing, &c));
                        }
                    }
                    if result_tx.send(done).is_err() {
                        break;
                    }
                }
                linker
            })
            .map_err(|e| ReplayError::Linker(format!("cannot start the case linker's thread: {e}")))?;
        Ok(LinkWorker {
            batches,
            results,
            thread,
        })
    }
}

impl<'o> CaseStage<'o> {
    fn new(opts: &'o ReplayOptions) -> CaseStage<'o> {
        CaseStage {
            opts,
            worker: None,
            in_flight: false,
            pending: Vec::new(),
            since_link: 0,
            routing: opts.route_dir.is_some() && !opts.config.routing.is_empty(),
            cases: None,
            traces: None,
            routes: BTreeMap::new(),
        }
    }

    fn open(&mut self) -> Result<(), ReplayError> {
        self.cases = self.opts.cases.as_deref().map(create).transpose()?;
        self.traces = self.opts.traces.as_deref().map(create).transpose()?;
        if let Some(dir) = &self.opts.route_dir {
            std::fs::create_dir_all(dir).map_err(|e| ReplayError::Write(dir.display().to_string(), e))?;
        }
        self.worker = Some(LinkWorker::start(
            self.opts.config.clone(),
            self.opts.clock,
            self.opts.route_dir.is_some(),
        )?);
        Ok(())
    }

    /// After each record: collect the engine's new traces; every [`LINK_EVERY`] records
    /// (and at the end, `last`) they go to the linker as one batch, so each case changed in
    /// between is written once. Linked alerts join `alerts`.
    #[inline]
    fn step(&mut self, engine: &mut Engine, alerts: &mut Vec<Alert>, err: &mut Option<ReplayError>, last: bool) {
        self.since_link += 1;
        // Most records: no trace, no batch due, no alert — nothing else to do here (this
        // runs on every record, so it stays small).
        if engine.has_traces() || last || self.since_link >= LINK_EVERY || (self.routing && !alerts.is_empty()) {
            self.step_slow(engine, alerts, err, last);
        }
    }

    #[inline(never)]
    fn step_slow(&mut self, engine: &mut Engine, alerts: &mut Vec<Alert>, err: &mut Option<ReplayError>, last: bool) {
        let before = self.pending.len();
        engine.drain_traces(&mut self.pending);
        if let Some(out) = self.traces.as_mut() {
            for t in &self.pending[before..] {
                if let Err(e) = write_line(out, t) {
                    err.get_or_insert(ReplayError::Write("trace file".into(), e));
                }
            }
        }
        if !last && self.since_link < LINK_EVERY {
            if !alerts.is_empty() {
                self.route_alerts(alerts, err);
            }
            return;
        }
        self.since_link = 0;
        let batch = std::mem::take(&mut self.pending);
        let handed = self.worker.as_ref().is_some_and(|w| w.batches.send(batch).is_ok());
        if !handed {
            err.get_or_insert(ReplayError::Linker("the case linker stopped".into()));
            return;
        }
        // The previous batch's result (the linker had this batch's records to do it), then,
        // at the end, this one's.
        let mut done = Vec::new();
        if self.in_flight {
            done.extend(self.collect(err));
        }
        self.in_flight = true;
        if last {
            done.extend(self.collect(err));
            self.in_flight = false;
        }
        let mut routed: Vec<Routed> = Vec::new();
        for d in done {
            alerts.extend(d.alerts);
            if let Some(out) = self.cases.as_mut() {
                if let Err(e) = out.write_all(&d.case_lines) {
                    err.get_or_insert(ReplayError::Write("case file".into(), e));
                }
            }
            routed.extend(d.routed);
        }
        self.route_alerts(alerts, err);
        if self.opts.route_dir.is_some() {
            for r in routed {
                self.write_routed(r, err);
            }
        }
    }

    fn collect(&mut self, err: &mut Option<ReplayError>) -> Option<Linked> {
        let got = self.worker.as_ref().and_then(|w| w.results.recv().ok());
        if got.is_none() {
            err.get_or_insert(ReplayError::Linker("the case linker stopped".into()));
        }
        got
    }

    fn route_alerts(&mut self, alerts: &[Alert], err: &mut Option<ReplayError>) {
        if !self.routing {
            return;
        }
        for a in alerts {
            if let Some(r) = route_alert(&self.opts.config.routing, a) {
                self.write_routed(r, err);
            }
        }
    }

    fn write_routed(&mut self, r: Routed, err: &mut Option<ReplayError>) {
        let Some(dir) = &self.opts.route_dir else { return };
        let out = match self.routes.get_mut(&r.topic) {
            Some(o) => o,
            None => match create(&dir.join(format!("{}.jsonl", r.topic))) {
                Ok(o) => self.routes.entry(r.topic.clone()).or_insert(o),
                Err(e) => {
                    err.get_or_insert(e);
                    return;
                }
            },
        };
        let res = out.write_all(r.value.as_bytes()).and_then(|_| out.write_all(b"\n"));
        if let Err(e) = res {
            err.get_or_insert(ReplayError::Write(format!("office file {}", r.topic), e));
        }
    }

    fn finish(mut self, engine: &Engine) -> Result<CasesSummary, ReplayError> {
        for (name, out) in [("case file", self.cases.as_mut()), ("trace file", self.traces.as_mut())] {
            if let Some(o) = out {
                o.flush().map_err(|e| ReplayError::Write(name.into(), e))?;
            }
        }
        for (topic, o) in &mut self.routes {
            o.flush()
                .map_err(|e| ReplayError::Write(format!("office file {topic}"), e))?;
        }
        let worker = self
            .worker
            .take()
            .ok_or_else(|| ReplayError::Linker("the case linker was not started".into()))?;
        drop(worker.batches);
        let linker = worker
            .thread
            .join()
            .map_err(|_| ReplayError::Linker("the case linker's thread panicked".into()))?;
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for c in linker.open_cases() {
            *by.entry(c.severity.clone()).or_default() += 1;
        }
        let stats = linker.stats();
        Ok(CasesSummary {
            open_cases: stats.open_cases,
            open_by_severity: by,
            traced_accounts_at_end: engine.traced_accounts() as u64,
            linker: stats,
        })
    }
}

fn summarise(
    opts: &ReplayOptions,
    s: &EngineStats,
    engine: &Engine,
    read: u64,
    rejected: u64,
    rejected_by_reason: BTreeMap<String, u64>,
    elapsed: Duration,
) -> ReplaySummary {
    let (held, bytes) = engine.state_size();
    let secs = elapsed.as_secs_f64();
    let guard = engine.time_guard_stats();
    ReplaySummary {
        input: opts.input.display().to_string(),
        records_read: read,
        // Records the event-time guards refused are counted as rejected, not accepted.
        accepted: s.records - guard.future_time - guard.too_old,
        rejected,
        rejected_by_reason,
        skipped_by_kind: BTreeMap::new(),
        late: s.late,
        non_cny_passed_over: s.non_cny,
        alerts: s.alerts.iter().sum(),
        alerts_by_rule: by_rule(&s.alerts),
        hits_below_score_by_rule: by_rule(&s.below_score),
        suppressed_in_episode_by_rule: by_rule(&s.suppressed),
        evaluations_by_rule: by_rule(&s.evaluations),
        seconds: secs,
        records_per_second: if secs > 0.0 { read as f64 / secs } else { 0.0 },
        held_rows_at_end: held,
        window_state_bytes_at_end: bytes,
        dictionaries_at_end: engine.dictionary_stats(),
        config_version: engine.config_version().to_owned(),
        cases: None,
    }
}

/// Decode-only pass over the same file (no engine): the baseline replay's rate is compared
/// against. Returns (records, seconds).
pub fn decode_only(input: &Path) -> Result<(u64, f64), ReplayError> {
    let start = Instant::now();
    let mut n = 0u64;
    let mut sink = 0i64;
    read_stream(
        input,
        |item| {
            n += 1;
            if let Item::Record(t) = item {
                sink = sink.wrapping_add(t.amount ^ t.ts_ms);
            }
        },
        |_| {},
    )?;
    std::hint::black_box(sink);
    Ok((n, start.elapsed().as_secs_f64()))
}

fn progress_bar(wanted: bool, input: &Path) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let len = match Format::from_path(input) {
        Ok(Format::Parquet) => parquet_rows(input).unwrap_or(0),
        _ => std::fs::metadata(input).map(|m| m.len()).unwrap_or(0),
    };
    let bar = indicatif::ProgressBar::new(len);
    let template = match Format::from_path(input) {
        Ok(Format::Parquet) => "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ({per_sec}, eta {eta})",
        _ => "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

fn parquet_rows(input: &Path) -> Option<u64> {
    let f = File::open(input).ok()?;
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
    u64::try_from(b.metadata().file_metadata().num_rows()).ok()
}
