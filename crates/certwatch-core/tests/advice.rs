//! Pin-strength warnings and setup advice.

mod common;

use certwatch_core::{
    DnssecStatus, KeySeen, Origin, PinSource, Service, Tlsa, WarningCode, pin_strength,
    setup_advice, spki_sha256,
};
use common::*;

fn codes(records: &[Tlsa], chain: Option<&[Vec<u8>]>) -> Vec<WarningCode> {
    pin_strength(records, chain)
        .into_iter()
        .map(|w| w.code)
        .collect()
}

#[test]
fn pin_strength_warnings() {
    let root = root("private root");
    let inter = intermediate("private intermediate", &root);
    let leaf = leaf(&[TARGET], &inter);
    let next = common::leaf(&[TARGET], &inter);
    // One key: no rollover slot.
    assert_eq!(
        codes(&[rec(3, 1, 1, &leaf)], None),
        [WarningCode::NoRolloverSlot]
    );
    // Current and next key: nothing to say.
    assert!(codes(&[rec(3, 1, 1, &leaf), rec(3, 1, 1, &next)], None).is_empty());
    // 3 0 1 changes at every renewal.
    assert_eq!(
        codes(&[rec(3, 0, 1, &leaf), rec(3, 1, 1, &next)], None),
        [WarningCode::PinChangesOnRenewal]
    );
    // A private CA under DANE-TA is not weak; PKIX-TA always is.
    assert!(
        codes(
            &[rec(2, 0, 1, &inter.der)],
            Some(&[leaf.clone(), inter.der.clone()])
        )
        .is_empty()
    );
    assert_eq!(
        codes(&[rec(0, 0, 1, &inter.der)], None),
        [WarningCode::WeakPin]
    );
    // A public root's key under DANE-TA (2 1 1 of a webpki-roots anchor) is weak.
    let anchor = &webpki_roots::TLS_SERVER_ROOTS[0];
    let spki = webpki::spki_for_anchor(anchor);
    let public = Tlsa::new(2, 1, 1, spki_sha256(spki.as_ref()).to_vec());
    assert_eq!(codes(&[public], None), [WarningCode::WeakPin]);
    // Unusable records are reported one by one.
    let w = codes(
        &[
            "4 1 1 00".parse().unwrap(),
            rec(3, 1, 1, &leaf),
            rec(3, 1, 1, &next),
        ],
        None,
    );
    assert_eq!(w, [WarningCode::UnusableRecord]);
}

#[test]
fn zone_lines_are_additive_per_host_with_a_next_key_slot() {
    // Two domains on one host; the host already publishes key A.
    let key_a = [0xaa; 32];
    let key_b = [0xbb; 32];
    let mut a = endpoint_for(
        "a.example",
        "xmpp.host.example",
        vec![Tlsa::dane_ee_spki_sha256(key_a)],
    );
    let mut b = endpoint_for(
        "b.example",
        "xmpp.host.example",
        vec![Tlsa::dane_ee_spki_sha256(key_a)],
    );
    a.id.service = Service::C2sStarttls;
    b.id.service = Service::C2sStarttls;
    let src = || PinSource::KeyFile("fullchain.pem".into());
    let keys = [
        KeySeen::new("xmpp.host.example", 5222, key_a, src()),
        KeySeen::new("xmpp.host.example.", 5222, key_b, src()),
        KeySeen::new("XMPP.host.example", 5222, key_b, src()),
    ];
    let advice = setup_advice(&[a, b], &keys, 3600);
    assert_eq!(
        advice.zone_lines,
        [format!(
            "_5222._tcp.xmpp.host.example. 3600 IN TLSA 3 1 1 {}",
            "bb".repeat(32)
        )]
    );
    assert!(advice.warnings.is_empty());

    // A new host with one key gets its line and a next-key comment naming the command.
    let c = endpoint_for("c.example", "c.example", vec![]);
    let advice = setup_advice(
        &[c],
        &[KeySeen::new("c.example", 5222, key_a, PinSource::LiveProbe)],
        300,
    );
    assert_eq!(advice.zone_lines.len(), 2);
    assert_eq!(
        advice.zone_lines[0],
        format!(
            "_5222._tcp.c.example. 300 IN TLSA 3 1 1 {}",
            "aa".repeat(32)
        )
    );
    let slot = &advice.zone_lines[1];
    assert!(
        slot.starts_with("; _5222._tcp.c.example. 300 IN TLSA 3 1 1"),
        "{slot}"
    );
    assert!(slot.contains("certwatch records --key"), "{slot}");
    assert!(slot.contains("--host c.example --port 5222"), "{slot}");
    // Pins from a live probe say so, with the local command.
    assert_eq!(advice.warnings[0].code, WarningCode::PinsFromLiveProbe);
    assert!(
        advice.warnings[0]
            .message
            .contains("certwatch records --cert")
    );
}

#[test]
fn enable_dnssec_advice_names_the_insecure_rrset() {
    let mut srv = endpoint(vec![]);
    srv.srv_dnssec = DnssecStatus::Insecure;
    let mut fallback = endpoint_for("fallback.example", "fallback.example", vec![]);
    fallback.origin = Origin::Fallback;
    fallback.srv_dnssec = DnssecStatus::Insecure;
    let mut aaaa = endpoint_for("v6.example", "v6.example", vec![]);
    aaaa.ipv6.dnssec = DnssecStatus::Insecure;
    let mut tlsa = endpoint_for("t.example", "tlsa.example", vec![]);
    tlsa.tlsa.dnssec = DnssecStatus::bogus("expired");
    let advice = setup_advice(&[srv, fallback, aaaa, tlsa], &[], 3600);
    let all = advice.advice.join("\n");
    assert!(
        all.contains("the SRV RRset _xmpp-client._tcp.example.org is not signed"),
        "{all}"
    );
    assert!(
        all.contains("absence of SRV records at _xmpp-client._tcp.fallback.example"),
        "{all}"
    );
    assert!(all.contains("the AAAA RRset of v6.example"), "{all}");
    assert!(
        all.contains("the TLSA RRset _5222._tcp.tlsa.example fails DNSSEC validation"),
        "{all}"
    );
    assert!(advice.zone_lines.is_empty());
}

#[test]
fn replacing_a_ca_pin_is_advised() {
    let root = root("r");
    let leaf = leaf(&[TARGET], &root);
    let spki = certwatch_core::certificate_spki(&leaf).unwrap();
    let ep = endpoint(vec![rec(2, 0, 1, &root.der)]);
    let advice = setup_advice(
        &[ep],
        &[KeySeen::new(
            TARGET,
            5222,
            spki_sha256(&spki),
            PinSource::KeyFile("k".into()),
        )],
        3600,
    );
    assert!(
        advice
            .advice
            .iter()
            .any(|a| a.contains("remove the trust-anchor")),
        "{:?}",
        advice.advice
    );
}
