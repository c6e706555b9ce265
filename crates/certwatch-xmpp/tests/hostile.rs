//! Hostile servers, in process: each behaviour ends in its own classified outcome, within the
//! total deadline, on tokio's paused clock (instant and deterministic).

use std::future::Future;
use std::time::Duration;

use certwatch_xmpp::{Config, Error, Failure, Markup, Negotiation, Step, Timeouts, negotiate};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='h0stile' from='example.org' \
    version='1.0' xml:lang='en'>";
const FEATURES_TLS: &[u8] = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls></stream:features>";
const PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// Runs the client against a scripted server and returns the outcome and the virtual time it
/// took. The script gets the server end of an in-memory pipe; its write errors (the client
/// hung up) are ignored.
async fn against<F, Fut>(script: F) -> (Result<Negotiation, Failure>, Duration)
where
    F: FnOnce(DuplexStream) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(script(server));
    let start = Instant::now();
    let result = negotiate(client, &Config::client("example.org"), &Timeouts::default())
        .await
        .map(|(_, n)| n);
    let elapsed = start.elapsed();
    task.abort();
    assert!(
        elapsed <= Timeouts::default().total,
        "took {elapsed:?}, beyond the deadline"
    );
    (result, elapsed)
}

/// A server that writes these parts in order (reading nothing) and then stays open.
async fn scripted(parts: Vec<Vec<u8>>) -> (Result<Negotiation, Failure>, Duration) {
    against(move |mut s| async move {
        for p in parts {
            s.write_all(&p).await?;
        }
        std::future::pending::<()>().await;
        Ok(())
    })
    .await
}

fn parts(p: &[&[u8]]) -> Vec<Vec<u8>> {
    p.iter().map(|p| p.to_vec()).collect()
}

async fn error_of(p: &[&[u8]]) -> (Error, Box<Negotiation>) {
    match scripted(parts(p)).await.0 {
        Ok(n) => panic!("negotiation unexpectedly succeeded: {n:?}"),
        Err(Failure { error, partial, .. }) => (error, partial),
    }
}

#[tokio::test(start_paused = true)]
async fn a_correct_server_negotiates_and_is_timed() {
    let (result, _) = scripted(parts(&[HEADER, b" \n", FEATURES_TLS, b" ", PROCEED])).await;
    let n = result.expect("a correct server negotiates");
    assert!(n.proceeded);
    assert_eq!(n.header.unwrap().id.as_deref(), Some("h0stile"));
    assert!(n.timings.stream_header.is_some() && n.timings.proceed.is_some());
    assert!(n.timings.total >= n.timings.proceed);
}

