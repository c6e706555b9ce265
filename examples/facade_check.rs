//! Check XMPP domains with the `certwatch` facade and print one JSON report per line.
//!
//! ```text
//! cargo run -p certwatch --no-default-features --example facade_check -- \
//!     SERVER[:PORT]|system ANCHOR.key|- [--allow-private-targets] DOMAIN...
//! ```
//! Probes directly (no Tor). `-` uses the IANA root trust anchor. Exits with the worst
//! exit code of REFERENCE §3.

use certwatch::{CheckOptions, Checker, ResolverConfig, Transport, TrustAnchor};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let allow_private = args.iter().any(|a| a == "--allow-private-targets");
    args.retain(|a| a != "--allow-private-targets");
    if args.len() < 3 {
        eprintln!(
            "usage: facade_check SERVER[:PORT]|system ANCHOR.key|- [--allow-private-targets] DOMAIN..."
        );
        std::process::exit(3);
    }
    let mut resolver = if args[0] == "system" {
        ResolverConfig::from_system()?
    } else {
        ResolverConfig::from_servers(&[args[0].as_str()])?
    };
    if args[1] != "-" {
        resolver =
            resolver.with_trust_anchor(TrustAnchor::DnskeyText(std::fs::read_to_string(&args[1])?));
    }
    let options =
        CheckOptions::new(Transport::Direct, resolver).with_private_targets(allow_private);
    let checker = Checker::new(options)?;
    let mut codes = Vec::new();
    for domain in &args[2..] {
        match checker.check(domain).await {
            Ok(report) => {
                println!("{}", report.to_json_line());
                codes.push(report.exit_code());
            }
            Err(e) => {
                eprintln!("{e}");
                codes.push(3);
            }
        }
    }
    std::process::exit(certwatch::combine_exit_codes(codes).into());
}
