-- Version 2: operators' removal requests (an unauthenticated form; recorded for the admin,
-- never acted on automatically).
CREATE TABLE removal_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    domain       TEXT NOT NULL,
    contact      TEXT NOT NULL,
    message      TEXT NOT NULL,
    requested_at INTEGER NOT NULL
);
CREATE INDEX removal_requests_time ON removal_requests (requested_at);
