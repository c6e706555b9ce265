//! # certwatch-core
//!
//! The rules that decide whether an XMPP operator is told "you are being intercepted", as
//! pure functions: no I/O, no async runtime, no clock (time is a parameter). certwatch-dns
//! produces [`Endpoint`]s, certwatch-probe produces [`ProbeOutcome`]s, and this crate judges
//! them.
//!
//! | concept | items |
//! |---|---|
//! | vocabulary shared by every crate | [`Service`], [`Endpoint`], [`EndpointId`], [`ProbeTarget`], [`DnssecStatus`], [`Verdict`], [`Warning`] / [`WarningCode`] |
//! | TLSA records (RFC 6698, RFC 7218 names) | [`Tlsa`], [`TlsaLine`], [`CertUsage`], [`Selector`], [`MatchingType`], [`Unusable`] |
//! | pins from key material (bytes + label) | [`pin_from_key_material`], [`Pin`], [`association_data`], [`spki_sha256`] |
//! | DANE matching (RFC 7671, RFC 7673) | [`match_chain`], [`MatchPolicy`], [`MatchOutcome`] |
//! | verdicts and exit codes (REFERENCE §3) | [`judge_target`], [`judge_endpoint`], [`DomainVerdict`], [`combine_exit_codes`] |
//! | confirmation over vantage points | [`confirm`], [`VantageResult`], [`Confirmation`] |
//! | advice | [`pin_strength`], [`setup_advice`], [`tlsa_zone_line`] |
//!
//! ## The pin an operator publishes
//!
//! ```
//! use certwatch_core::pin_from_key_material;
//! // The CLI reads the file; the library takes its bytes and a label for errors.
//! let pem = include_bytes!("../tests/data/ed25519.pkcs8.pem");
//! let pin = pin_from_key_material(pem, "server.key")?;
//! let line = pin.zone_line("xmpp.example.net", 5222, 3600);
//! assert!(line.starts_with("_5222._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 "));
//! // Unreadable input names the label and the formats tried.
//! let err = pin_from_key_material(b"not a key", "server.key").unwrap_err();
//! assert!(err.to_string().starts_with("server.key: "));
//! # Ok::<(), certwatch_core::KeyError>(())
//! ```
//!
//! ## Judging what a server presented
//!
//! ```
//! use std::time::Duration;
//! use certwatch_core::*;
//!
//! let cert = include_bytes!("../tests/data/p256.cert.der").to_vec();
//! let pin = pin_from_key_material(&cert, "p256.cert.der")?;
//!
//! // What DNS said (certwatch-dns builds this): everything secure, one 3 1 1 record.
//! let mut ep = Endpoint::new("example.org", Service::C2sStarttls, "xmpp.example.net", 5222);
//! ep.ipv4 = AddressRrset::new(DnssecStatus::Secure, vec!["192.0.2.1".parse()?]);
//! ep.tlsa = TlsaRrset::new(ep.id.tlsa_owner(), DnssecStatus::Secure, vec![pin.tlsa()]);
//!
//! // What the probe saw (certwatch-probe builds this), and when.
//! let now = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));
//! let policy = MatchPolicy::new(&ep.domain, &ep.id.target, now);
//! let genuine = ProbeOutcome::Presented(PresentedChain::new(vec![cert.clone()], true));
//! let replayed = ProbeOutcome::Presented(PresentedChain::new(vec![cert], false));
//!
//! let ok = judge_endpoint(&ep, &[("192.0.2.1".parse()?, genuine)], &policy);
//! assert_eq!(ok.verdict, Verdict::Match);
//! let bad = judge_endpoint(&ep, &[("192.0.2.1".parse()?, replayed)], &policy);
//! assert_eq!((bad.verdict, bad.reason), (Verdict::Mismatch, Reason::UnprovenKey));
//!
//! let domain = DomainVerdict::new("example.org", vec![ok, bad]);
//! assert_eq!(domain.verdict, Verdict::Mismatch);
//! assert_eq!(domain.exit_code(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Before an alert: confirmation
//!
//! ```
//! use certwatch_core::{confirm, Classification, VantageResult, Verdict};
//! let seen = |v: &str, verdict| VantageResult::new(v.parse().unwrap(), verdict, None);
//! let c = confirm(&[
//!     seen("direct", Verdict::Mismatch),
//!     seen("tor:192.0.2.10", Verdict::Mismatch),
//!     seen("tor:192.0.2.11", Verdict::Indeterminate), // does not count
//!     seen("tor:192.0.2.12", Verdict::Match),
//! ]);
//! assert_eq!(c.classification, Classification::ServerSideInterception);
//! assert_eq!(c.verdict, Verdict::Mismatch);
//! ```
#![forbid(unsafe_code)]

mod advice;
mod association;
mod confirm;
mod der;
mod dnssec;
mod endpoint;
#[doc(hidden)]
pub mod fuzzing;
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
pub use confirm::{
    BadVantage, Classification, Confirmation, Vantage, VantageResult, agreed_key, confirm,
};
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
