//! The crypto floor of one certwatch check, with criterion on this machine (ring, the
//! provider certwatch uses everywhere):
//!
//! * per probe (TLS 1.3 client): one X25519 key generation and agreement, one verify of the
//!   server's handshake signature (P-256 ECDSA, or RSA-2048 PSS, reported separately), one
//!   SHA-256 of the SPKI;
//! * per cold domain: the RRSIG verifies (ECDSAP256SHA256, the algorithm of the benchmark
//!   zones) and DS digests (SHA-256 over owner and DNSKEY RDATA) that validation needs; how
//!   many of each a scenario needs is counted in `docs/performance.md`.
//!
//! ```text
//! cargo bench -p certwatch-bench --bench crypto_floor
//! ```

use std::hint::black_box;
use std::time::Duration;

use certwatch_bench::{EC_CERT_DER, EC_KEY_DER, RSA_CERT_DER, RSA_KEY_DER};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey as AgreementKey, X25519};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};

/// What a TLS 1.3 CertificateVerify signs: 64 spaces, the context string, a 0 byte and a
/// SHA-256 transcript hash.
fn certificate_verify_input() -> Vec<u8> {
    let mut m = vec![0x20u8; 64];
    m.extend_from_slice(b"TLS 1.3, server CertificateVerify");
    m.push(0);
    m.extend_from_slice(&[0x5a; 32]);
    m
}

fn bench(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let msg = certificate_verify_input();

    // Handshake signature, P-256 (ASN.1 as in TLS).
    let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, EC_KEY_DER, &rng)
        .expect("EC key");
    let ec_sig = ec.sign(&rng, &msg).expect("sign");
    let ec_pub = UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_ASN1,
        ec.public_key().as_ref().to_vec(),
    );
    ec_pub.verify(&msg, ec_sig.as_ref()).expect("EC verify");

    // Handshake signature, RSA-2048 PSS (TLS 1.3's RSA scheme).
    let rsa = RsaKeyPair::from_pkcs8(RSA_KEY_DER).expect("RSA key");
    let mut rsa_sig = vec![0u8; rsa.public().modulus_len()];
    rsa.sign(&signature::RSA_PSS_SHA256, &rng, &msg, &mut rsa_sig)
        .expect("sign");
    let rsa_pub = UnparsedPublicKey::new(
        &signature::RSA_PSS_2048_8192_SHA256,
        rsa.public_key().as_ref().to_vec(),
    );
    rsa_pub.verify(&msg, &rsa_sig).expect("RSA verify");

    // SPKIs as certwatch hashes them.
    let ec_spki = certwatch_core::certificate_spki(EC_CERT_DER).expect("spki");
    let rsa_spki = certwatch_core::certificate_spki(RSA_CERT_DER).expect("spki");

    // An RRSIG over a TLSA RRset (ECDSAP256SHA256 uses the fixed r||s signature form): the
    // signed data is the RRSIG RDATA without signature plus the canonical RRset, ~150 bytes.
    let rrsig_input = vec![0x42u8; 150];
    let dns_key = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        EC_KEY_DER,
        &rng,
    )
    .expect("EC key");
    let rrsig = dns_key.sign(&rng, &rrsig_input).expect("sign");
    let dns_pub = UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        dns_key.public_key().as_ref().to_vec(),
    );
    dns_pub
        .verify(&rrsig_input, rrsig.as_ref())
        .expect("RRSIG verify");
    // A DS digest: owner name in wire form (~15 bytes) + DNSKEY RDATA (4 + 64 bytes).
    let ds_input = vec![0x17u8; 15 + 68];

    // A fixed X25519 peer share.
    let peer = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519");
    let peer_pub = peer.compute_public_key().expect("public").as_ref().to_vec();

    let mut g = c.benchmark_group("crypto_floor");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("x25519_keygen_and_agree", |b| {
        b.iter(|| {
            let k = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519");
            let public = k.compute_public_key().expect("public");
            black_box(public.as_ref().len());
            agreement::agree_ephemeral(k, &AgreementKey::new(&X25519, &peer_pub), |s| {
                black_box(s.len())
            })
        })
    });
    g.bench_function("verify_p256_handshake_signature", |b| {
        b.iter(|| ec_pub.verify(black_box(&msg), black_box(ec_sig.as_ref())))
    });
    g.bench_function("verify_rsa2048_pss_handshake_signature", |b| {
        b.iter(|| rsa_pub.verify(black_box(&msg), black_box(&rsa_sig)))
    });
    g.bench_function("sha256_spki_p256", |b| {
        b.iter(|| certwatch_core::spki_sha256(black_box(&ec_spki)))
    });
    g.bench_function("sha256_spki_rsa2048", |b| {
        b.iter(|| certwatch_core::spki_sha256(black_box(&rsa_spki)))
    });
    g.bench_function("verify_rrsig_ecdsap256sha256", |b| {
        b.iter(|| dns_pub.verify(black_box(&rrsig_input), black_box(rrsig.as_ref())))
    });
    g.bench_function("ds_digest_sha256", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&ds_input)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
