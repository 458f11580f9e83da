//! Confirmed cases leave through the outbox: a review that confirms a case writes the outbox
//! row in its own transaction, and a reporter sends unsent rows and marks them sent. Exactly
//! once in both sinks by the same rule: before sending, look at what the sink already holds
//! and mark those review ids sent (a crash between sending and marking), then send the rest.
//! The Kafka sink is in [`crate::kafka`]; the file sink is here.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{ConsoleError, Result};
use crate::store::Store;

/// The review id of a reported record (its `review.review_id`).
pub fn review_id_of(payload: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    v.get("review")?.get("review_id")?.as_str().map(str::to_owned)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConsoleError + '_ {
    move |source| ConsoleError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The review ids a reported-file already holds.
pub fn reported_in_file(path: &Path) -> Result<HashSet<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut ids = HashSet::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(io(path))?;
        if let Some(id) = review_id_of(&line) {
            ids.insert(id);
        }
    }
    Ok(ids)
}

/// One pass of the file sink: reconcile with the file, append the unsent rows (fsynced),
/// mark them sent. Returns how many were appended.
pub async fn report_to_file_once(store: &Store, path: &Path) -> Result<usize> {
    let pending = store.unsent(500).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let p = path.to_path_buf();
    let already = tokio::task::spawn_blocking(move || reported_in_file(&p))
        .await
        .map_err(|e| io(path)(std::io::Error::other(e.to_string())))??;
    let (done, todo): (Vec<_>, Vec<_>) = pending.into_iter().partition(|r| already.contains(&r.review_id));
    if !done.is_empty() {
        store
            .mark_sent(&done.iter().map(|r| r.review_id.clone()).collect::<Vec<_>>())
            .await?;
    }
    if todo.is_empty() {
        return Ok(0);
    }
    let p = path.to_path_buf();
    let lines: Vec<String> = todo.iter().map(|r| r.payload.clone()).collect();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p)?;
        for l in &lines {
            f.write_all(l.as_bytes())?;
            f.write_all(b"\n")?;
        }
        f.sync_all()
    })
    .await
    .map_err(|e| io(path)(std::io::Error::other(e.to_string())))?
    .map_err(io(path))?;
    store
        .mark_sent(&todo.iter().map(|r| r.review_id.clone()).collect::<Vec<_>>())
        .await?;
    for r in &todo {
        tracing::info!(case = r.case_id.as_str(), review_id = r.review_id.as_str(), file = %path.display(), "reported");
    }
    Ok(todo.len())
}

/// The file sink until `stop`.
pub async fn run_file_reporter(store: Store, path: PathBuf, mut stop: watch::Receiver<bool>) -> Result<()> {
    loop {
        if let Err(e) = report_to_file_once(&store, &path).await {
            tracing::error!(error = %e, "reporting to file failed; retrying");
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
