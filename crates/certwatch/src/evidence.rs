//! The evidence bundle: a signed JSON document that lets anyone check offline what certwatch
//! saw (issue 9, `docs/evidence.md`).
//!
//! An [`EvidenceBundle`] carries, for one domain check:
//!
//! * the domain, its verdict and when it was checked;
//! * per probe target: the chain the server presented (PEM) and proved, the SHA-256 of the
//!   leaf's SubjectPublicKeyInfo, and where and when it was seen (vantage point, Tor exit);
//! * per TLSA owner: the TLSA RRset with its DNSSEC chain (certwatch-dns
//!   [`DnssecChain`]: DS, DNSKEY and RRSIG records from the root down, RFC 9102 style), and
//!   likewise the SRV RRsets that name the targets and the A/AAAA RRsets of the addresses;
//! * the service's Ed25519 signature.
//!
//! # What is signed
//!
//! The signature covers the bytes `certwatch-evidence-v1` + LF (0x0A), followed by the
//! canonical JSON of the bundle **without** its `signature` member: object members sorted by
//! key (UTF-16 code units, as RFC 8785), no insignificant white space, strings escaped as
//! serde_json (and RFC 8785) do, integers in decimal. A bundle never holds fractional
//! numbers; the verifier refuses any. The canonical form is computed from the JSON as
//! received, so fields a verifier does not know are still covered by the signature.
//!
//! ```
//! use certwatch::evidence::{EvidenceBundle, verify_signature};
//! use ring::signature::{Ed25519KeyPair, KeyPair as _};
//!
//! let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
//! let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
//! let bundle = EvidenceBundle::new(
//!     "example.org",
//!     certwatch::Verdict::Mismatch,
//!     "2026-11-28T17:00:00Z",
//!     "2026-11-28T17:00:05Z",
//! );
//! let bytes = bundle.sign(&key).unwrap();
//! let back = verify_signature(&bytes, key.public_key().as_ref()).unwrap();
//! assert_eq!(back.domain, "example.org");
//! // Another key does not verify it.
//! let other = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
//! let other = Ed25519KeyPair::from_pkcs8(other.as_ref()).unwrap();
//! assert!(verify_signature(&bytes, other.public_key().as_ref()).is_err());
//! ```
//!
//! [`verify`] checks the signature, every DNSSEC chain against a trust anchor at an injected
//! time, every certificate chain against its SPKI hash, and says for each probe whether the
//! presented key is in the validated TLSA RRset (and whether DNSSEC proves that the target
//! serves the domain and has the address).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use certwatch_core::{
    EndpointId, ProbeTarget, Service, Tlsa, UnixTime, Vantage, Verdict, certificate_spki,
    match_chain, spki_sha256,
};
use certwatch_dns::{
    ChainCollector, ChainError, DnssecChain, RrType, TrustAnchor, ValidatedRrset, verify_chain,
};
use certwatch_probe::{CheckIsolation, KeyRequest, Probe, Prober};
use futures::StreamExt as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::rfc3339;
use crate::options::CheckOptions;
use crate::report::Report;

/// The version of the evidence JSON schema.
pub const EVIDENCE_SCHEMA_VERSION: u32 = 1;
/// The bytes that precede the canonical JSON in the signed message.
pub const SIGNING_CONTEXT: &[u8] = b"certwatch-evidence-v1\n";
/// A bundle larger than this is refused before parsing.
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;
/// At most this many certificates per presented chain.
pub const MAX_CHAIN_CERTS: usize = 16;
/// At most this many DNSSEC chains, and this many probes, in one bundle.
pub const MAX_BUNDLE_ITEMS: usize = 256;
/// The record types whose chains a bundle may carry.
const CHAIN_TYPES: [&str; 4] = ["TLSA", "SRV", "A", "AAAA"];

/// One evidence document (schema version [`EVIDENCE_SCHEMA_VERSION`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EvidenceBundle {
    /// Always [`EVIDENCE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The checked domain, A-label form, no trailing dot.
    pub domain: String,
    /// The domain's verdict.
    pub verdict: Verdict,
    /// When the check started, RFC 3339 UTC.
    pub checked_at: String,
    /// When the bundle was assembled, RFC 3339 UTC.
    pub created_at: String,
    /// What each probe saw.
    pub probes: Vec<ProbeEvidence>,
    /// The TLSA RRsets with their DNSSEC chains, one per TLSA owner.
    pub dnssec: Vec<DnssecChain>,
    /// What could not be gathered, in words (a chain that could not be collected, a probe
    /// that failed).
    pub gaps: Vec<String>,
    /// The service's signature; `None` before [`EvidenceBundle::sign`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<BundleSignature>,
}

