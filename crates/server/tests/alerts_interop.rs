//! Issue 9's drills against real peers (interop): the real `certwatch-server` binary, probing
//! over the private Tor network, with a real SMTP sink (aiosmtpd, the `alerts` part of
//! `scripts/interop-env`) and a webhook receiver in this test process.
//!
//! - **MITM drill, then blindness** (`mitm_drill_then_blindness`): the test starts the
//!   watched domain's own Prosody (`alert.test` -> 127.0.0.21, TLSA pins `host-ec`), subscribes
//!   one mailbox (double opt-in through the mail) and one webhook (challenge), lets a check
//!   match, then swaps the server for one that presents `other-ec`. Exactly one email and one
//!   webhook call arrive per subscriber, each linking a bundle whose signature (with the key the
//!   site publishes) and DNSSEC chain verify offline. Restoring the key sends `recovered`.
//!   Then the server is stopped for longer than the blindness threshold: a `blind` alert,
//!   and `recovered` once it is back.
//! - **Hostile exit** (`hostile_exit_is_an_admin_notice_only`): the domain `drill.test`, whose
//!   destination one exit of the private network redirects to a MITM (the `hostile` part):
//!   the administrator gets a `hostile-exit` notice naming that exit; the subscriber gets
//!   nothing.
//!
//! The clock is real (a real binary, real Tor): the thresholds are set to seconds, and the
//! waits are bounded. Nothing here asserts speed.
#![cfg(feature = "interop")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use certwatch_component::xml::Element;
use certwatch_testkit::{Interop, PrivateArtiConfig};

mod support;
use support::xmpp_client::{self, Client, body, password};

const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One HTTP/1.1 request to `127.0.0.1:port` (`Connection: close`): status, headers, body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of header"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let mut body = raw[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let Ok(n) = usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16) else {
            break;
        };
        let after = &rest[i + 2..];
        if n == 0 || after.len() < n {
            break;
        }
        out.extend_from_slice(&after[..n]);
        rest = after[n..].strip_prefix(b"\r\n").unwrap_or(&after[n..]);
    }
    out
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, _, body) = http(port, "GET", path, "application/json", b"").expect(path);
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

/// SHA-256 of the SubjectPublicKeyInfo of the key `host:port` presents after STARTTLS, by
/// openssl (the independent oracle): tells which Prosody answers.
fn presented_spki(addr: &str, domain: &str) -> Option<String> {
    let cmd = format!(
        "timeout 10 openssl s_client -connect {addr}:5222 -starttls xmpp -xmpphost {domain} \
         -sigalgs ECDSA+SHA256 </dev/null 2>/dev/null | openssl x509 -pubkey -noout 2>/dev/null \
         | openssl pkey -pubin -outform der 2>/dev/null | sha256sum | cut -d' ' -f1"
    );
    let out = Command::new("sh").arg("-c").arg(cmd).output().ok()?;
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // sha256sum of nothing: no certificate came back.
    (hex.len() == 64 && hex != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        .then_some(hex)
}

/// The drill domain's own Prosody, presenting `key` (a key name of the pki part).
struct DomainServer {
    _child: Killed,
}

impl DomainServer {
    fn start(env: &Interop, dir: &Path, key: &str) -> DomainServer {
        let address = env.str("alerts.address").unwrap().to_owned();
        let domain = env.str("alerts.domain").unwrap().to_owned();
        let conf_dir = dir.join(format!("prosody-{key}"));
        let out = Command::new(env.path("alerts.prosody_config").unwrap())
            .args(["--dir", &conf_dir.display().to_string()])
            .args(["--listen", &address, "--c2s", "5222", "--host", &domain])
            .arg("--cert")
            .arg(env.path(&format!("pki.keys.{key}.fullchain")).unwrap())
            .arg(env.path(&format!("pki.keys.{key}.key")).unwrap())
            .output()
            .expect("prosody-config runs");
        assert!(out.status.success(), "prosody-config: {out:?}");
        let cfg = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let log = std::fs::File::create(dir.join(format!("prosody-{key}.log"))).unwrap();
        let child = Killed(
            Command::new("prosody")
                .args(["--config", &cfg, "-F"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("prosody starts"),
        );
        let want = env.str(&format!("pki.keys.{key}.spki_sha256")).unwrap();
        wait_for(Duration::from_secs(30), "the drill's Prosody", || {
            (presented_spki(&address, &domain).as_deref() == Some(want)).then_some(())
        });
        DomainServer { _child: child }
    }
}

/// What the webhook receiver got: one entry per request.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature: String,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1 (a thread): answers challenges, records every request.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(conn, &sink);
                });
            }
        });
        Receiver { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The alert requests so far (challenges left out), parsed.
    fn alerts(&self) -> Vec<(Received, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| {
                let v: Value = serde_json::from_slice(&r.body).ok()?;
                (v["type"] == "alert").then(|| (r.clone(), v))
            })
            .collect()
    }
}

