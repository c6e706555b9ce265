//! The optional daily digest (issue 9): once per UTC day from the configured hour, one
//! `digest` delivery per confirmed subscription that opted in, with the checks of the last
//! 24 h, the last verdict and the open incidents; the webhook body says `"event":"digest"`;
//! the mail is plain text with the unsubscribe link. Also on tokio's paused clock through
//! the sweep task: one digest a day, not more.

use std::sync::Arc;
use std::time::Duration;

use certwatch::Report;
use certwatch_server::clock::TokioClock;
use certwatch_server::notify::{digest, webhook, worker};
use certwatch_server::store::{Spacing, Store};

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_800_000_000;
/// That day's midnight (UTC).
const DAY: i64 = T0 - 8 * 3600;

fn report(verdict: &str) -> Report {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": "a.example", "checked_at": "2027-01-15T08:00:00Z",
        "verdict": verdict, "confirmation": null,
        "endpoints": [{
            "service": "c2s-starttls", "target": "xmpp.a.example", "port": 5222,
            "address": "192.0.2.1", "dnssec": "bogus", "dnssec_reason": "expired RRSIG",
            "tlsa": [], "verdict": verdict, "reason": null,
            "presented_spki_sha256": null, "matched_record": null,
            "vantage": "direct", "key_type": null, "error": null
        }],
        "setup": {"zone_lines": [], "advice": []}, "warnings": []
    }))
    .unwrap()
}

async fn check(store: &Store, now: i64, verdict: &str) {
    store.request_check("a.example", now).await.unwrap();
    let jobs = store.claim_due("w", now, 60, 10).await.unwrap();
    let job = jobs.iter().find(|j| j.domain == "a.example").unwrap();
    store
        .finish(
            job,
            "w",
            now,
            Ok(report(verdict)),
            Spacing {
                interval: 900,
                jitter: 0,
            },
        )
        .await
        .unwrap();
}

