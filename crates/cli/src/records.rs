//! `certwatch records`: the TLSA lines to publish, offline from a certificate or key file, or
//! from a live probe of a domain's servers (with a warning, and optionally confirmed from
//! several vantage points).

use std::collections::BTreeMap;
use std::path::PathBuf;

use certwatch::{CheckError, Checker, DnssecState, KeySurvey, TargetKeys, Vantage, Verdict};
use certwatch_core::{Pin, pin_from_key_material, tlsa_owner};

use crate::net::{self, NetArgs};

/// Exit code for errors and refusals.
const EXIT_ERROR: u8 = 3;

/// Arguments of `certwatch records`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
#[command(group(clap::ArgGroup::new("source").args(["cert", "key"])))]
pub struct RecordsArgs {
    /// Live mode: the XMPP domains whose servers to probe (Unicode or A-label form).
    #[arg(value_name = "DOMAIN", conflicts_with_all = ["cert", "key", "host", "port"])]
    domains: Vec<String>,
    /// Live mode: read more domains from FILE (one per line; `#` comments).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key", "host", "port"])]
    domains_file: Option<PathBuf>,
    /// Offline mode: certificate file (PEM or DER; the first certificate of a full chain is
    /// the server's).
    #[arg(long, value_name = "FILE", requires = "host")]
    cert: Option<PathBuf>,
    /// Offline mode: key file: PKCS#8, SEC1 EC or PKCS#1 RSA private key, or a public key
    /// (PEM or DER).
    #[arg(long, value_name = "FILE", requires = "host")]
    key: Option<PathBuf>,
    /// Offline mode: the host that serves XMPP: the SRV target (or the domain itself without
    /// SRV).
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Offline mode: the TCP port of the service (5222 c2s, 5223 c2s direct TLS, 5269 s2s,
    /// 5270 s2s direct) [default: 5222].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// TTL of the printed records, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl: u32,
    /// The next key (certificate or key file, PEM or DER): adds its line for a rollover, for
    /// the host and port (offline) or every host and port seen (live).
    #[arg(long, value_name = "FILE")]
    next: Option<PathBuf>,
    /// Live mode: probe through N distinct Tor exits plus directly, and refuse to print
    /// (exit 3) unless every vantage point saw the same key and at least 2 were
    /// conclusive.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16))]
    confirm: u64,
    #[command(flatten)]
    net: NetArgs,
}

const AFTER_HELP: &str = "\
Two modes:
  offline  --cert FILE | --key FILE, with --host (and --port): the line for that key,
           computed on the server from the file. This is the trusted source.
  live     DOMAIN...: discover the endpoints (SRV targets, ports, every address, every
           key type), probe them, and print one line per distinct key seen per
           TLSA owner (_PORT._tcp.TARGET), with `;` comments naming the service,
           target, port, key type and vantage point. The lines pin whatever the
           connection presented: if the path is intercepted, they pin the attacker.
           A warning on stderr says so every time. --confirm N probes through N
           distinct Tor exits plus directly and refuses to print unless all agree.

Network options (--via, --tor-config, --resolver, --trust-anchor, --services, --timeout,
--concurrency, --allow-private-targets) apply to live mode and mean what they mean for
`certwatch check`.

Exit codes:
  0  the lines were printed
  3  an error: usage, unreadable file, no key seen, DNS or Tor failure, or (--confirm)
     the vantage points disagree or fewer than 2 were conclusive

Examples:
  certwatch records --cert /etc/letsencrypt/live/example.org/fullchain.pem --host xmpp.example.org
  certwatch records --key server.key --host xmpp.example.org --port 5269 --ttl 300
  certwatch records --key current.key --next next.key --host xmpp.example.org
  certwatch records example.org
  certwatch records --confirm 3 --next next.pem example.org
  certwatch records --via direct --services c2s-starttls,s2s-starttls example.org";

/// Checks that a host name is an ASCII DNS name (an A-label) and returns it lowercase, without
/// a trailing dot.
fn host_name(host: &str) -> Result<String, String> {
    let h = host.trim().strip_suffix('.').unwrap_or(host.trim());
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.is_empty() || h.len() > 253 || !h.split('.').all(ok_label) {
        return Err(format!(
            "--host {host:?} is not a DNS host name (letters, digits and hyphens, labels separated by dots; give an internationalised name in its xn-- form)"
        ));
    }
    Ok(h.to_ascii_lowercase())
}

/// Reads a certificate or key file into a pin.
fn read_pin(path: &std::path::Path, what: &str) -> Result<Pin, String> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {label}: cannot read: {e}"))?;
    pin_from_key_material(&bytes, &label).map_err(|e| format!("{what}: {e}"))
}

