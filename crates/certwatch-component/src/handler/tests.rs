//! Handler tests against an in-memory store.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::*;
use crate::stream::{ComponentStream, Event};
use crate::xml::Limits;

const SVC: &str = "cw.example";

#[derive(Default)]
struct Fake {
    nodes: BTreeSet<String>,
    subs: Mutex<BTreeSet<(String, Channel, String)>>,
    fail: bool,
}

#[derive(Debug)]
struct FakeError;

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fake failure")
    }
}

impl Fake {
    fn with_nodes(n: usize) -> Fake {
        Fake {
            nodes: (0..n).map(|i| format!("d{i:05}.example")).collect(),
            ..Fake::default()
        }
    }

    fn apply(&self, out: &Output) {
        let mut subs = self.subs.lock().unwrap();
        for c in &out.commands {
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
}

impl ComponentStore for Fake {
    type Error = FakeError;

    fn normalise_node(&self, raw: &str) -> Option<String> {
        let n = raw.trim().trim_end_matches('.').to_lowercase();
        (n.contains('.')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .then_some(n)
    }

    async fn node_exists(&self, node: &str) -> Result<bool, FakeError> {
        if self.fail {
            return Err(FakeError);
        }
        Ok(self.nodes.contains(node))
    }

    async fn page_nodes(&self, q: &PageQuery) -> Result<Option<NodePage>, FakeError> {
        let all: Vec<&String> = self.nodes.iter().collect();
        let count = all.len() as u64;
        let (start, max) = match q {
            PageQuery::From { index, max } => (*index as usize, *max as usize),
            PageQuery::After { after, max } => match all.iter().position(|n| *n == after) {
                Some(i) => (i + 1, *max as usize),
                None => return Ok(None),
            },
            PageQuery::Before { before, max } => {
                let end = match before {
                    None => all.len(),
                    Some(b) => match all.iter().position(|n| *n == b) {
                        Some(i) => i,
                        None => return Ok(None),
                    },
                };
                (end.saturating_sub(*max as usize), (*max as usize).min(end))
            }
        };
        let nodes: Vec<String> = all
            .iter()
            .skip(start)
            .take(max)
            .map(|s| (*s).clone())
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
    ) -> Result<Vec<(Channel, String)>, FakeError> {
        if self.fail {
            return Err(FakeError);
        }
        Ok(self
            .subs
            .lock()
            .unwrap()
            .iter()
            .filter(|(j, _, _)| j == jid)
            .map(|(_, c, n)| (*c, n.clone()))
            .take(limit as usize)
            .collect())
    }

    async fn status(&self, node: &str) -> Result<Option<NodeStatus>, FakeError> {
        Ok(self.nodes.contains(node).then(|| NodeStatus {
            verdict: Some("match".into()),
            checked_at: Some(1_700_000_000),
            watched: true,
        }))
    }

    async fn last_item(&self, node: &str) -> Result<Option<LastItem>, FakeError> {
        Ok(self.nodes.contains(node).then(|| LastItem {
            id: "alert-1".into(),
            payload: Element::new("entry", ns::ATOM),
        }))
    }
}

/// Parses one stanza through a real component stream.
fn parse(xml: &str) -> Element {
    let mut s = ComponentStream::new(SVC, "s", Limits::default());
    s.receive(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='i'>")
        .unwrap();
    s.receive(b"<handshake/>").unwrap();
    let ev = s.receive(xml.as_bytes()).unwrap();
    match ev.into_iter().next() {
        Some(Event::Stanza(e)) => e,
        other => panic!("{xml}: {other:?}"),
    }
}

fn handler() -> Handler {
    Handler::new(HandlerConfig::new(SVC, "https://cw.example/"))
}

fn run(h: &mut Handler, store: &Fake, xml: &str) -> Output {
    let out = block_on(h.handle(&parse(xml), 0, store));
    store.apply(&out);
    out
}

fn block_on<F: Future>(f: F) -> F::Output {
    // The fake's futures never wait: poll once with a no-op waker.
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the fake store never waits"),
    }
}

fn xml(out: &Output) -> String {
    out.stanzas.iter().map(Element::to_stanza).collect()
}

fn error_condition(out: &Output) -> Option<String> {
    let e = out.stanzas.first()?.child("error", ns::COMPONENT)?;
    e.children
        .iter()
        .find(|c| c.ns == ns::STANZAS && c.name != "text")
        .map(|c| format!("{}/{}", e.attr("type").unwrap_or(""), c.name))
}

#[test]
fn disco_info_names_the_service_and_the_bot() {
    let store = Fake::with_nodes(3);
    let out = run(
        &mut handler(),
        &store,
        "<iq type='get' id='1' from='a@x.example/r' to='cw.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let x = xml(&out);
    assert!(
        x.starts_with("<iq type='result' from='cw.example' to='a@x.example/r' id='1'>"),
        "{x}"
    );
    assert!(x.contains("<identity category='pubsub' type='service'"));
    assert!(x.contains("<identity category='client' type='bot'"));
    assert!(x.contains("var='http://jabber.org/protocol/rsm'"));
    assert!(x.contains("var='http://jabber.org/protocol/pubsub#subscribe'"));
    // A node: leaf; an unknown one: item-not-found.
    let out = run(
        &mut handler(),
        &store,
        "<iq type='get' id='2' from='a@x.example/r' to='cw.example'><query xmlns='http://jabber.org/protocol/disco#info' node='d00001.example'/></iq>",
    );
    assert!(xml(&out).contains("type='leaf'"));
    let out = run(
        &mut handler(),
        &store,
        "<iq type='get' id='3' from='a@x.example/r' to='cw.example'><query xmlns='http://jabber.org/protocol/disco#info' node='nope.example'/></iq>",
    );
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("cancel/item-not-found")
    );
}

fn items_page(h: &mut Handler, store: &Fake, set: &str) -> Output {
    run(
        h,
        store,
        &format!(
            "<iq type='get' id='p' from='a@x.example/r' to='cw.example'><query xmlns='http://jabber.org/protocol/disco#items'>{set}</query></iq>"
        ),
    )
}

fn page_nodes(out: &Output) -> Vec<String> {
    let q = out.stanzas[0].child("query", ns::DISCO_ITEMS).unwrap();
    q.children
        .iter()
        .filter(|c| c.name == "item")
        .map(|c| c.attr("node").unwrap().to_owned())
        .collect()
}

fn rsm(out: &Output, name: &str) -> Option<String> {
    let q = out.stanzas[0].child("query", ns::DISCO_ITEMS)?;
    Some(q.child("set", ns::RSM)?.child(name, ns::RSM)?.text.clone())
}

#[test]
fn disco_items_pages_with_rsm() {
    let store = Fake::with_nodes(120);
    let mut h = handler();
    // Without RSM: the first page (50), with a set saying how many there are.
    let out = items_page(&mut h, &store, "");
    assert_eq!(page_nodes(&out).len(), 50);
    assert_eq!(rsm(&out, "count").as_deref(), Some("120"));
    // max 10 after d00009: d00010..d00019, first index 10.
    let out = items_page(
        &mut h,
        &store,
        "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>d00009.example</after></set>",
    );
    let nodes = page_nodes(&out);
    assert_eq!(nodes.first().unwrap(), "d00010.example");
    assert_eq!(nodes.len(), 10);
    assert_eq!(rsm(&out, "last").as_deref(), Some("d00019.example"));
    let first = out.stanzas[0]
        .child("query", ns::DISCO_ITEMS)
        .unwrap()
        .child("set", ns::RSM)
        .unwrap()
        .child("first", ns::RSM)
        .unwrap();
    assert_eq!(first.attr("index"), Some("10"));
    // The last page: <before/>.
    let out = items_page(
        &mut h,
        &store,
        "<set xmlns='http://jabber.org/protocol/rsm'><max>7</max><before/></set>",
    );
    assert_eq!(page_nodes(&out).last().unwrap(), "d00119.example");
    assert_eq!(page_nodes(&out).len(), 7);
    // max 0: the count only.
    let out = items_page(
        &mut h,
        &store,
        "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>",
    );
    assert!(page_nodes(&out).is_empty());
    assert_eq!(rsm(&out, "count").as_deref(), Some("120"));
    // A huge max is capped.
    let out = items_page(
        &mut h,
        &store,
        "<set xmlns='http://jabber.org/protocol/rsm'><max>100000</max></set>",
    );
    assert_eq!(page_nodes(&out).len(), 50);
    // An unknown 'after' is item-not-found; a bad max is bad-request.
    let out = items_page(
        &mut h,
        &store,
        "<set xmlns='http://jabber.org/protocol/rsm'><after>zzz.example</after></set>",
    );
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("cancel/item-not-found")
    );
    let out = items_page(
        &mut h,
        &store,
        "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>",
    );
    assert_eq!(error_condition(&out).as_deref(), Some("modify/bad-request"));
}

#[test]
fn pubsub_subscribe_belongs_to_the_senders_bare_jid() {
    let store = Fake::with_nodes(2);
    let mut h = handler();
    let out = run(
        &mut h,
        &store,
        "<iq type='set' id='s' from='Alice@x.example/phone' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='D00001.example' jid='alice@x.example/phone'/></pubsub></iq>",
    );
    assert_eq!(
        out.commands,
        vec![Command::Subscribe {
            node: "d00001.example".into(),
            channel: Channel::PubSub,
            jid: "alice@x.example".into()
        }]
    );
    assert!(xml(&out).contains(
        "<subscription node='d00001.example' jid='alice@x.example' subscription='subscribed'/>"
    ));
    // Someone else's JID: bad-request + invalid-jid (XEP-0060 §6.1.3.1), no command.
    let out = run(
        &mut h,
        &store,
        "<iq type='set' id='s2' from='mallory@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='d00001.example' jid='alice@x.example'/></pubsub></iq>",
    );
    assert!(out.commands.is_empty());
    assert_eq!(error_condition(&out).as_deref(), Some("modify/bad-request"));
    assert!(xml(&out).contains("<invalid-jid xmlns='http://jabber.org/protocol/pubsub#errors'/>"));
    // Nor may mallory unsubscribe alice.
    let out = run(
        &mut h,
        &store,
        "<iq type='set' id='u' from='mallory@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='d00001.example' jid='alice@x.example'/></pubsub></iq>",
    );
    assert!(out.commands.is_empty());
    assert_eq!(error_condition(&out).as_deref(), Some("auth/forbidden"));
    // Subscriptions: alice sees hers, mallory none.
    let out = run(
        &mut h,
        &store,
        "<iq type='get' id='l' from='alice@x.example/other' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub></iq>",
    );
    assert!(xml(&out).contains("<subscription node='d00001.example' jid='alice@x.example'"));
    let out = run(
        &mut h,
        &store,
        "<iq type='get' id='l' from='mallory@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub></iq>",
    );
    assert!(!xml(&out).contains("<subscription "));
    // Alice unsubscribes; a second time she is not subscribed.
    let unsub = "<iq type='set' id='u' from='alice@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe node='d00001.example' jid='alice@x.example'/></pubsub></iq>";
    let out = run(&mut h, &store, unsub);
    assert_eq!(out.commands.len(), 1);
    assert!(store.subs.lock().unwrap().is_empty());
    let out = run(&mut h, &store, unsub);
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("cancel/unexpected-request")
    );
    assert!(xml(&out).contains("<not-subscribed"));
}

#[test]
fn items_return_the_last_item() {
    let store = Fake::with_nodes(1);
    let out = run(
        &mut handler(),
        &store,
        "<iq type='get' id='i' from='a@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='d00000.example' max_items='1'/></pubsub></iq>",
    );
    assert!(xml(&out).contains("<items node='d00000.example'><item id='alert-1'><entry xmlns='http://www.w3.org/2005/Atom'/></item></items>"), "{}", xml(&out));
    let out = run(
        &mut handler(),
        &store,
        "<iq type='get' id='i' from='a@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='other.example'/></pubsub></iq>",
    );
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("cancel/item-not-found")
    );
}

