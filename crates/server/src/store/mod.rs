//! The store: every domain, check, key seen and on-demand ticket, in SQLite (the default, a
//! file) or PostgreSQL (several instances sharing the work).
//!
//! # Opening
//! [`Store::open`] takes a URL: `sqlite://PATH` (created if missing), `sqlite::memory:`
//! (tests), or `postgres://USER@HOST:PORT/DB` (no TLS: a local server or a tunnel). The
//! versioned migrations of `crates/server/migrations/` run on open; a database written by a
//! newer version is refused.
//!
//! # Semantics
//! - Domains are stored in A-label form without the trailing dot. Every method that takes a
//!   domain normalises it (IDNA, case) first; an invalid name is [`StoreError::InvalidDomain`]
//!   for the writing methods and `None`/empty for the reading ones.
//! - Times are Unix seconds (UTC), passed in by the caller (the injected clock).
//! - Every state change is one transaction: a `kill -9` leaves either the old or the new
//!   state, never half of it.
//! - **Watched**: a domain is watched while it has a confirmed, unblocked subscription, or
//!   while its last verdict is `match` and the last request for it (form or API) is less than
//!   `expire_days` old. Only watched domains are claimed by the scheduler
//!   ([`Store::claim_due`]); on-demand tickets run for any domain.
//! - **Claims** are leases: a claimed check that is not finished by `claim_until` (the
//!   process died) is claimed again. On PostgreSQL the claim is `SELECT ... FOR UPDATE SKIP
//!   LOCKED`, so two instances never claim the same check; on SQLite the claim runs in a
//!   `BEGIN IMMEDIATE` transaction (one writer at a time).
//! - History is bounded: a finished check deletes its domain's checks older than
//!   [`HISTORY_RETENTION_SECS`] (90 days; the latest is always kept) and finished tickets
//!   older than [`TICKET_RETENTION_SECS`] (a day).
//! - A domain has at most one queued or running ticket: [`Store::request_check`] returns the
//!   existing one (`deduplicated: true`) instead of queueing a second.
//!
//! # API for the web layer (all `async`, all `Result<_, StoreError>`)
//! - `domain_view(domain, now) -> Option<DomainView>`: the result page's data;
//! - `history(domain, limit) -> Vec<CheckRecord>`: past checks, newest first, each with the
//!   full [`certwatch::Report`] (keys per endpoint, vantages and exits);
//! - `keys_seen(domain) -> Vec<SeenKey>`;
//! - `request_check(domain, now) -> CheckTicket` (prefer `AppState::checks`, which also
//!   wakes the scheduler) and `ticket(id) -> Option<TicketState>`;
//! - `list_domains(offset, limit) -> Vec<DomainSummary>`, `count_domains()`,
//!   `remove_domain(domain) -> bool` (admin view, and an operator's removal request);
//! - `subscriptions(Some(domain) | None, limit) -> Vec<Subscription>` and
//!   `set_subscription_blocked(id, blocked) -> bool` (admin: block a subscriber);
//! - `request_removal(domain, contact, message, now)` and `removal_requests(limit) ->
//!   Vec<RemovalRequest>` (an operator's removal request, recorded for the admin; at most
//!   1000 kept, one per domain and contact);
//! - `web_secret() -> Vec<u8>` (32 bytes, made once, shared by all instances);
//! - `stats(now) -> StoreStats` (health and metrics).
//!
//! # Alerts and the outbox (issue 9, schema version 4)
//! [`Store::finish`] also steps the domain's incidents ([`crate::notify::incident`], with
//! the policy of [`Store::with_alert_policy`]) and, in the same transaction, records the
//! alerts and one delivery per confirmed, unblocked subscription, each with a stable random
//! id. A worker calls `claim_deliveries(instance, now, lease, max)` (a lease, like checks),
//! sends, then `mark_delivered(id, now)` or `mark_attempt_failed(id, now, error, retry)`
//! (exponential backoff, `failed` after `retry.max_attempts`). Admin view:
//! `failed_deliveries(limit)`, `admin_notices(limit)` (hostile exits); health:
//! `outbox_backlog()`; per domain: `incidents(domain, limit)`, `deliveries_of(domain, limit)`.
//!
//! # Evidence bundles (issue 9, schema version 8)
//! [`Store::finish_with_evidence`] stores the check's signed bundle in its transaction and
//! links the check's alerts to it; `evidence(domain, id)`, `latest_evidence(domain)`,
//! `evidence_of_check(check_id)` and `alerts_of(domain, limit)` read them back. The signing
//! key is [`Store::evidence_signing_key`].
//!
//! # Extending the schema (issues 9 and 10)
//! Add `migrations/sqlite/000N_name.sql` and `migrations/postgres/000N_name.sql` (same
//! tables; `BIGINT`/`BIGSERIAL` on PostgreSQL where SQLite says `INTEGER`), list both in
//! `ops.rs` (`MIGRATIONS_SQLITE`, `MIGRATIONS_POSTGRES`) and bump [`CURRENT_VERSION`]. Write
//! SQL once with `$1` placeholders (SQLite receives `?1`) and put each state change in one
//! `ops` function, run by `Store::tx` as one transaction. The `subscriptions` table (channel,
//! address, `confirmed_at`, `blocked`) already decides who is watched; an outbox row that must
//! not be lost belongs in the same transaction as the check that caused it, that is in
//! `ops::finish` (or a variant of it).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use certwatch_server::store::{Store, TicketState};
//!
//! let store = Store::open("sqlite::memory:").await.unwrap();
//! let ticket = store.request_check("Exämple.org", 1_700_000_000).await.unwrap();
//! assert_eq!(ticket.domain, "xn--exmple-cua.org");
//! assert_eq!(store.ticket(&ticket.id).await.unwrap(), Some(TicketState::Queued));
//! let view = store.domain_view("xn--exmple-cua.org", 1_700_000_000).await.unwrap().unwrap();
//! assert!(view.report.is_none());
//! # });
//! ```

