//! HTTP tests of the web layer, in process (tower's `oneshot`), on an in-memory store, without
//! network: every page and API, with bad input (invalid domain, overlong form, wrong or
//! missing CSRF token, rate limits, private-address targets), the JSON errors, the Atom feed,
//! the admin view and the security headers.
//!
//! Reports are injected through the store's own API (request, claim, finish), exactly as the
//! scheduler records a check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use certwatch::{Clock, Report};
use certwatch_server::app::AppState;
use certwatch_server::config::{Config, IpNet};
use certwatch_server::metrics::Metrics;
use certwatch_server::store::{Spacing, Store};
use certwatch_server::web::{WebConfig, router_with};

const T0: u64 = 1_764_340_000;

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Site {
    router: Router,
    state: AppState,
    clock: Arc<TestClock>,
}

impl Site {
    async fn new(web: WebConfig) -> Site {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let clock = Arc::new(TestClock(AtomicU64::new(T0)));
        let state = AppState::new(
            store,
            Arc::new(Config::defaults()),
            Arc::new(Metrics::new()),
            clock.clone(),
            Arc::new(tokio::sync::Notify::new()),
        );
        let router = router_with(state.clone(), &web).unwrap();
        Site {
            router,
            state,
            clock,
        }
    }

    async fn default() -> Site {
        Site::new(WebConfig::default()).await
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.clock.now_unix() as i64
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
        self.send(get(uri)).await
    }

