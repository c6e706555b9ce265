//! `certwatch check`: check XMPP domains against their DANE TLSA records and print the
//! verdicts, warnings and setup advice (or one JSON object per domain).

use std::path::PathBuf;

use certwatch::{
    CheckError, Checker, Classification, EndpointReport, Report, Verdict, combine_exit_codes,
};

use crate::net::{self, NetArgs};

/// Exit code for usage errors, invalid input and setup failures (REFERENCE §3).
const EXIT_ERROR: u8 = 3;

/// Arguments of `certwatch check`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct CheckArgs {
    /// The XMPP domains to check (Unicode or A-label form).
    #[arg(value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Read more domains from FILE: one per line; blank lines and `#` comments are ignored.
    #[arg(long, value_name = "FILE")]
    domains_file: Option<PathBuf>,
    /// Print one JSON object per domain, one per line (schema: docs/json.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
    /// Before reporting a mismatch, re-probe through N distinct Tor exits (plus directly)
    /// and classify: most differ = server-side interception (mismatch); a minority = a
    /// hostile exit (warning `hostile-exit`); fewer than 2 conclusive = indeterminate.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16))]
    confirm: u64,
}

const AFTER_HELP: &str = "\
Exit codes (worst over all domains):
  0  every endpoint matches its DANE TLSA records
  1  setup needed (no DNSSEC, no TLSA records, unusable records) or a weak pin
  2  mismatch, bogus DNSSEC, or a protocol error where DANE makes TLS mandatory
  3  indeterminate (timeout, network, Tor), other protocol errors, or an error:
     usage, invalid domain, unreachable resolver, Tor bootstrap timeout

Examples:
  certwatch check example.org
  certwatch check --via direct --json example.org example.net
  certwatch check --via socks5://127.0.0.1:9050 --services c2s-starttls example.org";

/// Runs the verb: prints the reports and returns the exit code.
pub fn run(args: &CheckArgs) -> u8 {
    let runtime = match net::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: &CheckArgs) -> u8 {
    let domains = match net::domains(&args.domains, args.domains_file.as_deref()) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let confirm = usize::try_from(args.confirm).unwrap_or(0);
    let options = match net::options(&args.net, confirm).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let checker = match Checker::new(options) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let progress = net::progress_allowed() && !args.json;
    let mut codes = Vec::new();
    for domain in &domains {
        if progress {
            eprint!("checking {domain} ...\r");
        }
        let result = checker.check(domain).await;
        if progress {
            eprint!("{:width$}\r", "", width = domain.len() + 15);
        }
        match result {
            Ok(report) => {
                if args.json {
                    println!("{}", report.to_json_line());
                } else {
                    print!("{}", human(&report));
                }
                codes.push(report.exit_code());
            }
            Err(e) => {
                eprintln!("certwatch: error: {}", error_message(&e));
                codes.push(EXIT_ERROR);
            }
        }
    }
    combine_exit_codes(codes)
}

fn fail(message: &str) -> u8 {
    eprintln!("certwatch: error: {message}");
    EXIT_ERROR
}

fn error_message(e: &CheckError) -> String {
    match e {
        CheckError::ResolverUnreachable { .. } => {
            format!("{e}; check --resolver and the network")
        }
        other => other.to_string(),
    }
}

/// A short mark per verdict for the human output.
fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Match => "[ OK ]",
        Verdict::Mismatch | Verdict::Bogus => "[FAIL]",
        Verdict::ProtocolError => "[PROT]",
        Verdict::Indeterminate => "[ ?? ]",
        _ => "[SETUP]",
    }
}

/// Why an entry's own verdict does not count, when a confirmation superseded it: the check
/// saw a mismatch through one vantage point, and the other vantage points overruled it.
fn superseded(r: &Report, e: &EndpointReport) -> Option<(&'static str, &'static str)> {
    // The confirmation's own verdict for this entry (mismatches and, over Tor, protocol
    // errors on DANE endpoints are confirmed), when it differs from what the entry saw.
    if let Some(cv) = e.confirmed_verdict.filter(|cv| *cv != e.verdict) {
        return Some(match cv {
            Verdict::Indeterminate => (
                "[ ?? ]",
                "unconfirmed: too few vantage points answered the confirmation",
            ),
            _ => (
                "[EXIT]",
                "a hostile exit: the other vantage points saw the server as published",
            ),
        });
    }
    let c = r.confirmation.as_ref()?;
    if e.verdict != Verdict::Mismatch || r.verdict == Verdict::Mismatch {
        return None;
    }
    match c.classification {
        Classification::HostileExit => Some((
            "[EXIT]",
            "a hostile exit: the other vantage points saw the published key",
        )),
        Classification::Indeterminate => Some((
            "[ ?? ]",
            "unconfirmed: too few vantage points answered the confirmation",
        )),
        _ => None,
    }
}

