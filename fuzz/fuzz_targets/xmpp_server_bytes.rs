//! Arbitrary peer bytes through the certwatch-xmpp negotiators.
//!
//! The first byte chooses the read size (bits 0-5: 1..=64) and the side (bit 6 clear: the
//! bytes are a server's, fed to the client negotiator; set: a client's, fed to the STARTTLS
//! acceptor). The outcome must not panic, must be classified, and must not depend on the read
//! size: the same bytes in one read give the same outcome (the injection length and the
//! not-XML preview aside, which report how much arrived in that read).
//!
//! `crates/certwatch-xmpp/tests/fuzz_corpus.rs` replays the corpus with the same functions.
#![no_main]

use certwatch_xmpp::{Action, Config, Error, ServerConfig, ServerNegotiator, StreamKind, replay};
use libfuzzer_sys::fuzz_target;

fn class_error(e: &Error) -> String {
    match e {
        Error::StartTlsInjection { after, .. } => format!("injection after {after}"),
        Error::NotXml { .. } => "not-xml".to_owned(),
        other => other.to_string(),
    }
}

fn client(chunks: &[&[u8]]) -> String {
    match replay(Config::client("example.org"), chunks.iter().copied()) {
        Ok(n) => format!("ok proceeded={}", n.proceeded),
        Err(f) => class_error(&f.error),
    }
}

fn acceptor(chunks: &[&[u8]]) -> String {
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

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, peer)) = data.split_first() else {
        return;
    };
    let size = usize::from(ctl & 0x3f) + 1;
    let run = if ctl & 0x40 == 0 { client } else { acceptor };
    let chunked = run(&peer.chunks(size).collect::<Vec<_>>());
    let whole = run(&[peer]);
    if peer.len() <= 60 * 1024 {
        assert_eq!(chunked, whole, "read size {size}");
    }
});
