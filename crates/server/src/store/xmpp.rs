//! The store's queries for the XMPP component (issue 10, schema version 10, `docs/xmpp.md`).
//!
//! A PubSub node is a row of `domains` (named by the A-label). Nodes are paged in SQL with
//! keyset conditions (`domain > $after`), never loaded all at once: there may be a hundred
//! thousand. XMPP subscriptions are rows of `subscriptions` with channel `xmpp-pubsub` or
//! `xmpp-chat` and the subscriber's bare JID as the address; they are added with
//! [`Store::add_subscription`] (confirmed at once: the XMPP server authenticated the sender)
//! and removed with [`Store::remove_subscription`] (the row and its pending deliveries).

use super::db::{Row, Tx};
use super::{AlertRecord, Store, StoreError};

/// Which page of nodes (domains, in name order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePageQuery {
    /// `max` nodes from position `index` (0-based).
    From {
        /// The position of the first node.
        index: u64,
        /// The page size.
        max: u32,
    },
    /// `max` nodes after node `after`.
    After {
        /// The last node of the previous page.
        after: String,
        /// The page size.
        max: u32,
    },
    /// `max` nodes before node `before`; `None`: the last page.
    Before {
        /// The first node of the next page.
        before: Option<String>,
        /// The page size.
        max: u32,
    },
}

/// One page of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePage {
    /// Domains in ascending order.
    pub nodes: Vec<String>,
    /// The position of the first one (0-based).
    pub first_index: u64,
    /// How many domains there are.
    pub count: u64,
}

fn count(tx: &mut dyn Tx, sql: &str, params: &[super::db::Val]) -> Result<u64, StoreError> {
    let rows = tx.query(sql, params)?;
    Ok(rows
        .first()
        .and_then(|r| r.int(0))
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}

fn names(rows: &[Row]) -> Vec<String> {
    rows.iter().filter_map(|r| r.text(0)).collect()
}

fn exists(tx: &mut dyn Tx, domain: &str) -> Result<bool, StoreError> {
    Ok(count(
        tx,
        "SELECT COUNT(*) FROM domains WHERE domain = $1",
        &[domain.into()],
    )? > 0)
}

fn page_nodes(tx: &mut dyn Tx, q: &NodePageQuery) -> Result<Option<NodePage>, StoreError> {
    let total = count(tx, "SELECT COUNT(*) FROM domains", &[])?;
    let page = match q {
        NodePageQuery::From { index, max } => {
            let offset = i64::try_from(*index).unwrap_or(i64::MAX);
            let rows = tx.query(
                "SELECT domain FROM domains ORDER BY domain LIMIT $1 OFFSET $2",
                &[i64::from(*max).into(), offset.into()],
            )?;
            NodePage {
                nodes: names(&rows),
                first_index: *index,
                count: total,
            }
        }
        NodePageQuery::After { after, max } => {
            if !exists(tx, after)? {
                return Ok(None);
            }
            let rows = tx.query(
                "SELECT domain FROM domains WHERE domain > $1 ORDER BY domain LIMIT $2",
                &[after.as_str().into(), i64::from(*max).into()],
            )?;
            let before_first = count(
                tx,
                "SELECT COUNT(*) FROM domains WHERE domain <= $1",
                &[after.as_str().into()],
            )?;
            NodePage {
                nodes: names(&rows),
                first_index: before_first,
                count: total,
            }
        }
        NodePageQuery::Before { before, max } => {
            let rows = match before {
                Some(b) => {
                    if !exists(tx, b)? {
                        return Ok(None);
                    }
                    tx.query(
                        "SELECT domain FROM domains WHERE domain < $1 ORDER BY domain DESC LIMIT $2",
                        &[b.as_str().into(), i64::from(*max).into()],
                    )?
                }
                None => tx.query(
                    "SELECT domain FROM domains ORDER BY domain DESC LIMIT $1",
                    &[i64::from(*max).into()],
                )?,
            };
            let mut nodes = names(&rows);
            nodes.reverse();
            let first_index = match nodes.first() {
                Some(f) => count(
                    tx,
                    "SELECT COUNT(*) FROM domains WHERE domain < $1",
                    &[f.as_str().into()],
                )?,
                None => 0,
            };
            NodePage {
                nodes,
                first_index,
                count: total,
            }
        }
    };
    Ok(Some(page))
}

fn xmpp_subscriptions_of(
    tx: &mut dyn Tx,
    jid: &str,
    limit: u32,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = tx.query(
        "SELECT channel, domain FROM subscriptions \
         WHERE address = $1 AND channel IN ('xmpp-pubsub', 'xmpp-chat') \
         ORDER BY domain, channel LIMIT $2",
        &[jid.into(), i64::from(limit).into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| (r.text(0).unwrap_or_default(), r.text(1).unwrap_or_default()))
        .collect())
}

fn last_alert(tx: &mut dyn Tx, domain: &str) -> Result<Option<AlertRecord>, StoreError> {
    let rows = tx.query(
        "SELECT id, incident_id, domain, condition, kind, audience, opened_at, at, check_id, detail, \
         evidence_id FROM alerts WHERE domain = $1 AND audience = 'subscribers' AND condition <> 'digest' \
         ORDER BY at DESC, id DESC LIMIT 1",
        &[domain.into()],
    )?;
    Ok(rows.first().map(|r| AlertRecord {
        id: r.int(0).unwrap_or(0),
        incident_id: r.int(1).unwrap_or(0),
        domain: r.text(2).unwrap_or_default(),
        condition: r.text(3).unwrap_or_default(),
        kind: r.text(4).unwrap_or_default(),
        audience: r.text(5).unwrap_or_default(),
        opened_at: r.int(6).unwrap_or(0),
        at: r.int(7).unwrap_or(0),
        check_id: r.int(8),
        detail: r.text(9),
        evidence_id: r.int(10),
    }))
}

impl Store {
    /// Whether `domain` (already normalised) is known: a PubSub node exists.
    pub async fn xmpp_node_exists(&self, domain: &str) -> Result<bool, StoreError> {
        let domain = domain.to_owned();
        self.tx(move |tx| exists(tx, &domain)).await
    }

    /// One page of PubSub nodes (domains in name order) with the total count; `None` when
    /// the node named by `after`/`before` does not exist. Paged in SQL.
    pub async fn xmpp_page_nodes(
        &self,
        query: NodePageQuery,
    ) -> Result<Option<NodePage>, StoreError> {
        self.tx(move |tx| page_nodes(tx, &query)).await
    }

    /// The XMPP subscriptions of bare `jid`: (channel, domain), by domain, at most `limit`.
    pub async fn xmpp_subscriptions_of(
        &self,
        jid: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let jid = jid.to_owned();
        self.tx(move |tx| xmpp_subscriptions_of(tx, &jid, limit))
            .await
    }

    /// The newest subscribers' alert of `domain` (the last item of its node); daily digests
    /// (condition `digest`, schema version 9) are not items.
    pub async fn xmpp_last_alert(&self, domain: &str) -> Result<Option<AlertRecord>, StoreError> {
        let domain = domain.to_owned();
        self.tx(move |tx| last_alert(tx, &domain)).await
    }
}
