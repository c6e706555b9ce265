//! CPU cost of one client negotiation over an in-memory transcript (sans-I/O core only).

use std::hint::black_box;

use certwatch_xmpp::{Action, ClientNegotiator, Config};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A Prosody-like transcript: header, features with STARTTLS required, SASL and others.
const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' \
    id='b8c1f8a5-2c5f-4d9e-9f3c-1d2e3f4a5b6c' from='example.org' version='1.0'>";
const FEATURES: &[u8] = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls><register xmlns='http://jabber.org/features/iq-register'/>\
    <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' \
    ver='9V2ZSxHNbdyhYUB8l3mQOAaJ1KY='/></stream:features>";
const PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

fn run(chunk: usize) -> bool {
    let mut n = ClientNegotiator::new(Config::client("example.org"));
    let mut started = false;
    for part in [HEADER, FEATURES, PROCEED] {
        for piece in part.chunks(chunk) {
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

fn bench(c: &mut Criterion) {
    assert!(run(usize::MAX), "the transcript must negotiate");
    let bytes = (HEADER.len() + FEATURES.len() + PROCEED.len()) as u64;
    let mut g = c.benchmark_group("negotiation");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("one_read_per_message", |b| {
        b.iter(|| run(black_box(usize::MAX)))
    });
    g.bench_function("16_byte_reads", |b| b.iter(|| run(black_box(16))));
    g.bench_function("1_byte_reads", |b| b.iter(|| run(black_box(1))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
