-- Version 9 (issue 9): the optional daily digest. A subscription with digest = 1 (opt-in,
-- Store::set_subscription_digest) gets one "certwatch is alive" delivery per day, at the
-- configured hour (UTC), through the outbox. The day last sent is kept in settings
-- (key digest_day), so that one instance sends it once per day.
ALTER TABLE subscriptions ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
