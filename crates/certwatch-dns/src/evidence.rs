//! DNSSEC evidence for one RRset, in the spirit of RFC 9102: collect the records that prove
//! it (the RRset and its RRSIGs, every CNAME on the way with its RRSIGs, and for each zone
//! from the signer up to the root its DNSKEY RRset with RRSIGs and its DS RRset with
//! RRSIGs), and verify them **offline** against a [`TrustAnchor`] at an injected time.
//!
//! # Format
//!
//! A [`DnssecChain`] is plain data (serde): the owner and type asked for, and the records as
//! a list of strings, each the standard base64 (RFC 4648 §4, with padding) of **one**
//! resource record in RFC 1035 wire form with uncompressed names (owner, type, class, TTL,
//! RDLENGTH, RDATA), as RFC 9102 §3 lays them out one after the other. The order does not
//! matter; the verifier groups the records into RRsets. TTLs are informational: signatures
//! are checked with the RRSIG's original TTL, as validators do.
//!
//! # Verification
//!
//! [`verify_chain`] decodes the records (bounded by [`MAX_CHAIN_RECORDS`] and
//! [`MAX_CHAIN_BYTES`]), then walks from the answer up to the anchor and validates top-down:
//!
//! 1. the anchor zone's DNSKEY RRset holds a key of the anchor (DNSKEY anchor: same
//!    algorithm and public key; DS anchor: the DS digest covers it), and that key signs the
//!    DNSKEY RRset;
//! 2. for every zone below: the DS RRset is signed by the parent's validated keys, a DNSKEY
//!    of the zone matches a DS digest (SHA-1, SHA-256 or SHA-384) and signs the zone's
//!    DNSKEY RRset;
//! 3. every CNAME from the owner asked for, and the final RRset, are signed by a validated
//!    key of a zone that is an ancestor of their owner.
//!
//! Every RRSIG is checked for its validity window against `now` (Unix seconds), its key tag,
//! algorithm and signer, and its signature over the canonical RRset (RFC 4034 §6, computed
//! by hickory-proto's `TBS` and verified with ring through hickory-proto's `Verifier`).
//! Failure returns a [`ChainError`] that names the failing link.
//!
//! ```
//! use certwatch_dns::{ChainError, DnssecChain, TrustAnchor, verify_chain};
//!
//! // A chain must at least contain the RRset asked for.
//! let chain = DnssecChain::new("_5222._tcp.xmpp.example.org.", "TLSA", Vec::new());
//! let err = verify_chain(&chain, &TrustAnchor::IanaRoot, 1_800_000_000).unwrap_err();
//! assert!(matches!(err, ChainError::MissingRrset { .. }));
//! assert!(err.to_string().contains("_5222._tcp.xmpp.example.org. TLSA"));
//! ```
//!
//! Collection ([`ChainCollector`]) asks the configured servers with CD=1 and DO=1 (so a
//! validating upstream passes bogus data through and the verifier can name the fault), with
//! the per-query timeout of the [`ResolverConfig`] and one overall deadline
//! ([`ResolverConfig::lookup_deadline`]).
//!
//! ```no_run
//! use certwatch_dns::{ChainCollector, ResolverConfig, RrType, TrustAnchor, verify_chain};
//!
//! # async fn run(now_unix: u64) -> Result<(), Box<dyn std::error::Error>> {
//! let collector = ChainCollector::new(ResolverConfig::from_servers(&["127.0.0.1:53"])?)?;
//! let chain = collector.collect("_5222._tcp.xmpp.example.org", RrType::Tlsa).await?;
//! // Plain data: store it, send it, verify it elsewhere and later.
//! let json = serde_json::to_string(&chain)?;
//! let chain: certwatch_dns::DnssecChain = serde_json::from_str(&json)?;
//! let v = verify_chain(&chain, &TrustAnchor::IanaRoot, now_unix)?;
//! for t in &v.tlsa {
//!     println!("{} {} {} {}", t.usage.to_u8(), t.selector.to_u8(), t.matching.to_u8(), t.data_hex());
//! }
//! println!("proven until {} through zones {:?}", v.valid_until, v.zones);
//! # Ok(()) }
//! ```
//!
//! A wildcard expansion (an RRSIG with fewer labels than its owner) is accepted only with a
//! signed NSEC or NSEC3 record of the signing zone that covers the next closer name (RFC 4035
//! §5.3.4, RFC 5155 §8.8; NSEC3 with at most 500 iterations); the collector takes these from
//! the authority section. Not covered: proofs of denial (a missing RRset is an error at
//! collection, not a bundled NSEC/NSEC3 proof).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use certwatch_core::Tlsa;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{PublicKey as _, TrustAnchors, Verifier as _};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable as _, BinDecoder, BinEncodable as _, BinEncoder, NameEncoding,
};
use hickory_resolver::NameServerPool;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::config::{ResolverConfig, TrustAnchor};
use crate::error::Error;
use crate::resolver::RrType;
use crate::rrset::RecordSeen;
use crate::wire::{self, Wire};

/// At most this many records in one chain (collected or verified).
pub const MAX_CHAIN_RECORDS: usize = 512;
/// At most this many bytes of wire-form records in one chain (collected or verified).
pub const MAX_CHAIN_BYTES: usize = 256 * 1024;
/// At most this many zone cuts between the RRset and the anchor.
pub const MAX_CHAIN_DEPTH: usize = 16;
/// At most this many CNAMEs are followed (RFC 7671 §7).
pub const MAX_CHAIN_CNAMES: usize = 8;

/// The records that prove one RRset, as carried in an evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DnssecChain {
    /// The owner asked for, fully qualified with a trailing dot
    /// (`_5222._tcp.xmpp.example.org.`).
    pub owner: String,
    /// The record type asked for, by mnemonic (`TLSA`).
    pub rtype: String,
    /// Each record: standard base64 of its RFC 1035 wire form, uncompressed names.
    pub records: Vec<String>,
}

impl DnssecChain {
    /// A chain from its parts (records already base64-encoded wire form).
    pub fn new(owner: impl Into<String>, rtype: impl Into<String>, records: Vec<String>) -> Self {
        DnssecChain {
            owner: owner.into(),
            rtype: rtype.into(),
            records,
        }
    }

