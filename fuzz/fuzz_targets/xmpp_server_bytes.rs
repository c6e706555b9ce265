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

use certwatch_xmpp::fuzzing::side;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, peer)) = data.split_first() else {
        return;
    };
    let size = usize::from(ctl & 0x3f) + 1;
    let run = side(ctl);
    let chunked = run(&peer.chunks(size).collect::<Vec<_>>());
    let whole = run(&[peer]);
    if peer.len() <= 60 * 1024 {
        assert_eq!(chunked, whole, "read size {size}");
    }
});
