//! End-to-end runs of `certwatch check` against the loopback interop environment
//! (`scripts/interop-env`: nsd + validating unbound, Prosody, ejabberd, the no-STARTTLS
//! Prosody), asserting exit codes and JSON fields.
//!
//! `CERTWATCH_INTEROP=/tmp/certwatch-interop/env.json cargo test -p certwatch-cli --features interop --test check_interop`
#![cfg(feature = "interop")]

use std::collections::BTreeSet;
use std::process::{Command, Output};

use certwatch_testkit::Interop;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn one(&self) -> Value {
        let mut v = self.json();
        assert_eq!(v.len(), 1, "{}", self.stdout);
        v.remove(0)
    }
}

fn certwatch(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .output()
        .expect("run certwatch");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `certwatch check --via direct --resolver <unbound> --trust-anchor <root.key> ...`.
fn check(env: &Interop, extra: &[&str]) -> Run {
    let resolver = env.str("dns.unbound").unwrap().to_owned();
    let anchor = env.str("dns.trust_anchor").unwrap().to_owned();
    let mut args = vec![
        "check",
        "--via",
        "direct",
        "--resolver",
        &resolver,
        "--trust-anchor",
        &anchor,
        "--timeout",
        "8",
    ];
    args.extend_from_slice(extra);
    let run = certwatch(&args);
    eprintln!(
        "certwatch {args:?}\nexit {}\n{}{}",
        run.code, run.stdout, run.stderr
    );
    run
}

fn check_json(env: &Interop, domain: &str) -> Run {
    check(env, &["--allow-private-targets", "--json", domain])
}

fn spki(env: &Interop, key: &str) -> String {
    env.str(&format!("pki.keys.{key}.spki_sha256"))
        .unwrap()
        .to_owned()
}

/// The SHA-256 of a certificate's SPKI as openssl computes it (the independent oracle of
/// REFERENCE §1).
fn openssl_spki_sha256(cert: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der | sha256sum"
        ))
        .output()
        .expect("run openssl");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn entries(report: &Value) -> &Vec<Value> {
    report["endpoints"].as_array().unwrap()
}

