//! Arbitrary server bytes through the client negotiator (certwatch-xmpp).
//!
//! The first byte chooses the read size (1..=64); the rest is what the server sends. The
//! outcome must not panic, must be classified, and must not depend on the read size: the
//! same bytes in one read give the same outcome (injection length and the not-XML preview
//! aside, which report how much arrived in that read).
#![no_main]

use certwatch_xmpp::{Config, Error, Failure, Negotiation, replay};
use libfuzzer_sys::fuzz_target;

fn class(r: &Result<Negotiation, Failure>) -> String {
    match r {
        Ok(n) => format!("ok proceeded={}", n.proceeded),
        Err(f) => match &f.error {
            Error::StartTlsInjection { after, .. } => format!("injection after {after}"),
            Error::NotXml { .. } => "not-xml".to_owned(),
            other => other.to_string(),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, server)) = data.split_first() else {
        return;
    };
    let size = usize::from(ctl & 0x3f) + 1;
    let config = Config::client("example.org");
    let chunked = replay(config.clone(), server.chunks(size));
    let whole = replay(config, [server]);
    if server.len() <= 60 * 1024 {
        assert_eq!(class(&chunked), class(&whole), "read size {size}");
    }
});
