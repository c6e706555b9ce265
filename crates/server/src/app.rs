//! The state every request handler and background task shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::{Clock, now};
use crate::config::Config;
use crate::metrics::Metrics;
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
        }
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
