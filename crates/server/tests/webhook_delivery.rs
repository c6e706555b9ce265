//! Webhooks against an in-process receiver on 127.0.0.1: the challenge, the signature and
//! the delivery id, retries with backoff on HTTP 500 reusing the id, and the SSRF guard on
//! the URL and on every redirect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use certwatch::Report;
use certwatch_server::notify::webhook::{
    self, DELIVERY_HEADER, SIGNATURE_HEADER, WebhookClient, WebhookError, WebhookOptions,
};
use certwatch_server::store::{RetryPolicy, Spacing, Store};

const T0: i64 = 1_800_000_000;
const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[derive(Default)]
struct Receiver {
    /// (delivery id header, signature header, body) of every POST to /hook.
    got: Mutex<Vec<(String, String, Vec<u8>)>>,
    /// Statuses to answer, in order (then 200).
    script: Mutex<Vec<u16>>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    r.got
        .lock()
        .unwrap()
        .push((h(DELIVERY_HEADER), h(SIGNATURE_HEADER), body.to_vec()));
    let status = {
        let mut s = r.script.lock().unwrap();
        if s.is_empty() { 200 } else { s.remove(0) }
    };
    // Echo a challenge, as a real receiver does after checking the signature.
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = match v.get("challenge") {
        Some(c) => serde_json::json!({"challenge": c}).to_string(),
        None => "{}".to_owned(),
    };
    (StatusCode::from_u16(status).unwrap(), answer).into_response()
}

fn redirect_to(location: &'static str) -> impl Fn() -> std::future::Ready<Response> + Clone {
    move || {
        std::future::ready(
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
        )
    }
}

async fn start() -> (SocketAddr, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .route(
            "/to-private",
            post(redirect_to("http://169.254.169.254/latest")),
        )
        .route("/to-hook", post(redirect_to("/hook")))
        .route("/loop", post(redirect_to("/loop")))
        .route("/silent", post(|| async { "{}" }))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, r)
}

/// A client that refuses special-use addresses except the receiver's 127.0.0.1.
fn client() -> WebhookClient {
    WebhookClient::new(WebhookOptions {
        exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..WebhookOptions::default()
    })
    .unwrap()
}

fn bogus_report() -> Report {
    bogus_report_for("example.org")
}

fn bogus_report_for(domain: &str) -> Report {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": domain, "checked_at": "2027-01-15T08:00:00Z",
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

/// A store with a challenge-confirmed webhook subscription to `url` and one pending
/// "bogus opened" delivery.
async fn store_with_alert(client: &WebhookClient, url: &str) -> Store {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let id = store
        .add_pending_subscription("example.org", "webhook", url, SECRET, T0)
        .await
        .unwrap()
        .unwrap();
    // Not confirmed yet: not watched, so no check and no delivery.
    assert!(store.claim_due("w", T0, 60, 1).await.unwrap().is_empty());
    let secret = hex::decode(SECRET).unwrap();
    client.challenge(url, &secret, "c0ffee").await.unwrap();
    assert!(store.confirm_subscription(id, T0).await.unwrap());
    let job = store.claim_due("w", T0, 60, 1).await.unwrap().remove(0);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&job, "w", T0 + 1, Ok(bogus_report()), spacing)
        .await
        .unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);
    store
}

#[tokio::test]
async fn delivery_is_signed_and_carries_its_id() {
    let (addr, r) = start().await;
    let url = format!("http://{addr}/hook");
    let client = client();
    let store = store_with_alert(&client, &url).await;
    r.got.lock().unwrap().clear(); // the challenge
    let pass = webhook::run_outbox_once(
        &store,
        &client,
        "w",
        T0 + 2,
        60,
        10,
        RetryPolicy::default(),
        "https://certwatch.example",
    )
    .await
    .unwrap();
    assert_eq!((pass.claimed, pass.delivered, pass.failed), (1, 1, 0));
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (id, sig, body) = &got[0];
    let secret = hex::decode(SECRET).unwrap();
    assert!(
        webhook::verify_signature(&secret, body, sig),
        "signature {sig}"
    );
    assert!(!webhook::verify_signature(
        b"another secret, 16+ bytes",
        body,
        sig
    ));
    let d = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(&d[0].id, id);
    assert_eq!(d[0].state, "delivered");
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["type"], "alert");
    assert_eq!(v["delivery_id"], id.as_str());
    assert_eq!(v["domain"], "example.org");
    assert_eq!(v["condition"], "bogus");
    assert_eq!(v["kind"], "opened");
    assert!(
        v["detail"].as_str().unwrap().contains("expired RRSIG"),
        "{v}"
    );
    assert_eq!(
        v["domain_url"],
        "https://certwatch.example/domains/example.org"
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
}

