//! A userspace delay proxy for TCP and UDP: `tc netem` is missing on the benchmark machines.
//!
//! ```text
//! cw-delay-proxy --delay-ms 50 --tcp 127.0.0.51:5222=127.0.0.1:5222 --udp 127.0.0.51:53=127.0.0.1:5354
//! ```
//!
//! Every chunk read on one side is written to the other side `delay` later, in both
//! directions, so a request/answer exchange costs one round trip of `2 × delay`.
//!
//! TCP's own handshake cannot be delayed from userspace (the kernel completes it before
//! `accept`), so the proxy emulates it: bytes the client sends within the first
//! `2 × delay` after accepting are forwarded as if sent at `2 × delay`, which is when a real
//! client's `connect()` would have returned. A client-first protocol (XMPP, TLS) therefore
//! sees the TCP handshake as one round trip, as on a real link. UDP is forwarded per client
//! address through its own upstream socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn pair(s: &str) -> Result<(SocketAddr, SocketAddr), BoxError> {
    let (l, u) = s
        .split_once('=')
        .ok_or_else(|| format!("expected LISTEN=UPSTREAM, got {s}"))?;
    Ok((l.parse()?, u.parse()?))
}

/// Copies `from` to `to`, each chunk written at `max(read time, not_before) + delay`.
async fn pump<R, W>(mut from: R, mut to: W, delay: Duration, not_before: Instant)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        let at = Instant::now().max(not_before) + delay;
        let chunk = (n > 0).then(|| buf[..n].to_vec());
        let eof = chunk.is_none();
        if tx.send((at, chunk)).is_err() || eof {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn tcp(listen: SocketAddr, upstream: SocketAddr, delay: Duration) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let accepted = Instant::now();
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = pump(cr, sw, delay, accepted + 2 * delay);
            let down = pump(sr, cw, delay, accepted);
            tokio::join!(up, down);
        });
    }
}

async fn udp(listen: SocketAddr, upstream: SocketAddr, delay: Duration) -> Result<(), BoxError> {
    let sock = Arc::new(UdpSocket::bind(listen).await?);
    let peers: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, client) = sock.recv_from(&mut buf).await?;
        let packet = buf[..n].to_vec();
        let up = {
            let mut map = peers.lock().await;
            match map.get(&client) {
                Some(s) => s.clone(),
                None => {
                    let bind: SocketAddr = if upstream.is_ipv4() {
                        "127.0.0.1:0".parse()?
                    } else {
                        "[::1]:0".parse()?
                    };
                    let s = Arc::new(UdpSocket::bind(bind).await?);
                    s.connect(upstream).await?;
                    map.insert(client, s.clone());
                    let (back, s2) = (sock.clone(), s.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = s2.recv(&mut buf).await {
                            let packet = buf[..n].to_vec();
                            let back = back.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(delay).await;
                                let _ = back.send_to(&packet, client).await;
                            });
                        }
                    });
                    s
                }
            }
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = up.send(&packet).await;
        });
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: cw-delay-proxy [--delay-ms MS] (--tcp LISTEN=UPSTREAM | --udp LISTEN=UPSTREAM)..."
    );
    std::process::exit(2)
}

fn main() {
    let mut delay = Duration::from_millis(50);
    let mut tcps = Vec::new();
    let mut udps = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--delay-ms" => delay = Duration::from_millis(v.parse().unwrap_or_else(|_| usage())),
            "--tcp" => tcps.push(pair(&v).unwrap_or_else(|e| {
                eprintln!("cw-delay-proxy: {e}");
                usage()
            })),
            "--udp" => udps.push(pair(&v).unwrap_or_else(|e| {
                eprintln!("cw-delay-proxy: {e}");
                usage()
            })),
            _ => usage(),
        }
    }
    if tcps.is_empty() && udps.is_empty() {
        usage();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cw-delay-proxy: runtime: {e}");
            std::process::exit(1)
        }
    };
    let result: Result<(), BoxError> = rt.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for (l, u) in tcps {
            set.spawn(tcp(l, u, delay));
        }
        for (l, u) in udps {
            set.spawn(udp(l, u, delay));
        }
        eprintln!("cw-delay-proxy: ready, {} ms each way", delay.as_millis());
        match set.join_next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(e.into()),
            None => Ok(()),
        }
    });
    if let Err(e) = result {
        eprintln!("cw-delay-proxy: {e}");
        std::process::exit(1);
    }
}
