//! Review actions: dismiss needs a reason, decided items change only by a supervisor's
//! re-open, the audit trail is append-only (the database refuses edits) and shown on the
//! page, and a confirmed case enters the outbox in the review's transaction.

mod common;

use common::*;
use fundwatch_console::auth::{parse_regions, Role, User};
use fundwatch_console::store::{Action, ItemKind, ReviewError, ReviewInput, Table};
use fundwatch_console::ConsoleError;

fn user(name: &str, role: Role, regions: &str) -> User {
    User {
        name: name.into(),
        role,
        prefixes: parse_regions(regions).expect("regions"),
    }
}

fn input(kind: ItemKind, id: &str, action: Action, reason: &str, notes: &str) -> ReviewInput {
    ReviewInput {
        kind,
        item_id: id.into(),
        action,
        reason_code: reason.into(),
        notes: notes.into(),
        seen_actions: None,
    }
}

fn review_error(r: Result<String, ConsoleError>) -> ReviewError {
    match r {
        Err(ConsoleError::Review(e)) => e,
        other => panic!("expected a refused review, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dismiss_requires_a_listed_reason_code_and_a_written_reason() {
    let c = console_with(sample_items()).await;
    let analyst = user("sh_analyst", Role::Analyst, "3101");
    let e = review_error(
        c.store
            .review(
                &analyst,
                &input(ItemKind::Alert, "a-sh", Action::Dismiss, "", "wedding gifts"),
            )
            .await,
    );
    assert!(matches!(e, ReviewError::Invalid(_)), "{e:?}");
    let e = review_error(
        c.store
            .review(
                &analyst,
                &input(ItemKind::Alert, "a-sh", Action::Dismiss, "made_up", "wedding gifts"),
            )
            .await,
    );
    assert!(matches!(e, ReviewError::Invalid(_)), "{e:?}");
    let e = review_error(
        c.store
            .review(
                &analyst,
                &input(ItemKind::Alert, "a-sh", Action::Dismiss, "family_or_community", "  "),
            )
            .await,
    );
    assert!(matches!(e, ReviewError::Invalid(_)), "{e:?}");
    assert_eq!(c.store.count(Table::Audit).await.expect("count"), 0);
    c.store
        .review(
            &analyst,
            &input(
                ItemKind::Alert,
                "a-sh",
                Action::Dismiss,
                "family_or_community",
                "wedding gifts",
            ),
        )
        .await
        .expect("dismiss with reason");
    assert_eq!(
        c.store.status(ItemKind::Alert, "a-sh").await.expect("status").status,
        "dismissed"
    );

    // Over HTTP the same: 422 without a reason, and the page shows the trail afterwards.
    let sh = login(&c.addr, "sh_analyst").await;
    let r = request(
        &c.addr,
        "POST",
        "/alerts/a-sh2/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[("csrf", &sh.csrf), ("action", "dismiss"), ("notes", "no code")])),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = request(
        &c.addr,
        "POST",
        "/alerts/a-sh2/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[
            ("csrf", &sh.csrf),
            ("action", "dismiss"),
            ("reason_code", "known_business"),
            ("notes", "the school's fee run"),
        ])),
    )
    .await;
    assert_eq!(r.status, 303);
    let page = request(&c.addr, "GET", "/alerts/a-sh2", Some(&sh.cookie), &[], None).await;
    assert!(
        page.body.contains("the school&#39;s fee run"),
        "audit trail on the page"
    );
    assert!(page.body.contains("known_business") && page.body.contains("sh_analyst"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_item_is_not_changed_except_by_a_supervisors_reopen() {
    let c = console_with(sample_items()).await;
    let analyst = user("sh_analyst", Role::Analyst, "3101");
    let supervisor = user("sh_super", Role::Supervisor, "31");
    c.store
        .review(
            &analyst,
            &input(ItemKind::Case, "c-sh", Action::Confirm, "", "collects from pensioners"),
        )
        .await
        .expect("confirm");
    // Decided: no second decision, by anyone.
    let e = review_error(
        c.store
            .review(
                &analyst,
                &input(ItemKind::Case, "c-sh", Action::Dismiss, "duplicate", "oops"),
            )
            .await,
    );
    assert!(matches!(e, ReviewError::Conflict(_)), "{e:?}");
    let e = review_error(
        c.store
            .review(
                &supervisor,
                &input(ItemKind::Case, "c-sh", Action::NeedsInfo, "", "more"),
            )
            .await,
    );
    assert!(matches!(e, ReviewError::Conflict(_)), "{e:?}");
    // An analyst cannot re-open.
    let e = review_error(
        c.store
            .review(&analyst, &input(ItemKind::Case, "c-sh", Action::Reopen, "", "mistake"))
            .await,
    );
    assert!(matches!(e, ReviewError::Forbidden(_)), "{e:?}");
    // A re-open needs a reason.
    let e = review_error(
        c.store
            .review(&supervisor, &input(ItemKind::Case, "c-sh", Action::Reopen, "", ""))
            .await,
    );
    assert!(matches!(e, ReviewError::Invalid(_)), "{e:?}");
    c.store
        .review(
            &supervisor,
            &input(ItemKind::Case, "c-sh", Action::Reopen, "", "wrong collector"),
        )
        .await
        .expect("supervisor re-opens");
    assert_eq!(
        c.store.status(ItemKind::Case, "c-sh").await.expect("status").status,
        "reopened"
    );
    c.store
        .review(
            &analyst,
            &input(
                ItemKind::Case,
                "c-sh",
                Action::Dismiss,
                "insufficient_evidence",
                "payroll after all",
            ),
        )
        .await
        .expect("dismiss after re-open");
    let trail = c.store.audit(ItemKind::Case, "c-sh").await.expect("audit");
    let actions: Vec<(&str, &str)> = trail.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect();
    assert_eq!(
        actions,
        vec![
            ("sh_analyst", "confirm"),
            ("sh_super", "reopen"),
            ("sh_analyst", "dismiss")
        ]
    );
    assert_eq!(trail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    // The confirmation went to the outbox in its transaction; the later dismissal did not remove it.
    let pending = c.store.unsent(10).await.expect("outbox");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].review_id, trail[0].review_id);
    assert_eq!(pending[0].lead_region, "310104");
    let payload: serde_json::Value = serde_json::from_str(&pending[0].payload).expect("payload");
    assert_eq!(payload["case_id"], "c-sh");
    assert_eq!(payload["version"], 2);
    assert_eq!(payload["review"]["review_id"], trail[0].review_id.as_str());
    assert_eq!(payload["review"]["reviewer"], "sh_analyst");
    assert_eq!(payload["review"]["notes"], "collects from pensioners");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_based_on_a_stale_view_is_refused() {
    let c = console_with(sample_items()).await;
    let a = user("sh_analyst", Role::Analyst, "3101");
    let seen_nothing = ReviewInput {
        seen_actions: Some(0),
        ..input(ItemKind::Case, "c-sh", Action::NeedsInfo, "", "where did it go")
    };
    c.store.review(&a, &seen_nothing).await.expect("first");
    // A second reviewer who opened the page before the first acted.
    let e = review_error(
        c.store
            .review(
                &a,
                &ReviewInput {
                    action: Action::Confirm,
                    ..seen_nothing.clone()
                },
            )
            .await,
    );
    assert!(matches!(e, ReviewError::Conflict(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_edit_or_delete_the_audit_trail() {
    let c = console_with(sample_items()).await;
    let a = user("sh_analyst", Role::Analyst, "3101");
    c.store
        .review(
            &a,
            &input(ItemKind::Alert, "a-sh", Action::NeedsInfo, "", "ask the branch"),
        )
        .await
        .expect("review");
    let update = sqlx::query("UPDATE audit SET notes = 'rewritten'")
        .execute(c.store.pool())
        .await;
    assert!(update.is_err(), "update of the audit trail was accepted");
    let delete = sqlx::query("DELETE FROM audit").execute(c.store.pool()).await;
    assert!(delete.is_err(), "delete of the audit trail was accepted");
    let trail = c.store.audit(ItemKind::Alert, "a-sh").await.expect("audit");
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].notes, "ask the branch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_over_http_is_for_supervisors_only() {
    let c = console_with(sample_items()).await;
    let sh = login(&c.addr, "sh_analyst").await;
    let r = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[("csrf", &sh.csrf), ("action", "confirm")])),
    )
    .await;
    assert_eq!(r.status, 303);
    let page = request(&c.addr, "GET", "/cases/c-sh", Some(&sh.cookie), &[], None).await;
    assert!(page.body.contains("A supervisor can re-open it"));
    let r = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[("csrf", &sh.csrf), ("action", "reopen"), ("notes", "x")])),
    )
    .await;
    assert_eq!(r.status, 403);
    let sup = login(&c.addr, "sh_super").await;
    let page = request(&c.addr, "GET", "/cases/c-sh", Some(&sup.cookie), &[], None).await;
    assert!(page.body.contains("value=reopen"));
    let r = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&sup.cookie),
        &[],
        Some(form(&[
            ("csrf", &sup.csrf),
            ("action", "reopen"),
            ("notes", "look again"),
        ])),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        c.store.status(ItemKind::Case, "c-sh").await.expect("status").status,
        "reopened"
    );
}