mod db;
mod evidence;
mod ops;
mod outbox;
mod xmpp;

use std::sync::Arc;

use certwatch::{Report, Verdict};

use crate::random::{Random, SystemRandom};
use db::Db;

pub use evidence::{EVIDENCE_RETENTION_SECS, EvidenceRecord};
pub use ops::{CURRENT_VERSION, HISTORY_RETENTION_SECS, TICKET_RETENTION_SECS};
pub use outbox::{
    ADMIN_EMAIL_SUBSCRIPTION, ADMIN_WEBHOOK_SUBSCRIPTION, AdminContacts, AlertRecord, Delivery,
    Heartbeat, IncidentRecord, RetryPolicy,
};
pub use xmpp::{NodePage, NodePageQuery};

/// The tokens of a new opt-in subscription, to put in the confirmation message's links.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OptInTokens {
    /// The subscription's id.
    pub subscription_id: i64,
    /// The confirmation token (double opt-in link).
    pub confirm: String,
    /// The unsubscribe token (in every message's unsubscribe link).
    pub unsubscribe: String,
}

use crate::notify::incident::Policy;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not one the store understands.
    #[error(
        "database URL {url:?}: expected sqlite://PATH, sqlite::memory: or postgres://USER@HOST:PORT/DB"
    )]
    BadUrl {
        /// The URL (password removed).
        url: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the database {url}: {reason}")]
    Open {
        /// The URL (password removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database was written by a newer certwatch-server.
    #[error(
        "the database has schema version {found}, newer than this program's {supported}: upgrade certwatch-server"
    )]
    TooNew {
        /// The version found.
        found: i64,
        /// The newest version this program knows.
        supported: i64,
    },
    /// The domain is not a usable domain name.
    #[error("{input:?}: invalid domain: {reason}")]
    InvalidDomain {
        /// The input.
        input: String,
        /// Why.
        reason: String,
    },
    /// A stored value could not be read back (a corrupt row).
    #[error("corrupt stored data in {what}: {reason}")]
    Corrupt {
        /// Which table or column.
        what: String,
        /// Why.
        reason: String,
    },
    /// The blocking task running the query died.
    #[error("the database task failed: {0}")]
    Task(String),
}

/// The store. Cheap to clone (one shared connection).
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
    random: Arc<dyn Random>,
    policy: Policy,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("db", &self.db).finish()
    }
}

/// Why a domain is, or is not, watched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchReason {
    /// It has this many confirmed, unblocked subscriptions.
    Subscribed(u64),
    /// Its last verdict is `match`; without a subscriber it is watched until this time.
    Matched {
        /// Unix time at which it stops being watched unless asked for again.
        until: i64,
    },
    /// Its last verdict was `match`, but nobody asked for it for `expire_days`.
    Expired {
        /// Unix time at which it stopped being watched.
        since: i64,
    },
    /// Never checked yet.
    NotChecked,
    /// Its last verdict is not `match` and nobody is subscribed.
    NotMatching(Verdict),
    /// Its last check failed before a verdict (an error) and nobody is subscribed.
    NoVerdict,
}

impl WatchReason {
    /// Whether the scheduler checks the domain.
    pub fn is_watched(&self) -> bool {
        matches!(
            self,
            WatchReason::Subscribed(_) | WatchReason::Matched { .. }
        )
    }
}

/// The data of a domain's result page.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DomainView {
    /// A-label form, no trailing dot.
    pub domain: String,
    /// When the domain was first entered.
    pub added_at: i64,
    /// Whether it is watched, and why.
    pub watch: WatchReason,
    /// The verdict of the last check that produced a report.
    pub last_verdict: Option<Verdict>,
    /// When the last check (with or without a report) finished.
    pub last_checked_at: Option<i64>,
    /// The last stored report (the CLI's JSON schema).
    pub report: Option<Report>,
    /// When the last report's check finished.
    pub report_at: Option<i64>,
    /// The last check whose verdict was not `indeterminate`.
    pub last_conclusive_at: Option<i64>,
    /// When the scheduler will check it next (if watched).
    pub next_due_at: Option<i64>,
    /// Confirmed, unblocked subscriptions.
    pub subscribers: u64,
    /// The queued or running on-demand ticket, if any.
    pub pending_ticket: Option<String>,
}

