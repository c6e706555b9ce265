//! The network options shared by `check`, `records DOMAIN` and `watch` (one
//! `#[command(flatten)]` struct, so the verbs behave identically), and how they become
//! [`CheckOptions`].

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use certwatch::{CheckOptions, ResolverConfig, Service, Transport, TrustAnchor};

/// How to reach DNS and the servers: the options every network verb shares.
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// How to reach the servers: `tor` (embedded Tor), `direct`, or `socks5://HOST:PORT`
    /// (an external Tor's SOCKS port).
    #[arg(
        long,
        value_name = "tor|direct|socks5://HOST:PORT",
        default_value = "tor"
    )]
    pub via: String,
    /// arti configuration file (TOML) for `--via tor`; default: the public Tor network.
    #[arg(long, value_name = "FILE")]
    pub tor_config: Option<PathBuf>,
    /// DNS server to query, IP or IP:PORT (repeatable); default: /etc/resolv.conf.
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Vec<String>,
    /// DNSSEC trust anchor file: DNSKEY or DS lines in zone-file format (default: the IANA
    /// root keys).
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,
    /// Services to check, comma-separated: c2s-starttls, c2s-direct, s2s-starttls,
    /// s2s-direct (default: every service DNS publishes).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub services: Vec<String>,
    /// Time budget of each probe phase (connect, XMPP, TLS) and of each DNS lookup, in
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// At most N probes at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Probe loopback, private and other special-use addresses found in DNS (off by
    /// default: they are reported, not probed).
    #[arg(long)]
    pub allow_private_targets: bool,
}

/// The check options these arguments imply (reads the trust anchor and Tor configuration
/// files, bootstraps embedded Tor). `confirm` is the verb's own `--confirm`.
pub async fn options(args: &NetArgs, confirm: usize) -> Result<CheckOptions, String> {
    let mut resolver = if args.resolver.is_empty() {
        ResolverConfig::from_system().map_err(|e| format!("{e} (give --resolver IP[:PORT])"))?
    } else {
        ResolverConfig::from_servers(&args.resolver).map_err(|e| format!("--resolver: {e}"))?
    };
    if let Some(path) = &args.trust_anchor {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--trust-anchor {}: cannot read: {e}", path.display()))?;
        let anchor = TrustAnchor::from_file_text(&text);
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
        .with_confirm(confirm);
    if !services.is_empty() {
        options = options.with_services(services);
    }
    Ok(options)
}

async fn transport(args: &NetArgs) -> Result<Transport, String> {
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
async fn tor_transport(args: &NetArgs) -> Result<Transport, String> {
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
async fn tor_transport(_args: &NetArgs) -> Result<Transport, String> {
    Err("--via tor: this certwatch was built without embedded Tor (cargo feature `tor`); use --via socks5://HOST:PORT with an external Tor, or --via direct".into())
}

/// A multi-threaded tokio runtime for a verb.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Whether a progress line may be drawn: only when stderr is a terminal.
pub fn progress_allowed() -> bool {
    std::io::stderr().is_terminal()
}

/// The domains of the command line, then those of `--domains-file`.
pub fn domains(cli: &[String], file: Option<&std::path::Path>) -> Result<Vec<String>, String> {
    let mut out = cli.to_vec();
    if let Some(path) = file {
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
pub fn parse_domains_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
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
            TrustAnchor::from_file_text(". 3600 IN DS 54538 13 2 159eaeff"),
            TrustAnchor::DsText(_)
        ));
        assert!(matches!(
            TrustAnchor::from_file_text(". 3600 IN DNSKEY 257 3 13 abcd ; DS would be elsewhere"),
            TrustAnchor::DnskeyText(_)
        ));
    }
}
