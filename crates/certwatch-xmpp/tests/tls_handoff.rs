//! End to end in memory: the client stops exactly where TLS begins, a real rustls handshake
//! follows on the same stream, and the features after TLS are read (channel binding).

mod common;

use std::sync::Arc;

use certwatch_xmpp::{
    ChannelBinding, Config, DirectTls, ServerConfig, StreamKind, Timeouts, accept, negotiate,
    read_features_after_tls,
};

fn tls_acceptor(domain: &str) -> tokio_rustls::TlsAcceptor {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![domain.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn starttls_then_rustls_then_features_after_tls() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = tls_acceptor("example.org");
    let server = tokio::spawn(async move {
        let timeouts = Timeouts::default();
        let config = ServerConfig::new(StreamKind::Client, "example.org");
        let (io, before) = accept(server_io, &config, &timeouts).await?;
        let tls = acceptor
            .accept(io)
            .await
            .map_err(|source| certwatch_xmpp::Error::Io {
                step: certwatch_xmpp::Step::StartTls,
                source,
            })?;
        let mut after = ServerConfig::new(StreamKind::Client, "example.org");
        after.offer_starttls = false;
        after.sasl_mechanisms = vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()];
        after.channel_binding_types = vec!["tls-exporter".into()];
        let (_tls, after) = accept(tls, &after, &timeouts).await?;
        Ok::<_, certwatch_xmpp::Error>((before, after))
    });

    let config = Config::client("example.org");
    let timeouts = Timeouts::default();
    let (io, before) = negotiate(client_io, &config, &timeouts).await.unwrap();
    assert!(before.proceeded);
    let tls = common::start_tls(io, &DirectTls::for_config(&config))
        .await
        .expect("the TLS handshake starts on the very next byte");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"xmpp-client"[..]));
    let (_tls, after) = read_features_after_tls(tls, &config, &timeouts)
        .await
        .unwrap();
    let features = after.features.unwrap();
    assert!(!features.starttls);
    assert_eq!(
        features.plus_mechanisms().collect::<Vec<_>>(),
        ["SCRAM-SHA-256-PLUS"]
    );
    assert_eq!(features.channel_binding(), ChannelBinding::Advertised);

    let (server_before, server_after) = server.await.unwrap().unwrap();
    assert!(server_before.starttls);
    assert!(!server_after.starttls);
}
