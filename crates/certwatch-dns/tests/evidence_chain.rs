//! DNSSEC evidence chains against the in-process signed fixture: collection, offline
//! verification with DNSKEY and DS anchors, CNAMEs across zones, and one tampering test per
//! link (a changed TLSA byte, a dropped DS, an expired signature, a DS of another key, an
//! unsigned RRset, a foreign anchor), plus round trips of the wire encoding.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use certwatch_dns::{
    ChainCollector, ChainError, DnssecChain, ResolverConfig, RrType, SigFault, TrustAnchor,
    verify_chain,
};
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{RData, Record, RecordType};
use proptest::prelude::*;
use support::*;

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn zones() -> Vec<ZoneSpec> {
    vec![
        ZoneSpec {
            origin: name("good.test."),
            signing: Signing::Nsec,
            records: vec![
                a("xmpp.good.test.", [127, 0, 0, 1]),
                tlsa("_5222._tcp.xmpp.good.test.", K1),
                tlsa("_5222._tcp.xmpp.good.test.", K2),
                cname("_5269._tcp.xmpp.good.test.", "_5222._tcp.xmpp.other.test."),
            ],
            after_signing: vec![],
        },
        // The CNAME target lives in another signed zone.
        ZoneSpec {
            origin: name("other.test."),
            signing: Signing::Nsec3(0),
            records: vec![tlsa("_5222._tcp.xmpp.other.test.", K2)],
            after_signing: vec![],
        },
        ZoneSpec {
            origin: name("bds.test."),
            signing: Signing::WrongDs,
            records: vec![tlsa("_5222._tcp.xmpp.bds.test.", K1)],
            after_signing: vec![],
        },
        // A TLSA RRset added after signing: served without RRSIG.
        ZoneSpec {
            origin: name("tam.test."),
            signing: Signing::Nsec,
            records: vec![a("xmpp.tam.test.", [127, 0, 0, 1])],
            after_signing: vec![tlsa("_5222._tcp.xmpp.tam.test.", K1)],
        },
        ZoneSpec {
            origin: name("ins.test."),
            signing: Signing::Unsigned,
            records: vec![tlsa("_5222._tcp.xmpp.ins.test.", K1)],
            after_signing: vec![],
        },
    ]
}

fn collector(f: &Fixture) -> ChainCollector {
    let mut c = ResolverConfig::new(vec![f.addr]).with_timeout(Duration::from_secs(1), 1);
    c.lookup_deadline = Duration::from_secs(5);
    ChainCollector::new(c).unwrap()
}

fn anchor(f: &Fixture) -> TrustAnchor {
    TrustAnchor::DnskeyText(f.root_dnskey.clone())
}

/// Rebuilds a chain after `edit` changed its decoded records.
fn edited(chain: &DnssecChain, edit: impl FnOnce(&mut Vec<Record>)) -> DnssecChain {
    let mut records = chain.decode().unwrap();
    edit(&mut records);
    DnssecChain::from_records(chain.owner.clone(), chain.rtype.clone(), &records).unwrap()
}

