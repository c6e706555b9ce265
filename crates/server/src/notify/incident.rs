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
//!   a protocol error: it stopped offering TLS (when the facade confirmed it, the
//!   confirmed verdict: a protocol error only a hostile exit saw is no downgrade);
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
//!   that could not run) neither opens nor closes anything but blindness and hostile exits:
//!   it says nothing about the server.
//! - [`Condition::HostileExit`] is about Tor exits, not the server, and the next check
//!   usually goes through another exit: a result without the warning says nothing about the
//!   bad exit. So a hostile-exit incident is not closed by a clean check; it closes (one
//!   [`AlertKind::Recovered`]) with the first result, of any kind, that comes at least
//!   [`Policy::remind_after`] seconds after the last **sighting** (a result with a
//!   `hostile-exit` warning, conclusive or not). Every sighting moves
//!   [`OpenIncident::last_alert_at`] (for this condition: the last sighting or alert); a
//!   sighting at least `remind_after` after the previous one is a reminder.
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

use certwatch::core::{Classification, WarningCode};
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
    /// When its last alert (opened or reminder) was decided. For
    /// [`Condition::HostileExit`]: the last sighting (every sighting moves it, with or
    /// without an alert; the store writes it back), from which both the reminder and the
    /// recovery are measured.
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
    /// The conditions the result shows (ignored when not conclusive, except
    /// [`Condition::HostileExit`]: a sighting of a hostile exit counts whatever the verdict).
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

    /// The observation of a finished check: `None` for a check that could not run. An
    /// inconclusive report keeps only its hostile-exit sighting, if any.
    pub fn from_outcome(at: i64, report: Option<&Report>) -> Observation {
        match report {
            Some(r) if r.verdict != Verdict::Indeterminate => {
                Observation::conclusive(at, conditions_of(r))
            }
            Some(r) => Observation {
                conditions: conditions_of(r)
                    .into_iter()
                    .filter(|c| *c == Condition::HostileExit)
                    .collect(),
                ..Observation::inconclusive(at)
            },
            None => Observation::inconclusive(at),
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
    // A protocol error the confirmation overruled (a hostile exit stripped STARTTLS: the
    // other vantage points completed TLS) is no downgrade: each entry counts with its
    // confirmed verdict.
    if report
        .endpoints
        .iter()
        .any(|e| e.effective_verdict() == Verdict::ProtocolError && e.is_dane())
    {
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
        if condition == Condition::HostileExit {
            alerts.extend(step_hostile_exit(state, obs, policy));
            continue;
        }
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

/// The hostile-exit rule (see the module's "Rules"): opened by a sighting, a reminder for a
/// sighting at least `remind_after` after the previous one, closed by the first result at
/// least `remind_after` after the last sighting. A clean check alone closes nothing: it
/// usually went through another exit.
fn step_hostile_exit(state: &mut State, obs: &Observation, policy: &Policy) -> Option<Alert> {
    let condition = Condition::HostileExit;
    let sighted = obs.conditions.contains(&condition);
    match state.open.get_mut(&condition) {
        None if sighted => {
            state.open.insert(
                condition,
                OpenIncident {
                    opened_at: obs.at,
                    last_alert_at: obs.at,
                },
            );
            Some(Alert {
                condition,
                kind: AlertKind::Opened,
                opened_at: obs.at,
                at: obs.at,
            })
        }
        Some(open) if sighted => {
            let quiet = obs.at.saturating_sub(open.last_alert_at) >= policy.remind_after;
            open.last_alert_at = open.last_alert_at.max(obs.at);
            quiet.then_some(Alert {
                condition,
                kind: AlertKind::Reminder,
                opened_at: open.opened_at,
                at: obs.at,
            })
        }
        Some(open) if obs.at.saturating_sub(open.last_alert_at) >= policy.remind_after => {
            let opened_at = open.opened_at;
            state.open.remove(&condition);
            Some(Alert {
                condition,
                kind: AlertKind::Recovered,
                opened_at,
                at: obs.at,
            })
        }
        _ => None,
    }
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

    #[test]
    fn a_hostile_exit_closes_only_after_a_quiet_period_without_sightings() {
        let p = Policy {
            blind_after: 6 * 3600,
            remind_after: 3600,
        };
        let mut s = State::new(0);
        let t = 1000;
        let a = step(
            &mut s,
            &Observation::conclusive(t, [Condition::HostileExit]),
            &p,
        );
        assert_eq!(kinds(&a), vec![(Condition::HostileExit, AlertKind::Opened)]);
        // The next check went through another exit: clean, but it closes nothing.
        assert!(step(&mut s, &Observation::conclusive(t + 30, []), &p).is_empty());
        // The bad exit comes up again: no new notice.
        assert!(
            step(
                &mut s,
                &Observation::conclusive(t + 60, [Condition::HostileExit]),
                &p
            )
            .is_empty()
        );
        // Clean checks (and a failed one) within remind_after of the last sighting: open.
        for dt in [120, 1800, 3600 + 59] {
            assert!(step(&mut s, &Observation::conclusive(t + dt, []), &p).is_empty());
        }
        assert!(step(&mut s, &Observation::inconclusive(t + 3600 + 30), &p).is_empty());
        assert!(s.open.contains_key(&Condition::HostileExit));
        // remind_after without a sighting: one recovered, measured from the last sighting.
        let a = step(&mut s, &Observation::conclusive(t + 60 + 3600, []), &p);
        assert_eq!(
            kinds(&a),
            vec![(Condition::HostileExit, AlertKind::Recovered)]
        );
        assert_eq!(a[0].opened_at, t);
        assert!(s.open.is_empty());
        assert!(step(&mut s, &Observation::conclusive(t + 9000, []), &p).is_empty());
    }

    #[test]
    fn a_hostile_exit_is_reminded_only_after_a_quiet_period_and_seen_in_any_report() {
        let p = Policy {
            blind_after: 6 * 3600,
            remind_after: 3600,
        };
        let mut s = State::new(0);
        step(
            &mut s,
            &Observation::conclusive(0, [Condition::HostileExit]),
            &p,
        );
        // Sightings every 10 minutes for a day: no reminder, no recovery.
        for k in 1..144 {
            let a = step(
                &mut s,
                &Observation::conclusive(k * 600, [Condition::HostileExit]),
                &p,
            );
            assert!(a.is_empty(), "{k}: {a:?}");
        }
        // No result for more than remind_after, then a sighting: a reminder (still open).
        let a = step(
            &mut s,
            &Observation::conclusive(143 * 600 + 4000, [Condition::HostileExit]),
            &p,
        );
        assert_eq!(
            kinds(&a),
            vec![(Condition::HostileExit, AlertKind::Reminder)]
        );
        // A sighting in an indeterminate report counts too (it keeps the incident open).
        let mut r = report_with_hostile_exit();
        r.verdict = Verdict::Indeterminate;
        let obs = Observation::from_outcome(143 * 600 + 7000, Some(&r));
        assert!(!obs.conclusive);
        assert_eq!(obs.conditions, BTreeSet::from([Condition::HostileExit]));
        assert!(step(&mut s, &obs, &p).is_empty());
        assert!(
            step(
                &mut s,
                &Observation::conclusive(143 * 600 + 7000 + 3599, []),
                &p
            )
            .is_empty()
        );
        assert_eq!(
            kinds(&step(
                &mut s,
                &Observation::inconclusive(143 * 600 + 7000 + 3600),
                &p
            )),
            vec![(Condition::HostileExit, AlertKind::Recovered)]
        );
    }

    fn report_with_hostile_exit() -> Report {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "domain": "example.org", "checked_at": "2026-11-28T14:26:40Z",
            "verdict": "match", "confirmation": {"vantage_points": 5, "distinct_exits": 4,
                "classification": "hostile-exit", "diversity_verified": true},
            "endpoints": [],
            "setup": {"zone_lines": [], "advice": []},
            "warnings": [{"code": "hostile-exit", "message": "tor:192.0.2.9 saw another key"}]
        }))
        .unwrap()
    }

    #[test]
    fn a_protocol_error_the_confirmation_overruled_is_no_downgrade() {
        let key = "ab".repeat(32);
        let entry = |verdict: &str, confirmed: &str| {
            serde_json::json!({
                "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
                "tlsa": [format!("3 1 1 {key}")], "verdict": verdict,
                "reason": "protocol-violation", "presented_spki_sha256": null,
                "matched_record": null, "vantage": "tor:198.51.100.7", "key_type": null,
                "error": {"class": "xmpp", "message": "the stream features do not offer STARTTLS"},
                "confirmed_verdict": confirmed
            })
        };
        // One exit stripped STARTTLS; the other vantage points completed TLS and matched.
        let mut r = report_with_hostile_exit();
        r.endpoints = serde_json::from_value(serde_json::json!([
            entry("protocol-error", "match"),
            entry("protocol-error", "match"),
        ]))
        .unwrap();
        assert_eq!(conditions_of(&r), BTreeSet::from([Condition::HostileExit]));
        // Every vantage point saw the downgrade: the subscribers' alert stands.
        r.verdict = Verdict::ProtocolError;
        r.warnings.clear();
        r.confirmation.as_mut().unwrap().classification = Classification::ServerSideInterception;
        r.endpoints = serde_json::from_value(serde_json::json!([entry(
            "protocol-error",
            "protocol-error"
        ),]))
        .unwrap();
        assert_eq!(conditions_of(&r), BTreeSet::from([Condition::Downgrade]));
        // Not confirmed (no confirmation made, or a report from before the field): as seen.
        r.confirmation = None;
        r.endpoints = serde_json::from_value(serde_json::json!(
            [entry("protocol-error", "x")].map(|mut e| {
                e.as_object_mut().unwrap().remove("confirmed_verdict");
                e
            })
        ))
        .unwrap();
        assert_eq!(conditions_of(&r), BTreeSet::from([Condition::Downgrade]));
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
        /// recovered notice. A hostile-exit incident recovers exactly when it is open, not
        /// sighted, and was last sighted at least `remind_after` ago.
        #[test]
        fn no_storm(steps in prop::collection::vec(observation(), 0..60), remind in 1i64..50_000) {
            let p = Policy { blind_after: 5_000, remind_after: remind };
            let mut s = State::new(0);
            let mut t = 0i64;
            let mut open: BTreeMap<Condition, i64> = BTreeMap::new();
            let (mut opened, mut recovered) = (0usize, 0usize);
            let mut last_sighting: Option<i64> = None;
            for (dt, conclusive, conds) in steps {
                t += dt;
                let obs = if conclusive {
                    Observation::conclusive(t, conds)
                } else {
                    // An indeterminate report may still carry a hostile-exit sighting.
                    Observation {
                        conditions: conds
                            .into_iter()
                            .filter(|c| *c == Condition::HostileExit)
                            .collect(),
                        ..Observation::inconclusive(t)
                    }
                };
                let sighted = obs.conditions.contains(&Condition::HostileExit);
                let was_open = open.contains_key(&Condition::HostileExit);
                let alerts = step(&mut s, &obs, &p);
                // Hostile exits: recovered exactly when open, not seen now, and not seen for
                // remind_after (a clean check alone does not close it: no flapping).
                let quiet = last_sighting.is_some_and(|l| t - l >= remind);
                let hostile_recovered = alerts.iter().any(|a| {
                    a.condition == Condition::HostileExit && a.kind == AlertKind::Recovered
                });
                prop_assert_eq!(hostile_recovered, was_open && !sighted && quiet);
                if sighted {
                    last_sighting = Some(t);
                }
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
