//! The table of matching and verdict cases (REFERENCE §2 and §3), over a test PKI made with
//! rcgen: DANE-EE, DANE-TA with good and forged chains, names, unusable and mixed sets, PKIX
//! usages, DNSSEC states, probe failures, aggregation and exit codes.

mod common;

use std::net::IpAddr;

use certwatch_core::{
    DnssecStatus, DomainVerdict, FailureKind, MatchPolicy, ProbeFailure, ProbeOutcome, Reason,
    Tlsa, TrustAnchor, Verdict, WarningCode, judge_endpoint, judge_target,
};
use common::*;
use rustls_pki_types::CertificateDer;

struct World {
    root: Ca,
    inter: Ca,
    leaf: Vec<u8>,
    other_leaf: Vec<u8>,
    wrong_name_leaf: Vec<u8>,
    target_only_leaf: Vec<u8>,
    domain_only_leaf: Vec<u8>,
    expired_leaf: Vec<u8>,
    /// A leaf claiming the intermediate as issuer, signed by an attacker's look-alike key.
    forged_leaf: Vec<u8>,
    /// The attacker's own genuine leaf (for attacker.example) from the same intermediate...
    attacker_leaf: Vec<u8>,
    /// ...whose key signs a leaf for our names: not a CA, so this must never validate.
    leaf_signed_by_leaf: Vec<u8>,
    root_anchor: Vec<TrustAnchor<'static>>,
}

fn world() -> World {
    let root = root("certwatch test root");
    let inter = intermediate("certwatch test intermediate", &root);
    let leaf = leaf(&[TARGET, DOMAIN], &inter);
    let other_leaf = common::leaf(&[TARGET, DOMAIN], &inter);
    let wrong_name_leaf = common::leaf(&["other.example"], &inter);
    let target_only_leaf = common::leaf(&[TARGET], &inter);
    let domain_only_leaf = common::leaf(&[DOMAIN], &inter);
    let (expired_leaf, _) = leaf_with(&[TARGET, DOMAIN], &inter.issuer, true);
    let forged_leaf = leaf_with(
        &[TARGET, DOMAIN],
        &impostor("certwatch test intermediate"),
        false,
    )
    .0;
    let (attacker_leaf, attacker_key) = leaf_with(&["attacker.example"], &inter.issuer, false);
    let leaf_signed_by_leaf = leaf_with(
        &[TARGET, DOMAIN],
        &leaf_as_issuer("attacker.example", attacker_key),
        false,
    )
    .0;
    let root_der = CertificateDer::from(root.der.clone());
    let root_anchor = vec![
        webpki::anchor_from_trusted_cert(&root_der)
            .unwrap()
            .to_owned(),
    ];
    World {
        root,
        inter,
        leaf,
        other_leaf,
        wrong_name_leaf,
        target_only_leaf,
        domain_only_leaf,
        expired_leaf,
        forged_leaf,
        attacker_leaf,
        leaf_signed_by_leaf,
        root_anchor,
    }
}

fn bad(record: &str) -> Tlsa {
    record.parse().unwrap()
}

struct Case {
    name: &'static str,
    records: Vec<Tlsa>,
    outcome: ProbeOutcome,
    /// Tweak the endpoint's DNS facts.
    dns: fn(&mut certwatch_core::Endpoint),
    /// Use the test root for PKIX (else webpki-roots).
    test_roots: bool,
    domain: &'static str,
    target: &'static str,
    address: &'static str,
    verdict: Verdict,
    reason: Reason,
    matched: Option<Tlsa>,
    exit: u8,
}

fn secure(_: &mut certwatch_core::Endpoint) {}

