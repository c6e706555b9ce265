//! DANE matching of a presented certificate chain against a TLSA RRset (RFC 6698, RFC 7671,
//! RFC 7673; REFERENCE §2).

use std::fmt;

use rustls_pki_types::{CertificateDer, Der, ServerName, TrustAnchor, UnixTime};
use serde::{Deserialize, Serialize};

use crate::association::{cert_matches, spki_matches};
use crate::der;
use crate::tlsa::{CertUsage, MatchingType, Selector, Tlsa, Unusable};

/// What matching needs besides the records and the chain: the names the leaf may carry, the
/// validation time (injected, never read from the clock here) and the PKIX roots.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MatchPolicy<'a> {
    /// The names a DANE-TA, PKIX-TA or PKIX-EE leaf must be valid for (any one of them): the
    /// service domain and the SRV target (RFC 7673). A-labels, no trailing dot.
    pub names: Vec<String>,
    /// The time at which validity periods are checked (DANE-TA and PKIX usages only).
    pub now: UnixTime,
    /// The roots for PKIX-TA and PKIX-EE. Defaults to `webpki-roots`.
    pub roots: &'a [TrustAnchor<'a>],
}

impl MatchPolicy<'static> {
    /// A policy for a service domain and SRV target, at time `now`, with the `webpki-roots`
    /// roots for the PKIX usages.
    pub fn new(domain: &str, target: &str, now: UnixTime) -> Self {
        let mut names = vec![crate::endpoint::normalise_host(domain)];
        let target = crate::endpoint::normalise_host(target);
        if !names.contains(&target) {
            names.push(target);
        }
        MatchPolicy {
            names,
            now,
            roots: webpki_roots::TLS_SERVER_ROOTS,
        }
    }
}

impl<'a> MatchPolicy<'a> {
    /// The same policy with other PKIX roots (tests, private PKIs).
    pub fn with_roots<'b>(self, roots: &'b [TrustAnchor<'b>]) -> MatchPolicy<'b>
    where
        'a: 'b,
    {
        MatchPolicy {
            names: self.names,
            now: self.now,
            roots,
        }
    }
}

/// Why a usable record did not match the presented chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
#[non_exhaustive]
pub enum Rejection {
    /// No certificate or key of the chain has the record's association data.
    NoMatch,
    /// DANE-TA: a certificate or key matched, but the leaf does not chain up to it with
    /// verified signatures (or the chain breaks CA constraints, or is expired).
    ChainNotToAnchor(String),
    /// DANE-TA or PKIX: the chain is good, but the leaf is not valid for the service domain or
    /// the SRV target.
    NameMismatch,
    /// PKIX-TA or PKIX-EE: PKIX validation failed.
    PkixInvalid(String),
}

impl Rejection {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NoMatch => "no-match",
            Rejection::ChainNotToAnchor(_) => "chain-not-to-anchor",
            Rejection::NameMismatch => "name-mismatch",
            Rejection::PkixInvalid(_) => "pkix-invalid",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoMatch => f.write_str("no certificate or key of the chain matches"),
            Rejection::ChainNotToAnchor(d) => {
                write!(f, "the leaf does not chain to the named trust anchor ({d})")
            }
            Rejection::NameMismatch => {
                f.write_str("the leaf is not valid for the service domain or the SRV target")
            }
            Rejection::PkixInvalid(d) => write!(f, "PKIX validation failed ({d})"),
        }
    }
}

/// A record and why it did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RejectedRecord {
    /// The record.
    pub record: Tlsa,
    /// Why.
    pub why: Rejection,
}

/// A record certwatch cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnusableRecord {
    /// The record.
    pub record: Tlsa,
    /// Why it is unusable.
    pub why: Unusable,
}

/// The result of matching a chain against a TLSA RRset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MatchOutcome {
    /// Every record that matched, strongest first (DANE-EE, PKIX-EE, DANE-TA, PKIX-TA).
    pub matched: Vec<Tlsa>,
    /// Usable records that did not match, with the reason.
    pub rejected: Vec<RejectedRecord>,
    /// Records that were ignored as unusable.
    pub unusable: Vec<UnusableRecord>,
}

impl MatchOutcome {
    /// The strongest matching record, if any.
    pub fn matched_record(&self) -> Option<&Tlsa> {
        self.matched.first()
    }

    /// True if some record matched.
    pub fn is_match(&self) -> bool {
        !self.matched.is_empty()
    }

