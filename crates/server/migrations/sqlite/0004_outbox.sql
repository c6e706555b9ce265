-- Version 4 (issue 9): incidents, their alerts, and the outbox of deliveries.

-- One row per incident of a domain: a condition (mismatch, bogus, signature-expiring,
-- downgrade, blind, hostile-exit) from its opening to its recovery (closed_at).
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    domain        TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    condition     TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    last_alert_at INTEGER NOT NULL,
    closed_at     INTEGER
);
CREATE INDEX incidents_domain ON incidents (domain, closed_at);

-- Every alert decided (opened, reminder, recovered), with the check that caused it.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    condition   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    audience    TEXT NOT NULL,
    opened_at   INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    check_id    INTEGER
);
CREATE INDEX alerts_audience ON alerts (audience, at);

-- The outbox: one delivery per (alert, subscription), created in the transaction of the
-- check that caused the alert. The id (128 random bits, hex) never changes: a retry after a
-- crash sends the same id, so receivers can deduplicate. Claimed with a lease like checks.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    subscription_id INTEGER NOT NULL,
    channel         TEXT NOT NULL,
    address         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT,
    claim_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
