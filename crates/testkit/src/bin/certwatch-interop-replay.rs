//! `certwatch-interop-replay`: the replay server of the interop environment.
//!
//! A machine in the middle that holds a server's *genuine* certificate chain (public data:
//! anyone who connects to the real server gets it) but not its private key. It presents that
//! chain and signs the TLS handshake with a key of its own. A client that compares the
//! presented certificate with DANE but skips the handshake signature check would call this a
//! match; certwatch must report `mismatch` with reason `unproven-key`.
//!
//! ```text
//! certwatch-interop-replay --chain FULLCHAIN.pem --key OTHER.key
//!     [--starttls ADDR:PORT]... [--direct ADDR:PORT]...
//! ```
//!
//! - `--starttls` listeners speak XMPP first: they read the client's stream header (client or
//!   server namespace), answer with a header and features offering `<starttls/>`, read
//!   `<starttls/>`, answer `<proceed/>`, then speak TLS.
//! - `--direct` listeners speak TLS at once (XEP-0368), with ALPN `xmpp-client` and
//!   `xmpp-server`.
//!
//! The certificate chain and the signing key are deliberately NOT checked against each other
//! (that is the point). Every connection is bounded (bytes and time) and logged on stdout,
//! one line each. `scripts/interop/replay.sh` builds and runs it.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest a client may take for the whole XMPP pre-TLS exchange plus the handshake.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(20);
/// The most a client may send before TLS begins.
const MAX_PRE_TLS_BYTES: usize = 8 * 1024;
/// The STARTTLS namespace (RFC 6120).
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(
        "usage: {0}\n(certwatch-interop-replay --chain FULLCHAIN.pem --key KEY.pem [--starttls ADDR:PORT]... [--direct ADDR:PORT]...)"
    )]
    Usage(String),
    #[error("cannot read the certificate chain {path}: {source}")]
    Chain {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("cannot read the private key {path}: {source}")]
    Key {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the private key {path} is not usable for TLS signatures: {source}")]
    Signer { path: String, source: rustls::Error },
    #[error("cannot build the TLS configuration: {0}")]
    Tls(rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Presents the one (replayed) certified key to every client.
#[derive(Debug)]
struct Replayed(Arc<CertifiedKey>);

impl ResolvesServerCert for Replayed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

struct Args {
    chain: String,
    key: String,
    starttls: Vec<SocketAddr>,
    direct: Vec<SocketAddr>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, Error> {
    let mut out = Args {
        chain: String::new(),
        key: String::new(),
        starttls: Vec::new(),
        direct: Vec::new(),
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))?;
        let addr = || {
            value
                .parse::<SocketAddr>()
                .map_err(|e| Error::Usage(format!("{flag} {value}: {e}")))
        };
        match flag.as_str() {
            "--chain" => out.chain = value.clone(),
            "--key" => out.key = value.clone(),
            "--starttls" => out.starttls.push(addr()?),
            "--direct" => out.direct.push(addr()?),
            other => return Err(Error::Usage(format!("unknown argument {other}"))),
        }
    }
    if out.chain.is_empty() || out.key.is_empty() {
        return Err(Error::Usage("--chain and --key are required".into()));
    }
    if out.starttls.is_empty() && out.direct.is_empty() {
        return Err(Error::Usage("no listener (--starttls or --direct)".into()));
    }
    Ok(out)
}

/// The TLS configuration: the genuine chain, the other key.
fn tls_config(args: &Args) -> Result<Arc<rustls::ServerConfig>, Error> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args.chain)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| Error::Chain {
            path: args.chain.clone(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(&args.key).map_err(|source| Error::Key {
        path: args.key.clone(),
        source,
    })?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| Error::Signer {
            path: args.key.clone(),
            source,
        })?;
    // CertifiedKey::new does not check that the key belongs to the leaf; keys_match() would.
    let replayed = Arc::new(CertifiedKey::new(chain, signer));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Replayed(replayed)));
    config.alpn_protocols = vec![b"xmpp-client".to_vec(), b"xmpp-server".to_vec()];
    Ok(Arc::new(config))
}

