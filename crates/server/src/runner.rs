//! The production [`CheckRunner`]: the facade's [`certwatch::Checker`] over the configured
//! transport. With `via = tor` the embedded Tor client bootstraps in the background (its
//! progress goes to the metrics) while the site already serves; checks wait until it is
//! ready.
//!
//! DNS runs on its own schedule ([`crate::dns_cache`]): a check probes with the domain's
//! cached discovery while its TTL lasts, and a background task refreshes discoveries when
//! their TTLs run out, so DNS queries do not precede each probe.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use certwatch::{CheckOptions, Checker, Discovery, ResolverConfig, Transport, TrustAnchor};

use crate::dns_cache::{DnsCache, DnsSchedule};
use crate::random::{Random, SystemRandom};

use crate::config::{Config, Via};
use crate::metrics::{Metrics, TorState};
use crate::scheduler::{CheckFuture, CheckRunner};

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
}

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
        Box::pin(async move {
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
            checker
                .check_discovered(&discovery)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
