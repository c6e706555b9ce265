//! Pins from key material: certificates, public keys and private keys, as bytes plus a label
//! for errors. The frontends read the files; this module never does I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::der::{self, BIT_STRING, INTEGER, NULL, OCTET_STRING, OID, SEQUENCE};
use crate::pem;
use crate::tlsa::Tlsa;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// The family of a server key, as the JSON report names it: `rsa`, `ecdsa`, `ed25519`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// RSA.
    Rsa,
    /// ECDSA (P-256 or P-384).
    Ecdsa,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "rsa",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Ed25519 => "ed25519",
        })
    }
}

/// A public key algorithm certwatch can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with a modulus of this many bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// The key family.
    pub fn key_type(self) -> KeyType {
        match self {
            KeyAlgorithm::Rsa { .. } => KeyType::Rsa,
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => KeyType::Ecdsa,
            KeyAlgorithm::Ed25519 => KeyType::Ed25519,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The format a pin was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFormat {
    /// An X.509 certificate (the first one of a chain file).
    Certificate,
    /// A SubjectPublicKeyInfo (`PUBLIC KEY`).
    Spki,
    /// A PKCS#1 RSA public key (`RSA PUBLIC KEY`).
    Pkcs1Public,
    /// A PKCS#8 private key (`PRIVATE KEY`).
    Pkcs8,
    /// A SEC1 EC private key (`EC PRIVATE KEY`).
    Sec1,
    /// A PKCS#1 RSA private key (`RSA PRIVATE KEY`).
    Pkcs1,
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFormat::Certificate => "X.509 certificate",
            KeyFormat::Spki => "SubjectPublicKeyInfo",
            KeyFormat::Pkcs1Public => "PKCS#1 RSA public key",
            KeyFormat::Pkcs8 => "PKCS#8 private key",
            KeyFormat::Sec1 => "SEC1 EC private key",
            KeyFormat::Pkcs1 => "PKCS#1 RSA private key",
        })
    }
}

/// The formats tried on DER input, in order (named in errors).
const DER_FORMATS: &str = "X.509 certificate DER, SubjectPublicKeyInfo DER, PKCS#8 DER, SEC1 EC private key DER, PKCS#1 RSA private key DER, PKCS#1 RSA public key DER";
/// The PEM labels understood (named in errors).
const PEM_LABELS: &str =
    "CERTIFICATE, PUBLIC KEY, RSA PUBLIC KEY, PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY";

/// Why key material could not be turned into a pin. Every variant names the input's label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Nothing in the input.
    #[error("{label}: empty input; expected a certificate, public key or private key (PEM or DER)")]
    Empty {
        /// The input's label (a file name).
        label: String,
    },
    /// The bytes are not in any format certwatch reads.
    #[error("{label}: not a certificate, public key or private key; tried {tried}")]
    Unrecognised {
        /// The input's label.
        label: String,
        /// The formats that were tried.
        tried: String,
    },
    /// The PEM text is damaged.
    #[error("{label}: PEM section {pem_label:?} is damaged: {problem}")]
    BadPem {
        /// The input's label.
        label: String,
        /// The PEM label of the section.
        pem_label: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The structure was recognised but is invalid.
    #[error("{label}: invalid {format}: {problem}")]
    Invalid {
        /// The input's label.
        label: String,
        /// The format that was being read.
        format: KeyFormat,
        /// What is wrong.
        problem: String,
    },
    /// The key's algorithm is not one certwatch pins.
    #[error(
        "{label}: {format} holds an unsupported key algorithm ({algorithm}); supported: RSA, ECDSA P-256, ECDSA P-384, Ed25519"
    )]
    UnsupportedAlgorithm {
        /// The input's label.
        label: String,
        /// The format that was being read.
        format: KeyFormat,
        /// The algorithm found (an OID or a name).
        algorithm: String,
    },
    /// An encrypted private key.
    #[error(
        "{label}: the private key is encrypted (PEM {pem_label:?}); decrypt it first (for example `openssl pkey -in KEY -out plain.key`), or give the certificate instead"
    )]
    Encrypted {
        /// The input's label.
        label: String,
        /// The PEM label.
        pem_label: String,
    },
}