#[test]
fn unsupported_pubsub_and_unknown_iqs_get_the_right_errors() {
    let store = Fake::with_nodes(1);
    let mut h = handler();
    for (payload, want) in [
        (
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='x.example'/></pubsub>",
            "cancel/feature-not-implemented",
        ),
        (
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='x.example'/></pubsub>",
            "cancel/forbidden",
        ),
        (
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'/>",
            "modify/bad-request",
        ),
        (
            "<query xmlns='jabber:iq:version'/>",
            "cancel/service-unavailable",
        ),
        ("", "modify/bad-request"),
        ("<a xmlns='u'/><b xmlns='u'/>", "modify/bad-request"),
    ] {
        let out = run(
            &mut h,
            &store,
            &format!("<iq type='set' id='x' from='a@x.example/r' to='cw.example'>{payload}</iq>"),
        );
        assert_eq!(error_condition(&out).as_deref(), Some(want), "{payload}");
    }
    // Errors and results are never answered.
    for s in [
        "<iq type='error' id='x' from='a@x.example/r' to='cw.example'><query xmlns='u'/></iq>",
        "<iq type='result' id='x' from='a@x.example/r' to='cw.example'/>",
        "<message type='error' from='a@x.example/r' to='cw.example'><body>help</body></message>",
    ] {
        assert!(run(&mut h, &store, s).stanzas.is_empty(), "{s}");
    }
    // An iq to user@service: service-unavailable.
    let out = run(
        &mut h,
        &store,
        "<iq type='get' id='x' from='a@x.example/r' to='bob@cw.example'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("cancel/service-unavailable")
    );
}

