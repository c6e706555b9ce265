//! Rate limits on on-demand checks: one sliding window per client address and one global
//! window, in memory, bounded in size.
//!
//! The client address is the TCP peer, or, only when the peer is a configured trusted proxy,
//! the right-most address in `X-Forwarded-For` that is not itself a trusted proxy
//! ([`client_address`]). A client that is refused learns how long to wait (`Retry-After`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;

/// How many client addresses the limiter remembers at most. When it is full and no entry
/// has expired, new clients are refused as if the global limit were reached.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// A limit: at most `max` events in any window of `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed per window (0 refuses everything).
    pub max: u32,
    /// The window's length.
    pub period: Duration,
}

/// Why a request was refused, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This client asked for too many checks.
    #[error(
        "too many checks from your address: at most {max} per {} s; try again in {} s",
        period.as_secs(), retry_after.as_secs()
    )]
    Client {
        /// The client's limit.
        max: u32,
        /// Its window.
        period: Duration,
        /// When the oldest counted event leaves the window.
        retry_after: Duration,
    },
    /// The service as a whole runs as many on-demand checks as it allows.
    #[error(
        "the service is busy: at most {max} on-demand checks per {} s for everyone; try again in {} s",
        period.as_secs(), retry_after.as_secs()
    )]
    Global {
        /// The global limit.
        max: u32,
        /// Its window.
        period: Duration,
        /// When the oldest counted event leaves the window.
        retry_after: Duration,
    },
}

impl Refused {
    /// Seconds to wait, rounded up, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let d = match self {
            Refused::Client { retry_after, .. } | Refused::Global { retry_after, .. } => {
                *retry_after
            }
        };
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// Sliding-window counters per client and for everyone.
#[derive(Debug)]
pub struct RateLimiter {
    per_client: Limit,
    global: Limit,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<IpAddr, VecDeque<Duration>>,
    global: VecDeque<Duration>,
}

/// Drops the events of `log` that left the window ending at `now`.
fn expire(log: &mut VecDeque<Duration>, period: Duration, now: Duration) {
    while log
        .front()
        .is_some_and(|t| now.saturating_sub(*t) >= period)
    {
        log.pop_front();
    }
}

/// When the oldest event of a full `log` leaves the window.
fn wait(log: &VecDeque<Duration>, period: Duration, now: Duration) -> Duration {
    log.front()
        .map(|t| (*t + period).saturating_sub(now))
        .unwrap_or(period)
}

impl RateLimiter {
    /// A limiter with a per-client and a global limit.
    pub fn new(per_client: Limit, global: Limit) -> Self {
        RateLimiter {
            per_client,
            global,
            state: Mutex::new(State::default()),
        }
    }

    /// Counts one event for `client` at `now` (time since any fixed epoch, from the injected
    /// clock), or refuses it without counting.
    pub fn check(&self, client: IpAddr, now: Duration) -> Result<(), Refused> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        expire(&mut state.global, self.global.period, now);
        if state.global.len() >= self.global.max as usize {
            return Err(Refused::Global {
                max: self.global.max,
                period: self.global.period,
                retry_after: wait(&state.global, self.global.period, now),
            });
        }
        if !state.clients.contains_key(&client) && state.clients.len() >= MAX_TRACKED_CLIENTS {
            let period = self.per_client.period;
            state.clients.retain(|_, log| {
                expire(log, period, now);
                !log.is_empty()
            });
            if state.clients.len() >= MAX_TRACKED_CLIENTS {
                return Err(Refused::Global {
                    max: self.global.max,
                    period: self.global.period,
                    retry_after: self.per_client.period,
                });
            }
        }
        let log = state.clients.entry(client).or_default();
        expire(log, self.per_client.period, now);
        if log.len() >= self.per_client.max as usize {
            return Err(Refused::Client {
                max: self.per_client.max,
                period: self.per_client.period,
                retry_after: wait(log, self.per_client.period, now),
            });
        }
        log.push_back(now);
        state.global.push_back(now);
        Ok(())
    }
}

/// The client's address: the TCP `peer`, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` address that is not a trusted proxy (all of the request's
/// `X-Forwarded-For` headers, in order). Malformed entries end the walk: the last trusted
/// hop is then the client. Without a peer address (a test harness without connection
/// info) the result is `None`.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    is_trusted_proxy: &dyn Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if !is_trusted_proxy(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
            break;
        };
        client = ip;
        if !is_trusted_proxy(ip) {
            break;
        }
    }
    Some(client)
}

/// An IPv4-mapped IPv6 address as IPv4, so both spellings share a bucket.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn per_client_window_slides() {
        let rl = RateLimiter::new(
            Limit {
                max: 2,
                period: secs(60),
            },
            Limit {
                max: 100,
                period: secs(60),
            },
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(rl.check(a, secs(0)).is_ok());
        assert!(rl.check(a, secs(10)).is_ok());
        let refused = rl.check(a, secs(20)).unwrap_err();
        assert!(matches!(refused, Refused::Client { .. }));
        assert_eq!(refused.retry_after_secs(), 40);
        // Another client is not affected.
        assert!(rl.check(b, secs(20)).is_ok());
        // The first event leaves the window at 60 s.
        assert!(rl.check(a, secs(59)).is_err());
        assert!(rl.check(a, secs(60)).is_ok());
    }

    #[test]
    fn global_limit_covers_everyone() {
        let rl = RateLimiter::new(
            Limit {
                max: 5,
                period: secs(60),
            },
            Limit {
                max: 3,
                period: secs(30),
            },
        );
        for i in 1..=3u8 {
            assert!(rl.check(IpAddr::from([192, 0, 2, i]), secs(1)).is_ok());
        }
        let refused = rl.check(IpAddr::from([192, 0, 2, 9]), secs(5)).unwrap_err();
        assert!(matches!(refused, Refused::Global { .. }));
        assert_eq!(refused.retry_after_secs(), 26);
        assert!(refused.to_string().contains("busy"));
        assert!(rl.check(IpAddr::from([192, 0, 2, 9]), secs(31)).is_ok());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let only_proxy = |ip: IpAddr| ip == proxy;
        let both = |ip: IpAddr| ip == proxy || ip == inner;
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        // Untrusted peer: the header is ignored.
        assert_eq!(
            client_address(Some("192.0.2.5".parse().unwrap()), &h, &only_proxy),
            Some("192.0.2.5".parse().unwrap())
        );
        // Trusted peer: the right-most untrusted hop.
        assert_eq!(
            client_address(Some(proxy), &h, &only_proxy),
            Some("198.51.100.7".parse().unwrap())
        );
        // Two trusted proxies in a row are skipped.
        let mut h2 = HeaderMap::new();
        h2.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.2"),
        );
        assert_eq!(
            client_address(Some(proxy), &h2, &both),
            Some("203.0.113.9".parse().unwrap())
        );
        // Garbage stops the walk at the last trusted hop.
        let mut h3 = HeaderMap::new();
        h3.append("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_address(Some(proxy), &h3, &only_proxy), Some(proxy));
        assert_eq!(client_address(None, &h, &only_proxy), None);
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        assert_eq!(
            client_address(Some("::ffff:10.0.0.1".parse().unwrap()), &h, &only_proxy),
            Some("198.51.100.7".parse().unwrap())
        );
    }
}
