-- Version 3: service-wide settings shared by every instance (for example the web secret
-- that signs CSRF tokens and admin sessions, so that any instance accepts them).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
