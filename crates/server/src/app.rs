//! The state every request handler and background task shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::{Clock, now};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::email::EmailSender;
use crate::notify::webhook::WebhookClient;
use crate::store::{CheckTicket, Store, StoreError, TicketState};

/// The service's shared state: cheap to clone (every field is shared).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The configuration.
    pub config: Arc<Config>,
    /// The metrics (`/metrics`, `/healthz`).
    pub metrics: Arc<Metrics>,
    /// The clock (Unix seconds); tests inject their own.
    pub clock: Arc<dyn Clock>,
    /// Requests on-demand checks.
    pub checks: CheckHandle,
    /// Sends the double opt-in mails of email subscriptions; `None`: email subscriptions
    /// are not offered (no SMTP relay configured). Set with [`AppState::with_email`].
    pub email: Option<EmailSender>,
    /// Runs the challenge of new webhook subscriptions (through the SSRF guard); `None`:
    /// webhook subscriptions are not offered. Set with [`AppState::with_webhooks`].
    pub webhooks: Option<WebhookClient>,
}

impl AppState {
    /// Builds the state; `checks` wakes the scheduler built with the same `wake`.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        let checks = CheckHandle {
            store: store.clone(),
            clock: clock.clone(),
            wake,
            expire_secs: config.expire_secs(),
        };
        AppState {
            store,
            config,
            metrics,
            clock,
            checks,
            email: None,
            webhooks: None,
        }
    }

    /// The state with an email sender: the site and the API then offer email subscriptions
    /// (double opt-in).
    #[must_use]
    pub fn with_email(mut self, sender: EmailSender) -> Self {
        self.email = Some(sender);
        self
    }

    /// The state with a webhook client: the site and the API then offer webhook
    /// subscriptions (confirmed by a challenge through the client's SSRF guard, so its
    /// `allow_private` should be the configuration's `allow_private_targets`).
    #[must_use]
    pub fn with_webhooks(mut self, client: WebhookClient) -> Self {
        self.webhooks = Some(client);
        self
    }

    /// Now, in Unix seconds, from the injected clock.
    pub fn now(&self) -> i64 {
        now(self.clock.as_ref())
    }
}

/// Queues on-demand checks and wakes the scheduler's workers.
#[derive(Clone, Debug)]
pub struct CheckHandle {
    store: Store,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    expire_secs: i64,
}

impl CheckHandle {
    /// Queues a check of `domain` (as typed; it is normalised) or returns the one already
    /// queued or running. The caller applies rate limits before calling this.
    pub async fn request(&self, domain: &str) -> Result<CheckTicket, StoreError> {
        let ticket = self
            .store
            .request_check_with(domain, now(self.clock.as_ref()), self.expire_secs)
            .await?;
        self.wake.notify_one();
        Ok(ticket)
    }

    /// Where ticket `id` stands; `None` for an unknown id.
    pub async fn state(&self, id: &str) -> Result<Option<TicketState>, StoreError> {
        self.store.ticket(id).await
    }
}
