//! Evidence bundles offline, from vectors recorded in the interop environment
//! (`tests/evidence_data/`: the unsigned bundles of match.test and bogus.test, and the
//! private root's DNSKEY; re-record with `CERTWATCH_RECORD_EVIDENCE=<dir>` and the
//! `evidence_interop` test). Time is injected: every check runs at the recording time.
//!
//! Each tampering fails with its own error: a changed field without re-signing, a wrong
//! key, a flipped TLSA byte, a dropped DS, an expired signature, a replay for another
//! domain, a false SPKI hash, a probe without its chain.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use certwatch::evidence::{
    EVIDENCE_SCHEMA_VERSION, EvidenceBundle, EvidenceError, MAX_BUNDLE_BYTES, canonical_json,
    key_id, verify, verify_signature,
};
use certwatch::{TrustAnchor, Verdict};
use certwatch_dns::{ChainError, DnssecChain, SigFault};
use proptest::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

const MATCH: &str = include_str!("evidence_data/match.json");
const BOGUS: &str = include_str!("evidence_data/bogus.json");
const ROOT_KEY: &str = include_str!("evidence_data/root.key");

fn anchor() -> TrustAnchor {
    TrustAnchor::DnskeyText(ROOT_KEY.to_owned())
}

fn bundle(text: &str) -> EvidenceBundle {
    serde_json::from_str(text).unwrap()
}

