//! Hostile DNS servers, in-process: every answer is classified (never "no records" for a
//! failure), within bounded time, without a panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use certwatch_core::DnssecState;
use certwatch_dns::{AnswerKind, Resolver, ResolverConfig, RrType, ServiceOutcome};
use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// A 60 kB answer over TCP after a truncated UDP answer.
    Oversized,
    /// The answer's owner name is a compression pointer to itself.
    CompressionLoop,
    /// Right answer, wrong message ID.
    WrongId,
    /// An A record for another name than the one asked.
    WrongName,
    /// SERVFAIL for everything.
    ServFail,
    /// REFUSED for everything.
    Refused,
    /// Random bytes.
    Garbage,
    /// NXDOMAIN for everything, without EDNS: a resolver that knows nothing of DNSSEC.
    NxNoDnssec,
    /// SERVFAIL with an RFC 8914 extended error (22, No Reachable Authority).
    ServFailEde,
}

fn answer(mode: Mode, query: &[u8]) -> Vec<u8> {
    let Ok(q) = Message::from_vec(query) else {
        return Vec::new();
    };
    let Some(question) = q.queries.first().cloned() else {
        return Vec::new();
    };
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(question.clone());
    match mode {
        Mode::ServFail => m.metadata.response_code = ResponseCode::ServFail,
        Mode::NxNoDnssec => m.metadata.response_code = ResponseCode::NXDomain,
        Mode::ServFailEde => {
            m.metadata.response_code = ResponseCode::ServFail;
            let mut edns = Edns::new();
            let mut data = 22u16.to_be_bytes().to_vec();
            data.extend_from_slice(b"at 192.0.2.53");
            edns.options_mut().insert(EdnsOption::Unknown(15, data));
            m.edns = Some(edns);
        }
        Mode::Refused => m.metadata.response_code = ResponseCode::Refused,
        Mode::WrongId => {
            m.metadata.id = q.metadata.id.wrapping_add(1);
            m.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        Mode::WrongName => {
            m.add_answer(Record::from_rdata(
                Name::from_ascii("attacker.example.").unwrap(),
                60,
                RData::A(A::new(192, 0, 2, 66)),
            ));
        }
        Mode::Oversized => {
            for i in 0..4000u32 {
                let [a, b, c, d] = i.to_be_bytes();
                m.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    RData::A(A::new(a.wrapping_add(10), b, c, d)),
                ));
            }
        }
        Mode::CompressionLoop => {
            let mut bytes = m.to_vec().unwrap_or_default();
            // ANCOUNT = 1, then an answer whose owner is a pointer to itself.
            if bytes.len() >= 12 {
                bytes[7] = 1;
                let here = bytes.len();
                let ptr = 0xC000u16 | u16::try_from(here).unwrap_or(0);
                bytes.extend_from_slice(&ptr.to_be_bytes());
                bytes.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            }
            return bytes;
        }
        Mode::Garbage => {
            let mut bytes = vec![0u8; 300];
            bytes[..2].copy_from_slice(&q.metadata.id.to_be_bytes());
            for (i, b) in bytes.iter_mut().enumerate().skip(2) {
                *b = u8::try_from((i * 7919) % 251).unwrap_or(0);
            }
            return bytes;
        }
    }
    m.to_vec().unwrap_or_default()
}

/// A UDP socket and a TCP listener on the same free loopback port.
async fn bind_pair() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}

/// A UDP and TCP server on one loopback port answering every query in `mode`.
async fn hostile(mode: Mode) -> SocketAddr {
    let (udp, tcp, addr) = bind_pair().await;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let mut out = answer(mode, &buf[..n]);
            if out.len() > 1232 {
                // Too large for UDP: send the header with TC=1, as a server would.
                out.truncate(12);
                out[2] |= 0x02;
                out[6..12].fill(0);
            }
            let _ = udp.send_to(&out, peer).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let mut out = answer(mode, &q);
                    out.truncate(65535);
                    let l = u16::try_from(out.len()).unwrap_or(0).to_be_bytes();
                    if s.write_all(&l).await.is_err() || s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn resolver(addr: SocketAddr) -> Resolver {
    let mut c = ResolverConfig::new(vec![addr]).with_timeout(Duration::from_millis(300), 1);
    c.lookup_deadline = Duration::from_secs(3);
    Resolver::new(c).unwrap()
}

async fn lookup_bounded(mode: Mode) -> certwatch_dns::RrsetLookup {
    let addr = hostile(mode).await;
    let started = Instant::now();
    let l = resolver(addr)
        .lookup("xmpp.example.org", RrType::A)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{mode:?} took {:?}",
        started.elapsed()
    );
    eprintln!(
        "{mode:?}: {:?} {:?} in {:?}",
        l.answer,
        l.dnssec,
        started.elapsed()
    );
    l
}

