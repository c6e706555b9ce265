//! Runs the `certwatch` binary's `records` verb on the fixtures of certwatch-core and compares
//! with the hashes computed by openssl (`crates/certwatch-core/tests/data/gen.sh`).

use std::path::PathBuf;
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../certwatch-core/tests/data")
}

fn certwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .output()
        .expect("run certwatch")
}

fn expected(kind: &str) -> String {
    std::fs::read_to_string(data_dir().join(format!("{kind}.sha256")))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn every_key_type_and_format_agrees_with_openssl() {
    let cases: &[(&str, &[&str])] = &[
        (
            "rsa",
            &[
                "cert.pem",
                "cert.der",
                "chain.pem",
                "spki.pem",
                "spki.der",
                "pkcs8.pem",
                "pkcs8.der",
                "pkcs1.pem",
                "pkcs1.der",
                "pkcs1pub.pem",
            ],
        ),
        (
            "p256",
            &[
                "cert.pem",
                "cert.der",
                "chain.pem",
                "spki.pem",
                "spki.der",
                "pkcs8.pem",
                "pkcs8.der",
                "sec1.pem",
                "sec1.der",
            ],
        ),
        (
            "p384",
            &[
                "cert.pem",
                "cert.der",
                "chain.pem",
                "spki.pem",
                "spki.der",
                "pkcs8.pem",
                "pkcs8.der",
                "sec1.pem",
                "sec1.der",
            ],
        ),
        (
            "ed25519",
            &[
                "cert.pem",
                "cert.der",
                "chain.pem",
                "spki.pem",
                "spki.der",
                "pkcs8.pem",
                "pkcs8.der",
            ],
        ),
    ];
    for (kind, formats) in cases {
        let want = format!(
            "_5222._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 {}\n",
            expected(kind)
        );
        for format in *formats {
            let file = data_dir().join(format!("{kind}.{format}"));
            let flag = if format.starts_with("cert") || format.starts_with("chain") {
                "--cert"
            } else {
                "--key"
            };
            let out = certwatch(&[
                "records",
                flag,
                file.to_str().unwrap(),
                "--host",
                "xmpp.example.net",
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind}.{format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                want,
                "{kind}.{format}"
            );
        }
    }
}

#[test]
fn port_ttl_and_host_normalisation() {
    let file = data_dir().join("p256.cert.pem");
    let out = certwatch(&[
        "records",
        "--cert",
        file.to_str().unwrap(),
        "--host",
        "XMPP.Example.NET.",
        "--port",
        "5269",
        "--ttl",
        "300",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "_5269._tcp.xmpp.example.net. 300 IN TLSA 3 1 1 {}\n",
            expected("p256")
        )
    );
}

#[test]
fn bad_input_exits_3_with_a_clear_message() {
    let garbage = data_dir().join("gen.sh");
    let missing = data_dir().join("no-such-file.pem");
    let encrypted = data_dir().join("p256.encrypted.pem");
    let cert = data_dir().join("p256.cert.pem");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "records",
                "--key",
                garbage.to_str().unwrap(),
                "--host",
                "h.example",
            ],
            "gen.sh",
        ),
        (
            vec![
                "records",
                "--key",
                missing.to_str().unwrap(),
                "--host",
                "h.example",
            ],
            "cannot read",
        ),
        (
            vec![
                "records",
                "--key",
                encrypted.to_str().unwrap(),
                "--host",
                "h.example",
            ],
            "encrypted",
        ),
        (
            vec![
                "records",
                "--cert",
                cert.to_str().unwrap(),
                "--host",
                "bad host",
            ],
            "not a DNS host name",
        ),
        (vec!["records", "--host", "h.example"], "--cert"),
        (vec!["records", "--cert", cert.to_str().unwrap()], "--host"),
        (
            vec![
                "records",
                "--cert",
                cert.to_str().unwrap(),
                "--host",
                "h.example",
                "--port",
                "70000",
            ],
            "--port",
        ),
        (
            vec![
                "records",
                "--cert",
                cert.to_str().unwrap(),
                "--host",
                "h.example",
                "--port",
                "0",
            ],
            "--port",
        ),
        (
            vec![
                "records",
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                cert.to_str().unwrap(),
                "--host",
                "h",
            ],
            "--key",
        ),
        (vec!["no-such-verb"], "no-such-verb"),
        (vec![], "Usage"),
    ];
    for (args, needle) in cases {
        let out = certwatch(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        ["--help"].as_slice(),
        &["--version"],
        &["records", "--help"],
    ] {
        let out = certwatch(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn next_key_adds_its_line_with_the_rollover_comment() {
    let current = data_dir().join("p256.cert.pem");
    let next = data_dir().join("rsa.pkcs8.pem");
    let out = certwatch(&[
        "records",
        "--cert",
        current.to_str().unwrap(),
        "--next",
        next.to_str().unwrap(),
        "--host",
        "xmpp.example.net",
        "--port",
        "5269",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "_5269._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 {}",
            expected("p256")
        )
    );
    assert!(lines[1].starts_with("; next key (RSA-"), "{}", lines[1]);
    assert!(
        lines[1].contains("keep both lines until the old key is retired")
            && lines[1].contains("certbot --reuse-key"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        format!(
            "_5269._tcp.xmpp.example.net. 3600 IN TLSA 3 1 1 {}",
            expected("rsa")
        )
    );
}

#[test]
fn next_key_must_differ_and_be_readable() {
    let current = data_dir().join("p256.cert.pem");
    let same = data_dir().join("p256.pkcs8.pem");
    let missing = data_dir().join("no-such-next.pem");
    for (next, needle) in [(&same, "same key"), (&missing, "--next")] {
        let out = certwatch(&[
            "records",
            "--cert",
            current.to_str().unwrap(),
            "--next",
            next.to_str().unwrap(),
            "--host",
            "xmpp.example.net",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains(needle), "{stderr}");
    }
}

#[test]
fn live_and_offline_options_do_not_mix() {
    let cert = data_dir().join("p256.cert.pem");
    let cases: Vec<Vec<&str>> = vec![
        // A domain (live) with a key file (offline).
        vec!["records", "example.org", "--cert", cert.to_str().unwrap()],
        vec!["records", "example.org", "--host", "h.example"],
        vec!["records", "example.org", "--port", "5269"],
        // --confirm is for live mode.
        vec![
            "records",
            "--cert",
            cert.to_str().unwrap(),
            "--host",
            "h.example",
            "--confirm",
            "2",
        ],
        // Live mode with an invalid --via fails before any network use.
        vec!["records", "--via", "carrier-pigeon", "example.org"],
    ];
    for args in cases {
        let out = certwatch(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
