//! Admin notices go to the administrator's contacts through the outbox (issue 9): a
//! hostile exit reaches the admin email and webhook and no subscriber; a subscriber's
//! delivery that fails for good makes a `delivery-failed` notice for the admin; an admin
//! delivery that fails makes none (no loop). An in-process receiver on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use certwatch::Report;
use certwatch_server::notify::webhook::{
    self, DELIVERY_HEADER, SIGNATURE_HEADER, WebhookClient, WebhookOptions,
};
use certwatch_server::store::{
    ADMIN_EMAIL_SUBSCRIPTION, ADMIN_WEBHOOK_SUBSCRIPTION, AdminContacts, RetryPolicy, Spacing,
    Store,
};

const T0: i64 = 1_800_000_000;
const SUB_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const ADMIN_SECRET: &str = "ffeeddccbbaa99887766554433221100";
const KEY: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";

/// (path, delivery id, signature, body) of one POST.
type Post = (String, String, String, Vec<u8>);

#[derive(Default)]
struct Receiver {
    /// Every POST.
    got: Mutex<Vec<Post>>,
    /// Whether /admin fails (500).
    admin_fails: Mutex<bool>,
}

async fn record(r: &Receiver, path: &str, headers: &HeaderMap, body: &Bytes) {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    r.got.lock().unwrap().push((
        path.to_owned(),
        h(DELIVERY_HEADER),
        h(SIGNATURE_HEADER),
        body.to_vec(),
    ));
}

async fn start() -> (SocketAddr, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = Router::new()
        .route(
            "/admin",
            post(
                |State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes| async move {
                    record(&r, "/admin", &headers, &body).await;
                    if *r.admin_fails.lock().unwrap() {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .route(
            "/sub",
            post(
                |State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes| async move {
                    record(&r, "/sub", &headers, &body).await;
                    StatusCode::INTERNAL_SERVER_ERROR
                },
            ),
        )
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, r)
}

fn client() -> WebhookClient {
    WebhookClient::new(WebhookOptions {
        exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..WebhookOptions::default()
    })
    .unwrap()
}

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
            "tlsa": [format!("3 1 1 {KEY}")], "verdict": verdict, "reason": null,
            "presented_spki_sha256": KEY, "matched_record": null,
            "vantage": "direct", "key_type": "ecdsa", "error": null
        }],
        "setup": {"zone_lines": [], "advice": []},
        "warnings": warnings
    }))
    .unwrap()
}