/// How a check was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckKind {
    /// By the scheduler.
    Scheduled,
    /// By a ticket (form or API).
    OnDemand,
}

impl CheckKind {
    fn as_str(self) -> &'static str {
        match self {
            CheckKind::Scheduled => "scheduled",
            CheckKind::OnDemand => "on-demand",
        }
    }
    fn parse(s: &str) -> CheckKind {
        if s == "on-demand" {
            CheckKind::OnDemand
        } else {
            CheckKind::Scheduled
        }
    }
}

/// One past check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckRecord {
    /// Its id.
    pub id: i64,
    /// The domain.
    pub domain: String,
    /// Scheduled or on demand.
    pub kind: CheckKind,
    /// When it was claimed.
    pub started_at: i64,
    /// When it finished.
    pub finished_at: i64,
    /// Its verdict; `None` when the check could not run (see `error`).
    pub verdict: Option<Verdict>,
    /// Its full report (per endpoint: presented key, vantage/exit, error).
    pub report: Option<Report>,
    /// Why the check could not run (invalid domain, resolver unreachable, timeout).
    pub error: Option<String>,
}

impl CheckRecord {
    /// The distinct presented keys of the check: (target, port, SPKI SHA-256 hex).
    pub fn presented_keys(&self) -> Vec<(String, u16, String)> {
        let mut out: Vec<(String, u16, String)> = Vec::new();
        for e in self.report.iter().flat_map(|r| &r.endpoints) {
            if let Some(k) = &e.presented_spki_sha256 {
                let item = (e.target.clone(), e.port, k.clone());
                if !out.contains(&item) {
                    out.push(item);
                }
            }
        }
        out
    }

    /// The distinct vantage points of the check (`direct`, `tor:<exit>`, `tor`, `socks`).
    pub fn vantages(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.report.iter().flat_map(|r| &r.endpoints) {
            if let Some(v) = &e.vantage {
                let s = v.to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }
}

/// A key a domain's endpoint presented at least once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeenKey {
    /// The endpoint's host (SRV target).
    pub target: String,
    /// The endpoint's port.
    pub port: u16,
    /// SHA-256 of the SubjectPublicKeyInfo, lowercase hex.
    pub spki_sha256: String,
    /// First seen (check finish time).
    pub first_seen: i64,
    /// Last seen.
    pub last_seen: i64,
    /// In how many probe entries it was seen.
    pub times: u64,
}

/// A queued on-demand check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckTicket {
    /// 128 random bits, lowercase hex: the key to poll with [`Store::ticket`].
    pub id: String,
    /// The domain, normalised.
    pub domain: String,
    /// When it was requested.
    pub requested_at: i64,
    /// `true` when a ticket for the domain was already queued or running and this is it.
    pub deduplicated: bool,
}

/// Where an on-demand check stands.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TicketState {
    /// Waiting for a worker (and a Tor circuit under the cap).
    Queued,
    /// A worker runs it.
    Running,
    /// Finished with a report (boxed: a report is large).
    Done(Box<Report>),
    /// The check could not run: why.
    Failed(String),
}

/// A domain in the admin list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DomainSummary {
    /// A-label form.
    pub domain: String,
    /// When first entered.
    pub added_at: i64,
    /// The last verdict.
    pub last_verdict: Option<Verdict>,
    /// When last checked.
    pub last_checked_at: Option<i64>,
    /// When next due.
    pub next_due_at: Option<i64>,
    /// Confirmed, unblocked subscriptions.
    pub subscribers: u64,
}

/// A subscription to a domain's alerts (issue 9 adds the channels' delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// Its id (for the admin view).
    pub id: i64,
    /// The domain.
    pub domain: String,
    /// `email`, `webhook`, `xmpp-chat`, `xmpp-pubsub`.
    pub channel: String,
    /// The address (mailbox, URL, bare JID).
    pub address: String,
    /// When it was made.
    pub created_at: i64,
    /// When it was confirmed (double opt-in); `None`: not yet active.
    pub confirmed_at: Option<i64>,
    /// Blocked by the admin: kept (so it cannot simply be made again) but inactive.
    pub blocked: bool,
}

/// An operator's request to remove a domain (recorded for the admin view).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemovalRequest {
    /// The domain, A-label form.
    pub domain: String,
    /// How to reach the requester, as given.
    pub contact: String,
    /// The requester's message.
    pub message: String,
    /// When it was made.
    pub requested_at: i64,
}

/// Counts for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Domains known.
    pub domains: u64,
    /// Domains the scheduler watches.
    pub watched: u64,
    /// Watched domains whose next check is overdue at `now`.
    pub overdue: u64,
    /// The oldest overdue due time, if any.
    pub oldest_due: Option<i64>,
    /// Queued tickets.
    pub queued_tickets: u64,
    /// The newest check's finish time.
    pub last_check_at: Option<i64>,
    /// The newest conclusive check's finish time.
    pub last_conclusive_at: Option<i64>,
}

