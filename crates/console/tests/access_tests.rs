//! Access over real HTTP on a loopback port: login required everywhere, region scopes,
//! CSRF on every POST, read-only users cannot act.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_every_route_redirects_to_login_and_the_api_answers_401() {
    let c = console_with(sample_items()).await;
    for path in [
        "/",
        "/inbox",
        "/inbox?kind=alert",
        "/cases/c-sh",
        "/alerts/a-sh",
        "/users",
        "/no-such-page",
        "/cases/unknown",
    ] {
        let r = request(&c.addr, "GET", path, None, &[], None).await;
        assert_eq!(r.status, 303, "GET {path}");
        assert_eq!(r.header("location"), Some("/login"), "GET {path}");
    }
    for path in ["/cases/c-sh/review", "/alerts/a-sh/review", "/logout", "/users"] {
        let r = request(&c.addr, "POST", path, None, &[], Some(form(&[("action", "confirm")]))).await;
        assert_eq!(r.status, 303, "POST {path}");
        assert_eq!(r.header("location"), Some("/login"), "POST {path}");
    }
    for path in ["/api/inbox", "/api/cases/c-sh", "/api/alerts/a-sh", "/api/nothing"] {
        let r = request(&c.addr, "GET", path, None, &[], None).await;
        assert_eq!(r.status, 401, "GET {path}");
    }
    let r = request(
        &c.addr,
        "POST",
        "/api/cases/c-sh/review",
        None,
        &[],
        Some(("application/json", r#"{"action":"confirm"}"#.into())),
    )
    .await;
    assert_eq!(r.status, 401);
    // A made-up session token is no session.
    let r = request(&c.addr, "GET", "/inbox", Some("fw_session=00ff"), &[], None).await;
    assert_eq!(r.header("location"), Some("/login"));
    // The login page itself is served.
    assert_eq!(request(&c.addr, "GET", "/login", None, &[], None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_is_http_only_strict_and_a_wrong_password_is_refused() {
    let c = console_with(sample_items()).await;
    let page = request(&c.addr, "GET", "/login", None, &[], None).await;
    let login_cookie = page.cookies()[0].split(';').next().unwrap_or("").to_owned();
    let token = csrf_in(&page.body);
    let wrong = request(
        &c.addr,
        "POST",
        "/login",
        Some(&login_cookie),
        &[],
        Some(form(&[
            ("name", "sh_analyst"),
            ("password", "not-the-password"),
            ("csrf", &token),
        ])),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.cookies().iter().any(|c| c.starts_with("fw_session=")));
    // Login without the login CSRF cookie is refused.
    let forged = request(
        &c.addr,
        "POST",
        "/login",
        None,
        &[],
        Some(form(&[
            ("name", "sh_analyst"),
            ("password", PASSWORD),
            ("csrf", &token),
        ])),
    )
    .await;
    assert_eq!(forged.status, 403);

    let ok = request(
        &c.addr,
        "POST",
        "/login",
        Some(&login_cookie),
        &[],
        Some(form(&[
            ("name", "sh_analyst"),
            ("password", PASSWORD),
            ("csrf", &token),
        ])),
    )
    .await;
    let session = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("fw_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    let value = session
        .split(';')
        .next()
        .unwrap_or("")
        .trim_start_matches("fw_session=");
    assert_eq!(value.len(), 64, "32 random bytes, hex");
    // Only the token's hash is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(c.store.pool())
        .await
        .expect("sessions");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_scoped_user_gets_404_for_another_regions_items_by_url_and_through_the_api() {
    let c = console_with(sample_items()).await;
    let js = login(&c.addr, "js_analyst").await;
    // Jiangsu sees its own case and the cross-region case, not the Shanghai one.
    let inbox = request(&c.addr, "GET", "/inbox", Some(&js.cookie), &[], None).await;
    assert!(
        inbox.body.contains("c-js") && inbox.body.contains("c-cross"),
        "{}",
        inbox.body
    );
    assert!(!inbox.body.contains("c-sh\""), "Shanghai case listed for Jiangsu");
    for path in ["/cases/c-sh", "/alerts/a-sh2"] {
        let r = request(&c.addr, "GET", path, Some(&js.cookie), &[], None).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("case c-sh summary"));
    }
    for path in ["/api/cases/c-sh", "/api/alerts/a-sh2"] {
        assert_eq!(
            request(&c.addr, "GET", path, Some(&js.cookie), &[], None).await.status,
            404,
            "{path}"
        );
    }
    let api_items = request(&c.addr, "GET", "/api/inbox", Some(&js.cookie), &[], None).await;
    let v: serde_json::Value = serde_json::from_str(&api_items.body).expect("json");
    let ids: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(!ids.contains(&"c-sh") && ids.contains(&"c-js"), "{ids:?}");

    // Acting on the other region's case through the form and the API: 404, nothing recorded.
    let r = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&js.cookie),
        &[],
        Some(form(&[("csrf", &js.csrf), ("action", "confirm")])),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = request(
        &c.addr,
        "POST",
        "/api/cases/c-sh/review",
        Some(&js.cookie),
        &[("x-csrf-token", &js.csrf)],
        Some(("application/json", r#"{"action":"confirm"}"#.into())),
    )
    .await;
    assert_eq!(r.status, 404);
    // The cross-region case is visible to Jiangsu but led by Shanghai: 403.
    let page = request(&c.addr, "GET", "/cases/c-cross", Some(&js.cookie), &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Only the lead region"));
    let r = request(
        &c.addr,
        "POST",
        "/api/cases/c-cross/review",
        Some(&js.cookie),
        &[("x-csrf-token", &js.csrf)],
        Some(("application/json", r#"{"action":"confirm"}"#.into())),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(c.store.pool())
        .await
        .expect("count");
    assert_eq!(audit, 0);

    // Shanghai's analyst, the lead region, can.
    let sh = login(&c.addr, "sh_analyst").await;
    let r = request(
        &c.addr,
        "POST",
        "/api/cases/c-cross/review",
        Some(&sh.cookie),
        &[("x-csrf-token", &sh.csrf)],
        Some(("application/json", r#"{"action":"confirm","notes":"reported"}"#.into())),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused() {
    let c = console_with(sample_items()).await;
    let sh = login(&c.addr, "sh_analyst").await;
    let none = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[("action", "confirm")])),
    )
    .await;
    assert_eq!(none.status, 403);
    let wrong = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[
            ("action", "confirm"),
            (
                "csrf",
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        ])),
    )
    .await;
    assert_eq!(wrong.status, 403);
    let api = request(
        &c.addr,
        "POST",
        "/api/cases/c-sh/review",
        Some(&sh.cookie),
        &[],
        Some(("application/json", r#"{"action":"confirm"}"#.into())),
    )
    .await;
    assert_eq!(api.status, 403);
    let logout = request(&c.addr, "POST", "/logout", Some(&sh.cookie), &[], None).await;
    assert_eq!(logout.status, 403);
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(c.store.pool())
        .await
        .expect("count");
    assert_eq!(audit, 0, "a refused POST recorded a review");
    // With the token it goes through.
    let ok = request(
        &c.addr,
        "POST",
        "/cases/c-sh/review",
        Some(&sh.cookie),
        &[],
        Some(form(&[("action", "confirm"), ("csrf", &sh.csrf)])),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readonly_user_sees_but_cannot_act() {
    let c = console_with(sample_items()).await;
    let v = login(&c.addr, "viewer").await;
    let page = request(&c.addr, "GET", "/cases/c-cross", Some(&v.cookie), &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Read-only access"));
    assert!(!page.body.contains("value=confirm"));
    let r = request(
        &c.addr,
        "POST",
        "/cases/c-cross/review",
        Some(&v.cookie),
        &[],
        Some(form(&[("csrf", &v.csrf), ("action", "confirm")])),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        &c.addr,
        "POST",
        "/alerts/a-sh/review",
        Some(&v.cookie),
        &[],
        Some(form(&[("csrf", &v.csrf), ("action", "needs_info"), ("notes", "x")])),
    )
    .await;
    assert_eq!(r.status, 403);
    // Nor manage users.
    assert_eq!(
        request(&c.addr, "GET", "/users", Some(&v.cookie), &[], None)
            .await
            .status,
        403
    );
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(c.store.pool())
        .await
        .expect("count");
    assert_eq!(audit, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_supervisor_adds_users_and_the_new_user_can_log_in() {
    let c = console_with(sample_items()).await;
    let a = login(&c.addr, "sh_analyst").await;
    let add = [
        ("name", "newbie"),
        ("password", "another-password"),
        ("role", "analyst"),
        ("regions", "4403"),
    ];
    let mut fields = add.to_vec();
    fields.push(("csrf", &a.csrf));
    assert_eq!(
        request(&c.addr, "POST", "/users", Some(&a.cookie), &[], Some(form(&fields)))
            .await
            .status,
        403
    );
    let s = login(&c.addr, "sh_super").await;
    let mut fields = add.to_vec();
    fields.push(("csrf", &s.csrf));
    let r = request(&c.addr, "POST", "/users", Some(&s.cookie), &[], Some(form(&fields))).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let users = c.store.users().await.expect("users");
    let newbie = users.iter().find(|u| u.name == "newbie").expect("added");
    assert_eq!(newbie.prefixes, vec!["4403".to_string()]);
    assert!(c
        .store
        .check_login("newbie", "another-password")
        .await
        .expect("login")
        .is_some());
}
