//! Shared helpers for the broker tests: a real Kafka from `scripts/kafka.sh`, uniquely named
//! topics per test, the replay reference, read_committed readers and service subprocesses.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundwatch_engine::{Alert, Clock};
use fundwatch_rules::Config;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn fixture() -> PathBuf {
    repo_root().join("fixtures/stream-20k.jsonl")
}

pub fn bootstrap() -> String {
    std::env::var("FUNDWATCH_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

fn broker_up(bootstrap: &str) -> bool {
    let c: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    c.fetch_metadata(None, Duration::from_secs(3)).is_ok()
}

/// The broker, started with `scripts/kafka.sh start` when it does not answer.
pub fn ensure_broker() -> String {
    let b = bootstrap();
    if broker_up(&b) {
        return b;
    }
    let _guard = START.lock().unwrap_or_else(|e| e.into_inner());
    if broker_up(&b) {
        return b;
    }
    let port = b.rsplit(':').next().unwrap_or("19092").to_owned();
    let status = Command::new(repo_root().join("scripts/kafka.sh"))
        .arg("start")
        .env("KAFKA_PORT", port)
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/kafka.sh start");
    assert!(status.success(), "scripts/kafka.sh start failed");
    assert!(broker_up(&b), "broker not reachable at {b}");
    b
}

static START: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Topics {
    pub input: String,
    pub alerts: String,
    pub dead: String,
    pub group: String,
    /// The checkpoint topic (created by the service on start).
    pub state: String,
}

pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("fwt-{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

pub fn create_topics(bootstrap: &str, name: &str, partitions: i32) -> Topics {
    create_topics_with(bootstrap, name, partitions, &[])
}

/// [`create_topics`] with topic configs for the input topic (e.g. `retention.ms = -1` for a
/// stream whose Kafka timestamps are its event times, months old).
pub fn create_topics_with(bootstrap: &str, name: &str, partitions: i32, input_configs: &[(&str, &str)]) -> Topics {
    let base = unique(name);
    let t = Topics {
        input: format!("{base}-in"),
        alerts: format!("{base}-alerts"),
        dead: format!("{base}-dead"),
        group: format!("{base}-group"),
        state: format!("{base}-state"),
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut input = NewTopic::new(&t.input, partitions, TopicReplication::Fixed(1));
    for (k, v) in input_configs {
        input = input.set(k, v);
    }
    let topics = [
        input,
        NewTopic::new(&t.alerts, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&t.dead, 1, TopicReplication::Fixed(1)),
    ];
    let rt = futures_executor(admin.create_topics(&topics, &AdminOptions::new()));
    for r in rt.expect("create topics") {
        r.expect("topic created");
    }
    t
}

/// Minimal block_on for the admin futures (no async runtime in this crate).
pub fn futures_executor<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    fn noop_raw() -> RawWaker {
        fn clone(_: *const ()) -> RawWaker {
            noop_raw()
        }
        fn noop(_: *const ()) {}
        static VT: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        RawWaker::new(std::ptr::null(), &VT)
    }
    let waker = unsafe { Waker::from_raw(noop_raw()) };
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn config(bootstrap: &str, t: &Topics) -> Config {
    let mut c = Config::default();
    c.kafka.brokers = bootstrap.to_owned();
    c.kafka.group_id = t.group.clone();
    c.kafka.input_topic = t.input.clone();
    c.kafka.alert_topic = t.alerts.clone();
    c.kafka.dead_letter_topic = t.dead.clone();
    c.kafka.state_topic = t.state.clone();
    c.kafka.transactional_id_prefix = "fwt".into();
    c.kafka.commit_interval = fundwatch_rules::Span(200);
    c.kafka
        .client
        .insert("consumer.session.timeout.ms".into(), "6000".into());
    c.kafka
        .client
        .insert("producer.transaction.timeout.ms".into(), "10000".into());
    c.service.shutdown_grace = fundwatch_rules::Span(5000);
    // librdkafka debug contexts (e.g. "cgrp,eos,protocol") for diagnosing a test run; shown
    // with RUST_LOG=librdkafka=debug.
    if let Ok(debug) = std::env::var("FUNDWATCH_TEST_RDKAFKA_DEBUG") {
        c.kafka.client.insert("debug".into(), debug);
    }
    c
}

pub fn write_config(c: &Config, name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{}.toml", unique(name)));
    std::fs::write(&p, c.to_toml()).unwrap();
    p
}

/// `fundwatch_replay::replay` over `input`: the reference alert set (by id, wall clock blanked)
/// and the replay summary.
pub fn replay(input: &Path) -> (BTreeMap<String, Alert>, fundwatch_replay::ReplaySummary) {
    let (a, s, _) = replay_with_dead(input);
    (a, s)
}

/// Also the dead letters replay wrote: (reason code, original line).
pub fn replay_with_dead(
    input: &Path,
) -> (
    BTreeMap<String, Alert>,
    fundwatch_replay::ReplaySummary,
    Vec<(String, String)>,
) {
    replay_with_config(input, Config::default())
}

/// [`replay_with_dead`] under `config`.
pub fn replay_with_config(
    input: &Path,
    config: Config,
) -> (
    BTreeMap<String, Alert>,
    fundwatch_replay::ReplaySummary,
    Vec<(String, String)>,
) {
    let alerts = std::env::temp_dir().join(format!("{}.jsonl", unique("replay")));
    let dead = std::env::temp_dir().join(format!("{}.jsonl", unique("replay-dead")));
    let opts = fundwatch_replay::ReplayOptions {
        input: input.to_owned(),
        alerts: alerts.clone(),
        dead_letter: Some(dead.clone()),
        near_misses: None,
        config: Arc::new(config),
        cases: None,
        traces: None,
        route_dir: None,
        progress: false,
        clock: Clock::Fixed(0),
    };
    let summary = fundwatch_replay::replay(&opts).expect("replay");
    let text = std::fs::read_to_string(&alerts).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let a: Alert = serde_json::from_str(line).unwrap();
        out.insert(a.alert_id.clone(), a.without_wall_clock());
    }
    let mut dead_letters = Vec::new();
    for line in std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        dead_letters.push((
            v["code"].as_str().unwrap_or_default().to_owned(),
            v["raw"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let _ = std::fs::remove_file(alerts);
    let _ = std::fs::remove_file(dead);
    (out, summary, dead_letters)
}

pub struct Record {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Everything committed in `topic`, read with isolation.level=read_committed up to the end
/// of every partition.
pub fn read_committed(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    // High watermarks from a read_uncommitted client: a read_committed one is told the last
    // stable offset, so a partition held up by a hung transaction would look fully read.
    let hw: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", "read_uncommitted")
        .create()
        .unwrap();
    let deadline = Instant::now() + timeout;
    // Retried: another test may be restarting the broker (NotLeaderForPartition, timeouts).
    let parts: Vec<i32> = loop {
        match c.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(md) if md.topics()[0].error().is_none() && !md.topics()[0].partitions().is_empty() => {
                break md.topics()[0].partitions().iter().map(|p| p.id()).collect();
            }
            Ok(_) => eprintln!("reader: metadata of {topic} not ready; retrying"),
            Err(e) => eprintln!("reader: {e}; retrying"),
        }
        assert!(Instant::now() < deadline, "timed out reading metadata of {topic}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut eof: std::collections::HashSet<i32> = Default::default();
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        if eof.len() == parts.len() {
            // read_committed stops at the last stable offset: an open transaction (of a
            // killed instance, until the broker aborts it) hides what follows it. Done only
            // when every partition's position reached its high watermark.
            let pos = c.position().unwrap();
            let mut stable = true;
            let mut unknown = false;
            for p in &parts {
                let at = pos
                    .find_partition(topic, *p)
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(-1);
                match hw.fetch_watermarks(topic, *p, Duration::from_secs(5)) {
                    Ok((_, high)) => stable &= at >= high || high == 0,
                    // Broker restarting (another test): ask again, keeping the EOFs seen
                    // (an idle partition reports its end only once).
                    Err(_) => unknown = true,
                }
            }
            if unknown {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            if stable {
                break;
            }
            eof.clear();
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                let mut headers = HashMap::new();
                if let Some(h) = m.headers() {
                    for hd in h.iter() {
                        headers.insert(
                            hd.key.to_owned(),
                            String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                        );
                    }
                }
                out.push(Record {
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                    partition: m.partition(),
                    offset: m.offset(),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => eprintln!("reader: {e}"),
            None => {}
        }
    }
    out
}

/// Alerts committed in the alert topic: (by id, wall clock blanked), and how many records.
pub fn committed_alerts(bootstrap: &str, topic: &str) -> (BTreeMap<String, Alert>, usize) {
    let recs = read_committed(bootstrap, topic, Duration::from_secs(120));
    let n = recs.len();
    let mut out = BTreeMap::new();
    for r in recs {
        let a: Alert = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(r.key, a.account.as_bytes(), "alert key is the account");
        out.insert(a.alert_id.clone(), a.without_wall_clock());
    }
    (out, n)
}

/// Compare with the replay reference; panics with a readable difference.
pub fn assert_same_alerts(got: &BTreeMap<String, Alert>, n_records: usize, want: &BTreeMap<String, Alert>) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "alert sets differ: {} missing {:?}, {} extra {:?}",
        missing.len(),
        missing
            .iter()
            .take(5)
            .map(|k| (&want[*k].rule, &want[*k].account))
            .collect::<Vec<_>>(),
        extra.len(),
        extra
            .iter()
            .take(5)
            .map(|k| (&got[*k].rule, &got[*k].account))
            .collect::<Vec<_>>()
    );
    assert_eq!(n_records, want.len(), "duplicates on the alert topic");
    for (k, a) in want {
        assert_eq!(&got[k], a, "alert {k} differs");
    }
}

pub fn produce(c: &Config, input: &Path, rate: Option<f64>) -> fundwatch_kafka::ProduceSummary {
    let opts = fundwatch_kafka::ProduceOptions {
        input: input.to_owned(),
        rate,
        ..Default::default()
    };
    fundwatch_kafka::produce(c, &opts).expect("produce")
}

/// Produce with each record's event time as its Kafka timestamp (CreateTime), as a feed
/// replayed from a core system's history carries it.
pub fn produce_event_time(
    c: &Config,
    input: &Path,
    rate: Option<f64>,
    skip: u64,
    limit: Option<u64>,
) -> fundwatch_kafka::ProduceSummary {
    let opts = fundwatch_kafka::ProduceOptions {
        input: input.to_owned(),
        event_time: true,
        rate,
        skip,
        limit,
        ..Default::default()
    };
    fundwatch_kafka::produce(c, &opts).expect("produce")
}

pub fn spawn_service(config: &Path, instance: &str, idle_ms: Option<u64>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fundwatch-kafka-test-service"));
    cmd.arg("--config")
        .arg(config)
        .arg("--instance-id")
        .arg(instance)
        .arg("--listen")
        .arg("off")
        .env(
            "RUST_LOG",
            std::env::var("FUNDWATCH_TEST_SERVICE_LOG").unwrap_or_else(|_| "warn,fundwatch_kafka=info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Diagnosing a stress run: each service's log in a file of its own (interleaved
    // stderr of several test binaries is unreadable).
    if let Ok(dir) = std::env::var("FUNDWATCH_TEST_LOG_DIR") {
        let name = format!("{}-{instance}.log", unique("service"));
        let file = std::fs::File::create(Path::new(&dir).join(&name)).expect("create service log");
        eprintln!("service {instance}: log in {dir}/{name}");
        cmd.stderr(file);
    }
    if let Some(ms) = idle_ms {
        cmd.arg("--exit-when-idle-ms").arg(ms.to_string());
    }
    cmd.spawn().expect("spawn service")
}

/// Wait for a child with a timeout; returns its stdout (the run summary JSON).
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read;
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            assert!(status.success(), "service failed: {status} {out}");
            return serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
        }
        if Instant::now() > deadline {
            dump_stacks(child.id());
            let _ = child.kill();
            panic!("service did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A wedged service: print its threads' stacks (when gdb is installed) before it is killed,
/// so a CI log shows where it stopped.
fn dump_stacks(pid: u32) {
    let out = Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt 30"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => eprintln!(
            "stacks of the wedged service (pid {pid}):\n{}",
            String::from_utf8_lossy(&o.stdout)
        ),
        Err(e) => eprintln!("no stacks of the wedged service (gdb: {e})"),
    }
}

pub fn kill9(child: &mut Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,fundwatch_kafka=info".into()),
        )
        .with_test_writer()
        .try_init();
}
