//! An in-process signed authoritative DNS fixture: a private root `.`, `test.` and child
//! zones, signed with hickory-server's in-memory zones (ECDSA P-256, NSEC or NSEC3), served
//! over UDP and TCP on one loopback port. DS queries are answered from the parent zone, as
//! an authoritative server hosting both sides of a cut must.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::runtime::{Time, TokioRuntimeProvider};
use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{
    Algorithm, DigestType, DnssecSigner, Nsec3HashAlgorithm, SigningKey, Verifier,
};
use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, NS, SOA, SRV, TLSA};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// How a child zone is delegated and signed.
#[derive(Clone, Debug, PartialEq)]
pub enum Signing {
    /// Signed, NSEC, DS in the parent.
    Nsec,
    /// Signed, NSEC3 with this many iterations, DS in the parent.
    Nsec3(u16),
    /// Not signed, no DS (insecure delegation).
    Unsigned,
    /// Signed, but the parent's DS is for another key.
    WrongDs,
    /// Signed with signatures valid for only this long (to let them expire).
    ShortLived(Duration),
}

/// A zone to serve.
pub struct ZoneSpec {
    pub origin: Name,
    pub signing: Signing,
    pub records: Vec<Record>,
    /// Records added after signing (their RRsets' signatures no longer hold, or there are none).
    pub after_signing: Vec<Record>,
}

pub fn name(s: &str) -> Name {
    Name::from_str(s).expect("fixture name")
}

pub fn rec(owner: &str, data: RData) -> Record {
    Record::from_rdata(name(owner), 300, data)
}

pub fn srv(owner: &str, prio: u16, weight: u16, port: u16, target: &str) -> Record {
    rec(
        owner,
        RData::SRV(SRV::new(prio, weight, port, name(target))),
    )
}

pub fn a(owner: &str, ip: [u8; 4]) -> Record {
    rec(owner, RData::A(A::new(ip[0], ip[1], ip[2], ip[3])))
}

pub fn aaaa(owner: &str, ip: std::net::Ipv6Addr) -> Record {
    rec(owner, RData::AAAA(AAAA(ip)))
}

pub fn tlsa(owner: &str, digest: [u8; 32]) -> Record {
    rec(
        owner,
        RData::TLSA(TLSA::new(3.into(), 1.into(), 1.into(), digest.to_vec())),
    )
}

pub fn cname(owner: &str, target: &str) -> Record {
    rec(owner, RData::CNAME(CNAME(name(target))))
}

pub fn caa_issue(owner: &str, ca: &str) -> Record {
    rec(
        owner,
        RData::CAA(CAA::new_issue(false, Some(name(ca)), Vec::new())),
    )
}

fn soa(origin: &Name) -> Record {
    Record::from_rdata(
        origin.clone(),
        300,
        RData::SOA(SOA::new(
            name("ns.test."),
            name("hostmaster.test."),
            1,
            3600,
            600,
            86400,
            60,
        )),
    )
}

struct Key {
    key: Box<dyn SigningKey>,
    dnskey: DNSKEY,
}

fn new_key() -> Key {
    let alg = Algorithm::ECDSAP256SHA256;
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(alg).expect("generate key");
    let key = EcdsaSigningKey::from_pkcs8(&pkcs8, alg).expect("load key");
    let public = key.to_public_key().expect("public key");
    let dnskey = DNSKEY::from_key(&public);
    Key {
        key: Box::new(key),
        dnskey,
    }
}

fn ds_of(owner: &Name, dnskey: &DNSKEY) -> DS {
    let digest = dnskey.to_digest(owner, DigestType::SHA256).expect("digest");
    DS::new(
        dnskey.calculate_key_tag().expect("key tag"),
        dnskey.algorithm(),
        DigestType::SHA256,
        digest.as_ref().to_vec(),
    )
}

/// The running fixture.
pub struct Fixture {
    pub addr: SocketAddr,
    /// The root DNSKEY as presentation text (a trust anchor for `TrustAnchor::DnskeyText`).
    pub root_dnskey: String,
    /// The root DS as presentation text.
    pub root_ds: String,
    _server: Server<Router>,
}

/// Routes each query to the zone that is authoritative for it (the parent, for DS).
pub struct Router {
    zones: Vec<(Name, Catalog)>,
    delay: Duration,
}

