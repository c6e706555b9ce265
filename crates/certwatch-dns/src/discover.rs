//! XMPP service discovery: the four SRV RRsets, the XEP-0368 merge, the fallback rules of
//! RFC 6120 / RFC 7673, and one address and TLSA lookup per target, all concurrent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use certwatch_core::{
    AddressRrset, DnssecStatus, Endpoint, Origin, Service, Tlsa, TlsaRrset, Warning, WarningCode,
};
use futures::future::join_all;
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::caa::CaaReport;
use crate::lookup::Session;
use crate::rrset::{AnswerKind, RrsetLookup};
use crate::wire::{WireQuery, sequential_round_trips};

/// What the SRV lookup of one service concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ServiceOutcome {
    /// SRV records name at least one target.
    Offered,
    /// The only SRV target is `.`: the service is explicitly not offered.
    NotOffered,
    /// No SRV RRset (proven absent, or absent in an insecure zone): the domain itself on the
    /// default port is used (STARTTLS services only).
    Fallback,
    /// No SRV RRset for a direct-TLS service, which has no default fallback.
    NotPublished,
    /// The SRV lookup failed or is bogus: nothing can be concluded.
    Unavailable,
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrvRecord {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight among equal priorities.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host, without the trailing dot (`.` for "not offered").
    pub target: String,
}

/// Discovery of one service.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServiceDiscovery {
    /// The service.
    pub service: Service,
    /// The SRV lookup as seen.
    pub srv: RrsetLookup,
    /// The SRV records, in XEP-0368 order.
    pub records: Vec<SrvRecord>,
    /// What was concluded.
    pub outcome: ServiceOutcome,
}

/// The address lookups of one host.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HostLookup {
    /// Host name, without the trailing dot.
    pub host: String,
    /// The A RRset.
    pub a: RrsetLookup,
    /// The AAAA RRset.
    pub aaaa: RrsetLookup,
}

/// What the lookups cost on the wire.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct QueryStats {
    /// Queries sent to the network (after the shared cache).
    pub queries: usize,
    /// The longest chain of queries that had to wait for each other.
    pub sequential_round_trips: usize,
    /// The same, counting only the lookups themselves (SRV, A, AAAA, TLSA, CAA, CNAME
    /// targets), without the trust chain (DS, DNSKEY, and the NS queries hickory's
    /// validator makes to find zone cuts when proving a zone insecure).
    pub lookup_round_trips: usize,
    /// Every query with its timing.
    pub log: Vec<WireQuery>,
}

/// Everything DNS says about one XMPP domain: one serde value with every record as seen.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServiceMap {
    /// The domain, A-label form.
    pub domain: String,
    /// The four services' SRV lookups.
    pub services: Vec<ServiceDiscovery>,
    /// The endpoints to probe, c2s then s2s, each in XEP-0368 order.
    pub endpoints: Vec<Endpoint>,
    /// Address lookups per host.
    pub hosts: Vec<HostLookup>,
    /// TLSA lookups per `_<port>._tcp.<host>`.
    pub tlsa: Vec<RrsetLookup>,
    /// CAA and its advice.
    pub caa: CaaReport,
    /// Domain-level warnings.
    pub warnings: Vec<Warning>,
    /// The cost of the lookups.
    pub stats: QueryStats,
}

fn host_of(name: &Name) -> String {
    let s = name.to_ascii().to_ascii_lowercase();
    s.strip_suffix('.').map(str::to_owned).unwrap_or(s)
}

