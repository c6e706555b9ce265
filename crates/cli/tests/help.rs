//! `--help` teaches every verb (options, exit codes, examples) and `certwatch completions`
//! generates a script for every supported shell.

use std::process::{Command, Output};

fn certwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .output()
        .expect("run certwatch")
}

const NET: &[&str] = &[
    "--via",
    "--tor-config",
    "--resolver",
    "--trust-anchor",
    "--services",
    "--timeout",
    "--concurrency",
    "--allow-private-targets",
];

#[test]
fn every_verb_documents_its_options_exit_codes_and_examples() {
    let verbs: &[(&str, &[&str])] = &[
        ("check", &["--domains-file", "--json", "--confirm"]),
        (
            "records",
            &[
                "--cert",
                "--key",
                "--host",
                "--port",
                "--ttl",
                "--next",
                "--confirm",
                "--domains-file",
            ],
        ),
        (
            "watch",
            &[
                "--interval",
                "--exec",
                "--hook-timeout",
                "--json",
                "--confirm",
                "--domains-file",
            ],
        ),
    ];
    for (verb, own) in verbs {
        let out = certwatch(&[verb, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{verb}");
        let help = String::from_utf8(out.stdout).unwrap();
        for option in own.iter().chain(NET) {
            assert!(help.contains(option), "{verb} --help lacks {option}");
        }
        assert!(help.contains("Exit codes"), "{verb}");
        assert!(help.contains("Examples"), "{verb}");
        assert!(help.contains(&format!("certwatch {verb} ")), "{verb}");
    }
    let out = certwatch(&["watch", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "CERTWATCH_DOMAIN",
        "CERTWATCH_VERDICT",
        "CERTWATCH_PREVIOUS_VERDICT",
        "CERTWATCH_PRESENTED_SPKI_SHA256",
        "CERTWATCH_EXPECTED",
        "CERTWATCH_VANTAGE",
        "CERTWATCH_REPORT",
    ] {
        assert!(help.contains(var), "watch --help lacks {var}");
    }
    let out = certwatch(&["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for verb in ["check", "records", "watch", "completions"] {
        assert!(help.contains(verb), "--help lacks {verb}");
    }
    let out = certwatch(&["completions", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Exit codes") && help.contains("Examples"));
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = certwatch(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in [
            "certwatch",
            "records",
            "watch",
            "interval",
            "allow-private-targets",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = certwatch(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_bash_script_is_valid_bash() {
    let out = certwatch(&["completions", "bash"]);
    let script = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certwatch.bash");
    std::fs::write(&file, script).unwrap();
    // `bash -n` parses without running; then sourcing defines the completion function.
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "bash -n '{0}' && . '{0}' && complete -p certwatch",
            file.display()
        ))
        .output()
        .expect("run bash");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("certwatch"));
}

#[test]
fn watch_usage_errors_exit_3() {
    for (args, needle) in [
        (
            vec!["watch", "--interval", "15", "example.org"],
            "--interval",
        ),
        (
            vec!["watch", "--interval", "0s", "example.org"],
            "at least 1s",
        ),
        (
            vec!["watch", "--via", "direct", "--resolver", "127.0.0.1:9"],
            "no domain",
        ),
        (
            vec!["watch", "--domains-file", "/nonexistent/domains.txt"],
            "/nonexistent/domains.txt",
        ),
    ] {
        let out = certwatch(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
