//! The server side: a minimal STARTTLS acceptor for tests, examples and fixtures.
//!
//! It answers one client: reads its stream header, sends a header and features, and on
//! `<starttls/>` answers `<proceed/>` and stops at the byte where TLS begins. Bytes that
//! follow `<starttls/>` before TLS are a STARTTLS injection, exactly as on the client side.

use std::collections::VecDeque;

use crate::client::Action;
use crate::config::{
    Limits, NS_DIALBACK, NS_SASL, NS_SASL_CB, NS_STREAMS, NS_TLS, StreamKind, escape,
};
use crate::error::{Error, Step};
use crate::negotiation::StreamHeader;
use crate::xml::{Item, XmlStream};

/// What the acceptor offers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Client or server streams (the `from` of [`StreamKind::Server`] is ignored).
    pub kind: StreamKind,
    /// The domains served. A client `to` outside this list gets a `host-unknown` stream
    /// error. The first one is used when the client sends no `to`.
    pub domains: Vec<String>,
    /// Offer `<starttls/>`.
    pub offer_starttls: bool,
    /// Mark STARTTLS `<required/>`.
    pub require_tls: bool,
    /// SASL mechanisms to offer (on a pre-TLS stream, offering them is bad practice; tests use
    /// it to model careless servers).
    pub sasl_mechanisms: Vec<String>,
    /// XEP-0440 channel-binding types to offer.
    pub channel_binding_types: Vec<String>,
    /// The stream id to send.
    pub stream_id: String,
    /// Bounds on what the client may send.
    pub limits: Limits,
}

impl ServerConfig {
    /// An acceptor of `kind` streams for `domain` that offers and requires STARTTLS.
    pub fn new(kind: StreamKind, domain: impl Into<String>) -> Self {
        ServerConfig {
            kind,
            domains: vec![domain.into()],
            offer_starttls: true,
            require_tls: true,
            sasl_mechanisms: Vec::new(),
            channel_binding_types: Vec::new(),
            stream_id: "certwatch-fixture".into(),
            limits: Limits::default(),
        }
    }

    /// The header and features this acceptor sends to a client that asked for `to`.
    fn response(&self, to: &str) -> Vec<u8> {
        let mut out = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream='{NS_STREAMS}'",
            ns = self.kind.namespace()
        );
        if matches!(self.kind, StreamKind::Server { .. }) {
            out.push_str(&format!(" xmlns:db='{NS_DIALBACK}'"));
        }
        out.push_str(&format!(
            " id='{id}' from='{from}' version='1.0' xml:lang='en'><stream:features>",
            id = escape(&self.stream_id),
            from = escape(to)
        ));
        if self.offer_starttls {
            out.push_str(&format!("<starttls xmlns='{NS_TLS}'>"));
            if self.require_tls {
                out.push_str("<required/>");
            }
            out.push_str("</starttls>");
        }
        if !self.sasl_mechanisms.is_empty() {
            out.push_str(&format!("<mechanisms xmlns='{NS_SASL}'>"));
            for m in &self.sasl_mechanisms {
                out.push_str(&format!("<mechanism>{}</mechanism>", escape(m)));
            }
            out.push_str("</mechanisms>");
        }
        if !self.channel_binding_types.is_empty() {
            out.push_str(&format!("<sasl-channel-binding xmlns='{NS_SASL_CB}'>"));
            for t in &self.channel_binding_types {
                out.push_str(&format!("<channel-binding type='{}'/>", escape(t)));
            }
            out.push_str("</sasl-channel-binding>");
        }
        out.push_str("</stream:features>");
        out.into_bytes()
    }
}

/// What the client said to the acceptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerNegotiation {
    /// The client's stream header, once received.
    pub header: Option<StreamHeader>,
    /// The client sent `<starttls/>` and was answered `<proceed/>`.
    pub starttls: bool,
    /// Bytes received from the client.
    pub bytes_received: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting(Step),
    Finished,
    Failed,
}

/// The server-side acceptor (sans-I/O), the mirror of
/// [`ClientNegotiator`](crate::ClientNegotiator).
///
/// It ends with [`Action::StartTls`] after sending `<proceed/>`, or with [`Action::Done`]
/// right after sending features without STARTTLS.
pub struct ServerNegotiator {
    config: ServerConfig,
    xml: XmlStream,
    state: State,
    actions: VecDeque<Action>,
    negotiation: ServerNegotiation,
}

