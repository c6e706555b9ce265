//! TLSA records (RFC 6698): the model, the RFC 7218 names, and the zone-file presentation
//! format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! tlsa_field {
    (
        $(#[$doc:meta])*
        $name:ident, $what:literal, private: $priv_name:literal,
        { $( $(#[$vdoc:meta])* $variant:ident = $num:literal => $mnemonic:literal ),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            #[doc = concat!("255, `", $priv_name, "`: private use (RFC 7218). Unusable for certwatch.")]
            PrivateUse,
            #[doc = concat!("A ", $what, " value that no RFC assigns. Kept as it was, and unusable.")]
            Unassigned(u8),
        }

        impl $name {
            /// The numeric value carried in the record.
            pub fn to_u8(self) -> u8 {
                match self {
                    $( $name::$variant => $num, )*
                    $name::PrivateUse => 255,
                    $name::Unassigned(n) => n,
                }
            }

            /// The RFC 7218 mnemonic, or `None` for an unassigned value.
            pub fn mnemonic(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($mnemonic), )*
                    $name::PrivateUse => Some($priv_name),
                    $name::Unassigned(_) => None,
                }
            }

            /// True when certwatch knows how to use this value (not private use, not
            /// unassigned).
            pub fn is_known(self) -> bool {
                !matches!(self, $name::PrivateUse | $name::Unassigned(_))
            }
        }

        impl From<u8> for $name {
            fn from(n: u8) -> Self {
                match n {
                    $( $num => $name::$variant, )*
                    255 => $name::PrivateUse,
                    other => $name::Unassigned(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.to_u8()
            }
        }

        impl fmt::Display for $name {
            /// The number, as in the presentation format.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.to_u8())
            }
        }
    };
}

tlsa_field! {
    /// The certificate usage field (RFC 6698 §2.1.1, names of RFC 7218).
    CertUsage, "certificate usage", private: "PrivCert",
    {
        /// 0, `PKIX-TA`: a CA in the chain, plus PKIX validation.
        PkixTa = 0 => "PKIX-TA",
        /// 1, `PKIX-EE`: the end-entity certificate, plus PKIX validation.
        PkixEe = 1 => "PKIX-EE",
        /// 2, `DANE-TA`: a trust anchor that the chain must be signed up to.
        DaneTa = 2 => "DANE-TA",
        /// 3, `DANE-EE`: the end-entity key or certificate, ignoring names and dates.
        DaneEe = 3 => "DANE-EE",
    }
}

tlsa_field! {
    /// The selector field (RFC 6698 §2.1.2, names of RFC 7218).
    Selector, "selector", private: "PrivSel",
    {
        /// 0, `Cert`: the full certificate DER.
        Cert = 0 => "Cert",
        /// 1, `SPKI`: the SubjectPublicKeyInfo DER.
        Spki = 1 => "SPKI",
    }
}

tlsa_field! {
    /// The matching type field (RFC 6698 §2.1.3, names of RFC 7218).
    MatchingType, "matching type", private: "PrivMatch",
    {
        /// 0, `Full`: the selected content itself.
        Full = 0 => "Full",
        /// 1, `SHA2-256`: its SHA-256 digest (32 bytes).
        Sha256 = 1 => "SHA2-256",
        /// 2, `SHA2-512`: its SHA-512 digest (64 bytes).
        Sha512 = 2 => "SHA2-512",
    }
}

impl MatchingType {
    /// The length that the association data must have, for the digest types.
    pub fn digest_len(self) -> Option<usize> {
        match self {
            MatchingType::Sha256 => Some(32),
            MatchingType::Sha512 => Some(64),
            _ => None,
        }
    }
}

/// One TLSA record: usage, selector, matching type and association data.
///
/// Presentation format in and out: `3 1 1 <hex>`, hex case-insensitive in, lowercase out.
/// Serialised with serde as that string.
///
/// ```
/// use certwatch_core::{CertUsage, Selector, MatchingType, Tlsa};
/// let t: Tlsa = "3 1 1 ABCDEF".parse().unwrap();
/// assert_eq!(t.usage, CertUsage::DaneEe);
/// assert_eq!(t.to_string(), "3 1 1 abcdef");
/// // A full zone-file line is accepted too; the owner is dropped here (see `TlsaLine`).
/// let t: Tlsa = "_5222._tcp.xmpp.example. 3600 IN TLSA 2 0 1 00ff".parse().unwrap();
/// assert_eq!(t.usage, CertUsage::DaneTa);
/// assert_eq!(t.selector, Selector::Cert);
/// assert_eq!(t.matching, MatchingType::Sha256);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tlsa {
    /// Certificate usage.
    pub usage: CertUsage,
    /// Selector.
    pub selector: Selector,
    /// Matching type.
    pub matching: MatchingType,
    /// The certificate association data (raw bytes).
    pub data: Vec<u8>,
}

