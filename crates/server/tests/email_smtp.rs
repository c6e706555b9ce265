//! Email through an in-process SMTP sink on 127.0.0.1: the double opt-in message (nothing
//! else before its link is followed), the alert message with its delivery id and an
//! unsubscribe link that deletes the address, and a refused message retried later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certwatch::Report;
use certwatch_server::notify::email::{self, EmailOptions, EmailSender, SmtpSecurity};
use certwatch_server::store::{RetryPolicy, Spacing, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const T0: i64 = 1_800_000_000;
const SITE: &str = "https://certwatch.example";

#[derive(Default)]
struct Sink {
    /// (recipients, raw message) of every accepted mail.
    mails: Mutex<Vec<(Vec<String>, String)>>,
    /// Refuse recipients (550) while set.
    refuse: AtomicBool,
}

async fn serve(sink: Arc<Sink>, stream: tokio::net::TcpStream) -> std::io::Result<()> {
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
            if sink.refuse.load(Ordering::SeqCst) {
                w.write_all(b"550 no such user\r\n").await?;
            } else {
                rcpts.push(line.trim_end().to_owned());
                w.write_all(b"250 ok\r\n").await?;
            }
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
            tokio::spawn(serve(s.clone(), stream));
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

/// The value of `token=` after `path` in a mail (its quoted-printable body decoded: soft
/// line breaks and `=3D`).
fn token_after(mail: &str, path: &str) -> String {
    let flat = mail.replace("=\r\n", "").replace("=3D", "=");
    let start = flat.find(&format!("{path}?token=")).expect(path) + path.len() + 7;
    flat[start..start + 32].to_owned()
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

async fn bogus_check(store: &Store, now: i64) {
    let job = store.claim_due("w", now, 60, 1).await.unwrap().remove(0);
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    store
        .finish(&job, "w", now + 1, Ok(bogus_report()), spacing)
        .await
        .unwrap();
}

#[tokio::test]
async fn opt_in_alert_and_unsubscribe_by_mail() {
    let (port, sink) = start_sink().await;
    let sender = sender(port);
    let store = Store::open("sqlite::memory:").await.unwrap();
    assert!(
        sender
            .subscribe(&store, "example.org", "alice@example.net", T0, 86_400, SITE)
            .await
            .unwrap()
    );
    let mails = sink.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].0[0].contains("alice@example.net"));
    let confirm = token_after(&mails[0].1, "/subscriptions/confirm");
    let unsubscribe = token_after(&mails[0].1, "/subscriptions/unsubscribe");
    // Before the link is followed: not watched, so no check and nothing more is sent.
    assert!(
        store
            .claim_due("w", T0 + 1, 60, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .confirm_by_token(&confirm, T0 + 2)
            .await
            .unwrap()
            .is_some()
    );

    bogus_check(&store, T0 + 3).await;
    let pass = email::run_email_once(
        &store,
        &sender,
        "w",
        T0 + 5,
        60,
        10,
        RetryPolicy::default(),
        SITE,
    )
    .await
    .unwrap();
    assert_eq!((pass.claimed, pass.delivered, pass.failed), (1, 1, 0));
    let mails = sink.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    let alert = &mails[1].1;
    let d = store
        .deliveries_of("example.org", 10)
        .await
        .unwrap()
        .remove(0);
    assert!(
        alert.contains(&format!("X-Certwatch-Delivery: {}", d.id)),
        "{alert}"
    );
    assert!(alert.contains("ALERT example.org: bogus"), "{alert}");
    // The Date header comes from the injected time (T0 + 5), not the system clock.
    assert!(alert.contains("Date: Fri, 15 Jan 2027"), "{alert}");
    assert_eq!(
        token_after(alert, "/subscriptions/unsubscribe"),
        unsubscribe
    );

    // The unsubscribe link deletes the address.
    assert!(
        store
            .unsubscribe_by_token(&unsubscribe)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.subscriptions(None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_mail_is_retried_under_the_same_id() {
    let (port, sink) = start_sink().await;
    let sender = sender(port);
    let store = Store::open("sqlite::memory:").await.unwrap();
    sender
        .subscribe(&store, "example.org", "bob@example.net", T0, 86_400, SITE)
        .await
        .unwrap();
    let confirm = token_after(&sink.mails.lock().unwrap()[0].1, "/subscriptions/confirm");
    store.confirm_by_token(&confirm, T0).await.unwrap().unwrap();
    bogus_check(&store, T0 + 1).await;
    sink.refuse.store(true, Ordering::SeqCst);
    let retry = RetryPolicy {
        base_delay: 60,
        max_delay: 600,
        max_attempts: 5,
    };
    let p = email::run_email_once(&store, &sender, "w", T0 + 10, 60, 10, retry, SITE)
        .await
        .unwrap();
    assert_eq!(p.failed, 1);
    let d = store
        .deliveries_of("example.org", 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(d.attempts, 1);
    assert!(
        d.last_error.as_deref().unwrap_or("").contains("550"),
        "{:?}",
        d.last_error
    );
    sink.refuse.store(false, Ordering::SeqCst);
    let p = email::run_email_once(&store, &sender, "w", T0 + 69, 60, 10, retry, SITE)
        .await
        .unwrap();
    assert_eq!(p.claimed, 0, "backing off");
    let p = email::run_email_once(&store, &sender, "w", T0 + 70, 60, 10, retry, SITE)
        .await
        .unwrap();
    assert_eq!(p.delivered, 1);
    let mails = sink.mails.lock().unwrap().clone();
    assert!(
        mails[1]
            .1
            .contains(&format!("X-Certwatch-Delivery: {}", d.id))
    );
    // A bad address is refused before anything is stored or sent.
    assert!(
        sender
            .subscribe(&store, "example.org", "not an address", T0, 86_400, SITE)
            .await
            .is_err()
    );
    assert_eq!(store.subscriptions(None, 10).await.unwrap().len(), 1);
}