/// A check the scheduler claimed and must run, then report with [`Store::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// The domain.
    pub domain: String,
    /// The ticket it answers, for an on-demand check.
    pub ticket: Option<String>,
    /// The due time of a scheduled check (the slot it fills).
    pub due_at: Option<i64>,
    /// When it was claimed.
    pub claimed_at: i64,
    /// The lease's token: only the claimant's `finish` moves the schedule.
    pub claim_token: String,
}

/// How the scheduler spaces a domain's checks (given to [`Store::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spacing {
    /// The interval between checks, in seconds.
    pub interval: i64,
    /// The jitter added to this domain's next due time, in seconds (may be negative).
    pub jitter: i64,
}

/// What [`Store::finish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finished {
    /// The new check's id.
    pub check_id: i64,
    /// The next due time.
    pub next_due_at: i64,
    /// Slots that fell due while this check ran, skipped (not run back to back).
    pub skipped: u64,
    /// `false` when the lease had expired and another claimant took over: the check is
    /// recorded, the schedule is left to the new claimant.
    pub owned: bool,
}

/// Normalises a domain as typed (IDNA, case, trailing dot) to its A-label form.
pub fn normalise_domain(input: &str) -> Result<String, StoreError> {
    certwatch::dns::DomainName::normalise(input)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| StoreError::InvalidDomain {
            input: input.chars().take(300).collect(),
            reason: e.to_string(),
        })
}

