//! The capture verifier: accepts any chain, records it, and still checks the handshake
//! signature against the presented leaf, so that a replayed chain cannot pass.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedCipherSuite};
use serde::{Deserialize, Serialize};

/// Which server key a probe asks for, through the signature schemes (and TLS 1.2 cipher
/// suites) it offers.
///
/// Dual-certificate servers (RSA and ECDSA) are common, and an interceptor may replace only
/// one of the keys, so by default every endpoint is probed once per key type
/// ([`KeyRequest::DEFAULT_SET`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyRequest {
    /// Elliptic-curve keys: ECDSA (P-256, P-384, P-521) and EdDSA (Ed25519, Ed448).
    Ec,
    /// RSA keys (PKCS#1 v1.5 and PSS signatures).
    Rsa,
    /// Any key the server prefers (single-key mode).
    Any,
}

impl KeyRequest {
    /// The key types probed by default: one probe with elliptic-curve schemes only, one with
    /// RSA schemes only.
    pub const DEFAULT_SET: [KeyRequest; 2] = [KeyRequest::Ec, KeyRequest::Rsa];

    /// The name used in the JSON and in messages: `ec`, `rsa`, `any`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRequest::Ec => "ec",
            KeyRequest::Rsa => "rsa",
            KeyRequest::Any => "any",
        }
    }

    /// Whether a signature scheme belongs to this key type.
    pub fn allows(self, scheme: SignatureScheme) -> bool {
        use SignatureScheme as S;
        let ec = matches!(
            scheme,
            S::ECDSA_NISTP256_SHA256
                | S::ECDSA_NISTP384_SHA384
                | S::ECDSA_NISTP521_SHA512
                | S::ED25519
                | S::ED448
        );
        let rsa = matches!(
            scheme,
            S::RSA_PKCS1_SHA256
                | S::RSA_PKCS1_SHA384
                | S::RSA_PKCS1_SHA512
                | S::RSA_PSS_SHA256
                | S::RSA_PSS_SHA384
                | S::RSA_PSS_SHA512
        );
        match self {
            KeyRequest::Ec => ec,
            KeyRequest::Rsa => rsa,
            KeyRequest::Any => ec || rsa,
        }
    }

    /// The ring provider restricted to this key type: TLS 1.2 suites whose authentication
    /// does not match the key type are removed. Built once per key type.
    fn provider(self) -> Arc<CryptoProvider> {
        static CACHE: [OnceLock<Arc<CryptoProvider>>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = match self {
            KeyRequest::Ec => &CACHE[0],
            KeyRequest::Rsa => &CACHE[1],
            KeyRequest::Any => &CACHE[2],
        };
        slot.get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites.retain(|suite| match suite {
                SupportedCipherSuite::Tls13(_) => true,
                SupportedCipherSuite::Tls12(s) => s.sign.iter().any(|sch| self.allows(*sch)),
            });
            Arc::new(provider)
        })
        .clone()
    }
}

impl fmt::Display for KeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One certificate as presented by the server (DER). Serialised as standard base64.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Certificate(Vec<u8>);

impl Certificate {
    /// Wraps DER bytes.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        Certificate(der.into())
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.0
    }

    /// The SubjectPublicKeyInfo DER of the certificate (what a TLSA `x 1 x` record pins), or
    /// `None` when the bytes are not a parsable X.509 certificate.
    pub fn spki_der(&self) -> Option<Vec<u8>> {
        let der = CertificateDer::from(self.0.as_slice());
        let cert = webpki::EndEntityCert::try_from(&der).ok()?;
        Some(cert.subject_public_key_info().as_ref().to_vec())
    }

    /// The SHA-256 of the SubjectPublicKeyInfo, lowercase hex: the data of a `3 1 1` TLSA
    /// record. `None` when the certificate does not parse.
    pub fn spki_sha256_hex(&self) -> Option<String> {
        let spki = self.spki_der()?;
        Some(hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            &spki,
        )))
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate({} bytes DER)", self.0.len())
    }
}

impl Serialize for Certificate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Certificate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Certificate)
            .map_err(serde::de::Error::custom)
    }
}

/// What the verifier saw of the handshake signature.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum SignatureCheck {
    /// No signature was checked (yet).
    #[default]
    NotSeen,
    /// The signature verified against the presented leaf, with this scheme.
    Verified(SignatureScheme),
    /// The signature did not verify against the presented leaf: the server did not prove
    /// that it holds the key of the chain it presented.
    Failed(String),
}

