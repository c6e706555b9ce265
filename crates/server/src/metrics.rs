//! The service's counters and gauges, rendered as Prometheus text at `/metrics` and summed
//! up for `/healthz` (both served by the web layer).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use certwatch::Verdict;

/// The state of the embedded Tor client (or of the transport in general).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TorState {
    /// Not using Tor (`--via direct` or an external SOCKS proxy).
    NotUsed,
    /// Bootstrapping: fraction done (0..=1) and arti's message.
    Bootstrapping {
        /// 0.0 to 1.0.
        fraction: f32,
        /// What arti says it is doing.
        message: String,
    },
    /// Ready: checks run.
    Ready,
    /// Bootstrap failed; checks cannot run until a restart.
    Failed(String),
}

impl TorState {
    /// Whether checks can run.
    pub fn is_ready(&self) -> bool {
        matches!(self, TorState::Ready | TorState::NotUsed)
    }
}

#[derive(Debug, Default)]
struct Inner {
    checks: BTreeMap<&'static str, u64>,
    probes: BTreeMap<&'static str, u64>,
    dns: BTreeMap<&'static str, u64>,
    check_errors: u64,
    skipped: u64,
    tor: Option<TorState>,
    lag_seconds: i64,
    circuits_last_minute: u64,
    circuits_total: u64,
    running: u64,
    last_check_at: Option<i64>,
    last_conclusive_at: Option<i64>,
    store_ok: bool,
    scheduler_alive_at: Option<i64>,
}

/// The metrics. Shared as `Arc<Metrics>`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// The XMPP component link's state (issue 10).
    pub xmpp_link: crate::component::LinkMonitor,
}

/// What `/healthz` reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// Whether the store answered the last time it was asked.
    pub store_ok: bool,
    /// The transport's state.
    pub tor: TorState,
    /// Seconds the scheduler is behind its oldest due check (0 when on time).
    pub scheduler_lag_seconds: i64,
    /// The scheduler's last tick (Unix seconds).
    pub scheduler_alive_at: Option<i64>,
    /// The newest finished check.
    pub last_check_at: Option<i64>,
    /// The newest conclusive (not indeterminate) check.
    pub last_conclusive_at: Option<i64>,
    /// Checks running now.
    pub running: u64,
}

impl Health {
    /// Healthy: the store answers and the transport is ready (a bootstrapping Tor is not yet
    /// healthy, but the site serves meanwhile).
    pub fn ok(&self) -> bool {
        self.store_ok && self.tor.is_ready()
    }
}

