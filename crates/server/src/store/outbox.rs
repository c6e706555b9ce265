//! Incidents, alerts and the outbox (issue 9, schema version 4).
//!
//! [`record_alerts`] runs inside [`super::ops::finish`], in the transaction of the check
//! that caused the alerts: the incident rows, the alert rows and one delivery per confirmed,
//! unblocked subscription commit together with the check, or not at all. Each delivery's id
//! is made once, here; a worker claims deliveries with a lease, sends them, and marks them
//! delivered or failed; a retry (after an error or a crash) sends the same id.

use std::collections::BTreeMap;

use crate::notify::incident::{self, Audience, Condition, OpenIncident, Policy};
use crate::random::Random;

use super::StoreError;
use super::db::{Dialect, Row, Tx};

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failure, in seconds (doubled after each further failure).
    pub base_delay: i64,
    /// The longest delay between attempts, in seconds.
    pub max_delay: i64,
    /// After this many failed attempts the delivery is marked failed (admin view).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: 30,
            max_delay: 3600,
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `failures` failed attempts (1 or more):
    /// `base_delay * 2^(failures-1)`, at most `max_delay`.
    pub fn delay(&self, failures: u32) -> i64 {
        let shift = failures.saturating_sub(1).min(40);
        self.base_delay
            .max(1)
            .saturating_mul(1i64 << shift)
            .min(self.max_delay.max(1))
    }
}

/// The pseudo-subscription id of the administrator's mailbox in `deliveries` (admin
/// notices; real subscription ids are positive).
pub const ADMIN_EMAIL_SUBSCRIPTION: i64 = -1;
/// The pseudo-subscription id of the administrator's webhook in `deliveries`.
pub const ADMIN_WEBHOOK_SUBSCRIPTION: i64 = -2;

/// The administrator's contacts for admin notices (hostile exits, deliveries that failed
/// for good). Kept in the `settings` table (so every instance sends them the same way),
/// written from the configuration at start ([`super::Store::set_admin_contacts`]).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminContacts {
    /// The administrator's mailbox.
    pub email: Option<String>,
    /// The administrator's webhook URL.
    pub webhook_url: Option<String>,
    /// Its HMAC secret (hex). Never logged.
    pub webhook_secret: Option<String>,
}

impl AdminContacts {
    /// The contacts from the configuration (`admin_email`, `admin_webhook_url` and its
    /// secret).
    pub fn from_config(config: &crate::config::Config) -> AdminContacts {
        AdminContacts {
            email: config.admin_email.clone(),
            webhook_url: config.admin_webhook.as_ref().map(|w| w.url.clone()),
            webhook_secret: config.admin_webhook.as_ref().map(|w| w.secret.clone()),
        }
    }
}

