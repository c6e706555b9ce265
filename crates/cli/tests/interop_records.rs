//! `certwatch records` on the interop environment's PKI (the keys and certificates Prosody and
//! ejabberd serve), compared with the openssl pipeline of REFERENCE §1 run live and with the
//! hash the environment recorded. Needs `scripts/interop-env up` and `--features interop`.
#![cfg(feature = "interop")]

use std::process::{Command, Stdio};

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
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn records_agree_with_openssl_on_the_interop_pki() {
    let env = Interop::require();
    let keys = env
        .get("pki.keys")
        .expect("pki.keys")
        .as_object()
        .expect("an object");
    assert!(!keys.is_empty());
    for name in keys.keys() {
        let cert = env
            .str(&format!("pki.keys.{name}.cert"))
            .unwrap()
            .to_owned();
        let want = openssl_spki_sha256(&cert);
        assert_eq!(
            env.str(&format!("pki.keys.{name}.spki_sha256")).unwrap(),
            want,
            "{name}"
        );
        for (flag, file) in [
            ("--cert", "cert"),
            ("--cert", "fullchain"),
            ("--key", "key"),
        ] {
            let path = env.str(&format!("pki.keys.{name}.{file}")).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
                .args([
                    "records",
                    flag,
                    path,
                    "--host",
                    "xmpp.example.test",
                    "--port",
                    "5269",
                ])
                .output()
                .expect("run certwatch");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name} {file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("_5269._tcp.xmpp.example.test. 3600 IN TLSA 3 1 1 {want}\n"),
                "{name} {file}"
            );
        }
    }
}
