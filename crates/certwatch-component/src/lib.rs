//! # certwatch-component
//!
//! certwatch's XMPP side (issue 10, `docs/xmpp.md`), without any I/O:
//! - [`xml`]: an [`Element`](xml::Element) tree, its serialiser, and an incremental, bounded
//!   framer that cuts a never-ending XML stream into stanzas (byte bound per stanza, depth
//!   bound, no DTD, comments, processing instructions, CDATA or entity definitions);
//! - [`stream`]: the XEP-0114 component stream (`jabber:component:accept`): the header, the
//!   handshake (lowercase hex SHA-1 of stream id and secret), and the stanzas;
//! - [`jid`]: JIDs and bare JIDs;
//! - [`handler`]: the pure stanza handler: disco, PubSub (a XEP-0060 subset with RSM,
//!   XEP-0059), the chat bot and presence; it reads the store through the
//!   [`ComponentStore`](handler::ComponentStore) trait and returns stanzas to send and store
//!   commands to apply;
//! - [`notice`]: alert notifications as PubSub items (an Atom entry) and chat messages;
//! - [`fuzzing`]: the entry point of the `component_stream` fuzz target.
//!
//! The tokio link, the store adapter and the outbox pass live in `certwatch-server`
//! (`component` module).
#![forbid(unsafe_code)]

pub mod fuzzing;
pub mod handler;
pub mod jid;
pub mod notice;
pub mod stream;
pub mod xml;

/// Namespaces used by the component.
pub mod ns {
    /// The component stream's default namespace (XEP-0114).
    pub const COMPONENT: &str = "jabber:component:accept";
    /// The stream namespace.
    pub const STREAM: &str = "http://etherx.jabber.org/streams";
    /// Stanza error conditions (RFC 6120 §8.3).
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    /// Stream error conditions (RFC 6120 §4.9).
    pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    /// Service discovery, information.
    pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
    /// Service discovery, items.
    pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    /// Result set management (XEP-0059).
    pub const RSM: &str = "http://jabber.org/protocol/rsm";
    /// PubSub (XEP-0060).
    pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
    /// PubSub events.
    pub const PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
    /// PubSub error conditions.
    pub const PUBSUB_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
    /// Atom.
    pub const ATOM: &str = "http://www.w3.org/2005/Atom";
    /// XMPP ping (XEP-0199).
    pub const PING: &str = "urn:xmpp:ping";
}
