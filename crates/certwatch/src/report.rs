//! The report of one domain check, and its JSON form (schema version 1, `docs/json.md`).

use std::net::IpAddr;

use certwatch_core::{
    Classification, DnssecState, KeyType, Reason, Service, Tlsa, Vantage, Verdict, Warning,
};
use serde::{Deserialize, Serialize};

/// The version of the JSON schema that [`Report`] serialises to.
pub const SCHEMA_VERSION: u32 = 1;

/// The result of checking one domain: its verdict, one entry per probe target and key type,
/// the setup advice and the warnings.
///
/// Serialised with serde exactly as the versioned JSON schema of `docs/json.md`: snake_case
/// fields, kebab-case values, lowercase hex, A-label names without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The domain, A-label form, no trailing dot.
    pub domain: String,
    /// When the check started, RFC 3339 UTC (`2026-11-28T17:00:00Z`).
    pub checked_at: String,
    /// The worst verdict over the endpoints (REFERENCE §3 order).
    pub verdict: Verdict,
    /// One entry per probe target (endpoint + address) and key type; an endpoint with no
    /// address to probe has one entry with a null address.
    pub endpoints: Vec<EndpointReport>,
    /// The confirmation over several vantage points, when one was made.
    pub confirmation: Option<ConfirmationReport>,
    /// What the operator should add or change.
    pub setup: Setup,
    /// Warnings over the whole check, each with a stable code.
    pub warnings: Vec<Warning>,
    /// The exit code computed when the report was built (not part of the JSON).
    #[serde(skip)]
    pub(crate) exit: Option<u8>,
}

impl Report {
    /// The monitoring-plugin exit code of this report (REFERENCE §3): 2 for mismatch, bogus
    /// and a protocol error on a DANE endpoint; 3 for indeterminate and other protocol
    /// errors; 1 for setup needed and for a match with a `weak-pin` warning; 0 for a clean
    /// match.
    ///
    /// A report read back from JSON does not carry whether its worst endpoint is a DANE
    /// endpoint; a protocol error there counts as one when its entry lists TLSA records
    /// and its DNSSEC status is secure. Each entry counts with its
    /// [`EndpointReport::effective_verdict`].
    pub fn exit_code(&self) -> u8 {
        if let Some(code) = self.exit {
            return code;
        }
        let weak = self
            .warnings
            .iter()
            .any(|w| w.code == certwatch_core::WarningCode::WeakPin);
        let code = certwatch_core::combine_exit_codes(
            self.endpoints
                .iter()
                .map(|e| e.effective_verdict().exit_code(e.is_dane())),
        );
        match code {
            0 if weak => 1,
            0 if self.endpoints.is_empty() => Verdict::Indeterminate.exit_code(false),
            c => c,
        }
    }

    /// The report as one line of JSON (the CLI's `--json` output).
    pub fn to_json_line(&self) -> String {
        // Serialising plain data (strings, numbers, enums) cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"schema_version\":{SCHEMA_VERSION},\"domain\":{:?},\"error\":{:?}}}",
                self.domain,
                e.to_string()
            )
        })
    }
}

/// One probe target (endpoint + address) and key type, as judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EndpointReport {
    /// The service.
    pub service: Service,
    /// The SRV target (or the domain itself for the RFC 6120 fallback).
    pub target: String,
    /// The TCP port.
    pub port: u16,
    /// The address probed; null when the endpoint has no address to probe.
    pub address: Option<IpAddr>,
    /// The DNSSEC status this conclusion rests on: the worst of the SRV RRset, the address
    /// family's RRset and the TLSA RRset.
    pub dnssec: DnssecState,
    /// Why the status is bogus or indeterminate; null otherwise.
    pub dnssec_reason: Option<String>,
    /// The endpoint's TLSA RRset in presentation format (`3 1 1 <hex>`).
    pub tlsa: Vec<Tlsa>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why (a stable kebab-case code such as `key-matched`, `key-not-in-tlsa`, `no-tlsa`).
    pub reason: Option<Reason>,
    /// SHA-256 of the presented leaf's SubjectPublicKeyInfo, lowercase hex.
    pub presented_spki_sha256: Option<String>,
    /// The record that matched.
    pub matched_record: Option<Tlsa>,
    /// Where the probe was made from: `direct`, `tor:<exit address>`, `tor` (exit unknown)
    /// or `socks`; null when no probe was attempted.
    pub vantage: Option<Vantage>,
    /// The key family of the presented leaf.
    pub key_type: Option<KeyType>,
    /// The probe's failure, when it failed.
    pub error: Option<ProbeErrorReport>,
    /// When this target was re-probed from other vantage points before its verdict counted
    /// (the confirmation of a `mismatch`, or of a `protocol-error` on a DANE target, see
    /// [`Report::confirmation`]): the confirmed verdict, which supersedes `verdict` (`verdict`
    /// keeps what the check's own probe saw, as evidence). `None` when it was not re-probed.
    /// Absent from reports written before it existed (read as `None`).
    #[serde(default)]
    pub confirmed_verdict: Option<Verdict>,
}

