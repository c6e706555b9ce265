//! The store on SQLite: tickets, claims and leases, finish (one transaction), the watch
//! rules, history, keys seen, removal; and a file database that survives a reopen.

use certwatch::{Report, Verdict};
use certwatch_server::store::{Spacing, Store, StoreError, TicketState, WatchReason};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// A report in the CLI's JSON schema: one endpoint with this verdict, key and vantage.
fn report(domain: &str, verdict: &str, key: &str, vantage: &str) -> Report {
    let json = format!(
        r#"{{"schema_version":1,"domain":"{domain}","checked_at":"2027-01-15T08:00:00Z","verdict":"{verdict}",
        "endpoints":[{{"service":"c2s-starttls","target":"xmpp.{domain}","port":5222,"address":"192.0.2.1",
        "dnssec":"secure","dnssec_reason":null,"tlsa":[],"verdict":"{verdict}","reason":null,
        "presented_spki_sha256":"{key}","matched_record":null,"vantage":"{vantage}","key_type":"ecdsa","error":null}}],
        "confirmation":null,"setup":{{"zone_lines":[],"advice":[]}},"warnings":[]}}"#
    );
    serde_json::from_str(&json).expect("test report JSON")
}

fn spacing() -> Spacing {
    Spacing {
        interval: 900,
        jitter: 0,
    }
}

#[tokio::test]
async fn ticket_lifecycle_and_dedup() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let t = store.request_check("Example.ORG.", T0).await.unwrap();
    assert_eq!(t.domain, "example.org");
    assert!(!t.deduplicated);
    assert_eq!(t.id.len(), 32);
    // A second request while queued returns the same ticket.
    let again = store.request_check("example.org", T0 + 5).await.unwrap();
    assert_eq!(again.id, t.id);
    assert!(again.deduplicated);
    assert_eq!(
        store.ticket(&t.id).await.unwrap(),
        Some(TicketState::Queued)
    );
    assert_eq!(store.ticket("nope").await.unwrap(), None);

    let jobs = store.claim_due("a", T0 + 10, 360, 4).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].ticket.as_deref(), Some(t.id.as_str()));
    assert_eq!(
        store.ticket(&t.id).await.unwrap(),
        Some(TicketState::Running)
    );
    // Claimed: nobody else gets it while the lease runs.
    assert!(
        store
            .claim_due("b", T0 + 11, 360, 4)
            .await
            .unwrap()
            .is_empty()
    );

    let r = report("example.org", "match", "aa11", "tor:198.51.100.7");
    let f = store
        .finish(&jobs[0], "a", T0 + 40, Ok(r.clone()), spacing())
        .await
        .unwrap();
    assert!(f.owned);
    assert_eq!(f.skipped, 0);
    assert_eq!(f.next_due_at, T0 + 10 + 900);
    match store.ticket(&t.id).await.unwrap() {
        Some(TicketState::Done(got)) => assert_eq!(*got, r),
        other => panic!("expected Done, got {other:?}"),
    }
    // After the ticket is done, a new request makes a new ticket.
    let next = store.request_check("example.org", T0 + 50).await.unwrap();
    assert_ne!(next.id, t.id);
    assert!(!next.deduplicated);
}

