//! Every DNS scenario of the interop environment, both directly against nsd (hickory
//! validates the authoritative answers) and through the validating unbound (queries carry
//! CD=1, so bogus data still arrives and is judged locally).
#![cfg(feature = "interop")]

use std::time::{Duration, Instant};

use certwatch_core::{DnssecState, Origin, Service, WarningCode};
use certwatch_dns::{
    AnswerKind, Resolver, ResolverConfig, ServiceMap, ServiceOutcome, TrustAnchor,
};
use certwatch_testkit::Interop;

struct Env {
    env: Interop,
    anchor: String,
}

fn env() -> Env {
    let env = Interop::require();
    let path = env.path("dns.trust_anchor").expect("dns.trust_anchor");
    let anchor = std::fs::read_to_string(&path).expect("read the root key");
    Env { env, anchor }
}

fn resolver(e: &Env, server_key: &str) -> Resolver {
    let addr = e.env.socket_addr(server_key).expect("server address");
    let mut c = ResolverConfig::new(vec![addr])
        .with_trust_anchor(TrustAnchor::DnskeyText(e.anchor.clone()))
        .with_timeout(Duration::from_millis(800), 1);
    c.lookup_deadline = Duration::from_secs(6);
    Resolver::new(c).expect("resolver")
}

fn domain(e: &Env, scenario: &str) -> String {
    e.env
        .str(&format!("dns.scenarios.{scenario}.domain"))
        .expect("scenario domain")
        .to_owned()
}

const PATHS: [&str; 2] = ["dns.nsd", "dns.unbound"];

async fn each_path(scenario: &str, check: impl Fn(&str, &ServiceMap)) {
    let e = env();
    let d = domain(&e, scenario);
    for path in PATHS {
        let map = resolver(&e, path).discover(&d).await.expect("discover");
        check(path, &map);
    }
}

/// The zone files' TTL (`CW_DNS_TTL` in scripts/interop/dns.sh).
const ZONE_TTL: u64 = 60;

/// A record keeps its TTL: exactly the zone's from nsd; from unbound's cache at most the zone's,
/// counting down (0 in the last second of a cached record is a legitimate answer).
fn assert_ttl_kept(path: &str, ttl: u64) {
    if path == "dns.nsd" {
        assert_eq!(ttl, ZONE_TTL, "{path}");
    } else {
        assert!(ttl <= ZONE_TTL, "{path}: TTL {ttl}");
    }
}

fn all_offered(map: &ServiceMap) {
    for s in &map.services {
        assert_eq!(
            s.outcome,
            ServiceOutcome::Offered,
            "{}: {:?}",
            s.service,
            s.srv
        );
    }
}

fn has_warning(map: &ServiceMap, code: WarningCode) -> bool {
    map.endpoints
        .iter()
        .any(|ep| ep.warnings.iter().any(|w| w.code == code))
}

#[tokio::test]
async fn secure_match() {
    each_path("match", |path, map| {
        all_offered(map);
        assert_eq!(map.endpoints.len(), 4, "{path}");
        for ep in &map.endpoints {
            assert!(ep.srv_dnssec.is_secure(), "{path} {}", ep.id);
            assert_eq!(ep.ipv4.dnssec.state(), DnssecState::Secure, "{path}");
            assert_eq!(
                ep.ipv4.addresses,
                vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
            );
            assert!(ep.tlsa.is_secure_nonempty(), "{path} {:?}", ep.tlsa);
            assert_eq!(ep.tlsa.records.len(), 2, "{path}");
            assert_eq!(
                ep.tlsa.owner,
                format!("_{}._tcp.xmpp.match.test", ep.id.port)
            );
        }
        // Every record is kept with its TTL: the zone's TTL from the authoritative server; from
        // the caching resolver a TTL that counts down and may reach 0 in its last second.
        assert_ttl_kept(path, map.services[0].srv.records[0].ttl.into());
    })
    .await;
}

#[tokio::test]
async fn secure_mismatch_has_the_other_pin() {
    each_path("mismatch", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path}");
            assert_eq!(ep.tlsa.records.len(), 1, "{path}");
        }
    })
    .await;
}

