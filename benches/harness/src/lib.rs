//! # certwatch-bench
//!
//! The benchmark harness of certwatch (not published):
//!
//! * `cw-delay-proxy`: a userspace delay proxy for TCP and UDP (`tc netem` is missing on the
//!   benchmark machines), used by `benches/compare.sh` scenario 2;
//! * `cw-xmpp-fixture`: an XMPP server (STARTTLS c2s and s2s, direct TLS) with the fixed
//!   dual-key (P-256 and RSA-2048) test material of `benches/data`, serving any number of
//!   domains, used by scenario 3;
//! * `cw-gate`: deterministic workloads run under `valgrind --tool=callgrind` by
//!   `.ci/perf-gate`;
//! * the criterion bench `crypto_floor` (`cargo bench -p certwatch-bench`).
//!
//! This library holds what they share: the fixed key material and the server side of a
//! probe.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// The fixed P-256 test key (PKCS#8 DER). Public test material: never use it elsewhere.
pub const EC_KEY_DER: &[u8] = include_bytes!("../../data/ec.key.der");
/// The self-signed certificate of [`EC_KEY_DER`] (DER).
pub const EC_CERT_DER: &[u8] = include_bytes!("../../data/ec.crt.der");
/// The fixed RSA-2048 test key (PKCS#8 DER). Public test material: never use it elsewhere.
pub const RSA_KEY_DER: &[u8] = include_bytes!("../../data/rsa.key.der");
/// The self-signed certificate of [`RSA_KEY_DER`] (DER).
pub const RSA_CERT_DER: &[u8] = include_bytes!("../../data/rsa.crt.der");

/// Errors of the harness' setup (loading keys, binding sockets).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn certified(cert: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, BoxError> {
    let key =
        rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(key.to_vec().into()))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(cert.to_vec())],
        key,
    )))
}

/// Presents the P-256 certificate when the client offers an ECDSA scheme, else the RSA one
/// (what a dual-key Prosody does).
#[derive(Debug)]
struct Dual {
    ec: Arc<CertifiedKey>,
    rsa: Arc<CertifiedKey>,
}

impl ResolvesServerCert for Dual {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let ec = hello.signature_schemes().iter().any(|s| {
            matches!(
                s,
                rustls::SignatureScheme::ECDSA_NISTP256_SHA256
                    | rustls::SignatureScheme::ECDSA_NISTP384_SHA384
            )
        });
        Some(if ec {
            self.ec.clone()
        } else {
            self.rsa.clone()
        })
    }
}

/// A TLS server configuration (ring; TLS 1.3 and 1.2) presenting the fixed dual-key
/// material, with the XMPP ALPN identifiers.
pub fn server_config() -> Result<Arc<ServerConfig>, BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Dual {
            ec: certified(EC_CERT_DER, EC_KEY_DER)?,
            rsa: certified(RSA_CERT_DER, RSA_KEY_DER)?,
        }));
    config.alpn_protocols = vec![b"xmpp-client".to_vec(), b"xmpp-server".to_vec()];
    Ok(Arc::new(config))
}

/// SHA-256 of the SubjectPublicKeyInfo of a certificate, hex (the `3 1 1` association data).
pub fn spki_sha256_hex(cert_der: &[u8]) -> Result<String, BoxError> {
    let spki = certwatch_core::certificate_spki(cert_der).ok_or("not an X.509 certificate")?;
    Ok(hex::encode(certwatch_core::spki_sha256(&spki)))
}

/// How one fixture port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// TLS from the first byte (XEP-0368).
    Direct,
    /// STARTTLS on a `jabber:client` stream.
    StarttlsClient,
    /// STARTTLS on a `jabber:server` stream.
    StarttlsServer,
}

/// Serves one connection: the XMPP STARTTLS negotiation (certwatch-xmpp's acceptor) unless
/// `mode` is direct, the TLS handshake, then waits for the client to close.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    mode: Mode,
    tls: Arc<ServerConfig>,
    domains: Arc<Vec<String>>,
) -> std::io::Result<()> {
    let io = match mode {
        Mode::Direct => io,
        Mode::StarttlsClient | Mode::StarttlsServer => {
            let kind = if mode == Mode::StarttlsClient {
                certwatch_xmpp::StreamKind::Client
            } else {
                certwatch_xmpp::StreamKind::Server { from: None }
            };
            let first = domains.first().cloned().unwrap_or_default();
            let mut config = certwatch_xmpp::ServerConfig::new(kind, first);
            config.domains = domains.as_ref().clone();
            let (io, _) = certwatch_xmpp::accept(io, &config, &certwatch_xmpp::Timeouts::default())
                .await
                .map_err(std::io::Error::other)?;
            io
        }
    };
    let mut tls = tokio_rustls::TlsAcceptor::from(tls).accept(io).await?;
    let mut buf = [0u8; 512];
    // Until close_notify (Ok(0)), an error or EOF.
    while let Ok(n) = tls.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    Ok(())
}
