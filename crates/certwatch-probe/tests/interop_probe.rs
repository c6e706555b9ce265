//! Probes against the loopback interop environment (`scripts/interop-env up`): Prosody and
//! ejabberd directly, through the C-tor SOCKS port, and through arti on the private Tor
//! network of three exits.
#![cfg(feature = "interop")]

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use certwatch_probe::{
    CheckIsolation, EndpointId, ErrorClass, KeyRequest, ProbeErrorKind, ProbeOptions, ProbeTarget,
    Prober, Service, Transport, Vantage,
};
use certwatch_testkit::Interop;

const DOMAIN: &str = "match.test";

fn prosody(env: &Interop, service: Service) -> ProbeTarget {
    let key = match service {
        Service::C2sStarttls => "c2s",
        Service::C2sDirect => "c2s_direct",
        Service::S2sStarttls => "s2s",
        Service::S2sDirect => "s2s_direct",
    };
    let port = env.u64(&format!("xmpp.prosody.{key}")).unwrap() as u16;
    let host = env.str("xmpp.prosody.host").unwrap();
    let addr: IpAddr = env.str("xmpp.prosody.address").unwrap().parse().unwrap();
    ProbeTarget::new(DOMAIN, EndpointId::new(service, host, port), addr)
}

fn spki(env: &Interop, key: &str) -> String {
    env.str(&format!("pki.keys.{key}.spki_sha256"))
        .unwrap()
        .to_owned()
}

/// Probes each key type and checks the two Prosody keys.
async fn assert_prosody_keys(env: &Interop, prober: &Prober, target: &ProbeTarget) -> Vec<Vantage> {
    let check = CheckIsolation::new();
    let results = prober.probe_all_keys(target, &check).await;
    let mut vantages = Vec::new();
    for (result, key) in results.into_iter().zip(["host-ec", "host-rsa"]) {
        let p = result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.leaf_spki_sha256_hex().unwrap(),
            spki(env, key),
            "{target}"
        );
        vantages.push(p.vantage);
    }
    vantages
}

#[tokio::test]
async fn prosody_direct_every_service_and_key() {
    let env = Interop::require();
    let prober = Prober::new(Transport::Direct, ProbeOptions::default());
    for service in [
        Service::C2sStarttls,
        Service::C2sDirect,
        Service::S2sStarttls,
        Service::S2sDirect,
    ] {
        let t = prosody(&env, service);
        let v = assert_prosody_keys(&env, &prober, &t).await;
        assert_eq!(v, [Vantage::Direct, Vantage::Direct]);
    }
}

#[tokio::test]
async fn ejabberd_direct_ec_key_and_no_starttls_server() {
    let env = Interop::require();
    let prober = Prober::new(Transport::Direct, ProbeOptions::default());
    let addr: IpAddr = env.str("xmpp.ejabberd.address").unwrap().parse().unwrap();
    let port = env.u64("xmpp.ejabberd.c2s").unwrap() as u16;
    let t = ProbeTarget::new(
        DOMAIN,
        EndpointId::new(Service::C2sStarttls, "ejabberd.hosts.test", port),
        addr,
    );
    let p = prober
        .probe(&t, &CheckIsolation::new(), KeyRequest::Ec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.leaf_spki_sha256_hex().unwrap(), spki(&env, "ejabberd-ec"));
    // ejabberd (OpenSSL) closes without an alert when asked for a key it does not have.
    let e = prober
        .probe(&t, &CheckIsolation::new(), KeyRequest::Rsa)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::KeyTypeNotOffered, "{e}");

    let addr: IpAddr = env.str("xmpp.notls.address").unwrap().parse().unwrap();
    let port = env.u64("xmpp.notls.c2s").unwrap() as u16;
    let t = ProbeTarget::new(
        "notls.test",
        EndpointId::new(Service::C2sStarttls, "notls.test", port),
        addr,
    );
    let e = prober
        .probe(&t, &CheckIsolation::new(), KeyRequest::Any)
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ProbeErrorKind::Xmpp { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::ProtocolError);
}