/// What one probe of one target saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProbeEvidence {
    /// The service.
    pub service: Service,
    /// The SRV target (or the domain for the RFC 6120 fallback), no trailing dot.
    pub target: String,
    /// The TCP port.
    pub port: u16,
    /// The address connected to.
    pub address: IpAddr,
    /// The TLSA owner of the endpoint (`_<port>._tcp.<target>.`).
    pub tlsa_owner: String,
    /// `direct`, `tor:<exit address>`, `tor` or `socks`.
    pub vantage: Vantage,
    /// The Tor exit relay, when known.
    pub exit: Option<ExitEvidence>,
    /// When the probe was made, RFC 3339 UTC.
    pub probed_at: String,
    /// The presented chain, leaf first, as PEM `CERTIFICATE` blocks.
    pub chain_pem: String,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo, lowercase hex.
    pub spki_sha256: String,
}

/// A Tor exit relay as the circuit described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExitEvidence {
    /// RSA identity fingerprint (hex), when known.
    pub rsa_identity: Option<String>,
    /// Ed25519 identity, when known.
    pub ed25519_identity: Option<String>,
    /// The relay's addresses (`IP:port`).
    pub addresses: Vec<String>,
}

/// The service's signature over a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BundleSignature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Lowercase hex SHA-256 of the 32-byte public key (identifies the key; the verifier
    /// brings the key itself).
    pub key_id: String,
    /// Standard base64 of the 64-byte signature.
    pub value: String,
}

/// Why a bundle cannot be built, or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The bundle is larger than [`MAX_BUNDLE_BYTES`].
    #[error("the evidence bundle is larger than {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: usize,
    },
    /// The bytes are not an evidence bundle.
    #[error("not an evidence bundle: {0}")]
    Format(String),
    /// A schema version this verifier does not know.
    #[error(
        "evidence schema version {found} is not supported (this verifier knows {EVIDENCE_SCHEMA_VERSION})"
    )]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// The bundle carries no signature.
    #[error("the evidence bundle is not signed")]
    Unsigned,
    /// The signature does not verify with the given key.
    #[error(
        "the signature of the evidence bundle for {domain} does not verify with the given Ed25519 key (key id {key_id}): the bundle was changed, or signed with another key"
    )]
    BadSignature {
        /// The domain the bundle claims.
        domain: String,
        /// The key id the bundle names.
        key_id: String,
    },
    /// The DNSSEC chain of a TLSA owner does not verify.
    #[error("the DNSSEC chain of {owner} does not verify: {source}")]
    Dnssec {
        /// The TLSA owner.
        owner: String,
        /// The failing link.
        source: Box<ChainError>,
    },
    /// A probe's TLSA owner has no DNSSEC chain in the bundle.
    #[error("no DNSSEC chain for {owner} in the bundle")]
    MissingChain {
        /// The TLSA owner.
        owner: String,
    },
    /// A probe's TLSA owner is not `_<port>._tcp.<target>.`.
    #[error("the probe of {target} port {port} names TLSA owner {owner}")]
    OwnerMismatch {
        /// The target.
        target: String,
        /// The port.
        port: u16,
        /// The owner named.
        owner: String,
    },
    /// A presented chain does not parse.
    #[error("the chain presented by {target} ({address}) is unusable: {detail}")]
    Certificate {
        /// The target.
        target: String,
        /// The address.
        address: IpAddr,
        /// What is wrong.
        detail: String,
    },
    /// The SPKI hash stated for a probe is not that of its leaf.
    #[error(
        "the probe of {target} ({address}) states SPKI SHA-256 {stated}, but its leaf has {computed}"
    )]
    SpkiMismatch {
        /// The target.
        target: String,
        /// The address.
        address: IpAddr,
        /// The stated hash.
        stated: String,
        /// The hash of the leaf in the bundle.
        computed: String,
    },
    /// The bundle is about another domain than expected (a replayed bundle).
    #[error("the evidence bundle is about {found}, not {expected}")]
    DomainMismatch {
        /// The domain expected.
        expected: String,
        /// The domain in the bundle.
        found: String,
    },
    /// The public key is not a 32-byte Ed25519 key.
    #[error("the Ed25519 public key must be 32 bytes, not {len}")]
    BadPublicKey {
        /// Its length.
        len: usize,
    },
    /// Gathering the evidence failed before anything could be collected.
    #[error("gathering evidence for {domain}: {detail}")]
    Gather {
        /// The domain.
        domain: String,
        /// What failed.
        detail: String,
    },
}