fn chat(h: &mut Handler, store: &Fake, from: &str, body: &str) -> Output {
    let mut b = String::new();
    crate::xml::escape_into(&mut b, body, false);
    run(
        h,
        store,
        &format!(
            "<message type='chat' id='m1' from='{from}' to='cw.example'><body>{b}</body></message>"
        ),
    )
}

fn body(out: &Output) -> String {
    out.stanzas[0]
        .child("body", ns::COMPONENT)
        .map(|b| b.text.clone())
        .unwrap_or_default()
}

#[test]
fn the_chat_bot_runs_commands() {
    let store = Fake::with_nodes(2);
    let mut h = handler();
    let out = chat(
        &mut h,
        &store,
        "bob@y.example/laptop",
        "subscribe D00001.example",
    );
    assert_eq!(
        out.commands,
        vec![Command::Subscribe {
            node: "d00001.example".into(),
            channel: Channel::Chat,
            jid: "bob@y.example".into()
        }]
    );
    assert!(body(&out).contains("xmpp:cw.example?;node=d00001.example"));
    assert_eq!(out.stanzas[0].attr("to"), Some("bob@y.example/laptop"));
    assert_eq!(out.stanzas[0].attr("type"), Some("chat"));
    let out = chat(&mut h, &store, "bob@y.example/phone", "list");
    assert!(
        body(&out).contains("d00001.example (chat)"),
        "{}",
        body(&out)
    );
    let out = chat(
        &mut h,
        &store,
        "bob@y.example/phone",
        "status d00001.example",
    );
    assert!(body(&out).contains("d00001.example: match at 2023-11-14T22:13:20Z (watched)"));
    let out = chat(
        &mut h,
        &store,
        "bob@y.example/phone",
        "status unknown.example",
    );
    assert!(body(&out).contains("not known"));
    let out = chat(
        &mut h,
        &store,
        "bob@y.example/phone",
        "unsubscribe d00001.example",
    );
    assert_eq!(out.commands.len(), 1);
    assert!(store.subs.lock().unwrap().is_empty());
    let out = chat(
        &mut h,
        &store,
        "bob@y.example/phone",
        "unsubscribe d00001.example",
    );
    assert!(out.commands.is_empty());
    assert!(body(&out).contains("not subscribed"));
    for unknown in [
        "",
        "hello",
        "subscribe",
        "subscribe a.example b.example",
        "list x",
    ] {
        let out = chat(&mut h, &store, "carol@y.example/phone", unknown);
        assert!(body(&out).contains("Commands:"), "{unknown:?}");
        assert!(out.commands.is_empty());
    }
    let out = chat(
        &mut h,
        &store,
        "carol@y.example/phone",
        "subscribe not_a_domain",
    );
    assert!(out.commands.is_empty());
    assert!(body(&out).contains("not a domain"));
    // Messages without a body (chat states) are not answered.
    let out = run(
        &mut h,
        &store,
        "<message type='chat' from='carol@y.example/p' to='cw.example'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    );
    assert!(out.stanzas.is_empty());
}

#[test]
fn a_failed_store_answers_with_errors_not_lies() {
    let store = Fake {
        fail: true,
        ..Fake::with_nodes(1)
    };
    let out = run(
        &mut handler(),
        &store,
        "<iq type='get' id='s' from='a@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub></iq>",
    );
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("wait/internal-server-error")
    );
    // A subscribe says what to send if the command fails.
    let out = block_on(handler().handle(
        &parse("<iq type='set' id='s' from='a@x.example/r' to='cw.example'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='x.example' jid='a@x.example'/></pubsub></iq>"),
        0,
        &store,
    ));
    assert_eq!(out.commands.len(), 1);
    assert!(
        out.on_failure[0]
            .to_stanza()
            .contains("internal-server-error")
    );
}