impl std::fmt::Debug for ServerNegotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerNegotiator")
            .field("domains", &self.config.domains)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ServerNegotiator {
    /// An acceptor waiting for the client's stream header.
    pub fn new(config: ServerConfig) -> Self {
        let xml = XmlStream::new(config.limits.clone());
        ServerNegotiator {
            config,
            xml,
            state: State::Waiting(Step::StreamHeader),
            actions: VecDeque::new(),
            negotiation: ServerNegotiation::default(),
        }
    }

    /// The next action to perform, if any. After an error, it may still hold a stream error
    /// to send to the client.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The step the acceptor is waiting in, or `None` once it has ended.
    pub fn step(&self) -> Option<Step> {
        match self.state {
            State::Waiting(step) => Some(step),
            State::Finished | State::Failed => None,
        }
    }

    /// What the client has said so far.
    pub fn negotiation(&self) -> &ServerNegotiation {
        &self.negotiation
    }

    /// The record, consuming the acceptor.
    pub fn into_negotiation(self) -> ServerNegotiation {
        self.negotiation
    }

    /// Feeds bytes received from the client, in any chunking.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let step = match self.state {
            State::Waiting(step) => step,
            State::Finished if self.negotiation.starttls && !bytes.is_empty() => {
                self.state = State::Failed;
                return Err(Error::StartTlsInjection {
                    len: bytes.len(),
                    after: "<starttls/>",
                });
            }
            State::Finished if bytes.is_empty() => return Ok(()),
            State::Finished | State::Failed => return Err(Error::Finished),
        };
        let result = self.process(bytes, step);
        self.negotiation.bytes_received = self.xml.received();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Tells the acceptor that the client closed the transport.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::Waiting(step) => {
                self.state = State::Failed;
                Err(Error::ClosedEarly { step })
            }
            State::Finished | State::Failed => Ok(()),
        }
    }

    fn process(&mut self, bytes: &[u8], step: Step) -> Result<(), Error> {
        self.xml.push(bytes)?;
        let item = match self.xml.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => return Ok(()),
            Err(Error::UnexpectedText { .. }) => return Err(Error::UnexpectedText { step }),
            Err(e) => return Err(e),
        };
        match (step, item) {
            (_, Item::StreamClose) => Err(Error::StreamClosed { step }),
            (Step::StreamHeader, Item::StreamOpen(el)) => {
                if !el.is(NS_STREAMS, "stream") {
                    return Err(Error::NotAStream { name: el.qname() });
                }
                let header = StreamHeader::from_element(&el);
                let to = header.to.clone().unwrap_or_default();
                let ns = header.namespace.clone();
                self.negotiation.header = Some(header);
                let expected = self.config.kind.namespace();
                if ns != expected {
                    self.send_stream_error(&to, "invalid-namespace");
                    return Err(Error::WrongNamespace {
                        expected,
                        found: ns,
                    });
                }
                let served = if to.is_empty() {
                    self.config.domains.first().cloned()
                } else {
                    self.config
                        .domains
                        .iter()
                        .find(|d| d.eq_ignore_ascii_case(&to))
                        .cloned()
                };
                let Some(domain) = served else {
                    self.send_stream_error(&to, "host-unknown");
                    return Err(Error::HostUnknown { to });
                };
                self.actions
                    .push_back(Action::Send(self.config.response(&domain)));
                if !self.config.offer_starttls {
                    self.state = State::Finished;
                    self.actions.push_back(Action::Done);
                    return Ok(());
                }
                self.state = State::Waiting(Step::StartTls);
                self.process(&[], Step::StartTls)
            }
            (Step::StartTls, Item::Child(el)) if el.is(NS_TLS, "starttls") => {
                let buffered = self.xml.buffered();
                if buffered > 0 {
                    return Err(Error::StartTlsInjection {
                        len: buffered,
                        after: "<starttls/>",
                    });
                }
                self.negotiation.starttls = true;
                self.state = State::Finished;
                self.actions.push_back(Action::Send(
                    format!("<proceed xmlns='{NS_TLS}'/>").into_bytes(),
                ));
                self.actions.push_back(Action::StartTls);
                Ok(())
            }
            (step, Item::Child(el) | Item::StreamOpen(el)) => Err(Error::UnexpectedElement {
                name: el.qname(),
                step,
            }),
        }
    }

    fn send_stream_error(&mut self, to: &str, condition: &str) {
        let from = if to.is_empty() {
            self.config
                .domains
                .first()
                .map(String::as_str)
                .unwrap_or("")
        } else {
            to
        };
        let bytes = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream='{NS_STREAMS}' \
             id='{id}' from='{from}' version='1.0'><stream:error><{condition} \
             xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
            ns = self.config.kind.namespace(),
            id = escape(&self.config.stream_id),
            from = escape(from),
        );
        self.actions.push_back(Action::Send(bytes.into_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientNegotiator, Config};

    /// Runs a client and an acceptor against each other in memory, one byte at a time.
    fn pump(client: &mut ClientNegotiator, server: &mut ServerNegotiator) -> (bool, bool) {
        let (mut c_done, mut s_done) = (false, false);
        for _ in 0..100 {
            while let Some(a) = client.poll_action() {
                match a {
                    Action::Send(b) => {
                        for byte in b {
                            server.handle_input(&[byte]).unwrap();
                        }
                    }
                    _ => c_done = true,
                }
            }
            while let Some(a) = server.poll_action() {
                match a {
                    Action::Send(b) => {
                        for byte in b {
                            client.handle_input(&[byte]).unwrap();
                        }
                    }
                    _ => s_done = true,
                }
            }
            if c_done && s_done {
                break;
            }
        }
        (c_done, s_done)
    }

    #[test]
    fn client_and_acceptor_agree_byte_by_byte() {
        let mut client = ClientNegotiator::new(Config::client("example.org"));
        let mut config = ServerConfig::new(StreamKind::Client, "example.org");
        config.sasl_mechanisms = vec!["PLAIN".into()];
        let mut server = ServerNegotiator::new(config);
        assert_eq!(pump(&mut client, &mut server), (true, true));
        assert!(server.negotiation().starttls);
        assert_eq!(
            server.negotiation().header.as_ref().unwrap().to.as_deref(),
            Some("example.org")
        );
        let neg = client.negotiation();
        assert_eq!(
            neg.header.as_ref().unwrap().id.as_deref(),
            Some("certwatch-fixture")
        );
        let f = neg.features.as_ref().unwrap();
        assert!(f.starttls_required);
        assert_eq!(f.sasl_mechanisms, ["PLAIN"]);
    }

    #[test]
    fn server_streams_work_too() {
        let mut client =
            ClientNegotiator::new(Config::server("b.example", Some("a.example".into())));
        let mut server = ServerNegotiator::new(ServerConfig::new(
            StreamKind::Server { from: None },
            "b.example",
        ));
        assert_eq!(pump(&mut client, &mut server), (true, true));
        assert_eq!(
            server
                .negotiation()
                .header
                .as_ref()
                .unwrap()
                .from
                .as_deref(),
            Some("a.example")
        );
    }

    #[test]
    fn unknown_host_gets_a_stream_error() {
        let mut server =
            ServerNegotiator::new(ServerConfig::new(StreamKind::Client, "example.org"));
        let err = server
            .handle_input(
                b"<stream:stream xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' to='other.example' version='1.0'>",
            )
            .unwrap_err();
        assert!(matches!(err, Error::HostUnknown { ref to } if to == "other.example"));
        let Some(Action::Send(b)) = server.poll_action() else {
            panic!()
        };
        let mut client = ClientNegotiator::new(Config::client("other.example"));
        let err = client.handle_input(&b).unwrap_err();
        assert!(
            matches!(err, Error::StreamError(ref e) if e.condition == "host-unknown"),
            "{err:?}"
        );
    }

    #[test]
    fn bytes_after_starttls_are_injection() {
        let mut server =
            ServerNegotiator::new(ServerConfig::new(StreamKind::Client, "example.org"));
        server
            .handle_input(
                b"<stream:stream xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>",
            )
            .unwrap();
        let err = server
            .handle_input(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth/>")
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::StartTlsInjection {
                    len: 7,
                    after: "<starttls/>"
                }
            ),
            "{err:?}"
        );
    }
}
