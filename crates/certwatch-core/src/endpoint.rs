//! Endpoints and probe targets: what certwatch-dns discovers and certwatch-probe connects to.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{DnssecStatus, Service, Tlsa, Warning};

/// How an endpoint was found: from an SRV record, or by the RFC 6120 fallback to the domain
/// itself on the default port (only when the absence of SRV is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// From an SRV record of the service.
    Srv,
    /// No SRV RRset: the domain itself on 5222 or 5269.
    Fallback,
}

/// The identity of an endpoint: (service, SRV target, port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointId {
    /// The service.
    pub service: Service,
    /// The SRV target (or the domain, for a fallback): an A-label, lowercase, no trailing dot.
    pub target: String,
    /// The TCP port.
    pub port: u16,
}

impl EndpointId {
    /// An endpoint identity. The target is lowercased and a trailing dot removed.
    pub fn new(service: Service, target: impl AsRef<str>, port: u16) -> Self {
        EndpointId {
            service,
            target: normalise_host(target.as_ref()),
            port,
        }
    }

    /// The owner name of the TLSA RRset (RFC 7673): `_<port>._tcp.<target>`, no trailing dot.
    pub fn tlsa_owner(&self) -> String {
        tlsa_owner(&self.target, self.port)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.service, self.target, self.port)
    }
}

/// `_<port>._tcp.<host>` (no trailing dot) for a host name in any case, with or without a
/// trailing dot.
///
/// ```
/// assert_eq!(certwatch_core::tlsa_owner("XMPP.Example.", 5222), "_5222._tcp.xmpp.example");
/// ```
pub fn tlsa_owner(host: &str, port: u16) -> String {
    format!("_{port}._tcp.{}", normalise_host(host))
}

/// Lowercase, trim, and remove one trailing dot.
pub(crate) fn normalise_host(host: &str) -> String {
    let h = host.trim();
    h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
}

/// The A or the AAAA RRset of a host, with its own DNSSEC status (each family is judged on its
/// own: REFERENCE §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AddressRrset {
    /// The DNSSEC status of this RRset (or of its proven absence).
    #[serde(flatten)]
    pub dnssec: DnssecStatus,
    /// The addresses (empty when the family has none).
    pub addresses: Vec<IpAddr>,
}

impl AddressRrset {
    /// An RRset with these addresses and status.
    pub fn new(dnssec: DnssecStatus, addresses: Vec<IpAddr>) -> Self {
        AddressRrset { dnssec, addresses }
    }

    /// A securely proven empty RRset (validated NODATA).
    pub fn empty_secure() -> Self {
        AddressRrset::new(DnssecStatus::Secure, Vec::new())
    }
}

/// The TLSA RRset of an endpoint, with its DNSSEC status.
///
/// `records` empty with a `secure` status means a validated NODATA/NXDOMAIN (`no-records`);
/// a lookup that failed (SERVFAIL, timeout) is `indeterminate`, never "no records"
/// (REFERENCE §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TlsaRrset {
    /// The owner name queried, `_<port>._tcp.<target>`, no trailing dot.
    pub owner: String,
    /// The DNSSEC status of the RRset or of its proven absence.
    #[serde(flatten)]
    pub dnssec: DnssecStatus,
    /// The records, in the order received.
    pub records: Vec<Tlsa>,
}

impl TlsaRrset {
    /// An RRset. The records are kept in sorted order: servers (unbound among them) rotate
    /// the order of an RRset's records from answer to answer, and two lookups of the same
    /// RRset must give equal reports.
    pub fn new(owner: impl AsRef<str>, dnssec: DnssecStatus, mut records: Vec<Tlsa>) -> Self {
        records.sort();
        TlsaRrset {
            owner: normalise_host(owner.as_ref()),
            dnssec,
            records,
        }
    }

    /// True when the RRset is secure and not empty: DANE says TLS is mandatory.
    pub fn is_secure_nonempty(&self) -> bool {
        self.dnssec.is_secure() && !self.records.is_empty()
    }
}

/// One endpoint of a domain: (service, SRV target, port), with everything DNS said about it.
///
/// Built by certwatch-dns; judged by certwatch-core.
///
/// ```
/// use certwatch_core::{DnssecStatus, Endpoint, Service, Tlsa, TlsaRrset, AddressRrset};
/// let mut ep = Endpoint::new("example.org", Service::C2sStarttls, "XMPP.example.net.", 5222);
/// assert_eq!(ep.id.target, "xmpp.example.net");
/// ep.ipv4 = AddressRrset::new(DnssecStatus::Secure, vec!["192.0.2.1".parse().unwrap()]);
/// ep.tlsa = TlsaRrset::new(ep.id.tlsa_owner(), DnssecStatus::Secure, vec![
///     format!("3 1 1 {}", "00".repeat(32)).parse::<Tlsa>().unwrap(),
/// ]);
/// let targets = ep.probe_targets();
/// assert_eq!(targets.len(), 1);
/// assert_eq!(targets[0].domain, "example.org");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Endpoint {
    /// The service domain (A-label, no trailing dot): the SNI and the stream `to`.
    pub domain: String,
    /// Service, SRV target and port.
    #[serde(flatten)]
    pub id: EndpointId,
    /// Whether it came from SRV or from the fallback.
    pub origin: Origin,
    /// The DNSSEC status of the SRV RRset (or of the proof that there is none, for a
    /// fallback).
    pub srv_dnssec: DnssecStatus,
    /// The A RRset of the target.
    pub ipv4: AddressRrset,
    /// The AAAA RRset of the target.
    pub ipv6: AddressRrset,
    /// The TLSA RRset at `_<port>._tcp.<target>`.
    pub tlsa: TlsaRrset,
    /// What DNS discovery noticed (NSEC3 iterations, CNAMEs, expiring signatures...).
    pub warnings: Vec<Warning>,
}

