//! The review console (`fundwatch console`): owns the reviewer's side of fundwatch.
//!
//! - [`store`]: the console's database (SQLite file by default, PostgreSQL by URL), its
//!   embedded migrations, and every read and write the pages and feeds make;
//! - [`ingest`]: alerts and cases into the store, from replay's JSON Lines files or from the
//!   alert and case topics (read_committed, offsets kept in the same transaction as the rows);
//! - [`web`]: the server-rendered pages and the JSON API (login, sessions, CSRF, roles and
//!   region scopes, the inbox, case and alert pages, review actions);
//! - [`report`]: confirmed cases from the outbox to the `reported` topic exactly once
//!   (transactional producer), or to a JSON Lines file.
//!
//! It deliberately links neither the engine nor arrow: records are read by field.

pub mod auth;
pub mod chart;
pub mod error;
pub mod ingest;
pub mod kafka;
pub mod money;
pub mod records;
pub mod report;
pub mod store;
pub mod web;

pub use error::{ConsoleError, Result};
pub use store::Store;

use chrono::{FixedOffset, TimeZone, Utc};

/// Beijing (UTC+8): calendar days and times on the pages.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

/// Epoch ms → RFC 3339 UTC with milliseconds.
pub fn format_utc(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// Epoch ms → "2026-03-01 14:05" Beijing time.
pub fn format_beijing(ms: i64) -> String {
    match beijing().timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ms.to_string(),
    }
}

/// "2026-03-01" → the epoch ms at which that Beijing day starts.
pub fn beijing_day_start_ms(day: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d").ok()?;
    let midnight = date.and_hms_opt(0, 0, 0)?;
    beijing()
        .from_local_datetime(&midnight)
        .single()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    #[test]
    fn beijing_days() {
        // 2026-03-01 00:00 +08:00 is 2026-02-28 16:00 UTC.
        let ms = super::beijing_day_start_ms("2026-03-01").expect("day");
        assert_eq!(super::format_utc(ms), "2026-02-28T16:00:00.000Z");
        assert_eq!(super::format_beijing(ms), "2026-03-01 00:00");
        assert!(super::beijing_day_start_ms("2026-13-01").is_none());
    }
}

/// What `fundwatch console serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub database_url: String,
    pub listen: String,
    pub session_ttl_ms: i64,
    pub secure_cookies: bool,
    /// Files mode: replay's output files (and where confirmed cases are written).
    pub files: Option<ingest::FileFeeds>,
    /// Keep reading what is appended to the files.
    pub follow: bool,
    pub reported_file: Option<std::path::PathBuf>,
    /// Kafka mode (when `files` is `None`).
    pub kafka: Option<kafka::KafkaSettings>,
}

/// Serve until SIGINT/SIGTERM (or `shutdown` resolves): the web app, the ingest and the
/// reporter, on one store.
pub async fn serve(opts: ServeOptions, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    let store = Store::open(&opts.database_url).await?;
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| ConsoleError::Listen {
            addr: opts.listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| opts.listen.clone());
    tracing::info!(%addr, "console listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut threads = Vec::new();
    if let Some(files) = opts.files.clone() {
        let (s, rx, follow) = (store.clone(), stop_rx.clone(), opts.follow);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = ingest::run_files(s, files, follow, rx).await {
                tracing::error!(error = %e, "file ingest stopped");
            }
        }));
    } else if let Some(k) = opts.kafka.clone() {
        let rt = tokio::runtime::Handle::current();
        let (s, flag, k2, rt2, s2, flag2) = (
            store.clone(),
            stop_flag.clone(),
            k.clone(),
            rt.clone(),
            store.clone(),
            stop_flag.clone(),
        );
        threads.push(std::thread::spawn(move || {
            if let Err(e) = kafka::run_ingest(s, k, rt, flag) {
                tracing::error!(error = %e, "kafka ingest stopped");
            }
        }));
        if opts.reported_file.is_none() {
            threads.push(std::thread::spawn(move || {
                if let Err(e) = kafka::run_reporter(s2, k2, rt2, flag2) {
                    tracing::error!(error = %e, "kafka reporter stopped");
                }
            }));
        }
    }
    if let Some(path) = opts.reported_file.clone() {
        let (s, rx) = (store.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let _ = report::run_file_reporter(s, path, rx).await;
        }));
    }

    let state = Arc::new(web::AppState {
        store,
        session_ttl_ms: opts.session_ttl_ms,
        secure_cookies: opts.secure_cookies,
    });
    axum::serve(listener, web::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ConsoleError::Listen { addr, source })?;
    let _ = stop_tx.send(true);
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    for t in threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ConsoleError::Io {
            path: "tokio runtime".into(),
            source,
        })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("stopping the console");
}

/// `fundwatch console serve`: blocks until SIGINT/SIGTERM.
pub fn serve_blocking(opts: ServeOptions) -> Result<()> {
    runtime()?.block_on(serve(opts, shutdown_signal()))
}

/// `fundwatch console add-user`.
pub fn add_user_blocking(
    database_url: &str,
    name: &str,
    password: &str,
    role: auth::Role,
    regions: &str,
) -> Result<()> {
    let prefixes = auth::parse_regions(regions)?;
    runtime()?.block_on(async {
        let store = Store::open(database_url).await?;
        store.add_user(name, password, role, &prefixes).await
    })
}
