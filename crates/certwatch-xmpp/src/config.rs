//! What the client side sends and how much it accepts: [`Config`], [`StreamKind`],
//! [`Limits`] and the stream-header [`HeaderProfile`].

use std::borrow::Cow;

/// The streams namespace (`xmlns:stream`).
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// The client-to-server content namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// The server-to-server content namespace.
pub const NS_SERVER: &str = "jabber:server";
/// The server dialback namespace that server streams declare.
pub const NS_DIALBACK: &str = "jabber:server:dialback";
/// The STARTTLS namespace.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// The SASL namespace.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// The stream-error condition namespace.
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// The XEP-0440 SASL channel-binding type capability namespace.
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";

/// Which kind of XMPP stream to open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamKind {
    /// A client-to-server stream (`jabber:client`), as on port 5222.
    Client,
    /// A server-to-server stream (`jabber:server`), as on port 5269, with an optional `from`
    /// (the originating server's domain).
    Server {
        /// The `from` attribute of the stream header, if any.
        from: Option<String>,
    },
}

impl StreamKind {
    /// The content namespace of this kind of stream.
    pub fn namespace(&self) -> &'static str {
        match self {
            StreamKind::Client => NS_CLIENT,
            StreamKind::Server { .. } => NS_SERVER,
        }
    }
}

/// Bounds on what the peer may send before TLS. Every bound ends the negotiation with its own
/// [`Error`](crate::Error) variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Total bytes accepted from the peer before TLS (default 64 KiB).
    pub max_bytes: usize,
    /// Maximum element depth, counting `<stream:stream>` as 1 (default 16).
    pub max_depth: usize,
    /// Maximum size of one tag, attributes included (default 8 KiB).
    pub max_tag_bytes: usize,
    /// Maximum size of one text node (default 4 KiB).
    pub max_text_bytes: usize,
    /// Maximum number of feature children, SASL mechanisms and channel-binding types
    /// recorded each (default 64); the rest are counted but not kept.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024,
            max_depth: 16,
            max_tag_bytes: 8 * 1024,
            max_text_bytes: 4 * 1024,
            max_items: 64,
        }
    }
}

/// The exact bytes of the stream header, so that a probe looks like a common client.
///
/// A server (or an interceptor) can tell implementations apart by the attribute order, the
/// quote character and the XML declaration of the stream header. The default profile copies a
/// widely used client, so that certwatch's probes cannot be singled out by their header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeaderProfile {
    /// The header of **Conversations** (the Android client, `eu.siacs.conversations`), as
    /// written by its `TagWriter`/`Tag` classes: the declaration `<?xml version='1.0'?>`,
    /// then the attributes in the iteration order of the `java.util.Hashtable` they are
    /// stored in, double-quoted:
    ///
    /// ```text
    /// <?xml version='1.0'?><stream:stream version="1.0" xml:lang="en" xmlns:stream="http://etherx.jabber.org/streams" xmlns="jabber:client" to="example.org">
    /// ```
    ///
    /// Provenance, honestly: the order was derived offline from Conversations' source as
    /// found in public forks (`XmppConnection.sendStartStream()` sets `to`, `version`,
    /// `xml:lang`, `xmlns`, `xmlns:stream` on a `Tag` whose attributes live in a
    /// `java.util.Hashtable` of default capacity 11; its iteration order follows from
    /// `String.hashCode`), not from a packet capture of a current release. Some versions take
    /// `xml:lang` from `LocalizedContent.STREAM_LANGUAGE` rather than the literal `en`, and a
    /// later change of the map type would change the order: re-check against a capture when
    /// one is available. Prosody 0.12 and ejabberd 23.01 accept this header. For a server stream
    /// (which Conversations never opens), the namespace becomes `jabber:server`, `from` is
    /// added before `to`, and `xmlns:db` is declared, in the same style.
    #[default]
    Conversations,
    /// The attribute order of the RFC 6120 examples, single-quoted:
    ///
    /// ```text
    /// <?xml version='1.0'?><stream:stream from='a.example' to='example.org' version='1.0' xml:lang='en' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>
    /// ```
    ///
    /// (`from` only when set, `xmlns:db` only on server streams.)
    Rfc6120,
}

