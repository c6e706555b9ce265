//! Replays the cargo-fuzz corpus of `fuzz/corpus/evidence_bundle` through the same call as
//! the fuzz target, so that every input that ever crashed stays a regression test.

use std::path::PathBuf;

use certwatch::evidence::fuzz_bundle;

#[test]
fn evidence_bundle_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/evidence_bundle");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 2);
    for data in &inputs {
        fuzz_bundle(data);
        for cut in (0..data.len()).step_by(211) {
            fuzz_bundle(&data[..cut]);
        }
        for i in (0..data.len()).step_by(173) {
            let mut d = data.clone();
            d[i] ^= 0x01;
            fuzz_bundle(&d);
        }
    }
}
