//! The outbox on SQLite: alerts and their deliveries are made in the transaction of the
//! check that caused them; a worker claims deliveries with a lease; a crash between the send
//! and the commit re-sends the same delivery id; failures back off and end in the admin
//! view; hostile exits reach the admin only; blindness opens and recovers.

use certwatch::Report;
use certwatch_server::notify::incident::Policy;
use certwatch_server::store::{Job, RetryPolicy, Spacing, Store};

const T0: i64 = 1_800_000_000;
const KEY: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";
const OTHER: &str = "18ba39dd58f16c14527b95e1c4bf11b22d401b7e523fdb973540fde1c214d056";

/// A report with one DANE endpoint: `verdict`, the `presented` key, and warning codes.
fn report(domain: &str, verdict: &str, presented: &str, warnings: &[&str]) -> Report {
    let warnings: Vec<serde_json::Value> = warnings
        .iter()
        .map(|c| serde_json::json!({"code": c, "message": format!("{c}: exit 198.51.100.7 saw another key")}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": domain, "checked_at": "2027-01-15T08:00:00Z",
        "verdict": verdict, "confirmation": null,
        "endpoints": [{
            "service": "c2s-starttls", "target": format!("xmpp.{domain}"), "port": 5222,
            "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
            "tlsa": [format!("3 1 1 {KEY}")], "verdict": verdict, "reason": null,
            "presented_spki_sha256": presented, "matched_record": null,
            "vantage": "direct", "key_type": "ecdsa", "error": null
        }],
        "setup": {"zone_lines": [], "advice": []},
        "warnings": warnings
    }))
    .expect("test report JSON")
}

fn spacing() -> Spacing {
    Spacing {
        interval: 900,
        jitter: 0,
    }
}

/// Claims the domain's due check at `now` and finishes it with `outcome`.
async fn check(store: &Store, now: i64, outcome: Result<Report, String>) {
    // Claim at a time past its schedule whatever it says (the claim time only sets the
    // next due time; the check's result is recorded at `now`).
    let claim_at = T0 + 1_000_000 + (now - T0) * 1000;
    let jobs: Vec<Job> = store.claim_due("w", claim_at, 60, 1).await.unwrap();
    assert_eq!(jobs.len(), 1, "the subscribed domain is due");
    store
        .finish(&jobs[0], "w", now, outcome, spacing())
        .await
        .unwrap();
}

async fn subscribed_store(url: &str) -> Store {
    let store = Store::open(url).await.unwrap();
    for hook in ["https://a.example/hook", "https://b.example/hook"] {
        assert!(
            store
                .add_subscription("example.org", "webhook", hook, T0)
                .await
                .unwrap()
        );
    }
    store
}