fn never_secure_records(mode: Mode, l: &certwatch_dns::RrsetLookup) {
    // Whatever the server does, nothing it says is secure, and a failure is never absence.
    assert!(!l.dnssec.is_secure(), "{mode:?}: {l:?}");
    if l.answer == AnswerKind::Failed {
        assert!(
            matches!(
                l.dnssec.state(),
                DnssecState::Indeterminate | DnssecState::Bogus
            ),
            "{mode:?}: {l:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_and_refused_are_indeterminate_not_absent() {
    for mode in [Mode::ServFail, Mode::Refused] {
        let l = lookup_bounded(mode).await;
        assert_eq!(l.answer, AnswerKind::Failed, "{mode:?}");
        assert_eq!(
            l.dnssec.state(),
            DnssecState::Indeterminate,
            "{mode:?}: {l:?}"
        );
        assert!(!l.is_proven_absent());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_ids_time_out_into_indeterminate() {
    let l = lookup_bounded(Mode::WrongId).await;
    assert_eq!(l.answer, AnswerKind::Failed);
    assert_eq!(l.dnssec.state(), DnssecState::Indeterminate, "{l:?}");
    assert!(l.records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_loops_and_garbage_are_classified() {
    for mode in [Mode::CompressionLoop, Mode::Garbage] {
        let l = lookup_bounded(mode).await;
        assert_eq!(l.answer, AnswerKind::Failed, "{mode:?}: {l:?}");
        never_secure_records(mode, &l);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_the_wrong_name_are_not_taken() {
    let l = lookup_bounded(Mode::WrongName).await;
    assert!(
        l.records.iter().all(|r| r.owner == "xmpp.example.org."),
        "{l:?}"
    );
    assert!(l.records.is_empty(), "{l:?}");
    never_secure_records(Mode::WrongName, &l);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_are_bounded() {
    let l = lookup_bounded(Mode::Oversized).await;
    never_secure_records(Mode::Oversized, &l);
    assert!(l.records.len() <= 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_yields_a_classified_service_map() {
    for mode in [Mode::ServFail, Mode::WrongName, Mode::CompressionLoop] {
        let addr = hostile(mode).await;
        let started = Instant::now();
        let map = resolver(addr).discover("example.org").await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(8), "{mode:?}");
        for s in &map.services {
            assert_eq!(
                s.outcome,
                ServiceOutcome::Unavailable,
                "{mode:?}: {:?}",
                s.srv
            );
        }
        assert!(map.endpoints.iter().all(|e| !e.srv_dnssec.is_secure()));
    }
}

#[tokio::test]
async fn a_rejected_name_sends_no_packet() {
    // A server that counts every datagram.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let r = resolver(addr);
    for bad in ["", "192.0.2.1", "a..b", "exa mple.org", &"a".repeat(64)] {
        assert!(r.discover(bad).await.is_err(), "{bad:?}");
    }
    let mut buf = [0u8; 512];
    let got = tokio::time::timeout(Duration::from_millis(200), udp.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a packet was sent for a rejected name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_without_dnssec_is_indeterminate_not_bogus() {
    // Blaming the domain (bogus) for the checker's own resolver would be a false alarm.
    let l = lookup_bounded(Mode::NxNoDnssec).await;
    assert_eq!(l.answer, AnswerKind::Failed, "{l:?}");
    assert_eq!(l.dnssec.state(), DnssecState::Indeterminate, "{l:?}");
    assert!(
        l.dnssec
            .reason()
            .unwrap_or_default()
            .contains("DNSSEC-aware"),
        "{l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_indeterminate_within_the_deadline() {
    // Bound, never read: every query times out (TCP connects are refused).
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let started = Instant::now();
    let map = resolver(addr).discover("example.org").await.unwrap();
    let elapsed = started.elapsed();
    // Per-RRset deadline 3 s; SRV and CAA run side by side, nothing after a failed SRV.
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    for s in &map.services {
        assert_eq!(s.srv.answer, AnswerKind::Failed);
        assert_eq!(
            s.srv.dnssec.state(),
            DnssecState::Indeterminate,
            "{:?}",
            s.srv
        );
        assert!(!s.srv.is_proven_absent());
    }
    assert!(map.caa.advice[0].contains("failed"), "{:?}", map.caa.advice);
    drop(udp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_carries_the_extended_dns_error() {
    let l = lookup_bounded(Mode::ServFailEde).await;
    assert_eq!(l.dnssec.state(), DnssecState::Indeterminate);
    let reason = l.dnssec.reason().unwrap_or_default();
    assert!(
        reason.contains("EDE 22 (No Reachable Authority): at 192.0.2.53"),
        "{reason}"
    );
}
