//! XMPP notifications against a real Prosody (issue 10): the component part of the interop
//! environment (`scripts/interop-env up component`, `CERTWATCH_INTEROP`) hosts the component
//! `certwatch.xmpp.test` and two test accounts. Two real client sessions (a small client
//! below: tokio, STARTTLS with the environment's CA through rustls, SASL PLAIN, resource
//! binding) subscribe, one by PubSub and one by chat; alerts come from the store's outbox.
//!
//! The reconnect test runs a Prosody of its own (same address, other ports) and kills and
//! restarts it while an alert waits in the outbox.
#![cfg(feature = "interop")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certwatch::Report;
use certwatch_component::xml::Element;
use certwatch_server::clock::TokioClock;
use certwatch_server::component::{self, LinkState, XmppConfig};
use certwatch_server::metrics::Metrics;
use certwatch_server::store::{Spacing, Store};
use tokio::net::TcpStream;

const T0: i64 = 1_800_000_000;
const KEY: &str = "1d763a69313513c278314d05632083629181f31c50d15759d5380608599f0c5a";
const OTHER: &str = "18ba39dd58f16c14527b95e1c4bf11b22d401b7e523fdb973540fde1c214d056";
const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";

mod support;
use support::xmpp_client::{Client, Env, body, env, password};

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

/// Claims every due check and finishes each with `verdict` (a mismatch presents another key).
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

fn start_link(
    env: &Env,
    port: u16,
    store: &Store,
) -> (
    Arc<Metrics>,
    tokio::sync::watch::Sender<bool>,
    component::Running,
) {
    // Far past the checks' times, so that their deliveries are due.
    let clock = Arc::new(TokioClock::starting_at((T0 + 10_000_000) as u64));
    start_link_with(env, port, store, clock)
}

