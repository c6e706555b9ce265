//! The production [`CheckRunner`]: the facade's [`certwatch::Checker`] over the configured
//! transport. With `via = tor` the embedded Tor client bootstraps in the background (its
//! progress goes to the metrics) while the site already serves; checks wait until it is
//! ready.
//!
//! DNS runs on its own schedule ([`crate::dns_cache`]): a check probes with the domain's
//! cached discovery while its TTL lasts, and a background task refreshes discoveries when
//! their TTLs run out, so DNS queries do not precede each probe.
//!
//! **Evidence.** With a signing key ([`FacadeRunner::with_evidence_key`], the store's
//! [`Store::evidence_signing_key`](crate::store::Store::evidence_signing_key)), every
//! conclusive check (verdict other than `indeterminate`: every check that can open, remind
//! or recover an incident, and every match) returns a signed evidence bundle
//! (`docs/evidence.md`): the check's own probes (and its confirmation's) with the DNSSEC
//! chains of its TLSA, SRV and address RRsets, gathered after the probes within
//! [`EVIDENCE_BUDGET`] (and within the check deadline). A gathering that runs out of time
//! gives a bundle that says so in `gaps`; it is still signed, and the check still finishes.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use certwatch::evidence::{EvidenceBundle, gather_with_probes};
use certwatch::{
    CheckOptions, Checker, Discovery, Report, ResolverConfig, Transport, TrustAnchor, Verdict,
};
use ring::signature::Ed25519KeyPair;

use crate::dns_cache::{DnsCache, DnsSchedule};
use crate::random::{Random, SystemRandom};

use crate::config::{Config, Via};
use crate::metrics::{Metrics, TorState};
use crate::scheduler::{CheckFuture, CheckOutcome, CheckRunner};

/// Why the runner could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The resolver configuration is unusable.
    #[error("--resolver: {0}")]
    Resolver(String),
    /// The trust anchor file could not be read or parsed.
    #[error("--trust-anchor {path}: {reason}")]
    TrustAnchor {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The arti configuration could not be read or parsed.
    #[error("--tor-config {path}: {reason}")]
    TorConfig {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `--via tor` in a build without the `tor` feature.
    #[error(
        "--via tor: this build has no embedded Tor (cargo feature `tor`); use --via socks5://HOST:PORT or --via direct"
    )]
    NoTor,
    /// The check options are invalid.
    #[error("{0}")]
    Options(String),
}

/// The facade's checker, available once the transport is ready, with the DNS cache.
#[derive(Debug, Clone)]
pub struct FacadeRunner {
    checker: Arc<OnceLock<Checker>>,
    dns: Arc<DnsCache<Discovery>>,
    metrics: Arc<Metrics>,
    /// Signs evidence bundles; `None`: no bundles.
    evidence_key: Option<Arc<Ed25519KeyPair>>,
    /// The check deadline (the bundle's gathering must end well before it).
    deadline: Duration,
}

/// The longest the gathering of one evidence bundle (its DNSSEC chains) may take.
pub const EVIDENCE_BUDGET: Duration = Duration::from_secs(30);

/// Discoveries refreshed at once by the refresher.
const REFRESH_BATCH: usize = 8;

/// How long one Tor bootstrap attempt may take before it is retried.
const TOR_BOOTSTRAP_BUDGET: Duration = Duration::from_secs(180);

impl FacadeRunner {
    /// Reads the resolver, trust anchor and Tor settings of `config` (errors now, before the
    /// service starts), then makes the checker ready: at once for `direct` and SOCKS, after
    /// a background bootstrap (retried until it succeeds) for embedded Tor.
    pub fn start(config: &Config, metrics: Arc<Metrics>) -> Result<FacadeRunner, RunnerError> {
        Self::start_with(
            config,
            metrics,
            DnsSchedule::for_interval(config.interval),
            Arc::new(SystemRandom),
        )
    }

