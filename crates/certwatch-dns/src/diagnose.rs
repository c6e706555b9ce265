//! Reasons an operator can act on. hickory reports a bogus RRset without saying why
//! (REFERENCE §4), so the raw answers that went through the wire layer are inspected here:
//! RRSIG validity windows, signing keys, DS digests and algorithms, from the root down.

use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::op::DnsResponse;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::clock::rfc3339;
use crate::lookup::{Session, covering_sigs};

/// How many zone cuts are walked upwards at most.
const MAX_DEPTH: usize = 16;

impl Session {
    /// Why `owner rtype` is bogus, in words an operator can act on.
    pub(crate) async fn explain(&self, owner: &Name, rtype: RecordType) -> String {
        let raw = match self.wire.raw(owner, rtype).await {
            Ok(r) => r,
            Err(e) => {
                return format!(
                    "validation of {owner} {rtype} failed; refetching it failed too: {e}"
                );
            }
        };
        self.explain_in(owner, rtype, &raw).await
    }

    /// Why the denial of `name rtype` in `response` is bogus.
    pub(crate) async fn explain_denial(
        &self,
        name: &Name,
        rtype: RecordType,
        response: &DnsResponse,
    ) -> String {
        // Find the signed records of the denial (SOA, NSEC, NSEC3) and explain the first
        // whose signatures do not hold.
        let raw = self.wire.raw(name, rtype).await.ok();
        let msg = raw.as_ref().unwrap_or(response);
        let mut owners: Vec<(Name, RecordType)> = msg
            .authorities
            .iter()
            .filter(|r| {
                matches!(
                    r.record_type(),
                    RecordType::SOA | RecordType::NSEC | RecordType::NSEC3
                )
            })
            .map(|r| (r.name.clone(), r.record_type()))
            .collect();
        owners.dedup();
        if owners.is_empty() {
            return format!(
                "the negative answer for {name} {rtype} carries no SOA and no NSEC/NSEC3 records, although the trust chain says it must be signed (missing denial of existence)"
            );
        }
        for (o, t) in &owners {
            if let Some(reason) = self.rrset_fault(o, *t, &msg.authorities).await {
                return format!("denial of {name} {rtype}: {reason}");
            }
        }
        format!(
            "the NSEC/NSEC3 records in the negative answer for {name} {rtype} do not prove the absence (wrong span or type bitmap)"
        )
    }

    async fn explain_in(&self, owner: &Name, rtype: RecordType, raw: &DnsResponse) -> String {
        if let Some(reason) = self.rrset_fault(owner, rtype, &raw.answers).await {
            return reason;
        }
        format!("validation of {owner} {rtype} failed for a reason certwatch could not pin down")
    }

    /// The fault in the chain that validates `owner rtype` found in `section`, top-most first.
    async fn rrset_fault(
        &self,
        owner: &Name,
        rtype: RecordType,
        section: &[Record],
    ) -> Option<String> {
        let records: Vec<Record> = section
            .iter()
            .filter(|r| &r.name == owner && r.record_type() == rtype)
            .cloned()
            .collect();
        let sigs = covering_sigs(section, owner, rtype);
        if records.is_empty() {
            return None;
        }
        if sigs.is_empty() {
            return Some(format!(
                "missing RRSIG: {owner} {rtype} is not signed, although its zone is delegated as signed (DS in the parent)"
            ));
        }
        let signer = sigs[0].input().signer_name.clone();
        // Problems higher up the chain explain everything below them.
        if let Some(chain) = self.chain_fault(&signer).await {
            return Some(chain);
        }
        let keys = self.dnskeys(&signer).await;
        self.sig_fault(owner, rtype, &records, &sigs, &keys)
    }

