//! Fuzzes the text inputs of certwatch-dns: the domain as typed, server addresses and trust
//! anchor text. Nothing may panic; an accepted domain is A-label, valid and idempotent.
#![no_main]

use certwatch_dns::{DomainName, TrustAnchor, parse_server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = DomainName::normalise(&text) {
        let s = d.as_str();
        assert!(s.len() <= 253);
        assert!(s.split('.').all(|l| !l.is_empty() && l.len() <= 63));
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        );
        assert_eq!(
            DomainName::normalise(s).expect("normalised name is accepted"),
            d
        );
    }
    let _ = parse_server(&text);
    let _ = TrustAnchor::DsText(text.to_string()).validate();
    let _ = TrustAnchor::DnskeyText(text.to_string()).validate();
});