#[allow(clippy::too_many_lines)]
fn cases(w: &World) -> Vec<Case> {
    let c = |name, records, outcome, verdict, reason, matched: Option<Tlsa>, exit| Case {
        name,
        records,
        outcome,
        dns: secure,
        test_roots: false,
        domain: DOMAIN,
        target: TARGET,
        address: "192.0.2.1",
        verdict,
        reason,
        matched,
        exit,
    };
    let leaf = &w.leaf[..];
    let inter = &w.inter.der[..];
    let root = &w.root.der[..];
    let full_chain = presented(&[leaf, inter, root], true);
    let chain = presented(&[leaf, inter], true);
    let ee = rec(3, 1, 1, leaf);
    let ta_inter = rec(2, 0, 1, inter);
    let failed = |kind| ProbeOutcome::Failed(ProbeFailure::new(kind, "test", "test failure"));
    vec![
        // DANE-EE: the leaf only, any selector and matching type.
        c(
            "3 1 1 on the leaf",
            vec![ee.clone()],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ee.clone()),
            0,
        ),
        c(
            "3 1 2 on the leaf",
            vec![rec(3, 1, 2, leaf)],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(3, 1, 2, leaf)),
            0,
        ),
        c(
            "3 1 0 on the leaf",
            vec![rec(3, 1, 0, leaf)],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(3, 1, 0, leaf)),
            0,
        ),
        c(
            "3 0 1 on the leaf",
            vec![rec(3, 0, 1, leaf)],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(3, 0, 1, leaf)),
            0,
        ),
        c(
            "3 0 0 and 3 0 2 on the leaf",
            vec![rec(3, 0, 0, leaf), rec(3, 0, 2, leaf)],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(3, 0, 0, leaf)),
            0,
        ),
        c(
            "3 1 1 of another key",
            vec![rec(3, 1, 1, &w.other_leaf)],
            chain.clone(),
            Verdict::Mismatch,
            Reason::KeyNotInTlsa,
            None,
            2,
        ),
        c(
            "3 1 1 on the intermediate does not match the leaf",
            vec![rec(3, 1, 1, inter)],
            chain.clone(),
            Verdict::Mismatch,
            Reason::KeyNotInTlsa,
            None,
            2,
        ),
        c(
            "genuine chain replayed without the key",
            vec![ee.clone()],
            presented(&[leaf, inter], false),
            Verdict::Mismatch,
            Reason::UnprovenKey,
            None,
            2,
        ),
        c(
            "DANE-EE ignores names",
            vec![rec(3, 1, 1, &w.wrong_name_leaf)],
            presented(&[&w.wrong_name_leaf], true),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(3, 1, 1, &w.wrong_name_leaf)),
            0,
        ),
        c(
            "DANE-EE ignores dates",
            vec![rec(3, 1, 1, &w.expired_leaf)],
            presented(&[&w.expired_leaf], true),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(3, 1, 1, &w.expired_leaf)),
            0,
        ),
        c(
            "next key published: the new key matches",
            vec![rec(3, 1, 1, &w.other_leaf), ee.clone()],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ee.clone()),
            0,
        ),
        c(
            "an empty chain never matches",
            vec![ee.clone()],
            presented(&[], true),
            Verdict::Mismatch,
            Reason::KeyNotInTlsa,
            None,
            2,
        ),
        // DANE-TA: good chains.
        c(
            "2 0 1 on the intermediate",
            vec![ta_inter.clone()],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ta_inter.clone()),
            0,
        ),
        c(
            "2 1 1 on the presented root",
            vec![rec(2, 1, 1, root)],
            full_chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(2, 1, 1, root)),
            0,
        ),
        c(
            "2 1 0 on the root's key, root not presented",
            vec![rec(2, 1, 0, root)],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(2, 1, 0, root)),
            0,
        ),
        c(
            "2 1 0 on the intermediate's key, leaf alone",
            vec![rec(2, 1, 0, inter)],
            presented(&[leaf], true),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(2, 1, 0, inter)),
            0,
        ),
        c(
            "DANE-TA: leaf valid for the SRV target only",
            vec![ta_inter.clone()],
            presented(&[&w.target_only_leaf, inter], true),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ta_inter.clone()),
            0,
        ),
        c(
            "DANE-TA: leaf valid for the service domain only",
            vec![ta_inter.clone()],
            presented(&[&w.domain_only_leaf, inter], true),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ta_inter.clone()),
            0,
        ),
        c(
            "2 1 1 on the root, chain out of order",
            vec![rec(2, 1, 1, root)],
            presented(&[leaf, root, inter], true),
            Verdict::Match,
            Reason::KeyMatched,
            Some(rec(2, 1, 1, root)),
            0,
        ),
        // DANE-TA: what an attacker can present.
        c(
            "2 1 1 on a root that is not presented",
            vec![rec(2, 1, 1, root)],
            chain.clone(),
            Verdict::Mismatch,
            Reason::KeyNotInTlsa,
            None,
            2,
        ),
        c(
            "forged leaf with the genuine intermediate appended",
            vec![ta_inter.clone()],
            presented(&[&w.forged_leaf, inter], true),
            Verdict::Mismatch,
            Reason::ChainNotToAnchor,
            None,
            2,
        ),
        c(
            "forged leaf under a 2 1 0 key",
            vec![rec(2, 1, 0, inter)],
            presented(&[&w.forged_leaf], true),
            Verdict::Mismatch,
            Reason::ChainNotToAnchor,
            None,
            2,
        ),
        c(
            "leaf signed by a non-CA leaf of the pinned CA",
            vec![ta_inter.clone()],
            presented(&[&w.leaf_signed_by_leaf, &w.attacker_leaf, inter], true),
            Verdict::Mismatch,
            Reason::ChainNotToAnchor,
            None,
            2,
        ),
        c(
            "DANE-TA: name mismatch",
            vec![ta_inter.clone()],
            presented(&[&w.wrong_name_leaf, inter], true),
            Verdict::Mismatch,
            Reason::NameMismatch,
            None,
            2,
        ),
        c(
            "DANE-TA: expired leaf",
            vec![ta_inter.clone()],
            presented(&[&w.expired_leaf, inter], true),
            Verdict::Mismatch,
            Reason::ChainNotToAnchor,
            None,
            2,
        ),
        c(
            "DANE-TA: the anchor's own leaf replayed",
            vec![ta_inter.clone()],
            presented(&[leaf, inter], false),
            Verdict::Mismatch,
            Reason::UnprovenKey,
            None,
            2,
        ),
        // Unusable and mixed sets.
        c(
            "only an unknown usage",
            vec![bad("4 1 1 00")],
            chain.clone(),
            Verdict::UnusableRecords,
            Reason::AllUnusable,
            None,
            1,
        ),
        c(
            "only private-use and short digests",
            vec![bad("255 1 1 00"), bad("3 1 1 0011")],
            chain.clone(),
            Verdict::UnusableRecords,
            Reason::AllUnusable,
            None,
            1,
        ),
        c(
            "unknown selector next to a matching 3 1 1",
            vec![bad("3 9 1 00"), ee.clone()],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ee.clone()),
            0,
        ),
        c(
            "unknown matching type next to a wrong 3 1 1",
            vec![bad("3 1 9 00"), rec(3, 1, 1, &w.other_leaf)],
            chain.clone(),
            Verdict::Mismatch,
            Reason::KeyNotInTlsa,
            None,
            2,
        ),
        c(
            "wrong 3 1 1 but a good 2 0 1",
            vec![rec(3, 1, 1, &w.other_leaf), ta_inter.clone()],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ta_inter.clone()),
            0,
        ),
        c(
            "3 1 1 and 2 0 1 both match: 3 1 1 reported",
            vec![ta_inter.clone(), ee.clone()],
            chain.clone(),
            Verdict::Match,
            Reason::KeyMatched,
            Some(ee.clone()),
            0,
        ),
        c(
            "wrong 3 1 1 and a name-mismatched 2 0 1",
            vec![rec(3, 1, 1, &w.other_leaf), ta_inter.clone()],
            presented(&[&w.wrong_name_leaf, inter], true),
            Verdict::Mismatch,
            Reason::NameMismatch,
            None,
            2,
        ),
        // PKIX usages.
        Case {
            test_roots: true,
            ..c(
                "1 1 1 with PKIX to the test root",
                vec![rec(1, 1, 1, leaf)],
                chain.clone(),
                Verdict::Match,
                Reason::KeyMatched,
                Some(rec(1, 1, 1, leaf)),
                0,
            )
        },
        c(
            "1 1 1 without a trusted root",
            vec![rec(1, 1, 1, leaf)],
            chain.clone(),
            Verdict::Mismatch,
            Reason::PkixInvalid,
            None,
            2,
        ),
        Case {
            test_roots: true,
            ..c(
                "0 0 1 on the intermediate with PKIX",
                vec![rec(0, 0, 1, inter)],
                chain.clone(),
                Verdict::Match,
                Reason::KeyMatched,
                Some(rec(0, 0, 1, inter)),
                1,
            )
        },
        c(
            "0 0 1 on the intermediate without a trusted root",
            vec![rec(0, 0, 1, inter)],
            chain.clone(),
            Verdict::Mismatch,
            Reason::PkixInvalid,
            None,
            2,
        ),
        Case {
            test_roots: true,
            ..c(
                "0 1 1 on the root anchor, not presented",
                vec![rec(0, 1, 1, root)],
                chain.clone(),
                Verdict::Match,
                Reason::KeyMatched,
                Some(rec(0, 1, 1, root)),
                1,
            )
        },
        Case {
            test_roots: true,
            ..c(
                "1 1 1 on a leaf with the wrong name",
                vec![rec(1, 1, 1, &w.wrong_name_leaf)],
                presented(&[&w.wrong_name_leaf, inter], true),
                Verdict::Mismatch,
                Reason::NameMismatch,
                None,
                2,
            )
        },
        Case {
            test_roots: true,
            ..c(
                "0 0 1 on an intermediate not in the path",
                vec![rec(0, 0, 1, &w.attacker_leaf)],
                chain.clone(),
                Verdict::Mismatch,
                Reason::KeyNotInTlsa,
                None,
                2,
            )
        },
        // DNSSEC states decide before the probe.
        c(
            "secure NODATA for TLSA",
            vec![],
            chain.clone(),
            Verdict::NoRecords,
            Reason::NoTlsa,
            None,
            1,
        ),
        Case {
            dns: |e| e.tlsa.dnssec = DnssecStatus::Insecure,
            ..c(
                "insecure TLSA RRset",
                vec![ee.clone()],
                chain.clone(),
                Verdict::NoDnssec,
                Reason::InsecureTlsa,
                None,
                1,
            )
        },
        Case {
            dns: |e| e.srv_dnssec = DnssecStatus::Insecure,
            ..c(
                "insecure SRV RRset",
                vec![ee.clone()],
                chain.clone(),
                Verdict::NoDnssec,
                Reason::InsecureSrv,
                None,
                1,
            )
        },
        Case {
            dns: |e| e.ipv4.dnssec = DnssecStatus::Insecure,
            ..c(
                "insecure A RRset, IPv4 target",
                vec![ee.clone()],
                chain.clone(),
                Verdict::NoDnssec,
                Reason::InsecureAddress,
                None,
                1,
            )
        },
        Case {
            dns: |e| e.ipv4.dnssec = DnssecStatus::Insecure,
            address: "2001:db8::1",
            ..c(
                "insecure A RRset, IPv6 target is judged on AAAA",
                vec![ee.clone()],
                chain.clone(),
                Verdict::Match,
                Reason::KeyMatched,
                Some(ee.clone()),
                0,
            )
        },
        Case {
            dns: |e| e.tlsa.dnssec = DnssecStatus::bogus("expired RRSIG"),
            ..c(
                "bogus TLSA RRset",
                vec![ee.clone()],
                chain.clone(),
                Verdict::Bogus,
                Reason::BogusTlsa,
                None,
                2,
            )
        },
        Case {
            dns: |e| e.tlsa.dnssec = DnssecStatus::indeterminate("SERVFAIL"),
            ..c(
                "SERVFAIL on TLSA is not no-records",
                vec![],
                chain.clone(),
                Verdict::Indeterminate,
                Reason::IndeterminateTlsa,
                None,
                3,
            )
        },
        Case {
            dns: |e| {
                e.srv_dnssec = DnssecStatus::bogus("bad sig");
                e.tlsa.dnssec = DnssecStatus::indeterminate("timeout")
            },
            ..c(
                "bogus SRV beats an indeterminate TLSA",
                vec![ee.clone()],
                chain.clone(),
                Verdict::Bogus,
                Reason::BogusSrv,
                None,
                2,
            )
        },
        Case {
            dns: |e| e.ipv4.dnssec = DnssecStatus::indeterminate("timeout"),
            ..c(
                "indeterminate A RRset",
                vec![ee.clone()],
                chain.clone(),
                Verdict::Indeterminate,
                Reason::IndeterminateAddress,
                None,
                3,
            )
        },
        // Probe failures.
        c(
            "timeout on a DANE endpoint",
            vec![ee.clone()],
            failed(FailureKind::Inconclusive),
            Verdict::Indeterminate,
            Reason::ProbeInconclusive,
            None,
            3,
        ),
        c(
            "no STARTTLS on a DANE endpoint is critical",
            vec![ee.clone()],
            failed(FailureKind::Protocol),
            Verdict::ProtocolError,
            Reason::ProtocolViolation,
            None,
            2,
        ),
        Case {
            dns: |e| e.tlsa.dnssec = DnssecStatus::Insecure,
            ..c(
                "no STARTTLS without DANE",
                vec![ee.clone()],
                failed(FailureKind::Protocol),
                Verdict::ProtocolError,
                Reason::ProtocolViolation,
                None,
                3,
            )
        },
        c(
            "no STARTTLS with only unusable records is still on a DANE endpoint",
            vec![bad("4 1 1 00")],
            failed(FailureKind::Protocol),
            Verdict::ProtocolError,
            Reason::ProtocolViolation,
            None,
            2,
        ),
        Case {
            dns: |e| e.srv_dnssec = DnssecStatus::Insecure,
            ..c(
                "no STARTTLS where DANE does not apply (insecure SRV)",
                vec![ee.clone()],
                failed(FailureKind::Protocol),
                Verdict::ProtocolError,
                Reason::ProtocolViolation,
                None,
                3,
            )
        },
        c(
            "timeout with no TLSA records",
            vec![],
            failed(FailureKind::Inconclusive),
            Verdict::Indeterminate,
            Reason::ProbeInconclusive,
            None,
            3,
        ),
    ]
}