impl Metrics {
    /// Fresh metrics: no checks yet, Tor state unknown (reported as bootstrapping 0 %).
    pub fn new() -> Self {
        Metrics::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a finished check by verdict; `None` counts a check that could not run.
    pub fn check_finished(&self, verdict: Option<Verdict>, at: i64) {
        let mut m = self.lock();
        match verdict {
            Some(v) => {
                *m.checks.entry(v.as_str()).or_default() += 1;
                if v != Verdict::Indeterminate {
                    m.last_conclusive_at = Some(at);
                }
            }
            None => m.check_errors += 1,
        }
        m.last_check_at = Some(at);
    }

    /// Counts a finished check's probe entries (one per endpoint, address and key type) by
    /// their verdict.
    pub fn probes_finished(&self, report: &certwatch::Report) {
        let mut m = self.lock();
        for e in &report.endpoints {
            *m.probes.entry(e.verdict.as_str()).or_default() += 1;
        }
    }

    /// Probe entries with this verdict so far.
    pub fn probes_with(&self, verdict: Verdict) -> u64 {
        self.lock()
            .probes
            .get(verdict.as_str())
            .copied()
            .unwrap_or(0)
    }

    /// Counts a DNS discovery: `refresh` (on the TTL schedule), `inline` (right before a
    /// probe: first check, failed refresh), `refresh-failed`, or `cached` (a check that used
    /// a fresh cached discovery).
    pub fn dns(&self, kind: &'static str) {
        *self.lock().dns.entry(kind).or_default() += 1;
    }

    /// DNS discoveries of this kind so far.
    pub fn dns_count(&self, kind: &str) -> u64 {
        self.lock().dns.get(kind).copied().unwrap_or(0)
    }

    /// Counts checks skipped because the previous one for the domain was still running.
    pub fn checks_skipped(&self, n: u64) {
        self.lock().skipped += n;
    }

    /// Sets the Tor state.
    pub fn set_tor(&self, state: TorState) {
        self.lock().tor = Some(state);
    }

    /// The Tor state.
    pub fn tor(&self) -> TorState {
        self.lock().tor.clone().unwrap_or(TorState::Bootstrapping {
            fraction: 0.0,
            message: "starting".into(),
        })
    }

    /// Sets the scheduler's lag and marks it alive at `now`.
    pub fn scheduler_tick(&self, now: i64, lag_seconds: i64) {
        let mut m = self.lock();
        m.lag_seconds = lag_seconds.max(0);
        m.scheduler_alive_at = Some(now);
    }

    /// Records the circuits opened in the last minute, and `new` more in total.
    pub fn circuits(&self, last_minute: u64, new: u64) {
        let mut m = self.lock();
        m.circuits_last_minute = last_minute;
        m.circuits_total += new;
    }

    /// Sets the number of running checks.
    pub fn set_running(&self, n: u64) {
        self.lock().running = n;
    }

    /// Records whether the store answered.
    pub fn set_store_ok(&self, ok: bool) {
        self.lock().store_ok = ok;
    }

    /// Finished checks with this verdict so far.
    pub fn checks_with(&self, verdict: Verdict) -> u64 {
        self.lock()
            .checks
            .get(verdict.as_str())
            .copied()
            .unwrap_or(0)
    }

    /// Checks skipped so far.
    pub fn skipped(&self) -> u64 {
        self.lock().skipped
    }

    /// Circuits opened so far.
    pub fn circuits_total(&self) -> u64 {
        self.lock().circuits_total
    }

    /// The data of `/healthz`.
    pub fn health(&self) -> Health {
        let tor = self.tor();
        let m = self.lock();
        Health {
            store_ok: m.store_ok,
            tor,
            scheduler_lag_seconds: m.lag_seconds,
            scheduler_alive_at: m.scheduler_alive_at,
            last_check_at: m.last_check_at,
            last_conclusive_at: m.last_conclusive_at,
            running: m.running,
        }
    }

    /// The Prometheus text exposition (version 0.0.4) of every metric.
    pub fn render_prometheus(&self) -> String {
        let tor = self.tor();
        let m = self.lock();
        let mut out = String::new();
        out.push_str("# HELP certwatch_checks_total Finished domain checks by verdict (error: the check could not run).\n# TYPE certwatch_checks_total counter\n");
        for v in Verdict::ALL {
            let n = m.checks.get(v.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "certwatch_checks_total{{verdict=\"{}\"}} {n}",
                v.as_str()
            );
        }
        let _ = writeln!(
            out,
            "certwatch_checks_total{{verdict=\"error\"}} {}",
            m.check_errors
        );
        out.push_str("# HELP certwatch_probes_total Probe outcomes (one per endpoint, address and key type) by verdict.\n# TYPE certwatch_probes_total counter\n");
        for v in Verdict::ALL {
            let n = m.probes.get(v.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "certwatch_probes_total{{verdict=\"{}\"}} {n}",
                v.as_str()
            );
        }
        out.push_str("# HELP certwatch_dns_discoveries_total DNS discoveries: on the TTL schedule (refresh), right before a probe (inline), failed refreshes, and checks that used a cached one.\n# TYPE certwatch_dns_discoveries_total counter\n");
        for k in ["refresh", "inline", "refresh-failed", "cached"] {
            let n = m.dns.get(k).copied().unwrap_or(0);
            let _ = writeln!(out, "certwatch_dns_discoveries_total{{kind=\"{k}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP certwatch_checks_skipped_total Checks skipped because the previous check of the domain was still running.\n# TYPE certwatch_checks_skipped_total counter\ncertwatch_checks_skipped_total {}",
            m.skipped
        );
        let (state, fraction) = match &tor {
            TorState::NotUsed => ("not-used", 1.0),
            TorState::Bootstrapping { fraction, .. } => ("bootstrapping", *fraction),
            TorState::Ready => ("ready", 1.0),
            TorState::Failed(_) => ("failed", 0.0),
        };
        out.push_str("# HELP certwatch_tor_bootstrap_state The Tor client's state (1 for the current one).\n# TYPE certwatch_tor_bootstrap_state gauge\n");
        for s in ["not-used", "bootstrapping", "ready", "failed"] {
            let _ = writeln!(
                out,
                "certwatch_tor_bootstrap_state{{state=\"{s}\"}} {}",
                u8::from(s == state)
            );
        }
        let _ = writeln!(
            out,
            "# HELP certwatch_tor_bootstrap_fraction How far the Tor bootstrap is (0 to 1).\n# TYPE certwatch_tor_bootstrap_fraction gauge\ncertwatch_tor_bootstrap_fraction {fraction}"
        );
        let _ = writeln!(
            out,
            "# HELP certwatch_scheduler_lag_seconds How far behind its oldest due check the scheduler is.\n# TYPE certwatch_scheduler_lag_seconds gauge\ncertwatch_scheduler_lag_seconds {}",
            m.lag_seconds
        );
        let _ = writeln!(
            out,
            "# HELP certwatch_tor_circuits_last_minute New Tor circuits (check isolations) in the last minute.\n# TYPE certwatch_tor_circuits_last_minute gauge\ncertwatch_tor_circuits_last_minute {}",
            m.circuits_last_minute
        );
        let _ = writeln!(
            out,
            "# HELP certwatch_tor_circuits_total New Tor circuits (check isolations) since start.\n# TYPE certwatch_tor_circuits_total counter\ncertwatch_tor_circuits_total {}",
            m.circuits_total
        );
        let _ = writeln!(
            out,
            "# HELP certwatch_checks_running Checks running now.\n# TYPE certwatch_checks_running gauge\ncertwatch_checks_running {}",
            m.running
        );
        if let Some(t) = m.last_conclusive_at {
            let _ = writeln!(
                out,
                "# HELP certwatch_last_conclusive_check_timestamp_seconds The newest conclusive check.\n# TYPE certwatch_last_conclusive_check_timestamp_seconds gauge\ncertwatch_last_conclusive_check_timestamp_seconds {t}"
            );
        }
        self.xmpp_link.render_prometheus(&mut out);
        out
    }
}

/// The heartbeat as Prometheus text (appended to [`Metrics::render_prometheus`] by
/// `/metrics`): ages since the last conclusive probe (of any domain, and of the watched
/// domain unseen longest), whether the service is blind (`blind_after` seconds), and the
/// outbox backlog.
pub fn render_heartbeat(hb: &crate::store::Heartbeat, now: i64, blind_after: i64) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: i64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    if let Some(t) = hb.last_conclusive_at {
        gauge(
            "certwatch_seconds_since_last_conclusive_probe",
            "Seconds since the newest conclusive check of any domain (from the database).",
            now.saturating_sub(t).max(0),
        );
    }
    gauge(
        "certwatch_watched_domains",
        "Domains watched now.",
        i64::try_from(hb.watched).unwrap_or(i64::MAX),
    );
    gauge(
        "certwatch_oldest_watched_conclusive_age_seconds",
        "Among watched domains, the longest time since a domain's last conclusive check (or its addition); 0 without watched domains.",
        hb.stalest_watched_at
            .map_or(0, |t| now.saturating_sub(t).max(0)),
    );
    gauge(
        "certwatch_blind",
        "1 while domains are watched but none had a conclusive check within blind_after.",
        i64::from(hb.blind(now, blind_after)),
    );
    gauge(
        "certwatch_outbox_pending",
        "Deliveries waiting in the outbox (due or backing off).",
        i64::try_from(hb.pending).unwrap_or(i64::MAX),
    );
    gauge(
        "certwatch_outbox_oldest_pending_age_seconds",
        "Age of the oldest pending delivery; 0 when none is pending.",
        hb.oldest_pending_at
            .map_or(0, |t| now.saturating_sub(t).max(0)),
    );
    gauge(
        "certwatch_outbox_failed",
        "Deliveries that failed for good (admin view), within the retention.",
        i64::try_from(hb.failed).unwrap_or(i64::MAX),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_counts_checks_and_shows_tor_state() {
        let m = Metrics::new();
        m.check_finished(Some(Verdict::Match), 100);
        m.check_finished(Some(Verdict::Match), 101);
        m.check_finished(None, 102);
        m.set_tor(TorState::Bootstrapping {
            fraction: 0.5,
            message: "x".into(),
        });
        let text = m.render_prometheus();
        assert!(
            text.contains("certwatch_checks_total{verdict=\"match\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("certwatch_checks_total{verdict=\"error\"} 1\n"));
        assert!(text.contains("certwatch_tor_bootstrap_state{state=\"bootstrapping\"} 1\n"));
        assert!(text.contains("certwatch_tor_bootstrap_state{state=\"ready\"} 0\n"));
        assert!(!m.health().ok());
        m.set_tor(TorState::Ready);
        m.set_store_ok(true);
        assert!(m.health().ok());
        assert_eq!(m.health().last_conclusive_at, Some(101));
    }

    #[test]
    fn probes_are_counted_per_entry() {
        let entry = |v: &str| {
            format!(
                r#"{{"service":"c2s-starttls","target":"x.example","port":5222,"address":"192.0.2.1","dnssec":"secure","dnssec_reason":null,"tlsa":[],"verdict":"{v}","reason":null,"presented_spki_sha256":null,"matched_record":null,"vantage":"direct","key_type":"ecdsa","error":null}}"#
            )
        };
        let json = format!(
            r#"{{"schema_version":1,"domain":"x.example","checked_at":"2027-01-15T08:00:00Z","verdict":"mismatch","endpoints":[{},{},{}],"confirmation":null,"setup":{{"zone_lines":[],"advice":[]}},"warnings":[]}}"#,
            entry("match"),
            entry("mismatch"),
            entry("match")
        );
        let report: certwatch::Report = serde_json::from_str(&json).unwrap();
        let m = Metrics::new();
        m.probes_finished(&report);
        assert_eq!(m.probes_with(Verdict::Match), 2);
        assert_eq!(m.probes_with(Verdict::Mismatch), 1);
        let text = m.render_prometheus();
        assert!(
            text.contains("certwatch_probes_total{verdict=\"match\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("certwatch_probes_total{verdict=\"bogus\"} 0\n"));
    }
}
