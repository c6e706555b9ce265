//! CPU per probe over the direct transport against the in-process TLS server, at 1 and at
//! 256 concurrent probes.
//!
//! Everything (client probes and the in-process server) runs on one current-thread tokio
//! runtime, and each measurement is that thread's CPU time from `/proc/thread-self/schedstat`
//! (Linux; falls back to wall time elsewhere). The figure is therefore client **plus**
//! server CPU for a full probe: TCP connect, TLS 1.3 handshake with the signature check,
//! close_notify. Run with `cargo bench -p certwatch-probe --bench probe_direct`.

#[path = "../crates/certwatch-probe/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certwatch_probe::{
    CheckIsolation, EndpointId, KeyRequest, ProbeOptions, ProbeTarget, Prober, Service, Transport,
};
use common::{Alg, DOMAIN, Fixed, Mode, Pki, server_config, spawn};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// CPU time of the current thread, when the kernel tells.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pki = Pki::new();
    let leaf = pki.leaf(Alg::P256);
    let srv = rt.block_on(spawn(
        Mode::Direct,
        server_config(Arc::new(Fixed(leaf.certified())), false),
    ));
    let target = ProbeTarget::new(
        DOMAIN,
        EndpointId::new(Service::C2sDirect, "xmpp.a.test", srv.addr.port()),
        srv.addr.ip(),
    );
    let prober = Arc::new(Prober::new(Transport::Direct, ProbeOptions::default()));

    let mut group = c.benchmark_group("probe_direct_cpu");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for concurrent in [1usize, 256] {
        group.throughput(Throughput::Elements(concurrent as u64));
        group.bench_function(format!("{concurrent}_concurrent"), |b| {
            b.iter_custom(|iters| {
                let (cpu0, wall0) = (thread_cpu(), Instant::now());
                for _ in 0..iters {
                    rt.block_on(async {
                        let mut set = tokio::task::JoinSet::new();
                        for _ in 0..concurrent {
                            let (prober, target) = (prober.clone(), target.clone());
                            set.spawn(async move {
                                prober
                                    .probe(&target, &CheckIsolation::new(), KeyRequest::Ec)
                                    .await
                                    .map(|_| ())
                            });
                        }
                        while let Some(r) = set.join_next().await {
                            if let Ok(Err(e)) = r {
                                panic!("probe failed: {e}");
                            }
                        }
                    });
                }
                match (cpu0, thread_cpu()) {
                    (Some(a), Some(b)) => b.saturating_sub(a),
                    _ => wall0.elapsed(),
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
