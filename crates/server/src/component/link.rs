//! The component link: one TCP connection to the XMPP server's component port at a time,
//! reopened with exponential backoff.
//!
//! Every network step is bounded: the connection and the handshake by
//! [`XmppConfig::connect_timeout`], each write by [`XmppConfig::write_timeout`], reads by the
//! framer's byte bounds (a stanza at most 64 KiB, a tag 8 KiB, depth 16). A ping
//! (XEP-0199) goes to [`XmppConfig::ping_to`] every [`XmppConfig::keepalive`]; three of them
//! without a byte from the server close the link. The state (down, connecting, up, since,
//! reconnects) is reported to [`LinkMonitor`] (`/metrics`, admin view).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use certwatch_component::handler::{Channel, Command, Handler, HandlerConfig};
use certwatch_component::stream::{ComponentStream, Event, Phase};
use certwatch_component::xml::{Element, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::XmppConfig;
use super::adapter::StoreAdapter;
use crate::clock::{Clock, now};
use crate::metrics::Metrics;
use crate::store::Store;

/// The link's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkState {
    /// Not connected (waiting to retry).
    #[default]
    Down,
    /// Connecting or in the handshake.
    Connecting,
    /// Authenticated: stanzas flow.
    Up,
}

impl LinkState {
    /// `down`, `connecting` or `up`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Down => "down",
            LinkState::Connecting => "connecting",
            LinkState::Up => "up",
        }
    }
}

/// A snapshot of the link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Whether XMPP is configured at all.
    pub configured: bool,
    /// The state.
    pub state: LinkState,
    /// Since when (Unix seconds).
    pub since: i64,
    /// Times the link went down after being up, or failed to come up.
    pub reconnects: u64,
    /// Why it last went down.
    pub last_error: Option<String>,
}

/// The link state, shared with the metrics and the admin view.
#[derive(Debug, Default)]
pub struct LinkMonitor {
    inner: Mutex<LinkStatus>,
}

impl LinkMonitor {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkStatus> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a new state at `now`.
    pub fn set(&self, state: LinkState, now: i64, error: Option<String>) {
        let mut s = self.lock();
        s.configured = true;
        if state == LinkState::Down && s.state != LinkState::Down {
            s.reconnects = s.reconnects.saturating_add(1);
        }
        if s.state != state {
            s.since = now;
        }
        s.state = state;
        if error.is_some() {
            s.last_error = error;
        }
    }

    /// The current status.
    pub fn status(&self) -> LinkStatus {
        self.lock().clone()
    }

    /// One line for the admin view.
    pub fn summary(&self) -> String {
        let s = self.status();
        if !s.configured {
            return "not configured".into();
        }
        let mut line = format!(
            "{} since {} ({} reconnects)",
            s.state.as_str(),
            certwatch_component::notice::rfc3339(s.since),
            s.reconnects
        );
        if s.state != LinkState::Up
            && let Some(e) = &s.last_error
        {
            line.push_str("; last error: ");
            line.push_str(e);
        }
        line
    }

    /// Appends the Prometheus lines (nothing when XMPP is not configured).
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        let s = self.status();
        if !s.configured {
            return;
        }
        out.push_str("# HELP certwatch_xmpp_link_state The XMPP component link's state (1 for the current one).\n# TYPE certwatch_xmpp_link_state gauge\n");
        for st in [LinkState::Down, LinkState::Connecting, LinkState::Up] {
            let _ = writeln!(
                out,
                "certwatch_xmpp_link_state{{state=\"{}\"}} {}",
                st.as_str(),
                u8::from(st == s.state)
            );
        }
        let _ = writeln!(
            out,
            "# HELP certwatch_xmpp_link_since_timestamp_seconds When the XMPP link entered its state.\n# TYPE certwatch_xmpp_link_since_timestamp_seconds gauge\ncertwatch_xmpp_link_since_timestamp_seconds {}",
            s.since
        );
        let _ = writeln!(
            out,
            "# HELP certwatch_xmpp_link_reconnects_total Times the XMPP link went down.\n# TYPE certwatch_xmpp_link_reconnects_total counter\ncertwatch_xmpp_link_reconnects_total {}",
            s.reconnects
        );
    }
}

struct Outgoing {
    stanza: Element,
    done: oneshot::Sender<bool>,
}