/// Why a TLSA record cannot be used for matching (RFC 6698 §4.1: ignore it, and report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum Unusable {
    /// The usage is private use or unassigned.
    UnknownUsage {
        /// The value.
        value: u8,
    },
    /// The selector is private use or unassigned.
    UnknownSelector {
        /// The value.
        value: u8,
    },
    /// The matching type is private use or unassigned.
    UnknownMatchingType {
        /// The value.
        value: u8,
    },
    /// A digest of the wrong length for its matching type.
    WrongDigestLength {
        /// The length the matching type requires.
        expected: usize,
        /// The length that was published.
        actual: usize,
    },
    /// Empty association data.
    EmptyData,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::UnknownUsage { value } => write!(f, "unknown certificate usage {value}"),
            Unusable::UnknownSelector { value } => write!(f, "unknown selector {value}"),
            Unusable::UnknownMatchingType { value } => write!(f, "unknown matching type {value}"),
            Unusable::WrongDigestLength { expected, actual } => write!(
                f,
                "association data is {actual} bytes, the matching type needs {expected}"
            ),
            Unusable::EmptyData => f.write_str("empty association data"),
        }
    }
}

impl Tlsa {
    /// A record from its four fields.
    pub fn new(
        usage: impl Into<CertUsage>,
        selector: impl Into<Selector>,
        matching: impl Into<MatchingType>,
        data: impl Into<Vec<u8>>,
    ) -> Self {
        Tlsa {
            usage: usage.into(),
            selector: selector.into(),
            matching: matching.into(),
            data: data.into(),
        }
    }

    /// The recommended pin: `3 1 1` with the SHA-256 of a SubjectPublicKeyInfo.
    pub fn dane_ee_spki_sha256(digest: [u8; 32]) -> Self {
        Tlsa::new(
            CertUsage::DaneEe,
            Selector::Spki,
            MatchingType::Sha256,
            digest.to_vec(),
        )
    }

    /// `Ok(())` if certwatch can match against this record, or why it cannot.
    pub fn usability(&self) -> Result<(), Unusable> {
        if !self.usage.is_known() {
            return Err(Unusable::UnknownUsage {
                value: self.usage.to_u8(),
            });
        }
        if !self.selector.is_known() {
            return Err(Unusable::UnknownSelector {
                value: self.selector.to_u8(),
            });
        }
        if !self.matching.is_known() {
            return Err(Unusable::UnknownMatchingType {
                value: self.matching.to_u8(),
            });
        }
        if self.data.is_empty() {
            return Err(Unusable::EmptyData);
        }
        if let Some(expected) = self.matching.digest_len()
            && self.data.len() != expected
        {
            return Err(Unusable::WrongDigestLength {
                expected,
                actual: self.data.len(),
            });
        }
        Ok(())
    }

    /// True if [`Tlsa::usability`] is `Ok`.
    pub fn is_usable(&self) -> bool {
        self.usability().is_ok()
    }

    /// The association data as lowercase hex.
    pub fn data_hex(&self) -> String {
        hex::encode(&self.data)
    }

    /// The mnemonic form, e.g. `DANE-EE SPKI SHA2-256 <hex>` (numbers for unassigned values).
    pub fn mnemonic(&self) -> String {
        fn name(m: Option<&'static str>, n: u8) -> String {
            m.map_or_else(|| n.to_string(), str::to_owned)
        }
        format!(
            "{} {} {} {}",
            name(self.usage.mnemonic(), self.usage.to_u8()),
            name(self.selector.mnemonic(), self.selector.to_u8()),
            name(self.matching.mnemonic(), self.matching.to_u8()),
            self.data_hex()
        )
    }
}

impl fmt::Display for Tlsa {
    /// The bare rdata: `3 1 1 <lowercase hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            self.data_hex()
        )
    }
}

/// The error for text that is not a TLSA record in presentation format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsaParseError {
    /// Fewer than four rdata fields.
    #[error(
        "TLSA record {input:?}: expected `usage selector matching-type hex` (bare rdata or a zone-file line), found {found} field(s)"
    )]
    MissingFields {
        /// The input, shortened.
        input: String,
        /// How many rdata fields were found.
        found: usize,
    },
    /// A numeric field is not a number from 0 to 255.
    #[error("TLSA record {input:?}: {field} {value:?} is not a number from 0 to 255")]
    BadNumber {
        /// The input, shortened.
        input: String,
        /// Which field: `usage`, `selector` or `matching type`.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// The association data is not hexadecimal.
    #[error(
        "TLSA record {input:?}: association data is not hexadecimal (an even number of 0-9a-f digits)"
    )]
    BadHex {
        /// The input, shortened.
        input: String,
    },
    /// The zone-file line's TTL or class is not understood.
    #[error(
        "TLSA record {input:?}: unexpected {token:?} before TLSA (expected owner, TTL, class IN)"
    )]
    BadPrefix {
        /// The input, shortened.
        input: String,
        /// The token that was not understood.
        token: String,
    },
}

