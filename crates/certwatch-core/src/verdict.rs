//! Verdict classes, their order, and exit codes (REFERENCE §3).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the user is told about a probe target, an endpoint or a domain.
///
/// Serialised kebab-case: `match`, `mismatch`, `no-dnssec`, `no-records`, `unusable-records`,
/// `bogus`, `indeterminate`, `protocol-error`.
///
/// The order (worst first) is `mismatch` = `bogus` > `protocol-error` on a DANE endpoint >
/// `indeterminate` = `protocol-error` > `unusable-records` = `no-records` = `no-dnssec` >
/// `match`. Because a protocol error weighs more where a secure TLSA RRset makes TLS mandatory,
/// [`Verdict::rank`] and [`Verdict::exit_code`] take that fact as a parameter.
///
/// ```
/// use certwatch_core::Verdict;
/// assert_eq!(Verdict::Mismatch.exit_code(true), 2);
/// assert_eq!(Verdict::ProtocolError.exit_code(true), 2);
/// assert_eq!(Verdict::ProtocolError.exit_code(false), 3);
/// assert_eq!(Verdict::NoRecords.exit_code(true), 1);
/// assert_eq!(Verdict::Match.exit_code(true), 0);
/// assert!(Verdict::ProtocolError.rank(true) > Verdict::Indeterminate.rank(true));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The proven key is in the validated TLSA set.
    Match,
    /// A validated TLSA set exists and the proven key is not in it (or the key was not proven:
    /// reason `unproven-key`).
    Mismatch,
    /// The zone or SRV chain is provably insecure: DANE does not apply.
    NoDnssec,
    /// Secure, but provably no TLSA records.
    NoRecords,
    /// TLSA records exist, but none is usable.
    UnusableRecords,
    /// DNSSEC validation failed.
    Bogus,
    /// Timeout, SERVFAIL, network or Tor failure: no conclusion.
    Indeterminate,
    /// The server did not speak XMPP/TLS as it must (no STARTTLS, stream error, TLS alert,
    /// below TLS 1.2).
    ProtocolError,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 8] = [
        Verdict::Match,
        Verdict::Mismatch,
        Verdict::NoDnssec,
        Verdict::NoRecords,
        Verdict::UnusableRecords,
        Verdict::Bogus,
        Verdict::Indeterminate,
        Verdict::ProtocolError,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Match => "match",
            Verdict::Mismatch => "mismatch",
            Verdict::NoDnssec => "no-dnssec",
            Verdict::NoRecords => "no-records",
            Verdict::UnusableRecords => "unusable-records",
            Verdict::Bogus => "bogus",
            Verdict::Indeterminate => "indeterminate",
            Verdict::ProtocolError => "protocol-error",
        }
    }

    /// The severity rank of REFERENCE §3, higher is worse: 0 match; 1 unusable-records,
    /// no-records, no-dnssec; 2 indeterminate, protocol-error; 3 protocol-error on a DANE
    /// endpoint (`dane_endpoint`: the endpoint has a secure TLSA RRset); 4 mismatch, bogus.
    pub fn rank(self, dane_endpoint: bool) -> u8 {
        match self {
            Verdict::Match => 0,
            Verdict::UnusableRecords | Verdict::NoRecords | Verdict::NoDnssec => 1,
            Verdict::Indeterminate => 2,
            Verdict::ProtocolError if dane_endpoint => 3,
            Verdict::ProtocolError => 2,
            Verdict::Mismatch | Verdict::Bogus => 4,
        }
    }

    /// The monitoring-plugin exit code: 2 for mismatch, bogus and a protocol error on a DANE
    /// endpoint; 3 for indeterminate and other protocol errors; 1 for setup needed; 0 for a
    /// match. (A match with a `weak-pin` warning exits 1.)
    pub fn exit_code(self, dane_endpoint: bool) -> u8 {
        match self.rank(dane_endpoint) {
            0 => 0,
            1 => 1,
            2 => 3,
            _ => 2,
        }
    }

    /// True for the verdicts that raise an alert (after confirmation for a mismatch).
    pub fn is_alert(self) -> bool {
        matches!(self, Verdict::Mismatch | Verdict::Bogus)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
