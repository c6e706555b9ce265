//! The network layer under the validator: UDP with TCP fallback (hickory's name-server pool),
//! the CD bit on every query, one shared cache of raw answers per check, and the counting
//! that the round-trip report is built from.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::{self, Stream};
use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::{DnsHandle, FirstAnswer};
use hickory_proto::op::{DnsRequest, DnsResponse};
use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::NameServerPool;
use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::{PoolContext, TlsConfig};
use serde::Serialize;

use crate::config::ResolverConfig;

type RawResult = Result<DnsResponse, NetError>;
type SharedAnswer = Shared<BoxFuture<'static, RawResult>>;

/// One query that went to the network.
#[derive(Debug, Clone, Serialize)]
pub struct WireQuery {
    /// Owner name queried.
    pub name: String,
    /// Record type queried.
    pub rtype: String,
    /// Milliseconds from the start of the check to the query.
    pub start_ms: u64,
    /// Milliseconds from the start of the check to the answer (or failure).
    pub end_ms: u64,
}

#[derive(Default)]
struct State {
    cache: HashMap<(Name, RecordType), SharedAnswer>,
    log: Vec<WireQuery>,
}

/// A `DnsHandle` that sets CD=1, answers repeated questions from one shared cache (also
/// while the first copy is still in flight) and logs every network query.
#[derive(Clone)]
pub(crate) struct Wire {
    pool: NameServerPool<TokioRuntimeProvider>,
    state: Arc<Mutex<State>>,
    epoch: Instant,
}

pub(crate) fn pool(
    config: &ResolverConfig,
) -> Result<NameServerPool<TokioRuntimeProvider>, crate::Error> {
    let mut opts = ResolverOpts::default();
    opts.timeout = config.timeout;
    opts.attempts = config.retries.saturating_add(1);
    opts.validate = false;
    opts.edns0 = true;
    opts.try_tcp_on_error = true;
    opts.case_randomization = false;
    opts.cache_size = 0;
    let servers = config.servers.iter().map(|sa| {
        let mut ns = NameServerConfig::udp_and_tcp(sa.ip());
        for c in &mut ns.connections {
            c.port = sa.port();
        }
        ns
    });
    let tls = TlsConfig::new().map_err(|e| crate::Error::SystemConfig(e.to_string()))?;
    let cx = Arc::new(PoolContext::new(opts, tls));
    Ok(NameServerPool::from_config(
        servers,
        cx,
        TokioRuntimeProvider::default(),
    ))
}

impl Wire {
    pub(crate) fn new(pool: NameServerPool<TokioRuntimeProvider>) -> Self {
        Wire {
            pool,
            state: Arc::new(Mutex::new(State::default())),
            epoch: Instant::now(),
        }
    }

    /// The raw (unvalidated) answer for a question, from the cache or the network.
    pub(crate) async fn raw(&self, name: &Name, rtype: RecordType) -> RawResult {
        let mut q = hickory_proto::op::Query::query(name.clone(), rtype);
        q.set_query_class(hickory_proto::rr::DNSClass::IN);
        let mut opts = hickory_proto::op::DnsRequestOptions::default();
        opts.use_edns = true;
        let mut req = DnsRequest::from_query(q, opts);
        if let Some(edns) = req.edns.as_mut() {
            edns.enable_dnssec();
        } else {
            let mut e = hickory_proto::op::Edns::new();
            e.enable_dnssec();
            req.edns = Some(e);
        }
        self.fetch(req).await
    }

    fn fetch(&self, mut request: DnsRequest) -> SharedAnswer {
        request.metadata.checking_disabled = true;
        let Some(query) = request.queries.first().cloned() else {
            return async { Err(NetError::from("no query in request")) }
                .boxed()
                .shared();
        };
        let key = (query.name().to_lowercase(), query.query_type());
        let Ok(mut st) = self.state.lock() else {
            return async { Err(NetError::from("wire state poisoned")) }
                .boxed()
                .shared();
        };
        if let Some(hit) = st.cache.get(&key) {
            return hit.clone();
        }
        let idx = st.log.len();
        st.log.push(WireQuery {
            name: key.0.to_string(),
            rtype: key.1.to_string(),
            start_ms: ms(self.epoch.elapsed()),
            end_ms: 0,
        });
        let pool = self.pool.clone();
        let state = self.state.clone();
        let epoch = self.epoch;
        let fut = async move {
            let r = pool.send(request).first_answer().await;
            if let Ok(mut st) = state.lock()
                && let Some(entry) = st.log.get_mut(idx)
            {
                entry.end_ms = ms(epoch.elapsed());
            }
            r
        }
        .boxed()
        .shared();
        st.cache.insert(key, fut.clone());
        fut
    }

    /// Every query sent so far.
    pub(crate) fn log(&self) -> Vec<WireQuery> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DnsHandle for Wire {
    type Response = Pin<Box<dyn Stream<Item = RawResult> + Send>>;
    // Only the validator's clock differs from the pool's runtime (see `runtime.rs`).
    type Runtime = crate::runtime::ClockRuntime;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let fut = self.fetch(request);
        Box::pin(stream::once(fut))
    }
}

/// The longest chain of queries in which each starts after the previous one answered: the
/// number of sequential round trips the check cost.
pub(crate) fn sequential_round_trips(log: &[WireQuery]) -> usize {
    // Longest path in the interval order: dynamic programming over queries sorted by start.
    let mut qs: Vec<&WireQuery> = log.iter().collect();
    qs.sort_by_key(|q| q.start_ms);
    let mut depth = vec![1usize; qs.len()];
    for i in 0..qs.len() {
        for j in 0..i {
            if qs[j].end_ms <= qs[i].start_ms && depth[j] + 1 > depth[i] {
                depth[i] = depth[j] + 1;
            }
        }
    }
    depth.into_iter().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(start_ms: u64, end_ms: u64) -> WireQuery {
        WireQuery {
            name: "x.".into(),
            rtype: "A".into(),
            start_ms,
            end_ms,
        }
    }

    #[test]
    fn round_trips_count_the_longest_chain() {
        assert_eq!(sequential_round_trips(&[]), 0);
        assert_eq!(sequential_round_trips(&[q(0, 10), q(1, 11), q(2, 12)]), 1);
        assert_eq!(
            sequential_round_trips(&[q(0, 10), q(10, 20), q(5, 30), q(20, 25)]),
            3
        );
    }
}
