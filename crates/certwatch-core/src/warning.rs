//! Warnings: a stable code for machines and a message for people.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable code of a [`Warning`]. Serialised kebab-case (`weak-pin`, ...); the codes are
/// part of the JSON schema and never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum WarningCode {
    /// A pin that an attacker with a certificate from the same public CA also satisfies
    /// (`2 x x` on a public CA, PKIX usages), or a match only through such a pin.
    WeakPin,
    /// A `3 0 x` pin: it changes at every certificate renewal.
    PinChangesOnRenewal,
    /// Only one key is pinned: there is no slot for the next key of a rollover.
    NoRolloverSlot,
    /// A TLSA record that certwatch cannot use (unknown usage, selector or matching type, or a
    /// digest of the wrong length). It is ignored.
    UnusableRecord,
    /// An RRSIG that a conclusion depends on expires soon.
    SignatureExpiring,
    /// NSEC3 with more iterations than validators accept (RFC 9276): the zone is treated as
    /// insecure.
    Nsec3Iterations,
    /// A minority of vantage points (Tor exits) saw a different key: those exits are hostile,
    /// the server is not.
    HostileExit,
    /// The exits of the vantage points could not be seen (SOCKS): their diversity is
    /// unverified.
    DiversityUnverified,
    /// One address family (A or AAAA) of a host is not secure; DANE does not apply to it.
    InsecureAddresses,
    /// A CNAME was followed for a host or TLSA name (RFC 7671 §7).
    CnameFollowed,
    /// An SRV target of `.`: the service is explicitly not offered.
    ServiceNotOffered,
    /// A host without any address.
    NoAddresses,
    /// Zone lines were derived from a live probe, which trusts the connection it came over.
    PinsFromLiveProbe,
}

impl WarningCode {
    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::WeakPin => "weak-pin",
            WarningCode::PinChangesOnRenewal => "pin-changes-on-renewal",
            WarningCode::NoRolloverSlot => "no-rollover-slot",
            WarningCode::UnusableRecord => "unusable-record",
            WarningCode::SignatureExpiring => "signature-expiring",
            WarningCode::Nsec3Iterations => "nsec3-iterations",
            WarningCode::HostileExit => "hostile-exit",
            WarningCode::DiversityUnverified => "diversity-unverified",
            WarningCode::InsecureAddresses => "insecure-addresses",
            WarningCode::CnameFollowed => "cname-followed",
            WarningCode::ServiceNotOffered => "service-not-offered",
            WarningCode::NoAddresses => "no-addresses",
            WarningCode::PinsFromLiveProbe => "pins-from-live-probe",
        }
    }
}

impl fmt::Display for WarningCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A warning: a stable [`WarningCode`] and a human message.
///
/// ```
/// use certwatch_core::{Warning, WarningCode};
/// let w = Warning::new(WarningCode::WeakPin, "2 0 1 pins a public CA");
/// assert_eq!(
///     serde_json::to_string(&w).unwrap(),
///     r#"{"code":"weak-pin","message":"2 0 1 pins a public CA"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Warning {
    /// The stable code.
    pub code: WarningCode,
    /// What it means here, for the operator.
    pub message: String,
}

impl Warning {
    /// A warning with this code and message.
    pub fn new(code: WarningCode, message: impl Into<String>) -> Self {
        Warning {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}