#[tokio::test]
async fn http_500_is_retried_with_backoff_under_the_same_id() {
    let (addr, r) = start().await;
    let url = format!("http://{addr}/hook");
    let client = client();
    let store = store_with_alert(&client, &url).await;
    r.got.lock().unwrap().clear();
    *r.script.lock().unwrap() = vec![500, 500];
    let retry = RetryPolicy {
        base_delay: 30,
        max_delay: 3600,
        max_attempts: 5,
    };
    let run = |now: i64| {
        let (store, client) = (store.clone(), client.clone());
        async move {
            webhook::run_outbox_once(
                &store,
                &client,
                "w",
                now,
                60,
                10,
                retry,
                "https://c.example",
            )
            .await
            .unwrap()
        }
    };
    let mut now = T0 + 2;
    assert_eq!(run(now).await.failed, 1);
    // Backing off: nothing is due before the delay (30 s) ends.
    assert_eq!(run(now + 29).await.claimed, 0);
    now += 30;
    assert_eq!(run(now).await.failed, 1);
    assert_eq!(run(now + 59).await.claimed, 0);
    now += 60;
    assert_eq!(run(now).await.delivered, 1);
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|g| g.0 == got[0].0),
        "one id for every attempt"
    );
    let d = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(d[0].id, got[0].0);
    assert_eq!(d[0].state, "delivered");
    assert_eq!(d[0].attempts, 2);
    // The stored error names the host, never the URL's path.
    assert_eq!(
        d[0].last_error.as_deref(),
        Some("127.0.0.1: HTTP status 500")
    );
}

#[tokio::test]
async fn private_addresses_are_refused_on_the_url_and_on_redirects() {
    let (addr, r) = start().await;
    let strict = WebhookClient::new(WebhookOptions::default()).unwrap();
    let err = strict
        .post(&format!("http://{addr}/hook"), &[], b"{}")
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Guard(_)), "{err}");
    assert!(r.got.lock().unwrap().is_empty(), "nothing was sent");

    let client = client();
    let err = client
        .post(&format!("http://{addr}/to-private"), &[], b"{}")
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Guard(_)), "{err}");
    let err = client
        .post(&format!("http://{addr}/loop"), &[], b"{}")
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Redirect { .. }), "{err}");
    // A redirect to an allowed target is followed (re-checked), body and headers re-sent.
    let answer = client
        .post(
            &format!("http://{addr}/to-hook"),
            &[(DELIVERY_HEADER, "abc".to_owned())],
            b"{}",
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(r.got.lock().unwrap()[0].0, "abc");
}

#[tokio::test]
async fn an_unanswered_challenge_does_not_confirm() {
    let (addr, r) = start().await;
    let client = client();
    *r.script.lock().unwrap() = vec![404];
    let secret = hex::decode(SECRET).unwrap();
    let url = format!("http://{addr}/hook");
    let err = client.challenge(&url, &secret, "c1").await.unwrap_err();
    assert!(
        matches!(err, WebhookError::Status { status: 404, .. }),
        "{err}"
    );
    // A receiver that answers 200 without echoing the challenge.
    let err = client
        .challenge(&format!("http://{addr}/silent"), &secret, "c2")
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Challenge { .. }), "{err}");
}