#[tokio::test]
async fn prosody_through_c_tor_socks() {
    let env = Interop::require();
    let proxy = env.socket_addr("tor.socks").unwrap();
    let prober = Prober::new(Transport::Socks { proxy }, ProbeOptions::default());
    for service in [Service::C2sStarttls, Service::C2sDirect] {
        let t = prosody(&env, service);
        let v = assert_prosody_keys(&env, &prober, &t).await;
        for vantage in v {
            assert_eq!(
                vantage,
                Vantage::Socks {
                    proxy,
                    exit_known: false
                }
            );
        }
    }
}

#[cfg(feature = "tor")]
mod arti {
    use super::*;
    use certwatch_probe::TorTransport;

    /// The environment's arti configuration, with private storage directories (the shared
    /// ones may be in use by another client).
    fn arti_config(env: &Interop, dir: &std::path::Path) -> arti_client::TorClientConfig {
        let path = env.path("tor.arti_config").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut value: toml::Table = toml::from_str(&text).unwrap();
        let storage = value
            .entry("storage")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let storage = storage.as_table_mut().unwrap();
        storage.insert(
            "cache_dir".into(),
            dir.join("cache").display().to_string().into(),
        );
        storage.insert(
            "state_dir".into(),
            dir.join("state").display().to_string().into(),
        );
        TorTransport::config_from_toml(
            &toml::to_string(&value).unwrap(),
            &path.display().to_string(),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prosody_through_arti_and_distinct_exits() {
        let env = Interop::require();
        let dir = tempfile::tempdir().unwrap();
        let config = arti_config(&env, dir.path());
        let (tx, rx) = std::sync::mpsc::channel();
        let tor = TorTransport::bootstrap(config, Duration::from_secs(120), move |p| {
            let _ = tx.send(p);
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .allow_local_addrs(true);
        let progress: Vec<_> = rx.try_iter().collect();
        assert!(!progress.is_empty(), "no bootstrap progress was reported");

        let relays: HashSet<IpAddr> = (0..3)
            .map(|i| {
                env.str(&format!("tor.relays.{i}.address"))
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        let mut options = ProbeOptions::default();
        // Each fresh circuit picks an exit at random: allow enough attempts that missing one
        // of three exits is vanishingly unlikely (3 * (2/3)^30 < 2e-5).
        options.diverse_max_attempts = Some(30);
        let prober = Prober::new(Transport::Tor(tor), options);

        // Both keys, on one circuit (one isolation for the check): same exit.
        let t = prosody(&env, Service::C2sStarttls);
        let v = assert_prosody_keys(&env, &prober, &t).await;
        let exits: Vec<IpAddr> = v.iter().map(|v| v.exit_ip().expect("exit known")).collect();
        // One isolation token for the check: arti never shares its circuits with another
        // check, but may use either of the circuits it built for this one, so the two
        // probes' exits need not be equal; each is recorded.
        assert!(exits.iter().all(|e| relays.contains(e)), "{v:?}");
        let t = prosody(&env, Service::C2sDirect);
        assert_prosody_keys(&env, &prober, &t).await;

        // Vantage diversity. arti never uses a circuit's guard as its exit; the environment
        // has a guard-only relay, so all three exits are reachable, each at its own address.
        let d = prober.probe_diverse(&t, KeyRequest::Ec, 3).await;
        assert!(d.exits_verified);
        assert_eq!(d.distinct_exits, 3, "{d:?}");
        assert_eq!(d.conclusive.len(), 3, "{d:?}");
        let ips: HashSet<IpAddr> = d
            .conclusive
            .iter()
            .map(|r| r.as_ref().unwrap().vantage.exit_ip().unwrap())
            .collect();
        assert_eq!(ips.len(), d.distinct_exits);
        assert_eq!(ips, relays, "one probe through each exit");
        for r in &d.conclusive {
            let p = r.as_ref().unwrap();
            assert_eq!(p.leaf_spki_sha256_hex().unwrap(), spki(&env, "host-ec"));
        }
        println!(
            "probe_diverse: {} attempts, {} repeated exits, {} inconclusive",
            d.attempts,
            d.repeated_exits,
            d.inconclusive.len()
        );
    }
}
