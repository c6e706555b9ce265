//! Crash safety on PostgreSQL (interop: the `postgres` part of scripts/interop-env): `kill -9`
//! of the real binary while a check runs, then a restart that retries the claimed check.
#![cfg(feature = "interop")]

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certwatch_server::store::{Store, TicketState};
use certwatch_testkit::Interop;

fn silent_port() -> (UdpSocket, TcpListener, u16) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp, port);
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
        ])
        .env("CERTWATCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start certwatch-server")
}

async fn wait_for(store: &Store, id: &str, f: impl Fn(&TicketState) -> bool) -> TicketState {
    let start = Instant::now();
    loop {
        if let Some(s) = store.ticket(id).await.unwrap()
            && f(&s)
        {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_check_on_postgres_then_restart_retries_it() {
    let env = Interop::require();
    let admin = env.str("postgres.url").unwrap().to_owned();
    let name = format!("cw_crash_{}", std::process::id());
    let create = name.clone();
    let admin2 = admin.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin2, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {create}"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {create}"))
            .unwrap();
    })
    .join()
    .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let (_udp, _tcp, port) = silent_port();
    let store = Store::open(&url).await.unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let ticket = store.request_check("example.org", now).await.unwrap();

    let mut server = start(&url, port);
    wait_for(&store, &ticket.id, |s| *s == TicketState::Running).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(
        store.ticket(&ticket.id).await.unwrap(),
        Some(TicketState::Running)
    );
    assert!(store.history("example.org", 10).await.unwrap().is_empty());

    let mut server = start(&url, port);
    let state = wait_for(&store, &ticket.id, |s| {
        matches!(s, TicketState::Done(_) | TicketState::Failed(_))
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(matches!(
        state,
        TicketState::Failed(_) | TicketState::Done(_)
    ));
    assert_eq!(store.history("example.org", 10).await.unwrap().len(), 1);
    let view = store
        .domain_view("example.org", now + 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.pending_ticket, None);
}