#[test]
fn verdict_table() {
    let w = world();
    let cases = cases(&w);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in cases {
        let mut ep = endpoint_for(case.domain, case.target, case.records.clone());
        (case.dns)(&mut ep);
        let policy = MatchPolicy::new(case.domain, case.target, now());
        let policy = if case.test_roots {
            policy.with_roots(&w.root_anchor)
        } else {
            policy
        };
        let addr: IpAddr = case.address.parse().unwrap();
        let tv = judge_target(&ep, addr, &case.outcome, &policy);
        assert_eq!(
            (tv.verdict, tv.reason),
            (case.verdict, case.reason),
            "{}",
            case.name
        );
        assert_eq!(tv.matched_record, case.matched, "{}", case.name);
        // The exit code of the endpoint when this is its only target.
        let outcomes = vec![(addr, case.outcome.clone())];
        let mut only = ep.clone();
        if addr.is_ipv4() {
            only.ipv6.addresses.clear()
        } else {
            only.ipv4.addresses.clear()
        }
        let ev = judge_endpoint(&only, &outcomes, &policy);
        assert_eq!(ev.verdict, case.verdict, "{} (endpoint)", case.name);
        assert_eq!(
            DomainVerdict::new(DOMAIN, vec![ev]).exit_code(),
            case.exit,
            "{} (exit code)",
            case.name
        );
    }
}

