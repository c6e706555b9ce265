//! The hostile-exit drill for `certwatch check --confirm` (issue 7), against the interop
//! environment's private Tor network.
//!
//! The environment's hostile part (`scripts/interop/hostile.sh`) runs one exit relay as its
//! own user and redirects that user's connections to the drill's own destination (the
//! `drill.test` domain, `hostile.destination`) to a MITM that presents another key
//! (`hostile.mitm`). No other test uses that destination, and the exit is normal everywhere
//! else, so the drill disturbs nobody.
//!
//! arti picks exits itself, so the drill checks `drill.test` again and again (each run a fresh
//! arti client, so fresh circuits) until the hostile exit has been exercised, within a bound.
//! Whatever the exit: certwatch never reports `mismatch`; and whenever the hostile exit carried
//! the check, the report is a `match` confirmed as `hostile-exit`, with a `hostile-exit`
//! warning that names that exit's address and the MITM's key.
//!
//! `CERTWATCH_INTEROP=/tmp/certwatch-interop/env.json cargo test -p certwatch-cli --features interop --test drill_interop`
#![cfg(all(feature = "interop", feature = "tor"))]

use std::process::Command;

use certwatch_testkit::Interop;
use serde_json::Value;

/// Runs of the check at most, and hostile runs wanted before stopping early.
const MAX_RUNS: usize = 20;
const HOSTILE_RUNS_WANTED: usize = 3;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// One `certwatch check --via tor --confirm 3 --json drill.test` with a fresh arti client.
fn drill_check(env: &Interop, domain: &str) -> Run {
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
        "--confirm",
        "3",
        "--json",
        domain,
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .output()
        .expect("run certwatch");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn entries(report: &Value) -> &Vec<Value> {
    report["endpoints"].as_array().expect("endpoints")
}

fn warnings_with_code<'a>(report: &'a Value, code: &str) -> Vec<&'a Value> {
    report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["code"] == code)
        .collect()
}

#[test]
fn a_hostile_exit_is_named_and_never_turns_into_a_mismatch() {
    let env = Interop::require();
    let domain = env.str("hostile.domain").unwrap().to_owned();
    let exit = env.str("hostile.exit.address").unwrap().to_owned();
    let mitm_spki = env.str("hostile.mitm.spki_sha256").unwrap().to_owned();
    let genuine: Vec<String> = env
        .get("hostile.genuine_keys")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            env.str(&format!("pki.keys.{}.spki_sha256", k.as_str().unwrap()))
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        !genuine.contains(&mitm_spki),
        "the MITM must present another key"
    );
    // The hostile relay is one of the network's exits.
    let relays = env.get("tor.relays").unwrap().as_array().unwrap();
    assert!(
        relays.iter().any(|r| r["address"] == exit.as_str()),
        "{exit} is not a relay of the private network"
    );
    let hostile_vantage = format!("tor:{exit}");

    let (mut hostile_runs, mut clean_runs, mut inconclusive_runs) = (0, 0, 0);
    let mut first_exits = Vec::new();
    for n in 1..=MAX_RUNS {
        let run = drill_check(&env, &domain);
        eprintln!(
            "drill run {n}: exit {}\n{}{}",
            run.code, run.stdout, run.stderr
        );
        let r: Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("run {n}: not one JSON report ({e}): {}", run.stdout));
        // Never a mismatch, whichever exit carried the check.
        assert_ne!(r["verdict"], "mismatch", "run {n}: {r}");
        assert_ne!(run.code, 2, "run {n}: {r}");

        let vantages: Vec<&str> = entries(&r)
            .iter()
            .filter_map(|e| e["vantage"].as_str())
            .collect();
        first_exits.extend(vantages.iter().map(|v| v.to_string()));
        let via_hostile = vantages.contains(&hostile_vantage.as_str());
        if via_hostile {
            hostile_runs += 1;
            // The redirection happened: the check's own probe through that exit met the MITM.
            assert!(
                entries(&r)
                    .iter()
                    .any(|e| e["vantage"] == hostile_vantage.as_str()
                        && e["presented_spki_sha256"] == mitm_spki.as_str()
                        && e["verdict"] == "mismatch"),
                "run {n}: the hostile exit's entry does not show the MITM's key: {r}"
            );
            // Confirmation through other exits and directly keeps the domain a match...
            assert_eq!(r["verdict"], "match", "run {n}: {r}");
            let c = &r["confirmation"];
            assert_eq!(c["classification"], "hostile-exit", "run {n}: {c}");
            assert_eq!(c["diversity_verified"], true, "run {n}: {c}");
            assert!(c["distinct_exits"].as_u64().unwrap() >= 2, "run {n}: {c}");
            // ...and names the exit and the key it presented.
            let hostile = warnings_with_code(&r, "hostile-exit");
            assert_eq!(hostile.len(), 1, "run {n}: {}", r["warnings"]);
            let message = hostile[0]["message"].as_str().unwrap();
            assert!(
                message.contains(&hostile_vantage) && message.contains(&mitm_spki),
                "run {n}: {message}"
            );
            assert_ne!(run.code, 3, "run {n}");
        } else if r["verdict"] == "match" {
            clean_runs += 1;
            // A clean exit saw the genuine key; nothing to confirm, nothing to warn about.
            for e in entries(&r) {
                let key = e["presented_spki_sha256"].as_str().unwrap_or_default();
                assert!(genuine.iter().any(|g| g == key), "run {n}: {e}");
            }
            assert!(r["confirmation"].is_null(), "run {n}: {r}");
            assert!(warnings_with_code(&r, "hostile-exit").is_empty(), "run {n}");
            assert_eq!(run.code, 0, "run {n}");
        } else {
            // A Tor failure is indeterminate: allowed, but it exercises nothing.
            assert_eq!(r["verdict"], "indeterminate", "run {n}: {r}");
            inconclusive_runs += 1;
        }
        if hostile_runs >= HOSTILE_RUNS_WANTED && clean_runs >= 1 {
            break;
        }
    }
    eprintln!(
        "drill: {hostile_runs} runs through the hostile exit {exit}, {clean_runs} clean, \
         {inconclusive_runs} inconclusive; first-probe vantages {first_exits:?}"
    );
    assert!(
        hostile_runs >= 1,
        "arti never used the hostile exit {exit} in {MAX_RUNS} runs: the drill exercised nothing"
    );
}
