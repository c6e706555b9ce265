//! Any chunking of a conversation gives the same result as reading it in one piece.

use certwatch_xmpp::{
    Action, Config, Error, Failure, Negotiation, ServerConfig, ServerNegotiator, StreamKind, replay,
};
use proptest::prelude::*;

/// Prosody-style: XML declaration, default namespace, keepalives, SASL after TLS only.
const PROSODY: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns:db='jabber:server:dialback' \
    xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' \
    id='0d3a8f5c-1c57-4c1e-9a0b-6f1b1c2d3e4f' from='match.test' version='1.0' \
    xmlns='jabber:client'>\n <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls><register xmlns='http://jabber.org/features/iq-register'/>\
    </stream:features> \n<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// Explicit prefixes everywhere, double quotes, escaped attribute, no declaration.
const PREFIXED: &[u8] = b"<stream:stream xmlns=\"jabber:client\" \
    xmlns:stream=\"http://etherx.jabber.org/streams\" id=\"a&amp;b&#x43;\" version=\"1.0\" \
    from=\"match.test\"><stream:features><tls:starttls xmlns:tls=\"urn:ietf:params:xml:ns:xmpp-tls\"/>\
    <sasl:mechanisms xmlns:sasl=\"urn:ietf:params:xml:ns:xmpp-sasl\"><sasl:mechanism>PLAIN\
    </sasl:mechanism><sasl:mechanism>SCRAM-SHA-1</sasl:mechanism></sasl:mechanisms>\
    </stream:features><tls:proceed xmlns:tls=\"urn:ietf:params:xml:ns:xmpp-tls\"></tls:proceed>";

/// A stream error after the header.
const STREAM_ERROR: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'><stream:error>\
    <see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example</see-other-host>\
    <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>moved</text></stream:error></stream:stream>";

/// Injection: bytes pipelined after proceed.
const INJECTION: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'><stream:features>\
    <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>\
    <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='get'/>";

fn split<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// A comparable summary: the record on success; the error (length of an injection aside,
/// which depends on how much of it arrived in the same read) and the record on failure.
fn summary(r: Result<Negotiation, Failure>) -> (Option<Negotiation>, Option<String>) {
    match r {
        Ok(n) => (Some(n), None),
        Err(Failure { error, partial, .. }) => {
            let error = match error {
                Error::StartTlsInjection { after, .. } => format!("injection after {after}"),
                other => other.to_string(),
            };
            let mut partial = *partial;
            partial.bytes_received = 0;
            (Some(partial), Some(error))
        }
    }
}

fn run(transcript: &[u8], sizes: &[usize]) -> (Option<Negotiation>, Option<String>) {
    summary(replay(
        Config::client("match.test"),
        split(transcript, sizes),
    ))
}

#[test]
fn the_transcripts_have_the_expected_outcomes() {
    let (n, e) = run(PROSODY, &[]);
    assert_eq!(e, None);
    let n = n.unwrap();
    assert!(n.proceeded && n.features.unwrap().starttls_required);
    let (n, e) = run(PREFIXED, &[]);
    assert_eq!(e, None);
    let n = n.unwrap();
    assert_eq!(n.header.unwrap().id.as_deref(), Some("a&bC"));
    assert_eq!(
        n.features.unwrap().sasl_mechanisms,
        ["PLAIN", "SCRAM-SHA-1"]
    );
    assert!(run(STREAM_ERROR, &[]).1.unwrap().contains("other.example"));
    assert_eq!(
        run(INJECTION, &[]).1.as_deref(),
        Some("injection after <proceed/>")
    );
}

fn server_side(client_bytes: &[u8], sizes: &[usize]) -> (Vec<Action>, Option<String>) {
    let mut s = ServerNegotiator::new(ServerConfig::new(StreamKind::Client, "match.test"));
    let mut actions = Vec::new();
    for chunk in split(client_bytes, sizes) {
        let r = s.handle_input(chunk);
        actions.extend(std::iter::from_fn(|| s.poll_action()));
        if let Err(e) = r {
            return (actions, Some(e.to_string()));
        }
    }
    (actions, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_gives_the_same_client_result(
        which in 0usize..4,
        sizes in prop::collection::vec(1usize..40, 0..400),
    ) {
        let transcript = [PROSODY, PREFIXED, STREAM_ERROR, INJECTION][which];
        prop_assert_eq!(run(transcript, &sizes), run(transcript, &[]));
    }

    #[test]
    fn any_chunking_gives_the_same_acceptor_result(
        sizes in prop::collection::vec(1usize..40, 0..100),
    ) {
        let client = b"<?xml version='1.0'?><stream:stream version=\"1.0\" xml:lang=\"en\" \
            xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:client\" \
            to=\"match.test\"><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>";
        let whole = server_side(client, &[]);
        prop_assert_eq!(whole.1.as_deref(), None);
        prop_assert_eq!(whole.0.last(), Some(&Action::StartTls));
        prop_assert_eq!(server_side(client, &sizes), whole);
    }
}