#[test]
fn presented_key_and_unusable_records_are_reported() {
    let w = world();
    let ep = endpoint(vec![bad("4 1 1 00"), rec(3, 1, 1, &w.leaf)]);
    let tv = judge_target(
        &ep,
        "192.0.2.1".parse().unwrap(),
        &presented(&[&w.leaf], true),
        &MatchPolicy::new(DOMAIN, TARGET, now()),
    );
    let spki = certwatch_core::certificate_spki(&w.leaf).unwrap();
    assert_eq!(
        tv.presented_spki_sha256,
        Some(hex::encode(certwatch_core::spki_sha256(&spki)))
    );
    assert_eq!(tv.key_type, Some(certwatch_core::KeyType::Ecdsa));
    assert_eq!(tv.unusable.len(), 1);
    assert_eq!(tv.unusable[0].record, bad("4 1 1 00"));
    assert!(
        tv.warnings
            .iter()
            .any(|w| w.code == WarningCode::UnusableRecord)
    );
    let json = serde_json::to_value(&tv).unwrap();
    assert_eq!(json["verdict"], "match");
    assert_eq!(json["reason"], "key-matched");
    assert_eq!(json["dnssec"], "secure");
    assert_eq!(json["service"], "c2s-starttls");
    assert_eq!(json["address"], "192.0.2.1");
    assert_eq!(json["matched_record"], format!("{}", rec(3, 1, 1, &w.leaf)));
}

