//! `certwatch::check` through the library API against the loopback interop environment
//! (`scripts/interop-env`), direct transport.
//!
//! `CERTWATCH_INTEROP=/tmp/certwatch-interop/env.json cargo test -p certwatch --features interop --test interop_check`
#![cfg(feature = "interop")]

use std::sync::Arc;

use certwatch::{
    CheckError, CheckOptions, FixedClock, ResolverConfig, Service, Transport, TrustAnchor, Verdict,
};
use certwatch_testkit::Interop;

fn options(env: &Interop) -> CheckOptions {
    let anchor = std::fs::read_to_string(env.path("dns.trust_anchor").unwrap()).unwrap();
    let resolver = ResolverConfig::from_servers(&[env.str("dns.unbound").unwrap()])
        .unwrap()
        .with_trust_anchor(TrustAnchor::DnskeyText(anchor));
    CheckOptions::new(Transport::Direct, resolver).with_private_targets(true)
}

#[tokio::test]
async fn match_through_the_library_with_an_injected_clock() {
    let env = Interop::require();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A whole second: checked_at shows the injected time, not the system's.
    let options = options(&env)
        .with_services(vec![Service::C2sStarttls, Service::S2sDirect])
        .with_clock(Arc::new(FixedClock(now - now % 60)));
    let report = certwatch::check(" MATCH.test. ", &options).await.unwrap();
    assert_eq!(report.domain, "match.test");
    assert_eq!(report.verdict, Verdict::Match);
    assert_eq!(report.exit_code(), 0);
    assert!(report.checked_at.ends_with(":00Z"), "{}", report.checked_at);
    let services: std::collections::BTreeSet<Service> =
        report.endpoints.iter().map(|e| e.service).collect();
    assert_eq!(
        services,
        [Service::C2sStarttls, Service::S2sDirect]
            .into_iter()
            .collect()
    );
    let ec = env.str("pki.keys.host-ec.spki_sha256").unwrap();
    assert!(
        report
            .endpoints
            .iter()
            .any(|e| e.presented_spki_sha256.as_deref() == Some(ec))
    );
}

#[tokio::test]
async fn a_verdict_is_data_and_bad_input_is_an_error() {
    let env = Interop::require();
    let options = options(&env).with_services(vec![Service::C2sStarttls]);
    let mismatch = certwatch::check("mismatch.test", &options).await.unwrap();
    assert_eq!(mismatch.verdict, Verdict::Mismatch);
    assert_eq!(mismatch.exit_code(), 2);
    let err = certwatch::check("192.0.2.1", &options).await.unwrap_err();
    assert!(matches!(err, CheckError::InvalidDomain { .. }), "{err}");
    assert!(err.to_string().contains("192.0.2.1"), "{err}");
}

/// `check_with_probes` returns the very probes of the check (and of its confirmation), whose
/// proven leaves are the keys the report names.
#[tokio::test]
async fn check_with_probes_returns_the_probes_behind_the_report() {
    let env = Interop::require();
    let checker = certwatch::Checker::new(
        options(&env)
            .with_services(vec![Service::C2sStarttls])
            .with_confirm(2),
    )
    .unwrap();
    let (report, probes) = checker.check_with_probes("mismatch.test").await.unwrap();
    // Direct only: one vantage point, so the confirmed verdict is indeterminate.
    assert_eq!(report.verdict, Verdict::Indeterminate);
    let presented: std::collections::BTreeSet<String> = report
        .endpoints
        .iter()
        .filter_map(|e| e.presented_spki_sha256.clone())
        .collect();
    let probed: std::collections::BTreeSet<String> = probes
        .iter()
        .map(|p| p.leaf_spki_sha256_hex().unwrap())
        .collect();
    assert_eq!(presented, probed);
    // The check's probe of each key the server has, then one confirmation round (direct
    // only) over each of those mismatching targets.
    let keyed = report
        .endpoints
        .iter()
        .filter(|e| e.presented_spki_sha256.is_some())
        .count();
    assert!(keyed >= 1);
    assert_eq!(probes.len(), 2 * keyed, "{probes:?}");
    assert!(
        probes
            .iter()
            .all(|p| p.target.domain == "mismatch.test" && p.target.id.port == 5222)
    );
}

