//! Prometheus metrics (`fundwatch_*`) and the `/metrics`, `/healthz`, `/readyz` endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::KafkaError;

/// Every metric the service exports, on its own registry.
pub struct Metrics {
    pub registry: Registry,
    pub records_consumed: IntCounterVec,
    pub records_rejected: IntCounterVec,
    pub dead_letters: IntCounter,
    pub alerts: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub watermark_seconds: IntGaugeVec,
    pub state_bytes: IntGaugeVec,
    pub state_rows: IntGaugeVec,
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
            dead_letters: reg(
                &r,
                IntCounter::new(
                    "fundwatch_dead_letters_total",
                    "Records written to the dead-letter topic",
                )
                .expect("valid metric"),
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
                "Recovery actions, by action: consumer_recreated (fatal consumer, e.g. a fenced static member), producer_recreated (fatal producer, or an abort that failed), hung_transaction_aborted (a transaction the broker completed without writing its markers, aborted from the same producer id)",
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
            registry: r,
        }
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

/// The HTTP endpoints, on their own thread until dropped.
pub struct HttpServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub addr: String,
}

impl HttpServer {
    pub fn start(listen: &str, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> Result<HttpServer, KafkaError> {
        let server =
            tiny_http::Server::http(listen).map_err(|e| KafkaError::Listen(listen.to_owned(), e.to_string()))?;
        let addr = server.server_addr().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("fundwatch-http".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) else {
                        continue;
                    };
                    let path = req.url().split('?').next().unwrap_or("").to_owned();
                    let (status, body, ctype) = match path.as_str() {
                        "/metrics" => (200, metrics.render(), "text/plain; version=0.0.4"),
                        "/healthz" => (200, b"ok\n".to_vec(), "text/plain"),
                        "/readyz" if ready.load(Ordering::Relaxed) => (200, b"ready\n".to_vec(), "text/plain"),
                        "/readyz" => (503, b"not ready\n".to_vec(), "text/plain"),
                        _ => (404, b"not found\n".to_vec(), "text/plain"),
                    };
                    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes())
                        .expect("static header is valid");
                    let resp = tiny_http::Response::from_data(body)
                        .with_status_code(status)
                        .with_header(header);
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| KafkaError::Other(format!("cannot start http thread: {e}")))?;
        Ok(HttpServer {
            stop,
            handle: Some(handle),
            addr,
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
