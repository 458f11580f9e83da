//! Prometheus metrics (`fundwatch_*`) and the `/metrics`, `/healthz`, `/readyz` endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;

use crate::liveness::Liveness;
use crate::KafkaError;

/// Every metric the service exports, on its own registry.
pub struct Metrics {
    pub registry: Registry,
    pub records_consumed: IntCounterVec,
    pub records_rejected: IntCounterVec,
    /// Change events that are not transactions (`[input] format = "debezium"`), by kind.
    pub input_skipped: IntCounterVec,
    pub dead_letters: IntCounter,
    /// `fundwatch_input_misrouted_total`: live records whose Kafka key is not their account
    /// (`[input] keyed_by = "account"`).
    pub input_misrouted: IntCounter,
    /// `fundwatch_rekeyed_records_total`: input records the re-key stage wrote to the re-key
    /// topic (`keyed_by = "other"`).
    pub rekeyed: IntCounter,
    /// `fundwatch_rekey_transactions_total{outcome}`: the re-key stage's transactions.
    pub rekey_transactions: IntCounterVec,
    pub alerts: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub watermark_seconds: IntGaugeVec,
    pub state_bytes: IntGaugeVec,
    pub state_rows: IntGaugeVec,
    /// `fundwatch_dictionary_names{partition,kind}`: names live in a partition engine's
    /// dictionaries (`kind` = `account` or `counterparty`); it levels off once names nothing
    /// can remember are evicted.
    pub dictionary_names: IntGaugeVec,
    pub held_records: IntGaugeVec,
    pub processing_seconds: Histogram,
    pub commit_seconds: HistogramVec,
    pub transactions: IntCounterVec,
    pub rebuild_records: IntCounter,
    pub partitions_rebuilding: IntGauge,
    pub partitions_assigned: IntGauge,
    pub rebalances: IntCounterVec,
    pub recoveries: IntCounterVec,
    pub ready: IntGauge,
    pub config_reloads: IntCounterVec,
    pub config_info: IntGaugeVec,
    pub partition_starts: IntCounterVec,
    pub state_incomplete: IntGaugeVec,
    pub checkpoints: IntCounterVec,
    pub checkpoint_bytes: IntCounter,
    pub checkpoint_seconds: Histogram,
    /// `fundwatch_traces_total`: account traces the engines sent to `kafka.trace_topic`.
    pub traces: IntCounter,
    /// `fundwatch_linker_traces_total`: traces the linker applied live (restores excluded).
    pub linker_traces: IntCounter,
    /// `fundwatch_cases_open`: open cases of this instance's linker (0 while it stands by).
    pub cases_open: IntGauge,
    /// `fundwatch_case_versions_total`: case versions the linker sent to `kafka.case_topic`.
    pub case_versions: IntCounter,
    /// `fundwatch_linked_alerts_total`: alerts raised by a link, sent to the alert topic.
    pub linked_alerts: IntCounter,
    /// `fundwatch_routed_records_total{kind}`: records sent to office topics (`[routing]`),
    /// by kind: alert, case, notice.
    pub routed_records: IntCounterVec,
    /// `fundwatch_linker_restores_total`: the linker took the trace partition and rebuilt
    /// its state from the trace topic.
    pub linker_restores: IntCounter,
    /// Why the state may be wrong, by subject (e.g. "partition 3"): `/readyz` answers 503 with
    /// these while any is set.
    pub problems: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone())).expect("metric names are unique");
    m
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let cv = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gv = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let buckets = vec![
            0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025,
        ];
        let commit_buckets = vec![0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        Metrics {
            records_consumed: cv(
                "fundwatch_records_consumed_total",
                "Records read live from the input topic (rebuild replays not included)",
                &["partition"],
            ),
            records_rejected: cv(
                "fundwatch_records_rejected_total",
                "Records rejected, by reason code",
                &["reason"],
            ),
            input_skipped: cv(
                "fundwatch_input_skipped_total",
                "Change events passed over as not transactions (update, delete, tombstone, truncate, message), by kind",
                &["kind"],
            ),
            dead_letters: reg(
                &r,
                IntCounter::new(
                    "fundwatch_dead_letters_total",
                    "Records written to the dead-letter topic",
                )
                .expect("valid metric"),
            ),
            input_misrouted: reg(
                &r,
                IntCounter::new(
                    "fundwatch_input_misrouted_total",
                    "Live records whose Kafka key is not their account ([input] keyed_by = \"account\"; no key counts too): past [input] max_misrouted_share the service stops",
                )
                .expect("valid metric"),
            ),
            rekeyed: reg(
                &r,
                IntCounter::new(
                    "fundwatch_rekeyed_records_total",
                    "Input records the re-key stage wrote to the re-key topic keyed by account ([input] keyed_by = \"other\"; committed or not)",
                )
                .expect("valid metric"),
            ),
            rekey_transactions: cv(
                "fundwatch_rekey_transactions_total",
                "Transactions of the re-key stage ended, by outcome (committed, aborted)",
                &["outcome"],
            ),
            alerts: cv(
                "fundwatch_alerts_total",
                "Alerts produced (committed or not), by rule",
                &["rule"],
            ),
            consumer_lag: gv(
                "fundwatch_consumer_lag_records",
                "High watermark minus the next offset to process, per partition",
                &["partition"],
            ),
            watermark_seconds: gv(
                "fundwatch_event_watermark_seconds",
                "Engine event-time watermark (epoch seconds), per partition",
                &["partition"],
            ),
            state_bytes: gv(
                "fundwatch_window_state_bytes",
                "Heap bytes of window state",
                &["partition"],
            ),
            state_rows: gv("fundwatch_window_state_rows", "Rows held in windows", &["partition"]),
            dictionary_names: gv(
                "fundwatch_dictionary_names",
                "Names live in the engine's account and counterparty dictionaries",
                &["partition", "kind"],
            ),
            held_records: gv(
                "fundwatch_reorder_held_records",
                "Records waiting in the reorder buffer for the watermark",
                &["partition"],
            ),
            processing_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "fundwatch_record_processing_seconds",
                        "Time to decode and process one record and send its alerts",
                    )
                    .buckets(buckets),
                )
                .expect("valid metric"),
            ),
            commit_seconds: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "fundwatch_commit_seconds",
                        "Time to commit a transaction (offsets, alerts, dead letters)",
                    )
                    .buckets(commit_buckets),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            transactions: cv(
                "fundwatch_transactions_total",
                "Transactions ended, by outcome (committed, aborted)",
                &["outcome"],
            ),
            rebuild_records: reg(
                &r,
                IntCounter::new(
                    "fundwatch_rebuild_records_replayed_total",
                    "Records replayed with emit off to rebuild partition state",
                )
                .expect("valid metric"),
            ),
            partitions_rebuilding: reg(
                &r,
                IntGauge::new(
                    "fundwatch_partitions_rebuilding",
                    "Assigned partitions still rebuilding state",
                )
                .expect("valid metric"),
            ),
            partitions_assigned: reg(
                &r,
                IntGauge::new("fundwatch_partitions_assigned", "Partitions assigned to this instance")
                    .expect("valid metric"),
            ),
            rebalances: cv("fundwatch_rebalances_total", "Rebalance events, by kind", &["kind"]),
            recoveries: cv(
                "fundwatch_recoveries_total",
                "Recovery actions, by action: consumer_recreated (fatal consumer, e.g. a fenced static member), producer_recreated (fatal producer, or an abort that failed), producer_wedged (a send_offsets_to_transaction that never returned; the producer is replaced), hung_transaction_aborted (a transaction the broker completed without writing its markers, aborted from the same producer id), duplicate_suppressed (an alert or dead letter not sent again because the read-back after a hung transaction found it already committed)",
                &["action"],
            ),
            ready: reg(
                &r,
                IntGauge::new("fundwatch_ready", "1 when every assigned partition is live").expect("valid metric"),
            ),
            config_reloads: cv(
                "fundwatch_config_reloads_total",
                "Config re-reads (file change or SIGHUP), by result: applied, refused (invalid, or a setting that needs a restart), unchanged",
                &["result"],
            ),
            config_info: gv(
                "fundwatch_config_info",
                "1 for the config_version the service runs (stamped on its alerts)",
                &["config_version"],
            ),
            partition_starts: cv(
                "fundwatch_partition_starts_total",
                "Partitions taken up, by how their state was built: checkpoint (restored, then the records after it), rebuild (from the input topic's lookback, no usable checkpoint), empty (nothing within the lookback), fresh (nothing committed)",
                &["from"],
            ),
            state_incomplete: gv(
                "fundwatch_state_incomplete",
                "1 while a partition's state lacks records the input's retention deleted (see /readyz and the log)",
                &["partition"],
            ),
            checkpoints: cv(
                "fundwatch_checkpoints_total",
                "Partition checkpoints written to the state topic, by outcome of their transaction (committed, aborted)",
                &["outcome"],
            ),
            checkpoint_bytes: reg(
                &r,
                IntCounter::new(
                    "fundwatch_checkpoint_bytes_total",
                    "Bytes of committed checkpoints (new immutable objects, heads, manifests)",
                )
                .expect("valid metric"),
            ),
            checkpoint_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "fundwatch_checkpoint_seconds",
                        "Time to serialise and send one commit's checkpoints (inside its transaction)",
                    )
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
                )
                .expect("valid metric"),
            ),
            traces: reg(
                &r,
                IntCounter::new(
                    "fundwatch_traces_total",
                    "Account traces the engines sent to the trace topic (committed or not)",
                )
                .expect("valid metric"),
            ),
            linker_traces: reg(
                &r,
                IntCounter::new(
                    "fundwatch_linker_traces_total",
                    "Traces the case linker applied live (restores excluded)",
                )
                .expect("valid metric"),
            ),
            cases_open: reg(
                &r,
                IntGauge::new(
                    "fundwatch_cases_open",
                    "Open cases of this instance's linker (0 while it stands by)",
                )
                .expect("valid metric"),
            ),
            case_versions: reg(
                &r,
                IntCounter::new(
                    "fundwatch_case_versions_total",
                    "Case versions the linker sent to the case topic (committed or not)",
                )
                .expect("valid metric"),
            ),
            linked_alerts: reg(
                &r,
                IntCounter::new(
                    "fundwatch_linked_alerts_total",
                    "Alerts raised by a link that the linker sent to the alert topic (committed or not)",
                )
                .expect("valid metric"),
            ),
            routed_records: cv(
                "fundwatch_routed_records_total",
                "Records sent to office topics ([routing]), by kind: alert, case, notice",
                &["kind"],
            ),
            linker_restores: reg(
                &r,
                IntCounter::new(
                    "fundwatch_linker_restores_total",
                    "Times the linker took the trace partition and rebuilt its state from the trace topic",
                )
                .expect("valid metric"),
            ),
            problems: Default::default(),
            registry: r,
        }
    }

    /// Record (Some) or clear (None) a problem shown by `/readyz`.
    pub fn set_problem(&self, subject: &str, message: Option<String>) {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        match message {
            Some(m) => {
                p.insert(subject.to_owned(), m);
            }
            None => {
                p.remove(subject);
            }
        }
    }

    fn problems_text(&self) -> Option<String> {
        let p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        (!p.is_empty()).then(|| p.values().map(|m| format!("{m}\n")).collect())
    }

    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The HTTP endpoints (axum on a one-thread tokio runtime, on its own OS thread so the
/// poll loop never waits on a scrape), until dropped.
pub struct HttpServer {
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Endpoints {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    liveness: Arc<Liveness>,
}

type Reply = (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>);

fn text(status: StatusCode, body: impl Into<Vec<u8>>) -> Reply {
    (status, [(header::CONTENT_TYPE, "text/plain")], body.into())
}

async fn metrics_page(State(e): State<Arc<Endpoints>>) -> Reply {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.metrics.render(),
    )
}

async fn healthz(State(e): State<Arc<Endpoints>>) -> Reply {
    match e.liveness.unhealthy() {
        None => text(StatusCode::OK, "ok\n"),
        Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn readyz(State(e): State<Arc<Endpoints>>) -> Reply {
    match e.metrics.problems_text() {
        Some(problems) => text(StatusCode::SERVICE_UNAVAILABLE, format!("state incomplete\n{problems}")),
        None if e.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n"),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
    }
}

async fn not_found() -> Reply {
    text(StatusCode::NOT_FOUND, "not found\n")
}

impl HttpServer {
    pub fn start(
        listen: &str,
        metrics: Arc<Metrics>,
        ready: Arc<AtomicBool>,
        liveness: Arc<Liveness>,
    ) -> Result<HttpServer, KafkaError> {
        let listen_err = |e: std::io::Error| KafkaError::Listen(listen.to_owned(), e.to_string());
        // Bound here, not on the server thread: a taken or invalid address fails the start,
        // naming it.
        let listener = std::net::TcpListener::bind(listen).map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?.to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| KafkaError::Other(format!("cannot start the http runtime: {e}")))?;
        let app = Router::new()
            .route("/metrics", get(metrics_page))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .fallback(not_found)
            .with_state(Arc::new(Endpoints {
                metrics,
                ready,
                liveness,
            }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fundwatch-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "http endpoints: cannot listen");
                            return;
                        }
                    };
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "http endpoints stopped");
                    }
                });
            })
            .map_err(|e| KafkaError::Other(format!("cannot start http thread: {e}")))?;
        Ok(HttpServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::{Phase, UNHEALTHY_AFTER};
    use std::io::{Read, Write};
    use std::time::Duration;

    fn get(addr: &str, path: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    #[test]
    fn endpoints_report_metrics_readiness_and_liveness() {
        let metrics = Arc::new(Metrics::new());
        metrics.dead_letters.inc();
        metrics.input_skipped.with_label_values(&["tombstone"]).inc_by(3);
        let ready = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Liveness::default());
        live.beat(Phase::Polling);
        let server = HttpServer::start("127.0.0.1:0", metrics, ready.clone(), live).expect("listen");
        let (code, body) = get(&server.addr, "/metrics");
        assert_eq!(code, 200);
        assert!(body.contains("fundwatch_dead_letters_total 1"), "{body}");
        assert!(
            body.contains("fundwatch_input_skipped_total{kind=\"tombstone\"} 3"),
            "{body}"
        );
        assert_eq!(get(&server.addr, "/healthz"), (200, "ok\n".into()));
        assert_eq!(get(&server.addr, "/readyz").0, 503);
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get(&server.addr, "/readyz"), (200, "ready\n".into()));
        assert_eq!(get(&server.addr, "/nope").0, 404);
        drop(server);

        let Some(stalled) = Liveness::stalled_for(UNHEALTHY_AFTER + Duration::from_secs(5), Phase::Committing) else {
            return; // the clock starts too recently to fake an old beat
        };
        let server =
            HttpServer::start("127.0.0.1:0", Arc::new(Metrics::new()), ready, Arc::new(stalled)).expect("listen");
        let (code, body) = get(&server.addr, "/healthz");
        assert_eq!(code, 503);
        assert!(body.contains("stalled") && body.contains("while committing"), "{body}");
    }
}
