//! The scheduler on tokio's paused clock, with an injected check function (no network):
//! due checks run on their interval, a check still running when its next slot falls due makes
//! that slot skipped (never two at once), the cap on new circuits per minute holds, nothing
//! runs before the transport is ready, and an on-demand request wakes the workers at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certwatch::Report;
use certwatch_server::app::AppState;
use certwatch_server::clock::TokioClock;
use certwatch_server::config::Config;
use certwatch_server::metrics::Metrics;
use certwatch_server::random::SeededRandom;
use certwatch_server::scheduler::{CheckFuture, CheckRunner, Scheduler, SchedulerConfig};
use certwatch_server::store::Store;
use tokio::sync::Notify;
use tokio::time::Instant;

const T0: u64 = 1_800_000_000;

fn report(domain: &str) -> Report {
    let json = format!(
        r#"{{"schema_version":1,"domain":"{domain}","checked_at":"2027-01-15T08:00:00Z","verdict":"match",
        "endpoints":[],"confirmation":null,"setup":{{"zone_lines":[],"advice":[]}},"warnings":[]}}"#
    );
    serde_json::from_str(&json).unwrap()
}

/// Records every check's start (seconds since the test began) and concurrency per domain.
#[derive(Debug)]
struct Fake {
    start: Instant,
    duration: Duration,
    ready: AtomicBool,
    starts: Mutex<Vec<(String, u64)>>,
    running: Mutex<HashMap<String, u32>>,
    max_concurrent_per_domain: Mutex<u32>,
}

impl Fake {
    fn new(duration: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            start: Instant::now(),
            duration,
            ready: AtomicBool::new(true),
            starts: Mutex::default(),
            running: Mutex::default(),
            max_concurrent_per_domain: Mutex::new(0),
        })
    }
    fn starts_of(&self, domain: &str) -> Vec<u64> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, _)| d == domain)
            .map(|(_, t)| *t)
            .collect()
    }
    fn all_starts(&self) -> Vec<u64> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| *t)
            .collect()
    }
}

struct Runner(Arc<Fake>);

impl CheckRunner for Runner {
    fn ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }
    fn check(&self, domain: String) -> CheckFuture {
        let fake = self.0.clone();
        Box::pin(async move {
            let t = fake.start.elapsed().as_secs();
            fake.starts.lock().unwrap().push((domain.clone(), t));
            {
                let mut r = fake.running.lock().unwrap();
                let n = r.entry(domain.clone()).or_default();
                *n += 1;
                let mut m = fake.max_concurrent_per_domain.lock().unwrap();
                *m = (*m).max(*n);
            }
            tokio::time::sleep(fake.duration).await;
            *fake.running.lock().unwrap().get_mut(&domain).unwrap() -= 1;
            Ok(report(&domain).into())
        })
    }
}

struct Setup {
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<TokioClock>,
    wake: Arc<Notify>,
}

async fn setup() -> Setup {
    Setup {
        store: Store::open("sqlite::memory:").await.unwrap(),
        metrics: Arc::new(Metrics::new()),
        clock: Arc::new(TokioClock::starting_at(T0)),
        wake: Arc::new(Notify::new()),
    }
}

fn config(cap: u32, workers: u32, deadline: Duration) -> SchedulerConfig {
    let mut c = SchedulerConfig::from_config(&Config::defaults());
    c.instance = "test".into();
    c.interval = Duration::from_secs(900);
    c.jitter = Duration::ZERO;
    c.circuits_per_minute = cap;
    c.workers = workers;
    c.check_deadline = deadline;
    c
}

/// Runs the scheduler for `secs` of paused time.
async fn run_for(s: &Setup, fake: &Arc<Fake>, config: SchedulerConfig, secs: u64) {
    let scheduler = Scheduler::new(
        s.store.clone(),
        Arc::new(Runner(fake.clone())),
        s.metrics.clone(),
        s.clock.clone(),
        Arc::new(SeededRandom::new(1)),
        config,
        s.wake.clone(),
    );
    scheduler
        .run(
            tokio::time::sleep(Duration::from_secs(secs)),
            Duration::ZERO,
        )
        .await;
}

