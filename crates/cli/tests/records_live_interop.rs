//! `certwatch records DOMAIN` (live mode) against the loopback interop environment: the lines
//! equal the hashes of the environment's PKI, the warnings say what the lines trust, and
//! `--confirm` refuses when fewer than two vantage points are conclusive.
//!
//! `CERTWATCH_INTEROP=/tmp/certwatch-interop/env.json cargo test -p certwatch-cli --features interop --test records_live_interop`
#![cfg(feature = "interop")]

use std::collections::BTreeSet;
use std::process::Command;

use certwatch_testkit::Interop;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn records(env: &Interop, extra: &[&str]) -> Run {
    let mut args = vec![
        "records",
        "--resolver",
        env.str("dns.unbound").unwrap(),
        "--trust-anchor",
        env.str("dns.trust_anchor").unwrap(),
        "--allow-private-targets",
        "--timeout",
        "30",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(&args)
        .output()
        .expect("run certwatch");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "certwatch {args:?}\nexit {}\n{}{}",
        run.code, run.stdout, run.stderr
    );
    run
}

fn spki(env: &Interop, key: &str) -> String {
    env.str(&format!("pki.keys.{key}.spki_sha256"))
        .unwrap()
        .to_owned()
}

/// The zone lines (not comments) of an output.
fn zone_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .collect()
}

