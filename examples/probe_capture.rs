//! Captures the key(s) an XMPP server proves it holds, and prints them as TLSA `3 1 1` data.
//!
//! ```text
//! cargo run -p certwatch-probe --example probe_capture -- SERVICE DOMAIN IP:PORT [SOCKS_PROXY]
//! cargo run -p certwatch-probe --example probe_capture -- c2s-starttls match.test 127.0.0.1:5222
//! cargo run -p certwatch-probe --example probe_capture -- c2s-direct match.test 127.0.0.1:5223 127.0.0.1:19050
//! ```
//!
//! SERVICE is one of `c2s-starttls`, `c2s-direct`, `s2s-starttls`, `s2s-direct`. The address
//! must be an IP address you trust (validated with DNSSEC): the probe never resolves names.
//! With a SOCKS proxy (an external Tor) the probe goes through it; otherwise it is direct.
//! Each key type (EC, then RSA) is probed separately, so a dual-certificate server shows both.

use std::net::SocketAddr;
use std::process::ExitCode;

use certwatch_probe::{
    CheckIsolation, EndpointId, ProbeOptions, ProbeTarget, Prober, Service, Transport,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (service, domain, addr, socks) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}\nusage: probe_capture SERVICE DOMAIN IP:PORT [SOCKS_PROXY]");
            return ExitCode::from(3);
        }
    };
    let transport = match socks {
        Some(proxy) => Transport::Socks { proxy },
        None => Transport::Direct,
    };
    let target = ProbeTarget::new(
        &domain,
        EndpointId::new(service, &domain, addr.port()),
        addr.ip(),
    );
    let prober = Prober::new(transport, ProbeOptions::default());
    let check = CheckIsolation::new();
    let mut ok = false;
    for result in prober.probe_all_keys(&target, &check).await {
        match result {
            Ok(probe) => {
                ok = true;
                let spki = probe.leaf_spki_sha256_hex().unwrap_or_else(|| "?".into());
                println!(
                    "{} key via {}: 3 1 1 {spki}\n  {:?}, {}, group {}, signed with {}, ALPN {}, \
                     chain of {} certificate(s), handshake {:?}",
                    probe.key_request,
                    probe.vantage,
                    probe.tls.version,
                    probe.tls.cipher_suite,
                    probe.tls.key_exchange_group.as_deref().unwrap_or("?"),
                    probe.tls.signature_scheme,
                    probe.tls.alpn.as_deref().unwrap_or("none"),
                    probe.chain.len(),
                    probe.timings.handshake,
                );
            }
            Err(e) => println!("{e} [{:?}]", e.class()),
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

type Args = (Service, String, SocketAddr, Option<SocketAddr>);

fn parse(args: &[String]) -> Result<Args, String> {
    let [service, domain, addr, rest @ ..] = args else {
        return Err("missing arguments".into());
    };
    let service: Service = service.parse().map_err(|e| format!("{e}"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("{addr:?} is not IP:PORT: {e}"))?;
    let socks = match rest {
        [] => None,
        [proxy] => Some(
            proxy
                .parse()
                .map_err(|e| format!("{proxy:?} is not IP:PORT: {e}"))?,
        ),
        _ => return Err("too many arguments".into()),
    };
    Ok((service, domain.clone(), addr, socks))
}