async fn check(store: &Store, now: i64, outcome: Result<Report, String>) {
    let claim_at = T0 + 1_000_000 + (now - T0) * 1000;
    let jobs = store.claim_due("w", claim_at, 60, 1).await.unwrap();
    assert_eq!(jobs.len(), 1);
    store
        .finish(
            &jobs[0],
            "w",
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

/// A store with a confirmed webhook subscriber (to /sub, which always fails) and the admin
/// contacts (a mailbox, and the webhook /admin).
async fn setup(addr: SocketAddr) -> Store {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let id = store
        .add_pending_subscription(
            "example.org",
            "webhook",
            &format!("http://{addr}/sub"),
            SUB_SECRET,
            T0,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store.confirm_subscription(id, T0).await.unwrap());
    let mut contacts = AdminContacts::default();
    contacts.email = Some("hostmaster@example.org".into());
    contacts.webhook_url = Some(format!("http://{addr}/admin"));
    contacts.webhook_secret = Some(ADMIN_SECRET.into());
    store.set_admin_contacts(&contacts).await.unwrap();
    assert_eq!(store.admin_contacts().await.unwrap(), contacts);
    assert!(!format!("{contacts:?}").contains(ADMIN_SECRET));
    store
}

async fn pass(store: &Store, now: i64, retry: RetryPolicy) -> webhook::OutboxPass {
    webhook::run_outbox_once(
        store,
        &client(),
        "w",
        now,
        60,
        10,
        retry,
        "https://cw.example",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_hostile_exit_reaches_the_admin_contacts_and_no_subscriber() {
    let (addr, receiver) = start().await;
    let store = setup(addr).await;
    check(&store, T0 + 10, Ok(report("match", &["hostile-exit"]))).await;
    let deliveries = store.deliveries_of("example.org", 10).await.unwrap();
    let mut subs: Vec<(i64, &str)> = deliveries
        .iter()
        .map(|d| (d.subscription_id, d.channel.as_str()))
        .collect();
    subs.sort_unstable();
    assert_eq!(
        subs,
        vec![
            (ADMIN_WEBHOOK_SUBSCRIPTION, "webhook"),
            (ADMIN_EMAIL_SUBSCRIPTION, "email"),
        ],
        "the admin's two contacts, no subscriber"
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.alert.condition == "hostile-exit")
    );
    // The webhook worker sends the admin's webhook delivery, signed with the admin secret.
    let p = pass(&store, T0 + 20, RetryPolicy::default()).await;
    assert_eq!((p.claimed, p.delivered), (1, 1));
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "nothing to the subscriber's /sub");
    let (path, id, sig, body) = &got[0];
    assert_eq!(path, "/admin");
    let admin_hook = deliveries
        .iter()
        .find(|d| d.subscription_id == ADMIN_WEBHOOK_SUBSCRIPTION)
        .unwrap();
    assert_eq!(id, &admin_hook.id);
    assert!(webhook::verify_signature(
        &hex::decode(ADMIN_SECRET).unwrap(),
        body,
        sig
    ));
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["condition"], "hostile-exit");
    assert!(
        v["detail"].as_str().unwrap().contains("198.51.100.7"),
        "{v}"
    );
    // The email delivery waits for the email worker.
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);
}

#[tokio::test]
async fn a_delivery_failed_for_good_is_reported_to_the_admin_but_not_an_admin_failure() {
    let (addr, receiver) = start().await;
    let store = setup(addr).await;
    check(&store, T0 + 10, Ok(report("bogus", &[]))).await;
    let retry = RetryPolicy {
        base_delay: 10,
        max_delay: 10,
        max_attempts: 2,
    };
    // Two failed attempts of the subscriber's delivery: failed for good.
    assert_eq!(pass(&store, T0 + 10, retry).await.failed, 1);
    assert!(store.admin_notices(10).await.unwrap().is_empty());
    assert_eq!(pass(&store, T0 + 20, retry).await.failed, 1);
    let failed = store.failed_deliveries(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    let notices = store.admin_notices(10).await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(
        (n.condition.as_str(), n.kind.as_str(), n.audience.as_str()),
        ("delivery-failed", "notice", "admin")
    );
    assert_eq!(n.domain, "example.org");
    let detail = n.detail.as_deref().unwrap();
    assert!(
        detail.contains(&failed[0].id) && detail.contains("HTTP status 500"),
        "{detail}"
    );
    // Its deliveries: one per admin contact; the webhook one is sent now.
    let p = pass(&store, T0 + 30, retry).await;
    assert_eq!((p.claimed, p.delivered), (1, 1));
    let last = receiver.got.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.0, "/admin");
    let v: serde_json::Value = serde_json::from_slice(&last.3).unwrap();
    assert_eq!(v["condition"], "delivery-failed");

    // Another subscriber failure, with the admin webhook failing too: the admin's own
    // failed delivery makes no further notice.
    *receiver.admin_fails.lock().unwrap() = true;
    check(&store, T0 + 40, Ok(report("match", &[]))).await; // recovered: a new delivery
    for t in [T0 + 40, T0 + 50, T0 + 60, T0 + 70] {
        pass(&store, t, retry).await;
    }
    let notices = store.admin_notices(10).await.unwrap();
    assert_eq!(
        notices.len(),
        2,
        "one more for the recovered delivery, not for the admin's"
    );
    let failed = store.failed_deliveries(10).await.unwrap();
    assert!(
        failed
            .iter()
            .any(|d| d.subscription_id == ADMIN_WEBHOOK_SUBSCRIPTION),
        "{failed:?}"
    );
}
