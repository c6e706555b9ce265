//! The confirmation rules of REFERENCE §3, one row per branch.

use certwatch_core::{Classification, Vantage, VantageResult, Verdict, WarningCode, confirm};

fn r(vantage: &str, verdict: Verdict) -> VantageResult {
    let key = match verdict {
        Verdict::Match => Some("aa".repeat(32)),
        Verdict::Mismatch => Some("ee".repeat(32)),
        _ => None,
    };
    VantageResult::new(vantage.parse().unwrap(), verdict, key)
}

use Verdict::{Indeterminate as I, Match as M, Mismatch as X, ProtocolError as P};

struct Row {
    name: &'static str,
    results: Vec<VantageResult>,
    classification: Classification,
    verdict: Verdict,
    conclusive: usize,
    diversity_verified: bool,
    hostile: &'static [&'static str],
}

fn row(
    name: &'static str,
    results: Vec<VantageResult>,
    classification: Classification,
    verdict: Verdict,
    conclusive: usize,
) -> Row {
    Row {
        name,
        results,
        classification,
        verdict,
        conclusive,
        diversity_verified: true,
        hostile: &[],
    }
}

#[test]
fn confirmation_table() {
    use Classification::*;
    let rows = vec![
        row("no vantage point", vec![], Indeterminate, I, 0),
        row("one conclusive", vec![r("direct", X)], Indeterminate, I, 1),
        row(
            "inconclusive ones do not count",
            vec![r("direct", M), r("tor:192.0.2.1", I), r("tor:192.0.2.2", I)],
            Indeterminate,
            I,
            1,
        ),
        row(
            "two agree",
            vec![r("direct", M), r("tor:192.0.2.1", M)],
            Consistent,
            M,
            2,
        ),
        row(
            "all agree, one inconclusive",
            vec![
                r("tor:192.0.2.1", M),
                r("tor:192.0.2.2", M),
                r("tor:192.0.2.3", I),
                r("direct", M),
            ],
            Consistent,
            M,
            3,
        ),
        row(
            "all differ: server side",
            vec![r("direct", X), r("tor:192.0.2.1", X), r("tor:192.0.2.2", X)],
            ServerSideInterception,
            X,
            3,
        ),
        row(
            "most differ: server side",
            vec![r("direct", X), r("tor:192.0.2.1", X), r("tor:192.0.2.2", M)],
            ServerSideInterception,
            X,
            3,
        ),
        row(
            "exactly half differ: fail safe",
            vec![r("direct", M), r("tor:192.0.2.1", X)],
            ServerSideInterception,
            X,
            2,
        ),
        row(
            "exactly half of four differ",
            vec![
                r("direct", M),
                r("tor:192.0.2.1", M),
                r("tor:192.0.2.2", X),
                r("tor:192.0.2.3", X),
            ],
            ServerSideInterception,
            X,
            4,
        ),
        row(
            "half differ after dropping the inconclusive",
            vec![r("direct", X), r("tor:192.0.2.1", I), r("tor:192.0.2.2", M)],
            ServerSideInterception,
            X,
            2,
        ),
        row(
            "protocol errors everywhere (STARTTLS stripped at the server)",
            vec![r("direct", P), r("tor:192.0.2.1", P)],
            ServerSideInterception,
            P,
            2,
        ),
        Row {
            hostile: &["tor:192.0.2.2"],
            ..row(
                "a minority differ: hostile exit",
                vec![r("direct", M), r("tor:192.0.2.1", M), r("tor:192.0.2.2", X)],
                HostileExit,
                M,
                3,
            )
        },
        Row {
            hostile: &["tor:192.0.2.9"],
            ..row(
                "a hostile exit that strips STARTTLS",
                vec![r("direct", M), r("tor:192.0.2.1", M), r("tor:192.0.2.9", P)],
                HostileExit,
                M,
                3,
            )
        },
        Row {
            hostile: &["tor:192.0.2.7"],
            ..row(
                "the same exit three times counts once",
                vec![
                    r("tor:192.0.2.7", X),
                    r("tor:192.0.2.7", X),
                    r("tor:192.0.2.7", X),
                    r("direct", M),
                    r("tor:192.0.2.1", M),
                ],
                HostileExit,
                M,
                3,
            )
        },
        Row {
            hostile: &["tor:192.0.2.7"],
            ..row(
                "an exit that differs once differs",
                vec![
                    r("tor:192.0.2.7", M),
                    r("tor:192.0.2.7", X),
                    r("tor:192.0.2.1", M),
                    r("direct", M),
                ],
                HostileExit,
                M,
                3,
            )
        },
        Row {
            diversity_verified: false,
            ..row(
                "through SOCKS: diversity unverified",
                vec![r("socks", M), r("socks", M)],
                Consistent,
                M,
                2,
            )
        },
        Row {
            diversity_verified: false,
            hostile: &["direct"],
            ..row(
                "unknown exits count apart, unverified",
                vec![r("tor", M), r("direct", X), r("tor", M)],
                HostileExit,
                M,
                3,
            )
        },
    ];
    for row in rows {
        let c = confirm(&row.results);
        assert_eq!(c.classification, row.classification, "{}", row.name);
        assert_eq!(c.verdict, row.verdict, "{}", row.name);
        assert_eq!(c.conclusive, row.conclusive, "{}", row.name);
        assert_eq!(c.diversity_verified, row.diversity_verified, "{}", row.name);
        assert_eq!(
            c.warnings
                .iter()
                .any(|w| w.code == WarningCode::DiversityUnverified),
            !row.diversity_verified,
            "{}",
            row.name
        );
        let hostile: Vec<String> = c.hostile.iter().map(|h| h.vantage.to_string()).collect();
        assert_eq!(hostile, row.hostile, "{}", row.name);
        let warning = c
            .warnings
            .iter()
            .find(|w| w.code == WarningCode::HostileExit);
        assert_eq!(warning.is_some(), !row.hostile.is_empty(), "{}", row.name);
        if let Some(w) = warning {
            for h in row.hostile {
                assert!(w.message.contains(h), "{}: {}", row.name, w.message);
            }
        }
    }
}

