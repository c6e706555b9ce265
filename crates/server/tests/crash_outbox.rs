//! Crash safety of the outbox in the real binary (issue 9): the service is killed with
//! SIGKILL at each crash point of the webhook worker (`before-send`, `after-send`,
//! `after-commit`; cargo feature `failpoints`, on with `interop`), restarted without the
//! failpoint, and each of the two subscribers' receivers must have the alert at least once,
//! every receipt under its own delivery's `X-Certwatch-Delivery` id (the delivery stopped at
//! the crash point, after the commit: exactly once). The worker sends both deliveries at
//! once; the failpoint stops only the first to reach it, so the other one may be anywhere
//! (not sent, sent, committed) when the process dies.
//!
//! No external service: the watched domain's checks go to a local DNS "resolver" that never
//! answers, so they fail; with `blind_after = 1s` the blindness sweep raises a `blind` alert
//! at start, delivered to a webhook receiver in this process on 127.0.0.1
//! (`--allow-private-targets`).
#![cfg(feature = "interop")]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use certwatch_server::notify::webhook::{DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature};
use certwatch_server::store::Store;

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A DNS server that never answers (UDP and TCP on one port); kept open by the test.
struct SilentResolver {
    _udp: UdpSocket,
    _tcp: TcpListener,
    port: u16,
}

fn silent_resolver() -> SilentResolver {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return SilentResolver {
                _udp: udp,
                _tcp: tcp,
                port,
            };
        }
    }
    panic!("no free port for both UDP and TCP");
}

/// The delivery id of every POST whose signature verifies (others are recorded as "bad").
#[derive(Default)]
struct Receiver {
    ids: Mutex<Vec<String>>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let ok = verify_signature(&hex::decode(SECRET).unwrap(), &body, &h(SIGNATURE_HEADER));
    r.ids
        .lock()
        .unwrap()
        .push(if ok { h(DELIVERY_HEADER) } else { "bad".into() });
    StatusCode::OK
}

async fn receiver() -> (SocketAddr, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, r)
}

/// The binary under test, checked to be this source's build (it has the outbox flags).
///
/// It is used in place, not copied: a copy written while another test thread forks a child
/// stays open for writing in that child until it execs, and running the copy then fails with
/// ETXTBSY ("Text file busy").
fn binary(_dir: &Path) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_BIN_EXE_certwatch-server"));
    let help = Command::new(&path).arg("--help").output().unwrap();
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--outbox-lease"),
        "{} is not this source's build (no --outbox-lease); rebuild and rerun",
        path.display()
    );
    path
}

fn start(bin: &Path, db: &str, resolver: u16, failpoint: Option<(&str, &Path)>) -> Child {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--database",
        db,
        "--via",
        "direct",
        "--resolver",
        &format!("127.0.0.1:{resolver}"),
        "--timeout",
        "1s",
        "--check-deadline",
        "2s",
        "--instance-id",
        "crash-outbox",
        "--allow-private-targets",
        "--blind-after",
        "1s",
        "--outbox-interval",
        "1s",
        "--outbox-lease",
        "3s",
    ])
    .env("CERTWATCH_LOG", "warn")
    .env_remove("CERTWATCH_FAILPOINT")
    .env_remove("CERTWATCH_FAILPOINT_FILE")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    if let Some((point, file)) = failpoint {
        cmd.env("CERTWATCH_FAILPOINT", point)
            .env("CERTWATCH_FAILPOINT_FILE", file);
    }
    cmd.spawn().expect("start certwatch-server")
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn crash_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = binary(dir.path());
    let url = format!("sqlite://{}", dir.path().join("cw.sqlite3").display());
    let resolver = silent_resolver();
    let mut receivers = Vec::new();
    let store = Store::open(&url).await.unwrap();
    // Two confirmed webhook subscribers of a domain added 100 s ago, never checked: blind.
    for _ in 0..2 {
        let (addr, receiver) = receiver().await;
        let hook = format!("http://{addr}/hook");
        let sub = store
            .add_pending_subscription("example.org", "webhook", &hook, SECRET, unix_now() - 100)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .confirm_subscription(sub, unix_now() - 100)
                .await
                .unwrap()
        );
        receivers.push((hook, receiver));
    }
    let receipts = |address: &str| {
        let (_, r) = receivers
            .iter()
            .find(|(hook, _)| hook == address)
            .expect("a subscriber's address");
        r.ids.lock().unwrap().clone()
    };

    let file = dir.path().join("failpoint");
    let mut server = start(&bin, &url, resolver.port, Some((point, &file)));
    wait_until(&format!("the failpoint {point}"), async || file.exists()).await;
    server.kill().unwrap(); // SIGKILL, at exactly that point
    server.wait().unwrap();
    let id = std::fs::read_to_string(&file).unwrap();
    assert_eq!(id.len(), 32, "{id:?}");
    let deliveries = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(deliveries.len(), 2, "one per subscriber: {deliveries:?}");
    let stopped = deliveries
        .iter()
        .find(|d| d.id == id)
        .expect("the failpoint's delivery")
        .clone();
    let before = receipts(&stopped.address);
    match point {
        "before-send" => assert!(before.is_empty(), "{before:?}"),
        _ => assert_eq!(before, vec![id.clone()]),
    }
    let committed = point == "after-commit";
    assert_eq!(
        stopped.state,
        if committed { "delivered" } else { "pending" }
    );

    // Restart without the failpoint: once the lease (3 s) expires an unfinished delivery is
    // claimed again and sent with the same id; a committed one is not sent again.
    let mut server = start(&bin, &url, resolver.port, None);
    wait_until("both deliveries", async || {
        store
            .deliveries_of("example.org", 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.state == "delivered")
    })
    .await;
    // Two more leases and worker passes: nothing else arrives.
    tokio::time::sleep(Duration::from_secs(7)).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let deliveries = store.deliveries_of("example.org", 10).await.unwrap();
    assert_eq!(
        deliveries.len(),
        2,
        "one delivery per subscriber (one alert, two subscribers)"
    );
    assert_ne!(deliveries[0].id, deliveries[1].id);
    assert_ne!(deliveries[0].address, deliveries[1].address);
    for d in &deliveries {
        assert_eq!(
            (d.alert.condition.as_str(), d.alert.kind.as_str()),
            ("blind", "opened")
        );
        let ids = receipts(&d.address);
        assert!(
            !ids.is_empty(),
            "{point}: {} never got the alert",
            d.address
        );
        assert!(
            ids.iter().all(|i| *i == d.id),
            "{point}: receipts under other ids (or badly signed): {ids:?}, expected {}",
            d.id
        );
        if d.id == id && committed {
            assert_eq!(ids.len(), 1, "after the commit nothing is re-sent: {ids:?}");
        }
        if d.id == id && point == "after-send" {
            assert!(
                ids.len() >= 2,
                "sent, not committed: re-sent after the restart: {ids:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_the_send_then_restart_sends_it_once_under_its_id() {
    crash_at("before-send").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_send_before_the_commit_resends_the_same_id() {
    crash_at("after-send").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_commit_sends_nothing_again() {
    crash_at("after-commit").await;
}