/// The rollover comment and line of the next key for one TLSA owner.
fn next_key_lines(pin: &Pin, host: &str, port: u16, ttl: u32) -> String {
    format!(
        "; next key ({}), for the rollover: publish it now, keep both lines until the old key is retired, then remove the old line; renew with the same key (certbot --reuse-key) so the key changes only when you roll it\n{}\n",
        pin.algorithm(),
        pin.zone_line(host, port, ttl)
    )
}

/// Runs the verb: prints the lines (stdout) and warnings (stderr); returns the exit code.
pub fn run(args: &RecordsArgs) -> u8 {
    let live = !args.domains.is_empty() || args.domains_file.is_some();
    let result = if live {
        match net::runtime() {
            Ok(rt) => return rt.block_on(run_live(args)),
            Err(e) => Err(e),
        }
    } else {
        run_offline(args)
    };
    match result {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(message) => {
            eprintln!("certwatch: error: {message}");
            EXIT_ERROR
        }
    }
}

/// Offline mode: the line of a certificate or key file (and of the next key).
fn run_offline(args: &RecordsArgs) -> Result<String, String> {
    let (path, what) = match (&args.cert, &args.key) {
        (Some(p), _) => (p, "--cert"),
        (None, Some(p)) => (p, "--key"),
        (None, None) => {
            return Err(
                "give DOMAIN... (live probe) or --cert FILE | --key FILE with --host HOST (offline)"
                    .into(),
            );
        }
    };
    if args.confirm > 0 {
        return Err("--confirm applies to live mode (DOMAIN...) only".into());
    }
    let host = host_name(args.host.as_deref().unwrap_or_default())?;
    let port = args.port.unwrap_or(5222);
    let pin = read_pin(path, what)?;
    let mut out = format!("{}\n", pin.zone_line(&host, port, args.ttl));
    if let Some(next) = &args.next {
        let next_pin = read_pin(next, "--next")?;
        if next_pin.spki_sha256() == pin.spki_sha256() {
            return Err(format!(
                "--next {} is the same key as {what} {}: the next key must be a new key",
                next.display(),
                path.display()
            ));
        }
        out.push_str(&next_key_lines(&next_pin, &host, port, args.ttl));
    }
    Ok(out)
}

