//! The production runner makes verifiable evidence (interop): the scheduler runs the real
//! `FacadeRunner` (direct transport, the environment's unbound, its private root as trust
//! anchor) on `mismatch.test` and `match.test`; each conclusive check stores a bundle signed
//! with the store's key, the mismatch alert links its bundle, and the stored bytes verify
//! fully offline (signature and DNSSEC chains) with `certwatch::evidence::verify`.
#![cfg(feature = "interop")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certwatch::evidence::verify;
use certwatch::{TrustAnchor, Verdict};
use certwatch_server::clock::{SystemClock, now};
use certwatch_server::config::Config;
use certwatch_server::metrics::Metrics;
use certwatch_server::random::SystemRandom;
use certwatch_server::runner::FacadeRunner;
use certwatch_server::scheduler::{CheckRunner, Scheduler, SchedulerConfig};
use certwatch_server::store::{Store, TicketState};
use certwatch_testkit::Interop;
use ring::signature::KeyPair as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_stores_a_bundle_that_verifies_offline() {
    let env = Interop::require();
    let anchor_path = env.str("dns.trust_anchor").unwrap();
    let config = Config::load(
        [
            "certwatch-server",
            "--via",
            "direct",
            "--resolver",
            env.str("dns.unbound").unwrap(),
            "--trust-anchor",
            anchor_path,
            "--allow-private-targets",
            "--confirm",
            "0",
            "--timeout",
            "10s",
            "--check-deadline",
            "120s",
        ],
        &HashMap::new(),
    )
    .unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let key = store.evidence_signing_key().await.unwrap();
    let public = key.public_key().as_ref().to_vec();
    let metrics = Arc::new(Metrics::new());
    let runner = FacadeRunner::start(&config, metrics.clone())
        .unwrap()
        .with_evidence_key(key);
    assert!(runner.ready());

    let clock = Arc::new(SystemClock);
    let t = now(clock.as_ref());
    store
        .add_subscription("mismatch.test", "webhook", "https://hook.example/", t)
        .await
        .unwrap();
    let tickets = [
        (
            "mismatch.test",
            store.request_check("mismatch.test", t).await.unwrap(),
        ),
        (
            "match.test",
            store.request_check("match.test", t).await.unwrap(),
        ),
    ];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = Scheduler::new(
        store.clone(),
        Arc::new(runner),
        metrics,
        clock,
        Arc::new(SystemRandom),
        SchedulerConfig::from_config(&config),
        Arc::new(tokio::sync::Notify::new()),
    );
    let task = tokio::spawn(scheduler.run(
        async {
            let _ = stop_rx.await;
        },
        Duration::from_secs(1),
    ));
    let mut verdicts = HashMap::new();
    let started = tokio::time::Instant::now();
    while verdicts.len() < tickets.len() {
        assert!(
            started.elapsed() < Duration::from_secs(200),
            "checks did not finish"
        );
        for (name, ticket) in &tickets {
            match store.ticket(&ticket.id).await.unwrap() {
                Some(TicketState::Done(r)) => {
                    verdicts.insert(*name, r.verdict);
                }
                Some(TicketState::Failed(m)) => panic!("{name}: the check failed: {m}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(());
    task.await.unwrap();
    assert_eq!(verdicts["mismatch.test"], Verdict::Mismatch);
    assert_eq!(verdicts["match.test"], Verdict::Match);

    let anchor = TrustAnchor::from_file_text(&std::fs::read_to_string(anchor_path).unwrap());
    let at = u64::try_from(now(&SystemClock)).unwrap();

    // The mismatch alert links the check's bundle, which verifies and shows the key outside
    // the validated TLSA RRset.
    let deliveries = store.deliveries_of("mismatch.test", 10).await.unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].alert.condition, "mismatch");
    let id = deliveries[0]
        .alert
        .evidence_id
        .expect("the alert links a bundle");
    let stored = store.evidence("mismatch.test", id).await.unwrap().unwrap();
    assert_eq!(stored.check_id, deliveries[0].alert.check_id.unwrap());
    let v = verify(&stored.body, &public, &anchor, at).unwrap();
    v.expect_domain("mismatch.test").unwrap();
    assert_eq!(v.bundle.verdict, Verdict::Mismatch);
    assert!(v.bundle.gaps.is_empty(), "{:?}", v.bundle.gaps);
    assert!(!v.probes.is_empty());
    assert!(v.any_key_outside_tlsa());
    assert!(!v.tlsa.is_empty());
    for p in &v.probes {
        assert_eq!(p.probe.vantage.to_string(), "direct");
        assert!(p.srv_proven && p.address_proven, "{p:?}");
    }

    // The match has its bundle too (the latest), with every presented key pinned.
    let latest = store.latest_evidence("match.test").await.unwrap().unwrap();
    let v = verify(&latest.body, &public, &anchor, at).unwrap();
    v.expect_domain("match.test").unwrap();
    assert!(!v.probes.is_empty());
    assert!(v.probes.iter().all(|p| p.in_tlsa), "{:?}", v.probes);
}
