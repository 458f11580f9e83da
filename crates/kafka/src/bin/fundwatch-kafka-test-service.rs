//! A thin process around `fundwatch_kafka::run` for the integration tests (which kill it with
//! SIGKILL) until `fundwatch run` is wired; also handy for manual runs.
//!
//! `fundwatch-kafka-test-service --config FILE [RunOptions…]`, or `--demo` / `--produce FILE`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use fundwatch_kafka::{DemoOptions, RunOptions, Shutdown};
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
    let result = if let Some(topic) = args.bare_consume {
        bare_consume(&config, &topic)
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
        fundwatch_kafka::run(Arc::new(config), args.run, shutdown)
            .map(|s| serde_json::to_string(&s).unwrap_or_default())
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn bare_consume(config: &Config, topic: &str) -> Result<String, fundwatch_kafka::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    use std::time::Instant;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    c.subscribe(&[topic])?;
    let mut n = 0u64;
    let mut bytes = 0usize;
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
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if first.is_some() => {
                eof.insert(p);
            }
            _ => {}
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    Ok(format!(
        "{{\"records\":{n},\"bytes\":{bytes},\"seconds\":{secs},\"records_per_second\":{}}}",
        n as f64 / secs.max(1e-9)
    ))
}