fn serve_one(conn: TcpStream, sink: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut headers = BTreeMap::new();
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = if parsed["type"] == "challenge" {
        json!({"challenge": parsed["challenge"]}).to_string()
    } else {
        "{}".to_owned()
    };
    sink.lock().unwrap().push(Received {
        delivery: headers
            .get("x-certwatch-delivery")
            .cloned()
            .unwrap_or_default(),
        signature: headers
            .get("x-certwatch-signature-256")
            .cloned()
            .unwrap_or_default(),
        body,
    });
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    conn.flush()
}

/// One message of the SMTP sink's Maildir.
#[derive(Debug, Clone)]
struct Mail {
    subject: String,
    /// The `X-Certwatch-Delivery` header.
    delivery: String,
    /// The decoded text (quoted-printable soft breaks undone).
    text: String,
}

/// The messages in the sink's Maildir sent to `rcpt`, oldest first.
fn mails_to(env: &Interop, rcpt: &str) -> Vec<Mail> {
    let dir = PathBuf::from(env.str("alerts.smtp.maildir").unwrap()).join("new");
    let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = std::fs::read_dir(&dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| {
                    let t = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (t, e.file_name().to_string_lossy().into_owned(), e.path())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, _, p)| {
            let raw = std::fs::read_to_string(&p).ok()?;
            let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
            let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
            let header = |name: &str| {
                unfolded.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            let to = header("To").unwrap_or_default();
            if !to.contains(rcpt) {
                return None;
            }
            let qp = header("Content-Transfer-Encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("quoted-printable"));
            let text = if qp { decode_qp(body) } else { body.to_owned() };
            Some(Mail {
                subject: header("Subject").unwrap_or_default(),
                delivery: header("X-Certwatch-Delivery").unwrap_or_default(),
                text,
            })
        })
        .collect()
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'=')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(v) = escaped {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first `http://...` link in `text` that contains `needle`.
fn link_with(text: &str, needle: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .find(|w| w.starts_with("http") && w.contains(needle))
        .map(|w| w.trim_end_matches(['.', ',', ')']).to_owned())
}

/// The path and query of an absolute `http://host:port/...` URL.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.find('/')
        .map(|i| rest[i..].to_owned())
        .unwrap_or("/".into())
}

/// A running `certwatch-server` over the private Tor network.
struct Service {
    port: u16,
    log: PathBuf,
    _child: Killed,
    _arti: PrivateArtiConfig,
}

impl Drop for Service {
    /// A failing drill shows the end of the service's log.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- certwatch-server log (last 60 lines) ---");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn start_service(env: &Interop, dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Service {
    let port = free_port();
    let arti = env
        .private_arti_config()
        .expect("a private arti configuration");
    let database = format!("sqlite://{}", dir.join("db.sqlite3").display());
    let public_url = format!("http://127.0.0.1:{port}");
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_certwatch-server"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database", &database, "--public-url", &public_url])
            .args(["--via", "tor", "--tor-config", arti.path_str()])
            .args(["--resolver", env.str("dns.unbound").unwrap()])
            .args(["--trust-anchor", env.str("dns.trust_anchor").unwrap()])
            .args(["--allow-private-targets", "--confirm", "3"])
            .args([
                "--timeout",
                "15s",
                "--jitter",
                "1s",
                "--outbox-interval",
                "1s",
            ])
            .args(extra)
            .env("CERTWATCH_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("certwatch-server starts"),
    );
    wait_for(
        Duration::from_secs(60),
        "certwatch-server to answer",
        || {
            if let Ok(Some(status)) = child.0.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("certwatch-server exited ({status}):\n{log}");
            }
            http(port, "GET", "/healthz", "text/plain", b"").ok()
        },
    );
    Service {
        port,
        log: log_path,
        _child: child,
        _arti: arti,
    }
}

