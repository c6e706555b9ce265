//! # certwatch
//!
//! Detects TLS interception of XMPP servers: it compares the key a server proves it holds
//! (after STARTTLS or direct TLS, probed directly, through SOCKS or through embedded Tor) with
//! the DANE TLSA records its operator published in DNSSEC-signed DNS.
//!
//! This facade is what the `certwatch` CLI, the certwatch server and embedders depend on. It
//! re-exports the four libraries and holds the pipeline of one check:
//!
//! 1. normalise the domain and discover its endpoints with DNSSEC statuses
//!    ([`dns`], certwatch-dns);
//! 2. probe every (endpoint, address, key type) concurrently with a bound, on one Tor
//!    circuit isolation per check ([`probe`], certwatch-probe);
//! 3. judge each target and endpoint, and the domain as the worst of them ([`core`],
//!    certwatch-core);
//! 4. assemble a [`Report`]: verdict, one entry per probe target and key type, warnings, and
//!    setup advice (zone lines for endpoints without TLSA records, "enable DNSSEC" naming the
//!    insecure RRset).
//!
//! With [`CheckOptions::confirm`] set, every mismatching target (and, over Tor or SOCKS,
//! every protocol error on a DANE endpoint, which a hostile exit can cause by stripping
//! STARTTLS) is re-probed from several vantage points (distinct Tor exits, then direct) and
//! classified with core's rules before it is reported. [`Checker::survey`] records which key each vantage point saw on each
//! target (the basis of zone lines taken from a live probe), and
//! [`Checker::check_with_probes`] (or [`Checker::check_discovered_with_probes`], on a cached
//! [`Discovery`]) returns the probes behind a report (for evidence bundles).
//!
//! A verdict is data, not an error: a mismatch is `Ok(report)` with
//! `report.verdict == Verdict::Mismatch`. [`CheckError`] is for an invalid domain, an
//! unreachable resolver or unusable options. The [`Report`] serialises to the versioned JSON
//! schema of `docs/json.md`.
//!
//! ```no_run
//! use certwatch::{CheckOptions, ResolverConfig, Transport, TrustAnchor, Verdict};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let resolver = ResolverConfig::from_servers(&["127.0.0.1:53"])?
//!     .with_trust_anchor(TrustAnchor::IanaRoot);
//! // An external Tor; `Transport::Tor(TorTransport)` (feature `tor`) embeds arti instead.
//! let options = CheckOptions::new(
//!     Transport::Socks { proxy: certwatch::parse_socks5_url("socks5://127.0.0.1:9050")? },
//!     resolver,
//! );
//! let report = certwatch::check("Exämple.org", &options).await?;
//! println!("{}", report.to_json_line());
//! if report.verdict == Verdict::Mismatch {
//!     eprintln!("{} presents a key its TLSA records do not pin", report.domain);
//! }
//! std::process::exit(report.exit_code().into());
//! # }
//! ```
//!
//! Nothing in this example needs the network until `check` runs; the options themselves are
//! plain data:
//!
//! ```
//! use certwatch::{CheckOptions, ResolverConfig, Service, Transport, Verdict};
//!
//! let options = CheckOptions::new(
//!     Transport::Direct,
//!     ResolverConfig::from_servers(&["192.0.2.53"]).unwrap(),
//! )
//! .with_services(vec![Service::C2sStarttls, Service::S2sStarttls])
//! .with_concurrency(8);
//! assert_eq!(options.concurrency, 8);
//! // Loopback, private and other special-use addresses from DNS are refused by default.
//! assert!(!options.allow_private_targets);
//! assert_eq!(certwatch::special_use_address("10.0.0.1".parse().unwrap()), Some("private"));
//! // Exit codes follow REFERENCE §3.
//! assert_eq!(Verdict::Mismatch.exit_code(true), 2);
//! ```
//!
//! The library never prints, exits, reads environment variables or files: the frontends
//! read files (trust anchors, arti configuration) and pass their contents.
//!
//! Cargo features: `tor` (default) enables the embedded arti transport
//! (`Transport::Tor`, `TorTransport`); `--no-default-features` leaves arti out of the
//! tree.
#![forbid(unsafe_code)]

mod addresses;
mod check;
mod discovery;
mod error;
pub mod evidence;
mod options;
mod report;
mod survey;

pub use certwatch_core as core;
pub use certwatch_dns as dns;
pub use certwatch_probe as probe;
pub use certwatch_xmpp as xmpp;

pub use addresses::special_use_address;
pub use check::{Checker, check};
pub use discovery::Discovery;
pub use error::CheckError;
pub use options::{CheckOptions, parse_socks5_url};
pub use report::{
    ConfirmationReport, EndpointReport, ProbeErrorReport, Report, SCHEMA_VERSION, Setup,
};
pub use survey::{KeySighting, KeySurvey, TargetKeys};

pub use certwatch_core::{
    Classification, DnssecState, KeyType, Reason, Service, Tlsa, Vantage, Verdict, Warning,
    WarningCode, combine_exit_codes,
};
pub use certwatch_dns::{Clock, FixedClock, ResolverConfig, SystemClock, TrustAnchor};
#[cfg(feature = "tor")]
pub use certwatch_probe::{BootstrapProgress, TorSetupError, TorTransport};
pub use certwatch_probe::{KeyRequest, Transport};
