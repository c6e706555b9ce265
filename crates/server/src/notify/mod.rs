//! Alerts (issue 9): which check results open, remind of and close an incident
//! ([`incident`], a pure state machine without I/O), and the outbox that carries each alert
//! to each subscriber exactly under one stable delivery id (the store's `outbox_*`
//! operations, see `docs/alerts.md`).

pub mod email;
pub mod incident;
pub mod webhook;
pub mod worker;
