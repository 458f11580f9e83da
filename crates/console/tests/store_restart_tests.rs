//! Restarting the console loses nothing and duplicates nothing: the SQLite file reopened,
//! the same files ingested again, an older case version read after a newer one, a file
//! resumed from its stored offset; and the file reporter writes each confirmation once.

mod common;

use std::io::Write;

use common::*;
use fundwatch_console::auth::{parse_regions, Role, User};
use fundwatch_console::ingest::{ingest_file, Feed};
use fundwatch_console::report::{report_to_file_once, reported_in_file};
use fundwatch_console::store::{Action, InboxQuery, ItemKind, ReviewInput, Table};

fn write_lines(path: &std::path::Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

fn supervisor() -> User {
    User {
        name: "all_super".into(),
        role: Role::Supervisor,
        prefixes: parse_regions("*").expect("regions"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_database_and_reingesting_the_same_files_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let cases = dir.path().join("cases.jsonl");
    write_lines(
        &alerts,
        &[
            alert_json("a1", "310101", "scatter_in_concentrated_out", 80.0, 3),
            "not json at all".into(),
            alert_json("a2", "310101", "periodic_batch_small_out", 70.0, 4),
        ],
    );
    write_lines(
        &cases,
        &[
            case_json("k1", 1, "310101", &["310101"], &["a1"], 10, "500.00"),
            case_json("k1", 2, "310101", &["310101"], &["a1", "a2"], 40, "90000.10"),
        ],
    );
    {
        let store = open_store(&dir).await;
        let a = ingest_file(&store, Feed::Alerts, &alerts).await.expect("alerts");
        assert_eq!((a.counts.alerts_new, a.rejected), (2, 1));
        let c = ingest_file(&store, Feed::Cases, &cases).await.expect("cases");
        assert_eq!(c.counts.cases_stored, 2);
        store
            .review(
                &supervisor(),
                &ReviewInput {
                    kind: ItemKind::Case,
                    item_id: "k1".into(),
                    action: Action::Confirm,
                    reason_code: String::new(),
                    notes: "confirmed before the restart".into(),
                    seen_actions: None,
                },
            )
            .await
            .expect("review");
        store
            .add_user(
                "sh_analyst",
                PASSWORD,
                Role::Analyst,
                &parse_regions("3101").expect("r"),
            )
            .await
            .expect("user");
    }
    // Reopen the same file.
    let store = open_store(&dir).await;
    assert_eq!(
        store.schema_version().await.expect("version"),
        fundwatch_console::store::SCHEMA_VERSION
    );
    // Read again from the stored offsets: nothing new.
    let a = ingest_file(&store, Feed::Alerts, &alerts).await.expect("alerts");
    assert_eq!(
        (a.counts.alerts_new, a.counts.alerts_known),
        (0, 0),
        "resumed at the stored offset"
    );
    // Read the whole files again as if the offsets were lost (a new source name): no duplicates.
    let copy_a = dir.path().join("alerts-copy.jsonl");
    let copy_c = dir.path().join("cases-copy.jsonl");
    std::fs::copy(&alerts, &copy_a).expect("copy");
    std::fs::copy(&cases, &copy_c).expect("copy");
    let a = ingest_file(&store, Feed::Alerts, &copy_a).await.expect("alerts");
    assert_eq!((a.counts.alerts_new, a.counts.alerts_known), (0, 2));
    let c = ingest_file(&store, Feed::Cases, &copy_c).await.expect("cases");
    assert_eq!((c.counts.cases_stored, c.counts.cases_stale), (0, 2));
    assert_eq!(store.count(Table::Alerts).await.expect("n"), 2);
    assert_eq!(store.count(Table::Cases).await.expect("n"), 1);
    assert_eq!(store.count(Table::CaseAlerts).await.expect("n"), 2);
    assert_eq!(store.count(Table::Audit).await.expect("n"), 1);
    assert_eq!(store.count(Table::Outbox).await.expect("n"), 1);
    assert_eq!(store.count(Table::Users).await.expect("n"), 1);
    let k1 = store.case(&supervisor(), "k1").await.expect("case").expect("k1");
    assert_eq!((k1.version, k1.investors, k1.raised_fen), (2, 40, 9_000_010));
    assert_eq!(k1.status.status, "confirmed");
    assert_eq!(k1.max_score, 80.0);
    let inbox = store
        .inbox(
            &supervisor(),
            &InboxQuery {
                page_size: 50,
                ..Default::default()
            },
        )
        .await
        .expect("inbox");
    assert_eq!(inbox.total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_case_version_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    store
        .ingest(&[case("k", 5, "3101", &["3101", "3201"], &["x"])], &[])
        .await
        .expect("v5");
    let c = store
        .ingest(&[case("k", 4, "3101", &["3101"], &[])], &[])
        .await
        .expect("v4");
    assert_eq!((c.cases_stored, c.cases_stale), (0, 1));
    let k = store.case(&supervisor(), "k").await.expect("case").expect("k");
    assert_eq!(k.version, 5);
    assert_eq!(k.regions, vec!["3101".to_string(), "3201".to_string()]);
    // A case whose alert arrives later takes the alert's score.
    store.ingest(&[alert("x", "3101", 66.5)], &[]).await.expect("alert");
    assert_eq!(
        store
            .case(&supervisor(), "k")
            .await
            .expect("case")
            .expect("k")
            .max_score,
        66.5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_resumed_after_its_last_complete_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    let path = dir.path().join("alerts.jsonl");
    write_lines(&path, &[alert_json("f1", "3101", "structuring", 60.0, 2)]);
    // Half a line (replay still writing it) is left for the next read.
    let partial = alert_json("f2", "3101", "structuring", 61.0, 2);
    let (head, tail) = partial.split_at(20);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open")
        .write_all(head.as_bytes())
        .expect("write");
    assert_eq!(
        ingest_file(&store, Feed::Alerts, &path)
            .await
            .expect("read")
            .counts
            .alerts_new,
        1
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open")
        .write_all(format!("{tail}\n").as_bytes())
        .expect("write");
    let second = ingest_file(&store, Feed::Alerts, &path).await.expect("read");
    assert_eq!((second.counts.alerts_new, second.rejected), (1, 0));
    assert_eq!(store.count(Table::Alerts).await.expect("n"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_reporter_writes_each_confirmation_once_even_after_a_crash_before_marking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    store.ingest(&sample_items(), &[]).await.expect("ingest");
    let confirm = |id: &str| ReviewInput {
        kind: ItemKind::Case,
        item_id: id.into(),
        action: Action::Confirm,
        reason_code: String::new(),
        notes: String::new(),
        seen_actions: None,
    };
    let first = store.review(&supervisor(), &confirm("c-sh")).await.expect("confirm");
    let reported = dir.path().join("reported.jsonl");
    assert_eq!(report_to_file_once(&store, &reported).await.expect("report"), 1);
    assert_eq!(report_to_file_once(&store, &reported).await.expect("report"), 0);
    // A crash after writing and before marking: the row is unsent again, the line is there.
    let second = store.review(&supervisor(), &confirm("c-js")).await.expect("confirm");
    let row = store.unsent(10).await.expect("unsent").remove(0);
    write_lines(&reported, std::slice::from_ref(&row.payload));
    assert_eq!(
        report_to_file_once(&store, &reported).await.expect("report"),
        0,
        "already in the file"
    );
    assert!(store.unsent(10).await.expect("unsent").is_empty());
    let ids = reported_in_file(&reported).expect("read");
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first) && ids.contains(&second));
    let lines = std::fs::read_to_string(&reported).expect("read");
    assert_eq!(lines.lines().count(), 2);
    let v: serde_json::Value = serde_json::from_str(lines.lines().next().expect("line")).expect("json");
    assert_eq!(v["case_id"], "c-sh");
    assert_eq!(v["lead_region"], "310104");
}
