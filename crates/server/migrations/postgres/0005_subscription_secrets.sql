-- Version 5 (issue 9): a webhook subscription's HMAC secret (hex, >= 128 bits) and the
-- pending confirmation challenge. Stored in clear: the service needs the secret itself to
-- compute each body's HMAC (a hash would not do); see docs/webhooks.md.
ALTER TABLE subscriptions ADD COLUMN secret TEXT;