/// A key to pin: the SubjectPublicKeyInfo DER of a server key, and where it came from.
///
/// ```
/// # let pem = include_bytes!("../tests/data/p256.spki.pem");
/// # let expected = include_str!("../tests/data/p256.sha256").trim();
/// use certwatch_core::{pin_from_key_material, KeyType};
/// let pin = pin_from_key_material(pem, "p256.spki.pem")?;
/// assert_eq!(pin.algorithm().key_type(), KeyType::Ecdsa);
/// assert_eq!(pin.tlsa().to_string(), format!("3 1 1 {expected}"));
/// assert_eq!(
///     pin.zone_line("XMPP.example.net", 5222, 3600),
///     format!("_5222._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 {expected}")
/// );
/// # Ok::<(), certwatch_core::KeyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pin {
    spki: Vec<u8>,
    algorithm: KeyAlgorithm,
    format: KeyFormat,
}

impl Pin {
    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The format the key was read from.
    pub fn format(&self) -> KeyFormat {
        self.format
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER.
    pub fn spki_sha256(&self) -> [u8; 32] {
        spki_sha256(&self.spki)
    }

    /// The recommended record: `3 1 1 <sha256 of SPKI>`.
    pub fn tlsa(&self) -> Tlsa {
        Tlsa::dane_ee_spki_sha256(self.spki_sha256())
    }

    /// The zone-file line `_<port>._tcp.<host>. <ttl> IN TLSA 3 1 1 <hex>`.
    pub fn zone_line(&self, host: &str, port: u16, ttl: u32) -> String {
        crate::advice::tlsa_zone_line(host, port, ttl, &self.tlsa())
    }
}

/// SHA-256 of a SubjectPublicKeyInfo DER: the data of a `3 1 1` record.
pub fn spki_sha256(spki_der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, spki_der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The algorithm of a SubjectPublicKeyInfo DER, if certwatch supports it.
pub fn spki_algorithm(spki_der: &[u8]) -> Option<KeyAlgorithm> {
    parse_spki(spki_der).ok()
}

/// Reads a certificate (PEM or DER; the first of a full chain), a public key (SPKI PEM or
/// DER, PKCS#1 RSA public key) or a private key (PKCS#8, SEC1 EC, PKCS#1 RSA; PEM or DER) for
/// RSA, P-256, P-384 or Ed25519, and returns the pin of its public key.
///
/// `label` (usually the file name) appears in every error, with the formats that were tried.
pub fn pin_from_key_material(bytes: &[u8], label: &str) -> Result<Pin, KeyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(KeyError::Empty {
            label: label.to_owned(),
        });
    }
    if pem::looks_like_pem(bytes) {
        from_pem(bytes, label)
    } else {
        from_der(bytes, label)
    }
}

fn from_pem(bytes: &[u8], label: &str) -> Result<Pin, KeyError> {
    let sections = pem::parse(bytes).map_err(|e| match e {
        pem::PemError::Unterminated(l) => KeyError::BadPem {
            label: label.to_owned(),
            pem_label: l,
            problem: "no END line",
        },
        pem::PemError::BadBase64(l) => KeyError::BadPem {
            label: label.to_owned(),
            pem_label: l,
            problem: "the body is not base64",
        },
    })?;
    let mut seen = Vec::new();
    for s in &sections {
        let format = match s.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => KeyFormat::Certificate,
            "PUBLIC KEY" => KeyFormat::Spki,
            "RSA PUBLIC KEY" => KeyFormat::Pkcs1Public,
            "PRIVATE KEY" => KeyFormat::Pkcs8,
            "EC PRIVATE KEY" => KeyFormat::Sec1,
            "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyError::Encrypted {
                    label: label.to_owned(),
                    pem_label: s.label.clone(),
                });
            }
            other => {
                seen.push(other.to_owned());
                continue;
            }
        };
        if s.encrypted {
            return Err(KeyError::Encrypted {
                label: label.to_owned(),
                pem_label: s.label.clone(),
            });
        }
        return read_format(&s.der, format, label, s.label == "TRUSTED CERTIFICATE");
    }
    Err(KeyError::Unrecognised {
        label: label.to_owned(),
        tried: if seen.is_empty() {
            format!("PEM ({PEM_LABELS}), but no section was found")
        } else {
            format!("PEM ({PEM_LABELS}), but found only {}", seen.join(", "))
        },
    })
}

