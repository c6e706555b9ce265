//! What the server said on the way to TLS: [`Negotiation`], [`StreamHeader`], [`Features`]
//! and [`Timings`].

use std::time::Duration;

use crate::config::{NS_SASL, NS_SASL_CB, NS_TLS};
use crate::xml::Element;

/// The attributes of the peer's stream header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamHeader {
    /// The stream id (`id`).
    pub id: Option<String>,
    /// The stream version (`version`), `1.0` for any server that can do STARTTLS.
    pub version: Option<String>,
    /// The `from` attribute: the domain the server claims to be.
    pub from: Option<String>,
    /// The `to` attribute, if the server echoes one.
    pub to: Option<String>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The content namespace (`xmlns`), `jabber:client` or `jabber:server`.
    pub namespace: String,
}

impl StreamHeader {
    pub(crate) fn from_element(el: &Element) -> Self {
        let get = |k: &str| el.attr(k).map(str::to_owned);
        StreamHeader {
            id: get("id"),
            version: get("version"),
            from: get("from"),
            to: get("to"),
            lang: get("xml:lang"),
            namespace: el.attr("xmlns").unwrap_or_default().to_owned(),
        }
    }
}

/// A stream feature that this crate does not interpret, by name and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Feature {
    /// The element's local name, for example `register`.
    pub name: String,
    /// The element's namespace, for example `http://jabber.org/features/iq-register`.
    pub namespace: String,
}

/// The `<stream:features/>` the server offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    /// `<starttls/>` is offered.
    pub starttls: bool,
    /// `<starttls><required/></starttls>`: the server says TLS is mandatory.
    pub starttls_required: bool,
    /// The SASL mechanisms offered (`<mechanisms/>`), in order. Offered before TLS, they are a
    /// warning sign: credentials could be sent in the clear.
    pub sasl_mechanisms: Vec<String>,
    /// The XEP-0440 channel-binding types (`<sasl-channel-binding/>`), in order.
    pub channel_binding_types: Vec<String>,
    /// Every other feature, in order.
    pub other: Vec<Feature>,
    /// Some items were not recorded because of [`Limits::max_items`](crate::Limits).
    pub truncated: bool,
}

/// How well the offered features protect a client against TLS interception (after TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelBinding {
    /// No `-PLUS` SASL mechanism: a man in the middle who terminates TLS goes unnoticed by
    /// clients.
    NotOffered,
    /// `-PLUS` mechanisms are offered, but no XEP-0440 list says which binding types the
    /// server supports (clients must guess; `tls-exporter` or `tls-server-end-point`).
    PlusMechanisms,
    /// `-PLUS` mechanisms and the XEP-0440 binding types are offered: clients that use them
    /// detect this attack.
    Advertised,
}

impl Features {
    pub(crate) fn from_element(el: &Element, max_items: usize) -> Self {
        let mut f = Features::default();
        fn push<T>(v: &mut Vec<T>, item: T, truncated: &mut bool, max_items: usize) {
            if v.len() < max_items {
                v.push(item);
            } else {
                *truncated = true;
            }
        }
        for c in &el.children {
            if c.is(NS_TLS, "starttls") {
                f.starttls = true;
                f.starttls_required |= c.child(NS_TLS, "required").is_some();
            } else if c.is(NS_SASL, "mechanisms") {
                for m in c.children.iter().filter(|m| m.is(NS_SASL, "mechanism")) {
                    let name = m.text.trim().to_owned();
                    push(&mut f.sasl_mechanisms, name, &mut f.truncated, max_items);
                }
            } else if c.is(NS_SASL_CB, "sasl-channel-binding") {
                for t in c
                    .children
                    .iter()
                    .filter(|t| t.is(NS_SASL_CB, "channel-binding"))
                {
                    if let Some(ty) = t.attr("type") {
                        push(
                            &mut f.channel_binding_types,
                            ty.to_owned(),
                            &mut f.truncated,
                            max_items,
                        );
                    }
                }
            } else {
                let feature = Feature {
                    name: c.local.clone(),
                    namespace: c.ns.clone(),
                };
                push(&mut f.other, feature, &mut f.truncated, max_items);
            }
        }
        f
    }

