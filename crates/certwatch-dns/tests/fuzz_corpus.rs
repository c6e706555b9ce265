//! Replays the cargo-fuzz corpora of `fuzz/corpus/dns_*` through the same calls as the fuzz
//! targets, so that every input that ever crashed stays a regression test.

use std::path::PathBuf;

use certwatch_dns::{DomainName, TrustAnchor, fuzz_response, parse_server};

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

/// The body of `fuzz/fuzz_targets/dns_name.rs`; true if the domain was accepted.
fn dns_name(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let accepted = if let Ok(d) = DomainName::normalise(&text) {
        let s = d.as_str();
        assert!(s.len() <= 253);
        assert!(s.split('.').all(|l| !l.is_empty() && l.len() <= 63));
        assert_eq!(DomainName::normalise(s).unwrap(), d);
        true
    } else {
        false
    };
    let _ = parse_server(&text);
    let _ = TrustAnchor::DsText(text.to_string()).validate();
    let _ = TrustAnchor::DnskeyText(text.to_string()).validate();
    accepted
}

#[test]
fn dns_name_corpus() {
    let inputs = corpus("dns_name");
    let accepted = inputs.iter().filter(|(_, d)| dns_name(d)).count();
    // The corpus holds both accepted and rejected names.
    assert!(accepted > 0 && accepted < inputs.len());
}

#[test]
fn dns_message_corpus() {
    let inputs = corpus("dns_message");
    for (_, data) in &inputs {
        fuzz_response(data);
        // Every truncation of a real answer is handled as well.
        for cut in (0..data.len()).step_by(7) {
            fuzz_response(&data[..cut]);
        }
    }
    assert!(inputs.len() >= 5);
}
