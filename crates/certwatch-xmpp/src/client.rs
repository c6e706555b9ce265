//! The client side: a sans-I/O state machine that opens a stream, reads the features, asks
//! for STARTTLS and stops at the exact byte where TLS begins.

use std::collections::VecDeque;

use crate::config::{Config, HeaderProfile, NS_STREAM_ERRORS, NS_STREAMS, NS_TLS};
use crate::error::{Error, Step, StreamError};
use crate::negotiation::{Features, Negotiation, StreamHeader, Timings};
use crate::xml::{Element, Item, XmlStream};

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write these bytes to the peer.
    Send(Vec<u8>),
    /// Begin the TLS handshake on the same transport now. No peer byte is buffered: the
    /// next byte on the wire belongs to TLS.
    StartTls,
    /// The negotiation is complete without TLS to start (after-TLS mode: the features were
    /// read; server side: the client was served features without STARTTLS).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    BeforeTls,
    AfterTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting(Step),
    Finished,
    Failed,
}

/// The client-side negotiator (sans-I/O).
///
/// Feed it the peer's bytes with [`handle_input`](Self::handle_input), tell it about the end
/// of the transport with [`handle_eof`](Self::handle_eof), and perform the actions that
/// [`poll_action`](Self::poll_action) returns. It never reads a clock and never blocks; time
/// limits are the caller's (the [`negotiate`](crate::negotiate) adapter applies them).
///
/// ```
/// use certwatch_xmpp::{Action, ClientNegotiator, Config};
///
/// let mut n = ClientNegotiator::new(Config::client("example.org"));
/// assert!(matches!(n.poll_action(), Some(Action::Send(_)))); // the stream header
/// n.handle_input(b"<stream:stream xmlns='jabber:client' \
///     xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.org' version='1.0'>\
///     <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>")?;
/// assert!(matches!(n.poll_action(), Some(Action::Send(_)))); // <starttls/>
/// n.handle_input(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
/// assert_eq!(n.poll_action(), Some(Action::StartTls));
/// assert_eq!(n.negotiation().header.as_ref().unwrap().id.as_deref(), Some("s1"));
/// # Ok::<(), certwatch_xmpp::Error>(())
/// ```
pub struct ClientNegotiator {
    config: Config,
    mode: Mode,
    xml: XmlStream,
    state: State,
    actions: VecDeque<Action>,
    negotiation: Negotiation,
}