fn presented(report: &Value) -> BTreeSet<String> {
    entries(report)
        .iter()
        .filter_map(|e| e["presented_spki_sha256"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn match_exits_0_with_both_keys_of_the_dual_certificate_server() {
    let env = Interop::require();
    let run = check_json(&env, "match.test");
    assert_eq!(run.code, 0);
    let r = run.one();
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["domain"], "match.test");
    assert_eq!(r["verdict"], "match");
    assert!(r["checked_at"].as_str().unwrap().ends_with('Z'));
    assert!(r["confirmation"].is_null());
    let services: BTreeSet<&str> = entries(&r)
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["c2s-direct", "c2s-starttls", "s2s-direct", "s2s-starttls"])
    );
    for e in entries(&r) {
        assert_eq!(e["verdict"], "match", "{e}");
        assert_eq!(e["reason"], "key-matched");
        assert_eq!(e["dnssec"], "secure");
        assert_eq!(e["target"], "xmpp.match.test");
        assert_eq!(e["vantage"], "direct");
        assert_eq!(
            e["matched_record"],
            format!("3 1 1 {}", e["presented_spki_sha256"].as_str().unwrap())
        );
        let want = match e["key_type"].as_str().unwrap() {
            "ecdsa" => spki(&env, "host-ec"),
            "rsa" => spki(&env, "host-rsa"),
            other => panic!("key type {other}"),
        };
        assert_eq!(e["presented_spki_sha256"], want.as_str());
        assert!(e["error"].is_null());
    }
    assert_eq!(
        presented(&r),
        BTreeSet::from([spki(&env, "host-ec"), spki(&env, "host-rsa")])
    );
    // Both keys are published: no zone line to add.
    assert!(
        r["setup"]["zone_lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.as_str().unwrap().starts_with(';')),
        "{}",
        r["setup"]
    );
}

/// Every DNS scenario of the environment gets the verdict it expects, with the matching exit
/// code, in one run of the binary (one JSON line per domain, in order).
#[test]
fn every_described_scenario_gets_its_expected_verdict() {
    let env = Interop::require();
    let scenarios = env.get("dns.scenarios").unwrap().as_object().unwrap();
    let mut domains = Vec::new();
    let mut expected = Vec::new();
    for (name, s) in scenarios {
        let (Some(domain), Some(expect)) = (s["domain"].as_str(), s["expect"].as_str()) else {
            continue;
        };
        domains.push(domain.to_owned());
        expected.push((name.clone(), expect.to_owned()));
    }
    assert!(domains.len() >= 20, "{domains:?}");
    let mut args = vec!["--allow-private-targets", "--json"];
    args.extend(domains.iter().map(String::as_str));
    let run = check(&env, &args);
    let reports = run.json();
    assert_eq!(reports.len(), domains.len());
    let mut worst = 0;
    for ((name, expect), (r, domain)) in expected.iter().zip(reports.iter().zip(&domains)) {
        assert_eq!(r["domain"], domain.as_str());
        assert_eq!(r["verdict"], expect.as_str(), "scenario {name}: {r}");
        let code = match expect.as_str() {
            "match" => 0,
            "no-dnssec" | "no-records" | "unusable-records" => 1,
            "mismatch" | "bogus" => 2,
            // notls: the TLSA RRset is secure, so a missing STARTTLS is critical.
            "protocol-error" => 2,
            _ => 3,
        };
        worst = [worst, code]
            .into_iter()
            .max_by_key(|c| [0, 1, 3, 2][*c as usize])
            .unwrap();
    }
    assert_eq!(run.code, worst);
}

#[test]
fn several_targets_every_address_and_key_type() {
    let env = Interop::require();
    let run = check_json(&env, "multi.test");
    assert_eq!(run.code, 0);
    let r = run.one();
    let seen: BTreeSet<(String, String, String)> = entries(&r)
        .iter()
        .filter(|e| e["service"] == "c2s-starttls")
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_owned(),
                e["address"].as_str().unwrap().to_owned(),
                e["key_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        seen,
        BTreeSet::from([
            t("xmpp.hosts.test", "127.0.0.1", "ecdsa"),
            t("xmpp.hosts.test", "127.0.0.1", "rsa"),
            // ejabberd has an ECDSA key only: no RSA entry.
            t("ejabberd.hosts.test", "127.0.0.2", "ecdsa"),
            // Both families of the dual-stack target.
            t("dual.multi.test", "127.0.0.1", "ecdsa"),
            t("dual.multi.test", "127.0.0.1", "rsa"),
            t("dual.multi.test", "::1", "ecdsa"),
            t("dual.multi.test", "::1", "rsa"),
        ])
    );
    let ejabberd = spki(&env, "ejabberd-ec");
    assert!(
        entries(&r)
            .iter()
            .any(|e| e["presented_spki_sha256"] == ejabberd.as_str())
    );
}

#[test]
fn mismatch_exits_2() {
    let env = Interop::require();
    let run = check_json(&env, "mismatch.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "mismatch");
    let other = format!("3 1 1 {}", spki(&env, "other-ec"));
    for e in entries(&r) {
        assert_eq!(e["verdict"], "mismatch", "{e}");
        assert_eq!(e["reason"], "key-not-in-tlsa");
        assert_eq!(e["tlsa"], serde_json::json!([other]));
        assert!(e["matched_record"].is_null());
    }
    assert_eq!(
        presented(&r),
        BTreeSet::from([spki(&env, "host-ec"), spki(&env, "host-rsa")])
    );
    // A mismatch is an alert: no setup lines, never a pin of what the connection presented.
    assert_eq!(r["setup"]["zone_lines"], serde_json::json!([]));
    assert_eq!(r["setup"]["advice"], serde_json::json!([]));
}

#[test]
fn insecure_zone_is_no_dnssec_with_enable_dnssec_advice() {
    let env = Interop::require();
    let run = check_json(&env, "insecure.test");
    assert_eq!(run.code, 1);
    let r = run.one();
    assert_eq!(r["verdict"], "no-dnssec");
    for e in entries(&r) {
        assert_eq!(e["verdict"], "no-dnssec", "{e}");
        assert_eq!(e["dnssec"], "insecure");
    }
    let advice: Vec<&str> = r["setup"]["advice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        advice
            .iter()
            .any(|a| a.starts_with("Enable DNSSEC for insecure.test")
                && a.contains("_xmpp-client._tcp.insecure.test")),
        "{advice:?}"
    );
}

#[test]
fn no_records_prints_the_line_openssl_computes() {
    let env = Interop::require();
    let run = check_json(&env, "nodata.test");
    assert_eq!(run.code, 1);
    let r = run.one();
    assert_eq!(r["verdict"], "no-records");
    for e in entries(&r) {
        assert_eq!(e["verdict"], "no-records", "{e}");
        assert_eq!(e["reason"], "no-tlsa");
        assert_eq!(e["dnssec"], "secure");
    }
    let lines: Vec<&str> = r["setup"]["zone_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for key in ["host-ec", "host-rsa"] {
        let cert = env.str(&format!("pki.keys.{key}.cert")).unwrap();
        let hash = openssl_spki_sha256(cert);
        assert_eq!(hash, spki(&env, key));
        let line = format!("_5222._tcp.xmpp.nodata.test. 3600 IN TLSA 3 1 1 {hash}");
        assert!(lines.contains(&line.as_str()), "{line} not in {lines:?}");
    }
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "pins-from-live-probe"),
        "{}",
        r["warnings"]
    );
    // The human output prints the same line.
    let human = check(&env, &["--allow-private-targets", "nodata.test"]);
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains(&format!(
        "_5222._tcp.xmpp.nodata.test. 3600 IN TLSA 3 1 1 {}",
        spki(&env, "host-ec")
    )));
}

