//! The store's logic: one function per operation, each run inside one transaction.

use certwatch::{Report, Verdict};

use super::db::{Dialect, Row, Tx, Val};
use super::{
    CheckKind, CheckRecord, CheckTicket, DomainSummary, DomainView, Finished, Job, SeenKey,
    Spacing, StoreError, StoreStats, TicketState, WatchReason,
};

/// The newest schema version this program knows.
pub const CURRENT_VERSION: i64 = 10;

/// Checks older than this are deleted (the domain's latest check is always kept).
pub const HISTORY_RETENTION_SECS: i64 = 90 * 86_400;

/// Finished tickets older than this are deleted (a client polls for minutes, not days).
pub const TICKET_RETENTION_SECS: i64 = 86_400;

/// The default watch period of a domain without subscribers: 30 days.
pub(crate) const DEFAULT_EXPIRE_SECS: i64 = 30 * 86_400;

const MIGRATIONS_SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_removal_requests.sql"),
    ),
    (3, include_str!("../../migrations/sqlite/0003_settings.sql")),
    (4, include_str!("../../migrations/sqlite/0004_outbox.sql")),
    (
        5,
        include_str!("../../migrations/sqlite/0005_subscription_secrets.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_subscription_tokens.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_alert_detail.sql"),
    ),
    (8, include_str!("../../migrations/sqlite/0008_evidence.sql")),
    (9, include_str!("../../migrations/sqlite/0009_digest.sql")),
    (10, include_str!("../../migrations/sqlite/0010_xmpp.sql")),
];
const MIGRATIONS_POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_removal_requests.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_settings.sql"),
    ),
    (4, include_str!("../../migrations/postgres/0004_outbox.sql")),
    (
        5,
        include_str!("../../migrations/postgres/0005_subscription_secrets.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_subscription_tokens.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_alert_detail.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_evidence.sql"),
    ),
    (9, include_str!("../../migrations/postgres/0009_digest.sql")),
    (10, include_str!("../../migrations/postgres/0010_xmpp.sql")),
];

/// Applies the missing migrations (in the open transaction).
pub(crate) fn migrate(tx: &mut dyn Tx) -> Result<(), StoreError> {
    if tx.dialect() == Dialect::Postgres {
        // Two instances starting at once: one migrates, the other waits here.
        tx.exec("SELECT pg_advisory_xact_lock(4242424242)", &[])?;
    }
    tx.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let found = schema_version(tx)?;
    if found > CURRENT_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    let list = match tx.dialect() {
        Dialect::Sqlite => MIGRATIONS_SQLITE,
        Dialect::Postgres => MIGRATIONS_POSTGRES,
    };
    for (version, sql) in list {
        if *version > found {
            tx.batch(sql)?;
            tx.exec(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[Val::I(*version), Val::I(unix_now())],
            )?;
        }
    }
    Ok(())
}

/// Migrations record the wall-clock time they ran (informational only).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn schema_version(tx: &mut dyn Tx) -> Result<i64, StoreError> {
    let rows = tx.query("SELECT MAX(version) FROM schema_migrations", &[])?;
    Ok(rows.first().and_then(|r| r.int(0)).unwrap_or(0))
}

fn verdict_of(s: Option<String>) -> Option<Verdict> {
    let s = s?;
    Verdict::ALL.into_iter().find(|v| v.as_str() == s)
}

fn report_of(what: &str, s: Option<String>) -> Result<Option<Report>, StoreError> {
    match s {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: what.to_owned(),
                reason: e.to_string(),
            }),
    }
}

fn count(tx: &mut dyn Tx, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
    let rows = tx.query(sql, params)?;
    Ok(rows
        .first()
        .and_then(|r| r.int(0))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// The SQL condition "domain d is watched at $now" (parameter index given).
pub(super) fn watched_sql(now_param: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM subscriptions s WHERE s.domain = d.domain \
           AND s.confirmed_at IS NOT NULL AND s.blocked = 0) \
          OR (d.last_verdict = 'match' AND d.watch_until > {now_param}))"
    )
}