/// A TLSA record parsed from a zone-file line, with the owner and TTL when given.
///
/// ```
/// use certwatch_core::TlsaLine;
/// let l: TlsaLine = "_5222._tcp.xmpp.example. 300 IN TLSA 3 1 1 AA".parse().unwrap();
/// assert_eq!(l.owner.as_deref(), Some("_5222._tcp.xmpp.example."));
/// assert_eq!(l.ttl, Some(300));
/// assert_eq!(l.to_string(), "_5222._tcp.xmpp.example. 300 IN TLSA 3 1 1 aa");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TlsaLine {
    /// The owner name as written, if the line had one.
    pub owner: Option<String>,
    /// The TTL, if the line had one.
    pub ttl: Option<u32>,
    /// The record.
    pub record: Tlsa,
}

impl TlsaLine {
    /// A line with owner and TTL.
    pub fn new(owner: impl Into<String>, ttl: u32, record: Tlsa) -> Self {
        TlsaLine {
            owner: Some(owner.into()),
            ttl: Some(ttl),
            record,
        }
    }
}

impl fmt::Display for TlsaLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(owner) = &self.owner {
            write!(f, "{owner} ")?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, "{ttl} ")?;
        }
        if self.owner.is_some() || self.ttl.is_some() {
            f.write_str("IN TLSA ")?;
        }
        write!(f, "{}", self.record)
    }
}

fn shorten(input: &str) -> String {
    const MAX: usize = 120;
    if input.len() <= MAX {
        return input.to_owned();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &input[..end])
}

fn is_class(tok: &str) -> bool {
    ["IN", "CH", "HS", "CS"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(tok))
        || (tok.len() > 5
            && tok
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("CLASS")))
}

fn parse_line(input: &str) -> Result<TlsaLine, TlsaParseError> {
    // Drop a comment, and the parentheses of a multi-line record.
    let body = input.split(';').next().unwrap_or("");
    let tokens: Vec<&str> = body
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .collect();
    let (owner, ttl, rdata) = match tokens.iter().position(|t| t.eq_ignore_ascii_case("TLSA")) {
        Some(pos) => {
            let mut owner = None;
            let mut ttl = None;
            for (i, tok) in tokens[..pos].iter().enumerate() {
                if let Ok(n) = tok.parse::<u32>() {
                    if ttl.is_some() {
                        return Err(TlsaParseError::BadPrefix {
                            input: shorten(input),
                            token: (*tok).to_owned(),
                        });
                    }
                    ttl = Some(n);
                } else if is_class(tok) {
                } else if i == 0 {
                    owner = Some((*tok).to_owned());
                } else {
                    return Err(TlsaParseError::BadPrefix {
                        input: shorten(input),
                        token: (*tok).to_owned(),
                    });
                }
            }
            (owner, ttl, &tokens[pos + 1..])
        }
        None => (None, None, &tokens[..]),
    };
    // RFC 3597 generic form: `\# <length> <hex of usage, selector, matching type, data>`.
    if rdata.first() == Some(&"\\#") {
        let bad = || TlsaParseError::BadHex {
            input: shorten(input),
        };
        let len: usize =
            rdata
                .get(1)
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| TlsaParseError::BadNumber {
                    input: shorten(input),
                    field: "generic rdata length",
                    value: rdata.get(1).map_or_else(String::new, |s| (*s).to_owned()),
                })?;
        let bytes = hex::decode(rdata.get(2..).unwrap_or_default().concat()).map_err(|_| bad())?;
        if bytes.len() != len || bytes.len() < 4 {
            return Err(TlsaParseError::MissingFields {
                input: shorten(input),
                found: bytes.len().min(3),
            });
        }
        return Ok(TlsaLine {
            owner,
            ttl,
            record: Tlsa::new(bytes[0], bytes[1], bytes[2], bytes[3..].to_vec()),
        });
    }
    if rdata.len() < 4 {
        return Err(TlsaParseError::MissingFields {
            input: shorten(input),
            found: rdata.len(),
        });
    }
    let num = |field: &'static str, tok: &str| {
        tok.parse::<u8>().map_err(|_| TlsaParseError::BadNumber {
            input: shorten(input),
            field,
            value: tok.to_owned(),
        })
    };
    let usage = num("usage", rdata[0])?;
    let selector = num("selector", rdata[1])?;
    let matching = num("matching type", rdata[2])?;
    let hex_text: String = rdata[3..].concat();
    let data = hex::decode(&hex_text).map_err(|_| TlsaParseError::BadHex {
        input: shorten(input),
    })?;
    Ok(TlsaLine {
        owner,
        ttl,
        record: Tlsa::new(usage, selector, matching, data),
    })
}

