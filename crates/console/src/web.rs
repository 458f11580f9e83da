//! The pages and the JSON API. Every route but `/login` needs a session: pages redirect to
//! `/login`, the API answers 401. Every POST carries the session's CSRF token (form field
//! `csrf`, or header `x-csrf-token` for the API) and is refused with 403 without it. Items
//! outside the user's regions are 404 (the URL does not tell they exist).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};

use crate::auth::{self, Role, User};
use crate::error::ConsoleError;
use crate::money::format_fen;
use crate::store::{
    Action, AlertView, AuditEntry, CaseView, InboxQuery, ItemKind, ReviewError, ReviewInput, Sort, Store,
    DISMISS_REASONS, STATUSES,
};

pub struct AppState {
    pub store: Store,
    pub session_ttl_ms: i64,
    /// Mark cookies `Secure` (behind TLS).
    pub secure_cookies: bool,
}

const SESSION_COOKIE: &str = "fw_session";
const LOGIN_COOKIE: &str = "fw_login";
const PAGE_SIZE: i64 = 50;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(root))
        .route("/inbox", get(inbox_page))
        .route("/cases/{id}", get(case_page))
        .route("/cases/{id}/review", post(review_case_form))
        .route("/alerts/{id}", get(alert_page))
        .route("/alerts/{id}/review", post(review_alert_form))
        .route("/users", get(users_page).post(create_user))
        .route("/api/inbox", get(api_inbox))
        .route("/api/cases/{id}", get(api_case))
        .route("/api/cases/{id}/review", post(api_review_case))
        .route("/api/alerts/{id}", get(api_alert))
        .route("/api/alerts/{id}/review", post(api_review_alert))
        .fallback(fallback)
        .with_state(state)
}

/// A form's fields; a body that is not a form reads as no fields (so the CSRF check, not a
/// 415, answers a forged POST).
type FormFields = Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>;

fn fields(form: FormFields) -> HashMap<String, String> {
    form.map(|Form(f)| f).unwrap_or_default()
}

/// A logged-in request.
struct Session {
    user: User,
    csrf: String,
    token: String,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ConsoleError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state
        .store
        .session(&token)
        .await?
        .map(|(user, csrf)| Session { user, csrf, token }))
}

/// The session, or the answer for a request without one.
async fn require(state: &AppState, headers: &HeaderMap, api: bool) -> Result<Session, Response> {
    match session(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) if api => Err((StatusCode::UNAUTHORIZED, Json(json!({"error": "log in first"}))).into_response()),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(internal(e)),
    }
}

fn internal(e: ConsoleError) -> Response {
    tracing::error!(error = %e, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the console's log",
    )
        .into_response()
}

fn forbidden_csrf() -> Response {
    (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response()
}

fn csrf_ok(s: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|t| auth::same_secret(t, &s.csrf))
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn url_enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}header{background:#1f3a5f;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}header a{color:#fff}main{padding:16px}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;font-size:14px;vertical-align:top}.num{text-align:right}.muted{color:#777}.flash{background:#fde2e1;padding:8px;border:1px solid #e0a0a0}.note{background:#fff6d5;padding:8px;border:1px solid #e0d090}.counts a{margin-right:12px}form.inline{display:inline}fieldset{margin:8px 0}textarea{width:100%;max-width:640px}.st-confirmed{color:#1e7d32}.st-dismissed{color:#777}.st-needs_info{color:#b26a00}";

fn page(title: &str, s: Option<&Session>, body: &str) -> Html<String> {
    let mut out = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{} · fundwatch console</title><style>{STYLE}</style></head><body><header><strong>fundwatch console</strong>",
        esc(title)
    );
    if let Some(s) = s {
        let _ = write!(
            out,
            "<a href=/inbox>Inbox</a><a href=\"/inbox?kind=alert\">Alerts</a>{}<span>{} ({}, regions {})</span><form class=inline method=post action=/logout><input type=hidden name=csrf value=\"{}\"><button>Log out</button></form>",
            if s.user.role == Role::Supervisor { "<a href=/users>Users</a>" } else { "" },
            esc(&s.user.name),
            s.user.role.as_str(),
            esc(&auth::format_regions(&s.user.prefixes)),
            esc(&s.csrf)
        );
    }
    let _ = write!(out, "</header><main><h1>{}</h1>{body}</main></body></html>", esc(title));
    Html(out)
}

