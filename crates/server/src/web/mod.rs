//! The web layer of certwatch-server: server-rendered HTML pages, the JSON API, the Atom
//! feeds, the admin view, and the security around them (CSRF tokens, rate limits, security
//! headers, body size limits).
//!
//! The public entry point is `router(state)`, which builds the axum `Router` for an
//! `AppState` (the store, the configuration, the metrics, the clock and the on-demand check
//! handle). One module per concept:
//!
//! - `pages`: home, the result page per domain, the removal-request form;
//! - `api`: `/api/v1/...` (the stored report in the CLI's JSON schema, on-demand checks);
//! - `feed`: the Atom feed per domain;
//! - `admin`: the admin view behind a token;
//! - `csrf`: HMAC-signed double-submit tokens bound to a cookie;
//! - `ratelimit`: per-client and global limits on on-demand checks;
//! - `security`: the security headers on every response;
//! - `html`: the auto-escaping templates (maud) and the page layout.
//!
//! Under construction: the modules arrive in the following commits.
