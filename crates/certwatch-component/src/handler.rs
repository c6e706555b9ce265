//! The pure stanza handler: one stanza in, stanzas to send and store commands out.
//!
//! The handler reads the store through [`ComponentStore`] (queries only) and never writes it:
//! a subscription change comes back as a [`Command`] that the caller applies before it sends
//! [`Output::stanzas`] (or [`Output::on_failure`] when a command failed). It holds only the
//! per-JID rate limiter, whose time is passed in.
//!
//! What it answers (see `docs/xmpp.md`):
//! - disco#info / disco#items on the component JID; disco#items lists the nodes (one per
//!   domain, named by its A-label) paged with RSM (XEP-0059: `max`, `after`, `before`,
//!   `index`, `count`), paged by the store (never all nodes at once);
//! - PubSub (XEP-0060): subscribe, unsubscribe, subscriptions, items (the last item);
//! - messages: the chat bot (`subscribe D`, `unsubscribe D`, `status D`, `list`, `help`);
//! - presence: `subscribe` gets `subscribed` and our presence, `probe` gets our presence;
//! - anything else gets the RFC 6120 §8.3 error, and nothing ever answers an error.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;

use crate::jid::Jid;
use crate::notice::rfc3339;
use crate::ns;
use crate::xml::{Element, Rejection};

/// The two XMPP channels of the `subscriptions` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// A PubSub subscription to the domain's node.
    PubSub,
    /// A chat-bot subscription.
    Chat,
}

impl Channel {
    /// `xmpp-pubsub` or `xmpp-chat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::PubSub => "xmpp-pubsub",
            Channel::Chat => "xmpp-chat",
        }
    }

    /// The channel of `s`.
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "xmpp-pubsub" => Some(Channel::PubSub),
            "xmpp-chat" => Some(Channel::Chat),
            _ => None,
        }
    }
}

/// A store change the caller must apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Add a confirmed subscription of bare `jid` to `node`.
    Subscribe {
        /// The domain.
        node: String,
        /// The channel.
        channel: Channel,
        /// The subscriber's bare JID.
        jid: String,
    },
    /// Delete the subscription (and its pending deliveries).
    Unsubscribe {
        /// The domain.
        node: String,
        /// The channel.
        channel: Channel,
        /// The subscriber's bare JID.
        jid: String,
    },
}

/// Which page of nodes disco#items asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageQuery {
    /// The first `max` nodes, or those from position `index` (0-based).
    From {
        /// Position of the first node.
        index: u64,
        /// Page size.
        max: u32,
    },
    /// The `max` nodes after `after` (in name order).
    After {
        /// The last node of the previous page.
        after: String,
        /// Page size.
        max: u32,
    },
    /// The `max` nodes before `before`; `None`: the last page.
    Before {
        /// The first node of the next page.
        before: Option<String>,
        /// Page size.
        max: u32,
    },
}

/// One page of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePage {
    /// Node names in ascending order.
    pub nodes: Vec<String>,
    /// The position of the first one (0-based).
    pub first_index: u64,
    /// How many nodes there are.
    pub count: u64,
}

/// A domain's last check, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The last verdict (`match`, `mismatch`, ...), if checked.
    pub verdict: Option<String>,
    /// When it was checked (Unix seconds).
    pub checked_at: Option<i64>,
    /// Whether the domain is watched.
    pub watched: bool,
}

/// The node's last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastItem {
    /// The item id.
    pub id: String,
    /// Its payload (an Atom entry).
    pub payload: Element,
}

/// The queries the handler needs. Implemented on the real store by `certwatch-server` and
/// by an in-memory fake in tests.
pub trait ComponentStore {
    /// The store's error.
    type Error: Display;

    /// The node name of `raw` (the domain in A-label form), `None` if it is no domain name.
    fn normalise_node(&self, raw: &str) -> Option<String>;

    /// Whether the store knows domain `node`.
    fn node_exists(&self, node: &str) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// One page of nodes; `None` when the node named by `after`/`before` does not exist.
    fn page_nodes(
        &self,
        query: &PageQuery,
    ) -> impl Future<Output = Result<Option<NodePage>, Self::Error>> + Send;