impl EvidenceBundle {
    /// An empty, unsigned bundle for a domain (add probes and chains, then sign).
    pub fn new(
        domain: impl Into<String>,
        verdict: Verdict,
        checked_at: impl Into<String>,
        created_at: impl Into<String>,
    ) -> Self {
        EvidenceBundle {
            schema_version: EVIDENCE_SCHEMA_VERSION,
            domain: domain.into(),
            verdict,
            checked_at: checked_at.into(),
            created_at: created_at.into(),
            probes: Vec::new(),
            dnssec: Vec::new(),
            gaps: Vec::new(),
            signature: None,
        }
    }

    /// An empty bundle with the domain, verdict and time of a report.
    pub fn for_report(report: &Report, created_at_unix: u64) -> Self {
        EvidenceBundle::new(
            report.domain.clone(),
            report.verdict,
            report.checked_at.clone(),
            rfc3339(created_at_unix),
        )
    }

    /// The exact bytes the signature covers: [`SIGNING_CONTEXT`] and the canonical JSON of
    /// the bundle without `signature`.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, EvidenceError> {
        let mut v = serde_json::to_value(self).map_err(|e| EvidenceError::Format(e.to_string()))?;
        if let Value::Object(m) = &mut v {
            m.remove("signature");
        }
        signing_input(&v)
    }

    /// Signs the bundle with the service's key and returns the signed JSON document (the
    /// bytes to publish; pretty-printed, which the signature does not depend on).
    pub fn sign(mut self, key: &Ed25519KeyPair) -> Result<Vec<u8>, EvidenceError> {
        self.signature = None;
        let msg = self.signed_bytes()?;
        let sig = key.sign(&msg);
        self.signature = Some(BundleSignature {
            algorithm: "ed25519".into(),
            key_id: key_id(key.public_key().as_ref()),
            value: B64.encode(sig.as_ref()),
        });
        serde_json::to_vec_pretty(&self).map_err(|e| EvidenceError::Format(e.to_string()))
    }
}

impl ProbeEvidence {
    /// The evidence of one successful probe (its chain was proven by the handshake),
    /// made at `probed_at_unix`.
    pub fn from_probe(probe: &Probe, probed_at_unix: u64) -> Result<Self, EvidenceError> {
        let target = &probe.target;
        let leaf = probe
            .chain
            .first()
            .ok_or_else(|| EvidenceError::Certificate {
                target: target.id.target.clone(),
                address: target.address,
                detail: "empty chain".into(),
            })?;
        let spki = certificate_spki(leaf.der()).ok_or_else(|| EvidenceError::Certificate {
            target: target.id.target.clone(),
            address: target.address,
            detail: "the leaf does not parse".into(),
        })?;
        let exit = match &probe.vantage {
            certwatch_probe::Vantage::Tor { exit: Some(e) } => Some(ExitEvidence {
                rsa_identity: e.rsa_identity.clone(),
                ed25519_identity: e.ed25519_identity.clone(),
                addresses: e.addrs.iter().map(ToString::to_string).collect(),
            }),
            _ => None,
        };
        let vantage = match &probe.vantage {
            certwatch_probe::Vantage::Direct => Vantage::Direct,
            certwatch_probe::Vantage::Socks { .. } => Vantage::Socks,
            other => Vantage::Tor(other.exit_ip()),
        };
        Ok(ProbeEvidence {
            service: target.id.service,
            target: target.id.target.trim_end_matches('.').to_owned(),
            port: target.id.port,
            address: target.address,
            tlsa_owner: tlsa_owner(&target.id.target, target.id.port),
            vantage,
            exit,
            probed_at: rfc3339(probed_at_unix),
            chain_pem: probe.chain.iter().map(|c| pem(c.der())).collect(),
            spki_sha256: hex(&spki_sha256(&spki)),
        })
    }
}