    /// [`FacadeRunner::start`] with an explicit DNS refresh schedule and randomness.
    pub fn start_with(
        config: &Config,
        metrics: Arc<Metrics>,
        schedule: DnsSchedule,
        random: Arc<dyn Random>,
    ) -> Result<FacadeRunner, RunnerError> {
        let mut resolver = if config.resolvers.is_empty() {
            ResolverConfig::from_system()
                .map_err(|e| RunnerError::Resolver(format!("{e} (give --resolver IP[:PORT])")))?
        } else {
            ResolverConfig::from_servers(&config.resolvers)
                .map_err(|e| RunnerError::Resolver(e.to_string()))?
        };
        if let Some(path) = &config.trust_anchor {
            let err = |reason: String| RunnerError::TrustAnchor {
                path: path.display().to_string(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let anchor = TrustAnchor::from_file_text(&text);
            anchor.validate().map_err(|e| err(e.to_string()))?;
            resolver = resolver.with_trust_anchor(anchor);
        }
        let (timeout, allow, confirm) = (
            config.timeout,
            config.allow_private_targets,
            usize::try_from(config.confirm).unwrap_or(3),
        );
        let base = move |transport: Transport| {
            CheckOptions::new(transport, resolver.clone())
                .with_timeout(timeout)
                .with_private_targets(allow)
                .with_confirm(confirm)
        };
        let runner = FacadeRunner {
            checker: Arc::new(OnceLock::new()),
            dns: Arc::new(DnsCache::new(schedule, random)),
            metrics: metrics.clone(),
            evidence_key: None,
            deadline: config.check_deadline,
        };
        match &config.via {
            Via::Direct | Via::Socks(_) => {
                let transport = match &config.via {
                    Via::Socks(proxy) => Transport::Socks { proxy: *proxy },
                    _ => Transport::Direct,
                };
                let checker = Checker::new(base(transport))
                    .map_err(|e| RunnerError::Options(e.to_string()))?;
                let _ = runner.checker.set(checker.clone());
                metrics.set_tor(TorState::NotUsed);
                runner.spawn_refresher(checker);
            }
            Via::Tor => {
                // Validate the options once with a direct transport (same resolver), so
                // that a bad resolver fails at start, not after the bootstrap.
                Checker::new(base(Transport::Direct))
                    .map_err(|e| RunnerError::Options(e.to_string()))?;
                runner.start_tor(config, metrics, base)?;
            }
        }
        Ok(runner)
    }

    #[cfg(feature = "tor")]
    fn start_tor(
        &self,
        config: &Config,
        metrics: Arc<Metrics>,
        base: impl Fn(Transport) -> CheckOptions + Send + 'static,
    ) -> Result<(), RunnerError> {
        use certwatch::TorTransport;
        let tor_config = match &config.tor_config {
            Some(path) => {
                let label = path.display().to_string();
                let err = |reason: String| RunnerError::TorConfig {
                    path: label.clone(),
                    reason,
                };
                let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
                TorTransport::config_from_toml(&text, &label).map_err(|e| err(e.to_string()))?
            }
            None => TorTransport::public_network_config(),
        };
        let allow_local = config.allow_private_targets;
        let cell = self.checker.clone();
        let this = self.clone();
        metrics.set_tor(TorState::Bootstrapping {
            fraction: 0.0,
            message: "starting".into(),
        });
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(5);
            loop {
                let m = metrics.clone();
                let result =
                    TorTransport::bootstrap(tor_config.clone(), TOR_BOOTSTRAP_BUDGET, move |p| {
                        if !p.ready {
                            m.set_tor(TorState::Bootstrapping {
                                fraction: p.fraction,
                                message: p.message,
                            });
                        }
                    })
                    .await;
                match result {
                    Ok(tor) => {
                        let options = base(Transport::Tor(tor.allow_local_addrs(allow_local)));
                        match Checker::new(options) {
                            Ok(checker) => {
                                let _ = cell.set(checker.clone());
                                this.spawn_refresher(checker);
                                metrics.set_tor(TorState::Ready);
                                tracing::info!("Tor is ready: checks start");
                            }
                            Err(e) => {
                                metrics.set_tor(TorState::Failed(e.to_string()));
                                tracing::error!("cannot build the checker: {e}");
                            }
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("Tor bootstrap: {e}; retrying in {backoff:?}");
                        metrics.set_tor(TorState::Failed(e.to_string()));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                }
            }
        });
        Ok(())
    }

    #[cfg(not(feature = "tor"))]
    fn start_tor(
        &self,
        _config: &Config,
        _metrics: Arc<Metrics>,
        _base: impl Fn(Transport) -> CheckOptions + Send + 'static,
    ) -> Result<(), RunnerError> {
        Err(RunnerError::NoTor)
    }
}

impl FacadeRunner {
    /// This runner, signing an evidence bundle for every conclusive check with `key` (the
    /// service's key: [`Store::evidence_signing_key`](crate::store::Store::evidence_signing_key)).
    #[must_use]
    pub fn with_evidence_key(mut self, key: Ed25519KeyPair) -> FacadeRunner {
        self.evidence_key = Some(Arc::new(key));
        self
    }

    /// The DNS cache (metrics, tests).
    pub fn dns_cache(&self) -> &Arc<DnsCache<Discovery>> {
        &self.dns
    }

    /// Refreshes due discoveries on their own timer, for as long as the runner lives.
    fn spawn_refresher(&self, checker: Checker) {
        let dns = Arc::downgrade(&self.dns);
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            loop {
                let Some(cache) = dns.upgrade() else { return };
                let now = tokio::time::Instant::now();
                let due = cache.due(now, REFRESH_BATCH);
                // Looks again within a second: new entries arrive from checks.
                let wake = cache
                    .next_refresh()
                    .unwrap_or(now + Duration::from_secs(1))
                    .clamp(
                        now + Duration::from_millis(200),
                        now + Duration::from_secs(1),
                    );
                drop(cache);
                if due.is_empty() {
                    tokio::time::sleep_until(wake).await;
                    continue;
                }
                let lookups = due.into_iter().map(|domain| {
                    let checker = checker.clone();
                    async move { (checker.discover(&domain).await, domain) }
                });
                let results = futures::future::join_all(lookups).await;
                let Some(cache) = dns.upgrade() else { return };
                for (result, domain) in results {
                    match result {
                        Ok(d) => {
                            let ttl = d.min_ttl();
                            cache.insert(&domain, d, ttl, tokio::time::Instant::now(), false);
                            metrics.dns("refresh");
                        }
                        Err(e) => {
                            tracing::info!("DNS refresh of {domain} failed: {e}");
                            cache.remove(&domain);
                            metrics.dns("refresh-failed");
                        }
                    }
                }
            }
        });
    }
}

