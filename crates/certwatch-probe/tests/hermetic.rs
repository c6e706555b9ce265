//! Hermetic probes against in-process servers with generated certificates.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use certwatch_probe::{
    CheckIsolation, EndpointId, ErrorClass, KeyRequest, Phase, ProbeErrorKind, ProbeOptions,
    ProbeTarget, Prober, Service, TlsVersion, Transport, Vantage, probe_stream,
};
use common::{Alg, DOMAIN, Dual, Fixed, Mode, Pki, server_config, spawn};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn target(service: Service, addr: std::net::SocketAddr) -> ProbeTarget {
    ProbeTarget::new(
        DOMAIN,
        EndpointId::new(service, "xmpp.a.test", addr.port()),
        addr.ip(),
    )
}

fn direct() -> Prober {
    Prober::new(Transport::Direct, ProbeOptions::default())
}

/// Waits (bounded) until the server counted a clean close.
async fn clean_closes(stats: &common::Stats, want: usize) -> usize {
    for _ in 0..1000 {
        let n = stats.clean_closes.load(Ordering::SeqCst);
        if n >= want {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stats.clean_closes.load(Ordering::SeqCst)
}

#[tokio::test]
async fn direct_tls_captures_a_p256_chain_with_alpn_and_sni_and_closes_politely() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::P256);
    let srv = spawn(
        Mode::Direct,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let t = target(Service::C2sDirect, srv.addr);
    let p = direct()
        .probe(&t, &CheckIsolation::new(), KeyRequest::Ec)
        .await
        .unwrap();
    assert_eq!(p.chain.len(), 2);
    assert_eq!(p.chain[0].der(), leaf.chain[0].as_ref());
    assert_eq!(p.leaf_spki_sha256_hex().unwrap(), leaf.spki_sha256);
    assert_eq!(p.tls.version, TlsVersion::Tls13);
    assert_eq!(p.tls.alpn.as_deref(), Some("xmpp-client"));
    assert_eq!(p.tls.signature_scheme, "ECDSA_NISTP256_SHA256");
    assert!(p.tls.key_exchange_group.is_some());
    assert!(p.tls.cipher_suite.starts_with("TLS13_"));
    assert_eq!(p.vantage, Vantage::Direct);
    assert!(p.timings.stream.is_none());
    assert_eq!(
        clean_closes(&srv.stats, 1).await,
        1,
        "close_notify expected"
    );
    assert_eq!(srv.stats.last_sni.lock().unwrap().as_deref(), Some(DOMAIN));
    // The evidence serialises.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["tls"]["version"], "TLSv1.3");
    assert_eq!(json["key_request"], "ec");
    assert_eq!(json["vantage"]["transport"], "direct");
    assert!(json["timings"]["handshake_us"].is_u64());
    // Round trip (timings are kept to the microsecond).
    let back: certwatch_probe::Probe = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), json);
    assert_eq!(
        (&back.chain, &back.tls, &back.target),
        (&p.chain, &p.tls, &p.target)
    );
}

#[tokio::test]
async fn starttls_captures_an_rsa_chain_with_timings() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::Rsa);
    let srv = spawn(
        Mode::Starttls,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let t = target(Service::C2sStarttls, srv.addr);
    let p = direct()
        .probe(&t, &CheckIsolation::new(), KeyRequest::Rsa)
        .await
        .unwrap();
    assert_eq!(p.leaf_spki_sha256_hex().unwrap(), leaf.spki_sha256);
    assert!(p.tls.signature_scheme.starts_with("RSA_PSS"));
    assert!(p.timings.stream.is_some() && p.timings.starttls.is_some());
    // No ALPN on STARTTLS.
    assert_eq!(p.tls.alpn, None);
    assert_eq!(clean_closes(&srv.stats, 1).await, 1);
    assert_eq!(srv.stats.last_sni.lock().unwrap().as_deref(), Some(DOMAIN));
}

#[tokio::test]
async fn ed25519_leaf_is_captured_by_the_ec_probe() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::Ed25519);
    let srv = spawn(
        Mode::StarttlsS2s,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let t = target(Service::S2sStarttls, srv.addr);
    let p = direct()
        .probe(&t, &CheckIsolation::new(), KeyRequest::Ec)
        .await
        .unwrap();
    assert_eq!(p.tls.signature_scheme, "ED25519");
    assert_eq!(p.leaf_spki_sha256_hex().unwrap(), leaf.spki_sha256);
}

