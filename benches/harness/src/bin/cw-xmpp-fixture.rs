//! An XMPP server for the benchmark scenarios: STARTTLS (client and server streams) and
//! direct TLS, presenting the fixed P-256 / RSA-2048 material of `benches/data` to any of
//! the served domains.
//!
//! ```text
//! cw-xmpp-fixture --domains-file domains.txt --c2s 127.0.0.50:5222 --c2s-direct 127.0.0.50:5223 \
//!     --s2s 127.0.0.50:5269 --s2s-direct 127.0.0.50:5270 [--threads N]
//! cw-xmpp-fixture --print-tlsa     # the `3 1 1` data of the EC and the RSA key
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use certwatch_bench::{BoxError, Mode, serve, server_config, spki_sha256_hex};
use tokio::net::TcpListener;

fn usage() -> ! {
    eprintln!(
        "usage: cw-xmpp-fixture [--print-tlsa] [--domain D]... [--domains-file F] [--threads N] \
         [--c2s A] [--c2s-direct A] [--s2s A] [--s2s-direct A]"
    );
    std::process::exit(2)
}

fn run() -> Result<(), BoxError> {
    let mut domains = Vec::new();
    let mut listen: Vec<(Mode, SocketAddr)> = Vec::new();
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--print-tlsa" {
            println!("{}", spki_sha256_hex(certwatch_bench::EC_CERT_DER)?);
            println!("{}", spki_sha256_hex(certwatch_bench::RSA_CERT_DER)?);
            return Ok(());
        }
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--domain" => domains.push(v),
            "--domains-file" => {
                let text = std::fs::read_to_string(&v)?;
                domains.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned),
                );
            }
            "--threads" => threads = v.parse()?,
            "--c2s" => listen.push((Mode::StarttlsClient, v.parse()?)),
            "--s2s" => listen.push((Mode::StarttlsServer, v.parse()?)),
            "--c2s-direct" | "--s2s-direct" => listen.push((Mode::Direct, v.parse()?)),
            _ => usage(),
        }
    }
    if listen.is_empty() || domains.is_empty() {
        usage();
    }
    let tls = server_config()?;
    let domains = Arc::new(domains);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for (mode, addr) in listen {
            let listener = TcpListener::bind(addr).await?;
            let (tls, domains) = (tls.clone(), domains.clone());
            set.spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let (tls, domains) = (tls.clone(), domains.clone());
                    tokio::spawn(async move {
                        let _ = serve(tcp, mode, tls, domains).await;
                    });
                }
            });
        }
        eprintln!("cw-xmpp-fixture: ready, {} domains", domains.len());
        while set.join_next().await.is_some() {}
        Ok::<(), BoxError>(())
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("cw-xmpp-fixture: {e}");
        std::process::exit(1);
    }
}
