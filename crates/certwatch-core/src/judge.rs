//! Verdicts per probe target, endpoint and domain (REFERENCE §3).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::advice::pin_strength;
use crate::association::certificate_spki;
use crate::endpoint::{Endpoint, EndpointId, ProbeTarget};
use crate::keys::{KeyType, spki_algorithm, spki_sha256};
use crate::matching::{MatchOutcome, MatchPolicy, Rejection, UnusableRecord, match_chain};
use crate::{DnssecStatus, Tlsa, Verdict, Warning, WarningCode};

/// What a probe of one target produced, as certwatch-probe classified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// The server completed a TLS handshake and presented this chain.
    Presented(PresentedChain),
    /// No chain: the probe failed.
    Failed(ProbeFailure),
}

/// A chain the server presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PresentedChain {
    /// The certificates, DER, leaf first, as sent.
    #[serde(with = "der_list")]
    pub certificates: Vec<Vec<u8>>,
    /// True if the handshake signature (TLS 1.2 ServerKeyExchange or TLS 1.3
    /// CertificateVerify) verified against the leaf's key: the server holds that key. A
    /// replayed genuine chain has `false`.
    pub key_proven: bool,
}

impl PresentedChain {
    /// A chain, and whether its leaf key was proven by the handshake signature.
    pub fn new(certificates: Vec<Vec<u8>>, key_proven: bool) -> Self {
        PresentedChain {
            certificates,
            key_proven,
        }
    }

    /// SHA-256 of the leaf's SubjectPublicKeyInfo, if the leaf parses.
    pub fn leaf_spki_sha256(&self) -> Option<[u8; 32]> {
        self.leaf_spki().map(|s| spki_sha256(&s))
    }

    /// The leaf's key family, if the leaf parses and the algorithm is known.
    pub fn leaf_key_type(&self) -> Option<KeyType> {
        self.leaf_spki()
            .and_then(|s| spki_algorithm(&s))
            .map(|a| a.key_type())
    }

    fn leaf_spki(&self) -> Option<Vec<u8>> {
        self.certificates.first().and_then(|c| certificate_spki(c))
    }
}

mod der_list {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub(super) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|c| B64.encode(c)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| B64.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// How a failed probe counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Timeout, refused connection, network or Tor failure: no conclusion (`indeterminate`).
    Inconclusive,
    /// The server broke the protocol: no STARTTLS offered, stream error, bad XML, TLS alert,
    /// no TLS 1.2+ (`protocol-error`; critical on a DANE endpoint).
    Protocol,
}

/// A failed probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeFailure {
    /// How it counts.
    pub kind: FailureKind,
    /// A short class for the JSON (`timeout`, `refused`, `tor`, `tls`, `xmpp`...).
    pub class: String,
    /// What happened.
    pub message: String,
}

impl ProbeFailure {
    /// A failure.
    pub fn new(kind: FailureKind, class: impl Into<String>, message: impl Into<String>) -> Self {
        ProbeFailure {
            kind,
            class: class.into(),
            message: message.into(),
        }
    }
}

/// Why a verdict was reached: a stable kebab-case code (the JSON's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Reason {
    /// The key matched a record.
    KeyMatched,
    /// The handshake signature did not verify against the presented leaf (a replayed
    /// chain).
    UnprovenKey,
    /// No record matches the presented key or chain.
    KeyNotInTlsa,
    /// A DANE-TA record named a certificate or key that the leaf does not chain to.
    ChainNotToAnchor,
    /// The leaf is not valid for the service domain or the SRV target (DANE-TA, PKIX).
    NameMismatch,
    /// PKIX validation failed (PKIX-TA, PKIX-EE).
    PkixInvalid,
    /// The SRV RRset (or the proof of its absence) is insecure.
    InsecureSrv,
    /// The address RRset of this address's family is insecure.
    InsecureAddress,
    /// The TLSA RRset is insecure.
    InsecureTlsa,
    /// The SRV RRset is bogus.
    BogusSrv,
    /// The address RRset of this family is bogus.
    BogusAddress,
    /// The TLSA RRset is bogus.
    BogusTlsa,
    /// The SRV lookup had no conclusion.
    IndeterminateSrv,
    /// The address lookup had no conclusion.
    IndeterminateAddress,
    /// The TLSA lookup had no conclusion (never taken as "no records").
    IndeterminateTlsa,
    /// Secure proof that there are no TLSA records.
    NoTlsa,
    /// Every TLSA record is unusable.
    AllUnusable,
    /// The probe had no conclusion (timeout, network, Tor).
    ProbeInconclusive,
    /// The server broke the protocol.
    ProtocolViolation,
    /// The host has no address to probe.
    NoAddresses,
}

