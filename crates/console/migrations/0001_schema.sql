-- fundwatch console schema, version 1. Plain SQL that SQLite and PostgreSQL both run.
CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    window_end_ms BIGINT NOT NULL,
    summary TEXT NOT NULL,
    record TEXT NOT NULL,
    ingested_ms BIGINT NOT NULL
);
CREATE INDEX alerts_by_region ON alerts (region);
CREATE INDEX alerts_by_time ON alerts (window_end_ms);
CREATE INDEX alerts_by_score ON alerts (score);

-- The last version of each case; an older version never replaces a newer one.
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    record_status TEXT NOT NULL,
    lead_region TEXT NOT NULL,
    severity TEXT NOT NULL,
    investors BIGINT NOT NULL,
    raised_fen BIGINT NOT NULL,
    paid_back_fen BIGINT NOT NULL,
    outstanding_fen BIGINT NOT NULL,
    max_score DOUBLE PRECISION NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    summary TEXT NOT NULL,
    record TEXT NOT NULL,
    ingested_ms BIGINT NOT NULL
);
CREATE INDEX cases_by_time ON cases (last_seen_ms);
CREATE INDEX cases_by_score ON cases (max_score);
CREATE INDEX cases_by_investors ON cases (investors);
CREATE INDEX cases_by_raised ON cases (raised_fen);

CREATE TABLE case_regions (
    case_id TEXT NOT NULL,
    region TEXT NOT NULL,
    PRIMARY KEY (case_id, region)
);
CREATE INDEX case_regions_by_region ON case_regions (region);

CREATE TABLE case_alerts (
    case_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    PRIMARY KEY (case_id, alert_id)
);
CREATE INDEX case_alerts_by_alert ON case_alerts (alert_id);

-- Review state of each item; no row means `new`. `actions` counts its audit entries and
-- guards against two reviewers deciding at once.
CREATE TABLE item_status (
    item_kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    status TEXT NOT NULL,
    actions BIGINT NOT NULL,
    last_review_id TEXT NOT NULL,
    reviewed_version BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (item_kind, item_id)
);
CREATE INDEX item_status_by_status ON item_status (item_kind, status);

-- Append-only (migration 2 makes the database refuse UPDATE and DELETE).
CREATE TABLE audit (
    review_id TEXT PRIMARY KEY,
    item_kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    actor TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    notes TEXT NOT NULL,
    item_version BIGINT NOT NULL,
    UNIQUE (item_kind, item_id, seq)
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    regions TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- Confirmed cases to report, written in the review's transaction.
CREATE TABLE outbox (
    review_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    lead_region TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    sent_ms BIGINT
);
CREATE INDEX outbox_by_sent ON outbox (sent_ms);

-- Where each feed was read to (Kafka: next offset per topic partition; files: byte offset),
-- written in the same transaction as the rows read.
CREATE TABLE ingest_positions (
    source TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