    /// A chain from hickory records (used by the collector and by tests that sign zones).
    pub fn from_records(
        owner: impl Into<String>,
        rtype: impl Into<String>,
        records: &[Record],
    ) -> Result<Self, ChainError> {
        let records = records
            .iter()
            .map(|r| encode_record(r).map(|b| B64.encode(b)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DnssecChain::new(owner, rtype, records))
    }

    /// Decodes the records (bounded); the error names the first undecodable entry.
    pub fn decode(&self) -> Result<Vec<Record>, ChainError> {
        if self.records.len() > MAX_CHAIN_RECORDS {
            return Err(ChainError::TooLarge {
                what: "records",
                limit: MAX_CHAIN_RECORDS,
            });
        }
        let mut total = 0usize;
        let mut out = Vec::with_capacity(self.records.len());
        for (index, text) in self.records.iter().enumerate() {
            // Base64 is 4/3 of the bytes: bound before decoding.
            if text.len() / 4 * 3 > MAX_CHAIN_BYTES.saturating_sub(total) {
                return Err(ChainError::TooLarge {
                    what: "bytes",
                    limit: MAX_CHAIN_BYTES,
                });
            }
            let bytes = B64.decode(text.trim()).map_err(|e| ChainError::Decode {
                index,
                detail: format!("not base64: {e}"),
            })?;
            total += bytes.len();
            let mut d = BinDecoder::new(&bytes);
            let record = Record::read(&mut d).map_err(|e| ChainError::Decode {
                index,
                detail: e.to_string(),
            })?;
            if !d.is_empty() {
                return Err(ChainError::Decode {
                    index,
                    detail: format!("{} bytes after the record", d.len()),
                });
            }
            if record.dns_class != DNSClass::IN {
                return Err(ChainError::Decode {
                    index,
                    detail: format!("class {} (only IN is accepted)", record.dns_class),
                });
            }
            out.push(record);
        }
        Ok(out)
    }

    /// The records in presentation format (one zone-file line each), for people and for
    /// tools such as `ldns-verify-zone`; `None` for an undecodable chain.
    pub fn to_zone_text(&self) -> Option<String> {
        let records = self.decode().ok()?;
        Some(records.iter().map(|r| format!("{r}\n")).collect())
    }
}

/// One record in wire form, names uncompressed (RFC 9102 §3).
fn encode_record(r: &Record) -> Result<Vec<u8>, ChainError> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    r.emit(&mut enc).map_err(|e| ChainError::Encode {
        owner: r.name.to_string(),
        detail: e.to_string(),
    })?;
    Ok(buf)
}

/// Why a chain could not be collected or does not prove its RRset. Each variant names the
/// link (owner and type, or zone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The chain exceeds a bound.
    #[error("the DNSSEC chain has too many {what} (limit {limit})")]
    TooLarge {
        /// `records` or `bytes`.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A record does not decode.
    #[error("record #{index} of the DNSSEC chain does not decode: {detail}")]
    Decode {
        /// Position in [`DnssecChain::records`].
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode a record of {owner}: {detail}")]
    Encode {
        /// Its owner.
        owner: String,
        /// The encoder's message.
        detail: String,
    },
    /// The owner or type of the chain is not a DNS name or type.
    #[error("the chain is for `{owner} {rtype}`, which is not a DNS name and type")]
    BadQuestion {
        /// The owner as given.
        owner: String,
        /// The type as given.
        rtype: String,
    },
    /// The trust anchor is unusable for offline verification.
    #[error("unusable trust anchor: {detail}")]
    Anchor {
        /// What is wrong.
        detail: String,
    },
    /// A needed RRset is not in the chain (or, when collecting, not in DNS).
    #[error("the DNSSEC chain lacks the {owner} {rtype} RRset")]
    MissingRrset {
        /// Owner name.
        owner: String,
        /// Record type.
        rtype: String,
    },
    /// More CNAMEs than [`MAX_CHAIN_CNAMES`], or a loop.
    #[error("the CNAME chain from {owner} is longer than {MAX_CHAIN_CNAMES} or loops")]
    CnameChain {
        /// The owner asked for.
        owner: String,
    },
    /// A wildcard expansion without a signed NSEC/NSEC3 record proving that no closer name
    /// exists (RFC 4035 §5.3.4, RFC 5155 §8.8).
    #[error(
        "{owner} is a wildcard expansion, but no signed NSEC or NSEC3 record proves that {next_closer} does not exist"
    )]
    WildcardUnproven {
        /// The expanded owner.
        owner: String,
        /// The next closer name that must be denied.
        next_closer: String,
    },
    /// More zone cuts than [`MAX_CHAIN_DEPTH`], or the walk reached the root without meeting
    /// the anchor.
    #[error("{zone} cannot be linked to the trust anchor at {anchor}")]
    NotUnderAnchor {
        /// Where the walk stopped.
        zone: String,
        /// The anchor's owner.
        anchor: String,
    },
    /// No DNSKEY of the anchor zone is a trust anchor.
    #[error("no DNSKEY of {zone} (key tags {key_tags}) is in the trust anchor")]
    AnchorMismatch {
        /// The anchor zone.
        zone: String,
        /// The key tags found.
        key_tags: String,
    },
    /// No DNSKEY of a zone matches the DS RRset in its parent.
    #[error(
        "DS without a matching DNSKEY: the DS records for {zone} (key tags {ds_tags}) match none of its DNSKEYs (key tags {key_tags})"
    )]
    DsMismatch {
        /// The zone.
        zone: String,
        /// Key tags named by the DS records.
        ds_tags: String,
        /// Key tags of the DNSKEYs.
        key_tags: String,
    },
    /// No RRSIG over an RRset holds.
    #[error("{owner} {rtype}: {fault}")]
    Rrsig {
        /// Owner of the RRset.
        owner: String,
        /// Its type.
        rtype: String,
        /// Why no signature holds (the most telling of the faults).
        fault: SigFault,
    },
    /// A DNS query failed while collecting.
    #[error("collecting the DNSSEC chain: {owner} {rtype}: {detail}")]
    Query {
        /// Owner asked for.
        owner: String,
        /// Type asked for.
        rtype: String,
        /// What happened (timeout, SERVFAIL, ...).
        detail: String,
    },
    /// Collection took longer than the deadline.
    #[error("collecting the DNSSEC chain of {owner} took longer than {ms} ms")]
    Timeout {
        /// The owner asked for.
        owner: String,
        /// The deadline.
        ms: u128,
    },
    /// The resolver configuration is unusable.
    #[error("resolver setup: {0}")]
    Setup(String),
}

/// Why an RRSIG does not validate an RRset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigFault {
    /// The RRset carries no RRSIG.
    #[error("missing RRSIG: the RRset is not signed")]
    Missing,
    /// The signature expired before `now`.
    #[error("expired RRSIG by {signer} (key tag {key_tag}): expired at {expiration}")]
    Expired {
        /// Signer zone.
        signer: String,
        /// Key tag.
        key_tag: u16,
        /// RFC 3339.
        expiration: String,
    },
    /// The signature's inception is after `now`.
    #[error("RRSIG by {signer} (key tag {key_tag}) not yet valid: valid from {inception}")]
    NotYetValid {
        /// Signer zone.
        signer: String,
        /// Key tag.
        key_tag: u16,
        /// RFC 3339.
        inception: String,
    },
    /// The signer is not the zone that may sign the RRset.
    #[error("RRSIG signer {signer} may not sign this RRset")]
    WrongSigner {
        /// The signer named.
        signer: String,
    },
    /// No validated DNSKEY of the signer has the key tag and algorithm.
    #[error("the RRSIG names key tag {key_tag} of {signer}, which has no such validated DNSKEY")]
    UnknownKey {
        /// Signer zone.
        signer: String,
        /// Key tag.
        key_tag: u16,
    },
    /// The algorithm cannot be verified.
    #[error("unsupported DNSSEC algorithm {algorithm}")]
    UnsupportedAlgorithm {
        /// Algorithm number.
        algorithm: u8,
    },
    /// The signature does not verify over the RRset.
    #[error(
        "bad signature by {signer} (key tag {key_tag}): the records were changed after signing, or signed with another key"
    )]
    BadSignature {
        /// Signer zone.
        signer: String,
        /// Key tag.
        key_tag: u16,
    },
}

