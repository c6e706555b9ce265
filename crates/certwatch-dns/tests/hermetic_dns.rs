//! Discovery and validation against an in-process signed authoritative fixture: no network,
//! no environment, every status class.

mod support;

use std::time::Duration;

use certwatch_core::{DnssecState, Origin, WarningCode};
use certwatch_dns::{
    AnswerKind, FixedClock, Resolver, ResolverConfig, ServiceOutcome, TrustAnchor,
};
use support::*;

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];

fn four_srv(domain: &str, target: &str) -> Vec<hickory_proto::rr::Record> {
    vec![
        srv(&format!("_xmpp-client._tcp.{domain}"), 0, 0, 5222, target),
        srv(&format!("_xmpps-client._tcp.{domain}"), 0, 0, 5223, target),
        srv(&format!("_xmpp-server._tcp.{domain}"), 0, 0, 5269, target),
        srv(&format!("_xmpps-server._tcp.{domain}"), 0, 0, 5270, target),
    ]
}

fn host(host: &str, ports: &[u16]) -> Vec<hickory_proto::rr::Record> {
    let mut v = vec![a(host, [127, 0, 0, 1])];
    for p in ports {
        v.push(tlsa(&format!("_{p}._tcp.{host}"), K1));
        v.push(tlsa(&format!("_{p}._tcp.{host}"), K2));
    }
    v
}

fn good_zone() -> ZoneSpec {
    let mut records = four_srv("good.test.", "xmpp.good.test.");
    records.extend(host("xmpp.good.test.", &[5222, 5223, 5269, 5270]));
    records.push(caa_issue("good.test.", "letsencrypt.org."));
    ZoneSpec {
        origin: name("good.test."),
        signing: Signing::Nsec,
        records,
        after_signing: Vec::new(),
    }
}

fn zones() -> Vec<ZoneSpec> {
    let mut v = vec![good_zone()];
    // NSEC3, no TLSA: proven absence.
    let mut r = four_srv("n3.test.", "xmpp.n3.test.");
    r.push(a("xmpp.n3.test.", [127, 0, 0, 1]));
    v.push(ZoneSpec {
        origin: name("n3.test."),
        signing: Signing::Nsec3(0),
        records: r,
        after_signing: vec![],
    });
    // NSEC3 with 150 iterations: insecure denial.
    let mut r = four_srv("i150.test.", "xmpp.i150.test.");
    r.push(a("xmpp.i150.test.", [127, 0, 0, 1]));
    v.push(ZoneSpec {
        origin: name("i150.test."),
        signing: Signing::Nsec3(150),
        records: r,
        after_signing: vec![],
    });
    // Unsigned delegation.
    let mut r = four_srv("ins.test.", "xmpp.ins.test.");
    r.extend(host("xmpp.ins.test.", &[5222]));
    v.push(ZoneSpec {
        origin: name("ins.test."),
        signing: Signing::Unsigned,
        records: r,
        after_signing: vec![],
    });
    // TLSA changed after signing (hickory-server then serves it without RRSIG).
    let mut r = four_srv("tam.test.", "xmpp.tam.test.");
    r.extend(host("xmpp.tam.test.", &[5222]));
    v.push(ZoneSpec {
        origin: name("tam.test."),
        signing: Signing::Nsec,
        records: r,
        after_signing: vec![
            tlsa("_5222._tcp.xmpp.tam.test.", [0x66; 32]),
            tlsa("_5269._tcp.xmpp.tam.test.", [0x77; 32]),
        ],
    });
    // DS of another key.
    let mut r = four_srv("bds.test.", "xmpp.bds.test.");
    r.extend(host("xmpp.bds.test.", &[5222]));
    v.push(ZoneSpec {
        origin: name("bds.test."),
        signing: Signing::WrongDs,
        records: r,
        after_signing: vec![],
    });
    // Signatures that expire one second after signing.
    let mut r = four_srv("exp.test.", "xmpp.exp.test.");
    r.extend(host("xmpp.exp.test.", &[5222]));
    v.push(ZoneSpec {
        origin: name("exp.test."),
        signing: Signing::ShortLived(Duration::from_secs(1)),
        records: r,
        after_signing: vec![],
    });
    // No SRV at all: fallback to the domain.
    let mut r = vec![a("nosrv.test.", [127, 0, 0, 1])];
    r.push(tlsa("_5222._tcp.nosrv.test.", K1));
    r.push(tlsa("_5269._tcp.nosrv.test.", K1));
    v.push(ZoneSpec {
        origin: name("nosrv.test."),
        signing: Signing::Nsec,
        records: r,
        after_signing: vec![],
    });
    // SRV target `.`: not offered; CNAME'd TLSA; large TLSA RRset (TCP).
    let mut r = vec![
        srv("_xmpp-client._tcp.misc.test.", 0, 0, 0, "."),
        srv(
            "_xmpp-server._tcp.misc.test.",
            0,
            0,
            5269,
            "xmpp.misc.test.",
        ),
        a("xmpp.misc.test.", [127, 0, 0, 1]),
        cname("_5269._tcp.xmpp.misc.test.", "_5222._tcp.xmpp.good.test."),
    ];
    r.push(srv(
        "_xmpps-server._tcp.misc.test.",
        0,
        0,
        5270,
        "big.misc.test.",
    ));
    r.push(a("big.misc.test.", [127, 0, 0, 1]));
    for i in 0..60u8 {
        r.push(tlsa("_5270._tcp.big.misc.test.", [i; 32]));
    }
    // An RRset with no signature at all, added after signing.
    r.push(srv(
        "_xmpps-client._tcp.misc.test.",
        0,
        0,
        5223,
        "xmpp.misc.test.",
    ));
    v.push(ZoneSpec {
        origin: name("misc.test."),
        signing: Signing::Nsec,
        after_signing: vec![srv(
            "_xmpps-client._tcp.misc.test.",
            5,
            0,
            5223,
            "xmpp.misc.test.",
        )],
        records: r,
    });
    v
}

