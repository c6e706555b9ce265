//! XMPP notifications (issue 10, `docs/xmpp.md`): the service as an external component
//! (XEP-0114) of an ordinary XMPP server, with a PubSub node per domain and a chat bot.
//!
//! The protocol is in the `certwatch-component` crate (sans-I/O: framer, stream state
//! machine, stanza handler). This module is the I/O edge:
//! - [`XmppConfig`]: the `[xmpp]` configuration keys;
//! - [`link`]: the tokio task that keeps the component link up (connect, handshake,
//!   keepalive pings, reconnect with exponential backoff), runs the handler on every stanza,
//!   applies its store commands, and reports the link state to [`crate::metrics::Metrics`];
//! - [`adapter`]: the store behind the handler's `ComponentStore` trait;
//! - [`outbox`]: [`outbox::run_xmpp_once`], which sends the `xmpp-pubsub` and `xmpp-chat`
//!   deliveries of the outbox over an up link;
//! - [`spawn`]: starts the link and the outbox loop.

pub mod adapter;
pub mod link;
pub mod outbox;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{RetryPolicy, Store};

pub use link::{Link, LinkMonitor, LinkState, LinkStatus};

/// The `[xmpp]` table of the configuration file (every key optional; environment variables
/// `CERTWATCH_XMPP_<KEY>` override it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppFile {
    /// The component's JID (a domain the XMPP server routes to the component).
    pub component_jid: Option<String>,
    /// The XMPP server's host name or address for the component connection.
    pub server_host: Option<String>,
    /// The XMPP server's component port (default 5347).
    pub server_port: Option<u16>,
    /// The shared secret (prefer `secret_file` or the environment).
    pub secret: Option<String>,
    /// A file holding the shared secret.
    pub secret_file: Option<PathBuf>,
    /// The site's public URL in links (default: the service's `public_url`).
    pub public_url: Option<String>,
    /// Where keepalive pings go (default: the component JID's parent domain).
    pub ping_to: Option<String>,
}

impl XmppFile {
    /// The `CERTWATCH_XMPP_*` variables of `env` as a layer; `Ok(None)` if none is set.
    pub fn from_env(
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Option<XmppFile>, String> {
        let get = |k: &str| {
            env.get(&format!("CERTWATCH_XMPP_{k}"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let server_port = match get("SERVER_PORT") {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("CERTWATCH_XMPP_SERVER_PORT: {p:?} is not a port"))?,
            ),
        };
        let layer = XmppFile {
            component_jid: get("COMPONENT_JID"),
            server_host: get("SERVER_HOST"),
            server_port,
            secret: get("SECRET"),
            secret_file: get("SECRET_FILE").map(PathBuf::from),
            public_url: get("PUBLIC_URL"),
            ping_to: get("PING_TO"),
        };
        Ok((layer != XmppFile::default()).then_some(layer))
    }
}

/// The resolved XMPP settings; `None` in [`crate::config::Config`] when XMPP is off.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct XmppConfig {
    /// The component's JID.
    pub component_jid: String,
    /// The XMPP server's host.
    pub server_host: String,
    /// The XMPP server's component port.
    pub server_port: u16,
    /// The shared secret. Never printed by `Debug`.
    pub secret: String,
    /// The site's public URL (links), without a trailing slash.
    pub public_url: String,
    /// Where keepalive pings go.
    pub ping_to: String,
    /// Time for the TCP connection and for the handshake, each.
    pub connect_timeout: Duration,
    /// A ping every `keepalive`; no bytes from the server for three of them: reconnect.
    pub keepalive: Duration,
    /// Time for one write.
    pub write_timeout: Duration,
    /// The first reconnect delay (doubled after each failed attempt).
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
    /// Pause between outbox passes.
    pub outbox_interval: Duration,
}

impl std::fmt::Debug for XmppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppConfig")
            .field("component_jid", &self.component_jid)
            .field("server_host", &self.server_host)
            .field("server_port", &self.server_port)
            .field("secret", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("ping_to", &self.ping_to)
            .finish_non_exhaustive()
    }
}

impl XmppConfig {
    /// Settings with the default timeouts.
    pub fn new(
        component_jid: &str,
        server_host: &str,
        server_port: u16,
        secret: &str,
        public_url: &str,
    ) -> XmppConfig {
        let jid = component_jid
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ping_to = jid
            .split_once('.')
            .map_or_else(|| jid.clone(), |(_, parent)| parent.to_owned());
        XmppConfig {
            component_jid: jid,
            server_host: server_host.to_owned(),
            server_port,
            secret: secret.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            ping_to,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            outbox_interval: Duration::from_secs(5),
        }
    }