fn from_der(bytes: &[u8], label: &str) -> Result<Pin, KeyError> {
    let order = [
        KeyFormat::Certificate,
        KeyFormat::Spki,
        KeyFormat::Pkcs8,
        KeyFormat::Sec1,
        KeyFormat::Pkcs1,
        KeyFormat::Pkcs1Public,
    ];
    let mut unsupported = None;
    for format in order {
        match read_format(bytes, format, label, false) {
            Ok(pin) => return Ok(pin),
            Err(e @ KeyError::UnsupportedAlgorithm { .. }) => {
                unsupported.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    Err(unsupported.unwrap_or_else(|| KeyError::Unrecognised {
        label: label.to_owned(),
        tried: format!("{DER_FORMATS}, and PEM ({PEM_LABELS})"),
    }))
}

/// A structural failure while reading one format.
enum Fail {
    Invalid(String),
    Unsupported(String),
}

fn invalid<T>(problem: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Invalid(problem.into()))
}

fn read_format(
    der: &[u8],
    format: KeyFormat,
    label: &str,
    trailing_ok: bool,
) -> Result<Pin, KeyError> {
    let spki = match format {
        KeyFormat::Certificate => cert_spki(der, trailing_ok),
        KeyFormat::Spki => Ok(der.to_vec()),
        KeyFormat::Pkcs1Public => pkcs1_public_spki(der),
        KeyFormat::Pkcs8 => pkcs8_spki(der),
        KeyFormat::Sec1 => sec1_spki(der, None),
        KeyFormat::Pkcs1 => pkcs1_private_spki(der),
    };
    let result = spki.and_then(|spki| parse_spki(&spki).map(|alg| (spki, alg)));
    match result {
        Ok((spki, algorithm)) => Ok(Pin {
            spki,
            algorithm,
            format,
        }),
        Err(Fail::Invalid(problem)) => Err(KeyError::Invalid {
            label: label.to_owned(),
            format,
            problem,
        }),
        Err(Fail::Unsupported(algorithm)) => Err(KeyError::UnsupportedAlgorithm {
            label: label.to_owned(),
            format,
            algorithm,
        }),
    }
}

fn cert_spki(der: &[u8], trailing_ok: bool) -> Result<Vec<u8>, Fail> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((rest, cert)) if rest.is_empty() || trailing_ok => Ok(cert.public_key().raw.to_vec()),
        Ok(_) => invalid("trailing bytes after the certificate"),
        Err(e) => invalid(format!("not an X.509 certificate ({e})")),
    }
}

fn oid_name(oid: &[u8]) -> String {
    // Dotted form for messages.
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        }
        if i > 64 {
            break;
        }
    }
    let dotted: Vec<String> = parts.iter().map(u64::to_string).collect();
    format!("OID {}", dotted.join("."))
}

/// Checks a SubjectPublicKeyInfo and says which algorithm it holds.
fn parse_spki(spki: &[u8]) -> Result<KeyAlgorithm, Fail> {
    let Some(outer) = der::read_all(spki).filter(|t| t.tag == SEQUENCE) else {
        return invalid("not a DER SEQUENCE");
    };
    let Some((alg, rest)) = der::expect(outer.contents, SEQUENCE) else {
        return invalid("missing AlgorithmIdentifier");
    };
    let Some((bits, [])) = der::expect(rest, BIT_STRING) else {
        return invalid("missing subjectPublicKey BIT STRING");
    };
    let Some((&0, key)) = bits.contents.split_first() else {
        return invalid("subjectPublicKey has unused bits");
    };
    let Some((oid, params)) = der::expect(alg.contents, OID) else {
        return invalid("AlgorithmIdentifier without OID");
    };
    match oid.contents {
        OID_RSA => {
            if !(params.is_empty() || params == [NULL, 0]) {
                return invalid("RSA parameters are not NULL");
            }
            let bits = rsa_public_bits(key)?;
            Ok(KeyAlgorithm::Rsa { bits })
        }
        OID_EC_PUBLIC_KEY => {
            let Some((curve, [])) = der::expect(params, OID) else {
                return invalid("EC key without a named curve");
            };
            let (alg, field) = match curve.contents {
                OID_P256 => (KeyAlgorithm::EcdsaP256, 32),
                OID_P384 => (KeyAlgorithm::EcdsaP384, 48),
                other => return Err(Fail::Unsupported(format!("EC curve {}", oid_name(other)))),
            };
            let ok = match key.first() {
                Some(4) => key.len() == 1 + 2 * field,
                Some(2 | 3) => key.len() == 1 + field,
                _ => false,
            };
            if !ok {
                return invalid("EC point has the wrong length or form");
            }
            Ok(alg)
        }
        OID_ED25519 => {
            if !params.is_empty() {
                return invalid("Ed25519 with parameters");
            }
            if key.len() != 32 {
                return invalid("Ed25519 public key is not 32 bytes");
            }
            Ok(KeyAlgorithm::Ed25519)
        }
        other => Err(Fail::Unsupported(oid_name(other))),
    }
}

