//! Evidence bundles in process, on SQLite (issue 9): a finished check's signed bundle is
//! stored with it, its alerts link to it, the webhook body and the email name its URL, the
//! site serves it byte for byte, and it verifies with the key the site publishes. A blind
//! alert (no conclusive check) has no bundle; a check that could not run stores none.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use certwatch::Report;
use certwatch::evidence::{EvidenceBundle, verify_signature};
use certwatch_server::app::AppState;
use certwatch_server::config::Config;
use certwatch_server::metrics::Metrics;
use certwatch_server::notify::email::{EmailOptions, EmailSender, SmtpSecurity};
use certwatch_server::notify::incident::Policy;
use certwatch_server::notify::webhook::alert_body;
use certwatch_server::store::{Delivery, Job, Spacing, Store};
use certwatch_server::web::{WebConfig, router_with};

const T0: i64 = 1_800_000_000;
const PUBLIC: &str = "https://certwatch.example";
const KEY: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";
const OTHER: &str = "18ba39dd58f16c14527b95e1c4bf11b22d401b7e523fdb973540fde1c214d056";

fn report(domain: &str, verdict: &str, presented: &str) -> Report {
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
        "warnings": []
    }))
    .expect("test report JSON")
}

/// The report's bundle, signed with the store's key (what the runner does, without network:
/// no probes, no chains, one gap).
async fn signed(store: &Store, report: &Report, at: i64) -> Vec<u8> {
    let mut bundle = EvidenceBundle::for_report(report, u64::try_from(at).unwrap());
    bundle.gaps.push("test bundle: nothing gathered".into());
    bundle
        .sign(&store.evidence_signing_key().await.unwrap())
        .unwrap()
}

/// Claims the due check of `outcome`'s domain (of the report, or `example.org`) and
/// finishes it at `now` with `outcome` and `evidence`. Other due domains' claims are left to
/// lapse (their leases end long before the next claim).
async fn check(
    store: &Store,
    now: i64,
    outcome: Result<Report, String>,
    evidence: Option<Vec<u8>>,
) {
    let domain = outcome
        .as_ref()
        .map_or("example.org".to_owned(), |r| r.domain.clone());
    let claim_at = T0 + 1_000_000 + (now - T0) * 1000;
    let jobs: Vec<Job> = store.claim_due("w", claim_at, 60, 10).await.unwrap();
    let job = jobs
        .iter()
        .find(|j| j.domain == domain)
        .expect("the subscribed domain is due");
    store
        .finish_with_evidence(
            job,
            "w",
            now,
            outcome,
            evidence,
            Spacing {
                interval: 900,
                jitter: 0,
            },
        )
        .await
        .unwrap();
}

struct Site {
    store: Store,
    router: Router,
}

async fn site() -> Site {
    let store = Store::open("sqlite::memory:")
        .await
        .unwrap()
        .with_alert_policy(Policy {
            blind_after: 3600,
            remind_after: 86_400,
        });
    for (domain, channel, address) in [
        ("example.org", "webhook", "https://hooks.example/a"),
        ("example.org", "email", "ops@example.org"),
        ("other.example", "webhook", "https://hooks.example/a"),
    ] {
        assert!(
            store
                .add_subscription(domain, channel, address, T0)
                .await
                .unwrap()
        );
    }
    let state = AppState::new(
        store.clone(),
        Arc::new(Config::defaults()),
        Arc::new(Metrics::new()),
        Arc::new(certwatch::FixedClock(u64::try_from(T0).unwrap())),
        Arc::new(tokio::sync::Notify::new()),
    );
    let web = WebConfig {
        public_url: PUBLIC.into(),
        ..WebConfig::default()
    };
    let router = router_with(state, &web).unwrap();
    Site { store, router }
}