impl std::fmt::Debug for AdminContacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminContacts")
            .field("email", &self.email)
            .field("webhook_url", &self.webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

const ADMIN_KEYS: [&str; 3] = ["admin_email", "admin_webhook_url", "admin_webhook_secret"];

/// Replaces the admin contacts in `settings` (a `None` removes the key).
pub(crate) fn set_admin_contacts(tx: &mut dyn Tx, c: &AdminContacts) -> Result<(), StoreError> {
    let values = [&c.email, &c.webhook_url, &c.webhook_secret];
    for (key, value) in ADMIN_KEYS.into_iter().zip(values) {
        tx.exec("DELETE FROM settings WHERE key = $1", &[key.into()])?;
        if let Some(v) = value {
            tx.exec(
                "INSERT INTO settings (key, value) VALUES ($1, $2)",
                &[key.into(), v.as_str().into()],
            )?;
        }
    }
    Ok(())
}

fn setting(tx: &mut dyn Tx, key: &str) -> Result<Option<String>, StoreError> {
    let rows = tx.query("SELECT value FROM settings WHERE key = $1", &[key.into()])?;
    Ok(rows.first().and_then(|r| r.text(0)))
}

/// The admin contacts as stored.
pub(crate) fn admin_contacts(tx: &mut dyn Tx) -> Result<AdminContacts, StoreError> {
    Ok(AdminContacts {
        email: setting(tx, ADMIN_KEYS[0])?,
        webhook_url: setting(tx, ADMIN_KEYS[1])?,
        webhook_secret: setting(tx, ADMIN_KEYS[2])?,
    })
}

/// One pending delivery of alert `alert_id` to (subscription, channel, address), with a
/// fresh stable id.
fn insert_delivery(
    tx: &mut dyn Tx,
    random: &dyn Random,
    alert_id: i64,
    subscription_id: i64,
    channel: &str,
    address: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO deliveries (id, alert_id, subscription_id, channel, address, state, \
           attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        &[
            token(random).into(),
            alert_id.into(),
            subscription_id.into(),
            channel.into(),
            address.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// One delivery of admin alert `alert_id` per configured admin contact; the number made.
fn admin_deliveries(
    tx: &mut dyn Tx,
    random: &dyn Random,
    alert_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let c = admin_contacts(tx)?;
    let mut n = 0;
    if let Some(email) = &c.email {
        insert_delivery(
            tx,
            random,
            alert_id,
            ADMIN_EMAIL_SUBSCRIPTION,
            "email",
            email,
            now,
        )?;
        n += 1;
    }
    if let Some(url) = &c.webhook_url {
        insert_delivery(
            tx,
            random,
            alert_id,
            ADMIN_WEBHOOK_SUBSCRIPTION,
            "webhook",
            url,
            now,
        )?;
        n += 1;
    }
    Ok(n)
}

/// An alert as stored (and as carried by its deliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertRecord {
    /// The alert's id.
    pub id: i64,
    /// Its incident's id.
    pub incident_id: i64,
    /// The domain.
    pub domain: String,
    /// The incident's condition (`mismatch`, `bogus`, ... see [`Condition::as_str`]).
    pub condition: String,
    /// `opened`, `reminder` or `recovered`.
    pub kind: String,
    /// `subscribers` or `admin`.
    pub audience: String,
    /// When the incident opened.
    pub opened_at: i64,
    /// When the alert was decided (the check's finish time).
    pub at: i64,
    /// The check that caused it.
    pub check_id: Option<i64>,
    /// What it is about, in words: for `hostile-exit`, the report's warnings (naming the
    /// exits and keys); for `mismatch`, `bogus` and `downgrade`, the endpoints concerned.
    pub detail: Option<String>,
    /// The signed evidence bundle of its check (`/domains/{domain}/evidence/{id}.json`),
    /// when the check made one (a conclusive check; a `blind` alert has none).
    pub evidence_id: Option<i64>,
}

/// One delivery of an alert to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The stable id (128 random bits, hex): sent as `X-Certwatch-Delivery`.
    pub id: String,
    /// The alert.
    pub alert: AlertRecord,
    /// The subscription's id.
    pub subscription_id: i64,
    /// `email`, `webhook`, ...
    pub channel: String,
    /// The address (mailbox, URL).
    pub address: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When the next attempt is due.
    pub next_attempt_at: i64,
}

/// An open incident of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncidentRecord {
    /// Its id.
    pub id: i64,
    /// The domain.
    pub domain: String,
    /// The condition.
    pub condition: String,
    /// When it opened.
    pub opened_at: i64,
    /// When its last alert was decided.
    pub last_alert_at: i64,
    /// When it recovered; `None` while open.
    pub closed_at: Option<i64>,
}

/// The alert's detail from the report (at most 2000 characters).
fn detail_of(c: Condition, r: &certwatch::Report) -> Option<String> {
    use certwatch::Verdict;
    let lines: Vec<String> = match c {
        Condition::HostileExit | Condition::SignatureExpiring => {
            let code = if c == Condition::HostileExit {
                "hostile-exit"
            } else {
                "signature-expiring"
            };
            r.warnings
                .iter()
                .filter(|w| w.code.as_str() == code)
                .map(|w| w.message.clone())
                .collect()
        }
        Condition::Mismatch | Condition::Bogus | Condition::Downgrade => {
            let verdict = match c {
                Condition::Mismatch => Verdict::Mismatch,
                Condition::Bogus => Verdict::Bogus,
                _ => Verdict::ProtocolError,
            };
            r.endpoints
                .iter()
                .filter(|e| e.effective_verdict() == verdict)
                .map(|e| {
                    let addr = e.address.map(|a| a.to_string()).unwrap_or_default();
                    let key = e.presented_spki_sha256.as_deref().unwrap_or("-");
                    let why = e
                        .error
                        .as_ref()
                        .map(|x| x.message.clone())
                        .or_else(|| e.dnssec_reason.clone())
                        .unwrap_or_default();
                    format!("{}:{} [{addr}] key {key} {why}", e.target, e.port)
                        .trim_end()
                        .to_owned()
                })
                .collect()
        }
        Condition::Blind => Vec::new(),
    };
    if lines.is_empty() {
        return None;
    }
    Some(lines.join("\n").chars().take(2000).collect())
}

fn token(random: &dyn Random) -> String {
    let mut b = [0u8; 16];
    random.fill(&mut b);
    hex::encode(b)
}

fn audience_str(a: Audience) -> &'static str {
    match a {
        Audience::Subscribers => "subscribers",
        Audience::Admin => "admin",
    }
}

/// The SQL expression (over `domains d`) from which a domain's blindness is measured: its
/// last conclusive check (or, never checked conclusively, its addition), but not earlier
/// than the confirmation of its oldest current subscription. A domain checked weeks ago and
/// not watched since is not "blind" the minute someone subscribes to it: the clock starts
/// when it is watched for them.
fn blind_baseline_sql(dialect: Dialect) -> String {
    let greatest = match dialect {
        Dialect::Postgres => "GREATEST",
        _ => "MAX",
    };
    format!(
        "{greatest}(COALESCE(d.last_conclusive_at, d.added_at), COALESCE((SELECT MIN(s.confirmed_at) \
           FROM subscriptions s WHERE s.domain = d.domain AND s.confirmed_at IS NOT NULL \
           AND s.blocked = 0), 0))"
    )
}