async fn dual_server_reveals_both_keys(tls12_only: bool) {
    let pki = Pki::new();
    let (ec, rsa) = (pki.leaf(Alg::P256), pki.leaf(Alg::Rsa));
    let resolver = Dual {
        ec: ec.certified(),
        rsa: rsa.certified(),
    };
    let srv = spawn(Mode::Direct, server_config(Arc::new(resolver), tls12_only)).await;
    let t = target(Service::S2sDirect, srv.addr);
    let results = direct().probe_all_keys(&t, &CheckIsolation::new()).await;
    assert_eq!(results.len(), 2);
    let ec_probe = results[0].as_ref().unwrap();
    let rsa_probe = results[1].as_ref().unwrap();
    assert_eq!(ec_probe.key_request, KeyRequest::Ec);
    assert_eq!(ec_probe.leaf_spki_sha256_hex().unwrap(), ec.spki_sha256);
    assert_eq!(rsa_probe.leaf_spki_sha256_hex().unwrap(), rsa.spki_sha256);
    assert_eq!(ec_probe.tls.alpn.as_deref(), Some("xmpp-server"));
    let version = if tls12_only {
        TlsVersion::Tls12
    } else {
        TlsVersion::Tls13
    };
    assert_eq!(ec_probe.tls.version, version);
    assert_eq!(rsa_probe.tls.version, version);
    assert_eq!(clean_closes(&srv.stats, 2).await, 2);
}

#[tokio::test]
async fn dual_key_server_reveals_each_key_tls13() {
    dual_server_reveals_both_keys(false).await;
}

#[tokio::test]
async fn dual_key_server_reveals_each_key_tls12() {
    dual_server_reveals_both_keys(true).await;
}

#[tokio::test]
async fn a_missing_key_type_is_not_offered_not_a_protocol_error() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::Rsa);
    let srv = spawn(
        Mode::Direct,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let t = target(Service::C2sDirect, srv.addr);
    let e = direct()
        .probe(&t, &CheckIsolation::new(), KeyRequest::Ec)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::KeyTypeNotOffered, "{e}");
}

async fn replay_fails_closed(tls12_only: bool, service: Service) {
    let pki = Pki::new();
    let genuine = pki.leaf(Alg::P256);
    let attacker = pki.leaf(Alg::P256);
    // The genuine chain, but the handshake is signed with the attacker's key.
    let replay = Arc::new(CertifiedKey::new(
        genuine.chain.clone(),
        attacker.signing_key(),
    ));
    let mode = if service.is_direct_tls() {
        Mode::Direct
    } else {
        Mode::Starttls
    };
    let srv = spawn(mode, server_config(Arc::new(Fixed(replay)), tls12_only)).await;
    let t = target(service, srv.addr);
    for kr in [KeyRequest::Ec, KeyRequest::Any] {
        let e = direct()
            .probe(&t, &CheckIsolation::new(), kr)
            .await
            .unwrap_err();
        assert_eq!(e.class(), ErrorClass::UnprovenKey, "{e}");
        let chain = e.unproven_chain().unwrap();
        assert_eq!(chain[0].der(), genuine.chain[0].as_ref());
        assert!(e.to_string().contains("a.test"), "{e}");
    }
    assert_eq!(srv.stats.handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn replayed_chain_fails_closed_tls13() {
    replay_fails_closed(false, Service::C2sDirect).await;
}

#[tokio::test]
async fn replayed_chain_fails_closed_tls12_starttls() {
    replay_fails_closed(true, Service::C2sStarttls).await;
}

#[tokio::test]
async fn refused_is_indeterminate_and_names_the_target() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let t = target(Service::C2sStarttls, addr);
    let e = direct()
        .probe(&t, &CheckIsolation::new(), KeyRequest::Any)
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ProbeErrorKind::Refused), "{e}");
    assert_eq!(e.class(), ErrorClass::Indeterminate);
    let msg = e.to_string();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("xmpp.a.test"),
        "{msg}"
    );
}

