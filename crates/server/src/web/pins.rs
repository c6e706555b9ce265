//! Trust on first use: whether the zone lines derived from the service's own probes may be
//! shown.
//!
//! A line taken from a connection pins whatever that connection presented, an interceptor's
//! key included. The service therefore shows such lines only when enough distinct vantage
//! points (Tor exits with distinct addresses, and the direct one) saw the same key for every
//! probe target and key type, over the latest report and the recent history. Otherwise it
//! says why not, and the operator computes the lines from the key file on the server.

use std::collections::{BTreeMap, BTreeSet};

use certwatch::{Classification, Report, Vantage, Verdict};

/// Default for the number of distinct vantage points that must agree (two Tor exits and the
/// direct one, or three exits).
pub const DEFAULT_MIN_VANTAGES: usize = 3;

/// The decision about probe-derived zone lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeLines {
    /// The report has no probe-derived lines to show (nothing to add, or no key was seen).
    NotApplicable,
    /// Every vantage point agreed: the lines may be shown.
    Agreed {
        /// The zone lines (from the latest report).
        lines: Vec<String>,
        /// The distinct vantage points that agreed, as shown to the user.
        vantages: Vec<String>,
    },
    /// The lines are withheld, and why.
    Withheld {
        /// Why, in words.
        reason: String,
        /// The distinct vantage points seen so far.
        vantages: Vec<String>,
    },
}

/// A vantage point as counted for agreement: Tor exits without a visible address (and SOCKS)
/// cannot be told apart, so they count as one together.
fn vantage_key(v: &Vantage) -> String {
    match v {
        Vantage::Direct => "direct".into(),
        Vantage::Tor(Some(ip)) => format!("tor exit {ip}"),
        Vantage::Tor(None) | Vantage::Socks => "tor (exit not visible)".into(),
    }
}

