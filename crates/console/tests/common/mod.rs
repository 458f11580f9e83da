//! Shared by the console's tests: a console on a loopback port over a fresh SQLite file, a
//! small HTTP/1.1 client, and synthetic alert and case records.
#![allow(dead_code)]

use std::sync::Arc;

use fundwatch_console::auth::{parse_regions, Role};
use fundwatch_console::records::{AlertRow, CaseRow, Incoming};
use fundwatch_console::web::{router, AppState};
use fundwatch_console::Store;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const PASSWORD: &str = "test-password-1";

pub struct Console {
    pub addr: String,
    pub store: Store,
    pub dir: tempfile::TempDir,
}

pub async fn open_store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    Store::open(&url).await.expect("open store")
}

/// A console serving a new database holding `items`, with users
/// `sh_analyst` (3101), `sh_super` (31, supervisor), `js_analyst` (32), `viewer` (3101, read-only).
pub async fn console_with(items: Vec<Incoming>) -> Console {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(&dir).await;
    for (name, role, regions) in [
        ("sh_analyst", Role::Analyst, "3101"),
        ("sh_super", Role::Supervisor, "31"),
        ("js_analyst", Role::Analyst, "32"),
        ("viewer", Role::Readonly, "3101"),
        ("all_super", Role::Supervisor, "*"),
    ] {
        store
            .add_user(name, PASSWORD, role, &parse_regions(regions).expect("regions"))
            .await
            .expect("add user");
    }
    store.ingest(&items, &[]).await.expect("ingest");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let state = Arc::new(AppState {
        store: store.clone(),
        session_ttl_ms: 3_600_000,
        secure_cookies: false,
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(state)).await;
    });
    Console { addr, store, dir }
}

pub fn alert_json(id: &str, region: &str, rule: &str, score: f64, day: u32) -> String {
    json!({
        "alert_id": id, "rule": rule, "account": format!("acct-{id}"), "score": score,
        "window_start": format!("2026-03-{day:02}T09:00:00+08:00"),
        "window_end": format!("2026-03-{day:02}T18:00:00+08:00"),
        "triggered_by": format!("tx-{id}"), "detected_at": "2026-03-30T00:00:00Z",
        "region": region, "summary": format!("alert {id} summary"),
        "evidence": {"inflow_total": "250000.00", "concentrated_outflow": "200000.00",
                     "score_breakdown": {"payers": 30.0, "round_tickets": 12.5, "benign_memos": -4.0}},
        "config_version": "test"
    })
    .to_string()
}

pub fn case_json(
    id: &str,
    version: i64,
    lead: &str,
    regions: &[&str],
    alert_ids: &[&str],
    investors: i64,
    raised: &str,
) -> String {
    json!({
        "case_id": id, "version": version, "status": "open",
        "accounts": [{"account": format!("collector-{id}"), "role": "collector", "region": lead},
                     {"account": format!("payout-{id}"), "role": "payout", "region": regions.last().copied().unwrap_or(lead)}],
        "investors": investors, "raised": raised, "paid_back": "1000.50", "outstanding": "9000.00",
        "regions": regions, "lead_region": lead, "severity": "early", "alert_ids": alert_ids,
        "first_seen": "2026-03-01T09:00:00+08:00", "last_seen": "2026-03-05T18:00:00+08:00",
        "summary": format!("case {id} summary"), "config_version": "test"
    })
    .to_string()
}

pub fn alert(id: &str, region: &str, score: f64) -> Incoming {
    Incoming::Alert(AlertRow::parse(&alert_json(id, region, "scatter_in_concentrated_out", score, 5)).expect("alert"))
}

pub fn case(id: &str, version: i64, lead: &str, regions: &[&str], alert_ids: &[&str]) -> Incoming {
    Incoming::Case(CaseRow::parse(&case_json(id, version, lead, regions, alert_ids, 200, "10000.50")).expect("case"))
}

/// Shanghai (3101) case with a Jiangsu (3201) account, a Jiangsu-only case, a Shanghai-only
/// case and their alerts.
pub fn sample_items() -> Vec<Incoming> {
    vec![
        alert("a-sh", "310101", 82.0),
        alert("a-js", "320102", 77.0),
        alert("a-sh2", "310104", 90.0),
        case("c-cross", 3, "310101", &["310101", "320102"], &["a-sh", "a-js"]),
        case("c-js", 1, "320102", &["320102"], &["a-js"]),
        case("c-sh", 2, "310104", &["310104"], &["a-sh2"]),
    ]
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One request over a fresh connection (`Connection: close`).
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body_text = match body {
        Some((content_type, text)) => {
            req.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                text.len()
            ));
            text
        }
        None => {
            if method == "POST" {
                req.push_str("Content-Length: 0\r\n");
            }
            String::new()
        }
    };
    req.push_str("\r\n");
    req.push_str(&body_text);
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

pub fn form(fields: &[(&str, &str)]) -> (&'static str, String) {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    (
        "application/x-www-form-urlencoded",
        fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

/// The value of the first hidden `csrf` field on a page.
pub fn csrf_in(page: &str) -> String {
    let marker = "name=csrf value=\"";
    let start = page.find(marker).expect("csrf field on the page") + marker.len();
    let end = page[start..].find('"').expect("end of csrf value");
    page[start..start + end].to_owned()
}

/// A logged-in user: the session cookie and the CSRF token.
pub struct Login {
    pub cookie: String,
    pub csrf: String,
}

pub async fn login(addr: &str, name: &str) -> Login {
    let page = request(addr, "GET", "/login", None, &[], None).await;
    assert_eq!(page.status, 200);
    let login_cookie = page
        .cookies()
        .iter()
        .find(|c| c.starts_with("fw_login="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .expect("login cookie");
    let token = csrf_in(&page.body);
    let reply = request(
        addr,
        "POST",
        "/login",
        Some(&login_cookie),
        &[],
        Some(form(&[("name", name), ("password", PASSWORD), ("csrf", &token)])),
    )
    .await;
    assert_eq!(reply.status, 303, "login of {name}: {}", reply.body);
    let cookie = reply
        .cookies()
        .iter()
        .find(|c| c.starts_with("fw_session="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .expect("session cookie");
    let inbox = request(addr, "GET", "/inbox", Some(&cookie), &[], None).await;
    assert_eq!(inbox.status, 200);
    Login {
        csrf: csrf_in(&inbox.body),
        cookie,
    }
}
