//! Fuzzes the facade's evidence bundle verifier (a bundle received from elsewhere is
//! untrusted): JSON parsing and the bound on its size, the Ed25519 signature check, the
//! canonical form, the PEM chains and SPKI hashes, and the DNSSEC chains must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certwatch::evidence::fuzz_bundle(data);
});
