//! Evidence bundles end to end against the loopback interop environment: check a domain,
//! gather its evidence (DNSSEC chains from unbound with CD=1, fresh direct probes of
//! Prosody), sign it with a service key, and verify it offline against the private root.
//!
//! `CERTWATCH_INTEROP=/tmp/certwatch-interop/env.json cargo test -p certwatch --no-default-features --features interop --test evidence_interop`
#![cfg(feature = "interop")]

use certwatch::evidence::{EvidenceError, gather, verify};
use certwatch::{CheckOptions, ResolverConfig, Service, Transport, TrustAnchor, Verdict};
use certwatch_dns::{ChainError, SigFault};
use certwatch_testkit::Interop;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn anchor(env: &Interop) -> TrustAnchor {
    TrustAnchor::DnskeyText(std::fs::read_to_string(env.path("dns.trust_anchor").unwrap()).unwrap())
}

fn options(env: &Interop) -> CheckOptions {
    let resolver = ResolverConfig::from_servers(&[env.str("dns.unbound").unwrap()])
        .unwrap()
        .with_trust_anchor(anchor(env));
    CheckOptions::new(Transport::Direct, resolver)
        .with_private_targets(true)
        .with_services(vec![Service::C2sStarttls, Service::S2sDirect])
}

/// With `CERTWATCH_RECORD_EVIDENCE=<dir>`, writes the unsigned bundle there as
/// `<name>.json`: how the vectors of `tests/evidence_data/` were recorded.
fn record(name: &str, bundle: &certwatch::evidence::EvidenceBundle) {
    if let Some(dir) = std::env::var_os("CERTWATCH_RECORD_EVIDENCE") {
        let path = std::path::Path::new(&dir).join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(bundle).unwrap()).unwrap();
    }
}

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_bundle_verifies_offline_and_every_key_is_pinned() {
    let env = Interop::require();
    let options = options(&env);
    let report = certwatch::check("match.test", &options).await.unwrap();
    assert_eq!(report.verdict, Verdict::Match);
    let bundle = gather(&options, &report).await;
    assert!(bundle.gaps.is_empty(), "{:?}", bundle.gaps);
    let types = |t: &str| bundle.dnssec.iter().filter(|c| c.rtype == t).count();
    assert_eq!(types("TLSA"), 2, "_5222 and _5270 owners");
    assert_eq!(types("SRV"), 2, "_xmpp-client and _xmpps-server");
    assert_eq!(types("A"), 1, "xmpp.match.test");
    // Two services, EC and RSA keys, on 127.0.0.1 (and ::1 when the host has AAAA).
    assert!(bundle.probes.len() >= 4, "{:?}", bundle.probes.len());
    record("match", &bundle);
    let k = key();
    let bytes = bundle.sign(&k).unwrap();
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(&env), now()).unwrap();
    v.expect_domain("MATCH.test.").unwrap();
    assert!(!v.any_key_outside_tlsa());
    let ec = env.str("pki.keys.host-ec.spki_sha256").unwrap();
    let rsa = env.str("pki.keys.host-rsa.spki_sha256").unwrap();
    assert_eq!(v.others.len(), 3, "{:?}", v.others.keys());
    for p in &v.probes {
        assert!(p.in_tlsa);
        // The domain's SRV RRset names the target, whose A RRset holds the address.
        assert!(p.srv_proven && p.address_proven, "{p:?}");
        assert!(p.probe.spki_sha256 == ec || p.probe.spki_sha256 == rsa);
        assert_eq!(p.probe.vantage.to_string(), "direct");
        assert!(p.probe.chain_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
    // A service that signed the same observations for another domain would not have the
    // SRV proof: the targets are not shown to serve it.
    let mut relabelled =
        certwatch::evidence::verify_signature(&bytes, k.public_key().as_ref()).unwrap();
    relabelled.domain = "cross.test".into();
    relabelled.signature = None;
    let relabelled = relabelled.sign(&k).unwrap();
    let w = verify(&relabelled, k.public_key().as_ref(), &anchor(&env), now()).unwrap();
    assert!(
        w.probes
            .iter()
            .all(|p| p.in_tlsa && !p.srv_proven && p.address_proven)
    );
    // The same bytes are no evidence for another domain.
    assert!(matches!(
        v.expect_domain("mismatch.test"),
        Err(EvidenceError::DomainMismatch { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatch_bundle_shows_the_key_outside_the_validated_set() {
    let env = Interop::require();
    let options = options(&env);
    let report = certwatch::check("mismatch.test", &options).await.unwrap();
    assert_eq!(report.verdict, Verdict::Mismatch);
    let k = key();
    let bytes = gather(&options, &report).await.sign(&k).unwrap();
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(&env), now()).unwrap();
    assert_eq!(v.bundle.verdict, Verdict::Mismatch);
    assert!(!v.probes.is_empty());
    assert!(v.probes.iter().all(|p| !p.in_tlsa));
    // No presented key is among the validated `3 1 1` records of its owner.
    for p in &v.probes {
        let rrset = &v.tlsa[&p.probe.tlsa_owner];
        assert!(!rrset.tlsa.is_empty());
        assert!(
            rrset
                .tlsa
                .iter()
                .all(|t| certwatch::core::Tlsa::data_hex(t) != p.probe.spki_sha256)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_bundle_names_the_broken_signature() {
    let env = Interop::require();
    let options = options(&env).with_services(vec![Service::C2sStarttls]);
    let report = certwatch::check("bogus.test", &options).await.unwrap();
    assert_eq!(report.verdict, Verdict::Bogus);
    let k = key();
    let bundle = gather(&options, &report).await;
    record("bogus", &bundle);
    let bytes = bundle.sign(&k).unwrap();
    match verify(&bytes, k.public_key().as_ref(), &anchor(&env), now()).unwrap_err() {
        EvidenceError::Dnssec { owner, source } => {
            assert_eq!(owner, "_5222._tcp.xmpp.bogus.test.");
            match *source {
                ChainError::Rrsig {
                    rtype,
                    fault: SigFault::BadSignature { .. },
                    ..
                } => assert_eq!(rtype, "TLSA"),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // The signature alone still holds: the bundle can be read and shown.
    let b = certwatch::evidence::verify_signature(&bytes, k.public_key().as_ref()).unwrap();
    assert_eq!(b.verdict, Verdict::Bogus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_through_tor_record_their_vantage() {
    let env = Interop::require();
    let proxy = env.socket_addr("tor.socks").unwrap();
    let mut options = options(&env).with_services(vec![Service::C2sStarttls]);
    options.transport = Transport::Socks { proxy };
    let report = certwatch::check("match.test", &options).await.unwrap();
    let bundle = gather(&options, &report).await;
    let k = key();
    let bytes = bundle.sign(&k).unwrap();
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(&env), now()).unwrap();
    // Circuits fail now and then (REFERENCE §4): a failed probe is a gap, not a lie.
    assert!(
        !v.probes.is_empty() || !v.bundle.gaps.is_empty(),
        "{:?}",
        v.bundle
    );
    for p in &v.probes {
        assert_eq!(p.probe.vantage.to_string(), "socks");
        assert!(p.probe.exit.is_none());
        assert!(p.in_tlsa);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_of_the_check_itself_make_the_evidence() {
    let env = Interop::require();
    let options = options(&env);
    let checker = certwatch::Checker::new(options.clone()).unwrap();
    let (report, probes) = checker.check_with_probes("mismatch.test").await.unwrap();
    assert_eq!(report.verdict, Verdict::Mismatch);
    assert!(!probes.is_empty());
    let bundle = certwatch::evidence::gather_with_probes(&options, &report, &probes).await;
    assert!(bundle.gaps.is_empty(), "{:?}", bundle.gaps);
    assert_eq!(bundle.probes.len(), probes.len());
    let k = key();
    let bytes = bundle.sign(&k).unwrap();
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(&env), now()).unwrap();
    assert!(v.probes.iter().all(|p| !p.in_tlsa));
    for (p, seen) in v.probes.iter().zip(&probes) {
        assert_eq!(p.probe.probed_at, report.checked_at);
        assert_eq!(
            Some(p.probe.spki_sha256.clone()),
            seen.leaf_spki_sha256_hex()
        );
        // The key the check reported for this target is the one in the bundle.
        assert!(
            report
                .endpoints
                .iter()
                .any(|e| e.address == Some(p.probe.address)
                    && e.port == p.probe.port
                    && e.presented_spki_sha256.as_deref() == Some(p.probe.spki_sha256.as_str()))
        );
    }
}