/// `check_discovered_with_probes` on a cached discovery returns the probes behind the report,
/// as `check_with_probes` does after its own discovery.
#[tokio::test]
async fn check_discovered_with_probes_returns_the_probes_behind_the_report() {
    let env = Interop::require();
    let checker =
        certwatch::Checker::new(options(&env).with_services(vec![Service::C2sStarttls])).unwrap();
    let discovery = checker.discover("mismatch.test").await.unwrap();
    let (report, probes) = checker
        .check_discovered_with_probes(&discovery)
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Mismatch);
    let presented: std::collections::BTreeSet<String> = report
        .endpoints
        .iter()
        .filter_map(|e| e.presented_spki_sha256.clone())
        .collect();
    assert!(!presented.is_empty());
    let probed: std::collections::BTreeSet<String> = probes
        .iter()
        .map(|p| p.leaf_spki_sha256_hex().unwrap())
        .collect();
    assert_eq!(presented, probed);
    // No confirmation: one probe per keyed target.
    let keyed = report
        .endpoints
        .iter()
        .filter(|e| e.presented_spki_sha256.is_some())
        .count();
    assert_eq!(probes.len(), keyed, "{probes:?}");
}

/// `survey` over the direct transport: every target probed again, but one vantage point can
/// never agree with itself, so no key is agreed; without rounds each target has one sighting.
#[tokio::test]
async fn survey_records_every_sighting_per_target() {
    let env = Interop::require();
    let checker =
        certwatch::Checker::new(options(&env).with_services(vec![Service::C2sStarttls])).unwrap();
    let once = checker.survey("match.test", 0).await.unwrap();
    assert_eq!(once.report.verdict, Verdict::Match);
    assert_eq!(once.targets.len(), 2);
    assert!(once.targets.iter().all(|t| t.sightings.len() == 1));
    assert!(!once.all_agree());
    let keys: std::collections::BTreeSet<&str> =
        once.targets.iter().flat_map(|t| t.proven_keys()).collect();
    let want: std::collections::BTreeSet<&str> = [
        env.str("pki.keys.host-ec.spki_sha256").unwrap(),
        env.str("pki.keys.host-rsa.spki_sha256").unwrap(),
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    let twice = checker.survey("match.test", 3).await.unwrap();
    // Direct: one round only, and no direct extra probe.
    assert!(twice.targets.iter().all(|t| t.sightings.len() == 2));
    assert!(twice.targets.iter().all(|t| t.agreed_spki_sha256.is_none()));
}

/// `discover` then `check_discovered` gives the report `check` gives, and the discovery says
/// how long it stays valid: the zone's TTL (60 s in the environment), capped by the
/// earliest RRSIG expiration.
#[tokio::test]
async fn discovery_and_probing_can_be_split() {
    let env = Interop::require();
    let checker =
        certwatch::Checker::new(options(&env).with_services(vec![Service::C2sStarttls])).unwrap();
    let discovery = checker.discover(" MATCH.test. ").await.unwrap();
    assert_eq!(discovery.domain, "match.test");
    let ttl = discovery.min_ttl().unwrap();
    assert!(
        ttl > std::time::Duration::ZERO && ttl <= std::time::Duration::from_secs(60),
        "{ttl:?}"
    );
    let split = checker.check_discovered(&discovery).await.unwrap();
    let whole = checker.check("match.test").await.unwrap();
    assert_eq!(split.verdict, Verdict::Match);
    assert_eq!(split.domain, whole.domain);
    assert_eq!(split.endpoints, whole.endpoints);
    assert_eq!(split.setup, whole.setup);

    // Two days before expiry would be capped by the TTL; 30 s before it, the signatures'
    // expiration is what limits the discovery.
    let expires = env
        .u64("dns.scenarios.expiring.zone.rrsig_expiration")
        .unwrap();
    let late = certwatch::Checker::new(
        options(&env)
            .with_services(vec![Service::C2sStarttls])
            .with_clock(Arc::new(FixedClock(expires - 30))),
    )
    .unwrap();
    let d = late.discover("expiring.test").await.unwrap();
    assert_eq!(d.discovered_at, expires - 30);
    assert_eq!(d.min_ttl(), Some(std::time::Duration::from_secs(30)));

    // Nothing to discover is an error only for a bad name or a dead resolver.
    assert!(matches!(
        checker.discover("not a domain").await,
        Err(CheckError::InvalidDomain { .. })
    ));
}
