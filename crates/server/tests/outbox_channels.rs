//! The outbox worker runs one loop per channel: a webhook receiver that stalls does not hold
//! up the email deliveries (an in-process SMTP sink and a stalling webhook receiver on
//! 127.0.0.1).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use certwatch::Report;
use certwatch_server::notify::email::{EmailOptions, EmailSender, SmtpSecurity};
use certwatch_server::notify::webhook::{WebhookClient, WebhookOptions};
use certwatch_server::notify::worker::{self, WorkerConfig};
use certwatch_server::store::{Spacing, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const T0: i64 = 1_800_000_000;
const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A minimal SMTP sink: counts the messages it accepted.
async fn start_sink() -> (u16, Arc<Mutex<u32>>) {
    let count = Arc::new(Mutex::new(0u32));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r);
                w.write_all(b"220 sink ESMTP\r\n").await?;
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok::<(), std::io::Error>(());
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    if cmd.starts_with("EHLO") {
                        w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
                    } else if cmd == "DATA" {
                        w.write_all(b"354 go on\r\n").await?;
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).await? == 0 {
                                return Ok(());
                            }
                            if line == ".\r\n" {
                                break;
                            }
                        }
                        *c.lock().unwrap() += 1;
                        w.write_all(b"250 queued\r\n").await?;
                    } else if cmd == "QUIT" {
                        w.write_all(b"221 bye\r\n").await?;
                        return Ok(());
                    } else {
                        w.write_all(b"250 ok\r\n").await?;
                    }
                }
            });
        }
    });
    (port, count)
}

/// Answers challenges, then never answers an alert; counts the alerts it got.
async fn start_stalling() -> (SocketAddr, Arc<Mutex<u32>>) {
    let got = Arc::new(Mutex::new(0u32));
    let app = Router::new()
        .route(
            "/hook",
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

fn bogus_report() -> Report {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "domain": "example.org", "checked_at": "2027-01-15T08:00:00Z",
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

#[tokio::test]
async fn a_stalled_webhook_does_not_hold_up_email() {
    let (smtp_port, mails) = start_sink().await;
    let (hook_addr, hook_got) = start_stalling().await;
    let client = WebhookClient::new(WebhookOptions {
        exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        // Only a long deadline would end the stalled exchange: the email must not wait.
        request_timeout: Duration::from_secs(3600),
        delivery_deadline: Duration::from_secs(3600),
        ..WebhookOptions::default()
    })
    .unwrap();
    let sender = EmailSender::new(&EmailOptions {
        host: "127.0.0.1".into(),
        port: smtp_port,
        security: SmtpSecurity::Plain,
        credentials: None,
        from: "certwatch <alerts@certwatch.example>".into(),
        timeout: Duration::from_secs(30),
    })
    .unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let url = format!("http://{hook_addr}/hook");
    let hook = store
        .add_pending_subscription("example.org", "webhook", &url, SECRET, T0)
        .await
        .unwrap()
        .unwrap();
    client
        .challenge(&url, &hex::decode(SECRET).unwrap(), "c0ffee")
        .await
        .unwrap();
    assert!(store.confirm_subscription(hook, T0).await.unwrap());
    let alice = store
        .add_opt_in_subscription("example.org", "email", "alice@example.net", T0, 3600)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .confirm_by_token(&alice.confirm, T0)
            .await
            .unwrap()
            .is_some()
    );
    let job = store.claim_due("w", T0, 60, 1).await.unwrap().remove(0);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&job, "w", T0 + 1, Ok(bogus_report()), spacing)
        .await
        .unwrap();

    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clock = Arc::new(certwatch_server::clock::TokioClock::starting_at(
        u64::try_from(T0 + 5).unwrap(),
    ));
    let config = WorkerConfig {
        interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let task = tokio::spawn(worker::run(
        store.clone(),
        client,
        Some(sender),
        clock,
        config,
        stop_rx,
    ));
    // Bounded wait (not timed) for the mail and the stalled webhook request.
    for _ in 0..3000 {
        if *mails.lock().unwrap() > 0 && *hook_got.lock().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        *mails.lock().unwrap(),
        1,
        "the email subscriber got its alert"
    );
    assert_eq!(
        *hook_got.lock().unwrap(),
        1,
        "the webhook request is in flight"
    );
    let deliveries = store.deliveries_of("example.org", 10).await.unwrap();
    let state = |channel: &str| {
        let d = deliveries.iter().find(|d| d.channel == channel).unwrap();
        (d.state.clone(), d.attempts)
    };
    // The email may be sent but not yet marked: not failed, and the webhook not attempted.
    assert_ne!(state("email").0, "failed");
    assert_eq!(state("webhook"), ("pending".to_owned(), 0));
    task.abort();
}
