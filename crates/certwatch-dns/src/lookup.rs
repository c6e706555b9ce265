//! One check's lookups: local validation (hickory's `DnssecDnsHandle`) over the CD=1 wire
//! layer, CNAME following, and the classification of every outcome into a status.

use std::sync::Arc;

use certwatch_core::{DnssecStatus, Warning, WarningCode};
use hickory_net::dnssec::DnssecDnsHandle;
use hickory_net::xfer::{DnsHandle, FirstAnswer};
use hickory_net::{DnsError, NetError};
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::dnssec::{Proof, TrustAnchors};
use hickory_proto::op::{DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::clock::rfc3339;
use crate::config::ResolverConfig;
use crate::rrset::{AnswerKind, RecordSeen, RrsetLookup, SignatureSeen};
use crate::wire::Wire;

/// CNAME chains longer than this are indeterminate (RFC 7671 §7 has no limit; resolvers use 8-16).
const MAX_CNAMES: usize = 8;

/// The lookups of one check, sharing one cache.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) wire: Wire,
    validator: DnssecDnsHandle<Wire>,
    pub(crate) config: Arc<ResolverConfig>,
}

impl Session {
    pub(crate) fn new(wire: Wire, anchors: Arc<TrustAnchors>, config: Arc<ResolverConfig>) -> Self {
        let validator = DnssecDnsHandle::with_trust_anchor(wire.clone(), anchors)
            .nsec3_iteration_limits(Some(config.nsec3_soft_limit), Some(config.nsec3_hard_limit));
        Session {
            wire,
            validator,
            config,
        }
    }

    async fn validated(&self, name: &Name, rtype: RecordType) -> Result<DnsResponse, NetError> {
        let mut opts = DnsRequestOptions::default();
        opts.use_edns = true;
        self.validator
            .lookup(Query::query(name.clone(), rtype), opts)
            .first_answer()
            .await
    }

    /// Looks up one RRset, following CNAMEs, bounded by the lookup deadline.
    pub(crate) async fn lookup(&self, name: &Name, rtype: RecordType) -> RrsetLookup {
        let deadline = self.config.lookup_deadline;
        match tokio::time::timeout(deadline, self.lookup_inner(name, rtype)).await {
            Ok(r) => r,
            Err(_) => RrsetLookup::failed(
                name.to_string(),
                rtype.to_string(),
                DnssecStatus::indeterminate(format!(
                    "no answer for {name} {rtype} within {} ms",
                    deadline.as_millis()
                )),
            ),
        }
    }