/// Steps the domain's incident state with the finished check and records the alerts and
/// their deliveries. Runs in the check's transaction, before `domains.last_conclusive_at` is
/// moved; or, with no check (`check_id` and `report` `None`), from the blindness sweep, as
/// an inconclusive observation at `now`. Returns the number of deliveries created.
pub(crate) fn record_alerts(
    tx: &mut dyn Tx,
    domain: &str,
    check_id: Option<i64>,
    now: i64,
    report: Option<&certwatch::Report>,
    policy: &Policy,
    random: &dyn Random,
) -> Result<u64, StoreError> {
    if tx.dialect() == Dialect::Postgres {
        // Two finishes of one domain (an expired lease) step the state one after the other.
        tx.query(
            "SELECT domain FROM domains WHERE domain = $1 FOR UPDATE",
            &[domain.into()],
        )?;
    }
    let rows = tx.query(
        &format!(
            "SELECT {} FROM domains d WHERE d.domain = $1",
            blind_baseline_sql(tx.dialect())
        ),
        &[domain.into()],
    )?;
    let since = rows.first().and_then(|r| r.int(0)).unwrap_or(now);
    let open_rows = tx.query(
        "SELECT id, condition, opened_at, last_alert_at FROM incidents \
         WHERE domain = $1 AND closed_at IS NULL ORDER BY id",
        &[domain.into()],
    )?;
    let mut ids: BTreeMap<Condition, i64> = BTreeMap::new();
    let mut state = incident::State::new(since);
    for r in &open_rows {
        let Some(c) = r.text(1).as_deref().and_then(Condition::parse) else {
            continue;
        };
        ids.insert(c, r.int(0).unwrap_or(0));
        state.open.insert(
            c,
            OpenIncident {
                opened_at: r.int(2).unwrap_or(now),
                last_alert_at: r.int(3).unwrap_or(now),
            },
        );
    }
    let loaded = state.open.clone();
    let obs = incident::Observation::from_outcome(now, report);
    let alerts = incident::step(&mut state, &obs, policy);
    // A change without an alert (a hostile-exit sighting within the quiet period moves its
    // incident's last_alert_at, see incident::step) is written back too.
    for (c, open) in &state.open {
        if let (Some(id), Some(before)) = (ids.get(c), loaded.get(c))
            && before.last_alert_at != open.last_alert_at
            && !alerts.iter().any(|a| a.condition == *c)
        {
            tx.exec(
                "UPDATE incidents SET last_alert_at = $2 WHERE id = $1",
                &[(*id).into(), open.last_alert_at.into()],
            )?;
        }
    }
    let mut created = 0u64;
    for alert in alerts {
        let c = alert.condition;
        let incident_id = match alert.kind {
            incident::AlertKind::Opened => {
                let rows = tx.query(
                    "INSERT INTO incidents (domain, condition, opened_at, last_alert_at) \
                     VALUES ($1, $2, $3, $3) RETURNING id",
                    &[domain.into(), c.as_str().into(), now.into()],
                )?;
                rows.first().and_then(|r| r.int(0)).ok_or_else(|| {
                    StoreError::Database("INSERT INTO incidents returned no id".into())
                })?
            }
            incident::AlertKind::Reminder => {
                let id = ids.get(&c).copied().unwrap_or(0);
                tx.exec(
                    "UPDATE incidents SET last_alert_at = $2 WHERE id = $1",
                    &[id.into(), now.into()],
                )?;
                id
            }
            incident::AlertKind::Recovered => {
                let id = ids.get(&c).copied().unwrap_or(0);
                tx.exec(
                    "UPDATE incidents SET closed_at = $2 WHERE id = $1",
                    &[id.into(), now.into()],
                )?;
                id
            }
        };
        let audience = c.audience();
        let detail = report.and_then(|r| detail_of(c, r));
        let rows = tx.query(
            "INSERT INTO alerts (incident_id, domain, condition, kind, audience, opened_at, at, check_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                incident_id.into(),
                domain.into(),
                c.as_str().into(),
                alert.kind.as_str().into(),
                audience_str(audience).into(),
                alert.opened_at.into(),
                now.into(),
                check_id.into(),
                detail.into(),
            ],
        )?;
        let alert_id = rows
            .first()
            .and_then(|r| r.int(0))
            .ok_or_else(|| StoreError::Database("INSERT INTO alerts returned no id".into()))?;
        if audience != Audience::Subscribers {
            // An admin notice (hostile exit): to the administrator's contacts only, never
            // to a subscriber.
            created += admin_deliveries(tx, random, alert_id, now)?;
            continue;
        }
        let subs = tx.query(
            "SELECT id, channel, address FROM subscriptions \
             WHERE domain = $1 AND confirmed_at IS NOT NULL AND blocked = 0 ORDER BY id",
            &[domain.into()],
        )?;
        for s in subs {
            insert_delivery(
                tx,
                random,
                alert_id,
                s.int(0).unwrap_or(0),
                &s.text(1).unwrap_or_default(),
                &s.text(2).unwrap_or_default(),
                now,
            )?;
            created += 1;
        }
    }
    // Bounded history, like the checks: finished deliveries, and incidents closed (with
    // their alerts and deliveries), older than the retention.
    let cutoff = now.saturating_sub(super::HISTORY_RETENTION_SECS);
    tx.exec(
        "DELETE FROM deliveries WHERE state IN ('delivered', 'failed') AND finished_at < $1",
        &[cutoff.into()],
    )?;
    tx.exec(
        "DELETE FROM deliveries WHERE alert_id IN (SELECT a.id FROM alerts a \
           JOIN incidents i ON i.id = a.incident_id WHERE i.domain = $1 AND i.closed_at < $2)",
        &[domain.into(), cutoff.into()],
    )?;
    tx.exec(
        "DELETE FROM alerts WHERE incident_id IN \
           (SELECT id FROM incidents WHERE domain = $1 AND closed_at < $2)",
        &[domain.into(), cutoff.into()],
    )?;
    tx.exec(
        "DELETE FROM incidents WHERE domain = $1 AND closed_at < $2",
        &[domain.into(), cutoff.into()],
    )?;
    Ok(created)
}

/// The blindness sweep: steps the incident state of every watched domain whose last
/// conclusive check (or, never checked conclusively, its addition) is at least
/// `policy.blind_after` old, as an inconclusive observation at `now` with no check. So a
/// stuck scheduler or probes that never finish still raise `blind` (once per incident, a
/// reminder after `remind_after`), exactly as a failing check would. Returns the number of
/// deliveries created.
pub(crate) fn sweep_blind(
    tx: &mut dyn Tx,
    now: i64,
    policy: &Policy,
    random: &dyn Random,
) -> Result<u64, StoreError> {
    let cutoff = now.saturating_sub(policy.blind_after);
    // Domains whose blind incident is open and was alerted within remind_after have nothing
    // to step (no reminder due): skipped, so a long outage of many domains costs little.
    let quiet = now.saturating_sub(policy.remind_after);
    let rows = tx.query(
        &format!(
            "SELECT d.domain FROM domains d \
             WHERE {} <= $2 AND {} \
               AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.domain = d.domain \
                 AND i.condition = 'blind' AND i.closed_at IS NULL AND i.last_alert_at > $3) \
             ORDER BY d.domain",
            blind_baseline_sql(tx.dialect()),
            super::ops::watched_sql("$1")
        ),
        &[now.into(), cutoff.into(), quiet.into()],
    )?;
    let mut created = 0u64;
    for r in &rows {
        if let Some(domain) = r.text(0) {
            created += record_alerts(tx, &domain, None, now, None, policy, random)?;
        }
    }
    Ok(created)
}

