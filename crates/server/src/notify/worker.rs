//! The outbox worker: one loop per channel (webhooks and, with an email sender, email),
//! each running a pass every `interval` at the injected clock's time until stopped, so a slow
//! channel never holds up another. Within a pass the claimed deliveries are sent at once
//! ([`send_bounded`]: at most [`MAX_IN_FLIGHT`], [`MAX_IN_FLIGHT_PER_HOST`] to one
//! destination host), each under one overall deadline ([`WEBHOOK_DEADLINE`],
//! [`EMAIL_DEADLINE`]) after which it counts as a failed attempt (retried with backoff).
//! Several instances may run it on one PostgreSQL database: the claims are leases taken with
//! `SKIP LOCKED`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::clock::{Clock, now};
use crate::store::{RetryPolicy, Store};

use super::email::{self, EmailSender};
use super::webhook::{self, OutboxPass, WebhookClient};

/// Deliveries of one pass in flight at once, at most.
pub const MAX_IN_FLIGHT: usize = 8;
/// Deliveries of one pass in flight at once to one destination host (a webhook URL's host,
/// an email address's domain), at most.
pub const MAX_IN_FLIGHT_PER_HOST: usize = 2;
/// The default overall deadline of one webhook delivery, every redirect hop included
/// ([`webhook::WebhookOptions::delivery_deadline`]).
pub const WEBHOOK_DEADLINE: Duration = Duration::from_secs(30);
/// The overall deadline of one email delivery (the whole SMTP dialogue).
pub const EMAIL_DEADLINE: Duration = Duration::from_secs(60);

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This instance's name (claims).
    pub instance: String,
    /// Pause between passes.
    pub interval: Duration,
    /// Lease of a claimed delivery, in seconds: longer than one pass can take, that is
    /// [`min_lease`] for the batch.
    pub lease: i64,
    /// Deliveries claimed per pass and channel.
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
            // A pass of 5 deliveries takes at most 3 x 60 s (all to one host, 2 at once,
            // each under its deadline): well inside the lease, so another instance does not
            // re-claim (and re-send) a delivery still in progress.
            lease: 900,
            batch: 5,
            retry: RetryPolicy::default(),
            public_url: "http://localhost".into(),
        }
    }
}

/// The longest one pass of `batch` deliveries can take, in seconds: every delivery to one
/// host ([`MAX_IN_FLIGHT_PER_HOST`] at once), each for the longest deadline
/// ([`EMAIL_DEADLINE`]). A lease shorter than this may let another instance re-send a
/// delivery still in progress.
pub fn min_lease(batch: u32) -> i64 {
    let per_host = u32::try_from(MAX_IN_FLIGHT_PER_HOST).unwrap_or(1).max(1);
    let rounds = i64::from(batch.div_ceil(per_host));
    rounds.saturating_mul(i64::try_from(EMAIL_DEADLINE.as_secs()).unwrap_or(i64::MAX))
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

/// Runs `send` for every item (paired with its destination host), at most [`MAX_IN_FLIGHT`]
/// at once and at most [`MAX_IN_FLIGHT_PER_HOST`] at once per host; the results in the
/// items' order. A send waiting for its host's turn does not hold a place of another host's.
pub async fn send_bounded<T, R, F, Fut>(items: Vec<(String, T)>, send: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    let global = Semaphore::new(MAX_IN_FLIGHT);
    let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut sends = Vec::with_capacity(items.len());
    for (host, item) in items {
        let per_host = hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_HOST)))
            .clone();
        let global = &global;
        let fut = send(item);
        sends.push(async move {
            let _host = per_host.acquire().await;
            let _global = global.acquire().await;
            fut.await
        });
    }
    futures::future::join_all(sends).await
}