impl Reason {
    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::KeyMatched => "key-matched",
            Reason::UnprovenKey => "unproven-key",
            Reason::KeyNotInTlsa => "key-not-in-tlsa",
            Reason::ChainNotToAnchor => "chain-not-to-anchor",
            Reason::NameMismatch => "name-mismatch",
            Reason::PkixInvalid => "pkix-invalid",
            Reason::InsecureSrv => "insecure-srv",
            Reason::InsecureAddress => "insecure-address",
            Reason::InsecureTlsa => "insecure-tlsa",
            Reason::BogusSrv => "bogus-srv",
            Reason::BogusAddress => "bogus-address",
            Reason::BogusTlsa => "bogus-tlsa",
            Reason::IndeterminateSrv => "indeterminate-srv",
            Reason::IndeterminateAddress => "indeterminate-address",
            Reason::IndeterminateTlsa => "indeterminate-tlsa",
            Reason::NoTlsa => "no-tlsa",
            Reason::AllUnusable => "all-unusable",
            Reason::ProbeInconclusive => "probe-inconclusive",
            Reason::ProtocolViolation => "protocol-violation",
            Reason::NoAddresses => "no-addresses",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one probe target (one address, one handshake/key type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetVerdict {
    /// What was probed.
    #[serde(flatten)]
    pub target: ProbeTarget,
    /// The DNSSEC status this conclusion rests on: the worst of the SRV, address-family and
    /// TLSA RRsets.
    #[serde(flatten)]
    pub dnssec: DnssecStatus,
    /// The TLSA RRset, in presentation format.
    pub tlsa: Vec<Tlsa>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
    /// True if DANE applies to this target and makes TLS mandatory: the SRV RRset, this
    /// address's family and the TLSA RRset are secure, and the TLSA RRset is not empty.
    pub dane: bool,
    /// SHA-256 of the presented leaf's SubjectPublicKeyInfo, lowercase hex.
    pub presented_spki_sha256: Option<String>,
    /// The key family of the presented leaf.
    pub key_type: Option<KeyType>,
    /// The strongest record that matched.
    pub matched_record: Option<Tlsa>,
    /// Records ignored as unusable.
    pub unusable: Vec<UnusableRecord>,
    /// The probe failure, when there was one.
    pub error: Option<ProbeFailure>,
    /// Warnings about this target.
    pub warnings: Vec<Warning>,
}

/// The DNS part of a verdict: `Err` when DNS alone decides (bogus, indeterminate, insecure).
fn dns_gate(
    ep: &Endpoint,
    address: &IpAddr,
) -> Result<DnssecStatus, (Verdict, Reason, DnssecStatus)> {
    let family = &ep.family_of(address).dnssec;
    let steps = [
        (
            &ep.srv_dnssec,
            Reason::BogusSrv,
            Reason::IndeterminateSrv,
            Reason::InsecureSrv,
        ),
        (
            family,
            Reason::BogusAddress,
            Reason::IndeterminateAddress,
            Reason::InsecureAddress,
        ),
        (
            &ep.tlsa.dnssec,
            Reason::BogusTlsa,
            Reason::IndeterminateTlsa,
            Reason::InsecureTlsa,
        ),
    ];
    // Bogus anywhere is worst; then indeterminate; then insecure (REFERENCE §3 order).
    for (s, bogus, _, _) in &steps {
        if matches!(s, DnssecStatus::Bogus { .. }) {
            return Err((Verdict::Bogus, *bogus, (*s).clone()));
        }
    }
    for (s, _, ind, _) in &steps {
        if matches!(s, DnssecStatus::Indeterminate { .. }) {
            return Err((Verdict::Indeterminate, *ind, (*s).clone()));
        }
    }
    for (s, _, _, insecure) in &steps {
        if matches!(s, DnssecStatus::Insecure) {
            return Err((Verdict::NoDnssec, *insecure, (*s).clone()));
        }
    }
    Ok(DnssecStatus::Secure)
}

/// Judges one probe of one address of an endpoint.
///
/// DNS decides first (bogus, then indeterminate, then insecure SRV/address/TLSA: DANE applies
/// only when all are secure, RFC 7673); then an empty secure TLSA RRset is `no-records` and an
/// all-unusable one `unusable-records`; a failed probe is `indeterminate` or
/// `protocol-error` (the worse of that and the DNS verdict counts); an unproven key is a
/// `mismatch` (`unproven-key`); otherwise the chain is matched.
pub fn judge_target(
    endpoint: &Endpoint,
    address: IpAddr,
    outcome: &ProbeOutcome,
    policy: &MatchPolicy<'_>,
) -> TargetVerdict {
    // DANE applies (and makes TLS mandatory) only when SRV, this address family and the TLSA
    // RRset are secure, and the TLSA RRset is not empty (RFC 7673).
    let dane = endpoint.srv_dnssec.is_secure()
        && endpoint.family_of(&address).dnssec.is_secure()
        && endpoint.tlsa.is_secure_nonempty();
    let mut tv = TargetVerdict {
        target: ProbeTarget::new(&endpoint.domain, endpoint.id.clone(), address),
        dnssec: DnssecStatus::Secure,
        tlsa: endpoint.tlsa.records.clone(),
        verdict: Verdict::Match,
        reason: Reason::KeyMatched,
        dane,
        presented_spki_sha256: None,
        key_type: None,
        matched_record: None,
        unusable: Vec::new(),
        error: None,
        warnings: Vec::new(),
    };
    if let ProbeOutcome::Presented(p) = outcome {
        tv.presented_spki_sha256 = p.leaf_spki_sha256().map(hex::encode);
        tv.key_type = p.leaf_key_type();
    }
    for r in &endpoint.tlsa.records {
        if let Err(why) = r.usability() {
            tv.warnings.push(Warning::new(
                WarningCode::UnusableRecord,
                format!("{}: TLSA {r} is ignored: {why}", endpoint.tlsa.owner),
            ));
        }
    }
    // The verdict DNS alone gives, before looking at the probe.
    let dns: Option<(Verdict, Reason)> = match dns_gate(endpoint, &address) {
        Err((v, reason, status)) => {
            tv.dnssec = status;
            Some((v, reason))
        }
        Ok(status) => {
            tv.dnssec = status;
            if endpoint.tlsa.records.is_empty() {
                Some((Verdict::NoRecords, Reason::NoTlsa))
            } else if !endpoint.tlsa.records.iter().any(Tlsa::is_usable) {
                Some((Verdict::UnusableRecords, Reason::AllUnusable))
            } else {
                None
            }
        }
    };
    let probe: (Verdict, Reason, Option<MatchOutcome>) = match outcome {
        ProbeOutcome::Failed(f) => {
            tv.error = Some(f.clone());
            match f.kind {
                FailureKind::Inconclusive => {
                    (Verdict::Indeterminate, Reason::ProbeInconclusive, None)
                }
                FailureKind::Protocol => (Verdict::ProtocolError, Reason::ProtocolViolation, None),
            }
        }
        ProbeOutcome::Presented(p) => {
            if dns.is_some() {
                // DANE does not apply (or gives no answer): nothing to match.
                (Verdict::Match, Reason::KeyMatched, None)
            } else if !p.key_proven {
                (Verdict::Mismatch, Reason::UnprovenKey, None)
            } else {
                let m = match_chain(&endpoint.tlsa.records, &p.certificates, policy);
                let (v, r) = if m.is_match() {
                    (Verdict::Match, Reason::KeyMatched)
                } else {
                    let r = match m.main_rejection() {
                        Some(Rejection::ChainNotToAnchor(_)) => Reason::ChainNotToAnchor,
                        Some(Rejection::NameMismatch) => Reason::NameMismatch,
                        Some(Rejection::PkixInvalid(_)) => Reason::PkixInvalid,
                        _ => Reason::KeyNotInTlsa,
                    };
                    (Verdict::Mismatch, r)
                };
                (v, r, Some(m))
            }
        }
    };
    let (pv, preason, matched) = probe;
    match dns {
        Some((dv, dreason)) if dv.rank(dane) >= pv.rank(dane) => {
            tv.verdict = dv;
            tv.reason = dreason;
        }
        _ => {
            tv.verdict = pv;
            tv.reason = preason;
        }
    }
    if let Some(m) = matched {
        tv.matched_record = m.matched_record().cloned();
        tv.unusable = m.unusable.clone();
        if tv.verdict == Verdict::Match
            && let ProbeOutcome::Presented(p) = outcome
        {
            tv.warnings
                .extend(pin_strength(&endpoint.tlsa.records, Some(&p.certificates)));
        }
    } else {
        tv.unusable = endpoint
            .tlsa
            .records
            .iter()
            .filter_map(|r| {
                r.usability().err().map(|why| UnusableRecord {
                    record: r.clone(),
                    why,
                })
            })
            .collect();
    }
    tv
}

/// The verdict on one endpoint: the worst over its addresses and key types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EndpointVerdict {
    /// The service domain.
    pub domain: String,
    /// Service, SRV target and port.
    #[serde(flatten)]
    pub id: EndpointId,
    /// The worst verdict.
    pub verdict: Verdict,
    /// The reason of the worst target (or of DNS when no address could be probed).
    pub reason: Reason,
    /// True if DANE applies to the worst target (see [`TargetVerdict::dane`]).
    pub dane: bool,
    /// One entry per probe target and key type.
    pub targets: Vec<TargetVerdict>,
    /// Discovery and pin-strength warnings for the endpoint.
    pub warnings: Vec<Warning>,
}

impl EndpointVerdict {
    /// The severity rank of this endpoint's verdict ([`Verdict::rank`]).
    pub fn rank(&self) -> u8 {
        self.verdict.rank(self.dane)
    }