fn subscribers(tx: &mut dyn Tx, domain: &str) -> Result<u64, StoreError> {
    count(
        tx,
        "SELECT COUNT(*) FROM subscriptions WHERE domain = $1 AND confirmed_at IS NOT NULL AND blocked = 0",
        &[domain.into()],
    )
}

fn ensure_domain(
    tx: &mut dyn Tx,
    domain: &str,
    now: i64,
    expire_secs: i64,
) -> Result<(), StoreError> {
    let until = now.saturating_add(expire_secs);
    let changed = tx.exec(
        "UPDATE domains SET last_requested_at = $2, watch_until = $3 WHERE domain = $1",
        &[domain.into(), now.into(), until.into()],
    )?;
    if changed == 0 {
        tx.exec(
            "INSERT INTO domains (domain, added_at, last_requested_at, watch_until) VALUES ($1, $2, $2, $3)",
            &[domain.into(), now.into(), until.into()],
        )?;
    }
    Ok(())
}

pub(crate) fn request_check(
    tx: &mut dyn Tx,
    domain: &str,
    now: i64,
    expire_secs: i64,
    id: String,
) -> Result<CheckTicket, StoreError> {
    ensure_domain(tx, domain, now, expire_secs)?;
    let existing = tx.query(
        "SELECT id, requested_at FROM tickets WHERE domain = $1 AND state IN ('queued', 'running') ORDER BY requested_at LIMIT 1",
        &[domain.into()],
    )?;
    if let Some(row) = existing.first()
        && let Some(id) = row.text(0)
    {
        return Ok(CheckTicket {
            id,
            domain: domain.to_owned(),
            requested_at: row.int(1).unwrap_or(now),
            deduplicated: true,
        });
    }
    tx.exec(
        "INSERT INTO tickets (id, domain, requested_at, state) VALUES ($1, $2, $3, 'queued')",
        &[id.clone().into(), domain.into(), now.into()],
    )?;
    Ok(CheckTicket {
        id,
        domain: domain.to_owned(),
        requested_at: now,
        deduplicated: false,
    })
}