#[test]
fn hostile_exit_warning_carries_the_evidence() {
    let c = confirm(&[
        r("direct", M),
        r("tor:198.51.100.7", M),
        r("tor:203.0.113.9", X),
    ]);
    let w = &c.warnings[0];
    assert!(w.message.contains("tor:203.0.113.9"));
    assert!(w.message.contains(&"ee".repeat(32)), "{}", w.message);
    assert_eq!(c.distinct_exits, 2);
    assert_eq!(c.vantage_points, 3);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["classification"], "hostile-exit");
    assert_eq!(json["diversity_verified"], true);
    assert_eq!(json["hostile"][0]["vantage"], "tor:203.0.113.9");
}

#[test]
fn vantage_names() {
    for s in ["direct", "socks", "tor", "tor:192.0.2.1", "tor:2001:db8::1"] {
        let v: Vantage = s.parse().unwrap();
        assert_eq!(v.to_string(), s);
    }
    assert!("tor:nonsense".parse::<Vantage>().is_err());
    assert!("exit".parse::<Vantage>().is_err());
}

#[test]
fn agreed_key_needs_two_vantage_points_that_all_agree() {
    use certwatch_core::agreed_key;
    let k = |v: &str, verdict, key: Option<&str>| {
        VantageResult::new(v.parse().unwrap(), verdict, key.map(str::to_owned))
    };
    let table: Vec<(Vec<VantageResult>, Option<&str>)> = vec![
        (vec![], None),
        (vec![k("direct", M, Some("aa"))], None),
        (
            vec![k("direct", M, Some("aa")), k("direct", M, Some("aa"))],
            None,
        ),
        (
            vec![
                k("direct", M, Some("aa")),
                k("tor:192.0.2.1", M, Some("aa")),
            ],
            Some("aa"),
        ),
        (
            vec![
                k("direct", M, Some("aa")),
                k("tor:192.0.2.1", I, None),
                k("socks", M, Some("aa")),
            ],
            Some("aa"),
        ),
        (
            vec![
                k("direct", M, Some("aa")),
                k("tor:192.0.2.1", X, Some("bb")),
                k("tor:192.0.2.2", M, Some("aa")),
            ],
            None,
        ),
        (
            vec![k("tor", M, Some("aa")), k("tor", M, Some("aa"))],
            Some("aa"),
        ),
    ];
    for (i, (results, want)) in table.into_iter().enumerate() {
        assert_eq!(agreed_key(&results).as_deref(), want, "row {i}");
    }
}
