//! Alert notifications: a PubSub event carrying an Atom entry (XEP-0060 §7.1.2, published by
//! the service itself) and a chat message with the verdict, the link and what to do.

use crate::ns;
use crate::xml::Element;

/// One alert as the XMPP channels tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The delivery id (the outbox's stable id): the message id, so clients can deduplicate.
    pub delivery_id: String,
    /// The alert id: the PubSub item id is `alert-<id>`.
    pub alert_id: i64,
    /// The domain (the node name, A-label).
    pub domain: String,
    /// The incident's condition (`mismatch`, `bogus`, `signature-expiring`, `downgrade`,
    /// `blind`).
    pub condition: String,
    /// `opened`, `reminder` or `recovered`.
    pub kind: String,
    /// What it is about, in words (endpoints, keys), if known.
    pub detail: Option<String>,
    /// When the alert was decided (Unix seconds).
    pub at: i64,
    /// The domain page.
    pub link: String,
    /// The alert's signed evidence bundle, when its check made one (not for `blind`).
    pub evidence: Option<String>,
}

impl Notice {
    /// The item id: `alert-<alert id>`.
    pub fn item_id(&self) -> String {
        format!("alert-{}", self.alert_id)
    }

    /// The one-line verdict: `ALERT example.org: mismatch`, `RECOVERED ...`, `STILL ...`.
    pub fn title(&self) -> String {
        if self.condition == "digest" {
            return format!("DIGEST {}: certwatch is watching", self.domain);
        }
        let what = match self.kind.as_str() {
            "recovered" => "RECOVERED",
            "reminder" => "STILL",
            _ => "ALERT",
        };
        format!("{what} {}: {}", self.domain, self.condition)
    }

    /// A sentence on the condition.
    pub fn summary(&self) -> String {
        let d = &self.domain;
        if self.condition == "digest" {
            return format!("Daily digest: certwatch is alive and watching {d}.");
        }
        if self.kind == "recovered" {
            return format!(
                "The {} condition of {d} has ended: the last conclusive check no longer shows it.",
                self.condition
            );
        }
        match self.condition.as_str() {
            "mismatch" => format!(
                "A server of {d} presented a key that its DNSSEC-signed TLSA records do not \
                 match: the connection may be intercepted."
            ),
            "bogus" => format!("The DNSSEC records of {d} do not validate (bogus)."),
            "signature-expiring" => format!("DNSSEC signatures on the records of {d} expire soon."),
            "downgrade" => format!(
                "A server of {d} with secure TLSA records stopped offering TLS (a downgrade)."
            ),
            "blind" => format!(
                "No conclusive check of {d} succeeded for a long time: the monitor is blind \
                 (the probes may be blocked)."
            ),
            other => format!("Condition {other} on {d}."),
        }
    }