impl FromStr for TlsaLine {
    type Err = TlsaParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_line(s)
    }
}

impl FromStr for Tlsa {
    type Err = TlsaParseError;

    /// Parses bare rdata (`3 1 1 <hex>`) or a zone-file line (`owner [ttl] [IN] TLSA ...`).
    /// The hex may be split by white space or parentheses, as zone files allow.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_line(s).map(|l| l.record)
    }
}

impl Serialize for Tlsa {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Tlsa {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let t: Tlsa = "3 1 1 AbCd".parse().unwrap();
        assert_eq!(t.data, vec![0xab, 0xcd]);
        assert_eq!(t.to_string(), "3 1 1 abcd");
        assert_eq!(t.mnemonic(), "DANE-EE SPKI SHA2-256 abcd");
    }

    #[test]
    fn non_ascii_before_tlsa_is_an_error_not_a_panic() {
        // Found by cargo fuzz: a multi-byte character inside the first five bytes of a token.
        let e = "\u{fffd}\u{fffd}5a b c TLSA 3 1 1 00".parse::<Tlsa>();
        assert!(matches!(e, Err(TlsaParseError::BadPrefix { .. })), "{e:?}");
        let ok: TlsaLine = "h. CLASS1 TLSA 3 1 1 00".parse().unwrap();
        assert_eq!(ok.owner.as_deref(), Some("h."));
    }

    #[test]
    fn parses_rfc3597_generic_rdata() {
        let t: Tlsa = "_5222._tcp.h. 300 IN TLSA \\# 5 030101 AB cd"
            .parse()
            .unwrap();
        assert_eq!(t.to_string(), "3 1 1 abcd");
        assert!("\\# 9 030101abcd".parse::<Tlsa>().is_err());
        assert!("\\# x 030101abcd".parse::<Tlsa>().is_err());
        assert!("\\# 3 030101".parse::<Tlsa>().is_err());
    }

    #[test]
    fn parses_multiline_zone_record() {
        let t: Tlsa = "_25._tcp.mx.example. IN TLSA ( 3 1 1\n 00 11 ) ; comment"
            .parse()
            .unwrap();
        assert_eq!(t.to_string(), "3 1 1 0011");
    }

    #[test]
    fn keeps_unknown_values_and_marks_unusable() {
        let t: Tlsa = "4 1 1 00".parse().unwrap();
        assert_eq!(t.usage, CertUsage::Unassigned(4));
        assert_eq!(t.usability(), Err(Unusable::UnknownUsage { value: 4 }));
        assert_eq!(t.to_string(), "4 1 1 00");
        let t: Tlsa = "3 255 0 00".parse().unwrap();
        assert_eq!(t.selector, Selector::PrivateUse);
        assert_eq!(t.usability(), Err(Unusable::UnknownSelector { value: 255 }));
        let t: Tlsa = "3 1 7 00".parse().unwrap();
        assert_eq!(
            t.usability(),
            Err(Unusable::UnknownMatchingType { value: 7 })
        );
        let t: Tlsa = "3 1 1 00".parse().unwrap();
        assert_eq!(
            t.usability(),
            Err(Unusable::WrongDigestLength {
                expected: 32,
                actual: 1
            })
        );
        let t: Tlsa = format!("3 1 1 {}", "ab".repeat(32)).parse().unwrap();
        assert!(t.is_usable());
    }

    #[test]
    fn rejects_garbage_with_named_errors() {
        assert!(matches!(
            "3 1 1".parse::<Tlsa>(),
            Err(TlsaParseError::MissingFields { found: 3, .. })
        ));
        assert!(matches!(
            "3 256 1 00".parse::<Tlsa>(),
            Err(TlsaParseError::BadNumber {
                field: "selector",
                ..
            })
        ));
        assert!(matches!(
            "3 1 1 0g".parse::<Tlsa>(),
            Err(TlsaParseError::BadHex { .. })
        ));
        assert!(matches!(
            "3 1 1 abc".parse::<Tlsa>(),
            Err(TlsaParseError::BadHex { .. })
        ));
        assert!(matches!(
            "a b c TLSA 3 1 1 00".parse::<Tlsa>(),
            Err(TlsaParseError::BadPrefix { .. })
        ));
        let msg = "3 x 1 00".parse::<Tlsa>().unwrap_err().to_string();
        assert!(
            msg.contains("\"3 x 1 00\"") && msg.contains("selector"),
            "{msg}"
        );
    }

    #[test]
    fn serde_as_string() {
        let t: Tlsa = "2 0 2 ff".parse().unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2 0 2 ff\"");
        assert_eq!(serde_json::from_str::<Tlsa>("\"2 0 2 FF\"").unwrap(), t);
    }
}
