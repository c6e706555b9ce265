//! Deterministic workloads of certwatch's arti-free hot paths, for the instruction-count
//! regression gate (`.ci/perf-gate`), in the manner of rustls' `ci-bench`.
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*gate_measure*' \
//!     cw-gate WORKLOAD
//! cw-gate --list
//! ```
//!
//! Each run sets its fixtures up (servers on their own thread, so their instructions are
//! not counted), runs the workload once to warm lazy initialisation, then runs it
//! [`ITERATIONS`] times inside `gate_measure`, the only function callgrind collects in.
//! The client side runs on a current-thread tokio runtime on the main thread. Inputs are
//! fixed (the key material of `benches/data`, fixed transcripts and zone contents).

#[path = "../../../../crates/certwatch-dns/tests/support/mod.rs"]
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certwatch_bench::{BoxError, EC_CERT_DER, Mode, RSA_CERT_DER, serve, server_config};
use certwatch_core::{
    MatchPolicy, MatchingType, Selector, Tlsa, UnixTime, association_data, certificate_spki,
    match_chain, spki_sha256,
};
use certwatch_dns::{Resolver, ResolverConfig, RrType, TrustAnchor};
use certwatch_probe::{
    CheckIsolation, EndpointId, KeyRequest, ProbeOptions, ProbeTarget, Prober, Service, Transport,
};
use certwatch_xmpp::{Action, ClientNegotiator, Config};

/// Iterations measured per workload.
pub const ITERATIONS: usize = 10;

/// The workloads, in the order the gate runs them.
const WORKLOADS: &[&str] = &[
    "xmpp_negotiation",
    "tlsa_matching",
    "spki_hashing",
    "dnssec_validation",
    "probe_starttls",
    "probe_direct_tls",
];

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' \
    id='b8c1f8a5-2c5f-4d9e-9f3c-1d2e3f4a5b6c' from='example.org' version='1.0'>";
const FEATURES: &[u8] = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls><register xmlns='http://jabber.org/features/iq-register'/>\
    <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' \
    ver='9V2ZSxHNbdyhYUB8l3mQOAaJ1KY='/></stream:features>";
const PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

const DOMAIN: &str = "bench.test";
const HOST: &str = "xmpp.bench.test";

/// One negotiation over a Prosody-like transcript, in 64-byte reads.
fn negotiate() -> bool {
    let mut n = ClientNegotiator::new(Config::client(DOMAIN));
    let mut started = false;
    for part in [HEADER, FEATURES, PROCEED] {
        for piece in part.chunks(64) {
            if n.handle_input(piece).is_err() {
                return false;
            }
        }
        while let Some(a) = n.poll_action() {
            started |= a == Action::StartTls;
            black_box(a);
        }
    }
    started
}

/// The state a workload needs, set up before measuring.
enum Work {
    Negotiation,
    Matching {
        records: Vec<Tlsa>,
        lines: Vec<String>,
        chains: Vec<Vec<Vec<u8>>>,
    },
    Spki,
    Dnssec {
        rt: tokio::runtime::Runtime,
        config: ResolverConfig,
    },
    Probe {
        rt: tokio::runtime::Runtime,
        prober: Prober,
        targets: Vec<ProbeTarget>,
    },
}

fn tlsa_of(cert: &[u8]) -> Result<Tlsa, BoxError> {
    let data = association_data(cert, Selector::Spki, MatchingType::Sha256, "gate")?;
    Ok(Tlsa::new(3, Selector::Spki, MatchingType::Sha256, data))
}

fn current_thread() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `f`'s future on a runtime of its own thread forever; returns what it sends back.
fn fixture_thread<T, F, Fut>(f: F) -> Result<T, BoxError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = current_thread() else { return };
        rt.block_on(async move {
            let value = f().await;
            let _ = tx.send(value);
            std::future::pending::<()>().await
        });
    });
    Ok(rx.recv()?)
}

fn dns_zone() -> Vec<support::ZoneSpec> {
    use support::*;
    let digest = |cert: &[u8]| -> [u8; 32] {
        let spki = certificate_spki(cert).unwrap_or_default();
        spki_sha256(&spki)
    };
    let mut records = vec![
        srv(
            "_xmpp-client._tcp.bench.test.",
            0,
            0,
            5222,
            "xmpp.bench.test.",
        ),
        srv(
            "_xmpps-client._tcp.bench.test.",
            0,
            0,
            5223,
            "xmpp.bench.test.",
        ),
        a("xmpp.bench.test.", [127, 0, 0, 1]),
    ];
    for p in [5222, 5223] {
        records.push(tlsa(
            &format!("_{p}._tcp.xmpp.bench.test."),
            digest(EC_CERT_DER),
        ));
    }
    vec![ZoneSpec {
        origin: name("bench.test."),
        signing: Signing::Nsec,
        records,
        after_signing: Vec::new(),
    }]
}

