//! Elements, their serialiser, and the incremental, bounded stanza framer.
//!
//! The framer buffers the server's bytes and cuts them into complete markup units (a tag, or
//! the text up to the next `<`) with a quote-aware scanner that remembers how far it has
//! scanned, so any chunking costs linear time. Each complete tag is parsed by quick-xml
//! (names, attributes, escapes); namespaces are resolved with a scope stack.
//!
//! Bounds:
//! - one tag (with its attributes) is at most [`Limits::max_tag_bytes`]; a larger one, and
//!   anything the stream may not contain (a DTD, a comment, CDATA, a processing instruction
//!   other than the leading XML declaration, an undefined entity, a mismatched end tag outside
//!   a skipped stanza), is a fatal [`FrameError`]: the link is closed and opened again;
//! - a stanza larger than [`Limits::max_stanza_bytes`] or deeper than [`Limits::max_depth`],
//!   or one whose inner markup does not parse, is **skipped**: its bytes are consumed without
//!   being kept, and [`Item::Rejected`] carries only its top element (name and attributes) so
//!   that the handler can answer the sender with a stanza error. Memory stays bounded by the
//!   largest tag or text unit plus the largest accepted stanza.

use quick_xml::events::{BytesStart, Event};

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
/// Compact the buffer once this many consumed bytes sit at its front.
const COMPACT_AT: usize = 4096;

/// The framer's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one stanza, tags and text included (default 64 KiB).
    pub max_stanza_bytes: usize,
    /// Element depth inside a stanza, the stanza itself being 1 (default 16).
    pub max_depth: usize,
    /// Bytes of one tag with its attributes (default 8 KiB); larger is fatal.
    pub max_tag_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 64 * 1024,
            max_depth: 16,
            max_tag_bytes: 8 * 1024,
        }
    }
}

/// A parsed element: namespace resolved, attributes by qualified name, child elements and
/// the concatenation of its own text nodes (stanzas here carry no mixed content that matters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The resolved namespace (`""` for none).
    pub ns: String,
    /// The local name.
    pub name: String,
    /// Attributes by qualified name as written (`xmlns` declarations excluded when built,
    /// kept when parsed), values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// The element's own text, unescaped.
    pub text: String,
}

impl Element {
    /// A new element `name` in namespace `ns`.
    pub fn new(name: &str, ns: &str) -> Element {
        Element {
            ns: ns.to_owned(),
            name: name.to_owned(),
            ..Element::default()
        }
    }

    /// This element with attribute `key` set to `value` (builder).
    #[must_use]
    pub fn with_attr(mut self, key: &str, value: impl Into<String>) -> Element {
        self.set_attr(key, value);
        self
    }

    /// Sets attribute `key` (replacing an earlier value).
    pub fn set_attr(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key.to_owned(), value)),
        }
    }

    /// This element with `child` appended (builder).
    #[must_use]
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(child);
        self
    }

    /// This element with `children` appended (builder).
    #[must_use]
    pub fn with_children(mut self, children: impl IntoIterator<Item = Element>) -> Element {
        self.children.extend(children);
        self
    }

    /// This element with its text set (builder).
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.text = text.into();
        self
    }

    /// Whether this is `{ns}name`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first child `{ns}name`.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(name, ns))
    }

    /// Serialises the element; `parent_ns` is the namespace in scope (an `xmlns` attribute is
    /// written only where the namespace changes).
    pub fn write(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            out.push_str(" xmlns='");
            escape_into(out, &self.ns, true);
            out.push('\'');
        }
        for (k, v) in &self.attrs {
            if k == "xmlns" || k.starts_with("xmlns:") {
                continue;
            }
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_into(out, v, true);
            out.push('\'');
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        escape_into(out, &self.text, false);
        for c in &self.children {
            c.write(out, &self.ns);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// The element as a stanza of the component stream (default namespace
    /// `jabber:component:accept`).
    pub fn to_stanza(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, crate::ns::COMPONENT);
        s
    }
}