    /// What the operator should do.
    pub fn advice(&self) -> &'static str {
        if self.kind == "recovered" || self.condition == "digest" {
            return "Nothing to do; check the evidence if the incident was unexpected.";
        }
        match self.condition.as_str() {
            "mismatch" => {
                "Compare the presented key with the key file on the server; if they differ, \
                 treat the server's traffic as intercepted and contact the hosting provider. If \
                 you rotated the key, publish a TLSA record for the new key."
            }
            "bogus" => "Check the zone's DNSSEC signatures and the DS record at the parent.",
            "signature-expiring" => "Re-sign the zone (check the signer's cron job).",
            "downgrade" => "Check that the server offers STARTTLS or direct TLS again.",
            "blind" => "Check that the server is reachable over Tor and directly.",
            _ => "See the evidence.",
        }
    }

    /// The Atom entry (RFC 4287) of the PubSub item.
    pub fn atom_entry(&self, service_jid: &str) -> Element {
        let a = |name: &str| Element::new(name, ns::ATOM);
        let updated = rfc3339(self.at);
        let mut content = format!("{}\n{}", self.summary(), self.advice());
        if let Some(d) = &self.detail {
            content.push_str("\n\n");
            content.push_str(d);
        }
        a("entry")
            .with_child(a("title").with_text(self.title()))
            .with_child(a("id").with_text(format!(
                "xmpp:{service_jid}?;node={};item={}",
                self.domain,
                self.item_id()
            )))
            .with_child(a("updated").with_text(updated.clone()))
            .with_child(a("published").with_text(updated))
            .with_child(a("summary").with_text(self.summary()))
            .with_child(a("content").with_attr("type", "text").with_text(content))
            .with_child(
                a("link")
                    .with_attr("rel", "alternate")
                    .with_attr("type", "text/html")
                    .with_attr("href", self.link.clone()),
            )
            .with_children(self.evidence.iter().map(|e| {
                a("link")
                    .with_attr("rel", "related")
                    .with_attr("type", "application/json")
                    .with_attr("title", "signed evidence bundle")
                    .with_attr("href", e.clone())
            }))
            .with_child(
                a("category")
                    .with_attr("term", self.condition.clone())
                    .with_attr("label", self.kind.clone()),
            )
    }

    /// The PubSub notification to `to` (a subscriber's bare JID), from the service.
    pub fn pubsub_event(&self, from: &str, to: &str) -> Element {
        Element::new("message", ns::COMPONENT)
            .with_attr("from", from)
            .with_attr("to", to)
            .with_attr("id", self.delivery_id.clone())
            .with_child(
                Element::new("event", ns::PUBSUB_EVENT).with_child(
                    Element::new("items", ns::PUBSUB_EVENT)
                        .with_attr("node", self.domain.clone())
                        .with_child(
                            Element::new("item", ns::PUBSUB_EVENT)
                                .with_attr("id", self.item_id())
                                .with_child(self.atom_entry(from)),
                        ),
                ),
            )
    }

    /// The chat text: verdict, summary, evidence link, domain page, what to do, time,
    /// delivery id.
    pub fn chat_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\nEvidence: {}\n",
            self.title(),
            self.summary(),
            self.evidence.as_deref().unwrap_or(&self.link),
        );
        if self.evidence.is_some() {
            s.push_str(&format!("Details: {}\n", self.link));
        }
        s.push_str(&format!(
            "What to do: {}\nTime: {}\n",
            self.advice(),
            rfc3339(self.at)
        ));
        if let Some(d) = &self.detail {
            s.push_str(d);
            s.push('\n');
        }
        s.push_str(&format!(
            "Delivery {} (send \"unsubscribe {}\" to stop)",
            self.delivery_id, self.domain
        ));
        s
    }

    /// The chat message to `to` (a subscriber's bare JID).
    pub fn chat_message(&self, from: &str, to: &str) -> Element {
        Element::new("message", ns::COMPONENT)
            .with_attr("from", from)
            .with_attr("to", to)
            .with_attr("type", "chat")
            .with_attr("id", self.delivery_id.clone())
            .with_child(Element::new("body", ns::COMPONENT).with_text(self.chat_text()))
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-11-28T21:00:00Z`); out-of-range times are clamped to
/// years 0000..9999.
pub fn rfc3339(unix: i64) -> String {
    const MIN: i64 = -62_167_219_200; // 0000-01-01
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59
    let t = unix.clamp(MIN, MAX);
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            delivery_id: "d1".into(),
            alert_id: 7,
            domain: "example.org".into(),
            condition: "mismatch".into(),
            kind: "opened".into(),
            detail: Some("xmpp.example.org:5222 key abc".into()),
            at: 1_700_000_000,
            link: "https://cw.example/domains/example.org".into(),
            evidence: None,
        }
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn the_event_carries_an_atom_entry_with_the_link() {
        let m = notice().pubsub_event("cw.example", "alice@example.org");
        let xml = m.to_stanza();
        assert!(xml.starts_with("<message from='cw.example' to='alice@example.org' id='d1'>"));
        assert!(xml.contains("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='example.org'><item id='alert-7'><entry xmlns='http://www.w3.org/2005/Atom'><title>ALERT example.org: mismatch</title>"));
        assert!(xml.contains(
            "<link rel='alternate' type='text/html' href='https://cw.example/domains/example.org'/>"
        ));
        assert!(xml.contains("<updated>2023-11-14T22:13:20Z</updated>"));
    }

    #[test]
    fn reminders_and_recoveries_say_so() {
        let still = Notice {
            kind: "reminder".into(),
            ..notice()
        };
        assert_eq!(still.title(), "STILL example.org: mismatch");
        let ok = Notice {
            kind: "recovered".into(),
            ..notice()
        };
        assert_eq!(ok.title(), "RECOVERED example.org: mismatch");
        assert!(ok.summary().contains("has ended"));
        assert!(ok.chat_text().contains("What to do: Nothing to do"));
        let digest = Notice {
            condition: "digest".into(),
            ..notice()
        };
        assert_eq!(digest.title(), "DIGEST example.org: certwatch is watching");
        assert!(digest.chat_text().contains("What to do: Nothing to do"));
        let blind = Notice {
            condition: "blind".into(),
            ..notice()
        };
        assert!(blind.summary().contains("blind"));
    }

    #[test]
    fn the_evidence_bundle_is_linked_when_there_is_one() {
        let n = Notice {
            evidence: Some("https://cw.example/domains/example.org/evidence/9.json".into()),
            ..notice()
        };
        let body = n.chat_text();
        assert!(body.contains("Evidence: https://cw.example/domains/example.org/evidence/9.json\nDetails: https://cw.example/domains/example.org\n"));
        let xml = n.pubsub_event("cw.example", "a@b").to_stanza();
        assert!(xml.contains("<link rel='related' type='application/json' title='signed evidence bundle' href='https://cw.example/domains/example.org/evidence/9.json'/>"), "{xml}");
    }

    #[test]
    fn the_chat_message_says_what_to_do() {
        let m = notice().chat_message("cw.example", "bob@example.org");
        let body = &m.child("body", ns::COMPONENT).unwrap().text;
        assert!(body.starts_with("ALERT example.org: mismatch\n"));
        assert!(body.contains("Evidence: https://cw.example/domains/example.org\n"));
        assert!(body.contains("What to do: Compare the presented key"));
        assert!(body.contains("Delivery d1"));
        assert_eq!(m.attr("type"), Some("chat"));
    }
}
