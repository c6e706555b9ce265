//! The SSRF guard: the service never connects to loopback, private, link-local, CGNAT,
//! multicast, documentation or other special-use addresses, neither for a domain's probes
//! (the facade refuses such targets unless `allow_private_targets`, with the same rule,
//! [`certwatch::special_use_address`]) nor for any outbound URL (issue 9's webhooks).
//!
//! For a URL, [`resolve_url`] resolves the host, checks **every** address, and returns the
//! checked addresses: the caller connects to one of them (pinning), never resolving the name
//! again, so a DNS answer cannot change between check and use. Redirects go through
//! [`resolve_url`] again.
//!
//! ```
//! use certwatch_server::guard::{check_ip, parse_url};
//! assert!(check_ip("10.0.0.1".parse().unwrap(), false).is_err());
//! assert!(check_ip("10.0.0.1".parse().unwrap(), true).is_ok());
//! assert!(check_ip("9.9.9.9".parse().unwrap(), false).is_ok());
//! let url = parse_url("https://hooks.example.org/x?y=1").unwrap();
//! assert_eq!((url.host.as_str(), url.port), ("hooks.example.org", 443));
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why an address or URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The address is special-use.
    #[error("{addr} is a {kind} address: refused")]
    SpecialUse {
        /// The address.
        addr: IpAddr,
        /// Which kind (loopback, private, ...).
        kind: &'static str,
    },
    /// The URL is not an `http` or `https` URL this guard accepts.
    #[error("{url:?}: {reason}")]
    BadUrl {
        /// The URL (truncated).
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The host did not resolve in time or at all.
    #[error("{host}: cannot resolve: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

/// Refuses a special-use address unless `allow_private`.
pub fn check_ip(addr: IpAddr, allow_private: bool) -> Result<(), GuardError> {
    match certwatch::special_use_address(addr) {
        Some(kind) if !allow_private => Err(GuardError::SpecialUse { addr, kind }),
        _ => Ok(()),
    }
}

/// The parts of an outbound URL the guard needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboundUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host: a name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port (default 80 or 443).
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

/// Parses an `http://` or `https://` URL without user information.
pub fn parse_url(url: &str) -> Result<OutboundUrl, GuardError> {
    let bad = |reason| GuardError::BadUrl {
        url: url.chars().take(200).collect(),
        reason,
    };
    if url.len() > 2048 {
        return Err(bad("longer than 2048 characters"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad("only http and https URLs are allowed")),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(bad("user information in URLs is not allowed"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if after.is_empty() => default_port,
            None => return Err(bad("bad authority")),
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
            None => (authority.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if port == 0 {
        return Err(bad("port 0"));
    }
    let path = if path.is_empty() || !path.starts_with('/') {
        format!("/{}", path.trim_start_matches('#'))
    } else {
        path.to_owned()
    };
    Ok(OutboundUrl {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        path: path.split('#').next().unwrap_or("/").to_owned(),
    })
}

/// A URL whose every address passed the guard: connect to one of `addrs` (never resolve
/// `url.host` again), sending `url.host` as the `Host` header and TLS server name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PinnedUrl {
    /// The parsed URL.
    pub url: OutboundUrl,
    /// The checked addresses.
    pub addrs: Vec<SocketAddr>,
}

/// Resolves `url`'s host (at most `timeout`), refuses it if **any** address is special-use
/// (unless `allow_private`), and returns the checked addresses to connect to.
pub async fn resolve_url(
    url: &str,
    allow_private: bool,
    timeout: Duration,
) -> Result<PinnedUrl, GuardError> {
    let parsed = parse_url(url)?;
    let addrs: Vec<SocketAddr> = if let Ok(ip) = parsed.host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, parsed.port)]
    } else {
        let host = parsed.host.clone();
        let lookup = tokio::net::lookup_host((host.clone(), parsed.port));
        match tokio::time::timeout(timeout, lookup).await {
            Err(_) => {
                return Err(GuardError::Resolve {
                    host,
                    reason: format!("no answer within {timeout:?}"),
                });
            }
            Ok(Err(e)) => {
                return Err(GuardError::Resolve {
                    host,
                    reason: e.to_string(),
                });
            }
            Ok(Ok(it)) => it.collect(),
        }
    };
    if addrs.is_empty() {
        return Err(GuardError::Resolve {
            host: parsed.host,
            reason: "no address".into(),
        });
    }
    for a in &addrs {
        check_ip(a.ip(), allow_private)?;
    }
    Ok(PinnedUrl { url: parsed, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(check_ip(ip, false).is_err(), "{a} should be refused");
            assert!(check_ip(ip, true).is_ok());
        }
        for a in ["9.9.9.9", "2a01:4f8::1", "1.1.1.1"] {
            assert!(check_ip(a.parse().unwrap(), false).is_ok(), "{a}");
        }
    }

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let u = parse_url("http://[::1]:8081/hook").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8081, "/hook")
        );
        let u = parse_url("HTTPS://Example.ORG").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("https", "example.org", 443, "/")
        );
        for bad in [
            "ftp://example.org/",
            "http://user:pw@example.org/",
            "example.org",
            "http://:80/",
            "http://example.org:99999/",
            "http://[::1/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn resolve_url_checks_every_address() {
        let d = Duration::from_secs(5);
        let e = resolve_url("http://127.0.0.1:9/x", false, d)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                GuardError::SpecialUse {
                    kind: "loopback",
                    ..
                }
            ),
            "{e}"
        );
        let p = resolve_url("http://127.0.0.1:9/x", true, d).await.unwrap();
        assert_eq!(p.addrs, vec!["127.0.0.1:9".parse().unwrap()]);
        // `localhost` resolves (from /etc/hosts) to loopback only: refused.
        let e = resolve_url("http://localhost/", false, d)
            .await
            .unwrap_err();
        assert!(matches!(e, GuardError::SpecialUse { .. }), "{e}");
    }
}
