//! The driver shared by the `xmpp_server_bytes` fuzz target and its corpus replay
//! (`tests/fuzz_corpus.rs`), so that both run exactly the same code. Not part of the API.

use crate::{Action, Config, Error, ServerConfig, ServerNegotiator, StreamKind, replay};

/// An outcome as a comparable string. The injection length and the not-XML preview are left
/// out: they report how much arrived in one read, so they depend on the read size.
pub fn class_error(e: &Error) -> String {
    match e {
        Error::StartTlsInjection { after, .. } => format!("injection after {after}"),
        Error::NotXml { .. } => "not-xml".to_owned(),
        other => other.to_string(),
    }
}

/// Server bytes, in these reads, through the client negotiator for `example.org`.
pub fn client(chunks: &[&[u8]]) -> String {
    match replay(Config::client("example.org"), chunks.iter().copied()) {
        Ok(n) => format!("ok proceeded={}", n.proceeded),
        Err(f) => class_error(&f.error),
    }
}

/// Client bytes, in these reads, through the STARTTLS acceptor for `example.org`.
pub fn acceptor(chunks: &[&[u8]]) -> String {
    let mut s = ServerNegotiator::new(ServerConfig::new(StreamKind::Client, "example.org"));
    let mut done = false;
    for chunk in chunks {
        if let Err(e) = s.handle_input(chunk) {
            return class_error(&e);
        }
        while let Some(a) = s.poll_action() {
            done |= matches!(a, Action::StartTls | Action::Done);
        }
    }
    match s.handle_eof() {
        Ok(()) => format!("ok done={done} starttls={}", s.negotiation().starttls),
        Err(e) => class_error(&e),
    }
}

/// Picks the side from the control byte (bit 6 clear: server bytes to the client
/// negotiator; set: client bytes to the acceptor).
pub fn side(ctl: u8) -> fn(&[&[u8]]) -> String {
    if ctl & 0x40 == 0 { client } else { acceptor }
}
