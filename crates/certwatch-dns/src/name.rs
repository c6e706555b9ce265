//! Normalising the domain a user typed into the A-label form that goes on the wire.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Why a typed domain was rejected. Nothing is sent to the network for a rejected name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing but spaces (or nothing at all) was typed.
    #[error("the domain is empty")]
    Empty,
    /// An IPv4 or IPv6 literal was typed; XMPP service discovery needs a domain name.
    #[error("`{0}` is an IP address literal, not a domain name")]
    IpLiteral(String),
    /// Two dots in a row, a leading dot, or a dot alone.
    #[error("`{input}` has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel {
        /// The input as typed (trimmed).
        input: String,
    },
    /// A label longer than 63 octets in A-label form.
    #[error("the label `{label}` is {len} octets long; a label has at most 63")]
    LabelTooLong {
        /// The offending label (A-label form).
        label: String,
        /// Its length in octets.
        len: usize,
    },
    /// A name longer than 253 octets in A-label form (without the trailing dot).
    #[error("the name is {len} octets long in A-label form; a name has at most 253")]
    NameTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// A character that host names cannot contain (RFC 952/1123: letters, digits, hyphen).
    #[error("`{character}` in the label `{label}` is not allowed in a host name")]
    BadCharacter {
        /// The character.
        character: char,
        /// The label that holds it.
        label: String,
    },
    /// A label that starts or ends with a hyphen.
    #[error("the label `{label}` starts or ends with a hyphen")]
    Hyphen {
        /// The offending label.
        label: String,
    },
    /// The IDNA (UTS #46) conversion to A-labels failed.
    #[error("`{input}` is not a valid internationalised domain name")]
    Idna {
        /// The input as typed (trimmed).
        input: String,
    },
}

/// A domain name as certwatch uses it: A-labels, lower case, no trailing dot.
///
/// ```
/// use certwatch_dns::DomainName;
/// let d: DomainName = " Exämple.ORG. ".parse().unwrap();
/// assert_eq!(d.as_str(), "xn--exmple-cua.org");
/// assert!("192.0.2.1".parse::<DomainName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// Normalises a typed domain: trims spaces, drops one trailing dot, converts Unicode to
    /// A-labels (IDNA, UTS #46 non-transitional), lower-cases, and checks host-name syntax.
    pub fn normalise(input: &str) -> Result<Self, NameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        let unbracketed = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(trimmed);
        if unbracketed.parse::<IpAddr>().is_ok() {
            return Err(NameError::IpLiteral(trimmed.to_owned()));
        }
        let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
        let empty_label = || NameError::EmptyLabel {
            input: trimmed.to_owned(),
        };
        if without_dot.is_empty() || without_dot.split('.').any(str::is_empty) {
            return Err(empty_label());
        }
        // Characters that UTS #46 would pass through but a host name cannot hold are
        // reported as typed, before the conversion could obscure them.
        for label in without_dot.split('.') {
            if let Some(c) = label
                .chars()
                .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(NameError::BadCharacter {
                    character: c,
                    label: label.to_owned(),
                });
            }
        }
        let ascii = idna::domain_to_ascii(without_dot).map_err(|_| NameError::Idna {
            input: trimmed.to_owned(),
        })?;
        let ascii = ascii
            .strip_suffix('.')
            .unwrap_or(&ascii)
            .to_ascii_lowercase();
        if ascii.is_empty() || ascii.split('.').any(str::is_empty) {
            return Err(empty_label());
        }
        for label in ascii.split('.') {
            if label.len() > 63 {
                return Err(NameError::LabelTooLong {
                    label: label.to_owned(),
                    len: label.len(),
                });
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(NameError::BadCharacter {
                    character: c,
                    label: label.to_owned(),
                });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(NameError::Hyphen {
                    label: label.to_owned(),
                });
            }
        }
        if ascii.len() > 253 {
            return Err(NameError::NameTooLong { len: ascii.len() });
        }
        Ok(DomainName(ascii))
    }

    /// The A-label form, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fully qualified hickory name (with the root label).
    pub(crate) fn to_fqdn(&self) -> hickory_proto::rr::Name {
        let mut n = hickory_proto::rr::Name::from_ascii(&self.0)
            .unwrap_or_else(|_| hickory_proto::rr::Name::root());
        n.set_fqdn(true);
        n
    }
}