fn count(chain: &DnssecChain, owner: &str, rtype: RecordType) -> usize {
    chain
        .decode()
        .unwrap()
        .iter()
        .filter(|r| r.name == name(owner) && r.record_type() == rtype)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_tlsa_rrset_verifies_offline_with_dnskey_and_ds_anchors() {
    let f = start(zones(), Duration::ZERO).await;
    let chain = collector(&f)
        .collect("_5222._tcp.xmpp.GOOD.test", RrType::Tlsa)
        .await
        .unwrap();
    assert_eq!(chain.owner, "_5222._tcp.xmpp.good.test.");
    assert_eq!(chain.rtype, "TLSA");
    // The RRset, and DNSKEY for good.test., test. and the root, and DS for the two cuts.
    assert_eq!(
        count(&chain, "_5222._tcp.xmpp.good.test.", RecordType::TLSA),
        2
    );
    for zone in ["good.test.", "test.", "."] {
        assert!(count(&chain, zone, RecordType::DNSKEY) >= 1, "{zone}");
    }
    for zone in ["good.test.", "test."] {
        assert_eq!(count(&chain, zone, RecordType::DS), 1, "{zone}");
    }
    // JSON round trip, then verification at the time of the check.
    let json = serde_json::to_string(&chain).unwrap();
    let back: DnssecChain = serde_json::from_str(&json).unwrap();
    assert_eq!(back, chain);

    let v = verify_chain(&back, &anchor(&f), now()).unwrap();
    assert_eq!(v.final_owner, "_5222._tcp.xmpp.good.test.");
    assert_eq!(v.tlsa.len(), 2);
    assert!(v.tlsa.iter().any(|t| t.data == K1));
    assert!(v.tlsa.iter().any(|t| t.data == K2));
    assert_eq!(v.zones, [".", "test.", "good.test."]);
    assert!(!v.wildcard);
    assert!(v.valid_until > now());

    // The same chain against the root's DS.
    let ds = TrustAnchor::DsText(f.root_ds.clone());
    assert_eq!(verify_chain(&chain, &ds, now()).unwrap().tlsa, v.tlsa);

    // Presentation lines for people.
    let text = chain.to_zone_text().unwrap();
    assert!(text.contains("TLSA"), "{text}");
    assert!(text.contains("DS"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cname_into_another_zone_is_followed_and_both_zones_verified() {
    let f = start(zones(), Duration::ZERO).await;
    let chain = collector(&f)
        .collect("_5269._tcp.xmpp.good.test.", RrType::Tlsa)
        .await
        .unwrap();
    let v = verify_chain(&chain, &anchor(&f), now()).unwrap();
    assert_eq!(v.owner, "_5269._tcp.xmpp.good.test.");
    assert_eq!(v.final_owner, "_5222._tcp.xmpp.other.test.");
    assert_eq!(v.cnames.len(), 1);
    assert_eq!(v.tlsa.len(), 1);
    assert_eq!(v.tlsa[0].data, K2);
    assert!(v.zones.contains(&"good.test.".to_owned()));
    assert!(v.zones.contains(&"other.test.".to_owned()));

    // A CNAME whose target was swapped no longer verifies: its RRSIG names the CNAME.
    let swapped = edited(&chain, |rs| {
        for r in rs.iter_mut() {
            if let RData::CNAME(t) = &mut r.data {
                t.0 = name("_5222._tcp.xmpp.good.test.");
            }
        }
    });
    match verify_chain(&swapped, &anchor(&f), now()) {
        Err(ChainError::Rrsig {
            owner,
            rtype,
            fault: SigFault::BadSignature { .. },
        }) => {
            assert_eq!(owner, "_5269._tcp.xmpp.good.test.");
            assert_eq!(rtype, "CNAME");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampered_link_is_named() {
    let f = start(zones(), Duration::ZERO).await;
    let c = collector(&f);
    let chain = c
        .collect("_5222._tcp.xmpp.good.test.", RrType::Tlsa)
        .await
        .unwrap();
    let anchor = anchor(&f);

    // A flipped TLSA byte: the RRSIG over the TLSA RRset fails.
    let flipped = edited(&chain, |rs| {
        let r = rs
            .iter_mut()
            .find(|r| r.record_type() == RecordType::TLSA)
            .unwrap();
        if let RData::TLSA(t) = &mut r.data {
            t.cert_data[0] ^= 1;
        }
    });
    match verify_chain(&flipped, &anchor, now()).unwrap_err() {
        ChainError::Rrsig {
            owner,
            rtype,
            fault: SigFault::BadSignature { signer, .. },
        } => {
            assert_eq!(owner, "_5222._tcp.xmpp.good.test.");
            assert_eq!(rtype, "TLSA");
            assert_eq!(signer, "good.test.");
        }
        other => panic!("{other:?}"),
    }

    // An extra TLSA record (the attacker's key) breaks the same signature.
    let extra = edited(&chain, |rs| {
        rs.push(tlsa("_5222._tcp.xmpp.good.test.", [0x99; 32]));
    });
    assert!(matches!(
        verify_chain(&extra, &anchor, now()),
        Err(ChainError::Rrsig {
            fault: SigFault::BadSignature { .. },
            ..
        })
    ));

    // A dropped DS: the link from test. to good.test. is missing.
    let no_ds = edited(&chain, |rs| {
        rs.retain(|r| !(r.name == name("good.test.") && r.record_type() == RecordType::DS));
    });
    assert_eq!(
        verify_chain(&no_ds, &anchor, now()).unwrap_err(),
        ChainError::MissingRrset {
            owner: "good.test.".into(),
            rtype: "DS".into()
        }
    );

    // A dropped RRSIG over the TLSA RRset.
    let unsigned = edited(&chain, |rs| {
        rs.retain(|r| {
            !matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(s))
                if s.input().type_covered == RecordType::TLSA)
        });
    });
    assert!(matches!(
        verify_chain(&unsigned, &anchor, now()),
        Err(ChainError::Rrsig {
            fault: SigFault::Missing,
            ..
        })
    ));

    // Verified a year later, the signatures have expired.
    let later = now() + 365 * 86400;
    assert!(matches!(
        verify_chain(&chain, &anchor, later).unwrap_err(),
        ChainError::Rrsig {
            fault: SigFault::Expired { .. },
            ..
        }
    ));
    // And before signing, they were not yet valid.
    assert!(matches!(
        verify_chain(&chain, &anchor, now() - 365 * 86400).unwrap_err(),
        ChainError::Rrsig {
            fault: SigFault::NotYetValid { .. },
            ..
        }
    ));

    // Another root key is no anchor for this chain.
    let other = start(vec![], Duration::ZERO).await;
    assert!(matches!(
        verify_chain(&chain, &TrustAnchor::DnskeyText(other.root_dnskey.clone()), now()),
        Err(ChainError::AnchorMismatch { zone, .. }) if zone == "."
    ));
    assert!(matches!(
        verify_chain(&chain, &TrustAnchor::IanaRoot, now()),
        Err(ChainError::AnchorMismatch { .. })
    ));

    // A chain for another name does not prove this one.
    let mut renamed = chain.clone();
    renamed.owner = "_5269._tcp.xmpp.good.test.".into();
    assert!(matches!(
        verify_chain(&renamed, &anchor, now()),
        Err(ChainError::MissingRrset { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_zones_fail_at_their_link() {
    let f = start(zones(), Duration::ZERO).await;
    let c = collector(&f);

    // DS of another key in the parent.
    let chain = c
        .collect("_5222._tcp.xmpp.bds.test.", RrType::Tlsa)
        .await
        .unwrap();
    match verify_chain(&chain, &anchor(&f), now()).unwrap_err() {
        ChainError::DsMismatch { zone, .. } => assert_eq!(zone, "bds.test."),
        other => panic!("{other:?}"),
    }

    // An RRset added after signing has no RRSIG.
    let chain = c
        .collect("_5222._tcp.xmpp.tam.test.", RrType::Tlsa)
        .await
        .unwrap();
    assert!(matches!(
        verify_chain(&chain, &anchor(&f), now()).unwrap_err(),
        ChainError::Rrsig {
            fault: SigFault::Missing,
            owner,
            ..
        } if owner == "_5222._tcp.xmpp.tam.test."
    ));

    // An unsigned zone: nothing signs the RRset.
    let chain = c
        .collect("_5222._tcp.xmpp.ins.test.", RrType::Tlsa)
        .await
        .unwrap();
    assert!(verify_chain(&chain, &anchor(&f), now()).is_err());

    // A name without TLSA records has no chain to collect.
    let err = c
        .collect("_5222._tcp.nothing.good.test.", RrType::Tlsa)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::MissingRrset { .. } | ChainError::Query { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_within_the_deadline() {
    let (_udp, _tcp, addr) = bind_pair().await;
    let mut c = ResolverConfig::new(vec![addr]).with_timeout(Duration::from_millis(200), 0);
    c.lookup_deadline = Duration::from_millis(800);
    let started = std::time::Instant::now();
    let err = ChainCollector::new(c)
        .unwrap()
        .collect("_5222._tcp.xmpp.good.test.", RrType::Tlsa)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err, ChainError::Timeout { .. } | ChainError::Query { .. }),
        "{err:?}"
    );
}

#[test]
fn hostile_chains_are_errors_not_panics() {
    let anchor = TrustAnchor::IanaRoot;
    for (owner, rtype, records) in [
        ("", "TLSA", vec![]),
        ("x.", "NOPE", vec![]),
        ("x.", "RRSIG", vec![]),
        ("x.", "TLSA", vec!["%%%".to_owned()]),
        ("x.", "TLSA", vec![B64.encode([0u8; 3])]),
        ("x.", "TLSA", vec![B64.encode([0xc0, 0x00, 0, 52, 0, 1])]),
    ] {
        let chain = DnssecChain::new(owner, rtype, records);
        assert!(verify_chain(&chain, &anchor, 1_800_000_000).is_err());
    }
}

fn arb_record() -> impl Strategy<Value = Record> {
    let label = "[a-z0-9]{1,12}";
    (
        proptest::collection::vec(label, 1..4),
        any::<u32>(),
        prop_oneof![
            any::<[u8; 4]>().prop_map(|ip| RData::A(hickory_proto::rr::rdata::A::new(
                ip[0], ip[1], ip[2], ip[3]
            ))),
            (
                0u8..4,
                0u8..2,
                0u8..3,
                proptest::collection::vec(any::<u8>(), 1..80)
            )
                .prop_map(|(u, s, m, d)| RData::TLSA(
                    hickory_proto::rr::rdata::TLSA::new(u.into(), s.into(), m.into(), d)
                )),
        ],
    )
        .prop_map(|(labels, ttl, data)| {
            Record::from_rdata(name(&format!("{}.", labels.join("."))), ttl, data)
        })
}

proptest! {
    #[test]
    fn wire_encoding_round_trips(records in proptest::collection::vec(arb_record(), 0..20)) {
        let chain = DnssecChain::from_records("x.test.", "TLSA", &records).unwrap();
        prop_assert_eq!(chain.decode().unwrap(), records);
        let json = serde_json::to_vec(&chain).unwrap();
        let back: DnssecChain = serde_json::from_slice(&json).unwrap();
        prop_assert_eq!(back, chain);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let chain = DnssecChain::new("x.test.", "TLSA", vec![B64.encode(&bytes)]);
        let _ = chain.decode();
        prop_assert!(verify_chain(&chain, &TrustAnchor::IanaRoot, 1_800_000_000).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_below_the_root_starts_the_walk_there() {
    let f = start(zones(), Duration::ZERO).await;
    let chain = collector(&f)
        .collect("_5222._tcp.xmpp.good.test.", RrType::Tlsa)
        .await
        .unwrap();
    // The DS of good.test. (as published in test.) as the only anchor.
    let ds = chain
        .decode()
        .unwrap()
        .into_iter()
        .find(|r| r.name == name("good.test.") && r.record_type() == RecordType::DS)
        .unwrap();
    let RData::DNSSEC(DNSSECRData::DS(d)) = &ds.data else {
        unreachable!()
    };
    let text = format!(
        "good.test. IN DS {} {} {} {}",
        d.key_tag(),
        u8::from(d.algorithm()),
        u8::from(d.digest_type()),
        d.digest()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    );
    let v = verify_chain(&chain, &TrustAnchor::DsText(text.clone()), now()).unwrap();
    assert_eq!(v.zones, ["good.test."]);
    assert_eq!(v.tlsa.len(), 2);
    // The same anchor does not cover a name outside good.test.: the walk reaches the root.
    let other = collector(&f)
        .collect("_5222._tcp.xmpp.other.test.", RrType::Tlsa)
        .await
        .unwrap();
    assert!(matches!(
        verify_chain(&other, &TrustAnchor::DsText(text), now()),
        Err(ChainError::NotUnderAnchor { zone, .. }) if zone == "."
    ));
}
