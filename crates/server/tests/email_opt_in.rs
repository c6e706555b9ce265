//! Double opt-in and unsubscribe tokens (the store side of email subscriptions): nothing is
//! active before the confirmation link is followed; forged, replayed and expired links do
//! nothing; an unsubscribe token deletes its own subscription only.

use certwatch_server::store::Store;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

#[tokio::test]
async fn double_opt_in_then_unsubscribe_deletes_the_address() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let alice = store
        .add_opt_in_subscription("example.org", "email", "alice@example.net", T0, DAY)
        .await
        .unwrap()
        .unwrap();
    let bob = store
        .add_opt_in_subscription("example.org", "email", "bob@example.net", T0, DAY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.confirm.len(), 32);
    assert_ne!(alice.confirm, bob.confirm);
    assert_ne!(alice.confirm, alice.unsubscribe);
    // Not confirmed: inactive, the domain is not watched.
    let subs = store.subscriptions(Some("example.org"), 10).await.unwrap();
    assert!(subs.iter().all(|s| s.confirmed_at.is_none()));
    assert!(
        store
            .claim_due("w", T0 + 1, 60, 1)
            .await
            .unwrap()
            .is_empty()
    );

    // A forged token does nothing; an unsubscribe token is not a confirmation token.
    assert_eq!(
        store
            .confirm_by_token(&"0".repeat(32), T0 + 5)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .confirm_by_token(&alice.unsubscribe, T0 + 5)
            .await
            .unwrap(),
        None
    );
    // The real link confirms alice, once.
    let got = store
        .confirm_by_token(&alice.confirm, T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        got,
        Some((
            "example.org".into(),
            "email".into(),
            "alice@example.net".into()
        ))
    );
    assert_eq!(
        store
            .confirm_by_token(&alice.confirm, T0 + 11)
            .await
            .unwrap(),
        None,
        "replay"
    );
    // Bob's link, followed too late, does nothing.
    assert_eq!(
        store
            .confirm_by_token(&bob.confirm, T0 + DAY + 1)
            .await
            .unwrap(),
        None
    );
    let subs = store.subscriptions(Some("example.org"), 10).await.unwrap();
    let confirmed: Vec<&str> = subs
        .iter()
        .filter(|s| s.confirmed_at.is_some())
        .map(|s| s.address.as_str())
        .collect();
    assert_eq!(confirmed, vec!["alice@example.net"]);
    assert_eq!(store.claim_due("w", T0 + 12, 60, 1).await.unwrap().len(), 1);
    // Subscribing again once confirmed sends nothing new.
    assert!(
        store
            .add_opt_in_subscription("example.org", "email", "alice@example.net", T0, DAY)
            .await
            .unwrap()
            .is_none()
    );

    // Bob's unsubscribe token deletes bob only; alice's deletes alice (the row is gone).
    assert_eq!(
        store.unsubscribe_by_token(&"f".repeat(32)).await.unwrap(),
        None
    );
    assert_eq!(
        store.unsubscribe_by_token(&bob.unsubscribe).await.unwrap(),
        Some((
            "example.org".into(),
            "email".into(),
            "bob@example.net".into()
        ))
    );
    let left: Vec<String> = store
        .subscriptions(Some("example.org"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.address)
        .collect();
    assert_eq!(left, vec!["alice@example.net".to_owned()]);
    assert!(
        store
            .unsubscribe_by_token(&alice.unsubscribe)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.subscriptions(None, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .unsubscribe_by_token(&alice.unsubscribe)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_unsubscribe_token_is_stable_and_per_subscription() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let t = store
        .add_opt_in_subscription("example.org", "email", "carol@example.net", T0, DAY)
        .await
        .unwrap()
        .unwrap();
    let again = store
        .unsubscribe_token("example.org", "email", "carol@example.net")
        .await
        .unwrap();
    assert_eq!(
        t.unsubscribe, again,
        "every message carries the same working link"
    );
    let other = store
        .unsubscribe_token("example.org", "email", "dave@example.net")
        .await
        .unwrap();
    assert_ne!(other, again);
    assert_eq!(store.unsubscribe_by_token(&other).await.unwrap(), None);
    assert!(store.unsubscribe_by_token(&again).await.unwrap().is_some());
}
