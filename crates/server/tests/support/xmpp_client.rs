//! A minimal XMPP client session for the interop tests (issue 10): STARTTLS with the
//! environment's CA through rustls, SASL PLAIN (or ANONYMOUS), resource binding, initial
//! presence; and the `component` part of the environment description.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use certwatch_component::xml::{Element, Framer, Item, Limits};
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client namespace.
pub const NS_CLIENT: &str = "jabber:client";

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Account {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Env {
    pub address: String,
    pub c2s: u16,
    pub component_port: u16,
    pub component_jid: String,
    pub secret: String,
    pub users_host: String,
    pub accounts: Vec<Account>,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub prosody_instance: PathBuf,
}

pub fn env() -> Env {
    let path = std::env::var("CERTWATCH_INTEROP")
        .expect("CERTWATCH_INTEROP names the interop environment (scripts/interop-env up)");
    let text = std::fs::read_to_string(&path).expect("the environment description");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(v["component"].clone())
        .expect("the component part is up: scripts/interop-env up component")
}

pub trait Rw: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Rw for T {}

/// A minimal XMPP client session: STARTTLS, SASL PLAIN, bind, initial presence.
pub struct Client {
    io: Box<dyn Rw>,
    framer: Framer,
    /// The bound full JID.
    pub jid: String,
    pub bare: String,
}

impl Client {
    pub async fn login(env: &Env, port: u16, user: &str, password: &str) -> Client {
        Client::login_to(env, &env.users_host, port, user, password).await
    }

    /// Logs in to `host` (an empty `password`: SASL ANONYMOUS).
    pub async fn login_to(env: &Env, host: &str, port: u16, user: &str, password: &str) -> Client {
        let env = &Env {
            users_host: host.to_owned(),
            ..env.clone()
        };
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect((env.address.as_str(), port)),
        )
        .await
        .expect("connect in time")
        .expect("connect");
        let mut c = Client {
            io: Box::new(tcp),
            framer: Framer::new(Limits::default()),
            jid: String::new(),
            bare: format!("{user}@{}", env.users_host),
        };
        let features = c.open(&env.users_host).await;
        assert!(
            features
                .child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
                .is_some(),
            "{features:?}"
        );
        c.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await;
        let proceed = c.stanza().await.expect("proceed");
        assert_eq!(proceed.name, "proceed");
        // TLS with the environment's CA; the name is the user host.
        let ca = std::fs::read(&env.ca).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(&ca).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(env.users_host.clone()).unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = tls
            .connect(name, c.io)
            .await
            .expect("TLS with the env's CA");
        let mut c = Client {
            io: Box::new(stream),
            framer: Framer::new(Limits::default()),
            jid: String::new(),
            bare: format!("{user}@{}", env.users_host),
        };
        let features = c.open(&env.users_host).await;
        let mechs = features
            .child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
            .expect("SASL mechanisms");
        // An empty password: SASL ANONYMOUS (ejabberd's anonymous host); else PLAIN.
        let mech = if password.is_empty() {
            "ANONYMOUS"
        } else {
            "PLAIN"
        };
        assert!(mechs.children.iter().any(|m| m.text == mech), "{mechs:?}");
        if password.is_empty() {
            c.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
                .await;
        } else {
            let creds =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            c.write(&format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
            ))
            .await;
        }
        let ok = c.stanza().await.expect("SASL answer");
        assert_eq!(ok.name, "success", "{ok:?}");
        c.framer = Framer::new(Limits::default());
        let features = c.open(&env.users_host).await;
        assert!(
            features
                .child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
                .is_some()
        );
        c.write("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>test</resource></bind></iq>")
            .await;
        let bound = c.stanza().await.expect("bind result");
        c.jid = bound
            .child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.child("jid", "urn:ietf:params:xml:ns:xmpp-bind"))
            .map(|j| j.text.clone())
            .expect("a bound JID");
        if password.is_empty() {
            // The server named the anonymous user.
            c.bare = c.jid.split('/').next().unwrap_or_default().to_owned();
        }
        c.write("<presence/>").await;
        c
    }

    /// Opens a stream and returns its features.
    pub async fn open(&mut self, host: &str) -> Element {
        self.write(&format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{host}' version='1.0'>"))
            .await;
        loop {
            match self.item(Duration::from_secs(10)).await {
                Some(Item::StreamOpen(_)) => {}
                Some(Item::Stanza(f)) if f.name == "features" => return f,
                other => panic!("expected stream features, got {other:?}"),
            }
        }
    }

    pub async fn write(&mut self, s: &str) {
        self.io.write_all(s.as_bytes()).await.unwrap();
        self.io.flush().await.unwrap();
    }

    pub async fn item(&mut self, wait: Duration) -> Option<Item> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(i) = self.framer.next_item().expect("Prosody sends good XML") {
                return Some(i);
            }
            let n = tokio::time::timeout_at(deadline, self.io.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.framer.push(&buf[..n]);
        }
    }

    pub async fn stanza(&mut self) -> Option<Element> {
        self.stanza_within(Duration::from_secs(10)).await
    }

    pub async fn stanza_within(&mut self, wait: Duration) -> Option<Element> {
        loop {
            match self.item(wait).await? {
                Item::Stanza(e) => return Some(e),
                Item::StreamClose => return None,
                _ => {}
            }
        }
    }

    /// The next stanza from `from` that satisfies `pred`, within 10 s.
    pub async fn wait_for(&mut self, pred: impl Fn(&Element) -> bool) -> Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self
                .stanza_within(left)
                .await
                .expect("the awaited stanza arrives");
            if pred(&e) {
                return e;
            }
        }
    }

    /// Every stanza that arrives within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Element> {
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

pub fn body(e: &Element) -> String {
    e.child("body", NS_CLIENT)
        .map(|b| b.text.clone())
        .unwrap_or_default()
}

pub fn password(env: &Env, user: &str) -> String {
    env.accounts
        .iter()
        .find(|a| a.user == user)
        .map(|a| a.password.clone())
        .expect("the account exists")
}