impl SigFault {
    /// How telling a fault is, when several RRSIGs fail (the highest is reported).
    fn rank(&self) -> u8 {
        match self {
            SigFault::Missing => 0,
            SigFault::UnsupportedAlgorithm { .. } => 1,
            SigFault::WrongSigner { .. } => 2,
            SigFault::UnknownKey { .. } => 3,
            SigFault::NotYetValid { .. } | SigFault::Expired { .. } => 4,
            SigFault::BadSignature { .. } => 5,
        }
    }
}

/// An RRset whose chain verified, with what the verification rested on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ValidatedRrset {
    /// The owner asked for, fully qualified.
    pub owner: String,
    /// The owner of the RRset after the CNAMEs.
    pub final_owner: String,
    /// The record type.
    pub rtype: String,
    /// The records of the validated RRset.
    pub records: Vec<RecordSeen>,
    /// The validated CNAMEs from `owner` to `final_owner`, in order.
    pub cnames: Vec<RecordSeen>,
    /// The TLSA records of the RRset (empty for other types).
    #[serde(skip)]
    pub tlsa: Vec<Tlsa>,
    /// The zones whose DNSKEY RRsets were validated, top-down.
    pub zones: Vec<String>,
    /// True when the RRset (or a CNAME) is a wildcard expansion (RRSIG labels below the
    /// owner's); its proof that no closer name exists was checked.
    pub wildcard: bool,
    /// The earliest expiration (Unix seconds) among the RRSIGs the verification used: the
    /// evidence proves the RRset only until then.
    pub valid_until: u64,
}

/// Verifies `chain` offline against `anchor` at time `now` (Unix seconds). Returns the
/// validated RRset, or the first failing link from the top.
pub fn verify_chain(
    chain: &DnssecChain,
    anchor: &TrustAnchor,
    now: u64,
) -> Result<ValidatedRrset, ChainError> {
    let bad_question = || ChainError::BadQuestion {
        owner: chain.owner.clone(),
        rtype: chain.rtype.clone(),
    };
    let mut owner = Name::from_ascii(chain.owner.trim()).map_err(|_| bad_question())?;
    owner.set_fqdn(true);
    let rtype = RecordType::from_str(chain.rtype.trim()).map_err(|_| bad_question())?;
    if matches!(
        rtype,
        RecordType::RRSIG | RecordType::CNAME | RecordType::Unknown(_)
    ) {
        return Err(bad_question());
    }
    let records = chain.decode()?;
    let anchors = Anchors::parse(anchor)?;
    let mut v = Validator::new(&records, anchors, now);

    let mut cur = owner.clone();
    let mut cnames = Vec::new();
    let mut seen: HashSet<Name> = HashSet::new();
    loop {
        if !seen.insert(cur.to_lowercase()) || cnames.len() > MAX_CHAIN_CNAMES {
            return Err(ChainError::CnameChain {
                owner: owner.to_string(),
            });
        }
        if v.rrset(&cur, rtype).is_some() {
            v.verify_rrset(&cur, rtype)?;
            break;
        }
        let Some(cname) = v.rrset(&cur, RecordType::CNAME).and_then(|s| s.first()) else {
            return Err(ChainError::MissingRrset {
                owner: cur.to_string(),
                rtype: rtype.to_string(),
            });
        };
        let RData::CNAME(target) = &cname.data else {
            return Err(ChainError::MissingRrset {
                owner: cur.to_string(),
                rtype: rtype.to_string(),
            });
        };
        let target = target.0.clone();
        cnames.push(RecordSeen::from_record(cname));
        v.verify_rrset(&cur, RecordType::CNAME)?;
        cur = target;
    }
    let rrset = v.rrset(&cur, rtype).cloned().unwrap_or_default();
    let tlsa = rrset
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(Tlsa::new(
                u8::from(t.cert_usage),
                u8::from(t.selector),
                u8::from(t.matching),
                t.cert_data.clone(),
            )),
            _ => None,
        })
        .collect();
    let mut zones: Vec<(usize, String)> = v
        .trusted
        .keys()
        .map(|z| (z.num_labels() as usize, z.to_string()))
        .collect();
    zones.sort();
    Ok(ValidatedRrset {
        owner: owner.to_string(),
        final_owner: cur.to_string(),
        rtype: rtype.to_string(),
        records: rrset.iter().map(RecordSeen::from_record).collect(),
        cnames,
        tlsa,
        zones: zones.into_iter().map(|(_, z)| z).collect(),
        wildcard: v.wildcard,
        valid_until: v.valid_until,
    })
}

/// The anchors in a form the verifier can compare with: keys and DS records by owner.
struct Anchors {
    keys: Vec<(Name, DNSKEY)>,
    ds: Vec<(Name, DS)>,
}

impl Anchors {
    fn parse(anchor: &TrustAnchor) -> Result<Self, ChainError> {
        let bad = |detail: String| ChainError::Anchor { detail };
        match anchor {
            TrustAnchor::IanaRoot => {
                let t = TrustAnchors::default();
                let keys = (0..t.len())
                    .filter_map(|i| t.get(i))
                    .map(|k| (Name::root(), DNSKEY::new(true, true, false, k.clone())))
                    .collect();
                Ok(Anchors {
                    keys,
                    ds: Vec::new(),
                })
            }
            TrustAnchor::DnskeyText(text) => {
                let entries =
                    hickory_proto::serialize::txt::trust_anchor::Parser::new(text.as_str())
                        .parse()
                        .map_err(|e| bad(format!("DNSKEY: {e}")))?;
                let keys: Vec<(Name, DNSKEY)> = entries
                    .into_iter()
                    .filter_map(|e| match e {
                        hickory_proto::serialize::txt::trust_anchor::Entry::DNSKEY(r) => {
                            let mut n = r.name().clone();
                            n.set_fqdn(true);
                            Some((n, r.data().clone()))
                        }
                        #[allow(unreachable_patterns)]
                        _ => None,
                    })
                    .collect();
                if keys.is_empty() {
                    return Err(bad("no DNSKEY record in the text".into()));
                }
                Ok(Anchors {
                    keys,
                    ds: Vec::new(),
                })
            }
            TrustAnchor::DsText(text) => Ok(Anchors {
                keys: Vec::new(),
                ds: parse_ds_lines(text).map_err(bad)?,
            }),
        }
    }