    /// The exit code of this endpoint alone (a weak-pin warning turns a match into 1).
    pub fn exit_code(&self) -> u8 {
        exit_code_of(self.verdict, self.dane, self.has_weak_pin())
    }

    fn has_weak_pin(&self) -> bool {
        self.warnings
            .iter()
            .chain(self.targets.iter().flat_map(|t| t.warnings.iter()))
            .any(|w| w.code == WarningCode::WeakPin)
    }
}

fn exit_code_of(v: Verdict, dane: bool, weak_pin: bool) -> u8 {
    match v.exit_code(dane) {
        0 if weak_pin => 1,
        c => c,
    }
}

/// Judges an endpoint from the outcomes of every probe of it: one `(address, outcome)` per
/// address and key type. Addresses of the endpoint that have no outcome count as
/// `indeterminate` (every address must be probed).
pub fn judge_endpoint(
    endpoint: &Endpoint,
    outcomes: &[(IpAddr, ProbeOutcome)],
    policy: &MatchPolicy<'_>,
) -> EndpointVerdict {
    let mut targets: Vec<TargetVerdict> = outcomes
        .iter()
        .map(|(ip, o)| judge_target(endpoint, *ip, o, policy))
        .collect();
    for t in endpoint.probe_targets() {
        if !outcomes.iter().any(|(ip, _)| *ip == t.address) {
            let missing = ProbeOutcome::Failed(ProbeFailure::new(
                FailureKind::Inconclusive,
                "not-probed",
                format!("{} was not probed", t.address),
            ));
            targets.push(judge_target(endpoint, t.address, &missing, policy));
        }
    }
    let mut warnings = endpoint.warnings.clone();
    warnings.extend(
        pin_strength(&endpoint.tlsa.records, None)
            .into_iter()
            .filter(|w| w.code != WarningCode::UnusableRecord),
    );
    let worst = targets.iter().fold(None::<&TargetVerdict>, |w, t| match w {
        Some(w) if w.verdict.rank(w.dane) >= t.verdict.rank(t.dane) => Some(w),
        _ => Some(t),
    });
    let (verdict, reason, dane) = match worst {
        Some(worst) => (worst.verdict, worst.reason, worst.dane),
        None => {
            let dane = endpoint.srv_dnssec.is_secure() && endpoint.tlsa.is_secure_nonempty();
            // No address at all: DNS decides (the worse family), else there is nothing to
            // connect to.
            let families = [IpAddr::from([0u8; 4]), IpAddr::from([0u16; 8])];
            let gate = families
                .iter()
                .filter_map(|ip| dns_gate(endpoint, ip).err())
                .fold(None::<(Verdict, Reason)>, |w, (v, r, _)| match w {
                    Some(w) if w.0.rank(dane) >= v.rank(dane) => Some(w),
                    _ => Some((v, r)),
                });
            match gate {
                Some((v, r)) => (v, r, dane),
                None => {
                    warnings.push(Warning::new(
                        WarningCode::NoAddresses,
                        format!("{} has no A or AAAA records", endpoint.id.target),
                    ));
                    (Verdict::Indeterminate, Reason::NoAddresses, dane)
                }
            }
        }
    };
    dedup(&mut warnings);
    EndpointVerdict {
        domain: endpoint.domain.clone(),
        id: endpoint.id.clone(),
        verdict,
        reason,
        dane,
        targets,
        warnings,
    }
}

fn dedup(w: &mut Vec<Warning>) {
    let mut seen = std::collections::HashSet::new();
    w.retain(|x| seen.insert(x.clone()));
}

/// The verdict on a domain: the worst over its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DomainVerdict {
    /// The domain (A-label, no trailing dot).
    pub domain: String,
    /// The worst verdict over the endpoints.
    pub verdict: Verdict,
    /// True if the worst endpoint is a DANE endpoint.
    pub dane: bool,
    /// The endpoints.
    pub endpoints: Vec<EndpointVerdict>,
}