/// The recording time (the bundle's `created_at`).
fn recorded_at(b: &EvidenceBundle) -> u64 {
    let t = time::OffsetDateTime::parse(
        &b.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    u64::try_from(t.unix_timestamp()).unwrap()
}

fn key(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

/// The type and owner of one wire-form record (uncompressed owner name).
fn owner_and_type(rr_b64: &str) -> (String, u16) {
    let bytes = B64.decode(rr_b64).unwrap();
    let mut i = 0;
    let mut labels = Vec::new();
    while bytes[i] != 0 {
        let len = usize::from(bytes[i]);
        labels.push(String::from_utf8_lossy(&bytes[i + 1..=i + len]).to_ascii_lowercase());
        i += len + 1;
    }
    let rtype = u16::from_be_bytes([bytes[i + 1], bytes[i + 2]]);
    (format!("{}.", labels.join(".")), rtype)
}

const TLSA: u16 = 52;
const DS: u16 = 43;

fn edit_chains(b: &mut EvidenceBundle, mut f: impl FnMut(&mut Vec<String>)) {
    for c in &mut b.dnssec {
        let mut records = c.records.clone();
        f(&mut records);
        *c = DnssecChain::new(c.owner.clone(), c.rtype.clone(), records);
    }
}

#[test]
fn a_recorded_match_bundle_verifies_and_pins_every_key() {
    let b = bundle(MATCH);
    let now = recorded_at(&b);
    let k = key(1);
    let bytes = b.clone().sign(&k).unwrap();
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(), now).unwrap();
    assert_eq!(v.bundle.domain, "match.test");
    assert_eq!(v.bundle.verdict, Verdict::Match);
    assert_eq!(v.bundle.schema_version, EVIDENCE_SCHEMA_VERSION);
    let sig = v.bundle.signature.as_ref().unwrap();
    assert_eq!(sig.algorithm, "ed25519");
    assert_eq!(sig.key_id, key_id(k.public_key().as_ref()));
    assert_eq!(v.probes.len(), b.probes.len());
    assert!(
        v.probes
            .iter()
            .all(|p| p.in_tlsa && p.matched_record.is_some())
    );
    assert!(!v.any_key_outside_tlsa());
    // These vectors predate the SRV and address chains: those steps are not proven.
    assert!(v.probes.iter().all(|p| !p.srv_proven && !p.address_proven));
    assert!(v.others.is_empty());
    assert_eq!(
        v.tlsa.keys().cloned().collect::<Vec<_>>(),
        ["_5222._tcp.xmpp.match.test.", "_5270._tcp.xmpp.match.test."]
    );
    for rrset in v.tlsa.values() {
        assert_eq!(rrset.zones, [".", "test.", "match.test."]);
        assert!(rrset.valid_until > now);
    }
    v.expect_domain("Match.Test.").unwrap();
    // The signed document is the bundle plus its signature, and verifies as such.
    let back = verify_signature(&bytes, k.public_key().as_ref()).unwrap();
    let mut unsigned = back.clone();
    unsigned.signature = None;
    assert_eq!(unsigned, b);
}

#[test]
fn white_space_and_member_order_do_not_matter() {
    let b = bundle(MATCH);
    let k = key(2);
    let bytes = b.clone().sign(&k).unwrap();
    // Compact, with members re-ordered (serde_json's map sorts them).
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let compact = serde_json::to_vec(&v).unwrap();
    assert_ne!(compact, bytes);
    verify(
        &compact,
        k.public_key().as_ref(),
        &anchor(),
        recorded_at(&b),
    )
    .unwrap();
}

#[test]
fn a_changed_field_or_another_key_breaks_the_signature() {
    let b = bundle(MATCH);
    let now = recorded_at(&b);
    let k = key(3);
    let bytes = b.clone().sign(&k).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();

    // Another service key.
    let other = key(4);
    assert!(matches!(
        verify(&bytes, other.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::BadSignature { .. })
    ));
    // The verdict changed after signing.
    let changed = text.replacen("\"verdict\": \"match\"", "\"verdict\": \"mismatch\"", 1);
    assert_ne!(changed, text);
    assert!(matches!(
        verify(changed.as_bytes(), k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::BadSignature { .. })
    ));
    // Replayed for another domain: the domain is signed...
    let replayed = text.replacen(
        "\"domain\": \"match.test\"",
        "\"domain\": \"other.test\"",
        1,
    );
    match verify(replayed.as_bytes(), k.public_key().as_ref(), &anchor(), now) {
        Err(EvidenceError::BadSignature { domain, .. }) => assert_eq!(domain, "other.test"),
        other => panic!("{other:?}"),
    }
    // ...and a genuine bundle shown for another domain is refused by expect_domain.
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(), now).unwrap();
    assert_eq!(
        v.expect_domain("other.test"),
        Err(EvidenceError::DomainMismatch {
            expected: "other.test".into(),
            found: "match.test".into()
        })
    );
    // An unknown member added after signing is covered by the signature too.
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["note"] = "added".into();
    assert!(matches!(
        verify(
            &serde_json::to_vec(&value).unwrap(),
            k.public_key().as_ref(),
            &anchor(),
            now
        ),
        Err(EvidenceError::BadSignature { .. })
    ));
    // Without a signature.
    let unsigned = serde_json::to_vec(&b).unwrap();
    assert_eq!(
        verify(&unsigned, k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::Unsigned)
    );
}