async fn subscribe(store: &Store, domain: &str) {
    store
        .add_subscription(
            domain,
            "email",
            "op@example.org",
            i64::try_from(T0).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn due_checks_run_every_interval() {
    let s = setup().await;
    for d in ["a.example", "b.example", "c.example"] {
        subscribe(&s.store, d).await;
    }
    let fake = Fake::new(Duration::from_secs(5));
    run_for(&s, &fake, config(60, 4, Duration::from_secs(300)), 3599).await;
    for d in ["a.example", "b.example", "c.example"] {
        let starts = fake.starts_of(d);
        assert_eq!(starts.len(), 4, "{d}: {starts:?}");
        for (i, t) in starts.iter().enumerate() {
            let slot = 900 * u64::try_from(i).unwrap();
            assert!(
                (slot..=slot + 2).contains(t),
                "{d}: start {i} at {t}, slot {slot}"
            );
        }
    }
    assert_eq!(s.metrics.checks_with(certwatch::Verdict::Match), 12);
    assert_eq!(s.metrics.skipped(), 0);
    let view = s
        .store
        .domain_view("a.example", i64::try_from(T0).unwrap() + 3599)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.next_due_at, Some(i64::try_from(T0).unwrap() + 3600));
    assert_eq!(s.store.history("a.example", 100).await.unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_check_still_running_makes_its_next_slots_skipped() {
    let s = setup().await;
    subscribe(&s.store, "slow.example").await;
    // Each check takes 40 minutes; the interval is 15.
    let fake = Fake::new(Duration::from_secs(2400));
    run_for(&s, &fake, config(60, 4, Duration::from_secs(3600)), 7200).await;
    let starts = fake.starts_of("slow.example");
    assert_eq!(starts.len(), 3, "{starts:?}");
    // 0; finished at 2400 with the slots 900 and 1800 skipped: next at 2700; then 5400.
    for (t, want) in starts.iter().zip([0u64, 2700, 5400]) {
        assert!(
            (want..=want + 2).contains(t),
            "start {t}, expected {want}: {starts:?}"
        );
    }
    assert_eq!(*fake.max_concurrent_per_domain.lock().unwrap(), 1);
    assert_eq!(s.metrics.skipped(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_circuit_cap_spreads_checks_over_minutes() {
    let s = setup().await;
    for i in 0..20 {
        subscribe(&s.store, &format!("d{i:02}.example")).await;
    }
    let fake = Fake::new(Duration::from_secs(1));
    let metrics = s.metrics.clone();
    let probe = tokio::spawn(async move {
        // Mid-run the cap holds work back: the scheduler reports its lag.
        tokio::time::sleep(Duration::from_secs(150)).await;
        metrics.health().scheduler_lag_seconds
    });
    run_for(&s, &fake, config(6, 20, Duration::from_secs(300)), 299).await;
    let lag = probe.await.unwrap();
    assert!((100..=150).contains(&lag), "lag {lag}");
    let starts = fake.all_starts();
    assert_eq!(starts.len(), 20, "{starts:?}");
    // In any 60 s window, at most 6 starts.
    for &t in &starts {
        let n = starts.iter().filter(|&&u| u >= t && u < t + 60).count();
        assert!(n <= 6, "{n} starts in [{t}, {}): {starts:?}", t + 60);
    }
    // And the cap is used, not starved: 6 per minute until all 20 ran.
    let per_minute: Vec<usize> = (0..4)
        .map(|m| starts.iter().filter(|&&u| u / 60 == m).count())
        .collect();
    assert_eq!(per_minute, vec![6, 6, 6, 2], "{starts:?}");
    assert_eq!(s.metrics.circuits_total(), 20);
}

#[tokio::test(start_paused = true)]
async fn nothing_runs_before_the_transport_is_ready_and_a_request_wakes_the_workers() {
    let s = setup().await;
    let fake = Fake::new(Duration::from_secs(1));
    fake.ready.store(false, Ordering::SeqCst);
    let state = AppState::new(
        s.store.clone(),
        Arc::new(Config::defaults()),
        s.metrics.clone(),
        s.clock.clone(),
        s.wake.clone(),
    );
    let ticket = state.checks.request("example.org").await.unwrap();
    let mut c = config(6, 2, Duration::from_secs(300));
    // A long tick: only the wake-up can start the check promptly.
    c.tick = Duration::from_secs(3600);
    let f2 = fake.clone();
    let sched = {
        let fake = fake.clone();
        let store = s.store.clone();
        let metrics = s.metrics.clone();
        let clock = s.clock.clone();
        let wake = s.wake.clone();
        tokio::spawn(async move {
            Scheduler::new(
                store,
                Arc::new(Runner(fake)),
                metrics,
                clock,
                Arc::new(SeededRandom::new(2)),
                c,
                wake,
            )
            .run(
                tokio::time::sleep(Duration::from_secs(7000)),
                Duration::ZERO,
            )
            .await;
        })
    };
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        f2.all_starts().is_empty(),
        "ran before the transport was ready"
    );
    assert_eq!(
        state.checks.state(&ticket.id).await.unwrap(),
        Some(certwatch_server::store::TicketState::Queued)
    );
    f2.ready.store(true, Ordering::SeqCst);
    // A new request wakes the scheduler (no tick for an hour).
    let again = state.checks.request("example.org").await.unwrap();
    assert_eq!(again.id, ticket.id);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(f2.all_starts(), vec![600]);
    match state.checks.state(&ticket.id).await.unwrap() {
        Some(certwatch_server::store::TicketState::Done(r)) => assert_eq!(r.domain, "example.org"),
        other => panic!("expected Done, got {other:?}"),
    }
    sched.abort();
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_next_checks_within_its_bound() {
    let s = setup().await;
    for i in 0..10 {
        subscribe(&s.store, &format!("j{i}.example")).await;
    }
    let fake = Fake::new(Duration::from_secs(1));
    let mut c = config(60, 10, Duration::from_secs(300));
    c.jitter = Duration::from_secs(60);
    run_for(&s, &fake, c, 1000).await;
    let mut second: Vec<u64> = Vec::new();
    for i in 0..10 {
        let starts = fake.starts_of(&format!("j{i}.example"));
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(starts[0] <= 2);
        // Slot 900, shifted by at most 60 s either way (plus the 1 s tick).
        assert!((840..=962).contains(&starts[1]), "{starts:?}");
        second.push(starts[1]);
    }
    second.sort_unstable();
    second.dedup();
    assert!(second.len() > 3, "jitter spreads the checks: {second:?}");
}
