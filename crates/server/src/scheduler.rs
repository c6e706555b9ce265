//! The scheduler: claims due checks and on-demand tickets from the store, runs them on a
//! bounded worker pool under a cap on new Tor circuits per minute, and records each outcome
//! in one transaction.
//!
//! - **What runs.** [`Store::claim_due`] hands out queued tickets first, then watched
//!   domains whose next check is due. The claim is a lease of the check deadline plus a margin: a
//!   process killed mid-check leaves a lease that expires, and the check is claimed again.
//! - **Spacing.** After a check that started at its due time `t`, the next is due at
//!   `t + interval ± jitter`. Slots that fell due while the check was still running are
//!   skipped (counted in `certwatch_checks_skipped_total`), never run back to back; and a
//!   domain is never claimed while its previous check runs.
//! - **Tor.** Each check is one [`certwatch::Checker::check`] call, which uses one fresh
//!   circuit isolation for the whole domain check. At most `circuits_per_minute` checks start
//!   in any 60 s window; a confirmation's extra circuits count against the same window.
//! - **Time.** Unix times come from the injected [`Clock`]; waiting uses tokio's clock, so
//!   tests run the scheduler on a paused clock. The check itself is a [`CheckRunner`], so
//!   tests need no network.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certwatch::Report;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::{Clock, now};
use crate::metrics::Metrics;
use crate::random::Random;
use crate::store::{Job, Spacing, Store};

/// What a check produced: its report and, when the runner made one, the signed evidence
/// bundle (`certwatch::evidence`, `docs/evidence.md`) behind it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The report.
    pub report: Report,
    /// The signed evidence bundle (JSON bytes, as published), if one was made.
    pub evidence: Option<Vec<u8>>,
}

impl CheckOutcome {
    /// An outcome with a signed evidence bundle.
    pub fn with_evidence(report: Report, evidence: Vec<u8>) -> CheckOutcome {
        CheckOutcome {
            report,
            evidence: Some(evidence),
        }
    }
}

impl From<Report> for CheckOutcome {
    /// An outcome without evidence.
    fn from(report: Report) -> CheckOutcome {
        CheckOutcome {
            report,
            evidence: None,
        }
    }
}

/// A boxed future of a check's outcome.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<CheckOutcome, String>> + Send>>;

/// Runs one domain check. Production uses [`crate::runner::FacadeRunner`] (the facade's
/// `Checker` over Tor); tests inject their own.
pub trait CheckRunner: Send + Sync + 'static {
    /// Whether checks can run now (false while Tor bootstraps).
    fn ready(&self) -> bool;
    /// Checks `domain` (A-label). `Err` is a check that could not run, with the reason. A
    /// runner that makes evidence bundles returns the signed bundle with the report; the
    /// scheduler stores it with the check ([`Store::finish_with_evidence`]). The check
    /// deadline bounds the whole future, the bundle's gathering included.
    fn check(&self, domain: String) -> CheckFuture;
    /// Extra circuits a finished check used beyond its first (a confirmation's exits).
    fn extra_circuits(&self, report: &Report) -> u32 {
        report.confirmation.as_ref().map_or(0, |c| {
            u32::try_from(c.vantage_points.saturating_sub(1)).unwrap_or(0)
        })
    }
}

/// The scheduler's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SchedulerConfig {
    /// This instance's name in claims.
    pub instance: String,
    /// The interval between checks of a watched domain.
    pub interval: Duration,
    /// The largest shift (either way) of a next due time.
    pub jitter: Duration,
    /// Checks run at once.
    pub workers: u32,
    /// New circuits (check starts) in any 60 s window.
    pub circuits_per_minute: u32,
    /// The hard bound on one check.
    pub check_deadline: Duration,
    /// How often the scheduler looks for due work when nothing wakes it.
    pub tick: Duration,
}

impl SchedulerConfig {
    /// The settings of a configuration.
    pub fn from_config(config: &crate::config::Config) -> Self {
        SchedulerConfig {
            instance: config.instance_id.clone(),
            interval: config.interval,
            jitter: config.jitter,
            workers: config.workers,
            circuits_per_minute: config.circuits_per_minute,
            check_deadline: config.check_deadline,
            tick: Duration::from_secs(1),
        }
    }