impl std::str::FromStr for DomainName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DomainName::normalise(s)
    }
}

impl TryFrom<String> for DomainName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DomainName::normalise(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typed_forms_normalise() {
        assert_eq!(
            DomainName::normalise("Example.ORG").unwrap().as_str(),
            "example.org"
        );
        assert_eq!(
            DomainName::normalise("  example.org.  ").unwrap().as_str(),
            "example.org"
        );
        assert_eq!(
            DomainName::normalise("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            DomainName::normalise("BÜCHER.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        assert_eq!(DomainName::normalise("   "), Err(NameError::Empty));
        assert!(matches!(
            DomainName::normalise("192.0.2.1"),
            Err(NameError::IpLiteral(_))
        ));
        assert!(matches!(
            DomainName::normalise("[2001:db8::1]"),
            Err(NameError::IpLiteral(_))
        ));
        assert!(matches!(
            DomainName::normalise("::1"),
            Err(NameError::IpLiteral(_))
        ));
        assert!(matches!(
            DomainName::normalise("a..b"),
            Err(NameError::EmptyLabel { .. })
        ));
        assert!(matches!(
            DomainName::normalise(".a.b"),
            Err(NameError::EmptyLabel { .. })
        ));
        assert!(matches!(
            DomainName::normalise("."),
            Err(NameError::EmptyLabel { .. })
        ));
        assert!(matches!(
            DomainName::normalise("a.b.."),
            Err(NameError::EmptyLabel { .. })
        ));
        let long = "a".repeat(64);
        assert!(matches!(
            DomainName::normalise(&format!("{long}.org")),
            Err(NameError::LabelTooLong { len: 64, .. })
        ));
        let name = vec!["abcdefghi"; 26].join(".");
        assert_eq!(name.len(), 259);
        assert!(matches!(
            DomainName::normalise(&name),
            Err(NameError::NameTooLong { len: 259 })
        ));
        assert!(matches!(
            DomainName::normalise("exa mple.org"),
            Err(NameError::BadCharacter { character: ' ', .. })
        ));
        assert!(matches!(
            DomainName::normalise("_xmpp.org"),
            Err(NameError::BadCharacter { character: '_', .. })
        ));
        assert!(matches!(
            DomainName::normalise("-a.org"),
            Err(NameError::Hyphen { .. })
        ));
        assert!(matches!(
            DomainName::normalise("a/b.org"),
            Err(NameError::BadCharacter { .. })
        ));
    }

    #[test]
    fn error_messages_name_the_label() {
        let e = DomainName::normalise("exa$mple.org")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exa$mple") && e.contains('$'), "{e}");
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent_and_valid(input in "\\PC{0,80}") {
            if let Ok(d) = DomainName::normalise(&input) {
                let again = DomainName::normalise(d.as_str()).unwrap();
                prop_assert_eq!(&again, &d);
                prop_assert!(d.as_str().len() <= 253);
                prop_assert!(d.as_str().split('.').all(|l| !l.is_empty() && l.len() <= 63));
                prop_assert!(d.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            }
        }

        #[test]
        fn hostnames_survive_decoration(labels in proptest::collection::vec("[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,5})?", 1..5), upper: bool, dot: bool, pad in " {0,3}") {
            let name = labels.join(".");
            let mut typed = if upper { name.to_ascii_uppercase() } else { name.clone() };
            if dot { typed.push('.'); }
            let typed = format!("{pad}{typed}{pad}");
            let got = DomainName::normalise(&typed).map(String::from);
            prop_assert_eq!(got, Ok(name));
        }
    }
}
