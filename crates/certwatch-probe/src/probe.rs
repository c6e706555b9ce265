//! One probe: connect, negotiate, capture, leave politely.

use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout};

use crate::capture::{Certificate, KeyRequest, SignatureCheck, client_config};
use crate::error::{Phase, ProbeError, ProbeErrorKind};
use crate::transport::{CheckIsolation, Guarded, ProbeIo, ReadBoundExceeded, Transport, Vantage};
use certwatch_core::ProbeTarget;

/// Time and byte budgets of a probe. Every network step is bounded by both.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// Budget for opening the connection (including a Tor circuit and stream).
    pub connect_timeout: Duration,
    /// Budget for the XMPP negotiation up to `<proceed/>` (STARTTLS services); no single
    /// read or write may wait more than 10 s of it.
    pub xmpp_timeout: Duration,
    /// Budget for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Budget for the polite close (close_notify, then TCP close).
    pub close_timeout: Duration,
    /// Most bytes read from the server during XMPP negotiation.
    pub max_xmpp_bytes: usize,
    /// Most bytes read from the server during the TLS handshake.
    pub max_handshake_bytes: usize,
    /// The key types probed by [`Prober::probe_all_keys`] (default: EC, then RSA).
    pub key_requests: Vec<KeyRequest>,
    /// Most attempts [`Prober::probe_diverse`] makes to reach `n` distinct exits; `None`
    /// means `3 * n + 2`.
    pub diverse_max_attempts: Option<usize>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            connect_timeout: Duration::from_secs(30),
            xmpp_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(2),
            max_xmpp_bytes: 64 * 1024,
            max_handshake_bytes: 256 * 1024,
            key_requests: KeyRequest::DEFAULT_SET.to_vec(),
            diverse_max_attempts: None,
        }
    }
}

/// The TLS version of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

/// What the TLS handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TlsFacts {
    /// The protocol version.
    pub version: TlsVersion,
    /// The cipher suite, as rustls names it (`TLS13_AES_256_GCM_SHA384`, ...).
    pub cipher_suite: String,
    /// The key-exchange group (`X25519`, `secp256r1`, ...), when known.
    pub key_exchange_group: Option<String>,
    /// The ALPN protocol the server selected, if any.
    pub alpn: Option<String>,
    /// The signature scheme the server proved its key with (`ECDSA_NISTP256_SHA256`, ...).
    pub signature_scheme: String,
}

/// How long each phase took. Serialised as microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timings {
    /// Opening the connection (TCP, or the Tor / SOCKS stream).
    #[serde(with = "micros", rename = "connect_us")]
    pub connect: Duration,
    /// The XMPP stream up to the features (STARTTLS services only).
    #[serde(with = "opt_micros", rename = "stream_us")]
    pub stream: Option<Duration>,
    /// `<starttls/>` to `<proceed/>` (STARTTLS services only).
    #[serde(with = "opt_micros", rename = "starttls_us")]
    pub starttls: Option<Duration>,
    /// The TLS handshake up to the verified proof.
    #[serde(with = "micros", rename = "handshake_us")]
    pub handshake: Duration,
}

mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

mod opt_micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_micros))
    }
}

/// The evidence of one successful probe: the chain the server presented **and proved** (its
/// handshake signature verified against the leaf), how, from where, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Probe {
    /// What was probed.
    pub target: ProbeTarget,
    /// The key type asked for.
    pub key_request: KeyRequest,
    /// Where it was probed from.
    pub vantage: Vantage,
    /// The presented chain, leaf first (DER).
    pub chain: Vec<Certificate>,
    /// What the handshake negotiated.
    pub tls: TlsFacts,
    /// Per-phase durations.
    pub timings: Timings,
}

impl Probe {
    /// The leaf certificate (the one whose key signed the handshake).
    pub fn leaf(&self) -> Option<&Certificate> {
        self.chain.first()
    }

    /// SHA-256 of the leaf's SubjectPublicKeyInfo, lowercase hex (the data of a `3 1 1`
    /// TLSA record), when the leaf parses.
    pub fn leaf_spki_sha256_hex(&self) -> Option<String> {
        self.leaf().and_then(Certificate::spki_sha256_hex)
    }
}

/// Probes targets over one transport with one set of options.
#[derive(Debug, Clone)]
pub struct Prober {
    transport: Transport,
    options: ProbeOptions,
}

