//! Round trips and time of one service-map discovery against the in-process signed
//! authoritative fixture, with a fixed delay per answer so that round trips dominate.
//!
//! ```text
//! cargo bench -p certwatch-dns --bench dns_roundtrips
//! ```
//! Prints the query count and the sequential round trips before criterion's timing; with
//! 20 ms per answer, a discovery of four services costs about 2 round trips (~45 ms).

#[path = "../crates/certwatch-dns/tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use certwatch_dns::{Resolver, ResolverConfig, TrustAnchor};
use criterion::{Criterion, criterion_group, criterion_main};
use support::*;

fn zones() -> Vec<ZoneSpec> {
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
        srv(
            "_xmpp-server._tcp.bench.test.",
            0,
            0,
            5269,
            "xmpp.bench.test.",
        ),
        srv(
            "_xmpps-server._tcp.bench.test.",
            0,
            0,
            5270,
            "xmpp.bench.test.",
        ),
        srv(
            "_xmpp-client._tcp.bench.test.",
            10,
            0,
            5222,
            "xmpp2.bench.test.",
        ),
        a("xmpp.bench.test.", [127, 0, 0, 1]),
        a("xmpp2.bench.test.", [127, 0, 0, 2]),
    ];
    for p in [5222, 5223, 5269, 5270] {
        records.push(tlsa(&format!("_{p}._tcp.xmpp.bench.test."), [1; 32]));
    }
    records.push(tlsa("_5222._tcp.xmpp2.bench.test.", [2; 32]));
    vec![ZoneSpec {
        origin: name("bench.test."),
        signing: Signing::Nsec,
        records,
        after_signing: Vec::new(),
    }]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let delay = Duration::from_millis(20);
    let fixture = rt.block_on(start(zones(), delay));
    let config = ResolverConfig::new(vec![fixture.addr])
        .with_trust_anchor(TrustAnchor::DnskeyText(fixture.root_dnskey.clone()));
    let resolver = Resolver::new(config).expect("resolver");

    let map = rt
        .block_on(resolver.discover("bench.test"))
        .expect("discover");
    println!(
        "bench.test: {} endpoints, {} queries, {} sequential round trips ({} without the trust chain) at {} ms per answer",
        map.endpoints.len(),
        map.stats.queries,
        map.stats.sequential_round_trips,
        map.stats.lookup_round_trips,
        delay.as_millis()
    );

    let mut g = c.benchmark_group("discover");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("bench.test, 20 ms per answer", |b| {
        b.iter(|| {
            let m = rt.block_on(resolver.discover(black_box("bench.test")));
            black_box(m.map(|m| m.stats.queries))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
