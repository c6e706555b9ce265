//! The optional daily digest (issue 9): "certwatch is alive" once a day per subscription
//! that opted in (`Store::set_subscription_digest`). `Store::daily_digest` records one
//! `digest` alert per domain (its `detail` is the JSON of [`DigestFacts`]) and one delivery
//! per opted-in subscription; the webhook and email passes send them with the bodies made
//! here (`"event": "digest"` for webhooks, a plain mail), under their stable delivery ids.

use crate::store::Delivery;

/// What a digest says about one domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DigestFacts {
    /// Checks finished in the 24 h before the digest.
    pub checks_24h: i64,
    /// The last verdict (`None`: never checked with a verdict).
    pub last_verdict: Option<String>,
    /// When the domain was last checked.
    pub last_checked_at: Option<i64>,
    /// When the domain last had a conclusive check.
    pub last_conclusive_at: Option<i64>,
    /// The incidents open at that moment.
    pub open_incidents: Vec<OpenIncidentFact>,
}

/// An incident open when the digest was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct OpenIncidentFact {
    /// Its condition (`mismatch`, `blind`, ...).
    pub condition: String,
    /// When it opened.
    pub opened_at: Option<i64>,
}

/// Whether `d` is a digest delivery (rather than an alert).
pub fn is_digest(d: &Delivery) -> bool {
    d.alert.kind == "digest"
}

/// The facts of digest delivery `d` (defaults if its detail is unreadable).
pub fn facts(d: &Delivery) -> DigestFacts {
    d.alert
        .detail
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// One line: `certwatch is alive; N checks of DOMAIN in the last 24 h, last verdict V at T,
/// open incidents: ...`.
pub fn summary(d: &Delivery) -> String {
    let f = facts(d);
    let last = match (&f.last_verdict, f.last_checked_at) {
        (Some(v), Some(t)) => format!("last verdict {v} at {}", rfc3339(t)),
        (None, Some(t)) => format!("last check at {} (no verdict)", rfc3339(t)),
        _ => "not checked yet".to_owned(),
    };
    let open = if f.open_incidents.is_empty() {
        "none".to_owned()
    } else {
        f.open_incidents
            .iter()
            .map(|i| match i.opened_at {
                Some(t) => format!("{} since {}", i.condition, rfc3339(t)),
                None => i.condition.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "certwatch is alive; {} check{} of {} in the last 24 h, {last}, open incidents: {open}",
        f.checks_24h,
        if f.checks_24h == 1 { "" } else { "s" },
        d.alert.domain
    )
}

/// The webhook body of digest delivery `d` (`docs/alerts.md`).
pub fn webhook_body(d: &Delivery, public_url: &str) -> Vec<u8> {
    let base = public_url.trim_end_matches('/');
    let f = facts(d);
    serde_json::json!({
        "type": "digest",
        "event": "digest",
        "delivery_id": d.id,
        "domain": d.alert.domain,
        "at": d.alert.at,
        "checks_24h": f.checks_24h,
        "last_verdict": f.last_verdict,
        "last_checked_at": f.last_checked_at,
        "last_conclusive_at": f.last_conclusive_at,
        "open_incidents": f.open_incidents,
        "summary": summary(d),
        "domain_url": format!("{base}/domains/{}", d.alert.domain),
    })
    .to_string()
    .into_bytes()
}

/// The subject and plain-text body of digest mail `d`, with the unsubscribe link.
pub fn email_text(d: &Delivery, public_url: &str, unsubscribe_token: &str) -> (String, String) {
    let base = public_url.trim_end_matches('/');
    let subject = format!("[certwatch] daily digest: {}", d.alert.domain);
    let body = format!(
        "{}.\n\nDetails: {base}/domains/{}\nDelivery id: {}\n\n\
         You get this once a day because you asked for a daily digest.\n\
         Unsubscribe (deletes your address): {base}/subscriptions/unsubscribe?token={unsubscribe_token}\n",
        summary(d),
        d.alert.domain,
        d.id
    );
    (subject, body)
}