    /// The claim lease, in seconds: the check deadline plus a margin for recording the
    /// outcome (a tenth of the deadline, at least 10 s). A check that outlives it is cut
    /// by the deadline first, so a live claim never expires; a dead one is retried soon.
    pub fn lease_secs(&self) -> i64 {
        let deadline = i64::try_from(self.check_deadline.as_secs()).unwrap_or(i64::MAX / 4);
        deadline + (deadline / 10).max(10)
    }
}

/// A sliding 60 s window of circuit starts.
#[derive(Debug)]
pub struct CircuitLimiter {
    per_minute: usize,
    starts: VecDeque<Instant>,
}

impl CircuitLimiter {
    /// A limiter allowing `per_minute` starts in any 60 s window.
    pub fn new(per_minute: u32) -> Self {
        CircuitLimiter {
            per_minute: usize::try_from(per_minute.max(1)).unwrap_or(1),
            starts: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while self
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.starts.pop_front();
        }
    }

    /// How many circuits may start now.
    pub fn available(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.per_minute.saturating_sub(self.starts.len())
    }

    /// Records `n` circuit starts at `now`.
    pub fn record(&mut self, now: Instant, n: usize) {
        for _ in 0..n {
            self.starts.push_back(now);
        }
    }

    /// Starts in the last 60 s.
    pub fn last_minute(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.starts.len()
    }

    /// When the next start becomes available (now, if one is).
    pub fn next_free(&mut self, now: Instant) -> Instant {
        self.expire(now);
        if self.starts.len() < self.per_minute {
            return now;
        }
        let k = self.starts.len() - self.per_minute;
        self.starts
            .get(k)
            .map_or(now, |t| *t + Duration::from_secs(60))
    }
}

/// The scheduler. Build it, then `run` it until shutdown.
pub struct Scheduler {
    store: Store,
    runner: Arc<dyn CheckRunner>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    config: SchedulerConfig,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler over this store and runner. `wake` is the `Notify` that on-demand
    /// requests signal (see [`crate::app::AppState::new`]).
    pub fn new(
        store: Store,
        runner: Arc<dyn CheckRunner>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        config: SchedulerConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Scheduler {
            store,
            runner,
            metrics,
            clock,
            random,
            config,
            wake,
        }
    }

    fn jitter(&self) -> i64 {
        let j = self.config.jitter.as_secs();
        if j == 0 {
            return 0;
        }
        let span = j.saturating_mul(2).saturating_add(1);
        i64::try_from(self.random.below(span)).unwrap_or(0) - i64::try_from(j).unwrap_or(0)
    }