#[test]
fn live_lines_are_the_keys_of_every_endpoint_with_the_trust_warning() {
    let env = Interop::require();
    let run = records(&env, &["--via", "direct", "--ttl", "300", "match.test"]);
    assert_eq!(run.code, 0);
    let ec = spki(&env, "host-ec");
    let rsa = spki(&env, "host-rsa");
    let got: BTreeSet<&str> = zone_lines(&run.stdout).into_iter().collect();
    let mut want = BTreeSet::new();
    let wanted: Vec<String> = [5222, 5223, 5269, 5270]
        .iter()
        .flat_map(|port| {
            [&ec, &rsa].map(|k| format!("_{port}._tcp.xmpp.match.test. 300 IN TLSA 3 1 1 {k}"))
        })
        .collect();
    for w in &wanted {
        want.insert(w.as_str());
    }
    assert_eq!(got, want);
    // Grouped and commented: each owner has a comment naming its service and port, each key
    // its type and vantage.
    assert!(
        run.stdout.contains(
            "; _5269._tcp.xmpp.match.test (services s2s-starttls on xmpp.match.test port 5269)"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("; ecdsa key seen at 127.0.0.1 from direct")
    );
    assert!(
        run.stdout
            .contains("; rsa key seen at 127.0.0.1 from direct")
    );
    // match.test already publishes both keys, and each comment says so.
    assert_eq!(
        run.stdout.matches("from direct; already published").count(),
        8,
        "{}",
        run.stdout
    );
    // The trust warning, with the offline alternatives.
    assert!(
        run.stderr
            .contains("pin whatever key the connection presented")
    );
    assert!(run.stderr.contains("certwatch records --key"));
    assert!(run.stderr.contains("openssl x509"));
    // A signed zone: no DNSSEC warning.
    assert!(!run.stderr.contains("useless until DNSSEC"));
}

#[test]
fn several_targets_both_families_and_a_single_key_server() {
    let env = Interop::require();
    let run = records(
        &env,
        &[
            "--via",
            "direct",
            "--services",
            "c2s-starttls",
            "multi.test",
        ],
    );
    assert_eq!(run.code, 0);
    let lines = zone_lines(&run.stdout);
    let ejabberd = spki(&env, "ejabberd-ec");
    // ejabberd has a single ECDSA key: exactly one line for its owner.
    let ej: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("_5222._tcp.ejabberd.hosts.test."))
        .collect();
    assert_eq!(ej.len(), 1, "{lines:?}");
    assert!(ej[0].ends_with(&ejabberd));
    // The dual-stack target was probed on both families; its key lines are not repeated.
    let dual: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("_5222._tcp.dual.multi.test."))
        .collect();
    assert_eq!(dual.len(), 2, "{lines:?}");
    assert!(
        run.stdout.contains("127.0.0.1, ::1") || run.stdout.contains("::1, 127.0.0.1"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unsigned_zone_is_named_as_useless_until_dnssec() {
    let env = Interop::require();
    let run = records(
        &env,
        &[
            "--via",
            "direct",
            "--services",
            "c2s-starttls",
            "insecure.test",
        ],
    );
    assert_eq!(run.code, 0);
    assert_eq!(zone_lines(&run.stdout).len(), 2, "{}", run.stdout);
    assert!(run.stderr.contains("useless until DNSSEC is enabled"));
    assert!(
        run.stderr.contains("_xmpp-client._tcp.insecure.test"),
        "{}",
        run.stderr
    );
}

#[test]
fn next_key_in_live_mode_adds_one_line_per_owner() {
    let env = Interop::require();
    let next = env.str("pki.keys.other-ec.key").unwrap();
    let run = records(
        &env,
        &[
            "--via",
            "direct",
            "--services",
            "c2s-starttls,s2s-starttls",
            "--next",
            next,
            "nodata.test",
        ],
    );
    assert_eq!(run.code, 0);
    let other = spki(&env, "other-ec");
    for port in [5222, 5269] {
        let line = format!("_{port}._tcp.xmpp.nodata.test. 3600 IN TLSA 3 1 1 {other}");
        assert_eq!(
            run.stdout.lines().filter(|l| *l == line).count(),
            1,
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .contains("keep both lines until the old key is retired")
    );
}

#[test]
fn confirm_over_direct_only_refuses_with_each_vantage_and_key() {
    let env = Interop::require();
    let run = records(
        &env,
        &[
            "--via",
            "direct",
            "--services",
            "c2s-starttls",
            "--confirm",
            "2",
            "match.test",
        ],
    );
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("refusing to print"));
    assert!(
        run.stderr
            .contains(&format!("direct: {}", spki(&env, "host-ec")))
    );
    assert!(
        run.stderr
            .contains(&format!("direct: {}", spki(&env, "host-rsa")))
    );
}

#[test]
fn nothing_to_print_exits_3() {
    let env = Interop::require();
    // The server is dead: no key was seen.
    let dead = records(&env, &["--via", "direct", "--timeout", "5", "dead.test"]);
    assert_eq!(dead.code, 3);
    assert!(dead.stdout.is_empty());
    // Private addresses are refused without --allow-private-targets: nothing probed.
    let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args([
            "records",
            "--via",
            "direct",
            "--resolver",
            env.str("dns.unbound").unwrap(),
            "--trust-anchor",
            env.str("dns.trust_anchor").unwrap(),
            "match.test",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server"));
}

/// Through the private Tor network with `--confirm 2`: two rounds of distinct exits plus the
/// direct path all see the same keys, so the lines are printed, with every vantage named.
#[cfg(feature = "tor")]
#[test]
fn confirm_through_distinct_exits_prints_when_all_agree() {
    let env = Interop::require();
    let arti = env.private_arti_config().unwrap();
    let run = records(
        &env,
        &[
            "--via",
            "tor",
            "--tor-config",
            arti.path_str(),
            "--services",
            "c2s-starttls",
            "--confirm",
            "2",
            "match.test",
        ],
    );
    assert_eq!(run.code, 0);
    let got: BTreeSet<&str> = zone_lines(&run.stdout).into_iter().collect();
    let want: BTreeSet<String> = ["host-ec", "host-rsa"]
        .iter()
        .map(|k| {
            format!(
                "_5222._tcp.xmpp.match.test. 3600 IN TLSA 3 1 1 {}",
                spki(&env, k)
            )
        })
        .collect();
    assert_eq!(got, want.iter().map(String::as_str).collect());
    assert!(run.stdout.contains("every vantage point agreed"));
    // Each key line's comment names at least two distinct exits and the direct path.
    for l in run.stdout.lines().filter(|l| l.contains("key seen at")) {
        assert!(l.contains("direct"), "{l}");
        assert!(l.matches("tor:").count() >= 2, "{l}");
    }
}

/// The hostile-exit drill for `records --confirm`: one exit of the private network sends
/// `drill.test`'s connections to a MITM with another key. Whatever the exits, `records` never
/// prints the MITM's key; when the hostile exit is among the vantage points it refuses and
/// names that exit and the key it saw.
#[cfg(feature = "tor")]
#[test]
fn confirm_never_pins_a_hostile_exits_key() {
    let env = Interop::require();
    let domain = env.str("hostile.domain").unwrap().to_owned();
    let exit = format!("tor:{}", env.str("hostile.exit.address").unwrap());
    let mitm = env.str("hostile.mitm.spki_sha256").unwrap().to_owned();
    let mut refusals = 0;
    for n in 1..=8 {
        let arti = env.private_arti_config().unwrap();
        let run = records(
            &env,
            &[
                "--via",
                "tor",
                "--tor-config",
                arti.path_str(),
                "--services",
                "c2s-starttls",
                "--confirm",
                "3",
                &domain,
            ],
        );
        assert!(!run.stdout.contains(&mitm), "run {n} pinned the MITM");
        match run.code {
            0 => {
                // Printed: the hostile exit was not among the vantage points.
                assert!(!run.stdout.contains(&exit), "run {n}: {}", run.stdout);
            }
            3 => {
                if run.stderr.contains("refusing to print")
                    && run.stderr.contains(&format!("{exit}: {mitm}"))
                {
                    refusals += 1;
                }
                assert!(run.stdout.is_empty(), "run {n}");
            }
            c => panic!("run {n}: exit {c}"),
        }
        if refusals >= 2 {
            break;
        }
    }
    assert!(
        refusals >= 1,
        "the hostile exit {exit} was never among the vantage points"
    );
}

/// Several targets, one of them wrong: every key seen is printed, the wrong one marked as
/// not in the published RRset, and a warning says the server may be intercepted.
#[test]
fn a_key_outside_the_published_rrset_is_marked_and_warned_about() {
    let env = Interop::require();
    let run = records(
        &env,
        &[
            "--via",
            "direct",
            "--services",
            "c2s-starttls",
            "multi-wrong.test",
        ],
    );
    assert_eq!(run.code, 0);
    let other = spki(&env, "other-ec");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(&other) && !l.starts_with(';'))
        .expect("the wrong key's line");
    assert!(
        lines[at - 1].ends_with("; NOT in the published TLSA RRset"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("; already published"));
    assert!(
        run.stderr.contains("do NOT match the key presented"),
        "{}",
        run.stderr
    );
}
