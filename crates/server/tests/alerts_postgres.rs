//! This session's alert parts on PostgreSQL (interop: the `postgres` part of
//! scripts/interop-env): the blindness sweep, the heartbeat, admin contacts with the
//! `delivery-failed` notice, and the daily digest (migration 0009), each checked against
//! the same behaviour the SQLite tests assert.
#![cfg(feature = "interop")]

use certwatch::Report;
use certwatch_server::notify::incident::Policy;
use certwatch_server::store::{
    ADMIN_EMAIL_SUBSCRIPTION, ADMIN_WEBHOOK_SUBSCRIPTION, AdminContacts, RetryPolicy, Spacing,
    Store,
};
use certwatch_testkit::Interop;

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_800_000_000;

fn report(verdict: &str, warnings: &[&str]) -> Report {
    let warnings: Vec<serde_json::Value> = warnings
        .iter()
        .map(|c| serde_json::json!({"code": c, "message": format!("{c}: exit 198.51.100.7 saw another key")}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": "example.org", "checked_at": "2027-01-15T08:00:00Z",
        "verdict": verdict, "confirmation": null,
        "endpoints": [{
            "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
            "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
            "tlsa": [], "verdict": verdict, "reason": null,
            "presented_spki_sha256": "abcd", "matched_record": null,
            "vantage": "direct", "key_type": "ecdsa", "error": null
        }],
        "setup": {"zone_lines": [], "advice": []}, "warnings": warnings
    }))
    .unwrap()
}

async fn fresh_database() -> String {
    let env = Interop::require();
    let url = env
        .str("postgres.url")
        .expect("postgres.url in env.json")
        .to_owned();
    let name = format!(
        "cw_alerts_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let (admin, create) = (url.clone(), name.clone());
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connect to postgres.url");
        c.batch_execute(&format!("CREATE DATABASE {create}"))
            .unwrap();
    })
    .join()
    .unwrap();
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

async fn check(store: &Store, now: i64, outcome: Result<Report, String>) {
    let claim_at = T0 + 1_000_000 + (now - T0) * 1000;
    let job = store
        .claim_due("w", claim_at, 60, 1)
        .await
        .unwrap()
        .remove(0);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&job, "w", now, outcome, spacing)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_heartbeat_admin_notices_and_digest_on_postgres() {
    let url = fresh_database().await;
    let store = Store::open(&url).await.unwrap().with_alert_policy(Policy {
        blind_after: 3600,
        remind_after: 7200,
    });
    assert_eq!(
        store.schema_version().await.unwrap(),
        certwatch_server::store::CURRENT_VERSION
    );
    let mut contacts = AdminContacts::default();
    contacts.email = Some("hostmaster@example.org".into());
    contacts.webhook_url = Some("https://admin.example/hook".into());
    contacts.webhook_secret = Some("ab".repeat(16));
    store.set_admin_contacts(&contacts).await.unwrap();
    store.set_admin_contacts(&contacts).await.unwrap(); // replaces, no duplicate key
    assert_eq!(store.admin_contacts().await.unwrap(), contacts);
    assert_eq!(
        store
            .subscription_secret(ADMIN_WEBHOOK_SUBSCRIPTION)
            .await
            .unwrap(),
        Some("ab".repeat(16))
    );
    let sub = store
        .add_pending_subscription("example.org", "webhook", "https://a.example/h", "cd", T0)
        .await
        .unwrap()
        .unwrap();
    store.confirm_subscription(sub, T0).await.unwrap();

    // The sweep: nothing before blind_after, one blind alert after, no second one.
    assert_eq!(store.sweep_blind(T0 + 3599).await.unwrap(), 0);
    let hb = store.heartbeat(T0 + 3601).await.unwrap();
    assert_eq!(hb.watched, 1);
    assert!(hb.blind(T0 + 3601, 3600));
    assert_eq!(store.sweep_blind(T0 + 3600).await.unwrap(), 1);
    assert_eq!(store.sweep_blind(T0 + 3660).await.unwrap(), 0);
    let hb = store.heartbeat(T0 + 3700).await.unwrap();
    assert_eq!((hb.pending, hb.oldest_pending_at), (1, Some(T0 + 3600)));

    // A hostile exit: two admin deliveries, no subscriber delivery. The conclusive check
    // also recovers blind (one subscriber delivery).
    check(&store, T0 + 4000, Ok(report("match", &["hostile-exit"]))).await;
    let ds = store.deliveries_of("example.org", 100).await.unwrap();
    let hostile: Vec<i64> = ds
        .iter()
        .filter(|d| d.alert.condition == "hostile-exit")
        .map(|d| d.subscription_id)
        .collect();
    assert_eq!(hostile.len(), 2);
    assert!(
        hostile.contains(&ADMIN_EMAIL_SUBSCRIPTION)
            && hostile.contains(&ADMIN_WEBHOOK_SUBSCRIPTION)
    );
    assert!(
        !store
            .heartbeat(T0 + 4000)
            .await
            .unwrap()
            .blind(T0 + 4000, 3600)
    );

    // The subscriber's blind delivery fails for good: one delivery-failed admin notice.
    let retry = RetryPolicy {
        base_delay: 1,
        max_delay: 1,
        max_attempts: 1,
    };
    let blind = ds
        .iter()
        .find(|d| d.subscription_id == sub && d.alert.condition == "blind")
        .unwrap();
    store
        .mark_attempt_failed(&blind.id, T0 + 4100, "HTTP status 500", retry)
        .await
        .unwrap();
    let notices = store.admin_notices(10).await.unwrap();
    assert!(notices.iter().any(|n| n.condition == "delivery-failed"
        && n.detail.as_deref().unwrap_or("").contains(&blind.id)));
    assert_eq!(store.heartbeat(T0 + 4100).await.unwrap().failed, 1);

    // The daily digest (T0 is 08:00 UTC): once that day.
    assert!(store.set_subscription_digest(sub, true).await.unwrap());
    assert_eq!(store.daily_digest(T0, 9).await.unwrap(), 0, "before 09:00");
    assert_eq!(store.daily_digest(T0 + 3600, 9).await.unwrap(), 1);
    assert_eq!(store.daily_digest(T0 + 7200, 9).await.unwrap(), 0);
    assert_eq!(store.daily_digest(T0 + 86_400 + 3600, 9).await.unwrap(), 1);
    assert!(
        store
            .incidents("example.org", 10)
            .await
            .unwrap()
            .iter()
            .all(|i| i.condition != "digest")
    );
    drop(store);
    drop_database(&url);
}

/// Drops the scratch database (closing the store's connection by force).
fn drop_database(url: &str) {
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let admin = Interop::require()
        .str("postgres.url")
        .expect("postgres.url in env.json")
        .to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    })
    .join()
    .unwrap();
}