impl std::fmt::Debug for ClientNegotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientNegotiator")
            .field("domain", &self.config.domain)
            .field("mode", &self.mode)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ClientNegotiator {
    /// A negotiator for the stream before TLS: it sends the header, reads the features,
    /// sends `<starttls/>` and ends with [`Action::StartTls`].
    pub fn new(config: Config) -> Self {
        Self::with_mode(config, Mode::BeforeTls)
    }

    /// A negotiator for the stream after TLS (after STARTTLS, or on a direct-TLS
    /// connection): it sends the header again, reads the features (SASL mechanisms,
    /// channel-binding types) and ends with [`Action::Done`].
    pub fn after_tls(config: Config) -> Self {
        Self::with_mode(config, Mode::AfterTls)
    }

    fn with_mode(config: Config, mode: Mode) -> Self {
        let header = config.header.render(&config.kind, &config.domain);
        let xml = XmlStream::new(config.limits.clone());
        ClientNegotiator {
            config,
            mode,
            xml,
            state: State::Waiting(Step::StreamHeader),
            actions: VecDeque::from([Action::Send(header)]),
            negotiation: Negotiation::default(),
        }
    }

    /// The next action to perform, if any. Call until `None` after every input.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The step the negotiation is waiting in, or `None` once it has ended.
    pub fn step(&self) -> Option<Step> {
        match self.state {
            State::Waiting(step) => Some(step),
            State::Finished | State::Failed => None,
        }
    }

    /// What the server has said so far (complete once [`Action::StartTls`] or
    /// [`Action::Done`] was returned; partial after an error).
    pub fn negotiation(&self) -> &Negotiation {
        &self.negotiation
    }

    /// The record, consuming the negotiator.
    pub fn into_negotiation(self) -> Negotiation {
        self.negotiation
    }

    /// Where an adapter writes the timings it measured.
    pub fn timings_mut(&mut self) -> &mut Timings {
        &mut self.negotiation.timings
    }

    /// Feeds bytes received from the peer, in any chunking.
    ///
    /// After an error, the negotiation is over: pending actions are dropped and further input
    /// returns [`Error::Finished`].
    /// Input after [`Action::StartTls`] is a STARTTLS injection.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let step = match self.state {
            State::Waiting(step) => step,
            State::Finished if self.negotiation.proceeded && !bytes.is_empty() => {
                self.state = State::Failed;
                return Err(Error::StartTlsInjection {
                    len: bytes.len(),
                    after: "<proceed/>",
                });
            }
            State::Finished if bytes.is_empty() => return Ok(()),
            State::Finished | State::Failed => return Err(Error::Finished),
        };
        let result = self.process(bytes, step);
        self.negotiation.bytes_received = self.xml.received();
        if result.is_err() {
            // Nothing more is said to a peer that misbehaved (not even a queued <starttls/>).
            self.state = State::Failed;
            self.actions.clear();
        }
        result
    }

    /// Tells the negotiator that the transport was closed by the peer.
    ///
    /// Returns `Ok(())` if the negotiation had already ended, otherwise the classified
    /// [`Error::ClosedEarly`].
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::Waiting(step) => {
                self.state = State::Failed;
                Err(Error::ClosedEarly { step })
            }
            State::Finished | State::Failed => Ok(()),
        }
    }

    fn process(&mut self, bytes: &[u8], mut step: Step) -> Result<(), Error> {
        self.xml.push(bytes)?;
        loop {
            let item = match self.xml.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(()),
                Err(Error::UnexpectedText { .. }) => return Err(Error::UnexpectedText { step }),
                Err(e) => return Err(e),
            };
            step = match (step, item) {
                (_, Item::StreamClose) => return Err(Error::StreamClosed { step }),
                (Step::StreamHeader, Item::StreamOpen(el)) => self.on_header(&el)?,
                (Step::Features, Item::Child(el)) => self.on_features(&el)?,
                (Step::Proceed, Item::Child(el)) => self.on_proceed(&el)?,
                (step, Item::Child(el) | Item::StreamOpen(el)) => {
                    return Err(Error::UnexpectedElement {
                        name: el.qname(),
                        step,
                    });
                }
            };
            if self.state == State::Finished {
                return Ok(());
            }
            self.state = State::Waiting(step);
        }
    }

    fn on_header(&mut self, el: &Element) -> Result<Step, Error> {
        if !el.is(NS_STREAMS, "stream") {
            return Err(Error::NotAStream { name: el.qname() });
        }
        let header = StreamHeader::from_element(el);
        let expected = self.config.kind.namespace();
        let namespace = header.namespace.clone();
        let version = header.version.clone();
        self.negotiation.header = Some(header);
        if namespace != expected {
            return Err(Error::WrongNamespace {
                expected,
                found: namespace,
            });
        }
        let major = version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        if major != Some(1) {
            return Err(Error::UnsupportedVersion { version });
        }
        Ok(Step::Features)
    }

    fn on_features(&mut self, el: &Element) -> Result<Step, Error> {
        if el.is(NS_STREAMS, "error") {
            return Err(stream_error(el));
        }
        if !el.is(NS_STREAMS, "features") {
            return Err(Error::UnexpectedElement {
                name: el.qname(),
                step: Step::Features,
            });
        }
        let features = Features::from_element(el, self.config.limits.max_items);
        let starttls = features.starttls;
        self.negotiation.features = Some(features);
        match self.mode {
            Mode::AfterTls => {
                self.state = State::Finished;
                self.actions.push_back(Action::Done);
                Ok(Step::Features)
            }
            Mode::BeforeTls if starttls => {
                self.actions
                    .push_back(Action::Send(starttls_command(self.config.header)));
                Ok(Step::Proceed)
            }
            Mode::BeforeTls => Err(Error::StartTlsNotOffered),
        }
    }

    fn on_proceed(&mut self, el: &Element) -> Result<Step, Error> {
        if el.is(NS_STREAMS, "error") {
            return Err(stream_error(el));
        }
        if el.is(NS_TLS, "failure") {
            return Err(Error::StartTlsFailure);
        }
        if !el.is(NS_TLS, "proceed") {
            return Err(Error::UnexpectedElement {
                name: el.qname(),
                step: Step::Proceed,
            });
        }
        self.negotiation.proceeded = true;
        let buffered = self.xml.buffered();
        if buffered > 0 {
            return Err(Error::StartTlsInjection {
                len: buffered,
                after: "<proceed/>",
            });
        }
        self.state = State::Finished;
        self.actions.push_back(Action::StartTls);
        Ok(Step::Proceed)
    }
}

/// The `<starttls/>` command in the style of the header profile.
fn starttls_command(profile: HeaderProfile) -> Vec<u8> {
    match profile {
        HeaderProfile::Conversations => format!("<starttls xmlns=\"{NS_TLS}\"/>").into_bytes(),
        HeaderProfile::Rfc6120 => format!("<starttls xmlns='{NS_TLS}'/>").into_bytes(),
    }
}