pub(crate) fn ticket(tx: &mut dyn Tx, id: &str) -> Result<Option<TicketState>, StoreError> {
    let rows = tx.query(
        "SELECT t.state, t.message, c.report FROM tickets t LEFT JOIN checks c ON c.id = t.check_id WHERE t.id = $1",
        &[id.into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let state = match row.text(0).as_deref() {
        Some("queued") => TicketState::Queued,
        Some("running") => TicketState::Running,
        Some("done") => match report_of("checks.report", row.text(2))? {
            Some(r) => TicketState::Done(Box::new(r)),
            None => TicketState::Failed("the check's report is missing".into()),
        },
        _ => TicketState::Failed(row.text(1).unwrap_or_else(|| "the check failed".into())),
    };
    Ok(Some(state))
}

pub(crate) fn domain_view(
    tx: &mut dyn Tx,
    domain: &str,
    now: i64,
) -> Result<Option<DomainView>, StoreError> {
    let rows = tx.query(
        "SELECT d.added_at, d.watch_until, d.last_verdict, d.last_checked_at, d.last_conclusive_at, \
                d.next_due_at, c.report, c.finished_at \
         FROM domains d LEFT JOIN checks c ON c.id = d.last_check_id WHERE d.domain = $1",
        &[domain.into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let subs = subscribers(tx, domain)?;
    let last_verdict = verdict_of(row.text(2));
    let last_checked_at = row.int(3);
    let watch_until = row.int(1).unwrap_or(0);
    let watch = watch_reason(subs, last_verdict, last_checked_at, watch_until, now);
    let pending = tx.query(
        "SELECT id FROM tickets WHERE domain = $1 AND state IN ('queued', 'running') ORDER BY requested_at LIMIT 1",
        &[domain.into()],
    )?;
    Ok(Some(DomainView {
        domain: domain.to_owned(),
        added_at: row.int(0).unwrap_or(0),
        watch: watch.clone(),
        last_verdict,
        last_checked_at,
        report: report_of("checks.report", row.text(6))?,
        report_at: row.int(7),
        last_conclusive_at: row.int(4),
        next_due_at: if watch.is_watched() { row.int(5) } else { None },
        subscribers: subs,
        pending_ticket: pending.first().and_then(|r| r.text(0)),
    }))
}

fn watch_reason(
    subs: u64,
    last_verdict: Option<Verdict>,
    last_checked_at: Option<i64>,
    watch_until: i64,
    now: i64,
) -> WatchReason {
    if subs > 0 {
        return WatchReason::Subscribed(subs);
    }
    match last_verdict {
        Some(Verdict::Match) if watch_until > now => WatchReason::Matched { until: watch_until },
        Some(Verdict::Match) => WatchReason::Expired { since: watch_until },
        Some(v) => WatchReason::NotMatching(v),
        None if last_checked_at.is_some() => WatchReason::NoVerdict,
        None => WatchReason::NotChecked,
    }
}

fn check_record(row: &Row) -> Result<CheckRecord, StoreError> {
    Ok(CheckRecord {
        id: row.int(0).unwrap_or(0),
        domain: row.text(1).unwrap_or_default(),
        kind: CheckKind::parse(&row.text(2).unwrap_or_default()),
        started_at: row.int(3).unwrap_or(0),
        finished_at: row.int(4).unwrap_or(0),
        verdict: verdict_of(row.text(5)),
        report: report_of("checks.report", row.text(6))?,
        error: row.text(7),
    })
}

pub(crate) fn history(
    tx: &mut dyn Tx,
    domain: &str,
    limit: u32,
) -> Result<Vec<CheckRecord>, StoreError> {
    let rows = tx.query(
        "SELECT id, domain, kind, started_at, finished_at, verdict, report, error FROM checks \
         WHERE domain = $1 ORDER BY id DESC LIMIT $2",
        &[domain.into(), i64::from(limit).into()],
    )?;
    rows.iter().map(check_record).collect()
}

pub(crate) fn keys_seen(tx: &mut dyn Tx, domain: &str) -> Result<Vec<SeenKey>, StoreError> {
    let rows = tx.query(
        "SELECT target, port, spki_sha256, first_seen, last_seen, times FROM keys_seen \
         WHERE domain = $1 ORDER BY last_seen DESC, target, port, spki_sha256",
        &[domain.into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| SeenKey {
            target: r.text(0).unwrap_or_default(),
            port: u16::try_from(r.int(1).unwrap_or(0)).unwrap_or(0),
            spki_sha256: r.text(2).unwrap_or_default(),
            first_seen: r.int(3).unwrap_or(0),
            last_seen: r.int(4).unwrap_or(0),
            times: u64::try_from(r.int(5).unwrap_or(0)).unwrap_or(0),
        })
        .collect())
}

pub(crate) fn list_domains(
    tx: &mut dyn Tx,
    offset: u64,
    limit: u32,
) -> Result<Vec<DomainSummary>, StoreError> {
    let rows = tx.query(
        "SELECT d.domain, d.added_at, d.last_verdict, d.last_checked_at, d.next_due_at, \
           (SELECT COUNT(*) FROM subscriptions s WHERE s.domain = d.domain \
              AND s.confirmed_at IS NOT NULL AND s.blocked = 0) \
         FROM domains d ORDER BY d.domain LIMIT $1 OFFSET $2",
        &[
            i64::from(limit).into(),
            i64::try_from(offset).unwrap_or(i64::MAX).into(),
        ],
    )?;
    Ok(rows
        .iter()
        .map(|r| DomainSummary {
            domain: r.text(0).unwrap_or_default(),
            added_at: r.int(1).unwrap_or(0),
            last_verdict: verdict_of(r.text(2)),
            last_checked_at: r.int(3),
            next_due_at: r.int(4),
            subscribers: u64::try_from(r.int(5).unwrap_or(0)).unwrap_or(0),
        })
        .collect())
}

pub(crate) fn count_domains(tx: &mut dyn Tx) -> Result<u64, StoreError> {
    count(tx, "SELECT COUNT(*) FROM domains", &[])
}

pub(crate) fn remove_domain(tx: &mut dyn Tx, domain: &str) -> Result<bool, StoreError> {
    super::outbox::remove_domain(tx, domain)?;
    super::evidence::remove_domain(tx, domain)?;
    // Explicit deletes: foreign-key cascades are off by default in some SQLite builds.
    for table in [
        "keys_seen",
        "tickets",
        "subscriptions",
        "checks",
        "removal_requests",
    ] {
        tx.exec(
            &format!("DELETE FROM {table} WHERE domain = $1"),
            &[domain.into()],
        )?;
    }
    Ok(tx.exec("DELETE FROM domains WHERE domain = $1", &[domain.into()])? > 0)
}

pub(crate) fn add_subscription(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
    now: i64,
) -> Result<bool, StoreError> {
    ensure_domain(tx, domain, now, DEFAULT_EXPIRE_SECS)?;
    let exists = count(
        tx,
        "SELECT COUNT(*) FROM subscriptions WHERE domain = $1 AND channel = $2 AND address = $3",
        &[domain.into(), channel.into(), address.into()],
    )?;
    if exists > 0 {
        return Ok(false);
    }
    tx.exec(
        "INSERT INTO subscriptions (domain, channel, address, created_at, confirmed_at) VALUES ($1, $2, $3, $4, $4)",
        &[domain.into(), channel.into(), address.into(), now.into()],
    )?;
    // A newly watched domain that was never scheduled is due now.
    tx.exec(
        "UPDATE domains SET next_due_at = $2 WHERE domain = $1 AND next_due_at IS NULL",
        &[domain.into(), now.into()],
    )?;
    Ok(true)
}

pub(crate) fn remove_subscription(
    tx: &mut dyn Tx,
    domain: &str,
    channel: &str,
    address: &str,
) -> Result<bool, StoreError> {
    super::outbox::remove_subscription_deliveries(tx, domain, channel, address)?;
    Ok(tx.exec(
        "DELETE FROM subscriptions WHERE domain = $1 AND channel = $2 AND address = $3",
        &[domain.into(), channel.into(), address.into()],
    )? > 0)
}

pub(crate) fn stats(tx: &mut dyn Tx, now: i64) -> Result<StoreStats, StoreError> {
    let domains = count(tx, "SELECT COUNT(*) FROM domains", &[])?;
    let watched = count(
        tx,
        &format!("SELECT COUNT(*) FROM domains d WHERE {}", watched_sql("$1")),
        &[now.into()],
    )?;
    let overdue_rows = tx.query(
        &format!(
            "SELECT COUNT(*), MIN(d.next_due_at) FROM domains d WHERE d.next_due_at <= $1 AND {}",
            watched_sql("$1")
        ),
        &[now.into()],
    )?;
    let (overdue, oldest_due) = overdue_rows.first().map_or((0, None), |r| {
        (u64::try_from(r.int(0).unwrap_or(0)).unwrap_or(0), r.int(1))
    });
    let queued_tickets = count(
        tx,
        "SELECT COUNT(*) FROM tickets WHERE state = 'queued'",
        &[],
    )?;
    let last = tx.query(
        "SELECT MAX(last_checked_at), MAX(last_conclusive_at) FROM domains",
        &[],
    )?;
    Ok(StoreStats {
        domains,
        watched,
        overdue,
        oldest_due,
        queued_tickets,
        last_check_at: last.first().and_then(|r| r.int(0)),
        last_conclusive_at: last.first().and_then(|r| r.int(1)),
    })
}

pub(crate) fn claim_due(
    tx: &mut dyn Tx,
    instance: &str,
    now: i64,
    lease: i64,
    tokens: Vec<String>,
) -> Result<Vec<Job>, StoreError> {
    let max = tokens.len();
    let mut tokens = tokens.into_iter();
    let mut jobs = Vec::new();
    if max == 0 {
        return Ok(jobs);
    }
    let lock = if tx.dialect() == Dialect::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let until = now.saturating_add(lease);
    // 1. Tickets (queued, or running under an expired lease), on unclaimed domains.
    let tickets = tx.query(
        &format!(
            "SELECT t.id, t.domain FROM tickets t JOIN domains d ON d.domain = t.domain \
             WHERE (t.state = 'queued' OR (t.state = 'running' AND t.claim_until <= $1)) \
               AND (d.claim_until IS NULL OR d.claim_until <= $1) \
             ORDER BY t.requested_at, t.id LIMIT $2{}",
            if lock.is_empty() {
                ""
            } else {
                " FOR UPDATE OF t, d SKIP LOCKED"
            }
        ),
        &[now.into(), i64::try_from(max).unwrap_or(1).into()],
    )?;
    for row in tickets {
        let (Some(id), Some(domain)) = (row.text(0), row.text(1)) else {
            continue;
        };
        if jobs.iter().any(|j: &Job| j.domain == domain) {
            continue;
        }
        let Some(token) = tokens.next() else { break };
        tx.exec(
            "UPDATE tickets SET state = 'running', claimed_by = $2, claim_until = $3 WHERE id = $1",
            &[id.clone().into(), instance.into(), until.into()],
        )?;
        tx.exec(
            "UPDATE domains SET claimed_by = $2, claim_until = $3, claim_token = $4 WHERE domain = $1",
            &[domain.clone().into(), instance.into(), until.into(), token.clone().into()],
        )?;
        jobs.push(Job {
            domain,
            ticket: Some(id),
            due_at: None,
            claimed_at: now,
            claim_token: token,
        });
    }
    // 2. Watched domains that are due.
    let left = max - jobs.len();
    if left > 0 {
        let due = tx.query(
            &format!(
                "SELECT d.domain, d.next_due_at FROM domains d \
                 WHERE d.next_due_at <= $1 AND (d.claim_until IS NULL OR d.claim_until <= $1) \
                   AND {} ORDER BY d.next_due_at, d.domain LIMIT $2{lock}",
                watched_sql("$1")
            ),
            &[now.into(), i64::try_from(left).unwrap_or(1).into()],
        )?;
        for row in due {
            let Some(domain) = row.text(0) else { continue };
            let Some(token) = tokens.next() else { break };
            tx.exec(
                "UPDATE domains SET claimed_by = $2, claim_until = $3, claim_token = $4 WHERE domain = $1",
                &[domain.clone().into(), instance.into(), until.into(), token.clone().into()],
            )?;
            jobs.push(Job {
                domain,
                ticket: None,
                due_at: row.int(1),
                claimed_at: now,
                claim_token: token,
            });
        }
    }
    Ok(jobs)
}

/// What [`finish`] needs to decide alerts.
pub(crate) struct Alerting<'a> {
    pub(crate) policy: &'a crate::notify::incident::Policy,
    pub(crate) random: &'a dyn crate::random::Random,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn finish(
    tx: &mut dyn Tx,
    job: &Job,
    instance: &str,
    now: i64,
    outcome: Result<Report, String>,
    evidence: Option<String>,
    spacing: Spacing,
    alerting: &Alerting<'_>,
) -> Result<Finished, StoreError> {
    let exists = count(
        tx,
        "SELECT COUNT(*) FROM domains WHERE domain = $1",
        &[job.domain.as_str().into()],
    )?;
    if exists == 0 {
        // Removed while the check ran: nothing to record.
        return Ok(Finished {
            check_id: 0,
            next_due_at: 0,
            skipped: 0,
            owned: false,
        });
    }
    let kind = if job.ticket.is_some() {
        CheckKind::OnDemand
    } else {
        CheckKind::Scheduled
    };
    let (verdict, report_json, error) = match &outcome {
        Ok(r) => (
            Some(r.verdict),
            Some(serde_json::to_string(r).map_err(|e| StoreError::Corrupt {
                what: "report".into(),
                reason: e.to_string(),
            })?),
            None,
        ),
        Err(e) => (None, None, Some(e.clone())),
    };
    let rows = tx.query(
        "INSERT INTO checks (domain, kind, started_at, finished_at, verdict, report, error, instance) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            job.domain.as_str().into(),
            kind.as_str().into(),
            job.claimed_at.into(),
            now.into(),
            verdict.map(|v| v.as_str().to_owned()).into(),
            report_json.into(),
            error.clone().into(),
            instance.into(),
        ],
    )?;
    let check_id = rows
        .first()
        .and_then(|r| r.int(0))
        .ok_or_else(|| StoreError::Database("INSERT INTO checks returned no id".into()))?;
    if let Ok(report) = &outcome {
        for e in &report.endpoints {
            if let Some(k) = &e.presented_spki_sha256 {
                let params: [Val; 5] = [
                    job.domain.as_str().into(),
                    e.target.as_str().into(),
                    i64::from(e.port).into(),
                    k.as_str().into(),
                    now.into(),
                ];
                let n = tx.exec(
                    "UPDATE keys_seen SET last_seen = $5, times = times + 1 \
                     WHERE domain = $1 AND target = $2 AND port = $3 AND spki_sha256 = $4",
                    &params,
                )?;
                if n == 0 {
                    tx.exec(
                        "INSERT INTO keys_seen (domain, target, port, spki_sha256, first_seen, last_seen, times) \
                         VALUES ($1, $2, $3, $4, $5, $5, 1)",
                        &params,
                    )?;
                }
            }
        }
    }
    // The check's signed evidence bundle, in this transaction (a failed check has none).
    let evidence_id = match (&outcome, evidence) {
        (Ok(_), Some(body)) => Some(super::evidence::insert(
            tx,
            &job.domain,
            check_id,
            now,
            &body,
        )?),
        _ => None,
    };
    // Alerts and their deliveries, in this transaction (before last_conclusive_at moves).
    super::outbox::record_alerts(
        tx,
        &job.domain,
        Some(check_id),
        now,
        outcome.as_ref().ok(),
        alerting.policy,
        alerting.random,
    )?;
    if let Some(id) = evidence_id {
        super::outbox::link_evidence(tx, check_id, id)?;
    }
    // The next due time: the slot after this check's start, moved past `now` by whole
    // intervals (each one skipped: it fell due while this check ran).
    let interval = spacing.interval.max(1);
    let base = job.due_at.unwrap_or(job.claimed_at).max(job.claimed_at);
    let mut next = base.saturating_add(interval);
    let mut skipped = 0u64;
    while next <= now {
        next = next.saturating_add(interval);
        skipped += 1;
    }
    let next_due_at = next
        .saturating_add(spacing.jitter)
        .max(now.saturating_add(1));
    let owned = tx.exec(
        "UPDATE domains SET last_checked_at = $2, next_due_at = $3, \
            claimed_by = NULL, claim_until = NULL, claim_token = NULL \
         WHERE domain = $1 AND claim_token = $4",
        &[
            job.domain.as_str().into(),
            now.into(),
            next_due_at.into(),
            job.claim_token.as_str().into(),
        ],
    )? > 0;
    if verdict.is_some() {
        tx.exec(
            "UPDATE domains SET last_verdict = $2, last_check_id = $3, last_checked_at = $4 WHERE domain = $1",
            &[
                job.domain.as_str().into(),
                verdict.map(|v| v.as_str().to_owned()).into(),
                check_id.into(),
                now.into(),
            ],
        )?;
        if verdict != Some(Verdict::Indeterminate) {
            tx.exec(
                "UPDATE domains SET last_conclusive_at = $2 WHERE domain = $1",
                &[job.domain.as_str().into(), now.into()],
            )?;
        }
    }
    if let Some(ticket) = &job.ticket {
        let state = if outcome.is_ok() { "done" } else { "failed" };
        tx.exec(
            "UPDATE tickets SET state = $2, check_id = $3, message = $4, finished_at = $5, \
                claimed_by = NULL, claim_until = NULL WHERE id = $1",
            &[
                ticket.as_str().into(),
                state.into(),
                check_id.into(),
                error.into(),
                now.into(),
            ],
        )?;
    }
    // Bounded history: old checks of this domain, and old finished tickets.
    tx.exec(
        "DELETE FROM checks WHERE domain = $1 AND finished_at < $2 AND id <> $3",
        &[
            job.domain.as_str().into(),
            now.saturating_sub(HISTORY_RETENTION_SECS).into(),
            check_id.into(),
        ],
    )?;
    tx.exec(
        "DELETE FROM tickets WHERE state IN ('done', 'failed') AND finished_at < $1",
        &[now.saturating_sub(TICKET_RETENTION_SECS).into()],
    )?;
    super::evidence::expire(tx, &job.domain, now)?;
    Ok(Finished {
        check_id,
        next_due_at,
        skipped,
        owned,
    })
}

/// At most this many removal requests are kept (the oldest are dropped).
const MAX_REMOVAL_REQUESTS: i64 = 1000;

pub(crate) fn request_removal(
    tx: &mut dyn Tx,
    domain: &str,
    contact: &str,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    // One pending request per (domain, contact): a repeat replaces the earlier one.
    tx.exec(
        "DELETE FROM removal_requests WHERE domain = $1 AND contact = $2",
        &[domain.into(), contact.into()],
    )?;
    tx.exec(
        "INSERT INTO removal_requests (domain, contact, message, requested_at) VALUES ($1, $2, $3, $4)",
        &[domain.into(), contact.into(), message.into(), now.into()],
    )?;
    tx.exec(
        "DELETE FROM removal_requests WHERE id NOT IN \
           (SELECT id FROM removal_requests ORDER BY requested_at DESC, id DESC LIMIT $1)",
        &[MAX_REMOVAL_REQUESTS.into()],
    )?;
    Ok(())
}

pub(crate) fn removal_requests(
    tx: &mut dyn Tx,
    limit: u32,
) -> Result<Vec<super::RemovalRequest>, StoreError> {
    let rows = tx.query(
        "SELECT domain, contact, message, requested_at FROM removal_requests \
         ORDER BY requested_at DESC, id DESC LIMIT $1",
        &[i64::from(limit).into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| super::RemovalRequest {
            domain: r.text(0).unwrap_or_default(),
            contact: r.text(1).unwrap_or_default(),
            message: r.text(2).unwrap_or_default(),
            requested_at: r.int(3).unwrap_or(0),
        })
        .collect())
}

pub(crate) fn subscriptions(
    tx: &mut dyn Tx,
    domain: Option<&str>,
    limit: u32,
) -> Result<Vec<super::Subscription>, StoreError> {
    let cols =
        "SELECT id, domain, channel, address, created_at, confirmed_at, blocked FROM subscriptions";
    let rows = match domain {
        Some(d) => tx.query(
            &format!("{cols} WHERE domain = $1 ORDER BY created_at DESC, id DESC LIMIT $2"),
            &[d.into(), i64::from(limit).into()],
        )?,
        None => tx.query(
            &format!("{cols} ORDER BY created_at DESC, id DESC LIMIT $1"),
            &[i64::from(limit).into()],
        )?,
    };
    Ok(rows
        .iter()
        .map(|r| super::Subscription {
            id: r.int(0).unwrap_or(0),
            domain: r.text(1).unwrap_or_default(),
            channel: r.text(2).unwrap_or_default(),
            address: r.text(3).unwrap_or_default(),
            created_at: r.int(4).unwrap_or(0),
            confirmed_at: r.int(5),
            blocked: r.int(6).unwrap_or(0) != 0,
        })
        .collect())
}

pub(crate) fn set_subscription_blocked(
    tx: &mut dyn Tx,
    id: i64,
    blocked: bool,
) -> Result<bool, StoreError> {
    Ok(tx.exec(
        "UPDATE subscriptions SET blocked = $2 WHERE id = $1",
        &[id.into(), i64::from(blocked).into()],
    )? > 0)
}

/// The setting `key`, created with `fresh` when absent (first writer wins).
pub(crate) fn setting_or_insert(
    tx: &mut dyn Tx,
    key: &str,
    fresh: String,
) -> Result<String, StoreError> {
    let insert = match tx.dialect() {
        Dialect::Sqlite => "INSERT OR IGNORE INTO settings (key, value) VALUES ($1, $2)",
        Dialect::Postgres => {
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
        }
    };
    tx.exec(insert, &[key.into(), fresh.into()])?;
    let rows = tx.query("SELECT value FROM settings WHERE key = $1", &[key.into()])?;
    rows.first()
        .and_then(|r| r.text(0))
        .ok_or_else(|| StoreError::Corrupt {
            what: format!("settings.{key}"),
            reason: "missing after insert".into(),
        })
}
