//! Subscriptions through the site and the API, in process (tower's `oneshot`, an in-memory
//! store, an injected clock), with an in-process SMTP sink and an in-process webhook
//! receiver on 127.0.0.1:
//!
//! - email double opt-in: the form, the mail and its links, a GET that confirms nothing,
//!   the POST that confirms once, replayed / forged / expired tokens, unsubscribe tokens
//!   that delete their own subscription only, RFC 8058 one-click;
//! - webhooks: a loopback URL refused by the SSRF guard, a redirect to loopback refused, a
//!   failed challenge leaves nothing, a successful one shows the secret once;
//! - the JSON API, CSRF, rate limits and caps, and escaping of hostile input.
//!
//! The receiver is on 127.0.0.1; where a test needs it to pass the SSRF guard, the client
//! exempts that one address (`WebhookOptions::exempt`), which stands for a public address,
//! and the site accepts `http://` URLs (`allow_private_targets`, which only governs the
//! scheme here: the client's guard stays on).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower::ServiceExt as _;

use certwatch::Clock;
use certwatch_server::app::AppState;
use certwatch_server::config::Config;
use certwatch_server::metrics::Metrics;
use certwatch_server::notify::email::{EmailOptions, EmailSender, SmtpSecurity};
use certwatch_server::notify::webhook::{self, SIGNATURE_HEADER, WebhookClient, WebhookOptions};
use certwatch_server::store::{Spacing, Store};
use certwatch_server::web::subscribe::{CONFIRM_TTL_SECS, MAX_PENDING_PER_DOMAIN, PER_CLIENT};
use certwatch_server::web::{WebConfig, router_with};

const T0: u64 = 1_800_000_000;
const SITE: &str = "https://certwatch.example";

// ---------------------------------------------------------------------------------------
// The SMTP sink (as in email_smtp.rs)

#[derive(Default)]
struct Sink {
    /// (recipients, raw message) of every accepted mail.
    mails: Mutex<Vec<(Vec<String>, String)>>,
}

async fn serve_smtp(sink: Arc<Sink>, stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut rcpts = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if cmd.starts_with("RCPT") {
            rcpts.push(line.trim_end().to_owned());
            w.write_all(b"250 ok\r\n").await?;
        } else if cmd == "DATA" {
            w.write_all(b"354 go on\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            sink.mails
                .lock()
                .unwrap()
                .push((std::mem::take(&mut rcpts), data));
            w.write_all(b"250 queued\r\n").await?;
        } else if cmd == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"250 ok\r\n").await?;
        }
    }
}

async fn start_sink() -> (u16, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = sink.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_smtp(s.clone(), stream));
        }
    });
    (port, sink)
}

fn sender(port: u16) -> EmailSender {
    EmailSender::new(&EmailOptions {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        credentials: None,
        from: "certwatch <alerts@certwatch.example>".into(),
        timeout: Duration::from_secs(30),
    })
    .unwrap()
}

/// Waits (real time, bounded) until the sink holds `n` mails; the site sends them in the
/// background.
async fn mails(sink: &Sink, n: usize) -> Vec<(Vec<String>, String)> {
    for _ in 0..1000 {
        let m = sink.mails.lock().unwrap().clone();
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {n} mails, got {}",
        sink.mails.lock().unwrap().len()
    );
}

/// The mail to `address` among `mails`.
fn mail_to<'a>(mails: &'a [(Vec<String>, String)], address: &str) -> &'a str {
    &mails
        .iter()
        .find(|(to, _)| to.iter().any(|r| r.contains(address)))
        .unwrap_or_else(|| panic!("no mail to {address}"))
        .1
}

/// The mail with its quoted-printable soft line breaks and `=3D` decoded.
fn flat(mail: &str) -> String {
    mail.replace("=\r\n", "").replace("=3D", "=")
}

/// The token after `path?token=` in a mail.
fn token_after(mail: &str, path: &str) -> String {
    let flat = flat(mail);
    let marker = format!("{path}?token=");
    let start = flat.find(&marker).expect(path) + marker.len();
    flat[start..start + 32].to_owned()
}

// ---------------------------------------------------------------------------------------
// The webhook receiver (as in webhook_delivery.rs)

