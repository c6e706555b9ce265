//! `certwatch records`: the TLSA line to publish, from a certificate or key file.

use std::path::PathBuf;

use certwatch_core::pin_from_key_material;

/// Arguments of `certwatch records`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["cert", "key"])))]
pub struct RecordsArgs {
    /// Certificate file (PEM or DER; the first certificate of a full chain is the server's).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Key file: PKCS#8, SEC1 EC or PKCS#1 RSA private key, or a public key (PEM or DER).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The host that serves XMPP: the SRV target (or the domain itself without SRV).
    #[arg(long, value_name = "HOST")]
    host: String,
    /// The TCP port of the service (5222 c2s, 5223 c2s direct TLS, 5269 s2s, 5270 s2s direct).
    #[arg(long, value_name = "PORT", default_value_t = 5222, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// TTL of the printed record, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl: u32,
}

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

/// Runs the verb and returns the text to print, or an error message.
pub fn run(args: &RecordsArgs) -> Result<String, String> {
    let host = host_name(&args.host)?;
    let (path, what) = match (&args.cert, &args.key) {
        (Some(p), _) => (p, "--cert"),
        (None, Some(p)) => (p, "--key"),
        (None, None) => return Err("give --cert FILE or --key FILE".into()),
    };
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {label}: cannot read: {e}"))?;
    let pin = pin_from_key_material(&bytes, &label).map_err(|e| e.to_string())?;
    Ok(format!("{}\n", pin.zone_line(&host, args.port, args.ttl)))
}

#[cfg(test)]
mod tests {
    use super::host_name;

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
