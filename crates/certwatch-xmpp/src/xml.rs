//! Incremental, bounded reading of an XML stream that is never closed.
//!
//! The peer's bytes are buffered and cut into complete markup units (a tag, or the text up to
//! the next `<`) by a small quote-aware framer that remembers how far it has scanned, so any
//! chunking costs linear time. Each complete tag is then parsed by quick-xml (names,
//! attributes, escapes). DTDs, comments, CDATA and processing instructions are rejected on
//! their first bytes, before anything is parsed; undefined entity references are rejected by
//! the unescaper. Namespaces are resolved here with a scope stack as deep as the depth limit.
//!
//! The output is one [`Item`] per stream-level event: the stream header, each complete
//! child of the stream (a small bounded tree), and the end of the stream.

use quick_xml::events::{BytesStart, Event};

use crate::config::Limits;
use crate::error::{Error, Markup};

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
/// Compact the buffer once this many consumed bytes sit at its front.
const COMPACT_AT: usize = 4096;

/// A parsed element with its namespace resolved, and (for stream children) its subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// The resolved namespace ("" when none).
    pub ns: String,
    /// The local name.
    pub local: String,
    /// Attributes by qualified name as written, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content (unescaped).
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// `{namespace}local`, for messages.
    pub fn qname(&self) -> String {
        format!("{{{}}}{}", self.ns, self.local)
    }
}

/// One stream-level event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// The stream header (no children).
    StreamOpen(Element),
    /// A complete child of the stream.
    Child(Element),
    /// `</stream:stream>` (or a self-closed header).
    StreamClose,
}

struct Frame {
    raw_name: String,
    bindings: Vec<(Option<String>, String)>,
    element: Element,
}

/// The incremental reader.
pub(crate) struct XmlStream {
    limits: Limits,
    buf: Vec<u8>,
    /// Consumed bytes at the front of `buf`.
    pos: usize,
    /// How far past `pos` the framer has scanned the current unit.
    scan: usize,
    /// Open quote character while scanning inside a tag.
    quote: Option<u8>,
    /// Total bytes pushed.
    received: usize,
    /// Whether a unit other than leading whitespace has been consumed.
    started: bool,
    /// The open elements, the stream element first (its frame keeps no children).
    stack: Vec<Frame>,
    /// The stream header has been closed: nothing may follow.
    closed: bool,
    /// A self-closed stream header owes a `StreamClose`.
    pending_close: bool,
}

impl XmlStream {
    pub fn new(limits: Limits) -> Self {
        XmlStream {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            quote: None,
            received: 0,
            started: false,
            stack: Vec::new(),
            closed: false,
            pending_close: false,
        }
    }

    /// Appends peer bytes, enforcing the total byte limit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.received = self.received.saturating_add(bytes.len());
        if self.received > self.limits.max_bytes {
            return Err(Error::TooManyBytes {
                limit: self.limits.max_bytes,
            });
        }
        if self.pos >= COMPACT_AT && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Total bytes received.
    pub fn received(&self) -> usize {
        self.received
    }