/// What [`verify`] established about one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedProbe {
    /// The probe as carried in the bundle.
    pub probe: ProbeEvidence,
    /// True when the presented chain matches the validated TLSA RRset (RFC 6698 / 7671
    /// rules of certwatch-core).
    pub in_tlsa: bool,
    /// The record that matched.
    pub matched_record: Option<Tlsa>,
    /// True when a validated SRV RRset of the domain's service (in the bundle) names this
    /// target and port: the DNSSEC proof that the target serves the domain. False when the
    /// bundle carries no such chain (for example the RFC 6120 fallback without SRV).
    pub srv_proven: bool,
    /// True when a validated A or AAAA RRset of the target (in the bundle) holds the address.
    pub address_proven: bool,
}

/// A bundle whose signature, DNSSEC chains and certificate hashes verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedBundle {
    /// The bundle.
    pub bundle: EvidenceBundle,
    /// The validated TLSA RRsets, by owner.
    pub tlsa: BTreeMap<String, ValidatedRrset>,
    /// The validated SRV, A and AAAA RRsets, by `<owner> <type>`.
    pub others: BTreeMap<String, ValidatedRrset>,
    /// Per probe: whether the presented key is in the validated TLSA set.
    pub probes: Vec<VerifiedProbe>,
}

impl VerifiedBundle {
    /// Fails unless the bundle is about `domain` (protects against a genuine bundle replayed
    /// for another domain).
    pub fn expect_domain(&self, domain: &str) -> Result<(), EvidenceError> {
        let want = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if self.bundle.domain.to_ascii_lowercase() == want {
            Ok(())
        } else {
            Err(EvidenceError::DomainMismatch {
                expected: want,
                found: self.bundle.domain.clone(),
            })
        }
    }

    /// True when some probe saw a key that is not in the validated TLSA set.
    pub fn any_key_outside_tlsa(&self) -> bool {
        self.probes.iter().any(|p| !p.in_tlsa)
    }
}

/// Checks the Ed25519 signature of a bundle with the service's 32-byte public key and
/// returns the bundle (its DNSSEC chains are not checked: see [`verify`]).
pub fn verify_signature(
    bundle_bytes: &[u8],
    public_key: &[u8],
) -> Result<EvidenceBundle, EvidenceError> {
    if public_key.len() != 32 {
        return Err(EvidenceError::BadPublicKey {
            len: public_key.len(),
        });
    }
    if bundle_bytes.len() > MAX_BUNDLE_BYTES {
        return Err(EvidenceError::TooLarge {
            limit: MAX_BUNDLE_BYTES,
        });
    }
    let mut v: Value = serde_json::from_slice(bundle_bytes)
        .map_err(|e| EvidenceError::Format(format!("not JSON: {e}")))?;
    let Value::Object(map) = &mut v else {
        return Err(EvidenceError::Format("not a JSON object".into()));
    };
    match map.get("schema_version").and_then(Value::as_u64) {
        Some(n) if n == u64::from(EVIDENCE_SCHEMA_VERSION) => {}
        Some(n) => return Err(EvidenceError::UnsupportedVersion { found: n }),
        None => return Err(EvidenceError::Format("no schema_version".into())),
    }
    let domain = map
        .get("domain")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let sig_value = map.remove("signature").ok_or(EvidenceError::Unsigned)?;
    let sig: BundleSignature = serde_json::from_value(sig_value.clone())
        .map_err(|e| EvidenceError::Format(format!("signature: {e}")))?;
    if sig.algorithm != "ed25519" {
        return Err(EvidenceError::Format(format!(
            "signature algorithm `{}` (only ed25519)",
            sig.algorithm
        )));
    }
    let bad = || EvidenceError::BadSignature {
        domain: domain.clone(),
        key_id: sig.key_id.clone(),
    };
    let raw = B64.decode(sig.value.as_bytes()).map_err(|_| bad())?;
    let msg = signing_input(&v)?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&msg, &raw)
        .map_err(|_| bad())?;
    if let Value::Object(map) = &mut v {
        map.insert("signature".into(), sig_value);
    }
    serde_json::from_value(v).map_err(|e| EvidenceError::Format(e.to_string()))
}

/// Verifies a bundle offline: the Ed25519 signature with the service's public key, every
/// DNSSEC chain against `anchor` at `now` (Unix seconds), every presented chain against its
/// stated SPKI hash, and for every probe whether the presented key is in the validated TLSA
/// RRset of its endpoint. A bundle whose DNS was bogus when it was made fails here with
/// [`EvidenceError::Dnssec`] naming the link; [`verify_signature`] still reads it.
pub fn verify(
    bundle_bytes: &[u8],
    public_key: &[u8],
    anchor: &TrustAnchor,
    now: u64,
) -> Result<VerifiedBundle, EvidenceError> {
    let bundle = verify_signature(bundle_bytes, public_key)?;
    check_contents(bundle, anchor, now)
}

