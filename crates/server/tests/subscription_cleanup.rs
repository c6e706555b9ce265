//! Subscribers' addresses are deleted everywhere: after an unsubscribe (including the admin
//! notice of a delivery that failed for good), and when an opt-in is never confirmed (the
//! sweep; such rows do not count toward the per-domain cap meanwhile). SQLite on a file,
//! read back with rusqlite to look at every text column.

use certwatch::Report;
use certwatch_server::store::{RetryPolicy, Spacing, Store};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const ALICE: &str = "alice@example.net";
const HOOK: &str = "https://hooks.example.net/services/T0KEN";
const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn bogus_report() -> Report {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": "example.org", "checked_at": "2027-01-15T08:00:00Z",
        "verdict": "bogus", "confirmation": null,
        "endpoints": [{
            "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
            "address": "192.0.2.1", "dnssec": "bogus", "dnssec_reason": "expired RRSIG",
            "tlsa": [], "verdict": "bogus", "reason": null,
            "presented_spki_sha256": null, "matched_record": null,
            "vantage": "direct", "key_type": null, "error": null
        }],
        "setup": {"zone_lines": [], "advice": []}, "warnings": []
    }))
    .unwrap()
}

/// Every text value of every column of `alerts`, `deliveries` and `subscriptions` that
/// contains `needle`, as "table.column: value".
fn rows_containing(path: &std::path::Path, needle: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut found = Vec::new();
    for table in ["alerts", "deliveries", "subscriptions"] {
        let columns: Vec<String> = c
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!columns.is_empty(), "table {table} exists");
        for col in columns {
            let mut stmt = c
                .prepare(&format!("SELECT CAST({col} AS TEXT) FROM {table}"))
                .unwrap();
            let values = stmt
                .query_map([], |r| r.get::<_, Option<String>>(0))
                .unwrap()
                .map(Result::unwrap);
            for v in values.flatten() {
                if v.contains(needle) {
                    found.push(format!("{table}.{col}: {v}"));
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn unsubscribing_leaves_the_address_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let alice = store
        .add_opt_in_subscription("example.org", "email", ALICE, T0, DAY)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .confirm_by_token(&alice.confirm, T0)
            .await
            .unwrap()
            .is_some()
    );
    let hook = store
        .add_pending_subscription("example.org", "webhook", HOOK, SECRET, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(store.confirm_subscription(hook, T0).await.unwrap());
    let job = store.claim_due("w", T0, 60, 1).await.unwrap().remove(0);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&job, "w", T0 + 1, Ok(bogus_report()), spacing)
        .await
        .unwrap();
    // Both deliveries fail for good: each makes an admin notice.
    let once = RetryPolicy {
        base_delay: 30,
        max_delay: 60,
        max_attempts: 1,
    };
    for channel in ["email", "webhook"] {
        let d = store
            .claim_channel_deliveries(channel, "w", T0 + 2, 60, 10)
            .await
            .unwrap();
        assert_eq!(d.len(), 1, "{channel}");
        store
            .mark_attempt_failed(&d[0].id, T0 + 2, "SMTP: 550 refused", once)
            .await
            .unwrap();
    }
    assert!(
        !rows_containing(&path, ALICE).is_empty(),
        "the address was stored"
    );
    assert!(!rows_containing(&path, "hooks.example.net").is_empty());

    assert!(
        store
            .unsubscribe_by_token(&alice.unsubscribe)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .remove_subscription("example.org", "webhook", HOOK)
            .await
            .unwrap()
    );
    assert_eq!(rows_containing(&path, ALICE), Vec::<String>::new());
    assert_eq!(rows_containing(&path, "T0KEN"), Vec::<String>::new());
    assert_eq!(
        rows_containing(&path, "hooks.example.net"),
        Vec::<String>::new()
    );
    // The notices stay, naming the subscription and channel.
    let notices = rows_containing(&path, "failed after 1 attempts");
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices.iter().any(|n| n.contains("email subscription")),
        "{notices:?}"
    );
}

#[tokio::test]
async fn unconfirmed_subscriptions_expire_and_stop_counting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // Never confirmed: expires after an hour.
    store
        .add_opt_in_subscription("example.org", "email", "mallory@example.net", T0, 3600)
        .await
        .unwrap()
        .unwrap();
    // Confirmed: stays.
    let alice = store
        .add_opt_in_subscription("example.org", "email", ALICE, T0, 3600)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .confirm_by_token(&alice.confirm, T0)
            .await
            .unwrap()
            .is_some()
    );
    // A webhook left pending by a crash during its challenge (no deadline): a day.
    store
        .add_pending_subscription("example.org", "webhook", HOOK, SECRET, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .live_subscription_count("example.org", T0)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.sweep_expired_subscriptions(T0 + 3600).await.unwrap(),
        0
    );
    // Past the hour: the email opt-in no longer counts, and the sweep deletes it.
    assert_eq!(
        store
            .live_subscription_count("example.org", T0 + 3601)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.sweep_expired_subscriptions(T0 + 3601).await.unwrap(),
        1
    );
    assert_eq!(
        rows_containing(&path, "mallory@example.net"),
        Vec::<String>::new()
    );
    assert!(!rows_containing(&path, ALICE).is_empty());
    // Past a day: the leftover webhook too.
    assert_eq!(
        store
            .sweep_expired_subscriptions(T0 + DAY + 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(rows_containing(&path, "T0KEN"), Vec::<String>::new());
    assert_eq!(
        store
            .live_subscription_count("example.org", T0 + DAY + 1)
            .await
            .unwrap(),
        1
    );
    let left = store.subscriptions(Some("example.org"), 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].address, ALICE);
}
