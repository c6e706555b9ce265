//! The four XMPP services that certwatch checks (REFERENCE §1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the four XMPP services a domain may publish.
///
/// Serialised (and displayed) as `c2s-starttls`, `c2s-direct`, `s2s-starttls`, `s2s-direct`.
///
/// ```
/// use certwatch_core::Service;
/// let s: Service = "c2s-starttls".parse().unwrap();
/// assert_eq!(s.srv_prefix(), "_xmpp-client._tcp");
/// assert_eq!(s.default_port(), Some(5222));
/// assert!(!s.is_direct_tls());
/// assert_eq!(Service::S2sDirect.alpn(), "xmpp-server");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// Client-to-server, STARTTLS on the plain port (RFC 6120 §5), `_xmpp-client._tcp`.
    C2sStarttls,
    /// Client-to-server, TLS from the first byte (XEP-0368), `_xmpps-client._tcp`.
    C2sDirect,
    /// Server-to-server, STARTTLS (RFC 6120 §5), `_xmpp-server._tcp`.
    S2sStarttls,
    /// Server-to-server, TLS from the first byte (XEP-0368), `_xmpps-server._tcp`.
    S2sDirect,
}

/// Which XMPP stream a service speaks: the client or the server namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamKind {
    /// `jabber:client`.
    Client,
    /// `jabber:server`.
    Server,
}

impl StreamKind {
    /// The stream's default namespace: `jabber:client` or `jabber:server`.
    pub fn namespace(self) -> &'static str {
        match self {
            StreamKind::Client => "jabber:client",
            StreamKind::Server => "jabber:server",
        }
    }
}

impl Service {
    /// All four services, in a stable order.
    pub const ALL: [Service; 4] = [
        Service::C2sStarttls,
        Service::C2sDirect,
        Service::S2sStarttls,
        Service::S2sDirect,
    ];

    /// The kebab-case name used in the JSON, the CLI and the docs (`c2s-starttls`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Service::C2sStarttls => "c2s-starttls",
            Service::C2sDirect => "c2s-direct",
            Service::S2sStarttls => "s2s-starttls",
            Service::S2sDirect => "s2s-direct",
        }
    }

    /// The SRV owner prefix, without the domain: `_xmpp-client._tcp`, `_xmpps-client._tcp`, ...
    pub fn srv_prefix(self) -> &'static str {
        match self {
            Service::C2sStarttls => "_xmpp-client._tcp",
            Service::C2sDirect => "_xmpps-client._tcp",
            Service::S2sStarttls => "_xmpp-server._tcp",
            Service::S2sDirect => "_xmpps-server._tcp",
        }
    }

    /// The SRV owner name for `domain` (an A-label without trailing dot), e.g.
    /// `_xmpp-client._tcp.example.org`.
    pub fn srv_owner(self, domain: &str) -> String {
        format!("{}.{}", self.srv_prefix(), domain)
    }

    /// The port used when the domain publishes no SRV RRset: 5222 and 5269 for the STARTTLS
    /// services; `None` for the direct-TLS services, which have no fallback (XEP-0368).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Service::C2sStarttls => Some(5222),
            Service::S2sStarttls => Some(5269),
            Service::C2sDirect | Service::S2sDirect => None,
        }
    }

    /// The conventional port of the service (5222, 5223, 5269, 5270), used only for display
    /// and examples; never as a fallback for the direct-TLS services.
    pub fn conventional_port(self) -> u16 {
        match self {
            Service::C2sStarttls => 5222,
            Service::C2sDirect => 5223,
            Service::S2sStarttls => 5269,
            Service::S2sDirect => 5270,
        }
    }

    /// True for the services that start TLS on the first byte (XEP-0368).
    pub fn is_direct_tls(self) -> bool {
        matches!(self, Service::C2sDirect | Service::S2sDirect)
    }

    /// The ALPN protocol id: `xmpp-client` or `xmpp-server`.
    pub fn alpn(self) -> &'static str {
        match self.stream_kind() {
            StreamKind::Client => "xmpp-client",
            StreamKind::Server => "xmpp-server",
        }
    }

    /// Whether the service speaks the client or the server stream.
    pub fn stream_kind(self) -> StreamKind {
        match self {
            Service::C2sStarttls | Service::C2sDirect => StreamKind::Client,
            Service::S2sStarttls | Service::S2sDirect => StreamKind::Server,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a service name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown service {input:?}: expected one of c2s-starttls, c2s-direct, s2s-starttls, s2s-direct"
)]
pub struct UnknownService {
    /// The text that was given.
    pub input: String,
}

impl FromStr for Service {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|svc| svc.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownService {
                input: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Service::ALL {
            assert_eq!(s.as_str().parse::<Service>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Service>(&json).unwrap(), s);
        }
        assert!("xmpp".parse::<Service>().is_err());
    }

    #[test]
    fn facts_match_reference_table() {
        assert_eq!(
            Service::C2sDirect.srv_owner("example.org"),
            "_xmpps-client._tcp.example.org"
        );
        assert_eq!(Service::S2sStarttls.default_port(), Some(5269));
        assert_eq!(Service::S2sDirect.default_port(), None);
        assert!(Service::C2sDirect.is_direct_tls());
        assert_eq!(
            Service::S2sStarttls.stream_kind().namespace(),
            "jabber:server"
        );
        assert_eq!(Service::C2sStarttls.alpn(), "xmpp-client");
    }
}