fn cookie_header(state: &AppState, name: &str, value: &str, path: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let text = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("fw_invalid=1"))
}

// ---- login -------------------------------------------------------------------------------

fn login_form(state: &AppState, message: Option<&str>, status: StatusCode) -> Response {
    // Login CSRF: a double-submit token in a cookie scoped to /login.
    let token = auth::random_token();
    let flash = message
        .map(|m| format!("<p class=flash>{}</p>", esc(m)))
        .unwrap_or_default();
    let body = format!(
        "{flash}<form method=post action=/login><input type=hidden name=csrf value=\"{token}\"><p><label>Name <input name=name autocomplete=username required></label></p><p><label>Password <input name=password type=password autocomplete=current-password required></label></p><button>Log in</button></form>"
    );
    let mut resp = (status, page("Log in", None, &body)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(state, LOGIN_COOKIE, &token, "/login", 3600),
    );
    resp
}

async fn login_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Ok(Some(_)) = session(&state, &headers).await {
        return Redirect::to("/inbox").into_response();
    }
    login_form(&state, None, StatusCode::OK)
}

async fn login(State(state): State<Arc<AppState>>, headers: HeaderMap, form: FormFields) -> Response {
    let form = fields(form);
    let expected = cookie(&headers, LOGIN_COOKIE);
    let presented = form.get("csrf");
    if !matches!((expected.as_deref(), presented), (Some(a), Some(b)) if auth::same_secret(a, b)) {
        return forbidden_csrf();
    }
    let name = form.get("name").map(String::as_str).unwrap_or("").trim();
    let password = form.get("password").map(String::as_str).unwrap_or("");
    match state.store.check_login(name, password).await {
        Ok(Some(user)) => match state.store.create_session(&user.name, state.session_ttl_ms).await {
            Ok((token, _csrf)) => {
                tracing::info!(user = user.name.as_str(), "logged in");
                let mut resp = Redirect::to("/inbox").into_response();
                resp.headers_mut().append(
                    header::SET_COOKIE,
                    cookie_header(&state, SESSION_COOKIE, &token, "/", state.session_ttl_ms / 1000),
                );
                resp.headers_mut()
                    .append(header::SET_COOKIE, cookie_header(&state, LOGIN_COOKIE, "", "/login", 0));
                resp
            }
            Err(e) => internal(e),
        },
        Ok(None) => {
            tracing::warn!(user = name, "failed login");
            login_form(&state, Some("Wrong name or password."), StatusCode::UNAUTHORIZED)
        }
        Err(e) => internal(e),
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, form: FormFields) -> Response {
    let form = fields(form);
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, form.get("csrf").map(String::as_str)) {
        return forbidden_csrf();
    }
    if let Err(e) = state.store.end_session(&s.token).await {
        return internal(e);
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, "", "/", 0));
    resp
}

async fn root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match require(&state, &headers, false).await {
        Ok(_) => Redirect::to("/inbox").into_response(),
        Err(r) => r,
    }
}

async fn fallback(State(state): State<Arc<AppState>>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let api = uri.path().starts_with("/api/");
    let s = match require(&state, &headers, api).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    not_found(Some(&s), api)
}

fn not_found(s: Option<&Session>, api: bool) -> Response {
    if api {
        (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            page("Not found", s, "<p>No such page or item.</p>"),
        )
            .into_response()
    }
}

// ---- inbox -------------------------------------------------------------------------------

