//! `certwatch check`: check XMPP domains against their DANE TLSA records and print the
//! verdicts, warnings and setup advice (or one JSON object per domain).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use certwatch::{
    CheckError, CheckOptions, Checker, Classification, EndpointReport, Report, ResolverConfig,
    Service, Transport, TrustAnchor, Verdict, combine_exit_codes,
};

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
    /// How to reach the servers: `tor` (embedded Tor), `direct`, or `socks5://HOST:PORT`
    /// (an external Tor's SOCKS port).
    #[arg(
        long,
        value_name = "tor|direct|socks5://HOST:PORT",
        default_value = "tor"
    )]
    via: String,
    /// arti configuration file (TOML) for `--via tor`; default: the public Tor network.
    #[arg(long, value_name = "FILE")]
    tor_config: Option<PathBuf>,
    /// DNS server to query, IP or IP:PORT (repeatable); default: /etc/resolv.conf.
    #[arg(long, value_name = "IP[:PORT]")]
    resolver: Vec<String>,
    /// DNSSEC trust anchor file: DNSKEY or DS lines in zone-file format (default: the IANA
    /// root keys).
    #[arg(long, value_name = "FILE")]
    trust_anchor: Option<PathBuf>,
    /// Services to check, comma-separated: c2s-starttls, c2s-direct, s2s-starttls,
    /// s2s-direct (default: every service DNS publishes).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    services: Vec<String>,
    /// Time budget of each probe phase (connect, XMPP, TLS) and of each DNS lookup, in
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// At most N probes at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    /// Before reporting a mismatch, re-probe through N distinct Tor exits (plus directly)
    /// and classify: most differ = server-side interception (mismatch); a minority = a
    /// hostile exit (warning `hostile-exit`); fewer than 2 conclusive = indeterminate.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16))]
    confirm: u64,
    /// Probe loopback, private and other special-use addresses found in DNS (off by
    /// default: they are reported, not probed).
    #[arg(long)]
    allow_private_targets: bool,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certwatch: error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: &CheckArgs) -> u8 {
    let domains = match domains(args) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let options = match options(args).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let checker = match Checker::new(options) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let progress = std::io::stderr().is_terminal() && !args.json;
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

/// The domains of the command line, then those of `--domains-file`.
fn domains(args: &CheckArgs) -> Result<Vec<String>, String> {
    let mut out = args.domains.clone();
    if let Some(path) = &args.domains_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--domains-file {}: cannot read: {e}", path.display()))?;
        out.extend(parse_domains_file(&text));
    }
    if out.is_empty() {
        return Err("no domain given (give DOMAIN... or --domains-file FILE)".into());
    }
    Ok(out)
}

