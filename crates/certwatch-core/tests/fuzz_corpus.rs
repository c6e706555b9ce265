//! Replays the cargo-fuzz corpora of `fuzz/corpus/core_*` through the same calls as the fuzz
//! targets, so that every input that ever crashed stays a regression test.

use std::path::PathBuf;
use std::time::Duration;

use certwatch_core::{
    MatchPolicy, MatchingType, Selector, Tlsa, TlsaLine, UnixTime, association_data,
    certificate_spki, match_chain, pin_from_key_material,
};

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} is empty", dir.display());
    out
}

/// The body of `fuzz/fuzz_targets/core_tlsa_parse.rs`.
fn tlsa_parse(data: &[u8]) -> bool {
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

/// The body of `fuzz/fuzz_targets/core_key_pins.rs`.
fn key_pins(data: &[u8]) -> bool {
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

#[test]
fn core_tlsa_parse_corpus() {
    let results: Vec<(String, bool)> = corpus("core_tlsa_parse")
        .into_iter()
        .map(|(name, data)| (name, tlsa_parse(&data)))
        .collect();
    // The seeds hold both accepted and refused inputs.
    assert!(results.iter().any(|(_, ok)| *ok), "{results:?}");
    assert!(results.iter().any(|(_, ok)| !*ok), "{results:?}");
}

#[test]
fn core_key_pins_corpus() {
    let results: Vec<(String, bool)> = corpus("core_key_pins")
        .into_iter()
        .map(|(name, data)| (name, key_pins(&data)))
        .collect();
    assert!(results.iter().any(|(_, ok)| *ok), "{results:?}");
    assert!(results.iter().any(|(_, ok)| !*ok), "{results:?}");
}
