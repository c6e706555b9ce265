//! Signed evidence bundles (issue 9, schema version 8; `docs/evidence.md`).
//!
//! A conclusive check's bundle is stored by [`super::ops::finish`] in the check's own
//! transaction ([`insert`]), and every alert of that check is linked to it
//! (`alerts.evidence_id`). The bytes are kept exactly as signed and published, with their
//! SHA-256. Retention follows the checks': a bundle older than [`EVIDENCE_RETENTION_SECS`] is
//! deleted unless an alert that is still kept links to it, or it is the domain's newest.

use super::db::{Row, Tx};
use super::{Store, StoreError};

/// Bundles older than this are deleted, unless a kept alert links to them or they are the
/// domain's newest (the same period as the checks' history).
pub const EVIDENCE_RETENTION_SECS: i64 = super::HISTORY_RETENTION_SECS;

/// One stored evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvidenceRecord {
    /// Its id (`/domains/{domain}/evidence/{id}.json`).
    pub id: i64,
    /// The domain (A-label).
    pub domain: String,
    /// The check it was made for.
    pub check_id: i64,
    /// When it was stored (the check's finish time), Unix seconds.
    pub created_at: i64,
    /// The signed JSON document, byte for byte as signed.
    pub body: Vec<u8>,
    /// SHA-256 of `body`, lower-case hex.
    pub sha256: String,
}

/// Stores a signed bundle of check `check_id`; returns its id.
pub(crate) fn insert(
    tx: &mut dyn Tx,
    domain: &str,
    check_id: i64,
    now: i64,
    body: &str,
) -> Result<i64, StoreError> {
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
    let rows = tx.query(
        "INSERT INTO evidence (domain, check_id, created_at, body, sha256) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            domain.into(),
            check_id.into(),
            now.into(),
            body.into(),
            sha.into(),
        ],
    )?;
    rows.first()
        .and_then(|r| r.int(0))
        .ok_or_else(|| StoreError::Database("INSERT INTO evidence returned no id".into()))
}

/// Deletes the domain's bundles older than the retention that no alert links to, keeping
/// the newest.
pub(crate) fn expire(tx: &mut dyn Tx, domain: &str, now: i64) -> Result<(), StoreError> {
    tx.exec(
        "DELETE FROM evidence WHERE domain = $1 AND created_at < $2 \
           AND id <> (SELECT MAX(id) FROM evidence WHERE domain = $1) \
           AND id NOT IN (SELECT evidence_id FROM alerts WHERE evidence_id IS NOT NULL)",
        &[
            domain.into(),
            now.saturating_sub(EVIDENCE_RETENTION_SECS).into(),
        ],
    )?;
    Ok(())
}

/// Deletes a domain's bundles (with the domain).
pub(crate) fn remove_domain(tx: &mut dyn Tx, domain: &str) -> Result<(), StoreError> {
    tx.exec("DELETE FROM evidence WHERE domain = $1", &[domain.into()])?;
    Ok(())
}

const COLS: &str = "id, domain, check_id, created_at, body, sha256";

fn record(r: &Row) -> EvidenceRecord {
    EvidenceRecord {
        id: r.int(0).unwrap_or(0),
        domain: r.text(1).unwrap_or_default(),
        check_id: r.int(2).unwrap_or(0),
        created_at: r.int(3).unwrap_or(0),
        body: r.text(4).unwrap_or_default().into_bytes(),
        sha256: r.text(5).unwrap_or_default(),
    }
}

fn by_id(tx: &mut dyn Tx, domain: &str, id: i64) -> Result<Option<EvidenceRecord>, StoreError> {
    let rows = tx.query(
        &format!("SELECT {COLS} FROM evidence WHERE id = $1 AND domain = $2"),
        &[id.into(), domain.into()],
    )?;
    Ok(rows.first().map(record))
}

fn latest(tx: &mut dyn Tx, domain: &str) -> Result<Option<EvidenceRecord>, StoreError> {
    let rows = tx.query(
        &format!("SELECT {COLS} FROM evidence WHERE domain = $1 ORDER BY id DESC LIMIT 1"),
        &[domain.into()],
    )?;
    Ok(rows.first().map(record))
}

fn of_check(tx: &mut dyn Tx, check_id: i64) -> Result<Option<EvidenceRecord>, StoreError> {
    let rows = tx.query(
        &format!("SELECT {COLS} FROM evidence WHERE check_id = $1 ORDER BY id DESC LIMIT 1"),
        &[check_id.into()],
    )?;
    Ok(rows.first().map(record))
}

impl Store {
    /// Bundle `id` of `domain` (`None` when unknown, or when it belongs to another domain).
    pub async fn evidence(
        &self,
        domain: &str,
        id: i64,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        let Ok(domain) = super::normalise_domain(domain) else {
            return Ok(None);
        };
        self.tx(move |tx| by_id(tx, &domain, id)).await
    }

    /// The newest bundle of `domain`.
    pub async fn latest_evidence(
        &self,
        domain: &str,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        let Ok(domain) = super::normalise_domain(domain) else {
            return Ok(None);
        };
        self.tx(move |tx| latest(tx, &domain)).await
    }

    /// The bundle of check `check_id`, if it made one.
    pub async fn evidence_of_check(
        &self,
        check_id: i64,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        self.tx(move |tx| of_check(tx, check_id)).await
    }

    /// The newest `limit` subscriber alerts of `domain` (opened, reminder, recovered), each
    /// with its evidence bundle's id when it has one.
    pub async fn alerts_of(
        &self,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<super::AlertRecord>, StoreError> {
        let Ok(domain) = super::normalise_domain(domain) else {
            return Ok(Vec::new());
        };
        self.tx(move |tx| super::outbox::alerts_of_domain(tx, &domain, "subscribers", limit))
            .await
    }
}