fn inbox_query(q: &HashMap<String, String>) -> Result<InboxQuery, String> {
    let get = |k: &str| q.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let day = |k: &str| -> Result<Option<i64>, String> {
        match get(k) {
            None => Ok(None),
            Some(d) => crate::beijing_day_start_ms(&d)
                .map(Some)
                .ok_or_else(|| format!("{k}: {d:?} is not a date like 2026-03-01")),
        }
    };
    let region = get("region");
    if let Some(r) = &region {
        if !r.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("region: letters and digits only".into());
        }
    }
    let status = get("status");
    if let Some(st) = &status {
        if !STATUSES.contains(&st.as_str()) {
            return Err(format!("status: one of {}", STATUSES.join(", ")));
        }
    }
    Ok(InboxQuery {
        kind: Some(if get("kind").as_deref() == Some("alert") {
            ItemKind::Alert
        } else {
            ItemKind::Case
        }),
        region,
        severity: get("severity"),
        rule: get("rule"),
        status,
        from_ms: day("from")?,
        // `to` is inclusive of its day.
        to_ms: day("to")?.map(|t| t + 86_400_000),
        sort: Sort::parse(get("sort").as_deref().unwrap_or("score")),
        page: get("page")
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(0)
            .clamp(0, 1_000_000),
        page_size: PAGE_SIZE,
    })
}

fn status_cell(status: &str) -> String {
    format!("<span class=st-{0}>{0}</span>", esc(status))
}

async fn inbox_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let query = match inbox_query(&q) {
        Ok(query) => query,
        Err(msg) => {
            return (
                StatusCode::BAD_REQUEST,
                page("Inbox", Some(&s), &format!("<p class=flash>{}</p>", esc(&msg))),
            )
                .into_response()
        }
    };
    let inbox = match state.store.inbox(&s.user, &query).await {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let is_alerts = query.kind == Some(ItemKind::Alert);
    let val = |k: &str| esc(q.get(k).map(String::as_str).unwrap_or(""));
    let mut body = String::new();
    let kind_value = if is_alerts { "alert" } else { "case" };
    let _ = write!(
        body,
        "<form method=get action=/inbox><input type=hidden name=kind value={kind_value}>Region <input name=region size=6 value=\"{}\"> {}Rule <select name=rule><option value=\"\">any</option>{}</select> Status <select name=status><option value=\"\">any</option>{}</select> From <input name=from type=date value=\"{}\"> To <input name=to type=date value=\"{}\"> Sort <select name=sort>{}</select> <button>Filter</button></form>",
        val("region"),
        if is_alerts { String::new() } else { format!("Severity <input name=severity size=12 value=\"{}\"> ", val("severity")) },
        ["scatter_in_concentrated_out", "periodic_batch_small_out", "rapid_pass_through", "structuring", "large_value"]
            .iter()
            .map(|r| format!("<option{}>{r}</option>", if q.get("rule").map(String::as_str) == Some(*r) { " selected" } else { "" }))
            .collect::<String>(),
        STATUSES
            .iter()
            .map(|st| format!("<option{}>{st}</option>", if q.get("status").map(String::as_str) == Some(*st) { " selected" } else { "" }))
            .collect::<String>(),
        val("from"),
        val("to"),
        (if is_alerts { &["score", "recent"][..] } else { &["score", "investors", "raised", "recent"][..] })
            .iter()
            .map(|o| format!("<option{}>{o}</option>", if query.sort.as_str() == *o { " selected" } else { "" }))
            .collect::<String>(),
    );
    // Links keep the other filters.
    let link = |overrides: &[(&str, String)]| {
        let mut params: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| *o == k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.clone())));
        params.sort();
        format!(
            "/inbox?{}",
            params
                .iter()
                .map(|(k, v)| format!("{}={}", url_enc(k), url_enc(v)))
                .collect::<Vec<_>>()
                .join("&amp;")
        )
    };
    body.push_str("<p class=counts>");
    for (st, n) in &inbox.counts {
        let _ = write!(
            body,
            "<a href=\"{}\">{st}: <b>{n}</b></a>",
            link(&[("status", st.clone()), ("page", "0".into())])
        );
    }
    let _ = write!(
        body,
        "<a href=\"{}\">all</a></p>",
        link(&[("status", String::new()), ("page", "0".into())])
    );
    if is_alerts {
        body.push_str("<table><tr><th>alert</th><th>rule</th><th>region</th><th class=num>score</th><th>window end</th><th>status</th><th>summary</th></tr>");
        for r in &inbox.rows {
            let _ = write!(
                body,
                "<tr><td><a href=\"/alerts/{0}\">{1}</a></td><td>{2}</td><td>{3}</td><td class=num>{4:.1}</td><td>{5}</td><td>{6}</td><td>{7}</td></tr>",
                url_enc(&r.id),
                esc(&r.id),
                esc(&r.rule),
                esc(&r.region),
                r.score,
                esc(&r.last_seen),
                status_cell(&r.status),
                esc(&r.summary)
            );
        }
    } else {
        body.push_str("<table><tr><th>case</th><th>lead region</th><th>severity</th><th class=num>score</th><th class=num>investors</th><th class=num>raised (yuan)</th><th>last seen</th><th>status</th><th>summary</th></tr>");
        for r in &inbox.rows {
            let _ = write!(
                body,
                "<tr><td><a href=\"/cases/{0}\">{1}</a></td><td>{2}</td><td>{3}</td><td class=num>{4:.1}</td><td class=num>{5}</td><td class=num>{6}</td><td>{7}</td><td>{8}</td><td>{9}</td></tr>",
                url_enc(&r.id),
                esc(&r.id),
                esc(&r.region),
                esc(&r.severity),
                r.score,
                r.investors,
                format_fen(r.raised_fen),
                esc(&r.last_seen),
                status_cell(&r.status),
                esc(&r.summary)
            );
        }
    }
    body.push_str("</table>");
    let pages = (inbox.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let _ = write!(
        body,
        "<p>{} items, page {} of {}",
        inbox.total,
        query.page + 1,
        pages.max(1)
    );
    if query.page > 0 {
        let _ = write!(
            body,
            " <a href=\"{}\">previous</a>",
            link(&[("page", (query.page - 1).to_string())])
        );
    }
    if query.page + 1 < pages {
        let _ = write!(
            body,
            " <a href=\"{}\">next</a>",
            link(&[("page", (query.page + 1).to_string())])
        );
    }
    body.push_str("</p>");
    page(if is_alerts { "Alerts" } else { "Cases" }, Some(&s), &body).into_response()
}