async fn get(router: &Router, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

fn path_of(url: &str) -> &str {
    url.strip_prefix(PUBLIC)
        .expect("an absolute URL on the public URL")
}

/// The webhook deliveries of `condition` and `kind` (one per alert here).
fn deliveries_of(all: &[Delivery], condition: &str, kind: &str) -> Vec<Delivery> {
    all.iter()
        .filter(|d| d.alert.condition == condition && d.alert.kind == kind)
        .filter(|d| d.channel == "webhook")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_mismatch_alert_links_a_bundle_that_the_site_serves_and_that_verifies() {
    let Site { store, router } = site().await;
    let mismatch = report("example.org", "mismatch", OTHER);
    let bytes = signed(&store, &mismatch, T0 + 10).await;
    check(&store, T0 + 10, Ok(mismatch), Some(bytes.clone())).await;

    // The check stored its bundle, and its alert links to it.
    let stored = store.latest_evidence("example.org").await.unwrap().unwrap();
    assert_eq!(stored.body, bytes);
    assert_eq!(
        stored.sha256,
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
    );
    let all = store.deliveries_of("example.org", 100).await.unwrap();
    let opened = deliveries_of(&all, "mismatch", "opened");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].alert.evidence_id, Some(stored.id));
    assert_eq!(
        store
            .evidence_of_check(opened[0].alert.check_id.unwrap())
            .await
            .unwrap()
            .map(|e| e.id),
        Some(stored.id)
    );

    // The webhook body names the bundle's absolute URL and the key's.
    let body: serde_json::Value = serde_json::from_slice(&alert_body(&opened[0], PUBLIC)).unwrap();
    let url = body["evidence_url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        format!("{PUBLIC}/domains/example.org/evidence/{}.json", stored.id)
    );
    let key_url = body["evidence_key_url"].as_str().unwrap().to_owned();

    // So does the email.
    let sender = EmailSender::new(&EmailOptions {
        host: "127.0.0.1".into(),
        port: 25,
        security: SmtpSecurity::Plain,
        credentials: None,
        from: "certwatch <alerts@certwatch.example>".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let email = all
        .iter()
        .find(|d| d.channel == "email" && d.alert.id == opened[0].alert.id)
        .unwrap();
    let mail = sender
        .alert_message(email, PUBLIC, "tok", T0 + 11)
        .unwrap()
        .formatted();
    let mail = String::from_utf8_lossy(&mail).replace("=\r\n", "");
    assert!(mail.contains(&url), "{mail}");

    // The site serves the very bytes, as a JSON download.
    let (status, headers, served) = get(&router, path_of(&url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(
        headers["x-certwatch-evidence-sha256"],
        stored.sha256.as_str()
    );
    assert_eq!(served, bytes);
    let (status, _, latest) = get(&router, "/domains/example.org/evidence/latest.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest, bytes);

    // They verify with the key the site publishes, and not with another.
    let (status, headers, key) = get(&router, path_of(&key_url)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let key: serde_json::Value = serde_json::from_slice(&key).unwrap();
    assert_eq!(key["algorithm"], "ed25519");
    let public = base64::engine::general_purpose::STANDARD
        .decode(key["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        key["key_id"].as_str().unwrap(),
        certwatch::evidence::key_id(&public)
    );
    let bundle = verify_signature(&served, &public).unwrap();
    assert_eq!(bundle.domain, "example.org");
    assert_eq!(bundle.verdict, certwatch::Verdict::Mismatch);
    let mut forged = public.clone();
    forged[0] ^= 1;
    assert!(verify_signature(&served, &forged).is_err());
    let (status, _, page) = get(&router, "/evidence-key").await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains(key["public_key"].as_str().unwrap()));

    // The domain page links the latest bundle and the alert's.
    let (status, _, page) = get(&router, "/domains/example.org").await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("/domains/example.org/evidence/latest.json"),
        "{page}"
    );
    assert!(page.contains(path_of(&url)), "{page}");

    // Unknown ids, another domain's id and malformed names are 404s.
    let other = report("other.example", "match", KEY);
    let other_bytes = signed(&store, &other, T0 + 20).await;
    check(&store, T0 + 20, Ok(other), Some(other_bytes)).await;
    let other_id = store
        .latest_evidence("other.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_ne!(other_id, stored.id);
    for uri in [
        format!("/domains/example.org/evidence/{other_id}.json"),
        format!("/domains/other.example/evidence/{}.json", stored.id),
        "/domains/example.org/evidence/999999.json".to_owned(),
        "/domains/example.org/evidence/1".to_owned(),
        "/domains/example.org/evidence/-1.json".to_owned(),
        "/domains/example.org/evidence/99999999999999999999999.json".to_owned(),
        "/domains/never-checked.example/evidence/latest.json".to_owned(),
    ] {
        let (status, _, _) = get(&router, &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn a_blind_alert_has_no_bundle_and_recovery_has_one() {
    let Site { store, router } = site().await;
    // A check that could not run stores no bundle, even when given one.
    let junk = signed(&store, &report("example.org", "match", KEY), T0).await;
    check(
        &store,
        T0 + 10,
        Err("resolver unreachable".into()),
        Some(junk),
    )
    .await;
    assert!(
        store
            .latest_evidence("example.org")
            .await
            .unwrap()
            .is_none()
    );
    // Past the blindness threshold without a conclusive result: a blind alert.
    check(&store, T0 + 7200, Err("resolver unreachable".into()), None).await;
    let all = store.deliveries_of("example.org", 100).await.unwrap();
    let blind = deliveries_of(&all, "blind", "opened");
    assert_eq!(blind.len(), 1);
    assert_eq!(blind[0].alert.evidence_id, None);
    let body: serde_json::Value = serde_json::from_slice(&alert_body(&blind[0], PUBLIC)).unwrap();
    assert!(body["evidence_url"].is_null(), "{body}");
    let (status, _, _) = get(&router, "/domains/example.org/evidence/latest.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The conclusive check that ends the blindness carries a bundle, linked from "recovered".
    let good = report("example.org", "match", KEY);
    let bytes = signed(&store, &good, T0 + 7300).await;
    check(&store, T0 + 7300, Ok(good), Some(bytes.clone())).await;
    let all = store.deliveries_of("example.org", 100).await.unwrap();
    let recovered = deliveries_of(&all, "blind", "recovered");
    assert_eq!(recovered.len(), 1);
    let id = recovered[0]
        .alert
        .evidence_id
        .expect("the recovery has a bundle");
    let (status, _, served) =
        get(&router, &format!("/domains/example.org/evidence/{id}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, bytes);
    let alerts = store.alerts_of("example.org", 10).await.unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].kind, "recovered");
    assert_eq!(alerts[1].evidence_id, None);
}

#[tokio::test]
async fn bundles_expire_like_checks_unless_an_alert_links_them() {
    let Site { store, .. } = site().await;
    let day = 86_400;
    let latest = || async {
        store
            .latest_evidence("example.org")
            .await
            .unwrap()
            .unwrap()
            .id
    };
    // A mismatch that lasts: opened (linked), seen again within the quiet period (no alert,
    // unlinked), then a reminder (linked).
    let bad = report("example.org", "mismatch", OTHER);
    let mut ids = Vec::new();
    for at in [T0 + 10, T0 + day, T0 + 2 * day] {
        let b = signed(&store, &bad, at).await;
        check(&store, at, Ok(bad.clone()), Some(b)).await;
        ids.push(latest().await);
    }
    let kinds: Vec<(String, Option<i64>)> = store
        .alerts_of("example.org", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.kind, a.evidence_id))
        .collect();
    assert_eq!(
        kinds,
        [
            ("reminder".to_owned(), Some(ids[2])),
            ("opened".to_owned(), Some(ids[0]))
        ]
    );
    // Past the retention of the unlinked one: it goes; the linked ones and the newest stay.
    let at = T0 + day + certwatch_server::store::EVIDENCE_RETENTION_SECS + 1;
    let b = signed(&store, &bad, at).await;
    check(&store, at, Ok(bad.clone()), Some(b)).await;
    let newest = latest().await;
    let kept = |id: i64| {
        let store = store.clone();
        async move { store.evidence("example.org", id).await.unwrap().is_some() }
    };
    assert!(kept(ids[0]).await, "linked from the open incident's alert");
    assert!(!kept(ids[1]).await, "unlinked, past the retention");
    assert!(kept(ids[2]).await);
    assert!(kept(newest).await);
    // Removing the domain removes its bundles.
    assert!(store.remove_domain("example.org").await.unwrap());
    assert!(!kept(newest).await);
}
