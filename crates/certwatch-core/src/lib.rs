//! # certwatch-core
//!
//! The rules that decide whether an XMPP operator is told "you are being intercepted".
//!
//! This crate holds, as pure functions with no I/O and no async runtime: the TLSA record
//! model (RFC 6698, RFC 7218 names), the shared vocabulary of certwatch ([`Service`],
//! [`Endpoint`], [`ProbeTarget`], [`DnssecStatus`], [`Verdict`], [`Warning`]), pins from key
//! material, DANE matching (RFC 7671, RFC 7673), verdicts and their order, the confirmation
//! rules for several vantage points, pin-strength warnings, and the setup advice (zone-file
//! lines) an operator needs.
//!
//! ```
//! use certwatch_core::{Service, Tlsa, Verdict};
//!
//! let rec: Tlsa = "3 1 1 ABCD".parse()?;
//! assert_eq!(rec.to_string(), "3 1 1 abcd");
//! assert_eq!(Service::C2sStarttls.srv_owner("example.org"), "_xmpp-client._tcp.example.org");
//! assert_eq!(Verdict::Mismatch.exit_code(true), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod advice;
mod association;
mod confirm;
mod der;
mod dnssec;
mod endpoint;
mod judge;
mod keys;
mod matching;
mod pem;
mod service;
mod tlsa;
mod verdict;
mod warning;

pub use advice::{KeySeen, PinSource, SetupAdvice, pin_strength, setup_advice, tlsa_zone_line};
pub use association::{AssociationError, apply_matching, association_data, certificate_spki};
pub use confirm::{BadVantage, Classification, Confirmation, Vantage, VantageResult, confirm};
pub use dnssec::{DnssecState, DnssecStatus};
pub use endpoint::{
    AddressRrset, Endpoint, EndpointId, Origin, ProbeTarget, TlsaRrset, tlsa_owner,
};
pub use judge::{
    DomainVerdict, EndpointVerdict, FailureKind, PresentedChain, ProbeFailure, ProbeOutcome,
    Reason, TargetVerdict, combine_exit_codes, judge_endpoint, judge_target,
};
pub use keys::{
    KeyAlgorithm, KeyError, KeyFormat, KeyType, Pin, pin_from_key_material, spki_algorithm,
    spki_sha256,
};
pub use matching::{
    MatchOutcome, MatchPolicy, RejectedRecord, Rejection, UnusableRecord, match_chain,
};
/// Re-exported from `rustls-pki-types`: the validation time and PKIX roots of [`MatchPolicy`].
pub use rustls_pki_types::{TrustAnchor, UnixTime};
pub use service::{Service, StreamKind, UnknownService};
pub use tlsa::{CertUsage, MatchingType, Selector, Tlsa, TlsaLine, TlsaParseError, Unusable};
pub use verdict::Verdict;
pub use warning::{Warning, WarningCode};