async fn api_inbox(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = match require(&state, &headers, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let query = match inbox_query(&q) {
        Ok(query) => query,
        Err(msg) => return (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response(),
    };
    match state.store.inbox(&s.user, &query).await {
        Ok(inbox) => Json(json!({
            "total": inbox.total,
            "counts": inbox.counts.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "items": inbox.rows.iter().map(|r| json!({
                "kind": r.kind.as_str(), "id": r.id, "region": r.region, "severity": r.severity, "rule": r.rule,
                "score": r.score, "investors": r.investors, "raised": format_fen(r.raised_fen).replace(',', ""),
                "last_seen": r.last_seen, "status": r.status, "summary": r.summary,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

// ---- item pages ---------------------------------------------------------------------------

fn can_act_on_case(user: &User, c: &CaseView) -> bool {
    user.role.can_review() && user.covers(&c.lead_region)
}

fn audit_table(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "<p class=muted>No review yet.</p>".into();
    }
    let mut s = String::from("<table><tr><th>#</th><th>when (Beijing)</th><th>who</th><th>action</th><th>reason</th><th>notes</th><th>item version</th><th>review id</th></tr>");
    for e in entries {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            e.seq,
            crate::format_beijing(e.at_ms),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.reason_code),
            esc(&e.notes),
            e.item_version,
            esc(&e.review_id)
        );
    }
    s.push_str("</table>");
    s
}

fn review_forms(action_url: &str, s: &Session, status: &str, actions: i64, can_act: bool) -> String {
    if !can_act {
        return if s.user.role == Role::Readonly {
            "<p class=muted>Read-only access: no review actions.</p>".into()
        } else {
            "<p class=muted>Only the lead region's reviewers act on this item.</p>".into()
        };
    }
    let hidden = format!(
        "<input type=hidden name=csrf value=\"{}\"><input type=hidden name=seen value={actions}>",
        esc(&s.csrf)
    );
    let mut out = String::new();
    if crate::store::is_decided(status) {
        if s.user.role == Role::Supervisor {
            let _ = write!(
                out,
                "<form method=post action=\"{action_url}\"><fieldset><legend>Re-open (supervisor)</legend>{hidden}<input type=hidden name=action value=reopen><textarea name=notes required placeholder=\"why it is re-opened\"></textarea><br><button>Re-open</button></fieldset></form>"
            );
        } else {
            out.push_str("<p class=muted>Decided. A supervisor can re-open it.</p>");
        }
        return out;
    }
    let reasons: String = DISMISS_REASONS
        .iter()
        .map(|(code, label)| format!("<option value={code}>{}</option>", esc(label)))
        .collect();
    let _ = write!(
        out,
        "<form method=post action=\"{action_url}\"><fieldset><legend>Confirm</legend>{hidden}<input type=hidden name=action value=confirm><textarea name=notes placeholder=\"notes for the task-force office (optional)\"></textarea><br><button>Confirm</button></fieldset></form>\
         <form method=post action=\"{action_url}\"><fieldset><legend>Dismiss</legend>{hidden}<input type=hidden name=action value=dismiss><select name=reason_code required><option value=\"\">reason…</option>{reasons}</select><br><textarea name=notes required placeholder=\"why it is not reported (required)\"></textarea><br><button>Dismiss</button></fieldset></form>\
         <form method=post action=\"{action_url}\"><fieldset><legend>Needs information</legend>{hidden}<input type=hidden name=action value=needs_info><textarea name=notes required placeholder=\"what is missing\"></textarea><br><button>Needs info</button></fieldset></form>"
    );
    out
}

fn breakdown(record: &Value) -> String {
    let Some(parts) = record
        .get("evidence")
        .and_then(|e| e.get("score_breakdown"))
        .and_then(Value::as_object)
    else {
        return String::new();
    };
    let mut items: Vec<(&String, f64)> = parts.iter().map(|(k, v)| (k, v.as_f64().unwrap_or(0.0))).collect();
    items.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    items
        .iter()
        .map(|(k, v)| {
            format!(
                "<span style=\"color:{}\">{}&nbsp;{v:+.1}</span>",
                if *v >= 0.0 { "#1e7d32" } else { "#c0392b" },
                esc(k)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn case_page(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let c = match state.store.case(&s.user, &id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(Some(&s), false),
        Err(e) => return internal(e),
    };
    let (alerts, audit) = match (
        state.store.case_alerts(&c.case_id).await,
        state.store.audit(ItemKind::Case, &c.case_id).await,
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return internal(e),
    };
    let mut body = String::new();
    if crate::store::is_decided(&c.status.status) && c.status.reviewed_version != c.version {
        let _ = write!(
            body,
            "<p class=note>This case was {} at version {}; it has changed since (now version {}). The decision stands until a supervisor re-opens it.</p>",
            esc(&c.status.status),
            c.status.reviewed_version,
            c.version
        );
    }
    let _ = write!(
        body,
        "<p>{}</p><table><tr><th>review status</th><td>{}</td><th>record status</th><td>{}</td></tr><tr><th>severity</th><td>{}</td><th>version</th><td>{}</td></tr><tr><th>investors</th><td>{}</td><th>highest alert score</th><td>{:.1}</td></tr><tr><th>raised (yuan)</th><td>{}</td><th>paid back (yuan)</th><td>{}</td></tr><tr><th>outstanding (yuan)</th><td>{}</td><th>lead region</th><td>{}</td></tr><tr><th>regions</th><td>{}</td><th>seen</th><td>{} – {}</td></tr></table>",
        esc(&c.summary),
        status_cell(&c.status.status),
        esc(&c.record_status),
        esc(&c.severity),
        c.version,
        c.investors,
        c.max_score,
        format_fen(c.raised_fen),
        format_fen(c.paid_back_fen),
        format_fen(c.outstanding_fen),
        esc(&c.lead_region),
        esc(&c.regions.join(", ")),
        esc(&c.first_seen),
        esc(&c.last_seen)
    );
    body.push_str("<h2>Money over time</h2>");
    body.push_str(&crate::chart::svg(&crate::chart::picture(&alerts)));
    body.push_str("<h2>Accounts</h2><table><tr><th>account</th><th>role</th><th>region</th></tr>");
    for a in c.record.get("accounts").and_then(Value::as_array).into_iter().flatten() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(a.get("account").and_then(Value::as_str).unwrap_or("")),
            esc(a.get("role").and_then(Value::as_str).unwrap_or("")),
            esc(a.get("region").and_then(Value::as_str).unwrap_or(""))
        );
    }
    body.push_str("</table><h2>Alerts</h2><table><tr><th>alert</th><th>rule</th><th>account</th><th class=num>score</th><th>window</th><th>status</th><th>summary and score breakdown</th></tr>");
    for a in &alerts {
        let _ = write!(
            body,
            "<tr><td><a href=\"/alerts/{}\">{}</a></td><td>{}</td><td>{}</td><td class=num>{:.1}</td><td>{} – {}</td><td>{}</td><td>{}<br><small>{}</small></td></tr>",
            url_enc(&a.alert_id),
            esc(&a.alert_id),
            esc(&a.rule),
            esc(&a.account),
            a.score,
            esc(&a.window_start),
            esc(&a.window_end),
            status_cell(&a.status.status),
            esc(&a.summary),
            breakdown(&a.record)
        );
    }
    let named = c
        .record
        .get("alert_ids")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    if named > alerts.len() {
        let _ = write!(
            body,
            "<tr><td colspan=7 class=muted>{} of the case's alerts have not arrived yet.</td></tr>",
            named - alerts.len()
        );
    }
    body.push_str("</table><h2>Review</h2>");
    body.push_str(&review_forms(
        &format!("/cases/{}/review", url_enc(&c.case_id)),
        &s,
        &c.status.status,
        c.status.actions,
        can_act_on_case(&s.user, &c),
    ));
    body.push_str("<h2>Audit trail</h2>");
    body.push_str(&audit_table(&audit));
    page(&format!("Case {}", c.case_id), Some(&s), &body).into_response()
}

fn evidence_table(record: &Value) -> String {
    let Some(ev) = record.get("evidence").and_then(Value::as_object) else {
        return String::new();
    };
    let mut s = String::from("<table>");
    for (k, v) in ev {
        if k == "score_breakdown" {
            continue;
        }
        let shown = match v {
            Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&shown));
    }
    s.push_str("</table>");
    s
}

async fn alert_page(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let a: AlertView = match state.store.alert(&s.user, &id).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(Some(&s), false),
        Err(e) => return internal(e),
    };
    let (cases, audit) = match (
        state.store.cases_of_alert(&a.alert_id).await,
        state.store.audit(ItemKind::Alert, &a.alert_id).await,
    ) {
        (Ok(c), Ok(au)) => (c, au),
        (Err(e), _) | (_, Err(e)) => return internal(e),
    };
    let mut body = format!(
        "<p>{}</p><table><tr><th>review status</th><td>{}</td><th>rule</th><td>{}</td></tr><tr><th>account</th><td>{}</td><th>region</th><td>{}</td></tr><tr><th>score</th><td>{:.1}</td><th>window</th><td>{} – {}</td></tr><tr><th>score breakdown</th><td colspan=3>{}</td></tr><tr><th>cases</th><td colspan=3>{}</td></tr></table><h2>Evidence</h2>{}",
        esc(&a.summary),
        status_cell(&a.status.status),
        esc(&a.rule),
        esc(&a.account),
        esc(&a.region),
        a.score,
        esc(&a.window_start),
        esc(&a.window_end),
        breakdown(&a.record),
        cases.iter().map(|c| format!("<a href=\"/cases/{}\">{}</a>", url_enc(c), esc(c))).collect::<Vec<_>>().join(", "),
        evidence_table(&a.record)
    );
    body.push_str("<h2>Review</h2>");
    body.push_str(&review_forms(
        &format!("/alerts/{}/review", url_enc(&a.alert_id)),
        &s,
        &a.status.status,
        a.status.actions,
        s.user.role.can_review(),
    ));
    body.push_str("<h2>Audit trail</h2>");
    body.push_str(&audit_table(&audit));
    page(&format!("Alert {}", a.alert_id), Some(&s), &body).into_response()
}

// ---- review --------------------------------------------------------------------------------

fn review_input(kind: ItemKind, id: String, fields: &HashMap<String, String>) -> Result<ReviewInput, ReviewError> {
    let action = fields
        .get("action")
        .and_then(|a| Action::parse(a))
        .ok_or_else(|| ReviewError::Invalid("action: one of confirm, dismiss, needs_info, reopen".into()))?;
    Ok(ReviewInput {
        kind,
        item_id: id,
        action,
        reason_code: fields.get("reason_code").cloned().unwrap_or_default(),
        notes: fields.get("notes").cloned().unwrap_or_default(),
        seen_actions: fields.get("seen").and_then(|v| v.parse().ok()),
    })
}

fn review_status(e: &ReviewError) -> StatusCode {
    match e {
        ReviewError::NotFound => StatusCode::NOT_FOUND,
        ReviewError::Forbidden(_) => StatusCode::FORBIDDEN,
        ReviewError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ReviewError::Conflict(_) => StatusCode::CONFLICT,
    }
}

async fn review_form(
    state: Arc<AppState>,
    headers: HeaderMap,
    kind: ItemKind,
    id: String,
    form: HashMap<String, String>,
) -> Response {
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, form.get("csrf").map(String::as_str)) {
        return forbidden_csrf();
    }
    let back = match kind {
        ItemKind::Case => format!("/cases/{}", url_enc(&id)),
        ItemKind::Alert => format!("/alerts/{}", url_enc(&id)),
    };
    let result = match review_input(kind, id, &form) {
        Ok(input) => state.store.review(&s.user, &input).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(ConsoleError::Review(ReviewError::NotFound)) => not_found(Some(&s), false),
        Err(ConsoleError::Review(e)) => (
            review_status(&e),
            page(
                "Review not recorded",
                Some(&s),
                &format!(
                    "<p class=flash>{}</p><p><a href=\"{back}\">Back to the item</a></p>",
                    esc(&e.to_string())
                ),
            ),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

async fn review_case_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: FormFields,
) -> Response {
    let form = fields(form);
    review_form(state, headers, ItemKind::Case, id, form).await
}

async fn review_alert_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: FormFields,
) -> Response {
    let form = fields(form);
    review_form(state, headers, ItemKind::Alert, id, form).await
}

async fn api_review(state: Arc<AppState>, headers: HeaderMap, kind: ItemKind, id: String, body: Value) -> Response {
    let s = match require(&state, &headers, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, headers.get("x-csrf-token").and_then(|v| v.to_str().ok())) {
        return forbidden_csrf();
    }
    let fields: HashMap<String, String> = body
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut fields = fields;
    if let Some(seen) = fields.remove("seen_actions") {
        fields.insert("seen".into(), seen);
    }
    let result = match review_input(kind, id, &fields) {
        Ok(input) => state.store.review(&s.user, &input).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(review_id) => Json(json!({"review_id": review_id})).into_response(),
        Err(ConsoleError::Review(e)) => (review_status(&e), Json(json!({"error": e.to_string()}))).into_response(),
        Err(e) => internal(e),
    }
}

async fn api_review_case(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "body must be a JSON object"})),
        )
            .into_response();
    };
    api_review(state, headers, ItemKind::Case, id, v).await
}

async fn api_review_alert(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "body must be a JSON object"})),
        )
            .into_response();
    };
    api_review(state, headers, ItemKind::Alert, id, v).await
}

