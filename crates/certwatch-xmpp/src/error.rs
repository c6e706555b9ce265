//! The classified outcomes of a negotiation that did not reach the TLS handshake.

use std::fmt;

use crate::negotiation::Negotiation;

/// The protocol step a negotiation was in when something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Waiting for the peer's stream header.
    StreamHeader,
    /// Waiting for `<stream:features/>`.
    Features,
    /// Waiting for `<proceed/>` (client side).
    Proceed,
    /// Waiting for `<starttls/>` (server side).
    StartTls,
    /// Waiting for the client to close the stream (server side, STARTTLS not offered).
    Close,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::StreamHeader => "stream header",
            Step::Features => "stream features",
            Step::Proceed => "STARTTLS proceed",
            Step::StartTls => "STARTTLS request",
            Step::Close => "stream close",
        })
    }
}

/// A kind of XML markup that an XMPP stream must not contain (RFC 6120 §11.1).
///
/// These are rejected outright, so no entity-expansion ("billion laughs") or external-entity
/// attack can work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Markup {
    /// `<!DOCTYPE ...>`, `<!ENTITY ...>` or any other `<!...>` declaration.
    Declaration,
    /// `<!-- ... -->`.
    Comment,
    /// `<![CDATA[ ... ]]>` (legal XML, but no pre-TLS XMPP element needs it).
    CData,
    /// `<?target ...?>` other than the optional leading XML declaration.
    ProcessingInstruction,
    /// A reference to an entity that is not one of the five predefined ones (`&xxe;`).
    EntityReference,
}

impl fmt::Display for Markup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Markup::Declaration => "a DTD or entity declaration",
            Markup::Comment => "a comment",
            Markup::CData => "a CDATA section",
            Markup::ProcessingInstruction => "a processing instruction",
            Markup::EntityReference => "an undefined entity reference",
        })
    }
}

/// A stream error sent by the peer (RFC 6120 §4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamError {
    /// The defined condition, for example `host-unknown` (empty if the peer sent none).
    pub condition: String,
    /// The human-readable `<text/>`, if any (bounded by the text limit).
    pub text: Option<String>,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.condition.is_empty() {
            f.write_str("(no condition)")?;
        } else {
            f.write_str(&self.condition)?;
        }
        if let Some(text) = &self.text {
            write!(f, " ({text:?})")?;
        }
        Ok(())
    }
}

