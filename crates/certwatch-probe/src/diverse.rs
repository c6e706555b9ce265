//! Vantage diversity: re-probing one target from several exits with distinct IP addresses,
//! for the confirmation rules of REFERENCE §3.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::capture::KeyRequest;
use crate::error::{ErrorClass, ProbeError};
use crate::probe::{Probe, Prober};
use crate::transport::{CheckIsolation, Transport};
use certwatch_core::ProbeTarget;

/// The outcome of [`Prober::probe_diverse`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DiverseProbes {
    /// Conclusive outcomes (a proven key, or a classified non-network failure such as an
    /// unproven key or a protocol error), one per distinct exit IP when exits are visible.
    pub conclusive: Vec<Result<Probe, ProbeError>>,
    /// Inconclusive attempts (network, timeout, Tor circuit failures): they do not count.
    pub inconclusive: Vec<ProbeError>,
    /// How many distinct exit IP addresses the conclusive outcomes came from (0 when the
    /// transport cannot see exits).
    pub distinct_exits: usize,
    /// Whether exit diversity is verified: true only over embedded Tor with every conclusive
    /// exit known. Through SOCKS the exit cannot be seen, and the JSON must say so.
    pub exits_verified: bool,
    /// Attempts made (each on a fresh isolation, so a fresh circuit).
    pub attempts: usize,
    /// Attempts whose exit repeated an exit already counted.
    pub repeated_exits: usize,
}

impl Prober {
    /// Up to `n` conclusive probes of `target` for `key_request`, from exits with distinct IP
    /// addresses.
    ///
    /// Each attempt uses a new [`CheckIsolation`], so a fresh circuit; a fresh circuit may
    /// reuse an exit, so attempts continue (up to
    /// [`ProbeOptions::diverse_max_attempts`](crate::ProbeOptions::diverse_max_attempts))
    /// until `n` distinct exits answered. Over SOCKS each attempt counts (exits unknown); over
    /// the direct transport one attempt is enough, as there is only one vantage point.
    pub async fn probe_diverse(
        &self,
        target: &ProbeTarget,
        key_request: KeyRequest,
        n: usize,
    ) -> DiverseProbes {
        let max_attempts = self.options().diverse_max_attempts.unwrap_or(3 * n + 2);
        let wanted = match self.transport() {
            Transport::Direct => n.min(1),
            _ => n,
        };
        let tor = !matches!(
            self.transport(),
            Transport::Direct | Transport::Socks { .. }
        );
        let mut out = DiverseProbes {
            conclusive: Vec::new(),
            inconclusive: Vec::new(),
            distinct_exits: 0,
            exits_verified: tor,
            attempts: 0,
            repeated_exits: 0,
        };
        let mut seen: HashSet<IpAddr> = HashSet::new();
        while out.conclusive.len() < wanted && out.attempts < max_attempts {
            out.attempts += 1;
            let isolation = CheckIsolation::new();
            let result = self.probe(target, &isolation, key_request).await;
            let vantage = match &result {
                Ok(p) => Some(&p.vantage),
                Err(e) if e.class() == ErrorClass::Indeterminate => {
                    if let Err(e) = result {
                        out.inconclusive.push(e);
                    }
                    continue;
                }
                Err(e) => e.vantage(),
            };
            match vantage.and_then(|v| v.exit_ip()) {
                Some(ip) if seen.contains(&ip) => {
                    out.repeated_exits += 1;
                    continue;
                }
                Some(ip) => {
                    seen.insert(ip);
                }
                None => {
                    if tor {
                        // An exit arti could not name: keep the result, but diversity is no
                        // longer verified.
                        out.exits_verified = false;
                    }
                }
            }
            out.conclusive.push(result);
        }
        out.distinct_exits = seen.len();
        out
    }
}
