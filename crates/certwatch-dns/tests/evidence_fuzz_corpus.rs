//! Replays the cargo-fuzz corpus of `fuzz/corpus/evidence_chain` through the same call as the
//! fuzz target, so that every input that ever crashed stays a regression test.

use std::path::PathBuf;

use certwatch_dns::{DnssecChain, TrustAnchor, fuzz_chain, verify_chain};

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
fn evidence_chain_corpus() {
    let inputs = corpus("evidence_chain");
    let mut verified = 0;
    for (path, data) in &inputs {
        fuzz_chain(data);
        // Every truncation and every flipped byte of a seed is handled as well.
        for cut in (0..data.len()).step_by(97) {
            fuzz_chain(&data[..cut]);
        }
        for i in (0..data.len()).step_by(89) {
            let mut d = data.clone();
            d[i] ^= 0x20;
            fuzz_chain(&d);
        }
        // The recorded match chains verify at the recording time against the fuzz anchor.
        let text = String::from_utf8_lossy(data);
        let mut lines = text.lines();
        let chain = DnssecChain::new(
            lines.next().unwrap_or_default(),
            lines.next().unwrap_or_default(),
            lines.map(str::to_owned).collect(),
        );
        let anchor = TrustAnchor::DnskeyText(
            ". IN DNSKEY 257 3 13 zb7rNr66VCwhbzX3j11txFNGQeR02SHWBzPZdfkmh2LsTZlpiij8BPayJzDXyjSkM4afF9PlklIU5zxmJSQ+DA==".into(),
        );
        if path.contains("match-") {
            verify_chain(&chain, &anchor, 1_795_891_900).unwrap();
            verified += 1;
        }
    }
    assert!(verified >= 2);
}
