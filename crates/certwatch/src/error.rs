//! The facade's error type: only for checks that could not run at all. A verdict, even
//! `mismatch` or `bogus`, is data in a [`Report`](crate::Report), never an error.

/// Why a check could not produce a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The domain as typed is not a usable XMPP domain name (nothing was sent).
    #[error("{input:?}: invalid domain: {source}")]
    InvalidDomain {
        /// The domain as typed.
        input: String,
        /// Why it was rejected.
        source: certwatch_dns::NameError,
    },
    /// No configured DNS server answered anything, not even a query for the root zone.
    #[error(
        "{domain}: the DNS resolver {servers} is unreachable: no answer to any query (the root SOA included)"
    )]
    ResolverUnreachable {
        /// The domain being checked (A-label).
        domain: String,
        /// The servers that were tried, comma-separated.
        servers: String,
    },
    /// The resolver configuration or trust anchor is unusable.
    #[error("{domain}: DNS resolver setup failed: {source}")]
    Resolver {
        /// The domain being checked (as typed, when it could not be normalised).
        domain: String,
        /// The resolver's error.
        source: certwatch_dns::Error,
    },
    /// The resolver could not be set up (no server, an unparsable trust anchor...).
    #[error("DNS resolver setup failed: {0}")]
    ResolverSetup(certwatch_dns::Error),
    /// The options are inconsistent (for example a concurrency of 0).
    #[error("invalid check options: {0}")]
    Options(String),
}