#[tokio::test(start_paused = true)]
async fn endless_stream_hits_the_byte_limit() {
    let (result, _) = against(|mut s| async move {
        s.write_all(HEADER).await?;
        s.write_all(b"<stream:features>").await?;
        loop {
            s.write_all(b"<x xmlns='urn:endless'/>").await?;
        }
    })
    .await;
    let err = result.unwrap_err().error;
    assert!(
        matches!(err, Error::TooManyBytes { limit: 65536 }),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn endless_whitespace_keepalives_hit_the_byte_limit() {
    let (result, _) = against(|mut s| async move {
        s.write_all(HEADER).await?;
        loop {
            s.write_all(&[b' '; 1024]).await?;
        }
    })
    .await;
    let err = result.unwrap_err().error;
    assert!(matches!(err, Error::TooManyBytes { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn billion_laughs_dtd_is_refused_on_sight() {
    let (err, _) = error_of(
        &[b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
        <!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>\
        <stream:stream>&lol1;"],
    )
    .await;
    assert!(
        matches!(err, Error::ForbiddenMarkup(Markup::Declaration)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn external_entity_reference_is_refused() {
    let (err, _) = error_of(&[HEADER, b"<stream:features><x xmlns='u'>&xxe;</x>"]).await;
    assert!(
        matches!(err, Error::ForbiddenMarkup(Markup::EntityReference)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn comment_is_refused() {
    let (err, _) = error_of(&[HEADER, b"<!-- hello -->", FEATURES_TLS]).await;
    assert!(
        matches!(err, Error::ForbiddenMarkup(Markup::Comment)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn processing_instruction_is_refused() {
    let (err, _) = error_of(&[HEADER, b"<?xml-stylesheet href='evil'?>"]).await;
    assert!(
        matches!(err, Error::ForbiddenMarkup(Markup::ProcessingInstruction)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn huge_attribute_is_refused() {
    let mut tag = b"<stream:features foo='".to_vec();
    tag.extend(std::iter::repeat_n(b'A', 20_000));
    tag.extend_from_slice(b"'>");
    let (err, _) = error_of(&[HEADER, &tag]).await;
    assert!(matches!(err, Error::TagTooLarge { limit: 8192 }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn huge_text_is_refused() {
    let mut text =
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
            .to_vec();
    text.extend(std::iter::repeat_n(b'P', 10_000));
    let (err, _) = error_of(&[HEADER, &text]).await;
    assert!(matches!(err, Error::TextTooLarge { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn deep_nesting_is_refused() {
    let mut deep = b"<stream:features>".to_vec();
    for _ in 0..100 {
        deep.extend_from_slice(b"<a>");
    }
    let (err, _) = error_of(&[HEADER, &deep]).await;
    assert!(matches!(err, Error::TooDeep { limit: 16 }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn one_byte_a_second_drip_ends_at_the_deadline() {
    let (result, elapsed) = against(|mut s| async move {
        let mut all = HEADER.to_vec();
        all.extend_from_slice(FEATURES_TLS);
        for b in all {
            s.write_all(&[b]).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await;
        Ok(())
    })
    .await;
    let err = result.unwrap_err().error;
    assert!(
        matches!(
            err,
            Error::Deadline {
                step: Step::StreamHeader,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(elapsed, Timeouts::default().total);
}

#[tokio::test(start_paused = true)]
async fn silent_server_times_out_per_step() {
    let (result, elapsed) = scripted(vec![]).await;
    let err = result.unwrap_err().error;
    assert!(
        matches!(
            err,
            Error::Timeout {
                step: Step::StreamHeader,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(elapsed, Timeouts::default().step);
}

#[tokio::test(start_paused = true)]
async fn pipelined_bytes_after_proceed_are_injection() {
    let mut proceed_and_more = PROCEED.to_vec();
    proceed_and_more.extend_from_slice(b"<stream:features><mechanisms/></stream:features>");
    let (result, _) = against(move |mut s| async move {
        s.write_all(HEADER).await?;
        s.write_all(FEATURES_TLS).await?;
        // Wait for <starttls/> like a real server, then answer with extra bytes.
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("starttls") {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            seen.extend_from_slice(&buf[..n]);
        }
        s.write_all(&proceed_and_more).await?;
        std::future::pending::<()>().await;
        Ok(())
    })
    .await;
    let err = result.unwrap_err().error;
    assert!(
        matches!(
            err,
            Error::StartTlsInjection {
                len: 48,
                after: "<proceed/>"
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_stream_namespace_is_refused() {
    let header = String::from_utf8_lossy(HEADER).replace("jabber:client", "jabber:server");
    let (err, partial) = error_of(&[header.as_bytes()]).await;
    assert!(
        matches!(err, Error::WrongNamespace { expected: "jabber:client", ref found } if found == "jabber:server"),
        "{err:?}"
    );
    assert_eq!(partial.header.unwrap().id.as_deref(), Some("h0stile"));
}

#[tokio::test(start_paused = true)]
async fn proceed_in_the_wrong_namespace_is_unexpected() {
    let (err, _) = error_of(&[
        HEADER,
        FEATURES_TLS,
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    ])
    .await;
    assert!(
        matches!(err, Error::UnexpectedElement { step: Step::Proceed, ref name } if name.contains("xmpp-sasl")),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn failure_is_reported() {
    let (err, partial) = error_of(&[
        HEADER,
        FEATURES_TLS,
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>",
    ])
    .await;
    assert!(matches!(err, Error::StartTlsFailure), "{err:?}");
    assert!(partial.features.unwrap().starttls_required);
}

#[tokio::test(start_paused = true)]
async fn stream_error_is_reported_with_condition_and_text() {
    let (err, _) = error_of(&[
        HEADER,
        b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
          <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Tor exits are not welcome</text>\
          </stream:error></stream:stream>",
    ])
    .await;
    let Error::StreamError(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.condition, "policy-violation");
    assert_eq!(e.text.as_deref(), Some("Tor exits are not welcome"));
}

#[tokio::test(start_paused = true)]
async fn see_other_host_is_reported_not_followed() {
    let (err, _) = error_of(&[
        HEADER,
        b"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>\
          evil.example:5222</see-other-host></stream:error>",
    ])
    .await;
    assert!(
        matches!(err, Error::SeeOtherHost { ref host, .. } if host == "evil.example:5222"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn premature_close_is_classified() {
    let (result, _) = against(|mut s| async move {
        s.write_all(HEADER).await?;
        s.write_all(b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>")
            .await?;
        Ok(()) // dropping the pipe closes it
    })
    .await;
    let err = result.unwrap_err().error;
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                step: Step::Features
            }
        ),
        "{err:?}"
    );
    assert!(err.is_inconclusive());
}

#[tokio::test(start_paused = true)]
async fn stream_closed_by_the_server_is_classified() {
    let (err, _) = error_of(&[HEADER, b"</stream:stream>"]).await;
    assert!(
        matches!(
            err,
            Error::StreamClosed {
                step: Step::Features
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn starttls_not_offered_keeps_the_clear_text_sasl_offer() {
    let (err, partial) = error_of(&[
        HEADER,
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
          <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    ])
    .await;
    assert!(matches!(err, Error::StartTlsNotOffered), "{err:?}");
    let f = partial.features.unwrap();
    assert!(!f.starttls);
    assert_eq!(f.sasl_mechanisms, ["PLAIN"]);
}

#[tokio::test(start_paused = true)]
async fn non_xml_garbage_is_classified() {
    let (err, _) = error_of(&[b"HTTP/1.1 400 Bad Request\r\n\r\n"]).await;
    assert!(
        matches!(err, Error::NotXml { ref preview } if preview.starts_with("HTTP/1.1")),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn tls_record_on_a_starttls_port_is_classified() {
    let (err, _) = error_of(&[b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26"]).await;
    assert!(matches!(err, Error::UnexpectedTls), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn pre_1_0_stream_is_classified() {
    let header = String::from_utf8_lossy(HEADER)
        .replace("from='example.org' version='1.0'", "from='example.org'");
    let (err, _) = error_of(&[header.as_bytes()]).await;
    assert!(
        matches!(err, Error::UnsupportedVersion { version: None }),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stanza_before_the_features_is_unexpected() {
    let (err, _) = error_of(&[HEADER, b"<message><body>hi</body></message>"]).await;
    assert!(
        matches!(err, Error::UnexpectedElement { step: Step::Features, ref name } if name == "{jabber:client}message"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_document_that_is_not_a_stream_is_classified() {
    let (err, _) = error_of(&[b"<html xmlns='http://www.w3.org/1999/xhtml'>"]).await;
    assert!(matches!(err, Error::NotAStream { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn mismatched_tags_are_malformed() {
    let (err, _) = error_of(&[HEADER, b"<stream:features></stream:feature>"]).await;
    assert!(matches!(err, Error::MalformedXml(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn text_between_stanzas_is_unexpected() {
    let (err, _) = error_of(&[HEADER, FEATURES_TLS, b"hello"]).await;
    assert!(
        matches!(
            err,
            Error::UnexpectedText {
                step: Step::Proceed
            }
        ),
        "{err:?}"
    );
}