    /// The next complete stream-level item, or `None` if more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<Item>, Error> {
        if self.pending_close {
            self.pending_close = false;
            self.closed = true;
            return Ok(Some(Item::StreamClose));
        }
        loop {
            let avail = &self.buf[self.pos..];
            let Some(&first) = avail.first() else {
                return Ok(None);
            };
            if first == b'<' {
                let Some(unit_len) = self.frame_tag()? else {
                    return Ok(None);
                };
                let start = self.pos;
                self.pos += unit_len;
                self.scan = 0;
                self.quote = None;
                let was_started = self.started;
                self.started = true;
                let unit = self.buf[start..start + unit_len].to_vec();
                if let Some(item) = self.tag(&unit, was_started)? {
                    return Ok(Some(item));
                }
            } else if self.stack.len() <= 1 {
                // Between stream-level elements only whitespace (keepalives) may appear: it is
                // consumed at once, so an endless keepalive stream hits the byte limit only.
                if self.stack.is_empty() && !self.started && sniff_non_xml(avail)? {
                    return Ok(None);
                }
                let ws = avail.iter().take_while(|b| is_space(**b)).count();
                let garbage = avail.get(ws).is_some_and(|b| *b != b'<');
                self.pos += ws;
                if garbage {
                    return Err(if self.stack.is_empty() {
                        bad("text outside the stream element")
                    } else {
                        // Classified by the caller with the step.
                        Error::UnexpectedText {
                            step: crate::error::Step::StreamHeader,
                        }
                    });
                }
            } else {
                let Some(len) = self.frame_text()? else {
                    return Ok(None);
                };
                let start = self.pos;
                self.pos += len;
                self.scan = 0;
                let text = self.buf[start..start + len].to_vec();
                self.text(&text)?;
            }
        }
    }

    /// Finds the end of the tag at `pos`; `Some(length)` when complete.
    fn frame_tag(&mut self) -> Result<Option<usize>, Error> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 2 {
            return Ok(None);
        }
        match avail[1] {
            b'!' => {
                if avail.len() < 3 {
                    return Ok(None);
                }
                return Err(Error::ForbiddenMarkup(match avail[2] {
                    b'-' => Markup::Comment,
                    b'[' => Markup::CData,
                    _ => Markup::Declaration,
                }));
            }
            b'?' => {
                // Only `<?xml` + whitespace, and only before anything else.
                const DECL: &[u8] = b"<?xml";
                let n = avail.len().min(DECL.len());
                if self.started || avail[..n] != DECL[..n] {
                    return Err(Error::ForbiddenMarkup(Markup::ProcessingInstruction));
                }
                if avail.len() <= DECL.len() {
                    return Ok(None);
                }
                if !avail[DECL.len()].is_ascii_whitespace() {
                    return Err(Error::ForbiddenMarkup(Markup::ProcessingInstruction));
                }
            }
            _ => {}
        }
        let from = self.scan.max(1);
        for (i, &b) in avail.iter().enumerate().skip(from) {
            match (self.quote, b) {
                (Some(q), _) if b == q => self.quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"') => self.quote = Some(b),
                (None, b'<') => {
                    return Err(Error::MalformedXml("'<' inside a tag".into()));
                }
                (None, b'>') => {
                    if i + 1 > self.limits.max_tag_bytes {
                        return Err(Error::TagTooLarge {
                            limit: self.limits.max_tag_bytes,
                        });
                    }
                    return Ok(Some(i + 1));
                }
                (None, _) => {}
            }
        }
        self.scan = avail.len();
        if avail.len() > self.limits.max_tag_bytes {
            return Err(Error::TagTooLarge {
                limit: self.limits.max_tag_bytes,
            });
        }
        Ok(None)
    }

    /// Finds the end of the text at `pos` (the next `<`); `Some(length)` when complete.
    fn frame_text(&mut self) -> Result<Option<usize>, Error> {
        let avail = &self.buf[self.pos..];
        let from = self.scan;
        if let Some(i) = avail[from..].iter().position(|&b| b == b'<') {
            let len = from + i;
            self.check_text_len(len)?;
            return Ok(Some(len));
        }
        self.scan = avail.len();
        self.check_text_len(avail.len())?;
        Ok(None)
    }

    fn check_text_len(&self, len: usize) -> Result<(), Error> {
        if len > self.limits.max_text_bytes {
            Err(Error::TextTooLarge {
                limit: self.limits.max_text_bytes,
            })
        } else {
            Ok(())
        }
    }

    fn text(&mut self, raw: &[u8]) -> Result<(), Error> {
        let s = std::str::from_utf8(raw).map_err(|_| bad("text is not UTF-8"))?;
        let text = quick_xml::escape::unescape(s).map_err(escape_error)?;
        let limit = self.limits.max_text_bytes;
        let Some(top) = self.stack.last_mut() else {
            return Ok(());
        };
        if top.element.text.len() + text.len() > limit {
            return Err(Error::TextTooLarge { limit });
        }
        top.element.text.push_str(&text);
        Ok(())
    }

    fn tag(&mut self, unit: &[u8], was_started: bool) -> Result<Option<Item>, Error> {
        if self.closed {
            return Err(bad("markup after the end of the stream"));
        }
        let mut reader = quick_xml::Reader::from_reader(unit);
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        let event = reader.read_event().map_err(|e| bad(&e.to_string()))?;
        match event {
            Event::Decl(decl) => {
                if was_started {
                    return Err(Error::ForbiddenMarkup(Markup::ProcessingInstruction));
                }
                let version = decl.version().map_err(|e| bad(&e.to_string()))?;
                if version.as_ref() != b"1.0" {
                    return Err(bad("XML declaration with a version other than 1.0"));
                }
                if let Some(enc) = decl.encoding() {
                    let enc = enc.map_err(|e| bad(&e.to_string()))?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        return Err(bad("XML declaration with an encoding other than UTF-8"));
                    }
                }
                Ok(None)
            }
            Event::Start(start) => self.open(&start, false),
            Event::Empty(start) => self.open(&start, true),
            Event::End(end) => {
                let raw = std::str::from_utf8(end.name().as_ref())
                    .map_err(|_| bad("element name is not UTF-8"))?
                    .to_owned();
                self.close(&raw)
            }
            _ => Err(bad("unexpected markup")),
        }
    }

    fn open(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<Option<Item>, Error> {
        if self.stack.len() + 1 > self.limits.max_depth {
            return Err(Error::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let raw_name = std::str::from_utf8(start.name().as_ref())
            .map_err(|_| bad("element name is not UTF-8"))?
            .to_owned();
        let (prefix, local) = split_qname(&raw_name)?;
        let mut attrs = Vec::new();
        let mut bindings = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| bad(&e.to_string()))?;
            let key = std::str::from_utf8(attr.key.as_ref())
                .map_err(|_| bad("attribute name is not UTF-8"))?
                .to_owned();
            let value = attr.unescape_value().map_err(|e| match e {
                quick_xml::Error::Escape(e) => escape_error(e),
                other => bad(&other.to_string()),
            })?;
            let value = value.into_owned();
            if key == "xmlns" {
                bindings.push((None, value.clone()));
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                if p.is_empty() || value.is_empty() {
                    return Err(bad("invalid namespace declaration"));
                }
                bindings.push((Some(p.to_owned()), value.clone()));
            }
            attrs.push((key, value));
        }
        let ns = self.resolve(prefix, &bindings)?;
        let element = Element {
            ns,
            local: local.to_owned(),
            attrs,
            children: Vec::new(),
            text: String::new(),
        };
        if self.stack.is_empty() {
            self.stack.push(Frame {
                raw_name,
                bindings,
                element: Element::default(),
            });
            if empty {
                self.stack.clear();
                self.pending_close = true;
            }
            return Ok(Some(Item::StreamOpen(element)));
        }
        self.stack.push(Frame {
            raw_name: raw_name.clone(),
            bindings,
            element,
        });
        if empty {
            return self.close(&raw_name);
        }
        Ok(None)
    }

    fn close(&mut self, raw: &str) -> Result<Option<Item>, Error> {
        let Some(top) = self.stack.pop() else {
            return Err(bad("end tag without a start tag"));
        };
        if top.raw_name != raw {
            return Err(bad("mismatched end tag"));
        }
        match self.stack.len() {
            0 => {
                self.closed = true;
                Ok(Some(Item::StreamClose))
            }
            1 => Ok(Some(Item::Child(top.element))),
            _ => {
                if let Some(parent) = self.stack.last_mut() {
                    parent.element.children.push(top.element);
                }
                Ok(None)
            }
        }
    }

    fn resolve(
        &self,
        prefix: Option<&str>,
        own: &[(Option<String>, String)],
    ) -> Result<String, Error> {
        if prefix == Some("xml") {
            return Ok(NS_XML.to_owned());
        }
        let scopes = std::iter::once(own).chain(self.stack.iter().rev().map(|f| &f.bindings[..]));
        for bindings in scopes {
            if let Some((_, uri)) = bindings.iter().rev().find(|(p, _)| p.as_deref() == prefix) {
                return Ok(uri.clone());
            }
        }
        match prefix {
            None => Ok(String::new()),
            Some(_) => Err(bad("unbound namespace prefix")),
        }
    }
}

