//! The Atom feed (RFC 4287) of one domain: one entry per stored check, newest first.
//!
//! Written with quick-xml's writer, which escapes every text and attribute value. Links are
//! absolute under the configured public URL (relative to the feed's own address, as RFC 4287
//! allows, when none is configured).

use std::io;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::Shared;
use super::pages::rfc3339;
use crate::store::{CheckRecord, normalise_domain};

/// How many checks the feed lists.
pub const FEED_ENTRIES: u32 = 50;

/// The namespace of Atom.
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

/// `GET /domains/{domain}/feed.atom`: 400 for an invalid domain, 404 for an unknown one.
pub async fn domain_feed(State(web): State<Shared>, Path(raw): Path<String>) -> Response {
    let domain = match normalise_domain(&raw) {
        Ok(d) => d,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if domain != raw {
        return Redirect::permanent(&format!("/domains/{domain}/feed.atom")).into_response();
    }
    match web.app.store.domain_view(&domain, web.now()).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return plain(
                StatusCode::NOT_FOUND,
                &format!("{domain} is not known to this service"),
            );
        }
        Err(e) => {
            tracing::error!("feed: {e}");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "database error");
        }
    }
    let records = match web.app.store.history(&domain, FEED_ENTRIES).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("feed: {e}");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "database error");
        }
    };
    match atom(&domain, &records, web.now(), &web.settings.public_url) {
        Ok(xml) => (
            [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
            xml,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("feed: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "feed error")
        }
    }
}

fn text_element(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// The summary line of one check.
fn summary(record: &CheckRecord) -> String {
    match (&record.report, &record.error) {
        (Some(r), _) => {
            let keys = record.presented_keys();
            let vantages = record.vantages();
            let mut s = format!(
                "verdict {} over {} probe targets",
                r.verdict,
                r.endpoints.len()
            );
            if !keys.is_empty() {
                let k: Vec<String> = keys
                    .iter()
                    .map(|(t, p, k)| format!("{t}:{p} {k}"))
                    .collect();
                s.push_str(&format!("; keys presented: {}", k.join(", ")));
            }
            if !vantages.is_empty() {
                s.push_str(&format!("; vantage points: {}", vantages.join(", ")));
            }
            for w in &r.warnings {
                s.push_str(&format!("; warning {}: {}", w.code, w.message));
            }
            s
        }
        (None, Some(e)) => format!("the check could not run: {e}"),
        (None, None) => "the check produced no report".to_owned(),
    }
}

/// The Atom document of `domain`'s checks (`records` newest first). `now` is the feed's
/// `updated` when there is no check yet; `base` (the public URL, may be empty) prefixes the
/// links.
pub fn atom(domain: &str, records: &[CheckRecord], now: i64, base: &str) -> io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    let updated = rfc3339(records.first().map(|r| r.finished_at).unwrap_or(now));
    let base = base.trim_end_matches('/');
    let page = format!("{base}/domains/{domain}");
    let feed_url = format!("{base}/domains/{domain}/feed.atom");
    w.create_element("feed")
        .with_attribute(("xmlns", ATOM_NS))
        .write_inner_content(|w| {
            text_element(w, "id", &format!("tag:certwatch,2026:domain/{domain}"))?;
            text_element(w, "title", &format!("certwatch results for {domain}"))?;
            text_element(w, "updated", &updated)?;
            w.create_element("link")
                .with_attribute(("rel", "self"))
                .with_attribute(("type", "application/atom+xml"))
                .with_attribute(("href", feed_url.as_str()))
                .write_empty()?;
            w.create_element("link")
                .with_attribute(("rel", "alternate"))
                .with_attribute(("type", "text/html"))
                .with_attribute(("href", page.as_str()))
                .write_empty()?;
            w.create_element("author")
                .write_inner_content(|w| text_element(w, "name", "certwatch"))?;
            for r in records {
                let verdict = r
                    .verdict
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_else(|| "no verdict".to_owned());
                w.create_element("entry").write_inner_content(|w| {
                    text_element(
                        w,
                        "id",
                        &format!("tag:certwatch,2026:domain/{domain}/check/{}", r.id),
                    )?;
                    text_element(w, "title", &format!("{domain}: {verdict}"))?;
                    text_element(w, "updated", &rfc3339(r.finished_at))?;
                    w.create_element("link")
                        .with_attribute(("rel", "alternate"))
                        .with_attribute(("type", "text/html"))
                        .with_attribute(("href", page.as_str()))
                        .write_empty()?;
                    w.create_element("category")
                        .with_attribute(("term", verdict.as_str()))
                        .write_empty()?;
                    text_element(w, "summary", &summary(r))?;
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    Ok(w.into_inner())
}
