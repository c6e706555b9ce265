//! Interop with the XMPP servers of the loopback environment (`scripts/interop-env`): c2s
//! STARTTLS, c2s direct TLS (XEP-0368) and s2s STARTTLS against Prosody and ejabberd, with the
//! facts each reports; plus Prosody-only cases (unknown host, a server without TLS).
#![cfg(feature = "interop")]

mod common;

use certwatch_testkit::Interop;
use certwatch_xmpp::{
    Config, DirectTls, Negotiation, Timeouts, negotiate, read_features_after_tls,
};
use tokio::net::TcpStream;

struct Peer {
    server: &'static str,
    address: String,
    domain: String,
    env: Interop,
}

/// The server described under `xmpp.<server>` in the environment.
fn peer(server: &'static str) -> Peer {
    let env = Interop::require();
    let address = env
        .str(&format!("xmpp.{server}.address"))
        .unwrap()
        .to_owned();
    let domain = env
        .get(&format!("xmpp.{server}.domains"))
        .unwrap()
        .as_array()
        .and_then(|d| {
            d.iter()
                .filter_map(|v| v.as_str())
                .find(|d| *d == "match.test")
        })
        .unwrap_or_else(|| panic!("xmpp.{server}.domains lists match.test"))
        .to_owned();
    Peer {
        server,
        address,
        domain,
        env,
    }
}

impl Peer {
    /// Connects to the listener described as `xmpp.<server>.<port>`.
    async fn connect(&self, port: &str) -> TcpStream {
        let port_key = format!("xmpp.{}.{port}", self.server);
        let port = self.env.u64(&port_key).unwrap();
        TcpStream::connect(format!("{}:{port}", self.address))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {port_key}: {e}"))
    }
}

/// What both servers report before TLS.
fn assert_facts(n: &Negotiation, p: &Peer) {
    let domain = p.domain.as_str();
    let header = n.header.as_ref().unwrap();
    assert!(!header.id.as_deref().unwrap_or_default().is_empty());
    assert_eq!(header.version.as_deref(), Some("1.0"));
    assert_eq!(header.from.as_deref(), Some(domain));
    let features = n.features.as_ref().unwrap();
    assert!(features.starttls, "{features:?}");
    assert!(features.starttls_required, "{features:?}");
    assert!(
        features.sasl_mechanisms.is_empty(),
        "{} offers no SASL before TLS: {features:?}",
        p.server
    );
    assert!(n.proceeded);
    assert!(n.timings.proceed.is_some());
}

async fn c2s_starttls_then_tls_then_features(server: &'static str) {
    let p = peer(server);
    let config = Config::client(&p.domain);
    let timeouts = Timeouts::default();
    let (io, n) = negotiate(p.connect("c2s").await, &config, &timeouts)
        .await
        .unwrap();
    assert_facts(&n, &p);
    let tls = common::start_tls(io, &DirectTls::for_config(&config))
        .await
        .expect("TLS handshake right after <proceed/>");
    let (_tls, after) = read_features_after_tls(tls, &config, &timeouts)
        .await
        .unwrap();
    let features = after.features.unwrap();
    assert!(!features.starttls);
    assert!(
        !features.sasl_mechanisms.is_empty(),
        "SASL after TLS: {features:?}"
    );
    eprintln!(
        "{server} c2s after TLS: mechanisms {:?}, channel binding {:?} {:?}",
        features.sasl_mechanisms,
        features.channel_binding(),
        features.channel_binding_types
    );
}

async fn c2s_direct_tls_with_alpn_and_sni(server: &'static str) {
    let p = peer(server);
    let config = Config::client(&p.domain);
    let params = DirectTls::for_config(&config);
    assert_eq!(params.alpn, b"xmpp-client");
    let tls = common::start_tls(p.connect("c2s_direct").await, &params)
        .await
        .expect("direct TLS handshake");
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    assert!(
        alpn.is_none() || alpn.as_deref() == Some(&b"xmpp-client"[..]),
        "{alpn:?}"
    );
    let (_tls, n) = read_features_after_tls(tls, &config, &Timeouts::default())
        .await
        .unwrap();
    let header = n.header.unwrap();
    assert_eq!(header.from.as_deref(), Some(p.domain.as_str()));
    assert_eq!(header.version.as_deref(), Some("1.0"));
    let features = n.features.unwrap();
    assert!(!features.starttls);
    assert!(!features.sasl_mechanisms.is_empty(), "{features:?}");
}

async fn s2s_starttls(server: &'static str) {
    let p = peer(server);
    let config = Config::server(&p.domain, Some("certwatch.example".into()));
    let (_io, n) = negotiate(p.connect("s2s").await, &config, &Timeouts::default())
        .await
        .unwrap();
    assert_facts(&n, &p);
    assert_eq!(n.header.unwrap().namespace, "jabber:server");
}

/// The shared cases, once per server.
macro_rules! per_server {
    ($($server:ident),*) => {$(
        mod $server {
            #[tokio::test]
            async fn c2s_starttls_then_tls_then_features() {
                super::c2s_starttls_then_tls_then_features(stringify!($server)).await
            }

            #[tokio::test]
            async fn c2s_direct_tls_with_alpn_and_sni() {
                super::c2s_direct_tls_with_alpn_and_sni(stringify!($server)).await
            }

            #[tokio::test]
            async fn s2s_starttls() {
                super::s2s_starttls(stringify!($server)).await
            }
        }
    )*};
}

per_server!(prosody, ejabberd);

#[tokio::test]
async fn unknown_host_is_a_stream_error() {
    let p = peer("prosody");
    let err = negotiate(
        p.connect("c2s").await,
        &Config::client("unknown.example"),
        &Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err.error, certwatch_xmpp::Error::StreamError(ref e) if e.condition == "host-unknown"),
        "{err:?}"
    );
    assert!(err.partial.header.is_some());
}

#[tokio::test]
async fn a_prosody_without_tls_offers_sasl_in_the_clear() {
    let env = Interop::require();
    let address = env.str("xmpp.notls.address").unwrap();
    let port = env.u64("xmpp.notls.c2s").unwrap();
    let domain = env.str("xmpp.notls.domains.0").unwrap();
    let tcp = TcpStream::connect(format!("{address}:{port}"))
        .await
        .unwrap();
    let err = negotiate(tcp, &Config::client(domain), &Timeouts::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err.error, certwatch_xmpp::Error::StartTlsNotOffered),
        "{err:?}"
    );
    let features = err.partial.features.unwrap();
    assert!(!features.starttls);
    assert!(!features.sasl_mechanisms.is_empty(), "{features:?}");
}