const DELIVERY_COLS: &str = "d.id, d.subscription_id, d.channel, d.address, d.state, d.attempts, \
    d.last_error, d.next_attempt_at, a.id, a.incident_id, a.domain, a.condition, a.kind, \
    a.audience, a.opened_at, a.at, a.check_id, a.detail, a.evidence_id";

fn delivery(r: &Row) -> Delivery {
    Delivery {
        id: r.text(0).unwrap_or_default(),
        subscription_id: r.int(1).unwrap_or(0),
        channel: r.text(2).unwrap_or_default(),
        address: r.text(3).unwrap_or_default(),
        state: r.text(4).unwrap_or_default(),
        attempts: u32::try_from(r.int(5).unwrap_or(0)).unwrap_or(u32::MAX),
        last_error: r.text(6),
        next_attempt_at: r.int(7).unwrap_or(0),
        alert: AlertRecord {
            id: r.int(8).unwrap_or(0),
            incident_id: r.int(9).unwrap_or(0),
            domain: r.text(10).unwrap_or_default(),
            condition: r.text(11).unwrap_or_default(),
            kind: r.text(12).unwrap_or_default(),
            audience: r.text(13).unwrap_or_default(),
            opened_at: r.int(14).unwrap_or(0),
            at: r.int(15).unwrap_or(0),
            check_id: r.int(16),
            detail: r.text(17),
            evidence_id: r.int(18),
        },
    }
}

/// Claims up to `max` due deliveries for `instance` until `now + lease`.
pub(crate) fn claim_deliveries(
    tx: &mut dyn Tx,
    channel: Option<&str>,
    instance: &str,
    now: i64,
    lease: i64,
    max: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let lock = if tx.dialect() == Dialect::Postgres {
        " FOR UPDATE OF d SKIP LOCKED"
    } else {
        ""
    };
    let rows = tx.query(
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d JOIN alerts a ON a.id = d.alert_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
               AND (d.claim_until IS NULL OR d.claim_until <= $1) \
               AND ($3 = '' OR d.channel = $3) \
             ORDER BY d.next_attempt_at, d.created_at, d.id LIMIT $2{lock}"
        ),
        &[
            now.into(),
            i64::from(max).into(),
            channel.unwrap_or("").into(),
        ],
    )?;
    let until = now.saturating_add(lease);
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let d = delivery(r);
        tx.exec(
            "UPDATE deliveries SET claimed_by = $2, claim_until = $3 WHERE id = $1",
            &[d.id.as_str().into(), instance.into(), until.into()],
        )?;
        out.push(d);
    }
    Ok(out)
}

/// Marks a delivery delivered; `false` if it is no longer pending.
pub(crate) fn mark_delivered(tx: &mut dyn Tx, id: &str, now: i64) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE deliveries SET state = 'delivered', finished_at = $2, claimed_by = NULL, \
           claim_until = NULL WHERE id = $1 AND state = 'pending'",
        &[id.into(), now.into()],
    )? > 0)
}

/// Records a failed attempt: retried after the policy's backoff, or marked failed after
/// `max_attempts`. Returns the new state (`pending` or `failed`), `None` if not pending.
/// A subscriber's delivery that fails for good makes an admin notice (`delivery-failed`,
/// kind `notice`, on the same incident) with one delivery per admin contact, in the same
/// transaction; an admin contact's own failed delivery makes none (no loop).
pub(crate) fn mark_attempt_failed(
    tx: &mut dyn Tx,
    id: &str,
    now: i64,
    error: &str,
    retry: RetryPolicy,
    random: &dyn Random,
) -> Result<Option<String>, StoreError> {
    let rows = tx.query(
        "SELECT attempts FROM deliveries WHERE id = $1 AND state = 'pending'",
        &[id.into()],
    )?;
    let Some(attempts) = rows.first().and_then(|r| r.int(0)) else {
        return Ok(None);
    };
    let failures = u32::try_from(attempts.saturating_add(1)).unwrap_or(u32::MAX);
    let error: String = error.chars().take(1000).collect();
    let state = if failures >= retry.max_attempts {
        "failed"
    } else {
        "pending"
    };
    tx.exec(
        "UPDATE deliveries SET attempts = $2, last_error = $3, state = $4, next_attempt_at = $5, \
           finished_at = $6, claimed_by = NULL, claim_until = NULL WHERE id = $1",
        &[
            id.into(),
            i64::from(failures).into(),
            error.as_str().into(),
            state.into(),
            now.saturating_add(retry.delay(failures)).into(),
            if state == "failed" { Some(now) } else { None }.into(),
        ],
    )?;
    if state == "failed" {
        failed_delivery_notice(tx, id, now, failures, &error, random)?;
    }
    Ok(Some(state.to_owned()))
}