    /// Checks the RRSIGs over one RRset against the keys; `None` if one of them holds.
    fn sig_fault(
        &self,
        owner: &Name,
        rtype: RecordType,
        records: &[Record],
        sigs: &[RRSIG],
        keys: &[DNSKEY],
    ) -> Option<String> {
        let now = self.config.clock.now_unix();
        let mut faults = Vec::new();
        for sig in sigs {
            let i = sig.input();
            let exp = u64::from(i.sig_expiration.get());
            let inc = u64::from(i.sig_inception.get());
            if !i.algorithm.is_supported() {
                faults.push(format!(
                    "unsupported algorithm: the RRSIG over {owner} {rtype} uses DNSSEC algorithm {} ({}), which certwatch cannot verify",
                    u8::from(i.algorithm),
                    i.algorithm
                ));
                continue;
            }
            if now > exp {
                faults.push(format!(
                    "expired RRSIG: the signature over {owner} {rtype} by {} (key tag {}) expired at {}",
                    i.signer_name,
                    i.key_tag,
                    rfc3339(exp)
                ));
                continue;
            }
            if now < inc {
                faults.push(format!(
                    "RRSIG not yet valid: the signature over {owner} {rtype} by {} (key tag {}) is valid only from {}",
                    i.signer_name,
                    i.key_tag,
                    rfc3339(inc)
                ));
                continue;
            }
            let matching: Vec<&DNSKEY> = keys
                .iter()
                .filter(|k| {
                    k.calculate_key_tag().ok() == Some(i.key_tag) && k.algorithm() == i.algorithm
                })
                .collect();
            if matching.is_empty() {
                faults.push(format!(
                    "the RRSIG over {owner} {rtype} names key tag {} of {}, but {} publishes no such DNSKEY",
                    i.key_tag, i.signer_name, i.signer_name
                ));
                continue;
            }
            let ok = matching.iter().any(|k| {
                k.verify_rrsig(owner, DNSClass::IN, sig, records.iter())
                    .is_ok()
            });
            if ok {
                return None;
            }
            faults.push(format!(
                "bad signature: the RRSIG over {owner} {rtype} by {} (key tag {}) does not verify: the records were changed after signing, or signed with another key",
                i.signer_name, i.key_tag
            ));
        }
        faults.into_iter().next()
    }

