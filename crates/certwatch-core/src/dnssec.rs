//! DNSSEC validation states of an RRset.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The DNSSEC state of one RRset (or of a proven absence), as the resolver established it.
///
/// Serialised as two fields, so that a report can `#[serde(flatten)]` it:
/// `{"dnssec": "bogus", "dnssec_reason": "RRSIG expired"}`; `dnssec_reason` is `null` for
/// `secure` and `insecure`.
///
/// ```
/// use certwatch_core::DnssecStatus;
/// let s = DnssecStatus::Bogus { reason: "RRSIG expired".into() };
/// assert_eq!(s.as_str(), "bogus");
/// assert_eq!(s.reason(), Some("RRSIG expired"));
/// assert_eq!(
///     serde_json::to_string(&s).unwrap(),
///     r#"{"dnssec":"bogus","dnssec_reason":"RRSIG expired"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "DnssecRepr", from = "DnssecRepr")]
pub enum DnssecStatus {
    /// Validated from the trust anchor down.
    Secure,
    /// Provably unsigned (no DS at a delegation, or NSEC3 iterations above the validator's
    /// limit).
    Insecure,
    /// Validation failed: a bad or expired signature, a missing DNSKEY, a broken chain.
    Bogus {
        /// What failed, for the operator.
        reason: String,
    },
    /// No answer could be validated either way: timeout, SERVFAIL, network failure.
    Indeterminate {
        /// What happened, for the operator.
        reason: String,
    },
}

/// The four DNSSEC state names without a reason: `secure`, `insecure`, `bogus`,
/// `indeterminate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecState {
    /// See [`DnssecStatus::Secure`].
    Secure,
    /// See [`DnssecStatus::Insecure`].
    Insecure,
    /// See [`DnssecStatus::Bogus`].
    Bogus,
    /// See [`DnssecStatus::Indeterminate`].
    Indeterminate,
}

impl DnssecState {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DnssecState::Secure => "secure",
            DnssecState::Insecure => "insecure",
            DnssecState::Bogus => "bogus",
            DnssecState::Indeterminate => "indeterminate",
        }
    }
}

impl fmt::Display for DnssecState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Serialize, Deserialize)]
struct DnssecRepr {
    dnssec: DnssecState,
    #[serde(default)]
    dnssec_reason: Option<String>,
}

impl From<DnssecStatus> for DnssecRepr {
    fn from(s: DnssecStatus) -> Self {
        let dnssec = s.state();
        let dnssec_reason = match s {
            DnssecStatus::Secure | DnssecStatus::Insecure => None,
            DnssecStatus::Bogus { reason } | DnssecStatus::Indeterminate { reason } => Some(reason),
        };
        DnssecRepr {
            dnssec,
            dnssec_reason,
        }
    }
}

impl From<DnssecRepr> for DnssecStatus {
    fn from(r: DnssecRepr) -> Self {
        let reason = r.dnssec_reason.unwrap_or_default();
        match r.dnssec {
            DnssecState::Secure => DnssecStatus::Secure,
            DnssecState::Insecure => DnssecStatus::Insecure,
            DnssecState::Bogus => DnssecStatus::Bogus { reason },
            DnssecState::Indeterminate => DnssecStatus::Indeterminate { reason },
        }
    }
}

impl DnssecStatus {
    /// A bogus status with this reason.
    pub fn bogus(reason: impl Into<String>) -> Self {
        DnssecStatus::Bogus {
            reason: reason.into(),
        }
    }

    /// An indeterminate status with this reason.
    pub fn indeterminate(reason: impl Into<String>) -> Self {
        DnssecStatus::Indeterminate {
            reason: reason.into(),
        }
    }

    /// The state without its reason.
    pub fn state(&self) -> DnssecState {
        match self {
            DnssecStatus::Secure => DnssecState::Secure,
            DnssecStatus::Insecure => DnssecState::Insecure,
            DnssecStatus::Bogus { .. } => DnssecState::Bogus,
            DnssecStatus::Indeterminate { .. } => DnssecState::Indeterminate,
        }
    }

    /// The kebab-case name: `secure`, `insecure`, `bogus`, `indeterminate`.
    pub fn as_str(&self) -> &'static str {
        self.state().as_str()
    }

    /// The reason, for `bogus` and `indeterminate`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DnssecStatus::Secure | DnssecStatus::Insecure => None,
            DnssecStatus::Bogus { reason } | DnssecStatus::Indeterminate { reason } => Some(reason),
        }
    }

    /// True only for [`DnssecStatus::Secure`].
    pub fn is_secure(&self) -> bool {
        matches!(self, DnssecStatus::Secure)
    }

    /// Combine the statuses of two RRsets that a conclusion depends on: the worst wins
    /// (bogus > indeterminate > insecure > secure). The first reason is kept on ties.
    pub fn combine(self, other: DnssecStatus) -> DnssecStatus {
        fn rank(s: &DnssecStatus) -> u8 {
            match s {
                DnssecStatus::Secure => 0,
                DnssecStatus::Insecure => 1,
                DnssecStatus::Indeterminate { .. } => 2,
                DnssecStatus::Bogus { .. } => 3,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for DnssecStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(r) => write!(f, "{} ({r})", self.as_str()),
            None => f.write_str(self.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_shape() {
        assert_eq!(
            serde_json::to_string(&DnssecStatus::Secure).unwrap(),
            r#"{"dnssec":"secure","dnssec_reason":null}"#
        );
        let ind = DnssecStatus::indeterminate("SERVFAIL");
        let json = serde_json::to_string(&ind).unwrap();
        assert_eq!(
            json,
            r#"{"dnssec":"indeterminate","dnssec_reason":"SERVFAIL"}"#
        );
        assert_eq!(serde_json::from_str::<DnssecStatus>(&json).unwrap(), ind);
        let ins: DnssecStatus = serde_json::from_str(r#"{"dnssec":"insecure"}"#).unwrap();
        assert_eq!(ins, DnssecStatus::Insecure);
    }

    #[test]
    fn combine_takes_worst() {
        let b = DnssecStatus::bogus("x");
        assert_eq!(
            DnssecStatus::Secure.combine(DnssecStatus::Insecure),
            DnssecStatus::Insecure
        );
        assert_eq!(DnssecStatus::Insecure.combine(b.clone()), b);
        assert_eq!(b.clone().combine(DnssecStatus::indeterminate("t")), b);
        assert_eq!(
            DnssecStatus::Secure.combine(DnssecStatus::Secure),
            DnssecStatus::Secure
        );
    }
}
