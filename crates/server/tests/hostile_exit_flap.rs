//! Hostile-exit admin notices do not flap (SQLite): the bad exit comes up again every few
//! checks, with clean checks (other exits) in between; the store keeps the last sighting
//! across checks, so the administrator gets one `opened`, and one `recovered` only after
//! `remind_after` without a sighting.

use certwatch::Report;
use certwatch_server::notify::incident::Policy;
use certwatch_server::store::{Job, Spacing, Store};

const T0: i64 = 1_800_000_000;
const KEY: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";
const REMIND: i64 = 3600;

/// A matching report of one DANE endpoint, with a `hostile-exit` warning when `sighting`.
fn report(sighting: bool) -> Report {
    let warnings: Vec<serde_json::Value> = if sighting {
        vec![serde_json::json!({"code": "hostile-exit",
            "message": "c2s-starttls xmpp.example.org:5222 [192.0.2.1] protocol error: 1 of 5 vantage points differ, a minority: tor:198.51.100.7 saw protocol-error (key sha256 unknown); the server itself matches"})]
    } else {
        Vec::new()
    };
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": "example.org", "checked_at": "2027-01-15T08:00:00Z",
        "verdict": "match", "confirmation": null,
        "endpoints": [{
            "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
            "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
            "tlsa": [format!("3 1 1 {KEY}")], "verdict": "match", "reason": "key-matched",
            "presented_spki_sha256": KEY, "matched_record": null,
            "vantage": "tor:192.0.2.11", "key_type": "ecdsa", "error": null
        }],
        "setup": {"zone_lines": [], "advice": []},
        "warnings": warnings
    }))
    .expect("test report JSON")
}

/// Claims the domain's due check and finishes it at `now` with `report`.
async fn check(store: &Store, now: i64, report: Report) {
    let claim_at = T0 + 1_000_000 + (now - T0) * 1000;
    let jobs: Vec<Job> = store.claim_due("w", claim_at, 60, 1).await.unwrap();
    assert_eq!(jobs.len(), 1, "the subscribed domain is due");
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&jobs[0], "w", now, Ok(report), spacing)
        .await
        .unwrap();
}

async fn kinds(store: &Store) -> Vec<String> {
    let mut notices = store.admin_notices(100).await.unwrap();
    notices.sort_by_key(|n| n.id);
    notices
        .iter()
        .map(|n| format!("{} {} at +{}", n.condition, n.kind, n.at - T0))
        .collect()
}

#[tokio::test]
async fn a_hostile_exit_seen_again_after_clean_checks_is_one_incident() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cw.db").display());
    let policy = Policy {
        blind_after: 6 * 3600,
        remind_after: REMIND,
    };
    let store = Store::open(&url).await.unwrap().with_alert_policy(policy);
    assert!(
        store
            .add_subscription("example.org", "webhook", "https://a.example/hook", T0)
            .await
            .unwrap()
    );
    check(&store, T0, report(true)).await;
    // Another exit: clean. Then the bad exit again, then clean checks for almost an hour.
    check(&store, T0 + 30, report(false)).await;
    check(&store, T0 + 60, report(true)).await;
    for dt in [120, 1800, 3000] {
        check(&store, T0 + dt, report(false)).await;
    }
    // A fresh store on the same file: the last sighting was written back, not only kept
    // in memory.
    drop(store);
    let store = Store::open(&url).await.unwrap().with_alert_policy(policy);
    check(&store, T0 + 60 + REMIND - 1, report(false)).await;
    assert_eq!(kinds(&store).await, ["hostile-exit opened at +0"]);
    // remind_after without a sighting: one recovered.
    check(&store, T0 + 60 + REMIND, report(false)).await;
    assert_eq!(
        kinds(&store).await,
        [
            "hostile-exit opened at +0",
            "hostile-exit recovered at +3660"
        ]
    );
    // No subscriber ever heard of it (and no admin contact is configured here).
    assert!(
        store
            .deliveries_of("example.org", 100)
            .await
            .unwrap()
            .is_empty()
    );
}