/// The admin notice of a subscriber's delivery `id` that failed for good.
fn failed_delivery_notice(
    tx: &mut dyn Tx,
    id: &str,
    now: i64,
    failures: u32,
    error: &str,
    random: &dyn Random,
) -> Result<(), StoreError> {
    let rows = tx.query(
        "SELECT d.subscription_id, d.channel, d.address, a.incident_id, a.domain, a.condition, \
           a.kind, a.check_id FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE d.id = $1",
        &[id.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(());
    };
    if r.int(0).unwrap_or(0) < 0 {
        return Ok(());
    }
    // The subscription's id and channel, never its address: an unsubscribe deletes the
    // subscription and its deliveries, and must leave the address nowhere (this notice
    // stays).
    let detail: String = format!(
        "delivery {id} of the {} {} alert to {} subscription {} failed after {failures} \
         attempts: {}",
        r.text(5).unwrap_or_default(),
        r.text(6).unwrap_or_default(),
        r.text(1).unwrap_or_default(),
        r.int(0).unwrap_or(0),
        crate::notify::webhook::redact(error),
    )
    .chars()
    .take(2000)
    .collect();
    let alert = tx.query(
        "INSERT INTO alerts (incident_id, domain, condition, kind, audience, opened_at, at, check_id, detail) \
         VALUES ($1, $2, 'delivery-failed', 'notice', 'admin', $3, $3, $4, $5) RETURNING id",
        &[
            r.int(3).unwrap_or(0).into(),
            r.text(4).unwrap_or_default().into(),
            now.into(),
            r.int(7).into(),
            detail.into(),
        ],
    )?;
    let alert_id = alert
        .first()
        .and_then(|r| r.int(0))
        .ok_or_else(|| StoreError::Database("INSERT INTO alerts returned no id".into()))?;
    admin_deliveries(tx, random, alert_id, now)?;
    Ok(())
}

/// Deliveries in state `state`, newest first.
pub(crate) fn deliveries_in(
    tx: &mut dyn Tx,
    state: &str,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = tx.query(
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d JOIN alerts a ON a.id = d.alert_id \
             WHERE d.state = $1 ORDER BY d.created_at DESC, d.id LIMIT $2"
        ),
        &[state.into(), i64::from(limit).into()],
    )?;
    Ok(rows.iter().map(delivery).collect())
}

/// Every delivery of a domain's alerts, oldest alert first (tests, admin view).
pub(crate) fn deliveries_of(
    tx: &mut dyn Tx,
    domain: &str,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = tx.query(
        &format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d JOIN alerts a ON a.id = d.alert_id \
             WHERE a.domain = $1 ORDER BY a.id, d.subscription_id LIMIT $2"
        ),
        &[domain.into(), i64::from(limit).into()],
    )?;
    Ok(rows.iter().map(delivery).collect())
}

/// Pending deliveries (the backlog, for health and metrics).
pub(crate) fn backlog(tx: &mut dyn Tx) -> Result<u64, StoreError> {
    let rows = tx.query(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
        &[],
    )?;
    Ok(rows
        .first()
        .and_then(|r| r.int(0))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Liveness of the monitor and of the outbox, for `/healthz` and `/metrics`
/// ([`super::Store::heartbeat`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Domains watched now.
    pub watched: u64,
    /// The newest conclusive check of any domain.
    pub last_conclusive_at: Option<i64>,
    /// Among watched domains, the newest of "last conclusive check, or added" (the freshest
    /// sign of life of the watched set).
    pub freshest_watched_at: Option<i64>,
    /// Among watched domains, the oldest of "last conclusive check, or added" (the domain
    /// that has been unseen longest).
    pub stalest_watched_at: Option<i64>,
    /// Pending deliveries.
    pub pending: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<i64>,
    /// Deliveries that failed for good (still within the retention).
    pub failed: u64,
}

impl Heartbeat {
    /// Whether the service is blind at `now`: domains are watched but none of them had a
    /// conclusive check (or was added) within `blind_after` seconds.
    pub fn blind(&self, now: i64, blind_after: i64) -> bool {
        self.watched > 0
            && self
                .freshest_watched_at
                .is_none_or(|t| now.saturating_sub(t) > blind_after)
    }

    /// Whether the oldest pending delivery is older than `stale_after` seconds at `now`.
    pub fn outbox_stale(&self, now: i64, stale_after: i64) -> bool {
        self.oldest_pending_at
            .is_some_and(|t| now.saturating_sub(t) > stale_after)
    }
}

/// The heartbeat data at `now`.
pub(crate) fn heartbeat(tx: &mut dyn Tx, now: i64) -> Result<Heartbeat, StoreError> {
    let n = |v: Option<i64>| v.map_or(0, |n| u64::try_from(n).unwrap_or(0));
    let watched = tx.query(
        &format!(
            "SELECT COUNT(*), MAX(COALESCE(d.last_conclusive_at, d.added_at)), \
               MIN(COALESCE(d.last_conclusive_at, d.added_at)) FROM domains d WHERE {}",
            super::ops::watched_sql("$1")
        ),
        &[now.into()],
    )?;
    let any = tx.query("SELECT MAX(last_conclusive_at) FROM domains", &[])?;
    let pending = tx.query(
        "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE state = 'pending'",
        &[],
    )?;
    let failed = tx.query(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'failed'",
        &[],
    )?;
    let w = watched.first();
    let p = pending.first();
    Ok(Heartbeat {
        watched: n(w.and_then(|r| r.int(0))),
        last_conclusive_at: any.first().and_then(|r| r.int(0)),
        freshest_watched_at: w.and_then(|r| r.int(1)),
        stalest_watched_at: w.and_then(|r| r.int(2)),
        pending: n(p.and_then(|r| r.int(0))),
        oldest_pending_at: p.and_then(|r| r.int(1)),
        failed: n(failed.first().and_then(|r| r.int(0))),
    })
}

/// Alerts for `audience` (`admin`: the hostile-exit notices), newest first.
pub(crate) fn alerts_for(
    tx: &mut dyn Tx,
    audience: &str,
    limit: u32,
) -> Result<Vec<AlertRecord>, StoreError> {
    let rows = tx.query(
        &format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE audience = $1 ORDER BY at DESC, id DESC LIMIT $2"
        ),
        &[audience.into(), i64::from(limit).into()],
    )?;
    Ok(rows.iter().map(alert_record).collect())
}

const ALERT_COLS: &str = "id, incident_id, domain, condition, kind, audience, opened_at, at, check_id, detail, evidence_id";

