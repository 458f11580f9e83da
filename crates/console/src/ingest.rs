//! Alerts and cases into the store. Files: replay's JSON Lines, read from the byte offset the
//! store last recorded (only complete lines), each batch stored with its new offset in one
//! transaction. Kafka: see [`crate::kafka`]. A line that is not a valid record is logged with
//! its reason and skipped; it never stops the feed.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{ConsoleError, Result};
use crate::records::{AlertRow, CaseRow, Incoming};
use crate::store::{IngestCounts, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Alerts,
    Cases,
}

impl Feed {
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Alerts => "alerts",
            Feed::Cases => "cases",
        }
    }

    /// One record of this feed from its JSON text.
    pub fn parse(self, text: &str) -> std::result::Result<Incoming, crate::records::RecordError> {
        match self {
            Feed::Alerts => AlertRow::parse(text).map(Incoming::Alert),
            Feed::Cases => CaseRow::parse(text).map(Incoming::Case),
        }
    }
}

const BATCH_LINES: usize = 1000;

/// Totals of one pass over a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileIngest {
    pub counts: IngestCounts,
    pub rejected: u64,
}

fn source_key(feed: Feed, path: &Path) -> String {
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file:{}:{}", feed.as_str(), shown.display())
}

/// Complete lines from `offset`, at most `max`; returns them and the offset after the last.
/// A file shorter than `offset` was replaced: it is read again from the start (what was
/// stored already is recognised and not duplicated).
fn read_lines(path: &Path, offset: u64, max: usize) -> Result<(Vec<String>, u64)> {
    let io = |source| ConsoleError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut offset = if len < offset { 0 } else { offset };
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    while lines.len() < max {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break; // end, or a line still being written
        }
        offset += n as u64;
        lines.push(String::from_utf8_lossy(&buf).trim().to_owned());
    }
    Ok((lines, offset))
}

/// Read a file from its stored position to its end.
pub async fn ingest_file(store: &Store, feed: Feed, path: &Path) -> Result<FileIngest> {
    let key = source_key(feed, path);
    let mut offset = store.positions().await?.get(&key).copied().unwrap_or(0).max(0) as u64;
    let mut total = FileIngest::default();
    loop {
        let p = path.to_path_buf();
        let (lines, next) = tokio::task::spawn_blocking(move || read_lines(&p, offset, BATCH_LINES))
            .await
            .map_err(|e| ConsoleError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })??;
        if lines.is_empty() && next == offset {
            return Ok(total);
        }
        let mut items = Vec::with_capacity(lines.len());
        for line in lines.iter().filter(|l| !l.is_empty()) {
            match feed.parse(line) {
                Ok(item) => items.push(item),
                Err(e) => {
                    total.rejected += 1;
                    tracing::warn!(file = %path.display(), reason = %e, "skipped a line that is not a valid {} record", feed.as_str());
                }
            }
        }
        let c = store.ingest(&items, &[(key.clone(), next as i64)]).await?;
        total.counts.alerts_new += c.alerts_new;
        total.counts.alerts_known += c.alerts_known;
        total.counts.cases_stored += c.cases_stored;
        total.counts.cases_stale += c.cases_stale;
        offset = next;
    }
}

/// replay's output files, read once or followed.
#[derive(Debug, Clone, Default)]
pub struct FileFeeds {
    pub alerts: Option<PathBuf>,
    pub cases: Option<PathBuf>,
}

/// Read the files to their end, then (with `follow`) keep reading what is appended until
/// `stop` turns true. Alerts first, so a case's score is known when it is stored.
pub async fn run_files(store: Store, feeds: FileFeeds, follow: bool, mut stop: watch::Receiver<bool>) -> Result<()> {
    loop {
        for (feed, path) in [(Feed::Alerts, &feeds.alerts), (Feed::Cases, &feeds.cases)] {
            let Some(path) = path else { continue };
            if !path.exists() && follow {
                continue; // replay has not created it yet
            }
            let done = ingest_file(&store, feed, path).await?;
            if done.counts != IngestCounts::default() || done.rejected > 0 {
                tracing::info!(file = %path.display(), feed = feed.as_str(), counts = ?done.counts, rejected = done.rejected, "ingested");
            }
        }
        if !follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return Ok(()),
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}