impl Store {
    /// Opens (and migrates) the database at `url`: `sqlite://PATH`, `sqlite::memory:`, or
    /// `postgres://...` (also `postgresql://`). Random ids come from the system RNG.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, Arc::new(SystemRandom)).await
    }

    /// Opens with an injected source of randomness (ticket ids, claim tokens).
    pub async fn open_with(url: &str, random: Arc<dyn Random>) -> Result<Store, StoreError> {
        let url = url.trim().to_owned();
        let db = tokio::task::spawn_blocking(move || -> Result<Db, StoreError> {
            let db = if url == "sqlite::memory:" || url == "sqlite://:memory:" {
                Db::open_sqlite(":memory:")?
            } else if let Some(path) = url.strip_prefix("sqlite://") {
                if path.is_empty() {
                    return Err(StoreError::BadUrl { url });
                }
                Db::open_sqlite(path)?
            } else if let Some(path) = url.strip_prefix("sqlite:") {
                if path.is_empty() {
                    return Err(StoreError::BadUrl { url });
                }
                Db::open_sqlite(path)?
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Db::open_postgres(&url)?
            } else {
                return Err(StoreError::BadUrl {
                    url: db::redact_url(&url),
                });
            };
            db.transaction(ops::migrate)?;
            Ok(db)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Store {
            db: Arc::new(db),
            random,
            policy: Policy::default(),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.db.dialect() {
            db::Dialect::Sqlite => "sqlite",
            db::Dialect::Postgres => "postgres",
        }
    }

    /// Runs `f` in one transaction on the blocking pool.
    async fn tx<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn db::Tx) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.transaction(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn token(&self) -> String {
        let mut b = [0u8; 16];
        self.random.fill(&mut b);
        hex::encode(b)
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.tx(ops::schema_version).await
    }

    /// Queues an on-demand check of `domain` (adding the domain if new, and renewing its
    /// watch period), or returns its already queued or running ticket.
    pub async fn request_check(&self, domain: &str, now: i64) -> Result<CheckTicket, StoreError> {
        self.request_check_with(domain, now, ops::DEFAULT_EXPIRE_SECS)
            .await
    }

    /// [`Store::request_check`] with the watch period (`expire_days` in seconds).
    pub async fn request_check_with(
        &self,
        domain: &str,
        now: i64,
        expire_secs: i64,
    ) -> Result<CheckTicket, StoreError> {
        let domain = normalise_domain(domain)?;
        let id = self.token();
        self.tx(move |tx| ops::request_check(tx, &domain, now, expire_secs, id))
            .await
    }

    /// The state of ticket `id`; `None` for an unknown id.
    pub async fn ticket(&self, id: &str) -> Result<Option<TicketState>, StoreError> {
        let id = id.to_owned();
        self.tx(move |tx| ops::ticket(tx, &id)).await
    }

    /// The result page's data, with the watch state judged at `now`; `None` for an unknown
    /// (or invalid) domain.
    pub async fn domain_view(
        &self,
        domain: &str,
        now: i64,
    ) -> Result<Option<DomainView>, StoreError> {
        let Ok(domain) = normalise_domain(domain) else {
            return Ok(None);
        };
        self.tx(move |tx| ops::domain_view(tx, &domain, now)).await
    }

    /// The last `limit` checks of `domain`, newest first.
    pub async fn history(&self, domain: &str, limit: u32) -> Result<Vec<CheckRecord>, StoreError> {
        let Ok(domain) = normalise_domain(domain) else {
            return Ok(Vec::new());
        };
        self.tx(move |tx| ops::history(tx, &domain, limit)).await
    }

    /// Every key `domain`'s endpoints presented, newest first.
    pub async fn keys_seen(&self, domain: &str) -> Result<Vec<SeenKey>, StoreError> {
        let Ok(domain) = normalise_domain(domain) else {
            return Ok(Vec::new());
        };
        self.tx(move |tx| ops::keys_seen(tx, &domain)).await
    }

    /// Domains in name order, for the admin view.
    pub async fn list_domains(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<DomainSummary>, StoreError> {
        self.tx(move |tx| ops::list_domains(tx, offset, limit))
            .await
    }

    /// How many domains are known.
    pub async fn count_domains(&self) -> Result<u64, StoreError> {
        self.tx(ops::count_domains).await
    }

    /// Removes a domain with its checks, keys, tickets and subscriptions (admin, or the
    /// domain operator's removal request). `false` if it was unknown.
    pub async fn remove_domain(&self, domain: &str) -> Result<bool, StoreError> {
        let domain = normalise_domain(domain)?;
        self.tx(move |tx| ops::remove_domain(tx, &domain)).await
    }

    /// Adds a confirmed subscription (issue 9 builds double opt-in on top); returns whether
    /// it is new. A confirmed subscription makes the domain watched.
    pub async fn add_subscription(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let domain = normalise_domain(domain)?;
        let (channel, address) = (channel.to_owned(), address.to_owned());
        self.tx(move |tx| ops::add_subscription(tx, &domain, &channel, &address, now))
            .await
    }

    /// The subscriptions of `domain` (all of them when `None`), newest first, at most `limit`.
    pub async fn subscriptions(
        &self,
        domain: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Subscription>, StoreError> {
        let domain = match domain {
            Some(d) => Some(normalise_domain(d)?),
            None => None,
        };
        self.tx(move |tx| ops::subscriptions(tx, domain.as_deref(), limit))
            .await
    }

    /// Blocks (or unblocks) subscription `id` (admin view); returns whether it exists. A
    /// blocked subscription no longer makes its domain watched.
    pub async fn set_subscription_blocked(
        &self,
        id: i64,
        blocked: bool,
    ) -> Result<bool, StoreError> {
        self.tx(move |tx| ops::set_subscription_blocked(tx, id, blocked))
            .await
    }

    /// Deletes a subscription; returns whether it existed.
    pub async fn remove_subscription(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
    ) -> Result<bool, StoreError> {
        let domain = normalise_domain(domain)?;
        let (channel, address) = (channel.to_owned(), address.to_owned());
        self.tx(move |tx| ops::remove_subscription(tx, &domain, &channel, &address))
            .await
    }

    /// Records an operator's removal request (never removes anything by itself). Contact
    /// and message are cut to 300 and 2000 characters.
    pub async fn request_removal(
        &self,
        domain: &str,
        contact: &str,
        message: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let domain = normalise_domain(domain)?;
        let contact: String = contact.chars().take(300).collect();
        let message: String = message.chars().take(2000).collect();
        self.tx(move |tx| ops::request_removal(tx, &domain, &contact, &message, now))
            .await
    }

    /// The newest `limit` removal requests.
    pub async fn removal_requests(&self, limit: u32) -> Result<Vec<RemovalRequest>, StoreError> {
        self.tx(move |tx| ops::removal_requests(tx, limit)).await
    }

    /// The web secret (32 random bytes) shared by every instance on this database: made on
    /// first use and kept, so that CSRF tokens and admin sessions signed by one instance are
    /// accepted by the others, and survive restarts. Never logged.
    pub async fn web_secret(&self) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        self.random.fill(&mut fresh);
        let fresh = hex::encode(fresh);
        let stored = self
            .tx(move |tx| ops::setting_or_insert(tx, "web_secret", fresh))
            .await?;
        hex::decode(stored.trim())
            .ok()
            .filter(|b| b.len() >= 32)
            .ok_or_else(|| StoreError::Corrupt {
                what: "settings.web_secret".into(),
                reason: "not 32 bytes of hex".into(),
            })
    }

    /// The service's Ed25519 key that signs evidence bundles (`certwatch::evidence`): made
    /// on first use from 32 bytes of the injected randomness and kept in the `settings`
    /// table (as the seed, hex), so every instance on one database and every restart signs
    /// with the same key. Publish `key.public_key()` (and `certwatch::evidence::key_id`).
    /// Never logged.
    pub async fn evidence_signing_key(
        &self,
    ) -> Result<ring::signature::Ed25519KeyPair, StoreError> {
        let mut fresh = [0u8; 32];
        self.random.fill(&mut fresh);
        let fresh = hex::encode(fresh);
        let stored = self
            .tx(move |tx| ops::setting_or_insert(tx, "evidence_signing_seed", fresh))
            .await?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            what: "settings.evidence_signing_seed".into(),
            reason: reason.into(),
        };
        let seed = hex::decode(stored.trim()).map_err(|_| corrupt("not hex"))?;
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| corrupt("not a 32-byte Ed25519 seed"))
    }

    /// Counts for health and metrics, at `now`.
    pub async fn stats(&self, now: i64) -> Result<StoreStats, StoreError> {
        self.tx(move |tx| ops::stats(tx, now)).await
    }

    /// Claims up to `max` checks for `instance`, each with a lease until `now + lease`:
    /// first queued (or abandoned running) tickets, oldest first, then watched domains whose
    /// next check is due, most overdue first. A domain already claimed (by anyone, lease
    /// unexpired) is not claimed again.
    pub async fn claim_due(
        &self,
        instance: &str,
        now: i64,
        lease: i64,
        max: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let instance = instance.to_owned();
        let tokens: Vec<String> = (0..max).map(|_| self.token()).collect();
        self.tx(move |tx| ops::claim_due(tx, &instance, now, lease, tokens))
            .await
    }

    /// Records a claimed check's outcome in one transaction: the check row (with the report
    /// JSON), the keys seen, the domain's last verdict, its next due time (the slot after
    /// the check's start plus `spacing.interval` and `spacing.jitter`, moved past `now` by
    /// whole intervals, each a skipped slot), the ticket's state, and the release of the
    /// lease.
    pub async fn finish(
        &self,
        job: &Job,
        instance: &str,
        now: i64,
        outcome: Result<Report, String>,
        spacing: Spacing,
    ) -> Result<Finished, StoreError> {
        self.finish_with_evidence(job, instance, now, outcome, None, spacing)
            .await
    }

    /// [`Store::finish`] with the check's signed evidence bundle (`docs/evidence.md`), stored
    /// in the same transaction (table `evidence`, with its SHA-256); every alert the check
    /// raises links to it (`AlertRecord::evidence_id`). A bundle is kept only with a report
    /// (not for a check that could not run); one that is not UTF-8 JSON is dropped with a
    /// warning.
    pub async fn finish_with_evidence(
        &self,
        job: &Job,
        instance: &str,
        now: i64,
        outcome: Result<Report, String>,
        evidence: Option<Vec<u8>>,
        spacing: Spacing,
    ) -> Result<Finished, StoreError> {
        let evidence = evidence.and_then(|b| match String::from_utf8(b) {
            Ok(s) => Some(s),
            Err(_) => {
                tracing::warn!(
                    "the evidence bundle of {} is not UTF-8: not stored",
                    job.domain
                );
                None
            }
        });
        let job = job.clone();
        let instance = instance.to_owned();
        let random = self.random.clone();
        let policy = self.policy;
        self.tx(move |tx| {
            let alerting = ops::Alerting {
                policy: &policy,
                random: random.as_ref(),
            };
            ops::finish(
                tx, &job, &instance, now, outcome, evidence, spacing, &alerting,
            )
        })
        .await
    }

    /// This store with another alert policy (blindness threshold, reminder period); the
    /// default is [`Policy::default`] (6 h, 24 h).
    #[must_use]
    pub fn with_alert_policy(mut self, policy: Policy) -> Store {
        self.policy = policy;
        self
    }

    /// The blindness sweep at `now` (every minute, `notify::worker::run_sweeps`): every
    /// watched domain without a conclusive check for the policy's `blind_after` gets its
    /// incident state stepped without a check, so `blind` is raised (and reminded of) even
    /// when no check finishes at all. One transaction; returns the deliveries created.
    pub async fn sweep_blind(&self, now: i64) -> Result<u64, StoreError> {
        let random = self.random.clone();
        let policy = self.policy;
        self.tx(move |tx| outbox::sweep_blind(tx, now, &policy, random.as_ref()))
            .await
    }

    /// Deletes the subscriptions never confirmed in time (past their confirmation deadline,
    /// or a day old without one; blocked ones are kept), with their deliveries; how many.
    /// Run by the periodic sweep ([`crate::notify::worker::run_sweeps`]).
    pub async fn sweep_expired_subscriptions(&self, now: i64) -> Result<u64, StoreError> {
        self.tx(move |tx| outbox::sweep_expired_subscriptions(tx, now))
            .await
    }

    /// The subscriptions of `domain` that count toward its cap at `now`: all but the ones
    /// [`Store::sweep_expired_subscriptions`] deletes.
    pub async fn live_subscription_count(&self, domain: &str, now: i64) -> Result<u64, StoreError> {
        let domain = normalise_domain(domain)?;
        self.tx(move |tx| outbox::live_subscription_count(tx, &domain, now))
            .await
    }

    /// The alert policy [`Store::finish`] applies.
    pub fn alert_policy(&self) -> Policy {
        self.policy
    }

    /// Claims up to `max` due deliveries of the outbox for `instance`, each leased until
    /// `now + lease` (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer at a time).
    /// A delivery whose lease ran out unfinished (a crash) is claimed again, same id.
    pub async fn claim_deliveries(
        &self,
        instance: &str,
        now: i64,
        lease: i64,
        max: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let instance = instance.to_owned();
        self.tx(move |tx| outbox::claim_deliveries(tx, None, &instance, now, lease, max))
            .await
    }

    /// [`Store::claim_deliveries`] for one channel only (`webhook`, `email`): each channel's
    /// worker leaves the others' deliveries unclaimed.
    pub async fn claim_channel_deliveries(
        &self,
        channel: &str,
        instance: &str,
        now: i64,
        lease: i64,
        max: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (channel, instance) = (channel.to_owned(), instance.to_owned());
        self.tx(move |tx| outbox::claim_deliveries(tx, Some(&channel), &instance, now, lease, max))
            .await
    }

    /// The unsubscribe token of subscription (domain, channel, address): derived from the
    /// shared secret (HMAC-SHA256 of the three, 128 bits, hex), so every message can carry it
    /// without storing it; the database keeps only its SHA-256.
    pub async fn unsubscribe_token(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
    ) -> Result<String, StoreError> {
        let domain = normalise_domain(domain)?;
        let secret = self.web_secret().await?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let msg = format!("certwatch-unsubscribe\0{domain}\0{channel}\0{address}");
        let tag = ring::hmac::sign(&key, msg.as_bytes());
        Ok(hex::encode(&tag.as_ref()[..16]))
    }

    /// Marks delivery `id` delivered; `false` if it was not pending (already done).
    pub async fn mark_delivered(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.tx(move |tx| outbox::mark_delivered(tx, &id, now))
            .await
    }

    /// Records a failed attempt of delivery `id`: it is retried after `retry`'s backoff, or
    /// marked `failed` (admin view) after `retry.max_attempts`. Returns the new state, `None`
    /// if it was not pending.
    pub async fn mark_attempt_failed(
        &self,
        id: &str,
        now: i64,
        error: &str,
        retry: RetryPolicy,
    ) -> Result<Option<String>, StoreError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        let random = self.random.clone();
        self.tx(move |tx| outbox::mark_attempt_failed(tx, &id, now, &error, retry, random.as_ref()))
            .await
    }

    /// The newest `limit` deliveries that failed for good (admin view).
    pub async fn failed_deliveries(&self, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        self.tx(move |tx| outbox::deliveries_in(tx, "failed", limit))
            .await
    }

    /// The deliveries of `domain`'s alerts, oldest alert first.
    pub async fn deliveries_of(
        &self,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let Ok(domain) = normalise_domain(domain) else {
            return Ok(Vec::new());
        };
        self.tx(move |tx| outbox::deliveries_of(tx, &domain, limit))
            .await
    }

    /// How many deliveries wait in the outbox (health and metrics).
    pub async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        self.tx(outbox::backlog).await
    }

    /// The monitor's and the outbox's liveness at `now` (`/healthz`, `/metrics`).
    pub async fn heartbeat(&self, now: i64) -> Result<Heartbeat, StoreError> {
        self.tx(move |tx| outbox::heartbeat(tx, now)).await
    }

    /// Turns the optional daily digest of subscription `id` on or off (opt-in; off by
    /// default). `false` if there is no such subscription.
    pub async fn set_subscription_digest(&self, id: i64, on: bool) -> Result<bool, StoreError> {
        self.tx(move |tx| outbox::set_subscription_digest(tx, id, on))
            .await
    }

    /// [`Store::set_subscription_digest`] of the subscription (`domain`, `channel`,
    /// `address`); `false` if there is none.
    pub async fn set_digest_of(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
        on: bool,
    ) -> Result<bool, StoreError> {
        let (domain, channel, address) =
            (domain.to_owned(), channel.to_owned(), address.to_owned());
        self.tx(move |tx| outbox::set_digest_of(tx, &domain, &channel, &address, on))
            .await
    }

    /// The daily digest, if due at `now`: from `hour` o'clock UTC on, once per UTC day (for
    /// all instances on the database), one `digest` delivery per confirmed, unblocked
    /// subscription that opted in (`notify::digest` makes the bodies). Returns the
    /// deliveries made (0: not due, or already sent today).
    pub async fn daily_digest(&self, now: i64, hour: u32) -> Result<u64, StoreError> {
        let random = self.random.clone();
        self.tx(move |tx| outbox::daily_digest(tx, now, hour, random.as_ref()))
            .await
    }

    /// Replaces the administrator's contacts (from the configuration, at start): admin
    /// notices (hostile exits, deliveries failed for good) get one delivery per contact
    /// through the outbox, with the pseudo-subscription ids [`ADMIN_EMAIL_SUBSCRIPTION`] and
    /// [`ADMIN_WEBHOOK_SUBSCRIPTION`]. Kept in `settings`: every instance on the database
    /// uses the last one written.
    pub async fn set_admin_contacts(&self, contacts: &AdminContacts) -> Result<(), StoreError> {
        let contacts = contacts.clone();
        self.tx(move |tx| outbox::set_admin_contacts(tx, &contacts))
            .await
    }

    /// The administrator's contacts as stored.
    pub async fn admin_contacts(&self) -> Result<AdminContacts, StoreError> {
        self.tx(outbox::admin_contacts).await
    }

    /// The newest `limit` admin notices (hostile exits, `delivery-failed` notices), for the
    /// admin view.
    pub async fn admin_notices(&self, limit: u32) -> Result<Vec<AlertRecord>, StoreError> {
        self.tx(move |tx| outbox::alerts_for(tx, "admin", limit))
            .await
    }

    /// Adds an unconfirmed subscription carrying `secret` (a webhook's HMAC key, hex),
    /// active only after [`Store::confirm_subscription`]; its id, or `None` if it exists.
    pub async fn add_pending_subscription(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
        secret: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let domain = normalise_domain(domain)?;
        let (channel, address, secret) =
            (channel.to_owned(), address.to_owned(), secret.to_owned());
        self.tx(move |tx| {
            outbox::add_pending_subscription(tx, &domain, &channel, &address, &secret, now)
        })
        .await
    }

    /// Confirms subscription `id` (its challenge or opt-in link was answered): it becomes
    /// active and its domain watched. `false` if unknown or already confirmed.
    pub async fn confirm_subscription(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.tx(move |tx| outbox::confirm_subscription(tx, id, now))
            .await
    }

    /// Double opt-in (email): adds an unconfirmed subscription, or renews the tokens of one
    /// still unconfirmed, with a confirmation token valid until `now + ttl` (128 random bits,
    /// hex) and its unsubscribe token ([`Store::unsubscribe_token`]); only their SHA-256 is
    /// stored. `None` when the subscription is already confirmed (nothing is sent again).
    pub async fn add_opt_in_subscription(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
        now: i64,
        ttl: i64,
    ) -> Result<Option<OptInTokens>, StoreError> {
        let domain = normalise_domain(domain)?;
        let (channel, address) = (channel.to_owned(), address.to_owned());
        let confirm = self.token();
        let unsubscribe = self.unsubscribe_token(&domain, &channel, &address).await?;
        let (ch, uh) = (
            outbox::token_hash(&confirm),
            outbox::token_hash(&unsubscribe),
        );
        let expires = now.saturating_add(ttl);
        let id = self
            .tx(move |tx| {
                outbox::add_opt_in_subscription(
                    tx, &domain, &channel, &address, &ch, &uh, now, expires,
                )
            })
            .await?;
        Ok(id.map(|id| OptInTokens {
            subscription_id: id,
            confirm,
            unsubscribe,
        }))
    }

    /// Follows a confirmation link: confirms the subscription whose unexpired token this
    /// is, once (a replayed or forged token gives `None`). Returns (domain, channel,
    /// address).
    pub async fn confirm_by_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        let hash = outbox::token_hash(token.trim());
        self.tx(move |tx| outbox::confirm_by_token(tx, &hash, now))
            .await
    }

    /// Follows an unsubscribe link: **deletes** the subscription (and its pending
    /// deliveries) whose token this is, and only that one. Returns (domain, channel,
    /// address), `None` for an unknown token.
    pub async fn unsubscribe_by_token(
        &self,
        token: &str,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        let hash = outbox::token_hash(token.trim());
        self.tx(move |tx| outbox::unsubscribe_by_token(tx, &hash))
            .await
    }

    /// The secret of subscription `id` (a webhook's HMAC key, hex), if any. Never logged.
    pub async fn subscription_secret(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.tx(move |tx| outbox::subscription_secret(tx, id)).await
    }

    /// `domain`'s incidents, newest first (open ones have no `closed_at`).
    pub async fn incidents(
        &self,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        let Ok(domain) = normalise_domain(domain) else {
            return Ok(Vec::new());
        };
        self.tx(move |tx| outbox::incidents(tx, &domain, limit))
            .await
    }
}

/// A database URL with its password replaced by `***` (for logs and `Debug`).
pub fn redact_database_url(url: &str) -> String {
    db::redact_url(url)
}

impl Store {
    /// Makes [`Store::unsubscribe_by_token`] work for subscription (domain, channel,
    /// address), which [`Store::add_pending_subscription`] does not arrange (webhooks): stores
    /// the SHA-256 of its [`Store::unsubscribe_token`] and returns the token, `None` if there
    /// is no such subscription.
    pub async fn enable_unsubscribe_token(
        &self,
        domain: &str,
        channel: &str,
        address: &str,
    ) -> Result<Option<String>, StoreError> {
        let domain = normalise_domain(domain)?;
        let token = self.unsubscribe_token(&domain, channel, address).await?;
        let hash = outbox::token_hash(&token);
        let (channel, address) = (channel.to_owned(), address.to_owned());
        let set = self
            .tx(move |tx| {
                outbox::set_unsubscribe_token_hash(tx, &domain, &channel, &address, &hash)
            })
            .await?;
        Ok(set.then_some(token))
    }
}
