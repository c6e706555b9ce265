//! `certwatch evidence verify` on a bundle recorded from the interop environment
//! (`crates/certwatch/tests/evidence_data/match.json`, its private root in `root.key`),
//! signed here with a fresh key: it verifies with the key in every accepted form, and
//! refuses another key, an altered bundle, another domain, and bad arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../certwatch/tests/evidence_data")
        .join(name)
}

fn certwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .output()
        .expect("run certwatch")
}

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn signed(dir: &Path, key: &Ed25519KeyPair) -> PathBuf {
    let bundle: certwatch::evidence::EvidenceBundle =
        serde_json::from_slice(&std::fs::read(data("match.json")).unwrap()).unwrap();
    let path = dir.join("bundle.json");
    std::fs::write(&path, bundle.sign(key).unwrap()).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_signed_bundle_verifies_with_the_published_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let bundle = signed(dir.path(), &k);
    let b64 = base64::engine::general_purpose::STANDARD.encode(k.public_key().as_ref());
    let json = dir.path().join("service-key.json");
    std::fs::write(
        &json,
        serde_json::json!({
            "algorithm": "ed25519",
            "public_key": b64,
            "key_id": certwatch::evidence::key_id(k.public_key().as_ref()),
        })
        .to_string(),
    )
    .unwrap();
    let hex_file = dir.path().join("service.pub");
    std::fs::write(
        &hex_file,
        k.public_key()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            + "\n",
    )
    .unwrap();
    let anchor = data("root.key");
    for key_arg in [
        b64.as_str(),
        json.to_str().unwrap(),
        hex_file.to_str().unwrap(),
    ] {
        let out = certwatch(&[
            "evidence",
            "verify",
            bundle.to_str().unwrap(),
            "--key",
            key_arg,
            "--trust-anchor",
            anchor.to_str().unwrap(),
            "--at",
            "created",
            "--domain",
            "match.test",
        ]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{key_arg}: {text}");
        assert!(
            text.contains("signature OK: match.test verdict match"),
            "{text}"
        );
        assert!(
            text.contains("DNSSEC OK: _5222._tcp.xmpp.match.test."),
            "{text}"
        );
        let probes = text.lines().filter(|l| l.starts_with("probe ")).count();
        assert_eq!(probes, 4, "{text}");
        assert_eq!(
            text.matches("IN the validated TLSA RRset").count(),
            4,
            "{text}"
        );
    }
}

#[test]
fn another_key_an_altered_bundle_or_another_domain_do_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let bundle = signed(dir.path(), &k);
    let anchor = data("root.key");
    let b64 = base64::engine::general_purpose::STANDARD.encode(k.public_key().as_ref());
    let other = base64::engine::general_purpose::STANDARD.encode(key().public_key().as_ref());
    let run = |bundle: &Path, key: &str, extra: &[&str]| {
        let mut args = vec![
            "evidence",
            "verify",
            bundle.to_str().unwrap(),
            "--key",
            key,
            "--trust-anchor",
            anchor.to_str().unwrap(),
            "--at",
            "created",
        ];
        args.extend_from_slice(extra);
        certwatch(&args)
    };
    let out = run(&bundle, &other, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("NOT VERIFIED"), "{}", stdout(&out));

    // The verdict changed after signing: the signature no longer covers it.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["verdict"] = "mismatch".into();
    let altered = dir.path().join("altered.json");
    std::fs::write(&altered, v.to_string()).unwrap();
    let out = run(&altered, &b64, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    let out = run(&bundle, &b64, &["--domain", "example.org"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    // Without the private root's anchor (the IANA root by default), the chains fail.
    let out = certwatch(&[
        "evidence",
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        &b64,
        "--at",
        "created",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));

    // Usage errors exit 3.
    for bad in [
        vec!["--key", "not-a-key"],
        vec!["--key", b64.as_str(), "--at", "yesterday"],
    ] {
        let mut args = vec!["evidence", "verify", bundle.to_str().unwrap()];
        args.extend(bad.iter().copied());
        let out = certwatch(&args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
    }
    let out = certwatch(&[
        "evidence",
        "verify",
        "/nonexistent/bundle.json",
        "--key",
        &b64,
    ]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn help_documents_exit_codes_and_how_to_get_the_key() {
    let out = certwatch(&["evidence", "verify", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for needle in [
        "--key",
        "--trust-anchor",
        "--at",
        "Exit codes",
        "Examples",
        "certwatch evidence verify ",
        "/.well-known/certwatch-evidence-key.json",
    ] {
        assert!(help.contains(needle), "lacks {needle}: {help}");
    }
}
