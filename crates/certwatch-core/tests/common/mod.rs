//! Test PKI built with rcgen: a root CA, an intermediate, leaves, and an attacker's forgeries.
#![allow(dead_code)]

use std::time::Duration;

use certwatch_core::{
    AddressRrset, DnssecStatus, Endpoint, MatchingType, PresentedChain, ProbeOutcome, Selector,
    Service, Tlsa, TlsaRrset, UnixTime, association_data,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

pub const DOMAIN: &str = "example.org";
pub const TARGET: &str = "xmpp.example.net";

/// 2027-01-15: inside every default rcgen validity period, after the "expired" leaf's.
pub fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000))
}

pub struct Ca {
    pub der: Vec<u8>,
    pub issuer: Issuer<'static, KeyPair>,
    pub spki: Vec<u8>,
}

fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key")
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn spki_of(der: &[u8]) -> Vec<u8> {
    certwatch_core::certificate_spki(der).expect("spki")
}

/// A self-signed root with this common name.
pub fn root(cn: &str) -> Ca {
    let k = key();
    let p = ca_params(cn);
    let der = p.self_signed(&k).expect("root").der().to_vec();
    Ca {
        spki: spki_of(&der),
        der,
        issuer: Issuer::new(p, k),
    }
}

/// An intermediate CA signed by `parent`.
pub fn intermediate(cn: &str, parent: &Ca) -> Ca {
    let k = key();
    let p = ca_params(cn);
    let der = p
        .signed_by(&k, &parent.issuer)
        .expect("inter")
        .der()
        .to_vec();
    Ca {
        spki: spki_of(&der),
        der,
        issuer: Issuer::new(p, k),
    }
}

/// A leaf for `names` signed by `parent`; `expired` makes it valid only in 2000.
pub fn leaf_with(
    names: &[&str],
    parent: &Issuer<'static, KeyPair>,
    expired: bool,
) -> (Vec<u8>, KeyPair) {
    let k = key();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    p.distinguished_name = dn;
    if expired {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let der = p.signed_by(&k, parent).expect("leaf").der().to_vec();
    (der, k)
}

pub fn leaf(names: &[&str], parent: &Ca) -> Vec<u8> {
    leaf_with(names, &parent.issuer, false).0
}

/// An issuer with the same name as `ca` but another key: an attacker's look-alike.
pub fn impostor(cn: &str) -> Issuer<'static, KeyPair> {
    Issuer::new(ca_params(cn), key())
}

/// A leaf (non-CA) certificate's key used as an issuer, with the leaf's name.
pub fn leaf_as_issuer(cn: &str, k: KeyPair) -> Issuer<'static, KeyPair> {
    let mut p = CertificateParams::new(vec![cn.to_string()]).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    Issuer::new(p, k)
}

/// A TLSA record for this certificate.
pub fn rec(usage: u8, selector: u8, matching: u8, cert: &[u8]) -> Tlsa {
    let data = association_data(
        cert,
        Selector::from(selector),
        MatchingType::from(matching),
        "test",
    )
    .expect("association data");
    Tlsa::new(usage, selector, matching, data)
}

/// A secure endpoint (SRV, A, AAAA, TLSA) at TARGET:5222 for DOMAIN with these records.
pub fn endpoint(records: Vec<Tlsa>) -> Endpoint {
    endpoint_for(DOMAIN, TARGET, records)
}

pub fn endpoint_for(domain: &str, target: &str, records: Vec<Tlsa>) -> Endpoint {
    let mut ep = Endpoint::new(domain, Service::C2sStarttls, target, 5222);
    ep.ipv4 = AddressRrset::new(DnssecStatus::Secure, vec!["192.0.2.1".parse().unwrap()]);
    ep.ipv6 = AddressRrset::new(DnssecStatus::Secure, vec!["2001:db8::1".parse().unwrap()]);
    ep.tlsa = TlsaRrset::new(ep.id.tlsa_owner(), DnssecStatus::Secure, records);
    ep
}

pub fn presented(chain: &[&[u8]], proven: bool) -> ProbeOutcome {
    ProbeOutcome::Presented(PresentedChain::new(
        chain.iter().map(|c| c.to_vec()).collect(),
        proven,
    ))
}
