//! The outbox on PostgreSQL (interop: the `postgres` part of scripts/interop-env): alerts
//! and deliveries made in the check's transaction, two instances claiming deliveries at once
//! never get the same one (`FOR UPDATE OF d SKIP LOCKED`), a lease that ends re-sends the
//! same id, backoff then `failed`, and `recovered`.
#![cfg(feature = "interop")]

use std::collections::BTreeSet;

use certwatch::Report;
use certwatch_server::store::{RetryPolicy, Spacing, Store};
use certwatch_testkit::Interop;

const T0: i64 = 1_800_000_000;

fn report(verdict: &str) -> Report {
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
        "setup": {"zone_lines": [], "advice": []}, "warnings": []
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
        "cw_outbox_{}_{}",
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

async fn check(store: &Store, now: i64, verdict: &str) {
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
        .finish(&job, "w", now, Ok(report(verdict)), spacing)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_works_on_postgres() {
    let url = fresh_database().await;
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    assert_eq!(
        a.schema_version().await.unwrap(),
        certwatch_server::store::CURRENT_VERSION
    );
    for i in 0..8 {
        a.add_subscription(
            "example.org",
            "webhook",
            &format!("https://h{i}.example/"),
            T0,
        )
        .await
        .unwrap();
    }
    check(&a, T0, "match").await;
    check(&a, T0 + 100, "mismatch").await;
    check(&b, T0 + 200, "mismatch").await;
    let all = a.deliveries_of("example.org", 100).await.unwrap();
    assert_eq!(all.len(), 8, "one alert, one delivery per subscriber");

    // Two instances claim at once: disjoint sets, together everything.
    let (ca, cb) = tokio::join!(
        a.claim_deliveries("a", T0 + 300, 60, 5),
        b.claim_deliveries("b", T0 + 300, 60, 5)
    );
    let (ca, cb) = (ca.unwrap(), cb.unwrap());
    let ids_a: BTreeSet<String> = ca.iter().map(|d| d.id.clone()).collect();
    let ids_b: BTreeSet<String> = cb.iter().map(|d| d.id.clone()).collect();
    assert!(ids_a.is_disjoint(&ids_b));
    assert_eq!(ids_a.len() + ids_b.len(), 8);

    // Instance a "dies" after sending; b delivers its own.
    for d in &cb {
        assert!(b.mark_delivered(&d.id, T0 + 301).await.unwrap());
    }
    let again = b.claim_deliveries("b", T0 + 360, 60, 10).await.unwrap();
    let again: BTreeSet<String> = again.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        again, ids_a,
        "after the lease, a's deliveries come back with their ids"
    );

    // Failures back off, then fail for good.
    let retry = RetryPolicy {
        base_delay: 10,
        max_delay: 100,
        max_attempts: 2,
    };
    let one = ids_a.iter().next().unwrap().clone();
    for id in &ids_a {
        if *id != one {
            b.mark_delivered(id, T0 + 361).await.unwrap();
        }
    }
    assert_eq!(
        b.mark_attempt_failed(&one, T0 + 361, "HTTP 500", retry)
            .await
            .unwrap()
            .as_deref(),
        Some("pending")
    );
    assert!(
        b.claim_deliveries("b", T0 + 370, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let c = b.claim_deliveries("b", T0 + 371, 60, 10).await.unwrap();
    assert_eq!(c[0].id, one);
    assert_eq!(
        b.mark_attempt_failed(&one, T0 + 372, "HTTP 500", retry)
            .await
            .unwrap()
            .as_deref(),
        Some("failed")
    );
    assert_eq!(a.failed_deliveries(10).await.unwrap()[0].id, one);
    assert_eq!(a.outbox_backlog().await.unwrap(), 0);

    check(&a, T0 + 1000, "match").await;
    let all = a.deliveries_of("example.org", 100).await.unwrap();
    assert_eq!(all.len(), 16);
    assert!(all[8..].iter().all(|d| d.alert.kind == "recovered"));
    assert!(a.remove_domain("example.org").await.unwrap());
    assert_eq!(a.outbox_backlog().await.unwrap(), 0);
}
