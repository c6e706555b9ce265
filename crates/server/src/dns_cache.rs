//! DNS on its own schedule: each checked domain's discovery (SRV, addresses, TLSA, with their
//! DNSSEC proofs) is kept and refreshed when its TTL runs out, by a background task, so that
//! a probe is not preceded by the DNS queries that would announce it.
//!
//! - A check uses the domain's cached discovery while it is fresh; only the first check of a
//!   domain (or one after a failed refresh, or after the domain went idle) looks DNS up
//!   right before probing.
//! - A discovery is refreshed at `discovered + clamp(min_ttl, floor, cap)` plus a random
//!   delay of up to a tenth of that, on the refresher's timer, independent of probe times. The
//!   smallest TTL is capped by the earliest RRSIG expiry (the facade's
//!   `Discovery::min_ttl`), so expiring signatures are seen in time.
//! - A failed refresh drops the entry: the next check looks DNS up itself and reports what
//!   went wrong.
//! - Entries not used by a check for `idle` are dropped instead of refreshed (unwatched
//!   domains cause no DNS traffic).
//!
//! Times are tokio instants, so the schedule is testable on a paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::random::Random;

/// How refreshes are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsSchedule {
    /// Never refresh sooner than this after a lookup (very short TTLs).
    pub floor: Duration,
    /// Never keep a discovery longer than this (very long TTLs).
    pub cap: Duration,
    /// The refresh delay when DNS gave no TTL (only denials or failures).
    pub default_ttl: Duration,
    /// Drop (do not refresh) entries no check used for this long.
    pub idle: Duration,
}

impl Default for DnsSchedule {
    /// Floor 60 s, cap 6 h, default 5 min, idle 2 h.
    fn default() -> Self {
        DnsSchedule {
            floor: Duration::from_secs(60),
            cap: Duration::from_secs(6 * 3600),
            default_ttl: Duration::from_secs(300),
            idle: Duration::from_secs(2 * 3600),
        }
    }
}

impl DnsSchedule {
    /// The schedule for a service checking every `interval`: entries idle for three
    /// intervals (at least two hours) are dropped.
    pub fn for_interval(interval: Duration) -> Self {
        DnsSchedule {
            idle: (interval * 3).max(Duration::from_secs(2 * 3600)),
            ..DnsSchedule::default()
        }
    }

    /// The delay before refreshing a lookup whose smallest TTL is `min_ttl`.
    pub fn delay(&self, min_ttl: Option<Duration>, random: &dyn Random) -> Duration {
        let base = min_ttl
            .unwrap_or(self.default_ttl)
            .clamp(self.floor, self.cap.max(self.floor));
        let spread = u64::try_from(base.as_millis() / 10).unwrap_or(0);
        base + Duration::from_millis(random.below(spread.saturating_add(1)))
    }
}

struct Entry<T> {
    value: Arc<T>,
    refresh_at: Instant,
    last_used: Instant,
}

/// The cache of discoveries per domain (generic so tests need no network).
pub struct DnsCache<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
    schedule: DnsSchedule,
    random: Arc<dyn Random>,
}

