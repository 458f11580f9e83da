//! `fundwatch demo`: the whole consume → detect → produce path on librdkafka's in-process
//! mock cluster, without a Kafka installation.

use std::path::PathBuf;
use std::sync::Arc;

use fundwatch_rules::Config;
use rdkafka::mocking::MockCluster;
use serde::Serialize;

use crate::{produce, KafkaError, ProduceOptions, RunOptions, RunSummary, Service, Shutdown};

/// Options of `fundwatch demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Stream to play into the mock cluster (JSON Lines).
    #[arg(long, default_value = "fixtures/stream-20k.jsonl")]
    pub input: PathBuf,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Records per second to play the stream at (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Address for /metrics etc. during the demo ("off" disables).
    #[arg(long, default_value = "127.0.0.1:9898")]
    pub listen: String,
    /// Don't print alerts, only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// Run without producer transactions (at-least-once).
    #[arg(long)]
    pub no_transactions: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            input: "fixtures/stream-20k.jsonl".into(),
            partitions: 4,
            rate: None,
            listen: "off".into(),
            quiet: true,
            no_transactions: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub bootstrap: String,
    pub produced: u64,
    pub run: RunSummary,
}

/// Start a mock cluster, create the topics, play `opts.input` into it and run the service
/// until the stream is drained; every committed alert is printed on one line.
pub fn demo(config: &Config, opts: &DemoOptions, shutdown: Shutdown) -> Result<DemoSummary, KafkaError> {
    let cluster = MockCluster::new(1)?;
    let bootstrap = cluster.bootstrap_servers();
    let mut cfg = config.clone();
    cfg.kafka.brokers = bootstrap.clone();
    cfg.kafka.client.clear();
    cluster.create_topic(&cfg.kafka.input_topic, opts.partitions, 1)?;
    cluster.create_topic(&cfg.kafka.alert_topic, opts.partitions, 1)?;
    cluster.create_topic(&cfg.kafka.dead_letter_topic, 1, 1)?;
    cluster.create_topic(&cfg.kafka.state_topic, opts.partitions, 1)?;
    cluster.create_topic(&cfg.kafka.trace_topic, 1, 1)?;
    cluster.create_topic(&cfg.kafka.case_topic, 1, 1)?;
    let cfg = Arc::new(cfg);
    let popts = ProduceOptions {
        input: opts.input.clone(),
        topic: None,
        rate: opts.rate,
        limit: None,
        skip: 0,
        event_time: false,
    };
    let producer_cfg = cfg.clone();
    let feeder = std::thread::spawn(move || produce(&producer_cfg, &popts));
    if opts.rate.is_none() {
        // Load first, then detect: the summary's throughput is then the service's own.
        while !feeder.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let run_opts = RunOptions {
        instance_id: Some("demo".into()),
        exit_when_idle_ms: Some(2_000),
        commit_records: 200_000,
        no_transactions: opts.no_transactions,
        listen: Some(opts.listen.clone()),
        ..Default::default()
    };
    let quiet = opts.quiet;
    let service = Service::new(cfg, run_opts).on_alert(move |a| {
        if !quiet {
            println!("{:<28} {:<22} {:>5.1}  {}", a.rule, a.account, a.score, a.summary);
        }
    });
    let run = service.run(shutdown)?;
    let produced = feeder
        .join()
        .map_err(|_| KafkaError::Other("producer thread panicked".into()))??
        .records;
    drop(cluster);
    Ok(DemoSummary {
        bootstrap,
        produced,
        run,
    })
}