/// Marks a sent delivery delivered (the failpoints `after-send` and `after-commit` around
/// the commit, for the kill -9 tests); `Ok(true)` for [`OutboxPass::tally`].
pub(crate) async fn delivered(
    store: &Store,
    id: &str,
    now: i64,
) -> Result<bool, crate::store::StoreError> {
    failpoint("after-send", id).await;
    store.mark_delivered(id, now).await?;
    failpoint("after-commit", id).await;
    Ok(true)
}

/// One channel's loop: `pass` at the clock's time every `interval` until `stop` turns
/// `true` (a pass in progress finishes first: each delivery is bounded by its deadline).
pub(crate) async fn channel_loop<E, F, Fut>(
    channel: &'static str,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    pass: F,
) where
    E: std::fmt::Display,
    F: Fn(i64) -> Fut,
    Fut: Future<Output = Result<OutboxPass, E>>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        match pass(now(clock.as_ref())).await {
            Ok(p) if p.claimed > 0 => tracing::info!(
                channel,
                claimed = p.claimed,
                delivered = p.delivered,
                failed = p.failed,
                "outbox pass"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                channel,
                error = %webhook::redact(&e.to_string()),
                "outbox pass failed"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Runs the channels' loops until `stop` turns `true` (a pass in progress finishes first; an
/// interrupted one is safe: its leases expire and the same ids are sent again). Each channel
/// has its own loop: a webhook pass waiting on slow receivers never delays the email pass,
/// nor the reverse. (Another channel is one more [`channel_loop`] in the `join!`.)
pub async fn run(
    store: Store,
    client: WebhookClient,
    email_sender: Option<EmailSender>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    if config.lease < min_lease(config.batch) {
        tracing::warn!(
            lease = config.lease,
            batch = config.batch,
            needed = min_lease(config.batch),
            "outbox_lease is shorter than one pass can take: a slow pass may be sent twice"
        );
    }
    let config = &config;
    let webhooks = channel_loop(
        "webhook",
        clock.clone(),
        config.interval,
        stop.clone(),
        |at| {
            let (store, client) = (&store, &client);
            async move {
                webhook::run_outbox_once(
                    store,
                    client,
                    &config.instance,
                    at,
                    config.lease,
                    config.batch,
                    config.retry,
                    &config.public_url,
                )
                .await
            }
        },
    );
    let emails = async {
        let Some(sender) = &email_sender else {
            return;
        };
        channel_loop(
            "email",
            clock.clone(),
            config.interval,
            stop.clone(),
            |at| {
                let store = &store;
                async move {
                    email::run_email_once(
                        store,
                        sender,
                        &config.instance,
                        at,
                        config.lease,
                        config.batch,
                        config.retry,
                        &config.public_url,
                    )
                    .await
                }
            },
        )
        .await;
    };
    tokio::join!(webhooks, emails);
}

/// How often [`run_sweeps`] looks for blind domains.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The periodic sweeps until `stop` turns `true`: every `every` (normally
/// [`SWEEP_INTERVAL`]), at the injected clock's time, [`Store::sweep_blind`] (so that a
/// watched domain without a conclusive check for `blind_after` raises `blind` even when no
/// check finishes: a stuck scheduler, probes that hang), then
/// [`Store::sweep_expired_subscriptions`] (opt-ins never confirmed in time are deleted), then
/// [`Store::daily_digest`] at
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
        match store.sweep_expired_subscriptions(at).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                subscriptions = n,
                "expired unconfirmed subscriptions deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "subscription sweep failed"),
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
/// and that delivery then waits forever there (the others go on), so that the test can kill the process at
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
    // Deliveries are sent concurrently: only the first one to get here stops.
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if FIRED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lease_outlasts_a_pass() {
        // 5 deliveries to one host, 2 at once, each up to the SMTP deadline: 3 x 60 s.
        assert_eq!(min_lease(5), 180);
        assert_eq!(min_lease(1), 60);
        let c = WorkerConfig::default();
        assert!(c.lease >= min_lease(c.batch), "{c:?}");
        assert!(EMAIL_DEADLINE >= WEBHOOK_DEADLINE);
    }
}