impl HeaderProfile {
    /// The stream header for `kind` to the service domain `to`, as bytes to send.
    ///
    /// Attribute values are XML-escaped, and a trailing root dot (`example.org.`) is dropped
    /// from `to`, as servers know their domains without it.
    pub fn render(&self, kind: &StreamKind, to: &str) -> Vec<u8> {
        let ns = kind.namespace();
        let to = escape(to.strip_suffix('.').unwrap_or(to));
        let from = match kind {
            StreamKind::Server { from: Some(f) } => Some(escape(f)),
            _ => None,
        };
        let server = matches!(kind, StreamKind::Server { .. });
        let mut out = String::with_capacity(200);
        out.push_str("<?xml version='1.0'?><stream:stream");
        match self {
            HeaderProfile::Conversations => {
                out.push_str(" version=\"1.0\" xml:lang=\"en\"");
                out.push_str(" xmlns:stream=\"");
                out.push_str(NS_STREAMS);
                out.push_str("\" xmlns=\"");
                out.push_str(ns);
                out.push('"');
                if server {
                    out.push_str(" xmlns:db=\"");
                    out.push_str(NS_DIALBACK);
                    out.push('"');
                }
                if let Some(from) = &from {
                    out.push_str(" from=\"");
                    out.push_str(from);
                    out.push('"');
                }
                out.push_str(" to=\"");
                out.push_str(&to);
                out.push_str("\">");
            }
            HeaderProfile::Rfc6120 => {
                if let Some(from) = &from {
                    out.push_str(" from='");
                    out.push_str(from);
                    out.push('\'');
                }
                out.push_str(" to='");
                out.push_str(&to);
                out.push_str("' version='1.0' xml:lang='en' xmlns='");
                out.push_str(ns);
                out.push_str("' xmlns:stream='");
                out.push_str(NS_STREAMS);
                out.push('\'');
                if server {
                    out.push_str(" xmlns:db='");
                    out.push_str(NS_DIALBACK);
                    out.push('\'');
                }
                out.push('>');
            }
        }
        out.into_bytes()
    }
}

pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Client-side configuration of a negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The service domain: the stream `to` (and the TLS SNI). Never the SRV target.
    pub domain: String,
    /// Client or server stream.
    pub kind: StreamKind,
    /// How the stream header looks.
    pub header: HeaderProfile,
    /// Bounds on what the peer may send.
    pub limits: Limits,
}

impl Config {
    /// A client-to-server (`jabber:client`) configuration for the service domain `domain`.
    pub fn client(domain: impl Into<String>) -> Self {
        Config {
            domain: domain.into(),
            kind: StreamKind::Client,
            header: HeaderProfile::default(),
            limits: Limits::default(),
        }
    }

    /// A server-to-server (`jabber:server`) configuration for the service domain `domain`,
    /// with an optional originating domain `from`.
    pub fn server(domain: impl Into<String>, from: Option<String>) -> Self {
        Config {
            domain: domain.into(),
            kind: StreamKind::Server { from },
            header: HeaderProfile::default(),
            limits: Limits::default(),
        }
    }

    /// The same configuration with another header profile.
    pub fn with_header(mut self, header: HeaderProfile) -> Self {
        self.header = header;
        self
    }

    /// The same configuration with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_client_header_is_byte_exact() {
        let h = HeaderProfile::Conversations.render(&StreamKind::Client, "example.org");
        assert_eq!(
            std::str::from_utf8(&h).unwrap(),
            "<?xml version='1.0'?><stream:stream version=\"1.0\" xml:lang=\"en\" \
             xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:client\" \
             to=\"example.org\">"
        );
    }

    #[test]
    fn rfc_server_header_has_from_and_dialback() {
        let kind = StreamKind::Server {
            from: Some("a.example".into()),
        };
        let h = HeaderProfile::Rfc6120.render(&kind, "b.example");
        assert_eq!(
            std::str::from_utf8(&h).unwrap(),
            "<?xml version='1.0'?><stream:stream from='a.example' to='b.example' version='1.0' \
             xml:lang='en' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
             xmlns:db='jabber:server:dialback'>"
        );
    }

    #[test]
    fn the_root_dot_is_not_sent() {
        let h = HeaderProfile::Rfc6120.render(&StreamKind::Client, "example.org.");
        assert!(String::from_utf8(h).unwrap().contains("to='example.org'"));
    }

    #[test]
    fn attribute_values_are_escaped() {
        let h = HeaderProfile::Rfc6120.render(&StreamKind::Client, "a'><x");
        let s = String::from_utf8(h).unwrap();
        assert!(s.contains("to='a&apos;&gt;&lt;x'"), "{s}");
    }
}