#[test]
fn presence_subscription_is_approved_without_asking_back() {
    let store = Fake::default();
    let mut h = handler();
    let out = run(
        &mut h,
        &store,
        "<presence type='subscribe' from='dave@z.example' to='cw.example'/>",
    );
    let x = xml(&out);
    assert_eq!(
        x,
        "<presence from='cw.example' to='dave@z.example' type='subscribed'/><presence from='cw.example' to='dave@z.example'/>"
    );
    assert!(!x.contains("type='subscribe'"));
    let out = run(
        &mut h,
        &store,
        "<presence type='probe' from='dave@z.example' to='cw.example'/>",
    );
    assert_eq!(
        xml(&out),
        "<presence from='cw.example' to='dave@z.example'/>"
    );
    for p in [
        "<presence from='dave@z.example/r' to='cw.example'/>",
        "<presence type='unavailable' from='dave@z.example/r' to='cw.example'/>",
        "<presence type='unsubscribe' from='dave@z.example' to='cw.example'/>",
    ] {
        assert!(run(&mut h, &store, p).stanzas.is_empty(), "{p}");
    }
}

#[test]
fn floods_and_long_messages_are_limited() {
    let store = Fake::with_nodes(1);
    let mut h = handler();
    let long = "x".repeat(1001);
    let out = chat(&mut h, &store, "eve@e.example/r", &long);
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("modify/policy-violation")
    );
    let mut told = 0;
    let mut answered = 0;
    for _ in 0..100 {
        let out = chat(&mut h, &store, "eve@e.example/r", "help");
        match error_condition(&out).as_deref() {
            Some("wait/policy-violation") => told += 1,
            None if !out.stanzas.is_empty() => answered += 1,
            _ => {}
        }
    }
    // 20 per window in all (the long one counted), one error, then silence.
    assert_eq!(answered, 19);
    assert_eq!(told, 1);
    // Another JID is not affected; after the window eve is answered again.
    let out = chat(&mut h, &store, "frank@e.example/r", "help");
    assert!(body(&out).contains("Commands:"));
    let out = block_on(h.handle(
        &parse("<message type='chat' from='eve@e.example/r' to='cw.example'><body>help</body></message>"),
        60_000,
        &store,
    ));
    assert!(body(&out).contains("Commands:"));
}