impl Prober {
    /// A prober.
    pub fn new(transport: Transport, options: ProbeOptions) -> Self {
        Prober { transport, options }
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The options.
    pub fn options(&self) -> &ProbeOptions {
        &self.options
    }

    /// Probes `target` once, asking for a key of `key_request`, on the circuit of `isolation`
    /// (share one isolation among the probes of one domain check).
    pub async fn probe(
        &self,
        target: &ProbeTarget,
        isolation: &CheckIsolation,
        key_request: KeyRequest,
    ) -> Result<Probe, ProbeError> {
        let opts = &self.options;
        let t0 = Instant::now();
        let fail =
            |vantage: Option<Vantage>, kind| ProbeError::new(target, key_request, vantage, kind);
        let (io, vantage) = match timeout(
            opts.connect_timeout,
            self.transport.connect(target_addr(target), isolation),
        )
        .await
        {
            Err(_) => {
                return Err(fail(
                    None,
                    ProbeErrorKind::Timeout {
                        phase: Phase::Connect,
                        after: opts.connect_timeout,
                    },
                ));
            }
            Ok(Err(kind)) => return Err(fail(None, kind)),
            Ok(Ok(pair)) => pair,
        };
        let connect = t0.elapsed();
        run_on(io, target, key_request, vantage, connect, opts).await
    }

    /// Probes `target` once per key type of the options (default: EC, then RSA), in order,
    /// on one isolation. Dual-certificate servers thus reveal each key.
    pub async fn probe_all_keys(
        &self,
        target: &ProbeTarget,
        isolation: &CheckIsolation,
    ) -> Vec<Result<Probe, ProbeError>> {
        let mut out = Vec::with_capacity(self.options.key_requests.len());
        for kt in &self.options.key_requests {
            out.push(self.probe(target, isolation, *kt).await);
        }
        out
    }
}

/// Runs a probe over a connection the caller opened itself (for embedders with their own
/// transport, and for tests): negotiation, capture and polite close, with the budgets of
/// `options`. `vantage` is recorded as given.
pub async fn probe_stream<S: ProbeIo>(
    io: S,
    target: &ProbeTarget,
    key_request: KeyRequest,
    vantage: Vantage,
    options: &ProbeOptions,
) -> Result<Probe, ProbeError> {
    run_on(io, target, key_request, vantage, Duration::ZERO, options).await
}

async fn run_on<S: ProbeIo>(
    io: S,
    target: &ProbeTarget,
    key_request: KeyRequest,
    vantage: Vantage,
    connect: Duration,
    opts: &ProbeOptions,
) -> Result<Probe, ProbeError> {
    let fail = |kind| ProbeError::new(target, key_request, Some(vantage.clone()), kind);
    let server_name = ServerName::try_from(target.domain.clone()).map_err(|e| {
        fail(ProbeErrorKind::Usage {
            detail: format!("domain {:?} is not a TLS server name: {e}", target.domain),
        })
    })?;
    if !matches!(server_name, ServerName::DnsName(_)) {
        return Err(fail(ProbeErrorKind::Usage {
            detail: format!("domain {:?} is an address, not a DNS name", target.domain),
        }));
    }
    let mut io = Guarded::new(io, opts.max_xmpp_bytes);

    // XMPP, for the STARTTLS services, through certwatch-xmpp's negotiator.
    let (mut stream_t, mut starttls_t) = (None, None);
    if !target.id.service.is_direct_tls() {
        let config = match target.id.service.stream_kind() {
            certwatch_core::StreamKind::Client => certwatch_xmpp::Config::client(&target.domain),
            certwatch_core::StreamKind::Server => {
                certwatch_xmpp::Config::server(&target.domain, None)
            }
        };
        let timeouts = certwatch_xmpp::Timeouts::new(
            opts.xmpp_timeout.min(XMPP_STEP_TIMEOUT),
            opts.xmpp_timeout,
        );
        // The negotiator has its own deadline; this outer one only guards against a bug.
        let outer = opts.xmpp_timeout + Duration::from_secs(1);
        match timeout(outer, certwatch_xmpp::negotiate(io, &config, &timeouts)).await {
            Err(_) => {
                return Err(fail(ProbeErrorKind::Timeout {
                    phase: Phase::Stream,
                    after: opts.xmpp_timeout,
                }));
            }
            Ok(Err(failure)) => return Err(fail(xmpp_error(failure.error))),
            Ok(Ok((back, negotiation))) => {
                io = back;
                let t = negotiation.timings;
                stream_t = t.features;
                starttls_t = match (t.features, t.proceed) {
                    (Some(f), Some(p)) => Some(p.saturating_sub(f)),
                    _ => None,
                };
            }
        }
    }

    // TLS.
    let alpn = target
        .id
        .service
        .is_direct_tls()
        .then(|| target.id.service.alpn());
    let (config, captured) = client_config(key_request, alpn).map_err(|e| {
        fail(ProbeErrorKind::Usage {
            detail: format!("TLS configuration: {e}"),
        })
    })?;
    io.set_bound(opts.max_handshake_bytes);
    let handshake_bytes = io.phase_bytes();
    let t1 = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(config);
    let result = timeout(opts.handshake_timeout, connector.connect(server_name, io)).await;
    let handshake = t1.elapsed();
    let (chain, signature) = match captured.lock() {
        Ok(mut c) => (
            std::mem::take(&mut c.chain),
            std::mem::take(&mut c.signature),
        ),
        Err(_) => (Vec::new(), SignatureCheck::NotSeen),
    };
    // A failed signature check decides the outcome whatever error rustls reports with it.
    if let SignatureCheck::Failed(detail) = &signature {
        return Err(fail(ProbeErrorKind::UnprovenKey {
            chain,
            detail: detail.clone(),
        }));
    }
    let mut tls = match result {
        Err(_) => {
            return Err(fail(ProbeErrorKind::Timeout {
                phase: Phase::Handshake,
                after: opts.handshake_timeout,
            }));
        }
        Ok(Err(e)) => {
            let answered = handshake_bytes.load(std::sync::atomic::Ordering::Relaxed) > 0;
            return Err(fail(tls_error(e, key_request, answered)));
        }
        Ok(Ok(tls)) => tls,
    };
    let scheme = match signature {
        SignatureCheck::Verified(s) => s,
        // Fail closed: a finished handshake without a verified signature proves nothing.
        SignatureCheck::NotSeen | SignatureCheck::Failed(_) => {
            return Err(fail(ProbeErrorKind::UnprovenKey {
                chain,
                detail: "the handshake finished without a verified signature".into(),
            }));
        }
    };
    if chain.is_empty() {
        return Err(fail(ProbeErrorKind::TlsProtocol {
            detail: "the server presented no certificate".into(),
        }));
    }
    let conn = tls.get_ref().1;
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
        other => {
            return Err(fail(ProbeErrorKind::TlsVersion {
                detail: format!("negotiated {other:?}"),
            }));
        }
    };
    let facts = TlsFacts {
        version,
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        key_exchange_group: conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name())),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        signature_scheme: format!("{scheme:?}"),
    };

    // Leave politely: close_notify, then close the connection (on drop).
    let _ = timeout(opts.close_timeout, tls.shutdown()).await;
    drop(tls);

    Ok(Probe {
        target: target.clone(),
        key_request,
        vantage,
        chain,
        tls: facts,
        timings: Timings {
            connect,
            stream: stream_t,
            starttls: starttls_t,
            handshake,
        },
    })
}

