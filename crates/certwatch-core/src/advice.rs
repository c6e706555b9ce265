//! Setup advice (the zone-file lines an operator adds, "enable DNSSEC") and pin-strength
//! warnings (REFERENCE §2).

use std::collections::BTreeMap;

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::association::cert_matches;
use crate::endpoint::{Endpoint, Origin, tlsa_owner};
use crate::tlsa::{CertUsage, MatchingType, Selector, Tlsa};
use crate::{DnssecStatus, Warning, WarningCode};

/// The zone-file line `_<port>._tcp.<host>. <ttl> IN TLSA <record>` (absolute owner name).
///
/// ```
/// let rec: certwatch_core::Tlsa = "3 1 1 ab".parse().unwrap();
/// assert_eq!(
///     certwatch_core::tlsa_zone_line("xmpp.example.", 5269, 300, &rec),
///     "_5269._tcp.xmpp.example. 300 IN TLSA 3 1 1 ab"
/// );
/// ```
pub fn tlsa_zone_line(host: &str, port: u16, ttl: u32, record: &Tlsa) -> String {
    format!("{}. {ttl} IN TLSA {record}", tlsa_owner(host, port))
}

/// True if a DANE-TA/PKIX-TA record names a CA of the public web PKI: a `webpki-roots` root's
/// key (selector 1), or a certificate of `chain` that is such a root or is issued by one.
fn names_public_ca(record: &Tlsa, chain: Option<&[Vec<u8>]>) -> bool {
    let roots = webpki_roots::TLS_SERVER_ROOTS;
    if roots
        .iter()
        .any(|a| crate::association::spki_matches(record, &webpki::spki_for_anchor(a)))
    {
        return true;
    }
    let Some(chain) = chain else { return false };
    chain.iter().skip(1).any(|c| {
        let der = CertificateDer::from(c.as_slice());
        cert_matches(record, &der)
            && webpki::anchor_from_trusted_cert(&der).is_ok_and(|ta| {
                let issuer = issuer_contents(c);
                roots.iter().any(|r| {
                    r.subject.as_ref() == ta.subject.as_ref()
                        || r.subject_public_key_info.as_ref() == ta.subject_public_key_info.as_ref()
                        || issuer.as_deref() == Some(r.subject.as_ref())
                })
            })
    })
}

fn issuer_contents(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    crate::der::read_all(parsed.tbs_certificate.issuer.as_raw()).map(|t| t.contents.to_vec())
}