/// a.example: a webhook subscriber with the digest, an email subscriber without;
/// b.example: an unconfirmed subscriber with the digest. Returns (store, webhook sub id).
async fn setup() -> (Store, i64) {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let hook = store
        .add_pending_subscription(
            "a.example",
            "webhook",
            "https://hooks.example/a",
            &"ab".repeat(32),
            DAY - 86_400,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .confirm_subscription(hook, DAY - 86_400)
        .await
        .unwrap();
    assert!(store.set_subscription_digest(hook, true).await.unwrap());
    store
        .add_subscription("a.example", "email", "op@example.org", DAY - 86_400)
        .await
        .unwrap();
    let pending = store
        .add_pending_subscription("b.example", "webhook", "https://hooks.example/b", "cd", DAY)
        .await
        .unwrap()
        .unwrap();
    assert!(store.set_subscription_digest(pending, true).await.unwrap());
    assert!(!store.set_subscription_digest(9999, true).await.unwrap());
    (store, hook)
}

fn digests(ds: &[certwatch_server::store::Delivery]) -> Vec<&certwatch_server::store::Delivery> {
    ds.iter().filter(|d| digest::is_digest(d)).collect()
}

#[tokio::test]
async fn one_digest_a_day_per_opted_in_subscription_with_the_facts() {
    let (store, hook) = setup().await;
    // Checks: one 25 h before the digest (not counted), three within 24 h; the last is
    // bogus, which opens an incident.
    check(&store, DAY + 7 * 3600 - 25 * 3600, "match").await;
    check(&store, DAY - 3600, "match").await;
    check(&store, DAY + 3600, "match").await;
    check(&store, DAY + 2 * 3600, "bogus").await;
    let before = store.deliveries_of("a.example", 100).await.unwrap().len();

    // Before the hour (07:00 UTC): nothing.
    assert_eq!(store.daily_digest(DAY + 7 * 3600 - 1, 7).await.unwrap(), 0);
    // At 07:00: one delivery (the webhook subscriber; not the email one, not b.example's
    // unconfirmed one). Later that day: nothing more.
    assert_eq!(store.daily_digest(DAY + 7 * 3600, 7).await.unwrap(), 1);
    assert_eq!(store.daily_digest(DAY + 7 * 3600 + 60, 7).await.unwrap(), 0);
    assert_eq!(store.daily_digest(DAY + 23 * 3600, 7).await.unwrap(), 0);
    let all = store.deliveries_of("a.example", 100).await.unwrap();
    assert_eq!(all.len(), before + 1);
    let ds = digests(&all);
    assert_eq!(ds.len(), 1);
    let d = ds[0];
    assert_eq!(d.subscription_id, hook);
    assert_eq!(
        (d.alert.condition.as_str(), d.alert.audience.as_str()),
        ("digest", "subscribers")
    );
    assert!(
        store
            .deliveries_of("b.example", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let f = digest::facts(d);
    assert_eq!(f.checks_24h, 3);
    assert_eq!(f.last_verdict.as_deref(), Some("bogus"));
    assert_eq!(f.last_checked_at, Some(DAY + 2 * 3600));
    assert_eq!(f.open_incidents.len(), 1);
    assert_eq!(f.open_incidents[0].condition, "bogus");
    // The digest is not an incident of the domain.
    let incidents = store.incidents("a.example", 10).await.unwrap();
    assert!(
        incidents.iter().all(|i| i.condition != "digest"),
        "{incidents:?}"
    );

    // The webhook body.
    let body: serde_json::Value =
        serde_json::from_slice(&webhook::alert_body(d, "https://cw.example/")).unwrap();
    assert_eq!(body["event"], "digest");
    assert_eq!(body["delivery_id"], d.id.as_str());
    assert_eq!(body["checks_24h"], 3);
    assert_eq!(body["last_verdict"], "bogus");
    assert_eq!(body["open_incidents"][0]["condition"], "bogus");
    assert_eq!(body["domain_url"], "https://cw.example/domains/a.example");
    let summary = body["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "certwatch is alive; 3 checks of a.example in the last 24 h, last verdict bogus at 2027-01-15T02:00:00Z"
        ),
        "{summary}"
    );
    assert!(summary.ends_with("open incidents: bogus since 2027-01-15T02:00:00Z"));
    // The mail.
    let (subject, text) = digest::email_text(d, "https://cw.example", "TOKEN");
    assert_eq!(subject, "[certwatch] daily digest: a.example");
    assert!(text.contains(summary) && text.contains(&d.id));
    assert!(text.contains("https://cw.example/subscriptions/unsubscribe?token=TOKEN"));

    // The next day: one more. After opting out: none.
    assert_eq!(
        store
            .daily_digest(DAY + 86_400 + 7 * 3600, 7)
            .await
            .unwrap(),
        1
    );
    assert!(store.set_subscription_digest(hook, false).await.unwrap());
    assert_eq!(
        store
            .daily_digest(DAY + 2 * 86_400 + 7 * 3600, 7)
            .await
            .unwrap(),
        0
    );
    let all = store.deliveries_of("a.example", 100).await.unwrap();
    assert_eq!(digests(&all).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_sweep_task_queues_one_digest_per_day() {
    let (store, _) = setup().await;
    // Start at 08:00 on DAY (after the hour): today's digest at once, then one per day at
    // 07:00, over three days and a half.
    let clock = Arc::new(TokioClock::starting_at(u64::try_from(T0).unwrap()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker::run_sweeps(
        store.clone(),
        clock,
        worker::SWEEP_INTERVAL,
        7,
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_secs(3 * 86_400 + 12 * 3600)).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let all = store.deliveries_of("a.example", 100).await.unwrap();
    let mut at: Vec<i64> = digests(&all).iter().map(|d| d.alert.at).collect();
    at.sort_unstable();
    assert_eq!(at.len(), 4, "{at:?}");
    assert_eq!(at[0], T0);
    for (i, t) in at[1..].iter().enumerate() {
        let day = DAY + 86_400 * (i64::try_from(i).unwrap() + 1);
        assert!(
            (day + 7 * 3600..day + 7 * 3600 + 60).contains(t),
            "digest {i} at {t}"
        );
    }
}