    async fn lookup_inner(&self, name: &Name, rtype: RecordType) -> RrsetLookup {
        let mut out = RrsetLookup::failed(
            name.to_string(),
            rtype.to_string(),
            DnssecStatus::indeterminate("not looked up"),
        );
        let mut chain_status = DnssecStatus::Secure;
        let mut current = name.clone();
        for _ in 0..=MAX_CNAMES {
            let msg = match self.validated(&current, rtype).await {
                Ok(msg) => msg,
                Err(NetError::Dns(DnsError::Nsec {
                    response,
                    proof: Proof::Bogus,
                    ..
                })) if wildcard_expansion_proven(&response, &current, rtype) => *response,
                Err(e) => {
                    let (answer, status, warnings) = self.classify_error(&current, rtype, e).await;
                    out.answer = answer;
                    out.dnssec = chain_status.combine(status);
                    out.warnings.extend(warnings);
                    return out;
                }
            };
            // Walk the answer section from `current` through CNAMEs.
            let mut cur = current.clone();
            let mut hops = 0;
            loop {
                let rrset: Vec<&Record> = msg
                    .answers
                    .iter()
                    .filter(|r| r.record_type() == rtype && r.name == cur)
                    .collect();
                if !rrset.is_empty() {
                    let status = self
                        .rrset_status(&cur, rtype, rrset.iter().map(|r| r.proof))
                        .await;
                    out.dnssec = chain_status.combine(status);
                    out.answer = AnswerKind::Records;
                    out.records = rrset.iter().map(|r| RecordSeen::from_record(r)).collect();
                    out.data = rrset.iter().map(|r| r.data.clone()).collect();
                    let sigs = covering_sigs(&msg.answers, &cur, rtype);
                    out.signatures = sigs.iter().map(signature_seen).collect();
                    if out.dnssec.is_secure() {
                        out.warnings
                            .extend(self.expiry_warnings(&cur, rtype, &sigs));
                    }
                    if !out.cnames.is_empty() {
                        out.warnings.push(Warning::new(
                            WarningCode::CnameFollowed,
                            format!("{name} is a CNAME; {rtype} records were taken from {cur}"),
                        ));
                    }
                    return out;
                }
                let cname = msg
                    .answers
                    .iter()
                    .find(|r| r.record_type() == RecordType::CNAME && r.name == cur);
                match cname {
                    Some(c) if hops < MAX_CNAMES && rtype != RecordType::CNAME => {
                        let RData::CNAME(target) = &c.data else { break };
                        let status = self
                            .rrset_status(&cur, RecordType::CNAME, [c.proof].into_iter())
                            .await;
                        chain_status = chain_status.combine(status);
                        out.cnames.push(RecordSeen::from_record(c));
                        cur = target.0.clone();
                        hops += 1;
                    }
                    _ => break,
                }
            }
            if cur != current {
                // The chain leaves the answer: ask for the target.
                current = cur;
                continue;
            }
            if let Some(reason) = referral(&msg) {
                out.answer = AnswerKind::Failed;
                out.dnssec = DnssecStatus::indeterminate(format!("{current} {rtype}: {reason}"));
                return out;
            }
            // A validated negative answer.
            out.answer = if msg.response_code == ResponseCode::NXDomain {
                AnswerKind::NxDomain
            } else {
                AnswerKind::NoData
            };
            let secure_denial = msg.authorities.iter().any(|r| {
                r.proof == Proof::Secure
                    && matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3)
            });
            let status = if secure_denial {
                DnssecStatus::Secure
            } else {
                DnssecStatus::Insecure
            };
            out.warnings.extend(self.nsec3_warnings(&msg));
            out.dnssec = chain_status.combine(status);
            return out;
        }
        out.dnssec =
            DnssecStatus::indeterminate(format!("more than {MAX_CNAMES} CNAMEs from {name}"));
        out
    }

    async fn rrset_status(
        &self,
        owner: &Name,
        rtype: RecordType,
        proofs: impl Iterator<Item = Proof>,
    ) -> DnssecStatus {
        let worst = proofs.min().unwrap_or(Proof::Indeterminate);
        match worst {
            Proof::Secure => DnssecStatus::Secure,
            Proof::Insecure => DnssecStatus::Insecure,
            Proof::Bogus => self.bogus_or_unsupported(owner, rtype).await,
            Proof::Indeterminate => DnssecStatus::indeterminate(format!(
                "the DNSSEC chain for {owner} {rtype} could not be fetched"
            )),
        }
    }

    async fn classify_error(
        &self,
        name: &Name,
        rtype: RecordType,
        e: NetError,
    ) -> (AnswerKind, DnssecStatus, Vec<Warning>) {
        match e {
            NetError::Dns(DnsError::Nsec { response, .. }) if referral(&response).is_some() => (
                AnswerKind::Failed,
                DnssecStatus::indeterminate(format!(
                    "{name} {rtype}: {}",
                    referral(&response).unwrap_or_default()
                )),
                Vec::new(),
            ),
            NetError::Dns(DnsError::Nsec {
                response, proof, ..
            }) => {
                let answer = if response.response_code == ResponseCode::NXDomain {
                    AnswerKind::NxDomain
                } else {
                    AnswerKind::NoData
                };
                let warnings = self.nsec3_warnings(&response);
                let iterations = max_nsec3_iterations(&response);
                let status = match proof {
                    Proof::Secure => DnssecStatus::Secure,
                    Proof::Insecure => DnssecStatus::Insecure,
                    Proof::Bogus => match iterations {
                        Some(n) if n > self.config.nsec3_hard_limit => {
                            DnssecStatus::bogus(format!(
                                "the denial of {name} {rtype} uses NSEC3 with {n} iterations, above the limit of {} (RFC 9276): lower them to 0",
                                self.config.nsec3_hard_limit
                            ))
                        }
                        _ => match self.no_dnssec_upstream(name, rtype).await {
                            Some(reason) => DnssecStatus::indeterminate(reason),
                            None => DnssecStatus::bogus(
                                self.explain_denial(name, rtype, &response).await,
                            ),
                        },
                    },
                    Proof::Indeterminate => DnssecStatus::indeterminate(format!(
                        "the denial of {name} {rtype} could not be validated"
                    )),
                };
                let answer = if !matches!(status, DnssecStatus::Secure | DnssecStatus::Insecure) {
                    AnswerKind::Failed
                } else {
                    answer
                };
                (answer, status, warnings)
            }
            NetError::Dns(DnsError::DnssecBogus) => (
                AnswerKind::Failed,
                self.bogus_or_unsupported(name, rtype).await,
                Vec::new(),
            ),
            NetError::Dns(DnsError::ResponseCode(rc)) => {
                // RFC 8914: the upstream may say why (unauthenticated: explanation only).
                let ede = match self.config.servers.first() {
                    Some(server) => {
                        crate::ede::fetch(*server, name, rtype, self.config.timeout).await
                    }
                    None => Vec::new(),
                };
                let why = if ede.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", ede.join("; "))
                };
                (
                    AnswerKind::Failed,
                    DnssecStatus::indeterminate(format!(
                        "the server answered {rc} for {name} {rtype}{why}"
                    )),
                    Vec::new(),
                )
            }
            NetError::Dns(DnsError::NoRecordsFound(nr)) => (
                AnswerKind::Failed,
                DnssecStatus::indeterminate(format!(
                    "unvalidated {} for {name} {rtype}",
                    nr.response_code
                )),
                Vec::new(),
            ),
            NetError::Timeout => (
                AnswerKind::Failed,
                DnssecStatus::indeterminate(format!("timeout asking for {name} {rtype}")),
                Vec::new(),
            ),
            other => (
                AnswerKind::Failed,
                DnssecStatus::indeterminate(format!("{name} {rtype}: {other}")),
                Vec::new(),
            ),
        }
    }

    /// Bogus with its explanation, unless the server does not speak DNSSEC at all: then
    /// the fault is the checker's resolver, not the domain, and nothing is known.
    async fn bogus_or_unsupported(&self, owner: &Name, rtype: RecordType) -> DnssecStatus {
        match self.no_dnssec_upstream(owner, rtype).await {
            Some(reason) => DnssecStatus::indeterminate(reason),
            None => DnssecStatus::bogus(self.explain(owner, rtype).await),
        }
    }

    /// `Some(reason)` when the answer to this question came without the DO bit (RFC 3225):
    /// the server strips DNSSEC records, so validation failures say nothing about the zone.
    async fn no_dnssec_upstream(&self, owner: &Name, rtype: RecordType) -> Option<String> {
        let advice = "configure a DNSSEC-aware resolver; nothing can be concluded about the zone";
        let no_do = |m: &DnsResponse| !m.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        if let Ok(r) = self.wire.raw(owner, rtype).await
            && no_do(&r)
        {
            return Some(format!(
                "the DNS server answered {owner} {rtype} without DNSSEC records (no DO bit, RFC 3225): {advice}"
            ));
        }
        // hickory's name-server pool hands negative answers over without their OPT record,
        // so also look at the root DNSKEY answer that every validation starts from.
        let root = Name::root();
        match self.wire.raw(&root, RecordType::DNSKEY).await {
            Ok(r)
                if no_do(&r)
                    || !r
                        .answers
                        .iter()
                        .any(|a| a.record_type() == RecordType::DNSKEY) =>
            {
                Some(format!(
                    "the DNS server returns the root DNSKEY RRset without DNSSEC records: {advice}"
                ))
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Some(format!(
                "the DNS server denies that the root has a DNSKEY RRset, so it cannot serve DNSSEC: {advice}"
            )),
            _ => None,
        }
    }

    fn nsec3_warnings(&self, msg: &DnsResponse) -> Vec<Warning> {
        match max_nsec3_iterations(msg) {
            Some(n) if n > self.config.nsec3_soft_limit => vec![Warning::new(
                WarningCode::Nsec3Iterations,
                format!(
                    "the zone uses NSEC3 with {n} iterations; validators treat more than {} as insecure (RFC 9276): set the iterations to 0",
                    self.config.nsec3_soft_limit
                ),
            )],
            _ => Vec::new(),
        }
    }

    /// `signature-expiring` warnings for the RRSIGs that validate an RRset.
    pub(crate) fn expiry_warnings(
        &self,
        owner: &Name,
        rtype: RecordType,
        sigs: &[RRSIG],
    ) -> Vec<Warning> {
        let now = self.config.clock.now_unix();
        // The RRset is safe as long as one valid signature lasts: judge the longest-lived.
        let best = sigs
            .iter()
            .filter(|s| u64::from(s.input().sig_inception.get()) <= now)
            .max_by_key(|s| s.input().sig_expiration.get());
        let Some(sig) = best else { return Vec::new() };
        let inc = u64::from(sig.input().sig_inception.get());
        let exp = u64::from(sig.input().sig_expiration.get());
        let lifetime = exp.saturating_sub(inc);
        let left = exp.saturating_sub(now);
        #[allow(clippy::cast_precision_loss)]
        let under_fraction = (left as f64) < (lifetime as f64) * self.config.expiry_fraction;
        if under_fraction && left < self.config.expiry_window.as_secs() {
            vec![Warning::new(
                WarningCode::SignatureExpiring,
                format!(
                    "the RRSIG over {owner} {rtype} (signed by {}) expires at {}, in {} h: re-sign the zone",
                    sig.input().signer_name,
                    rfc3339(exp),
                    left / 3600
                ),
            )]
        } else {
            Vec::new()
        }
    }
}

