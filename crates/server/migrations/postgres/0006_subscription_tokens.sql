-- Version 6 (issue 9): double opt-in and unsubscribe tokens of a subscription. Only the
-- SHA-256 (hex) of each token is stored; the tokens themselves go out in the links.
ALTER TABLE subscriptions ADD COLUMN confirm_token_hash TEXT;
ALTER TABLE subscriptions ADD COLUMN confirm_expires_at BIGINT;
ALTER TABLE subscriptions ADD COLUMN unsubscribe_token_hash TEXT;
