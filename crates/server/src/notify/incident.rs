//! Incidents as a pure state machine: from the consecutive check results of one domain,
//! decide which alerts to send. No I/O, no clock: the time of each result is an input.
//!
//! # Conditions
//! A [`Condition`] is something wrong with a domain that deserves an alert:
//! - [`Condition::Mismatch`]: the confirmed verdict is `mismatch` (server-side interception;
//!   the facade's confirmation has already overruled a hostile exit);
//! - [`Condition::Bogus`]: DNSSEC validation failed;
//! - [`Condition::SignatureExpiring`]: a `signature-expiring` warning;
//! - [`Condition::Downgrade`]: a DANE endpoint (secure, non-empty TLSA RRset) answered with
//!   a protocol error: it stopped offering TLS;
//! - [`Condition::Blind`]: no conclusive check for [`Policy::blind_after`] seconds;
//! - [`Condition::HostileExit`]: a `hostile-exit` warning without a mismatch: an
//!   [`Audience::Admin`] notice, never a subscriber alarm.
//!
//! # Rules
//! - A condition seen while no incident of its kind is open opens one: one
//!   [`AlertKind::Opened`] alert.
//! - While it stays open, a [`AlertKind::Reminder`] is sent only when the condition is seen
//!   again at least [`Policy::remind_after`] seconds after the last alert of the incident.
//! - A **conclusive** result (verdict other than `indeterminate`) without the condition closes
//!   the incident with one [`AlertKind::Recovered`] notice. An inconclusive result (or a check
//!   that could not run) neither opens nor closes anything but blindness: it says nothing
//!   about the server.
//!
//! ```
//! use certwatch_server::notify::incident::{step, AlertKind, Condition, Observation, Policy, State};
//!
//! let policy = Policy::default();
//! let mut state = State::new(0);
//! let bad = Observation::conclusive(100, [Condition::Bogus]);
//! let alerts = step(&mut state, &bad, &policy);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].kind, AlertKind::Opened);
//! assert!(step(&mut state, &Observation::conclusive(200, [Condition::Bogus]), &policy).is_empty());
//! let ok = Observation::conclusive(300, []);
//! assert_eq!(step(&mut state, &ok, &policy)[0].kind, AlertKind::Recovered);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use certwatch::core::{Classification, DnssecState, WarningCode};
use certwatch::{Report, Verdict};

/// Something wrong with a domain that deserves an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// The confirmed verdict is `mismatch`: server-side interception.
    Mismatch,
    /// DNSSEC validation failed (`bogus`).
    Bogus,
    /// An RRSIG the conclusion rests on expires soon (`signature-expiring`).
    SignatureExpiring,
    /// A DANE endpoint stopped offering TLS (`protocol-error` with a secure TLSA RRset).
    Downgrade,
    /// No conclusive check for longer than the blindness threshold.
    Blind,
    /// A minority of Tor exits presented another key: hostile exits (admin notice only).
    HostileExit,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 6] = [
        Condition::Mismatch,
        Condition::Bogus,
        Condition::SignatureExpiring,
        Condition::Downgrade,
        Condition::Blind,
        Condition::HostileExit,
    ];

    /// The stable kebab-case name (stored, and in webhook bodies).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Mismatch => "mismatch",
            Condition::Bogus => "bogus",
            Condition::SignatureExpiring => "signature-expiring",
            Condition::Downgrade => "downgrade",
            Condition::Blind => "blind",
            Condition::HostileExit => "hostile-exit",
        }
    }

    /// The condition named `s` (see [`Condition::as_str`]).
    pub fn parse(s: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Who is told.
    pub fn audience(self) -> Audience {
        match self {
            Condition::HostileExit => Audience::Admin,
            _ => Audience::Subscribers,
        }
    }
}

/// Who receives an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The domain's confirmed, unblocked subscribers.
    Subscribers,
    /// The service's administrator only.
    Admin,
}

/// What an alert says about its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// The incident begins.
    Opened,
    /// It is still going on (after the quiet period).
    Reminder,
    /// It is over.
    Recovered,
}

impl AlertKind {
    /// `opened`, `reminder` or `recovered`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Opened => "opened",
            AlertKind::Reminder => "reminder",
            AlertKind::Recovered => "recovered",
        }
    }
}