pub(crate) fn covering_sigs(records: &[Record], owner: &Name, rtype: RecordType) -> Vec<RRSIG> {
    records
        .iter()
        .filter(|r| &r.name == owner)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                Some(sig.clone())
            }
            _ => None,
        })
        .collect()
}

fn signature_seen(sig: &RRSIG) -> SignatureSeen {
    let i = sig.input();
    SignatureSeen {
        signer: i.signer_name.to_string(),
        key_tag: i.key_tag,
        algorithm: u8::from(i.algorithm),
        inception: rfc3339(u64::from(i.sig_inception.get())),
        expiration: rfc3339(u64::from(i.sig_expiration.get())),
    }
}

fn max_nsec3_iterations(msg: &DnsResponse) -> Option<u16> {
    msg.authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC3(n)) => Some(n.iterations()),
            _ => None,
        })
        .max()
}

/// A referral (NS in the authority section, no SOA, no answer) means the server does not
/// resolve recursively: nothing is proven either way.
fn referral(msg: &DnsResponse) -> Option<String> {
    if !msg.answers.is_empty()
        || msg
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    {
        return None;
    }
    let ns: Vec<String> = msg
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.to_string())
        .collect();
    let zone = ns.first()?;
    Some(format!(
        "the server answered with a referral to {zone} instead of an answer: it does not resolve recursively (configure a recursive resolver)"
    ))
}

