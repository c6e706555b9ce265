//! The production check path (interop): the scheduler runs on-demand checks through the
//! facade's checker over the environment's private Tor network (embedded arti, one fresh
//! circuit per domain check), validating DNS through its unbound, and stores the reports.
#![cfg(feature = "interop")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certwatch::Verdict;
use certwatch_server::clock::{SystemClock, now};
use certwatch_server::config::Config;
use certwatch_server::metrics::{Metrics, TorState};
use certwatch_server::random::SystemRandom;
use certwatch_server::runner::FacadeRunner;
use certwatch_server::scheduler::{CheckRunner, Scheduler, SchedulerConfig};
use certwatch_server::store::{Store, TicketState};
use certwatch_testkit::Interop;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_checks_go_through_tor_and_are_stored() {
    let env = Interop::require();
    let arti = env.private_arti_config().unwrap();
    let config = Config::load(
        [
            "certwatch-server",
            "--via",
            "tor",
            "--tor-config",
            arti.path_str(),
            "--resolver",
            env.str("dns.unbound").unwrap(),
            "--trust-anchor",
            env.str("dns.trust_anchor").unwrap(),
            "--allow-private-targets",
            "--confirm",
            "0",
            "--timeout",
            "10s",
            "--check-deadline",
            "120s",
            "--circuits-per-minute",
            "60",
        ],
        &HashMap::new(),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let runner = Arc::new(FacadeRunner::start(&config, metrics.clone()).unwrap());
    // The bootstrap runs in the background; the metrics follow it.
    let started = tokio::time::Instant::now();
    while !runner.ready() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "Tor did not bootstrap: {:?}",
            metrics.tor()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metrics.tor(), TorState::Ready);

    let store = Store::open("sqlite::memory:").await.unwrap();
    let clock = Arc::new(SystemClock);
    let t = now(clock.as_ref());
    let good = store.request_check("match.test", t).await.unwrap();
    let bad = store.request_check("mismatch.test", t).await.unwrap();
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = Scheduler::new(
        store.clone(),
        runner,
        metrics.clone(),
        clock,
        Arc::new(SystemRandom),
        SchedulerConfig::from_config(&config),
        wake,
    );
    let task = tokio::spawn(scheduler.run(
        async {
            let _ = stop_rx.await;
        },
        Duration::from_secs(1),
    ));
    let mut results = HashMap::new();
    let started = tokio::time::Instant::now();
    while results.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "checks did not finish"
        );
        for (name, id) in [("match.test", &good.id), ("mismatch.test", &bad.id)] {
            match store.ticket(id).await.unwrap() {
                Some(TicketState::Done(r)) => {
                    results.insert(name, *r);
                }
                Some(TicketState::Failed(m)) => panic!("{name}: the check failed: {m}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(());
    task.await.unwrap();

    assert_eq!(results["match.test"].verdict, Verdict::Match);
    assert_eq!(results["mismatch.test"].verdict, Verdict::Mismatch);
    for (name, report) in &results {
        let vantages: Vec<String> = report
            .endpoints
            .iter()
            .filter_map(|e| e.vantage.as_ref().map(ToString::to_string))
            .collect();
        assert!(!vantages.is_empty(), "{name}: no probe");
        assert!(
            vantages.iter().all(|v| v.starts_with("tor")),
            "{name}: not through Tor: {vantages:?}"
        );
    }
    let view = store
        .domain_view("match.test", now(&SystemClock))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.last_verdict, Some(Verdict::Match));
    assert!(view.watch.is_watched());
    assert!(!store.keys_seen("match.test").await.unwrap().is_empty());
    assert_eq!(metrics.checks_with(Verdict::Match), 1);
    assert_eq!(metrics.checks_with(Verdict::Mismatch), 1);
    assert_eq!(metrics.circuits_total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_is_refreshed_on_its_own_schedule_not_before_each_probe() {
    use certwatch_server::dns_cache::DnsSchedule;
    let env = Interop::require();
    let config = Config::load(
        [
            "certwatch-server",
            "--via",
            "direct",
            "--resolver",
            env.str("dns.unbound").unwrap(),
            "--trust-anchor",
            env.str("dns.trust_anchor").unwrap(),
            "--allow-private-targets",
            "--confirm",
            "0",
            "--timeout",
            "10s",
        ],
        &HashMap::new(),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    // A short clamp so that the test sees a refresh within seconds (the zone's TTL is 60 s).
    let mut schedule = DnsSchedule::default();
    schedule.floor = Duration::from_secs(1);
    schedule.cap = Duration::from_secs(2);
    let runner = FacadeRunner::start_with(
        &config,
        metrics.clone(),
        schedule,
        Arc::new(certwatch_server::random::SeededRandom::new(5)),
    )
    .unwrap();
    assert!(runner.ready());

    // The first check looks DNS up right before probing; the second probes with the cache.
    let first = runner.check("match.test".into()).await.unwrap().report;
    assert_eq!(first.verdict, Verdict::Match);
    assert_eq!(
        (metrics.dns_count("inline"), metrics.dns_count("cached")),
        (1, 0)
    );
    let second = runner.check("match.test".into()).await.unwrap().report;
    assert_eq!(second.verdict, Verdict::Match);
    assert_eq!(
        (metrics.dns_count("inline"), metrics.dns_count("cached")),
        (1, 1)
    );
    assert_eq!(runner.dns_cache().len(), 1);

    // Without any check, the refresher looks DNS up again when the (clamped) TTL runs out.
    let started = tokio::time::Instant::now();
    while metrics.dns_count("refresh") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no DNS refresh"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metrics.dns_count("refresh-failed"), 0);
    let third = runner.check("match.test".into()).await.unwrap().report;
    assert_eq!(third.verdict, Verdict::Match);
    assert_eq!(
        metrics.dns_count("inline"),
        1,
        "the refreshed discovery was used"
    );
    assert!(metrics.dns_count("cached") >= 2);
    // An unknown name: the check reports the error, nothing is cached for it.
    assert!(
        runner
            .check("nxdomain-for-sure.test".into())
            .await
            .is_ok_and(|o| o.report.verdict != Verdict::Match)
    );
}