#[derive(Default)]
struct Receiver {
    /// (path, signature header, body) of every POST.
    got: Mutex<Vec<(String, String, Vec<u8>)>>,
}

fn record(r: &Receiver, path: &str, headers: &HeaderMap, body: &Bytes) {
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    r.got
        .lock()
        .unwrap()
        .push((path.to_owned(), sig, body.to_vec()));
}

/// Echoes the challenge, as a receiver does.
async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    record(&r, "/hook", &headers, &body);
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = match v.get("challenge") {
        Some(c) => json!({ "challenge": c }).to_string(),
        None => "{}".to_owned(),
    };
    (StatusCode::OK, answer).into_response()
}

/// Answers 200 without echoing the challenge.
async fn silent(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    record(&r, "/silent", &headers, &body);
    (StatusCode::OK, "{}").into_response()
}

/// Redirects to a loopback address other than the exempted one.
async fn to_loopback(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    record(&r, "/to-loopback", &headers, &body);
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, "http://127.0.0.2/hook")],
    )
        .into_response()
}

async fn start_receiver() -> (SocketAddr, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/silent", post(silent))
        .route("/to-loopback", post(to_loopback))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, r)
}

/// A client whose guard refuses special-use addresses, except 127.0.0.1 when `exempt`.
fn client(exempt: bool) -> WebhookClient {
    WebhookClient::new(WebhookOptions {
        exempt: if exempt {
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        } else {
            Vec::new()
        },
        ..WebhookOptions::default()
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// The site

#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Site {
    router: Router,
    store: Store,
    clock: Arc<TestClock>,
}

#[derive(Default)]
struct Options {
    email: Option<EmailSender>,
    webhooks: Option<WebhookClient>,
    /// `allow_private_targets` in the configuration (accepts `http://` URLs).
    allow_private_targets: bool,
}

impl Site {
    async fn new(options: Options) -> Site {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let clock = Arc::new(TestClock(AtomicU64::new(T0)));
        let mut config = Config::defaults();
        config.allow_private_targets = options.allow_private_targets;
        let mut state = AppState::new(
            store.clone(),
            Arc::new(config),
            Arc::new(Metrics::new()),
            clock.clone(),
            Arc::new(tokio::sync::Notify::new()),
        );
        if let Some(e) = options.email {
            state = state.with_email(e);
        }
        if let Some(w) = options.webhooks {
            state = state.with_webhooks(w);
        }
        let web = WebConfig {
            public_url: SITE.into(),
            ..WebConfig::default()
        };
        let router = router_with(state, &web).unwrap();
        let site = Site {
            router,
            store,
            clock,
        };
        site.store_match("example.org").await;
        site
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.clock.now_unix() as i64
    }

    /// Stores a finished `match` check of `domain`, as the scheduler would.
    async fn store_match(&self, domain: &str) {
        self.store_report(json!({
            "schema_version": 1, "domain": domain, "checked_at": "2027-01-15T08:00:00Z",
            "verdict": "match", "confirmation": null,
            "endpoints": [{
                "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
                "tlsa": ["3 1 1 1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a"],
                "verdict": "match", "reason": "key-matched",
                "presented_spki_sha256": "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a",
                "matched_record": "3 1 1 1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a",
                "vantage": "direct", "key_type": "ecdsa", "error": null
            }],
            "setup": {"zone_lines": [], "advice": []}, "warnings": []
        }))
        .await;
    }

    /// Stores a finished `bogus` check of `domain`: an alert for its confirmed subscribers.
    async fn store_bogus(&self, domain: &str) {
        self.store_report(json!({
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
        .await;
    }

    async fn store_report(&self, report: Value) {
        let report: certwatch::Report = serde_json::from_value(report).unwrap();
        let domain = report.domain.clone();
        let domain = domain.as_str();
        let now = self.now();
        self.store.request_check(domain, now).await.unwrap();
        let jobs = self.store.claim_due("test", now, 300, 10).await.unwrap();
        let job = jobs.iter().find(|j| j.domain == domain).unwrap();
        self.store
            .finish(
                job,
                "test",
                now,
                Ok(report),
                Spacing {
                    interval: 900,
                    jitter: 0,
                },
            )
            .await
            .unwrap();
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
    }

    /// A CSRF cookie and its token, as a browser gets them from the home page.
    async fn csrf(&self) -> (String, String) {
        let home = self.get("/").await;
        let cookie = home
            .header("set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (cookie, home.hidden("csrf"))
    }

    /// Submits a form with a valid CSRF token, from client address `peer`.
    async fn form(&self, uri: &str, fields: &[(&str, &str)], peer: &str) -> Reply {
        let (cookie, token) = self.csrf().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &token));
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.send(from_peer(post_form(uri, Some(&cookie), &body), peer))
            .await
    }

    async fn subscriptions(&self) -> Vec<certwatch_server::store::Subscription> {
        self.store.subscriptions(None, 100).await.unwrap()
    }

    async fn confirmed(&self, address: &str) -> Option<bool> {
        self.subscriptions()
            .await
            .into_iter()
            .find(|s| s.address == address)
            .map(|s| s.confirmed_at.is_some())
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

fn post_form(uri: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn post_json(uri: &str, body: &Value, peer: &str) -> Request<Body> {
    from_peer(
        Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        peer,
    )
}

fn from_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

const FORGED: &str = "0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------------------------
// Email

#[tokio::test]
async fn email_double_opt_in_confirm_once_and_unsubscribe_only_oneself() {
    let (port, sink) = start_sink().await;
    let site = Site::new(Options {
        email: Some(sender(port)),
        ..Options::default()
    })
    .await;

    // The result page carries the form instead of the placeholder.
    let page = site.get("/domains/example.org").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("action=\"/domains/example.org/subscribe\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"email\""));
    assert!(
        page.body
            .contains("Webhooks are not configured on this instance")
    );
    assert!(!page.body.contains("Coming next"));

    // Subscribe alice.
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("email", "alice@example.net")],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Check your inbox"));
    let m = mails(&sink, 1).await;
    let mail = mail_to(&m, "alice@example.net");
    let flat_mail = flat(mail);
    assert!(
        flat_mail.contains(&format!("{SITE}/subscriptions/confirm?token=")),
        "{mail}"
    );
    assert!(
        flat_mail.contains(&format!(
            "List-Unsubscribe: <{SITE}/subscriptions/unsubscribe?token="
        )),
        "{mail}"
    );
    assert!(flat_mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    let alice_confirm = token_after(mail, "/subscriptions/confirm");
    let alice_unsub = token_after(mail, "/subscriptions/unsubscribe");
    assert_eq!(site.confirmed("alice@example.net").await, Some(false));

    // The GET (what a mail scanner fetches) shows a button and confirms nothing.
    let r = site
        .get(&format!("/subscriptions/confirm?token={alice_confirm}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("action=\"/subscriptions/confirm\""));
    assert_eq!(r.hidden("token"), alice_confirm);
    assert_eq!(site.confirmed("alice@example.net").await, Some(false));

    // The POST needs its CSRF token.
    let r = site
        .send(post_form(
            "/subscriptions/confirm",
            None,
            &format!("token={alice_confirm}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(site.confirmed("alice@example.net").await, Some(false));

    // The POST confirms, once.
    let r = site
        .form(
            "/subscriptions/confirm",
            &[("token", &alice_confirm)],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Subscription confirmed"));
    assert!(r.body.contains("alice@example.net"));
    assert_eq!(site.confirmed("alice@example.net").await, Some(true));
    let replay = site
        .form(
            "/subscriptions/confirm",
            &[("token", &alice_confirm)],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(replay.status, StatusCode::NOT_FOUND);
    assert!(replay.body.contains("Nothing was changed"));

    // A forged token, a malformed one, the unsubscribe token used to confirm: refused.
    let forged = site
        .form(
            "/subscriptions/confirm",
            &[("token", FORGED)],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    let malformed = site.get("/subscriptions/confirm?token=xyz").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    // Bob subscribes and confirms.
    site.form(
        "/domains/example.org/subscribe",
        &[("email", "bob@example.net")],
        "192.0.2.11:1000",
    )
    .await;
    let m = mails(&sink, 2).await;
    let bob_mail = mail_to(&m, "bob@example.net");
    let bob_confirm = token_after(bob_mail, "/subscriptions/confirm");
    let bob_unsub = token_after(bob_mail, "/subscriptions/unsubscribe");
    assert_ne!(bob_unsub, alice_unsub);
    let r = site
        .form(
            "/subscriptions/confirm",
            &[("token", &bob_unsub)],
            "192.0.2.11:1000",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "an unsubscribe token does not confirm"
    );
    let r = site
        .form(
            "/subscriptions/confirm",
            &[("token", &bob_confirm)],
            "192.0.2.11:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // The same answer for an address already confirmed: no enumeration.
    let again = site
        .form(
            "/domains/example.org/subscribe",
            &[("email", "alice@example.net")],
            "192.0.2.12:1000",
        )
        .await;
    let first = site
        .form(
            "/domains/example.org/subscribe",
            &[("email", "alice@example.com")],
            "192.0.2.12:1000",
        )
        .await;
    assert_eq!(again.status, first.status);
    assert_eq!(
        again.body.replace("alice@example.net", "ADDRESS"),
        first.body.replace("alice@example.com", "ADDRESS")
    );

    // Carol's link expires (the injected clock).
    site.form(
        "/domains/example.org/subscribe",
        &[("email", "carol@example.net")],
        "192.0.2.13:1000",
    )
    .await;
    let m = mails(&sink, 4).await;
    let carol_confirm = token_after(mail_to(&m, "carol@example.net"), "/subscriptions/confirm");
    site.advance(CONFIRM_TTL_SECS as u64 + 1);
    let r = site
        .form(
            "/subscriptions/confirm",
            &[("token", &carol_confirm)],
            "192.0.2.13:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(site.confirmed("carol@example.net").await, Some(false));

    // An alert for alice and bob waits in the outbox.
    site.store_bogus("example.org").await;
    let pending = |d: Vec<certwatch_server::store::Delivery>| {
        let mut a: Vec<String> = d.into_iter().map(|d| d.address).collect();
        a.sort();
        a
    };
    assert_eq!(
        pending(site.store.deliveries_of("example.org", 10).await.unwrap()),
        ["alice@example.net", "bob@example.net"]
    );

    // Unsubscribe: the GET changes nothing; alice's token deletes alice, and bob stays.
    let r = site
        .get(&format!("/subscriptions/unsubscribe?token={alice_unsub}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.hidden("token"), alice_unsub);
    assert_eq!(site.confirmed("alice@example.net").await, Some(true));
    let r = site
        .send(post_form(
            "/subscriptions/unsubscribe",
            None,
            &format!("token={alice_unsub}"),
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the page's form needs CSRF"
    );
    let r = site
        .form(
            "/subscriptions/unsubscribe",
            &[("token", &alice_unsub)],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Unsubscribed") && r.body.contains("alice@example.net"));
    assert_eq!(site.confirmed("alice@example.net").await, None, "deleted");
    assert_eq!(site.confirmed("bob@example.net").await, Some(true));
    assert_eq!(
        pending(site.store.deliveries_of("example.org", 10).await.unwrap()),
        ["bob@example.net"],
        "alice's delivery went with her address"
    );
    let r = site
        .form(
            "/subscriptions/unsubscribe",
            &[("token", &alice_unsub)],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "already deleted");
    let r = site
        .form(
            "/subscriptions/unsubscribe",
            &[("token", FORGED)],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(site.confirmed("bob@example.net").await, Some(true));

    // RFC 8058 one-click: no cookie, no CSRF token, the token in the URL.
    let r = site
        .send(post_form(
            &format!("/subscriptions/unsubscribe?token={bob_unsub}"),
            None,
            "List-Unsubscribe=One-Click",
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(site.confirmed("bob@example.net").await, None);
    assert!(
        site.store
            .deliveries_of("example.org", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(site.confirmed("carol@example.net").await, Some(false));
}

#[tokio::test]
async fn email_is_refused_when_not_configured() {
    let site = Site::new(Options::default()).await;
    let page = site.get("/domains/example.org/subscribe").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Email is not configured on this instance")
    );
    assert!(!page.body.contains("name=\"email\""));
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("email", "alice@example.net")],
            "192.0.2.10:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert!(r.body.contains("not configured"));
    let r = site
        .send(post_json(
            "/api/v1/subscriptions",
            &json!({"domain": "example.org", "email": "alice@example.net"}),
            "192.0.2.10:1000",
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.json()["error"], "not-configured");
    assert!(site.subscriptions().await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Webhooks

#[tokio::test]
async fn webhook_on_loopback_is_refused_without_allow_private_targets() {
    let (addr, receiver) = start_receiver().await;
    let site = Site::new(Options {
        webhooks: Some(client(false)),
        ..Options::default()
    })
    .await;
    // http:// is refused outright on an instance without allow_private_targets.
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &format!("http://{addr}/hook"))],
            "192.0.2.20:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("only https"), "{}", r.body);
    // https:// on 127.0.0.1: the guard refuses the address.
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &format!("https://{addr}/hook"))],
            "192.0.2.20:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Webhook URL refused"), "{}", r.body);
    assert!(r.body.contains("loopback"), "{}", r.body);
    assert!(site.subscriptions().await.is_empty(), "nothing is stored");
    assert!(receiver.got.lock().unwrap().is_empty(), "nothing was sent");
    // The same through the API.
    let r = site
        .send(post_json(
            "/api/v1/subscriptions",
            &json!({"domain": "example.org", "webhook_url": format!("https://{addr}/hook")}),
            "192.0.2.21:1000",
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"], "refused-url");
    assert!(site.subscriptions().await.is_empty());
}

#[tokio::test]
async fn webhook_redirecting_to_loopback_is_refused() {
    let (addr, receiver) = start_receiver().await;
    let site = Site::new(Options {
        webhooks: Some(client(true)),
        allow_private_targets: true,
        ..Options::default()
    })
    .await;
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &format!("http://{addr}/to-loopback"))],
            "192.0.2.22:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("redirect"), "{}", r.body);
    assert!(r.body.contains("127.0.0.2"), "{}", r.body);
    assert!(
        site.subscriptions().await.is_empty(),
        "the pending row is deleted"
    );
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "only the first hop was contacted");
    assert_eq!(got[0].0, "/to-loopback");
}

#[tokio::test]
async fn webhook_challenge_confirms_and_shows_the_secret_once() {
    let (addr, receiver) = start_receiver().await;
    let site = Site::new(Options {
        webhooks: Some(client(true)),
        allow_private_targets: true,
        ..Options::default()
    })
    .await;

    // A receiver that does not echo the challenge: refused, nothing kept.
    let silent = format!("http://{addr}/silent");
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &silent)],
            "192.0.2.30:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("did not answer the challenge"),
        "{}",
        r.body
    );
    assert!(site.subscriptions().await.is_empty());

    // A receiver that echoes it.
    let url = format!("http://{addr}/hook");
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &url)],
            "192.0.2.30:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Webhook confirmed"));
    assert!(r.body.contains("href=\"/docs/webhooks\""));
    assert!(r.body.contains(SIGNATURE_HEADER));
    let start = r.body.find("<code id=\"secret\">").unwrap() + "<code id=\"secret\">".len();
    let secret = r.body[start..start + 64].to_owned();
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    let subs = site.subscriptions().await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].address, url);
    assert_eq!(subs[0].channel, "webhook");
    assert!(subs[0].confirmed_at.is_some());
    assert_eq!(
        site.store
            .subscription_secret(subs[0].id)
            .await
            .unwrap()
            .as_deref(),
        Some(secret.as_str())
    );
    // The challenge was signed with that secret.
    let got = receiver.got.lock().unwrap().clone();
    let (_, sig, body) = got.iter().rev().find(|g| g.0 == "/hook").unwrap();
    assert!(webhook::verify_signature(
        &hex::decode(&secret).unwrap(),
        body,
        sig
    ));

    // Shown once: not on the domain's page, not when the URL subscribes again.
    let page = site.get("/domains/example.org").await;
    assert!(!page.body.contains(&secret));
    let again = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &url)],
            "192.0.2.31:1000",
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.body.contains("Already subscribed"));
    assert!(!again.body.contains(&secret));
    assert_eq!(
        site.store
            .subscription_secret(subs[0].id)
            .await
            .unwrap()
            .as_deref(),
        Some(secret.as_str()),
        "the secret is unchanged"
    );

    // The unsubscribe token on the page deletes the webhook (API).
    let marker = "/subscriptions/unsubscribe?token=";
    let at = r.body.find(marker).unwrap() + marker.len();
    let token = r.body[at..at + 32].to_owned();
    let gone = site
        .send(post_json(
            "/api/v1/subscriptions/unsubscribe",
            &json!({ "token": token }),
            "192.0.2.31:1000",
        ))
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.json()["status"], "deleted");
    assert!(site.subscriptions().await.is_empty());
}

// ---------------------------------------------------------------------------------------
// API

#[tokio::test]
async fn api_subscribes_by_email_and_webhook() {
    let (port, sink) = start_sink().await;
    let (addr, _receiver) = start_receiver().await;
    let site = Site::new(Options {
        email: Some(sender(port)),
        webhooks: Some(client(true)),
        allow_private_targets: true,
    })
    .await;
    let peer = "192.0.2.40:1000";

    // JSON only.
    let r = site
        .send(from_peer(
            post_form(
                "/api/v1/subscriptions",
                None,
                "domain=example.org&email=alice%40example.net",
            ),
            peer,
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.json()["error"], "bad-request");

    // Email: 202, and the mail.
    let r = site
        .send(post_json(
            "/api/v1/subscriptions",
            &json!({"domain": "Example.ORG.", "email": "alice@example.net"}),
            peer,
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.json()["domain"], "example.org");
    assert_eq!(r.json()["status"], "confirmation-requested");
    let m = mails(&sink, 1).await;
    let unsub = token_after(
        mail_to(&m, "alice@example.net"),
        "/subscriptions/unsubscribe",
    );

    // Webhook: 201 with the secret.
    let r = site
        .send(post_json(
            "/api/v1/subscriptions",
            &json!({"domain": "example.org", "webhook_url": format!("http://{addr}/hook")}),
            peer,
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "confirmed");
    assert_eq!(v["secret"].as_str().unwrap().len(), 64);
    assert_eq!(v["signature_header"], SIGNATURE_HEADER);

    // Errors.
    let cases = [
        (
            json!({"domain": "example.org"}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            json!({"domain": "example.org", "email": "a@example.net", "webhook_url": "https://x.example/"}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            json!({"domain": "example.org", "email": "not an address"}),
            StatusCode::BAD_REQUEST,
            "invalid-email",
        ),
        (
            json!({"domain": "example.org", "webhook_url": "ftp://x.example/"}),
            StatusCode::BAD_REQUEST,
            "invalid-url",
        ),
        (
            json!({"domain": "not a domain!", "email": "a@example.net"}),
            StatusCode::BAD_REQUEST,
            "invalid-domain",
        ),
        (
            json!({"domain": "unknown.example", "email": "a@example.net"}),
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            json!({"domain": "example.org", "mail": "a@example.net"}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
    ];
    for (body, status, code) in cases {
        let r = site
            .send(post_json("/api/v1/subscriptions", &body, "192.0.2.41:1000"))
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.json()["error"], code, "{body}");
    }
    assert!(
        site.store
            .subscriptions(Some("unknown.example"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Unsubscribe by token.
    let r = site
        .send(post_json(
            "/api/v1/subscriptions/unsubscribe",
            &json!({ "token": FORGED }),
            peer,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = site
        .send(post_json(
            "/api/v1/subscriptions/unsubscribe",
            &json!({ "token": unsub }),
            peer,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["address"], "alice@example.net");
    assert_eq!(site.confirmed("alice@example.net").await, None);
}

// ---------------------------------------------------------------------------------------
// CSRF, limits, escaping

#[tokio::test]
async fn the_form_needs_csrf_and_is_rate_limited_per_client_and_per_domain() {
    let (port, sink) = start_sink().await;
    let site = Site::new(Options {
        email: Some(sender(port)),
        ..Options::default()
    })
    .await;
    let uri = "/domains/example.org/subscribe";
    // CSRF: no cookie, or a token of another cookie.
    let r = site
        .send(post_form(uri, None, "email=alice%40example.net"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (cookie, _) = site.csrf().await;
    let (_, other_token) = site.csrf().await;
    let r = site
        .send(post_form(
            uri,
            Some(&cookie),
            &format!("email=alice%40example.net&csrf={other_token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(site.subscriptions().await.is_empty());

    // Per client.
    for i in 0..PER_CLIENT.max {
        let r = site
            .form(
                uri,
                &[("email", &format!("u{i}@example.net"))],
                "192.0.2.50:1000",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = site
        .form(uri, &[("email", "one-more@example.net")], "192.0.2.50:1000")
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").parse::<u64>().unwrap() > 0);
    assert!(
        r.body.contains("too many subscription requests"),
        "{}",
        r.body
    );
    // The API shares the limit.
    let r = site
        .send(post_json(
            "/api/v1/subscriptions",
            &json!({"domain": "example.org", "email": "api@example.net"}),
            "192.0.2.50:1000",
        ))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"], "rate-limited");
    let pending = PER_CLIENT.max as usize;
    mails(&sink, pending).await;

    // Per domain: unconfirmed subscriptions are capped, whoever asks.
    for i in pending..MAX_PENDING_PER_DOMAIN {
        let peer = format!("198.51.100.{i}:1000");
        let r = site
            .form(uri, &[("email", &format!("u{i}@example.net"))], &peer)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        mails(&sink, i + 1).await;
    }
    let r = site
        .form(uri, &[("email", "late@example.net")], "203.0.113.1:1000")
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("unconfirmed subscriptions"), "{}", r.body);
    assert_eq!(site.subscriptions().await.len(), MAX_PENDING_PER_DOMAIN);
    // After the window the cap is free again.
    site.advance(86_400);
    let r = site
        .form(uri, &[("email", "later@example.net")], "203.0.113.1:1000")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Bounds: an overlong address is refused with a message.
    let long = format!("{}@example.net", "a".repeat(300));
    let r = site
        .form(uri, &[("email", &long)], "203.0.113.2:1000")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("longer than"), "{}", r.body);
}

#[tokio::test]
async fn hostile_input_is_escaped() {
    let (addr, _receiver) = start_receiver().await;
    let (port, _sink) = start_sink().await;
    let site = Site::new(Options {
        email: Some(sender(port)),
        webhooks: Some(client(true)),
        allow_private_targets: true,
    })
    .await;
    let hostile = "\"><script>alert(1)</script>";
    // In a webhook URL that fails its challenge: the error names the host only (a webhook
    // URL's path and query often carry a token), so the hostile query is not shown at all.
    let url = format!("http://{addr}/silent?x={}", hostile.replace(' ', ""));
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("webhook_url", &url)],
            "192.0.2.60:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    assert!(!r.body.contains("&lt;script&gt;"), "{}", r.body);
    assert!(r.body.contains("127.0.0.1: "), "{}", r.body);
    // In an email address.
    let r = site
        .form(
            "/domains/example.org/subscribe",
            &[("email", &format!("a{hostile}@example.net"))],
            "192.0.2.60:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    // In the domain of the path, and in tokens.
    let r = site.get("/domains/%3Cscript%3E/subscribe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    let r = site
        .get("/subscriptions/confirm?token=%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    let r = site
        .get("/subscriptions/unsubscribe?token=%22%3E%3Cscript%3E")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    // Every page of this module carries the security headers.
    for path in [
        "/domains/example.org/subscribe",
        "/subscriptions/confirm?token=0123456789abcdef0123456789abcdef",
        "/subscriptions/unsubscribe?token=0123456789abcdef0123456789abcdef",
        "/docs/webhooks",
    ] {
        let r = site.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.header("content-security-policy")
                .contains("default-src 'none'"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(r.header("cache-control"), "no-store", "{path}");
    }
}

#[tokio::test]
async fn only_known_domains_can_be_subscribed_to() {
    let (port, _sink) = start_sink().await;
    let site = Site::new(Options {
        email: Some(sender(port)),
        ..Options::default()
    })
    .await;
    let r = site.get("/domains/unknown.example/subscribe").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = site
        .form(
            "/domains/unknown.example/subscribe",
            &[("email", "alice@example.net")],
            "192.0.2.70:1000",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("check it first"), "{}", r.body);
    // A Unicode domain is normalised (redirect to the A-label page).
    let r = site.get("/domains/Example.ORG/subscribe").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), "/domains/example.org/subscribe");
    assert!(site.subscriptions().await.is_empty());
}
