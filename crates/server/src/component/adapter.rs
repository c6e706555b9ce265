//! The store behind the stanza handler's [`ComponentStore`] trait.

use std::sync::atomic::{AtomicI64, Ordering};

use certwatch_component::handler::{
    Channel, ComponentStore, LastItem, NodePage, NodeStatus, PageQuery,
};
use certwatch_component::notice::Notice;

use crate::store::{AlertRecord, NodePageQuery, Store, StoreError, normalise_domain};

/// The store as the handler sees it: queries only.
#[derive(Debug)]
pub struct StoreAdapter {
    store: Store,
    jid: String,
    public_url: String,
    now: AtomicI64,
}

impl StoreAdapter {
    /// The adapter for component `jid`, with links under `public_url`.
    pub fn new(store: Store, jid: String, public_url: &str) -> StoreAdapter {
        StoreAdapter {
            store,
            jid,
            public_url: public_url.trim_end_matches('/').to_owned(),
            now: AtomicI64::new(0),
        }
    }

    /// The time (Unix seconds) the watch state of `status` is judged at.
    pub fn set_now(&self, now: i64) {
        self.now.store(now, Ordering::Relaxed);
    }
}

/// The notice of a delivery's (or a node's last) alert: the domain page, and the evidence
/// bundle's URL (as in webhooks and mails) when the alert has one.
pub fn notice_of(alert: &AlertRecord, delivery_id: &str, public_url: &str) -> Notice {
    let base = public_url.trim_end_matches('/');
    Notice {
        delivery_id: delivery_id.to_owned(),
        alert_id: alert.id,
        domain: alert.domain.clone(),
        condition: alert.condition.clone(),
        kind: alert.kind.clone(),
        detail: alert.detail.clone(),
        at: alert.at,
        link: format!("{base}/domains/{}", alert.domain),
        evidence: alert
            .evidence_id
            .map(|id| format!("{base}/domains/{}/evidence/{id}.json", alert.domain)),
    }
}

impl ComponentStore for StoreAdapter {
    type Error = StoreError;

    fn normalise_node(&self, raw: &str) -> Option<String> {
        normalise_domain(raw).ok()
    }

    async fn node_exists(&self, node: &str) -> Result<bool, StoreError> {
        self.store.xmpp_node_exists(node).await
    }

    async fn page_nodes(&self, query: &PageQuery) -> Result<Option<NodePage>, StoreError> {
        let q = match query {
            PageQuery::From { index, max } => NodePageQuery::From {
                index: *index,
                max: *max,
            },
            PageQuery::After { after, max } => NodePageQuery::After {
                after: after.clone(),
                max: *max,
            },
            PageQuery::Before { before, max } => NodePageQuery::Before {
                before: before.clone(),
                max: *max,
            },
        };
        Ok(self.store.xmpp_page_nodes(q).await?.map(|p| NodePage {
            nodes: p.nodes,
            first_index: p.first_index,
            count: p.count,
        }))
    }

    async fn subscriptions_of(
        &self,
        jid: &str,
        limit: u32,
    ) -> Result<Vec<(Channel, String)>, StoreError> {
        Ok(self
            .store
            .xmpp_subscriptions_of(jid, limit)
            .await?
            .into_iter()
            .filter_map(|(c, d)| Channel::parse(&c).map(|c| (c, d)))
            .collect())
    }

    async fn status(&self, node: &str) -> Result<Option<NodeStatus>, StoreError> {
        let now = self.now.load(Ordering::Relaxed);
        Ok(self
            .store
            .domain_view(node, now)
            .await?
            .map(|v| NodeStatus {
                verdict: v.last_verdict.map(|v| v.as_str().to_owned()),
                checked_at: v.last_checked_at,
                watched: v.watch.is_watched(),
            }))
    }

    async fn last_item(&self, node: &str) -> Result<Option<LastItem>, StoreError> {
        Ok(self.store.xmpp_last_alert(node).await?.map(|a| {
            let n = notice_of(&a, "", &self.public_url);
            LastItem {
                id: n.item_id(),
                payload: n.atom_entry(&self.jid),
            }
        }))
    }
}