fn proven_nodata(path: &str, map: &ServiceMap) {
    all_offered(map);
    for l in &map.tlsa {
        let expected = if l.owner.starts_with("_5222.") || l.owner.starts_with("_5269.") {
            AnswerKind::NoData
        } else {
            AnswerKind::NxDomain
        };
        assert_eq!(l.answer, expected, "{path} {}", l.owner);
        assert!(l.is_proven_absent(), "{path} {l:?}");
    }
    for ep in &map.endpoints {
        assert!(
            ep.tlsa.dnssec.is_secure() && ep.tlsa.records.is_empty(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn secure_nodata_nsec() {
    each_path("nodata", proven_nodata).await;
}

#[tokio::test]
async fn secure_nodata_nsec3() {
    each_path("nodata3", proven_nodata).await;
}

#[tokio::test]
async fn insecure_delegation() {
    each_path("insecure", |path, map| {
        all_offered(map);
        for ep in &map.endpoints {
            assert_eq!(ep.srv_dnssec.state(), DnssecState::Insecure, "{path}");
            assert_eq!(ep.tlsa.dnssec.state(), DnssecState::Insecure, "{path}");
            // The records are still shown as seen.
            assert_eq!(ep.tlsa.records.len(), 2, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn insecure_srv_to_a_secure_host() {
    each_path("insecure-srv", |path, map| {
        for ep in &map.endpoints {
            assert_eq!(ep.srv_dnssec.state(), DnssecState::Insecure, "{path}");
            assert_eq!(ep.id.target, "xmpp.hosts.test");
            assert!(ep.ipv4.dnssec.is_secure(), "{path}");
            assert!(ep.tlsa.is_secure_nonempty(), "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn tampered_tlsa_is_bogus_on_both_paths() {
    each_path("bogus", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.srv_dnssec.is_secure(), "{path}");
            assert_eq!(ep.tlsa.dnssec.state(), DnssecState::Bogus, "{path}");
            let reason = ep.tlsa.dnssec.reason().unwrap_or_default();
            assert!(reason.contains("bad signature"), "{path}: {reason}");
            assert!(reason.contains(&ep.tlsa.owner), "{path}: {reason}");
        }
    })
    .await;
}

#[tokio::test]
async fn expired_signatures_are_bogus_with_the_date() {
    each_path("expired", |path, map| {
        for s in &map.services {
            assert_eq!(s.outcome, ServiceOutcome::Unavailable, "{path}");
        }
        for ep in &map.endpoints {
            assert_eq!(ep.srv_dnssec.state(), DnssecState::Bogus, "{path}");
            let reason = ep.srv_dnssec.reason().unwrap_or_default();
            assert!(reason.contains("expired RRSIG"), "{path}: {reason}");
            assert!(reason.contains("expired.test. DNSKEY"), "{path}: {reason}");
            assert!(
                reason.contains("T") && reason.contains('Z'),
                "{path}: {reason}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn ds_without_dnskey_is_bogus() {
    each_path("bogus-ds", |path, map| {
        for ep in &map.endpoints {
            let reason = ep.srv_dnssec.reason().unwrap_or_default();
            assert_eq!(ep.srv_dnssec.state(), DnssecState::Bogus, "{path}");
            assert!(
                reason.contains("DS without a matching DNSKEY"),
                "{path}: {reason}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn target_in_another_zone() {
    each_path("cross", |path, map| {
        all_offered(map);
        for ep in &map.endpoints {
            assert_eq!(ep.id.target, "xmpp.hosts.test", "{path}");
            assert!(
                ep.tlsa.is_secure_nonempty() && ep.ipv4.dnssec.is_secure(),
                "{path}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn several_targets_in_xep0368_order() {
    each_path("multi", |path, map| {
        assert_eq!(map.endpoints.len(), 12, "{path}");
        let c2s: Vec<_> = map
            .endpoints
            .iter()
            .filter(|e| matches!(e.id.service, Service::C2sStarttls | Service::C2sDirect))
            .collect();
        assert_eq!(c2s.len(), 6);
        // Priority 0 (both hosts, both services) before priority 10.
        assert!(
            c2s[..4].iter().all(|e| e.id.target.ends_with("hosts.test")),
            "{path}"
        );
        assert!(
            c2s[4..].iter().all(|e| e.id.target == "dual.multi.test"),
            "{path}"
        );
        let dual = c2s[4];
        assert!(dual.ipv6.dnssec.is_secure());
        assert_eq!(
            dual.ipv6.addresses,
            vec!["::1".parse::<std::net::IpAddr>().unwrap()]
        );
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path} {}", ep.id);
        }
    })
    .await;
}

#[tokio::test]
async fn proven_srv_absence_falls_back_to_the_domain() {
    each_path("nosrv", |path, map| {
        let outcomes: Vec<_> = map.services.iter().map(|s| s.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                ServiceOutcome::Fallback,
                ServiceOutcome::NotPublished,
                ServiceOutcome::Fallback,
                ServiceOutcome::NotPublished
            ],
            "{path}"
        );
        assert_eq!(map.endpoints.len(), 2, "{path}");
        for ep in &map.endpoints {
            assert_eq!(ep.origin, Origin::Fallback);
            assert_eq!(ep.id.target, "nosrv.test");
            assert!(ep.srv_dnssec.is_secure());
            assert!(ep.tlsa.is_secure_nonempty(), "{path}");
        }
        assert_eq!(map.endpoints[0].id.port, 5222);
        assert_eq!(map.endpoints[1].id.port, 5269);
    })
    .await;
}

#[tokio::test]
async fn nsec3_with_150_iterations_is_insecure_with_a_warning() {
    each_path("nsec3-150", |path, map| {
        for ep in &map.endpoints {
            assert_eq!(ep.tlsa.dnssec.state(), DnssecState::Insecure, "{path}");
        }
        assert!(has_warning(map, WarningCode::Nsec3Iterations), "{path}");
    })
    .await;
}

#[tokio::test]
async fn nsec3_with_600_iterations_is_bogus() {
    each_path("nsec3-600", |path, map| {
        for ep in &map.endpoints {
            assert_eq!(ep.tlsa.dnssec.state(), DnssecState::Bogus, "{path}");
            assert!(ep.tlsa.dnssec.reason().unwrap_or_default().contains("600"));
        }
    })
    .await;
}

#[tokio::test]
async fn unresponsive_delegation_is_indeterminate_in_bounded_time() {
    let e = env();
    let d = domain(&e, "dead");
    for path in PATHS {
        let started = Instant::now();
        let map = resolver(&e, path).discover(&d).await.expect("discover");
        assert!(started.elapsed() < Duration::from_secs(15), "{path}");
        for s in &map.services {
            assert_eq!(s.outcome, ServiceOutcome::Unavailable, "{path}");
            assert_eq!(s.srv.answer, AnswerKind::Failed, "{path}");
            assert_eq!(
                s.srv.dnssec.state(),
                DnssecState::Indeterminate,
                "{path}: {:?}",
                s.srv.dnssec
            );
        }
    }
}

#[tokio::test]
async fn unresponsive_server_is_indeterminate_never_no_records() {
    let e = env();
    let silent = e.env.socket_addr("dns.silent").expect("dns.silent");
    let mut c = ResolverConfig::new(vec![silent])
        .with_trust_anchor(TrustAnchor::DnskeyText(e.anchor.clone()))
        .with_timeout(Duration::from_millis(500), 1);
    c.lookup_deadline = Duration::from_secs(3);
    let started = Instant::now();
    let map = Resolver::new(c)
        .unwrap()
        .discover("match.test")
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    for s in &map.services {
        assert_eq!(s.srv.answer, AnswerKind::Failed);
        assert_eq!(s.srv.dnssec.state(), DnssecState::Indeterminate);
    }
    assert!(
        map.endpoints
            .iter()
            .all(|ep| ep.srv_dnssec.state() == DnssecState::Indeterminate)
    );
}

#[tokio::test]
async fn cnamed_tlsa_owner_is_followed() {
    each_path("cname", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path} {:?}", ep.tlsa);
            assert!(
                ep.warnings
                    .iter()
                    .any(|w| w.code == WarningCode::CnameFollowed)
            );
        }
        assert!(
            map.tlsa
                .iter()
                .all(|l| l.cnames.len() == 1 && l.final_owner().contains("hosts.test"))
        );
    })
    .await;
}

#[tokio::test]
async fn wildcard_tlsa_is_secure() {
    each_path("wildcard", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path} {:?}", ep.tlsa);
            assert_eq!(ep.tlsa.records.len(), 2);
        }
    })
    .await;
}

#[tokio::test]
async fn large_tlsa_rrset_needs_tcp() {
    each_path("large", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path}");
            assert_eq!(ep.tlsa.records.len(), 42, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn signatures_expiring_in_two_days_warn() {
    each_path("expiring", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path}");
            let codes: Vec<_> = ep
                .warnings
                .iter()
                .filter(|w| w.code == WarningCode::SignatureExpiring)
                .collect();
            assert!(
                codes.iter().any(|w| w.message.contains("TLSA")),
                "{path}: {codes:?}"
            );
            assert!(
                codes.iter().any(|w| w.message.contains("SRV")),
                "{path}: {codes:?}"
            );
        }
    })
    .await;
    // The same zone judged with a 1-day window does not warn.
    let e = env();
    let d = domain(&e, "expiring");
    let mut c = ResolverConfig::new(vec![e.env.socket_addr("dns.nsd").unwrap()])
        .with_trust_anchor(TrustAnchor::DnskeyText(e.anchor.clone()));
    c.expiry_window = Duration::from_secs(24 * 3600);
    let map = Resolver::new(c).unwrap().discover(&d).await.unwrap();
    assert!(!has_warning(&map, WarningCode::SignatureExpiring));
    // A fresh zone does not warn either.
    each_path("match", |path, map| {
        assert!(!has_warning(map, WarningCode::SignatureExpiring), "{path}");
    })
    .await;
}

#[tokio::test]
async fn secure_a_with_aaaa_in_an_insecure_zone() {
    each_path("split", |path, map| {
        let v4 = map
            .endpoints
            .iter()
            .find(|e| e.id.target == "v4.split.test")
            .expect("v4 host");
        assert!(
            v4.ipv4.dnssec.is_secure() && !v4.ipv4.addresses.is_empty(),
            "{path}"
        );
        assert!(v4.tlsa.is_secure_nonempty(), "{path}");
        let v6 = map
            .endpoints
            .iter()
            .find(|e| e.id.target == "v6.insecure.test")
            .expect("v6 host");
        assert_eq!(v6.ipv6.dnssec.state(), DnssecState::Insecure, "{path}");
        assert_eq!(
            v6.ipv6.addresses,
            vec!["::1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(
            v6.warnings
                .iter()
                .any(|w| w.code == WarningCode::InsecureAddresses)
        );
    })
    .await;
}

#[tokio::test]
async fn ds_trust_anchor_validates_too() {
    let e = env();
    let ds = e.env.str("dns.trust_anchor_ds").unwrap().to_owned();
    for path in PATHS {
        let c = ResolverConfig::new(vec![e.env.socket_addr(path).unwrap()])
            .with_trust_anchor(TrustAnchor::DsText(ds.clone()));
        let map = Resolver::new(c)
            .unwrap()
            .discover(&domain(&e, "match"))
            .await
            .unwrap();
        assert!(
            map.endpoints.iter().all(|ep| ep.tlsa.is_secure_nonempty()),
            "{path}"
        );
    }
    // A DS that matches no root key is an error, not a silent IANA fallback.
    let wrong = ". IN DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000";
    let c = ResolverConfig::new(vec![e.env.socket_addr("dns.nsd").unwrap()])
        .with_trust_anchor(TrustAnchor::DsText(wrong.into()));
    assert!(
        Resolver::new(c)
            .unwrap()
            .discover("match.test")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn caa_absence_gives_advice() {
    each_path("match", |path, map| {
        assert!(map.caa.found_at.is_none(), "{path}");
        assert!(map.caa.advice[0].contains("accounturi"), "{path}");
        assert!(
            map.caa.lookups.iter().all(|l| l.is_proven_absent()),
            "{path}"
        );
    })
    .await;
}

#[tokio::test]
async fn round_trips_stay_at_two_plus_the_chain() {
    each_path("multi", |path, map| {
        assert!(map.stats.lookup_round_trips <= 3, "{path}: {:?}", map.stats);
        eprintln!(
            "{path}: {} queries, {} sequential round trips, {} without the trust chain",
            map.stats.queries, map.stats.sequential_round_trips, map.stats.lookup_round_trips
        );
    })
    .await;
}

#[tokio::test]
async fn serialises_as_one_json_value() {
    each_path("match", |path, map| {
        let v = serde_json::to_value(map).unwrap();
        assert_eq!(v["domain"], "match.test");
        assert_eq!(v["endpoints"][0]["tlsa"]["dnssec"], "secure");
        assert_ttl_kept(
            path,
            v["services"][0]["srv"]["records"][0]["ttl"]
                .as_u64()
                .unwrap(),
        );
    })
    .await;
}

#[tokio::test]
async fn wildcard_tlsa_in_an_nsec3_zone_is_secure() {
    each_path("wildcard3", |path, map| {
        for ep in &map.endpoints {
            assert!(ep.tlsa.is_secure_nonempty(), "{path} {:?}", ep.tlsa);
        }
    })
    .await;
}

#[tokio::test]
async fn dot_target_means_not_offered() {
    each_path("dot", |path, map| {
        let outcomes: Vec<_> = map.services.iter().map(|s| s.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                ServiceOutcome::Offered,
                ServiceOutcome::NotOffered,
                ServiceOutcome::Offered,
                ServiceOutcome::NotOffered
            ],
            "{path}"
        );
        assert_eq!(map.endpoints.len(), 2, "{path}");
        assert!(
            map.warnings
                .iter()
                .any(|w| w.code == WarningCode::ServiceNotOffered)
        );
    })
    .await;
}

#[tokio::test]
async fn notls_host_is_a_dane_endpoint() {
    each_path("notls", |path, map| {
        assert_eq!(map.endpoints.len(), 2, "{path}");
        for ep in &map.endpoints {
            assert!(
                ep.tlsa.is_secure_nonempty() && ep.srv_dnssec.is_secure(),
                "{path}"
            );
            assert_eq!(
                ep.ipv4.addresses,
                vec!["127.0.0.3".parse::<std::net::IpAddr>().unwrap()]
            );
        }
    })
    .await;
}

/// The worst status a domain's DANE conclusion depends on: SRV, TLSA, and each address
/// family that has addresses.
fn domain_state(map: &ServiceMap) -> DnssecState {
    let mut worst = certwatch_core::DnssecStatus::Secure;
    for ep in &map.endpoints {
        worst = worst
            .combine(ep.srv_dnssec.clone())
            .combine(ep.tlsa.dnssec.clone());
        for fam in [&ep.ipv4, &ep.ipv6] {
            if !fam.addresses.is_empty() {
                worst = worst.combine(fam.dnssec.clone());
            }
        }
    }
    worst.state()
}

#[tokio::test]
async fn every_described_scenario_has_its_dnssec_state_on_both_paths() {
    let e = env();
    let scenarios = e
        .env
        .get("dns.scenarios")
        .expect("scenarios")
        .as_object()
        .expect("an object")
        .clone();
    assert!(scenarios.len() >= 20, "{}", scenarios.len());
    for (name, s) in scenarios {
        let domain = s["domain"].as_str().expect("domain");
        let expected = s["dnssec"].as_str().expect("dnssec");
        for path in PATHS {
            let map = resolver(&e, path).discover(domain).await.expect("discover");
            let got = domain_state(&map);
            assert_eq!(got.as_str(), expected, "{name} via {path}");
        }
    }
}
