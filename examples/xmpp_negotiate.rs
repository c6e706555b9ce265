//! Negotiates STARTTLS with an XMPP server and prints what it said, stopping where TLS would
//! begin (no TLS handshake is made).
//!
//! ```text
//! cargo run -p certwatch-xmpp --example xmpp_negotiate -- 127.0.0.1:5222 match.test
//! cargo run -p certwatch-xmpp --example xmpp_negotiate -- 127.0.0.1:5269 match.test --s2s
//! ```

use std::process::ExitCode;

use certwatch_xmpp::{Config, DirectTls, Timeouts, negotiate};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(domain)) = (args.first(), args.get(1)) else {
        eprintln!("usage: xmpp_negotiate HOST:PORT DOMAIN [--s2s [FROM]]");
        return ExitCode::from(3);
    };
    let config = match args.get(2).map(String::as_str) {
        Some("--s2s") => Config::server(domain.clone(), args.get(3).cloned()),
        Some(other) => {
            eprintln!("unknown option {other:?}");
            return ExitCode::from(3);
        }
        None => Config::client(domain.clone()),
    };
    let timeouts = Timeouts::default();
    let tcp = match tokio::time::timeout(timeouts.step, tokio::net::TcpStream::connect(addr)).await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            eprintln!("cannot connect to {addr}: {e}");
            return ExitCode::from(3);
        }
        Err(_) => {
            eprintln!("cannot connect to {addr}: timed out");
            return ExitCode::from(3);
        }
    };
    match negotiate(tcp, &config, &timeouts).await {
        Ok((_tcp, negotiation)) => {
            println!("{negotiation:#?}");
            let tls = DirectTls::for_config(&config);
            println!(
                "TLS would begin now, with SNI {:?} (ALPN {:?} on a direct-TLS port)",
                tls.server_name,
                String::from_utf8_lossy(tls.alpn)
            );
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{:#?}", failure.partial);
            eprintln!("negotiation failed: {}", failure.error);
            ExitCode::from(2)
        }
    }
}