#[test]
fn bogus_exits_2() {
    let env = Interop::require();
    let run = check_json(&env, "bogus.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "bogus");
    assert!(entries(&r).iter().any(|e| e["dnssec"] == "bogus"
        && e["verdict"] == "bogus"
        && !e["dnssec_reason"].is_null()));
}

#[test]
fn dead_zone_is_indeterminate_exit_3() {
    let env = Interop::require();
    let run = check(&env, &["--allow-private-targets", "--json", "dead.test"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let r = run.one();
    assert_eq!(r["verdict"], "indeterminate");
    assert!(entries(&r).iter().all(|e| e["verdict"] == "indeterminate"));
}

#[test]
fn missing_starttls_on_a_dane_endpoint_is_a_protocol_error_exit_2() {
    let env = Interop::require();
    let run = check_json(&env, "notls.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "protocol-error");
    let bad: Vec<&Value> = entries(&r)
        .iter()
        .filter(|e| e["verdict"] == "protocol-error")
        .collect();
    assert!(!bad.is_empty());
    for e in bad {
        assert_eq!(e["address"], "127.0.0.3");
        assert_eq!(e["error"]["class"], "xmpp", "{e}");
        assert!(e["presented_spki_sha256"].is_null());
    }
}

#[test]
fn private_targets_are_refused_by_default() {
    let env = Interop::require();
    let run = check(&env, &["--json", "match.test"]);
    assert_eq!(run.code, 3);
    let r = run.one();
    assert_eq!(r["verdict"], "indeterminate");
    for e in entries(&r) {
        assert_eq!(e["error"]["class"], "private-address", "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("loopback"));
        assert!(e["vantage"].is_null());
    }
}

#[test]
fn several_domains_one_line_each_worst_exit_code() {
    let env = Interop::require();
    let run = check(
        &env,
        &[
            "--allow-private-targets",
            "--json",
            "--services",
            "c2s-starttls",
            "match.test",
            "mismatch.test",
        ],
    );
    assert_eq!(run.code, 2);
    let v = run.json();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["verdict"], "match");
    assert_eq!(v[1]["verdict"], "mismatch");
    for r in &v {
        assert!(entries(r).iter().all(|e| e["service"] == "c2s-starttls"));
    }
}

#[test]
fn human_output_marks_each_endpoint() {
    let env = Interop::require();
    let run = check(
        &env,
        &[
            "--allow-private-targets",
            "--services",
            "c2s-starttls",
            "match.test",
        ],
    );
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("[ OK ] match.test: match"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "c2s-starttls xmpp.match.test:5222 [127.0.0.1] ecdsa key {}",
        spki(&env, "host-ec")
    )));
}

#[test]
fn confirm_direct_only_has_one_vantage_point_so_a_mismatch_is_indeterminate() {
    let env = Interop::require();
    let run = check(
        &env,
        &[
            "--allow-private-targets",
            "--json",
            "--services",
            "c2s-starttls",
            "--confirm",
            "2",
            "mismatch.test",
        ],
    );
    assert_eq!(run.code, 3);
    let r = run.one();
    assert_eq!(r["verdict"], "indeterminate");
    assert_eq!(r["confirmation"]["classification"], "indeterminate");
    assert_eq!(r["confirmation"]["vantage_points"], 1);
    assert_eq!(r["confirmation"]["distinct_exits"], 0);
    // The entries keep what was seen.
    assert!(entries(&r).iter().all(|e| e["verdict"] == "mismatch"));
    let human = check(
        &env,
        &[
            "--allow-private-targets",
            "--services",
            "c2s-starttls",
            "--confirm",
            "2",
            "mismatch.test",
        ],
    );
    assert_eq!(human.code, 3);
    assert!(
        human
            .stdout
            .contains("confirmation: indeterminate (1 vantage points, 0 distinct exits"),
        "{}",
        human.stdout
    );
    // Nothing to confirm on a match.
    let ok = check(
        &env,
        &[
            "--allow-private-targets",
            "--json",
            "--services",
            "c2s-starttls",
            "--confirm",
            "2",
            "match.test",
        ],
    );
    assert_eq!(ok.code, 0);
    assert!(ok.one()["confirmation"].is_null());
}

#[test]
fn invalid_domain_and_usage_errors_exit_3() {
    let env = Interop::require();
    let run = check(&env, &["--allow-private-targets", "exa mple..org"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("invalid domain"), "{}", run.stderr);
    let usage = certwatch(&["check", "--no-such-flag", "match.test"]);
    assert_eq!(usage.code, 3);
    let services = check(&env, &["--services", "xmpp", "match.test"]);
    assert_eq!(services.code, 3);
    assert!(
        services.stderr.contains("unknown service"),
        "{}",
        services.stderr
    );
}

#[test]
fn unreachable_resolver_has_its_own_message() {
    let env = Interop::require();
    let anchor = env.str("dns.trust_anchor").unwrap();
    let run = certwatch(&[
        "check",
        "--via",
        "direct",
        "--resolver",
        "127.0.0.1:9",
        "--trust-anchor",
        anchor,
        "--timeout",
        "2",
        "match.test",
    ]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

/// `--via tor` with the embedded arti client on the private Tor network of the interop
/// environment: the same verdicts and exit codes, and the exit relay in `vantage`.
#[cfg(feature = "tor")]
#[test]
fn via_embedded_tor_on_the_private_network() {
    let env = Interop::require();
    let resolver = env.str("dns.unbound").unwrap();
    let anchor = env.str("dns.trust_anchor").unwrap();
    // Each arti client gets its own storage (see Interop::private_arti_config).
    let arti_config = env.private_arti_config().unwrap();
    let arti = arti_config.path_str();
    let run = |domain: &str| {
        let args = [
            "check",
            "--via",
            "tor",
            "--tor-config",
            arti,
            "--resolver",
            resolver,
            "--trust-anchor",
            anchor,
            "--allow-private-targets",
            "--services",
            "c2s-starttls,s2s-direct",
            "--timeout",
            "30",
            "--json",
            domain,
        ];
        let run = certwatch(&args);
        eprintln!(
            "certwatch {args:?}\nexit {}\n{}{}",
            run.code, run.stdout, run.stderr
        );
        run
    };
    let ok = run("match.test");
    assert_eq!(ok.code, 0);
    let r = ok.one();
    assert_eq!(r["verdict"], "match");
    for e in entries(&r) {
        let vantage = e["vantage"].as_str().unwrap();
        assert!(vantage.starts_with("tor"), "{vantage}");
    }
    assert_eq!(
        presented(&r),
        BTreeSet::from([spki(&env, "host-ec"), spki(&env, "host-rsa")])
    );
    let bad = run("mismatch.test");
    assert_eq!(bad.code, 2);
    assert_eq!(bad.one()["verdict"], "mismatch");
}

/// `--confirm 2` through the private Tor network: every exit and the direct path see the
/// same wrong key, so this is a server-side interception and stays `mismatch`.
#[cfg(feature = "tor")]
#[test]
fn confirm_through_distinct_exits_keeps_a_server_side_mismatch() {
    let env = Interop::require();
    let arti = env.private_arti_config().unwrap();
    let args = [
        "check",
        "--via",
        "tor",
        "--tor-config",
        arti.path_str(),
        "--resolver",
        env.str("dns.unbound").unwrap(),
        "--trust-anchor",
        env.str("dns.trust_anchor").unwrap(),
        "--allow-private-targets",
        "--services",
        "c2s-starttls",
        "--timeout",
        "30",
        "--confirm",
        "2",
        "--json",
        "mismatch.test",
    ];
    let run = certwatch(&args);
    eprintln!("exit {}\n{}{}", run.code, run.stdout, run.stderr);
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "mismatch");
    let c = &r["confirmation"];
    assert_eq!(c["classification"], "server-side-interception", "{c}");
    assert!(c["vantage_points"].as_u64().unwrap() >= 3, "{c}");
    assert!(c["distinct_exits"].as_u64().unwrap() >= 2, "{c}");
}

/// A Tor configuration that cannot be read or parsed is a setup error (exit 3), reported
/// before any domain is checked.
#[cfg(feature = "tor")]
#[test]
fn unusable_tor_config_exits_3() {
    let dir = std::env::temp_dir().join(format!("certwatch-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("arti.toml");
    std::fs::write(&bad, "[storage\n").unwrap();
    let run = certwatch(&[
        "check",
        "--via",
        "tor",
        "--tor-config",
        bad.to_str().unwrap(),
        "--resolver",
        "127.0.0.1:9",
        "match.test",
    ]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("arti.toml"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without the `tor` feature, `--via tor` says so and exits 3 instead of pretending.
#[cfg(not(feature = "tor"))]
#[test]
fn via_tor_without_the_feature_exits_3() {
    let run = certwatch(&[
        "check",
        "--via",
        "tor",
        "--resolver",
        "127.0.0.1:9",
        "match.test",
    ]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("without embedded Tor"),
        "{}",
        run.stderr
    );
}

/// `--via socks5://` through the environment's C-tor: the exit cannot be seen, so entries say
/// `socks` and a confirmation says its diversity is unverified.
#[test]
fn via_external_tor_socks() {
    let env = Interop::require();
    let via = format!("socks5://{}", env.str("tor.socks").unwrap());
    let run = |domain: &str| {
        let args = [
            "check",
            "--via",
            via.as_str(),
            "--resolver",
            env.str("dns.unbound").unwrap(),
            "--trust-anchor",
            env.str("dns.trust_anchor").unwrap(),
            "--allow-private-targets",
            "--services",
            "c2s-starttls",
            "--timeout",
            "30",
            "--confirm",
            "2",
            "--json",
            domain,
        ];
        let run = certwatch(&args);
        eprintln!(
            "certwatch {args:?}\nexit {}\n{}{}",
            run.code, run.stdout, run.stderr
        );
        run
    };
    let ok = run("match.test");
    assert_eq!(ok.code, 0);
    let r = ok.one();
    assert_eq!(r["verdict"], "match");
    assert!(entries(&r).iter().all(|e| e["vantage"] == "socks"));
    assert!(r["confirmation"].is_null());
    let bad = run("mismatch.test");
    assert_eq!(bad.code, 2);
    let r = bad.one();
    assert_eq!(r["verdict"], "mismatch");
    assert_eq!(r["confirmation"]["diversity_verified"], false);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "diversity-unverified")
    );
}

#[test]
fn domains_file_adds_domains_after_the_command_line() {
    let env = Interop::require();
    let dir = std::env::temp_dir().join(format!("certwatch-domains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("domains.txt");
    std::fs::write(
        &file,
        "# watched\nnodata.test\n\n  MATCH.test.  # trailing comment\n",
    )
    .unwrap();
    let run = check(
        &env,
        &[
            "--allow-private-targets",
            "--json",
            "--services",
            "c2s-starttls",
            "--domains-file",
            file.to_str().unwrap(),
            "mismatch.test",
        ],
    );
    let domains: Vec<String> = run
        .json()
        .iter()
        .map(|r| r["domain"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(domains, ["mismatch.test", "nodata.test", "match.test"]);
    assert_eq!(run.code, 2);
    let missing = check(&env, &["--domains-file", "/nonexistent/domains.txt"]);
    assert_eq!(missing.code, 3);
    assert!(
        missing.stderr.contains("/nonexistent/domains.txt"),
        "{}",
        missing.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