impl EndpointReport {
    /// The verdict that counts: the confirmed one when a confirmation superseded the
    /// entry's own, otherwise the entry's.
    pub fn effective_verdict(&self) -> Verdict {
        self.confirmed_verdict.unwrap_or(self.verdict)
    }

    /// True when DANE makes TLS mandatory on this entry's endpoint: its TLSA RRset is not
    /// empty and its DNSSEC status is secure (a `protocol-error` here is a downgrade).
    pub fn is_dane(&self) -> bool {
        !self.tlsa.is_empty() && self.dnssec == DnssecState::Secure
    }
}

/// A failed probe, in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeErrorReport {
    /// A short class: `timeout`, `refused`, `network`, `tor`, `socks`, `tls`, `xmpp`,
    /// `too-large`, `unproven-key`, `key-type-not-offered`, `private-address`, `usage`.
    pub class: String,
    /// What happened, naming the target.
    pub message: String,
}

impl ProbeErrorReport {
    /// An error entry.
    pub fn new(class: impl Into<String>, message: impl Into<String>) -> Self {
        ProbeErrorReport {
            class: class.into(),
            message: message.into(),
        }
    }
}

/// The confirmation summary of REFERENCE §3, in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConfirmationReport {
    /// Distinct vantage points that answered.
    pub vantage_points: usize,
    /// Distinct Tor exit addresses among them.
    pub distinct_exits: usize,
    /// The classification.
    pub classification: Classification,
    /// False when some exit could not be seen (SOCKS): diversity is then unverified.
    pub diversity_verified: bool,
}

