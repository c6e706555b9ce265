//! End-to-end runs of `certwatch check` against the loopback interop environment
//! (`scripts/interop-env`: nsd + validating unbound, Prosody, a second Prosody with another
//! key, ejabberd, the no-STARTTLS Prosody, the replay server, the private Tor network),
//! asserting exit codes and JSON fields.
//!
//! Issue 7's scenarios each run over `--via direct` and `--via tor` (embedded arti on the
//! private network): `<scenario>::direct` and `<scenario>::tor`. They are match, mismatch (a
//! second Prosody with another key), no-dnssec, no-records (the printed line equals the hash
//! openssl computes from what the server presents), bogus, indeterminate (the server is down;
//! and a dead zone), protocol error (no STARTTLS), the replay server (genuine chain, another
//! key: `unproven-key`) and several targets with one wrong. The hostile-exit drill of
//! `--confirm` is in `drill_interop.rs`.
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

/// The transport of a scenario run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Direct,
    /// Embedded arti on the private Tor network, with storage of its own for each run.
    #[cfg_attr(not(feature = "tor"), allow(dead_code))]
    Tor,
}

/// `certwatch check --via <via> --allow-private-targets --json DOMAIN` with the environment's
/// resolver and trust anchor.
fn check_via(env: &Interop, via: Via, domain: &str) -> Run {
    match via {
        Via::Direct => check(env, &["--allow-private-targets", "--json", domain]),
        Via::Tor => {
            let arti = env
                .private_arti_config()
                .expect("private arti configuration");
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
        }
    }
}

/// Asserts that an entry was probed over `via` (`direct`, or `tor:<exit>` with a relay's
/// address).
fn assert_vantage(env: &Interop, via: Via, e: &Value) {
    let vantage = e["vantage"]
        .as_str()
        .unwrap_or_else(|| panic!("no vantage: {e}"));
    match via {
        Via::Direct => assert_eq!(vantage, "direct", "{e}"),
        Via::Tor => {
            let exit = vantage
                .strip_prefix("tor:")
                .unwrap_or_else(|| panic!("not a Tor exit vantage: {e}"));
            let relays = env.get("tor.relays").unwrap().as_array().unwrap();
            assert!(
                relays.iter().any(|r| r["address"] == exit),
                "{exit} is not an exit of the private network"
            );
        }
    }
}

/// The SHA-256 of the SubjectPublicKeyInfo of the leaf that a server presents live, computed
/// by openssl alone (`s_client | x509 -pubkey | pkey -pubin -outform DER | dgst -sha256`).
fn openssl_live_spki_sha256(addr: &str, port: u16, domain: &str, sigalgs: &str) -> String {
    let script = format!(
        "timeout 20 openssl s_client -connect {addr}:{port} -starttls xmpp -xmpphost {domain} \
         -sigalgs {sigalgs} </dev/null 2>/dev/null | openssl x509 -pubkey -noout \
         | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{script}: {out:?}");
    let hash = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(hash.len(), 64, "{script}: {out:?}");
    hash
}

/// One test per transport for a scenario function `fn(Via)`: `<name>::direct` and
/// `<name>::tor`.
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn direct() {
                super::$name(super::Via::Direct);
            }
            #[cfg(feature = "tor")]
            #[test]
            fn tor() {
                super::$name(super::Via::Tor);
            }
        }
    )*};
}

over_both_transports!(
    match_exits_0_with_both_keys_of_the_dual_certificate_server,
    mismatch_is_a_second_prosody_with_another_key,
    insecure_zone_is_no_dnssec_with_enable_dnssec_advice,
    no_records_prints_the_line_openssl_computes,
    bogus_exits_2,
    server_down_is_indeterminate_exit_3,
    dead_zone_is_indeterminate_exit_3,
    missing_starttls_on_a_dane_endpoint_is_a_protocol_error_exit_2,
    replayed_chain_without_the_key_is_a_mismatch_unproven_key,
    several_targets_one_of_them_wrong,
    every_described_scenario_gets_its_expected_verdict,
);

fn match_exits_0_with_both_keys_of_the_dual_certificate_server(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "match.test");
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
        assert_vantage(&env, via, e);
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

