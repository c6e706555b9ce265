//! Classified probe failures.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::capture::{Certificate, KeyRequest};
use crate::transport::Vantage;
use certwatch_core::ProbeTarget;

/// A step of a probe, for timings and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Phase {
    /// Opening the TCP connection (directly, or as a stream through Tor or SOCKS).
    Connect,
    /// The XMPP stream up to the features that offer STARTTLS.
    Stream,
    /// The `<starttls/>` request up to `<proceed/>`.
    Starttls,
    /// The TLS handshake, up to the verified server proof.
    Handshake,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Stream => "XMPP stream",
            Phase::Starttls => "STARTTLS",
            Phase::Handshake => "TLS handshake",
        })
    }
}

/// How a failure counts for the verdict (REFERENCE §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// Network, timeout or Tor circuit failure: retry; never an alarm.
    Indeterminate,
    /// The server does not speak XMPP + TLS 1.2+ correctly (critical on a DANE endpoint).
    ProtocolError,
    /// The server presented a chain but did not prove it holds the key: core's `mismatch`
    /// with reason `unproven-key`.
    UnprovenKey,
    /// The server has no key of the probed type: it refused a ClientHello that offered only
    /// that type's signature schemes (an alert, or, as OpenSSL-based servers do, a close
    /// without a single TLS byte). Not a verdict by itself: another key type may answer; if
    /// no key type answers, the caller decides (the server then speaks no usable TLS).
    KeyTypeNotOffered,
    /// The probe could not be attempted as asked (for example a domain that is not a valid
    /// TLS server name).
    Usage,
}

/// What went wrong, without the where (see [`ProbeError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeErrorKind {
    /// The connection was refused (by the host, or reported so by the Tor exit).
    #[error("connection refused")]
    Refused,
    /// A phase did not finish in time.
    #[error("{phase} timed out after {after:?}")]
    Timeout {
        /// The phase that timed out.
        phase: Phase,
        /// Its time budget.
        after: Duration,
    },
    /// A network error (reset, unreachable, closed early).
    #[error("network error during {phase}: {source}")]
    Network {
        /// The phase.
        phase: Phase,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Tor could not build a circuit or open the stream (indeterminate, never an alarm).
    #[error("Tor failure: {detail}")]
    Tor {
        /// The Tor client's or SOCKS proxy's explanation.
        detail: String,
    },
    /// The SOCKS proxy itself could not be used.
    #[error("SOCKS proxy {proxy}: {detail}")]
    Socks {
        /// The proxy address.
        proxy: std::net::SocketAddr,
        /// What failed.
        detail: String,
    },
    /// The server sent a TLS alert.
    #[error("TLS alert from the server: {alert}")]
    TlsAlert {
        /// The alert description.
        alert: String,
    },
    /// The server cannot speak TLS 1.2 or 1.3.
    #[error("the server does not speak TLS 1.2 or later: {detail}")]
    TlsVersion {
        /// The details.
        detail: String,
    },
    /// The server broke the TLS protocol.
    #[error("TLS protocol error: {detail}")]
    TlsProtocol {
        /// The details.
        detail: String,
    },
    /// The handshake signature did not verify against the presented leaf: the server (or an
    /// interceptor replaying the genuine chain) did not prove it holds the key.
    #[error(
        "unproven key: the handshake signature does not verify against the presented leaf ({detail})"
    )]
    UnprovenKey {
        /// The chain that was presented but not proven.
        chain: Vec<Certificate>,
        /// The verification failure.
        detail: String,
    },
    /// The server refused the handshake when offered only this key type's signature schemes.
    #[error("no {key_request} key offered: {detail}")]
    KeyTypeNotOffered {
        /// The key type that was asked for.
        key_request: KeyRequest,
        /// The alert or error.
        detail: String,
    },
    /// XMPP stream negotiation failed (no STARTTLS offered, stream error, bad XML, a
    /// STARTTLS injection...).
    #[error("XMPP negotiation failed: {error}")]
    Xmpp {
        /// certwatch-xmpp's classified error.
        error: certwatch_xmpp::Error,
    },
    /// The server sent more bytes than a probe accepts in a phase.
    #[error("the server sent more than {limit} bytes during {phase}")]
    TooLarge {
        /// The phase.
        phase: Phase,
        /// The byte bound.
        limit: usize,
    },
    /// The probe could not be set up as asked.
    #[error("invalid probe: {detail}")]
    Usage {
        /// What is wrong.
        detail: String,
    },
}

impl ProbeErrorKind {
    /// How this failure counts for the verdict.
    pub fn class(&self) -> ErrorClass {
        use ProbeErrorKind as K;
        match self {
            K::Refused
            | K::Timeout { .. }
            | K::Network { .. }
            | K::Tor { .. }
            | K::Socks { .. } => ErrorClass::Indeterminate,
            K::TlsAlert { .. }
            | K::TlsVersion { .. }
            | K::TlsProtocol { .. }
            | K::Xmpp { .. }
            | K::TooLarge { .. } => ErrorClass::ProtocolError,
            K::UnprovenKey { .. } => ErrorClass::UnprovenKey,
            K::KeyTypeNotOffered { .. } => ErrorClass::KeyTypeNotOffered,
            K::Usage { .. } => ErrorClass::Usage,
        }
    }
}

#[derive(Debug)]
struct Inner {
    target: ProbeTarget,
    key_request: KeyRequest,
    vantage: Option<Vantage>,
    kind: ProbeErrorKind,
}

/// A failed probe: what failed ([`ProbeError::kind`]), where (domain, host, address, port,
/// service), with which key type, and through which vantage point when the connection got
/// that far.
#[derive(Debug)]
pub struct ProbeError {
    inner: Box<Inner>,
}

impl ProbeError {
    pub(crate) fn new(
        target: &ProbeTarget,
        key_request: KeyRequest,
        vantage: Option<Vantage>,
        kind: ProbeErrorKind,
    ) -> Self {
        ProbeError {
            inner: Box::new(Inner {
                target: target.clone(),
                key_request,
                vantage,
                kind,
            }),
        }
    }

    /// What failed.
    pub fn kind(&self) -> &ProbeErrorKind {
        &self.inner.kind
    }

    /// How this failure counts for the verdict.
    pub fn class(&self) -> ErrorClass {
        self.inner.kind.class()
    }

    /// The probe target.
    pub fn target(&self) -> &ProbeTarget {
        &self.inner.target
    }

    /// The key type the probe asked for.
    pub fn key_request(&self) -> KeyRequest {
        self.inner.key_request
    }

    /// The vantage point, when the connection was opened (for a Tor exit: which one).
    pub fn vantage(&self) -> Option<&Vantage> {
        self.inner.vantage.as_ref()
    }

    /// The chain presented without proof, for [`ErrorClass::UnprovenKey`].
    pub fn unproven_chain(&self) -> Option<&[Certificate]> {
        match &self.inner.kind {
            ProbeErrorKind::UnprovenKey { chain, .. } => Some(chain),
            _ => None,
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        write!(f, "probe of {} ({} key)", i.target, i.key_request)?;
        if let Some(v) = &i.vantage {
            write!(f, " via {v}")?;
        }
        write!(f, ": {}", i.kind)
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner.kind)
    }
}
