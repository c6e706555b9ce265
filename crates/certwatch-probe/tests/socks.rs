//! The SOCKS5 transport against an in-process SOCKS5 proxy that records what it is asked.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use certwatch_probe::{
    CheckIsolation, EndpointId, ErrorClass, KeyRequest, ProbeErrorKind, ProbeOptions, ProbeTarget,
    Prober, Service, Transport, Vantage,
};
use common::{Alg, DOMAIN, Fixed, Mode, Pki, server_config, spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy saw: (username, address type byte, target).
type Seen = Arc<Mutex<Vec<(String, u8, Option<SocketAddr>)>>>;

/// A minimal SOCKS5 proxy (RFC 1928 + RFC 1929). With `fail`, it answers every CONNECT with
/// "general failure" (what tor says when a circuit fails).
async fn socks_proxy(fail: bool) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let _ = serve(client, s, fail).await;
            });
        }
    });
    (addr, seen)
}

async fn serve(mut c: TcpStream, seen: Seen, fail: bool) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    c.read_exact(&mut methods).await?;
    assert!(methods.contains(&2), "username/password auth offered");
    c.write_all(&[5, 2]).await?;
    // RFC 1929 sub-negotiation.
    let mut v = [0u8; 2];
    c.read_exact(&mut v).await?;
    let mut user = vec![0u8; v[1] as usize];
    c.read_exact(&mut user).await?;
    let mut plen = [0u8; 1];
    c.read_exact(&mut plen).await?;
    let mut pass = vec![0u8; plen[0] as usize];
    c.read_exact(&mut pass).await?;
    c.write_all(&[1, 0]).await?;
    // CONNECT request.
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    let atyp = req[3];
    let target = match atyp {
        1 => {
            let mut b = [0u8; 6];
            c.read_exact(&mut b).await?;
            let ip = std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Some(SocketAddr::from((ip, u16::from_be_bytes([b[4], b[5]]))))
        }
        _ => None,
    };
    seen.lock()
        .unwrap()
        .push((String::from_utf8_lossy(&user).into_owned(), atyp, target));
    let reply_ok = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let Some(target) = target.filter(|_| !fail) else {
        c.write_all(&[5, 1, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    let mut upstream = TcpStream::connect(target).await?;
    c.write_all(&reply_ok).await?;
    tokio::io::copy_bidirectional(&mut c, &mut upstream).await?;
    Ok(())
}

fn target(addr: SocketAddr) -> ProbeTarget {
    ProbeTarget::new(
        DOMAIN,
        EndpointId::new(Service::C2sStarttls, "xmpp.a.test", addr.port()),
        addr.ip(),
    )
}

#[tokio::test]
async fn socks_sends_the_ip_and_isolates_per_check() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::P256);
    let srv = spawn(
        Mode::Starttls,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let (proxy, seen) = socks_proxy(false).await;
    let prober = Prober::new(Transport::Socks { proxy }, ProbeOptions::default());
    let t = target(srv.addr);

    let check = CheckIsolation::new();
    let first = prober.probe(&t, &check, KeyRequest::Ec).await.unwrap();
    let second = prober.probe(&t, &check, KeyRequest::Ec).await.unwrap();
    let other = prober
        .probe(&t, &CheckIsolation::new(), KeyRequest::Ec)
        .await
        .unwrap();
    assert_eq!(first.leaf_spki_sha256_hex().unwrap(), leaf.spki_sha256);
    for p in [&first, &second, &other] {
        assert_eq!(
            p.vantage,
            Vantage::Socks {
                proxy,
                exit_known: false
            }
        );
        assert_eq!(p.vantage.exit_ip(), None);
    }

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for (_, atyp, addr) in &seen {
        assert_eq!(
            *atyp, 1,
            "the target is sent as an IPv4 address, never a name"
        );
        assert_eq!(*addr, Some(srv.addr));
    }
    assert_eq!(seen[0].0, seen[1].0, "one check, one circuit");
    assert_ne!(seen[0].0, seen[2].0, "a new check gets a new circuit");
}

#[tokio::test]
async fn socks_failure_is_an_indeterminate_tor_failure() {
    let (proxy, _) = socks_proxy(true).await;
    let prober = Prober::new(Transport::Socks { proxy }, ProbeOptions::default());
    let t = target("127.0.0.1:5222".parse().unwrap());
    let e = prober
        .probe(&t, &CheckIsolation::new(), KeyRequest::Any)
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ProbeErrorKind::Tor { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Indeterminate);
    assert!(e.to_string().contains(&proxy.to_string()), "{e}");
}

#[tokio::test]
async fn socks_diverse_counts_attempts_but_cannot_verify_exits() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::P256);
    let srv = spawn(
        Mode::Starttls,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let (proxy, seen) = socks_proxy(false).await;
    let prober = Prober::new(Transport::Socks { proxy }, ProbeOptions::default());
    let d = prober
        .probe_diverse(&target(srv.addr), KeyRequest::Ec, 3)
        .await;
    assert_eq!(d.conclusive.len(), 3);
    assert!(!d.exits_verified);
    assert_eq!(d.distinct_exits, 0);
    let users: std::collections::HashSet<String> =
        seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(users.len(), 3, "each attempt on a fresh circuit");
}