/// Pin-strength warnings for a TLSA RRset (REFERENCE §2):
///
/// - `weak-pin`: a PKIX-TA record, or a DANE-TA record that names a public CA (known from
///   the `webpki-roots` keys, or from the presented `chain` when given). Any certificate that
///   CA issues for the name matches it, an attacker's included (the jabber.ru case).
/// - `pin-changes-on-renewal`: a `3 0 x` record (full certificate) changes at every renewal.
/// - `no-rollover-slot`: exactly one end-entity key is pinned and no trust anchor.
/// - `unusable-record`: one per record that is ignored.
///
/// ```
/// use certwatch_core::{pin_strength, Tlsa, WarningCode};
/// let one: Tlsa = format!("3 1 1 {}", "ab".repeat(32)).parse().unwrap();
/// let codes: Vec<_> = pin_strength(&[one], None).into_iter().map(|w| w.code).collect();
/// assert_eq!(codes, [WarningCode::NoRolloverSlot]);
/// ```
pub fn pin_strength(records: &[Tlsa], chain: Option<&[Vec<u8>]>) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut ee_keys = Vec::new();
    let mut ta = false;
    for r in records {
        if let Err(why) = r.usability() {
            out.push(Warning::new(
                WarningCode::UnusableRecord,
                format!("TLSA {r} is ignored: {why}"),
            ));
            continue;
        }
        match r.usage {
            CertUsage::PkixTa => {
                ta = true;
                out.push(Warning::new(
                    WarningCode::WeakPin,
                    format!(
                        "TLSA {r} (PKIX-TA) pins a public CA: any certificate it issues for this name matches, an attacker's too; publish 3 1 1 records of the server's own keys instead"
                    ),
                ));
            }
            CertUsage::DaneTa => {
                ta = true;
                if names_public_ca(r, chain) {
                    out.push(Warning::new(
                        WarningCode::WeakPin,
                        format!(
                            "TLSA {r} (DANE-TA) pins a public CA: an attacker with a certificate from the same CA matches it (the jabber.ru interception); publish 3 1 1 records of the server's own keys instead, and renew with the same key (certbot --reuse-key)"
                        ),
                    ));
                }
            }
            CertUsage::DaneEe | CertUsage::PkixEe => {
                if r.selector == Selector::Cert {
                    out.push(Warning::new(
                        WarningCode::PinChangesOnRenewal,
                        format!(
                            "TLSA {} {} {} ... pins the whole certificate: it changes at every renewal; use 3 1 1 (the key) and renew with the same key (certbot --reuse-key)",
                            r.usage, r.selector, r.matching
                        ),
                    ));
                }
                if !ee_keys.contains(&r.data) {
                    ee_keys.push(r.data.clone());
                }
            }
            CertUsage::PrivateUse | CertUsage::Unassigned(_) => {}
        }
    }
    if ee_keys.len() == 1 && !ta {
        out.push(Warning::new(
            WarningCode::NoRolloverSlot,
            "only one key is pinned: publish a 3 1 1 record for the next key too, before the rollover",
        ));
    }
    out
}

/// Where a key to pin came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "label")]
#[non_exhaustive]
pub enum PinSource {
    /// A key or certificate file read on the server (trusted).
    KeyFile(String),
    /// A live probe, which trusts the connection it came over.
    LiveProbe,
}

/// A key seen on (or given for) an endpoint's host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeySeen {
    /// The host (SRV target), A-label, no trailing dot.
    pub host: String,
    /// The port.
    pub port: u16,
    /// SHA-256 of the key's SubjectPublicKeyInfo.
    #[serde(with = "hex_32")]
    pub spki_sha256: [u8; 32],
    /// Where it came from.
    pub source: PinSource,
}

impl KeySeen {
    /// A key for `host:port`.
    pub fn new(host: &str, port: u16, spki_sha256: [u8; 32], source: PinSource) -> Self {
        KeySeen {
            host: crate::endpoint::normalise_host(host),
            port,
            spki_sha256,
            source,
        }
    }
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// What the operator should do: zone-file lines to add, and advice in words.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SetupAdvice {
    /// Lines to add to the zone, additive (existing records stay). Comment lines start with
    /// `;` and are valid zone-file syntax.
    pub zone_lines: Vec<String>,
    /// Advice in words.
    pub advice: Vec<String>,
    /// Warnings about the advice itself (`pins-from-live-probe`).
    pub warnings: Vec<Warning>,
}

fn insecure_advice(ep: &Endpoint) -> Vec<String> {
    let mut out = Vec::new();
    let what = |s: &DnssecStatus| match s {
        DnssecStatus::Insecure => Some("is not signed (insecure)"),
        DnssecStatus::Bogus { .. } => Some("fails DNSSEC validation (bogus)"),
        _ => None,
    };
    if let Some(w) = what(&ep.srv_dnssec) {
        let owner = ep.id.service.srv_owner(&ep.domain);
        out.push(match ep.origin {
            Origin::Srv => format!(
                "Enable DNSSEC for {}: the SRV RRset {owner} {w}, so DANE does not apply to {}",
                ep.domain, ep.id.service
            ),
            Origin::Fallback => format!(
                "Enable DNSSEC for {}: the absence of SRV records at {owner} {w}, so DANE does not apply to {}",
                ep.domain, ep.id.service
            ),
        });
    }
    for (rr, family) in [(&ep.ipv4, "A"), (&ep.ipv6, "AAAA")] {
        if let Some(w) = what(&rr.dnssec) {
            out.push(format!(
                "Enable DNSSEC for {}: the {family} RRset of {} {w}, so DANE does not apply to its {} addresses",
                ep.id.target,
                ep.id.target,
                if family == "A" { "IPv4" } else { "IPv6" }
            ));
        }
    }
    if let Some(w) = what(&ep.tlsa.dnssec) {
        out.push(format!(
            "Enable DNSSEC for {}: the TLSA RRset {} {w}",
            ep.id.target, ep.tlsa.owner
        ));
    }
    out
}

