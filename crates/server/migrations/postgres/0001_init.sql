-- certwatch-server schema, version 1 (PostgreSQL). Times are Unix seconds (UTC).

-- One row per domain the service knows (A-label, no trailing dot).
CREATE TABLE domains (
    domain             TEXT PRIMARY KEY,
    added_at           BIGINT NOT NULL,
    -- Last time someone asked for this domain (form, API); a domain watched only because its
    -- last verdict was `match` stays watched until watch_until.
    last_requested_at  BIGINT NOT NULL,
    watch_until        BIGINT NOT NULL,
    last_verdict       TEXT,
    last_checked_at    BIGINT,
    last_check_id      BIGINT,
    -- Last check whose verdict was not `indeterminate` (issue 9's blindness alert).
    last_conclusive_at BIGINT,
    -- The next scheduled check; NULL: not scheduled (never checked).
    next_due_at        BIGINT,
    -- The lease of a running check: who claimed it, until when, with which token.
    claimed_by         TEXT,
    claim_until        BIGINT,
    claim_token        TEXT
);
CREATE INDEX domains_due ON domains (next_due_at);

-- Every check that ran (scheduled or on demand), with the full report as JSON.
CREATE TABLE checks (
    id          BIGSERIAL PRIMARY KEY,
    domain      TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    verdict     TEXT,
    report      TEXT,
    error       TEXT,
    instance    TEXT NOT NULL
);
CREATE INDEX checks_domain ON checks (domain, id);

-- Every key a domain's endpoints presented (SHA-256 of the SPKI, lowercase hex).
CREATE TABLE keys_seen (
    domain       TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    target       TEXT NOT NULL,
    port         BIGINT NOT NULL,
    spki_sha256  TEXT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    times        BIGINT NOT NULL,
    PRIMARY KEY (domain, target, port, spki_sha256)
);

-- On-demand checks: queued, running (claimed with a lease), done or failed.
CREATE TABLE tickets (
    id           TEXT PRIMARY KEY,
    domain       TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    requested_at BIGINT NOT NULL,
    state        TEXT NOT NULL,
    claimed_by   TEXT,
    claim_until  BIGINT,
    check_id     BIGINT,
    message      TEXT,
    finished_at  BIGINT
);
CREATE INDEX tickets_state ON tickets (state, requested_at);

-- Subscriptions (issue 9 fills the channels: email, webhook, xmpp-chat, xmpp-pubsub).
-- A confirmed, unblocked subscription makes its domain watched.
CREATE TABLE subscriptions (
    id           BIGSERIAL PRIMARY KEY,
    domain       TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    address      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    blocked      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (domain, channel, address)
);