/// Reads a PKCS#1 RSAPublicKey and returns the modulus size in bits.
fn rsa_public_bits(key: &[u8]) -> Result<usize, Fail> {
    let Some(seq) = der::read_all(key).filter(|t| t.tag == SEQUENCE) else {
        return invalid("RSA public key is not a SEQUENCE");
    };
    let Some((n, rest)) = der::expect(seq.contents, INTEGER) else {
        return invalid("RSA modulus missing");
    };
    let Some((_e, [])) = der::expect(rest, INTEGER) else {
        return invalid("RSA exponent missing");
    };
    positive_bits(n.contents).ok_or(Fail::Invalid("RSA modulus is not positive".into()))
}

fn positive_bits(int: &[u8]) -> Option<usize> {
    if int.first().is_none_or(|b| b & 0x80 != 0) {
        return None;
    }
    let skip = int.iter().take_while(|b| **b == 0).count();
    let rest = &int[skip..];
    let first = *rest.first()?;
    Some(rest.len() * 8 - first.leading_zeros() as usize)
}

fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut pk = Vec::new();
    pk.extend_from_slice(n);
    pk.extend_from_slice(e);
    let pk = der::encode(SEQUENCE, &pk);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&pk);
    let mut alg = der::encode(OID, OID_RSA);
    alg.extend_from_slice(&[NULL, 0]);
    let mut body = der::encode(SEQUENCE, &alg);
    body.extend_from_slice(&der::encode(BIT_STRING, &bits));
    der::encode(SEQUENCE, &body)
}

fn pkcs1_public_spki(der: &[u8]) -> Result<Vec<u8>, Fail> {
    let Some(seq) = der::read_all(der).filter(|t| t.tag == SEQUENCE) else {
        return invalid("not a DER SEQUENCE");
    };
    let Some((n, rest)) = der::expect(seq.contents, INTEGER) else {
        return invalid("modulus missing");
    };
    let Some((e, [])) = der::expect(rest, INTEGER) else {
        return invalid("exponent missing");
    };
    Ok(rsa_spki(n.raw, e.raw))
}

fn pkcs1_private_spki(der: &[u8]) -> Result<Vec<u8>, Fail> {
    let Some(seq) = der::read_all(der).filter(|t| t.tag == SEQUENCE) else {
        return invalid("not a DER SEQUENCE");
    };
    let Some((version, rest)) = der::expect(seq.contents, INTEGER) else {
        return invalid("version missing");
    };
    if version.contents != [0] && version.contents != [1] {
        return invalid("unknown version");
    }
    let Some((n, rest)) = der::expect(rest, INTEGER) else {
        return invalid("modulus missing");
    };
    let Some((e, rest)) = der::expect(rest, INTEGER) else {
        return invalid("public exponent missing");
    };
    // The private exponent must follow, so that a public key is not taken for a private one.
    if der::expect(rest, INTEGER).is_none() {
        return invalid("private exponent missing");
    }
    Ok(rsa_spki(n.raw, e.raw))
}

fn ec_spki(curve_oid: &[u8], point_bits: &[u8]) -> Vec<u8> {
    let mut alg = der::encode(OID, OID_EC_PUBLIC_KEY);
    alg.extend_from_slice(&der::encode(OID, curve_oid));
    let mut body = der::encode(SEQUENCE, &alg);
    body.extend_from_slice(&der::encode(BIT_STRING, point_bits));
    der::encode(SEQUENCE, &body)
}

