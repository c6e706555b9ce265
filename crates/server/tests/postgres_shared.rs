//! PostgreSQL (interop: the `postgres` part of scripts/interop-env): the store's behaviour on
//! PostgreSQL, and two instances on one database that never claim the same check twice over
//! many ticks (`FOR UPDATE SKIP LOCKED`).
#![cfg(feature = "interop")]

use std::collections::{BTreeMap, BTreeSet};

use certwatch::Report;
use certwatch_server::store::{Spacing, Store, TicketState};
use certwatch_testkit::Interop;

const T0: i64 = 1_800_000_000;

fn report(domain: &str, verdict: &str) -> Report {
    let json = format!(
        r#"{{"schema_version":1,"domain":"{domain}","checked_at":"2027-01-15T08:00:00Z","verdict":"{verdict}",
        "endpoints":[{{"service":"c2s-starttls","target":"xmpp.{domain}","port":5222,"address":"192.0.2.1",
        "dnssec":"secure","dnssec_reason":null,"tlsa":[],"verdict":"{verdict}","reason":null,
        "presented_spki_sha256":"abcd","matched_record":null,"vantage":"direct","key_type":"ecdsa","error":null}}],
        "confirmation":null,"setup":{{"zone_lines":[],"advice":[]}},"warnings":[]}}"#
    );
    serde_json::from_str(&json).unwrap()
}

/// A fresh database on the environment's cluster; its URL.
async fn fresh_database(tag: &str) -> String {
    let env = Interop::require();
    let url = env
        .str("postgres.url")
        .expect("postgres.url in env.json")
        .to_owned();
    let name = format!(
        "cw_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let admin = url.clone();
    let create = name.clone();
    // The synchronous client runs (and drops) its own runtime: a plain thread.
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connect to postgres.url");
        c.batch_execute(&format!("CREATE DATABASE {create}"))
            .unwrap();
    })
    .join()
    .unwrap();
    let base = url.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_works_on_postgres() {
    let url = fresh_database("basic").await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    // A second open of a migrated database is a no-op.
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        again.schema_version().await.unwrap(),
        certwatch_server::store::CURRENT_VERSION
    );

    let t = store.request_check("Exämple.org", T0).await.unwrap();
    assert_eq!(t.domain, "xn--exmple-cua.org");
    assert!(
        again
            .request_check("xn--exmple-cua.org", T0)
            .await
            .unwrap()
            .deduplicated
    );
    let jobs = store.claim_due("a", T0, 300, 5).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(again.claim_due("b", T0, 300, 5).await.unwrap().is_empty());
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    let f = store
        .finish(
            &jobs[0],
            "a",
            T0 + 10,
            Ok(report("xn--exmple-cua.org", "match")),
            spacing,
        )
        .await
        .unwrap();
    assert!(f.owned);
    assert!(matches!(
        again.ticket(&t.id).await.unwrap(),
        Some(TicketState::Done(_))
    ));
    let view = again
        .domain_view("exämple.org", T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.last_verdict, Some(certwatch::Verdict::Match));
    assert_eq!(view.next_due_at, Some(T0 + 900));
    assert_eq!(
        again.keys_seen("xn--exmple-cua.org").await.unwrap().len(),
        1
    );
    assert_eq!(
        again.history("xn--exmple-cua.org", 5).await.unwrap().len(),
        1
    );
    let stats = again.stats(T0 + 900).await.unwrap();
    assert_eq!((stats.domains, stats.watched, stats.overdue), (1, 1, 1));
    store
        .request_removal("xn--exmple-cua.org", "op", "please", T0)
        .await
        .unwrap();
    assert_eq!(again.removal_requests(5).await.unwrap().len(), 1);
    assert!(again.remove_domain("xn--exmple-cua.org").await.unwrap());
    assert_eq!(store.count_domains().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_run_the_same_check_twice() {
    let url = fresh_database("shared").await;
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    const DOMAINS: usize = 40;
    const TICKS: i64 = 25;
    for i in 0..DOMAINS {
        a.add_subscription(&format!("d{i:02}.example"), "email", "x@example.org", T0)
            .await
            .unwrap();
    }
    let spacing = Spacing {
        interval: 900,
        jitter: 0,
    };
    // (domain, due slot) -> the instances that ran it.
    let mut ran: BTreeMap<(String, i64), Vec<&'static str>> = BTreeMap::new();
    for tick in 0..TICKS {
        let now = T0 + tick * 900;
        // Both instances claim and finish concurrently, a few checks at a time, until
        // nothing is due.
        let worker = |store: Store, name: &'static str| async move {
            let mut mine = Vec::new();
            loop {
                let jobs = store.claim_due(name, now, 300, 3).await.unwrap();
                if jobs.is_empty() {
                    break;
                }
                for job in jobs {
                    mine.push((job.domain.clone(), job.due_at.unwrap()));
                    let f = store
                        .finish(
                            &job,
                            name,
                            now + 1,
                            Ok(report(&job.domain, "match")),
                            spacing,
                        )
                        .await
                        .unwrap();
                    assert!(f.owned);
                }
            }
            (name, mine)
        };
        let (ra, rb) = tokio::join!(
            tokio::spawn(worker(a.clone(), "a")),
            tokio::spawn(worker(b.clone(), "b"))
        );
        for (name, mine) in [ra.unwrap(), rb.unwrap()] {
            for key in mine {
                ran.entry(key).or_default().push(name);
            }
        }
    }
    let twice: Vec<_> = ran.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(twice.is_empty(), "checks run twice: {twice:?}");
    // Every domain ran once per tick: nothing lost either.
    assert_eq!(ran.len(), DOMAINS * usize::try_from(TICKS).unwrap());
    let by: BTreeSet<&str> = ran.values().flatten().copied().collect();
    assert_eq!(by.len(), 2, "both instances took work");
    let total = a.history("d00.example", 1000).await.unwrap().len();
    assert_eq!(total, usize::try_from(TICKS).unwrap());
}