fn split_qname(raw: &str) -> Result<(Option<&str>, &str), Error> {
    let valid = |s: &str| {
        !s.is_empty()
            && !s.contains(':')
            && s.chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"<>&'\"=/".contains(c))
    };
    match raw.split_once(':') {
        Some((p, l)) if valid(p) && valid(l) => Ok((Some(p), l)),
        None if valid(raw) => Ok((None, raw)),
        _ => Err(bad("invalid element name")),
    }
}

/// The first bytes of the peer, before anything XML: classify garbage and TLS. `Ok(true)`
/// when one more byte is needed to tell.
fn sniff_non_xml(avail: &[u8]) -> Result<bool, Error> {
    let ws = avail.iter().position(|b| !is_space(*b));
    match ws.map(|i| &avail[i..]) {
        Some([0x14..=0x17, 0x03, ..]) => return Err(Error::UnexpectedTls),
        Some([0x14..=0x17]) => return Ok(true),
        _ => {}
    }
    match ws {
        None => Ok(false),
        Some(i) if avail[i] == b'<' => Ok(false),
        Some(_) => {
            let n = avail.len().min(32);
            Err(Error::NotXml {
                preview: String::from_utf8_lossy(&avail[..n]).into_owned(),
            })
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn escape_error(e: quick_xml::escape::EscapeError) -> Error {
    match e {
        quick_xml::escape::EscapeError::UnrecognizedEntity(..) => {
            Error::ForbiddenMarkup(Markup::EntityReference)
        }
        other => bad(&other.to_string()),
    }
}

fn bad(msg: &str) -> Error {
    Error::MalformedXml(msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &[u8]) -> Result<Vec<Item>, Error> {
        let mut x = XmlStream::new(Limits::default());
        x.push(input)?;
        let mut out = Vec::new();
        while let Some(i) = x.next_item()? {
            out.push(i);
        }
        Ok(out)
    }

    #[test]
    fn prefixes_resolve_in_both_styles() {
        let got = items(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' id='x'>\n\
              <stream:features><tls:starttls xmlns:tls='urn:ietf:params:xml:ns:xmpp-tls'>\
              <tls:required/></tls:starttls></stream:features> ",
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        let Item::StreamOpen(h) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(h.is("http://etherx.jabber.org/streams", "stream"));
        assert_eq!(h.attr("id"), Some("x"));
        let Item::Child(f) = &got[1] else {
            panic!("{got:?}")
        };
        let tls = f
            .child("urn:ietf:params:xml:ns:xmpp-tls", "starttls")
            .unwrap();
        assert!(
            tls.child("urn:ietf:params:xml:ns:xmpp-tls", "required")
                .is_some()
        );
    }

    #[test]
    fn quoted_gt_does_not_end_a_tag() {
        let got = items(b"<s:stream xmlns:s='u' a='x>y' b=\"'>\">").unwrap();
        let Item::StreamOpen(h) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(h.attr("a"), Some("x>y"));
        assert_eq!(h.attr("b"), Some("'>"));
    }

    #[test]
    fn forbidden_markup_is_rejected_on_sight() {
        for (input, kind) in [
            (
                &b"<!DOCTYPE lol [<!ENTITY lol 'lol'>]>"[..],
                Markup::Declaration,
            ),
            (b"<s xmlns='a'><!-- hi -->", Markup::Comment),
            (b"<s xmlns='a'><![CDATA[x]]>", Markup::CData),
            (
                b"<?xml-stylesheet href='x'?>",
                Markup::ProcessingInstruction,
            ),
            (b"<s xmlns='a'><?php x?>", Markup::ProcessingInstruction),
            (b"<s xmlns='a'><a>&lol;</a>", Markup::EntityReference),
            (b"<s xmlns='a' v='&xxe;'>", Markup::EntityReference),
        ] {
            match items(input) {
                Err(Error::ForbiddenMarkup(k)) => assert_eq!(k, kind, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unbound_prefix_and_mismatched_end_are_malformed() {
        assert!(matches!(items(b"<x:s>"), Err(Error::MalformedXml(_))));
        assert!(matches!(
            items(b"<s xmlns='a'><b></c>"),
            Err(Error::MalformedXml(_))
        ));
    }

    #[test]
    fn predefined_and_numeric_references_are_unescaped() {
        let got = items(b"<s xmlns='a'><b>&lt;&#65;&#x42;&amp;</b>").unwrap();
        let Item::Child(b) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(b.text, "<AB&");
    }

    #[test]
    fn compaction_keeps_positions_right() {
        let mut x = XmlStream::new(Limits::default());
        x.push(b"<s xmlns='a'>").unwrap();
        assert!(matches!(x.next_item(), Ok(Some(Item::StreamOpen(_)))));
        for _ in 0..2000 {
            x.push(b"<b>t</b>").unwrap();
            assert!(matches!(x.next_item(), Ok(Some(Item::Child(_)))));
        }
        assert_eq!(x.buffered(), 0);
    }
}
