//! The heartbeat of issue 9 at `/healthz` and `/metrics` (in process, tower's `oneshot`, a
//! clock the test moves): the time since the last conclusive check (any domain, and the
//! watched domain unseen longest), `degraded` while the service is blind or the outbox's
//! oldest pending delivery is stale, and the backlog and failed counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use certwatch::{Clock, Report};
use certwatch_server::app::AppState;
use certwatch_server::config::Config;
use certwatch_server::metrics::{Metrics, TorState};
use certwatch_server::store::{RetryPolicy, Spacing, Store};

const T0: u64 = 1_800_000_000;

#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn report(domain: &str, verdict: &str) -> Report {
    let json = format!(
        r#"{{"schema_version":1,"domain":"{domain}","checked_at":"2027-01-15T08:00:00Z","verdict":"{verdict}",
        "endpoints":[],"confirmation":null,"setup":{{"zone_lines":[],"advice":[]}},"warnings":[]}}"#
    );
    serde_json::from_str(&json).unwrap()
}

struct Site {
    router: axum::Router,
    store: Store,
    clock: Arc<TestClock>,
}

impl Site {
    async fn new() -> Site {
        let mut config = Config::defaults();
        config.blind_after = Duration::from_secs(3600);
        config.outbox_stale_after = Duration::from_secs(600);
        let store = Store::open("sqlite::memory:")
            .await
            .unwrap()
            .with_alert_policy(config.alert_policy());
        let metrics = Arc::new(Metrics::new());
        metrics.set_tor(TorState::NotUsed);
        let clock = Arc::new(TestClock(AtomicU64::new(T0)));
        let state = AppState::new(
            store.clone(),
            Arc::new(config),
            metrics,
            clock.clone(),
            Arc::new(tokio::sync::Notify::new()),
        );
        Site {
            router: certwatch_server::web::router(state),
            store,
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_unix() as i64
    }

    fn set(&self, secs_after_t0: u64) {
        self.clock.0.store(T0 + secs_after_t0, Ordering::SeqCst);
    }

    async fn get(&self, uri: &str) -> (StatusCode, String) {
        let r = self
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn health(&self) -> (StatusCode, Value) {
        let (s, b) = self.get("/healthz").await;
        (s, serde_json::from_str(&b).unwrap())
    }

    async fn metric(&self, name: &str) -> Option<i64> {
        let (s, text) = self.get("/metrics").await;
        assert_eq!(s, StatusCode::OK);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| v.trim().parse().unwrap())
    }

    /// Runs one check of `domain` now with this verdict (`None`: the check failed).
    async fn check(&self, domain: &str, verdict: Option<&str>) {
        let now = self.now();
        self.store.request_check(domain, now).await.unwrap();
        let jobs = self.store.claim_due("t", now, 300, 10).await.unwrap();
        let job = jobs.iter().find(|j| j.domain == domain).unwrap();
        let outcome = verdict.map_or(Err("probes failed".to_owned()), |v| Ok(report(domain, v)));
        self.store
            .finish(
                job,
                "t",
                now,
                outcome,
                Spacing {
                    interval: 900,
                    jitter: 0,
                },
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn healthz_and_metrics_show_blindness_and_the_outbox_backlog() {
    let site = Site::new().await;
    // Nothing watched: ok, not blind, empty outbox.
    let (s, h) = site.health().await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["blind"], false);
    assert_eq!(h["watched_domains"], 0);
    assert_eq!(h["outbox"]["pending"], 0);
    assert_eq!(h["seconds_since_last_conclusive"], Value::Null);
    assert_eq!(site.metric("certwatch_outbox_pending").await, Some(0));
    assert_eq!(site.metric("certwatch_blind").await, Some(0));
    assert_eq!(
        site.metric("certwatch_seconds_since_last_conclusive_probe")
            .await,
        None
    );

    // Two watched domains; a conclusive check of one at T0 + 100.
    for d in ["a.example", "b.example"] {
        site.store
            .add_subscription(d, "email", "op@example.org", site.now())
            .await
            .unwrap();
    }
    site.set(100);
    site.check("a.example", Some("match")).await;
    site.set(1000);
    let (_, h) = site.health().await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["watched_domains"], 2);
    assert_eq!(h["seconds_since_last_conclusive"], 900);
    // b.example was never checked: unseen since it was added at T0.
    assert_eq!(h["oldest_watched_conclusive_age_seconds"], 1000);
    assert_eq!(
        site.metric("certwatch_seconds_since_last_conclusive_probe")
            .await,
        Some(900)
    );
    assert_eq!(
        site.metric("certwatch_oldest_watched_conclusive_age_seconds")
            .await,
        Some(1000)
    );

    // Only failing checks from then on: blind once the newest conclusive check is older
    // than blind_after (1 h), i.e. after T0 + 3700. Not before.
    site.set(3700);
    site.check("a.example", None).await;
    let (s, h) = site.health().await;
    assert_eq!(
        (s, h["status"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{h}"
    );
    site.set(3701);
    let (s, h) = site.health().await;
    assert_eq!(s, StatusCode::OK, "degraded is still served with 200");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["blind"], true);
    assert_eq!(site.metric("certwatch_blind").await, Some(1));

    // A conclusive check: no longer blind. The outbox holds, for the subscribers (pending:
    // no mail relay): a.example's blind alert (the failing check at T0 + 3700), b.example's
    // (the sweep; never conclusive), and a.example's recovery.
    site.store.sweep_blind(site.now()).await.unwrap();
    site.check("a.example", Some("match")).await;
    let (_, h) = site.health().await;
    assert_eq!(h["blind"], false, "{h}");
    assert_eq!(h["outbox"]["pending"], 3, "{h}");
    assert_eq!(h["outbox"]["oldest_pending_age_seconds"], 1);
    assert_eq!(h["status"], "ok", "{h}");

    // The oldest pending delivery (T0 + 3700) goes stale after outbox_stale_after (600 s).
    site.set(3700 + 600);
    assert_eq!(site.health().await.1["status"], "ok");
    site.set(3700 + 601);
    let (_, h) = site.health().await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["outbox"]["stale"], true);
    assert_eq!(h["outbox"]["oldest_pending_age_seconds"], 601);
    assert_eq!(
        site.metric("certwatch_outbox_oldest_pending_age_seconds")
            .await,
        Some(601)
    );
    assert_eq!(site.metric("certwatch_outbox_pending").await, Some(3));

    // A delivery that fails for good is counted, and leaves the backlog.
    let claimed = site
        .store
        .claim_deliveries("t", site.now(), 60, 1)
        .await
        .unwrap();
    let one = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    site.store
        .mark_attempt_failed(&claimed[0].id, site.now(), "550 no such user", one)
        .await
        .unwrap();
    let (_, h) = site.health().await;
    assert_eq!(h["outbox"]["failed"], 1, "{h}");
    assert_eq!(h["outbox"]["pending"], 2);
    assert_eq!(site.metric("certwatch_outbox_failed").await, Some(1));
}