#[tokio::test]
async fn the_worker_delivers_then_stops() {
    use certwatch_server::notify::worker::{self, WorkerConfig};
    let (addr, r) = start().await;
    let url = format!("http://{addr}/hook");
    let client = client();
    let store = store_with_alert(&client, &url).await;
    r.got.lock().unwrap().clear();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clock = Arc::new(certwatch_server::clock::TokioClock::starting_at(
        u64::try_from(T0 + 5).unwrap(),
    ));
    let config = WorkerConfig {
        interval: std::time::Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let task = tokio::spawn(worker::run(
        store.clone(),
        client,
        None,
        clock,
        config,
        stop_rx,
    ));
    // Wait (bounded, not timed) until the delivery is marked.
    for _ in 0..3000 {
        if store.outbox_backlog().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert_eq!(r.got.lock().unwrap().len(), 1);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

/// A receiver that answers challenges, then never answers an alert (until the client gives
/// up). Counts the alerts it got.
async fn start_stalling() -> (SocketAddr, Arc<Mutex<u32>>) {
    let got = Arc::new(Mutex::new(0u32));
    let app = Router::new()
        .route(
            "/{*rest}",
            post(
                |State(got): State<Arc<Mutex<u32>>>, body: Bytes| async move {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if let Some(c) = v.get("challenge") {
                        return serde_json::json!({"challenge": c}).to_string();
                    }
                    *got.lock().unwrap() += 1;
                    std::future::pending::<String>().await
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

/// Adds a challenge-confirmed webhook subscription of `domain` to `url` and one pending
/// "bogus opened" delivery for it, made at `at`.
async fn add_alert(store: &Store, client: &WebhookClient, domain: &str, url: &str, at: i64) {
    let id = store
        .add_pending_subscription(domain, "webhook", url, SECRET, at)
        .await
        .unwrap()
        .unwrap();
    let secret = hex::decode(SECRET).unwrap();
    client.challenge(url, &secret, "c0ffee").await.unwrap();
    assert!(store.confirm_subscription(id, at).await.unwrap());
    let job = store.claim_due("w", at, 60, 1).await.unwrap().remove(0);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&job, "w", at, Ok(bogus_report_for(domain)), spacing)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stalled_receiver_does_not_delay_another_subscriber() {
    let (fast_addr, fast) = start().await;
    let (slow_addr, slow) = start_stalling().await;
    let client = WebhookClient::new(WebhookOptions {
        exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        // Neither per-hop limit ends the stalled exchange: only the delivery's deadline.
        request_timeout: std::time::Duration::from_secs(3600),
        delivery_deadline: std::time::Duration::from_secs(2),
        ..WebhookOptions::default()
    })
    .unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    // The stalled receiver's delivery is older: claimed (and, sequentially, sent) first.
    let slow_url = format!("http://{slow_addr}/hook/T0KEN-in-the-path?k=secret");
    add_alert(&store, &client, "slow.example", &slow_url, T0).await;
    add_alert(
        &store,
        &client,
        "fast.example",
        &format!("http://{fast_addr}/hook"),
        T0 + 1,
    )
    .await;
    fast.got.lock().unwrap().clear();
    let pass = tokio::spawn({
        let (store, client) = (store.clone(), client.clone());
        async move {
            webhook::run_outbox_once(
                &store,
                &client,
                "w",
                T0 + 2,
                600,
                10,
                RetryPolicy::default(),
                "https://c.example",
            )
            .await
            .unwrap()
        }
    });
    // Bounded wait (not timed) for the other subscriber's alert.
    for _ in 0..3000 {
        if !fast.got.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        fast.got.lock().unwrap().len(),
        1,
        "the other subscriber got its alert"
    );
    // ...while the stalled delivery is still in flight: no attempt recorded yet.
    let slow_d = store.deliveries_of("slow.example", 10).await.unwrap();
    assert_eq!(
        (slow_d[0].state.as_str(), slow_d[0].attempts),
        ("pending", 0)
    );
    assert_eq!(
        *slow.lock().unwrap(),
        1,
        "the stalled receiver holds its alert"
    );
    let fast_d = store.deliveries_of("fast.example", 10).await.unwrap();
    // The stalled one ends at its deadline as a failed attempt, retried later.
    let pass = pass.await.unwrap();
    assert_eq!((pass.claimed, pass.delivered, pass.failed), (2, 1, 1));
    let fast_d2 = store.deliveries_of("fast.example", 10).await.unwrap();
    assert_eq!(fast_d2[0].state, "delivered", "{fast_d:?}");
    let slow_d = store.deliveries_of("slow.example", 10).await.unwrap();
    assert_eq!(
        (slow_d[0].state.as_str(), slow_d[0].attempts),
        ("pending", 1)
    );
    let error = slow_d[0].last_error.clone().unwrap();
    assert!(error.contains("did not finish"), "{error}");
    assert!(
        !error.contains("T0KEN") && !error.contains("secret"),
        "no URL path in the stored error: {error}"
    );
}

#[tokio::test]
async fn deliveries_to_one_host_are_bounded() {
    use certwatch_server::notify::worker::{MAX_IN_FLIGHT_PER_HOST, send_bounded};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let other_done_while_busy = Arc::new(Mutex::new(false));
    let items: Vec<(String, &str)> = (0..6)
        .map(|_| ("busy.example".to_owned(), "busy"))
        .chain([("other.example".to_owned(), "other")])
        .collect();
    let results = send_bounded(items, |kind| {
        let (now, peak, other) = (now.clone(), peak.clone(), other_done_while_busy.clone());
        async move {
            if kind == "other" {
                // Done before the busy host's sends all finished: not queued behind them.
                *other.lock().unwrap() = now.load(Ordering::SeqCst) > 0;
                return 0;
            }
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            now.fetch_sub(1, Ordering::SeqCst);
            1
        }
    })
    .await;
    assert_eq!(
        results,
        vec![1, 1, 1, 1, 1, 1, 0],
        "results in the items' order"
    );
    assert_eq!(peak.load(Ordering::SeqCst), MAX_IN_FLIGHT_PER_HOST);
    assert!(*other_done_while_busy.lock().unwrap());
}
