//! Resolver configuration: which servers, which trust anchors, which limits.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, Clock};
use crate::error::Error;

/// Where the DNSSEC chain of trust starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrustAnchor {
    /// The IANA root key-signing keys compiled into hickory.
    #[default]
    IanaRoot,
    /// DNSKEY records in presentation format (for example an ldns `.key` file's contents),
    /// one per line: `. 3600 IN DNSKEY 257 3 13 <base64>`.
    DnskeyText(String),
    /// DS records in presentation format (`. IN DS <tag> <alg> <digest type> <hex>`). The
    /// DNSKEYs they name are fetched once and checked against the digest before use.
    DsText(String),
}

impl TrustAnchor {
    /// The anchor a trust-anchor file holds: DS lines make [`TrustAnchor::DsText`], anything
    /// else is taken as DNSKEY lines ([`TrustAnchor::DnskeyText`]). `;` starts a comment.
    /// Nothing is parsed yet; [`TrustAnchor::validate`] does that.
    ///
    /// ```
    /// use certwatch_dns::TrustAnchor;
    /// let ds = TrustAnchor::from_file_text(". 3600 IN DS 54538 13 2 159eaeff");
    /// assert!(matches!(ds, TrustAnchor::DsText(_)));
    /// let key = TrustAnchor::from_file_text(". IN DNSKEY 257 3 13 abcd ; not a DS");
    /// assert!(matches!(key, TrustAnchor::DnskeyText(_)));
    /// ```
    pub fn from_file_text(text: &str) -> TrustAnchor {
        let is_ds = text
            .lines()
            .map(|l| l.split(';').next().unwrap_or(""))
            .any(|l| l.split_whitespace().any(|w| w.eq_ignore_ascii_case("DS")));
        if is_ds {
            TrustAnchor::DsText(text.to_owned())
        } else {
            TrustAnchor::DnskeyText(text.to_owned())
        }
    }

    /// Checks that anchor text parses, without any network access (a DS anchor's DNSKEYs
    /// are fetched and matched at the first check).
    ///
    /// ```
    /// use certwatch_dns::TrustAnchor;
    /// assert!(TrustAnchor::IanaRoot.validate().is_ok());
    /// assert!(TrustAnchor::DsText(". IN DS 20326 8 2 E06D44B8".into()).validate().is_ok());
    /// assert!(TrustAnchor::DsText("not a DS".into()).validate().is_err());
    /// assert!(TrustAnchor::DnskeyText(". IN DNSKEY 257 3 13 !!!".into()).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            TrustAnchor::IanaRoot => Ok(()),
            TrustAnchor::DsText(t) => crate::anchors::parse_ds(t).map(|_| ()),
            TrustAnchor::DnskeyText(t) => {
                <hickory_proto::dnssec::TrustAnchors as std::str::FromStr>::from_str(t)
                    .map(|_| ())
                    .map_err(|e| Error::TrustAnchor {
                        what: "DNSKEY",
                        detail: e.to_string(),
                    })
            }
        }
    }
}

/// How the resolver reaches DNS and how strict it is. Build it with [`ResolverConfig::new`]
/// (explicit servers) or [`ResolverConfig::from_system`] (reads `/etc/resolv.conf`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// The servers queried, each over UDP with TCP fallback (truncation or UDP failure).
    /// Queries carry CD=1 so that a validating server passes bogus data through and the
    /// local validator can name the fault.
    pub servers: Vec<SocketAddr>,
    /// Timeout of one query to one server.
    pub timeout: Duration,
    /// How many times a failed query is retried.
    pub retries: usize,
    /// Upper bound on the time one RRset lookup (including its trust-chain fetches) may take.
    pub lookup_deadline: Duration,
    /// Where validation starts.
    pub trust_anchor: TrustAnchor,
    /// NSEC3 iterations above this make a denial insecure (RFC 9276; hickory's default 100).
    pub nsec3_soft_limit: u16,
    /// NSEC3 iterations above this make a denial bogus (hickory's default 500).
    pub nsec3_hard_limit: u16,
    /// `signature-expiring` fires when less than this fraction of an RRSIG's lifetime is left...
    pub expiry_fraction: f64,
    /// ...and less than this much time.
    pub expiry_window: Duration,
    /// The clock used for signature validation, expiry warnings and bogus explanations.
    pub clock: Arc<dyn Clock>,
}

impl ResolverConfig {
    /// A configuration with these servers and the defaults: 2 s per query, 1 retry, a 10 s
    /// deadline per RRset, the IANA root trust anchor, NSEC3 limits 100/500, and
    /// `signature-expiring` at a quarter of the lifetime and 7 days.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        ResolverConfig {
            servers,
            timeout: Duration::from_secs(2),
            retries: 1,
            lookup_deadline: Duration::from_secs(10),
            trust_anchor: TrustAnchor::IanaRoot,
            nsec3_soft_limit: 100,
            nsec3_hard_limit: 500,
            expiry_fraction: 0.25,
            expiry_window: Duration::from_secs(7 * 24 * 3600),
            clock: clock::system(),
        }
    }

    /// Parses servers given as `IP` or `IP:PORT` (IPv6 with a port in brackets:
    /// `[2001:db8::1]:53`); the port defaults to 53.
    ///
    /// ```
    /// let c = certwatch_dns::ResolverConfig::from_servers(&["127.0.0.1:5353", "::1"]).unwrap();
    /// assert_eq!(c.servers[0].port(), 5353);
    /// assert_eq!(c.servers[1].port(), 53);
    /// ```
    pub fn from_servers<S: AsRef<str>>(servers: &[S]) -> Result<Self, Error> {
        let parsed = servers
            .iter()
            .map(|s| parse_server(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Err(Error::NoServers);
        }
        Ok(Self::new(parsed))
    }

    /// The name servers of the system configuration (`/etc/resolv.conf` on Unix). This is
    /// the only constructor that reads the system's state.
    pub fn from_system() -> Result<Self, Error> {
        let (conf, _) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| Error::SystemConfig(e.to_string()))?;
        let mut servers: Vec<SocketAddr> = Vec::new();
        for ns in conf.name_servers() {
            let port = ns.connections.first().map(|c| c.port).unwrap_or(53);
            let addr = SocketAddr::new(ns.ip, port);
            if !servers.contains(&addr) {
                servers.push(addr);
            }
        }
        if servers.is_empty() {
            return Err(Error::NoServers);
        }
        Ok(Self::new(servers))
    }

    /// Replaces the clock (tests, replays).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the trust anchor.
    pub fn with_trust_anchor(mut self, anchor: TrustAnchor) -> Self {
        self.trust_anchor = anchor;
        self
    }

    /// Sets the per-query timeout and the retry count.
    pub fn with_timeout(mut self, timeout: Duration, retries: usize) -> Self {
        self.timeout = timeout;
        self.retries = retries;
        self
    }
}

/// Parses one `IP[:PORT]` server address.
pub fn parse_server(s: &str) -> Result<SocketAddr, Error> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| Error::BadServer(s.to_owned()))
}
