//! Certificate association data (RFC 6698 §2.1): the bytes a TLSA record carries for a
//! certificate, for every selector and matching type.

use crate::tlsa::{MatchingType, Selector, Tlsa};

/// Why association data could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssociationError {
    /// The certificate DER does not parse (selector 1 needs its SubjectPublicKeyInfo).
    #[error(
        "{label}: not an X.509 certificate (DER), so it has no SubjectPublicKeyInfo: {problem}"
    )]
    BadCertificate {
        /// The input's label.
        label: String,
        /// What the parser said.
        problem: String,
    },
    /// The selector is private use or unassigned.
    #[error("{label}: selector {value} is not assigned; only 0 (Cert) and 1 (SPKI) are")]
    UnknownSelector {
        /// The input's label.
        label: String,
        /// The value.
        value: u8,
    },
    /// The matching type is private use or unassigned.
    #[error(
        "{label}: matching type {value} is not assigned; only 0 (Full), 1 (SHA2-256) and 2 (SHA2-512) are"
    )]
    UnknownMatchingType {
        /// The input's label.
        label: String,
        /// The value.
        value: u8,
    },
}

/// The SubjectPublicKeyInfo DER of a certificate, exactly as it appears in it.
///
/// Returns `None` if the bytes are not one X.509 certificate.
pub fn certificate_spki(cert_der: &[u8]) -> Option<Vec<u8>> {
    match x509_parser::parse_x509_certificate(cert_der) {
        Ok(([], cert)) => Some(cert.public_key().raw.to_vec()),
        _ => None,
    }
}

/// Applies a matching type to selected content: the content itself, or its SHA-256 or
/// SHA-512 digest. `None` for matching types that are not assigned.
pub fn apply_matching(matching: MatchingType, content: &[u8]) -> Option<Vec<u8>> {
    match matching {
        MatchingType::Full => Some(content.to_vec()),
        MatchingType::Sha256 => Some(
            ring::digest::digest(&ring::digest::SHA256, content)
                .as_ref()
                .to_vec(),
        ),
        MatchingType::Sha512 => Some(
            ring::digest::digest(&ring::digest::SHA512, content)
                .as_ref()
                .to_vec(),
        ),
        MatchingType::PrivateUse | MatchingType::Unassigned(_) => None,
    }
}

/// The association data of a DER certificate for a selector and matching type.
///
/// ```
/// use certwatch_core::{association_data, MatchingType, Selector};
/// let der = include_bytes!("../tests/data/rsa.cert.der");
/// let expected = include_str!("../tests/data/rsa.sha256").trim();
/// let data = association_data(der, Selector::Spki, MatchingType::Sha256, "rsa.cert.der")?;
/// assert_eq!(hex::encode(data), expected);
/// # Ok::<(), certwatch_core::AssociationError>(())
/// ```
pub fn association_data(
    cert_der: &[u8],
    selector: Selector,
    matching: MatchingType,
    label: &str,
) -> Result<Vec<u8>, AssociationError> {
    let content = match selector {
        Selector::Cert => cert_der.to_vec(),
        Selector::Spki => match x509_parser::parse_x509_certificate(cert_der) {
            Ok(([], cert)) => cert.public_key().raw.to_vec(),
            Ok(_) => {
                return Err(AssociationError::BadCertificate {
                    label: label.to_owned(),
                    problem: "trailing bytes after the certificate".into(),
                });
            }
            Err(e) => {
                return Err(AssociationError::BadCertificate {
                    label: label.to_owned(),
                    problem: e.to_string(),
                });
            }
        },
        Selector::PrivateUse | Selector::Unassigned(_) => {
            return Err(AssociationError::UnknownSelector {
                label: label.to_owned(),
                value: selector.to_u8(),
            });
        }
    };
    apply_matching(matching, &content).ok_or_else(|| AssociationError::UnknownMatchingType {
        label: label.to_owned(),
        value: matching.to_u8(),
    })
}
/// True if `record`'s selector and matching type applied to this certificate give its data.
/// Unusable records never match.
pub(crate) fn cert_matches(record: &Tlsa, cert_der: &[u8]) -> bool {
    record.is_usable()
        && association_data(cert_der, record.selector, record.matching, "")
            .is_ok_and(|d| d == record.data)
}

/// True if `record` (selector 1) matches this SubjectPublicKeyInfo DER.
pub(crate) fn spki_matches(record: &Tlsa, spki_der: &[u8]) -> bool {
    record.is_usable()
        && record.selector == Selector::Spki
        && apply_matching(record.matching, spki_der).is_some_and(|d| d == record.data)
}