fn setup(workload: &str) -> Result<Work, BoxError> {
    Ok(match workload {
        "xmpp_negotiation" => Work::Negotiation,
        "spki_hashing" => Work::Spki,
        "tlsa_matching" => {
            let ec = tlsa_of(EC_CERT_DER)?;
            let rsa = tlsa_of(RSA_CERT_DER)?;
            let lines = [&ec, &rsa]
                .iter()
                .map(|t| format!("_5222._tcp.{HOST}. 3600 IN TLSA {t}"))
                .collect();
            Work::Matching {
                records: vec![ec, rsa],
                lines,
                chains: vec![vec![EC_CERT_DER.to_vec()], vec![RSA_CERT_DER.to_vec()]],
            }
        }
        "dnssec_validation" => {
            let (addr, dnskey) = fixture_thread(|| async {
                let f = support::start(dns_zone(), Duration::ZERO).await;
                let out = (f.addr, f.root_dnskey.clone());
                // The server lives as long as the fixture value: keep it on this thread.
                std::mem::forget(f);
                out
            })?;
            Work::Dnssec {
                rt: current_thread()?,
                config: ResolverConfig::new(vec![addr])
                    .with_trust_anchor(TrustAnchor::DnskeyText(dnskey)),
            }
        }
        "probe_starttls" | "probe_direct_tls" => {
            let (mode, service) = if workload == "probe_starttls" {
                (Mode::StarttlsClient, Service::C2sStarttls)
            } else {
                (Mode::Direct, Service::C2sDirect)
            };
            let tls = server_config()?;
            let addr: SocketAddr = fixture_thread(move || async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
                let addr = listener.local_addr().ok()?;
                tokio::spawn(async move {
                    let domains = Arc::new(vec![DOMAIN.to_owned()]);
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (tls, domains) = (tls.clone(), domains.clone());
                        tokio::spawn(async move {
                            let _ = serve(tcp, mode, tls, domains).await;
                        });
                    }
                });
                Some(addr)
            })?
            .ok_or("probe fixture: cannot bind")?;
            let target = ProbeTarget::new(
                DOMAIN,
                EndpointId::new(service, HOST, addr.port()),
                addr.ip(),
            );
            Work::Probe {
                rt: current_thread()?,
                prober: Prober::new(Transport::Direct, ProbeOptions::default()),
                targets: vec![target],
            }
        }
        other => return Err(format!("unknown workload {other}").into()),
    })
}

/// One iteration of the workload; errors mean the workload is broken (the gate fails).
fn once(work: &Work) -> Result<(), BoxError> {
    match work {
        Work::Negotiation => {
            if !negotiate() {
                return Err("negotiation did not reach STARTTLS".into());
            }
        }
        Work::Spki => {
            for cert in [EC_CERT_DER, RSA_CERT_DER] {
                let spki = certificate_spki(black_box(cert)).ok_or("not an X.509 certificate")?;
                black_box(spki_sha256(&spki));
            }
        }
        Work::Matching {
            records,
            lines,
            chains,
        } => {
            let policy = MatchPolicy::new(
                DOMAIN,
                HOST,
                UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
            );
            for line in lines {
                black_box(line.parse::<Tlsa>().map_err(|e| e.to_string())?);
            }
            for chain in chains {
                black_box(match_chain(black_box(records), black_box(chain), &policy));
            }
        }
        Work::Dnssec { rt, config } => {
            // A cold resolver each time: root DNSKEY, DS and DNSKEY of the zone, the TLSA.
            let resolver = Resolver::new(config.clone())?;
            let lookup =
                rt.block_on(resolver.lookup("_5222._tcp.xmpp.bench.test", RrType::Tlsa))?;
            if lookup.dnssec.as_str() != "secure" {
                return Err(format!("TLSA lookup is {}", lookup.dnssec.as_str()).into());
            }
        }
        Work::Probe {
            rt,
            prober,
            targets,
        } => {
            for target in targets {
                for key in [KeyRequest::Ec, KeyRequest::Rsa] {
                    let probe = rt.block_on(prober.probe(target, &CheckIsolation::new(), key))?;
                    black_box(probe);
                }
            }
        }
    }
    Ok(())
}

/// The measured region: callgrind collects only inside this function.
#[inline(never)]
fn gate_measure(work: &Work) -> Result<(), BoxError> {
    for _ in 0..ITERATIONS {
        once(black_box(work))?;
    }
    Ok(())
}

fn main() {
    let Some(workload) = std::env::args().nth(1) else {
        eprintln!("usage: cw-gate WORKLOAD | --list");
        std::process::exit(2);
    };
    if workload == "--list" {
        for w in WORKLOADS {
            println!("{w}");
        }
        return;
    }
    let result = setup(&workload).and_then(|work| {
        once(&work)?; // warm-up, not measured
        gate_measure(&work)
    });
    if let Err(e) = result {
        eprintln!("cw-gate {workload}: {e}");
        std::process::exit(1);
    }
}
