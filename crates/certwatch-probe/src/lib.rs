//! # certwatch-probe
//!
//! Connects to one XMPP probe target the way a DANE monitor must, and captures the
//! certificate chain that the server **proves** it holds.
//!
//! - **Transports**, chosen per probe ([`Transport`]): embedded Tor through arti (cargo
//!   feature `tor`, on by default), an external Tor through SOCKS5, or direct TCP.
//!   A [`CheckIsolation`] is shared by the probes of one domain check: one fresh circuit per
//!   check, not per connection. Probes connect to the DNSSEC-validated IP address, never a
//!   name, so a Tor exit's resolver cannot lie.
//! - **Negotiation**: STARTTLS (RFC 6120 §5) for `c2s-starttls` / `s2s-starttls`; TLS from
//!   the first byte with ALPN `xmpp-client` / `xmpp-server` (XEP-0368) for the direct
//!   services. SNI is always the service domain.
//! - **Capture**: a rustls verifier (ring provider) that accepts any chain and records it,
//!   but still verifies the TLS 1.2 / 1.3 handshake signature against the presented leaf. A
//!   server that replays a genuine chain without its key fails with
//!   [`ErrorClass::UnprovenKey`], never a capture. Each probe offers one [`KeyRequest`]'s
//!   signature schemes only, so dual-certificate servers reveal each key.
//! - **Evidence**: [`Probe`] (serde) holds the chain (DER), TLS version, cipher suite,
//!   key-exchange group, ALPN, signature scheme, the [`Vantage`] (direct, SOCKS with the exit
//!   unknown, or the Tor exit relay) and per-phase [`Timings`]. Failures are a
//!   [`ProbeError`] naming the target, classified by [`ErrorClass`]: network, timeout and Tor
//!   failures are indeterminate, never alarms.
//! - **Politeness**: once the proof is verified the probe sends close_notify and closes; it
//!   costs the server no more than a client that gives up. Every step has a time and a byte
//!   budget ([`ProbeOptions`]).
//! - **Vantage diversity**: [`Prober::probe_diverse`] re-probes from exits with distinct IP
//!   addresses, for the confirmation rules.
//!
//! ```
//! use certwatch_probe::{EndpointId, KeyRequest, ProbeOptions, ProbeTarget, Prober, Service, Transport};
//!
//! // The client STARTTLS service of example.org, served by xmpp.example.org on 192.0.2.7.
//! let endpoint = EndpointId::new(Service::C2sStarttls, "xmpp.example.org", 5222);
//! let target = ProbeTarget::new("example.org", endpoint, "192.0.2.7".parse().unwrap());
//! let prober = Prober::new(Transport::Direct, ProbeOptions::default());
//! // By default each endpoint is probed for its EC key, then for its RSA key.
//! assert_eq!(prober.options().key_requests, [KeyRequest::Ec, KeyRequest::Rsa]);
//! assert_eq!(KeyRequest::Ec.to_string(), "ec");
//! ```
//!
//! Probing needs a network (so this example is not run as a test):
//!
//! ```no_run
//! # async fn run() {
//! use certwatch_probe::{CheckIsolation, EndpointId, ProbeOptions, ProbeTarget, Prober, Service,
//!     Transport};
//!
//! let endpoint = EndpointId::new(Service::C2sDirect, "xmpp.example.org", 5223);
//! let target = ProbeTarget::new("example.org", endpoint, "192.0.2.7".parse().unwrap());
//! // An external Tor; use `Transport::Tor` (feature `tor`) for the embedded one.
//! let prober = Prober::new(
//!     Transport::Socks { proxy: "127.0.0.1:9050".parse().unwrap() },
//!     ProbeOptions::default(),
//! );
//! let check = CheckIsolation::new(); // one per domain check
//! for result in prober.probe_all_keys(&target, &check).await {
//!     match result {
//!         Ok(probe) => println!("{} key {:?} via {}", probe.key_request,
//!             probe.leaf_spki_sha256_hex(), probe.vantage),
//!         Err(e) => println!("{e} ({:?})", e.class()),
//!     }
//! }
//! # }
//! ```
#![forbid(unsafe_code)]

mod capture;
mod diverse;
mod error;
mod probe;
#[cfg(feature = "tor")]
mod tor;
mod transport;

pub use capture::{Certificate, KeyRequest};
pub use certwatch_core::{EndpointId, ProbeTarget, Service};
pub use diverse::DiverseProbes;
pub use error::{ErrorClass, Phase, ProbeError, ProbeErrorKind};
pub use probe::{Probe, ProbeOptions, Prober, Timings, TlsFacts, TlsVersion, probe_stream};
#[cfg(feature = "tor")]
pub use tor::{BootstrapProgress, TorSetupError, TorTransport};
pub use transport::{BoxedIo, CheckIsolation, ExitRelay, ProbeIo, Transport, Vantage};