/// One domain per line; blank lines and `#` comments (whole-line or trailing) are ignored.
fn parse_domains_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn options(args: &CheckArgs) -> Result<CheckOptions, String> {
    let mut resolver = if args.resolver.is_empty() {
        ResolverConfig::from_system().map_err(|e| format!("{e} (give --resolver IP[:PORT])"))?
    } else {
        ResolverConfig::from_servers(&args.resolver).map_err(|e| format!("--resolver: {e}"))?
    };
    if let Some(path) = &args.trust_anchor {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--trust-anchor {}: cannot read: {e}", path.display()))?;
        let anchor = trust_anchor(&text);
        anchor
            .validate()
            .map_err(|e| format!("--trust-anchor {}: {e}", path.display()))?;
        resolver = resolver.with_trust_anchor(anchor);
    }
    let services = args
        .services
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<Service>().map_err(|e| format!("--services: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let transport = transport(args).await?;
    let mut options = CheckOptions::new(transport, resolver)
        .with_timeout(Duration::from_secs(args.timeout))
        .with_concurrency(usize::try_from(args.concurrency).unwrap_or(64))
        .with_private_targets(args.allow_private_targets)
        .with_confirm(usize::try_from(args.confirm).unwrap_or(0));
    if !services.is_empty() {
        options = options.with_services(services);
    }
    Ok(options)
}

/// DS lines make a DS anchor; anything else is taken as DNSKEY lines.
fn trust_anchor(text: &str) -> TrustAnchor {
    let is_ds = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .any(|l| l.split_whitespace().any(|w| w.eq_ignore_ascii_case("DS")));
    if is_ds {
        TrustAnchor::DsText(text.to_owned())
    } else {
        TrustAnchor::DnskeyText(text.to_owned())
    }
}

async fn transport(args: &CheckArgs) -> Result<Transport, String> {
    let via = args.via.trim();
    if args.tor_config.is_some() && via != "tor" {
        return Err(format!(
            "--tor-config applies to --via tor only, not --via {via}"
        ));
    }
    match via {
        "direct" => Ok(Transport::Direct),
        "tor" => tor_transport(args).await,
        v if v.starts_with("socks5://") || v.starts_with("socks5h://") => {
            let proxy = certwatch::parse_socks5_url(v).map_err(|e| format!("--via: {e}"))?;
            Ok(Transport::Socks { proxy })
        }
        other => Err(format!(
            "--via {other:?}: expected tor, direct or socks5://HOST:PORT"
        )),
    }
}

/// How long the embedded Tor client may take to bootstrap.
#[cfg(feature = "tor")]
const TOR_BOOTSTRAP_BUDGET: Duration = Duration::from_secs(120);

#[cfg(feature = "tor")]
async fn tor_transport(args: &CheckArgs) -> Result<Transport, String> {
    use std::sync::Arc;

    use certwatch::{TorSetupError, TorTransport};
    let config = match &args.tor_config {
        Some(path) => {
            let label = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--tor-config {label}: cannot read: {e}"))?;
            TorTransport::config_from_toml(&text, &label).map_err(|e| e.to_string())?
        }
        None => TorTransport::public_network_config(),
    };
    let show = std::io::stderr().is_terminal();
    let started = Arc::new(std::time::Instant::now());
    let tor = TorTransport::bootstrap(config, TOR_BOOTSTRAP_BUDGET, move |p| {
        if show {
            eprint!(
                "Tor bootstrap {:3.0}% ({:.0?}) {}\x1b[K\r",
                p.fraction * 100.0,
                started.elapsed(),
                p.message
            );
        }
    })
    .await
    .map_err(|e| match e {
        TorSetupError::BootstrapTimeout { .. } => format!(
            "{e}; the Tor network is unreachable from here? (try --via direct or --via socks5://HOST:PORT)"
        ),
        other => other.to_string(),
    })?;
    if show {
        eprint!("\x1b[K");
    }
    Ok(Transport::Tor(
        tor.allow_local_addrs(args.allow_private_targets),
    ))
}

#[cfg(not(feature = "tor"))]
async fn tor_transport(_args: &CheckArgs) -> Result<Transport, String> {
    Err("--via tor: this certwatch was built without embedded Tor (cargo feature `tor`); use --via socks5://HOST:PORT with an external Tor, or --via direct".into())
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

fn entry_line(e: &EndpointReport) -> String {
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
        mark(e.verdict),
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
        out.push_str(&entry_line(e));
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

    #[test]
    fn domains_file_skips_comments_and_blanks() {
        let text = "# watched\nexample.org\n\n  Exämple.net  # the other one\n#x\n";
        assert_eq!(parse_domains_file(text), ["example.org", "Exämple.net"]);
    }

    #[test]
    fn trust_anchor_kinds() {
        assert!(matches!(
            trust_anchor(". 3600 IN DS 54538 13 2 159eaeff"),
            TrustAnchor::DsText(_)
        ));
        assert!(matches!(
            trust_anchor(". 3600 IN DNSKEY 257 3 13 abcd ; DS would be elsewhere"),
            TrustAnchor::DnskeyText(_)
        ));
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