    /// The offered SASL mechanisms that bind to the TLS channel (names ending in `-PLUS`).
    pub fn plus_mechanisms(&self) -> impl Iterator<Item = &str> {
        self.sasl_mechanisms
            .iter()
            .map(String::as_str)
            .filter(|m| m.ends_with("-PLUS"))
    }

    /// The channel-binding status: defence in depth against exactly the interception that
    /// certwatch looks for. Meaningful for the features read after TLS.
    pub fn channel_binding(&self) -> ChannelBinding {
        match (
            self.plus_mechanisms().next().is_some(),
            self.channel_binding_types.is_empty(),
        ) {
            (false, _) => ChannelBinding::NotOffered,
            (true, true) => ChannelBinding::PlusMechanisms,
            (true, false) => ChannelBinding::Advertised,
        }
    }

    /// Whether a feature with this namespace and local name was offered (including
    /// `starttls`, `mechanisms` and `sasl-channel-binding`).
    pub fn has(&self, namespace: &str, name: &str) -> bool {
        match (namespace, name) {
            (NS_TLS, "starttls") => self.starttls,
            (NS_SASL, "mechanisms") => !self.sasl_mechanisms.is_empty(),
            (NS_SASL_CB, "sasl-channel-binding") => !self.channel_binding_types.is_empty(),
            _ => self
                .other
                .iter()
                .any(|f| f.namespace == namespace && f.name == name),
        }
    }
}

/// How long each step took, measured by the adapter from the start of the negotiation (the
/// sans-I/O core never reads a clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// Until the peer's stream header was complete.
    pub stream_header: Option<Duration>,
    /// Until the features were complete.
    pub features: Option<Duration>,
    /// Until `<proceed/>` was complete.
    pub proceed: Option<Duration>,
    /// Until the negotiation ended (successfully or not).
    pub total: Option<Duration>,
}

/// Everything the server said before TLS (or, in after-TLS mode, on the encrypted stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiation {
    /// The server's stream header, once received.
    pub header: Option<StreamHeader>,
    /// The server's features, once received.
    pub features: Option<Features>,
    /// The server answered `<proceed/>`: TLS begins at the next byte (unless the negotiation
    /// failed with [`Error::StartTlsInjection`](crate::Error::StartTlsInjection)).
    pub proceeded: bool,
    /// Bytes received from the server.
    pub bytes_received: usize,
    /// Timings, filled in by the adapter (all `None` when the core is driven by hand, unless
    /// the caller fills them).
    pub timings: Timings,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(ns: &str, local: &str) -> Element {
        Element {
            ns: ns.into(),
            local: local.into(),
            ..Element::default()
        }
    }

    #[test]
    fn channel_binding_status_follows_the_offer() {
        let mut f = Features {
            sasl_mechanisms: vec!["SCRAM-SHA-1".into()],
            ..Features::default()
        };
        assert_eq!(f.channel_binding(), ChannelBinding::NotOffered);
        f.sasl_mechanisms.push("SCRAM-SHA-256-PLUS".into());
        assert_eq!(f.channel_binding(), ChannelBinding::PlusMechanisms);
        assert_eq!(
            f.plus_mechanisms().collect::<Vec<_>>(),
            ["SCRAM-SHA-256-PLUS"]
        );
        f.channel_binding_types.push("tls-exporter".into());
        assert_eq!(f.channel_binding(), ChannelBinding::Advertised);
    }

    #[test]
    fn items_beyond_the_limit_are_counted_not_kept() {
        let mut features = el("s", "features");
        for i in 0..5 {
            features.children.push(el("urn:x", &format!("f{i}")));
        }
        let f = Features::from_element(&features, 3);
        assert_eq!(f.other.len(), 3);
        assert!(f.truncated);
        assert!(f.has("urn:x", "f2"));
        assert!(!f.has("urn:x", "f4"));
    }
}
