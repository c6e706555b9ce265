//! The XMPP component link in process (issue 10): a fake XMPP server on 127.0.0.1 accepts
//! the component (XEP-0114 handshake checked), plays the users' stanzas, and reads what the
//! component sends. Subscriptions by PubSub and by chat, alerts from the outbox (exactly one
//! per subscriber, with the link), unsubscribing, reconnecting, hostile stanzas, a refused
//! secret, and the link state in `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use certwatch::Report;
use certwatch_component::stream::handshake_digest;
use certwatch_component::xml::{Element, Framer, Item, Limits};
use certwatch_server::clock::TokioClock;
use certwatch_server::component::{self, LinkState, XmppConfig};
use certwatch_server::metrics::Metrics;
use certwatch_server::store::{Spacing, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T0: i64 = 1_800_000_000;
const JID: &str = "cw.xmpp.test";
const SECRET: &str = "component-secret";
const KEY: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";
const OTHER: &str = "18ba39dd58f16c14527b95e1c4bf11b22d401b7e523fdb973540fde1c214d056";
const NS_C: &str = "jabber:component:accept";

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

/// Claims every due check at `now` and finishes each with `verdict` for its domain.
async fn check_all(store: &Store, now: i64, verdict: &str) {
    let claim_at = T0 + 100_000_000 + (now - T0) * 1000;
    let jobs = store.claim_due("w", claim_at, 60, 100).await.unwrap();
    assert!(!jobs.is_empty(), "subscribed domains are due");
    for job in jobs {
        let key = if verdict == "match" { KEY } else { OTHER };
        store
            .finish(
                &job,
                "w",
                now,
                Ok(report(&job.domain, verdict, key)),
                Spacing {
                    interval: 900,
                    jitter: 0,
                },
            )
            .await
            .unwrap();
    }
}

/// One accepted component connection, seen from the XMPP server.
struct Conn {
    stream: TcpStream,
    framer: Framer,
}

impl Conn {
    /// Accepts the component and runs the handshake; `accept_secret` decides.
    async fn accept(listener: &TcpListener, accept_secret: bool) -> Conn {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .expect("the component connects")
            .unwrap();
        let mut c = Conn {
            stream,
            framer: Framer::new(Limits::default()),
        };
        let header = c.item().await.expect("a stream header");
        let Item::StreamOpen(h) = header else {
            panic!("{header:?}")
        };
        assert_eq!(h.attr("to"), Some(JID));
        assert_eq!(h.attr("xmlns"), Some(NS_C));
        c.write("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='sid-42' from='cw.xmpp.test'>")
            .await;
        let Some(Item::Stanza(hs)) = c.item().await else {
            panic!("no handshake")
        };
        assert_eq!(hs.name, "handshake");
        assert_eq!(hs.text, handshake_digest("sid-42", SECRET));
        if accept_secret {
            c.write("<handshake/>").await;
        } else {
            c.write("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
                .await;
        }
        c
    }

    async fn write(&mut self, s: &str) {
        self.stream.write_all(s.as_bytes()).await.unwrap();
    }

    /// The next item within 5 s, `None` on timeout or end.
    async fn item(&mut self) -> Option<Item> {
        self.item_within(Duration::from_secs(5)).await
    }

    async fn item_within(&mut self, wait: Duration) -> Option<Item> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self
                .framer
                .next_item()
                .expect("the component sends good XML")
            {
                return Some(i);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.framer.push(&buf[..n]);
        }
    }

    /// The next stanza within `wait`.
    async fn stanza_within(&mut self, wait: Duration) -> Option<Element> {
        loop {
            match self.item_within(wait).await? {
                Item::Stanza(e) => return Some(e),
                Item::StreamClose => return None,
                _ => {}
            }
        }
    }

    async fn stanza(&mut self) -> Element {
        self.stanza_within(Duration::from_secs(10))
            .await
            .expect("a stanza from the component")
    }

    /// Every stanza that arrives within `wait`.
    async fn drain(&mut self, wait: Duration) -> Vec<Element> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.stanza_within(left).await {
                Some(e) => out.push(e),
                None => return out,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_pinged_then_dropped_and_reconnected() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = XmppConfig::new(JID, "127.0.0.1", port, SECRET, "https://cw.example");
    config.keepalive = Duration::from_millis(200);
    config.backoff_min = Duration::from_millis(50);
    let metrics = Arc::new(Metrics::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let _running = component::spawn(
        config,
        store,
        metrics.clone(),
        Arc::new(TokioClock::starting_at(T0 as u64)),
        "test".into(),
        stop_rx,
    );
    let mut c = Conn::accept(&listener, true).await;
    wait_state(&metrics, LinkState::Up).await;
    // Pings go to the parent domain; the server never answers.
    let ping = c.stanza().await;
    assert_eq!(ping.attr("to"), Some("xmpp.test"));
    assert!(ping.child("ping", "urn:xmpp:ping").is_some());
    // Three silent periods: the link is closed and opened again.
    let _c2 = Conn::accept(&listener, true).await;
    wait_state(&metrics, LinkState::Up).await;
    let status = metrics.xmpp_link.status();
    assert_eq!(status.reconnects, 1);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("keepalive"),
        "{status:?}"
    );
    stop.send(true).unwrap();
}

struct Setup {
    store: Store,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    stop: tokio::sync::watch::Sender<bool>,
    running: component::Running,
}

async fn setup() -> Setup {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = XmppConfig::new(JID, "127.0.0.1", port, SECRET, "https://cw.example/");
    config.backoff_min = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(200);
    config.outbox_interval = Duration::from_millis(50);
    let metrics = Arc::new(Metrics::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    // Far past the checks' times, so that their deliveries are due.
    let clock = Arc::new(TokioClock::starting_at((T0 + 10_000_000) as u64));
    let running = component::spawn(
        config,
        store.clone(),
        metrics.clone(),
        clock,
        "test".into(),
        stop_rx,
    );
    Setup {
        store,
        metrics,
        listener,
        stop,
        running,
    }
}

async fn wait_state(metrics: &Metrics, want: LinkState) {
    for _ in 0..400 {
        if metrics.xmpp_link.status().state == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the link never became {want:?}: {:?}",
        metrics.xmpp_link.status()
    );
}

fn body(e: &Element) -> String {
    e.child("body", NS_C)
        .map(|b| b.text.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_alerts_flow_over_the_link() {
    let s = setup().await;
    let mut c = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    assert!(
        s.metrics
            .render_prometheus()
            .contains("certwatch_xmpp_link_state{state=\"up\"} 1")
    );

    // Bob subscribes to b.example by chat; Alice to a.example's node by PubSub.
    c.write("<message type='chat' id='m1' from='Bob@x.test/laptop' to='cw.xmpp.test'><body>subscribe B.example</body></message>")
        .await;
    let reply = c.stanza().await;
    assert_eq!(reply.attr("to"), Some("Bob@x.test/laptop"));
    assert!(
        body(&reply).contains("Subscribed bob@x.test to alerts for b.example"),
        "{reply:?}"
    );
    c.write("<iq type='set' id='p1' from='alice@x.test/phone' to='cw.xmpp.test'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='a.example' jid='alice@x.test'/></pubsub></iq>")
        .await;
    let reply = c.stanza().await;
    assert_eq!(reply.attr("type"), Some("result"));
    assert_eq!(reply.attr("id"), Some("p1"));
    let subs = s.store.subscriptions(None, 10).await.unwrap();
    let mut got: Vec<(String, String, String, bool)> = subs
        .iter()
        .map(|x| {
            (
                x.domain.clone(),
                x.channel.clone(),
                x.address.clone(),
                x.confirmed_at.is_some(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "a.example".into(),
                "xmpp-pubsub".into(),
                "alice@x.test".into(),
                true
            ),
            (
                "b.example".into(),
                "xmpp-chat".into(),
                "bob@x.test".into(),
                true
            ),
        ]
    );

    // Both domains are checked: match, then the key changes.
    check_all(&s.store, T0 + 10, "match").await;
    check_all(&s.store, T0 + 1000, "mismatch").await;
    let sent = c.drain(Duration::from_secs(3)).await;
    let events: Vec<&Element> = sent
        .iter()
        .filter(|e| {
            e.child("event", "http://jabber.org/protocol/pubsub#event")
                .is_some()
        })
        .collect();
    let chats: Vec<&Element> = sent
        .iter()
        .filter(|e| e.attr("type") == Some("chat"))
        .collect();
    assert_eq!(events.len(), 1, "{sent:?}");
    assert_eq!(chats.len(), 1, "{sent:?}");
    let ev = events[0];
    assert_eq!(ev.attr("to"), Some("alice@x.test"));
    let xml = ev.to_stanza();
    assert!(xml.contains("<items node='a.example'>"), "{xml}");
    assert!(
        xml.contains("href='https://cw.example/domains/a.example'"),
        "{xml}"
    );
    assert!(xml.contains("ALERT a.example: mismatch"));
    assert_eq!(chats[0].attr("to"), Some("bob@x.test"));
    let text = body(chats[0]);
    assert!(text.contains("Evidence: https://cw.example/domains/b.example"));
    assert!(text.contains("What to do:"));
    // The message ids are the outbox's delivery ids, now delivered.
    for (domain, msg) in [("a.example", ev), ("b.example", chats[0])] {
        let d = s.store.deliveries_of(domain, 10).await.unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(msg.attr("id"), Some(d[0].id.as_str()));
        assert_eq!(d[0].state, "delivered");
    }

    // The last item of a.example's node is that alert.
    c.write("<iq type='get' id='i1' from='carol@y.test/r' to='cw.xmpp.test'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='a.example' max_items='1'/></pubsub></iq>")
        .await;
    let items = c.stanza().await.to_stanza();
    assert!(items.contains("<item id='alert-"), "{items}");
    assert!(items.contains("ALERT a.example: mismatch"), "{items}");

    // Both unsubscribe: the rows are deleted, and the recovery reaches no one.
    c.write("<iq type='set' id='u1' from='alice@x.test/other' to='cw.xmpp.test'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='a.example' jid='alice@x.test'/></pubsub></iq>")
        .await;
    assert_eq!(c.stanza().await.attr("type"), Some("result"));
    c.write("<message type='chat' id='m2' from='bob@x.test/phone' to='cw.xmpp.test'><body>unsubscribe b.example</body></message>")
        .await;
    assert!(body(&c.stanza().await).contains("Unsubscribed from b.example"));
    assert!(s.store.subscriptions(None, 10).await.unwrap().is_empty());
    // A request keeps the domains due; the next alert (recovered) has no delivery.
    s.store.request_check("a.example", T0 + 2000).await.unwrap();
    s.store.request_check("b.example", T0 + 2000).await.unwrap();
    check_all(&s.store, T0 + 2000, "match").await;
    let after = c.drain(Duration::from_secs(2)).await;
    assert!(after.is_empty(), "{after:?}");

    s.stop.send(true).unwrap();
    let _ = tokio::join!(s.running.link_task, s.running.outbox_task);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_comes_back_and_the_alert_is_delivered_once() {
    let s = setup().await;
    s.store
        .add_subscription("b.example", "xmpp-chat", "bob@x.test", T0)
        .await
        .unwrap();
    let c = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    // The server goes away; an alert is recorded while the link is down.
    drop(c);
    for _ in 0..400 {
        if s.metrics.xmpp_link.status().state != LinkState::Up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(s.metrics.xmpp_link.status().reconnects >= 1);
    check_all(&s.store, T0 + 10, "match").await;
    check_all(&s.store, T0 + 1000, "mismatch").await;
    let d = s.store.deliveries_of("b.example", 10).await.unwrap();
    assert_eq!(d.len(), 1);
    // It comes back: the alert arrives once, under its delivery id.
    let mut c = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    let sent = c.drain(Duration::from_secs(3)).await;
    let chats: Vec<&Element> = sent
        .iter()
        .filter(|e| e.attr("type") == Some("chat"))
        .collect();
    assert_eq!(chats.len(), 1, "{sent:?}");
    assert_eq!(chats[0].attr("id"), Some(d[0].id.as_str()));
    let d = s.store.deliveries_of("b.example", 10).await.unwrap();
    assert_eq!(d[0].state, "delivered");
    assert!(
        s.metrics
            .render_prometheus()
            .contains("certwatch_xmpp_link_reconnects_total 1")
    );
    s.stop.send(true).unwrap();
    // Our stream ends with the stop.
    assert!(matches!(c.item().await, Some(Item::StreamClose) | None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stanzas_get_errors_and_restricted_xml_resets_the_link() {
    let s = setup().await;
    let mut c = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    // 100 KiB of body: policy-violation to the sender, the link stays up.
    let big = "x".repeat(100 * 1024);
    c.write(&format!("<message type='chat' id='big' from='eve@e.test/r' to='cw.xmpp.test'><body>{big}</body></message>"))
        .await;
    let e = c.stanza().await;
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("id"), Some("big"));
    assert!(e.to_stanza().contains("<policy-violation"));
    // Deep nesting: policy-violation; a bad escape inside: bad-request.
    let deep = format!(
        "<message id='deep' from='eve@e.test/r' to='cw.xmpp.test'>{}{}</message>",
        "<a>".repeat(200),
        "</a>".repeat(200)
    );
    c.write(&deep).await;
    assert!(c.stanza().await.to_stanza().contains("<policy-violation"));
    c.write("<iq type='get' id='bad' from='eve@e.test/r' to='cw.xmpp.test'><query xmlns='x'>&nope;</query></iq>")
        .await;
    let e = c.stanza().await;
    assert_eq!(e.attr("id"), Some("bad"));
    assert!(e.to_stanza().contains("<bad-request"));
    // An unknown iq namespace: service-unavailable; an unknown command: the help.
    c.write("<iq type='get' id='v' from='eve@e.test/r' to='cw.xmpp.test'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    assert!(
        c.stanza()
            .await
            .to_stanza()
            .contains("<service-unavailable")
    );
    c.write(
        "<message type='chat' from='eve@e.test/r' to='cw.xmpp.test'><body>rm -rf</body></message>",
    )
    .await;
    assert!(body(&c.stanza().await).contains("Commands:"));
    assert_eq!(s.metrics.xmpp_link.status().reconnects, 0);
    // A comment is restricted XML: a stream error, and the link is opened again.
    c.write("<!-- no -->").await;
    let mut saw_error = false;
    while let Some(i) = c.item().await {
        match i {
            Item::Stanza(e) if e.name == "error" => {
                assert!(e.to_stanza().contains("restricted-xml"));
                saw_error = true;
            }
            Item::StreamClose => break,
            _ => {}
        }
    }
    assert!(saw_error);
    let _c2 = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    assert_eq!(s.metrics.xmpp_link.status().reconnects, 1);
    s.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_secret_keeps_the_link_down_and_retries() {
    let s = setup().await;
    let _c = Conn::accept(&s.listener, false).await;
    for _ in 0..400 {
        if s.metrics.xmpp_link.status().last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = s.metrics.xmpp_link.status();
    assert_ne!(status.state, LinkState::Up);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("refused the handshake"),
        "{status:?}"
    );
    assert!(
        s.metrics
            .xmpp_link
            .summary()
            .contains("refused the handshake")
    );
    // It tries again (with backoff).
    let _c2 = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    s.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disco_items_pages_the_domains_in_sql() {
    let s = setup().await;
    for i in 0..30 {
        s.store
            .request_check(&format!("d{i:02}.example"), T0)
            .await
            .unwrap();
    }
    let mut c = Conn::accept(&s.listener, true).await;
    wait_state(&s.metrics, LinkState::Up).await;
    c.write("<iq type='get' id='d1' from='a@x.test/r' to='cw.xmpp.test'><query xmlns='http://jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>d09.example</after></set></query></iq>")
        .await;
    let r = c.stanza().await.to_stanza();
    assert!(
        r.contains("<item jid='cw.xmpp.test' node='d10.example'"),
        "{r}"
    );
    assert!(r.contains("node='d19.example'"), "{r}");
    assert!(!r.contains("node='d20.example'"), "{r}");
    assert!(
        r.contains(
            "<first index='10'>d10.example</first><last>d19.example</last><count>30</count>"
        ),
        "{r}"
    );
    c.write("<iq type='get' id='d2' from='a@x.test/r' to='cw.xmpp.test'><query xmlns='http://jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set></query></iq>")
        .await;
    let r = c.stanza().await.to_stanza();
    assert!(
        r.contains("<first index='25'>d25.example</first><last>d29.example</last>"),
        "{r}"
    );
    c.write("<iq type='get' id='d3' from='a@x.test/r' to='cw.xmpp.test'><query xmlns='http://jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'><max>3</max><before>d03.example</before></set></query></iq>")
        .await;
    let r = c.stanza().await.to_stanza();
    assert!(
        r.contains("<first index='0'>d00.example</first><last>d02.example</last>"),
        "{r}"
    );
    // status DOMAIN over chat: not yet checked.
    c.write("<message type='chat' from='a@x.test/r' to='cw.xmpp.test'><body>status d05.example</body></message>")
        .await;
    assert!(body(&c.stanza().await).contains("has not been checked yet"));
    s.stop.send(true).unwrap();
}

#[tokio::test]
async fn the_domain_page_shows_the_node_uri_when_xmpp_is_configured() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.request_check("example.org", T0).await.unwrap();
    let page = |xmpp: Option<XmppConfig>| {
        let store = store.clone();
        async move {
            let mut config = certwatch_server::config::Config::defaults();
            config.xmpp = xmpp;
            let state = certwatch_server::app::AppState::new(
                store,
                Arc::new(config),
                Arc::new(Metrics::new()),
                Arc::new(TokioClock::starting_at(T0 as u64)),
                Arc::new(tokio::sync::Notify::new()),
            );
            let request = axum::http::Request::builder()
                .uri("/domains/example.org")
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    40000,
                ))))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = certwatch_server::web::router(state)
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    let with = page(Some(XmppConfig::new(
        JID,
        "127.0.0.1",
        5347,
        "s",
        "https://cw.example",
    )))
    .await;
    assert!(
        with.contains("href=\"xmpp:cw.xmpp.test?;node=example.org\""),
        "{with}"
    );
    assert!(with.contains("subscribe example.org"));
    let without = page(None).await;
    assert!(!without.contains("xmpp:cw.xmpp.test"));
}

#[tokio::test]
async fn the_admin_view_and_metrics_show_the_link_state() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let token = "0123456789abcdef0123456789abcdef";
    let web = certwatch_server::web::WebConfig {
        admin_token_sha256: Some(hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            token.as_bytes(),
        ))),
        ..certwatch_server::web::WebConfig::default()
    };
    let metrics = Arc::new(Metrics::new());
    let state = certwatch_server::app::AppState::new(
        Store::open("sqlite::memory:").await.unwrap(),
        Arc::new(certwatch_server::config::Config::defaults()),
        metrics.clone(),
        Arc::new(TokioClock::starting_at(T0 as u64)),
        Arc::new(tokio::sync::Notify::new()),
    );
    let router = certwatch_server::web::router_with(state, &web).unwrap();
    let admin = || async {
        let request = axum::http::Request::builder()
            .uri("/admin")
            .header("authorization", format!("Bearer {token}"))
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    assert!(
        admin()
            .await
            .contains("XMPP component link: not configured")
    );
    assert!(!metrics.render_prometheus().contains("certwatch_xmpp_link"));
    metrics.xmpp_link.set(LinkState::Connecting, T0, None);
    metrics
        .xmpp_link
        .set(LinkState::Down, T0 + 5, Some("connect refused".into()));
    let page = admin().await;
    assert!(
        page.contains("XMPP component link: down since 2027-01-15T08:00:05Z (1 reconnects); last error: connect refused"),
        "{page}"
    );
    metrics.xmpp_link.set(LinkState::Up, T0 + 60, None);
    assert!(
        admin()
            .await
            .contains("XMPP component link: up since 2027-01-15T08:01:00Z (1 reconnects)")
    );
    let text = metrics.render_prometheus();
    assert!(text.contains("certwatch_xmpp_link_state{state=\"up\"} 1"));
    assert!(text.contains("certwatch_xmpp_link_state{state=\"down\"} 0"));
    assert!(text.contains(&format!(
        "certwatch_xmpp_link_since_timestamp_seconds {}",
        T0 + 60
    )));
    assert!(text.contains("certwatch_xmpp_link_reconnects_total 1"));
}
