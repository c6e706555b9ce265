//! Browser test (interop): headless Chromium, driven over the W3C WebDriver protocol by
//! Debian's `chromedriver`, enters a domain of the interop environment on the home page of a
//! real `certwatch-server` process, waits for the result page, reads the setup lines from it,
//! and checks them against the SHA-256 of the environment's certificates' public keys as
//! computed by openssl.
//!
//! Needs the interop environment (`scripts/interop-env up`, `CERTWATCH_INTEROP`) and the Debian
//! packages `chromium`, `chromium-driver` and `openssl`. The WebDriver client is the few lines
//! of HTTP/1.1 over a loopback `TcpStream` below: no TLS, no extra crate.
//!
//! The server runs with `--via direct`, so every probe has the same (direct) vantage point;
//! `--setup-lines-min-vantages 1` lets the page show probe-derived lines from it. The test
//! also checks that the page says how many vantage points agreed and shows the local
//! commands.
//!
//! A second test runs the server without `--allow-private-targets` and checks, over plain
//! HTTP, that the API and the result page say the loopback targets were refused.
#![cfg(feature = "interop")]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use certwatch_testkit::Interop;

/// The WebDriver element reference key (W3C).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

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

/// One HTTP/1.1 request to `127.0.0.1:port`, `Connection: close`; the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes())?;
    // Read the header, then exactly Content-Length bytes (chromedriver may keep the
    // connection open), or to the end without a length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the HTTP header ended",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let mut rest = raw[header_end..].to_vec();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while rest.len() < len {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&buf[..n]);
        }
        rest.truncate(len);
    } else {
        stream.read_to_end(&mut rest)?;
    }
    let rest = String::from_utf8_lossy(&rest).into_owned();
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(&rest) } else { rest };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A WebDriver session on a chromedriver.
struct Driver {
    port: u16,
    session: String,
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (status, text) = http(self.port, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON ({e}): {text}"));
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
        .collect()
    }

