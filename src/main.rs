//! `fundwatch`: the command line. Parses arguments, sets up logging, and hands off to the
//! crates; the only place `anyhow` is used.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use fundwatch_engine::{Alert, Clock};
use fundwatch_rules::Config;

#[derive(Parser)]
#[command(
    name = "fundwatch",
    version,
    about = "Streaming detector of illegal fund-raising patterns in bank transactions"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine over a recorded stream (JSON Lines, CSV or Parquet, by extension).
    Replay {
        /// Recorded stream: .jsonl / .ndjson, .csv or .parquet.
        #[arg(long)]
        input: PathBuf,
        /// Thresholds (TOML); built-in defaults when omitted (same as config/fundwatch.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where alerts go, as JSON Lines.
        #[arg(long)]
        alerts: PathBuf,
        /// Where rejected records go, as JSON Lines with the reason.
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// Also write hits that scored below their rule's confirm_score here (alert records):
        /// what a lower threshold would add.
        #[arg(long)]
        near_misses: Option<PathBuf>,
        /// Also link accounts into schemes and write every version of every case here
        /// (JSON Lines; keep the last version per case_id). Alerts a link confirms go to
        /// --alerts with the others.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Also write the account traces the linking stage reads (JSON Lines).
        #[arg(long)]
        traces: Option<PathBuf>,
        /// With [routing] in the config: one JSON Lines file per office topic in this
        /// directory (alerts, cases and notices of the regions it serves).
        #[arg(long)]
        route_dir: Option<PathBuf>,
        /// Also write the summary as JSON here.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// First time a decode-only pass over the same file and report replay's rate
        /// as a share of it (benchmarking).
        #[arg(long)]
        decode_baseline: bool,
        /// Never draw a progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Stamp `detected_at` with this RFC 3339 time instead of the wall clock, so two runs
        /// give byte-identical alert files.
        #[arg(long)]
        fixed_detected_at: Option<String>,
    },
    /// What a config would raise on a recorded stream, before deploying it: alerts per rule,
    /// region, segment and day; with --labels precision/recall/F1; with --against, what
    /// changes between two configs; with --sweep, the figures at every value of one or two
    /// thresholds (the stream is decoded once). Writes an HTML report and every table as
    /// CSV, Parquet and JSON.
    Backtest(BacktestArgs),
    /// The Kafka service: consume transactions, detect, produce alerts and dead letters with
    /// exactly-once transactions; serves /metrics, /healthz and /readyz.
    Run {
        /// Thresholds and the [kafka] / [service] sections (TOML); built-in defaults when omitted.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        options: fundwatch_kafka::RunOptions,
    },
    /// Load a JSON Lines stream into a Kafka topic (key = account), optionally at a fixed rate.
    Produce {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        options: fundwatch_kafka::ProduceOptions,
    },
    /// The whole Kafka path on an in-process mock cluster (nothing to install): plays a stream
    /// in, runs the service, prints alerts as they are committed, serves /metrics.
    Demo {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        options: fundwatch_kafka::DemoOptions,
    },
    /// Write a seeded synthetic stream with planted typologies, look-alikes and labels.
    Generate {
        /// The stream, as JSON Lines.
        #[arg(long)]
        out: PathBuf,
        /// Labels: which accounts each rule must flag (JSON Lines).
        #[arg(long)]
        labels: PathBuf,
        #[command(flatten)]
        options: fundwatch_generate::GenerateOptions,
    },
    /// Validate a config file; lists every problem by field.
    CheckConfig {
        file: PathBuf,
        /// Print the effective configuration (defaults filled in) when valid.
        #[arg(long)]
        print: bool,
    },
    /// Score an alert file against a labels file: per-rule precision and recall.
    Evaluate {
        #[arg(long)]
        alerts: PathBuf,
        #[arg(long)]
        labels: PathBuf,
        /// Exit non-zero unless every behavioural rule reaches this precision and recall
        /// (and large_value is exact).
        #[arg(long)]
        require: Option<f64>,
    },
    /// The review console: analysts confirm or dismiss cases and alerts with reasons;
    /// confirmed cases go to the `reported` topic (or file). Built with `--features console`.
    #[cfg(feature = "console")]
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// Score case records (JSON Lines, last version per case_id, open ones) against the
    /// labels' scheme lines: schemes found, payout accounts linked to their collector, impure
    /// and false cases, investors / raised within 10 %, lead region and regions.
    ScoreCases {
        #[arg(long)]
        labels: PathBuf,
        #[arg(long)]
        cases: PathBuf,
        /// Print the whole score (per-scheme details included) as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(feature = "console")]
#[derive(Subcommand)]
enum ConsoleCommand {
    /// Serve the console: ingest alerts and cases (replay's files, or the alert and case
    /// topics of [kafka]), serve the pages, report confirmed cases.
    Serve {
        /// The fundwatch config: [console], and [kafka] in Kafka mode.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides console.database_url (also FUNDWATCH_CONSOLE_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
        /// Overrides console.listen.
        #[arg(long)]
        listen: Option<String>,
        /// File mode: replay's --alerts file (JSON Lines). Without --alerts and --cases the
        /// console reads the Kafka topics of [kafka].
        #[arg(long)]
        alerts: Option<PathBuf>,
        /// File mode: replay's --cases file (JSON Lines).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// File mode: keep reading what is appended to the files.
        #[arg(long)]
        follow: bool,
        /// Write confirmed cases here (JSON Lines) instead of the reported topic. Needed in
        /// file mode for confirmations to leave the console.
        #[arg(long)]
        reported: Option<PathBuf>,
    },
    /// Create a console user (the first one, a supervisor, is made this way).
    AddUser {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides console.database_url (also FUNDWATCH_CONSOLE_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long)]
        name: String,
        /// analyst, supervisor or readonly.
        #[arg(long)]
        role: String,
        /// Region code prefixes the user sees, comma-separated (`*` for every region).
        #[arg(long)]
        regions: String,
        /// Read the password from the first line of stdin; otherwise it is taken from
        /// FUNDWATCH_CONSOLE_PASSWORD.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[cfg(feature = "console")]
fn console_database_url(flag: Option<String>, config: &Config) -> String {
    flag.or_else(|| std::env::var("FUNDWATCH_CONSOLE_DATABASE_URL").ok())
        .unwrap_or_else(|| config.console.database_url.clone())
}

#[cfg(feature = "console")]
fn run_console(cmd: ConsoleCommand) -> Result<()> {
    match cmd {
        ConsoleCommand::Serve {
            config,
            database_url,
            listen,
            alerts,
            cases,
            follow,
            reported,
        } => {
            let cfg = load_config(config.as_deref())?;
            let files =
                (alerts.is_some() || cases.is_some()).then_some(fundwatch_console::ingest::FileFeeds { alerts, cases });
            let kafka = files.is_none().then(|| fundwatch_console::kafka::KafkaSettings {
                brokers: cfg.kafka.brokers.clone(),
                client: cfg.kafka.client.clone(),
                alert_topic: cfg.kafka.alert_topic.clone(),
                case_topic: cfg.kafka.case_topic.clone(),
                reported_topic: cfg.console.reported_topic.clone(),
                transactional_id: cfg.console.transactional_id.clone(),
            });
            if files.is_some() && reported.is_none() {
                tracing::warn!(
                    "file mode without --reported: confirmed cases stay in the outbox until a reporter runs"
                );
            }
            fundwatch_console::serve_blocking(fundwatch_console::ServeOptions {
                database_url: console_database_url(database_url, &cfg),
                listen: listen.unwrap_or_else(|| cfg.console.listen.clone()),
                session_ttl_ms: cfg.console.session_ttl.ms(),
                secure_cookies: cfg.console.secure_cookies,
                files,
                follow,
                reported_file: reported,
                kafka,
            })?;
            Ok(())
        }
        ConsoleCommand::AddUser {
            config,
            database_url,
            name,
            role,
            regions,
            password_stdin,
        } => {
            let cfg = load_config(config.as_deref())?;
            let Some(role) = fundwatch_console::auth::Role::parse(&role) else {
                bail!("--role must be analyst, supervisor or readonly, not {role:?}");
            };
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                std::env::var("FUNDWATCH_CONSOLE_PASSWORD")
                    .context("give the password on stdin with --password-stdin, or in FUNDWATCH_CONSOLE_PASSWORD")?
            };
            let url = console_database_url(database_url, &cfg);
            fundwatch_console::add_user_blocking(&url, &name, &password, role, &regions)?;
            eprintln!("added {} user {name} (regions {regions})", role.as_str());
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Err(e) = run(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The demo plays `fixtures/stream-20k.jsonl` by default. Started outside the repository
/// (an installed binary), that file is not there: generate the same stream (the fixture's
/// own `generate` options, byte-identical output) into a temporary directory instead.
/// Returns that directory, to remove afterwards.
fn demo_stream(options: &mut fundwatch_kafka::DemoOptions) -> Result<Option<PathBuf>> {
    let default = fundwatch_kafka::DemoOptions::default().input;
    if options.input != default || options.input.exists() {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!("fundwatch-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let input = dir.join("stream-20k.jsonl");
    let out = BufWriter::new(File::create(&input).with_context(|| format!("cannot write {}", input.display()))?);
    fundwatch_generate::generate(&fundwatch_generate::GenerateOptions::stream_20k(), out, std::io::sink())?;
    eprintln!(
        "{} not found (not started from the repository): playing the same stream, generated into {}",
        default.display(),
        input.display()
    );
    options.input = input;
    Ok(Some(dir))
}

fn load_config(path: Option<&Path>) -> Result<Arc<Config>> {
    Ok(Arc::new(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    }))
}

fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Replay {
            input,
            config,
            alerts,
            dead_letter,
            near_misses,
            cases,
            traces,
            route_dir,
            summary_json,
            decode_baseline,
            no_progress,
            fixed_detected_at,
        } => {
            let config = load_config(config.as_deref())?;
            let clock = match fixed_detected_at {
                Some(t) => Clock::Fixed(fundwatch_record::parse_rfc3339_ms(&t).with_context(|| "--fixed-detected-at")?),
                None => Clock::Wall,
            };
            let baseline = if decode_baseline {
                Some(fundwatch_replay::decode_only(&input)?)
            } else {
                None
            };
            let opts = fundwatch_replay::ReplayOptions {
                input,
                alerts,
                dead_letter,
                near_misses,
                config,
                cases,
                traces,
                route_dir,
                progress: !no_progress,
                clock,
            };
            let summary = fundwatch_replay::replay(&opts)?;
            println!("{summary}");
            if let Some((n, secs)) = baseline {
                let rate = n as f64 / secs;
                println!(
                    "  decode-only    {secs:>11.2}s   {rate:.0} records/s; replay runs at {:.0}% of the decode-only rate",
                    100.0 * summary.records_per_second / rate
                );
            }
            if let Some(p) = summary_json {
                let f = File::create(&p).with_context(|| format!("cannot write {}", p.display()))?;
                serde_json::to_writer_pretty(f, &summary)?;
            }
            Ok(())
        }
        Command::Backtest(args) => backtest(args),
        Command::Run { config, mut options } => {
            // The service watches the file it was started with, for live reloads.
            options.config_path = config.clone();
            let config = load_config(config.as_deref())?;
            let shutdown = fundwatch_kafka::Shutdown::on_signals()?;
            let summary = fundwatch_kafka::run(config, options, shutdown)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Produce { config, options } => {
            let config = load_config(config.as_deref())?;
            let summary = fundwatch_kafka::produce(&config, &options)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Demo { config, mut options } => {
            let config = load_config(config.as_deref())?;
            let shutdown = fundwatch_kafka::Shutdown::on_signals()?;
            let generated = demo_stream(&mut options)?;
            let summary = fundwatch_kafka::demo(&config, &options, shutdown);
            if let Some(dir) = generated {
                let _ = std::fs::remove_dir_all(dir);
            }
            println!("{}", serde_json::to_string_pretty(&summary?)?);
            Ok(())
        }
        Command::Generate { out, labels, options } => {
            let o = BufWriter::with_capacity(
                1 << 20,
                File::create(&out).with_context(|| format!("cannot write {}", out.display()))?,
            );
            let l =
                BufWriter::new(File::create(&labels).with_context(|| format!("cannot write {}", labels.display()))?);
            let summary = fundwatch_generate::generate(&options, o, l)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::CheckConfig { file, print } => match Config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: valid (config_version {})",
                    file.display(),
                    fundwatch_engine::config_version(&cfg)
                );
                if print {
                    println!("{}", cfg.to_toml());
                }
                Ok(())
            }
            Err(e) => bail!("{}: {e}", file.display()),
        },
        Command::Evaluate {
            alerts,
            labels,
            require,
        } => {
            let labels = fundwatch_generate::labels::Labels::read(BufReader::new(
                File::open(&labels).with_context(|| format!("cannot open {}", labels.display()))?,
            ))?;
            let alerts = read_alerts(&alerts)?;
            let eval = labels.evaluate(alerts.iter().map(|a| (a.rule.as_str(), a.account.as_str())));
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{eval}")?;
            if let Some(min) = require {
                // Behavioural rules must reach `min`; the reporting rule must be exact.
                let failing: Vec<String> = eval
                    .rules
                    .iter()
                    .filter(|r| {
                        let need = if r.rule == "large_value" { 1.0 } else { min };
                        r.precision < need || r.recall < need
                    })
                    .map(|r| format!("{} (precision {:.3}, recall {:.3})", r.rule, r.precision, r.recall))
                    .collect();
                if !failing.is_empty() {
                    bail!("below the required {min}: {}", failing.join(", "));
                }
            }
            Ok(())
        }
        #[cfg(feature = "console")]
        Command::Console { command } => run_console(command),
        Command::ScoreCases { labels, cases, json } => {
            let labels_file =
                BufReader::new(File::open(&labels).with_context(|| format!("cannot open {}", labels.display()))?);
            let labels_read =
                fundwatch_generate::labels::Labels::read(labels_file).with_context(|| labels.display().to_string())?;
            let cases_file =
                BufReader::new(File::open(&cases).with_context(|| format!("cannot open {}", cases.display()))?);
            let final_cases =
                fundwatch_backtest::read_cases(cases_file).with_context(|| cases.display().to_string())?;
            let score = fundwatch_backtest::score_cases(&labels_read, &final_cases);
            let mut stdout = std::io::stdout().lock();
            if json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&score)?)?;
            } else {
                if labels_read.schemes.is_empty() {
                    writeln!(
                        stdout,
                        "note: {} has no scheme lines (standard profile, or written before them): nothing to find",
                        labels.display()
                    )?;
                }
                write!(stdout, "{score}")?;
            }
            Ok(())
        }
    }
}

fn read_alerts(path: &Path) -> Result<Vec<Alert>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not an alert record", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

#[derive(clap::Args)]
struct BacktestArgs {
    /// Recorded stream: .jsonl / .ndjson, .csv or .parquet.
    #[arg(long)]
    input: PathBuf,
    /// Config A (TOML); built-in defaults when omitted. With --sweep: the base config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Config B: report the alerts only A raises, only B raises, and both.
    #[arg(long, conflicts_with = "sweep")]
    against: Option<PathBuf>,
    /// Labels (JSON Lines, as `generate` writes): adds precision, recall and F1.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// RULE.PARAM=FROM:TO:STEP or RULE.PARAM=V1,V2,… (values written as in the config file:
    /// 8, 0.85, 12h, 5000.00). Give it twice for a two-parameter grid.
    #[arg(long, value_name = "RULE.PARAM=FROM:TO:STEP")]
    sweep: Vec<String>,
    /// Directory for report.html and tables/ (CSV, Parquet, JSON); default
    /// `fundwatch-report`. The report needs a build with the `report` feature (polars):
    /// `cargo build --release --features report`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Threads for sweep points (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write config A's alerts (or, with --sweep, the base config's) as JSON Lines.
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Also write config A's final cases (or the base config's) as JSON Lines, the last
    /// version of each (what `score-cases` reads).
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Skip the case stage (as `[cases] enabled = false` does): no case tables. A sweep
    /// with cases runs each point in full (the lanes share no traces); this keeps it fast.
    #[arg(long)]
    no_cases: bool,
}

