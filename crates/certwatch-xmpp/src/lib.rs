//! # certwatch-xmpp
//!
//! A minimal, hostile-proof XMPP stream negotiator. It takes a raw byte stream to an XMPP
//! server, opens a client (`jabber:client`) or server (`jabber:server`) stream, reads the
//! features, asks for STARTTLS (RFC 6120 §5) and stops at **the exact byte where TLS
//! begins**, reporting what the server said on the way. It also gives the parameters of
//! direct TLS (XEP-0368), reads the features again after TLS (SASL `-PLUS` mechanisms and
//! XEP-0440 channel-binding types), and has a minimal server-side STARTTLS acceptor for tests
//! and fixtures.
//!
//! ## Shape
//!
//! - A **sans-I/O core**: [`ClientNegotiator`] (and [`ServerNegotiator`]) is fed bytes with
//!   `handle_input` and returns [`Action`]s: bytes to send, start TLS now, done. It reads no
//!   clock and does no I/O, so it can be driven by any runtime, fuzzed and benchmarked.
//! - A **thin tokio adapter** (feature `tokio`, on by default): [`negotiate`] runs the core
//!   over any `AsyncRead + AsyncWrite`, under a per-step timeout and a total deadline
//!   ([`Timeouts`]), and returns the untouched stream plus a [`Negotiation`] record.
//!
//! ## Example
//!
//! A client negotiates with the crate's own acceptor over an in-memory pipe:
//!
//! ```
//! use certwatch_xmpp::{accept, negotiate, Config, ServerConfig, StreamKind, Timeouts};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (client_io, server_io) = tokio::io::duplex(4096);
//! let server = tokio::spawn(async move {
//!     let config = ServerConfig::new(StreamKind::Client, "example.org");
//!     accept(server_io, &config, &Timeouts::default()).await
//! });
//!
//! let config = Config::client("example.org");
//! let (_tls_begins_here, negotiation) =
//!     negotiate(client_io, &config, &Timeouts::default()).await?;
//!
//! let header = negotiation.header.as_ref().unwrap();
//! assert_eq!(header.from.as_deref(), Some("example.org"));
//! assert_eq!(header.version.as_deref(), Some("1.0"));
//! let features = negotiation.features.as_ref().unwrap();
//! assert!(features.starttls && features.starttls_required);
//! assert!(features.sasl_mechanisms.is_empty()); // nothing offered in the clear
//! assert!(negotiation.proceeded);
//! assert!(server.await?.is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! ## What the negotiator refuses
//!
//! Every server behaviour that does not lead to TLS ends in its own [`Error`] variant:
//! `<failure/>`, stream errors (condition and text), `see-other-host` (reported, **never
//! followed**: the other host has no DNSSEC pedigree), STARTTLS not offered, a stream closed
//! early, bytes after `<proceed/>` (a STARTTLS injection, CVE-2011-0411 class: an error,
//! never dropped and never passed to TLS), and the limits below. Whitespace keepalives, the
//! optional XML declaration and both prefix styles (`<stream:features>` with a default
//! namespace, `<tls:starttls xmlns:tls=...>`) are accepted.
//!
//! DTDs, entity declarations, undefined entity references, comments, CDATA and processing
//! instructions (other than the leading XML declaration) are rejected on sight, so no XML
//! bomb works. Everything is bounded ([`Limits`]): bytes before TLS (64 KiB), element depth,
//! tag and text size; and, in the adapter, time per step and in total (20 s).
//!
//! ## The stream header
//!
//! By default the header copies the bytes of a widely used client, **Conversations**, so
//! that a probe cannot be singled out by its header; see [`HeaderProfile`] for the exact
//! bytes and how they were derived.
#![forbid(unsafe_code)]

#[cfg(feature = "tokio")]
mod adapter;
mod client;
mod config;
mod direct_tls;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod negotiation;
mod replay;
mod server;
mod xml;

#[cfg(feature = "tokio")]
pub use adapter::{Timeouts, accept, negotiate, read_features_after_tls};
pub use client::{Action, ClientNegotiator};
pub use config::{
    Config, HeaderProfile, Limits, NS_CLIENT, NS_DIALBACK, NS_SASL, NS_SASL_CB, NS_SERVER,
    NS_STREAM_ERRORS, NS_STREAMS, NS_TLS, StreamKind,
};
pub use direct_tls::{ALPN_XMPP_CLIENT, ALPN_XMPP_SERVER, DirectTls};
pub use error::{Error, Failure, Markup, Step, StreamError};
pub use negotiation::{ChannelBinding, Feature, Features, Negotiation, StreamHeader, Timings};
pub use replay::replay;
pub use server::{ServerConfig, ServerNegotiation, ServerNegotiator};
