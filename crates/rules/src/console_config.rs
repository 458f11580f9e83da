//! `[console]`: the review console (`fundwatch console serve`). Not part of `config_version`.

use serde::{Deserialize, Serialize};

use crate::config::{Checker, Validate};
use crate::units::Span;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleParams {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`. A value `"${NAME}"`
    /// is not expanded here: pass a secret-bearing URL with `--database-url` or its env var.
    pub database_url: String,
    /// Address of the console's web pages.
    pub listen: String,
    /// Confirmed cases (key = `case_id`, header `fundwatch.region` = lead region), written
    /// exactly once by a transactional producer. Created if missing.
    pub reported_topic: String,
    /// The reporter's fixed transactional id: a restarted console fences its predecessor.
    pub transactional_id: String,
    /// How long a login lasts. Range 5m–7d.
    pub session_ttl: Span,
    /// Mark the session cookie `Secure` (the console is served behind TLS).
    pub secure_cookies: bool,
}

impl Default for ConsoleParams {
    fn default() -> Self {
        ConsoleParams {
            database_url: "sqlite://fundwatch-console.db".into(),
            listen: "127.0.0.1:8080".into(),
            reported_topic: "fundwatch-reported".into(),
            transactional_id: "fundwatch-console-reporter".into(),
            session_ttl: Span(8 * 3_600_000),
            secure_cookies: false,
        }
    }
}

impl Validate for ConsoleParams {
    fn validate(&self, c: &mut Checker<'_>) {
        let url = self.database_url.trim();
        c.require(
            url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "database_url",
            "must start with sqlite:// or postgres://",
        );
        c.require(
            self.listen.parse::<std::net::SocketAddr>().is_ok(),
            "listen",
            "must be an address like \"127.0.0.1:8080\"",
        );
        c.require(
            !self.reported_topic.trim().is_empty(),
            "reported_topic",
            "must not be empty",
        );
        c.require(
            !self.transactional_id.trim().is_empty(),
            "transactional_id",
            "must not be empty",
        );
        c.span("session_ttl", self.session_ttl, Span(300_000), Span(7 * 86_400_000));
    }
}