/// The service's evidence key, as its site publishes it.
fn published_key(port: u16) -> Vec<u8> {
    let v = get_json(port, "/.well-known/certwatch-evidence-key.json");
    assert_eq!(v["algorithm"], "ed25519", "{v}");
    base64::engine::general_purpose::STANDARD
        .decode(v["public_key"].as_str().expect("public_key"))
        .expect("base64 key")
}

/// Submits the first POST form of the page at `path` (its hidden inputs, plus `extra`), with
/// the cookies the page set: how a person follows a link from a mail and presses the button.
fn submit_form(port: u16, path: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let (status, head, body) = http(port, "GET", path, "text/html", b"").expect(path);
    let page = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "GET {path}: {page}");
    let cookies: Vec<String> = head
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().split(';').next().unwrap_or("").to_owned())
        })
        .collect();
    let form_at = page
        .to_ascii_lowercase()
        .find("method=\"post\"")
        .unwrap_or_else(|| panic!("no POST form on {path}: {page}"));
    let open = page[..form_at].rfind("<form").expect("<form");
    let close = page[open..]
        .find("</form>")
        .map(|i| open + i)
        .unwrap_or(page.len());
    let form = &page[open..close];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[at..].find('"')? + at;
        Some(tag[at..end].replace("&amp;", "&"))
    };
    let action = attr(&form[..form.find('>').unwrap_or(form.len())], "action")
        .unwrap_or_else(|| path.to_owned());
    let mut fields: Vec<(String, String)> = Vec::new();
    for piece in form.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((n, v));
        }
    }
    for (k, v) in extra {
        fields.push(((*k).to_owned(), (*v).to_owned()));
    }
    let encoded = fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let cookie = if cookies.is_empty() {
        String::new()
    } else {
        format!("Cookie: {}\r\n", cookies.join("; "))
    };
    write!(
        stream,
        "POST {action} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{cookie}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{encoded}",
        encoded.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asks the service to check `domain` (the service only takes subscriptions for domains it
/// knows) and waits for the stored report.
fn check_first(port: u16, domain: &str) {
    let body = json!({ "domain": domain }).to_string();
    let (status, _, answer) = http(
        port,
        "POST",
        "/api/v1/checks",
        "application/json",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    wait_for(Duration::from_secs(240), "the first check's report", || {
        last_verdict(port, domain)
    });
}

/// Subscribes `mailbox` to `domain` through the API and confirms it through the link of the
/// confirmation mail (a GET shows the button, the POST confirms).
fn subscribe_email(env: &Interop, port: u16, domain: &str, mailbox: &str) {
    let body = json!({"domain": domain, "email": mailbox}).to_string();
    let (status, _, answer) = http(
        port,
        "POST",
        "/api/v1/subscriptions",
        "application/json",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let mail = wait_for(Duration::from_secs(60), "the confirmation mail", || {
        mails_to(env, mailbox).into_iter().next()
    });
    let link = link_with(&mail.text, "/subscriptions/confirm").unwrap_or_else(|| {
        panic!("no confirmation link in {mail:?}");
    });
    let (status, page) = submit_form(port, &path_of(&link), &[]);
    assert!(
        (200..400).contains(&status),
        "confirming {link}: {status} {page}"
    );
}

/// Subscribes the receiver's `path` to `domain` through the API (the service challenges it);
/// returns the HMAC secret the answer shows once.
fn subscribe_webhook(port: u16, domain: &str, url: &str) -> Vec<u8> {
    let body = json!({"domain": domain, "webhook_url": url}).to_string();
    let (status, _, answer) = http(
        port,
        "POST",
        "/api/v1/subscriptions",
        "application/json",
        body.as_bytes(),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    assert_eq!(status, 201, "{v}");
    hex::decode(v["secret"].as_str().expect("the secret, once")).expect("hex secret")
}

/// The stored report's verdict and check time, once there is one.
fn last_verdict(port: u16, domain: &str) -> Option<(String, String)> {
    let (status, _, body) = http(
        port,
        "GET",
        &format!("/api/v1/domains/{domain}"),
        "application/json",
        b"",
    )
    .ok()?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_slice(&body).ok()?;
    Some((
        v["verdict"].as_str()?.to_owned(),
        v["checked_at"].as_str().unwrap_or("").to_owned(),
    ))
}

/// Checks one webhook alert: its HMAC over the raw body, and the evidence bundle it links,
/// fetched from the service and verified offline (signature with the published key, DNSSEC
/// chain from the environment's trust anchor).
fn verify_webhook_alert(env: &Interop, port: u16, secret: &[u8], got: &Received, v: &Value) {
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let want = format!(
        "sha256={}",
        hex::encode(hmac::sign(&key, &got.body).as_ref())
    );
    assert_eq!(got.signature, want, "HMAC of the raw body");
    assert_eq!(v["delivery_id"], got.delivery.as_str());
    let url = v["evidence_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence_url in {v}"));
    verify_bundle(env, port, url, v["domain"].as_str().unwrap());
}

/// Fetches the bundle at `url` and verifies it fully; returns it.
fn verify_bundle(
    env: &Interop,
    port: u16,
    url: &str,
    domain: &str,
) -> certwatch::evidence::VerifiedBundle {
    let (status, _, bytes) = http(port, "GET", &path_of(url), "application/json", b"").unwrap();
    assert_eq!(status, 200, "GET {url}");
    let anchor_text = std::fs::read_to_string(env.str("dns.trust_anchor").unwrap()).unwrap();
    let anchor = certwatch::TrustAnchor::from_file_text(&anchor_text);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let verified = certwatch::evidence::verify(&bytes, &published_key(port), &anchor, now)
        .unwrap_or_else(|e| panic!("the bundle at {url} does not verify: {e}"));
    verified.expect_domain(domain).expect("the bundle's domain");
    verified
}

/// Alerts of one condition and kind among the receiver's requests.
fn webhook_alerts(r: &Receiver, condition: &str, kind: &str) -> Vec<(Received, Value)> {
    r.alerts()
        .into_iter()
        .filter(|(_, v)| v["condition"] == condition && v["kind"] == kind)
        .collect()
}

/// The (condition, kind) of an alert mail, from its subject (`[certwatch] ALERT D: C`,
/// `[certwatch] D recovered: C`, `[certwatch] still: D C`); `None` for other mail.
fn mail_kind(subject: &str) -> Option<(String, &'static str)> {
    let rest = subject.strip_prefix("[certwatch] ")?;
    if let Some(r) = rest.strip_prefix("ALERT ") {
        return Some((r.rsplit(": ").next()?.to_owned(), "opened"));
    }
    if let Some(r) = rest.strip_prefix("still: ") {
        return Some((r.rsplit(' ').next()?.to_owned(), "reminder"));
    }
    let (_, c) = rest.split_once(" recovered: ")?;
    Some((c.to_owned(), "recovered"))
}

/// Alert mails to `rcpt` of one condition and kind.
fn alert_mails(env: &Interop, rcpt: &str, condition: &str, kind: &str) -> Vec<Mail> {
    mails_to(env, rcpt)
        .into_iter()
        .filter(|m| mail_kind(&m.subject).is_some_and(|(c, k)| c == condition && k == kind))
        .collect()
}

/// The drill's two subscribers of one domain, on one service.
struct Subscribers<'a> {
    env: &'a Interop,
    port: u16,
    mailbox: &'a str,
    hook: &'a Receiver,
    secret: &'a [u8],
}

/// Waits until exactly one alert of (`condition`, `kind`) reached the mailbox and the
/// webhook, checks both (the mail links the bundle, the webhook is signed and links it), and
/// returns the webhook's body.
fn expect_one_alert(s: &Subscribers<'_>, condition: &str, kind: &str, limit: Duration) -> Value {
    let (env, port, mailbox, hook, secret) = (s.env, s.port, s.mailbox, s.hook, s.secret);
    let what = format!("a `{condition}` `{kind}` alert by mail and webhook");
    wait_for(limit, &what, || {
        (!alert_mails(env, mailbox, condition, kind).is_empty()
            && !webhook_alerts(hook, condition, kind).is_empty())
        .then_some(())
    });
    let hooks = webhook_alerts(hook, condition, kind);
    let ids: std::collections::BTreeSet<&str> =
        hooks.iter().map(|(r, _)| r.delivery.as_str()).collect();
    assert_eq!(ids.len(), 1, "one delivery id per subscriber: {hooks:?}");
    let (got, v) = &hooks[0];
    if condition != "blind" {
        verify_webhook_alert(env, port, secret, got, v);
    }
    let mails = alert_mails(env, mailbox, condition, kind);
    assert_eq!(mails.len(), 1, "exactly one mail: {mails:?}");
    assert!(
        !mails[0].delivery.is_empty(),
        "the mail names its delivery id"
    );
    if condition != "blind" {
        let link = link_with(&mails[0].text, "/evidence/")
            .unwrap_or_else(|| panic!("no evidence link in the mail: {:?}", mails[0]));
        verify_bundle(env, port, &link, v["domain"].as_str().unwrap());
    }
    v.clone()
}

#[test]
fn mitm_drill_then_blindness() {
    let env = Interop::require();
    let dir = tempfile::tempdir().unwrap();
    let domain = env.str("alerts.domain").unwrap().to_owned();
    let mut server = Some(DomainServer::start(&env, dir.path(), "host-ec"));
    let hook = Receiver::start();
    // The XMPP side (issue 10): the service joins the component part's Prosody.
    let xenv = xmpp_client::env();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let smtp = env.str("alerts.smtp.address").unwrap().to_owned();
    let service = start_service(
        &env,
        dir.path(),
        &[
            "--interval",
            "20s",
            "--blind-after",
            "75s",
            "--remind-after",
            "1h",
            "--smtp-url",
            &format!("smtp://{smtp}"),
            "--smtp-from",
            "certwatch@alerts.test",
        ],
        &[
            ("CERTWATCH_XMPP_COMPONENT_JID", xenv.component_jid.as_str()),
            ("CERTWATCH_XMPP_SERVER_HOST", xenv.address.as_str()),
            (
                "CERTWATCH_XMPP_SERVER_PORT",
                &xenv.component_port.to_string(),
            ),
            ("CERTWATCH_XMPP_SECRET", xenv.secret.as_str()),
        ],
    );
    let port = service.port;
    let mailbox = format!("ops-{}-{}@alert.test", std::process::id(), port);
    check_first(port, &domain);
    subscribe_email(&env, port, &domain, &mailbox);
    let secret = subscribe_webhook(port, &domain, &hook.url("/hook"));
    // Alice subscribes to the domain's PubSub node, Bob through the chat bot.
    wait_for(Duration::from_secs(60), "the XMPP component link", || {
        let (_, _, m) = http(port, "GET", "/metrics", "text/plain", b"").ok()?;
        String::from_utf8_lossy(&m)
            .contains("certwatch_xmpp_link_state{state=\"up\"} 1")
            .then_some(())
    });
    let svc = xenv.component_jid.clone();
    let (mut alice, mut bob) = rt.block_on(async {
        let mut alice = Client::login(&xenv, xenv.c2s, "alice", &password(&xenv, "alice")).await;
        let mut bob = Client::login(&xenv, xenv.c2s, "bob", &password(&xenv, "bob")).await;
        alice
            .write(&format!("<iq type='set' id='sub1' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='{domain}' jid='{}'/></pubsub></iq>", alice.bare))
            .await;
        let r = alice.wait_for(|e| e.attr("id") == Some("sub1")).await;
        assert_eq!(r.attr("type"), Some("result"), "{r:?}");
        bob.write(&format!(
            "<message type='chat' to='{svc}' id='c1'><body>subscribe {domain}</body></message>"
        ))
        .await;
        bob.wait_for(|e| e.name == "message" && body(e).contains("Subscribed"))
            .await;
        (alice, bob)
    });
    let subs = Subscribers {
        env: &env,
        port,
        mailbox: &mailbox,
        hook: &hook,
        secret: &secret,
    };

    // Through Tor: the first check of the subscribed domain matches.
    wait_for(Duration::from_secs(240), "a first `match`", || {
        last_verdict(port, &domain).filter(|(v, _)| v == "match")
    });
    assert!(hook.alerts().is_empty(), "no alert while it matches");

    // The MITM: the domain's server now presents another key.
    drop(server.take());
    server = Some(DomainServer::start(&env, dir.path(), "other-ec"));
    let v = expect_one_alert(&subs, "mismatch", "opened", Duration::from_secs(300));
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains(env.str("pki.keys.other-ec.spki_sha256").unwrap())),
        "the alert names the presented key: {v}"
    );
    // Exactly one PubSub event for Alice and one chat message for Bob, each with the link
    // to the alert's evidence bundle (the webhook above carried the same bundle).
    let from_svc = |got: &[Element], what: &str| -> Vec<Element> {
        got.iter()
            .filter(|e| e.name == "message" && e.attr("from").is_some_and(|f| f.starts_with(&svc)))
            .filter(|e| match what {
                "event" => e.child("event", NS_EVENT).is_some(),
                _ => e.attr("type") == Some("chat") && !body(e).is_empty(),
            })
            .cloned()
            .collect()
    };
    let evidence_url = v["evidence_url"].as_str().unwrap().to_owned();
    let (events, chats) = rt.block_on(async {
        (
            alice.drain(Duration::from_secs(10)).await,
            bob.drain(Duration::from_secs(2)).await,
        )
    });
    let (events, chats) = (from_svc(&events, "event"), from_svc(&chats, "chat"));
    assert_eq!(events.len(), 1, "one PubSub event: {events:?}");
    assert!(
        events[0].to_stanza().contains(&evidence_url),
        "{:?}",
        events[0]
    );
    assert_eq!(chats.len(), 1, "one chat message: {chats:?}");
    assert!(body(&chats[0]).contains(&evidence_url), "{:?}", chats[0]);

    // Two more checks see the same interception: still exactly one alert per subscriber.
    let (_, first) = last_verdict(port, &domain).unwrap();
    wait_for(Duration::from_secs(180), "two more checks", || {
        let (_, at) = last_verdict(port, &domain)?;
        (at != first).then_some(())
    });
    std::thread::sleep(Duration::from_secs(25));
    assert_eq!(webhook_alerts(&hook, "mismatch", "opened").len(), 1);
    assert_eq!(alert_mails(&env, &mailbox, "mismatch", "opened").len(), 1);
    let (more_events, more_chats) = rt.block_on(async {
        (
            alice.drain(Duration::from_secs(1)).await,
            bob.drain(Duration::from_secs(1)).await,
        )
    });
    assert!(
        from_svc(&more_events, "event").is_empty(),
        "{more_events:?}"
    );
    assert!(from_svc(&more_chats, "chat").is_empty(), "{more_chats:?}");
    // Both unsubscribe: the next drills (recovered, blind) reach neither.
    rt.block_on(async {
        alice
            .write(&format!("<iq type='set' id='un1' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='{domain}' jid='{}'/></pubsub></iq>", alice.bare))
            .await;
        let r = alice.wait_for(|e| e.attr("id") == Some("un1")).await;
        assert_eq!(r.attr("type"), Some("result"), "{r:?}");
        bob.write(&format!(
            "<message type='chat' to='{svc}' id='c2'><body>unsubscribe {domain}</body></message>"
        ))
        .await;
        bob.wait_for(|e| e.name == "message" && body(e).to_ascii_lowercase().contains("unsubscribed"))
            .await;
    });

    // The key comes back: "recovered", once.
    drop(server.take());
    server = Some(DomainServer::start(&env, dir.path(), "host-ec"));
    expect_one_alert(&subs, "mismatch", "recovered", Duration::from_secs(300));

    // Blindness: nothing answers for longer than --blind-after.
    drop(server.take());
    expect_one_alert(&subs, "blind", "opened", Duration::from_secs(300));
    assert!(
        webhook_alerts(&hook, "mismatch", "opened").len() == 1,
        "an unreachable server is not a new interception"
    );
    server = Some(DomainServer::start(&env, dir.path(), "host-ec"));
    expect_one_alert(&subs, "blind", "recovered", Duration::from_secs(300));
    // Email and webhook got recovered, blind and recovered; the unsubscribed JIDs nothing.
    let (late_events, late_chats) = rt.block_on(async {
        (
            alice.drain(Duration::from_secs(5)).await,
            bob.drain(Duration::from_secs(1)).await,
        )
    });
    assert!(
        from_svc(&late_events, "event").is_empty(),
        "{late_events:?}"
    );
    assert!(from_svc(&late_chats, "chat").is_empty(), "{late_chats:?}");
    drop(server);
}

#[test]
fn hostile_exit_is_an_admin_notice_only() {
    let env = Interop::require();
    let dir = tempfile::tempdir().unwrap();
    let domain = env.str("hostile.domain").unwrap().to_owned();
    let exit = env.str("hostile.exit.address").unwrap().to_owned();
    let admin = Receiver::start();
    let subscriber = Receiver::start();
    let admin_secret = "11".repeat(32);
    let secret_file = dir.path().join("admin-webhook.secret");
    std::fs::write(&secret_file, &admin_secret).unwrap();
    let service = start_service(
        &env,
        dir.path(),
        &[
            "--interval",
            "15s",
            "--admin-webhook-url",
            &admin.url("/admin"),
            "--admin-webhook-secret-file",
            &secret_file.display().to_string(),
        ],
        &[],
    );
    let port = service.port;
    check_first(port, &domain);
    let secret = subscribe_webhook(port, &domain, &subscriber.url("/sub"));
    // Each check takes a fresh circuit: sooner or later the hostile exit carries one, and the
    // confirmation through the other exits and directly shows the MITM is the exit's.
    let notices = wait_for(
        Duration::from_secs(600),
        "an admin hostile-exit notice",
        || {
            let n: Vec<(Received, Value)> = admin
                .alerts()
                .into_iter()
                .filter(|(_, v)| v["condition"] == "hostile-exit")
                .collect();
            (!n.is_empty()).then_some(n)
        },
    );
    let (got, v) = &notices[0];
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &hex::decode(&admin_secret).unwrap());
    assert_eq!(
        got.signature,
        format!(
            "sha256={}",
            hex::encode(hmac::sign(&key, &got.body).as_ref())
        ),
        "the admin notice is signed"
    );
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&exit),
        "the notice names the exit {exit}: {v}"
    );
    assert!(
        detail.contains(env.str("hostile.mitm.spki_sha256").unwrap()),
        "the notice names the MITM's key: {v}"
    );
    let url = v["evidence_url"]
        .as_str()
        .unwrap_or_else(|| panic!("the notice links its evidence: {v}"));
    let bundle = verify_bundle(&env, port, url, &domain);
    assert!(
        bundle.any_key_outside_tlsa(),
        "the bundle shows the MITM's key outside the TLSA RRset"
    );
    // More checks after the notice (through any exit, the hostile one too): still one
    // incident, never a recovered/opened pair per check, and no alarm for the subscriber.
    std::thread::sleep(Duration::from_secs(45));
    let kinds: Vec<String> = admin
        .alerts()
        .into_iter()
        .filter(|(_, v)| v["condition"] == "hostile-exit")
        .map(|(_, v)| v["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["opened"],
        "one admin notice per hostile exit incident"
    );
    let alarms = subscriber.alerts();
    assert!(
        alarms.is_empty(),
        "a hostile exit must not alarm subscribers: {alarms:?}"
    );
    let _ = secret;
}