fn start_link_with(
    env: &Env,
    port: u16,
    store: &Store,
    clock: Arc<dyn certwatch_server::clock::Clock>,
) -> (
    Arc<Metrics>,
    tokio::sync::watch::Sender<bool>,
    component::Running,
) {
    let mut config = XmppConfig::new(
        &env.component_jid,
        &env.address,
        port,
        &env.secret,
        "https://cw.example",
    );
    config.ping_to = env.users_host.clone();
    config.backoff_min = Duration::from_millis(100);
    config.backoff_max = Duration::from_secs(1);
    config.outbox_interval = Duration::from_millis(100);
    let metrics = Arc::new(Metrics::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let running = component::spawn(
        config,
        store.clone(),
        metrics.clone(),
        clock,
        "interop".into(),
        stop_rx,
    );
    (metrics, stop, running)
}

async fn wait_state(metrics: &Metrics, up: bool) {
    for _ in 0..600 {
        if (metrics.xmpp_link.status().state == LinkState::Up) == up {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the link never became {}: {:?}",
        if up { "up" } else { "not up" },
        metrics.xmpp_link.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pubsub_and_a_chat_subscriber_each_get_exactly_one_alert() {
    let env = env();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let (metrics, stop, running) = start_link(&env, env.component_port, &store);
    wait_state(&metrics, true).await;
    let svc = env.component_jid.clone();
    let mut alice = Client::login(&env, env.c2s, "alice", &password(&env, "alice")).await;
    let mut bob = Client::login(&env, env.c2s, "bob", &password(&env, "bob")).await;

    // Service discovery through the real server.
    alice
        .write(&format!("<iq type='get' id='disco1' to='{svc}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"))
        .await;
    let info = alice.wait_for(|e| e.attr("id") == Some("disco1")).await;
    let q = info
        .child("query", "http://jabber.org/protocol/disco#info")
        .expect("a disco#info result");
    let has = |c: &str, t: &str| {
        q.children.iter().any(|i| {
            i.name == "identity" && i.attr("category") == Some(c) && i.attr("type") == Some(t)
        })
    };
    assert!(has("pubsub", "service") && has("client", "bot"), "{info:?}");

    // Alice: PubSub on a.example's node; Bob: the chat bot for b.example.
    alice
        .write(&format!("<iq type='set' id='sub1' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='a.example' jid='{}'/></pubsub></iq>", alice.jid))
        .await;
    let r = alice.wait_for(|e| e.attr("id") == Some("sub1")).await;
    assert_eq!(r.attr("type"), Some("result"), "{r:?}");
    // Alice may not subscribe Bob (XEP-0060 §6.1.3.1).
    alice
        .write(&format!("<iq type='set' id='sub2' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='b.example' jid='{}'/></pubsub></iq>", bob.bare))
        .await;
    let r = alice.wait_for(|e| e.attr("id") == Some("sub2")).await;
    assert_eq!(r.attr("type"), Some("error"));
    assert!(r.to_stanza().contains("invalid-jid"));
    bob.write(&format!(
        "<message type='chat' to='{svc}' id='c1'><body>subscribe b.example</body></message>"
    ))
    .await;
    let r = bob
        .wait_for(|e| e.name == "message" && body(e).contains("Subscribed"))
        .await;
    assert!(body(&r).contains(&format!("xmpp:{svc}?;node=b.example")));
    let subs = store.subscriptions(None, 10).await.unwrap();
    assert_eq!(subs.len(), 2, "{subs:?}");

    // The key of both domains changes.
    check_all(&store, T0 + 10, "match").await;
    check_all(&store, T0 + 1000, "mismatch").await;
    let ids = |domain: &'static str| {
        let store = store.clone();
        async move {
            store
                .deliveries_of(domain, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    let (ids_a, ids_b) = (ids("a.example").await, ids("b.example").await);
    assert_eq!((ids_a.len(), ids_b.len()), (1, 1));
    let got_a = alice.drain(Duration::from_secs(4)).await;
    let got_b = bob.drain(Duration::from_secs(1)).await;
    let events: Vec<&Element> = got_a
        .iter()
        .filter(|e| e.name == "message" && e.child("event", NS_EVENT).is_some())
        .filter(|e| e.attr("id").is_some_and(|id| ids_a.iter().any(|x| x == id)))
        .collect();
    assert_eq!(events.len(), 1, "{got_a:?}");
    let xml = events[0].to_stanza();
    assert!(xml.contains("<items node='a.example'>"), "{xml}");
    assert!(
        xml.contains("href='https://cw.example/domains/a.example'"),
        "{xml}"
    );
    let chats: Vec<&Element> = got_b
        .iter()
        .filter(|e| e.name == "message" && e.attr("type") == Some("chat"))
        .filter(|e| e.attr("id").is_some_and(|id| ids_b.iter().any(|x| x == id)))
        .collect();
    assert_eq!(chats.len(), 1, "{got_b:?}");
    assert!(body(chats[0]).contains("Evidence: https://cw.example/domains/b.example"));
    assert!(body(chats[0]).contains("What to do:"));
    // Neither got anything else from the service.
    let from_svc = |v: &[Element]| {
        v.iter()
            .filter(|e| {
                e.name == "message"
                    && e.attr("from").is_some_and(|f| f.starts_with(&svc))
                    && e.child("delay", "urn:xmpp:delay").is_none()
            })
            .count()
    };
    assert_eq!(from_svc(&got_a), 1, "{got_a:?}");
    assert_eq!(from_svc(&got_b), 1, "{got_b:?}");

    // Both unsubscribe; the next alert (recovered) reaches no one.
    alice
        .write(&format!("<iq type='set' id='un1' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='a.example' jid='{}'/></pubsub></iq>", alice.bare))
        .await;
    let r = alice.wait_for(|e| e.attr("id") == Some("un1")).await;
    assert_eq!(r.attr("type"), Some("result"));
    bob.write(&format!(
        "<message type='chat' to='{svc}' id='c2'><body>unsubscribe b.example</body></message>"
    ))
    .await;
    bob.wait_for(|e| body(e).contains("Unsubscribed")).await;
    assert!(store.subscriptions(None, 10).await.unwrap().is_empty());
    store.request_check("a.example", T0 + 2000).await.unwrap();
    store.request_check("b.example", T0 + 2000).await.unwrap();
    check_all(&store, T0 + 2000, "match").await;
    let after_a = alice.drain(Duration::from_secs(3)).await;
    let after_b = bob.drain(Duration::from_secs(1)).await;
    assert_eq!(from_svc(&after_a), 0, "{after_a:?}");
    assert_eq!(from_svc(&after_b), 0, "{after_b:?}");

    stop.send(true).unwrap();
    let _ = tokio::join!(running.link_task, running.outbox_task);
}

/// A Prosody of the test's own, killed and restarted at will.
struct OwnProsody {
    cfg: PathBuf,
    child: Option<std::process::Child>,
}

impl OwnProsody {
    fn start(&mut self) {
        let log = std::fs::File::create(self.cfg.with_extension("log")).unwrap();
        let child = std::process::Command::new("prosody")
            .arg("--config")
            .arg(&self.cfg)
            .arg("-F")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prosody runs");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnProsody {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_port(addr: &str, port: u16) {
    for _ in 0..200 {
        if TcpStream::connect((addr, port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {addr}:{port}");
}

fn own_prosody(env: &Env, dir: &Path, c2s: u16, comp: u16) -> OwnProsody {
    let out = std::process::Command::new(&env.prosody_instance)
        .args(["--dir", dir.to_str().unwrap(), "--listen", &env.address])
        .args([
            "--c2s",
            &c2s.to_string(),
            "--component-port",
            &comp.to_string(),
        ])
        .args(["--jid", &env.component_jid, "--secret", &env.secret])
        .args(["--users-host", &env.users_host])
        .arg("--cert")
        .arg(&env.cert)
        .arg(&env.key)
        .args(["--account", "alice", &password(env, "alice")])
        .args(["--account", "bob", &password(env, "bob")])
        .output()
        .expect("prosody-instance runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    OwnProsody { cfg, child: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_prosody_restart_the_link_comes_back_and_the_alert_arrives_once() {
    let env = env();
    let (c2s, comp) = (15222, 15347);
    let dir = tempfile::tempdir().unwrap();
    let mut prosody = own_prosody(&env, dir.path(), c2s, comp);
    prosody.start();
    wait_port(&env.address, c2s).await;
    wait_port(&env.address, comp).await;
    let store = Store::open("sqlite::memory:").await.unwrap();
    let (metrics, stop, running) = start_link(&env, comp, &store);
    wait_state(&metrics, true).await;
    let svc = env.component_jid.clone();
    let mut bob = Client::login(&env, c2s, "bob", &password(&env, "bob")).await;
    bob.write(&format!(
        "<message type='chat' to='{svc}' id='c1'><body>subscribe b.example</body></message>"
    ))
    .await;
    bob.wait_for(|e| body(e).contains("Subscribed")).await;

    // Prosody dies; the link goes down; an alert is recorded meanwhile.
    prosody.kill();
    drop(bob);
    wait_state(&metrics, false).await;
    check_all(&store, T0 + 10, "match").await;
    check_all(&store, T0 + 1000, "mismatch").await;
    let d = store.deliveries_of("b.example", 10).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state, "pending");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Prosody is back: the link reconnects and the alert goes out (offline storage keeps it
    // for Bob if he is not back yet).
    prosody.start();
    wait_port(&env.address, c2s).await;
    wait_state(&metrics, true).await;
    assert!(metrics.xmpp_link.status().reconnects >= 1);
    let mut bob = Client::login(&env, c2s, "bob", &password(&env, "bob")).await;
    let got = bob.drain(Duration::from_secs(5)).await;
    let alerts: Vec<&Element> = got
        .iter()
        .filter(|e| e.name == "message" && body(e).contains("ALERT b.example: mismatch"))
        .collect();
    assert_eq!(alerts.len(), 1, "{got:?}");
    assert_eq!(alerts[0].attr("id"), Some(d[0].id.as_str()));
    let d = store.deliveries_of("b.example", 10).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state, "delivered");

    stop.send(true).unwrap();
    let _ = tokio::join!(running.link_task, running.outbox_task);
}

/// A fresh database on the environment's PostgreSQL (the `postgres` part).
async fn fresh_postgres() -> String {
    let env = certwatch_testkit::Interop::require();
    let url = env
        .str("postgres.url")
        .expect("postgres.url in env.json")
        .to_owned();
    let name = format!(
        "cw_xmpp_{}_{}",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xmpp_store_queries_run_on_postgres() {
    use certwatch_server::store::NodePageQuery;
    let store = Store::open(&fresh_postgres().await).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        certwatch_server::store::CURRENT_VERSION
    );
    for i in 0..12 {
        store
            .request_check(&format!("d{i:02}.example"), T0)
            .await
            .unwrap();
    }
    let p = store
        .xmpp_page_nodes(NodePageQuery::After {
            after: "d03.example".into(),
            max: 4,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.nodes,
        vec!["d04.example", "d05.example", "d06.example", "d07.example"]
    );
    assert_eq!((p.first_index, p.count), (4, 12));
    let p = store
        .xmpp_page_nodes(NodePageQuery::Before {
            before: None,
            max: 3,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.nodes, vec!["d09.example", "d10.example", "d11.example"]);
    assert_eq!(p.first_index, 9);
    let p = store
        .xmpp_page_nodes(NodePageQuery::From { index: 10, max: 5 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.nodes, vec!["d10.example", "d11.example"]);
    assert!(
        store
            .xmpp_page_nodes(NodePageQuery::After {
                after: "zz.example".into(),
                max: 4,
            })
            .await
            .unwrap()
            .is_none()
    );
    // A JID's subscriptions, and a node's last item after an alert.
    store
        .add_subscription("b.example", "xmpp-chat", "bob@x.test", T0)
        .await
        .unwrap();
    store
        .add_subscription("b.example", "email", "bob@x.test", T0)
        .await
        .unwrap();
    assert_eq!(
        store.xmpp_subscriptions_of("bob@x.test", 10).await.unwrap(),
        vec![("xmpp-chat".to_owned(), "b.example".to_owned())]
    );
    assert!(store.xmpp_last_alert("b.example").await.unwrap().is_none());
    check_all(&store, T0 + 10, "match").await;
    check_all(&store, T0 + 1000, "mismatch").await;
    let last = store.xmpp_last_alert("b.example").await.unwrap().unwrap();
    assert_eq!(
        (last.condition.as_str(), last.kind.as_str()),
        ("mismatch", "opened")
    );
}

/// The real checker (direct, through the environment's validating resolver) finds the
/// interceptor of `mismatch.test` and `multi-wrong.test` (the second Prosody presents
/// `other-ec` where the TLSA records pin `host-ec`); the scheduler records the mismatch, the
/// outbox makes one delivery per subscriber, and the component sends exactly one PubSub event
/// and one chat message. A Prosody of the test's own (other ports), so that this test and the
/// others can hold the component JID at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_mismatch_check_reaches_a_pubsub_and_a_chat_subscriber_once() {
    use certwatch_server::clock::SystemClock;
    use certwatch_server::config::Config;
    use certwatch_server::random::SystemRandom;
    use certwatch_server::runner::FacadeRunner;
    use certwatch_server::scheduler::{CheckRunner, Scheduler, SchedulerConfig};

    let env = env();
    let interop = certwatch_testkit::Interop::require();
    let (c2s, comp) = (25222, 25347);
    let dir = tempfile::tempdir().unwrap();
    let mut prosody = own_prosody(&env, dir.path(), c2s, comp);
    prosody.start();
    wait_port(&env.address, c2s).await;
    wait_port(&env.address, comp).await;
    let store = Store::open("sqlite::memory:").await.unwrap();
    let clock: Arc<dyn certwatch_server::clock::Clock> = Arc::new(SystemClock);
    let (metrics, stop, running) = start_link_with(&env, comp, &store, clock.clone());
    wait_state(&metrics, true).await;
    let svc = env.component_jid.clone();
    let mut alice = Client::login(&env, c2s, "alice", &password(&env, "alice")).await;
    let mut bob = Client::login(&env, c2s, "bob", &password(&env, "bob")).await;
    alice
        .write(&format!("<iq type='set' id='sub1' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='mismatch.test' jid='{}'/></pubsub></iq>", alice.bare))
        .await;
    let r = alice.wait_for(|e| e.attr("id") == Some("sub1")).await;
    assert_eq!(r.attr("type"), Some("result"), "{r:?}");
    bob.write(&format!(
        "<message type='chat' to='{svc}' id='c1'><body>subscribe multi-wrong.test</body></message>"
    ))
    .await;
    bob.wait_for(|e| body(e).contains("Subscribed")).await;

    // The scheduler checks the subscribed domains (due now) with the real checker.
    let config = Config::load(
        [
            "certwatch-server",
            "--via",
            "direct",
            "--resolver",
            interop.str("dns.unbound").unwrap(),
            "--trust-anchor",
            interop.str("dns.trust_anchor").unwrap(),
            "--allow-private-targets",
            "--confirm",
            "0",
            "--timeout",
            "10s",
            "--check-deadline",
            "120s",
        ],
        &std::collections::HashMap::new(),
    )
    .unwrap();
    let checker_metrics = Arc::new(Metrics::new());
    // Signing evidence bundles with the store's key, as the service does.
    let runner = Arc::new(
        FacadeRunner::start(&config, checker_metrics.clone())
            .unwrap()
            .with_evidence_key(store.evidence_signing_key().await.unwrap()),
    );
    while !runner.ready() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sched_stop, sched_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = Scheduler::new(
        store.clone(),
        runner,
        checker_metrics,
        clock,
        Arc::new(SystemRandom),
        SchedulerConfig::from_config(&config),
        Arc::new(tokio::sync::Notify::new()),
    );
    let sched = tokio::spawn(scheduler.run(
        async {
            let _ = sched_rx.await;
        },
        Duration::from_secs(1),
    ));
    let started = tokio::time::Instant::now();
    let (ids_a, ids_b) = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no mismatch alert was recorded"
        );
        let a = store.deliveries_of("mismatch.test", 10).await.unwrap();
        let b = store.deliveries_of("multi-wrong.test", 10).await.unwrap();
        if !a.is_empty() && !b.is_empty() {
            break (a, b);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = sched_stop.send(());
    sched.await.unwrap();
    assert_eq!((ids_a.len(), ids_b.len()), (1, 1));
    assert_eq!(ids_a[0].alert.condition, "mismatch");
    assert_eq!(ids_b[0].alert.condition, "mismatch");
    let got_a = alice.drain(Duration::from_secs(4)).await;
    let got_b = bob.drain(Duration::from_secs(1)).await;
    let events: Vec<&Element> = got_a
        .iter()
        .filter(|e| e.name == "message" && e.child("event", NS_EVENT).is_some())
        .collect();
    assert_eq!(events.len(), 1, "{got_a:?}");
    assert_eq!(events[0].attr("id"), Some(ids_a[0].id.as_str()));
    let xml = events[0].to_stanza();
    assert!(xml.contains("<items node='mismatch.test'>"), "{xml}");
    assert!(
        xml.contains("href='https://cw.example/domains/mismatch.test'"),
        "{xml}"
    );
    let chats: Vec<&Element> = got_b
        .iter()
        .filter(|e| e.name == "message" && body(e).contains("ALERT multi-wrong.test: mismatch"))
        .collect();
    assert_eq!(chats.len(), 1, "{got_b:?}");
    assert_eq!(chats[0].attr("id"), Some(ids_b[0].id.as_str()));
    // The real check made a signed evidence bundle: the chat message and the Atom entry link it.
    let evidence = ids_b[0]
        .alert
        .evidence_id
        .expect("the mismatch alert has its bundle");
    assert!(
        body(chats[0]).contains(&format!(
            "Evidence: https://cw.example/domains/multi-wrong.test/evidence/{evidence}.json"
        )),
        "{}",
        body(chats[0])
    );
    let evidence = ids_a[0]
        .alert
        .evidence_id
        .expect("the mismatch alert has its bundle");
    let entry = events[0]
        .child("event", NS_EVENT)
        .and_then(|e| e.child("items", NS_EVENT))
        .and_then(|i| i.child("item", NS_EVENT))
        .and_then(|i| i.child("entry", "http://www.w3.org/2005/Atom"))
        .expect("an Atom entry");
    let related: Vec<&str> = entry
        .children
        .iter()
        .filter(|l| l.name == "link" && l.attr("rel") == Some("related"))
        .filter_map(|l| l.attr("href"))
        .collect();
    assert_eq!(
        related,
        vec![format!(
            "https://cw.example/domains/mismatch.test/evidence/{evidence}.json"
        )],
        "{xml}"
    );
    stop.send(true).unwrap();
    let _ = tokio::join!(running.link_task, running.outbox_task);
}

/// ejabberd (the second implementation) as the component's server: `ejabberd_service` with
/// the secret, and an anonymous user host (SASL ANONYMOUS over STARTTLS) whose user
/// subscribes by chat and gets exactly one alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_carries_the_component_too() {
    let env = env();
    let (c2s, comp, host, secret) = (35222u16, 35347u16, "anon.hosts.test", "ejabberd-secret");
    let dir = tempfile::tempdir().unwrap();
    let pki = env.cert.parent().expect("the PKI directory");
    let config = format!(
        r#"hosts:
  - {host}
loglevel: info
log_rotate_count: 0
certfiles:
  - "{chain}"
  - "{key}"
auth_method: anonymous
anonymous_protocol: sasl_anon
default_db: mnesia
acl: {{}}
access_rules: {{}}
shaper_rules: {{}}
modules:
  mod_disco: {{}}
  mod_ping: {{}}
listen:
  - port: {c2s}
    ip: "{addr}"
    module: ejabberd_c2s
    starttls_required: true
  - port: {comp}
    ip: "{addr}"
    module: ejabberd_service
    hosts:
      {jid}:
        password: "{secret}"
"#,
        chain = pki.join("ejabberd-ec.fullchain.pem").display(),
        key = pki.join("ejabberd-ec.key").display(),
        addr = env.address,
        jid = env.component_jid,
    );
    std::fs::write(dir.path().join("ejabberd.yml"), config).unwrap();
    let run =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/interop/xmpp/ejabberd-run");
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let child = std::process::Command::new(run)
        .arg(dir.path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("ejabberd-run runs");
    let _ejabberd = KillOnDrop(Some(child));
    wait_port(&env.address, c2s).await;
    wait_port(&env.address, comp).await;

    let store = Store::open("sqlite::memory:").await.unwrap();
    let ejabberd_env = Env {
        secret: secret.to_owned(),
        users_host: host.to_owned(),
        ..env.clone()
    };
    let (metrics, stop, running) = start_link(&ejabberd_env, comp, &store);
    wait_state(&metrics, true).await;
    let svc = env.component_jid.clone();
    let mut anon = Client::login_to(&env, host, c2s, "", "").await;
    anon.write(&format!(
        "<message type='chat' to='{svc}' id='c1'><body>subscribe b.example</body></message>"
    ))
    .await;
    anon.wait_for(|e| body(e).contains("Subscribed")).await;
    let subs = store.subscriptions(None, 10).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].address, anon.bare);
    check_all(&store, T0 + 10, "match").await;
    check_all(&store, T0 + 1000, "mismatch").await;
    let d = store.deliveries_of("b.example", 10).await.unwrap();
    let got = anon.drain(Duration::from_secs(4)).await;
    let alerts: Vec<&Element> = got
        .iter()
        .filter(|e| e.name == "message" && body(e).contains("ALERT b.example: mismatch"))
        .collect();
    assert_eq!(alerts.len(), 1, "{got:?}");
    assert_eq!(alerts[0].attr("id"), Some(d[0].id.as_str()));
    stop.send(true).unwrap();
    let _ = tokio::join!(running.link_task, running.outbox_task);
}

/// A child process killed when the test ends.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