#[test]
fn endpoint_is_the_worst_over_addresses_and_key_types() {
    let w = world();
    let ep = endpoint(vec![rec(3, 1, 1, &w.leaf)]);
    let policy = MatchPolicy::new(DOMAIN, TARGET, now());
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let good = presented(&[&w.leaf], true);
    let evil = presented(&[&w.other_leaf], true);
    let timeout =
        ProbeOutcome::Failed(ProbeFailure::new(FailureKind::Inconclusive, "timeout", "t"));
    let proto = ProbeOutcome::Failed(ProbeFailure::new(
        FailureKind::Protocol,
        "xmpp",
        "no starttls",
    ));

    let ev = judge_endpoint(&ep, &[(v4, good.clone()), (v6, good.clone())], &policy);
    assert_eq!(ev.verdict, Verdict::Match);
    assert_eq!(ev.targets.len(), 2);

    // The interceptor took the IPv6 address only.
    let ev = judge_endpoint(&ep, &[(v4, good.clone()), (v6, evil.clone())], &policy);
    assert_eq!(
        (ev.verdict, ev.reason),
        (Verdict::Mismatch, Reason::KeyNotInTlsa)
    );

    // Two key types on one address (ECDSA good, RSA handshake wrong).
    let ev = judge_endpoint(
        &ep,
        &[(v4, good.clone()), (v4, evil.clone()), (v6, good.clone())],
        &policy,
    );
    assert_eq!(ev.verdict, Verdict::Mismatch);
    assert_eq!(ev.targets.len(), 3);

    // An address that was not probed counts as indeterminate.
    let ev = judge_endpoint(&ep, &[(v4, good.clone())], &policy);
    assert_eq!(
        (ev.verdict, ev.reason),
        (Verdict::Indeterminate, Reason::ProbeInconclusive)
    );
    assert_eq!(ev.targets.len(), 2);

    // Protocol error on a DANE endpoint outranks indeterminate; mismatch outranks both.
    let ev = judge_endpoint(&ep, &[(v4, timeout.clone()), (v6, proto.clone())], &policy);
    assert_eq!(ev.verdict, Verdict::ProtocolError);
    assert_eq!(ev.exit_code(), 2);
    let ev = judge_endpoint(&ep, &[(v4, evil.clone()), (v6, proto.clone())], &policy);
    assert_eq!(ev.verdict, Verdict::Mismatch);

    // No addresses at all.
    let mut none = ep.clone();
    none.ipv4.addresses.clear();
    none.ipv6.addresses.clear();
    let ev = judge_endpoint(&none, &[], &policy);
    assert_eq!(
        (ev.verdict, ev.reason),
        (Verdict::Indeterminate, Reason::NoAddresses)
    );
    assert!(
        ev.warnings
            .iter()
            .any(|w| w.code == WarningCode::NoAddresses)
    );
    none.ipv6.dnssec = DnssecStatus::bogus("no DNSKEY");
    assert_eq!(judge_endpoint(&none, &[], &policy).verdict, Verdict::Bogus);
    none.ipv6.dnssec = DnssecStatus::Secure;
    none.srv_dnssec = DnssecStatus::Insecure;
    assert_eq!(
        judge_endpoint(&none, &[], &policy).verdict,
        Verdict::NoDnssec
    );
}