/// Classifies a `<stream:error/>`.
pub(crate) fn stream_error(el: &Element) -> Error {
    let mut condition = None;
    let mut text = None;
    for c in el.children.iter().filter(|c| c.ns == NS_STREAM_ERRORS) {
        if c.local == "text" {
            text.get_or_insert_with(|| c.text.clone());
        } else if condition.is_none() {
            condition = Some(c);
        }
    }
    match condition {
        Some(c) if c.local == "see-other-host" => Error::SeeOtherHost {
            host: c.text.trim().to_owned(),
            text,
        },
        other => Error::StreamError(StreamError {
            condition: other.map(|c| c.local.clone()).unwrap_or_default(),
            text,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='example.org' \
        version='1.0' xml:lang='en'>";
    const FEATURES: &[u8] = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
        <required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
        <mechanism>PLAIN</mechanism></mechanisms><register xmlns='http://jabber.org/features/iq-register'/>\
        </stream:features>";
    const PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

    fn drive(n: &mut ClientNegotiator, input: &[u8]) -> Result<Vec<Action>, Error> {
        n.handle_input(input)?;
        Ok(std::iter::from_fn(|| n.poll_action()).collect())
    }

    #[test]
    fn full_starttls_conversation() {
        let mut n = ClientNegotiator::new(Config::client("example.org"));
        let Some(Action::Send(h)) = n.poll_action() else {
            panic!()
        };
        assert!(h.starts_with(b"<?xml version='1.0'?><stream:stream "));
        assert_eq!(drive(&mut n, HEADER).unwrap(), []);
        assert_eq!(n.step(), Some(Step::Features));
        let a = drive(&mut n, FEATURES).unwrap();
        assert_eq!(
            a,
            [Action::Send(
                b"<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>".to_vec()
            )]
        );
        assert_eq!(drive(&mut n, PROCEED).unwrap(), [Action::StartTls]);
        let neg = n.negotiation();
        let header = neg.header.as_ref().unwrap();
        assert_eq!(header.id.as_deref(), Some("abc"));
        assert_eq!(header.from.as_deref(), Some("example.org"));
        assert_eq!(header.version.as_deref(), Some("1.0"));
        let f = neg.features.as_ref().unwrap();
        assert!(f.starttls && f.starttls_required);
        assert_eq!(f.sasl_mechanisms, ["PLAIN"]);
        assert!(f.has("http://jabber.org/features/iq-register", "register"));
        assert!(neg.proceeded);
        assert_eq!(
            neg.bytes_received,
            HEADER.len() + FEATURES.len() + PROCEED.len()
        );
    }

    #[test]
    fn bytes_after_proceed_are_injection_in_the_same_or_a_later_chunk() {
        let mut n = ClientNegotiator::new(Config::client("example.org"));
        drive(&mut n, HEADER).unwrap();
        drive(&mut n, FEATURES).unwrap();
        let mut chunk = PROCEED.to_vec();
        chunk.extend_from_slice(b"<iq/>");
        assert!(matches!(
            drive(&mut n, &chunk),
            Err(Error::StartTlsInjection { len: 5, .. })
        ));

        let mut n = ClientNegotiator::new(Config::client("example.org"));
        drive(&mut n, HEADER).unwrap();
        drive(&mut n, FEATURES).unwrap();
        assert_eq!(drive(&mut n, PROCEED).unwrap(), [Action::StartTls]);
        assert!(matches!(
            n.handle_input(b"\x16"),
            Err(Error::StartTlsInjection { len: 1, .. })
        ));
    }

    #[test]
    fn after_tls_mode_reads_features_and_is_done() {
        let mut n = ClientNegotiator::after_tls(Config::client("example.org"));
        assert!(matches!(n.poll_action(), Some(Action::Send(_))));
        let features = b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
            <mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>\
            <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/>\
            <channel-binding type='tls-server-end-point'/></sasl-channel-binding></stream:features>";
        drive(&mut n, HEADER).unwrap();
        assert_eq!(drive(&mut n, features).unwrap(), [Action::Done]);
        let f = n.negotiation().features.clone().unwrap();
        assert_eq!(
            f.channel_binding_types,
            ["tls-exporter", "tls-server-end-point"]
        );
        assert_eq!(
            f.channel_binding(),
            crate::negotiation::ChannelBinding::Advertised
        );
    }

    #[test]
    fn nothing_is_sent_after_an_error_in_the_same_read() {
        let mut n = ClientNegotiator::new(Config::client("example.org"));
        n.poll_action();
        let mut input = HEADER.to_vec();
        input.extend_from_slice(FEATURES);
        input.extend_from_slice(b"<!-- -->");
        assert!(matches!(
            n.handle_input(&input),
            Err(Error::ForbiddenMarkup(_))
        ));
        assert_eq!(n.poll_action(), None);
    }

    #[test]
    fn eof_is_classified_by_step() {
        let mut n = ClientNegotiator::new(Config::client("example.org"));
        drive(&mut n, HEADER).unwrap();
        assert!(matches!(
            n.handle_eof(),
            Err(Error::ClosedEarly {
                step: Step::Features
            })
        ));
        assert!(matches!(n.handle_input(b" "), Err(Error::Finished)));
    }

    #[test]
    fn stream_errors_carry_condition_and_text() {
        let mut n = ClientNegotiator::new(Config::client("example.org"));
        drive(&mut n, HEADER).unwrap();
        let err = drive(
            &mut n,
            b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
              <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></stream:error>",
        )
        .unwrap_err();
        let Error::StreamError(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.condition, "host-unknown");
        assert_eq!(e.text.as_deref(), Some("no such host"));
    }
}