/// What the operator should add or change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Setup {
    /// Zone-file lines to add (additive; comment lines start with `;`).
    pub zone_lines: Vec<String>,
    /// Advice in words ("Enable DNSSEC for ...", "Add the zone lines below ...").
    pub advice: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use certwatch_core::WarningCode;

    fn entry(verdict: Verdict) -> EndpointReport {
        EndpointReport {
            service: Service::C2sStarttls,
            target: "xmpp.example.org".into(),
            port: 5222,
            address: Some("192.0.2.1".parse().unwrap()),
            dnssec: DnssecState::Secure,
            dnssec_reason: None,
            tlsa: vec![format!("3 1 1 {}", "AB".repeat(32)).parse().unwrap()],
            verdict,
            reason: Some(Reason::KeyMatched),
            presented_spki_sha256: Some("ab".repeat(32)),
            matched_record: Some(format!("3 1 1 {}", "ab".repeat(32)).parse().unwrap()),
            vantage: Some("tor:192.0.2.10".parse().unwrap()),
            key_type: Some(KeyType::Ecdsa),
            error: None,
            confirmed_verdict: None,
        }
    }

    fn report(endpoints: Vec<EndpointReport>, verdict: Verdict) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            domain: "example.org".into(),
            checked_at: "2026-11-28T17:00:00Z".into(),
            verdict,
            endpoints,
            confirmation: None,
            setup: Setup::default(),
            warnings: vec![],
            exit: None,
        }
    }

    #[test]
    fn serialises_to_schema_v1() {
        let mut r = report(vec![entry(Verdict::Match)], Verdict::Match);
        r.confirmation = Some(ConfirmationReport {
            vantage_points: 3,
            distinct_exits: 2,
            classification: Classification::HostileExit,
            diversity_verified: true,
        });
        r.warnings
            .push(Warning::new(WarningCode::NoRolloverSlot, "only one key"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json_line()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "schema_version",
            "domain",
            "checked_at",
            "verdict",
            "endpoints",
            "confirmation",
            "setup",
            "warnings",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["verdict"], "match");
        let e = &v["endpoints"][0];
        let mut ekeys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        ekeys.sort_unstable();
        assert_eq!(
            ekeys,
            [
                "address",
                "confirmed_verdict",
                "dnssec",
                "dnssec_reason",
                "error",
                "key_type",
                "matched_record",
                "port",
                "presented_spki_sha256",
                "reason",
                "service",
                "target",
                "tlsa",
                "vantage",
                "verdict"
            ]
        );
        assert_eq!(e["service"], "c2s-starttls");
        assert_eq!(e["address"], "192.0.2.1");
        assert_eq!(e["dnssec"], "secure");
        assert!(e["dnssec_reason"].is_null());
        assert_eq!(e["tlsa"][0], format!("3 1 1 {}", "ab".repeat(32)));
        assert_eq!(e["reason"], "key-matched");
        assert_eq!(e["vantage"], "tor:192.0.2.10");
        assert_eq!(e["key_type"], "ecdsa");
        assert!(e["error"].is_null());
        assert!(e["confirmed_verdict"].is_null());
        assert_eq!(v["confirmation"]["classification"], "hostile-exit");
        assert_eq!(v["confirmation"]["diversity_verified"], true);
        assert_eq!(v["setup"]["zone_lines"], serde_json::json!([]));
        assert_eq!(v["warnings"][0]["code"], "no-rollover-slot");
        // It reads back.
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back.endpoints, r.endpoints);
    }

    #[test]
    fn exit_code_of_a_report_read_back() {
        let mut protocol = entry(Verdict::ProtocolError);
        protocol.reason = Some(Reason::ProtocolViolation);
        // A protocol error where DANE makes TLS mandatory is critical.
        assert_eq!(
            report(vec![protocol.clone()], Verdict::ProtocolError).exit_code(),
            2
        );
        protocol.tlsa.clear();
        assert_eq!(
            report(vec![protocol], Verdict::ProtocolError).exit_code(),
            3
        );
        assert_eq!(
            report(vec![entry(Verdict::Match)], Verdict::Match).exit_code(),
            0
        );
        let mut weak = report(vec![entry(Verdict::Match)], Verdict::Match);
        weak.warnings
            .push(Warning::new(WarningCode::WeakPin, "2 1 1 on a public CA"));
        assert_eq!(weak.exit_code(), 1);
        assert_eq!(
            report(
                vec![entry(Verdict::Match), entry(Verdict::Mismatch)],
                Verdict::Mismatch
            )
            .exit_code(),
            2
        );
        assert_eq!(report(vec![], Verdict::Indeterminate).exit_code(), 3);
        // An entry superseded by the confirmation counts with its confirmed verdict: a
        // downgrade seen through a hostile exit only is not critical.
        let mut overruled = entry(Verdict::ProtocolError);
        overruled.confirmed_verdict = Some(Verdict::Match);
        assert_eq!(
            report(vec![overruled.clone()], Verdict::Match).exit_code(),
            0
        );
        overruled.confirmed_verdict = Some(Verdict::ProtocolError);
        assert_eq!(
            report(vec![overruled], Verdict::ProtocolError).exit_code(),
            2
        );
        // A report written before the field existed reads back with `None`.
        let mut old = serde_json::to_value(entry(Verdict::Match)).unwrap();
        old.as_object_mut().unwrap().remove("confirmed_verdict");
        let back: EndpointReport = serde_json::from_value(old).unwrap();
        assert_eq!(back.confirmed_verdict, None);
        // The code computed at build time wins.
        let mut built = report(vec![entry(Verdict::Match)], Verdict::Match);
        built.exit = Some(1);
        assert_eq!(built.exit_code(), 1);
    }
}