/// The checks of [`verify`] after the signature: DNSSEC chains, certificates, matching.
fn check_contents(
    bundle: EvidenceBundle,
    anchor: &TrustAnchor,
    now: u64,
) -> Result<VerifiedBundle, EvidenceError> {
    for (what, n) in [
        ("DNSSEC chains", bundle.dnssec.len()),
        ("probes", bundle.probes.len()),
    ] {
        if n > MAX_BUNDLE_ITEMS {
            return Err(EvidenceError::Format(format!(
                "{n} {what} (at most {MAX_BUNDLE_ITEMS})"
            )));
        }
    }
    let mut tlsa = BTreeMap::new();
    let mut others = BTreeMap::new();
    for chain in &bundle.dnssec {
        let owner = normal_owner(&chain.owner);
        let rtype = chain.rtype.to_ascii_uppercase();
        if !CHAIN_TYPES.contains(&rtype.as_str()) {
            return Err(EvidenceError::Format(format!(
                "the chain of {owner} is for {}, not TLSA, SRV, A or AAAA",
                chain.rtype
            )));
        }
        let v = verify_chain(chain, anchor, now).map_err(|source| EvidenceError::Dnssec {
            owner: owner.clone(),
            source: Box::new(source),
        })?;
        if rtype == "TLSA" {
            tlsa.insert(owner, v);
        } else {
            others.insert(format!("{owner} {rtype}"), v);
        }
    }
    let policy_now = UnixTime::since_unix_epoch(Duration::from_secs(now));
    let mut probes = Vec::new();
    for p in &bundle.probes {
        let owner = normal_owner(&p.tlsa_owner);
        if owner != tlsa_owner(&p.target, p.port) {
            return Err(EvidenceError::OwnerMismatch {
                target: p.target.clone(),
                port: p.port,
                owner: p.tlsa_owner.clone(),
            });
        }
        let ders = parse_pem_chain(&p.chain_pem).map_err(|detail| EvidenceError::Certificate {
            target: p.target.clone(),
            address: p.address,
            detail,
        })?;
        let computed = ders
            .first()
            .and_then(|leaf| certificate_spki(leaf))
            .map(|s| hex(&spki_sha256(&s)))
            .ok_or_else(|| EvidenceError::Certificate {
                target: p.target.clone(),
                address: p.address,
                detail: "the leaf does not parse".into(),
            })?;
        if computed != p.spki_sha256.to_ascii_lowercase() {
            return Err(EvidenceError::SpkiMismatch {
                target: p.target.clone(),
                address: p.address,
                stated: p.spki_sha256.clone(),
                computed,
            });
        }
        let rrset = tlsa
            .get(&owner)
            .ok_or_else(|| EvidenceError::MissingChain {
                owner: owner.clone(),
            })?;
        let policy = certwatch_core::MatchPolicy::new(&bundle.domain, &p.target, policy_now);
        let outcome = match_chain(&rrset.tlsa, &ders, &policy);
        let srv_owner = normal_owner(&p.service.srv_owner(&bundle.domain));
        let srv_proven = others
            .get(&format!("{srv_owner} SRV"))
            .is_some_and(|rrset| {
                rrset.records.iter().any(|r| {
                    let f: Vec<&str> = r.rdata.split_whitespace().collect();
                    f.len() == 4
                        && f[2].parse::<u16>().ok() == Some(p.port)
                        && normal_owner(f[3]) == normal_owner(&p.target)
                })
            });
        let family = if p.address.is_ipv4() { "A" } else { "AAAA" };
        let address_proven = others
            .get(&format!("{} {family}", normal_owner(&p.target)))
            .is_some_and(|rrset| {
                rrset
                    .records
                    .iter()
                    .any(|r| r.rdata.trim().parse::<IpAddr>().ok() == Some(p.address))
            });
        probes.push(VerifiedProbe {
            probe: p.clone(),
            in_tlsa: outcome.is_match(),
            matched_record: outcome.matched_record().cloned(),
            srv_proven,
            address_proven,
        });
    }
    Ok(VerifiedBundle {
        bundle,
        tlsa,
        others,
        probes,
    })
}

