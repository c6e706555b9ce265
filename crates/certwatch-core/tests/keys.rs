//! Pins from every fixture key and certificate format agree with the openssl oracle
//! (expected hashes written by `tests/data/gen.sh`).

use std::path::PathBuf;

use certwatch_core::{
    KeyError, KeyFormat, KeyType, MatchingType, Selector, association_data, pin_from_key_material,
};

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn expected(name: &str) -> String {
    String::from_utf8(data(name)).unwrap().trim().to_owned()
}

const KINDS: [(&str, KeyType); 4] = [
    ("rsa", KeyType::Rsa),
    ("p256", KeyType::Ecdsa),
    ("p384", KeyType::Ecdsa),
    ("ed25519", KeyType::Ed25519),
];

fn formats(kind: &str) -> Vec<(&'static str, KeyFormat)> {
    let mut f = vec![
        ("cert.pem", KeyFormat::Certificate),
        ("cert.der", KeyFormat::Certificate),
        ("chain.pem", KeyFormat::Certificate),
        ("spki.pem", KeyFormat::Spki),
        ("spki.der", KeyFormat::Spki),
        ("pkcs8.pem", KeyFormat::Pkcs8),
        ("pkcs8.der", KeyFormat::Pkcs8),
    ];
    match kind {
        "rsa" => f.extend([
            ("pkcs1.pem", KeyFormat::Pkcs1),
            ("pkcs1.der", KeyFormat::Pkcs1),
            ("pkcs1pub.pem", KeyFormat::Pkcs1Public),
        ]),
        "p256" | "p384" => f.extend([("sec1.pem", KeyFormat::Sec1), ("sec1.der", KeyFormat::Sec1)]),
        _ => {}
    }
    f
}

#[test]
fn every_format_of_every_key_type_agrees_with_openssl() {
    let mut checked = 0;
    for (kind, key_type) in KINDS {
        let want = expected(&format!("{kind}.sha256"));
        assert_eq!(want.len(), 64, "{kind}.sha256 is a SHA-256 in hex");
        for (suffix, format) in formats(kind) {
            let name = format!("{kind}.{suffix}");
            let pin = pin_from_key_material(&data(&name), &name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(pin.tlsa().to_string(), format!("3 1 1 {want}"), "{name}");
            assert_eq!(pin.format(), format, "{name}");
            assert_eq!(pin.algorithm().key_type(), key_type, "{name}");
            // The SPKI we derive is byte-identical to openssl's.
            assert_eq!(
                pin.spki_der(),
                &data(&format!("{kind}.spki.der"))[..],
                "{name}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 7 + 3 + 2 * 2);
}

#[test]
fn association_data_for_every_selector_and_matching_type() {
    for (kind, _) in KINDS {
        let der = data(&format!("{kind}.cert.der"));
        let spki = data(&format!("{kind}.spki.der"));
        let cases = [
            (Selector::Cert, MatchingType::Full, hex::encode(&der)),
            (
                Selector::Cert,
                MatchingType::Sha256,
                expected(&format!("{kind}.cert.sha256")),
            ),
            (
                Selector::Cert,
                MatchingType::Sha512,
                expected(&format!("{kind}.cert.sha512")),
            ),
            (Selector::Spki, MatchingType::Full, hex::encode(&spki)),
            (
                Selector::Spki,
                MatchingType::Sha256,
                expected(&format!("{kind}.sha256")),
            ),
            (
                Selector::Spki,
                MatchingType::Sha512,
                expected(&format!("{kind}.spki.sha512")),
            ),
        ];
        for (sel, mt, want) in cases {
            let got = association_data(&der, sel, mt, kind).unwrap();
            assert_eq!(hex::encode(got), want, "{kind} {sel} {mt}");
        }
        let e = association_data(&der, Selector::Unassigned(7), MatchingType::Full, "c.der")
            .unwrap_err();
        assert!(e.to_string().contains("c.der") && e.to_string().contains("selector 7"));
        let e = association_data(&der, Selector::Spki, MatchingType::Unassigned(9), "c.der")
            .unwrap_err();
        assert!(e.to_string().contains("matching type 9"));
    }
    let e =
        association_data(b"junk", Selector::Spki, MatchingType::Sha256, "junk.der").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("junk.der: not an X.509 certificate")
    );
}

#[test]
fn bad_inputs_are_refused_with_label_and_formats() {
    let e = pin_from_key_material(&data("p256.encrypted.pem"), "p256.encrypted.pem").unwrap_err();
    assert!(matches!(e, KeyError::Encrypted { .. }), "{e}");
    assert!(e.to_string().contains("p256.encrypted.pem"));

    // A truncated DER key: every format was tried, and the message says so.
    let der = data("p384.pkcs8.der");
    let e = pin_from_key_material(&der[..der.len() - 3], "cut.der").unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("cut.der: "), "{msg}");
    for f in [
        "certificate",
        "SubjectPublicKeyInfo",
        "PKCS#8",
        "SEC1",
        "PKCS#1",
    ] {
        assert!(msg.contains(f), "{msg} lacks {f}");
    }

    // A PEM key with a damaged body names the section.
    let pem: String = String::from_utf8(data("rsa.pkcs1.pem"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("-----") {
                l.to_owned()
            } else {
                l.replace('A', "*")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let e = pin_from_key_material(pem.as_bytes(), "rsa.pkcs1.pem").unwrap_err();
    assert!(e.to_string().contains("RSA PRIVATE KEY"), "{e}");

    // An unsupported algorithm (X25519) is named as such.
    let x25519 = hex::decode("302e020100300506032b656e04220420b0d4c2e2e2c3e1a1b1c1d1e1f1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4")
        .unwrap();
    let e = pin_from_key_material(&x25519, "x25519.der").unwrap_err();
    assert!(matches!(e, KeyError::UnsupportedAlgorithm { .. }), "{e}");
    assert!(e.to_string().contains("1.3.101.110"), "{e}");
}
