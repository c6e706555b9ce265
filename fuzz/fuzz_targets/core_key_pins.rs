//! Fuzzes the certificate and key readers: pins from key material (PEM and DER, every
//! format), association data and DANE matching of an arbitrary "certificate" chain. Nothing may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certwatch_core::fuzzing::key_pins(data);
});