#[tokio::test]
async fn one_delivery_per_subscriber_per_alert_made_with_the_check() {
    let store = subscribed_store("sqlite::memory:").await;
    check(
        &store,
        T0 + 10,
        Ok(report("example.org", "match", KEY, &[])),
    )
    .await;
    assert!(
        store
            .deliveries_of("example.org", 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);

    // The key changes: one "opened" mismatch alert, one delivery per subscriber.
    check(
        &store,
        T0 + 1000,
        Ok(report("example.org", "mismatch", OTHER, &[])),
    )
    .await;
    let d = store.deliveries_of("example.org", 100).await.unwrap();
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .all(|d| d.alert.condition == "mismatch" && d.alert.kind == "opened")
    );
    assert!(d.iter().all(|d| d.state == "pending" && d.id.len() == 32));
    let detail = d[0].alert.detail.as_deref().unwrap_or("");
    assert!(
        detail.contains("xmpp.example.org:5222 [192.0.2.1] key 18ba"),
        "{detail}"
    );
    assert_ne!(d[0].id, d[1].id);
    assert_eq!(
        vec![d[0].address.as_str(), d[1].address.as_str()],
        vec!["https://a.example/hook", "https://b.example/hook"]
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), 2);

    // It persists: no storm.
    for i in 2..6 {
        check(
            &store,
            T0 + i * 1000,
            Ok(report("example.org", "mismatch", OTHER, &[])),
        )
        .await;
    }
    assert_eq!(
        store.deliveries_of("example.org", 100).await.unwrap().len(),
        2
    );

    // Restored: one "recovered" per subscriber; the incident is closed.
    check(
        &store,
        T0 + 9000,
        Ok(report("example.org", "match", KEY, &[])),
    )
    .await;
    let d = store.deliveries_of("example.org", 100).await.unwrap();
    assert_eq!(d.len(), 4);
    assert!(d[2..].iter().all(|d| d.alert.kind == "recovered"));
    let inc = store.incidents("example.org", 10).await.unwrap();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].condition, "mismatch");
    assert_eq!(inc[0].opened_at, T0 + 1000);
    assert_eq!(inc[0].closed_at, Some(T0 + 9000));

    // Delivered, then older than the retention: the history is pruned.
    let claimed = store
        .claim_deliveries("a", T0 + 9001, 60, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    for d in &claimed {
        assert!(store.mark_delivered(&d.id, T0 + 9002).await.unwrap());
    }
    let later = T0 + 8999 + certwatch_server::store::HISTORY_RETENTION_SECS;
    check(&store, later, Ok(report("example.org", "match", KEY, &[]))).await;
    assert_eq!(
        store.deliveries_of("example.org", 100).await.unwrap().len(),
        4
    );
    check(
        &store,
        later + 1000,
        Ok(report("example.org", "match", KEY, &[])),
    )
    .await;
    assert!(
        store
            .deliveries_of("example.org", 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.incidents("example.org", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_between_send_and_commit_resends_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cw.db").display());
    let store = subscribed_store(&url).await;
    check(&store, T0, Ok(report("example.org", "bogus", KEY, &[]))).await;
    let claimed = store.claim_deliveries("a", T0 + 5, 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Leased: a second worker gets nothing while the lease runs.
    assert!(
        store
            .claim_deliveries("b", T0 + 6, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let sent: Vec<String> = claimed.iter().map(|d| d.id.clone()).collect();
    // "Sent", then the process dies before marking them delivered.
    drop(store);

    let store = Store::open(&url).await.unwrap();
    assert!(
        store
            .claim_deliveries("b", T0 + 30, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_deliveries("b", T0 + 65, 60, 10).await.unwrap();
    let mut resent: Vec<String> = again.iter().map(|d| d.id.clone()).collect();
    let mut sent_sorted = sent.clone();
    resent.sort();
    sent_sorted.sort();
    assert_eq!(
        resent, sent_sorted,
        "the retry after a crash reuses the ids"
    );
    for d in &again {
        assert!(store.mark_delivered(&d.id, T0 + 66).await.unwrap());
        // Already delivered: a late duplicate mark changes nothing.
        assert!(!store.mark_delivered(&d.id, T0 + 67).await.unwrap());
    }
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert!(
        store
            .claim_deliveries("b", T0 + 10_000, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn failures_back_off_then_go_to_the_admin_view() {
    let store = subscribed_store("sqlite::memory:").await;
    store
        .remove_subscription("example.org", "webhook", "https://b.example/hook")
        .await
        .unwrap();
    check(&store, T0, Ok(report("example.org", "bogus", KEY, &[]))).await;
    let retry = RetryPolicy {
        base_delay: 10,
        max_delay: 50,
        max_attempts: 4,
    };
    let mut now = T0;
    let mut delays = Vec::new();
    let id = store.claim_deliveries("a", now, 60, 10).await.unwrap()[0]
        .id
        .clone();
    for attempt in 1..=4u32 {
        let state = store
            .mark_attempt_failed(&id, now, "HTTP 500", retry)
            .await
            .unwrap();
        if attempt < 4 {
            assert_eq!(state.as_deref(), Some("pending"));
            let d = &store.deliveries_of("example.org", 10).await.unwrap()[0];
            delays.push(d.next_attempt_at - now);
            // Not due before its backoff ends.
            assert!(
                store
                    .claim_deliveries("a", d.next_attempt_at - 1, 60, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            now = d.next_attempt_at;
            let c = store.claim_deliveries("a", now, 60, 10).await.unwrap();
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].id, id, "every retry carries the same id");
            assert_eq!(c[0].attempts, attempt);
        } else {
            assert_eq!(state.as_deref(), Some("failed"));
        }
    }
    assert_eq!(delays, vec![10, 20, 40]);
    assert_eq!(retry.delay(4), 50);
    let failed = store.failed_deliveries(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, id);
    assert_eq!(failed[0].attempts, 4);
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
}

#[tokio::test]
async fn hostile_exit_is_an_admin_notice_without_deliveries() {
    let store = subscribed_store("sqlite::memory:").await;
    check(
        &store,
        T0,
        Ok(report("example.org", "match", KEY, &["hostile-exit"])),
    )
    .await;
    assert!(
        store
            .deliveries_of("example.org", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let notices = store.admin_notices(10).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].condition, "hostile-exit");
    assert_eq!(notices[0].audience, "admin");
    assert_eq!(notices[0].domain, "example.org");
    // The notice names the exit (from the report's warning).
    assert_eq!(
        notices[0].detail.as_deref(),
        Some("hostile-exit: exit 198.51.100.7 saw another key")
    );
}

#[tokio::test]
async fn blindness_alerts_after_the_threshold_then_recovers() {
    let store = subscribed_store("sqlite::memory:")
        .await
        .with_alert_policy(Policy {
            blind_after: 3600,
            remind_after: 86_400,
        });
    check(&store, T0, Ok(report("example.org", "match", KEY, &[]))).await;
    check(
        &store,
        T0 + 1800,
        Ok(report("example.org", "indeterminate", KEY, &[])),
    )
    .await;
    check(&store, T0 + 3000, Err("resolver unreachable".into())).await;
    assert!(
        store
            .deliveries_of("example.org", 10)
            .await
            .unwrap()
            .is_empty()
    );
    check(&store, T0 + 3600, Err("resolver unreachable".into())).await;
    let d = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .all(|d| d.alert.condition == "blind" && d.alert.kind == "opened")
    );
    check(&store, T0 + 7200, Err("resolver unreachable".into())).await;
    assert_eq!(
        store.deliveries_of("example.org", 10).await.unwrap().len(),
        2
    );
    check(
        &store,
        T0 + 9000,
        Ok(report("example.org", "match", KEY, &[])),
    )
    .await;
    let d = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(d.len(), 4);
    assert!(
        d[2..]
            .iter()
            .all(|d| d.alert.condition == "blind" && d.alert.kind == "recovered")
    );
}

#[tokio::test]
async fn removing_the_domain_or_unsubscribing_clears_the_outbox() {
    let store = subscribed_store("sqlite::memory:").await;
    check(&store, T0, Ok(report("example.org", "bogus", KEY, &[]))).await;
    assert_eq!(store.outbox_backlog().await.unwrap(), 2);
    store
        .remove_subscription("example.org", "webhook", "https://a.example/hook")
        .await
        .unwrap();
    let left = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].address, "https://b.example/hook");
    assert!(store.remove_domain("example.org").await.unwrap());
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert!(store.incidents("example.org", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_evidence_signing_key_is_made_once_and_kept() {
    use ring::signature::{ED25519, KeyPair, UnparsedPublicKey};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cw.db").display());
    let store = Store::open(&url).await.unwrap();
    let key = store.evidence_signing_key().await.unwrap();
    let public = key.public_key().as_ref().to_vec();
    assert_eq!(public.len(), 32);
    // The same key on every call, after a restart, and for a second instance.
    assert_eq!(
        store
            .evidence_signing_key()
            .await
            .unwrap()
            .public_key()
            .as_ref(),
        &public[..]
    );
    drop(store);
    let reopened = Store::open(&url).await.unwrap();
    let again = reopened.evidence_signing_key().await.unwrap();
    assert_eq!(again.public_key().as_ref(), &public[..]);
    let sig = again.sign(b"bundle");
    assert!(
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(b"bundle", sig.as_ref())
            .is_ok()
    );
    // Another database has another key.
    let other = Store::open("sqlite::memory:").await.unwrap();
    assert_ne!(
        other
            .evidence_signing_key()
            .await
            .unwrap()
            .public_key()
            .as_ref(),
        &public[..]
    );
}
