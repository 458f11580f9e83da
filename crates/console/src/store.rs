//! The console's database: SQLite (a file, the default) or PostgreSQL, through sqlx's `Any`
//! driver with SQL both accept. Migrations are embedded and applied at open, in order, each in
//! its own transaction, recorded in `schema_migrations`.

use std::collections::HashMap;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row};

use crate::auth::{self, Role, User};
use crate::error::{ConsoleError, Result};
use crate::records::{AlertRow, CaseRow, Incoming};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

struct Migration {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "schema",
        sqlite: include_str!("../migrations/0001_schema.sql"),
        postgres: include_str!("../migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        description: "audit trail append-only",
        sqlite: include_str!("../migrations/0002_audit_append_only.sqlite.sql"),
        postgres: include_str!("../migrations/0002_audit_append_only.postgres.sql"),
    },
];

/// The latest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 2;

/// A value bound to a numbered placeholder.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text with `$n` placeholders and their values, built up piece by piece.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    fn text(&mut self, v: impl Into<String>) -> &mut Self {
        self.args.push(Arg::Text(v.into()));
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }
    fn int(&mut self, v: i64) -> &mut Self {
        self.args.push(Arg::Int(v));
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }
    fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// `column` falls in one of the user's prefixes. The prefix length goes into the SQL as a
/// literal (PostgreSQL's substr takes an integer, a bound value would be bigint); prefixes are
/// letters and digits only ([`auth::parse_regions`]).
fn push_scope(sql: &mut Sql, column: &str, user: &User) {
    if user.sees_all() {
        sql.push("1=1");
        return;
    }
    if user.prefixes.is_empty() {
        sql.push("1=0");
        return;
    }
    sql.push("(");
    for (i, p) in user.prefixes.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push(&format!("substr({column}, 1, {}) = ", p.len()))
            .text(p.clone());
    }
    sql.push(")");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Case,
    Alert,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Case => "case",
            ItemKind::Alert => "alert",
        }
    }
}

/// Review state of an item.
pub const STATUSES: &[&str] = &["new", "needs_info", "reopened", "confirmed", "dismissed"];

pub fn is_decided(status: &str) -> bool {
    matches!(status, "confirmed" | "dismissed")
}

