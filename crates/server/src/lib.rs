//! # certwatch-server
//!
//! The certwatch web service as a library (the `certwatch-server` binary is a thin wrapper):
//! operators enter an XMPP domain, get told how to set up DANE, and the service watches it
//! over Tor, comparing the key each server proves with its DNSSEC-signed TLSA records.
//!
//! One module per concept:
//! - [`config`]: flags > `CERTWATCH_*` environment > TOML file > defaults;
//! - [`store`]: domains, checks (full reports), keys seen, on-demand tickets, subscriptions,
//!   in SQLite (default) or PostgreSQL, with versioned migrations;
//! - [`scheduler`]: claims due checks and tickets, runs them under a cap on Tor circuits per
//!   minute, records outcomes; [`runner`]: the facade's checker over Tor, direct or SOCKS,
//!   with DNS refreshed on its own TTL schedule ([`dns_cache`]);
//! - [`app`]: the state shared by the web handlers; `web`: pages, API, feeds, admin;
//! - [`metrics`]: Prometheus text and health data; [`guard`]: the SSRF guard;
//! - [`random`], [`clock`]: injected randomness and time;
//! - [`component`]: XMPP notifications (the service as an XMPP component, issue 10).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use certwatch_server::{app::AppState, clock::TokioClock, config::Config, metrics::Metrics, store::Store};
//!
//! let store = Store::open("sqlite::memory:").await.unwrap();
//! let state = AppState::new(
//!     store,
//!     Arc::new(Config::defaults()),
//!     Arc::new(Metrics::new()),
//!     Arc::new(TokioClock::starting_at(1_700_000_000)),
//!     Arc::new(tokio::sync::Notify::new()),
//! );
//! let ticket = state.checks.request("example.org").await.unwrap();
//! assert_eq!(ticket.id.len(), 32); // 128 random bits
//! assert!(state.metrics.render_prometheus().contains("certwatch_checks_total"));
//! # });
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod clock;
pub mod component;
pub mod config;
pub mod dns_cache;
pub mod guard;
pub mod metrics;
pub mod notify;
pub mod random;
pub mod runner;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod web;
