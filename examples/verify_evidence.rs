//! Verifies a certwatch evidence bundle offline (`docs/evidence.md`).
//!
//! ```text
//! cargo run -p certwatch --example verify_evidence -- \
//!     BUNDLE.json SERVICE-KEY.pub ROOT-ANCHOR [UNIX-TIME] [DOMAIN]
//! ```
//!
//! * `SERVICE-KEY.pub`: the service's Ed25519 public key, as published: 64 hex digits or
//!   the standard base64 of the 32 bytes (one line).
//! * `ROOT-ANCHOR`: `iana` for the IANA root keys, or a file of DNSKEY lines (an ldns
//!   `.key` file, or a root.key) or of DS lines.
//! * `UNIX-TIME`: the time at which the RRSIG validity windows are checked (default: now;
//!   give the bundle's `created_at` to check a bundle whose signatures have since expired).
//! * `DOMAIN`: the domain the bundle must be about.
//!
//! Exit code 0 when the bundle verifies and every presented key is in the validated TLSA
//! set, 2 when it verifies and some presented key is not (the evidence of a mismatch), 1 when
//! it does not verify, 3 for usage errors.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use certwatch::evidence::{key_id, verify};
use certwatch::{TrustAnchor, dns::DnssecChain};

fn usage() -> ExitCode {
    eprintln!(
        "usage: verify_evidence BUNDLE.json SERVICE-KEY.pub (iana|ANCHOR-FILE) [UNIX-TIME] [DOMAIN]"
    );
    ExitCode::from(3)
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        return (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
            .collect();
    }
    base64::engine::general_purpose::STANDARD.decode(t).ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 || args.len() > 5 {
        return usage();
    }
    let read = |p: &str| std::fs::read(p).map_err(|e| eprintln!("{p}: {e}"));
    let Ok(bundle) = read(&args[0]) else {
        return ExitCode::from(3);
    };
    let Ok(key_text) = read(&args[1]) else {
        return ExitCode::from(3);
    };
    let Some(key) = decode_key(&String::from_utf8_lossy(&key_text)) else {
        eprintln!("{}: not 64 hex digits or base64", args[1]);
        return ExitCode::from(3);
    };
    let anchor = if args[2] == "iana" {
        TrustAnchor::IanaRoot
    } else {
        let Ok(text) = read(&args[2]) else {
            return ExitCode::from(3);
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        let is_ds = text
            .lines()
            .filter(|l| !l.trim_start().starts_with(';'))
            .any(|l| l.split_whitespace().any(|t| t.eq_ignore_ascii_case("DS")));
        if is_ds {
            TrustAnchor::DsText(text)
        } else {
            TrustAnchor::DnskeyText(text)
        }
    };
    let now = match args.get(3) {
        Some(t) => match t.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return usage(),
        },
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    println!("service key id {}", key_id(&key));
    let verified = match verify(&bundle, &key, &anchor, now) {
        Ok(v) => v,
        Err(e) => {
            println!("NOT VERIFIED: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(domain) = args.get(4)
        && let Err(e) = verified.expect_domain(domain)
    {
        println!("NOT VERIFIED: {e}");
        return ExitCode::from(1);
    }
    let b = &verified.bundle;
    println!(
        "signature OK: {} verdict {} checked at {}, bundle made at {}",
        b.domain,
        serde_json::to_value(b.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        b.checked_at,
        b.created_at
    );
    for (owner, rrset) in verified.tlsa.iter().chain(&verified.others) {
        println!(
            "DNSSEC OK: {owner} (via {}), zones {}, valid until {}{}",
            rrset.final_owner,
            rrset.zones.join(" "),
            rrset.valid_until,
            if rrset.wildcard {
                " (wildcard expansion)"
            } else {
                ""
            }
        );
        for r in &rrset.records {
            println!("    {} {} {} {}", r.owner, r.ttl, r.rtype, r.rdata);
        }
    }
    for chain in &b.dnssec {
        if std::env::var_os("CERTWATCH_EVIDENCE_ZONE_TEXT").is_some()
            && let Some(text) = DnssecChain::to_zone_text(chain)
        {
            print!("{text}");
        }
    }
    for p in &verified.probes {
        println!(
            "{} {} port {} at {} via {} ({}): SPKI {} {}",
            p.probe.service,
            p.probe.target,
            p.probe.port,
            p.probe.address,
            p.probe.vantage,
            p.probe.probed_at,
            p.probe.spki_sha256,
            if p.in_tlsa {
                "IN the validated TLSA set"
            } else {
                "NOT in the validated TLSA set"
            }
        );
        println!(
            "    SRV of {} names this target and port: {}; address in the target's validated {}: {}",
            b.domain,
            if p.srv_proven {
                "proven"
            } else {
                "not proven by this bundle"
            },
            if p.probe.address.is_ipv4() {
                "A"
            } else {
                "AAAA"
            },
            if p.address_proven {
                "proven"
            } else {
                "not proven by this bundle"
            },
        );
    }
    for g in &b.gaps {
        println!("gap: {g}");
    }
    if verified.any_key_outside_tlsa() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
