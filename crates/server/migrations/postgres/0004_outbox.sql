-- Version 4 (issue 9): incidents, their alerts, and the outbox of deliveries.

-- One row per incident of a domain: a condition (mismatch, bogus, signature-expiring,
-- downgrade, blind, hostile-exit) from its opening to its recovery (closed_at).
CREATE TABLE incidents (
    id            BIGSERIAL PRIMARY KEY,
    domain        TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    condition     TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    last_alert_at BIGINT NOT NULL,
    closed_at     BIGINT
);
CREATE INDEX incidents_domain ON incidents (domain, closed_at);

-- Every alert decided (opened, reminder, recovered), with the check that caused it.
CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    condition   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    audience    TEXT NOT NULL,
    opened_at   BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    check_id    BIGINT
);
CREATE INDEX alerts_audience ON alerts (audience, at);

-- The outbox: one delivery per (alert, subscription), created in the transaction of the
-- check that caused the alert. The id (128 random bits, hex) never changes: a retry after a
-- crash sends the same id, so receivers can deduplicate. Claimed with a lease like checks.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    subscription_id BIGINT NOT NULL,
    channel         TEXT NOT NULL,
    address         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    claim_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