    /// Merges `layers` (later ones override earlier ones key by key) into settings;
    /// `Ok(None)` when no layer sets a component JID (XMPP off). `public_url` is the
    /// service's, used when the layers set none.
    pub fn resolve(layers: &[&XmppFile], public_url: &str) -> Result<Option<XmppConfig>, String> {
        let pick =
            |get: &dyn Fn(&XmppFile) -> Option<String>| layers.iter().rev().find_map(|l| get(l));
        let Some(jid) = pick(&|l| l.component_jid.clone()) else {
            if layers.iter().any(|l| **l != XmppFile::default()) {
                return Err("component_jid is required when any xmpp key is set".into());
            }
            return Ok(None);
        };
        let valid = certwatch_component::jid::Jid::parse(&jid)
            .ok()
            .filter(|j| j.local.is_none() && j.resource.is_none());
        if valid.is_none() {
            return Err(format!("component_jid {jid:?} must be a bare domain"));
        }
        let host = pick(&|l| l.server_host.clone()).unwrap_or_else(|| "localhost".into());
        let port = layers
            .iter()
            .rev()
            .find_map(|l| l.server_port)
            .unwrap_or(5347);
        let secret = match pick(&|l| l.secret.clone()) {
            Some(s) => s,
            None => match layers.iter().rev().find_map(|l| l.secret_file.clone()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| format!("secret_file {}: cannot read: {e}", path.display()))?
                    .trim()
                    .to_owned(),
                None => return Err("secret or secret_file is required".into()),
            },
        };
        if secret.is_empty() {
            return Err("the component secret is empty".into());
        }
        let url = pick(&|l| l.public_url.clone()).unwrap_or_else(|| public_url.to_owned());
        let mut config = XmppConfig::new(&jid, &host, port, &secret, &url);
        if let Some(p) = pick(&|l| l.ping_to.clone()) {
            config.ping_to = p;
        }
        Ok(Some(config))
    }
}

/// The running XMPP side: the link (for senders) and its tasks.
#[derive(Debug)]
pub struct Running {
    /// Sends stanzas over the link.
    pub link: Link,
    /// The link task.
    pub link_task: tokio::task::JoinHandle<()>,
    /// The outbox loop.
    pub outbox_task: tokio::task::JoinHandle<()>,
}

/// Starts the component link and the XMPP outbox loop; both end when `stop` turns `true`.
pub fn spawn(
    config: XmppConfig,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    instance: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Running {
    let config = Arc::new(config);
    let (link, link_task) = link::spawn(
        config.clone(),
        store.clone(),
        metrics,
        clock.clone(),
        stop.clone(),
    );
    let outbox_task = tokio::spawn(outbox::run(
        store,
        link.clone(),
        clock,
        config,
        instance,
        RetryPolicy::default(),
        stop,
    ));
    Running {
        link,
        link_task,
        outbox_task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_merge_and_the_secret_is_required() {
        let file = XmppFile {
            component_jid: Some("CW.Example.org".into()),
            server_port: Some(5348),
            secret: Some("s1".into()),
            ..XmppFile::default()
        };
        let env = std::collections::HashMap::from([
            ("CERTWATCH_XMPP_SECRET".to_owned(), "s2".to_owned()),
            (
                "CERTWATCH_XMPP_SERVER_HOST".to_owned(),
                "xmpp.example.org".to_owned(),
            ),
        ]);
        let env = XmppFile::from_env(&env).unwrap().unwrap();
        let c = XmppConfig::resolve(&[&file, &env], "https://cw.example/")
            .unwrap()
            .unwrap();
        assert_eq!(c.component_jid, "cw.example.org");
        assert_eq!(c.server_host, "xmpp.example.org");
        assert_eq!(c.server_port, 5348);
        assert_eq!(c.secret, "s2");
        assert_eq!(c.public_url, "https://cw.example");
        assert_eq!(c.ping_to, "example.org");
        assert!(!format!("{c:?}").contains("s2"));
        assert_eq!(XmppConfig::resolve(&[], "x").unwrap(), None);
        let no_secret = XmppFile {
            component_jid: Some("cw.example".into()),
            ..XmppFile::default()
        };
        assert!(XmppConfig::resolve(&[&no_secret], "x").is_err());
        let no_jid = XmppFile {
            secret: Some("s".into()),
            ..XmppFile::default()
        };
        assert!(XmppConfig::resolve(&[&no_jid], "x").is_err());
        let bad_jid = XmppFile {
            component_jid: Some("a@b".into()),
            secret: Some("s".into()),
            ..XmppFile::default()
        };
        assert!(XmppConfig::resolve(&[&bad_jid], "x").is_err());
    }
}