/// A positive answer that hickory called bogus only because of its denial records.
///
/// Without a wildcard (RRSIG labels = owner labels) the validated RRset is the whole proof.
/// For a wildcard expansion, RFC 4035 §5.3.4 with NSEC: the expanded RRset validated
/// (secure), its RRSIG's label count gives the closest encloser, and a secure NSEC covers
/// the next closer name, so no closer match exists.
///
/// hickory 0.26.3 rejects such answers when the covering NSEC is owned by the wildcard
/// itself (it also demands an NSEC strictly covering the wildcard name, which exists), so
/// the proof is re-checked here from the records it already validated.
pub(crate) fn wildcard_expansion_proven(
    msg: &DnsResponse,
    qname: &Name,
    rtype: RecordType,
) -> bool {
    let rrset: Vec<&Record> = msg
        .answers
        .iter()
        .filter(|r| &r.name == qname && r.record_type() == rtype)
        .collect();
    if rrset.is_empty() || rrset.iter().any(|r| r.proof != Proof::Secure) {
        return false;
    }
    let qlabels = qname.num_labels();
    let Some((labels, signer)) = covering_sigs(&msg.answers, qname, rtype)
        .iter()
        .map(|s| (s.input().num_labels, s.input().signer_name.clone()))
        .min_by_key(|(l, _)| *l)
    else {
        return false;
    };
    if labels >= qlabels {
        // Not a wildcard expansion: a positive answer needs no denial, and NSEC/NSEC3
        // records some servers add to the authority section prove nothing about it.
        return true;
    }
    let next_closer = qname.trim_to(usize::from(labels) + 1);
    msg.authorities.iter().any(|r| {
        if r.proof != Proof::Secure {
            return false;
        }
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &r.data else {
            return false;
        };
        let owner = &r.name;
        // RFC 6840 §4.1: a parent-side NSEC at a cut proves nothing below it.
        if nsec.is_ancestor_delegation() && owner.zone_of(&next_closer) {
            return false;
        }
        // The NSEC must come from the zone that signed the expansion.
        let same_zone = covering_sigs(&msg.authorities, owner, RecordType::NSEC)
            .iter()
            .any(|s| s.input().signer_name == signer);
        let next = nsec.next_domain_name();
        same_zone
            && &next_closer > owner
            && (&next_closer < next || (next <= owner && next.zone_of(&next_closer)))
    })
}

/// Runs the crate's own interpretation of a DNS response (EDE options, referral detection, the wildcard
/// and positive-answer proof check, NSEC3 iteration scan, record display) over wire bytes.
/// For the `dns_message` fuzz target and its corpus replay; not part of the API.
#[doc(hidden)]
pub fn fuzz_response(bytes: &[u8]) {
    let Ok(msg) = hickory_proto::op::Message::from_vec(bytes) else {
        return;
    };
    let _ = crate::ede::extended_errors(&msg);
    let Ok(resp) = DnsResponse::from_message(msg) else {
        return;
    };
    let _ = referral(&resp);
    let _ = max_nsec3_iterations(&resp);
    for r in resp.answers.iter().chain(resp.authorities.iter()) {
        let _ = RecordSeen::from_record(r);
    }
    if let Some(q) = resp.queries.first() {
        let _ = wildcard_expansion_proven(&resp, q.name(), q.query_type());
        for s in covering_sigs(&resp.answers, q.name(), q.query_type()) {
            let _ = signature_seen(&s);
        }
    }
}