/// The setup advice for a domain's endpoints, given the keys seen on (or given for) each host.
///
/// Per host (`_<port>._tcp.<target>`, shared by every domain it serves) it prints one
/// `3 1 1` line per key that is not already published, so the lines are additive. When the
/// host would then pin a single key, a commented next-key line names the command that fills
/// it. Insecure or bogus RRsets get "enable DNSSEC" advice that names the RRset. Pins from a
/// live probe carry a `pins-from-live-probe` warning: if the server is already intercepted,
/// they pin the attacker.
///
/// ```
/// use certwatch_core::{setup_advice, Endpoint, KeySeen, PinSource, Service};
/// let ep = Endpoint::new("example.org", Service::C2sStarttls, "xmpp.example.net", 5222);
/// let key = KeySeen::new("xmpp.example.net", 5222, [0xab; 32], PinSource::KeyFile("cert.pem".into()));
/// let advice = setup_advice(&[ep], &[key], 3600);
/// assert_eq!(advice.zone_lines[0], format!("_5222._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 {}", "ab".repeat(32)));
/// assert!(advice.zone_lines[1].starts_with("; _5222._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 <next key>"));
/// ```
pub fn setup_advice(endpoints: &[Endpoint], keys: &[KeySeen], ttl: u32) -> SetupAdvice {
    let mut out = SetupAdvice::default();
    // host:port -> (published records, endpoints' statuses)
    let mut hosts: BTreeMap<(String, u16), Vec<Tlsa>> = BTreeMap::new();
    for ep in endpoints {
        for a in insecure_advice(ep) {
            if !out.advice.contains(&a) {
                out.advice.push(a);
            }
        }
        let entry = hosts.entry((ep.id.target.clone(), ep.id.port)).or_default();
        for r in &ep.tlsa.records {
            if !entry.contains(r) {
                entry.push(r.clone());
            }
        }
    }
    for k in keys {
        hosts.entry((k.host.clone(), k.port)).or_default();
    }
    let mut live = false;
    for ((host, port), published) in &hosts {
        let mut pinned: Vec<[u8; 32]> = published
            .iter()
            .filter(|r| {
                r.usage == CertUsage::DaneEe
                    && r.selector == Selector::Spki
                    && r.matching == MatchingType::Sha256
                    && r.is_usable()
            })
            .filter_map(|r| <[u8; 32]>::try_from(r.data.as_slice()).ok())
            .collect();
        let mut added = false;
        for k in keys.iter().filter(|k| &k.host == host && k.port == *port) {
            if pinned.contains(&k.spki_sha256) {
                continue;
            }
            live |= k.source == PinSource::LiveProbe;
            pinned.push(k.spki_sha256);
            added = true;
            out.zone_lines.push(tlsa_zone_line(
                host,
                *port,
                ttl,
                &Tlsa::dane_ee_spki_sha256(k.spki_sha256),
            ));
        }
        if pinned.len() == 1 && (added || !published.is_empty()) {
            out.zone_lines.push(format!(
                "; {}. {ttl} IN TLSA 3 1 1 <next key> ; fill with: certwatch records --key NEXT-KEY.pem --host {host} --port {port}",
                tlsa_owner(host, *port)
            ));
        }
        if added
            && published
                .iter()
                .any(|r| r.usage == CertUsage::DaneTa || r.usage == CertUsage::PkixTa)
        {
            out.advice.push(format!(
                "{}: once the 3 1 1 lines are published, remove the trust-anchor (2 x x / 0 x x) records: while they stay, a certificate from that CA still matches",
                tlsa_owner(host, *port)
            ));
        }
    }
    let adds_records = out.zone_lines.iter().any(|l| !l.starts_with(';'));
    if adds_records {
        out.advice.push(
            "Add the zone lines below (they are additive: keep the records you have), sign the zone, and renew certificates with the same key (certbot --reuse-key) or publish the next key's line before a rollover"
                .to_owned(),
        );
    } else if !out.zone_lines.is_empty() {
        // Only next-key slots (comments): nothing is missing today.
        out.advice.push(
            "The published records cover the current key; before a rollover, publish a 3 1 1 line for the next key too (the commented line below shows where and the command that computes it), and renew certificates with the same key (certbot --reuse-key) until then"
                .to_owned(),
        );
    }
    if live {
        out.warnings.push(Warning::new(
            WarningCode::PinsFromLiveProbe,
            "these lines come from a live probe, which trusts the connection: if the server is already intercepted they pin the attacker; compute them on the server from the key file instead: certwatch records --cert /path/to/fullchain.pem --host HOST --port PORT",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Service;

    fn endpoint_with(records: Vec<Tlsa>) -> Endpoint {
        let mut ep = Endpoint::new(
            "example.org",
            Service::C2sStarttls,
            "xmpp.example.org",
            5222,
        );
        ep.tlsa = crate::TlsaRrset::new(ep.id.tlsa_owner(), DnssecStatus::Secure, records);
        ep
    }

    #[test]
    fn next_key_slot_alone_is_not_called_lines_to_add() {
        // One key pinned and seen: only the commented next-key slot follows.
        let key = [0xab; 32];
        let ep = endpoint_with(vec![Tlsa::dane_ee_spki_sha256(key)]);
        let seen = KeySeen::new("xmpp.example.org", 5222, key, PinSource::LiveProbe);
        let advice = setup_advice(&[ep], &[seen], 3600);
        assert_eq!(advice.zone_lines.len(), 1);
        assert!(advice.zone_lines[0].starts_with("; "));
        assert_eq!(advice.advice.len(), 1);
        assert!(
            !advice.advice[0].contains("Add the zone lines"),
            "{:?}",
            advice.advice
        );
        assert!(advice.advice[0].contains("next key"));
        // Nothing new from a live probe: no live-probe warning either.
        assert!(advice.warnings.is_empty());
    }

    #[test]
    fn real_lines_are_called_lines_to_add() {
        let ep = endpoint_with(vec![]);
        let seen = KeySeen::new("xmpp.example.org", 5222, [1; 32], PinSource::LiveProbe);
        let advice = setup_advice(&[ep], &[seen], 3600);
        assert!(
            advice.zone_lines[0].starts_with("_5222._tcp.xmpp.example.org. 3600 IN TLSA 3 1 1 ")
        );
        assert!(
            advice
                .advice
                .iter()
                .any(|a| a.starts_with("Add the zone lines below"))
        );
        assert_eq!(advice.warnings.len(), 1);
        assert_eq!(advice.warnings[0].code, WarningCode::PinsFromLiveProbe);
    }

    #[test]
    fn nothing_to_say_for_two_pinned_keys() {
        let ep = endpoint_with(vec![
            Tlsa::dane_ee_spki_sha256([1; 32]),
            Tlsa::dane_ee_spki_sha256([2; 32]),
        ]);
        let seen = KeySeen::new("xmpp.example.org", 5222, [1; 32], PinSource::LiveProbe);
        let advice = setup_advice(&[ep], &[seen], 3600);
        assert!(advice.zone_lines.is_empty());
        assert!(advice.advice.is_empty());
    }
}