/// Gathers the evidence of a report: collects the DNSSEC chain of every TLSA owner the
/// report names (through the options' resolver), and probes every target and key type with
/// TLSA records that presented a key again over the options' transport, recording the
/// chain, vantage and time.
///
/// The probes are new ones, made now: they show what the server presents at the time of
/// the bundle. To bundle the very probes of the check (and its confirmation), use
/// `Checker::check_with_probes` and [`gather_with_probes`]. Failures, and probes that no
/// chain in the bundle can judge, become [`EvidenceBundle::gaps`]; the bundle is unsigned.
pub async fn gather(options: &CheckOptions, report: &Report) -> EvidenceBundle {
    let mut bundle = EvidenceBundle::for_report(report, options.clock.now_unix());
    collect_chains(options, report, &mut bundle).await;
    let clock = options.clock.clone();
    let prober = Prober::new(options.transport.clone(), options.probe_options());
    let isolation = CheckIsolation::new();
    let jobs: Vec<(usize, ProbeTarget, KeyRequest)> = report
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let (Some(address), Some(kt), None) = (e.address, e.key_type, &e.error) else {
                return None;
            };
            if e.tlsa.is_empty() {
                // Nothing to judge the key against.
                return None;
            }
            let kr = match kt {
                certwatch_core::KeyType::Rsa => KeyRequest::Rsa,
                _ => KeyRequest::Ec,
            };
            let id = EndpointId::new(e.service, &e.target, e.port);
            Some((i, ProbeTarget::new(&report.domain, id, address), kr))
        })
        .collect();
    let (prober, isolation, clock) = (&prober, &isolation, &clock);
    // At most `concurrency` probes at once; the results keep the report's order.
    let mut done: Vec<(usize, Result<ProbeEvidence, String>)> = futures::stream::iter(jobs)
        .map(|(i, target, kr)| async move {
            let at = clock.now_unix();
            let r = match prober.probe(&target, isolation, kr).await {
                Ok(p) => ProbeEvidence::from_probe(&p, at).map_err(|e| e.to_string()),
                Err(err) => Err(format!(
                    "probe of {} port {} at {} ({}): {err}",
                    target.id.target,
                    target.id.port,
                    target.address,
                    kr.as_str()
                )),
            };
            (i, r)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    for (_, r) in done {
        match r {
            Ok(pe) => bundle.probes.push(pe),
            Err(gap) => bundle.gaps.push(gap),
        }
    }
    drop_unjudgeable(&mut bundle);
    bundle
}

/// Builds the evidence of a report from the probes the check itself made (see
/// `Checker::check_with_probes`): collects the DNSSEC chain of every TLSA owner the report
/// names, and takes every probe as it is, so the bundle shows what the alert saw. A
/// [`Probe`] carries no timestamp: `probed_at` is the report's `checked_at` (the start of
/// the check; confirmation rounds follow within the check).
pub async fn gather_with_probes(
    options: &CheckOptions,
    report: &Report,
    probes: &[Probe],
) -> EvidenceBundle {
    let mut bundle = EvidenceBundle::for_report(report, options.clock.now_unix());
    collect_chains(options, report, &mut bundle).await;
    let at = time::OffsetDateTime::parse(
        &report.checked_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
    .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
    .unwrap_or_else(|| options.clock.now_unix());
    for p in probes {
        match ProbeEvidence::from_probe(p, at) {
            Ok(pe) => bundle.probes.push(pe),
            Err(e) => bundle.gaps.push(e.to_string()),
        }
    }
    drop_unjudgeable(&mut bundle);
    bundle
}

/// Keeps only the probes that a chain in the bundle can judge; the others become gaps.
fn drop_unjudgeable(bundle: &mut EvidenceBundle) {
    let owners: Vec<String> = bundle
        .dnssec
        .iter()
        .map(|c| normal_owner(&c.owner))
        .collect();
    let (keep, drop): (Vec<ProbeEvidence>, Vec<ProbeEvidence>) = std::mem::take(&mut bundle.probes)
        .into_iter()
        .partition(|p| owners.contains(&normal_owner(&p.tlsa_owner)));
    bundle.probes = keep;
    for p in drop {
        bundle.gaps.push(format!(
            "probe of {} port {} at {} not included: no DNSSEC chain for {}",
            p.target, p.port, p.address, p.tlsa_owner
        ));
    }
}

/// Collects the DNSSEC chain of every TLSA owner the report names into `bundle`.
async fn collect_chains(options: &CheckOptions, report: &Report, bundle: &mut EvidenceBundle) {
    // TLSA first, then the SRV RRsets and the address RRsets that bind the targets.
    let mut wanted: Vec<(String, RrType)> = Vec::new();
    let mut want = |owner: String, rtype: RrType| {
        if !wanted.iter().any(|(o, t)| o == &owner && *t == rtype) {
            wanted.push((owner, rtype));
        }
    };
    let dane = || report.endpoints.iter().filter(|e| !e.tlsa.is_empty());
    for e in dane() {
        want(tlsa_owner(&e.target, e.port), RrType::Tlsa);
    }
    for e in dane() {
        // Without SRV (the RFC 6120 fallback) there is no SRV RRset: the gap says so.
        if normal_owner(&e.target) != normal_owner(&report.domain) {
            want(
                normal_owner(&e.service.srv_owner(&report.domain)),
                RrType::Srv,
            );
        }
    }
    for e in dane() {
        match e.address {
            Some(IpAddr::V4(_)) => want(normal_owner(&e.target), RrType::A),
            Some(IpAddr::V6(_)) => want(normal_owner(&e.target), RrType::Aaaa),
            None => {}
        }
    }
    match ChainCollector::new(options.resolver_config()) {
        Ok(collector) => {
            for (owner, rtype) in &wanted {
                match collector.collect(owner, *rtype).await {
                    Ok(chain) => bundle.dnssec.push(chain),
                    Err(e) => bundle.gaps.push(format!("DNSSEC chain of {owner}: {e}")),
                }
            }
        }
        Err(e) => bundle.gaps.push(format!("DNSSEC chains: {e}")),
    }
}

/// The lowercase hex SHA-256 of a raw Ed25519 public key: the `key_id` of its signatures.
pub fn key_id(public_key: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, public_key).as_ref())
}