impl CheckRunner for FacadeRunner {
    fn ready(&self) -> bool {
        self.checker.get().is_some()
    }

    fn check(&self, domain: String) -> CheckFuture {
        let checker = self.checker.get().cloned();
        let dns = self.dns.clone();
        let metrics = self.metrics.clone();
        let key = self.evidence_key.clone();
        let deadline = self.deadline;
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let Some(checker) = checker else {
                return Err("the transport (Tor) is not ready yet".into());
            };
            let discovery = match dns.fresh(&domain, tokio::time::Instant::now()) {
                Some(d) => {
                    metrics.dns("cached");
                    d
                }
                None => {
                    // First check of the domain (or after a failed refresh): DNS now.
                    let d = checker.discover(&domain).await.map_err(|e| e.to_string())?;
                    metrics.dns("inline");
                    let ttl = d.min_ttl();
                    let key = d.domain.clone();
                    dns.insert(&key, d, ttl, tokio::time::Instant::now(), true);
                    dns.fresh(&key, tokio::time::Instant::now())
                        .ok_or_else(|| format!("{domain}: the DNS discovery expired at once"))?
                }
            };
            let Some(key) = key else {
                return checker
                    .check_discovered(&discovery)
                    .await
                    .map(CheckOutcome::from)
                    .map_err(|e| e.to_string());
            };
            let (report, probes) = checker
                .check_discovered_with_probes(&discovery)
                .await
                .map_err(|e| e.to_string())?;
            if report.verdict == Verdict::Indeterminate {
                return Ok(report.into());
            }
            let budget = evidence_budget(deadline, started.elapsed());
            let evidence = signed_evidence(checker.options(), &report, &probes, budget, &key).await;
            Ok(CheckOutcome { report, evidence })
        })
    }
}