/// The sending side of the link (cheap to clone).
#[derive(Debug, Clone)]
pub struct Link {
    tx: mpsc::Sender<OutgoingBox>,
    metrics: Arc<Metrics>,
    write_timeout: Duration,
}

/// Wrapper so that `Link` can derive `Debug`.
struct OutgoingBox(Outgoing);

impl std::fmt::Debug for OutgoingBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outgoing")
    }
}

impl Link {
    /// Whether the link is up now.
    pub fn is_up(&self) -> bool {
        self.metrics.xmpp_link.status().state == LinkState::Up
    }

    /// Sends `stanza`: `true` once it was written to the server over an up link, `false`
    /// if the link is down or the write failed (then nothing may have been sent, or part of
    /// it; the link is reopened).
    pub async fn send(&self, stanza: Element) -> bool {
        if !self.is_up() {
            return false;
        }
        let (done, answer) = oneshot::channel();
        if self
            .tx
            .send(OutgoingBox(Outgoing { stanza, done }))
            .await
            .is_err()
        {
            return false;
        }
        // The link task answers after its write (bounded by write_timeout) or drops `done`.
        tokio::time::timeout(self.write_timeout * 3, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false)
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connect to {0}: {1}")]
    Connect(String, String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("I/O: {0}")]
    Io(String),
    #[error(transparent)]
    Stream(#[from] certwatch_component::stream::StreamError),
    #[error("the server closed the connection")]
    Eof,
}

/// Starts the link task; it runs until `stop` turns `true`.
pub fn spawn(
    config: Arc<XmppConfig>,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) -> (Link, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(16);
    metrics
        .xmpp_link
        .set(LinkState::Down, now(clock.as_ref()), None);
    let link = Link {
        tx,
        metrics: metrics.clone(),
        write_timeout: config.write_timeout,
    };
    let task = tokio::spawn(run(config, store, metrics, clock, rx, stop));
    (link, task)
}

async fn run(
    config: Arc<XmppConfig>,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<OutgoingBox>,
    mut stop: watch::Receiver<bool>,
) {
    let mut handler = Handler::new(HandlerConfig::new(
        &config.component_jid,
        &config.public_url,
    ));
    let started = Instant::now();
    let mut backoff = config.backoff_min;
    loop {
        if *stop.borrow() {
            break;
        }
        metrics
            .xmpp_link
            .set(LinkState::Connecting, now(clock.as_ref()), None);
        let mut was_up = false;
        let result = session(
            &config,
            &store,
            &metrics,
            clock.as_ref(),
            &mut handler,
            started,
            &mut rx,
            &mut stop,
            &mut was_up,
        )
        .await;
        let error = match result {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = &error {
            tracing::warn!(error = %e, "XMPP component link down");
        }
        metrics
            .xmpp_link
            .set(LinkState::Down, now(clock.as_ref()), error);
        if *stop.borrow() {
            break;
        }
        if was_up {
            backoff = config.backoff_min;
        }
        // Refuse senders while down (they see is_up() == false, but one may be queued).
        while let Ok(OutgoingBox(o)) = rx.try_recv() {
            let _ = o.done.send(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        backoff = (backoff * 2).min(config.backoff_max.max(config.backoff_min));
    }
    metrics
        .xmpp_link
        .set(LinkState::Down, now(clock.as_ref()), None);
}

async fn write(
    wr: &mut OwnedWriteHalf,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), SessionError> {
    if bytes.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(timeout, async {
        wr.write_all(bytes).await?;
        wr.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SessionError::Io(e.to_string())),
        Err(_) => Err(SessionError::Timeout("write")),
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    config: &XmppConfig,
    store: &Store,
    metrics: &Metrics,
    clock: &dyn Clock,
    handler: &mut Handler,
    started: Instant,
    rx: &mut mpsc::Receiver<OutgoingBox>,
    stop: &mut watch::Receiver<bool>,
    was_up: &mut bool,
) -> Result<(), SessionError> {
    let addr = format!("{}:{}", config.server_host, config.server_port);
    let tcp = tokio::time::timeout(
        config.connect_timeout,
        tokio::net::TcpStream::connect((config.server_host.as_str(), config.server_port)),
    )
    .await
    .map_err(|_| SessionError::Timeout("connect"))?
    .map_err(|e| SessionError::Connect(addr.clone(), e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let (mut rd, mut wr) = tcp.into_split();
    let mut cs = ComponentStream::new(&config.component_jid, &config.secret, Limits::default());
    write(&mut wr, &cs.take_output(), config.write_timeout).await?;
    let mut buf = vec![0u8; 16 * 1024];
    // The handshake, bounded by connect_timeout.
    let deadline = Instant::now() + config.connect_timeout;
    while cs.phase() != Phase::Up {
        let n = match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Err(_) => return Err(SessionError::Timeout("handshake")),
            Ok(Err(e)) => return Err(SessionError::Io(e.to_string())),
            Ok(Ok(0)) => return Err(SessionError::Eof),
            Ok(Ok(n)) => n,
        };
        let received = cs.receive(&buf[..n]);
        let out = cs.take_output();
        let _ = write(&mut wr, &out, config.write_timeout).await;
        received?;
    }
    *was_up = true;
    metrics.xmpp_link.set(LinkState::Up, now(clock), None);
    tracing::info!(jid = %config.component_jid, server = %addr, "XMPP component link up");
    let adapter = StoreAdapter::new(
        store.clone(),
        config.component_jid.clone(),
        &config.public_url,
    );
    let mut last_rx = Instant::now();
    let mut ticker = tokio::time::interval_at(Instant::now() + config.keepalive, config.keepalive);
    let mut ping_no: u64 = 0;
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                cs.close();
                let _ = write(&mut wr, &cs.take_output(), config.write_timeout).await;
                return Ok(());
            }
            read = rd.read(&mut buf) => {
                let n = match read {
                    Err(e) => return Err(SessionError::Io(e.to_string())),
                    Ok(0) => return Err(SessionError::Eof),
                    Ok(n) => n,
                };
                last_rx = Instant::now();
                let (events, end) = cs.receive_all(&buf[..n]);
                for ev in events {
                    let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let out = match ev {
                        Event::Stanza(s) => {
                            adapter.set_now(now(clock));
                            handler.handle(&s, now_ms, &adapter).await
                        }
                        Event::Rejected(top, why) => handler.rejected(&top, why, now_ms),
                        Event::Authenticated => continue,
                    };
                    let mut ok = true;
                    for c in &out.commands {
                        if let Err(e) = apply(store, c, now(clock)).await {
                            tracing::warn!(error = %e, "XMPP store command failed");
                            ok = false;
                            break;
                        }
                    }
                    let replies = if ok { &out.stanzas } else { &out.on_failure };
                    for r in replies {
                        cs.send(r);
                    }
                }
                // After a stream error the output holds our replies, then our stream error.
                let written = write(&mut wr, &cs.take_output(), config.write_timeout).await;
                if let Some(e) = end {
                    return Err(e.into());
                }
                written?;
            }
            Some(OutgoingBox(o)) = rx.recv() => {
                let queued = cs.send(&o.stanza);
                let written = queued && write(&mut wr, &cs.take_output(), config.write_timeout).await.is_ok();
                let _ = o.done.send(written);
                if !written {
                    return Err(SessionError::Io("a write to the server failed".into()));
                }
            }
            _ = ticker.tick() => {
                if last_rx.elapsed() > config.keepalive * 3 {
                    return Err(SessionError::Timeout("no data from the server for three keepalive periods"));
                }
                ping_no += 1;
                let ping = Element::new("iq", certwatch_component::ns::COMPONENT)
                    .with_attr("type", "get")
                    .with_attr("id", format!("cw-ping-{ping_no}"))
                    .with_attr("from", config.component_jid.clone())
                    .with_attr("to", config.ping_to.clone())
                    .with_child(Element::new("ping", certwatch_component::ns::PING));
                cs.send(&ping);
                write(&mut wr, &cs.take_output(), config.write_timeout).await?;
            }
        }
    }
}

async fn apply(store: &Store, c: &Command, now: i64) -> Result<(), crate::store::StoreError> {
    match c {
        Command::Subscribe { node, channel, jid } => {
            store
                .add_subscription(node, channel_str(*channel), jid, now)
                .await?;
        }
        Command::Unsubscribe { node, channel, jid } => {
            store
                .remove_subscription(node, channel_str(*channel), jid)
                .await?;
        }
    }
    Ok(())
}

fn channel_str(c: Channel) -> &'static str {
    c.as_str()
}