/// An alert decided by [`step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// The incident's condition.
    pub condition: Condition,
    /// Opened, reminder or recovered.
    pub kind: AlertKind,
    /// When the incident opened.
    pub opened_at: i64,
    /// The time of the result that caused this alert.
    pub at: i64,
}

/// How the alerts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Seconds without a conclusive check before the domain counts as blind (default 6 h).
    pub blind_after: i64,
    /// Seconds after an incident's last alert before a reminder (default 24 h).
    pub remind_after: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            blind_after: 6 * 3600,
            remind_after: 24 * 3600,
        }
    }
}

/// An open incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenIncident {
    /// When it opened.
    pub opened_at: i64,
    /// When its last alert (opened or reminder) was decided.
    pub last_alert_at: i64,
}

/// One domain's alert state: its open incidents and its last conclusive result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The open incidents, by condition (at most one each).
    pub open: BTreeMap<Condition, OpenIncident>,
    /// The time of the last conclusive result (or when watching began).
    pub last_conclusive_at: i64,
}

impl State {
    /// No open incident; `since` counts as the last conclusive result (when the domain
    /// began to be watched), so that blindness is measured from there.
    pub fn new(since: i64) -> State {
        State {
            open: BTreeMap::new(),
            last_conclusive_at: since,
        }
    }
}

/// One check result, reduced to what the alerts need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When the check finished.
    pub at: i64,
    /// Whether the result is conclusive (a report whose verdict is not `indeterminate`).
    pub conclusive: bool,
    /// The conditions the result shows (ignored when not conclusive).
    pub conditions: BTreeSet<Condition>,
}

impl Observation {
    /// A conclusive result at `at` showing `conditions`.
    pub fn conclusive(at: i64, conditions: impl IntoIterator<Item = Condition>) -> Observation {
        Observation {
            at,
            conclusive: true,
            conditions: conditions.into_iter().collect(),
        }
    }

    /// An inconclusive result at `at` (an `indeterminate` verdict, or a check that could not
    /// run).
    pub fn inconclusive(at: i64) -> Observation {
        Observation {
            at,
            conclusive: false,
            conditions: BTreeSet::new(),
        }
    }

    /// The observation of a finished check: `None` for a check that could not run.
    pub fn from_outcome(at: i64, report: Option<&Report>) -> Observation {
        match report {
            Some(r) if r.verdict != Verdict::Indeterminate => {
                Observation::conclusive(at, conditions_of(r))
            }
            _ => Observation::inconclusive(at),
        }
    }
}

/// The alerting conditions a (conclusive) report shows.
pub fn conditions_of(report: &Report) -> BTreeSet<Condition> {
    let mut out = BTreeSet::new();
    let hostile_exit_overruled = report
        .confirmation
        .as_ref()
        .is_some_and(|c| c.classification == Classification::HostileExit);
    if report.verdict == Verdict::Mismatch && !hostile_exit_overruled {
        out.insert(Condition::Mismatch);
    }
    if report.verdict == Verdict::Bogus
        || report.endpoints.iter().any(|e| e.verdict == Verdict::Bogus)
    {
        out.insert(Condition::Bogus);
    }
    if report.endpoints.iter().any(|e| {
        e.verdict == Verdict::ProtocolError && !e.tlsa.is_empty() && e.dnssec == DnssecState::Secure
    }) {
        out.insert(Condition::Downgrade);
    }
    for w in &report.warnings {
        match w.code {
            WarningCode::SignatureExpiring => {
                out.insert(Condition::SignatureExpiring);
            }
            WarningCode::HostileExit => {
                out.insert(Condition::HostileExit);
            }
            _ => {}
        }
    }
    out
}