/// The time the bundle's gathering may take after a check that took `elapsed`: at most
/// [`EVIDENCE_BUDGET`], and ending a tenth of the deadline before the deadline; `None` when
/// no time is left.
fn evidence_budget(deadline: Duration, elapsed: Duration) -> Option<Duration> {
    let left = deadline
        .saturating_sub(elapsed)
        .saturating_sub(deadline / 10);
    Some(left.min(EVIDENCE_BUDGET)).filter(|b| *b >= Duration::from_secs(1))
}

/// Gathers (within `budget`) and signs the evidence bundle of a check. A gathering that
/// runs out of time gives a bundle without probes or chains whose `gaps` say why; `None`
/// only when signing fails (logged).
async fn signed_evidence(
    options: &CheckOptions,
    report: &Report,
    probes: &[certwatch::probe::Probe],
    budget: Option<Duration>,
    key: &Ed25519KeyPair,
) -> Option<Vec<u8>> {
    let bundle = match budget {
        Some(budget) => {
            match tokio::time::timeout(budget, gather_with_probes(options, report, probes)).await {
                Ok(bundle) => bundle,
                Err(_) => {
                    let why = format!(
                        "the DNSSEC chains were not gathered within {} s",
                        budget.as_secs()
                    );
                    tracing::warn!("evidence of {}: {why}", report.domain);
                    unjudged_bundle(options, report, probes, why)
                }
            }
        }
        None => {
            let why = "no time was left within the check deadline to gather the DNSSEC chains";
            tracing::warn!("evidence of {}: {why}", report.domain);
            unjudged_bundle(options, report, probes, why.to_owned())
        }
    };
    if !bundle.gaps.is_empty() {
        tracing::info!(
            "evidence of {} has {} gap(s): {}",
            report.domain,
            bundle.gaps.len(),
            bundle.gaps.join("; ")
        );
    }
    match bundle.sign(key) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!("cannot sign the evidence of {}: {e}", report.domain);
            None
        }
    }
}

/// A bundle without chains: every probe becomes a gap (no chain could judge it).
fn unjudged_bundle(
    options: &CheckOptions,
    report: &Report,
    probes: &[certwatch::probe::Probe],
    why: String,
) -> EvidenceBundle {
    let mut bundle = EvidenceBundle::for_report(report, options.clock.now_unix());
    bundle.gaps.push(why);
    for p in probes {
        bundle.gaps.push(format!(
            "probe of {} port {} at {} not included: no DNSSEC chain was gathered",
            p.target.id.target, p.target.id.port, p.target.address
        ));
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evidence_budget_ends_before_the_deadline() {
        let s = Duration::from_secs;
        assert_eq!(evidence_budget(s(300), s(10)), Some(EVIDENCE_BUDGET));
        // 300 s deadline, 30 s margin: 20 s left after 250 s.
        assert_eq!(evidence_budget(s(300), s(250)), Some(s(20)));
        assert_eq!(evidence_budget(s(300), s(270)), None);
        assert_eq!(evidence_budget(s(300), s(400)), None);
    }
}
