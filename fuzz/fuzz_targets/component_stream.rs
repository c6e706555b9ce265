//! Arbitrary bytes from the XMPP server, after an accepted component handshake, through the
//! certwatch-component stream, framer and stanza handler.
//!
//! The first byte chooses the read size (bits 0-5: 1..=64). The run must not panic, and its
//! outcome (the stanzas the component would send, its store commands, how the stream ended)
//! must not depend on the read size.
//!
//! `crates/certwatch-component/tests/fuzz_corpus.rs` replays the corpus with the same function.
#![no_main]

use certwatch_component::fuzzing::stream_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, server)) = data.split_first() else {
        return;
    };
    let size = usize::from(ctl & 0x3f) + 1;
    let chunked = stream_bytes(&server.chunks(size).collect::<Vec<_>>());
    let whole = stream_bytes(&[server]);
    assert_eq!(chunked, whole, "read size {size}");
});
