//! Property tests: TLSA presentation format round-trips, and the parsers never panic.

use certwatch_core::{Tlsa, TlsaLine, pin_from_key_material};
use proptest::prelude::*;

fn any_tlsa() -> impl Strategy<Value = Tlsa> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 1..80),
    )
        .prop_map(|(u, s, m, d)| Tlsa::new(u, s, m, d))
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(t in any_tlsa()) {
        let text = t.to_string();
        prop_assert_eq!(text.parse::<Tlsa>().unwrap(), t.clone());
        // Lowercase out, and uppercase in is accepted.
        prop_assert_eq!(text.clone(), text.to_lowercase());
        prop_assert_eq!(text.to_uppercase().parse::<Tlsa>().unwrap(), t.clone());
        // Numbers survive as numbers, unknown values included.
        let u: u8 = t.usage.into();
        let prefix = format!("{} ", u);
        prop_assert!(text.starts_with(&prefix));
    }

    #[test]
    fn zone_lines_round_trip(t in any_tlsa(), port in 1u16.., ttl in any::<u32>(), host in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,10}){1,3}") {
        let owner = format!("_{port}._tcp.{host}.");
        let line = TlsaLine::new(owner.clone(), ttl, t.clone()).to_string();
        let back: TlsaLine = line.parse().unwrap();
        prop_assert_eq!(back.owner.as_deref(), Some(owner.as_str()));
        prop_assert_eq!(back.ttl, Some(ttl));
        prop_assert_eq!(back.record.clone(), t.clone());
        prop_assert_eq!(back.to_string(), line);
        // Split hex and parentheses, as zone files allow.
        let hex = t.data_hex();
        let (a, b) = hex.split_at(hex.len() / 2 / 2 * 2);
        let split = format!("{owner} IN TLSA ( {} {} {} {a}\n {b} ) ; comment", t.usage, t.selector, t.matching);
        prop_assert_eq!(split.parse::<Tlsa>().unwrap(), t);
    }

    #[test]
    fn serde_round_trip(t in any_tlsa()) {
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(serde_json::from_str::<Tlsa>(&json).unwrap(), t);
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,200}") {
        let _ = s.parse::<Tlsa>();
        let _ = s.parse::<TlsaLine>();
    }

    #[test]
    fn key_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = pin_from_key_material(&bytes, "fuzz");
        let mut pem = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
        pem.extend_from_slice(&bytes);
        let _ = pin_from_key_material(&pem, "fuzz.pem");
    }
}
