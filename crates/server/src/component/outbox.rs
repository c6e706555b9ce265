//! The XMPP outbox pass: `xmpp-pubsub` deliveries become PubSub notifications (an Atom entry
//! in `<message><event><items><item>`, XEP-0060 §7.1.2: the service publishes), `xmpp-chat`
//! deliveries chat messages. Each message's id is the delivery id, so a client can
//! deduplicate a resend. A delivery is marked delivered only after its stanza was written to
//! an up link; nothing is claimed while the link is down.

use std::sync::Arc;

use certwatch_component::handler::Channel;

use super::adapter::notice_of;
use super::{Link, XmppConfig};
use crate::clock::Clock;
use crate::notify::webhook::OutboxPass;
use crate::store::{RetryPolicy, Store, StoreError};

/// One pass: claims up to `max` due deliveries of each XMPP channel for `instance` (leased
/// for `lease` seconds) and sends them over `link` from component `jid`, with links under
/// `public_url`. A delivery whose stanza could not be written is retried after `retry`'s
/// backoff (the same id).
#[allow(clippy::too_many_arguments)]
pub async fn run_xmpp_once(
    store: &Store,
    link: &Link,
    jid: &str,
    instance: &str,
    now: i64,
    lease: i64,
    max: u32,
    retry: RetryPolicy,
    public_url: &str,
) -> Result<OutboxPass, StoreError> {
    let mut pass = OutboxPass::default();
    for channel in [Channel::PubSub, Channel::Chat] {
        if !link.is_up() {
            break;
        }
        let claimed = store
            .claim_channel_deliveries(channel.as_str(), instance, now, lease, max)
            .await?;
        for d in claimed {
            pass.claimed += 1;
            let notice = notice_of(&d.alert, &d.id, public_url);
            let stanza = match channel {
                Channel::PubSub => notice.pubsub_event(jid, &d.address),
                Channel::Chat => notice.chat_message(jid, &d.address),
            };
            if link.send(stanza).await {
                store.mark_delivered(&d.id, now).await?;
                pass.delivered += 1;
            } else {
                tracing::warn!(delivery = %d.id, "XMPP delivery not written: the link is down");
                store
                    .mark_attempt_failed(&d.id, now, "the XMPP component link is down", retry)
                    .await?;
                pass.failed += 1;
            }
        }
    }
    Ok(pass)
}

/// Runs passes every `config.outbox_interval` until `stop` turns `true` (the outbox worker's
/// [`crate::notify::worker::channel_loop`], as for webhooks and email).
pub async fn run(
    store: Store,
    link: Link,
    clock: Arc<dyn Clock>,
    config: Arc<XmppConfig>,
    instance: String,
    retry: RetryPolicy,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    crate::notify::worker::channel_loop("xmpp", clock, config.outbox_interval, stop, |at| {
        let (store, link, config, instance) = (&store, &link, &config, &instance);
        async move {
            run_xmpp_once(
                store,
                link,
                &config.component_jid,
                instance,
                at,
                300,
                20,
                retry,
                &config.public_url,
            )
            .await
        }
    })
    .await;
}
