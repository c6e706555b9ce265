//! The process: open the store, start the transport (Tor bootstraps in the background), the
//! scheduler and the web server, and stop them all on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::app::AppState;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::email::{EmailError, EmailSender};
use crate::notify::webhook::{WebhookClient, WebhookError, WebhookOptions};
use crate::notify::worker::{self, WorkerConfig};
use crate::random::{Random, SystemRandom};
use crate::runner::{FacadeRunner, RunnerError};
use crate::scheduler::{CheckRunner, Scheduler, SchedulerConfig};
use crate::store::{Store, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checker could not be set up.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// The webhook client could not be set up.
    #[error("the webhook client: {0}")]
    Webhook(#[from] WebhookError),
    /// The SMTP relay settings are unusable.
    #[error("the email sender: {0}")]
    Email(#[from] EmailError),
    /// The HTTP server failed.
    #[error("the web server failed: {0}")]
    Http(String),
}

/// How long running checks get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the service with `config` until `shutdown` completes, using the facade's checker.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    let store = Store::open(&config.database).await?;
    // Every conclusive check carries a bundle signed with the service's key.
    let runner = FacadeRunner::start(&config, metrics.clone())?
        .with_evidence_key(store.evidence_signing_key().await?);
    run_with(
        config,
        store,
        metrics,
        Arc::new(runner),
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
        shutdown,
    )
    .await
}

/// [`run`] with every part injected (tests).
pub async fn run_with(
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
    runner: Arc<dyn CheckRunner>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    metrics.set_store_ok(true);
    let store = store.with_alert_policy(config.alert_policy());
    store
        .set_admin_contacts(&crate::store::AdminContacts::from_config(&config))
        .await?;
    let webhooks = WebhookClient::new(WebhookOptions {
        allow_private: config.allow_private_targets,
        ..WebhookOptions::default()
    })?;
    let email = config
        .email_options()
        .map(|o| EmailSender::new(&o))
        .transpose()?;
    let config = Arc::new(config);
    let wake = Arc::new(Notify::new());
    // The site offers webhook subscriptions (challenge through the same guarded client)
    // and, with a relay, email subscriptions (double opt-in).
    let mut state = AppState::new(
        store.clone(),
        config.clone(),
        metrics.clone(),
        clock.clone(),
        wake.clone(),
    )
    .with_webhooks(webhooks.clone());
    if let Some(sender) = &email {
        state = state.with_email(sender.clone());
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: config.listen,
            reason: e.to_string(),
        })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The outbox worker: sends the deliveries the checks record (webhooks, and email when a
    // relay is configured) until the stop signal; an interrupted pass is safe (leases).
    let outbox = tokio::spawn(worker::run(
        store.clone(),
        webhooks,
        email,
        clock.clone(),
        WorkerConfig::from_config(&config),
        stop_rx.clone(),
    ));
    // The blindness sweep: `blind` even when no check finishes at all.
    let sweeps = tokio::spawn(worker::run_sweeps(
        store.clone(),
        clock.clone(),
        worker::SWEEP_INTERVAL,
        config.digest_hour,
        stop_rx.clone(),
    ));
    // XMPP notifications (issue 10): the component link and its outbox loop, if configured.
    let xmpp = config.xmpp.clone().map(|x| {
        let (s, m, c, i) = (
            store.clone(),
            metrics.clone(),
            clock.clone(),
            config.instance_id.clone(),
        );
        crate::component::spawn(x, s, m, c, i, stop_rx.clone())
    });
    let scheduler = Scheduler::new(
        store,
        runner,
        metrics,
        clock,
        random,
        SchedulerConfig::from_config(&config),
        wake,
    );
    let mut sched_stop = stop_rx.clone();
    let sched = tokio::spawn(async move {
        scheduler
            .run(
                async move {
                    let _ = sched_stop.wait_for(|s| *s).await;
                },
                SHUTDOWN_GRACE,
            )
            .await;
    });
    tracing::info!(
        "certwatch-server listening on http://{} (database: {}, via: {:?})",
        config.listen,
        crate::store::redact_database_url(&config.database),
        config.via
    );
    let mut http_stop = stop_rx.clone();
    let app = crate::web::router(state);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|s| *s).await;
    });
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let result = server.await.map_err(|e| ServeError::Http(e.to_string()));
    signal.abort();
    let _ = sched.await;
    let _ = outbox.await;
    let _ = sweeps.await;
    if let Some(x) = xmpp {
        let _ = tokio::join!(x.link_task, x.outbox_task);
    }
    result
}
