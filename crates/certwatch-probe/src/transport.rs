//! How a probe reaches its target: directly, through a SOCKS5 proxy (an external Tor), or
//! through embedded Tor (arti, cargo feature `tor`).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ProbeErrorKind;

/// A byte stream a probe runs over.
pub trait ProbeIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ProbeIo for T {}

/// A boxed [`ProbeIo`].
pub type BoxedIo = Box<dyn ProbeIo>;

/// The isolation of one domain check: every probe of the check that shares it shares one Tor
/// circuit, and a new `CheckIsolation` asks for a fresh one (REFERENCE §3: one fresh circuit
/// per domain check, not per TCP connection).
///
/// Through SOCKS it is a random username and password (tor's default `IsolateSOCKSAuth`);
/// through arti it is an `IsolationToken`.
#[derive(Clone)]
pub struct CheckIsolation {
    socks_user: String,
    socks_pass: String,
    #[cfg(feature = "tor")]
    pub(crate) token: arti_client::IsolationToken,
}

impl CheckIsolation {
    /// A fresh isolation, with random SOCKS credentials from the system RNG.
    pub fn new() -> Self {
        CheckIsolation {
            socks_user: random_hex(),
            socks_pass: random_hex(),
            #[cfg(feature = "tor")]
            token: arti_client::IsolationToken::new(),
        }
    }
}

impl Default for CheckIsolation {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CheckIsolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckIsolation")
            .field("socks_user", &self.socks_user)
            .finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // The system RNG is unavailable: fall back to a per-process counter and the clock,
        // which still gives distinct credentials (isolation needs distinctness, not secrecy).
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..].copy_from_slice(&t.to_be_bytes());
    }
    hex::encode(bytes)
}

/// How probes reach their targets. Chosen per probe.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Transport {
    /// Plain TCP from this machine: the non-Tor baseline vantage point.
    Direct,
    /// An external Tor (or any SOCKS5 proxy) at this address. Each [`CheckIsolation`] sends
    /// different credentials, so tor's `IsolateSOCKSAuth` gives it a fresh circuit. The exit
    /// relay cannot be seen through SOCKS: results say so.
    Socks {
        /// The proxy's address, for example `127.0.0.1:9050`.
        proxy: SocketAddr,
    },
    /// Embedded Tor through arti-client (cargo feature `tor`).
    #[cfg(feature = "tor")]
    Tor(crate::tor::TorTransport),
}

impl Transport {
    /// Opens a connection to `addr` (an IP address: no name is ever resolved), isolated by
    /// `isolation`. No timeout here: the caller bounds it.
    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        isolation: &CheckIsolation,
    ) -> Result<(BoxedIo, Vantage), ProbeErrorKind> {
        match self {
            Transport::Direct => {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_error)?;
                let _ = tcp.set_nodelay(true);
                Ok((Box::new(tcp), Vantage::Direct))
            }
            Transport::Socks { proxy } => {
                let stream = tokio_socks::tcp::Socks5Stream::connect_with_password(
                    *proxy,
                    addr,
                    &isolation.socks_user,
                    &isolation.socks_pass,
                )
                .await
                .map_err(|e| socks_error(*proxy, e))?;
                Ok((
                    Box::new(stream),
                    Vantage::Socks {
                        proxy: *proxy,
                        exit_known: false,
                    },
                ))
            }
            #[cfg(feature = "tor")]
            Transport::Tor(tor) => tor.connect(addr, isolation).await,
        }
    }
}

fn connect_error(e: io::Error) -> ProbeErrorKind {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        ProbeErrorKind::Refused
    } else {
        ProbeErrorKind::Network {
            phase: crate::error::Phase::Connect,
            source: e,
        }
    }
}

fn socks_error(proxy: SocketAddr, e: tokio_socks::Error) -> ProbeErrorKind {
    use tokio_socks::Error as E;
    match e {
        E::ConnectionRefused => ProbeErrorKind::Refused,
        // What tor answers when the circuit or the exit's connection fails.
        E::GeneralSocksServerFailure
        | E::NetworkUnreachable
        | E::HostUnreachable
        | E::TtlExpired
        | E::ConnectionNotAllowedByRuleset => ProbeErrorKind::Tor {
            detail: format!("SOCKS proxy {proxy} reported: {e}"),
        },
        other => ProbeErrorKind::Socks {
            proxy,
            detail: other.to_string(),
        },
    }
}

/// Where a probe was made from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Vantage {
    /// Directly from this machine.
    Direct,
    /// Through a SOCKS5 proxy (external Tor). The exit relay is unknown.
    Socks {
        /// The proxy's address.
        proxy: SocketAddr,
        /// Always `false`: through SOCKS the exit cannot be seen, so exit diversity is
        /// unverified.
        exit_known: bool,
    },
    /// Through embedded Tor.
    Tor {
        /// The exit relay of the circuit, when arti could tell.
        exit: Option<ExitRelay>,
    },
}