#[test]
fn a_flipped_tlsa_byte_signed_by_the_service_fails_at_the_tlsa_rrsig() {
    let mut b = bundle(MATCH);
    let now = recorded_at(&b);
    edit_chains(&mut b, |records| {
        for r in records.iter_mut() {
            if owner_and_type(r).1 == TLSA {
                let mut bytes = B64.decode(&*r).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 0x01;
                *r = B64.encode(bytes);
                break;
            }
        }
    });
    let k = key(5);
    let bytes = b.sign(&k).unwrap();
    match verify(&bytes, k.public_key().as_ref(), &anchor(), now).unwrap_err() {
        EvidenceError::Dnssec { owner, source } => {
            assert_eq!(owner, "_5222._tcp.xmpp.match.test.");
            match *source {
                ChainError::Rrsig {
                    owner,
                    rtype,
                    fault: SigFault::BadSignature { signer, .. },
                } => {
                    assert_eq!(owner, "_5222._tcp.xmpp.match.test.");
                    assert_eq!(rtype, "TLSA");
                    assert_eq!(signer, "match.test.");
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dropped_ds_is_the_missing_link() {
    let mut b = bundle(MATCH);
    let now = recorded_at(&b);
    edit_chains(&mut b, |records| {
        records.retain(|r| owner_and_type(r) != ("match.test.".to_owned(), DS));
    });
    let k = key(6);
    let bytes = b.sign(&k).unwrap();
    match verify(&bytes, k.public_key().as_ref(), &anchor(), now).unwrap_err() {
        EvidenceError::Dnssec { source, .. } => assert_eq!(
            *source,
            ChainError::MissingRrset {
                owner: "match.test.".into(),
                rtype: "DS".into()
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_signatures_fail_and_a_foreign_anchor_is_named() {
    let b = bundle(MATCH);
    let now = recorded_at(&b);
    let k = key(7);
    let bytes = b.sign(&k).unwrap();
    match verify(&bytes, k.public_key().as_ref(), &anchor(), now + 90 * 86400).unwrap_err() {
        EvidenceError::Dnssec { source, .. } => assert!(
            matches!(
                *source,
                ChainError::Rrsig {
                    fault: SigFault::Expired { .. },
                    ..
                }
            ),
            "{source:?}"
        ),
        other => panic!("{other:?}"),
    }
    match verify(&bytes, k.public_key().as_ref(), &TrustAnchor::IanaRoot, now).unwrap_err() {
        EvidenceError::Dnssec { source, .. } => {
            assert!(matches!(*source, ChainError::AnchorMismatch { .. }))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn false_probe_claims_are_caught() {
    let b = bundle(MATCH);
    let now = recorded_at(&b);
    let k = key(8);

    // A stated SPKI hash that is not the leaf's.
    let mut lie = b.clone();
    lie.probes[0].spki_sha256 = "00".repeat(32);
    let bytes = lie.sign(&k).unwrap();
    assert!(matches!(
        verify(&bytes, k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::SpkiMismatch { .. })
    ));

    // A probe whose owner is not its endpoint's.
    let mut lie = b.clone();
    lie.probes[0].tlsa_owner = "_5270._tcp.xmpp.match.test.".into();
    let bytes = lie.sign(&k).unwrap();
    assert!(matches!(
        verify(&bytes, k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::OwnerMismatch { port: 5222, .. })
    ));

    // A probe without the chain of its owner.
    let mut lie = b.clone();
    lie.dnssec
        .retain(|c| c.owner != "_5270._tcp.xmpp.match.test.");
    let bytes = lie.sign(&k).unwrap();
    assert!(matches!(
        verify(&bytes, k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::MissingChain { owner }) if owner == "_5270._tcp.xmpp.match.test."
    ));

    // A chain of another record type.
    let mut lie = b.clone();
    lie.dnssec[0] = DnssecChain::new(
        lie.dnssec[0].owner.clone(),
        "MX",
        lie.dnssec[0].records.clone(),
    );
    let bytes = lie.sign(&k).unwrap();
    assert!(matches!(
        verify(&bytes, k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::Format(m)) if m.contains("MX, not TLSA")
    ));

    // A certificate that is not PEM.
    let mut lie = b.clone();
    lie.probes[0].chain_pem = "not a certificate".into();
    let bytes = lie.sign(&k).unwrap();
    assert!(matches!(
        verify(&bytes, k.public_key().as_ref(), &anchor(), now),
        Err(EvidenceError::Certificate { .. })
    ));

    // The other key's chain with its own (true) hash: verifies, and the verifier names the
    // record that this key matched, not the one of the first probe.
    let mut swapped = b.clone();
    let second = swapped
        .probes
        .iter()
        .position(|p| p.spki_sha256 != swapped.probes[0].spki_sha256)
        .unwrap();
    let spki = swapped.probes[second].spki_sha256.clone();
    swapped.probes[0].chain_pem = swapped.probes[second].chain_pem.clone();
    swapped.probes[0].spki_sha256 = spki.clone();
    let bytes = swapped.sign(&k).unwrap();
    let v = verify(&bytes, k.public_key().as_ref(), &anchor(), now).unwrap();
    assert_eq!(
        v.probes[0].matched_record.as_ref().map(|t| t.data_hex()),
        Some(spki)
    );
}

#[test]
fn the_recorded_bogus_bundle_names_its_broken_rrsig() {
    let b = bundle(BOGUS);
    assert_eq!(b.verdict, Verdict::Bogus);
    let now = recorded_at(&b);
    let k = key(9);
    let bytes = b.sign(&k).unwrap();
    match verify(&bytes, k.public_key().as_ref(), &anchor(), now).unwrap_err() {
        EvidenceError::Dnssec { owner, source } => {
            assert_eq!(owner, "_5222._tcp.xmpp.bogus.test.");
            assert!(matches!(
                *source,
                ChainError::Rrsig {
                    fault: SigFault::BadSignature { .. },
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_input_is_an_error() {
    let k = key(10);
    let pk = k.public_key().as_ref();
    assert!(matches!(
        verify_signature(b"{", pk),
        Err(EvidenceError::Format(_))
    ));
    assert!(matches!(
        verify_signature(b"[]", pk),
        Err(EvidenceError::Format(_))
    ));
    assert_eq!(
        verify_signature(b"{\"schema_version\": 2}", pk),
        Err(EvidenceError::UnsupportedVersion { found: 2 })
    );
    assert!(matches!(
        verify_signature(&vec![b' '; MAX_BUNDLE_BYTES + 1], pk),
        Err(EvidenceError::TooLarge { .. })
    ));
    assert_eq!(
        verify_signature(b"{}", &pk[..31]),
        Err(EvidenceError::BadPublicKey { len: 31 })
    );
    // Too many chains.
    let mut many = bundle(MATCH);
    let first = many.dnssec[0].clone();
    many.dnssec = vec![first; certwatch::evidence::MAX_BUNDLE_ITEMS + 1];
    let bytes = many.sign(&k).unwrap();
    assert!(matches!(
        verify(&bytes, pk, &anchor(), 1_800_000_000),
        Err(EvidenceError::Format(m)) if m.contains("DNSSEC chains")
    ));
    // A fractional number has no canonical form here.
    let mut v: serde_json::Value = serde_json::from_str(MATCH).unwrap();
    v["probes"][0]["port"] = serde_json::json!(5222.5);
    assert!(canonical_json(&v).is_err());
}

fn arb_bundle() -> impl Strategy<Value = EvidenceBundle> {
    (
        "[a-z0-9é.-]{1,30}",
        prop_oneof![
            Just(Verdict::Match),
            Just(Verdict::Mismatch),
            Just(Verdict::Bogus),
            Just(Verdict::Indeterminate)
        ],
        "\\PC{0,20}",
        proptest::collection::vec("\\PC{0,40}", 0..4),
    )
        .prop_map(|(domain, verdict, when, gaps)| {
            let mut b = bundle(MATCH);
            b.domain = domain;
            b.verdict = verdict;
            b.created_at = when;
            b.gaps = gaps;
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signed_bundles_round_trip(b in arb_bundle(), seed in any::<u8>()) {
        let k = key(seed);
        let bytes = b.clone().sign(&k).unwrap();
        let back = verify_signature(&bytes, k.public_key().as_ref()).unwrap();
        let mut unsigned = back.clone();
        unsigned.signature = None;
        prop_assert_eq!(&unsigned, &b);
        // The canonical bytes do not depend on how the JSON was laid out.
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let again: EvidenceBundle = serde_json::from_value(v).unwrap();
        prop_assert_eq!(again.signed_bytes().unwrap(), back.signed_bytes().unwrap());
    }

    #[test]
    fn any_flipped_byte_is_refused(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let k = key(11);
        let mut bytes = bundle(MATCH).sign(&k).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        // Either no longer a bundle, or no longer the signed one; JSON layout bytes (white
        // space) may change harmlessly, but then the content is the same.
        if let Ok(mut b) = verify_signature(&bytes, k.public_key().as_ref()) {
            b.signature = None;
            prop_assert_eq!(b, bundle(MATCH));
        }
    }
}