impl DomainVerdict {
    /// Aggregates endpoint verdicts. A domain without endpoints is `indeterminate`.
    pub fn new(domain: impl Into<String>, endpoints: Vec<EndpointVerdict>) -> Self {
        // The worst endpoint; the first one among equals.
        let worst = endpoints
            .iter()
            .fold(None::<&EndpointVerdict>, |w, e| match w {
                Some(w) if w.rank() >= e.rank() => Some(w),
                _ => Some(e),
            });
        let (verdict, dane) =
            worst.map_or((Verdict::Indeterminate, false), |e| (e.verdict, e.dane));
        DomainVerdict {
            domain: domain.into(),
            verdict,
            dane,
            endpoints,
        }
    }

    /// The exit code: 2 mismatch/bogus/protocol error on a DANE endpoint; 3 indeterminate and
    /// other protocol errors; 1 setup needed, or a match with a `weak-pin` warning; 0 a clean
    /// match.
    pub fn exit_code(&self) -> u8 {
        let weak = self.endpoints.iter().any(EndpointVerdict::has_weak_pin);
        exit_code_of(self.verdict, self.dane, weak)
    }
}

/// Combines exit codes of several domains: the worst wins, in the order 2 > 3 > 1 > 0.
///
/// ```
/// assert_eq!(certwatch_core::combine_exit_codes([0, 3, 1]), 3);
/// assert_eq!(certwatch_core::combine_exit_codes([3, 2]), 2);
/// assert_eq!(certwatch_core::combine_exit_codes([]), 0);
/// ```
pub fn combine_exit_codes(codes: impl IntoIterator<Item = u8>) -> u8 {
    let weight = |c: u8| match c {
        0 => 0,
        1 => 1,
        3 => 2,
        _ => 3,
    };
    codes.into_iter().max_by_key(|c| weight(*c)).unwrap_or(0)
}
