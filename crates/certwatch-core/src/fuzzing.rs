//! The bodies of the `core_tlsa_parse` and `core_key_pins` fuzz targets, shared with their
//! corpus replay (`tests/fuzz_corpus.rs`) so that CI runs exactly the code that was fuzzed.
//! Not part of the API.

use std::time::Duration;

use crate::{
    MatchPolicy, MatchingType, Selector, Tlsa, TlsaLine, UnixTime, association_data,
    certificate_spki, match_chain, pin_from_key_material,
};

/// Parses `data` as TLSA presentation format; whatever is accepted must print and parse
/// back to the same record. Returns whether the bare-rdata parse accepted it.
pub fn tlsa_parse(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let parsed = text.parse::<Tlsa>();
    if let Ok(t) = &parsed {
        let again: Tlsa = t.to_string().parse().expect("printed record parses");
        assert_eq!(&again, t);
        let _ = t.usability();
        let _ = t.mnemonic();
    }
    if let Ok(line) = text.parse::<TlsaLine>() {
        let _ = line.to_string();
    }
    parsed.is_ok()
}

/// Runs `data` through the key and certificate readers, association data and DANE matching
/// of a two-part "chain". Returns whether a pin was read from it.
pub fn key_pins(data: &[u8]) -> bool {
    let pin = pin_from_key_material(data, "fuzz");
    if let Ok(pin) = &pin {
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
    pin.is_ok()
}
