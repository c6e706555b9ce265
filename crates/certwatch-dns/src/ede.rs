//! RFC 8914 extended DNS errors. hickory's name-server pool turns SERVFAIL and REFUSED into
//! errors without the message, so after such a failure the question is asked once more over
//! a plain UDP socket (bounded by the query timeout and a 4 kB buffer) to read the EDE
//! options. The text is unauthenticated: it only explains an `indeterminate`, it never
//! changes a status.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

/// Largest answer read.
const MAX_ANSWER: usize = 4096;

/// The RFC 8914 name of an info code.
pub(crate) fn ede_name(code: u16) -> &'static str {
    match code {
        0 => "Other Error",
        1 => "Unsupported DNSKEY Algorithm",
        2 => "Unsupported DS Digest Type",
        3 => "Stale Answer",
        4 => "Forged Answer",
        5 => "DNSSEC Indeterminate",
        6 => "DNSSEC Bogus",
        7 => "Signature Expired",
        8 => "Signature Not Yet Valid",
        9 => "DNSKEY Missing",
        10 => "RRSIGs Missing",
        11 => "No Zone Key Bit Set",
        12 => "NSEC Missing",
        13 => "Cached Error",
        14 => "Not Ready",
        15 => "Blocked",
        16 => "Censored",
        17 => "Filtered",
        18 => "Prohibited",
        19 => "Stale NXDomain Answer",
        20 => "Not Authoritative",
        21 => "Not Supported",
        22 => "No Reachable Authority",
        23 => "Network Error",
        24 => "Invalid Data",
        _ => "unassigned",
    }
}

/// The EDE options of a message, as `EDE <code> (<name>): <text>`.
pub(crate) fn extended_errors(msg: &Message) -> Vec<String> {
    let Some(edns) = msg.edns.as_ref() else {
        return Vec::new();
    };
    edns.options()
        .get_all(EdnsCode::from(15u16))
        .into_iter()
        .filter_map(|o| match o {
            EdnsOption::Unknown(15, data) if data.len() >= 2 => {
                let code = u16::from_be_bytes([data[0], data[1]]);
                let text = String::from_utf8_lossy(&data[2..]);
                let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
                Some(if text.is_empty() {
                    format!("EDE {code} ({})", ede_name(code))
                } else {
                    format!("EDE {code} ({}): {text}", ede_name(code))
                })
            }
            _ => None,
        })
        .collect()
}

/// Asks `server` for `name rtype` (RD, CD, DO) once and returns its extended errors.
pub(crate) async fn fetch(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Vec<String> {
    tokio::time::timeout(timeout, fetch_inner(server, name, rtype))
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn fetch_inner(server: SocketAddr, name: &Name, rtype: RecordType) -> Option<Vec<String>> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let id = u16::try_from(nanos & 0xffff).unwrap_or(0);
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = true;
    m.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.enable_dnssec();
    edns.set_max_payload(1232);
    m.edns = Some(edns);
    let bytes = m.to_vec().ok()?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.send_to(&bytes, server).await.ok()?;
    let mut buf = vec![0u8; MAX_ANSWER];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await.ok()?;
        if from != server {
            continue;
        }
        let Ok(resp) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if resp.metadata.id != id {
            continue;
        }
        return Some(extended_errors(&resp));
    }
}