impl Router {
    fn pick(&self, qname: &Name, is_ds: bool) -> Option<&Catalog> {
        let lookup = |n: &Name| {
            self.zones
                .iter()
                .filter(|(o, _)| o.zone_of(n))
                .max_by_key(|(o, _)| o.num_labels())
        };
        let best = lookup(qname)?;
        if is_ds && &best.0 == qname && !qname.is_root() {
            return lookup(&qname.base_name()).map(|(_, c)| c);
        }
        Some(&best.1)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Router {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let (qname, is_ds) = match request.request_info() {
            Ok(info) => (
                Name::from(info.query.name().clone()),
                info.query.query_type() == hickory_proto::rr::RecordType::DS,
            ),
            Err(_) => (Name::root(), false),
        };
        match self.pick(&qname, is_ds) {
            Some(c) => c.handle_request::<R, T>(request, response_handle).await,
            None => {
                self.zones[0]
                    .1
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
        }
    }
}

/// Builds, signs and serves `children` under a signed `.` and `test.`. Each child's origin
/// must be directly below `test.`. `delay` is added to every answer (round-trip studies).
pub async fn start(children: Vec<ZoneSpec>, delay: Duration) -> Fixture {
    let mut zones: Vec<(Name, Catalog)> = Vec::new();
    let mut test_records = vec![rec("ns.test.", RData::A(A::new(127, 0, 0, 1)))];
    for child in children {
        let key = new_key();
        test_records.push(Record::from_rdata(
            child.origin.clone(),
            300,
            RData::NS(NS(name("ns.test."))),
        ));
        match &child.signing {
            Signing::Unsigned => {}
            Signing::WrongDs => {
                let other = new_key();
                test_records.push(Record::from_rdata(
                    child.origin.clone(),
                    300,
                    RData::DNSSEC(DNSSECRData::DS(ds_of(&child.origin, &other.dnskey))),
                ));
            }
            _ => test_records.push(Record::from_rdata(
                child.origin.clone(),
                300,
                RData::DNSSEC(DNSSECRData::DS(ds_of(&child.origin, &key.dnskey))),
            )),
        }
        let nx = match child.signing {
            Signing::Nsec3(iterations) => Some(NxProofKind::Nsec3 {
                algorithm: Nsec3HashAlgorithm::SHA1,
                salt: Arc::new([]),
                iterations,
                opt_out: false,
            }),
            Signing::Unsigned => None,
            _ => Some(NxProofKind::Nsec),
        };
        let duration = match child.signing {
            Signing::ShortLived(d) => d,
            _ => Duration::from_secs(30 * 86400),
        };
        let signed = child.signing != Signing::Unsigned;
        let handler = zone(
            &child.origin,
            child.records,
            signed.then_some((key, duration)),
            nx,
            child.after_signing,
        );
        zones.push((child.origin, handler));
    }
    let test_key = new_key();
    let root_key = new_key();
    let test = name("test.");
    let root = Name::root();
    let root_records = vec![
        Record::from_rdata(test.clone(), 300, RData::NS(NS(name("ns.test.")))),
        Record::from_rdata(
            test.clone(),
            300,
            RData::DNSSEC(DNSSECRData::DS(ds_of(&test, &test_key.dnskey))),
        ),
    ];
    let root_dnskey = Record::from_rdata(
        root.clone(),
        300,
        RData::DNSSEC(DNSSECRData::DNSKEY(root_key.dnskey.clone())),
    )
    .to_string();
    let root_ds = Record::from_rdata(
        root.clone(),
        300,
        RData::DNSSEC(DNSSECRData::DS(ds_of(&root, &root_key.dnskey))),
    )
    .to_string();
    let month = Duration::from_secs(30 * 86400);
    zones.push((
        test.clone(),
        zone(
            &test,
            test_records,
            Some((test_key, month)),
            Some(NxProofKind::Nsec),
            Vec::new(),
        ),
    ));
    zones.push((
        root.clone(),
        zone(
            &root,
            root_records,
            Some((root_key, month)),
            Some(NxProofKind::Nsec),
            Vec::new(),
        ),
    ));

    let (udp, tcp, addr) = bind_pair().await;
    let mut server = Server::new(Router { zones, delay });
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    Fixture {
        addr,
        root_dnskey,
        root_ds,
        _server: server,
    }
}

/// A UDP socket and a TCP listener on the same free loopback port (retrying when the UDP
/// port's TCP twin is taken).
pub async fn bind_pair() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("local addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}

fn zone(
    origin: &Name,
    records: Vec<Record>,
    key: Option<(Key, Duration)>,
    nx: Option<NxProofKind>,
    after_signing: Vec<Record>,
) -> Catalog {
    let mut z = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
        nx,
    );
    z.upsert_mut(soa(origin), 1);
    z.upsert_mut(
        Record::from_rdata(origin.clone(), 300, RData::NS(NS(name("ns.test.")))),
        1,
    );
    for r in records {
        z.upsert_mut(r, 1);
    }
    if let Some((key, duration)) = key {
        let signer = DnssecSigner::new(key.dnskey, key.key, origin.clone(), duration);
        z.add_zone_signing_key_mut(signer).expect("add key");
        z.secure_zone_mut().expect("sign zone");
    }
    for r in after_signing {
        z.upsert_mut(r, 1);
    }
    let mut c = Catalog::new();
    c.upsert(LowerName::new(origin), vec![Arc::new(z)]);
    c
}

/// Silences unused-import warnings for helpers some test files do not use.
pub fn _unused(_: BTreeMap<(), ()>) {}
