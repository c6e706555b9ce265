//! # certwatch-dns
//!
//! XMPP service discovery (SRV, XEP-0368) and TLSA lookups with local DNSSEC validation,
//! built on hickory. Every RRset and every denial comes back with an honest status:
//! `secure`, `insecure`, `bogus` (with a reason an operator can act on) or `indeterminate`
//! (timeout, SERVFAIL, REFUSED: never "no records").
//!
//! * **Input.** [`DomainName::normalise`] takes the domain as typed (Unicode, upper case,
//!   trailing dot, spaces) and rejects IP literals and malformed names before any packet.
//! * **Validation.** Queries carry the CD bit, so a validating upstream (the usual system
//!   resolver) passes bogus data through instead of turning it into SERVFAIL; hickory's
//!   `DnssecDnsHandle` validates locally from the configured [`TrustAnchor`], and the raw
//!   answers are inspected to explain a failure (expired RRSIG, DS without DNSKEY, ...).
//! * **Discovery.** [`Resolver::discover`] looks up the four SRV RRsets, the addresses and
//!   TLSA RRsets of every target and the CAA RRset concurrently, with one shared cache, and
//!   returns a [`ServiceMap`] holding certwatch-core [`Endpoint`](certwatch_core::Endpoint)s
//!   and every record as seen.
//!
//! ```no_run
//! use certwatch_dns::{Resolver, ResolverConfig};
//!
//! # async fn run() -> Result<(), certwatch_dns::Error> {
//! // Explicit servers; `ResolverConfig::from_system()` reads /etc/resolv.conf instead.
//! let resolver = Resolver::new(ResolverConfig::from_servers(&["127.0.0.1:53"])?)?;
//! let map = resolver.discover("Exämple.org.").await?;
//! for ep in &map.endpoints {
//!     println!(
//!         "{} srv={} tlsa={} ({} records) v4={:?}",
//!         ep.id,
//!         ep.srv_dnssec.as_str(),
//!         ep.tlsa.dnssec.as_str(),
//!         ep.tlsa.records.len(),
//!         ep.ipv4.addresses
//!     );
//! }
//! println!("{} queries, {} sequential round trips", map.stats.queries, map.stats.sequential_round_trips);
//! # Ok(()) }
//! ```
//!
//! Every [`RrsetLookup`] says how it was answered ([`AnswerKind`]) and with which status; a
//! [`ServiceMap`] also carries [`QueryStats`]: a secure domain with four services costs two
//! sequential round trips, because the trust chain is fetched beside the SRV queries.
//!
//! The library reads no environment variables and no files on its own;
//! [`ResolverConfig::from_system`] is the one named constructor that reads the system's
//! resolver configuration. Time is injected through [`Clock`]: signature validation, expiry
//! warnings and bogus explanations all read it.
#![forbid(unsafe_code)]

mod anchors;
mod caa;
mod clock;
mod config;
mod diagnose;
mod discover;
mod ede;
mod error;
mod evidence;
mod lookup;
mod name;
mod resolver;
mod rrset;
mod runtime;
mod wire;

pub use caa::{CaaIssuer, CaaReport, advice as caa_advice, parse_issue_value};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{ResolverConfig, TrustAnchor, parse_server};
pub use discover::{
    HostLookup, QueryStats, ServiceDiscovery, ServiceMap, ServiceOutcome, SrvRecord,
};
pub use error::Error;
pub use evidence::{
    ChainCollector, ChainError, DnssecChain, MAX_CHAIN_BYTES, MAX_CHAIN_CNAMES, MAX_CHAIN_DEPTH,
    MAX_CHAIN_RECORDS, SigFault, ValidatedRrset, verify_chain,
};
pub use name::{DomainName, NameError};
pub use resolver::{Resolver, RrType};
pub use rrset::{AnswerKind, RecordSeen, RrsetLookup, SignatureSeen};
pub use wire::WireQuery;

#[doc(hidden)]
pub use evidence::fuzz_chain;
#[doc(hidden)]
pub use lookup::fuzz_response;
