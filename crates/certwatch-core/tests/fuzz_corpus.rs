//! Replays the cargo-fuzz corpora of `fuzz/corpus/core_*` through the same calls as the fuzz
//! targets, so that every input that ever crashed stays a regression test.

use std::path::PathBuf;

use certwatch_core::fuzzing::{key_pins, tlsa_parse};

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
