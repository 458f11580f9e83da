//! A thin process around `fundwatch_kafka::run` for the integration tests (which kill it with
//! SIGKILL) until `fundwatch run` is wired; also handy for manual runs.
//!
//! `fundwatch-kafka-test-service --config FILE [RunOptions…]`, or `--demo` / `--produce FILE`.
//!
//! Benchmark helpers (used by `benches/kafka.sh`): `--bare-consume TOPIC` (baseline read
//! rate), `--latency INPUT_TOPIC ALERT_TOPIC` (produce-to-alert latency of a live service),
//! `--create-topics NAME:PARTITIONS,…` and `--delete-topics NAME,…`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use fundwatch_kafka::{DemoOptions, KafkaError, RunOptions, Shutdown};
use fundwatch_rules::Config;

#[derive(Parser)]
struct Args {
    /// Config (TOML); defaults when omitted.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run the demo on a mock cluster instead.
    #[arg(long)]
    demo: bool,
    /// Produce this JSON Lines file to the input topic instead (at --rate).
    #[arg(long)]
    produce: Option<PathBuf>,
    #[arg(long)]
    rate: Option<f64>,
    /// Baseline: read this topic with a bare BaseConsumer to its end and report the rate.
    #[arg(long)]
    bare_consume: Option<String>,
    /// With --bare-consume: also decode every record (fundwatch's decoder, no engine), to
    /// show how much of the gap to the bare rate is decoding.
    #[arg(long)]
    bare_decode: bool,
    /// Benchmark: read INPUT_TOPIC (tx_id → Kafka timestamp) and ALERT_TOPIC (read_committed,
    /// noting the wall-clock receive time) while a live service runs, until nothing new
    /// arrived for --latency-idle-ms after the first input record; print produce-to-alert
    /// latency percentiles.
    #[arg(long, num_args = 2, value_names = ["INPUT_TOPIC", "ALERT_TOPIC"])]
    latency: Option<Vec<String>>,
    #[arg(long, default_value_t = 10_000)]
    latency_idle_ms: u64,
    #[arg(long, default_value_t = 900)]
    latency_timeout_secs: u64,
    /// Create these topics (NAME:PARTITIONS[:key=value…], replication 1) and exit.
    #[arg(long, value_delimiter = ',')]
    create_topics: Vec<String>,
    /// Delete these topics and exit.
    #[arg(long, value_delimiter = ',')]
    delete_topics: Vec<String>,
    #[command(flatten)]
    run: RunOptions,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(p) => Config::load(p).unwrap_or_else(|e| {
            eprintln!("config: {e}");
            std::process::exit(2)
        }),
        None => Config::default(),
    };
    let shutdown = Shutdown::on_signals().expect("signals");
    let result = if !args.create_topics.is_empty() || !args.delete_topics.is_empty() {
        admin(&config, &args.create_topics, &args.delete_topics)
    } else if let Some(topic) = args.bare_consume {
        bare_consume(&config, &topic, args.bare_decode)
    } else if let Some(topics) = args.latency {
        latency(
            &config,
            &topics[0],
            &topics[1],
            Duration::from_millis(args.latency_idle_ms),
            Duration::from_secs(args.latency_timeout_secs),
        )
    } else if args.demo {
        let opts = DemoOptions {
            quiet: false,
            ..DemoOptions::default()
        };
        fundwatch_kafka::demo(&config, &opts, shutdown).map(|s| serde_json::to_string(&s).unwrap_or_default())
    } else if let Some(input) = args.produce {
        let opts = fundwatch_kafka::ProduceOptions {
            input,
            rate: args.rate,
            ..Default::default()
        };
        fundwatch_kafka::produce(&config, &opts).map(|s| serde_json::to_string(&s).unwrap_or_default())
    } else {
        let mut opts = args.run;
        opts.config_path = args.config.clone();
        fundwatch_kafka::run(Arc::new(config), opts, shutdown).map(|s| serde_json::to_string(&s).unwrap_or_default())
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn bare_consume(config: &Config, topic: &str, decode: bool) -> Result<String, fundwatch_kafka::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    use std::time::Instant;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        // As the service sets it: with librdkafka's 1 s default, a reader slower than the
        // fetcher (decoding) idles a second whenever its local queue fills.
        .set("fetch.queue.backoff.ms", fundwatch_kafka::FETCH_QUEUE_BACKOFF_MS)
        .set("auto.offset.reset", "earliest")
        // The service reads read_committed; the baseline may too (default: the client's default).
        .set(
            "isolation.level",
            std::env::var("FUNDWATCH_BARE_ISOLATION").unwrap_or_else(|_| "read_uncommitted".into()),
        )
        .create()?;
    c.subscribe(&[topic])?;
    let mut n = 0u64;
    let mut bytes = 0usize;
    let mut valid = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    let mut eof = std::collections::HashSet::new();
    let parts = c
        .fetch_metadata(Some(topic), std::time::Duration::from_secs(10))?
        .topics()[0]
        .partitions()
        .len();
    while eof.len() < parts {
        match c.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                n += 1;
                bytes += m.payload().map_or(0, |p| p.len());
                if decode {
                    valid += u64::from(fundwatch_record::decode_json(m.payload().unwrap_or(&[])).is_ok());
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if first.is_some() => {
                eof.insert(p);
            }
            _ => {}
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    Ok(format!(
        "{{\"records\":{n},\"bytes\":{bytes},\"decoded_valid\":{valid},\"seconds\":{secs},\"records_per_second\":{}}}",
        n as f64 / secs.max(1e-9)
    ))
}

/// Minimal block_on for the admin futures (no async runtime in this crate).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn admin(config: &Config, create: &[String], delete: &[String]) -> Result<String, KafkaError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut done = Vec::new();
    if !create.is_empty() {
        // NAME:PARTITIONS[:key=value…] (topic configs, e.g. retention.ms=-1)
        let mut specs = Vec::new();
        for c in create {
            let mut it = c.split(':');
            let name = it.next().unwrap_or_default();
            let parts: i32 =
                it.next().unwrap_or("1").parse().map_err(|_| {
                    KafkaError::Other(format!("--create-topics {c}: want NAME:PARTITIONS[:key=value…]"))
                })?;
            let configs: Vec<(&str, &str)> = it.filter_map(|kv| kv.split_once('=')).collect();
            specs.push((name, parts, configs));
        }
        let topics: Vec<NewTopic> = specs
            .iter()
            .map(|(n, p, configs)| {
                configs
                    .iter()
                    .fold(NewTopic::new(n, *p, TopicReplication::Fixed(1)), |t, (k, v)| {
                        t.set(k, v)
                    })
            })
            .collect();
        for r in block_on(admin.create_topics(&topics, &opts))? {
            match r {
                Ok(t) => done.push(format!("created {t}")),
                Err((t, e)) => return Err(KafkaError::Other(format!("cannot create topic {t}: {e}"))),
            }
        }
    }
    if !delete.is_empty() {
        let names: Vec<&str> = delete.iter().map(String::as_str).collect();
        for r in block_on(admin.delete_topics(&names, &opts))? {
            match r {
                Ok(t) => done.push(format!("deleted {t}")),
                Err((t, e)) => done.push(format!("cannot delete {t}: {e}")),
            }
        }
    }
    Ok(done.join("\n"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Read every partition of `topic` from the beginning until `stop`; `on` gets each message
/// and the wall-clock time (epoch ms) at which `poll` returned it.
fn read_until_stopped(
    brokers: &str,
    topic: &str,
    read_committed: bool,
    stop: &AtomicBool,
    last_ms: &AtomicI64,
    mut on: impl FnMut(&rdkafka::message::BorrowedMessage<'_>, i64),
) -> Result<(), KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("latency-{}", std::process::id()))
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        )
        .set("enable.auto.commit", "false")
        // Bound the broker-side long poll, so that a receive time is at most this late even
        // if a fetch waiting for data were not woken by a transaction marker.
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    if tpl.count() == 0 {
        return Err(KafkaError::Other(format!(
            "topic {topic} has no partitions (does it exist?)"
        )));
    }
    c.assign(&tpl)?;
    while !stop.load(Ordering::Relaxed) {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let at = now_ms();
                last_ms.fetch_max(at, Ordering::Relaxed);
                on(&m, at);
            }
            Some(Err(e)) => eprintln!("latency reader ({topic}): {e}"),
            None => {}
        }
    }
    Ok(())
}

