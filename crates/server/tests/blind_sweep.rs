//! Blindness of the running service (issue 9), on tokio's paused clock with the whole
//! service (`serve::run_with`) and a fake checker:
//! - the transport never becomes ready, so no check finishes at all: the periodic sweep
//!   still raises one `blind` alert at the threshold (none before), one reminder after
//!   `remind_after` (not more), and a conclusive check then sends `recovered`;
//! - probes that fail (every check ends without a verdict): the checks and the sweep step
//!   the same incident state, so there is still one `blind` alert, then `recovered`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use certwatch::Report;
use certwatch_server::clock::TokioClock;
use certwatch_server::config::{Config, Via};
use certwatch_server::metrics::Metrics;
use certwatch_server::random::SeededRandom;
use certwatch_server::scheduler::{CheckFuture, CheckRunner};
use certwatch_server::store::Store;

const T0: u64 = 1_800_000_000;
const DOMAIN: &str = "blind.example";

fn report(domain: &str) -> Report {
    let json = format!(
        r#"{{"schema_version":1,"domain":"{domain}","checked_at":"2027-01-15T08:00:00Z","verdict":"match",
        "endpoints":[],"confirmation":null,"setup":{{"zone_lines":[],"advice":[]}},"warnings":[]}}"#
    );
    serde_json::from_str(&json).unwrap()
}

/// A checker whose transport may be down (`ready` false), whose probes fail (`Err`) until
/// `conclusive` is set, and which then reports `match`.
#[derive(Default)]
struct Fake {
    ready: AtomicBool,
    conclusive: AtomicBool,
    checks: AtomicU32,
}

struct Runner(Arc<Fake>);

impl CheckRunner for Runner {
    fn ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }
    fn check(&self, domain: String) -> CheckFuture {
        let fake = self.0.clone();
        Box::pin(async move {
            fake.checks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
            if fake.conclusive.load(Ordering::SeqCst) {
                Ok(report(&domain).into())
            } else {
                Err("no endpoint answered (probes blocked)".into())
            }
        })
    }
}

struct Service {
    store: Store,
    fake: Arc<Fake>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(ready: bool) -> Service {
    let store = Store::open("sqlite::memory:").await.unwrap();
    // A confirmed subscriber (email; no relay is configured, so its deliveries stay in the
    // outbox where the test reads them).
    store
        .add_subscription(DOMAIN, "email", "op@example.org", T0 as i64)
        .await
        .unwrap();
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.via = Via::Direct;
    config.instance_id = "sweep-test".into();
    config.interval = Duration::from_secs(900);
    config.jitter = Duration::ZERO;
    config.blind_after = Duration::from_secs(3600);
    config.remind_after = Duration::from_secs(7200);
    let fake = Arc::new(Fake::default());
    fake.ready.store(ready, Ordering::SeqCst);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let (store, fake) = (store.clone(), fake.clone());
        async move {
            certwatch_server::serve::run_with(
                config,
                store,
                Arc::new(Metrics::new()),
                Arc::new(Runner(fake)),
                Arc::new(TokioClock::starting_at(T0)),
                Arc::new(SeededRandom::new(7)),
                async move {
                    let _ = rx.await;
                },
            )
            .await
            .unwrap();
        }
    });
    Service {
        store,
        fake,
        stop: Some(tx),
        task,
    }
}

