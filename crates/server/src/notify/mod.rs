//! Alerts (issue 9, `docs/alerts.md`):
//! - [`incident`]: which check results open, remind of and close an incident (a pure state
//!   machine without I/O);
//! - the outbox is in the store (`Store::finish` records alerts and deliveries in the
//!   check's transaction; `claim_deliveries`, `mark_delivered`, `mark_attempt_failed`);
//! - [`webhook`]: signed JSON POSTs through the SSRF guard (`docs/webhooks.md`);
//! - [`email`]: SMTP through lettre, double opt-in, unsubscribe links;
//! - [`worker`]: the loop that sends due deliveries, and the periodic sweeps (blindness,
//!   daily digest);
//! - [`digest`]: the bodies of the optional daily digest.

pub mod digest;
pub mod email;
pub mod incident;
pub mod webhook;
pub mod worker;