/// The canonical JSON of `v` (RFC 8785 for the values a bundle holds).
pub fn canonical_json(v: &Value) -> Result<String, EvidenceError> {
    let mut out = String::new();
    write_canonical(v, &mut out)?;
    Ok(out)
}

fn signing_input(v: &Value) -> Result<Vec<u8>, EvidenceError> {
    let mut msg = SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(canonical_json(v)?.as_bytes());
    Ok(msg)
}

fn write_canonical(v: &Value, out: &mut String) -> Result<(), EvidenceError> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(EvidenceError::Format(format!(
                    "the number {n} is not an integer"
                )));
            }
            out.push_str(&n.to_string());
        }
        Value::String(s) => out.push_str(&json_string(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(k));
                out.push(':');
                write_canonical(&map[k], out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn json_string(s: &str) -> String {
    // Serialising a string cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn normal_owner(owner: &str) -> String {
    let o = owner.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("{o}.")
}

fn tlsa_owner(target: &str, port: u16) -> String {
    normal_owner(&format!("_{port}._tcp.{}", target.trim_end_matches('.')))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn pem(der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The DER certificates of PEM `CERTIFICATE` blocks, leaf first (bounded).
fn parse_pem_chain(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            if body.is_some() {
                return Err("a BEGIN line inside a certificate".into());
            }
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b = body.take().ok_or("an END line without BEGIN")?;
            let der = B64
                .decode(b.as_bytes())
                .map_err(|e| format!("certificate #{}: not base64: {e}", out.len()))?;
            out.push(der);
            if out.len() > MAX_CHAIN_CERTS {
                return Err(format!("more than {MAX_CHAIN_CERTS} certificates"));
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        } else if !line.is_empty() {
            return Err("text outside a certificate block".into());
        }
    }
    if body.is_some() {
        return Err("an unterminated certificate".into());
    }
    if out.is_empty() {
        return Err("no certificate".into());
    }
    Ok(out)
}

/// The private root of the interop environment (a real ECDSA P-256 key) for the fuzz
/// target: chains signed under it can get past the anchor.
const FUZZ_ANCHOR: &str = ". IN DNSKEY 257 3 13 zb7rNr66VCwhbzX3j11txFNGQeR02SHWBzPZdfkmh2LsTZlpiij8BPayJzDXyjSkM4afF9PlklIU5zxmJSQ+DA==";

/// The body of the `evidence_bundle` fuzz target: the signature check, the content checks
/// (as if the signature held), the PEM parser and the canonical form must never panic.
#[doc(hidden)]
pub fn fuzz_bundle(data: &[u8]) {
    let key = [7u8; 32];
    let _ = verify_signature(data, &key);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_pem_chain(text);
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let _ = canonical_json(&v);
    }
    if let Ok(b) = serde_json::from_str::<EvidenceBundle>(text) {
        let _ = b.signed_bytes();
        let anchor = TrustAnchor::DnskeyText(FUZZ_ANCHOR.to_owned());
        let _ = check_contents(b, &anchor, 1_795_891_900);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_white_space() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": true}], "a": "x\ny\u0001é" }"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"a\":\"x\\ny\\u0001é\",\"b\":[1,{\"a\":true,\"z\":null}]}"
        );
        let f: Value = serde_json::from_str(r#"{"a": 1.5}"#).unwrap();
        assert!(canonical_json(&f).is_err());
    }

    #[test]
    fn pem_round_trips_and_rejects_junk() {
        let der: Vec<u8> = (0..200u8).collect();
        let text = format!("{}{}", pem(&der), pem(&der[..10]));
        let back = parse_pem_chain(&text).unwrap();
        assert_eq!(back, vec![der.clone(), der[..10].to_vec()]);
        assert!(parse_pem_chain("").is_err());
        assert!(parse_pem_chain("junk").is_err());
        assert!(parse_pem_chain("-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(parse_pem_chain(&pem(&der).repeat(MAX_CHAIN_CERTS + 1)).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gather_lists_what_it_could_not_get_as_gaps() {
        use crate::report::{EndpointReport, Setup};
        use certwatch_core::{DnssecState, KeyType, Reason};

        // A DNS server that never answers, and a port where nothing listens.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut resolver = certwatch_dns::ResolverConfig::new(vec![silent.local_addr().unwrap()])
            .with_timeout(Duration::from_millis(100), 0);
        resolver.lookup_deadline = Duration::from_millis(500);
        let options = CheckOptions::new(certwatch_probe::Transport::Direct, resolver)
            .with_private_targets(true)
            .with_timeout(Duration::from_secs(2))
            .with_clock(std::sync::Arc::new(certwatch_dns::FixedClock(
                1_800_000_000,
            )));
        let entry = EndpointReport {
            service: Service::C2sStarttls,
            target: "xmpp.example.test".into(),
            port,
            address: Some("127.0.0.1".parse().unwrap()),
            dnssec: DnssecState::Secure,
            dnssec_reason: None,
            tlsa: vec![format!("3 1 1 {}", "ab".repeat(32)).parse().unwrap()],
            verdict: Verdict::Mismatch,
            reason: Some(Reason::KeyMatched),
            presented_spki_sha256: Some("cd".repeat(32)),
            matched_record: None,
            vantage: Some(Vantage::Direct),
            key_type: Some(KeyType::Ecdsa),
            error: None,
            confirmed_verdict: None,
        };
        let report = Report {
            schema_version: crate::SCHEMA_VERSION,
            domain: "example.test".into(),
            checked_at: "2027-01-15T07:59:00Z".into(),
            verdict: Verdict::Mismatch,
            endpoints: vec![entry],
            confirmation: None,
            setup: Setup::default(),
            warnings: vec![],
            exit: None,
        };
        let started = std::time::Instant::now();
        let b = gather(&options, &report).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(b.domain, "example.test");
        assert_eq!(b.verdict, Verdict::Mismatch);
        assert_eq!(b.created_at, "2027-01-15T08:00:00Z");
        assert!(b.probes.is_empty() && b.dnssec.is_empty());
        // The TLSA, SRV and A chains, and the probe.
        assert_eq!(b.gaps.len(), 4, "{:?}", b.gaps);
        assert!(b.gaps[0].contains(&format!("_{port}._tcp.xmpp.example.test. TLSA")));
        assert!(b.gaps[1].contains("_xmpp-client._tcp.example.test. SRV"));
        assert!(b.gaps[2].contains("xmpp.example.test. A"));
        assert!(b.gaps[3].starts_with("probe of xmpp.example.test"));
    }

    #[test]
    fn owners_are_normalised() {
        assert_eq!(
            tlsa_owner("XMPP.example.org.", 5222),
            "_5222._tcp.xmpp.example.org."
        );
        assert_eq!(normal_owner("_5222._tcp.a.b"), "_5222._tcp.a.b.");
    }
}