impl<T> std::fmt::Debug for DnsCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsCache")
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl<T> DnsCache<T> {
    /// An empty cache.
    pub fn new(schedule: DnsSchedule, random: Arc<dyn Random>) -> Self {
        DnsCache {
            entries: Mutex::default(),
            schedule,
            random,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The domain's discovery if it is still fresh at `now` (and marks it used).
    pub fn fresh(&self, domain: &str, now: Instant) -> Option<Arc<T>> {
        let mut entries = self.lock();
        let e = entries.get_mut(domain)?;
        if e.refresh_at <= now {
            return None;
        }
        e.last_used = now;
        Some(e.value.clone())
    }

    /// Stores a discovery made at `now` with this smallest TTL; returns when it will be
    /// refreshed. `used` says whether a check is using it now (a refresh keeps the old
    /// last-use time).
    pub fn insert(
        &self,
        domain: &str,
        value: T,
        min_ttl: Option<Duration>,
        now: Instant,
        used: bool,
    ) -> Instant {
        let refresh_at = now + self.schedule.delay(min_ttl, self.random.as_ref());
        let mut entries = self.lock();
        let last_used = match entries.get(domain) {
            Some(e) if !used => e.last_used,
            _ => now,
        };
        entries.insert(
            domain.to_owned(),
            Entry {
                value: Arc::new(value),
                refresh_at,
                last_used,
            },
        );
        refresh_at
    }

    /// Drops the domain's entry (a failed refresh).
    pub fn remove(&self, domain: &str) {
        self.lock().remove(domain);
    }

    /// The domains whose refresh is due at `now` (at most `max`, the most overdue first);
    /// idle entries are dropped instead.
    pub fn due(&self, now: Instant, max: usize) -> Vec<String> {
        let idle = self.schedule.idle;
        let mut entries = self.lock();
        entries.retain(|_, e| now.duration_since(e.last_used) < idle);
        let mut due: Vec<(Instant, String)> = entries
            .iter()
            .filter(|(_, e)| e.refresh_at <= now)
            .map(|(d, e)| (e.refresh_at, d.clone()))
            .collect();
        due.sort();
        due.into_iter().take(max).map(|(_, d)| d).collect()
    }

    /// The earliest refresh time, if any entry exists.
    pub fn next_refresh(&self) -> Option<Instant> {
        self.lock().values().map(|e| e.refresh_at).min()
    }

    /// How many domains are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    fn cache() -> DnsCache<&'static str> {
        DnsCache::new(
            DnsSchedule {
                floor: Duration::from_secs(60),
                cap: Duration::from_secs(3600),
                default_ttl: Duration::from_secs(300),
                idle: Duration::from_secs(7200),
            },
            Arc::new(SeededRandom::new(3)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_until_the_ttl_then_due_for_refresh() {
        let c = cache();
        let t0 = Instant::now();
        let at = c.insert("a.example", "v1", Some(Duration::from_secs(600)), t0, true);
        // TTL 600 s plus up to 10 % jitter.
        assert!(at >= t0 + Duration::from_secs(600) && at <= t0 + Duration::from_secs(660));
        assert_eq!(
            c.fresh("a.example", t0 + Duration::from_secs(599))
                .as_deref(),
            Some(&"v1")
        );
        assert!(c.due(t0 + Duration::from_secs(599), 10).is_empty());
        assert_eq!(c.fresh("a.example", at), None);
        assert_eq!(c.due(at, 10), vec!["a.example".to_owned()]);
        // The refresher stores the new answer: fresh again.
        let at2 = c.insert("a.example", "v2", Some(Duration::from_secs(600)), at, false);
        assert!(at2 > at);
        assert_eq!(
            c.fresh("a.example", at + Duration::from_secs(1)).as_deref(),
            Some(&"v2")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ttls_are_clamped_and_missing_ones_default() {
        let c = cache();
        let t0 = Instant::now();
        let short = c.insert("s", "x", Some(Duration::from_secs(5)), t0, true);
        assert!(short >= t0 + Duration::from_secs(60) && short <= t0 + Duration::from_secs(66));
        let long = c.insert("l", "x", Some(Duration::from_secs(86_400)), t0, true);
        assert!(long >= t0 + Duration::from_secs(3600) && long <= t0 + Duration::from_secs(3960));
        let none = c.insert("n", "x", None, t0, true);
        assert!(none >= t0 + Duration::from_secs(300) && none <= t0 + Duration::from_secs(330));
        assert_eq!(c.next_refresh(), Some(short));
        // Most overdue first, bounded.
        let late = t0 + Duration::from_secs(4000);
        assert_eq!(c.due(late, 2), vec!["s".to_owned(), "n".to_owned()]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_entries_are_dropped_not_refreshed() {
        let c = cache();
        let t0 = Instant::now();
        c.insert("used", "x", Some(Duration::from_secs(600)), t0, true);
        c.insert("idle", "x", Some(Duration::from_secs(600)), t0, true);
        // A refresh does not count as use; a check does.
        let t1 = t0 + Duration::from_secs(3600);
        c.insert("idle", "y", Some(Duration::from_secs(3600)), t1, false);
        c.insert("used", "y", Some(Duration::from_secs(3000)), t1, false);
        assert!(c.fresh("used", t1 + Duration::from_secs(1)).is_some());
        let t2 = t0 + Duration::from_secs(7300);
        let due = c.due(t2, 10);
        assert_eq!(due, vec!["used".to_owned()]);
        assert_eq!(c.len(), 1);
        c.remove("used");
        assert!(c.is_empty());
    }
}
