//! Discover the XMPP service map of a domain and print it as JSON, with the round-trip count.
//!
//! ```text
//! cargo run -p certwatch-dns --example dns_discover -- SERVER[:PORT] [ANCHOR.key|-] DOMAIN...
//! ```
//! `-` (or no anchor) uses the IANA root. `SERVER` may be `system` for /etc/resolv.conf.

use certwatch_dns::{Resolver, ResolverConfig, TrustAnchor};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: dns_discover SERVER[:PORT]|system ANCHOR.key|- DOMAIN...");
        std::process::exit(3);
    }
    let mut config = if args[0] == "system" {
        ResolverConfig::from_system()?
    } else {
        ResolverConfig::from_servers(&[args[0].as_str()])?
    };
    if args[1] != "-" {
        config =
            config.with_trust_anchor(TrustAnchor::DnskeyText(std::fs::read_to_string(&args[1])?));
    }
    let resolver = Resolver::new(config)?;
    for domain in &args[2..] {
        let started = std::time::Instant::now();
        let map = resolver.discover(domain).await?;
        println!("{}", serde_json::to_string_pretty(&map)?);
        eprintln!(
            "{domain}: {} endpoints, {} queries, {} sequential round trips ({} without the trust chain), {} ms",
            map.endpoints.len(),
            map.stats.queries,
            map.stats.sequential_round_trips,
            map.stats.lookup_round_trips,
            started.elapsed().as_millis()
        );
    }
    Ok(())
}