#[tokio::test(start_paused = true)]
async fn silent_server_times_out_in_the_handshake_on_the_paused_clock() {
    let (client, _server) = tokio::io::duplex(4096);
    let t = target(Service::C2sDirect, "127.0.0.1:5223".parse().unwrap());
    let opts = ProbeOptions::default();
    let started = tokio::time::Instant::now();
    let e = probe_stream(client, &t, KeyRequest::Any, Vantage::Direct, &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ProbeErrorKind::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(started.elapsed(), opts.handshake_timeout);
    assert_eq!(e.class(), ErrorClass::Indeterminate);
}

#[tokio::test(start_paused = true)]
async fn silent_xmpp_server_times_out_in_the_stream_on_the_paused_clock() {
    let (client, _server) = tokio::io::duplex(4096);
    let t = target(Service::C2sStarttls, "127.0.0.1:5222".parse().unwrap());
    let opts = ProbeOptions::default();
    let e = probe_stream(client, &t, KeyRequest::Any, Vantage::Direct, &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ProbeErrorKind::Timeout {
                phase: Phase::Stream,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn endless_stream_is_cut_at_the_byte_bound() {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut b = [0u8; 1024];
        let _ = server.read(&mut b).await;
        let junk = vec![b' '; 16 * 1024];
        while server.write_all(&junk).await.is_ok() {}
    });
    let t = target(Service::C2sStarttls, "127.0.0.1:5222".parse().unwrap());
    let e = probe_stream(
        client,
        &t,
        KeyRequest::Any,
        Vantage::Direct,
        &ProbeOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e.kind(), ProbeErrorKind::TooLarge { phase: Phase::Stream, limit } if *limit == 64 * 1024),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::ProtocolError);
}

#[tokio::test]
async fn tls_alerts_and_non_tls_answers_are_protocol_errors() {
    // A protocol_version alert, as an old server sends to a TLS 1.2+ client.
    let alert: &[u8] = &[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];
    // A server that answers with plain text.
    let text: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";
    for (reply, want_version) in [(alert, true), (text, false)] {
        let (client, mut server) = tokio::io::duplex(4096);
        let reply = reply.to_vec();
        tokio::spawn(async move {
            let mut b = [0u8; 4096];
            let _ = server.read(&mut b).await;
            let _ = server.write_all(&reply).await;
            let _ = server.read(&mut b).await;
        });
        let t = target(Service::C2sDirect, "127.0.0.1:5223".parse().unwrap());
        let e = probe_stream(
            client,
            &t,
            KeyRequest::Any,
            Vantage::Direct,
            &ProbeOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.class(), ErrorClass::ProtocolError, "{e}");
        assert_eq!(
            matches!(e.kind(), ProbeErrorKind::TlsVersion { .. }),
            want_version,
            "{e}"
        );
    }
}

#[tokio::test]
async fn probe_diverse_over_direct_has_one_unverified_vantage() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::P256);
    let srv = spawn(
        Mode::Direct,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let t = target(Service::C2sDirect, srv.addr);
    let d = direct().probe_diverse(&t, KeyRequest::Ec, 3).await;
    assert_eq!(d.conclusive.len(), 1);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.distinct_exits, 0);
    assert!(!d.exits_verified);
}

#[tokio::test]
async fn starttls_injection_and_missing_starttls_are_xmpp_protocol_errors() {
    // Bytes after <proceed/> (CVE-2011-0411 class) are refused by certwatch-xmpp.
    let (client, mut server) = tokio::io::duplex(8192);
    tokio::spawn(async move {
        let mut b = [0u8; 2048];
        let _ = server.read(&mut b).await;
        let _ = server
            .write_all(
                b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
                  id='x' from='a.test' version='1.0'><stream:features><starttls \
                  xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
            )
            .await;
        let _ = server.read(&mut b).await;
        let _ = server
            .write_all(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x03")
            .await;
        let _ = server.read(&mut b).await;
    });
    let t = target(Service::C2sStarttls, "127.0.0.1:5222".parse().unwrap());
    let e = probe_stream(
        client,
        &t,
        KeyRequest::Any,
        Vantage::Direct,
        &ProbeOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ProbeErrorKind::Xmpp {
                error: certwatch_xmpp::Error::StartTlsInjection { .. }
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::ProtocolError);

    // A server that does not offer STARTTLS.
    let (client, server) = tokio::io::duplex(8192);
    tokio::spawn(async move {
        let mut config =
            certwatch_xmpp::ServerConfig::new(certwatch_xmpp::StreamKind::Client, DOMAIN);
        config.offer_starttls = false;
        config.require_tls = false;
        let _ = certwatch_xmpp::accept(server, &config, &certwatch_xmpp::Timeouts::default()).await;
    });
    let e = probe_stream(
        client,
        &t,
        KeyRequest::Any,
        Vantage::Direct,
        &ProbeOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ProbeErrorKind::Xmpp {
                error: certwatch_xmpp::Error::StartTlsNotOffered
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_server_that_closes_on_a_missing_key_type_is_not_offered() {
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::P256);
    let srv = spawn(
        Mode::DirectEcOrClose,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    )
    .await;
    let t = target(Service::C2sDirect, srv.addr);
    let results = direct().probe_all_keys(&t, &CheckIsolation::new()).await;
    assert_eq!(
        results[0].as_ref().unwrap().leaf_spki_sha256_hex().unwrap(),
        leaf.spki_sha256
    );
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.class(), ErrorClass::KeyTypeNotOffered, "{e}");
    // With every scheme offered, the server answers with its EC key.
    let scheme = direct()
        .probe(&t, &CheckIsolation::new(), KeyRequest::Any)
        .await
        .map(|p| p.tls.signature_scheme)
        .unwrap();
    assert_eq!(scheme, "ECDSA_NISTP256_SHA256");
}