#[test]
fn domain_is_the_worst_over_endpoints() {
    let w = world();
    let policy = MatchPolicy::new(DOMAIN, TARGET, now());
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let judge = |records: Vec<Tlsa>, o: ProbeOutcome, tweak: fn(&mut certwatch_core::Endpoint)| {
        let mut ep = endpoint(records);
        tweak(&mut ep);
        judge_endpoint(&ep, &[(v4, o.clone()), (v6, o)], &policy)
    };
    let good = || presented(&[&w.leaf], true);
    let pins = || vec![rec(3, 1, 1, &w.leaf), rec(3, 1, 1, &w.other_leaf)];
    let single = || vec![rec(3, 1, 1, &w.leaf)];
    let matched = judge(pins(), good(), |_| {});
    let no_dnssec = judge(pins(), good(), |e| e.srv_dnssec = DnssecStatus::Insecure);
    let no_records = judge(vec![], good(), |_| {});
    let timeout = judge(
        pins(),
        ProbeOutcome::Failed(ProbeFailure::new(
            FailureKind::Inconclusive,
            "tor",
            "circuit",
        )),
        |_| {},
    );
    let proto_plain = judge(
        pins(),
        ProbeOutcome::Failed(ProbeFailure::new(FailureKind::Protocol, "xmpp", "x")),
        |e| e.tlsa.dnssec = DnssecStatus::Insecure,
    );
    let proto_dane = judge(
        pins(),
        ProbeOutcome::Failed(ProbeFailure::new(FailureKind::Protocol, "xmpp", "x")),
        |_| {},
    );
    let bogus = judge(pins(), good(), |e| e.tlsa.dnssec = DnssecStatus::bogus("x"));
    let mismatch = judge(pins(), presented(&[&w.wrong_name_leaf], true), |_| {});
    let weak_match = judge(single(), good(), |_| {});
    let table: Vec<(Vec<&certwatch_core::EndpointVerdict>, Verdict, u8)> = vec![
        (vec![&matched], Verdict::Match, 0),
        (vec![&matched, &matched], Verdict::Match, 0),
        (vec![&matched, &no_dnssec], Verdict::NoDnssec, 1),
        (
            vec![&no_records, &no_dnssec, &matched],
            Verdict::NoRecords,
            1,
        ),
        (vec![&no_dnssec, &timeout], Verdict::Indeterminate, 3),
        (vec![&proto_plain, &no_records], Verdict::ProtocolError, 3),
        (vec![&timeout, &proto_dane], Verdict::ProtocolError, 2),
        (vec![&proto_dane, &bogus], Verdict::Bogus, 2),
        (vec![&matched, &mismatch, &timeout], Verdict::Mismatch, 2),
        (vec![&weak_match], Verdict::Match, 0),
        (vec![], Verdict::Indeterminate, 3),
    ];
    for (i, (eps, verdict, exit)) in table.into_iter().enumerate() {
        let d = DomainVerdict::new(DOMAIN, eps.into_iter().cloned().collect());
        assert_eq!((d.verdict, d.exit_code()), (verdict, exit), "row {i}");
    }
    // The first verdict wins among equals: no-records before no-dnssec above.
    assert_eq!(certwatch_core::combine_exit_codes([0, 1, 3, 2, 0]), 2);
}

