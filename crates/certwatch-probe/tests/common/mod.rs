//! In-process XMPP/TLS test servers with generated certificates (shared by the hermetic
//! tests, the example and the benchmark).
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;

/// A 2048-bit RSA test key (ring cannot generate RSA keys). Test use only.
pub const RSA_KEY_PEM: &str = include_str!("../data/test-rsa-2048.pem");

pub const DOMAIN: &str = "a.test";

/// A leaf key with its chain (leaf, CA).
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
}

impl Leaf {
    pub fn signing_key(&self) -> Arc<dyn rustls::sign::SigningKey> {
        rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
            self.key_der.clone().into(),
        ))
        .unwrap()
    }

    pub fn certified(&self) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(self.chain.clone(), self.signing_key()))
    }
}

pub enum Alg {
    P256,
    Ed25519,
    Rsa,
}

/// A test CA (P-256) and leaves it signs for [`DOMAIN`].
pub struct Pki {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "certwatch test CA");
        let ca_der = ca_params.self_signed(&ca_key).unwrap().der().clone();
        Pki {
            ca_params,
            ca_key,
            ca_der,
        }
    }

    pub fn leaf(&self, alg: Alg) -> Leaf {
        let key = match alg {
            Alg::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            Alg::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            Alg::Rsa => {
                KeyPair::from_pem_and_sign_algo(RSA_KEY_PEM, &rcgen::PKCS_RSA_SHA256).unwrap()
            }
        };
        let params = CertificateParams::new(vec![DOMAIN.to_owned()]).unwrap();
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        Leaf {
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            key_der: key.serialize_der(),
            spki_sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, &spki)),
        }
    }
}

/// Presents one fixed certified key (which may be a replay: chain of A, key of B).
#[derive(Debug)]
pub struct Fixed(pub Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A dual-key server: ECDSA when the client offers an ECDSA scheme, otherwise RSA.
#[derive(Debug)]
pub struct Dual {
    pub ec: Arc<CertifiedKey>,
    pub rsa: Arc<CertifiedKey>,
}

impl ResolvesServerCert for Dual {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let ec = hello.signature_schemes().iter().any(|s| {
            matches!(
                s,
                SignatureScheme::ECDSA_NISTP256_SHA256 | SignatureScheme::ECDSA_NISTP384_SHA384
            )
        });
        Some(if ec {
            self.ec.clone()
        } else {
            self.rsa.clone()
        })
    }
}

pub fn server_config(resolver: Arc<dyn ResolvesServerCert>, tls12_only: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"xmpp-client".to_vec(), b"xmpp-server".to_vec()];
    Arc::new(config)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Direct,
    /// STARTTLS on a client stream, through certwatch-xmpp's acceptor.
    Starttls,
    /// STARTTLS on a server-to-server stream, through certwatch-xmpp's acceptor.
    StarttlsS2s,
    /// Direct TLS that closes the connection without an alert when the ClientHello offers no
    /// ECDSA scheme, as OpenSSL-based servers (ejabberd) with only an EC key do.
    DirectEcOrClose,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub accepted: AtomicUsize,
    pub handshakes: AtomicUsize,
    /// Connections the client closed with close_notify after the handshake.
    pub clean_closes: AtomicUsize,
    pub last_sni: Mutex<Option<String>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

/// Serves `config` on 127.0.0.1 (an ephemeral port) until the runtime ends.
pub async fn spawn(mode: Mode, config: Arc<ServerConfig>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            s.accepted.fetch_add(1, Ordering::SeqCst);
            let (config, s) = (config.clone(), s.clone());
            tokio::spawn(async move {
                let _ = serve(tcp, mode, config, s).await;
            });
        }
    });
    TestServer { addr, stats }
}

/// Serves one connection on any stream (TCP or an in-memory duplex).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    mode: Mode,
    config: Arc<ServerConfig>,
    stats: Arc<Stats>,
) -> std::io::Result<()> {
    if mode == Mode::DirectEcOrClose {
        let acceptor = rustls::server::Acceptor::default();
        let start = tokio_rustls::LazyConfigAcceptor::new(acceptor, io).await?;
        let ec = start.client_hello().signature_schemes().iter().any(|s| {
            matches!(
                s,
                SignatureScheme::ECDSA_NISTP256_SHA256 | SignatureScheme::ECDSA_NISTP384_SHA384
            )
        });
        if !ec {
            return Ok(()); // drop: EOF, no alert
        }
        let mut tls = start.into_stream(config).await?;
        stats.handshakes.fetch_add(1, Ordering::SeqCst);
        let mut buf = [0u8; 256];
        if let Ok(0) = tls.read(&mut buf).await {
            stats.clean_closes.fetch_add(1, Ordering::SeqCst);
        }
        return Ok(());
    }
    let io = match mode {
        Mode::Direct | Mode::DirectEcOrClose => io,
        Mode::Starttls | Mode::StarttlsS2s => {
            let kind = if mode == Mode::Starttls {
                certwatch_xmpp::StreamKind::Client
            } else {
                certwatch_xmpp::StreamKind::Server { from: None }
            };
            let config = certwatch_xmpp::ServerConfig::new(kind, DOMAIN);
            let (io, _) = certwatch_xmpp::accept(io, &config, &certwatch_xmpp::Timeouts::default())
                .await
                .map_err(std::io::Error::other)?;
            io
        }
    };
    let mut tls = tokio_rustls::TlsAcceptor::from(config).accept(io).await?;
    stats.handshakes.fetch_add(1, Ordering::SeqCst);
    *stats.last_sni.lock().unwrap() = tls.get_ref().1.server_name().map(str::to_owned);
    let mut buf = [0u8; 256];
    // Ok(0) means close_notify; an EOF without it is an error in tokio-rustls.
    if let Ok(0) = tls.read(&mut buf).await {
        stats.clean_closes.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}
