//! The TLS parameters of direct TLS (XEP-0368) and of the handshake after STARTTLS.

use crate::config::{Config, StreamKind};

/// The ALPN protocol id of client-to-server direct TLS (XEP-0368).
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";
/// The ALPN protocol id of server-to-server direct TLS (XEP-0368).
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

/// What a TLS client must send to an XMPP service: the SNI and the ALPN protocol.
///
/// The SNI is always the **service domain** (for example `example.org`), never the SRV
/// target. The ALPN protocol is required on direct-TLS ports (`_xmpps-client`,
/// `_xmpps-server`); after STARTTLS, sending it is harmless, and the SNI is the same.
///
/// ```
/// use certwatch_xmpp::{DirectTls, StreamKind};
///
/// let p = DirectTls::new(&StreamKind::Client, "example.org");
/// assert_eq!(p.server_name, "example.org");
/// assert_eq!(p.alpn, b"xmpp-client");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectTls {
    /// The TLS server name indication: the service domain.
    pub server_name: String,
    /// The ALPN protocol id to offer (one protocol).
    pub alpn: &'static [u8],
}

impl DirectTls {
    /// The parameters for a `kind` stream to the service domain `domain`.
    pub fn new(kind: &StreamKind, domain: &str) -> Self {
        DirectTls {
            server_name: domain.strip_suffix('.').unwrap_or(domain).to_owned(),
            alpn: match kind {
                StreamKind::Client => ALPN_XMPP_CLIENT,
                StreamKind::Server { .. } => ALPN_XMPP_SERVER,
            },
        }
    }

    /// The parameters matching a negotiation configuration.
    pub fn for_config(config: &Config) -> Self {
        Self::new(&config.kind, &config.domain)
    }

    /// The ALPN list in the shape TLS libraries take (`rustls::ClientConfig::alpn_protocols`).
    pub fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        vec![self.alpn.to_vec()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_streams_use_xmpp_server_and_strip_the_root_dot() {
        let p = DirectTls::for_config(&Config::server("example.org.", None));
        assert_eq!(p.server_name, "example.org");
        assert_eq!(p.alpn_protocols(), vec![b"xmpp-server".to_vec()]);
    }
}
