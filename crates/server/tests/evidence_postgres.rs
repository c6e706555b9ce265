//! Evidence bundles on PostgreSQL (interop: the `postgres` part of scripts/interop-env):
//! migration 0008 applies, `finish_with_evidence` stores the bundle in the check's
//! transaction and links the check's alerts, the readers keep domains apart, retention keeps
//! linked bundles and the newest, and removing the domain removes its bundles.
#![cfg(feature = "interop")]

use certwatch::Report;
use certwatch::evidence::{EvidenceBundle, verify_signature};
use certwatch_server::store::{EVIDENCE_RETENTION_SECS, Spacing, Store};
use certwatch_testkit::Interop;
use ring::signature::KeyPair as _;

const T0: i64 = 1_800_000_000;

fn report(domain: &str, verdict: &str) -> Report {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": domain, "checked_at": "2027-01-15T08:00:00Z",
        "verdict": verdict, "confirmation": null,
        "endpoints": [{
            "service": "c2s-starttls", "target": format!("xmpp.{domain}"), "port": 5222,
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
        "cw_evidence_{}_{}",
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

/// Finishes the due check of `domain` at `now` with a signed bundle; returns the bundle.
async fn check(store: &Store, domain: &str, now: i64, verdict: &str) -> Vec<u8> {
    let r = report(domain, verdict);
    let bytes = EvidenceBundle::for_report(&r, u64::try_from(now).unwrap())
        .sign(&store.evidence_signing_key().await.unwrap())
        .unwrap();
    let claim_at = T0 + 1_000_000 + (now - T0) * 1000;
    let jobs = store.claim_due("w", claim_at, 60, 10).await.unwrap();
    let job = jobs.iter().find(|j| j.domain == domain).unwrap();
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish_with_evidence(job, "w", now, Ok(r), Some(bytes.clone()), spacing)
        .await
        .unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_are_stored_linked_and_expired_on_postgres() {
    let url = fresh_database().await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        certwatch_server::store::CURRENT_VERSION
    );
    for domain in ["example.org", "other.example"] {
        store
            .add_subscription(domain, "webhook", "https://h.example/", T0)
            .await
            .unwrap();
    }
    let day = 86_400;
    let mut ids = Vec::new();
    for at in [T0 + 10, T0 + day, T0 + 2 * day] {
        let bytes = check(&store, "example.org", at, "mismatch").await;
        let latest = store.latest_evidence("example.org").await.unwrap().unwrap();
        assert_eq!(latest.body, bytes);
        ids.push(latest.id);
    }
    let other = check(&store, "other.example", T0 + 2 * day + 100, "match").await;
    let other_id = store
        .latest_evidence("other.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    // Opened, then a reminder a day later: each linked to its check's bundle.
    let linked: Vec<(String, Option<i64>)> = store
        .deliveries_of("example.org", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.alert.kind, d.alert.evidence_id))
        .collect();
    assert_eq!(
        linked,
        [
            ("opened".to_owned(), Some(ids[0])),
            ("reminder".to_owned(), Some(ids[2]))
        ]
    );
    // Another domain's id is not this domain's.
    assert!(
        store
            .evidence("example.org", other_id)
            .await
            .unwrap()
            .is_none()
    );
    let served = store
        .evidence("other.example", other_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.body, other);
    let key = store.evidence_signing_key().await.unwrap();
    verify_signature(&served.body, key.public_key().as_ref()).unwrap();

    // Retention: the unlinked bundle goes, the linked ones and the newest stay.
    let at = T0 + day + EVIDENCE_RETENTION_SECS + 1;
    check(&store, "example.org", at, "mismatch").await;
    let kept = |id: i64| {
        let store = store.clone();
        async move { store.evidence("example.org", id).await.unwrap().is_some() }
    };
    assert!(kept(ids[0]).await);
    assert!(!kept(ids[1]).await);
    assert!(kept(ids[2]).await);
    assert!(store.remove_domain("example.org").await.unwrap());
    assert!(!kept(ids[0]).await);
    assert!(
        store
            .evidence("other.example", other_id)
            .await
            .unwrap()
            .is_some()
    );
}