    /// True if there was at least one usable record.
    pub fn had_usable(&self) -> bool {
        !self.matched.is_empty() || !self.rejected.is_empty()
    }

    /// The most telling rejection: one where a record identified part of the chain but a
    /// check failed (name, chain, PKIX), else [`Rejection::NoMatch`]. `None` on a match or
    /// when no record was usable.
    pub fn main_rejection(&self) -> Option<&Rejection> {
        if self.is_match() {
            return None;
        }
        self.rejected
            .iter()
            .map(|r| &r.why)
            .find(|w| **w != Rejection::NoMatch)
            .or_else(|| self.rejected.first().map(|r| &r.why))
    }
}

fn strength(u: CertUsage) -> u8 {
    match u {
        CertUsage::DaneEe => 0,
        CertUsage::PkixEe => 1,
        CertUsage::DaneTa => 2,
        _ => 3,
    }
}

/// Matches a presented chain (DER, leaf first, as the server sent it) against TLSA records.
///
/// - DANE-EE (3): the leaf's certificate or key, ignoring names and dates.
/// - DANE-TA (2): a certificate of the chain (or, for `2 1 0`, a full key) that the leaf
///   chains up to with verified signatures and CA constraints, with the leaf valid for one of
///   the policy's names. A chain the attacker appended the real CA to does not match.
/// - PKIX-EE (1) and PKIX-TA (0): as 3 and 2, plus PKIX validation to the policy's roots.
///
/// The caller must separately know that the server proved possession of the leaf's key (the
/// handshake signature): an unproven key is a mismatch whatever this says.
pub fn match_chain(records: &[Tlsa], chain: &[Vec<u8>], policy: &MatchPolicy<'_>) -> MatchOutcome {
    let mut out = MatchOutcome::default();
    let chain: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    for record in records {
        if let Err(why) = record.usability() {
            out.unusable.push(UnusableRecord {
                record: record.clone(),
                why,
            });
            continue;
        }
        match match_one(record, &chain, policy) {
            Ok(()) => out.matched.push(record.clone()),
            Err(why) => out.rejected.push(RejectedRecord {
                record: record.clone(),
                why,
            }),
        }
    }
    out.matched.sort_by_key(|r| strength(r.usage));
    out
}

fn match_one(
    record: &Tlsa,
    chain: &[CertificateDer<'_>],
    policy: &MatchPolicy<'_>,
) -> Result<(), Rejection> {
    let Some(leaf) = chain.first() else {
        return Err(Rejection::NoMatch);
    };
    match record.usage {
        CertUsage::DaneEe => {
            if cert_matches(record, leaf) {
                Ok(())
            } else {
                Err(Rejection::NoMatch)
            }
        }
        CertUsage::PkixEe => {
            if !cert_matches(record, leaf) {
                return Err(Rejection::NoMatch);
            }
            pkix_validate(chain, policy, &|_| true)
        }
        CertUsage::DaneTa => dane_ta(record, chain, policy),
        CertUsage::PkixTa => {
            let presented_ta = chain.iter().skip(1).any(|c| cert_matches(record, c));
            let check = |path: &webpki::VerifiedPath<'_>| {
                path.intermediate_certificates()
                    .any(|c| cert_matches(record, &c.der()))
                    || spki_matches(record, &webpki::spki_for_anchor(path.anchor()))
                    || chain.iter().skip(1).any(|c| {
                        cert_matches(record, c)
                            && crate::association::certificate_spki(c).is_some_and(|s| {
                                s == webpki::spki_for_anchor(path.anchor()).as_ref()
                            })
                    })
            };
            match pkix_validate(chain, policy, &check) {
                Err(Rejection::PkixInvalid(_))
                    if !presented_ta && !anchor_could_match(record, policy) =>
                {
                    Err(Rejection::NoMatch)
                }
                other => other,
            }
        }
        CertUsage::PrivateUse | CertUsage::Unassigned(_) => Err(Rejection::NoMatch),
    }
}

/// True if a PKIX-TA record could name one of the roots itself (selector 1).
fn anchor_could_match(record: &Tlsa, policy: &MatchPolicy<'_>) -> bool {
    policy
        .roots
        .iter()
        .any(|a| spki_matches(record, &webpki::spki_for_anchor(a)))
}

fn leaf_name_ok(leaf: &webpki::EndEntityCert<'_>, names: &[String]) -> bool {
    names.iter().any(|n| {
        ServerName::try_from(n.as_str())
            .is_ok_and(|sn| leaf.verify_is_valid_for_subject_name(&sn).is_ok())
    })
}