fn entry_line(e: &EndpointReport, superseded: Option<(&str, &str)>) -> String {
    let address = e
        .address
        .map_or_else(|| "(no address)".to_owned(), |a| a.to_string());
    let key = match (&e.key_type, &e.presented_spki_sha256) {
        (Some(t), Some(h)) => format!("{t} key {h}"),
        (None, Some(h)) => format!("key {h}"),
        _ => "no key".to_owned(),
    };
    let mut line = format!(
        "{:7} {:12} {}:{} [{}] {}: {}",
        superseded.map_or_else(|| mark(e.verdict), |(m, _)| m),
        e.service.as_str(),
        e.target,
        e.port,
        address,
        key,
        e.verdict
    );
    if let Some(r) = e.reason {
        line.push_str(&format!(" ({r})"));
    }
    if let Some((_, why)) = superseded {
        line.push_str(&format!(" [superseded by the confirmation: {why}]"));
    }
    if e.dnssec.as_str() != "secure" {
        line.push_str(&format!("; DNSSEC {}", e.dnssec));
        if let Some(r) = &e.dnssec_reason {
            line.push_str(&format!(": {r}"));
        }
    }
    if let Some(v) = &e.vantage {
        line.push_str(&format!("; via {v}"));
    }
    if let Some(err) = &e.error {
        line.push_str(&format!("\n        {}: {}", err.class, err.message));
    }
    line.push('\n');
    line
}

/// The human-readable report of one domain.
pub(crate) fn human(r: &Report) -> String {
    let mut out = format!(
        "{} {}: {} (checked {})\n",
        mark(r.verdict),
        r.domain,
        r.verdict,
        r.checked_at
    );
    if r.endpoints.is_empty() {
        out.push_str("        no XMPP endpoint found in DNS\n");
    }
    for e in &r.endpoints {
        out.push_str("  ");
        out.push_str(&entry_line(e, superseded(r, e)));
    }
    if let Some(c) = &r.confirmation {
        let class = match c.classification {
            Classification::Consistent => "consistent",
            Classification::ServerSideInterception => "server-side-interception",
            Classification::HostileExit => "hostile-exit",
            Classification::Indeterminate => "indeterminate",
        };
        out.push_str(&format!(
            "confirmation: {class} ({} vantage points, {} distinct exits, diversity {})\n",
            c.vantage_points,
            c.distinct_exits,
            if c.diversity_verified {
                "verified"
            } else {
                "unverified"
            }
        ));
    }
    if !r.warnings.is_empty() {
        out.push_str("warnings:\n");
        for w in &r.warnings {
            out.push_str(&format!("  [{}] {}\n", w.code, w.message));
        }
    }
    if !r.setup.advice.is_empty() || !r.setup.zone_lines.is_empty() {
        out.push_str("setup:\n");
        for a in &r.setup.advice {
            out.push_str(&format!("  {a}\n"));
        }
        for l in &r.setup.zone_lines {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmed(domain_verdict: &str, classification: &str) -> Report {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "domain": "example.org",
            "checked_at": "2026-11-28T19:00:00Z", "verdict": domain_verdict,
            "endpoints": [{
                "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
                "tlsa": [format!("3 1 1 {}", "ab".repeat(32))], "verdict": "mismatch",
                "reason": "key-not-in-tlsa", "presented_spki_sha256": "cd".repeat(32),
                "matched_record": null, "vantage": "tor:192.0.2.13", "key_type": "ecdsa",
                "error": null
            }],
            "confirmation": {"vantage_points": 4, "distinct_exits": 3,
                "classification": classification, "diversity_verified": true},
            "setup": {"zone_lines": [], "advice": []},
            "warnings": []
        }))
        .unwrap()
    }

    #[test]
    fn an_overruled_mismatch_is_marked_as_superseded() {
        let text = human(&confirmed("match", "hostile-exit"));
        assert!(text.starts_with("[ OK ] example.org: match"), "{text}");
        assert!(text.contains("  [EXIT]  c2s-starttls"), "{text}");
        assert!(text.contains(
            "mismatch (key-not-in-tlsa) [superseded by the confirmation: a hostile exit"
        ));
        let text = human(&confirmed("indeterminate", "indeterminate"));
        assert!(text.contains("  [ ?? ]  c2s-starttls"), "{text}");
        assert!(text.contains("[superseded by the confirmation: unconfirmed"));
        // A confirmed interception stays a failure.
        let text = human(&confirmed("mismatch", "server-side-interception"));
        assert!(text.contains("  [FAIL]  c2s-starttls"), "{text}");
        assert!(!text.contains("superseded"));
    }

    #[test]
    fn marks_tell_classes_apart() {
        let marks: std::collections::HashSet<&str> = [
            Verdict::Match,
            Verdict::Mismatch,
            Verdict::ProtocolError,
            Verdict::Indeterminate,
            Verdict::NoRecords,
        ]
        .into_iter()
        .map(mark)
        .collect();
        assert_eq!(marks.len(), 5);
        assert_eq!(mark(Verdict::Bogus), mark(Verdict::Mismatch));
    }
}