/// Reads from `io` into `buf` until `done(buf)` holds; fails on EOF or past the byte bound.
async fn read_until<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    done: impl Fn(&str) -> bool,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 1024];
    while !done(&String::from_utf8_lossy(buf)) {
        if buf.len() > MAX_PRE_TLS_BYTES {
            return Err(std::io::Error::other("client sent too much before TLS"));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// The value of attribute `name` in the first tag of `text` that starts with `tag`.
fn attribute(text: &str, tag: &str, name: &str) -> Option<String> {
    let start = text.find(tag)?;
    let end = start + text[start..].find('>')?;
    let head = &text[start..end];
    for quote in ['\'', '"'] {
        let pat = format!(" {name}={quote}");
        if let Some(i) = head.find(&pat) {
            let rest = &head[i + pat.len()..];
            return rest.find(quote).map(|j| rest[..j].to_owned());
        }
    }
    None
}

/// The XMPP part of STARTTLS, as a server: header, features, `<starttls/>`, `<proceed/>`.
/// Returns the stream `to` the client asked for.
async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let header_done = |t: &str| {
        t.find("<stream:stream")
            .is_some_and(|i| t[i..].contains('>'))
    };
    read_until(io, &mut buf, header_done).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let to = attribute(&text, "<stream:stream", "to").unwrap_or_default();
    let server = text.contains("jabber:server");
    let ns = if server {
        "jabber:server' xmlns:db='jabber:server:dialback"
    } else {
        "jabber:client"
    };
    let to_xml = to
        .replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;");
    let response = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{ns}' \
         xmlns:stream='http://etherx.jabber.org/streams' id='certwatch-replay' from='{to_xml}' \
         version='1.0' xml:lang='en'><stream:features><starttls xmlns='{NS_TLS}'><required/>\
         </starttls></stream:features>"
    );
    io.write_all(response.as_bytes()).await?;
    io.flush().await?;
    // Whatever followed the header, then the <starttls/> element.
    let header_end = text
        .find("<stream:stream")
        .and_then(|i| text[i..].find('>').map(|j| i + j + 1))
        .unwrap_or(text.len());
    let mut rest = buf.split_off(header_end.min(buf.len()));
    read_until(io, &mut rest, |t| {
        t.contains("<starttls") && (t.contains("/>") || t.contains("</starttls>"))
    })
    .await?;
    io.write_all(format!("<proceed xmlns='{NS_TLS}'/>").as_bytes())
        .await?;
    io.flush().await?;
    Ok(to)
}

/// Serves one connection: optional STARTTLS, then the TLS handshake with the replayed key.
async fn serve(
    mut tcp: TcpStream,
    starttls_first: bool,
    config: Arc<rustls::ServerConfig>,
) -> std::io::Result<String> {
    let to = if starttls_first {
        starttls(&mut tcp).await?
    } else {
        String::new()
    };
    let mut tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
    // A client that verifies the handshake signature never gets here.
    let mut buf = [0u8; 256];
    let _ = tls.read(&mut buf).await;
    Ok(format!(
        "handshake completed (to='{to}'): the client did NOT check the signature"
    ))
}

async fn listen(
    addr: SocketAddr,
    starttls_first: bool,
    config: Arc<rustls::ServerConfig>,
) -> Result<(), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let kind = if starttls_first { "starttls" } else { "direct" };
    println!("listening on {addr} ({kind})");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let config = config.clone();
            tokio::spawn(async move {
                let outcome =
                    tokio::time::timeout(CONNECTION_DEADLINE, serve(tcp, starttls_first, config))
                        .await;
                let outcome = match outcome {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => format!("ended: {e}"),
                    Err(_) => "deadline reached".to_owned(),
                };
                println!("{addr} ({kind}) from {peer}: {outcome}");
            });
        }
    });
    Ok(())
}

async fn run() -> Result<(), Error> {
    let args = parse_args(std::env::args().skip(1))?;
    let config = tls_config(&args)?;
    for addr in &args.starttls {
        listen(*addr, true, config.clone()).await?;
    }
    for addr in &args.direct {
        listen(*addr, false, config.clone()).await?;
    }
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("certwatch-interop-replay: {e}");
        std::process::exit(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_to_is_read_with_either_quote() {
        let h = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' to='replay.test' version='1.0'>";
        assert_eq!(
            attribute(h, "<stream:stream", "to").as_deref(),
            Some("replay.test")
        );
        let h = r#"<stream:stream to="a.test" xmlns="jabber:server">"#;
        assert_eq!(
            attribute(h, "<stream:stream", "to").as_deref(),
            Some("a.test")
        );
        assert_eq!(attribute(h, "<stream:stream", "from"), None);
    }

    #[test]
    fn arguments_need_a_chain_a_key_and_a_listener() {
        let args = |v: &[&str]| parse_args(v.iter().map(|s| (*s).to_owned()));
        assert!(args(&["--chain", "c.pem"]).is_err());
        assert!(args(&["--chain", "c.pem", "--key", "k.pem"]).is_err());
        assert!(args(&["--chain", "c.pem", "--key", "k.pem", "--direct", "nonsense"]).is_err());
        let ok = args(&[
            "--chain",
            "c.pem",
            "--key",
            "k.pem",
            "--starttls",
            "127.0.0.4:5222",
        ])
        .unwrap();
        assert_eq!(ok.starttls, ["127.0.0.4:5222".parse().unwrap()]);
    }
}