    fn at(&self, zone: &Name) -> bool {
        self.keys.iter().any(|(n, _)| n == zone) || self.ds.iter().any(|(n, _)| n == zone)
    }

    fn trusts(&self, zone: &Name, key: &DNSKEY) -> bool {
        self.keys.iter().any(|(n, k)| {
            n == zone
                && k.algorithm() == key.algorithm()
                && k.public_key().public_bytes() == key.public_key().public_bytes()
        }) || self.ds.iter().any(|(n, d)| {
            n == zone
                && d.algorithm() == key.algorithm()
                && key.calculate_key_tag().ok() == Some(d.key_tag())
                && d.covers(zone, key).unwrap_or(false)
        })
    }

    fn names(&self) -> String {
        let mut v: Vec<String> = self
            .keys
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(self.ds.iter().map(|(n, _)| n.to_string()))
            .collect();
        v.dedup();
        v.join(", ")
    }
}

/// The DS anchors of `text`, parsed as the resolver configuration parses them
/// ([`crate::anchors::parse_ds`]), with fully qualified owners.
fn parse_ds_lines(text: &str) -> Result<Vec<(Name, DS)>, String> {
    let parsed = crate::anchors::parse_ds(text).map_err(|e| match e {
        crate::error::Error::TrustAnchor { detail, .. } => detail,
        other => other.to_string(),
    })?;
    Ok(parsed
        .into_iter()
        .map(|a| {
            let mut owner = a.owner;
            owner.set_fqdn(true);
            (owner, a.ds)
        })
        .collect())
}

/// The offline validator's state: the chain's RRsets, the validated keys per zone.
struct Validator {
    rrsets: HashMap<(Name, RecordType), Vec<Record>>,
    sigs: HashMap<(Name, RecordType), Vec<RRSIG>>,
    anchors: Anchors,
    now: u64,
    trusted: HashMap<Name, Vec<DNSKEY>>,
    depth: usize,
    wildcard: bool,
    valid_until: u64,
}