fn audit_json(entries: &[AuditEntry]) -> Value {
    json!(entries
        .iter()
        .map(
            |e| json!({"review_id": e.review_id, "seq": e.seq, "actor": e.actor, "time": crate::format_utc(e.at_ms),
            "action": e.action, "reason_code": e.reason_code, "notes": e.notes, "item_version": e.item_version})
        )
        .collect::<Vec<_>>())
}

async fn api_case(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match require(&state, &headers, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.store.case(&s.user, &id).await {
        Ok(Some(c)) => {
            let audit = match state.store.audit(ItemKind::Case, &c.case_id).await {
                Ok(a) => a,
                Err(e) => return internal(e),
            };
            Json(
                json!({"record": c.record, "status": c.status.status, "actions": c.status.actions,
                "actionable": can_act_on_case(&s.user, &c), "audit": audit_json(&audit)}),
            )
            .into_response()
        }
        Ok(None) => not_found(Some(&s), true),
        Err(e) => internal(e),
    }
}

async fn api_alert(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match require(&state, &headers, true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.store.alert(&s.user, &id).await {
        Ok(Some(a)) => {
            let audit = match state.store.audit(ItemKind::Alert, &a.alert_id).await {
                Ok(au) => au,
                Err(e) => return internal(e),
            };
            Json(json!({"record": a.record, "status": a.status.status, "actions": a.status.actions, "audit": audit_json(&audit)}))
                .into_response()
        }
        Ok(None) => not_found(Some(&s), true),
        Err(e) => internal(e),
    }
}

// ---- users -------------------------------------------------------------------------------

async fn users_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    users_view(&state, &s, None, StatusCode::OK).await
}

async fn users_view(state: &AppState, s: &Session, message: Option<&str>, status: StatusCode) -> Response {
    if s.user.role != Role::Supervisor {
        return (
            StatusCode::FORBIDDEN,
            page("Users", Some(s), "<p>Only supervisors manage users.</p>"),
        )
            .into_response();
    }
    let users = match state.store.users().await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let mut body = message
        .map(|m| format!("<p class=flash>{}</p>", esc(m)))
        .unwrap_or_default();
    body.push_str("<table><tr><th>name</th><th>role</th><th>regions</th></tr>");
    for u in &users {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.name),
            u.role.as_str(),
            esc(&auth::format_regions(&u.prefixes))
        );
    }
    let _ = write!(
        body,
        "</table><h2>Add a user</h2><form method=post action=/users><input type=hidden name=csrf value=\"{}\"><p><label>Name <input name=name required></label></p><p><label>Password (10+ characters) <input name=password type=password required></label></p><p><label>Role <select name=role><option>analyst</option><option>supervisor</option><option>readonly</option></select></label></p><p><label>Region prefixes (comma-separated, * for all) <input name=regions required></label></p><button>Add</button></form>",
        esc(&s.csrf)
    );
    (status, page("Users", Some(s), &body)).into_response()
}

async fn create_user(State(state): State<Arc<AppState>>, headers: HeaderMap, form: FormFields) -> Response {
    let form = fields(form);
    let s = match require(&state, &headers, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, form.get("csrf").map(String::as_str)) {
        return forbidden_csrf();
    }
    if s.user.role != Role::Supervisor {
        return (
            StatusCode::FORBIDDEN,
            page("Users", Some(&s), "<p>Only supervisors manage users.</p>"),
        )
            .into_response();
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let Some(role) = Role::parse(get("role")) else {
        return users_view(
            &state,
            &s,
            Some("role: analyst, supervisor or readonly"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let result = match auth::parse_regions(get("regions")) {
        Ok(prefixes) => {
            state
                .store
                .add_user(get("name"), get("password"), role, &prefixes)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            tracing::info!(
                by = s.user.name.as_str(),
                user = get("name"),
                role = role.as_str(),
                "user added"
            );
            Redirect::to("/users").into_response()
        }
        Err(ConsoleError::InvalidUser(m)) => users_view(&state, &s, Some(&m), StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => internal(e),
    }
}