impl Service {
    /// (condition, kind, seconds after T0) of every alert delivered to the subscriber.
    async fn alerts(&self) -> Vec<(String, String, i64)> {
        self.store
            .deliveries_of(DOMAIN, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.alert.condition, d.alert.kind, d.alert.at - T0 as i64))
            .collect()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

async fn at(secs: u64, since: tokio::time::Instant) {
    tokio::time::sleep_until(since + Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn with_no_check_finishing_the_sweep_raises_blind_once_reminds_once_then_recovers() {
    let t = tokio::time::Instant::now();
    let s = start(false).await;
    at(3590, t).await;
    assert_eq!(s.alerts().await, vec![], "nothing before the threshold");
    assert_eq!(s.fake.checks.load(Ordering::SeqCst), 0, "no check ran");
    at(3700, t).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (condition, kind, opened) = alerts[0].clone();
    assert_eq!((condition.as_str(), kind.as_str()), ("blind", "opened"));
    assert!((3600..=3660).contains(&opened), "opened at {opened}");
    // Within remind_after (2 h): nothing more, though the sweep runs every minute.
    at(u64::try_from(opened).unwrap() + 7190, t).await;
    assert_eq!(s.alerts().await.len(), 1);
    // One reminder after remind_after, then quiet again for another 2 h.
    at(u64::try_from(opened).unwrap() + 7300, t).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        (alerts[1].0.as_str(), alerts[1].1.as_str()),
        ("blind", "reminder")
    );
    assert!(alerts[1].2 - opened >= 7200 && alerts[1].2 - opened <= 7260);
    at(u64::try_from(opened).unwrap() + 7300 + 7000, t).await;
    assert_eq!(s.alerts().await.len(), 2);
    // The transport comes back and a conclusive check ends the incident.
    s.fake.conclusive.store(true, Ordering::SeqCst);
    s.fake.ready.store(true, Ordering::SeqCst);
    let back = tokio::time::Instant::now() - t;
    at(back.as_secs() + 120, t).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert_eq!(
        (alerts[2].0.as_str(), alerts[2].1.as_str()),
        ("blind", "recovered")
    );
    let incidents = s.store.incidents(DOMAIN, 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert!(incidents[0].closed_at.is_some());
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failing_probes_and_the_sweep_raise_one_blind_alert_then_recovered() {
    let t = tokio::time::Instant::now();
    let s = start(true).await;
    at(3590, t).await;
    assert!(
        s.fake.checks.load(Ordering::SeqCst) >= 4,
        "checks ran and failed"
    );
    assert_eq!(s.alerts().await, vec![]);
    // Both the failing checks (every 15 min) and the sweep (every minute) see the domain
    // blind after 1 h: one alert.
    at(3600 + 5400, t).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0].0.as_str(), alerts[0].1.as_str()),
        ("blind", "opened")
    );
    assert!((3600..=3660).contains(&alerts[0].2), "{alerts:?}");
    s.fake.conclusive.store(true, Ordering::SeqCst);
    at(3600 + 5400 + 1000, t).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        (alerts[1].0.as_str(), alerts[1].1.as_str()),
        ("blind", "recovered")
    );
    s.stop().await;
}

/// A domain checked weeks ago and not watched since is not `blind` the minute someone
/// subscribes: blindness is measured from the subscription's confirmation, then from the
/// checks.
#[tokio::test]
async fn blindness_of_a_newly_watched_domain_counts_from_the_subscription() {
    use certwatch_server::store::Spacing;
    let t0 = T0 as i64;
    let store = Store::open("sqlite::memory:").await.unwrap();
    // An on-demand check weeks ago, conclusive (`match`), and nobody subscribed.
    store.request_check(DOMAIN, t0).await.unwrap();
    let jobs = store.claim_due("w", t0, 60, 1).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&jobs[0], "w", t0 + 5, Ok(report(DOMAIN)), spacing)
        .await
        .unwrap();
    // Thirty days later a subscriber confirms.
    let t1 = t0 + 30 * 86_400;
    assert!(
        store
            .add_subscription(DOMAIN, "webhook", "https://hooks.example/x", t1)
            .await
            .unwrap()
    );
    let blind_after = store.alert_policy().blind_after;
    // The sweep a minute later, and just before the threshold: nothing.
    assert_eq!(store.sweep_blind(t1 + 60).await.unwrap(), 0);
    assert_eq!(store.sweep_blind(t1 + blind_after - 1).await.unwrap(), 0);
    assert!(store.incidents(DOMAIN, 10).await.unwrap().is_empty());
    // No conclusive check for blind_after since the subscription: blind, one delivery.
    assert_eq!(store.sweep_blind(t1 + blind_after).await.unwrap(), 1);
    let incidents = store.incidents(DOMAIN, 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].condition, "blind");
    assert_eq!(incidents[0].opened_at, t1 + blind_after);
}