#[test]
fn the_tracked_jid_table_is_bounded() {
    let store = Fake::default();
    let mut h = Handler::new(HandlerConfig {
        rate_tracked: 3,
        ..HandlerConfig::new(SVC, "https://cw.example")
    });
    for i in 0..3 {
        let out = chat(&mut h, &store, &format!("u{i}@e.example/r"), "help");
        assert!(error_condition(&out).is_none());
    }
    let out = chat(&mut h, &store, "u9@e.example/r", "help");
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("wait/resource-constraint")
    );
}

#[test]
fn rejected_stanzas_get_errors() {
    let mut h = handler();
    let top = Element::new("message", ns::COMPONENT)
        .with_attr("from", "a@x.example/r")
        .with_attr("to", SVC)
        .with_attr("id", "big");
    let out = h.rejected(&top, Rejection::TooLarge, 0);
    assert_eq!(
        error_condition(&out).as_deref(),
        Some("modify/policy-violation")
    );
    assert_eq!(out.stanzas[0].attr("id"), Some("big"));
    let out = h.rejected(&top, Rejection::Malformed, 0);
    assert_eq!(error_condition(&out).as_deref(), Some("modify/bad-request"));
    let no_from = Element::new("iq", ns::COMPONENT);
    assert!(
        h.rejected(&no_from, Rejection::Malformed, 0)
            .stanzas
            .is_empty()
    );
}

