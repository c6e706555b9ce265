//! Fuzzes the TLSA presentation-format parser (bare rdata and zone-file lines): it must never
//! panic, and whatever it accepts must print and parse back to the same record.
#![no_main]

use certwatch_core::{Tlsa, TlsaLine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = text.parse::<Tlsa>() {
        let again: Tlsa = t.to_string().parse().expect("printed record parses");
        assert_eq!(again, t);
        let _ = t.usability();
        let _ = t.mnemonic();
    }
    if let Ok(line) = text.parse::<TlsaLine>() {
        let _ = line.to_string();
    }
});
