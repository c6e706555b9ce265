//! The crate's error type. A DNS answer, even a bogus or missing one, is data, not an error:
//! errors are for unusable input and configuration.

use crate::name::NameError;

/// What went wrong before any DNS answer could be judged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The domain as typed is not a usable host name (no packet was sent).
    #[error("invalid domain: {0}")]
    Name(#[from] NameError),
    /// A server address is not `IP` or `IP:PORT`.
    #[error("`{0}` is not a DNS server address (expected IP or IP:PORT)")]
    BadServer(String),
    /// No server to ask.
    #[error("no DNS server configured")]
    NoServers,
    /// The system resolver configuration could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
    /// The trust anchor text could not be parsed.
    #[error("cannot parse the trust anchor ({what}): {detail}")]
    TrustAnchor {
        /// `DNSKEY` or `DS`.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// DS trust anchors were given, but no DNSKEY at their owner matched them.
    #[error("no DNSKEY at {owner} matches the configured DS trust anchor: {detail}")]
    DsAnchorUnmatched {
        /// The DS owner (usually `.`).
        owner: String,
        /// What was fetched.
        detail: String,
    },
}