/// Why a negotiation ended before the TLS handshake.
///
/// Every server behaviour that prevents STARTTLS has its own variant, so that a caller can
/// classify it (for certwatch, all of them are `protocol-error`, except the time-outs and
/// transport failures, which are `indeterminate`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (adapter only).
    #[error("transport error during the {step}: {source}")]
    Io {
        /// The step in progress.
        step: Step,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The peer sent nothing for longer than the per-step timeout (adapter only).
    #[error("no progress from the peer for {secs} s during the {step}", secs = .after.as_secs_f64())]
    Timeout {
        /// The step in progress.
        step: Step,
        /// The per-step timeout that expired.
        after: std::time::Duration,
    },
    /// The total negotiation deadline expired (adapter only), for example against a server that
    /// drips one byte a second.
    #[error("the negotiation deadline of {secs} s expired during the {step}", secs = .after.as_secs_f64())]
    Deadline {
        /// The step in progress.
        step: Step,
        /// The total deadline.
        after: std::time::Duration,
    },
    /// The transport was closed before the negotiation was complete.
    #[error("the peer closed the connection during the {step}")]
    ClosedEarly {
        /// The step in progress.
        step: Step,
    },
    /// The peer closed the XML stream (`</stream:stream>`).
    #[error("the peer closed the XML stream during the {step}")]
    StreamClosed {
        /// The step in progress.
        step: Step,
    },
    /// More bytes than allowed before TLS (an endless stream).
    #[error("the peer sent more than {limit} bytes before TLS")]
    TooManyBytes {
        /// The limit in bytes.
        limit: usize,
    },
    /// Elements nested deeper than allowed.
    #[error("XML nested deeper than {limit} elements")]
    TooDeep {
        /// The depth limit.
        limit: usize,
    },
    /// One tag (with its attributes) is larger than allowed, for example a huge attribute.
    #[error("an XML tag is larger than {limit} bytes")]
    TagTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// One text node is larger than allowed.
    #[error("an XML text node is larger than {limit} bytes")]
    TextTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The peer sent markup that XMPP forbids.
    #[error("the peer sent forbidden XML markup: {0}")]
    ForbiddenMarkup(Markup),
    /// The peer's first bytes are not XML (for example an HTTP or SSH banner).
    #[error("the peer does not speak XML: starts with {preview:?}")]
    NotXml {
        /// The first bytes (at most 32), lossily decoded.
        preview: String,
    },
    /// The peer started a TLS handshake where XML was expected (a direct-TLS port probed with
    /// STARTTLS, or a peer that starts TLS on its own).
    #[error("the peer sent a TLS record where XML was expected")]
    UnexpectedTls,
    /// The bytes are not well-formed XML.
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    /// The first element is not `<stream:stream>` in the streams namespace.
    #[error("expected a stream header, got <{name}>")]
    NotAStream {
        /// The element's `{namespace}local` name.
        name: String,
    },
    /// The stream's content namespace is not the expected one (`jabber:client` or
    /// `jabber:server`).
    #[error("wrong stream namespace: expected {expected}, got {found:?}")]
    WrongNamespace {
        /// The expected namespace.
        expected: &'static str,
        /// The namespace the peer declared (empty if none).
        found: String,
    },
    /// The peer's stream header has no `version` or a major version other than 1.
    #[error("unsupported stream version {version:?} (STARTTLS needs version 1.0)")]
    UnsupportedVersion {
        /// The `version` attribute, if any.
        version: Option<String>,
    },
    /// The peer sent a stream error.
    #[error("stream error from the peer: {0}")]
    StreamError(StreamError),
    /// The peer sent a `see-other-host` stream error. It is reported, never followed: the other
    /// host has no DNSSEC pedigree.
    #[error("the peer redirects to {host:?} (see-other-host, not followed)")]
    SeeOtherHost {
        /// The host (and optional port) the peer redirects to.
        host: String,
        /// The human-readable `<text/>`, if any.
        text: Option<String>,
    },
    /// The server's features do not offer STARTTLS.
    #[error("the server does not offer STARTTLS")]
    StartTlsNotOffered,
    /// The server answered `<starttls/>` with `<failure/>`.
    #[error("the server answered STARTTLS with <failure/>")]
    StartTlsFailure,
    /// Bytes followed `<proceed/>` (client side) or `<starttls/>` (server side) before TLS:
    /// a STARTTLS command-injection attempt (the CVE-2011-0411 class). They are never dropped
    /// and never passed to TLS.
    #[error("{len} bytes after the STARTTLS {after}: STARTTLS injection")]
    StartTlsInjection {
        /// The number of bytes that were buffered.
        len: usize,
        /// `"<proceed/>"` or `"<starttls/>"`.
        after: &'static str,
    },
    /// An element that has no place at this step (for example a stanza before the features,
    /// or `<proceed/>` in the wrong namespace).
    #[error("unexpected <{name}> during the {step}")]
    UnexpectedElement {
        /// The element's `{namespace}local` name.
        name: String,
        /// The step in progress.
        step: Step,
    },
    /// Non-whitespace text directly inside the stream.
    #[error("unexpected text inside the stream during the {step}")]
    UnexpectedText {
        /// The step in progress.
        step: Step,
    },
    /// Server side: the client's `to` names a domain this acceptor does not serve. The
    /// acceptor has queued a `host-unknown` stream error.
    #[error("the client asked for an unknown host {to:?}")]
    HostUnknown {
        /// The client's `to` attribute (empty if none).
        to: String,
    },
    /// Input arrived after the negotiation had already finished or failed.
    #[error("input after the negotiation had finished")]
    Finished,
}

impl Error {
    /// Whether this outcome is inconclusive at the transport level (time-out, deadline, I/O
    /// failure, connection closed mid-way) rather than something the peer clearly said.
    ///
    /// Over Tor, circuits fail and close mid-negotiation often enough that these should be
    /// retried, not reported as a protocol error.
    pub fn is_inconclusive(&self) -> bool {
        matches!(
            self,
            Error::Io { .. }
                | Error::Timeout { .. }
                | Error::Deadline { .. }
                | Error::ClosedEarly { .. }
        )
    }
}

/// A client negotiation that failed, with what the server had said until then (for
/// example the features of a server that does not offer STARTTLS, or the stream id before a
/// stream error).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct Failure {
    /// The classified outcome.
    pub error: Error,
    /// The partial record.
    pub partial: Box<Negotiation>,
}