fn alert_record(r: &Row) -> AlertRecord {
    AlertRecord {
        id: r.int(0).unwrap_or(0),
        incident_id: r.int(1).unwrap_or(0),
        domain: r.text(2).unwrap_or_default(),
        condition: r.text(3).unwrap_or_default(),
        kind: r.text(4).unwrap_or_default(),
        audience: r.text(5).unwrap_or_default(),
        opened_at: r.int(6).unwrap_or(0),
        at: r.int(7).unwrap_or(0),
        check_id: r.int(8),
        detail: r.text(9),
        evidence_id: r.int(10),
    }
}

/// A domain's alerts for `audience`, newest first (the domain page's list, with evidence).
/// Daily digests are not alerts: they are left out (the public page must not show that
/// someone opted into a digest, nor let digests push real alerts out of the list).
pub(crate) fn alerts_of_domain(
    tx: &mut dyn Tx,
    domain: &str,
    audience: &str,
    limit: u32,
) -> Result<Vec<AlertRecord>, StoreError> {
    let rows = tx.query(
        &format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE domain = $1 AND audience = $2 \
             AND condition <> 'digest' ORDER BY at DESC, id DESC LIMIT $3"
        ),
        &[domain.into(), audience.into(), i64::from(limit).into()],
    )?;
    Ok(rows.iter().map(alert_record).collect())
}

/// Links the alerts of check `check_id` to its evidence bundle `evidence_id` (in the
/// check's transaction, right after [`record_alerts`]).
pub(crate) fn link_evidence(
    tx: &mut dyn Tx,
    check_id: i64,
    evidence_id: i64,
) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE alerts SET evidence_id = $2 WHERE check_id = $1",
        &[check_id.into(), evidence_id.into()],
    )?;
    Ok(())
}

/// A domain's incidents, newest first (not the digests' carrier rows).
pub(crate) fn incidents(
    tx: &mut dyn Tx,
    domain: &str,
    limit: u32,
) -> Result<Vec<IncidentRecord>, StoreError> {
    let rows = tx.query(
        "SELECT id, domain, condition, opened_at, last_alert_at, closed_at FROM incidents \
         WHERE domain = $1 AND condition <> 'digest' ORDER BY id DESC LIMIT $2",
        &[domain.into(), i64::from(limit).into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| IncidentRecord {
            id: r.int(0).unwrap_or(0),
            domain: r.text(1).unwrap_or_default(),
            condition: r.text(2).unwrap_or_default(),
            opened_at: r.int(3).unwrap_or(0),
            last_alert_at: r.int(4).unwrap_or(0),
            closed_at: r.int(5),
        })
        .collect())
}

/// Deletes a domain's outbox rows (before the domain itself).
pub(crate) fn remove_domain(tx: &mut dyn Tx, domain: &str) -> Result<(), StoreError> {
    tx.exec(
        "DELETE FROM deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE domain = $1)",
        &[domain.into()],
    )?;
    tx.exec("DELETE FROM alerts WHERE domain = $1", &[domain.into()])?;
    tx.exec("DELETE FROM incidents WHERE domain = $1", &[domain.into()])?;
    Ok(())
}

/// Deletes the pending deliveries of a subscription that is going away (unsubscribing
/// deletes the address, also from the outbox).
pub(crate) fn remove_subscription_deliveries(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
) -> Result<(), StoreError> {
    tx.exec(
        "DELETE FROM deliveries WHERE subscription_id IN \
           (SELECT id FROM subscriptions WHERE domain = $1 AND channel = $2 AND address = $3)",
        &[domain.into(), channel.into(), address.into()],
    )?;
    Ok(())
}

/// Adds an unconfirmed subscription with its secret (a webhook before its challenge);
/// returns its id, or `None` if the (domain, channel, address) already exists.
pub(crate) fn add_pending_subscription(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
    secret: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let exists = tx.query(
        "SELECT id FROM subscriptions WHERE domain = $1 AND channel = $2 AND address = $3",
        &[domain.into(), channel.into(), address.into()],
    )?;
    if !exists.is_empty() {
        return Ok(None);
    }
    let changed = tx.exec(
        "UPDATE domains SET last_requested_at = last_requested_at WHERE domain = $1",
        &[domain.into()],
    )?;
    if changed == 0 {
        tx.exec(
            "INSERT INTO domains (domain, added_at, last_requested_at, watch_until) VALUES ($1, $2, $2, $2)",
            &[domain.into(), now.into()],
        )?;
    }
    let rows = tx.query(
        "INSERT INTO subscriptions (domain, channel, address, created_at, secret) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            domain.into(),
            channel.into(),
            address.into(),
            now.into(),
            secret.into(),
        ],
    )?;
    Ok(rows.first().and_then(|r| r.int(0)))
}

/// Confirms subscription `id` (its challenge was answered); `false` if unknown.
pub(crate) fn confirm_subscription(tx: &mut dyn Tx, id: i64, now: i64) -> Result<bool, StoreError> {
    let n = tx.exec(
        "UPDATE subscriptions SET confirmed_at = $2 WHERE id = $1 AND confirmed_at IS NULL",
        &[id.into(), now.into()],
    )?;
    // A newly watched domain that was never scheduled is due now.
    tx.exec(
        "UPDATE domains SET next_due_at = $2 WHERE next_due_at IS NULL AND domain IN \
           (SELECT domain FROM subscriptions WHERE id = $1)",
        &[id.into(), now.into()],
    )?;
    Ok(n > 0)
}

/// The secret of subscription `id`, if it has one ([`ADMIN_WEBHOOK_SUBSCRIPTION`]: the admin
/// webhook's, from the settings).
pub(crate) fn subscription_secret(tx: &mut dyn Tx, id: i64) -> Result<Option<String>, StoreError> {
    if id == ADMIN_WEBHOOK_SUBSCRIPTION {
        return setting(tx, ADMIN_KEYS[2]);
    }
    let rows = tx.query(
        "SELECT secret FROM subscriptions WHERE id = $1",
        &[id.into()],
    )?;
    Ok(rows.first().and_then(|r| r.text(0)))
}