    /// The XMPP subscriptions of bare `jid`: (channel, node), at most `limit`.
    fn subscriptions_of(
        &self,
        jid: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(Channel, String)>, Self::Error>> + Send;

    /// The last check of `node`, `None` for an unknown domain.
    fn status(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<Option<NodeStatus>, Self::Error>> + Send;

    /// The node's last item.
    fn last_item(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<Option<LastItem>, Self::Error>> + Send;
}

/// What to do after a stanza.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Store changes, applied first, in order.
    pub commands: Vec<Command>,
    /// Stanzas to send when every command succeeded (or there were none).
    pub stanzas: Vec<Element>,
    /// Stanzas to send instead when a command failed.
    pub on_failure: Vec<Element>,
}

impl Output {
    fn send(stanzas: Vec<Element>) -> Output {
        Output {
            stanzas,
            ..Output::default()
        }
    }
}

/// The handler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerConfig {
    /// The component's JID (a domain).
    pub jid: String,
    /// The site's public URL (links).
    pub public_url: String,
    /// Nodes per disco#items page by default and at most (default 50).
    pub page_max: u32,
    /// Characters of a chat message body (default 1000); longer gets `policy-violation`.
    pub max_body_chars: usize,
    /// Stanzas one bare JID may send per window (default 20).
    pub rate_burst: u32,
    /// The rate window in milliseconds (default 60 000).
    pub rate_window_ms: u64,
    /// JIDs tracked by the rate limiter at once (default 10 000); beyond, new JIDs get
    /// `resource-constraint`.
    pub rate_tracked: usize,
}

impl HandlerConfig {
    /// Defaults for component `jid` and site `public_url`.
    pub fn new(jid: &str, public_url: &str) -> HandlerConfig {
        HandlerConfig {
            jid: jid.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            page_max: 50,
            max_body_chars: 1000,
            rate_burst: 20,
            rate_window_ms: 60_000,
            rate_tracked: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: u64,
    count: u32,
    told: bool,
}

/// The stanza handler.
#[derive(Debug)]
pub struct Handler {
    config: HandlerConfig,
    windows: HashMap<String, Window>,
}

enum Limit {
    Ok,
    /// Over the limit: reply once with this condition, then stay silent.
    Reply(&'static str, &'static str),
    Silent,
}

/// The bot's help text.
pub const HELP: &str = "certwatch watches XMPP domains' DANE records over Tor and tells you when a server's key stops matching.\n\
Commands:\n\
  subscribe DOMAIN    alerts for DOMAIN as chat messages\n\
  unsubscribe DOMAIN  stop them (your JID is deleted for DOMAIN)\n\
  status DOMAIN       the last verdict and when\n\
  list                your subscriptions\n\
  help                this text\n\
PubSub: subscribe to node DOMAIN of this service instead to get Atom entries.";

impl Handler {
    /// A handler with `config`.
    pub fn new(config: HandlerConfig) -> Handler {
        Handler {
            config,
            windows: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &HandlerConfig {
        &self.config
    }

    fn limit(&mut self, bare: &str, now_ms: u64) -> Limit {
        let window = self.config.rate_window_ms.max(1);
        if !self.windows.contains_key(bare) && self.windows.len() >= self.config.rate_tracked {
            self.windows
                .retain(|_, w| now_ms.saturating_sub(w.start_ms) < window);
            if self.windows.len() >= self.config.rate_tracked {
                return Limit::Reply("wait", "resource-constraint");
            }
        }
        let w = self.windows.entry(bare.to_owned()).or_insert(Window {
            start_ms: now_ms,
            count: 0,
            told: false,
        });
        if now_ms.saturating_sub(w.start_ms) >= window {
            *w = Window {
                start_ms: now_ms,
                count: 0,
                told: false,
            };
        }
        w.count = w.count.saturating_add(1);
        if w.count <= self.config.rate_burst {
            Limit::Ok
        } else if !w.told {
            w.told = true;
            Limit::Reply("wait", "policy-violation")
        } else {
            Limit::Silent
        }
    }

    /// A stanza the framer skipped (too large, too deep, malformed): the sender gets
    /// `policy-violation` (too large or deep) or `bad-request` (malformed), once per rate
    /// window like everything else.
    pub fn rejected(&mut self, top: &Element, reason: Rejection, now_ms: u64) -> Output {
        let Some(from) = top.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return Output::default();
        };
        match self.limit(&from.bare_string(), now_ms) {
            Limit::Ok => {}
            Limit::Reply(kind, cond) => {
                return Output::send(
                    self.error(top, kind, cond, None, None)
                        .into_iter()
                        .collect(),
                );
            }
            Limit::Silent => return Output::default(),
        }
        let (kind, cond, text) = match reason {
            Rejection::TooLarge => ("modify", "policy-violation", "stanza too large"),
            Rejection::TooDeep => ("modify", "policy-violation", "stanza too deeply nested"),
            Rejection::Malformed => ("modify", "bad-request", "malformed stanza"),
        };
        Output::send(
            self.error(top, kind, cond, None, Some(text))
                .into_iter()
                .collect(),
        )
    }

    /// Handles one stanza at `now_ms` (milliseconds of any monotonic clock).
    pub async fn handle<S: ComponentStore>(
        &mut self,
        stanza: &Element,
        now_ms: u64,
        store: &S,
    ) -> Output {
        if stanza.ns != ns::COMPONENT {
            return Output::default();
        }
        let Some(from) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            // Without a sender there is no one to answer.
            return Output::default();
        };
        if stanza.attr("type") == Some("error") {
            return Output::default();
        }
        match self.limit(&from.bare_string(), now_ms) {
            Limit::Ok => {}
            Limit::Reply(kind, cond) => {
                return Output::send(
                    self.error(stanza, kind, cond, None, Some("too many stanzas"))
                        .into_iter()
                        .collect(),
                );
            }
            Limit::Silent => return Output::default(),
        }
        // Addressed to the service itself (a resource is tolerated), not to user@service.
        let to_us = stanza
            .attr("to")
            .and_then(|t| Jid::parse(t).ok())
            .is_some_and(|t| t.local.is_none() && t.domain == self.config.jid.to_lowercase());
        match stanza.name.as_str() {
            "iq" => {
                if !to_us {
                    return self.reply_error(stanza, "cancel", "service-unavailable");
                }
                self.iq(stanza, &from, store).await
            }
            "message" => {
                if !to_us {
                    return self.reply_error(stanza, "cancel", "service-unavailable");
                }
                self.message(stanza, &from, store).await
            }
            "presence" => {
                if !to_us {
                    return Output::default();
                }
                self.presence(stanza, &from)
            }
            _ => Output::default(),
        }
    }

    fn reply_error(&self, stanza: &Element, kind: &str, cond: &str) -> Output {
        Output::send(
            self.error(stanza, kind, cond, None, None)
                .into_iter()
                .collect(),
        )
    }

    /// The error reply to `stanza` (none to an error, a result, or an iq without id).
    fn error(
        &self,
        stanza: &Element,
        kind: &str,
        condition: &str,
        app: Option<Element>,
        text: Option<&str>,
    ) -> Option<Element> {
        // Never answer an error, nor an iq result (no loops).
        let t = stanza.attr("type");
        if t == Some("error") || (stanza.name == "iq" && t == Some("result")) {
            return None;
        }
        let to = stanza.attr("from")?;
        let mut error = Element::new("error", ns::COMPONENT)
            .with_attr("type", kind)
            .with_child(Element::new(condition, ns::STANZAS));
        if let Some(text) = text {
            error = error.with_child(Element::new("text", ns::STANZAS).with_text(text));
        }
        if let Some(app) = app {
            error = error.with_child(app);
        }
        let mut reply = Element::new(&stanza.name, ns::COMPONENT)
            .with_attr("type", "error")
            .with_attr("from", self.our_address(stanza))
            .with_attr("to", to);
        if let Some(id) = stanza.attr("id") {
            reply.set_attr("id", id);
        }
        Some(reply.with_child(error))
    }

    fn our_address(&self, stanza: &Element) -> String {
        stanza
            .attr("to")
            .map_or_else(|| self.config.jid.clone(), str::to_owned)
    }

    fn result(&self, iq: &Element, payload: Option<Element>) -> Element {
        let mut r = Element::new("iq", ns::COMPONENT)
            .with_attr("type", "result")
            .with_attr("from", self.our_address(iq))
            .with_attr("to", iq.attr("from").unwrap_or_default());
        if let Some(id) = iq.attr("id") {
            r.set_attr("id", id);
        }
        if let Some(p) = payload {
            r = r.with_child(p);
        }
        r
    }

    fn iq_error(&self, iq: &Element, kind: &str, cond: &str, app: Option<Element>) -> Output {
        Output::send(self.error(iq, kind, cond, app, None).into_iter().collect())
    }

    /// A `modify/bad-request` with the PubSub-specific condition `app` (XEP-0060: for
    /// example `nodeid-required`, `jid-required`, `invalid-jid`).
    fn pubsub_bad_request(&self, iq: &Element, app: &str) -> Output {
        self.iq_error(
            iq,
            "modify",
            "bad-request",
            Some(Element::new(app, ns::PUBSUB_ERRORS)),
        )
    }

    /// The `node` and `jid` attributes that a PubSub subscribe or unsubscribe requires, or
    /// the error for the first one missing.
    fn node_and_jid<'a>(
        &self,
        iq: &Element,
        op: &'a Element,
    ) -> Result<(&'a str, &'a str), Output> {
        let node = op
            .attr("node")
            .ok_or_else(|| self.pubsub_bad_request(iq, "nodeid-required"))?;
        let jid = op
            .attr("jid")
            .ok_or_else(|| self.pubsub_bad_request(iq, "jid-required"))?;
        Ok((node, jid))
    }

    async fn iq<S: ComponentStore>(&mut self, iq: &Element, from: &Jid, store: &S) -> Output {
        let kind = iq.attr("type").unwrap_or("");
        if !matches!(kind, "get" | "set") {
            if matches!(kind, "result") {
                return Output::default();
            }
            // An iq without a valid type (RFC 6120 §8.2.3).
            return self.iq_error(iq, "modify", "bad-request", None);
        }
        if iq.attr("id").is_none_or(str::is_empty) {
            return self.iq_error(iq, "modify", "bad-request", None);
        }
        let [payload] = &iq.children[..] else {
            // A get or set carries exactly one payload (RFC 6120 §8.2.3).
            return self.iq_error(iq, "modify", "bad-request", None);
        };
        match (kind, payload.ns.as_str(), payload.name.as_str()) {
            ("get", ns::DISCO_INFO, "query") => self.disco_info(iq, payload, store).await,
            ("get", ns::DISCO_ITEMS, "query") => self.disco_items(iq, payload, store).await,
            ("get", ns::PING, "ping") => Output::send(vec![self.result(iq, None)]),
            (_, ns::PUBSUB, "pubsub") => self.pubsub(iq, kind, payload, from, store).await,
            (_, ns::DISCO_INFO | ns::DISCO_ITEMS | ns::PING, _) => {
                self.iq_error(iq, "cancel", "feature-not-implemented", None)
            }
            _ => self.iq_error(iq, "cancel", "service-unavailable", None),
        }
    }

    async fn disco_info<S: ComponentStore>(
        &self,
        iq: &Element,
        query: &Element,
        store: &S,
    ) -> Output {
        let feature = |v: &str| Element::new("feature", ns::DISCO_INFO).with_attr("var", v);
        let identity = |c: &str, t: &str| {
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", c)
                .with_attr("type", t)
                .with_attr("name", "certwatch")
        };
        let mut q = Element::new("query", ns::DISCO_INFO);
        match query.attr("node") {
            None => {
                q = q
                    .with_child(identity("pubsub", "service"))
                    .with_child(identity("client", "bot"));
                for f in [
                    ns::DISCO_INFO,
                    ns::DISCO_ITEMS,
                    ns::RSM,
                    ns::PING,
                    ns::PUBSUB,
                    "http://jabber.org/protocol/pubsub#subscribe",
                    "http://jabber.org/protocol/pubsub#retrieve-items",
                    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
                    "http://jabber.org/protocol/pubsub#persistent-items",
                ] {
                    q = q.with_child(feature(f));
                }
            }
            Some(node) => {
                let Some(node) = store.normalise_node(node) else {
                    return self.iq_error(iq, "cancel", "item-not-found", None);
                };
                match store.node_exists(&node).await {
                    Ok(true) => {}
                    Ok(false) => return self.iq_error(iq, "cancel", "item-not-found", None),
                    Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
                }
                q = q
                    .with_attr("node", node)
                    .with_child(identity("pubsub", "leaf"))
                    .with_child(feature(ns::PUBSUB))
                    .with_child(feature(ns::DISCO_INFO))
                    .with_child(feature(ns::DISCO_ITEMS));
            }
        }
        Output::send(vec![self.result(iq, Some(q))])
    }

    async fn disco_items<S: ComponentStore>(
        &self,
        iq: &Element,
        query: &Element,
        store: &S,
    ) -> Output {
        if let Some(node) = query.attr("node") {
            // A leaf node's items: its last item, if any.
            let Some(node) = store.normalise_node(node) else {
                return self.iq_error(iq, "cancel", "item-not-found", None);
            };
            match store.node_exists(&node).await {
                Ok(true) => {}
                Ok(false) => return self.iq_error(iq, "cancel", "item-not-found", None),
                Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
            }
            let mut q = Element::new("query", ns::DISCO_ITEMS).with_attr("node", node.clone());
            match store.last_item(&node).await {
                Ok(Some(item)) => {
                    q = q.with_child(
                        Element::new("item", ns::DISCO_ITEMS)
                            .with_attr("jid", self.config.jid.clone())
                            .with_attr("name", item.id),
                    );
                }
                Ok(None) => {}
                Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
            }
            return Output::send(vec![self.result(iq, Some(q))]);
        }
        let page_max = self.config.page_max.max(1);
        let set = query.child("set", ns::RSM);
        let text = |name: &str| {
            set.and_then(|s| s.child(name, ns::RSM))
                .map(|e| e.text.trim())
        };
        let max = match text("max") {
            None => page_max,
            Some(m) => match m.parse::<u32>() {
                Ok(m) => m.min(page_max),
                Err(_) => return self.iq_error(iq, "modify", "bad-request", None),
            },
        };
        let query_kind = if let Some(after) = text("after") {
            if after.is_empty() {
                return self.iq_error(iq, "modify", "bad-request", None);
            }
            PageQuery::After {
                after: after.to_owned(),
                max,
            }
        } else if let Some(before) = text("before") {
            PageQuery::Before {
                before: (!before.is_empty()).then(|| before.to_owned()),
                max,
            }
        } else if let Some(index) = text("index") {
            match index.parse::<u64>() {
                Ok(index) => PageQuery::From { index, max },
                Err(_) => return self.iq_error(iq, "modify", "bad-request", None),
            }
        } else {
            PageQuery::From { index: 0, max }
        };
        let page = match store.page_nodes(&query_kind).await {
            Ok(Some(p)) => p,
            Ok(None) => return self.iq_error(iq, "cancel", "item-not-found", None),
            Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
        };
        let mut q = Element::new("query", ns::DISCO_ITEMS);
        for n in &page.nodes {
            q = q.with_child(
                Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", self.config.jid.clone())
                    .with_attr("node", n.clone())
                    .with_attr("name", n.clone()),
            );
        }
        let mut rsm = Element::new("set", ns::RSM);
        if let (Some(first), Some(last)) = (page.nodes.first(), page.nodes.last()) {
            rsm = rsm
                .with_child(
                    Element::new("first", ns::RSM)
                        .with_attr("index", page.first_index.to_string())
                        .with_text(first.clone()),
                )
                .with_child(Element::new("last", ns::RSM).with_text(last.clone()));
        }
        rsm = rsm.with_child(Element::new("count", ns::RSM).with_text(page.count.to_string()));
        Output::send(vec![self.result(iq, Some(q.with_child(rsm)))])
    }

    async fn pubsub<S: ComponentStore>(
        &self,
        iq: &Element,
        kind: &str,
        pubsub: &Element,
        from: &Jid,
        store: &S,
    ) -> Output {
        let unsupported = |feature: &str| {
            Some(Element::new("unsupported", ns::PUBSUB_ERRORS).with_attr("feature", feature))
        };
        let bare = from.bare_string();
        let first = pubsub.children.iter().find(|c| c.ns == ns::PUBSUB);
        let Some(op) = first else {
            return self.iq_error(iq, "modify", "bad-request", None);
        };
        match (kind, op.name.as_str()) {
            ("set", "subscribe") => {
                let (node, jid) = match self.node_and_jid(iq, op) {
                    Ok(v) => v,
                    Err(out) => return out,
                };
                // XEP-0060 §6.1.3.1: the bare JIDs must match.
                if Jid::parse(jid).ok().map(|j| j.bare_string()).as_deref() != Some(bare.as_str()) {
                    return self.pubsub_bad_request(iq, "invalid-jid");
                }
                let Some(node) = store.normalise_node(node) else {
                    return self.iq_error(iq, "cancel", "item-not-found", None);
                };
                let reply = self.result(
                    iq,
                    Some(
                        Element::new("pubsub", ns::PUBSUB).with_child(
                            Element::new("subscription", ns::PUBSUB)
                                .with_attr("node", node.clone())
                                .with_attr("jid", bare.clone())
                                .with_attr("subscription", "subscribed"),
                        ),
                    ),
                );
                Output {
                    commands: vec![Command::Subscribe {
                        node,
                        channel: Channel::PubSub,
                        jid: bare,
                    }],
                    stanzas: vec![reply],
                    on_failure: self
                        .error(iq, "wait", "internal-server-error", None, None)
                        .into_iter()
                        .collect(),
                }
            }
            ("set", "unsubscribe") => {
                let (node, jid) = match self.node_and_jid(iq, op) {
                    Ok(v) => v,
                    Err(out) => return out,
                };
                if Jid::parse(jid).ok().map(|j| j.bare_string()).as_deref() != Some(bare.as_str()) {
                    // XEP-0060 §6.2.3.3: no one may unsubscribe another JID.
                    return self.iq_error(iq, "auth", "forbidden", None);
                }
                let Some(node) = store.normalise_node(node) else {
                    return self.iq_error(iq, "cancel", "item-not-found", None);
                };
                match self.subscribed(store, &bare, Channel::PubSub, &node).await {
                    Ok(true) => {}
                    Ok(false) => {
                        return self.iq_error(
                            iq,
                            "cancel",
                            "unexpected-request",
                            Some(Element::new("not-subscribed", ns::PUBSUB_ERRORS)),
                        );
                    }
                    Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
                }
                Output {
                    commands: vec![Command::Unsubscribe {
                        node,
                        channel: Channel::PubSub,
                        jid: bare,
                    }],
                    stanzas: vec![self.result(iq, None)],
                    on_failure: self
                        .error(iq, "wait", "internal-server-error", None, None)
                        .into_iter()
                        .collect(),
                }
            }
            ("get", "subscriptions") => {
                let filter = match op.attr("node") {
                    Some(n) => match store.normalise_node(n) {
                        Some(n) => Some(n),
                        None => return self.iq_error(iq, "cancel", "item-not-found", None),
                    },
                    None => None,
                };
                let subs = match store.subscriptions_of(&bare, 1000).await {
                    Ok(s) => s,
                    Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
                };
                let mut list = Element::new("subscriptions", ns::PUBSUB);
                if let Some(n) = &filter {
                    list.set_attr("node", n.clone());
                }
                for (channel, node) in subs {
                    if channel != Channel::PubSub || filter.as_ref().is_some_and(|f| *f != node) {
                        continue;
                    }
                    list = list.with_child(
                        Element::new("subscription", ns::PUBSUB)
                            .with_attr("node", node)
                            .with_attr("jid", bare.clone())
                            .with_attr("subscription", "subscribed"),
                    );
                }
                Output::send(vec![self.result(
                    iq,
                    Some(Element::new("pubsub", ns::PUBSUB).with_child(list)),
                )])
            }
            ("get", "items") => {
                let Some(node) = op.attr("node") else {
                    return self.pubsub_bad_request(iq, "nodeid-required");
                };
                let Some(node) = store.normalise_node(node) else {
                    return self.iq_error(iq, "cancel", "item-not-found", None);
                };
                match store.node_exists(&node).await {
                    Ok(true) => {}
                    Ok(false) => return self.iq_error(iq, "cancel", "item-not-found", None),
                    Err(_) => return self.iq_error(iq, "wait", "internal-server-error", None),
                }
                let mut items = Element::new("items", ns::PUBSUB).with_attr("node", node.clone());
                let zero = op.attr("max_items").is_some_and(|m| m.trim() == "0");
                if !zero {
                    match store.last_item(&node).await {
                        Ok(Some(item)) => {
                            items = items.with_child(
                                Element::new("item", ns::PUBSUB)
                                    .with_attr("id", item.id)
                                    .with_child(item.payload),
                            );
                        }
                        Ok(None) => {}
                        Err(_) => {
                            return self.iq_error(iq, "wait", "internal-server-error", None);
                        }
                    }
                }
                Output::send(vec![self.result(
                    iq,
                    Some(Element::new("pubsub", ns::PUBSUB).with_child(items)),
                )])
            }
            ("set", "publish") => self.iq_error(iq, "cancel", "forbidden", None),
            (_, other) => {
                let feature = match other {
                    "create" => "create-nodes",
                    "delete" => "delete-nodes",
                    "purge" => "purge-nodes",
                    "retract" => "retract-items",
                    "affiliations" => "retrieve-affiliations",
                    "options" | "default" => "subscription-options",
                    "configure" => "config-node",
                    "subscribe" => "subscribe",
                    "unsubscribe" => "subscribe",
                    "subscriptions" => "retrieve-subscriptions",
                    "items" => "retrieve-items",
                    _ => {
                        return self.iq_error(iq, "modify", "bad-request", None);
                    }
                };
                self.iq_error(
                    iq,
                    "cancel",
                    "feature-not-implemented",
                    unsupported(feature),
                )
            }
        }
    }

    async fn subscribed<S: ComponentStore>(
        &self,
        store: &S,
        bare: &str,
        channel: Channel,
        node: &str,
    ) -> Result<bool, S::Error> {
        Ok(store
            .subscriptions_of(bare, 10_000)
            .await?
            .iter()
            .any(|(c, n)| *c == channel && n == node))
    }

    fn chat(&self, msg: &Element, text: &str) -> Element {
        let kind = match msg.attr("type") {
            Some("normal") => "normal",
            _ => "chat",
        };
        let mut m = Element::new("message", ns::COMPONENT)
            .with_attr("from", self.our_address(msg))
            .with_attr("to", msg.attr("from").unwrap_or_default())
            .with_attr("type", kind);
        if let Some(id) = msg.attr("id") {
            m.set_attr(
                "id",
                format!("re-{}", id.chars().take(64).collect::<String>()),
            );
        }
        m.with_child(Element::new("body", ns::COMPONENT).with_text(text))
    }

    async fn message<S: ComponentStore>(&mut self, msg: &Element, from: &Jid, store: &S) -> Output {
        match msg.attr("type") {
            None | Some("chat" | "normal") => {}
            // Groupchat and headline messages are not commands.
            Some("groupchat" | "headline") => return Output::default(),
            Some(_) => return self.reply_error(msg, "modify", "bad-request"),
        }
        let Some(body) = msg.child("body", ns::COMPONENT) else {
            // Chat states, receipts and the like: nothing to do.
            return Output::default();
        };
        if body.text.chars().count() > self.config.max_body_chars {
            return Output::send(
                self.error(
                    msg,
                    "modify",
                    "policy-violation",
                    None,
                    Some("message too long"),
                )
                .into_iter()
                .collect(),
            );
        }
        let bare = from.bare_string();
        let mut words = body.text.split_whitespace();
        let command = words.next().unwrap_or("").to_lowercase();
        let arg = words.next();
        let extra = words.next().is_some();
        let reply = |text: String| Output::send(vec![self.chat(msg, &text)]);
        let node_of = |arg: Option<&str>| arg.and_then(|a| store.normalise_node(a));
        match (command.as_str(), arg, extra) {
            ("subscribe", Some(a), false) => {
                let Some(node) = node_of(Some(a)) else {
                    return reply(format!("{a:?} is not a domain name.\n\n{HELP}"));
                };
                let text = format!(
                    "Subscribed {bare} to alerts for {node}. Send \"unsubscribe {node}\" to stop.\n\
                     Evidence and status: {}/domains/{node}\n\
                     PubSub node: xmpp:{}?;node={node}",
                    self.config.public_url, self.config.jid
                );
                Output {
                    commands: vec![Command::Subscribe {
                        node,
                        channel: Channel::Chat,
                        jid: bare,
                    }],
                    stanzas: vec![self.chat(msg, &text)],
                    on_failure: vec![self.chat(msg, "Sorry, that failed; try again later.")],
                }
            }
            ("unsubscribe", Some(a), false) => {
                let Some(node) = node_of(Some(a)) else {
                    return reply(format!("{a:?} is not a domain name.\n\n{HELP}"));
                };
                match self.subscribed(store, &bare, Channel::Chat, &node).await {
                    Ok(true) => Output {
                        commands: vec![Command::Unsubscribe {
                            node: node.clone(),
                            channel: Channel::Chat,
                            jid: bare,
                        }],
                        stanzas: vec![self.chat(
                            msg,
                            &format!("Unsubscribed from {node}: your JID is deleted for it."),
                        )],
                        on_failure: vec![self.chat(msg, "Sorry, that failed; try again later.")],
                    },
                    Ok(false) => reply(format!("You are not subscribed to {node} by chat.")),
                    Err(_) => reply("Sorry, that failed; try again later.".into()),
                }
            }
            ("status", Some(a), false) => {
                let Some(node) = node_of(Some(a)) else {
                    return reply(format!("{a:?} is not a domain name.\n\n{HELP}"));
                };
                let text = match store.status(&node).await {
                    Ok(None) => format!("{node} is not known to this service."),
                    Ok(Some(NodeStatus {
                        verdict: Some(v),
                        checked_at,
                        watched,
                    })) => format!(
                        "{node}: {v} at {}{}.\nDetails: {}/domains/{node}",
                        checked_at.map_or_else(|| "an unknown time".to_owned(), rfc3339),
                        if watched {
                            " (watched)"
                        } else {
                            " (not watched)"
                        },
                        self.config.public_url
                    ),
                    Ok(Some(_)) => format!("{node} has not been checked yet."),
                    Err(_) => "Sorry, that failed; try again later.".into(),
                };
                reply(text)
            }
            ("list", None, false) => {
                let text = match store.subscriptions_of(&bare, 101).await {
                    Ok(subs) if subs.is_empty() => "You have no subscriptions.".to_owned(),
                    Ok(subs) => {
                        let mut t = String::from("Your subscriptions:");
                        for (c, n) in subs.iter().take(100) {
                            let how = match c {
                                Channel::Chat => "chat",
                                Channel::PubSub => "pubsub",
                            };
                            t.push_str(&format!("\n{n} ({how})"));
                        }
                        if subs.len() > 100 {
                            t.push_str("\n(more not shown)");
                        }
                        t
                    }
                    Err(_) => "Sorry, that failed; try again later.".into(),
                };
                reply(text)
            }
            ("help", None, false) => reply(HELP.to_owned()),
            _ => reply(format!("Unknown command.\n\n{HELP}")),
        }
    }

    fn presence(&self, p: &Element, from: &Jid) -> Output {
        let ours = self.our_address(p);
        let ours = Jid::parse(&ours).map_or_else(|_| self.config.jid.clone(), |j| j.bare_string());
        let presence = |to: String| {
            Element::new("presence", ns::COMPONENT)
                .with_attr("from", ours.clone())
                .with_attr("to", to)
        };
        match p.attr("type") {
            // RFC 6121 §3.1: approve; then the contact (us) sends its presence. We do not
            // ask for the user's presence in return.
            Some("subscribe") => Output::send(vec![
                presence(from.bare_string()).with_attr("type", "subscribed"),
                presence(from.bare_string()),
            ]),
            // RFC 6121 §4.3: a probe gets our current presence.
            Some("probe") => Output::send(vec![presence(from.to_string())]),
            _ => Output::default(),
        }
    }
}

#[cfg(test)]
mod tests;
