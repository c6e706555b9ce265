//! Criterion benchmarks of certwatch-core's hot paths: SPKI hashing, TLSA parsing, and
//! matching a chain against DANE-EE and DANE-TA records (the DANE-TA case verifies
//! signatures with rustls-webpki).

use std::hint::black_box;
use std::time::Duration;

use certwatch_core::{
    MatchPolicy, MatchingType, Selector, Tlsa, UnixTime, association_data, certificate_spki,
    match_chain, spki_sha256,
};
use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

fn chain() -> (Vec<u8>, Vec<u8>) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "bench CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_der = ca.self_signed(&ca_key).expect("ca").der().to_vec();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["xmpp.example.net".to_string()]).expect("params");
    let leaf_der = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("leaf")
        .der()
        .to_vec();
    (leaf_der, ca_der)
}

fn record(usage: u8, selector: Selector, cert: &[u8]) -> Tlsa {
    let data = association_data(cert, selector, MatchingType::Sha256, "bench").expect("data");
    Tlsa::new(usage, selector, MatchingType::Sha256, data)
}

fn benches(c: &mut Criterion) {
    let (leaf, ca) = chain();
    let spki = certificate_spki(&leaf).expect("spki");
    let presented = vec![leaf.clone(), ca.clone()];
    let policy = MatchPolicy::new(
        "example.org",
        "xmpp.example.net",
        UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
    );
    let ee = [record(3, Selector::Spki, &leaf)];
    let ta = [record(2, Selector::Cert, &ca)];
    let line = format!("_5222._tcp.xmpp.example.net. 3600 IN TLSA {}", ee[0]);

    c.bench_function("spki_sha256", |b| b.iter(|| spki_sha256(black_box(&spki))));
    c.bench_function("tlsa_parse_zone_line", |b| {
        b.iter(|| black_box(&line).parse::<Tlsa>())
    });
    c.bench_function("match_dane_ee", |b| {
        b.iter(|| match_chain(black_box(&ee), black_box(&presented), &policy))
    });
    c.bench_function("match_dane_ta_verified_chain", |b| {
        b.iter(|| match_chain(black_box(&ta), black_box(&presented), &policy))
    });
}

criterion_group! {
    name = core;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(core);
