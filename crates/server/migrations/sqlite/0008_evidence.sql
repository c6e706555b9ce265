-- Version 8 (issue 9): signed evidence bundles (docs/evidence.md), one per conclusive check
-- that made one, and the bundle each alert links to.
CREATE TABLE evidence (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    domain     TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    check_id   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- The signed JSON document exactly as published (UTF-8).
    body       TEXT NOT NULL,
    -- SHA-256 of body, lower-case hex.
    sha256     TEXT NOT NULL
);
CREATE INDEX evidence_domain ON evidence (domain, id);
CREATE INDEX evidence_check ON evidence (check_id);

ALTER TABLE alerts ADD COLUMN evidence_id INTEGER;
