//! Crash safety of the real binary: `kill -9` while a check runs leaves a consistent store
//! (the claim, no half-written check), and the restarted service retries the claimed check
//! once its lease expires. Also: SIGTERM stops the service cleanly.
//!
//! No external service: the checks point at a local DNS "resolver" that accepts queries and
//! never answers, so a check is still running when the process is killed.

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certwatch_server::store::{Store, TicketState};

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

fn start(db: &str, resolver: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_certwatch-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database",
            db,
            "--via",
            "direct",
            "--resolver",
            &format!("127.0.0.1:{resolver}"),
            "--timeout",
            "2s",
            "--check-deadline",
            "3s",
            "--instance-id",
            "crash-test",
        ])
        .env("CERTWATCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start certwatch-server")
}

async fn wait_for(
    store: &Store,
    id: &str,
    what: &str,
    f: impl Fn(&TicketState) -> bool,
) -> TicketState {
    let start = Instant::now();
    loop {
        if let Some(s) = store.ticket(id).await.unwrap()
            && f(&s)
        {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sqlite_rows(path: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_check_then_restart_retries_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.sqlite3");
    let url = format!("sqlite://{}", path.display());
    let resolver = silent_resolver();
    let store = Store::open(&url).await.unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let ticket = store.request_check("example.org", now).await.unwrap();

    let mut server = start(&url, resolver.port);
    wait_for(&store, &ticket.id, "the claim", |s| {
        *s == TicketState::Running
    })
    .await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    // Consistent: the claim is there, no check row was half-written, the file is sound.
    assert_eq!(
        store.ticket(&ticket.id).await.unwrap(),
        Some(TicketState::Running)
    );
    assert_eq!(sqlite_rows(&path, "SELECT COUNT(*) FROM checks"), 0);
    assert_eq!(
        sqlite_rows(
            &path,
            "SELECT COUNT(*) FROM domains WHERE claimed_by = 'crash-test' AND claim_until IS NOT NULL"
        ),
        1
    );
    let ok: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");

    // Restart: once the lease (deadline 3 s + 10 s) expires the check is claimed again and
    // finishes (the silent resolver makes it fail, which the ticket reports).
    let mut server = start(&url, resolver.port);
    let state = wait_for(&store, &ticket.id, "the retried check", |s| {
        matches!(s, TicketState::Done(_) | TicketState::Failed(_))
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    match state {
        TicketState::Failed(m) => assert!(!m.is_empty()),
        TicketState::Done(r) => assert_eq!(r.domain, "example.org"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(sqlite_rows(&path, "SELECT COUNT(*) FROM checks"), 1);
    assert_eq!(
        sqlite_rows(
            &path,
            "SELECT COUNT(*) FROM domains WHERE claimed_by IS NOT NULL"
        ),
        0
    );
    let history = store.history("example.org", 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].started_at >= now);
}

#[test]
fn sigterm_stops_the_service_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cw.sqlite3").display());
    let resolver = silent_resolver();
    let mut server = start(&url, resolver.port);
    // Wait until the database exists (the service has started), then SIGTERM it.
    let start = Instant::now();
    while !dir.path().join("cw.sqlite3").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the service did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