struct Pct {
    n: usize,
    p50: i64,
    p95: i64,
    p99: i64,
    max: i64,
    min: i64,
}

fn percentiles(mut v: Vec<i64>) -> Option<Pct> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    // Nearest rank.
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Pct {
        n: v.len(),
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: v[v.len() - 1],
        min: v[0],
    })
}

/// Produce-to-alert latency of a live service (see `--latency`).
fn latency(
    config: &Config,
    input: &str,
    alert_topic: &str,
    idle: Duration,
    timeout: Duration,
) -> Result<String, KafkaError> {
    use rdkafka::Message;
    let stop = Arc::new(AtomicBool::new(false));
    let last_ms = Arc::new(AtomicI64::new(0));
    let inputs_seen = Arc::new(AtomicU64::new(0));
    let brokers = config.kafka.brokers.clone();

    // Input: tx_id → (Kafka timestamp, event time).
    let in_thread = {
        let (stop, last_ms, seen, brokers, topic) = (
            stop.clone(),
            last_ms.clone(),
            inputs_seen.clone(),
            brokers.clone(),
            input.to_owned(),
        );
        std::thread::spawn(move || {
            let mut map: HashMap<String, (i64, Option<i64>)> = HashMap::new();
            let mut duplicates = 0u64;
            read_until_stopped(&brokers, &topic, false, &stop, &last_ms, |m, _| {
                seen.fetch_add(1, Ordering::Relaxed);
                let kts = m.timestamp().to_millis().unwrap_or(i64::MIN);
                let payload = m.payload().unwrap_or_default();
                let (tx_id, ets) = match fundwatch_record::decode_json(payload) {
                    Ok(tx) => (Some(tx.tx_id.into_owned()), Some(tx.ts_ms)),
                    Err(_) => (
                        serde_json::from_slice::<serde_json::Value>(payload)
                            .ok()
                            .and_then(|v| v.get("tx_id").and_then(|t| t.as_str()).map(str::to_owned)),
                        None,
                    ),
                };
                if let Some(id) = tx_id {
                    if map.insert(id, (kts, ets)).is_some() {
                        duplicates += 1;
                    }
                }
            })
            .map(|()| (map, duplicates))
        })
    };
    // Alerts: (triggered_by, alert Kafka timestamp, receive time).
    let alert_thread = {
        let (stop, last_ms, brokers, topic) = (stop.clone(), last_ms.clone(), brokers, alert_topic.to_owned());
        std::thread::spawn(move || {
            let mut alerts: Vec<(String, i64, i64)> = Vec::new();
            read_until_stopped(&brokers, &topic, true, &stop, &last_ms, |m, at| {
                let kts = m.timestamp().to_millis().unwrap_or(i64::MIN);
                let trig = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
                    .ok()
                    .and_then(|v| v.get("triggered_by").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                alerts.push((trig, kts, at));
            })
            .map(|()| alerts)
        })
    };

    let started = Instant::now();
    let mut timed_out = false;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if in_thread.is_finished() || alert_thread.is_finished() {
            break; // a reader failed: join reports it
        }
        let quiet = now_ms() - last_ms.load(Ordering::Relaxed);
        if inputs_seen.load(Ordering::Relaxed) > 0 && quiet >= idle.as_millis() as i64 {
            break;
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    fn join<T>(r: std::thread::Result<Result<T, KafkaError>>) -> Result<T, KafkaError> {
        r.map_err(|_| KafkaError::Other("latency reader panicked".into()))?
    }
    let (map, duplicates) = join(in_thread.join())?;
    let alerts = join(alert_thread.join())?;

    let (mut visible, mut stamped, mut commit_wait) = (Vec::new(), Vec::new(), Vec::new());
    let mut unmatched = 0u64;
    for (trig, akts, at) in &alerts {
        match map.get(trig) {
            Some((ikts, _)) if *ikts != i64::MIN && *akts != i64::MIN => {
                visible.push(at - ikts);
                stamped.push(akts - ikts);
                commit_wait.push(at - akts);
            }
            _ => unmatched += 1,
        }
    }
    let kts: Vec<i64> = map.values().map(|v| v.0).filter(|t| *t != i64::MIN).collect();
    let ets: Vec<i64> = map.values().filter_map(|v| v.1).collect();
    let span = |v: &[i64]| match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    let (kspan, espan) = (span(&kts), span(&ets));
    let lateness = config.engine.allowed_lateness;
    let speedup = espan as f64 / (kspan as f64).max(1.0);

    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "input {input}: {} records ({} with a readable tx_id, {duplicates} tx_id repeated), offered {:.0} records/s over {:.1} s (input Kafka timestamps)",
        inputs_seen.load(Ordering::Relaxed),
        map.len(),
        kts.len() as f64 / (kspan as f64 / 1000.0).max(1e-9),
        kspan as f64 / 1000.0,
    );
    let _ = writeln!(
        out,
        "commit_interval {}, allowed_lateness {} of event time; event time advances {:.0}x faster than the input's Kafka timestamps, so the lateness hold is ~{:.1} ms of wall time here (on a real-time stream it would be the full {})",
        config.kafka.commit_interval,
        lateness,
        speedup,
        lateness.ms() as f64 / speedup.max(1e-9),
        lateness,
    );
    let _ = writeln!(
        out,
        "alerts {alert_topic}: {} read_committed, {unmatched} without a matching input record{}",
        alerts.len(),
        if timed_out {
            " (TIMED OUT before the topics went quiet)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  latency ms                                   n      p50      p95      p99      max      min"
    );
    for (name, v) in [
        ("visible (read_committed receive) - input ts", visible),
        ("alert Kafka ts - input ts", stamped),
        ("  of which: visible - alert Kafka ts", commit_wait),
    ] {
        match percentiles(v) {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "  {name:<44}{:>5} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    p.n, p.p50, p.p95, p.p99, p.max, p.min
                );
            }
            None => {
                let _ = writeln!(out, "  {name:<44}    0        -        -        -        -        -");
            }
        }
    }
    Ok(out.trim_end().to_owned())
}