impl Vantage {
    /// The IP address of the exit relay (Tor only, when known).
    pub fn exit_ip(&self) -> Option<IpAddr> {
        match self {
            Vantage::Tor { exit: Some(exit) } => exit.addrs.first().map(|a| a.ip()),
            _ => None,
        }
    }
}

impl fmt::Display for Vantage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Vantage::Direct => f.write_str("direct"),
            Vantage::Socks { proxy, .. } => write!(f, "SOCKS proxy {proxy} (exit unknown)"),
            Vantage::Tor { exit: Some(exit) } => write!(f, "Tor exit {exit}"),
            Vantage::Tor { exit: None } => f.write_str("Tor (exit unknown)"),
        }
    }
}

/// A Tor exit relay, as the circuit's last hop describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExitRelay {
    /// The RSA identity fingerprint (40 hex digits, uppercase), when known.
    pub rsa_identity: Option<String>,
    /// The Ed25519 identity (base64, as tor prints it), when known.
    pub ed25519_identity: Option<String>,
    /// The relay's OR addresses.
    pub addrs: Vec<SocketAddr>,
}

impl fmt::Display for ExitRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.rsa_identity, &self.ed25519_identity) {
            (Some(rsa), _) => write!(f, "${rsa}")?,
            (None, Some(ed)) => write!(f, "{ed}")?,
            (None, None) => f.write_str("(no identity)")?,
        }
        for a in &self.addrs {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// A stream wrapper for probes:
/// - it flushes pending writes before every read, so a transport that buffers writes (an
///   arti `DataStream` sends nothing until flushed, REFERENCE §7) never deadlocks a
///   request/response exchange;
/// - it counts the bytes read and fails once they exceed the current bound, so a hostile
///   server cannot make a probe read forever.
pub(crate) struct Guarded<S> {
    inner: S,
    dirty: bool,
    read: usize,
    limit: usize,
    /// Bytes read in the current phase, readable after the stream is consumed.
    phase_bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// The marker error of [`Guarded`] when the byte bound is exceeded.
#[derive(Debug, thiserror::Error)]
#[error("read bound of {0} bytes exceeded")]
pub(crate) struct ReadBoundExceeded(pub(crate) usize);

impl<S> Guarded<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Guarded {
            inner,
            dirty: false,
            read: 0,
            limit,
            phase_bytes: Default::default(),
        }
    }

    /// Starts a new phase: resets the count and sets its bound.
    pub(crate) fn set_bound(&mut self, limit: usize) {
        self.read = 0;
        self.limit = limit;
        self.phase_bytes = Default::default();
    }

    /// A handle on the count of bytes read in the current phase.
    pub(crate) fn phase_bytes(&self) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        self.phase_bytes.clone()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.dirty {
            match Pin::new(&mut this.inner).poll_flush(cx) {
                Poll::Ready(Ok(())) => this.dirty = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if this.read >= this.limit {
            return Poll::Ready(Err(io::Error::other(ReadBoundExceeded(this.limit))));
        }
        // Never read more than the remaining budget.
        let room = (this.limit - this.read).min(buf.remaining());
        let dst = buf.initialize_unfilled_to(room);
        let mut limited = ReadBuf::new(dst);
        let r = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if let Poll::Ready(Ok(())) = r {
            buf.advance(n);
            this.read += n;
            this.phase_bytes
                .store(this.read, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            self.dirty = true;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            self.dirty = false;
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn guarded_stops_at_the_bound() {
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(&[7u8; 100]).await.unwrap();
        let mut g = Guarded::new(client, 60);
        let mut buf = vec![0u8; 1000];
        let mut total = 0;
        let err = loop {
            match g.read(&mut buf).await {
                Ok(n) => total += n,
                Err(e) => break e,
            }
        };
        assert_eq!(total, 60);
        assert!(err.get_ref().unwrap().is::<ReadBoundExceeded>());
        g.set_bound(100);
        assert_eq!(g.read(&mut buf).await.unwrap(), 40);
    }

    #[test]
    fn isolations_differ() {
        let a = CheckIsolation::new();
        let b = CheckIsolation::new();
        assert_ne!(a.socks_user, b.socks_user);
        assert_eq!(a.socks_user.len(), 32);
    }

    #[test]
    fn vantage_serde_and_exit_ip() {
        let v = Vantage::Tor {
            exit: Some(ExitRelay {
                rsa_identity: Some("AB".into()),
                ed25519_identity: None,
                addrs: vec!["127.0.0.11:5101".parse().unwrap()],
            }),
        };
        assert_eq!(v.exit_ip(), Some("127.0.0.11".parse().unwrap()));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["transport"], "tor");
        let s = serde_json::to_value(Vantage::Socks {
            proxy: "127.0.0.1:9050".parse().unwrap(),
            exit_known: false,
        })
        .unwrap();
        assert_eq!(s["exit_known"], false);
        assert_eq!(Vantage::Direct.exit_ip(), None);
    }
}
