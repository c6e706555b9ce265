//! Evidence chains of the interop environment's signed scenarios, collected from nsd (an
//! authoritative, non-validating server: the raw records) and from the validating unbound
//! (CD=1 passes bogus data through), then verified offline against the environment's private
//! root trust anchor (DNSKEY file and DS line).
#![cfg(feature = "interop")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certwatch_dns::{ChainCollector, ChainError, DnssecChain, RrType, SigFault, TrustAnchor};
use certwatch_dns::{ResolverConfig, verify_chain};
use certwatch_testkit::Interop;
use hickory_proto::rr::{Record, RecordType};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Env {
    env: Interop,
    anchor: TrustAnchor,
}

fn env() -> Env {
    let env = Interop::require();
    let path = env.path("dns.trust_anchor").expect("dns.trust_anchor");
    let text = std::fs::read_to_string(&path).expect("read the root key");
    Env {
        env,
        anchor: TrustAnchor::DnskeyText(text),
    }
}

fn collector(e: &Env, server: &str) -> ChainCollector {
    let addr = e.env.socket_addr(server).expect("server address");
    let mut c = ResolverConfig::new(vec![addr]).with_timeout(Duration::from_millis(800), 1);
    c.lookup_deadline = Duration::from_secs(6);
    ChainCollector::new(c).expect("collector")
}

fn spki(e: &Env, key: &str) -> Vec<u8> {
    let hex = e
        .env
        .str(&format!("pki.keys.{key}.spki_sha256"))
        .expect("spki");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

async fn chain(e: &Env, server: &str, owner: &str) -> DnssecChain {
    collector(e, server)
        .collect(owner, RrType::Tlsa)
        .await
        .unwrap_or_else(|err| panic!("{server} {owner}: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_match_scenario_verifies_offline_from_both_servers() {
    let e = env();
    let ds = TrustAnchor::DsText(e.env.str("dns.trust_anchor_ds").unwrap().to_owned());
    for server in ["dns.nsd", "dns.unbound"] {
        let c = chain(&e, server, "_5222._tcp.xmpp.match.test").await;
        for anchor in [&e.anchor, &ds] {
            let v = verify_chain(&c, anchor, now()).unwrap_or_else(|err| panic!("{server}: {err}"));
            assert_eq!(v.final_owner, "_5222._tcp.xmpp.match.test.");
            assert_eq!(v.zones, [".", "test.", "match.test."]);
            let mut got: Vec<Vec<u8>> = v.tlsa.iter().map(|t| t.data.clone()).collect();
            got.sort();
            let mut want = vec![spki(&e, "host-ec"), spki(&e, "host-rsa")];
            want.sort();
            assert_eq!(got, want, "{server}");
            // The environment signs for about 30 days.
            assert!(v.valid_until > now() && v.valid_until < now() + 32 * 86400);
        }
        // The same evidence does not verify against the IANA root.
        assert!(matches!(
            verify_chain(&c, &TrustAnchor::IanaRoot, now()),
            Err(ChainError::AnchorMismatch { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bogus_scenarios_fail_at_the_broken_link() {
    let e = env();
    for server in ["dns.nsd", "dns.unbound"] {
        // TLSA data changed after signing.
        let c = chain(&e, server, "_5222._tcp.xmpp.bogus.test").await;
        match verify_chain(&c, &e.anchor, now()).unwrap_err() {
            ChainError::Rrsig {
                owner,
                rtype,
                fault: SigFault::BadSignature { signer, .. },
            } => {
                assert_eq!(owner, "_5222._tcp.xmpp.bogus.test.");
                assert_eq!(rtype, "TLSA");
                assert_eq!(signer, "bogus.test.");
            }
            other => panic!("{server}: {other:?}"),
        }
        // Every signature of the zone expired a day ago.
        let c = chain(&e, server, "_5222._tcp.xmpp.expired.test").await;
        let err = verify_chain(&c, &e.anchor, now()).unwrap_err();
        assert!(
            matches!(&err, ChainError::Rrsig { fault: SigFault::Expired { signer, .. }, .. } if signer == "expired.test."),
            "{server}: {err:?}"
        );
        // The DS in test. names another key.
        let c = chain(&e, server, "_5222._tcp.xmpp.bogus-ds.test").await;
        assert_eq!(
            verify_chain(&c, &e.anchor, now()).unwrap_err(),
            ChainError::DsMismatch {
                zone: "bogus-ds.test.".into(),
                ds_tags: match verify_chain(&c, &e.anchor, now()).unwrap_err() {
                    ChainError::DsMismatch { ds_tags, .. } => ds_tags,
                    _ => unreachable!(),
                },
                key_tags: e
                    .env
                    .u64("dns.scenarios.bogus-ds.zone.key_tag")
                    .unwrap()
                    .to_string(),
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cnames_wildcards_and_large_rrsets() {
    let e = env();
    let c = chain(&e, "dns.nsd", "_5222._tcp.xmpp.cname.test").await;
    let v = verify_chain(&c, &e.anchor, now()).unwrap();
    assert_eq!(v.final_owner, "_5222._tcp.xmpp.hosts.test.");
    assert_eq!(v.cnames.len(), 1);
    assert!(v.zones.contains(&"cname.test.".to_owned()));
    assert!(v.zones.contains(&"hosts.test.".to_owned()));
    assert_eq!(v.tlsa.len(), 2);

    for (scenario, denial) in [
        ("wildcard", RecordType::NSEC),
        ("wildcard3", RecordType::NSEC3),
    ] {
        for server in ["dns.nsd", "dns.unbound"] {
            let c = chain(&e, server, &format!("_5222._tcp.xmpp.{scenario}.test")).await;
            let v = verify_chain(&c, &e.anchor, now())
                .unwrap_or_else(|err| panic!("{scenario} {server}: {err}"));
            assert!(v.wildcard, "{scenario}");
            assert_eq!(v.tlsa.len(), 2);
            // The proof that no closer name exists came along; without it, no.
            let records = c.decode().unwrap();
            assert!(
                records.iter().any(|r| r.record_type() == denial),
                "{scenario} {server}"
            );
            let stripped: Vec<Record> = records
                .into_iter()
                .filter(|r| r.record_type() != denial)
                .collect();
            let stripped = DnssecChain::from_records(c.owner.clone(), "TLSA", &stripped).unwrap();
            assert!(
                matches!(
                    verify_chain(&stripped, &e.anchor, now()),
                    Err(ChainError::WildcardUnproven { ref next_closer, .. })
                        if next_closer == &format!("_5222._tcp.xmpp.{scenario}.test.")
                ),
                "{scenario} {server}"
            );
        }
    }

    // 42 records, about 3.5 kB: fetched over TCP after truncation.
    let c = chain(&e, "dns.nsd", "_5222._tcp.xmpp.large.test").await;
    let v = verify_chain(&c, &e.anchor, now()).unwrap();
    assert_eq!(v.tlsa.len(), 42);

    // An unsigned zone has no chain that verifies.
    let c = collector(&e, "dns.nsd")
        .collect("_5222._tcp.xmpp.insecure.test", RrType::Tlsa)
        .await;
    match c {
        Ok(c) => assert!(verify_chain(&c, &e.anchor, now()).is_err()),
        Err(err) => assert!(matches!(err, ChainError::Query { .. }), "{err:?}"),
    }
}