/// `mismatch.test`: a second Prosody (`xmpp.other`) with another key (other-ec), while the
/// domain's TLSA pins the first Prosody's key (host-ec).
fn mismatch_is_a_second_prosody_with_another_key(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "mismatch.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "mismatch");
    let pinned = format!("3 1 1 {}", spki(&env, "host-ec"));
    let other_address = env.str("xmpp.other.address").unwrap();
    assert_ne!(other_address, env.str("xmpp.prosody.address").unwrap());
    assert_eq!(entries(&r).len(), 4, "one ECDSA entry per service: {r}");
    for e in entries(&r) {
        assert_eq!(e["verdict"], "mismatch", "{e}");
        assert_eq!(e["reason"], "key-not-in-tlsa");
        assert_eq!(e["address"], other_address);
        assert_eq!(e["tlsa"], serde_json::json!([pinned]));
        assert!(e["matched_record"].is_null());
        assert_vantage(&env, via, e);
    }
    assert_eq!(presented(&r), BTreeSet::from([spki(&env, "other-ec")]));
    // A mismatch is an alert: no setup lines, never a pin of what the connection presented.
    assert_eq!(r["setup"]["zone_lines"], serde_json::json!([]));
    assert_eq!(r["setup"]["advice"], serde_json::json!([]));
}

fn insecure_zone_is_no_dnssec_with_enable_dnssec_advice(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "insecure.test");
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

/// `nodata.test`: secure, no TLSA. The zone line certwatch prints for each key equals the
/// hash that openssl computes from the certificate the server presents (and from the PKI's
/// certificate file).
fn no_records_prints_the_line_openssl_computes(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "nodata.test");
    assert_eq!(run.code, 1);
    let r = run.one();
    assert_eq!(r["verdict"], "no-records");
    for e in entries(&r) {
        assert_eq!(e["verdict"], "no-records", "{e}");
        assert_eq!(e["reason"], "no-tlsa");
        assert_eq!(e["dnssec"], "secure");
        assert_vantage(&env, via, e);
    }
    let lines: Vec<&str> = r["setup"]["zone_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let address = env.str("xmpp.prosody.address").unwrap();
    for (key, sigalgs) in [
        ("host-ec", "ECDSA+SHA256"),
        ("host-rsa", "RSA-PSS+SHA256:RSA+SHA256"),
    ] {
        let live = openssl_live_spki_sha256(address, 5222, "nodata.test", sigalgs);
        let cert = env.str(&format!("pki.keys.{key}.cert")).unwrap();
        assert_eq!(live, openssl_spki_sha256(cert), "{key}");
        for port in [5222, 5223, 5269, 5270] {
            let line = format!("_{port}._tcp.xmpp.nodata.test. 3600 IN TLSA 3 1 1 {live}");
            assert!(lines.contains(&line.as_str()), "{line} not in {lines:?}");
        }
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
    if via == Via::Direct {
        // The human output prints the same line.
        let human = check(&env, &["--allow-private-targets", "nodata.test"]);
        assert_eq!(human.code, 1);
        assert!(human.stdout.contains(&format!(
            "_5222._tcp.xmpp.nodata.test. 3600 IN TLSA 3 1 1 {}",
            spki(&env, "host-ec")
        )));
    }
}

fn bogus_exits_2(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "bogus.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "bogus");
    assert!(entries(&r).iter().any(|e| e["dnssec"] == "bogus"
        && e["verdict"] == "bogus"
        && !e["dnssec_reason"].is_null()));
    // Never a pin of a key while DNS is bogus.
    assert_eq!(r["setup"]["zone_lines"], serde_json::json!([]));
}

/// `down.test`: DNS is fine (secure, with TLSA) but nothing listens at the server's address:
/// indeterminate (exit 3), never an alert and never a setup line.
fn server_down_is_indeterminate_exit_3(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "down.test");
    assert_eq!(run.code, 3, "{}", run.stderr);
    let r = run.one();
    assert_eq!(r["verdict"], "indeterminate");
    assert!(!entries(&r).is_empty());
    for e in entries(&r) {
        assert_eq!(e["verdict"], "indeterminate", "{e}");
        assert_eq!(e["reason"], "probe-inconclusive", "{e}");
        assert_eq!(e["dnssec"], "secure", "{e}");
        assert_eq!(e["address"], "127.0.0.8", "{e}");
        assert!(e["presented_spki_sha256"].is_null(), "{e}");
        // Direct: the connection is refused. Through Tor the exit reports the failure.
        let class = e["error"]["class"].as_str().unwrap_or_default();
        let want = if via == Via::Direct { "refused" } else { "tor" };
        assert_eq!(class, want, "{e}");
    }
    assert_eq!(r["setup"]["zone_lines"], serde_json::json!([]));
}

