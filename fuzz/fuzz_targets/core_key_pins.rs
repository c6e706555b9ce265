//! Fuzzes the certificate and key readers: pins from key material (PEM and DER, every
//! format), association data and DANE matching of an arbitrary "certificate" chain. Nothing may
//! panic.
#![no_main]

use std::time::Duration;

use certwatch_core::{
    MatchPolicy, MatchingType, Selector, Tlsa, UnixTime, association_data, certificate_spki,
    match_chain, pin_from_key_material,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pin) = pin_from_key_material(data, "fuzz") {
        assert_eq!(pin.tlsa().data.len(), 32);
        let _ = pin.zone_line("h.example", 5222, 3600);
    }
    let _ = certificate_spki(data);
    for sel in [Selector::Cert, Selector::Spki] {
        let _ = association_data(data, sel, MatchingType::Sha256, "fuzz");
    }
    let records = [
        Tlsa::new(3, 1, 1, vec![0; 32]),
        Tlsa::new(2, 0, 1, vec![0; 32]),
        Tlsa::new(2, 1, 0, data.to_vec()),
        Tlsa::new(1, 1, 1, vec![0; 32]),
        Tlsa::new(0, 0, 1, vec![0; 32]),
    ];
    let policy = MatchPolicy::new(
        "example.org",
        "xmpp.example.net",
        UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
    );
    let half = data.len() / 2;
    let _ = match_chain(
        &records,
        &[data[..half].to_vec(), data[half..].to_vec()],
        &policy,
    );
});
