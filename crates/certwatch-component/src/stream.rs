//! The component stream (XEP-0114), without I/O.
//!
//! ```text
//! component -> server   <stream:stream xmlns='jabber:component:accept' to='JID'>
//! server -> component   <stream:stream ... id='ID'>
//! component -> server   <handshake>hex(SHA-1(ID + secret))</handshake>
//! server -> component   <handshake/>                (or a stream error: not-authorized)
//! ... stanzas both ways ...
//! ```
//!
//! The caller feeds received bytes to [`ComponentStream::receive`] and writes what
//! [`ComponentStream::take_output`] returns; the stream never blocks and never panics.

use crate::ns;
use crate::xml::{Element, FrameError, Framer, Item, Limits, Rejection};

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Our header is sent; waiting for the server's.
    AwaitHeader,
    /// Our handshake is sent; waiting for the server's empty `<handshake/>`.
    AwaitHandshake,
    /// Authenticated: stanzas flow.
    Up,
    /// Closed (by either side, or after an error).
    Closed,
}

/// What happened on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the handshake: the link is up.
    Authenticated,
    /// A stanza for the handler.
    Stanza(Element),
    /// A stanza the framer skipped (too large, too deep, malformed inside): its top element
    /// only, so that the handler can answer with a stanza error.
    Rejected(Element, Rejection),
}

/// Why the stream ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The bytes were not an acceptable XML stream.
    #[error(transparent)]
    Xml(#[from] FrameError),
    /// The server's header was not a component stream header, or had no id.
    #[error("bad stream header: {0}")]
    BadHeader(String),
    /// The server refused the handshake (wrong secret or unknown component).
    #[error("the server refused the handshake: {0}")]
    NotAuthorized(String),
    /// The server sent a stream error.
    #[error("stream error from the server: {0}")]
    Remote(String),
    /// The server closed the stream.
    #[error("the server closed the stream")]
    Closed,
    /// Something arrived that the phase does not allow.
    #[error("unexpected {0} during the handshake")]
    Unexpected(String),
}

/// The component stream state machine.
pub struct ComponentStream {
    jid: String,
    secret: String,
    phase: Phase,
    framer: Framer,
    out: Vec<u8>,
    stream_id: Option<String>,
}

impl std::fmt::Debug for ComponentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentStream")
            .field("jid", &self.jid)
            .field("phase", &self.phase)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The handshake value: lowercase hex of SHA-1(stream id + secret) (XEP-0114 §3).
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(stream_id.as_bytes());
    ctx.update(secret.as_bytes());
    hex::encode(ctx.finish().as_ref())
}

impl ComponentStream {
    /// Starts a stream for component `jid` with the shared `secret`: the header is queued
    /// in the output.
    pub fn new(jid: &str, secret: &str, limits: Limits) -> ComponentStream {
        let mut s = ComponentStream {
            jid: jid.to_owned(),
            secret: secret.to_owned(),
            phase: Phase::AwaitHeader,
            framer: Framer::new(limits),
            out: Vec::new(),
            stream_id: None,
        };
        let mut header = String::from("<?xml version='1.0'?><stream:stream xmlns='");
        header.push_str(ns::COMPONENT);
        header.push_str("' xmlns:stream='");
        header.push_str(ns::STREAM);
        header.push_str("' to='");
        crate::xml::escape_into(&mut header, jid, true);
        header.push_str("'>");
        s.out.extend_from_slice(header.as_bytes());
        s
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The server's stream id, once known.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// Bytes to write to the server (drained).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Queues a stanza (only once the stream is up; `false` otherwise).
    pub fn send(&mut self, stanza: &Element) -> bool {
        if self.phase != Phase::Up {
            return false;
        }
        self.out.extend_from_slice(stanza.to_stanza().as_bytes());
        true
    }

    /// Queues a whitespace keepalive (RFC 6120 §4.6.1).
    pub fn keepalive(&mut self) {
        if self.phase == Phase::Up {
            self.out.push(b' ');
        }
    }

    /// Queues the end of our stream; the stream is closed.
    pub fn close(&mut self) {
        if self.phase != Phase::Closed {
            self.out.extend_from_slice(b"</stream:stream>");
            self.phase = Phase::Closed;
        }
    }

    /// Feeds received bytes; returns what happened, or why the stream must end (a stream
    /// error element is then queued when it was our peer's fault). Events found before an
    /// error in the same bytes are dropped: [`ComponentStream::receive_all`] keeps them.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<Event>, StreamError> {
        match self.receive_all(bytes) {
            (events, None) => Ok(events),
            (_, Some(e)) => Err(e),
        }
    }

