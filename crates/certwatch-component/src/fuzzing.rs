//! The function the `component_stream` fuzz target and the corpus replay test call: bytes
//! from the XMPP server after an accepted handshake, through the stream, the framer and the
//! stanza handler (with a small in-memory store). It must never panic, and its outcome must
//! not depend on how the bytes were split into reads.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;

use crate::handler::{
    Channel, Command, ComponentStore, Handler, HandlerConfig, LastItem, NodePage, NodeStatus,
    PageQuery,
};
use crate::stream::{ComponentStream, Event};
use crate::xml::Limits;

/// Runs `chunks` (the server's bytes after `<handshake/>`, read by read) through a component
/// `fuzz.example` and returns what it did: every stanza it would send, every store command,
/// and how the stream ended.
pub fn stream_bytes(chunks: &[&[u8]]) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = ComponentStream::new("fuzz.example", "secret", Limits::default());
    let header: &[u8] = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='fuzz'><handshake/>";
    if s.receive(header).is_err() {
        out.push("handshake failed".into());
        return out;
    }
    s.take_output();
    let store = MemStore::default();
    let mut handler = Handler::new(HandlerConfig::new("fuzz.example", "https://fuzz.example"));
    for chunk in chunks {
        let (events, end) = s.receive_all(chunk);
        for ev in events {
            let o = match ev {
                Event::Stanza(st) => block_on(handler.handle(&st, 0, &store)),
                Event::Rejected(top, why) => handler.rejected(&top, why, 0),
                Event::Authenticated => continue,
            };
            store.apply(&o.commands);
            out.extend(o.commands.iter().map(|c| format!("{c:?}")));
            out.extend(o.stanzas.iter().map(crate::xml::Element::to_stanza));
        }
        if let Some(e) = end {
            out.push(format!("end: {e}"));
            break;
        }
    }
    // Output is a stream error and/or the close at most; both depend only on the outcome.
    out.push(String::from_utf8_lossy(&s.take_output()).into_owned());
    out
}

/// Polls a future that never waits (the in-memory store's) to completion.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Default)]
struct MemStore {
    subs: Mutex<BTreeSet<(String, Channel, String)>>,
}

impl MemStore {
    fn apply(&self, commands: &[Command]) {
        let mut subs = self
            .subs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in commands {
            match c {
                Command::Subscribe { node, channel, jid } => {
                    subs.insert((jid.clone(), *channel, node.clone()));
                }
                Command::Unsubscribe { node, channel, jid } => {
                    subs.remove(&(jid.clone(), *channel, node.clone()));
                }
            }
        }
    }

    fn nodes(&self) -> Vec<String> {
        let subs = self
            .subs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let set: BTreeSet<String> = subs.iter().map(|(_, _, n)| n.clone()).collect();
        set.into_iter().collect()
    }
}

impl ComponentStore for MemStore {
    type Error = std::convert::Infallible;

    fn normalise_node(&self, raw: &str) -> Option<String> {
        let n = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !n.is_empty()
            && n.len() <= 253
            && n.contains('.')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        ok.then_some(n)
    }

    async fn node_exists(&self, node: &str) -> Result<bool, Self::Error> {
        Ok(self.nodes().iter().any(|n| n == node))
    }

    async fn page_nodes(&self, q: &PageQuery) -> Result<Option<NodePage>, Self::Error> {
        let all = self.nodes();
        let count = all.len() as u64;
        let (start, max) = match q {
            PageQuery::From { index, max } => (usize::try_from(*index).unwrap_or(usize::MAX), *max),
            PageQuery::After { after, max } => match all.iter().position(|n| n == after) {
                Some(i) => (i + 1, *max),
                None => return Ok(None),
            },
            PageQuery::Before { before, max } => {
                let end = match before {
                    None => all.len(),
                    Some(b) => match all.iter().position(|n| n == b) {
                        Some(i) => i,
                        None => return Ok(None),
                    },
                };
                let m = usize::try_from(*max).unwrap_or(usize::MAX);
                (
                    end.saturating_sub(m),
                    u32::try_from(m.min(end)).unwrap_or(0),
                )
            }
        };
        let nodes = all
            .into_iter()
            .skip(start)
            .take(usize::try_from(max).unwrap_or(0))
            .collect();
        Ok(Some(NodePage {
            nodes,
            first_index: start as u64,
            count,
        }))
    }

    async fn subscriptions_of(
        &self,
        jid: &str,
        limit: u32,
    ) -> Result<Vec<(Channel, String)>, Self::Error> {
        let subs = self
            .subs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(subs
            .iter()
            .filter(|(j, _, _)| j == jid)
            .map(|(_, c, n)| (*c, n.clone()))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect())
    }

    async fn status(&self, node: &str) -> Result<Option<NodeStatus>, Self::Error> {
        Ok(self
            .nodes()
            .iter()
            .any(|n| n == node)
            .then_some(NodeStatus {
                verdict: None,
                checked_at: None,
                watched: true,
            }))
    }

    async fn last_item(&self, _node: &str) -> Result<Option<LastItem>, Self::Error> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::stream_bytes;

    proptest::proptest! {
        /// What the fuzz target checks, on stanza-shaped input (a stand-in for fuzzing runs,
        /// which need their own build directory).
        #[test]
        fn the_outcome_does_not_depend_on_the_read_size(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "<message type='chat' from='a@x.example/r' to='fuzz.example'>", "</message>",
                "<body>", "</body>", "subscribe a.example", "unsubscribe a.example", "list", "help",
                "<iq type='get' id='1' from='a@x.example/r' to='fuzz.example'>", "<iq type='set' id='2' from='b@x.example/r' to='fuzz.example'>", "</iq>",
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>", "</pubsub>",
                "<subscribe node='a.example' jid='b@x.example'/>", "<items node='a.example'/>",
                "<query xmlns='http://jabber.org/protocol/disco#items'>", "</query>",
                "<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><after>a.example</after></set>",
                "<presence type='subscribe' from='a@x.example' to='fuzz.example'/>",
                "&amp;", "&bad;", "<x:y/>", "<a>", "</a>", "<!--", "'", ">", " ", "\u{e9}",
            ]), 0..30),
            size in 1usize..64,
        ) {
            let bytes: Vec<u8> = parts.concat().into_bytes();
            let whole = stream_bytes(&[&bytes]);
            let chunked = stream_bytes(&bytes.chunks(size).collect::<Vec<_>>());
            proptest::prop_assert_eq!(chunked, whole);
        }
    }
}