/// Live mode: probe, then print per domain; the exit code is 3 if any domain failed.
async fn run_live(args: &RecordsArgs) -> u8 {
    let domains = match net::domains(&args.domains, args.domains_file.as_deref()) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let next = match &args.next {
        Some(p) => match read_pin(p, "--next") {
            Ok(pin) => Some(pin),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    let rounds = usize::try_from(args.confirm).unwrap_or(0);
    // The check's own confirmation of mismatches is not what records needs: the survey's
    // vantage rounds cover every target.
    let mut options = match net::options(&args.net, 0).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    options.ttl = args.ttl;
    let checker = match Checker::new(options) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let progress = net::progress_allowed();
    let mut code = 0;
    for domain in &domains {
        if progress {
            eprint!("probing {domain} ...\x1b[K\r");
        }
        let result = checker.survey(domain, rounds).await;
        if progress {
            eprint!("\x1b[K");
        }
        match result.map_err(|e| check_error(&e)).and_then(|s| {
            let via = args.net.via.trim();
            render_live(&s, rounds, args.ttl, next.as_ref(), via)
        }) {
            Ok(out) => {
                for w in &out.warnings {
                    eprintln!("certwatch: warning: {w}");
                }
                print!("{}", out.text);
            }
            Err(e) => {
                code = EXIT_ERROR;
                eprintln!("certwatch: error: {e}");
            }
        }
    }
    code
}

fn fail(message: &str) -> u8 {
    eprintln!("certwatch: error: {message}");
    EXIT_ERROR
}

fn check_error(e: &CheckError) -> String {
    match e {
        CheckError::ResolverUnreachable { .. } => format!("{e}; check --resolver and the network"),
        other => other.to_string(),
    }
}

/// What live mode prints for one domain.
#[derive(Debug, Default)]
struct LiveOutput {
    /// The zone lines and comments (stdout).
    text: String,
    /// Warnings (stderr).
    warnings: Vec<String>,
}

/// The vantage label of a sighting.
fn vantage_label(v: Option<Vantage>) -> String {
    v.map_or_else(|| "no vantage".to_owned(), |v| v.to_string())
}

/// The refusal message of `--confirm`: every target, every vantage and what it saw.
fn disagreement(survey: &KeySurvey) -> String {
    let mut out = format!(
        "{}: refusing to print: the vantage points do not all agree on one proven key, or fewer than 2 were conclusive; what each saw:",
        survey.report.domain
    );
    for t in &survey.targets {
        let kt = t
            .key_type()
            .map_or_else(|| "unknown".to_owned(), |k| k.to_string());
        let agreed = if t.agreed_spki_sha256.is_some() {
            "agreed"
        } else {
            "NOT agreed"
        };
        out.push_str(&format!(
            "\n  {} {}:{} [{}] {kt} key ({agreed}):",
            t.service.as_str(),
            t.target,
            t.port,
            t.address
        ));
        for s in &t.sightings {
            let what = match (&s.spki_sha256, s.key_proven, &s.error) {
                (Some(k), true, _) => k.clone(),
                (Some(k), false, _) => format!("{k} (key NOT proven: replayed certificate?)"),
                (None, _, Some(e)) => format!("no key ({}: {})", e.class, e.message),
                (None, _, None) => "no key".to_owned(),
            };
            out.push_str(&format!("\n    {}: {what}", vantage_label(s.vantage)));
        }
    }
    out
}

/// The lines for one surveyed domain, grouped by TLSA owner, or an error (no key seen,
/// vantage points disagree under `--confirm`).
fn render_live(
    survey: &KeySurvey,
    rounds: usize,
    ttl: u32,
    next: Option<&Pin>,
    via: &str,
) -> Result<LiveOutput, String> {
    let report = &survey.report;
    let domain = &report.domain;
    if survey.targets.is_empty() {
        return Err(format!(
            "{domain}: no server was probed (verdict {}): no key to print{}",
            report.verdict,
            if report.endpoints.is_empty() {
                "; DNS lists no XMPP endpoint"
            } else {
                ""
            }
        ));
    }
    if rounds > 0 && !survey.all_agree() {
        return Err(disagreement(survey));
    }
    let mut out = LiveOutput::default();
    // TLSA owner (target, port) -> services, and key -> (key type, vantages, addresses).
    struct Group<'a> {
        services: Vec<&'static str>,
        keys: Vec<(String, Vec<&'a TargetKeys>)>,
    }
    let mut groups: BTreeMap<(String, u16), Group<'_>> = BTreeMap::new();
    let mut unseen: Vec<String> = Vec::new();
    for t in &survey.targets {
        let g = groups
            .entry((t.target.clone(), t.port))
            .or_insert_with(|| Group {
                services: Vec::new(),
                keys: Vec::new(),
            });
        if !g.services.contains(&t.service.as_str()) {
            g.services.push(t.service.as_str());
        }
        let keys: Vec<String> = match &t.agreed_spki_sha256 {
            Some(k) => vec![k.clone()],
            None => t.proven_keys().into_iter().map(str::to_owned).collect(),
        };
        if keys.is_empty() {
            let why = t
                .sightings
                .iter()
                .find_map(|s| s.error.as_ref())
                .map_or_else(String::new, |e| format!(": {} ({})", e.class, e.message));
            unseen.push(format!(
                "{} {}:{} [{}]: no proven key{why}",
                t.service.as_str(),
                t.target,
                t.port,
                t.address
            ));
        }
        for k in keys {
            match g.keys.iter_mut().find(|(have, _)| *have == k) {
                Some((_, ts)) => ts.push(t),
                None => g.keys.push((k, vec![t])),
            }
        }
    }
    groups.retain(|_, g| !g.keys.is_empty());
    if groups.is_empty() {
        return Err(format!(
            "{domain}: no server proved a key (verdict {}):\n  {}",
            report.verdict,
            unseen.join("\n  ")
        ));
    }
    out.text.push_str(&format!(
        "; {domain}: TLSA records from a live probe ({}, {}), checked {}\n",
        if rounds > 0 {
            format!("every vantage point agreed: {rounds} Tor exit rounds plus direct")
        } else {
            "one vantage point".to_owned()
        },
        format_args!("--via {via}"),
        report.checked_at
    ));
    for ((target, port), g) in &groups {
        out.text.push_str(&format!(
            ";\n; {} (services {} on {target} port {port})\n",
            tlsa_owner(target, *port),
            g.services.join(", ")
        ));
        for (key, ts) in &g.keys {
            let mut types: Vec<String> = Vec::new();
            let mut vantages: Vec<String> = Vec::new();
            let mut addresses: Vec<String> = Vec::new();
            for t in ts {
                if let Some(kt) = t.key_type()
                    && !types.contains(&kt.to_string())
                {
                    types.push(kt.to_string());
                }
                if !addresses.contains(&t.address.to_string()) {
                    addresses.push(t.address.to_string());
                }
                for s in &t.sightings {
                    if s.spki_sha256.as_deref() == Some(key.as_str()) {
                        let v = vantage_label(s.vantage);
                        if !vantages.contains(&v) {
                            vantages.push(v);
                        }
                    }
                }
            }
            // What the owner publishes today (from the check's entries).
            let published: Vec<String> = report
                .endpoints
                .iter()
                .filter(|e| e.target == *target && e.port == *port)
                .flat_map(|e| e.tlsa.iter().map(ToString::to_string))
                .collect();
            let status = if published.iter().any(|r| *r == format!("3 1 1 {key}")) {
                "; already published"
            } else if published.is_empty() {
                ""
            } else {
                "; NOT in the published TLSA RRset"
            };
            out.text.push_str(&format!(
                "; {} key seen at {} from {}{status}\n{target_line}\n",
                if types.is_empty() {
                    "unknown".to_owned()
                } else {
                    types.join("/")
                },
                addresses.join(", "),
                vantages.join(", "),
                target_line =
                    format_args!("{}. {ttl} IN TLSA 3 1 1 {key}", tlsa_owner(target, *port)),
            ));
        }
        if let Some(pin) = next {
            let next_hex = hex_of(&pin.spki_sha256());
            if !g.keys.iter().any(|(k, _)| *k == next_hex) {
                out.text.push_str(&next_key_lines(pin, target, *port, ttl));
            }
        }
    }

    // Warnings (stderr): trust, DNSSEC, unprobed targets, a mismatch.
    let (first_target, first_port) = groups.keys().next().cloned().unwrap_or_default();
    out.warnings.push(format!(
        "{domain}: these lines pin whatever key the connection presented{}: if the path to the server is intercepted (a machine in the middle), they pin the attacker's key. The trusted source is the key file on the server: run there `certwatch records --key /path/to/privkey.pem --host {first_target} --port {first_port}`, or `openssl x509 -in /path/to/cert.pem -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`, and compare",
        if rounds > 0 {
            " (several vantage points agreed, which rules out an interceptor on one path, not one next to the server)"
        } else {
            ""
        }
    ));
    let insecure: Vec<&str> = report
        .setup
        .advice
        .iter()
        .filter(|a| a.starts_with("Enable DNSSEC"))
        .map(String::as_str)
        .collect();
    if report
        .endpoints
        .iter()
        .any(|e| e.dnssec == DnssecState::Insecure)
    {
        out.warnings.push(format!(
            "{domain}: the zone is not (fully) DNSSEC-signed, so these records are useless until DNSSEC is enabled: {}",
            if insecure.is_empty() {
                "an RRset on the path is insecure (see certwatch check)".to_owned()
            } else {
                insecure.join("; ")
            }
        ));
    }
    if report
        .endpoints
        .iter()
        .any(|e| e.dnssec == DnssecState::Bogus)
    {
        out.warnings.push(format!(
            "{domain}: DNSSEC validation fails (bogus) for part of this domain: fix the signatures first (certwatch check {domain} says which RRset)"
        ));
    }
    if report.verdict == Verdict::Mismatch {
        out.warnings.push(format!(
            "{domain}: the published TLSA records do NOT match the key presented (verdict mismatch): the server may be intercepted right now; do not publish these lines before checking on the server itself (certwatch check --confirm 3 {domain})"
        ));
    }
    for u in unseen {
        out.warnings.push(format!("{domain}: {u}"));
    }
    Ok(out)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    /// A survey of one c2s target seen from direct and two exits; `exit2_key` is what the
    /// second exit saw.
    fn survey(exit2_key: &str, agreed: bool) -> KeySurvey {
        survey_with(exit2_key, agreed, &[])
    }

    fn survey_with(exit2_key: &str, agreed: bool, published: &[&str]) -> KeySurvey {
        let tlsa: Vec<String> = published.iter().map(|k| format!("3 1 1 {k}")).collect();
        let sighting = |v: &str, k: &str| {
            serde_json::json!({"vantage": v, "spki_sha256": k, "key_proven": true,
                "key_type": "ecdsa", "error": null})
        };
        let v = serde_json::json!({
            "report": {
                "schema_version": 1, "domain": "example.org",
                "checked_at": "2026-11-28T19:00:00Z", "verdict": "no-records",
                "endpoints": [{
                    "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                    "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
                    "tlsa": tlsa, "verdict": "no-records", "reason": "no-tlsa",
                    "presented_spki_sha256": K1, "matched_record": null,
                    "vantage": "tor:192.0.2.10", "key_type": "ecdsa", "error": null
                }],
                "confirmation": null,
                "setup": {"zone_lines": [], "advice": []},
                "warnings": []
            },
            "targets": [{
                "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                "address": "192.0.2.1",
                "sightings": [
                    sighting("tor:192.0.2.10", K1),
                    sighting("tor:192.0.2.11", exit2_key),
                    sighting("direct", K1),
                ],
                "agreed_spki_sha256": if agreed { Some(K1) } else { None },
            }],
            "vantage_rounds": 2
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn confirmed_lines_name_every_vantage() {
        let out = render_live(&survey(K1, true), 2, 600, None, "tor").unwrap();
        let lines: Vec<&str> = out.text.lines().filter(|l| !l.starts_with(';')).collect();
        assert_eq!(
            lines,
            [format!(
                "_5222._tcp.xmpp.example.org. 600 IN TLSA 3 1 1 {K1}"
            )]
        );
        assert!(
            out.text.contains(
                "; ecdsa key seen at 192.0.2.1 from tor:192.0.2.10, tor:192.0.2.11, direct"
            ),
            "{}",
            out.text
        );
        assert!(out.warnings[0].contains("pin whatever key the connection presented"));
    }

    #[test]
    fn each_key_says_whether_it_is_already_published() {
        let out = render_live(&survey_with(K2, false, &[K1]), 0, 3600, None, "tor").unwrap();
        let comments: Vec<&str> = out
            .text
            .lines()
            .filter(|l| l.contains("key seen"))
            .collect();
        assert_eq!(comments.len(), 2, "{}", out.text);
        assert!(
            comments[0].ends_with("; already published"),
            "{}",
            comments[0]
        );
        assert!(
            comments[1].ends_with("; NOT in the published TLSA RRset"),
            "{}",
            comments[1]
        );
    }

    #[test]
    fn disagreeing_vantage_points_refuse_and_list_what_each_saw() {
        let err = render_live(&survey(K2, false), 2, 3600, None, "tor").unwrap_err();
        assert!(err.contains("refusing to print"), "{err}");
        assert!(err.contains(&format!("tor:192.0.2.10: {K1}")), "{err}");
        assert!(err.contains(&format!("tor:192.0.2.11: {K2}")), "{err}");
        assert!(err.contains(&format!("direct: {K1}")), "{err}");
    }

    #[test]
    fn without_confirm_every_key_seen_is_printed() {
        // One vantage per target without --confirm: both keys seen are printed, and
        // there is no refusal.
        let out = render_live(&survey(K2, false), 0, 3600, None, "tor").unwrap();
        let lines: Vec<&str> = out.text.lines().filter(|l| !l.starts_with(';')).collect();
        assert_eq!(lines.len(), 2, "{}", out.text);
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("XMPP.Example.net.").unwrap(), "xmpp.example.net");
        assert!(host_name("exämple.org").is_err());
        assert!(host_name("a..b").is_err());
        assert!(host_name("-a.b").is_err());
        assert!(host_name("").is_err());
        assert!(host_name("a b").is_err());
    }
}