fn write_alerts(path: &Path, alerts: &[Alert]) -> Result<()> {
    let mut w = BufWriter::new(File::create(path).with_context(|| format!("cannot write {}", path.display()))?);
    for a in alerts {
        serde_json::to_writer(&mut w, a)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(feature = "report")]
fn describe(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string())
}

/// `--no-cases` switches the case stage off in a config.
fn without_cases(cfg: Arc<Config>, no_cases: bool) -> Arc<Config> {
    if !no_cases || !cfg.cases.enabled {
        return cfg;
    }
    let mut c = (*cfg).clone();
    c.cases.enabled = false;
    Arc::new(c)
}

/// One line about a run's cases.
fn case_line(out: &mut impl Write, name: &str, c: &fundwatch_backtest::CaseRun) -> Result<()> {
    let sev = c
        .by_severity()
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(
        out,
        "  cases {name}: {} open ({}), {} linked alerts, {} case versions",
        c.open().count(),
        if sev.is_empty() { "none".to_owned() } else { sev },
        c.linked_alerts.len(),
        c.versions
    )?;
    Ok(())
}

fn case_score_line(out: &mut impl Write, s: &fundwatch_backtest::CaseScore) -> Result<()> {
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", 100.0 * v));
    writeln!(
        out,
        "    against the scheme labels: found {}/{}, payout links {}/{}, impure {}, without a scheme {}, \
         investors within 10% {}, raised within 10% {}",
        s.schemes_found,
        s.schemes,
        s.payout_links,
        s.payout_link_schemes,
        s.impure_cases,
        s.cases_without_scheme,
        pct(s.investors_within_10pct_share),
        pct(s.raised_within_10pct_share)
    )?;
    Ok(())
}