fn fqdn(host: &str) -> Name {
    let mut n = Name::from_ascii(host).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

struct Planned {
    service: Service,
    origin: Origin,
    srv_status: DnssecStatus,
    target: String,
    port: u16,
    priority: u16,
    weight: u16,
    srv_warnings: Vec<Warning>,
}

impl Session {
    /// Discovers the service map of `domain`.
    pub(crate) async fn discover(&self, domain: &crate::DomainName) -> ServiceMap {
        let dname = domain.to_fqdn();
        let srv_futs = Service::ALL.map(|s| {
            let owner = fqdn(&s.srv_owner(domain.as_str()));
            let me = self.clone();
            async move { (s, me.lookup(&owner, RecordType::SRV).await) }
        });
        // CAA runs beside the whole SRV → address/TLSA sequence.
        let caa = self.caa(&dname);
        let discovery = async {
            // The trust chain of the domain's zones is fetched beside the SRV queries, so the
            // validator finds it in the shared cache instead of walking it afterwards.
            let (srvs, ()) = futures::join!(join_all(srv_futs), self.prefetch_chain(dname.clone()));
            let mut services = Vec::new();
            let mut planned = Vec::new();
            for (service, mut srv) in srvs {
                // The DNSKEY RRset that signs the SRV RRset expires too (cached: no query).
                if srv.dnssec.is_secure()
                    && let Some(w) = self.signer_dnskey_warnings(&srv).await
                {
                    srv.warnings.extend(w);
                }
                let (sd, mut plan) = plan_service(domain.as_str(), service, srv);
                services.push(sd);
                planned.append(&mut plan);
            }
            // Placeholders for a failed SRV lookup are not looked up further.
            let live = planned
                .iter()
                .filter(|p| p.origin == Origin::Srv || p.srv_status.reason().is_none());
            let hosts: BTreeSet<String> = live.clone().map(|p| p.target.clone()).collect();
            let tlsa_keys: BTreeSet<(String, u16)> =
                live.map(|p| (p.target.clone(), p.port)).collect();
            let host_futs = hosts.iter().map(|h| {
                let me = self.clone();
                let h = h.clone();
                async move {
                    let n = fqdn(&h);
                    let (a, aaaa) = futures::join!(
                        me.lookup(&n, RecordType::A),
                        me.lookup(&n, RecordType::AAAA)
                    );
                    HostLookup { host: h, a, aaaa }
                }
            });
            let tlsa_futs = tlsa_keys.iter().map(|(h, p)| {
                let me = self.clone();
                let owner = fqdn(&certwatch_core::tlsa_owner(h, *p));
                let key = (h.clone(), *p);
                async move {
                    let mut l = me.lookup(&owner, RecordType::TLSA).await;
                    if l.dnssec.is_secure()
                        && let Some(w) = me.signer_dnskey_warnings(&l).await
                    {
                        l.warnings.extend(w);
                    }
                    (key, l)
                }
            });
            let chains = hosts.iter().map(|h| self.prefetch_chain(fqdn(h)));
            let (hosts, tlsa, _) =
                futures::join!(join_all(host_futs), join_all(tlsa_futs), join_all(chains));
            (services, planned, hosts, tlsa)
        };
        let ((services, planned, hosts, tlsa), caa) = futures::join!(discovery, caa);

        let host_map: BTreeMap<&str, &HostLookup> =
            hosts.iter().map(|h| (h.host.as_str(), h)).collect();
        let tlsa_map: BTreeMap<(String, u16), &RrsetLookup> =
            tlsa.iter().map(|(k, l)| (k.clone(), l)).collect();
        let mut endpoints: Vec<(u8, u16, std::cmp::Reverse<u16>, Endpoint)> = Vec::new();
        for p in &planned {
            let mut ep = Endpoint::new(domain.as_str(), p.service, &p.target, p.port);
            ep.origin = p.origin;
            ep.srv_dnssec = p.srv_status.clone();
            ep.warnings.extend(p.srv_warnings.iter().cloned());
            match host_map.get(p.target.as_str()) {
                Some(h) => {
                    ep.ipv4 = address_rrset(&h.a);
                    ep.ipv6 = address_rrset(&h.aaaa);
                    // Expiry warnings are for SRV, TLSA and DNSKEY only (issue 4).
                    ep.warnings.extend(
                        h.a.warnings
                            .iter()
                            .chain(h.aaaa.warnings.iter())
                            .filter(|w| w.code != WarningCode::SignatureExpiring)
                            .cloned(),
                    );
                    family_warnings(&mut ep, &p.target);
                }
                None => {
                    let s = p.srv_status.clone();
                    ep.ipv4 = AddressRrset::new(s.clone(), Vec::new());
                    ep.ipv6 = AddressRrset::new(s, Vec::new());
                }
            }
            match tlsa_map.get(&(p.target.clone(), p.port)) {
                Some(l) => {
                    ep.tlsa = tlsa_rrset(l);
                    ep.warnings.extend(l.warnings.iter().cloned());
                }
                None => {
                    ep.tlsa = TlsaRrset::new(ep.id.tlsa_owner(), p.srv_status.clone(), Vec::new());
                }
            }
            ep.warnings.sort();
            ep.warnings.dedup();
            let group = match p.service {
                Service::C2sStarttls | Service::C2sDirect => 0,
                _ => 1,
            };
            endpoints.push((group, p.priority, std::cmp::Reverse(p.weight), ep));
        }
        // XEP-0368: merge xmpp- and xmpps- records by priority, then weight (heavier first).
        endpoints.sort_by_key(|e| (e.0, e.1, e.2));
        let endpoints: Vec<Endpoint> = endpoints.into_iter().map(|e| e.3).collect();

        let mut warnings = Vec::new();
        for s in &services {
            if s.outcome == ServiceOutcome::NotOffered {
                warnings.push(Warning::new(
                    WarningCode::ServiceNotOffered,
                    format!("{} is explicitly not offered (SRV target `.`)", s.service),
                ));
            }
        }
        let log = self.wire.log();
        ServiceMap {
            domain: domain.as_str().to_owned(),
            services,
            endpoints,
            hosts,
            tlsa: tlsa.into_iter().map(|(_, l)| l).collect(),
            caa,
            warnings,
            stats: QueryStats {
                queries: log.len(),
                sequential_round_trips: sequential_round_trips(&log),
                lookup_round_trips: sequential_round_trips(
                    &log.iter()
                        .filter(|q| !matches!(q.rtype.as_str(), "DS" | "DNSKEY" | "NS"))
                        .cloned()
                        .collect::<Vec<_>>(),
                ),
                log,
            },
        }
    }

    /// Fetches DNSKEY and DS of `name` and of every ancestor concurrently (raw, into the
    /// shared cache). Names that are not zone cuts cost one cheap NODATA each.
    async fn prefetch_chain(&self, name: Name) {
        let mut names = Vec::new();
        let mut n = name;
        loop {
            names.push(n.clone());
            if n.is_root() {
                break;
            }
            n = n.base_name();
        }
        let futs = names.iter().flat_map(|n| {
            let dnskey = self.wire.raw(n, RecordType::DNSKEY);
            let ds = (!n.is_root()).then(|| self.wire.raw(n, RecordType::DS));
            [Some(dnskey), ds].into_iter().flatten()
        });
        // Best effort: the validator fetches whatever is missing under its own deadline.
        let _ = tokio::time::timeout(self.config.lookup_deadline, join_all(futs)).await;
    }

    /// `signature-expiring` for the DNSKEY RRset of the zone that signed a secure RRset.
    async fn signer_dnskey_warnings(&self, l: &RrsetLookup) -> Option<Vec<Warning>> {
        let signer = l.signatures.first()?.signer.clone();
        let zone = Name::from_ascii(&signer).ok()?;
        let raw = self.wire.raw(&zone, RecordType::DNSKEY).await.ok()?;
        let sigs = crate::lookup::covering_sigs(&raw.answers, &zone, RecordType::DNSKEY);
        Some(self.expiry_warnings(&zone, RecordType::DNSKEY, &sigs))
    }
}

fn plan_service(
    domain: &str,
    service: Service,
    srv: RrsetLookup,
) -> (ServiceDiscovery, Vec<Planned>) {
    let mut records: Vec<SrvRecord> = srv
        .data
        .iter()
        .filter_map(|d| match d {
            RData::SRV(s) => Some(SrvRecord {
                priority: s.priority,
                weight: s.weight,
                port: s.port,
                target: if s.target.is_root() {
                    ".".to_owned()
                } else {
                    host_of(&s.target)
                },
            }),
            _ => None,
        })
        .collect();
    records.sort_by_key(|r| {
        (
            r.priority,
            std::cmp::Reverse(r.weight),
            r.target.clone(),
            r.port,
        )
    });
    let status = srv.dnssec.clone();
    let mut plan = Vec::new();
    let fallback = |plan: &mut Vec<Planned>, status: DnssecStatus| {
        if let Some(port) = service.default_port() {
            plan.push(Planned {
                service,
                origin: Origin::Fallback,
                srv_status: status,
                target: domain.to_owned(),
                port,
                priority: u16::MAX,
                weight: 0,
                srv_warnings: srv.warnings.clone(),
            });
            ServiceOutcome::Fallback
        } else {
            ServiceOutcome::NotPublished
        }
    };
    let outcome = match (&srv.answer, &status) {
        (AnswerKind::Records, DnssecStatus::Secure | DnssecStatus::Insecure) => {
            let real: Vec<&SrvRecord> = records.iter().filter(|r| r.target != ".").collect();
            if real.is_empty() {
                ServiceOutcome::NotOffered
            } else {
                let mut seen = BTreeSet::new();
                for r in real {
                    if seen.insert((r.target.clone(), r.port)) {
                        plan.push(Planned {
                            service,
                            origin: Origin::Srv,
                            srv_status: status.clone(),
                            target: r.target.clone(),
                            port: r.port,
                            priority: r.priority,
                            weight: r.weight,
                            srv_warnings: srv.warnings.clone(),
                        });
                    }
                }
                ServiceOutcome::Offered
            }
        }
        // Proven absence, or absence in an insecure zone (the verdict is then no-dnssec).
        (
            AnswerKind::NoData | AnswerKind::NxDomain,
            DnssecStatus::Secure | DnssecStatus::Insecure,
        ) => fallback(&mut plan, status.clone()),
        // Bogus or failed: keep one endpoint per service that carries the status, so that
        // the verdict shows it; its target is the domain on the conventional port.
        _ => {
            plan.push(Planned {
                service,
                origin: Origin::Fallback,
                srv_status: status.clone(),
                target: domain.to_owned(),
                port: service.conventional_port(),
                priority: u16::MAX,
                weight: 0,
                srv_warnings: srv.warnings.clone(),
            });
            ServiceOutcome::Unavailable
        }
    };
    (
        ServiceDiscovery {
            service,
            srv,
            records,
            outcome,
        },
        plan,
    )
}

fn address_rrset(l: &RrsetLookup) -> AddressRrset {
    let addrs: Vec<IpAddr> = l
        .data
        .iter()
        .filter_map(|d| match d {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    AddressRrset::new(l.dnssec.clone(), addrs)
}

fn tlsa_rrset(l: &RrsetLookup) -> TlsaRrset {
    let records: Vec<Tlsa> = l
        .data
        .iter()
        .filter_map(|d| match d {
            RData::TLSA(t) => Some(Tlsa::new(
                u8::from(t.cert_usage),
                u8::from(t.selector),
                u8::from(t.matching),
                t.cert_data.clone(),
            )),
            _ => None,
        })
        .collect();
    TlsaRrset::new(l.owner.trim_end_matches('.'), l.dnssec.clone(), records)
}

fn family_warnings(ep: &mut Endpoint, host: &str) {
    let v4 = &ep.ipv4;
    let v6 = &ep.ipv6;
    if v4.addresses.is_empty()
        && v6.addresses.is_empty()
        && v4.dnssec.reason().is_none()
        && v6.dnssec.reason().is_none()
    {
        ep.warnings.push(Warning::new(
            WarningCode::NoAddresses,
            format!("{host} has neither A nor AAAA records"),
        ));
    }
    for (fam, rr) in [("A", &ep.ipv4), ("AAAA", &ep.ipv6)] {
        if !rr.addresses.is_empty() && !rr.dnssec.is_secure() {
            let msg = format!(
                "the {fam} RRset of {host} is {}: DANE does not apply to those addresses",
                rr.dnssec.as_str()
            );
            ep.warnings
                .push(Warning::new(WarningCode::InsecureAddresses, msg));
        }
    }
}
