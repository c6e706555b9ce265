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
    // One web secret for every instance on the database.
    let secret = store.web_secret().await.unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(again.web_secret().await.unwrap(), secret);
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

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(std::sync::atomic::AtomicU64);

impl certwatch::Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Which instance ran which domain at which (manual) time.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, String, u64)>>>;

/// Records which instance ran which domain at which (manual) time.
struct Recorder {
    name: &'static str,
    clock: std::sync::Arc<ManualClock>,
    seen: Seen,
}

impl certwatch_server::scheduler::CheckRunner for Recorder {
    fn ready(&self) -> bool {
        true
    }
    fn check(&self, domain: String) -> certwatch_server::scheduler::CheckFuture {
        use certwatch::Clock as _;
        self.seen
            .lock()
            .unwrap()
            .push((self.name, domain.clone(), self.clock.now_unix()));
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            Ok(report(&domain, "match").into())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_on_one_database_never_run_a_check_twice() {
    use std::sync::Arc;
    use std::time::Duration;

    use certwatch_server::config::Config;
    use certwatch_server::metrics::Metrics;
    use certwatch_server::random::SeededRandom;
    use certwatch_server::scheduler::{Scheduler, SchedulerConfig};

    const DOMAINS: usize = 20;
    const TICKS: u64 = 15;
    let url = fresh_database("sched").await;
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicU64::new(
        u64::try_from(T0).unwrap(),
    )));
    let seen: Seen = Arc::default();
    let observer = Store::open(&url).await.unwrap();
    for i in 0..DOMAINS {
        observer
            .add_subscription(&format!("s{i:02}.example"), "email", "x@example.org", T0)
            .await
            .unwrap();
    }
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for (name, seed) in [("a", 1), ("b", 2)] {
        let store = Store::open(&url).await.unwrap();
        let mut c = SchedulerConfig::from_config(&Config::defaults());
        c.instance = name.into();
        c.interval = Duration::from_secs(900);
        c.jitter = Duration::ZERO;
        c.workers = 4;
        c.circuits_per_minute = 600;
        c.check_deadline = Duration::from_secs(60);
        c.tick = Duration::from_millis(10);
        let runner = Arc::new(Recorder {
            name,
            clock: clock.clone(),
            seen: seen.clone(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        let scheduler = Scheduler::new(
            store,
            runner,
            Arc::new(Metrics::new()),
            clock.clone(),
            Arc::new(SeededRandom::new(seed)),
            c,
            Arc::new(tokio::sync::Notify::new()),
        );
        tasks.push(tokio::spawn(scheduler.run(
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        )));
    }
    for tick in 0..TICKS {
        let now = T0 + i64::try_from(tick).unwrap() * 900;
        let started = std::time::Instant::now();
        // Every due check ran and was recorded (none overdue at `now`).
        loop {
            let stats = observer.stats(now).await.unwrap();
            if stats.overdue == 0
                && seen.lock().unwrap().len() >= DOMAINS * usize::try_from(tick + 1).unwrap()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "tick {tick}: {} overdue",
                stats.overdue
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        clock.0.fetch_add(900, std::sync::atomic::Ordering::SeqCst);
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let mut slots = BTreeMap::<(String, u64), Vec<&str>>::new();
    for (who, domain, at) in &seen {
        slots.entry((domain.clone(), *at)).or_default().push(who);
    }
    let twice: Vec<_> = slots.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "run twice: {twice:?}");
    assert_eq!(slots.len(), DOMAINS * usize::try_from(TICKS).unwrap());
    let by: BTreeSet<&str> = seen.iter().map(|(w, _, _)| *w).collect();
    assert_eq!(by.len(), 2, "both schedulers ran checks");
}
