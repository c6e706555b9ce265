//! What one lookup returns: the RRset as seen, the way it was answered, and its status.

use certwatch_core::{DnssecStatus, Warning};
use hickory_proto::rr::{RData, Record};
use serde::Serialize;

/// How the server answered the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AnswerKind {
    /// The RRset exists (possibly at the end of a CNAME chain).
    Records,
    /// The name exists but has no RRset of this type (NODATA).
    NoData,
    /// The name does not exist (NXDOMAIN).
    NxDomain,
    /// No usable answer (timeout, SERVFAIL, REFUSED, network error). Never "no records".
    Failed,
}

/// One resource record as it was received (presentation format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSeen {
    /// Owner name, fully qualified.
    pub owner: String,
    /// TTL as received (the validator may have capped it to the RRSIG's original TTL).
    pub ttl: u32,
    /// Record type (`SRV`, `TLSA`, ...).
    pub rtype: String,
    /// Record data in presentation format.
    pub rdata: String,
}

impl RecordSeen {
    pub(crate) fn from_record(r: &Record) -> Self {
        RecordSeen {
            owner: r.name.to_string(),
            ttl: r.ttl,
            rtype: r.record_type().to_string(),
            rdata: r.data.to_string(),
        }
    }
}

/// The validity window of one RRSIG over the RRset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureSeen {
    /// The zone that signed.
    pub signer: String,
    /// The key tag of the signing key.
    pub key_tag: u16,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// Inception, RFC 3339.
    pub inception: String,
    /// Expiration, RFC 3339.
    pub expiration: String,
}

/// The result of looking up one RRset (following CNAMEs), with its DNSSEC status.
///
/// For a negative answer the status is that of the denial: `secure` means the absence is
/// proven.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RrsetLookup {
    /// The name asked for, fully qualified.
    pub owner: String,
    /// The type asked for.
    pub rtype: String,
    /// How it was answered.
    pub answer: AnswerKind,
    /// Validation status of the RRset, of the CNAMEs leading to it, or of the denial.
    #[serde(flatten)]
    pub dnssec: DnssecStatus,
    /// The records of the RRset (empty for a denial or failure).
    pub records: Vec<RecordSeen>,
    /// CNAMEs followed from `owner` to the RRset, in order.
    pub cnames: Vec<RecordSeen>,
    /// RRSIGs over the RRset.
    pub signatures: Vec<SignatureSeen>,
    /// Warnings about this RRset (`signature-expiring`, `nsec3-iterations`, `cname-followed`).
    pub warnings: Vec<Warning>,
    /// Typed data, for the discovery code.
    #[serde(skip)]
    pub(crate) data: Vec<RData>,
}

impl RrsetLookup {
    pub(crate) fn failed(owner: String, rtype: String, status: DnssecStatus) -> Self {
        RrsetLookup {
            owner,
            rtype,
            answer: AnswerKind::Failed,
            dnssec: status,
            records: Vec::new(),
            cnames: Vec::new(),
            signatures: Vec::new(),
            warnings: Vec::new(),
            data: Vec::new(),
        }
    }

    /// True for a validated absence (NODATA or NXDOMAIN with a secure denial).
    pub fn is_proven_absent(&self) -> bool {
        matches!(self.answer, AnswerKind::NoData | AnswerKind::NxDomain) && self.dnssec.is_secure()
    }

    /// True when the RRset or denial is usable as an answer (secure or insecure, not failed).
    pub fn is_answer(&self) -> bool {
        self.answer != AnswerKind::Failed
            && matches!(self.dnssec, DnssecStatus::Secure | DnssecStatus::Insecure)
    }

    /// The final owner after CNAMEs.
    pub fn final_owner(&self) -> &str {
        self.cnames
            .last()
            .map(|c| c.rdata.as_str())
            .unwrap_or(self.owner.as_str())
    }
}
