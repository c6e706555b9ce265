//! Fuzzes certwatch-dns's DNSSEC evidence chains (untrusted: they arrive in bundles from
//! elsewhere): base64 and wire-form decoding of each record, grouping into RRsets, and the
//! offline verification walk against a fixed anchor must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certwatch_dns::fuzz_chain(data);
});