impl Validator {
    fn new(records: &[Record], anchors: Anchors, now: u64) -> Self {
        let mut rrsets: HashMap<(Name, RecordType), Vec<Record>> = HashMap::new();
        let mut sigs: HashMap<(Name, RecordType), Vec<RRSIG>> = HashMap::new();
        for r in records {
            let owner = r.name.to_lowercase();
            match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(s)) => {
                    let e = sigs.entry((owner, s.input().type_covered)).or_default();
                    if !e.contains(s) {
                        e.push(s.clone());
                    }
                }
                _ => {
                    let e = rrsets.entry((owner, r.record_type())).or_default();
                    // An RRset has no duplicates (RFC 2181 §5): the TTL does not count.
                    if !e.iter().any(|x| x.data == r.data) {
                        e.push(r.clone());
                    }
                }
            }
        }
        Validator {
            rrsets,
            sigs,
            anchors,
            now,
            trusted: HashMap::new(),
            depth: 0,
            wildcard: false,
            valid_until: u64::MAX,
        }
    }

    fn rrset(&self, owner: &Name, rtype: RecordType) -> Option<&Vec<Record>> {
        self.rrsets.get(&(owner.to_lowercase(), rtype))
    }

    /// Verifies the RRSIGs over `owner rtype` with validated keys of their signer.
    fn verify_rrset(&mut self, owner: &Name, rtype: RecordType) -> Result<(), ChainError> {
        let records =
            self.rrset(owner, rtype)
                .cloned()
                .ok_or_else(|| ChainError::MissingRrset {
                    owner: owner.to_string(),
                    rtype: rtype.to_string(),
                })?;
        let sigs = self
            .sigs
            .get(&(owner.to_lowercase(), rtype))
            .cloned()
            .unwrap_or_default();
        let rrsig_err = |fault: SigFault| ChainError::Rrsig {
            owner: owner.to_string(),
            rtype: rtype.to_string(),
            fault,
        };
        if sigs.is_empty() {
            return Err(rrsig_err(SigFault::Missing));
        }
        let mut best: Option<SigFault> = None;
        let mut chain_err: Option<ChainError> = None;
        for sig in &sigs {
            let signer = sig.input().signer_name.clone();
            // The signer is the zone of the owner: an ancestor (or the owner itself, except
            // for DS, which the parent signs).
            let may_sign = signer.zone_of(owner) && !(rtype == RecordType::DS && &signer == owner);
            if !may_sign {
                note(
                    &mut best,
                    SigFault::WrongSigner {
                        signer: signer.to_string(),
                    },
                );
                continue;
            }
            let keys = match self.zone_keys(&signer) {
                Ok(k) => k,
                Err(e) => {
                    chain_err.get_or_insert(e);
                    continue;
                }
            };
            match self.check_sig(owner, &records, sig, &keys) {
                Ok(()) if sig.input().num_labels < owner.num_labels() => {
                    return self.prove_no_closer(owner, sig.input().num_labels, &signer);
                }
                Ok(()) => return Ok(()),
                Err(f) => note(&mut best, f),
            }
        }
        if let Some(e) = chain_err {
            return Err(e);
        }
        Err(rrsig_err(best.unwrap_or(SigFault::Missing)))
    }

    /// Checks one RRSIG over `records` against `keys` at `now`.
    fn check_sig(
        &mut self,
        owner: &Name,
        records: &[Record],
        sig: &RRSIG,
        keys: &[DNSKEY],
    ) -> Result<(), SigFault> {
        let i = sig.input();
        let signer = i.signer_name.to_string();
        if !i.algorithm.is_supported() {
            return Err(SigFault::UnsupportedAlgorithm {
                algorithm: u8::from(i.algorithm),
            });
        }
        let exp = u64::from(i.sig_expiration.get());
        let inc = u64::from(i.sig_inception.get());
        if self.now > exp {
            return Err(SigFault::Expired {
                signer,
                key_tag: i.key_tag,
                expiration: rfc3339(exp),
            });
        }
        if self.now < inc {
            return Err(SigFault::NotYetValid {
                signer,
                key_tag: i.key_tag,
                inception: rfc3339(inc),
            });
        }
        let owner_labels = owner.num_labels();
        if i.num_labels > owner_labels {
            return Err(SigFault::BadSignature {
                signer,
                key_tag: i.key_tag,
            });
        }
        let candidates: Vec<&DNSKEY> = keys
            .iter()
            .filter(|k| {
                k.algorithm() == i.algorithm && k.calculate_key_tag().ok() == Some(i.key_tag)
            })
            .collect();
        if candidates.is_empty() {
            return Err(SigFault::UnknownKey {
                signer,
                key_tag: i.key_tag,
            });
        }
        let ok = candidates.iter().any(|k| {
            k.verify_rrsig(owner, DNSClass::IN, sig, records.iter())
                .is_ok()
        });
        if !ok {
            return Err(SigFault::BadSignature {
                signer,
                key_tag: i.key_tag,
            });
        }
        if i.num_labels < owner_labels {
            self.wildcard = true;
        }
        self.valid_until = self.valid_until.min(exp);
        Ok(())
    }

    /// For a wildcard expansion at `owner` signed with `labels` labels by `zone`: a signed
    /// NSEC or NSEC3 record of the zone must cover the next closer name (RFC 4035 §5.3.4,
    /// RFC 5155 §8.8).
    fn prove_no_closer(&mut self, owner: &Name, labels: u8, zone: &Name) -> Result<(), ChainError> {
        let mut next_closer = owner.trim_to(usize::from(labels) + 1).to_lowercase();
        next_closer.set_fqdn(true);
        let zone = zone.to_lowercase();
        let mut candidates: Vec<(Name, RecordType)> = Vec::new();
        for ((o, t), records) in &self.rrsets {
            for r in records {
                let covers = match &r.data {
                    RData::DNSSEC(DNSSECRData::NSEC(n)) if zone.zone_of(o) => {
                        let mut next = n.next_domain_name().to_lowercase();
                        next.set_fqdn(true);
                        o < &next_closer && (next_closer < next || next <= *o)
                    }
                    RData::DNSSEC(DNSSECRData::NSEC3(n)) if o.base_name() == zone => {
                        nsec3_covers(o, n, &next_closer)
                    }
                    _ => false,
                };
                if covers {
                    candidates.push((o.clone(), *t));
                }
            }
        }
        for (o, t) in candidates {
            if self.verify_rrset(&o, t).is_ok() {
                return Ok(());
            }
        }
        Err(ChainError::WildcardUnproven {
            owner: owner.to_string(),
            next_closer: next_closer.to_string(),
        })
    }

    /// The validated DNSKEYs of `zone` (memoised): anchored, or linked to the parent by DS.
    fn zone_keys(&mut self, zone: &Name) -> Result<Vec<DNSKEY>, ChainError> {
        let zone = zone.to_lowercase();
        if let Some(k) = self.trusted.get(&zone) {
            return Ok(k.clone());
        }
        self.depth += 1;
        if self.depth > MAX_CHAIN_DEPTH {
            return Err(ChainError::NotUnderAnchor {
                zone: zone.to_string(),
                anchor: self.anchors.names(),
            });
        }
        let result = self.zone_keys_inner(&zone);
        self.depth -= 1;
        let keys = result?;
        self.trusted.insert(zone, keys.clone());
        Ok(keys)
    }

    fn zone_keys_inner(&mut self, zone: &Name) -> Result<Vec<DNSKEY>, ChainError> {
        let key_records = self
            .rrset(zone, RecordType::DNSKEY)
            .cloned()
            .ok_or_else(|| ChainError::MissingRrset {
                owner: zone.to_string(),
                rtype: "DNSKEY".into(),
            })?;
        let dnskeys: Vec<DNSKEY> = key_records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let tags = |keys: &[DNSKEY]| {
            keys.iter()
                .filter_map(|k| k.calculate_key_tag().ok())
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let usable = |k: &DNSKEY| k.zone_key() && !k.revoke();
        let entry: Vec<DNSKEY> = if self.anchors.at(zone) {
            let e: Vec<DNSKEY> = dnskeys
                .iter()
                .filter(|k| usable(k) && self.anchors.trusts(zone, k))
                .cloned()
                .collect();
            if e.is_empty() {
                return Err(ChainError::AnchorMismatch {
                    zone: zone.to_string(),
                    key_tags: tags(&dnskeys),
                });
            }
            e
        } else {
            if zone.is_root() {
                return Err(ChainError::NotUnderAnchor {
                    zone: zone.to_string(),
                    anchor: self.anchors.names(),
                });
            }
            // The DS RRset, signed by the parent (which validates the parent first).
            self.verify_rrset(zone, RecordType::DS)?;
            let ds: Vec<DS> = self
                .rrset(zone, RecordType::DS)
                .map(|v| {
                    v.iter()
                        .filter_map(|r| match &r.data {
                            RData::DNSSEC(DNSSECRData::DS(d)) => Some(d.clone()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let e: Vec<DNSKEY> = dnskeys
                .iter()
                .filter(|k| {
                    usable(k)
                        && ds.iter().any(|d| {
                            d.algorithm().is_supported()
                                && d.digest_type().is_supported()
                                && d.algorithm() == k.algorithm()
                                && k.calculate_key_tag().ok() == Some(d.key_tag())
                                && d.covers(zone, k).unwrap_or(false)
                        })
                })
                .cloned()
                .collect();
            if e.is_empty() {
                return Err(ChainError::DsMismatch {
                    zone: zone.to_string(),
                    ds_tags: ds
                        .iter()
                        .map(|d| d.key_tag().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    key_tags: tags(&dnskeys),
                });
            }
            e
        };
        // The entry keys sign the DNSKEY RRset, which then vouches for every zone key.
        let sigs: Vec<RRSIG> = self
            .sigs
            .get(&(zone.clone(), RecordType::DNSKEY))
            .cloned()
            .unwrap_or_default();
        let rrsig_err = |fault: SigFault| ChainError::Rrsig {
            owner: zone.to_string(),
            rtype: "DNSKEY".into(),
            fault,
        };
        if sigs.is_empty() {
            return Err(rrsig_err(SigFault::Missing));
        }
        let mut best: Option<SigFault> = None;
        for sig in &sigs {
            if &sig.input().signer_name != zone {
                note(
                    &mut best,
                    SigFault::WrongSigner {
                        signer: sig.input().signer_name.to_string(),
                    },
                );
                continue;
            }
            match self.check_sig(zone, &key_records, sig, &entry) {
                Ok(()) => return Ok(dnskeys.into_iter().filter(usable).collect()),
                Err(f) => note(&mut best, f),
            }
        }
        Err(rrsig_err(best.unwrap_or(SigFault::Missing)))
    }
}

/// NSEC3 iterations above this are not computed (RFC 9276; hickory's bogus limit).
const MAX_NSEC3_ITERATIONS: u16 = 500;

/// True when the NSEC3 record at `owner` covers the hash of `name` (strictly between its
/// owner hash and its next hash, wrapping at the end of the zone's hash chain).
fn nsec3_covers(owner: &Name, n: &hickory_proto::dnssec::rdata::NSEC3, name: &Name) -> bool {
    if n.iterations() > MAX_NSEC3_ITERATIONS {
        return false;
    }
    let Some(first) = owner.iter().next() else {
        return false;
    };
    let Some(own) = base32hex_decode(first) else {
        return false;
    };
    let Ok(h) = n.hash_algorithm().hash(n.salt(), name, n.iterations()) else {
        return false;
    };
    let (h, next) = (h.as_ref(), n.next_hashed_owner_name());
    if own.as_slice() < next {
        own.as_slice() < h && h < next
    } else {
        h > own.as_slice() || h < next
    }
}

/// Base32 with the extended hex alphabet (RFC 4648 §7), no padding, any case.
fn base32hex_decode(label: &[u8]) -> Option<Vec<u8>> {
    if label.is_empty() || !label.len().is_multiple_of(8) {
        return None;
    }
    let mut out = Vec::with_capacity(label.len() * 5 / 8);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &c in label {
        let v = match c.to_ascii_lowercase() {
            d @ b'0'..=b'9' => d - b'0',
            l @ b'a'..=b'v' => l - b'a' + 10,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

fn note(best: &mut Option<SigFault>, f: SigFault) {
    if best.as_ref().is_none_or(|b| f.rank() > b.rank()) {
        *best = Some(f);
    }
}

/// Collects [`DnssecChain`]s from the configured servers (raw answers, CD=1, DO=1).
#[derive(Clone)]
pub struct ChainCollector {
    config: Arc<ResolverConfig>,
    pool: NameServerPool<TokioRuntimeProvider>,
}

impl std::fmt::Debug for ChainCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainCollector")
            .field("servers", &self.config.servers)
            .finish_non_exhaustive()
    }
}

impl ChainCollector {
    /// A collector over these servers. Nothing is sent until [`ChainCollector::collect`].
    pub fn new(config: ResolverConfig) -> Result<Self, Error> {
        if config.servers.is_empty() {
            return Err(Error::NoServers);
        }
        let pool = wire::pool(&config)?;
        Ok(ChainCollector {
            config: Arc::new(config),
            pool,
        })
    }

    /// Collects the chain of `owner rtype` (for DANE: `_5222._tcp.xmpp.example.org`,
    /// [`RrType::Tlsa`]; the owner is used in lower case, with a trailing dot): the RRset, the CNAMEs to it, and the DNSKEY and DS RRsets with
    /// their RRSIGs from each signer up to the root. Bounded by the resolver's
    /// `lookup_deadline` as a whole, [`MAX_CHAIN_RECORDS`] and [`MAX_CHAIN_BYTES`].
    ///
    /// The chain is not validated here: verify it with [`verify_chain`] (a bogus RRset is
    /// collected as it is, so that its evidence shows the fault).
    pub async fn collect(&self, owner: &str, rtype: RrType) -> Result<DnssecChain, ChainError> {
        let rtype: RecordType = rtype.into();
        let trimmed = owner.trim();
        let mut name = Name::from_ascii(trimmed).map_err(|_| ChainError::BadQuestion {
            owner: trimmed.to_owned(),
            rtype: rtype.to_string(),
        })?;
        name.set_fqdn(true);
        let name = name.to_lowercase();
        let deadline = self.config.lookup_deadline;
        let wire = Wire::new(self.pool.clone());
        let records = tokio::time::timeout(deadline, collect_inner(&wire, &name, rtype))
            .await
            .map_err(|_| ChainError::Timeout {
                owner: name.to_string(),
                ms: deadline.as_millis(),
            })??;
        DnssecChain::from_records(name.to_string(), rtype.to_string(), &records)
    }
}

/// The records gathered so far, bounded.
#[derive(Default)]
struct Gathered {
    records: Vec<Record>,
    have: HashSet<(Name, RecordType)>,
    bytes: usize,
}

impl Gathered {
    /// Adds the RRset `owner rtype` from `section` with the RRSIGs that cover it; the
    /// signer names of those RRSIGs are returned.
    fn add(
        &mut self,
        section: &[Record],
        owner: &Name,
        rtype: RecordType,
    ) -> Result<Vec<Name>, ChainError> {
        let key = (owner.to_lowercase(), rtype);
        let mut signers = Vec::new();
        let fresh = self.have.insert(key);
        for r in section.iter().filter(|r| &r.name == owner) {
            let take = match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype => {
                    signers.push(s.input().signer_name.clone());
                    true
                }
                _ => r.record_type() == rtype,
            };
            if take && fresh {
                self.push(r.clone())?;
            }
        }
        Ok(signers)
    }

    fn push(&mut self, r: Record) -> Result<(), ChainError> {
        let size = encode_record(&r)?.len();
        self.bytes += size;
        if self.records.len() >= MAX_CHAIN_RECORDS {
            return Err(ChainError::TooLarge {
                what: "records",
                limit: MAX_CHAIN_RECORDS,
            });
        }
        if self.bytes > MAX_CHAIN_BYTES {
            return Err(ChainError::TooLarge {
                what: "bytes",
                limit: MAX_CHAIN_BYTES,
            });
        }
        self.records.push(r);
        Ok(())
    }
}

async fn ask(
    wire: &Wire,
    name: &Name,
    rtype: RecordType,
) -> Result<hickory_proto::op::DnsResponse, ChainError> {
    let err = |detail: String| ChainError::Query {
        owner: name.to_string(),
        rtype: rtype.to_string(),
        detail,
    };
    let msg = wire
        .raw(name, rtype)
        .await
        .map_err(|e| err(e.to_string()))?;
    if msg.response_code != ResponseCode::NoError {
        return Err(err(format!("the server answered {}", msg.response_code)));
    }
    Ok(msg)
}

/// True when an RRSIG in the answer has fewer labels than its owner (a wildcard expansion).
fn is_wildcard_answer(answers: &[Record]) -> bool {
    answers.iter().any(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(s)) => s.input().num_labels < r.name.num_labels(),
        _ => false,
    })
}

async fn collect_inner(
    wire: &Wire,
    owner: &Name,
    rtype: RecordType,
) -> Result<Vec<Record>, ChainError> {
    let mut g = Gathered::default();
    let mut signers: Vec<Name> = Vec::new();
    let mut current = owner.clone();
    let mut hops = 0usize;
    let mut found = false;
    'ask: for _ in 0..=MAX_CHAIN_CNAMES {
        let msg = ask(wire, &current, rtype).await?;
        let mut cur = current.clone();
        loop {
            if msg
                .answers
                .iter()
                .any(|r| r.name == cur && r.record_type() == rtype)
            {
                signers.extend(g.add(&msg.answers, &cur, rtype)?);
                if is_wildcard_answer(&msg.answers) {
                    // The proof that no closer name exists travels in the authority section.
                    for r in msg
                        .authorities
                        .iter()
                        .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
                    {
                        signers.extend(g.add(&msg.authorities, &r.name, r.record_type())?);
                    }
                }
                found = true;
                break 'ask;
            }
            let target = msg.answers.iter().find_map(|r| match &r.data {
                RData::CNAME(t) if r.name == cur => Some(t.0.clone()),
                _ => None,
            });
            match target {
                Some(t) if hops < MAX_CHAIN_CNAMES => {
                    signers.extend(g.add(&msg.answers, &cur, RecordType::CNAME)?);
                    cur = t;
                    hops += 1;
                }
                Some(_) => {
                    return Err(ChainError::CnameChain {
                        owner: owner.to_string(),
                    });
                }
                None => break,
            }
        }
        if cur == current {
            break;
        }
        current = cur;
    }
    if !found {
        return Err(ChainError::MissingRrset {
            owner: current.to_string(),
            rtype: rtype.to_string(),
        });
    }
    // The zones from every signer up to the root.
    let mut done: HashSet<Name> = HashSet::new();
    for signer in signers {
        let mut zone = signer.to_lowercase();
        for _ in 0..MAX_CHAIN_DEPTH {
            if !done.insert(zone.clone()) {
                break;
            }
            let keys = ask(wire, &zone, RecordType::DNSKEY).await?;
            g.add(&keys.answers, &zone, RecordType::DNSKEY)?;
            if zone.is_root() {
                break;
            }
            let ds = ask(wire, &zone, RecordType::DS).await?;
            let parents = g.add(&ds.answers, &zone, RecordType::DS)?;
            let Some(parent) = parents
                .into_iter()
                .map(|p| p.to_lowercase())
                .find(|p| p.zone_of(&zone) && p != &zone)
            else {
                // No signed DS: the delegation is insecure (or the DS is missing); the
                // chain stops here and verification names the missing link.
                break;
            };
            zone = parent;
        }
    }
    Ok(g.records)
}

/// The body of the `evidence_chain` fuzz target. The input is text: the owner on the first
/// line, the type on the second, then one base64 wire-form record per line (input that is
/// not UTF-8 is taken as one raw record). The chain is decoded and verified against a fixed
/// anchor; nothing may panic.
#[doc(hidden)]
pub fn fuzz_chain(data: &[u8]) {
    const ANCHOR: &str = ". IN DNSKEY 257 3 13 zb7rNr66VCwhbzX3j11txFNGQeR02SHWBzPZdfkmh2LsTZlpiij8BPayJzDXyjSkM4afF9PlklIU5zxmJSQ+DA==";
    let chain = match std::str::from_utf8(data) {
        Ok(text) => {
            let mut lines = text.lines();
            let owner = lines.next().unwrap_or_default();
            let rtype = lines.next().unwrap_or_default();
            DnssecChain::new(owner, rtype, lines.map(str::to_owned).collect())
        }
        Err(_) => DnssecChain::new("x.test.", "TLSA", vec![B64.encode(data)]),
    };
    let _ = chain.to_zone_text();
    let anchor = TrustAnchor::DnskeyText(ANCHOR.to_owned());
    if let Ok(v) = verify_chain(&chain, &anchor, 1_795_891_900) {
        assert!(!v.records.is_empty());
    }
    let _ = verify_chain(&chain, &TrustAnchor::IanaRoot, 1_795_891_900);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_lines_parse_like_the_config() {
        let ds = parse_ds_lines(
            ".\t3600\tIN\tDS\t54538 13 2 159eaeff7fa44148de3cf31607f316767848ab4f6a17db4f3ba4157cfdc7f2c9",
        )
        .unwrap();
        assert_eq!(ds.len(), 1);
        assert!(ds[0].0.is_root());
        assert_eq!(ds[0].1.key_tag(), 54538);
        assert!(parse_ds_lines("x DS 1 2").is_err());
        assert!(parse_ds_lines("").is_err());
    }

    #[test]
    fn base32hex_decodes_nsec3_owner_labels() {
        // RFC 5155 appendix A: H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.
        let h = base32hex_decode(b"0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM").unwrap();
        let algo = hickory_proto::dnssec::Nsec3HashAlgorithm::SHA1;
        let want = algo
            .hash(
                &[0xaa, 0xbb, 0xcc, 0xdd],
                &Name::from_ascii("example.").unwrap(),
                12,
            )
            .unwrap();
        assert_eq!(h, want.as_ref());
        assert!(base32hex_decode(b"0p9mhave").is_some());
        assert!(base32hex_decode(b"0p9mhav").is_none());
        assert!(base32hex_decode(b"0p9mhavw").is_none());
        assert!(base32hex_decode(b"").is_none());
    }

    #[test]
    fn decode_rejects_garbage_and_bounds() {
        let c = DnssecChain::new(".", "TLSA", vec!["!!".into()]);
        assert!(matches!(
            c.decode(),
            Err(ChainError::Decode { index: 0, .. })
        ));
        let c = DnssecChain::new(".", "TLSA", vec!["AAAA".into(); MAX_CHAIN_RECORDS + 1]);
        assert!(matches!(
            c.decode(),
            Err(ChainError::TooLarge {
                what: "records",
                ..
            })
        ));
        let big = "A".repeat(MAX_CHAIN_BYTES * 2);
        let c = DnssecChain::new(".", "TLSA", vec![big]);
        assert!(matches!(
            c.decode(),
            Err(ChainError::TooLarge { what: "bytes", .. })
        ));
    }

    /// A hand-signed world: one root key signs its DNSKEY RRset and everything else.
    mod signed {
        use hickory_proto::dnssec::crypto::EcdsaSigningKey;
        use hickory_proto::dnssec::rdata::SigInput;
        use hickory_proto::dnssec::{Algorithm, SigningKey, TBS};
        use hickory_proto::rr::SerialNumber;
        use hickory_proto::rr::rdata::{CNAME, TLSA};

        use super::super::*;

        pub(super) const NOW: u64 = 1_800_000_000;

        pub(super) struct World {
            key: EcdsaSigningKey,
            pub(super) dnskey: DNSKEY,
            pub(super) records: Vec<Record>,
        }

        pub(super) fn n(s: &str) -> Name {
            Name::from_ascii(s).unwrap()
        }

        impl World {
            pub(super) fn new() -> Self {
                let alg = Algorithm::ECDSAP256SHA256;
                let pkcs8 = EcdsaSigningKey::generate_pkcs8(alg).unwrap();
                let key = EcdsaSigningKey::from_pkcs8(&pkcs8, alg).unwrap();
                let dnskey = DNSKEY::from_key(&key.to_public_key().unwrap());
                let mut w = World {
                    key,
                    dnskey: dnskey.clone(),
                    records: Vec::new(),
                };
                let rr = Record::from_rdata(
                    Name::root(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DNSKEY(dnskey)),
                );
                w.add_signed(vec![rr], ".", None);
                w
            }

            /// Adds an RRset and an RRSIG over it by `signer` (labels from the owner unless
            /// given: fewer labels sign the wildcard `*.<last labels>`).
            pub(super) fn add_signed(
                &mut self,
                rrset: Vec<Record>,
                signer: &str,
                labels: Option<u8>,
            ) {
                let owner = rrset[0].name.clone();
                let input = SigInput {
                    type_covered: rrset[0].record_type(),
                    algorithm: Algorithm::ECDSAP256SHA256,
                    num_labels: labels.unwrap_or(owner.num_labels()),
                    original_ttl: rrset[0].ttl,
                    sig_expiration: SerialNumber::new(u32::try_from(NOW + 86400).unwrap()),
                    sig_inception: SerialNumber::new(u32::try_from(NOW - 86400).unwrap()),
                    key_tag: self.dnskey.calculate_key_tag().unwrap(),
                    signer_name: n(signer),
                };
                let tbs = TBS::from_input(&owner, DNSClass::IN, &input, rrset.iter()).unwrap();
                let sig = self.key.sign(&tbs).unwrap();
                self.records.extend(rrset);
                self.records.push(Record::from_rdata(
                    owner,
                    3600,
                    RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
                ));
            }

            pub(super) fn anchor(&self) -> TrustAnchor {
                TrustAnchor::DnskeyText(
                    Record::from_rdata(
                        Name::root(),
                        3600,
                        RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
                    )
                    .to_string(),
                )
            }

            pub(super) fn chain(&self, owner: &str) -> DnssecChain {
                DnssecChain::from_records(owner, "TLSA", &self.records).unwrap()
            }
        }

        pub(super) fn tlsa(owner: &str, byte: u8) -> Record {
            Record::from_rdata(
                n(owner),
                300,
                RData::TLSA(TLSA::new(3.into(), 1.into(), 1.into(), vec![byte; 32])),
            )
        }

        pub(super) fn cname(owner: &str, target: &str) -> Record {
            Record::from_rdata(n(owner), 300, RData::CNAME(CNAME(n(target))))
        }
    }

    #[test]
    fn hand_signed_records_verify_and_report_their_window() {
        use signed::*;
        let mut w = World::new();
        w.add_signed(
            vec![tlsa("_443._tcp.x.", 1), tlsa("_443._tcp.x.", 2)],
            ".",
            None,
        );
        let v = verify_chain(&w.chain("_443._tcp.x."), &w.anchor(), NOW).unwrap();
        assert_eq!(v.zones, ["."]);
        assert_eq!(v.tlsa.len(), 2);
        assert_eq!(v.valid_until, NOW + 86400);
        assert!(!v.wildcard);
        // Outside the window.
        assert!(matches!(
            verify_chain(&w.chain("_443._tcp.x."), &w.anchor(), NOW + 86401),
            Err(ChainError::Rrsig {
                fault: SigFault::Expired { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_signed_cname_loop_is_refused() {
        use signed::*;
        let mut w = World::new();
        w.add_signed(vec![cname("_443._tcp.a.", "_443._tcp.b.")], ".", None);
        w.add_signed(vec![cname("_443._tcp.b.", "_443._tcp.a.")], ".", None);
        assert_eq!(
            verify_chain(&w.chain("_443._tcp.a."), &w.anchor(), NOW).unwrap_err(),
            ChainError::CnameChain {
                owner: "_443._tcp.a.".into()
            }
        );
    }

    #[test]
    fn a_signer_that_is_not_an_enclosing_zone_is_refused() {
        use signed::*;
        let mut w = World::new();
        w.add_signed(vec![tlsa("_443._tcp.x.", 1)], "y.", None);
        match verify_chain(&w.chain("_443._tcp.x."), &w.anchor(), NOW).unwrap_err() {
            ChainError::Rrsig {
                fault: SigFault::WrongSigner { signer },
                ..
            } => assert_eq!(signer, "y."),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wildcard_expansions_verify_and_are_flagged() {
        use signed::*;
        let mut w = World::new();
        // Signed as `*._tcp.x.` (3 labels), served as `_443._tcp.x.`: the TBS uses the
        // wildcard owner.
        let mut world = World::new();
        let expanded = tlsa("_443._tcp.x.", 7);
        world.add_signed(vec![expanded], ".", Some(2));
        // Without a denial of the next closer name `_443._tcp.x.`, no.
        assert_eq!(
            verify_chain(&world.chain("_443._tcp.x."), &world.anchor(), NOW).unwrap_err(),
            ChainError::WildcardUnproven {
                owner: "_443._tcp.x.".into(),
                next_closer: "_443._tcp.x.".into()
            }
        );
        let nsec = |owner: &str, next: &str| {
            Record::from_rdata(
                n(owner),
                300,
                RData::DNSSEC(DNSSECRData::NSEC(hickory_proto::dnssec::rdata::NSEC::new(
                    n(next),
                    [RecordType::TLSA, RecordType::NSEC, RecordType::RRSIG],
                ))),
            )
        };
        // An NSEC that does not cover it does not help, nor does an unsigned one that does.
        world.add_signed(vec![nsec("b._tcp.x.", "c._tcp.x.")], ".", None);
        world.records.push(nsec("*._tcp.x.", "z._tcp.x."));
        assert!(matches!(
            verify_chain(&world.chain("_443._tcp.x."), &world.anchor(), NOW),
            Err(ChainError::WildcardUnproven { .. })
        ));
        // A signed NSEC from `*._tcp.x.` to `z._tcp.x.` covers it.
        world.records.pop();
        world.add_signed(vec![nsec("*._tcp.x.", "z._tcp.x.")], ".", None);
        let v = verify_chain(&world.chain("_443._tcp.x."), &world.anchor(), NOW).unwrap();
        assert!(v.wildcard);
        assert_eq!(v.tlsa[0].data, vec![7; 32]);
        // More labels than the owner has is a forgery.
        w.add_signed(vec![tlsa("_443._tcp.x.", 1)], ".", None);
        for r in &mut w.records {
            if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data
                && sig.input().type_covered == RecordType::TLSA
            {
                let mut input = sig.input().clone();
                input.num_labels = 9;
                r.data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(
                    input,
                    sig.sig().to_vec(),
                )));
            }
        }
        assert!(matches!(
            verify_chain(&w.chain("_443._tcp.x."), &w.anchor(), NOW),
            Err(ChainError::Rrsig {
                fault: SigFault::BadSignature { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_record_round_trips_through_the_wire_form() {
        let r = Record::from_rdata(
            Name::from_ascii("xmpp.Example.test.").unwrap(),
            300,
            RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 1)),
        );
        let c =
            DnssecChain::from_records("xmpp.example.test.", "A", std::slice::from_ref(&r)).unwrap();
        let back = c.decode().unwrap();
        assert_eq!(back, vec![r]);
        // Trailing bytes are refused.
        let mut bytes = B64.decode(&c.records[0]).unwrap();
        bytes.push(0);
        let c2 = DnssecChain::new("xmpp.example.test.", "A", vec![B64.encode(bytes)]);
        assert!(matches!(c2.decode(), Err(ChainError::Decode { .. })));
    }
}
