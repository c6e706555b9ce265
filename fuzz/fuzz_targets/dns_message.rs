//! Fuzzes certwatch-dns's interpretation of DNS responses (after hickory's decoder): referral
//! detection, the positive/wildcard proof check, the NSEC3 iteration scan and record display
//! must never panic on any wire input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certwatch_dns::fuzz_response(data);
});