    /// Feeds received bytes; returns every event found, in order, and the error that ended
    /// the stream, if one did (after those events).
    pub fn receive_all(&mut self, bytes: &[u8]) -> (Vec<Event>, Option<StreamError>) {
        let mut events = Vec::new();
        if self.phase == Phase::Closed {
            return (events, Some(StreamError::Closed));
        }
        self.framer.push(bytes);
        loop {
            let item = match self.framer.next_item() {
                Ok(Some(i)) => i,
                Ok(None) => return (events, None),
                Err(e) => {
                    let condition = match e {
                        FrameError::Restricted(_) => "restricted-xml",
                        FrameError::TagTooLarge { .. } => "policy-violation",
                        FrameError::Malformed(_) => "not-well-formed",
                    };
                    self.fail(condition);
                    return (events, Some(e.into()));
                }
            };
            match self.step(item) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => {}
                Err(e) => return (events, Some(e)),
            }
        }
    }

    fn fail(&mut self, condition: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        let err =
            Element::new("error", ns::STREAM).with_child(Element::new(condition, ns::STREAMS));
        let mut s = String::new();
        err.write(&mut s, ns::COMPONENT);
        // Written with the stream prefix, as servers expect.
        let s = s.replacen(
            "<error xmlns='http://etherx.jabber.org/streams'>",
            "<stream:error>",
            1,
        );
        let s = s.replacen("</error>", "</stream:error>", 1);
        self.out.extend_from_slice(s.as_bytes());
        self.close();
    }

    fn step(&mut self, item: Item) -> Result<Option<Event>, StreamError> {
        match (self.phase, item) {
            (_, Item::StreamClose) => {
                self.close();
                Err(StreamError::Closed)
            }
            (Phase::AwaitHeader, Item::StreamOpen(h)) => {
                if !h.is("stream", ns::STREAM) {
                    self.fail("invalid-namespace");
                    return Err(StreamError::BadHeader(format!("{{{}}}{}", h.ns, h.name)));
                }
                let Some(id) = h.attr("id").filter(|id| !id.is_empty()) else {
                    self.fail("invalid-xml");
                    return Err(StreamError::BadHeader("no stream id".into()));
                };
                let id = id.to_owned();
                let digest = handshake_digest(&id, &self.secret);
                self.out
                    .extend_from_slice(format!("<handshake>{digest}</handshake>").as_bytes());
                self.stream_id = Some(id);
                self.phase = Phase::AwaitHandshake;
                Ok(None)
            }
            (_, Item::StreamOpen(_)) => {
                self.fail("not-well-formed");
                Err(StreamError::Unexpected("second stream header".into()))
            }
            (_, Item::Stanza(e)) if e.is("error", ns::STREAM) => {
                let condition = e
                    .children
                    .iter()
                    .find(|c| c.ns == ns::STREAMS && c.name != "text")
                    .map_or_else(|| "undefined-condition".to_owned(), |c| c.name.clone());
                let text = e
                    .child("text", ns::STREAMS)
                    .map(|t| format!(": {}", t.text.chars().take(200).collect::<String>()))
                    .unwrap_or_default();
                self.phase = Phase::Closed;
                self.out.extend_from_slice(b"</stream:stream>");
                if condition == "not-authorized" && self.stream_id.is_some() {
                    return Err(StreamError::NotAuthorized(format!("{condition}{text}")));
                }
                Err(StreamError::Remote(format!("{condition}{text}")))
            }
            (Phase::AwaitHandshake, Item::Stanza(e)) if e.is("handshake", ns::COMPONENT) => {
                self.phase = Phase::Up;
                Ok(Some(Event::Authenticated))
            }
            (Phase::Up, Item::Stanza(e)) => Ok(Some(Event::Stanza(e))),
            (Phase::Up, Item::Rejected { top, reason }) => Ok(Some(Event::Rejected(top, reason))),
            (phase, Item::Stanza(e)) => {
                self.fail("not-authorized");
                Err(StreamError::Unexpected(format!(
                    "<{}> in phase {phase:?}",
                    e.name
                )))
            }
            (phase, Item::Rejected { top, .. }) => {
                self.fail("policy-violation");
                Err(StreamError::Unexpected(format!(
                    "a rejected <{}> in phase {phase:?}",
                    top.name
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_is_sha1_of_id_and_secret() {
        // SHA-1("abc"), FIPS 180-1: the id and the secret are hashed as one string.
        assert_eq!(
            handshake_digest("ab", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    fn up() -> ComponentStream {
        let mut s = ComponentStream::new("c.example", "secret", Limits::default());
        let header = String::from_utf8(s.take_output()).unwrap();
        assert!(header.contains("xmlns='jabber:component:accept'"));
        assert!(header.contains("to='c.example'"));
        let ev = s
            .receive(b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='c.example' id='s1'>")
            .unwrap();
        assert!(ev.is_empty());
        assert_eq!(
            String::from_utf8(s.take_output()).unwrap(),
            format!(
                "<handshake>{}</handshake>",
                handshake_digest("s1", "secret")
            )
        );
        assert_eq!(
            s.receive(b"<handshake/>").unwrap(),
            vec![Event::Authenticated]
        );
        assert_eq!(s.phase(), Phase::Up);
        s
    }

    #[test]
    fn stanzas_flow_once_up() {
        let mut s = up();
        let ev = s
            .receive(b"<message from='a@b/c'><body>hi</body></message>")
            .unwrap();
        assert!(matches!(&ev[..], [Event::Stanza(m)] if m.name == "message"));
        assert!(s.send(&Element::new("presence", ns::COMPONENT)));
        assert_eq!(s.take_output(), b"<presence/>");
    }

    #[test]
    fn refused_handshake_is_not_authorized() {
        let mut s = ComponentStream::new("c.example", "wrong", Limits::default());
        s.receive(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='x'>")
            .unwrap();
        let err = s
            .receive(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
            .unwrap_err();
        assert!(matches!(err, StreamError::NotAuthorized(_)), "{err:?}");
        assert_eq!(s.phase(), Phase::Closed);
        assert!(!s.send(&Element::new("presence", ns::COMPONENT)));
    }

    #[test]
    fn stanzas_before_the_handshake_end_the_stream() {
        let mut s = ComponentStream::new("c.example", "x", Limits::default());
        s.receive(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='x'>")
            .unwrap();
        s.take_output();
        assert!(s.receive(b"<message/>").is_err());
        let out = String::from_utf8(s.take_output()).unwrap();
        assert!(out.starts_with("<stream:error><not-authorized"), "{out}");
        assert!(out.ends_with("</stream:stream>"));
    }

    #[test]
    fn a_header_without_id_is_refused() {
        let mut s = ComponentStream::new("c.example", "x", Limits::default());
        assert!(matches!(
            s.receive(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept'>"),
            Err(StreamError::BadHeader(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_after_the_handshake_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100), 0..20)) {
            let mut s = up();
            for c in chunks {
                if s.receive(&c).is_err() {
                    proptest::prop_assert_eq!(s.phase(), Phase::Closed);
                    break;
                }
            }
        }
    }
}