/// Escapes text (`&`, `<`, `>`) or an attribute value (also both quotes). Characters not
/// allowed in XML 1.0 (controls other than tab, newline, carriage return) are dropped.
pub fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The stream header (no children).
    StreamOpen(Element),
    /// A complete stanza (a child of the stream).
    Stanza(Element),
    /// A stanza that was skipped: too large, too deep, or malformed inside. Only its top
    /// element's name and attributes are kept.
    Rejected {
        /// The stanza's top element, without children or text.
        top: Element,
        /// Why it was skipped.
        reason: Rejection,
    },
    /// `</stream:stream>`.
    StreamClose,
}

/// Why a stanza was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// More than [`Limits::max_stanza_bytes`].
    TooLarge,
    /// Deeper than [`Limits::max_depth`].
    TooDeep,
    /// Its inner markup did not parse (a bad escape, an unbound prefix, a mismatched end
    /// tag, invalid UTF-8).
    Malformed,
}

/// A fatal framing error: the stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Markup XMPP forbids (RFC 6120 §11.1): a DTD, a comment, CDATA, a processing
    /// instruction, an entity reference other than the predefined ones.
    #[error("restricted XML: {0}")]
    Restricted(&'static str),
    /// Not well-formed at the stream level.
    #[error("not well-formed: {0}")]
    Malformed(String),
    /// A single tag larger than the bound.
    #[error("a tag larger than {limit} bytes")]
    TagTooLarge {
        /// The bound.
        limit: usize,
    },
}

struct Frame {
    raw_name: String,
    bindings: Vec<(Option<String>, String)>,
    element: Element,
}

/// The incremental framer.
pub struct Framer {
    limits: Limits,
    buf: Vec<u8>,
    /// Consumed bytes at the front of `buf`.
    pos: usize,
    /// How far past `pos` the scanner got in the current unit.
    scan: usize,
    /// Open quote character while scanning inside a tag.
    quote: Option<u8>,
    /// Whether anything other than leading whitespace was consumed.
    started: bool,
    /// The open elements: the stream element first (its frame keeps no children).
    stack: Vec<Frame>,
    /// Bytes of the current stanza so far.
    stanza_bytes: usize,
    /// Skipping the current stanza: its top element, why, and the depth below it.
    skipping: Option<(Element, Rejection, usize)>,
    closed: bool,
}