/// Decides whether the zone lines of `latest` (derived from its probes) may be shown, given
/// the `earlier` reports of the same domain (any order) and the number of distinct vantage
/// points that must agree.
pub fn probe_lines(latest: &Report, earlier: &[Report], min_vantages: usize) -> ProbeLines {
    let lines: Vec<String> = latest.setup.zone_lines.clone();
    if !lines.iter().any(|l| !l.trim_start().starts_with(';')) {
        return ProbeLines::NotApplicable;
    }
    // Every (target, port, key type) the lines are for, with the key each vantage saw.
    type Group = (String, u16, Option<String>);
    let mut seen: BTreeMap<Group, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut all_vantages: BTreeSet<String> = BTreeSet::new();
    for report in std::iter::once(latest).chain(earlier.iter()) {
        if report.domain != latest.domain {
            continue;
        }
        for e in &report.endpoints {
            let (Some(key), Some(vantage)) = (&e.presented_spki_sha256, &e.vantage) else {
                continue;
            };
            let v = vantage_key(vantage);
            all_vantages.insert(v.clone());
            let group = (
                e.target.clone(),
                e.port,
                e.key_type.map(|k| format!("{k:?}")),
            );
            seen.entry(group)
                .or_default()
                .entry(key.clone())
                .or_default()
                .insert(v);
        }
    }
    let vantages: Vec<String> = all_vantages.into_iter().collect();
    let withheld = |reason: String| ProbeLines::Withheld {
        reason,
        vantages: vantages.clone(),
    };
    if latest.verdict == Verdict::Mismatch
        || latest
            .endpoints
            .iter()
            .any(|e| e.verdict == Verdict::Mismatch)
    {
        return withheld(
            "a probe saw a key that the published records do not pin: no line is taken from a \
             probe while that is unresolved"
                .into(),
        );
    }
    if let Some(c) = &latest.confirmation
        && c.classification != Classification::Consistent
    {
        return withheld(format!(
            "the confirmation over several vantage points was not consistent ({})",
            serde_json::to_value(c.classification)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ));
    }
    if seen.is_empty() {
        return withheld("no probe presented a key".into());
    }
    for ((target, port, _), keys) in &seen {
        if keys.len() > 1 {
            let detail: Vec<String> = keys
                .iter()
                .map(|(k, vs)| {
                    format!(
                        "{} saw {}",
                        vs.iter().cloned().collect::<Vec<_>>().join(", "),
                        k
                    )
                })
                .collect();
            return withheld(format!(
                "the vantage points disagree about the key of {target} port {port}: {}",
                detail.join("; ")
            ));
        }
    }
    let weakest = seen
        .values()
        .map(|keys| keys.values().map(BTreeSet::len).sum::<usize>())
        .min()
        .unwrap_or(0);
    if weakest < min_vantages {
        return withheld(format!(
            "only {weakest} distinct vantage point{} saw the key so far; the service shows lines \
             from its own probes only when at least {min_vantages} agree (several Tor exits and \
             a direct probe)",
            if weakest == 1 { "" } else { "s" }
        ));
    }
    ProbeLines::Agreed { lines, vantages }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(entries: &[(&str, &str)], verdict: &str) -> Report {
        let endpoints: Vec<serde_json::Value> = entries
            .iter()
            .map(|(vantage, key)| {
                serde_json::json!({
                    "service": "c2s-starttls", "target": "xmpp.example.org", "port": 5222,
                    "address": "192.0.2.1", "dnssec": "secure", "dnssec_reason": null,
                    "tlsa": [], "verdict": verdict, "reason": "no-tlsa",
                    "presented_spki_sha256": key, "matched_record": null,
                    "vantage": vantage, "key_type": "ecdsa", "error": null
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "domain": "example.org",
            "checked_at": "2026-11-28T17:00:00Z", "verdict": verdict,
            "endpoints": endpoints, "confirmation": null,
            "setup": {"zone_lines": [format!("_5222._tcp.xmpp.example.org. 3600 IN TLSA 3 1 1 {}", "aa".repeat(32))], "advice": []},
            "warnings": []
        }))
        .unwrap()
    }

    #[test]
    fn lines_need_enough_agreeing_vantage_points() {
        let k = "aa".repeat(32);
        let latest = report(&[("tor:198.51.100.1", &k)], "no-records");
        let ProbeLines::Withheld { reason, .. } = probe_lines(&latest, &[], 3) else {
            panic!("one vantage point must not be enough");
        };
        assert!(reason.contains("only 1 distinct vantage point"), "{reason}");
        let earlier = vec![
            report(&[("direct", &k)], "no-records"),
            report(&[("tor:198.51.100.2", &k)], "no-records"),
        ];
        match probe_lines(&latest, &earlier, 3) {
            ProbeLines::Agreed { lines, vantages } => {
                assert_eq!(lines, latest.setup.zone_lines);
                assert_eq!(vantages.len(), 3);
            }
            other => panic!("expected agreement, got {other:?}"),
        }
        // The same exit twice counts once; exits without a visible address count once.
        let repeated = vec![
            report(&[("tor:198.51.100.1", &k)], "no-records"),
            report(&[("tor", &k)], "no-records"),
            report(&[("socks", &k)], "no-records"),
        ];
        assert!(matches!(
            probe_lines(&latest, &repeated, 3),
            ProbeLines::Withheld { .. }
        ));
        assert!(matches!(
            probe_lines(&latest, &repeated, 2),
            ProbeLines::Agreed { .. }
        ));
    }

    #[test]
    fn disagreement_withholds_and_names_the_keys() {
        let k = "aa".repeat(32);
        let other = "bb".repeat(32);
        let latest = report(&[("direct", &k)], "no-records");
        let earlier = vec![
            report(&[("tor:198.51.100.1", &k)], "no-records"),
            report(&[("tor:198.51.100.2", &other)], "no-records"),
        ];
        let ProbeLines::Withheld { reason, .. } = probe_lines(&latest, &earlier, 1) else {
            panic!("disagreeing keys must withhold the lines");
        };
        assert!(reason.contains("disagree"), "{reason}");
        assert!(reason.contains(&other), "{reason}");
        assert!(reason.contains("tor exit 198.51.100.2"), "{reason}");
    }

    #[test]
    fn no_lines_means_not_applicable_and_mismatch_withholds() {
        let k = "aa".repeat(32);
        let mut r = report(&[("direct", &k)], "match");
        r.setup.zone_lines.clear();
        assert_eq!(probe_lines(&r, &[], 1), ProbeLines::NotApplicable);
        let mut m = report(&[("direct", &k)], "mismatch");
        m.setup.zone_lines = vec!["; comment only".into(), "x".into()];
        assert!(matches!(
            probe_lines(&m, &[], 1),
            ProbeLines::Withheld { .. }
        ));
    }
}