/// `dead.test`: the zone's name server never answers: indeterminate, never "no records".
fn dead_zone_is_indeterminate_exit_3(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "dead.test");
    assert_eq!(run.code, 3, "{}", run.stderr);
    let r = run.one();
    assert_eq!(r["verdict"], "indeterminate");
    assert!(entries(&r).iter().all(|e| e["verdict"] == "indeterminate"));
}

fn missing_starttls_on_a_dane_endpoint_is_a_protocol_error_exit_2(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "notls.test");
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
        assert_vantage(&env, via, e);
    }
}

/// `replay.test`: the replay server presents host-ec's genuine chain, which the TLSA pins,
/// but signs the handshake with another key. The presented certificate would "match"; the
/// key is not proven, so this is a mismatch with reason `unproven-key` (REFERENCE section 3).
fn replayed_chain_without_the_key_is_a_mismatch_unproven_key(via: Via) {
    let env = Interop::require();
    assert_eq!(env.str("replay.chain_key").unwrap(), "host-ec");
    let run = check_via(&env, via, "replay.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "mismatch");
    let services: BTreeSet<&str> = entries(&r)
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(services.len(), 4, "{r}");
    let host_ec = spki(&env, "host-ec");
    for e in entries(&r) {
        assert_eq!(e["verdict"], "mismatch", "{e}");
        assert_eq!(e["reason"], "unproven-key", "{e}");
        assert_eq!(e["address"], env.str("replay.address").unwrap());
        assert_eq!(e["error"]["class"], "unproven-key", "{e}");
        // The chain is the genuine one; its key is pinned, yet no match is recorded.
        assert_eq!(e["presented_spki_sha256"], host_ec.as_str(), "{e}");
        assert_eq!(e["tlsa"], serde_json::json!([format!("3 1 1 {host_ec}")]));
        assert!(e["matched_record"].is_null(), "{e}");
        assert_vantage(&env, via, e);
    }
    assert_eq!(r["setup"]["zone_lines"], serde_json::json!([]));
}

/// `multi-wrong.test`: two SRV targets of the same priority; the first Prosody presents a
/// pinned key, the second Prosody another one. The domain is a mismatch; the good target's
/// entries match and the bad one's mismatch.
fn several_targets_one_of_them_wrong(via: Via) {
    let env = Interop::require();
    let run = check_via(&env, via, "multi-wrong.test");
    assert_eq!(run.code, 2);
    let r = run.one();
    assert_eq!(r["verdict"], "mismatch");
    let mut seen = BTreeSet::new();
    for e in entries(&r) {
        let target = e["target"].as_str().unwrap();
        seen.insert(target.to_owned());
        assert_vantage(&env, via, e);
        match target {
            "xmpp.hosts.test" => {
                assert_eq!(e["verdict"], "match", "{e}");
                assert_eq!(e["reason"], "key-matched", "{e}");
                assert_eq!(e["address"], env.str("xmpp.prosody.address").unwrap());
            }
            "xmpp.multi-wrong.test" => {
                assert_eq!(e["verdict"], "mismatch", "{e}");
                assert_eq!(e["reason"], "key-not-in-tlsa", "{e}");
                assert_eq!(e["address"], env.str("xmpp.other.address").unwrap());
                assert_eq!(e["presented_spki_sha256"], spki(&env, "other-ec").as_str());
            }
            other => panic!("unexpected target {other}: {e}"),
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from([
            "xmpp.hosts.test".to_owned(),
            "xmpp.multi-wrong.test".to_owned()
        ])
    );
    // Both targets on all four services.
    for target in &seen {
        let services: BTreeSet<&str> = entries(&r)
            .iter()
            .filter(|e| e["target"] == target.as_str())
            .map(|e| e["service"].as_str().unwrap())
            .collect();
        assert_eq!(services.len(), 4, "{target}: {services:?}");
    }
}

/// Every DNS scenario of the environment gets the verdict it expects, with the matching exit
/// code, in one run of the binary (one JSON line per domain, in order).
fn every_described_scenario_gets_its_expected_verdict(via: Via) {
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
    let run = match via {
        Via::Direct => {
            let mut args = vec!["--allow-private-targets", "--json"];
            args.extend(domains.iter().map(String::as_str));
            check(&env, &args)
        }
        Via::Tor => {
            let arti = env
                .private_arti_config()
                .expect("private arti configuration");
            let mut args = vec![
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
                "--timeout",
                "30",
                "--json",
            ];
            args.extend(domains.iter().map(String::as_str));
            let run = certwatch(&args);
            eprintln!("exit {}\n{}{}", run.code, run.stdout, run.stderr);
            run
        }
    };
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
