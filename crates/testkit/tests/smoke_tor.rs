//! Smoke tests of the private Tor network that `scripts/interop-env up` starts: the consensus
//! lists the described relays as exits on distinct addresses, a stream through the C-tor SOCKS
//! port, and arti bootstrapping from the written `arti.toml`, each reaching Prosody's c2s port
//! on loopback and reading the beginning of an XMPP stream.
#![cfg(feature = "interop")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arti_client::config::{BoolOrAuto, TorClientConfigBuilder};
use arti_client::{StreamPrefs, TorAddr, TorClient};
use certwatch_testkit::Interop;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const STREAM_HEADER: &str = "<?xml version='1.0'?><stream:stream to='match.test' version='1.0' \
     xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// Prosody's c2s (STARTTLS) address from the description.
fn prosody_c2s(env: &Interop) -> SocketAddr {
    let ip = env
        .str("xmpp.prosody.address")
        .expect("xmpp.prosody.address")
        .parse()
        .expect("xmpp.prosody.address is an IP address");
    let port = env.u64("xmpp.prosody.c2s").expect("xmpp.prosody.c2s");
    SocketAddr::new(ip, u16::try_from(port).expect("xmpp.prosody.c2s is a port"))
}

/// Sends the client stream header and reads until the server's reply shows its own stream
/// header or features (or the stream ends). Returns what was read.
async fn xmpp_stream_start<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> String {
    stream
        .write_all(STREAM_HEADER.as_bytes())
        .await
        .expect("write the stream header");
    // An arti DataStream sends nothing until flushed.
    stream.flush().await.expect("flush the stream header");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read the XMPP reply");
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains("stream:features") {
            break;
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

fn assert_xmpp_reply(reply: &str) {
    assert!(
        reply.contains("<stream:stream") || reply.contains("stream:features"),
        "not the start of an XMPP stream: {reply:?}"
    );
    assert!(
        reply.contains("jabber:client"),
        "the reply is not a c2s stream: {reply:?}"
    );
}

fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}

#[tokio::test(flavor = "multi_thread")]
async fn socks_through_private_tor_reaches_prosody() {
    let env = Interop::require();
    let socks = env.socket_addr("tor.socks").expect("tor.socks");
    let target = prosody_c2s(&env);
    // A fresh username/password asks C-tor for a fresh circuit (IsolateSOCKSAuth).
    let (user, pass) = (random_hex(), random_hex());
    let started = Instant::now();
    let mut stream = timeout(
        Duration::from_secs(60),
        tokio_socks::tcp::Socks5Stream::connect_with_password(
            socks,
            target,
            user.as_str(),
            pass.as_str(),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("SOCKS connect via {socks} to {target}: timed out"))
    .unwrap_or_else(|e| panic!("SOCKS connect via {socks} to {target}: {e}"));
    let reply = timeout(Duration::from_secs(30), xmpp_stream_start(&mut stream))
        .await
        .expect("XMPP reply through Tor: timed out");
    eprintln!(
        "SOCKS stream to {target} and XMPP reply in {:?}",
        started.elapsed()
    );
    assert_xmpp_reply(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn arti_bootstraps_from_written_config_and_reaches_prosody() {
    let env = Interop::require();
    // arti's rustls runtime leaves the choice of crypto provider to the application.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    // The written config, with storage of this client's own (Interop::private_arti_config).
    let private = env.private_arti_config().expect("tor.arti_config");
    let path = private.path().to_owned();
    let target = prosody_c2s(&env);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read the arti config {}: {e}", path.display()));
    let builder: TorClientConfigBuilder = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("parse the arti config {}: {e}", path.display()));
    let config = builder
        .build()
        .unwrap_or_else(|e| panic!("build the arti config {}: {e}", path.display()));

    let started = Instant::now();
    // bootstrap() does not fail by itself when the network is unreachable: bound it.
    let client = timeout(
        Duration::from_secs(60),
        TorClient::create_bootstrapped(config),
    )
    .await
    .expect("arti bootstrap on the private network: timed out after 60 s")
    .expect("arti bootstrap on the private network");
    // bootstrap() can return before arti will build circuits (a young network): give it a
    // short grace to report readiness, polled (it changes without an event), as
    // certwatch-probe does.
    let grace = Instant::now() + Duration::from_secs(15);
    while !client.bootstrap_status().ready_for_traffic() && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let bootstrapped = started.elapsed();

    let mut prefs = StreamPrefs::new();
    prefs.connect_to_local_addrs(BoolOrAuto::Explicit(true));
    // Connect by IP address: the exit must not resolve anything.
    let addr = TorAddr::dangerously_from(target).expect("a TorAddr from an IP address");
    let mut stream = timeout(
        Duration::from_secs(60),
        client.connect_with_prefs(addr, &prefs),
    )
    .await
    .unwrap_or_else(|_| panic!("arti stream to {target}: timed out"))
    .unwrap_or_else(|e| panic!("arti stream to {target}: {e}"));
    let reply = timeout(Duration::from_secs(30), xmpp_stream_start(&mut stream))
        .await
        .expect("XMPP reply through arti: timed out");
    eprintln!(
        "arti bootstrapped in {bootstrapped:?}; stream to {target} and XMPP reply after {:?}",
        started.elapsed()
    );
    assert_xmpp_reply(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn consensus_lists_the_described_relays_as_exits_on_distinct_addresses() {
    let env = Interop::require();
    let relays = env
        .get("tor.relays")
        .expect("tor.relays")
        .as_array()
        .expect("tor.relays is an array")
        .len();
    assert_eq!(relays, 3, "three relays described");
    let dir = format!(
        "{}:{}",
        env.str("tor.relays.0.address").unwrap(),
        env.u64("tor.relays.0.dir_port").unwrap()
    );
    // The authority's directory port serves the current microdescriptor consensus.
    let consensus = timeout(Duration::from_secs(20), async {
        let mut s = TcpStream::connect(&dir)
            .await
            .expect("connect to the DirPort");
        s.write_all(b"GET /tor/status-vote/current/consensus-microdesc HTTP/1.0\r\n\r\n")
            .await
            .expect("send the directory request");
        let mut body = String::new();
        s.read_to_string(&mut body)
            .await
            .expect("read the consensus");
        body
    })
    .await
    .expect("consensus from the DirPort: timed out");
    assert!(
        consensus.starts_with("HTTP/1.0 200"),
        "directory answer: {}",
        consensus.lines().next().unwrap_or_default()
    );

    let mut addresses = std::collections::BTreeSet::new();
    for i in 0..relays {
        let key = |k: &str| format!("tor.relays.{i}.{k}");
        let nick = env.str(&key("nickname")).unwrap();
        let addr = env.str(&key("address")).unwrap();
        let or_port = env.u64(&key("or_port")).unwrap();
        let dir_port = env.u64(&key("dir_port")).unwrap();
        let v3ident = env.str(&key("v3ident")).unwrap();
        addresses.insert(addr.to_owned());
        // Each relay is a directory authority with the described v3 identity ...
        let dir_source = format!("dir-source {nick} {v3ident} {addr} {addr} {dir_port} {or_port}");
        assert!(
            consensus.lines().any(|l| l == dir_source),
            "no `{dir_source}` in the consensus"
        );
        // ... and a router entry at its own address, flagged Exit (and not Guard: a client
        // never exits through its own guard, so exits that are guards cut the exit choice).
        let mut lines = consensus.lines();
        let router = lines
            .by_ref()
            .find(|l| l.starts_with(&format!("r {nick} ")))
            .unwrap_or_else(|| panic!("{nick} is not in the consensus"));
        let fields: Vec<&str> = router.split(' ').collect();
        assert_eq!(
            fields.get(5..8),
            Some(
                &[
                    addr,
                    or_port.to_string().as_str(),
                    dir_port.to_string().as_str()
                ][..]
            ),
            "router line {router:?}"
        );
        let flags = lines
            .find(|l| l.starts_with("s "))
            .unwrap_or_else(|| panic!("no flags for {nick}"));
        for flag in ["Exit", "Running", "Valid"] {
            assert!(
                flags.split(' ').any(|f| f == flag),
                "{nick} lacks {flag}: {flags}"
            );
        }
        assert!(
            !flags.split(' ').any(|f| f == "Guard"),
            "{nick} is a guard: {flags}"
        );
    }
    // The guard relay: the only Guard, never an exit.
    let guard = env.str("tor.guard.nickname").unwrap();
    let guard_addr = env.str("tor.guard.address").unwrap();
    let mut lines = consensus.lines();
    let router = lines
        .by_ref()
        .find(|l| l.starts_with(&format!("r {guard} ")))
        .unwrap_or_else(|| panic!("{guard} is not in the consensus"));
    assert_eq!(router.split(' ').nth(5), Some(guard_addr), "{router:?}");
    let flags = lines.find(|l| l.starts_with("s ")).unwrap();
    assert!(flags.split(' ').any(|f| f == "Guard"), "{flags}");
    assert!(!flags.split(' ').any(|f| f == "Exit"), "{flags}");
    assert!(!addresses.contains(guard_addr));
    assert_eq!(
        addresses.len(),
        3,
        "exits on distinct addresses: {addresses:?}"
    );
}