fn pkix_validate(
    chain: &[CertificateDer<'_>],
    policy: &MatchPolicy<'_>,
    path_ok: &dyn Fn(&webpki::VerifiedPath<'_>) -> bool,
) -> Result<(), Rejection> {
    let (leaf_der, intermediates) = chain.split_first().ok_or(Rejection::NoMatch)?;
    let leaf = webpki::EndEntityCert::try_from(leaf_der)
        .map_err(|e| Rejection::PkixInvalid(format!("leaf: {e}")))?;
    let verify = |p: &webpki::VerifiedPath<'_>| {
        if path_ok(p) {
            Ok(())
        } else {
            Err(webpki::Error::UnknownIssuer)
        }
    };
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        policy.roots,
        intermediates,
        policy.now,
        webpki::KeyUsage::server_auth(),
        None,
        Some(&verify),
    )
    .map_err(|e| Rejection::PkixInvalid(e.to_string()))?;
    if leaf_name_ok(&leaf, &policy.names) {
        Ok(())
    } else {
        Err(Rejection::NameMismatch)
    }
}

/// DANE-TA: find the trust anchor the record names, then verify the leaf up to it.
fn dane_ta(
    record: &Tlsa,
    chain: &[CertificateDer<'_>],
    policy: &MatchPolicy<'_>,
) -> Result<(), Rejection> {
    let leaf_der = &chain[0];
    let leaf = webpki::EndEntityCert::try_from(leaf_der)
        .map_err(|e| Rejection::ChainNotToAnchor(format!("leaf: {e}")))?;
    let mut first_failure = None;
    // (a) A certificate of the chain (never the leaf itself) is the anchor.
    for (i, cert) in chain.iter().enumerate().skip(1) {
        if !cert_matches(record, cert) {
            continue;
        }
        let anchor = match webpki::anchor_from_trusted_cert(cert) {
            Ok(a) => a,
            Err(e) => {
                first_failure.get_or_insert(Rejection::ChainNotToAnchor(format!(
                    "trust anchor certificate: {e}"
                )));
                continue;
            }
        };
        // Every other presented certificate may be an intermediate, in any order.
        let intermediates: Vec<CertificateDer<'_>> = chain
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != 0 && *j != i)
            .map(|(_, c)| c.clone())
            .collect();
        match verify_to_anchors(&leaf, &[anchor], &intermediates, policy) {
            Ok(()) => return Ok(()),
            Err(r) => {
                first_failure.get_or_insert(r);
            }
        }
    }
    // (b) `2 1 0`: the record is the anchor's full key, which signs a certificate of the chain.
    if record.selector == Selector::Spki
        && record.matching == MatchingType::Full
        && let Some(spki_contents) = der::read_all(&record.data)
            .filter(|t| t.tag == der::SEQUENCE)
            .map(|t| t.contents)
    {
        // The key may sign any certificate of the chain: one anchor per issuer name.
        let issuers: Vec<Vec<u8>> = chain.iter().filter_map(|c| issuer_contents(c)).collect();
        let mut anchors: Vec<TrustAnchor<'_>> = Vec::new();
        for issuer in &issuers {
            if !anchors
                .iter()
                .any(|a| a.subject.as_ref() == issuer.as_slice())
            {
                anchors.push(TrustAnchor {
                    subject: Der::from(issuer.as_slice()),
                    subject_public_key_info: Der::from(spki_contents),
                    name_constraints: None,
                });
            }
        }
        if !anchors.is_empty() {
            match verify_to_anchors(&leaf, &anchors, &chain[1..], policy) {
                Ok(()) => return Ok(()),
                Err(r) => {
                    first_failure.get_or_insert(r);
                }
            }
        }
    }
    Err(first_failure.unwrap_or(Rejection::NoMatch))
}

fn issuer_contents(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let raw = parsed.tbs_certificate.issuer.as_raw();
    der::read_all(raw).map(|t| t.contents.to_vec())
}

fn verify_to_anchors(
    leaf: &webpki::EndEntityCert<'_>,
    anchors: &[TrustAnchor<'_>],
    intermediates: &[CertificateDer<'_>],
    policy: &MatchPolicy<'_>,
) -> Result<(), Rejection> {
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        anchors,
        intermediates,
        policy.now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| Rejection::ChainNotToAnchor(e.to_string()))?;
    if leaf_name_ok(leaf, &policy.names) {
        Ok(())
    } else {
        Err(Rejection::NameMismatch)
    }
}