fn write_cases(path: &Path, cases: &[fundwatch_cases::CaseRecord]) -> Result<()> {
    let mut w = BufWriter::new(File::create(path).with_context(|| format!("cannot write {}", path.display()))?);
    for c in cases {
        serde_json::to_writer(&mut w, c)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

fn backtest(args: BacktestArgs) -> Result<()> {
    use fundwatch_backtest as bt;
    let config_a = without_cases(load_config(args.config.as_deref())?, args.no_cases);
    let config_b = args
        .against
        .as_deref()
        .map(|p| load_config(Some(p)).map(|c| without_cases(c, args.no_cases)))
        .transpose()?;
    let labels = match &args.labels {
        Some(p) => Some(fundwatch_generate::labels::Labels::read(BufReader::new(
            File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ))?),
        None => None,
    };
    // Parse sweeps before the (possibly long) decode, so a typo fails at once.
    let axes = args
        .sweep
        .iter()
        .map(|s| bt::SweepAxis::parse(s, &config_a))
        .collect::<Result<Vec<_>, _>>()?;
    if !axes.is_empty() {
        for settings in bt::grid(&axes) {
            bt::apply(&config_a, &settings)?;
        }
    }
    // Asked for a report this build cannot write: say so before the (possibly long) run.
    if !cfg!(feature = "report") {
        if let Some(out) = &args.out {
            bail!("--out {}: {NO_REPORT}", out.display());
        }
    }
    let stream = bt::DecodedStream::load_with(&args.input, &config_a.input.decoder()?)?;
    let now = chrono_now_ms();
    let clock = Clock::Fixed(now);
    #[cfg(feature = "report")]
    let meta = fundwatch_report::Meta {
        input: stream.input.clone(),
        records_read: stream.records_read,
        accepted: stream.len() as u64,
        rejected: stream.rejected(),
        decode_seconds: stream.decode_seconds,
        config_a: describe(&args.config),
        config_b: args.against.as_ref().map(|p| p.display().to_string()),
        labels: args.labels.as_ref().map(|p| p.display().to_string()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        generated_at: fundwatch_record::format_rfc3339_ms(now),
    };
    println!(
        "stream {}: {} records ({} rejected), decoded once in {:.2} s, {:.0} MiB in memory",
        stream.input,
        stream.records_read,
        stream.rejected(),
        stream.decode_seconds,
        stream.heap_bytes() as f64 / (1024.0 * 1024.0)
    );
    let mut stdout = std::io::stdout().lock();
    if axes.is_empty() {
        let result = bt::backtest(&stream, config_a, config_b, labels.as_ref(), clock);
        let mut line = |name: &str, run: &bt::RunOutput, eval: Option<&fundwatch_generate::labels::Evaluation>| {
            let (n, acc) = (run.alerts_by_rule(), run.accounts_by_rule());
            let _ = writeln!(
                stdout,
                "\nconfig {name} ({}): {} alerts in {:.2} s",
                run.config_version,
                run.alerts.len(),
                run.seconds
            );
            let _ = writeln!(
                stdout,
                "  {:<28} {:>8} {:>9} {:>9} {:>7} {:>6}",
                "rule", "alerts", "accounts", "precision", "recall", "F1"
            );
            for (rule, k) in &n {
                let sc = eval.and_then(|e| e.rule(rule));
                let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
                let _ = writeln!(
                    stdout,
                    "  {rule:<28} {k:>8} {:>9} {:>9} {:>7} {:>6}",
                    acc.get(rule).copied().unwrap_or(0),
                    num(sc.map(|s| s.precision)),
                    num(sc.map(|s| s.recall)),
                    num(sc.map(|s| s.f1))
                );
            }
        };
        line("A", &result.a, result.eval_a.as_ref());
        if let Some(b) = &result.b {
            line("B", b, result.eval_b.as_ref());
        }
        if let Some(c) = &result.a.cases {
            writeln!(stdout)?;
            case_line(&mut stdout, "A", c)?;
            if let Some(s) = &result.case_score_a {
                case_score_line(&mut stdout, s)?;
            }
        }
        if let Some(c) = result.b.as_ref().and_then(|b| b.cases.as_ref()) {
            case_line(&mut stdout, "B", c)?;
            if let Some(s) = &result.case_score_b {
                case_score_line(&mut stdout, s)?;
            }
        }
        if let Some(d) = &result.case_diff {
            writeln!(stdout, "  cases, A against B: {d}")?;
        }
        if let Some(d) = &result.diff {
            writeln!(stdout, "\nA against B (same rule, account and triggering record):")?;
            writeln!(
                stdout,
                "  {:<28} {:>8} {:>8} {:>8}   accounts: {:>6} {:>6} {:>6}",
                "rule", "only A", "only B", "both", "only A", "only B", "both"
            )?;
            for c in &d.by_rule {
                writeln!(
                    stdout,
                    "  {:<28} {:>8} {:>8} {:>8}             {:>6} {:>6} {:>6}",
                    c.rule, c.only_a, c.only_b, c.both, c.accounts_only_a, c.accounts_only_b, c.accounts_both
                )?;
            }
        }
        finish(&mut stdout, &args, &result.a, |_out| {
            #[cfg(feature = "report")]
            return fundwatch_report::backtest_report(&result, &meta, _out).map(|w| Some((w.html, w.tables.len())));
            #[cfg(not(feature = "report"))]
            Ok::<_, std::io::Error>(None)
        })?;
    } else {
        let threads = args.threads.unwrap_or_else(bt::default_threads);
        let result = bt::sweep(&stream, config_a, axes, labels.as_ref(), threads, clock)?;
        let labelled = labels.is_some();
        writeln!(
            stdout,
            "\nsweep of {} points in {:.2} s: {} engine pass(es) over the decoded stream, one per thread, \
             the points as lanes of it; points re-run only {}",
            result.points.len(),
            result.seconds,
            result.threads,
            result
                .affected
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        for pt in &result.points {
            for r in &result.affected {
                let rule = r.as_str();
                let mut row = format!(
                    "  {:<60} {rule:<28} alerts {:>6}  accounts {:>6}",
                    pt.settings.to_string(),
                    pt.alerts_by_rule.get(rule).copied().unwrap_or(0),
                    pt.accounts_by_rule.get(rule).copied().unwrap_or(0)
                );
                if labelled {
                    if let Some(sc) = pt.evaluation.as_ref().and_then(|e| e.rule(rule)) {
                        row.push_str(&format!(
                            "  precision {:.3}  recall {:.3}  F1 {:.3}",
                            sc.precision, sc.recall, sc.f1
                        ));
                    }
                }
                writeln!(stdout, "{row}")?;
            }
            if let Some(c) = &pt.cases {
                let d = c.diff.as_ref();
                let mut row = format!(
                    "  {:<60} cases {:>4} open, {:>4} past a line, links +{} -{}",
                    pt.settings.to_string(),
                    c.run.open().count(),
                    c.run.past_a_line(),
                    d.map_or(0, |d| d.links_made.len()),
                    d.map_or(0, |d| d.links_broken.len())
                );
                if let Some(s) = &c.score {
                    row.push_str(&format!(
                        "  payout links {}/{}  impure {}",
                        s.payout_links, s.payout_link_schemes, s.impure_cases
                    ));
                }
                writeln!(stdout, "{row}")?;
            }
        }
        finish(&mut stdout, &args, &result.base, |_out| {
            #[cfg(feature = "report")]
            return fundwatch_report::sweep_report(&result, &meta, _out).map(|w| Some((w.html, w.tables.len())));
            #[cfg(not(feature = "report"))]
            Ok::<_, std::io::Error>(None)
        })?;
    }
    Ok(())
}

/// Why a build without the `report` feature writes no HTML report.
const NO_REPORT: &str = "not written: this fundwatch was built without the `report` feature \
(polars, kept out of the default build so a first build stays short); rebuild with \
`cargo build --release --features report`";

/// Where a backtest or sweep report goes when `--out` is not given.
const DEFAULT_REPORT_DIR: &str = "fundwatch-report";

/// Write `--alerts` and `--cases`, then the report (when this build has the `report`
/// feature), and say where it is. `report` returns the HTML's path and the table count.
fn finish<E>(
    out: &mut impl Write,
    args: &BacktestArgs,
    run: &fundwatch_backtest::RunOutput,
    report: impl FnOnce(&Path) -> Result<Option<(PathBuf, usize)>, E>,
) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(p) = &args.alerts {
        write_alerts(p, &run.alerts)?;
    }
    if let Some(p) = &args.cases {
        match &run.cases {
            Some(c) => write_cases(p, &c.cases)?,
            None => anyhow::bail!(
                "--cases {}: the case stage did not run ([cases] enabled = false or --no-cases)",
                p.display()
            ),
        }
    }
    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_REPORT_DIR));
    match report(&dir).with_context(|| format!("writing the report to {}", dir.display()))? {
        Some((html, tables)) => writeln!(
            out,
            "\nreport: {} ({tables} table files in {})",
            html.display(),
            dir.join("tables").display()
        )?,
        None => writeln!(out, "\nreport: {NO_REPORT}")?,
    }
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