    /// Runs until `shutdown` completes; then stops claiming, gives running checks up to
    /// `grace` to finish, and abandons the rest (their leases expire and they are retried).
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        let this = Arc::new(self);
        let limiter = Arc::new(Mutex::new(CircuitLimiter::new(
            this.config.circuits_per_minute,
        )));
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut last_stats = None::<Instant>;
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            let t = Instant::now();
            let unix = now(this.clock.as_ref());
            if last_stats.is_none_or(|s| t.duration_since(s) >= Duration::from_secs(10)) {
                last_stats = Some(t);
                match this.store.stats(unix).await {
                    Ok(s) => {
                        this.metrics.set_store_ok(true);
                        let lag = s.oldest_due.map_or(0, |d| unix - d);
                        this.metrics.scheduler_tick(unix, lag);
                    }
                    Err(e) => {
                        this.metrics.set_store_ok(false);
                        tracing::warn!("scheduler: store unavailable: {e}");
                    }
                }
            }
            let mut next_wake = t + this.config.tick;
            if this.runner.ready() {
                let free = usize::try_from(this.config.workers)
                    .unwrap_or(1)
                    .saturating_sub(tasks.len());
                let (permits, last_minute) = {
                    let mut l = limiter
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    (l.available(t), l.last_minute(t))
                };
                this.metrics.circuits(last_minute as u64, 0);
                let n = free.min(permits);
                if n > 0 {
                    match this
                        .store
                        .claim_due(
                            &this.config.instance,
                            unix,
                            this.config.lease_secs(),
                            u32::try_from(n).unwrap_or(1),
                        )
                        .await
                    {
                        Ok(jobs) => {
                            for job in jobs {
                                let fresh = running
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .insert(job.domain.clone());
                                if !fresh {
                                    // Only after a lease expired under a live check (a
                                    // check longer than its deadline): leave it to finish.
                                    this.metrics.checks_skipped(1);
                                    continue;
                                }
                                limiter
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .record(t, 1);
                                this.metrics.circuits(0, 1);
                                tasks.spawn(run_job(
                                    this.clone(),
                                    job,
                                    limiter.clone(),
                                    running.clone(),
                                ));
                            }
                            this.metrics.set_running(tasks.len() as u64);
                        }
                        Err(e) => {
                            this.metrics.set_store_ok(false);
                            tracing::warn!("scheduler: cannot claim checks: {e}");
                        }
                    }
                } else if free > 0 {
                    // Waiting for the circuit cap: wake when a start frees up.
                    let at = limiter
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .next_free(t);
                    next_wake = next_wake.max(at);
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(next_wake) => {}
                () = this.wake.notified() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    this.metrics.set_running(tasks.len() as u64);
                }
            }
        }
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tasks.abort_all();
        }
        this.metrics.set_running(0);
    }
}

async fn run_job(
    this: Arc<Scheduler>,
    job: Job,
    limiter: Arc<Mutex<CircuitLimiter>>,
    running: Arc<Mutex<HashSet<String>>>,
) {
    let deadline = this.config.check_deadline;
    let outcome = match tokio::time::timeout(deadline, this.runner.check(job.domain.clone())).await
    {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the check did not finish within {} s",
            deadline.as_secs()
        )),
    };
    if let Ok(CheckOutcome { report, .. }) = &outcome {
        this.metrics.probes_finished(report);
        let extra = this.runner.extra_circuits(report);
        if extra > 0 {
            limiter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(Instant::now(), usize::try_from(extra).unwrap_or(0));
            this.metrics.circuits(0, u64::from(extra));
        }
    }
    let verdict = outcome.as_ref().ok().map(|o| o.report.verdict);
    let (outcome, evidence) = match outcome {
        Ok(o) => (Ok(o.report), o.evidence),
        Err(e) => (Err(e), None),
    };
    let finished_at = now(this.clock.as_ref());
    let spacing = Spacing {
        interval: i64::try_from(this.config.interval.as_secs()).unwrap_or(900),
        jitter: this.jitter(),
    };
    match this
        .store
        .finish_with_evidence(
            &job,
            &this.config.instance,
            finished_at,
            outcome,
            evidence,
            spacing,
        )
        .await
    {
        Ok(f) => {
            this.metrics.set_store_ok(true);
            this.metrics.check_finished(verdict, finished_at);
            this.metrics.checks_skipped(f.skipped);
        }
        Err(e) => {
            // The lease expires and the check is claimed again.
            this.metrics.set_store_ok(false);
            tracing::warn!("scheduler: cannot record the check of {}: {e}", job.domain);
        }
    }
    running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&job.domain);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limiter_allows_per_minute_in_any_window() {
        let mut l = CircuitLimiter::new(3);
        let t0 = Instant::now();
        assert_eq!(l.available(t0), 3);
        l.record(t0, 2);
        l.record(t0 + Duration::from_secs(10), 1);
        assert_eq!(l.available(t0 + Duration::from_secs(30)), 0);
        assert_eq!(
            l.next_free(t0 + Duration::from_secs(30)),
            t0 + Duration::from_secs(60)
        );
        assert_eq!(l.available(t0 + Duration::from_secs(60)), 2);
        assert_eq!(l.available(t0 + Duration::from_secs(70)), 3);
    }
}