    fn find(&self, css: &str) -> String {
        self.find_all(css).into_iter().next().unwrap_or_else(|| {
            panic!(
                "no element {css} at {}; the page is:\n{}",
                self.url(),
                self.call("GET", "/source", None)
            )
        })
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// Polls `f` every 250 ms until it returns `Some`, or panics after `limit` with `what`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Starts `certwatch-server` on a free loopback port against the environment's resolver and
/// trust anchor, probing directly, with a database in `dir` and the `extra` flags; waits until
/// it answers.
fn start_server(env: &Interop, dir: &Path, extra: &[&str]) -> (u16, Killed) {
    let web_port = free_port();
    let listen = format!("127.0.0.1:{web_port}");
    let database = format!("sqlite://{}", dir.join("db.sqlite3").display());
    let public_url = format!("http://127.0.0.1:{web_port}");
    let server = Killed(
        Command::new(env!("CARGO_BIN_EXE_certwatch-server"))
            .args([
                "--listen",
                &listen,
                "--database",
                &database,
                "--via",
                "direct",
                "--resolver",
                env.str("dns.unbound").unwrap(),
                "--trust-anchor",
                env.str("dns.trust_anchor").unwrap(),
                "--setup-lines-min-vantages",
                "1",
                "--public-url",
                &public_url,
            ])
            .args(extra)
            .env("CERTWATCH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("certwatch-server starts"),
    );
    wait_for(
        Duration::from_secs(60),
        "certwatch-server to answer",
        || http(web_port, "GET", "/healthz", None).ok(),
    );
    (web_port, server)
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo, by the openssl pipeline the page shows.
fn openssl_spki_sha256(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$1\" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256",
        )
        .arg("sh")
        .arg(cert)
        .output()
        .expect("openssl runs (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl failed for {}",
        cert.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .rsplit("= ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    assert_eq!(hex.len(), 64, "openssl printed {text:?}");
    hex
}

#[test]
fn browser_reads_setup_lines_that_match_openssl() {
    let env = Interop::require();
    let domain = env
        .str("dns.scenarios.nodata.domain")
        .expect("the nodata scenario")
        .to_owned();
    assert_eq!(
        env.str("dns.scenarios.nodata.expect").unwrap(),
        "no-records"
    );
    let target = env
        .str("dns.scenarios.nodata.targets.0")
        .unwrap()
        .to_owned();
    // nodata's target is served by the environment's Prosody; its keys are the expected pins.
    let keys: Vec<String> = env
        .get("xmpp.prosody.keys")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = keys
        .iter()
        .map(|k| openssl_spki_sha256(&env.path(&format!("pki.keys.{k}.cert")).unwrap()))
        .collect();
    assert_eq!(expected.len(), keys.len());

    let dir = tempfile::tempdir().unwrap();
    let (web_port, server) = start_server(&env, dir.path(), &["--allow-private-targets"]);
    let driver_port = free_port();
    let _chromedriver = Killed(
        Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (Debian package chromium-driver)"),
    );
    wait_for(Duration::from_secs(30), "chromedriver to be ready", || {
        http(driver_port, "GET", "/status", None)
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .filter(|v| v["value"]["ready"] == true)
    });
    let profile = dir.path().join("chromium-profile");
    let (status, body) = http(
        driver_port,
        "POST",
        "/session",
        Some(&json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=412,915",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}})),
    )
    .expect("a WebDriver session");
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "new session: {session}");
    let driver = Driver {
        port: driver_port,
        session: session["value"]["sessionId"].as_str().unwrap().to_owned(),
    };

    // The home page: type the domain into the labelled field and submit.
    let base = format!("http://127.0.0.1:{web_port}");
    driver.call("POST", "/url", Some(json!({ "url": format!("{base}/") })));
    let field = driver.find("input#domain");
    driver.call(
        "POST",
        &format!("/element/{field}/value"),
        Some(json!({ "text": domain })),
    );
    let submit = driver.find("form[action='/checks'] button[type=submit]");
    driver.call("POST", &format!("/element/{submit}/click"), Some(json!({})));

    // The pending page reloads itself until the result page appears.
    let result_url = format!("{base}/domains/{domain}");
    wait_for(Duration::from_secs(180), "the result page", || {
        (driver.url() == result_url
            && driver.find_all("#state").len() == 1
            && driver.find_all("p[role=status]").is_empty())
        .then_some(())
    });
    let state = driver.text(&driver.find("#state"));
    assert_eq!(state, "Signed, but no TLSA records");

    // Read the setup lines as the browser renders them.
    let blocks: Vec<String> = driver
        .find_all("figure.copy pre")
        .iter()
        .map(|e| driver.text(e))
        .collect();
    let all = blocks.join("\n");
    let lines: Vec<&str> = all
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" IN TLSA 3 1 1 "))
        .collect();
    assert!(!lines.is_empty(), "no TLSA lines on the page: {all}");
    let mut seen = BTreeSet::new();
    let mut owners = BTreeSet::new();
    for line in &lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 8, "{line}");
        assert_eq!(
            &fields[1..7],
            ["3600", "IN", "TLSA", "3", "1", "1"],
            "{line}"
        );
        assert!(
            fields[0].ends_with(&format!("._tcp.{target}.")),
            "owner of {line}"
        );
        owners.insert(fields[0].to_owned());
        seen.insert(fields[7].to_ascii_lowercase());
    }
    assert_eq!(
        seen, expected,
        "the page's pins are the keys openssl computes"
    );
    assert!(
        owners.contains(&format!("_5222._tcp.{target}.")),
        "{owners:?}"
    );
    // Every owner name pins every key of the host (additive lines, one per key).
    for owner in &owners {
        let for_owner: BTreeSet<String> = lines
            .iter()
            .filter(|l| l.starts_with(owner.as_str()))
            .map(|l| l.rsplit(' ').next().unwrap().to_ascii_lowercase())
            .collect();
        assert_eq!(for_owner, expected, "{owner}");
    }
    // The warning and the local commands are on the same page.
    let page = driver.text(&driver.find("main"));
    assert!(
        page.contains("pin whatever those connections presented"),
        "{page}"
    );
    assert!(page.contains("1 distinct vantage point (direct)"), "{page}");
    assert!(page.contains(&format!(
        "certwatch records --key /path/to/privkey.pem --host {target} --port 5222"
    )));
    assert!(page.contains(
        "openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256"
    ));
    if let Some(path) = std::env::var_os("CERTWATCH_BROWSER_SCREENSHOT") {
        use base64::Engine as _;
        let png = driver.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    drop(driver);
    drop(server);
}

/// Without `--allow-private-targets`, the service refuses to probe the environment's
/// loopback servers, and its API and result page say so.
#[test]
fn private_targets_are_refused_and_the_site_says_so() {
    let env = Interop::require();
    let domain = env
        .str("dns.scenarios.nodata.domain")
        .expect("the nodata scenario")
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = start_server(&env, dir.path(), &[]);
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/checks",
        Some(&json!({ "domain": domain })),
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");
    let poll = serde_json::from_str::<Value>(&body).unwrap()["poll"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = wait_for(Duration::from_secs(120), "the check to finish", || {
        let (_, body) = http(port, "GET", &poll, None).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["state"] == "done").then_some(v)
    });
    let notes = done["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap_or("")
            .starts_with("refused (private address)")),
        "{done}"
    );
    assert!(
        done["report"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["presented_spki_sha256"].is_null()),
        "nothing was probed: {done}"
    );
    let (status, page) = http(port, "GET", &format!("/domains/{domain}"), None).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Private address refused"), "{page}");
    assert!(page.contains("127.0.0.1"), "{page}");
}
