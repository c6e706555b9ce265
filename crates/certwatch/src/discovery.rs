//! The DNS half of a check, kept so that DNS can be refreshed on its own schedule
//! ([`Checker::discover`](crate::Checker::discover),
//! [`Checker::check_discovered`](crate::Checker::check_discovered)).

use std::time::Duration;

use certwatch_dns::{RrsetLookup, ServiceMap};

/// What DNS said about one domain at one time: its endpoints, with DNSSEC statuses, TTLs
/// and signature validity windows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discovery {
    /// The domain, A-label form, no trailing dot.
    pub domain: String,
    /// When the lookups started, Unix seconds (from [`CheckOptions::clock`](crate::CheckOptions::clock)).
    pub discovered_at: u64,
    /// Every lookup and the endpoints derived from them.
    pub map: ServiceMap,
}

impl Discovery {
    /// Every RRset lookup behind the endpoints: the SRV, A, AAAA and TLSA lookups.
    fn lookups(&self) -> impl Iterator<Item = &RrsetLookup> {
        self.map
            .services
            .iter()
            .map(|s| &s.srv)
            .chain(self.map.hosts.iter().flat_map(|h| [&h.a, &h.aaaa]))
            .chain(self.map.tlsa.iter())
    }

    /// How long this discovery stays valid: the smallest TTL of any record (CNAMEs
    /// included) of the SRV, address and TLSA RRsets, capped by the earliest RRSIG
    /// expiration (counted from [`Discovery::discovered_at`]; zero when one has already
    /// passed). `None` when DNS gave no TTL at all (only denials or failures): the caller
    /// picks its own refresh interval then.
    ///
    /// A denial's negative-caching TTL (the SOA minimum) is not carried by certwatch-dns, so
    /// a domain with no SRV records is refreshed on the TTLs of what exists (its fallback
    /// host's address and TLSA records).
    pub fn min_ttl(&self) -> Option<Duration> {
        let ttl = self
            .lookups()
            .flat_map(|l| l.records.iter().chain(l.cnames.iter()))
            .map(|r| u64::from(r.ttl))
            .min();
        let expiry = self
            .lookups()
            .flat_map(|l| l.signatures.iter())
            .filter_map(|s| unix_of(&s.expiration))
            .min()
            .map(|e| e.saturating_sub(self.discovered_at));
        match (ttl, expiry) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (Some(t), None) => Some(t),
            (None, Some(e)) => Some(e),
            (None, None) => None,
        }
        .map(Duration::from_secs)
    }
}

/// An RFC 3339 time as Unix seconds.
fn unix_of(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::unix_of;

    #[test]
    fn rrsig_expirations_parse() {
        assert_eq!(unix_of("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(unix_of("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_of("20270115080000"), None);
    }
}
