//! What a check needs to know: how to reach DNS and the servers, which services, how long,
//! how many probes at once, and what time it is.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use certwatch_core::Service;
use certwatch_dns::{Clock, ResolverConfig, SystemClock};
use certwatch_probe::{KeyRequest, ProbeOptions, Transport};

use crate::CheckError;

/// The options of a check. Build with [`CheckOptions::new`] and adjust the public fields or
/// the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use certwatch::{CheckOptions, ResolverConfig, Service, Transport};
///
/// let resolver = ResolverConfig::from_servers(&["127.0.0.1:53"]).unwrap();
/// let options = CheckOptions::new(Transport::Direct, resolver)
///     .with_services(vec![Service::C2sStarttls])
///     .with_timeout(Duration::from_secs(10));
/// assert_eq!(options.concurrency, 64);
/// assert!(!options.allow_private_targets);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckOptions {
    /// How probes reach the servers: [`Transport::Direct`], [`Transport::Socks`] (an external
    /// Tor), or `Transport::Tor` (an embedded arti client handle; cargo feature `tor`).
    pub transport: Transport,
    /// The DNS servers, the trust anchor and the DNS limits.
    pub resolver: ResolverConfig,
    /// The services to check; `None` checks every service DNS publishes.
    pub services: Option<Vec<Service>>,
    /// The budget of each phase of a probe (connect, XMPP negotiation, TLS handshake), and an
    /// upper bound on the time one DNS lookup may take.
    pub timeout: Duration,
    /// At most this many probes run at once (default 64).
    pub concurrency: usize,
    /// Connect to loopback, private, link-local and other special-use addresses found in DNS
    /// (default `false`: such a target is not probed and its entry says why). Tests and
    /// private deployments set it.
    pub allow_private_targets: bool,
    /// The key types probed on every address (default: EC, then RSA).
    pub key_requests: Vec<KeyRequest>,
    /// Before reporting a mismatch, re-probe every mismatching (endpoint, address, key type)
    /// target in this many rounds of distinct Tor exits (plus directly, when the transport is
    /// not direct) and classify each per REFERENCE §3; 0 (the default) reports what the check
    /// saw. Over Tor or SOCKS, an address of a DANE endpoint that answered with a protocol
    /// error (a STARTTLS an exit may have stripped) is confirmed the same way, with every key
    /// type ([`Checker::check`](crate::Checker::check)). See
    /// [`Checker::survey`](crate::Checker::survey) for how rounds pick exits.
    pub confirm: usize,
    /// The TTL of the zone-file lines in the setup advice (default 3600).
    pub ttl: u32,
    /// The time source for `checked_at`, certificate validity (DANE-TA, PKIX) and DNSSEC
    /// expiry warnings.
    pub clock: Arc<dyn Clock>,
}

impl CheckOptions {
    /// Options with this transport and resolver, and the defaults: every published service,
    /// a 20 s timeout, 64 concurrent probes, no private targets, EC and RSA probes, TTL
    /// 3600, the system clock.
    pub fn new(transport: Transport, resolver: ResolverConfig) -> Self {
        CheckOptions {
            transport,
            resolver,
            services: None,
            timeout: Duration::from_secs(20),
            concurrency: 64,
            allow_private_targets: false,
            key_requests: KeyRequest::DEFAULT_SET.to_vec(),
            confirm: 0,
            ttl: 3600,
            clock: Arc::new(SystemClock),
        }
    }

    /// Restricts the check to these services.
    pub fn with_services(mut self, services: Vec<Service>) -> Self {
        self.services = Some(services);
        self
    }

    /// Sets the per-phase probe timeout (and DNS lookup bound).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many probes may run at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Allows (or refuses) loopback, private and other special-use target addresses.
    pub fn with_private_targets(mut self, allow: bool) -> Self {
        self.allow_private_targets = allow;
        self
    }

    /// Confirms each mismatching target (and, over Tor or SOCKS, each protocol error on a
    /// DANE endpoint) through `n` distinct exits (plus direct) before reporting it.
    pub fn with_confirm(mut self, n: usize) -> Self {
        self.confirm = n;
        self
    }

    /// Replaces the clock (tests, replays).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The probe options these options imply.
    pub(crate) fn probe_options(&self) -> ProbeOptions {
        let mut p = ProbeOptions::default();
        p.connect_timeout = self.timeout;
        p.xmpp_timeout = self.timeout;
        p.handshake_timeout = self.timeout;
        p.key_requests.clone_from(&self.key_requests);
        p
    }

    /// The resolver configuration these options imply (clock and lookup bound applied).
    pub(crate) fn resolver_config(&self) -> ResolverConfig {
        let mut r = self.resolver.clone().with_clock(self.clock.clone());
        if self.timeout < r.lookup_deadline {
            r.lookup_deadline = self.timeout;
        }
        r
    }

    pub(crate) fn validate(&self) -> Result<(), CheckError> {
        if self.concurrency == 0 {
            return Err(CheckError::Options("concurrency must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(CheckError::Options("timeout must be positive".into()));
        }
        if self.key_requests.is_empty() {
            return Err(CheckError::Options("no key type to probe".into()));
        }
        Ok(())
    }
}

/// Parses a SOCKS5 proxy URL, `socks5://HOST:PORT` or `socks5h://HOST:PORT`, where HOST is
/// an IP address (IPv6 in brackets) or `localhost`. Probes always send the validated target
/// address to the proxy, so the two schemes behave the same.
///
/// ```
/// let addr = certwatch::parse_socks5_url("socks5://127.0.0.1:9050").unwrap();
/// assert_eq!(addr.port(), 9050);
/// assert!(certwatch::parse_socks5_url("socks5://[::1]:9050").is_ok());
/// assert!(certwatch::parse_socks5_url("http://127.0.0.1:9050").is_err());
/// assert!(certwatch::parse_socks5_url("socks5://tor.example:9050").is_err());
/// ```
pub fn parse_socks5_url(url: &str) -> Result<SocketAddr, CheckError> {
    let bad = |why: &str| CheckError::Options(format!("SOCKS5 proxy {url:?}: {why}"));
    let rest = url
        .strip_prefix("socks5://")
        .or_else(|| url.strip_prefix("socks5h://"))
        .ok_or_else(|| bad("expected socks5://HOST:PORT"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if let Ok(sa) = rest.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("a port is required (HOST:PORT)"))?;
    let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port));
    }
    Err(bad(
        "HOST must be an IP address or localhost (no name is resolved for the proxy)",
    ))
}