/// Advances `state` by one result and returns the alerts to send, in condition order.
pub fn step(state: &mut State, obs: &Observation, policy: &Policy) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let mut seen: BTreeSet<Condition> = BTreeSet::new();
    if obs.conclusive {
        state.last_conclusive_at = state.last_conclusive_at.max(obs.at);
        seen.extend(
            obs.conditions
                .iter()
                .copied()
                .filter(|c| *c != Condition::Blind),
        );
    } else if obs.at.saturating_sub(state.last_conclusive_at) >= policy.blind_after {
        seen.insert(Condition::Blind);
    }
    for condition in Condition::ALL {
        let present = seen.contains(&condition);
        // An inconclusive result says nothing about the server's conditions.
        let decidable = obs.conclusive || condition == Condition::Blind;
        match state.open.get_mut(&condition) {
            None if present => {
                state.open.insert(
                    condition,
                    OpenIncident {
                        opened_at: obs.at,
                        last_alert_at: obs.at,
                    },
                );
                alerts.push(Alert {
                    condition,
                    kind: AlertKind::Opened,
                    opened_at: obs.at,
                    at: obs.at,
                });
            }
            Some(open)
                if present && obs.at.saturating_sub(open.last_alert_at) >= policy.remind_after =>
            {
                open.last_alert_at = obs.at;
                alerts.push(Alert {
                    condition,
                    kind: AlertKind::Reminder,
                    opened_at: open.opened_at,
                    at: obs.at,
                });
            }
            // Still going on, within the quiet period: nothing to say.
            Some(_) if present => {}
            Some(open) if decidable => {
                let opened_at = open.opened_at;
                state.open.remove(&condition);
                alerts.push(Alert {
                    condition,
                    kind: AlertKind::Recovered,
                    opened_at,
                    at: obs.at,
                });
            }
            _ => {}
        }
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinds(alerts: &[Alert]) -> Vec<(Condition, AlertKind)> {
        alerts.iter().map(|a| (a.condition, a.kind)).collect()
    }

    #[test]
    fn one_alert_per_incident_then_recovered() {
        let p = Policy::default();
        let mut s = State::new(0);
        let a = step(
            &mut s,
            &Observation::conclusive(10, [Condition::Mismatch]),
            &p,
        );
        assert_eq!(kinds(&a), vec![(Condition::Mismatch, AlertKind::Opened)]);
        for t in 1..20 {
            let a = step(
                &mut s,
                &Observation::conclusive(10 + t * 60, [Condition::Mismatch]),
                &p,
            );
            assert!(a.is_empty(), "no storm: {a:?}");
        }
        let a = step(&mut s, &Observation::conclusive(5000, []), &p);
        assert_eq!(kinds(&a), vec![(Condition::Mismatch, AlertKind::Recovered)]);
        assert_eq!(a[0].opened_at, 10);
        assert!(s.open.is_empty());
    }

    #[test]
    fn reminder_only_after_the_quiet_period() {
        let p = Policy {
            blind_after: 100,
            remind_after: 1000,
        };
        let mut s = State::new(0);
        step(&mut s, &Observation::conclusive(0, [Condition::Bogus]), &p);
        assert!(
            step(
                &mut s,
                &Observation::conclusive(999, [Condition::Bogus]),
                &p
            )
            .is_empty()
        );
        let a = step(
            &mut s,
            &Observation::conclusive(1000, [Condition::Bogus]),
            &p,
        );
        assert_eq!(kinds(&a), vec![(Condition::Bogus, AlertKind::Reminder)]);
        assert!(
            step(
                &mut s,
                &Observation::conclusive(1999, [Condition::Bogus]),
                &p
            )
            .is_empty()
        );
        let a = step(
            &mut s,
            &Observation::conclusive(2000, [Condition::Bogus]),
            &p,
        );
        assert_eq!(a[0].kind, AlertKind::Reminder);
        assert_eq!(a[0].opened_at, 0);
    }

    #[test]
    fn inconclusive_results_neither_open_nor_close_server_conditions() {
        let p = Policy::default();
        let mut s = State::new(0);
        step(
            &mut s,
            &Observation::conclusive(0, [Condition::Downgrade]),
            &p,
        );
        assert!(step(&mut s, &Observation::inconclusive(60), &p).is_empty());
        assert!(s.open.contains_key(&Condition::Downgrade));
    }

    #[test]
    fn blindness_opens_after_the_threshold_and_recovers_on_a_conclusive_result() {
        let p = Policy {
            blind_after: 6 * 3600,
            remind_after: 86_400,
        };
        let mut s = State::new(0);
        step(&mut s, &Observation::conclusive(100, []), &p);
        assert!(step(&mut s, &Observation::inconclusive(100 + 6 * 3600 - 1), &p).is_empty());
        let a = step(&mut s, &Observation::inconclusive(100 + 6 * 3600), &p);
        assert_eq!(kinds(&a), vec![(Condition::Blind, AlertKind::Opened)]);
        assert!(step(&mut s, &Observation::inconclusive(100 + 7 * 3600), &p).is_empty());
        let a = step(&mut s, &Observation::conclusive(100 + 8 * 3600, []), &p);
        assert_eq!(kinds(&a), vec![(Condition::Blind, AlertKind::Recovered)]);
    }

    #[test]
    fn hostile_exit_is_for_the_admin_only() {
        assert_eq!(Condition::HostileExit.audience(), Audience::Admin);
        for c in Condition::ALL {
            if c != Condition::HostileExit {
                assert_eq!(c.audience(), Audience::Subscribers);
            }
            assert_eq!(Condition::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn conditions_come_from_the_report() {
        let key = "ab".repeat(32);
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "domain": "example.org", "checked_at": "2026-11-28T14:26:40Z",
            "verdict": "mismatch", "confirmation": null,
            "endpoints": [{
                "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
                "tlsa": [format!("3 1 1 {key}")], "verdict": "mismatch",
                "reason": "key-not-in-tlsa", "presented_spki_sha256": "cd".repeat(32),
                "matched_record": null, "vantage": "direct", "key_type": "ecdsa", "error": null
            }],
            "setup": {"zone_lines": [], "advice": []},
            "warnings": [{"code": "signature-expiring", "message": "soon"}]
        }))
        .unwrap();
        assert_eq!(
            conditions_of(&r),
            BTreeSet::from([Condition::Mismatch, Condition::SignatureExpiring])
        );
        r.verdict = Verdict::Match;
        r.endpoints[0].verdict = Verdict::ProtocolError;
        assert_eq!(
            conditions_of(&r),
            BTreeSet::from([Condition::Downgrade, Condition::SignatureExpiring])
        );
        r.endpoints[0].tlsa.clear();
        r.warnings.clear();
        assert!(conditions_of(&r).is_empty());
        r.verdict = Verdict::Indeterminate;
        assert!(!Observation::from_outcome(1, Some(&r)).conclusive);
        assert!(!Observation::from_outcome(1, None).conclusive);
    }

    fn condition() -> impl Strategy<Value = Condition> {
        prop::sample::select(Condition::ALL.to_vec())
    }

    fn observation() -> impl Strategy<Value = (i64, bool, Vec<Condition>)> {
        (
            0i64..20_000,
            any::<bool>(),
            prop::collection::vec(condition(), 0..4),
        )
    }

    proptest! {
        /// No storm: per condition, alerts alternate opened (reminders) recovered, reminders
        /// are at least `remind_after` apart, and every closed incident got exactly one
        /// recovered notice.
        #[test]
        fn no_storm(steps in prop::collection::vec(observation(), 0..60), remind in 1i64..50_000) {
            let p = Policy { blind_after: 5_000, remind_after: remind };
            let mut s = State::new(0);
            let mut t = 0i64;
            let mut open: BTreeMap<Condition, i64> = BTreeMap::new();
            let (mut opened, mut recovered) = (0usize, 0usize);
            for (dt, conclusive, conds) in steps {
                t += dt;
                let obs = if conclusive {
                    Observation::conclusive(t, conds)
                } else {
                    Observation::inconclusive(t)
                };
                let alerts = step(&mut s, &obs, &p);
                let mut per: BTreeSet<Condition> = BTreeSet::new();
                for a in alerts {
                    prop_assert!(per.insert(a.condition), "two alerts for one condition in one step");
                    match a.kind {
                        AlertKind::Opened => {
                            prop_assert!(open.insert(a.condition, t).is_none());
                            opened += 1;
                        }
                        AlertKind::Reminder => {
                            let last = open.get_mut(&a.condition);
                            prop_assert!(last.is_some());
                            let last = last.unwrap();
                            prop_assert!(t - *last >= remind);
                            *last = t;
                        }
                        AlertKind::Recovered => {
                            prop_assert!(open.remove(&a.condition).is_some());
                            recovered += 1;
                        }
                    }
                }
                prop_assert_eq!(open.keys().collect::<Vec<_>>(), s.open.keys().collect::<Vec<_>>());
            }
            prop_assert_eq!(opened, recovered + open.len());
        }
    }
}