/// SHA-256 of a token, lowercase hex (what the database keeps).
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Adds (or renews, while unconfirmed) an opt-in subscription with fresh token hashes;
/// returns its id, or `None` if it is already confirmed (nothing to send).
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_opt_in_subscription(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
    confirm_hash: &str,
    unsubscribe_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<Option<i64>, StoreError> {
    let rows = tx.query(
        "SELECT id, confirmed_at FROM subscriptions WHERE domain = $1 AND channel = $2 AND address = $3",
        &[domain.into(), channel.into(), address.into()],
    )?;
    let id = match rows.first() {
        Some(r) if r.int(1).is_some() => return Ok(None),
        Some(r) => r.int(0).unwrap_or(0),
        None => add_pending_subscription(tx, domain, channel, address, "", now)?
            .ok_or_else(|| StoreError::Database("subscription insert returned no id".into()))?,
    };
    tx.exec(
        "UPDATE subscriptions SET confirm_token_hash = $2, confirm_expires_at = $3, \
           unsubscribe_token_hash = $4 WHERE id = $1",
        &[
            id.into(),
            confirm_hash.into(),
            expires_at.into(),
            unsubscribe_hash.into(),
        ],
    )?;
    Ok(Some(id))
}

/// Confirms the subscription whose unexpired confirmation token hashes to `hash` (once: the
/// hash is cleared). Its (domain, channel, address), or `None`.
pub(crate) fn confirm_by_token(
    tx: &mut dyn Tx,
    hash: &str,
    now: i64,
) -> Result<Option<(String, String, String)>, StoreError> {
    let rows = tx.query(
        "SELECT id, domain, channel, address FROM subscriptions \
         WHERE confirm_token_hash = $1 AND confirmed_at IS NULL AND confirm_expires_at >= $2",
        &[hash.into(), now.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let id = r.int(0).unwrap_or(0);
    tx.exec(
        "UPDATE subscriptions SET confirm_token_hash = NULL, confirm_expires_at = NULL WHERE id = $1",
        &[id.into()],
    )?;
    confirm_subscription(tx, id, now)?;
    Ok(Some((
        r.text(1).unwrap_or_default(),
        r.text(2).unwrap_or_default(),
        r.text(3).unwrap_or_default(),
    )))
}

/// Deletes the subscription whose unsubscribe token hashes to `hash`, with its deliveries.
/// Its (domain, channel, address), or `None`.
pub(crate) fn unsubscribe_by_token(
    tx: &mut dyn Tx,
    hash: &str,
) -> Result<Option<(String, String, String)>, StoreError> {
    let rows = tx.query(
        "SELECT id, domain, channel, address FROM subscriptions WHERE unsubscribe_token_hash = $1",
        &[hash.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let id = r.int(0).unwrap_or(0);
    tx.exec(
        "DELETE FROM deliveries WHERE subscription_id = $1",
        &[id.into()],
    )?;
    tx.exec("DELETE FROM subscriptions WHERE id = $1", &[id.into()])?;
    Ok(Some((
        r.text(1).unwrap_or_default(),
        r.text(2).unwrap_or_default(),
        r.text(3).unwrap_or_default(),
    )))
}

/// How long an unconfirmed subscription without a confirmation deadline (a webhook whose
/// challenge was cut short by a crash) is kept: a day.
pub const PENDING_WITHOUT_DEADLINE_SECS: i64 = 86_400;

/// The rows of `subscriptions` that are dead opt-ins at `$1` (now), `$2` being now minus
/// [`PENDING_WITHOUT_DEADLINE_SECS`]: never confirmed, not blocked by the admin, and past
/// their confirmation deadline (or, without one, older than a day).
const EXPIRED_PENDING: &str = "confirmed_at IS NULL AND blocked = 0 AND \
     ((confirm_expires_at IS NOT NULL AND confirm_expires_at < $1) \
      OR (confirm_expires_at IS NULL AND created_at < $2))";

/// Deletes the subscriptions that were never confirmed in time ([`EXPIRED_PENDING`]) with
/// their deliveries: the addresses of people who never opted in are not kept. Returns how
/// many subscriptions were deleted.
pub(crate) fn sweep_expired_subscriptions(tx: &mut dyn Tx, now: i64) -> Result<u64, StoreError> {
    let cutoff = now.saturating_sub(PENDING_WITHOUT_DEADLINE_SECS);
    tx.exec(
        &format!(
            "DELETE FROM deliveries WHERE subscription_id IN \
               (SELECT id FROM subscriptions WHERE {EXPIRED_PENDING})"
        ),
        &[now.into(), cutoff.into()],
    )?;
    tx.exec(
        &format!("DELETE FROM subscriptions WHERE {EXPIRED_PENDING}"),
        &[now.into(), cutoff.into()],
    )
}

/// The subscriptions of `domain` that count toward its cap at `now`: every one but the dead
/// opt-ins that [`sweep_expired_subscriptions`] deletes (confirmed, blocked, and pending
/// ones still within their deadline count).
pub(crate) fn live_subscription_count(
    tx: &mut dyn Tx,
    domain: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let cutoff = now.saturating_sub(PENDING_WITHOUT_DEADLINE_SECS);
    let rows = tx.query(
        &format!(
            "SELECT COUNT(*) FROM subscriptions WHERE domain = $3 AND NOT ({EXPIRED_PENDING})"
        ),
        &[now.into(), cutoff.into(), domain.into()],
    )?;
    Ok(rows
        .first()
        .and_then(|r| r.int(0))
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}

/// Stores `hash` as the unsubscribe token hash of subscription (domain, channel, address);
/// `false` if there is no such subscription.
pub(crate) fn set_unsubscribe_token_hash(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
    hash: &str,
) -> Result<bool, StoreError> {
    let n = tx.exec(
        "UPDATE subscriptions SET unsubscribe_token_hash = $4 \
         WHERE domain = $1 AND channel = $2 AND address = $3",
        &[domain.into(), channel.into(), address.into(), hash.into()],
    )?;
    Ok(n > 0)
}

/// Turns the daily digest of subscription `id` on or off; `false` if there is no such
/// subscription.
pub(crate) fn set_subscription_digest(
    tx: &mut dyn Tx,
    id: i64,
    on: bool,
) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE subscriptions SET digest = $2 WHERE id = $1",
        &[id.into(), i64::from(on).into()],
    )? > 0)
}

/// Sets the digest flag of the subscription (`domain`, `channel`, `address`).
pub(crate) fn set_digest_of(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
    on: bool,
) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE subscriptions SET digest = $4 WHERE domain = $1 AND channel = $2 AND address = $3",
        &[
            domain.into(),
            channel.into(),
            address.into(),
            i64::from(on).into(),
        ],
    )? > 0)
}