proptest::proptest! {
    #[test]
    fn hostile_stanzas_never_panic_and_errors_are_never_answered(
        name in proptest::sample::select(vec!["iq", "message", "presence", "other"]),
        kind in proptest::option::of(proptest::sample::select(vec!["get", "set", "result", "error", "chat", "subscribe", "probe", "x"])),
        from in proptest::option::of("[a-z@./ ]{0,12}"),
        to in proptest::option::of(proptest::sample::select(vec!["cw.example", "x@cw.example", "cw.example/r", "other"])),
        child_ns in proptest::sample::select(vec![ns::PUBSUB, ns::DISCO_ITEMS, ns::DISCO_INFO, ns::RSM, ns::PING, "u", ns::COMPONENT]),
        child in proptest::sample::select(vec!["pubsub", "query", "subscribe", "items", "set", "body", "ping"]),
        grand in proptest::sample::select(vec!["subscribe", "unsubscribe", "items", "subscriptions", "set", "max", "after", "before", "publish"]),
        attr in "[ -~]{0,20}",
        text in "[ -~]{0,40}",
    ) {
        let store = Fake::with_nodes(5);
        let mut h = handler();
        let mut e = Element::new(name, ns::COMPONENT);
        if let Some(k) = kind { e.set_attr("type", k); }
        if let Some(f) = &from { e.set_attr("from", f.clone()); }
        if let Some(t) = to { e.set_attr("to", t); }
        e.set_attr("id", "1");
        let mut g = Element::new(grand, child_ns).with_text(text.clone());
        g.set_attr("node", attr.clone());
        g.set_attr("jid", attr.clone());
        let c = Element::new(child, child_ns).with_text(text).with_child(g);
        let e = e.with_child(c);
        let out = block_on(h.handle(&e, 0, &store));
        if kind == Some("error") || (name == "iq" && kind == Some("result")) {
            proptest::prop_assert!(out.stanzas.is_empty());
        }
        // Every reply goes back to the sender: to its full JID, or, for presence (RFC 6121
        // subscription answers go to the bare JID), to its bare JID.
        let bare = from.as_deref().map(|f| f.split('/').next().unwrap_or(f));
        for s in out.stanzas.iter().chain(&out.on_failure) {
            let to = s.attr("to");
            let to_sender = to == from.as_deref() || (s.name == "presence" && to == bare);
            proptest::prop_assert!(to_sender, "reply to {:?}, sender {:?}: {:?}", to, from, s);
        }
    }
}