/// The socket address of a probe target.
pub(crate) fn target_addr(target: &ProbeTarget) -> std::net::SocketAddr {
    std::net::SocketAddr::new(target.address, target.id.port)
}

/// The longest wait for one XMPP read or write.
const XMPP_STEP_TIMEOUT: Duration = Duration::from_secs(10);

fn xmpp_error(error: certwatch_xmpp::Error) -> ProbeErrorKind {
    use certwatch_xmpp::{Error as X, Step};
    let phase = |step: &Step| match step {
        Step::StartTls | Step::Proceed => Phase::Starttls,
        _ => Phase::Stream,
    };
    match error {
        X::Io { step, source } => io_error(phase(&step), source),
        X::Timeout { step, after } | X::Deadline { step, after } => ProbeErrorKind::Timeout {
            phase: phase(&step),
            after,
        },
        X::TooManyBytes { limit } => ProbeErrorKind::TooLarge {
            phase: Phase::Stream,
            limit,
        },
        error => ProbeErrorKind::Xmpp { error },
    }
}

fn io_error(phase: Phase, e: std::io::Error) -> ProbeErrorKind {
    if let Some(ReadBoundExceeded(limit)) = e.get_ref().and_then(|r| r.downcast_ref()) {
        return ProbeErrorKind::TooLarge {
            phase,
            limit: *limit,
        };
    }
    ProbeErrorKind::Network { phase, source: e }
}

/// Classifies a failed handshake. `answered`: the server sent at least one byte of TLS.
fn tls_error(e: std::io::Error, key_request: KeyRequest, answered: bool) -> ProbeErrorKind {
    use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P};
    let Some(tls) = e.get_ref().and_then(|r| r.downcast_ref::<E>()) else {
        // OpenSSL-based servers (ejabberd's fast_tls, for one) close the connection without
        // an alert when they hold no key for the offered signature schemes.
        if e.kind() == std::io::ErrorKind::UnexpectedEof
            && !answered
            && key_request != KeyRequest::Any
        {
            return ProbeErrorKind::KeyTypeNotOffered {
                key_request,
                detail: "the server closed the connection without answering a ClientHello \
                         that offered only these signature schemes"
                    .into(),
            };
        }
        return io_error(Phase::Handshake, e);
    };
    match tls {
        E::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity)
            if key_request != KeyRequest::Any =>
        {
            ProbeErrorKind::KeyTypeNotOffered {
                key_request,
                detail: tls.to_string(),
            }
        }
        E::AlertReceived(A::ProtocolVersion) => ProbeErrorKind::TlsVersion {
            detail: tls.to_string(),
        },
        E::AlertReceived(alert) => ProbeErrorKind::TlsAlert {
            alert: format!("{alert:?}"),
        },
        E::PeerIncompatible(
            P::ServerDoesNotSupportTls12Or13 | P::ServerTlsVersionIsDisabledByOurConfig,
        ) => ProbeErrorKind::TlsVersion {
            detail: tls.to_string(),
        },
        E::PeerIncompatible(P::NoCipherSuitesInCommon | P::NoSignatureSchemesInCommon)
            if key_request != KeyRequest::Any =>
        {
            ProbeErrorKind::KeyTypeNotOffered {
                key_request,
                detail: tls.to_string(),
            }
        }
        _ => ProbeErrorKind::TlsProtocol {
            detail: tls.to_string(),
        },
    }
}
