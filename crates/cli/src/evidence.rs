//! `certwatch evidence verify`: verifies a certwatch-server evidence bundle offline
//! (`docs/evidence.md`), a thin wrapper over `certwatch::evidence::verify`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use certwatch::TrustAnchor;
use certwatch::evidence::{EvidenceBundle, MAX_BUNDLE_BYTES, VerifiedBundle, key_id, verify};

/// Exit code: the bundle does not verify.
const EXIT_NOT_VERIFIED: u8 = 1;
/// Exit code for usage errors and unreadable input.
const EXIT_ERROR: u8 = 3;

/// Arguments of `certwatch evidence`.
#[derive(Debug, clap::Args)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    command: EvidenceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EvidenceCommand {
    /// Verify an evidence bundle offline: the service's Ed25519 signature, every DNSSEC
    /// chain up to the trust anchor, and for every probe whether the presented key is in
    /// the validated TLSA RRset.
    ///
    /// Exit 0 the bundle verifies (whatever its verdict), 1 it does not, 3 usage error.
    #[command(after_long_help = VERIFY_HELP)]
    Verify(VerifyArgs),
}

/// Arguments of `certwatch evidence verify`.
#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The bundle (JSON, as downloaded from /domains/DOMAIN/evidence/ID.json).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The service's public key: base64 or 64 hex digits, or a file holding either, or the
    /// service's /.well-known/certwatch-evidence-key.json saved to a file.
    #[arg(long, value_name = "KEY|FILE")]
    key: String,
    /// The DNSSEC trust anchor: a file of DNSKEY or DS lines (a root.key). Default: the
    /// IANA root keys built in.
    #[arg(long, value_name = "FILE")]
    trust_anchor: Option<PathBuf>,
    /// When to check the RRSIG validity windows: an RFC 3339 time, or `created` for the
    /// bundle's own `created_at` (an old bundle whose signatures have since expired).
    /// Default: now.
    #[arg(long, value_name = "RFC3339|created")]
    at: Option<String>,
    /// Refuse a bundle about another domain (a genuine bundle replayed for this one).
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
}

const VERIFY_HELP: &str = "\
Exit codes:
  0  the signature and every DNSSEC chain verify; each probe says whether its key is IN or
     NOT in the validated TLSA RRset (NOT: the evidence of a mismatch)
  1  the bundle does not verify (the message names the failing link)
  3  a usage error, or a file that cannot be read

Getting the key from a running service (check it out of band, e.g. against the docs):
  curl -s https://certwatch.example/.well-known/certwatch-evidence-key.json > service-key.json

Examples:
  certwatch evidence verify bundle.json --key service-key.json
  certwatch evidence verify bundle.json --key 3q2+7w... --trust-anchor root.key --at created";

/// Runs `certwatch evidence`; returns the exit code.
pub fn run(args: &EvidenceArgs) -> u8 {
    match &args.command {
        EvidenceCommand::Verify(v) => match verify_bundle(v) {
            Ok(code) => code,
            Err(message) => {
                eprintln!("certwatch evidence verify: {message}");
                EXIT_ERROR
            }
        },
    }
}

/// Decodes a raw 32-byte key: 64 hex digits or standard base64.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    let raw = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        base64::engine::general_purpose::STANDARD.decode(t).ok()?
    };
    (raw.len() == 32).then_some(raw)
}

/// The key from `--key`: the value itself, or a file with the key or the key JSON.
fn read_key(arg: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        let bytes = read_bounded(path, 64 * 1024)?;
        String::from_utf8(bytes).map_err(|_| format!("--key {arg}: not text"))?
    } else {
        arg.to_owned()
    };
    let value = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => {
            match m.get("algorithm").and_then(|a| a.as_str()) {
                Some("ed25519") | None => {}
                Some(other) => return Err(format!("--key {arg}: algorithm {other}, not ed25519")),
            }
            m.get("public_key")
                .and_then(|k| k.as_str())
                .ok_or_else(|| format!("--key {arg}: a JSON object without public_key"))?
                .to_owned()
        }
        _ => text,
    };
    decode_key(&value).ok_or_else(|| {
        format!("--key {arg}: not a 32-byte Ed25519 key in base64 or hex (nor a file holding one)")
    })
}

fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if bytes.len() > limit {
        return Err(format!(
            "{}: larger than {limit} bytes, not a bundle",
            path.display()
        ));
    }
    Ok(bytes)
}

fn unix_of(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

fn verify_bundle(args: &VerifyArgs) -> Result<u8, String> {
    let bundle = read_bounded(&args.file, MAX_BUNDLE_BYTES)?;
    let key = read_key(&args.key)?;
    let anchor = match &args.trust_anchor {
        None => TrustAnchor::IanaRoot,
        Some(path) => {
            let text = String::from_utf8(read_bounded(path, 1024 * 1024)?)
                .map_err(|_| format!("--trust-anchor {}: not text", path.display()))?;
            let anchor = TrustAnchor::from_file_text(&text);
            anchor
                .validate()
                .map_err(|e| format!("--trust-anchor {}: {e}", path.display()))?;
            anchor
        }
    };
    let now = match args.at.as_deref() {
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        Some("created") => {
            // The time the bundle claims; the signature check below covers the claim.
            let b: EvidenceBundle = serde_json::from_slice(&bundle)
                .map_err(|e| format!("{}: not an evidence bundle: {e}", args.file.display()))?;
            unix_of(&b.created_at).ok_or_else(|| {
                format!(
                    "{}: created_at {:?} is not RFC 3339",
                    args.file.display(),
                    b.created_at
                )
            })?
        }
        Some(t) => unix_of(t).ok_or_else(|| {
            format!("--at {t:?}: not an RFC 3339 time (2026-11-28T18:51:40Z) nor `created`")
        })?,
    };
    println!("service key id {}", key_id(&key));
    let verified = match verify(&bundle, &key, &anchor, now) {
        Ok(v) => v,
        Err(e) => {
            println!("NOT VERIFIED: {e}");
            return Ok(EXIT_NOT_VERIFIED);
        }
    };
    if let Some(domain) = &args.domain
        && let Err(e) = verified.expect_domain(domain)
    {
        println!("NOT VERIFIED: {e}");
        return Ok(EXIT_NOT_VERIFIED);
    }
    print_verified(&verified);
    Ok(0)
}

fn print_verified(v: &VerifiedBundle) {
    let b = &v.bundle;
    println!(
        "signature OK: {} verdict {} checked at {}, bundle made at {}",
        b.domain,
        b.verdict.as_str(),
        b.checked_at,
        b.created_at
    );
    for (owner, rrset) in v.tlsa.iter().chain(&v.others) {
        println!(
            "DNSSEC OK: {owner} {} (zones {}){}",
            rrset.rtype,
            rrset.zones.join(" "),
            if rrset.wildcard {
                " (wildcard expansion)"
            } else {
                ""
            }
        );
    }
    for p in &v.probes {
        println!(
            "probe {} {} port {} at {} via {} ({}): key {} {}{}{}",
            p.probe.service,
            p.probe.target,
            p.probe.port,
            p.probe.address,
            p.probe.vantage,
            p.probe.probed_at,
            p.probe.spki_sha256,
            if p.in_tlsa {
                "IN the validated TLSA RRset"
            } else {
                "NOT in the validated TLSA RRset"
            },
            if p.srv_proven {
                ""
            } else {
                "; the SRV record naming the target is not proven"
            },
            if p.address_proven {
                ""
            } else {
                "; the address is not proven"
            },
        );
    }
    for gap in &b.gaps {
        println!("gap: {gap}");
    }
    if v.probes.is_empty() {
        println!("no probe in the bundle");
    } else if v.any_key_outside_tlsa() {
        println!("RESULT: verified; some presented key is NOT in the validated TLSA RRset");
    } else {
        println!("RESULT: verified; every presented key is in the validated TLSA RRset");
    }
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn keys_decode_from_hex_and_base64_only_at_32_bytes() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(decode_key(&hex).unwrap()[31], 0xff);
        assert_eq!(
            decode_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8=").unwrap()[31],
            0xff
        );
        assert!(decode_key("AAAA").is_none());
        assert!(decode_key("not a key").is_none());
    }
}