/// Why an item is dismissed: a fixed list (the free text says the rest).
pub const DISMISS_REASONS: &[(&str, &str)] = &[
    ("known_business", "Known legitimate business (trade, payroll, platform)"),
    (
        "family_or_community",
        "Family or community money (gifts, rotating savings)",
    ),
    ("duplicate", "Duplicate of another item"),
    ("insufficient_evidence", "Evidence does not support the pattern"),
    ("already_reported", "Already reported through another channel"),
    ("data_error", "Data error in the feed"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Dismiss,
    NeedsInfo,
    Reopen,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "confirm" => Some(Action::Confirm),
            "dismiss" => Some(Action::Dismiss),
            "needs_info" => Some(Action::NeedsInfo),
            "reopen" => Some(Action::Reopen),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Dismiss => "dismiss",
            Action::NeedsInfo => "needs_info",
            Action::Reopen => "reopen",
        }
    }
    fn resulting_status(self) -> &'static str {
        match self {
            Action::Confirm => "confirmed",
            Action::Dismiss => "dismissed",
            Action::NeedsInfo => "needs_info",
            Action::Reopen => "reopened",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReviewInput {
    pub kind: ItemKind,
    pub item_id: String,
    pub action: Action,
    pub reason_code: String,
    pub notes: String,
    /// The number of audit entries the reviewer saw; a different count now means someone
    /// else acted meanwhile and this review is refused rather than applied over theirs.
    pub seen_actions: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("no such item")]
    NotFound,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub review_id: String,
    pub seq: i64,
    pub actor: String,
    pub at_ms: i64,
    pub action: String,
    pub reason_code: String,
    pub notes: String,
    pub item_version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemStatus {
    pub status: String,
    pub actions: i64,
    pub reviewed_version: i64,
}

#[derive(Debug, Clone)]
pub struct CaseView {
    pub case_id: String,
    pub version: i64,
    pub record_status: String,
    pub lead_region: String,
    pub regions: Vec<String>,
    pub severity: String,
    pub investors: i64,
    pub raised_fen: i64,
    pub paid_back_fen: i64,
    pub outstanding_fen: i64,
    pub max_score: f64,
    pub first_seen: String,
    pub last_seen: String,
    pub summary: String,
    pub record: serde_json::Value,
    pub status: ItemStatus,
}

#[derive(Debug, Clone)]
pub struct AlertView {
    pub alert_id: String,
    pub rule: String,
    pub account: String,
    pub region: String,
    pub score: f64,
    pub window_start: String,
    pub window_end: String,
    pub window_end_ms: i64,
    pub summary: String,
    pub record: serde_json::Value,
    pub status: ItemStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Score,
    Investors,
    Raised,
    Recent,
}

impl Sort {
    pub fn parse(s: &str) -> Sort {
        match s {
            "investors" => Sort::Investors,
            "raised" => Sort::Raised,
            "recent" => Sort::Recent,
            _ => Sort::Score,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Score => "score",
            Sort::Investors => "investors",
            Sort::Raised => "raised",
            Sort::Recent => "recent",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    pub kind: Option<ItemKind>,
    /// A region prefix, within the user's own scope.
    pub region: Option<String>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub status: Option<String>,
    /// Event time (case `last_seen`, alert `window_end`) from this instant (inclusive) ...
    pub from_ms: Option<i64>,
    /// ... to this one (exclusive).
    pub to_ms: Option<i64>,
    pub sort: Sort,
    /// From 0.
    pub page: i64,
    pub page_size: i64,
}

#[derive(Debug, Clone)]
pub struct InboxRow {
    pub kind: ItemKind,
    pub id: String,
    pub region: String,
    pub severity: String,
    pub rule: String,
    pub score: f64,
    pub investors: i64,
    pub raised_fen: i64,
    pub last_seen: String,
    pub summary: String,
    pub status: String,
}

#[derive(Debug, Clone, Default)]
pub struct InboxPage {
    pub rows: Vec<InboxRow>,
    /// Matching items over all pages.
    pub total: i64,
    /// Per review status, under the same filters except the status filter.
    pub counts: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestCounts {
    pub alerts_new: u64,
    pub alerts_known: u64,
    pub cases_stored: u64,
    pub cases_stale: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub review_id: String,
    pub case_id: String,
    pub lead_region: String,
    pub payload: String,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Connect (creating a SQLite file if missing) and bring the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            // sqlx opens an existing file only unless told to create it.
            let url = if rest.contains("mode=") {
                url.to_owned()
            } else if rest.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(ConsoleError::UnsupportedDatabase { url: url.to_owned() });
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite {
            // WAL: readers (the pages) do not wait for the ingest's writes.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for m in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if done > 0 {
                continue;
            }
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, description, applied_ms) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.description)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, description = m.description, "applied migration");
        }
        Ok(())
    }

    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(v.unwrap_or(0))
    }

    /// The raw pool, for tests that check what the database itself refuses.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    // ---- ingest -------------------------------------------------------------------------

    /// Store a batch and the feed positions it reaches in one transaction: after a crash the
    /// feed resumes exactly where the stored rows end. Re-reading a record changes nothing.
    pub async fn ingest(&self, items: &[Incoming], positions: &[(String, i64)]) -> Result<IngestCounts> {
        let mut counts = IngestCounts::default();
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for item in items {
            match item {
                Incoming::Alert(a) => {
                    if insert_alert(&mut tx, a, now).await? {
                        counts.alerts_new += 1;
                    } else {
                        counts.alerts_known += 1;
                    }
                }
                Incoming::Case(c) => {
                    if upsert_case(&mut tx, c, now).await? {
                        counts.cases_stored += 1;
                    } else {
                        counts.cases_stale += 1;
                    }
                }
            }
        }
        for (source, position) in positions {
            sqlx::query(
                "INSERT INTO ingest_positions (source, position) VALUES ($1, $2) \
                 ON CONFLICT (source) DO UPDATE SET position = excluded.position",
            )
            .bind(source.as_str())
            .bind(*position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    pub async fn positions(&self) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query("SELECT source, position FROM ingest_positions")
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::new();
        for r in rows {
            out.insert(r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?);
        }
        Ok(out)
    }

    pub async fn count(&self, table: Table) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        Ok(sqlx::query(&sql).fetch_one(&self.pool).await?.try_get(0)?)
    }

    // ---- users and sessions ---------------------------------------------------------------

    pub async fn add_user(&self, name: &str, password: &str, role: Role, prefixes: &[String]) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConsoleError::InvalidUser(
                "name must be 1–64 characters without spaces".into(),
            ));
        }
        if password.chars().count() < 10 {
            return Err(ConsoleError::InvalidUser(
                "password must have at least 10 characters".into(),
            ));
        }
        if prefixes.is_empty() {
            return Err(ConsoleError::InvalidUser(
                "regions must name at least one prefix".into(),
            ));
        }
        let hash = auth::hash_password(password)?;
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, role, regions, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(hash)
        .bind(role.as_str())
        .bind(auth::format_regions(prefixes))
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(ConsoleError::InvalidUser(format!("user {name:?} exists already")));
        }
        Ok(())
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT name, role, regions FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The user when name and password match. The hash is checked even for an unknown name
    /// so the answer takes the same time either way.
    pub async fn check_login(&self, name: &str, password: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT name, role, regions, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let (user, hash) = match &row {
            Some(r) => (Some(user_from_row(r)?), r.try_get::<String, _>(3)?),
            None => (None, DUMMY_HASH.to_owned()),
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        Ok(if ok { user } else { None })
    }

    /// A new session: the token for the cookie (only its hash is stored) and the CSRF token.
    pub async fn create_session(&self, user: &str, ttl_ms: i64) -> Result<(String, String)> {
        let token = auth::random_token();
        let csrf = auth::random_token();
        let now = now_ms();
        sqlx::query("DELETE FROM sessions WHERE expires_ms < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO sessions (token_hash, user_name, csrf_token, expires_ms) VALUES ($1, $2, $3, $4)")
            .bind(auth::token_hash(&token))
            .bind(user)
            .bind(csrf.as_str())
            .bind(now + ttl_ms)
            .execute(&self.pool)
            .await?;
        Ok((token, csrf))
    }

    /// The session's user and CSRF token, when the token is known and not expired.
    pub async fn session(&self, token: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT u.name, u.role, u.regions, s.csrf_token FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.token_hash = $1 AND s.expires_ms > $2",
        )
        .bind(auth::token_hash(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((user_from_row(&r)?, r.try_get::<String, _>(3)?))),
            None => Ok(None),
        }
    }

    pub async fn end_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(auth::token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- reading ----------------------------------------------------------------------------

    pub async fn inbox(&self, user: &User, q: &InboxQuery) -> Result<InboxPage> {
        match q.kind.unwrap_or(ItemKind::Case) {
            ItemKind::Case => self.case_inbox(user, q).await,
            ItemKind::Alert => self.alert_inbox(user, q).await,
        }
    }

    async fn case_inbox(&self, user: &User, q: &InboxQuery) -> Result<InboxPage> {
        let filters = |sql: &mut Sql, with_status: bool| {
            sql.push(" FROM cases c LEFT JOIN item_status s ON s.item_kind = 'case' AND s.item_id = c.case_id WHERE ");
            sql.push("EXISTS (SELECT 1 FROM case_regions cr WHERE cr.case_id = c.case_id AND ");
            push_scope(sql, "cr.region", user);
            if let Some(r) = q.region.as_deref().filter(|r| !r.is_empty()) {
                sql.push(&format!(" AND substr(cr.region, 1, {}) = ", r.len())).text(r);
            }
            sql.push(")");
            if let Some(sev) = q.severity.as_deref().filter(|s| !s.is_empty()) {
                sql.push(" AND c.severity = ").text(sev);
            }
            if let Some(rule) = q.rule.as_deref().filter(|s| !s.is_empty()) {
                sql.push(" AND EXISTS (SELECT 1 FROM case_alerts ca JOIN alerts a ON a.alert_id = ca.alert_id WHERE ca.case_id = c.case_id AND a.rule = ")
                    .text(rule)
                    .push(")");
            }
            if let Some(from) = q.from_ms {
                sql.push(" AND c.last_seen_ms >= ").int(from);
            }
            if let Some(to) = q.to_ms {
                sql.push(" AND c.last_seen_ms < ").int(to);
            }
            if with_status {
                if let Some(st) = q.status.as_deref().filter(|s| !s.is_empty()) {
                    sql.push(" AND COALESCE(s.status, 'new') = ").text(st);
                }
            }
        };
        let mut counts_sql = Sql::default();
        counts_sql.push("SELECT COALESCE(s.status, 'new') AS st, COUNT(*) AS n");
        filters(&mut counts_sql, false);
        counts_sql.push(" GROUP BY COALESCE(s.status, 'new')");
        let counts = self.status_counts(&counts_sql).await?;

        let mut sql = Sql::default();
        sql.push(
            "SELECT c.case_id, c.lead_region, c.severity, c.max_score, c.investors, c.raised_fen, c.last_seen, c.summary, COALESCE(s.status, 'new')",
        );
        filters(&mut sql, true);
        let order = match q.sort {
            Sort::Score => "c.max_score DESC",
            Sort::Investors => "c.investors DESC",
            Sort::Raised => "c.raised_fen DESC",
            Sort::Recent => "c.last_seen_ms DESC",
        };
        sql.push(&format!(" ORDER BY {order}, c.case_id LIMIT "))
            .int(q.page_size.clamp(1, 500))
            .push(" OFFSET ")
            .int(q.page.max(0) * q.page_size.clamp(1, 500));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(InboxRow {
                kind: ItemKind::Case,
                id: r.try_get(0)?,
                region: r.try_get(1)?,
                severity: r.try_get(2)?,
                rule: String::new(),
                score: r.try_get(3)?,
                investors: r.try_get(4)?,
                raised_fen: r.try_get(5)?,
                last_seen: r.try_get(6)?,
                summary: r.try_get(7)?,
                status: r.try_get(8)?,
            });
        }
        Ok(page(out, counts, q))
    }

    async fn alert_inbox(&self, user: &User, q: &InboxQuery) -> Result<InboxPage> {
        let filters = |sql: &mut Sql, with_status: bool| {
            sql.push(
                " FROM alerts a LEFT JOIN item_status s ON s.item_kind = 'alert' AND s.item_id = a.alert_id WHERE ",
            );
            push_scope(sql, "a.region", user);
            if let Some(r) = q.region.as_deref().filter(|r| !r.is_empty()) {
                sql.push(&format!(" AND substr(a.region, 1, {}) = ", r.len())).text(r);
            }
            if let Some(rule) = q.rule.as_deref().filter(|s| !s.is_empty()) {
                sql.push(" AND a.rule = ").text(rule);
            }
            if let Some(from) = q.from_ms {
                sql.push(" AND a.window_end_ms >= ").int(from);
            }
            if let Some(to) = q.to_ms {
                sql.push(" AND a.window_end_ms < ").int(to);
            }
            if with_status {
                if let Some(st) = q.status.as_deref().filter(|s| !s.is_empty()) {
                    sql.push(" AND COALESCE(s.status, 'new') = ").text(st);
                }
            }
        };
        let mut counts_sql = Sql::default();
        counts_sql.push("SELECT COALESCE(s.status, 'new') AS st, COUNT(*) AS n");
        filters(&mut counts_sql, false);
        counts_sql.push(" GROUP BY COALESCE(s.status, 'new')");
        let counts = self.status_counts(&counts_sql).await?;

        let mut sql = Sql::default();
        sql.push("SELECT a.alert_id, a.region, a.rule, a.score, a.window_end, a.summary, COALESCE(s.status, 'new')");
        filters(&mut sql, true);
        let order = match q.sort {
            Sort::Recent => "a.window_end_ms DESC",
            _ => "a.score DESC",
        };
        sql.push(&format!(" ORDER BY {order}, a.alert_id LIMIT "))
            .int(q.page_size.clamp(1, 500))
            .push(" OFFSET ")
            .int(q.page.max(0) * q.page_size.clamp(1, 500));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(InboxRow {
                kind: ItemKind::Alert,
                id: r.try_get(0)?,
                region: r.try_get(1)?,
                severity: String::new(),
                rule: r.try_get(2)?,
                score: r.try_get(3)?,
                investors: 0,
                raised_fen: 0,
                last_seen: r.try_get(4)?,
                summary: r.try_get(5)?,
                status: r.try_get(6)?,
            });
        }
        Ok(page(out, counts, q))
    }

    async fn status_counts(&self, sql: &Sql) -> Result<Vec<(String, i64)>> {
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut found = HashMap::new();
        for r in rows {
            found.insert(r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?);
        }
        Ok(STATUSES
            .iter()
            .map(|s| (s.to_string(), found.get(*s).copied().unwrap_or(0)))
            .collect())
    }

    /// A case the user may see; `None` also when it exists outside their regions, so a URL
    /// does not tell them it exists.
    pub async fn case(&self, user: &User, case_id: &str) -> Result<Option<CaseView>> {
        let row = sqlx::query(
            "SELECT c.case_id, c.version, c.record_status, c.lead_region, c.severity, c.investors, c.raised_fen, \
             c.paid_back_fen, c.outstanding_fen, c.max_score, c.first_seen, c.last_seen, c.summary, c.record \
             FROM cases c WHERE c.case_id = $1",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let regions = self.case_regions(case_id).await?;
        if !regions.iter().any(|reg| user.covers(reg)) {
            return Ok(None);
        }
        let record: String = r.try_get(13)?;
        Ok(Some(CaseView {
            case_id: r.try_get(0)?,
            version: r.try_get(1)?,
            record_status: r.try_get(2)?,
            lead_region: r.try_get(3)?,
            regions,
            severity: r.try_get(4)?,
            investors: r.try_get(5)?,
            raised_fen: r.try_get(6)?,
            paid_back_fen: r.try_get(7)?,
            outstanding_fen: r.try_get(8)?,
            max_score: r.try_get(9)?,
            first_seen: r.try_get(10)?,
            last_seen: r.try_get(11)?,
            summary: r.try_get(12)?,
            record: serde_json::from_str(&record).unwrap_or(serde_json::Value::Null),
            status: self.status(ItemKind::Case, case_id).await?,
        }))
    }

    async fn case_regions(&self, case_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT region FROM case_regions WHERE case_id = $1 ORDER BY region")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    /// The case's alerts that have arrived (its record may name alerts not yet read).
    pub async fn case_alerts(&self, case_id: &str) -> Result<Vec<AlertView>> {
        let rows = sqlx::query(
            "SELECT a.alert_id, a.rule, a.account, a.region, a.score, a.window_start, a.window_end, a.window_end_ms, a.summary, a.record \
             FROM case_alerts ca JOIN alerts a ON a.alert_id = ca.alert_id WHERE ca.case_id = $1 ORDER BY a.window_end_ms, a.alert_id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get(0)?;
            let status = self.status(ItemKind::Alert, &id).await?;
            out.push(alert_from_row(r, status)?);
        }
        Ok(out)
    }

    pub async fn alert(&self, user: &User, alert_id: &str) -> Result<Option<AlertView>> {
        let row = sqlx::query(
            "SELECT a.alert_id, a.rule, a.account, a.region, a.score, a.window_start, a.window_end, a.window_end_ms, a.summary, a.record \
             FROM alerts a WHERE a.alert_id = $1",
        )
        .bind(alert_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let region: String = r.try_get(3)?;
        if !user.covers(&region) {
            return Ok(None);
        }
        let status = self.status(ItemKind::Alert, alert_id).await?;
        Ok(Some(alert_from_row(&r, status)?))
    }

    /// Cases that contain the alert (ids only).
    pub async fn cases_of_alert(&self, alert_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT case_id FROM case_alerts WHERE alert_id = $1 ORDER BY case_id")
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    pub async fn status(&self, kind: ItemKind, id: &str) -> Result<ItemStatus> {
        let row = sqlx::query(
            "SELECT status, actions, reviewed_version FROM item_status WHERE item_kind = $1 AND item_id = $2",
        )
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => ItemStatus {
                status: r.try_get(0)?,
                actions: r.try_get(1)?,
                reviewed_version: r.try_get(2)?,
            },
            None => ItemStatus {
                status: "new".into(),
                actions: 0,
                reviewed_version: 0,
            },
        })
    }

    pub async fn audit(&self, kind: ItemKind, id: &str) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT review_id, seq, actor, at_ms, action, reason_code, notes, item_version FROM audit \
             WHERE item_kind = $1 AND item_id = $2 ORDER BY seq",
        )
        .bind(kind.as_str())
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(AuditEntry {
                review_id: r.try_get(0)?,
                seq: r.try_get(1)?,
                actor: r.try_get(2)?,
                at_ms: r.try_get(3)?,
                action: r.try_get(4)?,
                reason_code: r.try_get(5)?,
                notes: r.try_get(6)?,
                item_version: r.try_get(7)?,
            });
        }
        Ok(out)
    }

    // ---- review -----------------------------------------------------------------------------

    /// Apply one review action: the audit entry, the new status and (for a confirmed case)
    /// the outbox row are one transaction. Returns the review id.
    pub async fn review(&self, user: &User, input: &ReviewInput) -> Result<String> {
        let notes = input.notes.trim().to_owned();
        let reason = input.reason_code.trim().to_owned();
        if notes.chars().count() > 4000 {
            return Err(ReviewError::Invalid("notes are limited to 4,000 characters".into()).into());
        }
        match input.action {
            Action::Dismiss => {
                if !DISMISS_REASONS.iter().any(|(code, _)| *code == reason) {
                    return Err(ReviewError::Invalid("dismiss needs a reason code from the list".into()).into());
                }
                if notes.is_empty() {
                    return Err(ReviewError::Invalid("dismiss needs a written reason".into()).into());
                }
            }
            Action::NeedsInfo | Action::Reopen if notes.is_empty() => {
                return Err(ReviewError::Invalid(format!("{} needs a note saying why", input.action.as_str())).into());
            }
            _ if !reason.is_empty() && input.action != Action::Dismiss => {
                return Err(ReviewError::Invalid("only dismiss takes a reason code".into()).into());
            }
            _ => {}
        }

        let mut tx = self.pool.begin().await?;
        // What the item is, and whether this user may act on it.
        let (version, lead_region, record) = match input.kind {
            ItemKind::Case => {
                let row = sqlx::query("SELECT version, lead_region, record FROM cases WHERE case_id = $1")
                    .bind(input.item_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(r) = row else {
                    return Err(ReviewError::NotFound.into());
                };
                let regions: Vec<String> = sqlx::query("SELECT region FROM case_regions WHERE case_id = $1")
                    .bind(input.item_id.as_str())
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?;
                if !regions.iter().any(|reg| user.covers(reg)) {
                    return Err(ReviewError::NotFound.into());
                }
                let lead: String = r.try_get(1)?;
                if !user.covers(&lead) {
                    return Err(ReviewError::Forbidden(format!(
                        "only the lead region {lead}'s reviewers act on this case"
                    ))
                    .into());
                }
                (r.try_get::<i64, _>(0)?, lead, r.try_get::<String, _>(2)?)
            }
            ItemKind::Alert => {
                let row = sqlx::query("SELECT region FROM alerts WHERE alert_id = $1")
                    .bind(input.item_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(r) = row else {
                    return Err(ReviewError::NotFound.into());
                };
                let region: String = r.try_get(0)?;
                if !user.covers(&region) {
                    return Err(ReviewError::NotFound.into());
                }
                (0, region, String::new())
            }
        };
        match (input.action, user.role) {
            (_, Role::Readonly) => return Err(ReviewError::Forbidden("read-only users do not review".into()).into()),
            (Action::Reopen, Role::Analyst) => {
                return Err(ReviewError::Forbidden("only a supervisor re-opens".into()).into())
            }
            _ => {}
        }

        let current = sqlx::query("SELECT status, actions FROM item_status WHERE item_kind = $1 AND item_id = $2")
            .bind(input.kind.as_str())
            .bind(input.item_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let (status, actions) = match current {
            Some(r) => (r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?),
            None => ("new".to_owned(), 0),
        };
        if let Some(seen) = input.seen_actions {
            if seen != actions {
                return Err(ReviewError::Conflict(
                    "someone else acted on this item since you opened it; look again".into(),
                )
                .into());
            }
        }
        match input.action {
            Action::Reopen if !is_decided(&status) => {
                return Err(ReviewError::Conflict(format!("it is {status}, not decided: nothing to re-open")).into())
            }
            Action::Confirm | Action::Dismiss | Action::NeedsInfo if is_decided(&status) => {
                return Err(ReviewError::Conflict(format!(
                    "it is {status} already; a supervisor must re-open it first"
                ))
                .into())
            }
            _ => {}
        }

        let review_id = auth::random_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO audit (review_id, item_kind, item_id, seq, actor, at_ms, action, reason_code, notes, item_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(review_id.as_str())
        .bind(input.kind.as_str())
        .bind(input.item_id.as_str())
        .bind(actions + 1)
        .bind(user.name.as_str())
        .bind(now)
        .bind(input.action.as_str())
        .bind(reason.as_str())
        .bind(notes.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await?;
        // Guarded by the count read above: a concurrent review makes this touch no row.
        let changed = sqlx::query(
            "INSERT INTO item_status (item_kind, item_id, status, actions, last_review_id, reviewed_version, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (item_kind, item_id) DO UPDATE SET status = excluded.status, actions = excluded.actions, \
             last_review_id = excluded.last_review_id, reviewed_version = excluded.reviewed_version, updated_ms = excluded.updated_ms \
             WHERE item_status.actions = $8",
        )
        .bind(input.kind.as_str())
        .bind(input.item_id.as_str())
        .bind(input.action.resulting_status())
        .bind(actions + 1)
        .bind(review_id.as_str())
        .bind(version)
        .bind(now)
        .bind(actions)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(ReviewError::Conflict("someone else acted on this item at the same time".into()).into());
        }
        if input.kind == ItemKind::Case && input.action == Action::Confirm {
            let payload = report_payload(&record, &review_id, &user.name, now, &notes)?;
            sqlx::query(
                "INSERT INTO outbox (review_id, case_id, lead_region, payload, created_ms, sent_ms) VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(review_id.as_str())
            .bind(input.item_id.as_str())
            .bind(lead_region.as_str())
            .bind(payload)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(
            kind = input.kind.as_str(),
            item = input.item_id.as_str(),
            action = input.action.as_str(),
            reviewer = user.name.as_str(),
            review_id = review_id.as_str(),
            "review"
        );
        Ok(review_id)
    }

    // ---- outbox -----------------------------------------------------------------------------

    pub async fn unsent(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "SELECT review_id, case_id, lead_region, payload FROM outbox WHERE sent_ms IS NULL ORDER BY created_ms, review_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(OutboxRow {
                review_id: r.try_get(0)?,
                case_id: r.try_get(1)?,
                lead_region: r.try_get(2)?,
                payload: r.try_get(3)?,
            });
        }
        Ok(out)
    }

    pub async fn mark_sent(&self, review_ids: &[String]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for id in review_ids {
            sqlx::query("UPDATE outbox SET sent_ms = $1 WHERE review_id = $2 AND sent_ms IS NULL")
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Alerts,
    Cases,
    Audit,
    Outbox,
    Users,
    CaseAlerts,
    CaseRegions,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Alerts => "alerts",
            Table::Cases => "cases",
            Table::Audit => "audit",
            Table::Outbox => "outbox",
            Table::Users => "users",
            Table::CaseAlerts => "case_alerts",
            Table::CaseRegions => "case_regions",
        }
    }
}

/// Verified against when the name is unknown (same work as a real check).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9q2Vb3ySytKjPRVtD+O5P7nTvq0Tg6Zp4T6FoLIpX9o";

fn page(rows: Vec<InboxRow>, counts: Vec<(String, i64)>, q: &InboxQuery) -> InboxPage {
    let total = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(st) => counts.iter().find(|(s, _)| s == st).map(|(_, n)| *n).unwrap_or(0),
        None => counts.iter().map(|(_, n)| n).sum(),
    };
    InboxPage { rows, total, counts }
}

fn user_from_row(r: &AnyRow) -> Result<User> {
    let role: String = r.try_get(1)?;
    let regions: String = r.try_get(2)?;
    Ok(User {
        name: r.try_get(0)?,
        role: Role::parse(&role).unwrap_or(Role::Readonly),
        prefixes: auth::parse_regions(&regions).unwrap_or_default(),
    })
}

fn alert_from_row(r: &AnyRow, status: ItemStatus) -> Result<AlertView> {
    let record: String = r.try_get(9)?;
    Ok(AlertView {
        alert_id: r.try_get(0)?,
        rule: r.try_get(1)?,
        account: r.try_get(2)?,
        region: r.try_get(3)?,
        score: r.try_get(4)?,
        window_start: r.try_get(5)?,
        window_end: r.try_get(6)?,
        window_end_ms: r.try_get(7)?,
        summary: r.try_get(8)?,
        record: serde_json::from_str(&record).unwrap_or(serde_json::Value::Null),
        status,
    })
}

/// The reported record: the case record as it was when confirmed, plus who confirmed it.
fn report_payload(record: &str, review_id: &str, reviewer: &str, at_ms: i64, notes: &str) -> Result<String> {
    let mut value: serde_json::Value = serde_json::from_str(record)
        .map_err(|e| ReviewError::Invalid(format!("the stored case record is not JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ReviewError::Invalid("the stored case record is not an object".into()).into());
    };
    obj.insert(
        "review".into(),
        serde_json::json!({
            "review_id": review_id,
            "reviewer": reviewer,
            "action": "confirm",
            "time": crate::format_utc(at_ms),
            "notes": notes,
        }),
    );
    Ok(value.to_string())
}

type Tx<'c> = sqlx::Transaction<'c, Any>;

async fn insert_alert(tx: &mut Tx<'_>, a: &AlertRow, now: i64) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO alerts (alert_id, rule, account, region, score, window_start, window_end, window_end_ms, summary, record, ingested_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (alert_id) DO NOTHING",
    )
    .bind(a.alert_id.as_str())
    .bind(a.rule.as_str())
    .bind(a.account.as_str())
    .bind(a.region.as_str())
    .bind(a.score)
    .bind(a.window_start.as_str())
    .bind(a.window_end.as_str())
    .bind(a.window_end_ms)
    .bind(a.summary.as_str())
    .bind(a.raw.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        // A case read before its alert sorts by the alert's score from now on.
        sqlx::query(
            "UPDATE cases SET max_score = $1 WHERE max_score < $1 AND case_id IN (SELECT case_id FROM case_alerts WHERE alert_id = $2)",
        )
        .bind(a.score)
        .bind(a.alert_id.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(inserted)
}

/// Store the case unless a version at least as new is stored. True when stored.
async fn upsert_case(tx: &mut Tx<'_>, c: &CaseRow, now: i64) -> Result<bool> {
    let stored = sqlx::query(
        "INSERT INTO cases (case_id, version, record_status, lead_region, severity, investors, raised_fen, paid_back_fen, \
         outstanding_fen, max_score, first_seen, last_seen, last_seen_ms, summary, record, ingested_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0.0, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (case_id) DO UPDATE SET version = excluded.version, record_status = excluded.record_status, \
         lead_region = excluded.lead_region, severity = excluded.severity, investors = excluded.investors, \
         raised_fen = excluded.raised_fen, paid_back_fen = excluded.paid_back_fen, outstanding_fen = excluded.outstanding_fen, \
         first_seen = excluded.first_seen, last_seen = excluded.last_seen, last_seen_ms = excluded.last_seen_ms, \
         summary = excluded.summary, record = excluded.record, ingested_ms = excluded.ingested_ms \
         WHERE cases.version < excluded.version",
    )
    .bind(c.case_id.as_str())
    .bind(c.version)
    .bind(c.record_status.as_str())
    .bind(c.lead_region.as_str())
    .bind(c.severity.as_str())
    .bind(c.investors)
    .bind(c.raised_fen)
    .bind(c.paid_back_fen)
    .bind(c.outstanding_fen)
    .bind(c.first_seen.as_str())
    .bind(c.last_seen.as_str())
    .bind(c.last_seen_ms)
    .bind(c.summary.as_str())
    .bind(c.raw.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !stored {
        return Ok(false);
    }
    // The newest version's regions and alerts replace the older version's.
    sqlx::query("DELETE FROM case_regions WHERE case_id = $1")
        .bind(c.case_id.as_str())
        .execute(&mut **tx)
        .await?;
    let mut regions: Vec<&str> = c.regions.iter().map(String::as_str).collect();
    for a in &c.accounts {
        if let Some(r) = a.region.as_deref() {
            regions.push(r);
        }
    }
    regions.sort_unstable();
    regions.dedup();
    for r in regions {
        sqlx::query("INSERT INTO case_regions (case_id, region) VALUES ($1, $2)")
            .bind(c.case_id.as_str())
            .bind(r)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM case_alerts WHERE case_id = $1")
        .bind(c.case_id.as_str())
        .execute(&mut **tx)
        .await?;
    let mut alert_ids: Vec<&str> = c.alert_ids.iter().map(String::as_str).collect();
    alert_ids.sort_unstable();
    alert_ids.dedup();
    for id in alert_ids {
        sqlx::query("INSERT INTO case_alerts (case_id, alert_id) VALUES ($1, $2)")
            .bind(c.case_id.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "UPDATE cases SET max_score = COALESCE((SELECT MAX(a.score) FROM case_alerts ca JOIN alerts a ON a.alert_id = ca.alert_id \
         WHERE ca.case_id = $1), 0.0) WHERE case_id = $1",
    )
    .bind(c.case_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
