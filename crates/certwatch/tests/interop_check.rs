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