/// SEC1 ECPrivateKey; `curve` comes from the PKCS#8 wrapper when there is one.
fn sec1_spki(der: &[u8], outer_curve: Option<&[u8]>) -> Result<Vec<u8>, Fail> {
    let Some(seq) = der::read_all(der).filter(|t| t.tag == SEQUENCE) else {
        return invalid("not a DER SEQUENCE");
    };
    let Some((version, mut rest)) = der::expect(seq.contents, INTEGER) else {
        return invalid("version missing");
    };
    if version.contents != [1] {
        return invalid("version is not 1");
    }
    match der::expect(rest, OCTET_STRING) {
        Some((_, r)) => rest = r,
        None => return invalid("private key OCTET STRING missing"),
    }
    let mut curve = None;
    let mut public = None;
    while let Some((tlv, r)) = der::read(rest) {
        rest = r;
        match tlv.tag {
            0xa0 => match der::read_all(tlv.contents).filter(|t| t.tag == OID) {
                Some(oid) => curve = Some(oid.contents),
                None => return invalid("parameters are not a named curve"),
            },
            0xa1 => match der::read_all(tlv.contents).filter(|t| t.tag == BIT_STRING) {
                Some(bits) => public = Some(bits.contents),
                None => return invalid("publicKey is not a BIT STRING"),
            },
            _ => return invalid("unexpected field"),
        }
    }
    if !rest.is_empty() {
        return invalid("trailing bytes");
    }
    let curve = match (curve, outer_curve) {
        (Some(a), Some(b)) if a != b => {
            return invalid("the curve of the key differs from the PKCS#8 algorithm");
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return invalid("no curve named"),
    };
    let Some(public) = public else {
        return invalid(
            "no public key inside (certwatch does not compute it; give the certificate or `openssl pkey -pubout` output)",
        );
    };
    Ok(ec_spki(curve, public))
}

fn pkcs8_spki(der: &[u8]) -> Result<Vec<u8>, Fail> {
    let Some(seq) = der::read_all(der).filter(|t| t.tag == SEQUENCE) else {
        return invalid("not a DER SEQUENCE");
    };
    let Some((version, rest)) = der::expect(seq.contents, INTEGER) else {
        return invalid("version missing");
    };
    if version.contents != [0] && version.contents != [1] {
        return invalid("unknown version");
    }
    let Some((alg, rest)) = der::expect(rest, SEQUENCE) else {
        return invalid("AlgorithmIdentifier missing");
    };
    let Some((key, mut rest)) = der::expect(rest, OCTET_STRING) else {
        return invalid("privateKey OCTET STRING missing");
    };
    let mut public = None;
    while let Some((tlv, r)) = der::read(rest) {
        rest = r;
        match tlv.tag {
            0xa0 => {}
            0x81 => public = Some(tlv.contents),
            _ => return invalid("unexpected field"),
        }
    }
    if !rest.is_empty() {
        return invalid("trailing bytes");
    }
    let Some((oid, params)) = der::expect(alg.contents, OID) else {
        return invalid("AlgorithmIdentifier without OID");
    };
    match oid.contents {
        OID_RSA => pkcs1_private_spki(key.contents),
        OID_EC_PUBLIC_KEY => {
            let Some((curve, [])) = der::expect(params, OID) else {
                return invalid("EC key without a named curve");
            };
            sec1_spki(key.contents, Some(curve.contents))
        }
        OID_ED25519 => {
            let Some(seed) = der::read_all(key.contents).filter(|t| t.tag == OCTET_STRING) else {
                return invalid("Ed25519 private key is not an OCTET STRING");
            };
            let Ok(pair) = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.contents)
            else {
                return invalid("Ed25519 private key is not 32 bytes");
            };
            let derived = ring::signature::KeyPair::public_key(&pair)
                .as_ref()
                .to_vec();
            if let Some(public) = public
                && public.get(1..) != Some(&derived[..])
            {
                return invalid("the embedded public key does not belong to the private key");
            }
            let mut alg = der::encode(OID, OID_ED25519);
            alg = der::encode(SEQUENCE, &alg);
            let mut bits = vec![0u8];
            bits.extend_from_slice(&derived);
            alg.extend_from_slice(&der::encode(BIT_STRING, &bits));
            Ok(der::encode(SEQUENCE, &alg))
        }
        other => Err(Fail::Unsupported(oid_name(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_names() {
        assert_eq!(oid_name(OID_RSA), "OID 1.2.840.113549.1.1.1");
        assert_eq!(oid_name(OID_P384), "OID 1.3.132.0.34");
    }

    #[test]
    fn errors_name_label_and_formats() {
        let e = pin_from_key_material(b"hello", "x.pem").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("x.pem: "), "{msg}");
        assert!(msg.contains("PKCS#8 DER") && msg.contains("SEC1"), "{msg}");
        let e = pin_from_key_material(b"  \n", "empty.pem").unwrap_err();
        assert!(matches!(e, KeyError::Empty { .. }));
        let e = pin_from_key_material(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "enc.pem",
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::Encrypted { .. }), "{e}");
        let e = pin_from_key_material(
            b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n",
            "c.pem",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("c.pem: invalid X.509 certificate"),
            "{e}"
        );
        let e = pin_from_key_material(b"-----BEGIN FOO-----\n-----END FOO-----\n", "f.pem")
            .unwrap_err();
        assert!(e.to_string().contains("found only FOO"), "{e}");
    }

    #[test]
    fn positive_bits_counts() {
        assert_eq!(positive_bits(&[0x00, 0x80, 0x00]), Some(16));
        assert_eq!(positive_bits(&[0x01]), Some(1));
        assert_eq!(positive_bits(&[0x80]), None);
        assert_eq!(positive_bits(&[]), None);
    }
}
