//! The sweep of opt-ins never confirmed in time and the per-domain cap's count on PostgreSQL
//! (interop: the `postgres` part of scripts/interop-env), as `subscription_cleanup.rs`
//! asserts on SQLite.
#![cfg(feature = "interop")]

use certwatch_server::store::Store;
use certwatch_testkit::Interop;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn admin_url() -> String {
    Interop::require()
        .str("postgres.url")
        .expect("postgres.url in env.json")
        .to_owned()
}

fn fresh_database() -> String {
    let url = admin_url();
    let name = format!(
        "cw_subclean_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let (admin, create) = (url.clone(), name.clone());
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connect to postgres.url");
        c.batch_execute(&format!("CREATE DATABASE {create}"))
            .unwrap();
    })
    .join()
    .unwrap();
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

fn drop_database(url: &str) {
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let admin = admin_url();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    })
    .join()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_subscriptions_expire_on_postgres() {
    let url = fresh_database();
    let store = Store::open(&url).await.unwrap();
    store
        .add_opt_in_subscription("example.org", "email", "mallory@example.net", T0, 3600)
        .await
        .unwrap()
        .unwrap();
    let alice = store
        .add_opt_in_subscription("example.org", "email", "alice@example.net", T0, 3600)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .confirm_by_token(&alice.confirm, T0)
            .await
            .unwrap()
            .is_some()
    );
    store
        .add_pending_subscription("example.org", "webhook", "https://h.example/x", SECRET, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .live_subscription_count("example.org", T0)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.sweep_expired_subscriptions(T0 + 3600).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .live_subscription_count("example.org", T0 + 3601)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.sweep_expired_subscriptions(T0 + 3601).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .sweep_expired_subscriptions(T0 + DAY + 1)
            .await
            .unwrap(),
        1
    );
    let left = store.subscriptions(Some("example.org"), 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].address, "alice@example.net");
    drop(store);
    drop_database(&url);
}