    async fn dnskeys(&self, zone: &Name) -> Vec<DNSKEY> {
        match self.wire.raw(zone, RecordType::DNSKEY).await {
            Ok(msg) => msg
                .answers
                .iter()
                .filter(|r| &r.name == zone)
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The top-most fault in the DS/DNSKEY chain from the root to `zone`.
    async fn chain_fault(&self, zone: &Name) -> Option<String> {
        let mut zones = Vec::new();
        let mut z = zone.clone();
        for _ in 0..MAX_DEPTH {
            zones.push(z.clone());
            if z.is_root() {
                break;
            }
            // The parent zone is the signer of the DS RRset, if the parent signs one.
            let ds_msg = self.wire.raw(&z, RecordType::DS).await.ok();
            let parent = ds_msg
                .as_ref()
                .and_then(|m| {
                    m.answers
                        .iter()
                        .chain(m.authorities.iter())
                        .find_map(|r| match &r.data {
                            RData::DNSSEC(DNSSECRData::RRSIG(s)) => {
                                Some(s.input().signer_name.clone())
                            }
                            _ => None,
                        })
                })
                .unwrap_or_else(|| z.base_name());
            if parent == z {
                break;
            }
            z = parent;
        }
        zones.reverse();
        for z in zones {
            if let Some(f) = self.zone_fault(&z).await {
                return Some(f);
            }
        }
        None
    }

    /// A fault in one zone's DS → DNSKEY link or in its DNSKEY RRset's signatures.
    async fn zone_fault(&self, zone: &Name) -> Option<String> {
        let keys = self.dnskeys(zone).await;
        let key_msg = self.wire.raw(zone, RecordType::DNSKEY).await.ok()?;
        let key_records: Vec<Record> = key_msg
            .answers
            .iter()
            .filter(|r| &r.name == zone && r.record_type() == RecordType::DNSKEY)
            .cloned()
            .collect();
        if !zone.is_root() {
            let ds_msg = self.wire.raw(zone, RecordType::DS).await.ok()?;
            let ds: Vec<DS> = ds_msg
                .answers
                .iter()
                .filter(|r| &r.name == zone)
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(d)) => Some(d.clone()),
                    _ => None,
                })
                .collect();
            if ds.is_empty() {
                // Unsigned delegation: nothing below can be bogus because of this zone.
                return None;
            }
            let usable: Vec<&DS> = ds.iter().filter(|d| d.algorithm().is_supported()).collect();
            if usable.is_empty() {
                return Some(format!(
                    "unsupported algorithm: every DS for {zone} uses an algorithm certwatch cannot verify ({})",
                    ds.iter()
                        .map(|d| d.algorithm().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if key_records.is_empty() {
                return Some(format!(
                    "the parent publishes DS for {zone}, but {zone} serves no DNSKEY"
                ));
            }
            let matched = usable
                .iter()
                .any(|d| keys.iter().any(|k| d.covers(zone, k).unwrap_or(false)));
            if !matched {
                return Some(format!(
                    "DS without a matching DNSKEY: the DS records for {zone} (key tags {}) match none of the DNSKEYs {zone} publishes (key tags {})",
                    ds.iter()
                        .map(|d| d.key_tag().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    keys.iter()
                        .filter_map(|k| k.calculate_key_tag().ok())
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let sigs = covering_sigs(&key_msg.answers, zone, RecordType::DNSKEY);
        if sigs.is_empty() && !key_records.is_empty() {
            return Some(format!(
                "missing RRSIG: the DNSKEY RRset of {zone} is not signed"
            ));
        }
        if key_records.is_empty() {
            return None;
        }
        self.sig_fault(zone, RecordType::DNSKEY, &key_records, &sigs, &keys)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use hickory_proto::dnssec::rdata::SigInput;
    use hickory_proto::dnssec::{Algorithm, TrustAnchors};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record, SerialNumber};

    use super::*;
    use crate::{FixedClock, ResolverConfig};

    const NOW: u64 = 1_800_000_000;

    fn session() -> Session {
        // Nothing is sent: sig_fault only looks at the records it is given.
        let config = ResolverConfig::new(vec!["127.0.0.1:9".parse().unwrap()])
            .with_clock(Arc::new(FixedClock(NOW)));
        let wire = crate::wire::Wire::new(crate::wire::pool(&config).unwrap());
        Session::new(wire, Arc::new(TrustAnchors::empty()), Arc::new(config))
    }

    fn rrsig(alg: Algorithm, inception: u64, expiration: u64) -> RRSIG {
        RRSIG::from_sig(
            SigInput {
                type_covered: RecordType::A,
                algorithm: alg,
                num_labels: 2,
                original_ttl: 300,
                sig_expiration: SerialNumber::new(u32::try_from(expiration).unwrap()),
                sig_inception: SerialNumber::new(u32::try_from(inception).unwrap()),
                key_tag: 4242,
                signer_name: Name::from_str("example.test.").unwrap(),
            },
            vec![0; 64],
        )
    }

    fn fault(sig: RRSIG) -> Option<String> {
        let owner = Name::from_str("xmpp.example.test.").unwrap();
        let records = [Record::from_rdata(
            owner.clone(),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        )];
        session().sig_fault(&owner, RecordType::A, &records, &[sig], &[])
    }

    #[tokio::test]
    async fn reasons_name_the_rrset_the_key_and_the_date() {
        let r = fault(rrsig(Algorithm::from_u8(253), NOW - 10, NOW + 10)).unwrap();
        assert!(
            r.starts_with("unsupported algorithm") && r.contains("253"),
            "{r}"
        );

        let r = fault(rrsig(Algorithm::ECDSAP256SHA256, NOW - 100, NOW - 1)).unwrap();
        assert!(r.starts_with("expired RRSIG"), "{r}");
        assert!(
            r.contains("xmpp.example.test. A") && r.contains("key tag 4242"),
            "{r}"
        );
        assert!(r.contains("2027-01-15T07:59:59Z"), "{r}");

        let r = fault(rrsig(Algorithm::ECDSAP256SHA256, NOW + 3600, NOW + 7200)).unwrap();
        assert!(
            r.starts_with("RRSIG not yet valid") && r.contains("2027-01-15T09:00:00Z"),
            "{r}"
        );

        let r = fault(rrsig(Algorithm::ECDSAP256SHA256, NOW - 10, NOW + 10)).unwrap();
        assert!(r.contains("publishes no such DNSKEY"), "{r}");
    }
}