/// What one handshake revealed, shared between the verifier and the probe.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) chain: Vec<Certificate>,
    pub(crate) signature: SignatureCheck,
}

/// The capture verifier (see the module documentation). One per probe: it holds that probe's
/// capture.
#[derive(Debug)]
pub(crate) struct CaptureVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    schemes: Vec<SignatureScheme>,
    captured: Arc<Mutex<Captured>>,
}

impl CaptureVerifier {
    fn record_signature(
        &self,
        scheme: SignatureScheme,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let check = match &result {
            Ok(_) => SignatureCheck::Verified(scheme),
            Err(e) => SignatureCheck::Failed(format!("{scheme:?}: {e}")),
        };
        if let Ok(mut c) = self.captured.lock() {
            c.signature = check;
        }
        result
    }

    fn offered(&self, scheme: SignatureScheme) -> Result<(), rustls::Error> {
        if self.schemes.contains(&scheme) {
            Ok(())
        } else {
            Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))
        }
    }
}

impl ServerCertVerifier for CaptureVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Names, dates and issuers are judged later, against DANE; here we only record.
        if let Ok(mut c) = self.captured.lock() {
            c.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|der| Certificate(der.as_ref().to_vec()))
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = self.offered(dss.scheme).and_then(|()| {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        });
        self.record_signature(dss.scheme, result)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let result = self.offered(dss.scheme).and_then(|()| {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        });
        self.record_signature(dss.scheme, result)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// A client configuration for one probe, and the handle through which the probe reads what
/// the verifier captured.
pub(crate) fn client_config(
    key_request: KeyRequest,
    alpn: Option<&str>,
) -> Result<(Arc<ClientConfig>, Arc<Mutex<Captured>>), rustls::Error> {
    let provider = key_request.provider();
    let algorithms = provider.signature_verification_algorithms;
    let schemes: Vec<SignatureScheme> = algorithms
        .supported_schemes()
        .into_iter()
        .filter(|s| key_request.allows(*s))
        .collect();
    let captured = Arc::new(Mutex::new(Captured::default()));
    let verifier = Arc::new(CaptureVerifier {
        algorithms,
        schemes,
        captured: captured.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // A resumed session presents no certificate: never resume, never keep tickets.
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = alpn
        .map(|p| vec![p.as_bytes().to_vec()])
        .unwrap_or_default();
    Ok((Arc::new(config), captured))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_requests_partition_the_schemes() {
        let all = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes();
        for s in &all {
            assert!(KeyRequest::Any.allows(*s), "{s:?}");
            assert_ne!(
                KeyRequest::Ec.allows(*s),
                KeyRequest::Rsa.allows(*s),
                "{s:?}"
            );
        }
        assert!(KeyRequest::Ec.allows(SignatureScheme::ED25519));
        assert!(!KeyRequest::Ec.allows(SignatureScheme::RSA_PSS_SHA256));
    }

    #[test]
    fn restricted_providers_keep_only_matching_tls12_suites() {
        let ec = KeyRequest::Ec.provider();
        let rsa = KeyRequest::Rsa.provider();
        for (provider, kt) in [(&ec, KeyRequest::Ec), (&rsa, KeyRequest::Rsa)] {
            let tls12: Vec<_> = provider
                .cipher_suites
                .iter()
                .filter_map(|s| match s {
                    SupportedCipherSuite::Tls12(s) => Some(s),
                    _ => None,
                })
                .collect();
            assert!(!tls12.is_empty());
            for s in tls12 {
                assert!(s.sign.iter().all(|sch| kt.allows(*sch)), "{kt}");
            }
        }
    }

    #[test]
    fn config_sets_alpn_and_sni() {
        let (config, _) = client_config(KeyRequest::Rsa, Some("xmpp-client")).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"xmpp-client".to_vec()]);
        assert!(config.enable_sni);
    }

    #[test]
    fn certificate_serde_is_base64_and_garbage_has_no_spki() {
        let c = Certificate::from_der(vec![1, 2, 3]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"AQID\"");
        assert_eq!(serde_json::from_str::<Certificate>(&json).unwrap(), c);
        assert!(c.spki_der().is_none());
        assert!(c.spki_sha256_hex().is_none());
    }
}