async fn fixture() -> Fixture {
    start(zones(), Duration::ZERO).await
}

fn resolver(f: &Fixture) -> Resolver {
    let mut c = ResolverConfig::new(vec![f.addr])
        .with_trust_anchor(TrustAnchor::DnskeyText(f.root_dnskey.clone()))
        .with_timeout(Duration::from_secs(1), 1);
    c.lookup_deadline = Duration::from_secs(5);
    Resolver::new(c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_domain_yields_four_dane_endpoints() {
    let f = fixture().await;
    let map = resolver(&f).discover("GOOD.test.").await.unwrap();
    assert_eq!(map.domain, "good.test");
    assert_eq!(map.endpoints.len(), 4);
    for ep in &map.endpoints {
        assert!(ep.srv_dnssec.is_secure(), "{:?}", ep.srv_dnssec);
        assert!(ep.ipv4.dnssec.is_secure());
        assert_eq!(ep.ipv6.dnssec.state(), DnssecState::Secure, "{:?}", ep.ipv6);
        assert!(ep.ipv6.addresses.is_empty());
        assert!(ep.tlsa.is_secure_nonempty(), "{:?}", ep.tlsa);
        assert_eq!(ep.tlsa.records.len(), 2);
    }
    // CAA found, with advice to bind the account and method.
    assert_eq!(map.caa.found_at.as_deref(), Some("good.test."));
    assert_eq!(map.caa.issuers[0].issuer, "letsencrypt.org");
    assert!(map.caa.advice.iter().any(|a| a.contains("accounturi")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsec3_nodata_is_proven_absence() {
    let f = fixture().await;
    let map = resolver(&f).discover("n3.test").await.unwrap();
    for l in &map.tlsa {
        assert!(l.is_proven_absent(), "{l:?}");
    }
    for ep in &map.endpoints {
        assert!(
            ep.tlsa.dnssec.is_secure() && ep.tlsa.records.is_empty(),
            "{:?}",
            ep.tlsa
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsec3_150_iterations_is_insecure_with_warning() {
    let f = fixture().await;
    let map = resolver(&f).discover("i150.test").await.unwrap();
    for ep in &map.endpoints {
        assert_eq!(
            ep.tlsa.dnssec.state(),
            DnssecState::Insecure,
            "{:?}",
            ep.tlsa
        );
        assert!(
            ep.warnings
                .iter()
                .any(|w| w.code == WarningCode::Nsec3Iterations)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_delegation_is_insecure() {
    let f = fixture().await;
    let map = resolver(&f).discover("ins.test").await.unwrap();
    assert_eq!(map.endpoints.len(), 4);
    for ep in &map.endpoints {
        assert_eq!(ep.srv_dnssec.state(), DnssecState::Insecure);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_rrset_in_a_signed_zone_is_bogus_missing_rrsig() {
    let f = fixture().await;
    let map = resolver(&f).discover("tam.test").await.unwrap();
    let ep = map.endpoints.iter().find(|e| e.id.port == 5222).unwrap();
    assert_eq!(ep.tlsa.dnssec.state(), DnssecState::Bogus);
    let reason = ep.tlsa.dnssec.reason().unwrap();
    // hickory-server drops the RRSIG of an RRset changed after signing; nsd's tampered zone
    // (interop) covers "bad signature".
    assert!(
        reason.contains("missing RRSIG") && reason.contains("_5222._tcp.xmpp.tam.test."),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_without_matching_dnskey_is_bogus() {
    let f = fixture().await;
    let map = resolver(&f).discover("bds.test").await.unwrap();
    for s in &map.services {
        assert_eq!(s.outcome, ServiceOutcome::Unavailable);
        let reason = s.srv.dnssec.reason().unwrap_or_default();
        assert!(
            reason.contains("DS without a matching DNSKEY") && reason.contains("bds.test."),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_signatures_are_bogus_naming_the_date() {
    let f = fixture().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let map = resolver(&f).discover("exp.test").await.unwrap();
    for s in &map.services {
        assert_eq!(
            s.srv.dnssec.state(),
            DnssecState::Bogus,
            "{:?}",
            s.srv.dnssec
        );
        let reason = s.srv.dnssec.reason().unwrap_or_default();
        assert!(
            reason.contains("expired RRSIG") && reason.contains("exp.test."),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proven_srv_absence_falls_back() {
    let f = fixture().await;
    let map = resolver(&f).discover("nosrv.test").await.unwrap();
    assert_eq!(map.endpoints.len(), 2);
    assert!(
        map.endpoints
            .iter()
            .all(|e| e.origin == Origin::Fallback && e.tlsa.is_secure_nonempty())
    );
    assert_eq!(map.services[1].outcome, ServiceOutcome::NotPublished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_target_cname_tlsa_tcp_and_missing_rrsig() {
    let f = fixture().await;
    let map = resolver(&f).discover("misc.test").await.unwrap();
    assert_eq!(map.services[0].outcome, ServiceOutcome::NotOffered);
    assert!(
        map.warnings
            .iter()
            .any(|w| w.code == WarningCode::ServiceNotOffered)
    );
    // CNAME'd TLSA owner into another secure zone.
    let s2s = map.endpoints.iter().find(|e| e.id.port == 5269).unwrap();
    assert!(s2s.tlsa.is_secure_nonempty(), "{:?}", s2s.tlsa);
    assert!(
        s2s.warnings
            .iter()
            .any(|w| w.code == WarningCode::CnameFollowed)
    );
    // 60 TLSA records do not fit in UDP: TCP fallback.
    let big = map.endpoints.iter().find(|e| e.id.port == 5270).unwrap();
    assert!(big.tlsa.is_secure_nonempty(), "{:?}", big.tlsa);
    assert_eq!(big.tlsa.records.len(), 60);
    // An RRset changed after signing: bogus, explained.
    let c2s_direct = &map.services[1];
    assert_eq!(
        c2s_direct.srv.dnssec.state(),
        DnssecState::Bogus,
        "{:?}",
        c2s_direct.srv
    );
    assert!(
        c2s_direct
            .srv
            .dnssec
            .reason()
            .unwrap_or_default()
            .contains("missing RRSIG")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_warning_follows_the_injected_clock() {
    let f = fixture().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // 28 of the 30 days of signature lifetime have passed: under a quarter and under 7 days.
    let mut c = ResolverConfig::new(vec![f.addr])
        .with_trust_anchor(TrustAnchor::DnskeyText(f.root_dnskey.clone()))
        .with_clock(std::sync::Arc::new(FixedClock(now + 28 * 86400)));
    c.lookup_deadline = Duration::from_secs(5);
    let map = Resolver::new(c)
        .unwrap()
        .discover("good.test")
        .await
        .unwrap();
    for ep in &map.endpoints {
        let w: Vec<_> = ep
            .warnings
            .iter()
            .filter(|w| w.code == WarningCode::SignatureExpiring)
            .collect();
        assert!(w.iter().any(|w| w.message.contains("TLSA")), "{w:?}");
        assert!(w.iter().any(|w| w.message.contains("SRV")), "{w:?}");
        assert!(w.iter().any(|w| w.message.contains("DNSKEY")), "{w:?}");
    }
    // Today, nothing warns.
    let map = resolver(&f).discover("good.test").await.unwrap();
    assert!(map.endpoints.iter().all(|e| {
        e.warnings
            .iter()
            .all(|w| w.code != WarningCode::SignatureExpiring)
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_trust_anchor_text() {
    let f = fixture().await;
    let c =
        ResolverConfig::new(vec![f.addr]).with_trust_anchor(TrustAnchor::DsText(f.root_ds.clone()));
    let map = Resolver::new(c)
        .unwrap()
        .discover("good.test")
        .await
        .unwrap();
    assert!(map.endpoints.iter().all(|e| e.tlsa.is_secure_nonempty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_trust_anchor_is_bogus_not_secure() {
    let f = fixture().await;
    let other = start(vec![], Duration::ZERO).await;
    let c = ResolverConfig::new(vec![f.addr])
        .with_trust_anchor(TrustAnchor::DnskeyText(other.root_dnskey.clone()));
    let map = Resolver::new(c)
        .unwrap()
        .discover("good.test")
        .await
        .unwrap();
    for s in &map.services {
        assert_eq!(
            s.srv.dnssec.state(),
            DnssecState::Bogus,
            "{:?}",
            s.srv.dnssec
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_target_is_secure_absence() {
    let f = fixture().await;
    let l = resolver(&f)
        .lookup("nothing-here.good.test", certwatch_dns::RrType::A)
        .await
        .unwrap();
    assert_eq!(l.answer, AnswerKind::NxDomain);
    assert!(l.is_proven_absent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_costs_two_sequential_round_trips_plus_the_chain() {
    // Every answer is delayed, so overlapping queries are clearly concurrent.
    let delay = Duration::from_millis(40);
    let f = start(zones(), delay).await;
    let started = std::time::Instant::now();
    let map = resolver(&f).discover("good.test").await.unwrap();
    let elapsed = started.elapsed();
    assert!(map.endpoints.iter().all(|e| e.tlsa.is_secure_nonempty()));
    eprintln!(
        "good.test: {} queries, {} sequential round trips ({} without the chain), {elapsed:?} at {delay:?} per answer",
        map.stats.queries, map.stats.sequential_round_trips, map.stats.lookup_round_trips
    );
    // SRV (with the chain prefetched beside it), then A/AAAA/TLSA: two; the CAA walk to the
    // parent runs beside them.
    assert_eq!(map.stats.lookup_round_trips, 2, "{:?}", map.stats.log);
    assert!(map.stats.sequential_round_trips <= 3, "{:?}", map.stats.log);
    // Generous bound for loaded machines: well under the ~7 round trips of a walked chain.
    assert!(elapsed < delay * 10, "{elapsed:?}");
    // One shared cache: no question is asked twice.
    let mut keys: Vec<_> = map
        .stats
        .log
        .iter()
        .map(|q| (q.name.clone(), q.rtype.clone()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_uses_the_injected_clock() {
    let f = fixture().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = |t: u64| {
        let mut c = ResolverConfig::new(vec![f.addr])
            .with_trust_anchor(TrustAnchor::DnskeyText(f.root_dnskey.clone()))
            .with_clock(std::sync::Arc::new(FixedClock(t)));
        c.lookup_deadline = Duration::from_secs(5);
        Resolver::new(c).unwrap()
    };
    // 60 days on, the 30-day signatures have expired.
    let map = at(now + 60 * 86400).discover("good.test").await.unwrap();
    for s in &map.services {
        assert_eq!(
            s.srv.dnssec.state(),
            DnssecState::Bogus,
            "{:?}",
            s.srv.dnssec
        );
        assert!(
            s.srv
                .dnssec
                .reason()
                .unwrap_or_default()
                .contains("expired RRSIG"),
            "{:?}",
            s.srv.dnssec
        );
    }
    // A day before they were made, they are not yet valid.
    let map = at(now - 86400).discover("good.test").await.unwrap();
    for s in &map.services {
        assert_eq!(
            s.srv.dnssec.state(),
            DnssecState::Bogus,
            "{:?}",
            s.srv.dnssec
        );
        assert!(
            s.srv
                .dnssec
                .reason()
                .unwrap_or_default()
                .contains("not yet valid"),
            "{:?}",
            s.srv.dnssec
        );
    }
    // Now, secure.
    let map = at(now).discover("good.test").await.unwrap();
    assert!(map.endpoints.iter().all(|e| e.tlsa.is_secure_nonempty()));
}