#[test]
fn weak_pins_make_a_match_exit_1() {
    let w = world();
    let policy = MatchPolicy::new(DOMAIN, TARGET, now()).with_roots(&w.root_anchor);
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let mut ep = endpoint(vec![rec(0, 0, 1, &w.inter.der)]);
    ep.ipv6.addresses.clear();
    let ev = judge_endpoint(
        &ep,
        &[(v4, presented(&[&w.leaf, &w.inter.der], true))],
        &policy,
    );
    assert_eq!(ev.verdict, Verdict::Match);
    assert!(
        ev.targets[0]
            .warnings
            .iter()
            .any(|x| x.code == WarningCode::WeakPin)
    );
    assert_eq!(DomainVerdict::new(DOMAIN, vec![ev]).exit_code(), 1);
}

#[test]
fn exit_code_mapping_of_every_verdict() {
    let table = [
        (Verdict::Match, 0, 0),
        (Verdict::NoDnssec, 1, 1),
        (Verdict::NoRecords, 1, 1),
        (Verdict::UnusableRecords, 1, 1),
        (Verdict::Indeterminate, 3, 3),
        (Verdict::ProtocolError, 3, 2),
        (Verdict::Mismatch, 2, 2),
        (Verdict::Bogus, 2, 2),
    ];
    assert_eq!(table.len(), Verdict::ALL.len());
    for (v, plain, dane) in table {
        assert_eq!(v.exit_code(false), plain, "{v} without DANE");
        assert_eq!(v.exit_code(true), dane, "{v} on a DANE endpoint");
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, format!("\"{v}\""));
    }
    // The order of REFERENCE §3.
    assert_eq!(Verdict::Mismatch.rank(true), Verdict::Bogus.rank(true));
    assert!(Verdict::Bogus.rank(true) > Verdict::ProtocolError.rank(true));
    assert!(Verdict::ProtocolError.rank(true) > Verdict::Indeterminate.rank(true));
    assert_eq!(
        Verdict::Indeterminate.rank(false),
        Verdict::ProtocolError.rank(false)
    );
    assert!(Verdict::Indeterminate.rank(false) > Verdict::UnusableRecords.rank(false));
    assert_eq!(
        Verdict::UnusableRecords.rank(false),
        Verdict::NoRecords.rank(false)
    );
    assert_eq!(
        Verdict::NoRecords.rank(false),
        Verdict::NoDnssec.rank(false)
    );
    assert!(Verdict::NoDnssec.rank(false) > Verdict::Match.rank(false));
}
