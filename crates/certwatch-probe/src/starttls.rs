//! STARTTLS negotiation (RFC 6120 §5) up to the byte where TLS begins.
//!
//! This is a deliberately small local stand-in, bounded in bytes, until certwatch-xmpp's
//! negotiator is integrated: it sends the stream header, waits for stream features that offer
//! `urn:ietf:params:xml:ns:xmpp-tls`, sends `<starttls/>` and waits for `<proceed/>`. It does
//! not parse XML; it recognises the few elements it needs and treats everything else as
//! opaque. It never reads past `<proceed/>` because a server sends nothing after it until the
//! client starts TLS.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use certwatch_core::{Service, StreamKind};

const TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// Why negotiation stopped.
#[derive(Debug)]
pub(crate) enum NegotiationError {
    /// The transport failed (includes the read bound).
    Io(std::io::Error),
    /// The server's XMPP was not acceptable.
    Xmpp(String),
}

impl From<std::io::Error> for NegotiationError {
    fn from(e: std::io::Error) -> Self {
        NegotiationError::Io(e)
    }
}

/// The durations of the two phases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NegotiationTimings {
    pub(crate) stream: Duration,
    pub(crate) starttls: Duration,
}

/// Takes `io` to the point where the TLS ClientHello must be sent.
pub(crate) async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    service: Service,
    domain: &str,
) -> Result<NegotiationTimings, NegotiationError> {
    let ns = if service.stream_kind() == StreamKind::Server {
        "jabber:server"
    } else {
        "jabber:client"
    };
    let t0 = Instant::now();
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{ns}' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    );
    io.write_all(header.as_bytes()).await?;
    io.flush().await?;

    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // Stream features.
    let features = loop {
        read_more(io, &mut buf).await?;
        let text = String::from_utf8_lossy(&buf);
        check_errors(&text)?;
        if let Some(f) = features_end(&text) {
            break text[..f].to_owned();
        }
    };
    if !features.contains(TLS_NS) {
        return Err(NegotiationError::Xmpp(
            "the stream features do not offer STARTTLS".into(),
        ));
    }
    let stream = t0.elapsed();

    let t1 = Instant::now();
    io.write_all(format!("<starttls xmlns='{TLS_NS}'/>").as_bytes())
        .await?;
    io.flush().await?;
    buf.clear();
    loop {
        read_more(io, &mut buf).await?;
        let text = String::from_utf8_lossy(&buf);
        check_errors(&text)?;
        if text.contains("<failure") {
            return Err(NegotiationError::Xmpp(
                "the server answered <starttls/> with <failure/>".into(),
            ));
        }
        if let Some(i) = text.find("<proceed")
            && text[i..].contains('>')
        {
            break;
        }
    }
    Ok(NegotiationTimings {
        stream,
        starttls: t1.elapsed(),
    })
}

async fn read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
) -> Result<(), NegotiationError> {
    let mut chunk = [0u8; 2048];
    let n = io.read(&mut chunk).await?;
    if n == 0 {
        return Err(NegotiationError::Xmpp(
            "the server closed the connection during stream negotiation".into(),
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn check_errors(text: &str) -> Result<(), NegotiationError> {
    if let Some(i) = text.find("<stream:error") {
        let snippet: String = text[i..]
            .chars()
            .take(300)
            .filter(|c| !c.is_control())
            .collect();
        return Err(NegotiationError::Xmpp(format!("stream error: {snippet}")));
    }
    if text.contains("</stream:stream>") {
        return Err(NegotiationError::Xmpp(
            "the server closed the stream".into(),
        ));
    }
    Ok(())
}

/// The end of the stream features element, if complete.
fn features_end(text: &str) -> Option<usize> {
    if let Some(i) = text.find("</stream:features>") {
        return Some(i + "</stream:features>".len());
    }
    let i = text.find("<stream:features")?;
    let rest = &text[i..];
    let close = rest.find('>')?;
    if rest[..close].ends_with('/') {
        Some(i + close + 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_found_complete_only() {
        assert_eq!(features_end("<stream:features><starttls"), None);
        assert!(features_end("<stream:features><a/></stream:features>").is_some());
        assert!(features_end("x<stream:features/>").is_some());
    }

    #[tokio::test]
    async fn no_starttls_is_an_xmpp_error() {
        let (mut c, mut s) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut b = [0u8; 512];
            let _ = s.read(&mut b).await;
            s.write_all(b"<stream:stream><stream:features><bind/></stream:features>")
                .await
                .unwrap();
            s
        });
        let r = negotiate(&mut c, Service::C2sStarttls, "a.test").await;
        assert!(matches!(r, Err(NegotiationError::Xmpp(m)) if m.contains("STARTTLS")));
        drop(server.await.unwrap());
    }

    #[tokio::test]
    async fn stream_error_is_reported() {
        let (mut c, mut s) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            let _ = s.read(&mut b).await;
            let _ = s
                .write_all(b"<stream:stream><stream:error><host-unknown/></stream:error>")
                .await;
        });
        let r = negotiate(&mut c, Service::S2sStarttls, "a.test").await;
        assert!(matches!(r, Err(NegotiationError::Xmpp(m)) if m.contains("host-unknown")));
    }
}
