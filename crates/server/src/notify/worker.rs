//! The outbox worker: every `interval`, one [`webhook::run_outbox_once`] pass and, with an
//! email sender, one [`email::run_email_once`] pass, at the injected clock's time, until
//! stopped. Several instances may run it on one PostgreSQL
//! database: the claims are leases taken with `SKIP LOCKED`.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, now};
use crate::store::{RetryPolicy, Store};

use super::email::{self, EmailSender};
use super::webhook::{self, WebhookClient};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This instance's name (claims).
    pub instance: String,
    /// Pause between passes.
    pub interval: Duration,
    /// Lease of a claimed delivery, in seconds: longer than one pass can take.
    pub lease: i64,
    /// Deliveries claimed per pass.
    pub batch: u32,
    /// Backoff and the failure limit.
    pub retry: RetryPolicy,
    /// The site's public URL (links in the bodies).
    pub public_url: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            instance: "certwatch".into(),
            interval: Duration::from_secs(5),
            // One webhook delivery takes at most about 140 s (4 hops of resolve 5 s, connect
            // 4 x 5 s, exchange 10 s); 5 of them fit in the lease, so a slow receiver does
            // not let another instance re-claim (and re-send) a delivery still in progress.
            lease: 900,
            batch: 5,
            retry: RetryPolicy::default(),
            public_url: "http://localhost".into(),
        }
    }
}

impl WorkerConfig {
    /// The worker's settings from the service's configuration (`instance_id`, `public_url`,
    /// `outbox_interval`, `outbox_lease`, `outbox_batch`, the retry policy).
    pub fn from_config(config: &crate::config::Config) -> WorkerConfig {
        WorkerConfig {
            instance: config.instance_id.clone(),
            interval: config.outbox_interval,
            lease: i64::try_from(config.outbox_lease.as_secs()).unwrap_or(i64::MAX),
            batch: config.outbox_batch,
            retry: config.retry_policy(),
            public_url: config.public_url.clone(),
        }
    }
}

/// Runs passes until `stop` turns `true` (a pass in progress finishes first; an
/// interrupted one is safe: its leases expire and the same ids are sent again).
pub async fn run(
    store: Store,
    client: WebhookClient,
    email_sender: Option<EmailSender>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let at = now(clock.as_ref());
        match webhook::run_outbox_once(
            &store,
            &client,
            &config.instance,
            at,
            config.lease,
            config.batch,
            config.retry,
            &config.public_url,
        )
        .await
        {
            Ok(pass) if pass.claimed > 0 => tracing::info!(
                claimed = pass.claimed,
                delivered = pass.delivered,
                failed = pass.failed,
                "outbox pass"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
        }
        if let Some(sender) = &email_sender {
            match email::run_email_once(
                &store,
                sender,
                &config.instance,
                at,
                config.lease,
                config.batch,
                config.retry,
                &config.public_url,
            )
            .await
            {
                Ok(pass) if pass.claimed > 0 => tracing::info!(
                    claimed = pass.claimed,
                    delivered = pass.delivered,
                    failed = pass.failed,
                    "email outbox pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "email outbox pass failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// How often [`run_sweeps`] looks for blind domains.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The periodic sweeps until `stop` turns `true`: every `every` (normally
/// [`SWEEP_INTERVAL`]), at the injected clock's time, [`Store::sweep_blind`] (so that a
/// watched domain without a conclusive check for `blind_after` raises `blind` even when no
/// check finishes: a stuck scheduler, probes that hang), then [`Store::daily_digest`] at
/// `digest_hour` (UTC; once a day for all instances).
pub async fn run_sweeps(
    store: Store,
    clock: Arc<dyn Clock>,
    every: Duration,
    digest_hour: u32,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let at = now(clock.as_ref());
        match store.sweep_blind(at).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "blindness sweep raised alerts"),
            Err(e) => tracing::warn!(error = %e, "blindness sweep failed"),
        }
        match store.daily_digest(at, digest_hour).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "daily digest queued"),
            Err(e) => tracing::warn!(error = %e, "daily digest failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Crash points for the kill -9 tests (cargo feature `failpoints`, enabled by `interop`):
/// with `CERTWATCH_FAILPOINT=before-send|after-send|after-commit` and
/// `CERTWATCH_FAILPOINT_FILE=PATH` in the environment, the first delivery that reaches the
/// named point has its id written to PATH (atomically: a temporary file, then a rename),
/// and the worker then waits forever there, so that the test can kill the process at
/// exactly that point. `before-send`: claimed, nothing sent; `after-send`: the receiver
/// answered 2xx, not yet marked delivered; `after-commit`: marked delivered. Without the
/// feature this does nothing.
#[cfg(feature = "failpoints")]
pub(crate) async fn failpoint(point: &str, delivery_id: &str) {
    let Ok(wanted) = std::env::var("CERTWATCH_FAILPOINT") else {
        return;
    };
    if wanted.trim() != point {
        return;
    }
    let Ok(path) = std::env::var("CERTWATCH_FAILPOINT_FILE") else {
        return;
    };
    let tmp = format!("{path}.tmp");
    if let Err(e) = std::fs::write(&tmp, delivery_id).and_then(|()| std::fs::rename(&tmp, &path)) {
        tracing::error!(error = %e, "failpoint {point}: cannot write {path}");
    }
    tracing::warn!(delivery = %delivery_id, "failpoint {point} reached: waiting forever");
    std::future::pending::<()>().await;
}

/// Crash points for the kill -9 tests: compiled out without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline]
pub(crate) async fn failpoint(_point: &str, _delivery_id: &str) {}
