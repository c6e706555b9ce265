//! Pins from the interop environment's PKI (the keys and certificates Prosody and ejabberd
//! serve, made by `scripts/interop/pki.sh`) agree with the openssl pipeline of REFERENCE §1,
//! run live. Needs `scripts/interop-env up` and `--features interop`.
#![cfg(feature = "interop")]

use std::process::{Command, Stdio};

use certwatch_core::pin_from_key_material;
use certwatch_testkit::Interop;

fn openssl_spki_sha256(cert: &str) -> String {
    let script = format!(
        "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der | sha256sum"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::inherit())
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl failed on {cert}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.split_whitespace().next().expect("a hash").to_owned()
}

#[test]
fn pins_of_the_interop_pki_agree_with_openssl() {
    let env = Interop::require();
    let keys = env
        .get("pki.keys")
        .expect("pki.keys")
        .as_object()
        .expect("pki.keys is an object");
    assert!(!keys.is_empty());
    for name in keys.keys() {
        let cert = env.path(&format!("pki.keys.{name}.cert")).unwrap();
        let want = openssl_spki_sha256(&cert.display().to_string());
        assert_eq!(want.len(), 64, "{name}");
        assert_eq!(
            env.str(&format!("pki.keys.{name}.spki_sha256")).unwrap(),
            want,
            "{name}: the environment's recorded hash"
        );
        for file in ["cert", "fullchain", "key"] {
            let path = env.path(&format!("pki.keys.{name}.{file}")).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let label = path.display().to_string();
            let pin = pin_from_key_material(&bytes, &label).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(hex::encode(pin.spki_sha256()), want, "{label}");
        }
    }
}