    /// A CSRF cookie and its token, as a browser gets them from the home page.
    async fn csrf(&self) -> (String, String) {
        let home = self.get("/").await;
        assert_eq!(home.status, StatusCode::OK);
        let cookie = home
            .headers
            .get(header::SET_COOKIE)
            .expect("the home page sets the CSRF cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (cookie, home.hidden("csrf"))
    }

    /// Stores a `no-records` report of one endpoint for `domain`.
    async fn store_plain(&self, domain: &str) {
        self.store_report(&report(
            domain,
            "no-records",
            vec![endpoint(json!({}))],
            &[],
        ))
        .await;
    }

    /// Stores a finished check with this report, as the scheduler would.
    async fn store_report(&self, report: &Report) {
        let store = &self.state.store;
        let now = self.now();
        store.request_check(&report.domain, now).await.unwrap();
        let jobs = store.claim_due("test", now, 300, 10).await.unwrap();
        let job = jobs
            .iter()
            .find(|j| j.domain == report.domain)
            .expect("the requested check is claimed");
        store
            .finish(
                job,
                "test",
                now,
                Ok(report.clone()),
                Spacing {
                    interval: 900,
                    jitter: 0,
                },
            )
            .await
            .unwrap();
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

    /// The value of the first hidden input named `name`.
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

fn get(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
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

fn post_json(uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn from_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    let addr: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

const KEY_A: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";
const KEY_B: &str = "18ba39dd58f16c14527b95e1c4bf11b22d401b7e523fdb973540fde1c214d056";

/// One endpoint entry of the JSON schema, with overrides.
fn endpoint(overrides: Value) -> Value {
    let mut e = json!({
        "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
        "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
        "tlsa": [], "verdict": "no-records", "reason": "no-tlsa",
        "presented_spki_sha256": KEY_A, "matched_record": null,
        "vantage": "direct", "key_type": "ecdsa", "error": null
    });
    for (k, v) in overrides.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn report(domain: &str, verdict: &str, endpoints: Vec<Value>, zone_lines: &[String]) -> Report {
    serde_json::from_value(json!({
        "schema_version": 1, "domain": domain, "checked_at": "2025-11-28T14:26:40Z",
        "verdict": verdict, "endpoints": endpoints, "confirmation": null,
        "setup": {"zone_lines": zone_lines, "advice": []},
        "warnings": []
    }))
    .unwrap()
}

fn zone_line(key: &str) -> String {
    format!("_5222._tcp.xmpp.example.org. 3600 IN TLSA 3 1 1 {key}")
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let site = Site::default().await;
    site.store_report(&report(
        "example.org",
        "no-records",
        vec![endpoint(json!({}))],
        &[zone_line(KEY_A)],
    ))
    .await;
    let paths = [
        "/",
        "/domains/example.org",
        "/domains/example.org/feed.atom",
        "/domains/unknown.example",
        "/domains/not_a_domain!",
        "/api/v1/domains/example.org",
        "/api/v1/domains/unknown.example",
        "/api/v1/checks/00000000000000000000000000000000",
        "/threat-model",
        "/docs/threat-model.md",
        "/docs/api",
        "/docs/api.md",
        "/removal",
        "/admin",
        "/healthz",
        "/metrics",
        "/static/site.css",
        "/no/such/page",
    ];
    for path in paths {
        let r = site.get(path).await;
        let csp = r.header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: CSP {csp:?}"
        );
        assert!(!csp.contains("script-src"), "{path}: no script is allowed");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{path}");
    }
    // HSTS only for a site served over HTTPS.
    assert!(
        site.get("/")
            .await
            .header("strict-transport-security")
            .is_empty()
    );
    let https = Site::new(WebConfig {
        secure_cookies: true,
        ..WebConfig::default()
    })
    .await;
    let r = https.get("/").await;
    assert_eq!(r.header("strict-transport-security"), "max-age=31536000");
    assert!(r.header("set-cookie").contains("; Secure"));
    // A POST refused for its CSRF token carries them too.
    let r = site
        .send(post_form("/checks", None, "domain=example.org"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.header("content-security-policy")
            .contains("default-src 'none'")
    );
}

#[tokio::test]
async fn home_page_has_the_form_and_the_explanation() {
    let site = Site::default().await;
    let r = site.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/html"));
    assert!(r.body.contains("<html lang=\"en\">"));
    assert!(r.body.contains("<main id=\"main\">"));
    assert!(r.body.contains("<label for=\"domain\">"));
    assert!(r.body.contains("action=\"/checks\""));
    assert!(r.body.contains("href=\"/threat-model\""));
    assert!(r.body.contains("What it cannot prove"));
    assert!(!r.body.contains("<script"));
    let cookie = r.header("set-cookie");
    assert!(cookie.starts_with("cw_csrf="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(r.hidden("csrf").len() >= 40);
    // The threat model is served, from docs/threat-model.md.
    let tm = site.get("/threat-model").await;
    assert_eq!(tm.status, StatusCode::OK);
    assert!(
        tm.body.contains("<h1>certwatch threat model</h1>"),
        "{}",
        tm.body
    );
    assert!(tm.body.contains("<h2>"));
    let api = site.get("/docs/api.md").await;
    assert!(api.header("content-type").starts_with("text/markdown"));
    assert!(api.body.contains("POST /api/v1/checks"));
    let css = site.get("/static/site.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
}

#[tokio::test]
async fn check_form_needs_the_right_csrf_token() {
    let site = Site::default().await;
    let (cookie, token) = site.csrf().await;
    // No cookie, no token.
    let r = site
        .send(post_form("/checks", None, "domain=example.org"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("security cookie is missing"), "{}", r.body);
    // Cookie but no token.
    let r = site
        .send(post_form("/checks", Some(&cookie), "domain=example.org"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("token is missing"));
    // A token of another browser's cookie.
    let (_, other_token) = site.csrf().await;
    assert_ne!(other_token, token);
    let r = site
        .send(post_form(
            "/checks",
            Some(&cookie),
            &format!("domain=example.org&csrf={other_token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("wrong or expired"));
    // Nothing was queued by the refused forms.
    assert!(
        site.state
            .store
            .domain_view("example.org", site.now())
            .await
            .unwrap()
            .is_none()
    );
    // The right token queues a check and redirects to its pending page.
    let r = site
        .send(post_form(
            "/checks",
            Some(&cookie),
            &format!("domain=Ex%C3%A4mple.ORG.&csrf={token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let location = r.header("location").to_owned();
    assert!(location.starts_with("/checks/"), "{location}");
    let pending = site.get(&location).await;
    assert_eq!(pending.status, StatusCode::OK);
    assert!(
        pending
            .body
            .contains("<meta http-equiv=\"refresh\" content=\"3\">"),
        "{}",
        pending.body
    );
    // The domain was normalised to its A-label form, and its page says a check runs.
    let page = site.get("/domains/xn--exmple-cua.org").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("A check of this domain is running"));
    assert!(page.body.contains("http-equiv=\"refresh\""));
    // Once the check is done, the ticket page redirects to the result.
    let store = &site.state.store;
    let jobs = store.claim_due("test", site.now(), 300, 10).await.unwrap();
    let mut r = report(
        "xn--exmple-cua.org",
        "no-dnssec",
        vec![endpoint(
            json!({"dnssec": "insecure", "verdict": "no-dnssec", "reason": "insecure-srv", "target": "xmpp.xn--exmple-cua.org"}),
        )],
        &[],
    );
    r.setup.advice.clear();
    store
        .finish(
            &jobs[0],
            "test",
            site.now(),
            Ok(r),
            Spacing {
                interval: 900,
                jitter: 0,
            },
        )
        .await
        .unwrap();
    let done = site.get(&location).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.header("location"), "/domains/xn--exmple-cua.org");
}

#[tokio::test]
async fn invalid_domains_get_a_clear_400() {
    let site = Site::default().await;
    let (cookie, token) = site.csrf().await;
    for bad in ["exa_mple.org", "192.0.2.1", "a..b", "-bad-.org", ""] {
        let r = site
            .send(post_form(
                "/checks",
                Some(&cookie),
                &format!("domain={}&csrf={token}", bad),
            ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(r.body.contains("Invalid domain"), "{bad:?}: {}", r.body);
    }
    let r = site.get("/domains/exa_mple.org").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Invalid domain"));
    assert!(r.body.contains("exa_mple.org"));
    // Unicode and upper case redirect to the A-label page.
    let r = site.get("/domains/Ex%C3%A4mple.org").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), "/domains/xn--exmple-cua.org");
    // A valid but unknown domain: 404 with the form.
    let r = site.get("/domains/unknown.example").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("not been checked yet"));
    assert!(r.body.contains("value=\"unknown.example\""));
    // The API answers in JSON.
    let r = site.get("/api/v1/domains/exa_mple.org").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid-domain");
    let r = site
        .send(post_json("/api/v1/checks", &json!({"domain": "1.2.3.4"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid-domain");
    let r = site.get("/domains/exa_mple.org/feed.atom").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn overlong_bodies_are_refused_with_a_message() {
    let site = Site::default().await;
    let (cookie, token) = site.csrf().await;
    let long = "a".repeat(20_000);
    let r = site
        .send(post_form(
            "/checks",
            Some(&cookie),
            &format!("domain={long}&csrf={token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("Form too large"), "{}", r.body);
    let r = site
        .send(post_json("/api/v1/checks", &json!({"domain": long})))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["error"], "too-large");
    // A long but small-enough domain is a 400 (a name has at most 253 octets).
    let r = site
        .send(post_form(
            "/checks",
            Some(&cookie),
            &format!("domain={}.org&csrf={token}", "a".repeat(300)),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_reports_checks_and_errors() {
    let site = Site::default().await;
    // Unknown domain: 404 with a JSON error.
    let r = site.get("/api/v1/domains/unknown.example").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.header("content-type").starts_with("application/json"));
    assert_eq!(r.json()["error"], "not-found");
    // Start a check with JSON.
    let r = site
        .send(post_json(
            "/api/v1/checks",
            &json!({"domain": "Example.ORG"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let body = r.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.header("location"), format!("/api/v1/checks/{id}"));
    assert_eq!(body["domain"], "example.org");
    assert_eq!(body["deduplicated"], false);
    // The same domain again (as a form body) returns the running ticket.
    let r = site
        .send(post_form("/api/v1/checks", None, "domain=example.org"))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(r.json()["deduplicated"], true);
    // Queued; no report yet: 404.
    let r = site.get(&format!("/api/v1/checks/{id}")).await;
    assert_eq!(r.json()["state"], "queued");
    let r = site.get("/api/v1/domains/example.org").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["message"].as_str().unwrap().contains("running"));
    // Finish it; the API returns the report in the CLI's schema.
    let stored = report(
        "example.org",
        "no-records",
        vec![endpoint(json!({}))],
        &[zone_line(KEY_A)],
    );
    let jobs = site
        .state
        .store
        .claim_due("test", site.now(), 300, 10)
        .await
        .unwrap();
    site.state
        .store
        .finish(
            &jobs[0],
            "test",
            site.now(),
            Ok(stored.clone()),
            Spacing {
                interval: 900,
                jitter: 0,
            },
        )
        .await
        .unwrap();
    let r = site.get(&format!("/api/v1/checks/{id}")).await;
    let body = r.json();
    assert_eq!(body["state"], "done");
    assert_eq!(body["verdict"], "no-records");
    assert_eq!(body["report"]["domain"], "example.org");
    let r = site.get("/api/v1/domains/example.org").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::to_value(&stored).unwrap());
    assert_eq!(r.json()["schema_version"], 1);
    // Unknown and malformed ticket ids.
    let r = site
        .get("/api/v1/checks/ffffffffffffffffffffffffffffffff")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not-found");
    let r = site.get("/api/v1/checks/..%2Fetc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Bad bodies.
    let r = site
        .send(
            Request::builder()
                .method("POST")
                .uri("/api/v1/checks")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("example.org"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = site
        .send(post_json("/api/v1/checks", &json!({"name": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "bad-request");
    // Health and metrics.
    let r = site.get("/healthz").await;
    assert!(r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["store_ok"], true);
    let r = site.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert!(r.body.contains("certwatch_checks_total"));
}

fn limited(per_client: u32, global: u32) -> WebConfig {
    WebConfig {
        checks_per_client: per_client,
        per_client_period: Duration::from_secs(3600),
        checks_global: global,
        global_period: Duration::from_secs(60),
        ..WebConfig::default()
    }
}

#[tokio::test]
async fn on_demand_checks_are_rate_limited_per_client() {
    let site = Site::new(limited(2, 100)).await;
    let check =
        |d: &str, peer: &str| from_peer(post_json("/api/v1/checks", &json!({ "domain": d })), peer);
    assert_eq!(
        site.send(check("a.example", "192.0.2.7:1000")).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        site.send(check("b.example", "192.0.2.7:1001")).await.status,
        StatusCode::ACCEPTED
    );
    let r = site.send(check("c.example", "192.0.2.7:1002")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), "3600");
    assert_eq!(r.json()["error"], "rate-limited");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("too many checks from your address")
    );
    // X-Forwarded-For from an untrusted peer is ignored: same client, still limited.
    let mut spoofed = check("c.example", "192.0.2.7:1003");
    spoofed
        .headers_mut()
        .insert("x-forwarded-for", "203.0.113.50".parse().unwrap());
    assert_eq!(
        site.send(spoofed).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client is not limited.
    assert_eq!(
        site.send(check("c.example", "192.0.2.8:1000")).await.status,
        StatusCode::ACCEPTED
    );
    // The HTML form is limited the same way, with a page and Retry-After.
    let (cookie, token) = site.csrf().await;
    let form = from_peer(
        post_form(
            "/checks",
            Some(&cookie),
            &format!("domain=d.example&csrf={token}"),
        ),
        "192.0.2.7:1004",
    );
    let r = site.send(form).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Too many checks"));
    assert!(!r.header("retry-after").is_empty());
    // The window slides: after an hour the client may check again.
    site.advance(3600);
    assert_eq!(
        site.send(check("c.example", "192.0.2.7:1005")).await.status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let mut config = limited(1, 100);
    config.trusted_proxies = vec![IpNet::parse("10.0.0.0/8").unwrap()];
    let site = Site::new(config).await;
    let via_proxy = |d: &str, client: &str| {
        let mut r = from_peer(
            post_json("/api/v1/checks", &json!({ "domain": d })),
            "10.1.2.3:40000",
        );
        r.headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        r
    };
    // Two clients behind the proxy have a limit each.
    assert_eq!(
        site.send(via_proxy("a.example", "203.0.113.1"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        site.send(via_proxy("b.example", "203.0.113.2"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let r = site.send(via_proxy("c.example", "203.0.113.1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // A client cannot escape by prepending a forged address: the right-most untrusted hop
    // counts.
    let r = site
        .send(via_proxy("c.example", "198.51.100.99, 203.0.113.1"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn global_limit_covers_every_client() {
    let site = Site::new(limited(10, 3)).await;
    for i in 1..=3 {
        let r = site
            .send(from_peer(
                post_json(
                    "/api/v1/checks",
                    &json!({ "domain": format!("d{i}.example") }),
                ),
                &format!("192.0.2.{i}:1000"),
            ))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = site
        .send(from_peer(
            post_json("/api/v1/checks", &json!({ "domain": "d9.example" })),
            "192.0.2.9:1000",
        ))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.json()["message"].as_str().unwrap().contains("busy"));
    assert_eq!(r.header("retry-after"), "60");
}

#[tokio::test]
async fn not_signed_page_names_the_rrset() {
    let site = Site::default().await;
    site.store_report(&report(
        "example.org",
        "no-dnssec",
        vec![endpoint(json!({
            "dnssec": "insecure", "verdict": "no-dnssec", "reason": "insecure-srv"
        }))],
        &[],
    ))
    .await;
    let r = site.get("/domains/example.org").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Not DNSSEC-signed"));
    assert!(
        r.body
            .contains("the SRV RRset _xmpp-client._tcp.example.org")
    );
    assert!(r.body.contains("DS record"));
    // The local command is always there.
    assert!(r.body.contains(
        "certwatch records --key /path/to/privkey.pem --host xmpp.example.org --port 5222"
    ));
    assert!(r.body.contains(
        "openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256"
    ));
}

#[tokio::test]
async fn probe_lines_only_with_agreeing_vantage_points() {
    let site = Site::default().await;
    // One check from one exit: the lines are withheld, with the reason.
    site.store_report(&report(
        "example.org",
        "no-records",
        vec![endpoint(json!({"vantage": "tor:198.51.100.1"}))],
        &[zone_line(KEY_A)],
    ))
    .await;
    let r = site.get("/domains/example.org").await;
    assert!(r.body.contains("Signed, but no TLSA records"));
    assert!(!r.body.contains(&zone_line(KEY_A)), "{}", r.body);
    assert!(r.body.contains("only 1 distinct vantage point"));
    assert!(r.body.contains("certwatch records --key"));
    // Two more checks, from another exit and directly, saw the same key: the lines show.
    site.advance(900);
    site.store_report(&report(
        "example.org",
        "no-records",
        vec![endpoint(json!({"vantage": "tor:198.51.100.2"}))],
        &[zone_line(KEY_A)],
    ))
    .await;
    site.advance(900);
    site.store_report(&report(
        "example.org",
        "no-records",
        vec![endpoint(json!({"vantage": "direct"}))],
        &[zone_line(KEY_A)],
    ))
    .await;
    let r = site.get("/domains/example.org").await;
    assert!(r.body.contains(&zone_line(KEY_A)), "{}", r.body);
    assert!(r.body.contains("pin whatever those connections presented"));
    assert!(r.body.contains("3 distinct vantage points"));
    // History lists the exits, and the keys seen.
    assert!(r.body.contains("tor:198.51.100.1"));
    assert!(r.body.contains("tor:198.51.100.2"));
    assert!(r.body.contains("Keys seen"));
    // A fourth check from a new exit sees another key: the lines are withheld again.
    site.advance(900);
    site.store_report(&report(
        "example.org",
        "no-records",
        vec![endpoint(
            json!({"vantage": "tor:198.51.100.3", "presented_spki_sha256": KEY_B}),
        )],
        &[zone_line(KEY_B)],
    ))
    .await;
    let r = site.get("/domains/example.org").await;
    assert!(!r.body.contains(&zone_line(KEY_B)));
    assert!(r.body.contains("disagree"));
    assert!(r.body.contains(KEY_B));
}

#[tokio::test]
async fn match_page_has_success_and_the_subscription_forms() {
    let site = Site::default().await;
    site.store_report(&report(
        "example.org",
        "match",
        vec![endpoint(json!({
            "verdict": "match", "reason": "key-matched",
            "tlsa": [format!("3 1 1 {KEY_A}")], "matched_record": format!("3 1 1 {KEY_A}")
        }))],
        &[],
    ))
    .await;
    let r = site.get("/domains/example.org").await;
    assert!(r.body.contains("All good"));
    assert!(r.body.contains("id=\"notify\""));
    // No channel configured in this site: the section says so instead of a form.
    assert!(r.body.contains("Email is not configured on this instance"));
    assert!(!r.body.contains("Coming next"));
    // Advice on the same page.
    assert!(r.body.contains("--reuse-key"));
    assert!(r.body.contains("accounturi"));
    assert!(r.body.contains("RFC 9266"));
    assert!(r.body.contains("additive") || r.body.contains("Records are additive"));
    // Per endpoint: status, key, last check.
    assert!(r.body.contains(KEY_A));
    assert!(r.body.contains("key-matched"));
    assert!(r.body.contains("2025-11-28T14:26:40Z"));
}

#[tokio::test]
async fn alarm_states_are_told_apart() {
    let site = Site::default().await;
    let cases = [
        (
            "mismatch.example",
            "mismatch",
            json!({"verdict": "mismatch", "reason": "key-not-in-tlsa", "tlsa": [format!("3 1 1 {KEY_B}")]}),
            "Mismatch: the server proved a key",
        ),
        (
            "bogus.example",
            "bogus",
            json!({"verdict": "bogus", "reason": "bogus-tlsa", "dnssec": "bogus", "dnssec_reason": "RRSIG expired", "presented_spki_sha256": null}),
            "DNSSEC validation failed",
        ),
        (
            "indet.example",
            "indeterminate",
            json!({"verdict": "indeterminate", "reason": "probe-inconclusive", "presented_spki_sha256": null, "error": {"class": "timeout", "message": "timed out"}}),
            "No conclusion (indeterminate)",
        ),
        (
            "proto.example",
            "protocol-error",
            json!({"verdict": "protocol-error", "reason": "protocol-violation", "presented_spki_sha256": null, "error": {"class": "xmpp", "message": "the stream features do not offer STARTTLS"}}),
            "the stream features do not offer STARTTLS",
        ),
    ];
    for (domain, verdict, e, expected) in cases {
        site.store_report(&report(domain, verdict, vec![endpoint(e)], &[]))
            .await;
        let r = site.get(&format!("/domains/{domain}")).await;
        assert_eq!(r.status, StatusCode::OK, "{domain}");
        assert!(r.body.contains(expected), "{domain}: {}", r.body);
        assert!(
            r.body.contains(&format!("\">{verdict}</span>")),
            "{domain}: the verdict badge"
        );
    }
    let r = site.get("/domains/bogus.example").await;
    assert!(r.body.contains("RRSIG expired"));
    assert!(
        r.body
            .contains("the TLSA RRset _5222._tcp.xmpp.example.org")
    );
}

#[tokio::test]
async fn private_address_targets_are_reported_as_refused() {
    let site = Site::default().await;
    site.store_report(&report(
        "private.example",
        "indeterminate",
        vec![endpoint(json!({
            "address": "10.0.0.5", "verdict": "indeterminate", "reason": "probe-inconclusive",
            "presented_spki_sha256": null, "vantage": null,
            "error": {"class": "private-address", "message": "xmpp.example.org 10.0.0.5 is a private address: not probed"}
        }))],
        &[],
    ))
    .await;
    let r = site.get("/domains/private.example").await;
    assert!(r.body.contains("Private address refused"), "{}", r.body);
    assert!(r.body.contains("10.0.0.5"));
    // The API's ticket view says so in words.
    let r = site
        .send(post_json(
            "/api/v1/checks",
            &json!({"domain": "private.example"}),
        ))
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let jobs = site
        .state
        .store
        .claim_due("test", site.now(), 300, 10)
        .await
        .unwrap();
    let again = site
        .state
        .store
        .domain_view("private.example", site.now())
        .await
        .unwrap()
        .unwrap()
        .report
        .unwrap();
    site.state
        .store
        .finish(
            &jobs[0],
            "test",
            site.now(),
            Ok(again),
            Spacing {
                interval: 900,
                jitter: 0,
            },
        )
        .await
        .unwrap();
    let r = site.get(&format!("/api/v1/checks/{id}")).await;
    let notes = r.json()["notes"].clone();
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("refused (private address)"),
        "{notes}"
    );
}

#[tokio::test]
async fn stored_text_is_escaped() {
    let site = Site::default().await;
    let mut r = report(
        "example.org",
        "protocol-error",
        vec![endpoint(json!({
            "verdict": "protocol-error", "reason": "protocol-violation",
            "error": {"class": "xmpp", "message": "<script>alert(1)</script> & \"quotes\""}
        }))],
        &[],
    );
    r.warnings = serde_json::from_value(
        json!([{"code": "weak-pin", "message": "<img src=x onerror=alert(2)>"}]),
    )
    .unwrap();
    site.store_report(&r).await;
    let page = site.get("/domains/example.org").await;
    assert!(!page.body.contains("<script>alert(1)"));
    assert!(!page.body.contains("<img src=x"));
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;")
    );
    assert!(page.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    let feed = site.get("/domains/example.org/feed.atom").await;
    assert!(!feed.body.contains("<img src=x"));
}

#[tokio::test]
async fn atom_feed_is_well_formed() {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    let site = Site::default().await;
    let r = site.get("/domains/example.org/feed.atom").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for (i, verdict) in ["no-records", "match", "match"].iter().enumerate() {
        site.advance(900);
        let mut rep = report(
            "example.org",
            verdict,
            vec![endpoint(
                json!({"verdict": verdict, "vantage": format!("tor:198.51.100.{i}")}),
            )],
            &[],
        );
        rep.warnings =
            serde_json::from_value(json!([{"code": "weak-pin", "message": "a < b & c"}])).unwrap();
        site.store_report(&rep).await;
    }
    let r = site.get("/domains/example.org/feed.atom").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("application/atom+xml"));
    // Parse the whole document; every element must close, and the structure must be Atom.
    let mut reader = Reader::from_str(&r.body);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i32;
    let mut root = None;
    let mut entries = 0;
    let mut ids = std::collections::BTreeSet::new();
    let mut current = String::new();
    let mut summaries = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if depth == 0 {
                    let ns = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"xmlns")
                        .map(|a| a.unescape_value().unwrap().into_owned());
                    assert_eq!(ns.as_deref(), Some("http://www.w3.org/2005/Atom"));
                    root = Some(name.clone());
                }
                if name == "entry" {
                    entries += 1;
                }
                current.clear();
                depth += 1;
            }
            Event::End(e) => {
                depth -= 1;
                let text = quick_xml::escape::unescape(&current)
                    .expect("only predefined entities")
                    .into_owned();
                match e.name().as_ref() {
                    b"id" => {
                        ids.insert(text);
                    }
                    b"summary" => summaries.push(text),
                    _ => {}
                }
                current.clear();
            }
            Event::Text(t) => current.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                current.push('&');
                current.push_str(&r.decode().unwrap());
                current.push(';');
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);
    assert_eq!(root.as_deref(), Some("feed"));
    assert_eq!(entries, 3);
    assert_eq!(ids.len(), 4, "a feed id and one distinct id per entry");
    assert!(summaries.iter().any(|s| s.contains("a < b & c")));
    assert!(summaries.iter().any(|s| s.contains("tor:198.51.100.0")));
    // Links are absolute under the public URL when one is configured.
    let site = Site::new(WebConfig {
        public_url: "https://certwatch.example/".into(),
        ..WebConfig::default()
    })
    .await;
    site.store_report(&report(
        "example.org",
        "match",
        vec![endpoint(json!({"verdict": "match"}))],
        &[],
    ))
    .await;
    let r = site.get("/domains/example.org/feed.atom").await;
    assert!(
        r.body
            .contains("href=\"https://certwatch.example/domains/example.org/feed.atom\""),
        "{}",
        r.body
    );
}

fn admin_config(token: &str) -> WebConfig {
    let hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ));
    WebConfig {
        admin_token_sha256: Some(hash),
        ..WebConfig::default()
    }
}

#[tokio::test]
async fn admin_view_needs_the_token() {
    // Without a configured token the admin view does not exist.
    let site = Site::default().await;
    assert_eq!(site.get("/admin").await.status, StatusCode::NOT_FOUND);

    let token = "s3cret-admin-token-0123456789abcdef";
    let site = Site::new(admin_config(token)).await;
    site.store_plain("example.org").await;
    site.store_plain("other.example").await;
    // The login form, with a CSRF token.
    let r = site.get("/admin").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Admin login"));
    assert!(!r.body.contains("example.org"));
    let cookie = r.header("set-cookie").split(';').next().unwrap().to_owned();
    let csrf = r.hidden("csrf");
    // A wrong token, a missing CSRF token.
    let r = site
        .send(post_form(
            "/admin/login",
            Some(&cookie),
            &format!("token=wrong&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("set-cookie").is_empty());
    let r = site
        .send(post_form(
            "/admin/login",
            Some(&cookie),
            &format!("token={token}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The right token: a session cookie.
    let r = site
        .send(post_form(
            "/admin/login",
            Some(&cookie),
            &format!("token={token}&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let session = r.header("set-cookie").split(';').next().unwrap().to_owned();
    assert!(session.starts_with("cw_admin="));
    let both = format!("{cookie}; {session}");
    let r = site
        .send(
            Request::builder()
                .uri("/admin")
                .header(header::COOKIE, &both)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.body.contains("example.org") && r.body.contains("other.example"));
    assert!(r.body.contains("Subscribers"));
    assert!(r.body.contains("Failed deliveries"));
    // Removal with the session needs the CSRF token.
    let r = site
        .send(post_form(
            "/admin/domains/remove",
            Some(&both),
            "domain=example.org",
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = site
        .send(post_form(
            "/admin/domains/remove",
            Some(&both),
            &format!("domain=example.org&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        site.get("/api/v1/domains/example.org").await.status,
        StatusCode::NOT_FOUND
    );
    // A forged session cookie is not a session.
    let forged = format!("{cookie}; cw_admin=99999999999.AAAA");
    let r = site
        .send(post_form(
            "/admin/domains/remove",
            Some(&forged),
            &format!("domain=other.example&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Bearer: no CSRF token needed; a wrong bearer is refused.
    let bearer = |t: &str| {
        Request::builder()
            .method("POST")
            .uri("/admin/domains/remove")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::from("domain=other.example"))
            .unwrap()
    };
    assert_eq!(
        site.send(bearer("nope")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(site.send(bearer(token)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        site.get("/api/v1/domains/other.example").await.status,
        StatusCode::NOT_FOUND
    );
    // Logging out needs the CSRF token, and clears the session cookie.
    let r = site.send(post_form("/admin/logout", Some(&both), "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = site
        .send(post_form(
            "/admin/logout",
            Some(&both),
            &format!("csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("set-cookie").starts_with("cw_admin=;"));
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    // The session expires.
    site.advance(13 * 3600);
    let r = site
        .send(
            Request::builder()
                .uri("/admin")
                .header(header::COOKIE, &both)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.body.contains("Admin login"));
}

#[tokio::test]
async fn removal_request_is_recorded_not_executed() {
    let token = "another-admin-token-0123456789abcdef";
    let site = Site::new(admin_config(token)).await;
    site.store_plain("example.org").await;
    let form = site.get("/removal").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<label for=\"message\">"));
    let cookie = form
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = form.hidden("csrf");
    // Without the CSRF token: refused.
    let r = site
        .send(post_form(
            "/removal",
            Some(&cookie),
            "domain=example.org&message=please",
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = site
        .send(post_form(
            "/removal",
            Some(&cookie),
            &format!("domain=Example.org&contact=ops%40example.org&message=%3Cb%3Eplease%3C%2Fb%3E&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("recorded for the administrator"));
    // Nothing was removed.
    assert_eq!(
        site.get("/api/v1/domains/example.org").await.status,
        StatusCode::OK
    );
    // The administrator sees the request, escaped.
    let r = site
        .send(
            Request::builder()
                .uri("/admin")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.body.contains("ops@example.org"));
    assert!(r.body.contains("&lt;b&gt;please&lt;/b&gt;"));
}

#[tokio::test]
async fn router_takes_its_settings_from_the_config() {
    let token = "config-admin-token-0123456789abcdef";
    let hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ));
    let env = std::collections::HashMap::new();
    let config = Config::load(
        [
            "certwatch-server",
            "--admin-token-hash",
            hash.as_str(),
            "--checks-per-client-per-hour",
            "1",
        ],
        &env,
    )
    .unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let state = AppState::new(
        store,
        Arc::new(config),
        Arc::new(Metrics::new()),
        Arc::new(TestClock(AtomicU64::new(T0))),
        Arc::new(tokio::sync::Notify::new()),
    );
    let router = certwatch_server::web::router(state);
    let send = |request: Request<Body>| router.clone().oneshot(request);
    // The admin view exists (login form) and accepts the configured token.
    let r = send(get("/admin")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        Request::builder()
            .uri("/admin")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Removal requests from operators"));
    // One on-demand check per client per hour.
    let check = |d: &str| {
        from_peer(
            post_json("/api/v1/checks", &json!({ "domain": d })),
            "192.0.2.1:5000",
        )
    };
    assert_eq!(
        send(check("a.example")).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(check("b.example")).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_check_that_could_not_run_is_not_a_verdict() {
    let site = Site::default().await;
    let store = &site.state.store;
    store
        .request_check("example.org", site.now())
        .await
        .unwrap();
    let jobs = store.claim_due("test", site.now(), 300, 10).await.unwrap();
    store
        .finish(
            &jobs[0],
            "test",
            site.now(),
            Err("the resolver 192.0.2.53:53 did not answer".into()),
            Spacing {
                interval: 900,
                jitter: 0,
            },
        )
        .await
        .unwrap();
    let r = site.get("/domains/example.org").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("The newest check could not run: the resolver 192.0.2.53:53 did not answer"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("has not been checked yet"));
}

#[tokio::test]
async fn admin_blocks_and_unblocks_a_subscriber() {
    let token = "block-admin-token-0123456789abcdef";
    let site = Site::new(admin_config(token)).await;
    site.store_plain("example.org").await;
    let store = &site.state.store;
    store
        .add_subscription("example.org", "email", "<ops>@example.org", site.now())
        .await
        .unwrap();
    let id = store.subscriptions(None, 10).await.unwrap()[0].id;
    let admin_page = || {
        Request::builder()
            .uri("/admin")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let r = site.send(admin_page()).await;
    assert!(r.body.contains("&lt;ops&gt;@example.org"), "{}", r.body);
    assert!(r.body.contains(">Block</button>"));
    // Without authentication: refused, nothing changes.
    let r = site
        .send(post_form(
            "/admin/subscriptions/block",
            None,
            &format!("id={id}&blocked=true"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!store.subscriptions(None, 10).await.unwrap()[0].blocked);
    // With the Bearer token: blocked, and the page offers to unblock.
    let block = |blocked: bool| {
        Request::builder()
            .method("POST")
            .uri("/admin/subscriptions/block")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(format!("id={id}&blocked={blocked}")))
            .unwrap()
    };
    assert_eq!(site.send(block(true)).await.status, StatusCode::SEE_OTHER);
    assert!(store.subscriptions(None, 10).await.unwrap()[0].blocked);
    let r = site.send(admin_page()).await;
    assert!(r.body.contains(">Unblock</button>"));
    assert!(r.body.contains("blocked"));
    assert_eq!(site.send(block(false)).await.status, StatusCode::SEE_OTHER);
    assert!(!store.subscriptions(None, 10).await.unwrap()[0].blocked);
    // An unknown id.
    let r = site
        .send(
            Request::builder()
                .method("POST")
                .uri("/admin/subscriptions/block")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from("id=999999&blocked=true"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn instances_on_one_database_accept_each_others_tokens() {
    let token = "shared-admin-token-0123456789abcdef";
    let a = Site::new(admin_config(token)).await;
    // A second instance: its own router and limits, the same store.
    let b_router = router_with(a.state.clone(), &admin_config(token)).unwrap();
    let b = |request: Request<Body>| b_router.clone().oneshot(request);
    // A form loaded from instance A is accepted by instance B.
    let (cookie, csrf) = a.csrf().await;
    let r = b(post_form(
        "/checks",
        Some(&cookie),
        &format!("domain=example.org&csrf={csrf}"),
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // An admin session made by A is a session on B.
    let r = a
        .send(post_form(
            "/admin/login",
            Some(&cookie),
            &format!("token={token}&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let session = r.header("set-cookie").split(';').next().unwrap().to_owned();
    let r = b(Request::builder()
        .uri("/admin")
        .header(header::COOKIE, format!("{cookie}; {session}"))
        .body(Body::empty())
        .unwrap())
    .await
    .unwrap();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Removal requests from operators"));
    // A site with its own configured secret does not accept them.
    let other = Site::new(WebConfig {
        secret: Some(vec![7; 32]),
        ..admin_config(token)
    })
    .await;
    let r = other
        .send(post_form(
            "/checks",
            Some(&cookie),
            &format!("domain=example.org&csrf={csrf}"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_admin_view_lists_failed_deliveries_and_notices() {
    use certwatch_server::store::RetryPolicy;
    let token = "failed-admin-token-0123456789abcdef";
    let site = Site::new(admin_config(token)).await;
    let admin_page = || async {
        site.send(
            Request::builder()
                .uri("/admin")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    };
    let r = admin_page().await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("HTTP 500"));

    // A confirmed webhook subscriber, then a bogus check: one alert, one delivery.
    let store = &site.state.store;
    let hook = "https://hooks.example/x?a=1&b=<2>";
    assert!(
        store
            .add_subscription("example.org", "webhook", hook, site.now())
            .await
            .unwrap()
    );
    site.store_report(&report(
        "example.org",
        "bogus",
        vec![endpoint(json!({}))],
        &[],
    ))
    .await;
    let claimed = store
        .claim_deliveries("test", site.now(), 60, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let id = claimed[0].id.clone();
    // Every retry used up: it fails for good.
    let retry = RetryPolicy {
        base_delay: 10,
        max_delay: 10,
        max_attempts: 1,
    };
    let state = store
        .mark_attempt_failed(&id, site.now(), "HTTP 500", retry)
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("failed"));

    let r = admin_page().await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&id), "the delivery id is listed");
    assert!(r.body.contains("HTTP 500"));
    assert!(r.body.contains("bogus"));
    // The address is escaped like every stored text.
    assert!(r.body.contains("a=1&amp;b=&lt;2&gt;"));
    assert!(!r.body.contains("b=<2>"));
}
