//! Fuzzes the TLSA presentation-format parser (bare rdata and zone-file lines): it must never
//! panic, and whatever it accepts must print and parse back to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certwatch_core::fuzzing::tlsa_parse(data);
});