/// The daily digest at `now` if it is due: from `hour` (UTC) on, once per UTC day for all
/// instances (a compare-and-set on `settings.digest_day`). For each domain with a confirmed,
/// unblocked subscription that opted in: one `digest` alert (carried by a closed `digest`
/// incident row, which [`incidents`] does not list; its `detail` is the digest as JSON, see
/// `notify::digest`) and one delivery per such subscription. Returns the deliveries made.
pub(crate) fn daily_digest(
    tx: &mut dyn Tx,
    now: i64,
    hour: u32,
    random: &dyn Random,
) -> Result<u64, StoreError> {
    let day = now.div_euclid(86_400);
    if now.rem_euclid(86_400) < i64::from(hour) * 3600 {
        return Ok(0);
    }
    let ignore = match tx.dialect() {
        Dialect::Sqlite => "INSERT OR IGNORE INTO settings (key, value) VALUES ('digest_day', '')",
        Dialect::Postgres => {
            "INSERT INTO settings (key, value) VALUES ('digest_day', '') ON CONFLICT (key) DO NOTHING"
        }
    };
    tx.exec(ignore, &[])?;
    let today = day.to_string();
    // The compare-and-set: only the transaction that moves the day sends (PostgreSQL: a
    // concurrent UPDATE waits for this one, then finds the day already set).
    let won = tx.exec(
        "UPDATE settings SET value = $1 WHERE key = 'digest_day' AND value <> $1",
        &[today.as_str().into()],
    )?;
    if won == 0 {
        return Ok(0);
    }
    let subs = tx.query(
        "SELECT id, domain, channel, address FROM subscriptions \
         WHERE digest = 1 AND confirmed_at IS NOT NULL AND blocked = 0 ORDER BY domain, id",
        &[],
    )?;
    let mut by_domain: BTreeMap<String, Vec<(i64, String, String)>> = BTreeMap::new();
    for r in &subs {
        by_domain
            .entry(r.text(1).unwrap_or_default())
            .or_default()
            .push((
                r.int(0).unwrap_or(0),
                r.text(2).unwrap_or_default(),
                r.text(3).unwrap_or_default(),
            ));
    }
    let mut created = 0u64;
    for (domain, subs) in by_domain {
        let checks = tx.query(
            "SELECT COUNT(*) FROM checks WHERE domain = $1 AND finished_at > $2",
            &[domain.as_str().into(), now.saturating_sub(86_400).into()],
        )?;
        let last = tx.query(
            "SELECT last_verdict, last_checked_at, last_conclusive_at FROM domains WHERE domain = $1",
            &[domain.as_str().into()],
        )?;
        let open = tx.query(
            "SELECT condition, opened_at FROM incidents \
             WHERE domain = $1 AND closed_at IS NULL ORDER BY id",
            &[domain.as_str().into()],
        )?;
        let l = last.first();
        let detail = serde_json::json!({
            "checks_24h": checks.first().and_then(|r| r.int(0)).unwrap_or(0),
            "last_verdict": l.and_then(|r| r.text(0)),
            "last_checked_at": l.and_then(|r| r.int(1)),
            "last_conclusive_at": l.and_then(|r| r.int(2)),
            "open_incidents": open
                .iter()
                .map(|r| serde_json::json!({
                    "condition": r.text(0).unwrap_or_default(),
                    "opened_at": r.int(1),
                }))
                .collect::<Vec<_>>(),
        })
        .to_string();
        let incident = tx.query(
            "INSERT INTO incidents (domain, condition, opened_at, last_alert_at, closed_at) \
             VALUES ($1, 'digest', $2, $2, $2) RETURNING id",
            &[domain.as_str().into(), now.into()],
        )?;
        let incident_id = incident
            .first()
            .and_then(|r| r.int(0))
            .ok_or_else(|| StoreError::Database("INSERT INTO incidents returned no id".into()))?;
        let alert = tx.query(
            "INSERT INTO alerts (incident_id, domain, condition, kind, audience, opened_at, at, check_id, detail) \
             VALUES ($1, $2, 'digest', 'digest', 'subscribers', $3, $3, NULL, $4) RETURNING id",
            &[
                incident_id.into(),
                domain.as_str().into(),
                now.into(),
                detail.into(),
            ],
        )?;
        let alert_id = alert
            .first()
            .and_then(|r| r.int(0))
            .ok_or_else(|| StoreError::Database("INSERT INTO alerts returned no id".into()))?;
        for (id, channel, address) in subs {
            insert_delivery(tx, random, alert_id, id, &channel, &address, now)?;
            created += 1;
        }
    }
    Ok(created)
}