impl Framer {
    /// A framer with `limits`.
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            quote: None,
            started: false,
            stack: Vec::new(),
            stanza_bytes: 0,
            skipping: None,
            closed: false,
        }
    }

    /// Appends bytes from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos >= COMPACT_AT && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next item, `None` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<Item>, FrameError> {
        loop {
            let avail = &self.buf[self.pos..];
            let Some(&first) = avail.first() else {
                return Ok(None);
            };
            if self.closed {
                let ws = avail.iter().take_while(|b| is_space(**b)).count();
                self.pos += ws;
                if ws < avail.len() {
                    return Err(FrameError::Malformed(
                        "data after the end of the stream".into(),
                    ));
                }
                return Ok(None);
            }
            if first == b'<' {
                let Some(len) = self.frame_tag()? else {
                    return Ok(None);
                };
                let start = self.pos;
                self.pos += len;
                self.scan = 0;
                self.quote = None;
                let was_started = self.started;
                self.started = true;
                let unit = self.buf[start..start + len].to_vec();
                if self.stack.len() > 1 {
                    self.stanza_bytes = self.stanza_bytes.saturating_add(len);
                }
                if let Some(item) = self.tag(&unit, was_started)? {
                    return Ok(Some(item));
                }
            } else if self.stack.len() <= 1 {
                // Between stanzas only whitespace (keepalives) may appear; consumed at once.
                let ws = avail.iter().take_while(|b| is_space(**b)).count();
                let garbage = avail.get(ws).is_some_and(|b| *b != b'<');
                self.pos += ws;
                if garbage {
                    return Err(FrameError::Malformed("text outside a stanza".into()));
                }
            } else {
                // Text inside a stanza: up to the next '<'.
                let from = self.scan;
                let end = avail[from..].iter().position(|&b| b == b'<');
                let len = match end {
                    Some(i) => from + i,
                    None => avail.len(),
                };
                let over = self.stanza_bytes.saturating_add(len) > self.limits.max_stanza_bytes;
                if over && self.skipping.is_none() {
                    self.start_skipping(Rejection::TooLarge);
                }
                if self.skipping.is_some() {
                    // Consume what we have without keeping it.
                    self.pos += len;
                    self.scan = 0;
                    self.stanza_bytes = self.stanza_bytes.saturating_add(len);
                    continue;
                }
                let Some(_) = end else {
                    self.scan = len;
                    return Ok(None);
                };
                let start = self.pos;
                self.pos += len;
                self.scan = 0;
                self.stanza_bytes = self.stanza_bytes.saturating_add(len);
                let raw = self.buf[start..start + len].to_vec();
                if self.text(&raw).is_err() {
                    self.start_skipping(Rejection::Malformed);
                }
            }
        }
    }

    /// Finds the end of the tag at `pos`; `Some(length)` when complete.
    fn frame_tag(&mut self) -> Result<Option<usize>, FrameError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 2 {
            return Ok(None);
        }
        match avail[1] {
            b'!' => {
                if avail.len() < 3 {
                    return Ok(None);
                }
                return Err(FrameError::Restricted(match avail[2] {
                    b'-' => "a comment",
                    b'[' => "a CDATA section",
                    _ => "a document type declaration",
                }));
            }
            b'?' => {
                const DECL: &[u8] = b"<?xml";
                let n = avail.len().min(DECL.len());
                if self.started || avail[..n] != DECL[..n] {
                    return Err(FrameError::Restricted("a processing instruction"));
                }
                if avail.len() <= DECL.len() {
                    return Ok(None);
                }
                if !avail[DECL.len()].is_ascii_whitespace() {
                    return Err(FrameError::Restricted("a processing instruction"));
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
                (None, b'<') => return Err(FrameError::Malformed("'<' inside a tag".into())),
                (None, b'>') => {
                    if i + 1 > self.limits.max_tag_bytes {
                        return Err(FrameError::TagTooLarge {
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
            return Err(FrameError::TagTooLarge {
                limit: self.limits.max_tag_bytes,
            });
        }
        Ok(None)
    }

    fn start_skipping(&mut self, reason: Rejection) {
        if self.skipping.is_some() || self.stack.len() < 2 {
            return;
        }
        // Keep the stanza's top element (without children or text); drop the rest.
        let mut top = std::mem::take(&mut self.stack[1].element);
        top.children.clear();
        top.text.clear();
        let below = self.stack.len() - 2;
        self.stack.truncate(2);
        self.skipping = Some((top, reason, below));
    }

    fn text(&mut self, raw: &[u8]) -> Result<(), ()> {
        let s = std::str::from_utf8(raw).map_err(|_| ())?;
        let text = quick_xml::escape::unescape(s).map_err(|_| ())?;
        if let Some(top) = self.stack.last_mut() {
            top.element.text.push_str(&text);
        }
        Ok(())
    }

    fn tag(&mut self, unit: &[u8], was_started: bool) -> Result<Option<Item>, FrameError> {
        if self.skipping.is_some() {
            return self.skip_tag(unit);
        }
        let mut reader = quick_xml::Reader::from_reader(unit);
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                if self.stack.len() > 1 {
                    self.start_skipping(Rejection::Malformed);
                    return self.skip_tag(unit);
                }
                return Err(FrameError::Malformed(e.to_string()));
            }
        };
        match event {
            Event::Decl(decl) => {
                if was_started {
                    return Err(FrameError::Restricted("a processing instruction"));
                }
                let version = decl
                    .version()
                    .map_err(|e| FrameError::Malformed(e.to_string()))?;
                if version.as_ref() != b"1.0" {
                    return Err(FrameError::Malformed("XML version other than 1.0".into()));
                }
                Ok(None)
            }
            Event::Start(start) => self.open(&start, false, unit),
            Event::Empty(start) => self.open(&start, true, unit),
            Event::End(end) => {
                let raw = String::from_utf8_lossy(end.name().as_ref()).into_owned();
                self.close(&raw)
            }
            _ => {
                if self.stack.len() > 1 {
                    self.start_skipping(Rejection::Malformed);
                    return self.skip_tag(unit);
                }
                Err(FrameError::Malformed("unexpected markup".into()))
            }
        }
    }

    /// A tag of a skipped stanza: only the depth is followed.
    fn skip_tag(&mut self, unit: &[u8]) -> Result<Option<Item>, FrameError> {
        let Some((_, _, depth)) = self.skipping.as_mut() else {
            return Ok(None);
        };
        if unit.starts_with(b"</") {
            if *depth == 0 {
                // The end of the skipped stanza.
                self.stack.truncate(1);
                self.stanza_bytes = 0;
                let Some((top, reason, _)) = self.skipping.take() else {
                    return Ok(None);
                };
                return Ok(Some(Item::Rejected { top, reason }));
            }
            *depth -= 1;
        } else if !unit.ends_with(b"/>") {
            *depth = depth.saturating_add(1);
        }
        Ok(None)
    }

    fn open(
        &mut self,
        start: &BytesStart<'_>,
        empty: bool,
        unit: &[u8],
    ) -> Result<Option<Item>, FrameError> {
        let in_stanza = !self.stack.is_empty();
        if self.stack.len() == 1 {
            self.stanza_bytes = unit.len();
        }
        let parsed = self.parse_start(start);
        let element_and_bindings = match parsed {
            Ok(x) => x,
            Err(e) if self.stack.len() > 1 => {
                let _ = e;
                self.start_skipping(Rejection::Malformed);
                return self.skip_tag(unit);
            }
            Err(e) => return Err(e),
        };
        let (raw_name, element, bindings) = element_and_bindings;
        if !in_stanza {
            if empty {
                self.closed = true;
                return Ok(Some(Item::StreamOpen(element)));
            }
            self.stack.push(Frame {
                raw_name,
                bindings,
                element: Element::default(),
            });
            return Ok(Some(Item::StreamOpen(element)));
        }
        self.stack.push(Frame {
            raw_name: raw_name.clone(),
            bindings,
            element,
        });
        // Depth of this element inside its stanza (the stanza is 1).
        let depth = self.stack.len() - 1;
        if depth > self.limits.max_depth {
            self.start_skipping(Rejection::TooDeep);
            if empty {
                return self.skip_tag(b"</>");
            }
            return Ok(None);
        }
        if self.stanza_bytes > self.limits.max_stanza_bytes {
            self.start_skipping(Rejection::TooLarge);
            if empty {
                return self.skip_tag(b"</>");
            }
            return Ok(None);
        }
        if empty {
            return self.close(&raw_name);
        }
        Ok(None)
    }

    #[allow(clippy::type_complexity)]
    fn parse_start(
        &self,
        start: &BytesStart<'_>,
    ) -> Result<(String, Element, Vec<(Option<String>, String)>), FrameError> {
        let raw_name = std::str::from_utf8(start.name().as_ref())
            .map_err(|_| bad("element name is not UTF-8"))?
            .to_owned();
        let (prefix, local) = split_qname(&raw_name)?;
        let mut attrs: Vec<(String, String)> = Vec::new();
        let mut bindings = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| bad(&e.to_string()))?;
            let key = std::str::from_utf8(attr.key.as_ref())
                .map_err(|_| bad("attribute name is not UTF-8"))?
                .to_owned();
            let value = attr
                .unescape_value()
                .map_err(|e| match e {
                    quick_xml::Error::Escape(_) => {
                        FrameError::Restricted("an undefined entity reference")
                    }
                    other => bad(&other.to_string()),
                })?
                .into_owned();
            if key == "xmlns" {
                bindings.push((None, value.clone()));
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                if p.is_empty() || value.is_empty() {
                    return Err(bad("invalid namespace declaration"));
                }
                bindings.push((Some(p.to_owned()), value.clone()));
            }
            if attrs.iter().any(|(k, _)| *k == key) {
                return Err(bad("duplicate attribute"));
            }
            attrs.push((key, value));
        }
        let ns = self.resolve(prefix, &bindings)?;
        let element = Element {
            ns,
            name: local.to_owned(),
            attrs,
            children: Vec::new(),
            text: String::new(),
        };
        Ok((raw_name, element, bindings))
    }

    fn close(&mut self, raw: &str) -> Result<Option<Item>, FrameError> {
        let Some(top) = self.stack.last() else {
            return Err(bad("end tag without a start tag"));
        };
        if top.raw_name != raw {
            if self.stack.len() > 1 {
                // A mismatched end tag inside a stanza: the stanza is malformed; this end
                // tag is taken as closing the current element.
                self.start_skipping(Rejection::Malformed);
                return self.skip_tag(b"</>");
            }
            return Err(bad("mismatched end tag"));
        }
        let Some(top) = self.stack.pop() else {
            return Err(bad("end tag without a start tag"));
        };
        match self.stack.len() {
            0 => {
                self.closed = true;
                Ok(Some(Item::StreamClose))
            }
            1 => {
                self.stanza_bytes = 0;
                Ok(Some(Item::Stanza(top.element)))
            }
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
    ) -> Result<String, FrameError> {
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

fn split_qname(raw: &str) -> Result<(Option<&str>, &str), FrameError> {
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

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn bad(msg: &str) -> FrameError {
    FrameError::Malformed(msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='abc' from='c.example'>";

    fn items(limits: Limits, input: &[u8]) -> Result<Vec<Item>, FrameError> {
        let mut f = Framer::new(limits);
        f.push(input);
        let mut out = Vec::new();
        while let Some(i) = f.next_item()? {
            out.push(i);
        }
        Ok(out)
    }

    fn stanzas(input: &[u8]) -> Vec<Item> {
        let mut all = HEADER.to_vec();
        all.extend_from_slice(input);
        let mut got = items(Limits::default(), &all).unwrap();
        assert!(matches!(got.remove(0), Item::StreamOpen(_)));
        got
    }

    #[test]
    fn a_stanza_comes_out_whole_in_any_chunking() {
        let body =
            b"<message from='a@b/c' to='c.example'><body>x &amp; y</body></message> <iq id='1'/>";
        let mut all = HEADER.to_vec();
        all.extend_from_slice(body);
        let whole = items(Limits::default(), &all).unwrap();
        assert_eq!(whole.len(), 3);
        let Item::Stanza(m) = &whole[1] else {
            panic!("{whole:?}")
        };
        assert!(m.is("message", crate::ns::COMPONENT));
        assert_eq!(m.child("body", crate::ns::COMPONENT).unwrap().text, "x & y");
        for chunk in [1, 2, 3, 7] {
            let mut f = Framer::new(Limits::default());
            let mut got = Vec::new();
            for c in all.chunks(chunk) {
                f.push(c);
                while let Some(i) = f.next_item().unwrap() {
                    got.push(i);
                }
            }
            assert_eq!(got, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn an_oversized_stanza_is_skipped_and_the_next_one_read() {
        let limits = Limits {
            max_stanza_bytes: 200,
            ..Limits::default()
        };
        let mut all = HEADER.to_vec();
        all.extend_from_slice(b"<message from='a@b/c' id='big'><body>");
        all.extend(std::iter::repeat_n(b'x', 10_000));
        all.extend_from_slice(b"</body><x><y/></x></message><iq id='next'/>");
        let got = items(limits, &all).unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        let Item::Rejected { top, reason } = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(*reason, Rejection::TooLarge);
        assert_eq!(top.attr("id"), Some("big"));
        assert!(top.children.is_empty() && top.text.is_empty());
        let Item::Stanza(iq) = &got[2] else {
            panic!("{got:?}")
        };
        assert_eq!(iq.attr("id"), Some("next"));
    }

    #[test]
    fn a_deep_stanza_is_skipped() {
        let mut s = b"<message id='deep'>".to_vec();
        for _ in 0..100 {
            s.extend_from_slice(b"<a>");
        }
        for _ in 0..100 {
            s.extend_from_slice(b"</a>");
        }
        s.extend_from_slice(b"</message><presence/>");
        let got = stanzas(&s);
        assert!(matches!(
            &got[0],
            Item::Rejected {
                reason: Rejection::TooDeep,
                ..
            }
        ));
        assert!(matches!(&got[1], Item::Stanza(p) if p.name == "presence"));
    }

    #[test]
    fn malformed_inner_markup_rejects_the_stanza_only() {
        for bad in [
            &b"<iq id='1'><q:x/></iq>"[..],
            b"<iq id='1'><a></b></iq>",
            b"<iq id='1'><a>&lol;</a></iq>",
            b"<iq id='1'><a v='&lol;'/></iq>",
        ] {
            let mut s = bad.to_vec();
            s.extend_from_slice(b"<presence/>");
            let got = stanzas(&s);
            assert!(
                matches!(&got[0], Item::Rejected { reason: Rejection::Malformed, top } if top.attr("id") == Some("1")),
                "{bad:?}: {got:?}"
            );
            assert!(
                matches!(&got[1], Item::Stanza(p) if p.name == "presence"),
                "{got:?}"
            );
        }
    }

    #[test]
    fn restricted_markup_is_fatal() {
        for bad in [
            &b"<!DOCTYPE x [<!ENTITY a 'b'>]>"[..],
            b"<!-- c -->",
            b"<message><![CDATA[x]]></message>",
            b"<?php x?>",
        ] {
            let mut all = HEADER.to_vec();
            all.extend_from_slice(bad);
            assert!(
                matches!(
                    items(Limits::default(), &all),
                    Err(FrameError::Restricted(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serialisation_escapes_and_declares_namespaces() {
        let e = Element::new("message", crate::ns::COMPONENT)
            .with_attr("to", "a'b\"<")
            .with_child(Element::new("body", crate::ns::COMPONENT).with_text("1 < 2 & \u{1} ok"))
            .with_child(Element::new("x", "urn:x").with_child(Element::new("y", "urn:x")));
        assert_eq!(
            e.to_stanza(),
            "<message to='a&apos;b&quot;&lt;'><body>1 &lt; 2 &amp;  ok</body><x xmlns='urn:x'><y/></x></message>"
        );
        // And it parses back.
        let got = stanzas(e.to_stanza().as_bytes());
        let Item::Stanza(back) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(back.attr("to"), Some("a'b\"<"));
        assert_eq!(back.child("x", "urn:x").unwrap().children.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_stays_bounded(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..32)) {
            let limits = Limits { max_stanza_bytes: 512, max_depth: 4, max_tag_bytes: 256 };
            let mut f = Framer::new(limits);
            f.push(HEADER);
            'outer: for c in chunks {
                f.push(&c);
                loop {
                    match f.next_item() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
                proptest::prop_assert!(f.buffered() <= 256 + 64 + 512);
            }
        }

        #[test]
        fn never_panics_on_stanza_like_input(parts in proptest::collection::vec(proptest::sample::select(vec![
            "<message>", "</message>", "<a>", "</a>", "<b/>", "text", "&amp;", "&x;", "<iq id='1' to=\"c\">",
            "</iq>", "<q:x>", "<x xmlns:q='u'>", "</x>", " ", ">", "'", "<", "</stream:stream>",
        ]), 0..40)) {
            let mut f = Framer::new(Limits { max_stanza_bytes: 64, max_depth: 3, max_tag_bytes: 128 });
            f.push(HEADER);
            for p in parts {
                f.push(p.as_bytes());
                while let Ok(Some(_)) = f.next_item() {}
            }
        }
    }
}