#[tokio::test]
async fn failed_check_marks_the_ticket_failed_and_keeps_the_last_verdict() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let t = store.request_check("example.org", T0).await.unwrap();
    let job = store.claim_due("a", T0, 360, 1).await.unwrap().remove(0);
    store
        .finish(
            &job,
            "a",
            T0 + 1,
            Ok(report("example.org", "match", "aa", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    let t2 = store.request_check("example.org", T0 + 2).await.unwrap();
    let job = store
        .claim_due("a", T0 + 2, 360, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(job.ticket.as_deref(), Some(t2.id.as_str()));
    store
        .finish(
            &job,
            "a",
            T0 + 3,
            Err("resolver unreachable".into()),
            spacing(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.ticket(&t2.id).await.unwrap(),
        Some(TicketState::Failed("resolver unreachable".into()))
    );
    let _ = t;
    let view = store
        .domain_view("example.org", T0 + 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.last_verdict, Some(Verdict::Match));
    assert_eq!(view.last_checked_at, Some(T0 + 3));
    assert_eq!(view.report_at, Some(T0 + 1));
    let h = store.history("example.org", 10).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].error.as_deref(), Some("resolver unreachable"));
    assert_eq!(h[0].verdict, None);
    assert_eq!(h[1].verdict, Some(Verdict::Match));
}

#[tokio::test]
async fn watch_rules_match_expiry_and_subscribers() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    // A matching domain is watched until expire (here 2 days) after it was last requested.
    store
        .request_check_with("ok.example", T0, 2 * DAY)
        .await
        .unwrap();
    // A non-matching one is not watched.
    store
        .request_check_with("setup.example", T0, 2 * DAY)
        .await
        .unwrap();
    let jobs = store.claim_due("a", T0, 360, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        let v = if job.domain == "ok.example" {
            "match"
        } else {
            "no-records"
        };
        store
            .finish(
                job,
                "a",
                T0 + 5,
                Ok(report(&job.domain, v, "bb", "direct")),
                spacing(),
            )
            .await
            .unwrap();
    }
    let ok = store
        .domain_view("ok.example", T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ok.watch,
        WatchReason::Matched {
            until: T0 + 2 * DAY
        }
    );
    assert_eq!(ok.next_due_at, Some(T0 + 900));
    let setup = store
        .domain_view("setup.example", T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setup.watch, WatchReason::NotMatching(Verdict::NoRecords));
    assert!(!setup.watch.is_watched());
    assert_eq!(setup.next_due_at, None);

    // At T0 + 900 only the matching domain is due.
    let due = store.claim_due("a", T0 + 900, 360, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|j| j.domain.as_str()).collect::<Vec<_>>(),
        ["ok.example"]
    );
    assert_eq!(due[0].due_at, Some(T0 + 900));
    store
        .finish(
            &due[0],
            "a",
            T0 + 905,
            Ok(report("ok.example", "match", "bb", "direct")),
            spacing(),
        )
        .await
        .unwrap();

    // Two days later, nobody asked again: expired, not claimed.
    let late = T0 + 2 * DAY + 10;
    assert!(
        store
            .claim_due("a", late, 360, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ok = store
        .domain_view("ok.example", late)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ok.watch,
        WatchReason::Expired {
            since: T0 + 2 * DAY
        }
    );
    // A confirmed subscription makes even the non-matching domain watched again.
    assert!(
        store
            .add_subscription("setup.example", "email", "op@setup.example", late)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_subscription("setup.example", "email", "op@setup.example", late)
            .await
            .unwrap()
    );
    let setup = store
        .domain_view("setup.example", late)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setup.watch, WatchReason::Subscribed(1));
    assert_eq!(setup.subscribers, 1);
    let due = store.claim_due("a", late, 360, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|j| j.domain.as_str()).collect::<Vec<_>>(),
        ["setup.example"]
    );
    let subs = store
        .subscriptions(Some("setup.example"), 10)
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].confirmed_at, Some(late));
    assert!(!subs[0].blocked);
    // Blocked by the admin: no longer watched.
    assert!(
        store
            .set_subscription_blocked(subs[0].id, true)
            .await
            .unwrap()
    );
    assert!(!store.set_subscription_blocked(9999, true).await.unwrap());
    assert!(store.subscriptions(None, 10).await.unwrap()[0].blocked);
    let setup = store
        .domain_view("setup.example", late)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setup.subscribers, 0);
    assert!(!setup.watch.is_watched());
    assert!(
        store
            .set_subscription_blocked(subs[0].id, false)
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_subscription("setup.example", "email", "op@setup.example")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_the_late_finish_does_not_move_the_schedule() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let t = store.request_check("example.org", T0).await.unwrap();
    let dead = store
        .claim_due("crashed", T0, 100, 1)
        .await
        .unwrap()
        .remove(0);
    // Before the lease ends: nothing to claim.
    assert!(
        store
            .claim_due("b", T0 + 99, 100, 1)
            .await
            .unwrap()
            .is_empty()
    );
    // After: the abandoned ticket is claimed again.
    let retry = store
        .claim_due("b", T0 + 100, 100, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(retry.ticket.as_deref(), Some(t.id.as_str()));
    assert_ne!(retry.claim_token, dead.claim_token);
    let ok = store
        .finish(
            &retry,
            "b",
            T0 + 110,
            Ok(report("example.org", "match", "cc", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    assert!(ok.owned);
    // The crashed claimant comes back late: its check is recorded, the schedule is not its.
    let late = store
        .finish(
            &dead,
            "crashed",
            T0 + 120,
            Ok(report("example.org", "match", "cc", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    assert!(!late.owned);
    let view = store
        .domain_view("example.org", T0 + 120)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.next_due_at, Some(ok.next_due_at));
}

#[tokio::test]
async fn overdue_slots_are_skipped_not_run_back_to_back() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.request_check("example.org", T0).await.unwrap();
    let job = store.claim_due("a", T0, 10_000, 1).await.unwrap().remove(0);
    // The check took 40 minutes: the slots at +15 and +30 min fell due meanwhile.
    let f = store
        .finish(
            &job,
            "a",
            T0 + 2400,
            Ok(report("example.org", "match", "dd", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    assert_eq!(f.skipped, 2);
    assert_eq!(f.next_due_at, T0 + 2700);
}

#[tokio::test]
async fn history_keys_seen_list_and_remove() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    for (i, key) in ["k1", "k1", "k2"].iter().enumerate() {
        let now = T0 + i64::try_from(i).unwrap() * 1000;
        store.request_check("example.org", now).await.unwrap();
        let job = store.claim_due("a", now, 360, 1).await.unwrap().remove(0);
        let vantage = format!("tor:198.51.100.{i}");
        store
            .finish(
                &job,
                "a",
                now + 5,
                Ok(report("example.org", "match", key, &vantage)),
                spacing(),
            )
            .await
            .unwrap();
    }
    let h = store.history("example.org", 2).await.unwrap();
    assert_eq!(h.len(), 2);
    assert!(h[0].id > h[1].id);
    assert_eq!(
        h[0].presented_keys(),
        vec![("xmpp.example.org".to_owned(), 5222, "k2".to_owned())]
    );
    assert_eq!(h[0].vantages(), vec!["tor:198.51.100.2".to_owned()]);
    let keys = store.keys_seen("example.org").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[0].spki_sha256.as_str(), keys[0].times), ("k2", 1));
    assert_eq!((keys[1].spki_sha256.as_str(), keys[1].times), ("k1", 2));
    assert_eq!(keys[1].first_seen, T0 + 5);
    assert_eq!(keys[1].last_seen, T0 + 1005);

    store.request_check("b.example", T0).await.unwrap();
    let list = store.list_domains(0, 10).await.unwrap();
    assert_eq!(
        list.iter().map(|d| d.domain.as_str()).collect::<Vec<_>>(),
        ["b.example", "example.org"]
    );
    assert_eq!(store.list_domains(1, 10).await.unwrap().len(), 1);
    assert_eq!(store.count_domains().await.unwrap(), 2);

    store
        .request_removal("example.org", "op@example.org", "please", T0)
        .await
        .unwrap();
    store
        .request_removal("example.org", "op@example.org", "please!", T0 + 1)
        .await
        .unwrap();
    let reqs = store.removal_requests(10).await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].message, "please!");

    assert!(store.remove_domain("example.org").await.unwrap());
    assert!(!store.remove_domain("example.org").await.unwrap());
    assert!(
        store
            .domain_view("example.org", T0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.history("example.org", 10).await.unwrap().is_empty());
    assert!(store.keys_seen("example.org").await.unwrap().is_empty());
    assert!(store.removal_requests(10).await.unwrap().is_empty());
    assert_eq!(store.count_domains().await.unwrap(), 1);
}

#[tokio::test]
async fn invalid_input_is_an_error_or_nothing_never_a_panic() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    for bad in [
        "",
        "a..b",
        "-x.example",
        &"a".repeat(300),
        "exa mple.org",
        "\u{0}",
    ] {
        let e = store.request_check(bad, T0).await.unwrap_err();
        assert!(
            matches!(e, StoreError::InvalidDomain { .. }),
            "{bad:?}: {e}"
        );
        assert!(store.domain_view(bad, T0).await.unwrap().is_none());
        assert!(store.history(bad, 5).await.unwrap().is_empty());
    }
    assert!(matches!(
        Store::open("mysql://x").await.unwrap_err(),
        StoreError::BadUrl { .. }
    ));
    let e = Store::open("postgres://u:secret@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[tokio::test]
async fn a_file_database_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cw.sqlite3").display());
    let id = {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(
            store.schema_version().await.unwrap(),
            certwatch_server::store::CURRENT_VERSION
        );
        store.request_check("example.org", T0).await.unwrap().id
    };
    let secret = Store::open(&url).await.unwrap().web_secret().await.unwrap();
    assert_eq!(secret.len(), 32);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.ticket(&id).await.unwrap(), Some(TicketState::Queued));
    // The web secret is made once and kept.
    assert_eq!(store.web_secret().await.unwrap(), secret);
    assert_eq!(
        store.schema_version().await.unwrap(),
        certwatch_server::store::CURRENT_VERSION
    );
}

#[tokio::test]
async fn history_and_tickets_are_bounded() {
    use certwatch_server::store::{HISTORY_RETENTION_SECS, TICKET_RETENTION_SECS};
    let store = Store::open("sqlite::memory:").await.unwrap();
    let first = store.request_check("example.org", T0).await.unwrap();
    let job = store.claim_due("a", T0, 360, 1).await.unwrap().remove(0);
    store
        .finish(
            &job,
            "a",
            T0 + 1,
            Ok(report("example.org", "match", "k", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    // Half a retention later: both checks kept; the first ticket is long gone.
    let mid = T0 + HISTORY_RETENTION_SECS / 2;
    store.request_check("example.org", mid).await.unwrap();
    let job = store.claim_due("a", mid, 360, 1).await.unwrap().remove(0);
    store
        .finish(
            &job,
            "a",
            mid + 1,
            Ok(report("example.org", "match", "k", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    assert!(mid > T0 + TICKET_RETENTION_SECS);
    assert_eq!(store.ticket(&first.id).await.unwrap(), None);
    assert_eq!(store.history("example.org", 10).await.unwrap().len(), 2);
    // Past the retention of the first check: it is deleted, the others stay.
    let late = T0 + HISTORY_RETENTION_SECS + 10;
    store.request_check("example.org", late).await.unwrap();
    let job = store.claim_due("a", late, 360, 1).await.unwrap().remove(0);
    store
        .finish(
            &job,
            "a",
            late,
            Ok(report("example.org", "match", "k", "direct")),
            spacing(),
        )
        .await
        .unwrap();
    let h = store.history("example.org", 10).await.unwrap();
    assert_eq!(
        h.iter().map(|c| c.finished_at).collect::<Vec<_>>(),
        vec![late, mid + 1]
    );
}