impl Endpoint {
    /// An endpoint found through SRV, with a secure SRV RRset, no addresses yet (secure empty
    /// A and AAAA) and an empty secure TLSA RRset. Set the fields that discovery found.
    pub fn new(
        domain: impl AsRef<str>,
        service: Service,
        target: impl AsRef<str>,
        port: u16,
    ) -> Self {
        let id = EndpointId::new(service, target, port);
        let owner = id.tlsa_owner();
        Endpoint {
            domain: normalise_host(domain.as_ref()),
            id,
            origin: Origin::Srv,
            srv_dnssec: DnssecStatus::Secure,
            ipv4: AddressRrset::empty_secure(),
            ipv6: AddressRrset::empty_secure(),
            tlsa: TlsaRrset::new(owner, DnssecStatus::Secure, Vec::new()),
            warnings: Vec::new(),
        }
    }

    /// The address RRset of the family of `ip`.
    pub fn family_of(&self, ip: &IpAddr) -> &AddressRrset {
        match ip {
            IpAddr::V4(_) => &self.ipv4,
            IpAddr::V6(_) => &self.ipv6,
        }
    }

    /// One probe target per address, IPv4 first. Every address is probed (REFERENCE §1).
    pub fn probe_targets(&self) -> Vec<ProbeTarget> {
        self.ipv4
            .addresses
            .iter()
            .chain(self.ipv6.addresses.iter())
            .map(|ip| ProbeTarget {
                domain: self.domain.clone(),
                id: self.id.clone(),
                address: *ip,
            })
            .collect()
    }
}

/// An endpoint plus one address: what one probe connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeTarget {
    /// The service domain: SNI and stream `to`.
    pub domain: String,
    /// The endpoint.
    #[serde(flatten)]
    pub id: EndpointId,
    /// The address to connect to (a validated one: never let an exit resolve names).
    pub address: IpAddr,
}

impl ProbeTarget {
    /// A probe target.
    pub fn new(domain: impl AsRef<str>, id: EndpointId, address: IpAddr) -> Self {
        ProbeTarget {
            domain: normalise_host(domain.as_ref()),
            id,
            address,
        }
    }
}

impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} ({})",
            self.domain,
            self.id.service,
            std::net::SocketAddr::new(self.address, self.id.port),
            self.id.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlsa_rrsets_compare_equal_whatever_the_answer_order() {
        let a = Tlsa::new(3, 1, 1, vec![0x78; 32]);
        let b = Tlsa::new(3, 1, 1, vec![0x36; 32]);
        let one = TlsaRrset::new(
            "_5222._tcp.x.example",
            DnssecStatus::Secure,
            vec![a.clone(), b.clone()],
        );
        let other = TlsaRrset::new("_5222._tcp.x.example", DnssecStatus::Secure, vec![b, a]);
        assert_eq!(one, other);
    }

    #[test]
    fn endpoint_serde_round_trip_and_targets() {
        let mut ep = Endpoint::new("Example.org.", Service::S2sDirect, "xmpp.example.net", 5270);
        ep.ipv4 = AddressRrset::new(DnssecStatus::Insecure, vec!["192.0.2.7".parse().unwrap()]);
        ep.ipv6 = AddressRrset::new(
            DnssecStatus::bogus("expired RRSIG"),
            vec!["2001:db8::7".parse().unwrap()],
        );
        let json = serde_json::to_value(&ep).unwrap();
        assert_eq!(json["service"], "s2s-direct");
        assert_eq!(json["target"], "xmpp.example.net");
        assert_eq!(json["ipv6"]["dnssec"], "bogus");
        assert_eq!(json["ipv6"]["dnssec_reason"], "expired RRSIG");
        assert_eq!(json["tlsa"]["owner"], "_5270._tcp.xmpp.example.net");
        let back: Endpoint = serde_json::from_value(json).unwrap();
        assert_eq!(back, ep);
        let t = ep.probe_targets();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].address, "2001:db8::7".parse::<IpAddr>().unwrap());
        assert_eq!(ep.family_of(&t[1].address).dnssec.as_str(), "bogus");
        assert_eq!(
            t[0].to_string(),
            "example.org s2s-direct 192.0.2.7:5270 (xmpp.example.net)"
        );
    }
}
