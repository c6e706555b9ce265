//! The HTML pages: home (the one form), the result page per domain, the pending check, the
//! operator's removal request, the threat model and the API documentation.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use certwatch::Report;

use super::csrf::{CsrfError, Issued};
use super::html::{Head, csrf_field, error_page, page, respond};
use super::result::{KeyRow, ResultPage, render};
use super::{Shared, security};
use crate::store::{TicketState, normalise_domain};

/// How many past checks the result page reads.
pub const HISTORY_LIMIT: u32 = 20;
/// Seconds between reloads of a pending page.
pub const REFRESH_SECS: u32 = 3;
/// Longest accepted contact field of a removal request, in characters.
pub const MAX_CONTACT_CHARS: usize = 200;
/// Longest accepted message of a removal request, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// The threat model, as written in `docs/threat-model.md`.
pub const THREAT_MODEL: &str = include_str!("../../../../docs/threat-model.md");
/// The API documentation, as written in `docs/api.md`.
pub const API_DOC: &str = include_str!("../../../../docs/api.md");

/// Adds the CSRF cookie to a response when a fresh one was issued.
pub fn with_csrf_cookie(mut response: Response, issued: &Issued) -> Response {
    if let Some(c) = &issued.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    response
}

/// Issues a CSRF token, or answers 500 when no random bytes are available.
pub async fn issue_csrf(web: &Shared, headers: &HeaderMap) -> Result<Issued, Box<Response>> {
    web.keys().await?.csrf.issue(headers).map_err(|e| {
        Box::new(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            &e.to_string(),
        ))
    })
}

/// The page for a refused form (wrong or missing CSRF token): 403.
pub fn csrf_refused(e: CsrfError) -> Response {
    error_page(StatusCode::FORBIDDEN, "Form refused", &e.to_string())
}

/// Decodes an `application/x-www-form-urlencoded` body, with a clear page for a body over
/// the size limit (413) or a malformed one (400).
pub fn read_form<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Box<Response>> {
    let bytes = body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                &format!(
                    "The form is larger than {} bytes. A domain name has at most 253 characters.",
                    security::MAX_BODY_BYTES
                ),
            )
        } else {
            error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form could not be read.",
            )
        })
    })?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form could not be read: it is not URL-encoded form data with the expected fields.",
        ))
    })
}

/// A form that carries a CSRF token.
pub trait CsrfForm {
    /// The submitted token, if any.
    fn csrf(&self) -> Option<&str>;
}

/// Reads a form body ([`read_form`]) and checks its CSRF token against the cookie: the
/// first two steps of every HTML form handler.
pub async fn read_checked_form<T: DeserializeOwned + CsrfForm>(
    web: &Shared,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Box<Response>> {
    let form: T = read_form(body)?;
    web.keys()
        .await?
        .csrf
        .verify(headers, form.csrf())
        .map_err(|e| Box::new(csrf_refused(e)))?;
    Ok(form)
}

/// Implements [`CsrfForm`] for forms with a `csrf: Option<String>` field.
macro_rules! csrf_form {
    ($($t:ty),*) => {
        $(impl $crate::web::pages::CsrfForm for $t {
            fn csrf(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
        })*
    };
}
pub(crate) use csrf_form;

csrf_form!(CheckForm, RemovalForm);

/// The 400 page for an invalid domain.
pub fn invalid_domain(input: &str, reason: &str) -> Response {
    let shown: String = input.chars().take(100).collect();
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid domain",
        &format!(
            "“{shown}” is not a domain name certwatch can check: {reason}. Enter the XMPP \
             domain (the part after the @ in an address), for example example.org."
        ),
    )
}

/// The reason part of a store error for an invalid domain.
fn domain_error(input: &str, e: crate::store::StoreError) -> Response {
    match e {
        crate::store::StoreError::InvalidDomain { reason, .. } => invalid_domain(input, &reason),
        other => internal(&other),
    }
}

/// A 500 page for a store failure (the details go to the log, not to the page).
pub fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!("web: {e}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "The service could not read or write its database. Try again later.",
    )
}

/// `GET /`: the form, and what the check does and cannot prove.
pub async fn home(State(web): State<Shared>, headers: HeaderMap) -> Response {
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let body = html! {
        h1 { "Is your XMPP server's TLS intercepted?" }
        div class="columns" {
            section aria-labelledby="check" {
                h2 id="check" { "Check a domain" }
                (check_form(&issued.token, ""))
            }
            section aria-labelledby="what" {
                h2 id="what" { "What the check does" }
                p {
                    "certwatch looks up the domain's XMPP services (SRV records) and their DANE TLSA records in DNSSEC-signed DNS, "
                    "connects to every address over Tor (STARTTLS or direct TLS), and compares the key the server proves it holds "
                    "with the published records. A mismatch is what an interception such as the 2023 jabber.ru attack looks like."
                }
                p { "If the domain is not ready, the result says what to do: sign the zone, or add the TLSA lines it shows." }
                h2 { "What it cannot prove" }
                ul {
                    li { "A match says our probes were not intercepted; an interceptor that recognises them could spare them." }
                    li { "It cannot see an attacker who holds the server's private key, or who controls the DNS zone." }
                    li { "It detects an attack; it does not stop one. Clients need DANE or channel binding for that." }
                }
                p { a href="/threat-model" { "Read the threat model" } }
            }
        }
    };
    with_csrf_cookie(
        respond(
            StatusCode::OK,
            page(
                &Head {
                    title: "Check an XMPP domain",
                    ..Head::default()
                },
                body,
            ),
        ),
        &issued,
    )
}

/// The domain form (home page, and again on the 404 page of an unknown domain).
pub fn check_form(token: &str, value: &str) -> Markup {
    html! {
        form method="post" action="/checks" class="inline" {
            (csrf_field(token))
            div class="field" {
                label for="domain" { "XMPP domain" }
                input type="text" id="domain" name="domain" required maxlength="253"
                    autocomplete="off" autocapitalize="none" spellcheck="false"
                    inputmode="url" placeholder="example.org" value=(value)
                    aria-describedby="domain-hint";
                p id="domain-hint" class="hint" { "The part after the @ in an XMPP address." }
            }
            button type="submit" { "Check" }
        }
    }
}

/// The fields of the check form.
#[derive(Debug, Deserialize)]
pub struct CheckForm {
    /// The domain as typed.
    #[serde(default)]
    pub domain: String,
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// The 429 response of a refused on-demand check.
pub fn rate_limited(refused: &super::ratelimit::Refused, json: bool) -> Response {
    let mut response = if json {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({
                "error": "rate-limited",
                "message": refused.to_string(),
                "retry_after": refused.retry_after_secs(),
            })),
        )
            .into_response()
    } else {
        error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many checks",
            &refused.to_string(),
        )
    };
    if let Ok(v) = HeaderValue::from_str(&refused.retry_after_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// `POST /checks`: CSRF, the domain, the rate limit, then a ticket and a redirect to it.
pub async fn submit_check(
    State(web): State<Shared>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: CheckForm = match read_checked_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let domain = match normalise_domain(&form.domain) {
        Ok(d) => d,
        Err(e) => return domain_error(&form.domain, e),
    };
    let client = web.client(super::peer(&extensions), &headers);
    if let Err(refused) = web.checks_limit.check(client, web.uptime_now()) {
        return rate_limited(&refused, false);
    }
    match web.request_check(&domain).await {
        Ok(ticket) => Redirect::to(&format!("/checks/{}", ticket.id)).into_response(),
        Err(e) => domain_error(&domain, e),
    }
}

/// Whether `id` looks like a ticket id (hex, bounded), so that junk never reaches the store.
pub fn plausible_ticket(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /checks/{id}`: a pending page that reloads itself, or a redirect to the result.
pub async fn ticket(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    if !plausible_ticket(&id) {
        return not_found().await;
    }
    match web.app.store.ticket(&id).await {
        Ok(None) => not_found().await,
        Ok(Some(TicketState::Queued | TicketState::Running)) => {
            let body = html! {
                h1 { "Checking…" }
                p class="notice" role="status" {
                    "The check is queued or running. This page reloads by itself every "
                    (REFRESH_SECS) " seconds; a check over Tor can take a minute."
                }
                p { a href={ "/checks/" (id) } { "Reload now" } }
            };
            respond(
                StatusCode::OK,
                page(
                    &Head {
                        title: "Check pending",
                        refresh_secs: Some(REFRESH_SECS),
                        ..Head::default()
                    },
                    body,
                ),
            )
        }
        Ok(Some(TicketState::Done(report))) => {
            Redirect::to(&format!("/domains/{}", report.domain)).into_response()
        }
        Ok(Some(TicketState::Failed(why))) => error_page(
            StatusCode::OK,
            "The check could not run",
            &format!("{why}. This is not a verdict about the domain; try again later."),
        ),
        Err(e) => internal(&e),
    }
}

/// Rows of the keys-seen table, with the vantage points taken from the history.
fn key_rows(keys: &[crate::store::SeenKey], history: &[Report]) -> Vec<KeyRow> {
    type Seen = (BTreeSet<String>, Option<String>);
    let mut seen_from: BTreeMap<(String, u16, String), Seen> = BTreeMap::new();
    for r in history {
        for e in &r.endpoints {
            if let (Some(k), Some(v)) = (&e.presented_spki_sha256, &e.vantage) {
                let entry = seen_from
                    .entry((e.target.clone(), e.port, k.clone()))
                    .or_default();
                entry.0.insert(v.to_string());
                if let Some(t) = e.key_type {
                    entry.1 = Some(t.to_string());
                }
            }
        }
    }
    keys.iter()
        .map(|k| {
            let (vantages, key_type) = seen_from
                .get(&(k.target.clone(), k.port, k.spki_sha256.clone()))
                .cloned()
                .unwrap_or_default();
            KeyRow {
                target: k.target.clone(),
                port: k.port,
                key_type,
                spki_sha256: k.spki_sha256.clone(),
                first_seen: rfc3339(k.first_seen),
                last_seen: rfc3339(k.last_seen),
                vantages: vantages.into_iter().collect(),
            }
        })
        .collect()
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// `GET /domains/{domain}`: the result page (400 for an invalid domain, a redirect to the
/// A-label form, 404 with the form for a domain never checked).
pub async fn domain(
    State(web): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let domain = match normalise_domain(&raw) {
        Ok(d) => d,
        Err(e) => return domain_error(&raw, e),
    };
    if domain != raw {
        return Redirect::permanent(&format!("/domains/{domain}")).into_response();
    }
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let store = &web.app.store;
    let view = match store.domain_view(&domain, web.now()).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            let body = html! {
                h1 { "Result for " code { (domain) } }
                p class="notice" { "This domain has not been checked yet." }
                (check_form(&issued.token, &domain))
            };
            return with_csrf_cookie(
                respond(
                    StatusCode::NOT_FOUND,
                    page(
                        &Head {
                            title: "Not checked yet",
                            ..Head::default()
                        },
                        body,
                    ),
                ),
                &issued,
            );
        }
        Err(e) => return internal(&e),
    };
    let records = match store.history(&domain, HISTORY_LIMIT).await {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let keys = match store.keys_seen(&domain).await {
        Ok(k) => k,
        Err(e) => return internal(&e),
    };
    // The newest check, when it could not run at all.
    let last_error: Option<String> = records
        .first()
        .filter(|r| r.report.is_none())
        .and_then(|r| r.error.clone());
    let history: Vec<Report> = records.into_iter().filter_map(|r| r.report).collect();
    let earlier: Vec<Report> = match &view.report {
        // The newest record is the latest report itself.
        Some(latest) => {
            let mut rest = history.clone();
            if let Some(pos) = rest.iter().position(|r| r == latest) {
                rest.remove(pos);
            }
            rest
        }
        None => history.clone(),
    };
    let key_rows = key_rows(&keys, &history);
    let pending = view.pending_ticket.is_some();
    let body = render(&ResultPage {
        domain: &domain,
        latest: view.report.as_ref(),
        earlier: &earlier,
        keys_seen: &key_rows,
        pending,
        last_error: last_error.as_deref(),
        csrf: &issued.token,
        min_vantages: web.settings.min_vantages,
        channels: super::subscribe::Channels::of(&web.app),
    });
    let body = html! { (body) (super::evidence::domain_section_of(&web, &domain).await) };
    let title = format!("Result for {domain}");
    with_csrf_cookie(
        respond(
            StatusCode::OK,
            page(
                &Head {
                    title: &title,
                    refresh_secs: pending.then_some(REFRESH_SECS + 2),
                    feed: Some(format!("/domains/{domain}/feed.atom")),
                },
                body,
            ),
        ),
        &issued,
    )
}

/// `GET /threat-model`: the threat model, as a page.
pub async fn threat_model() -> Response {
    doc_page("Threat model", THREAT_MODEL, "/docs/threat-model.md")
}

/// `GET /docs/api`: the API documentation, as a page.
pub async fn api_doc() -> Response {
    doc_page("API", API_DOC, "/docs/api.md")
}

/// Markdown to HTML for the site's own documents. Raw HTML in the Markdown is shown as text,
/// never passed through, so even these compiled-in files cannot put markup on a page.
pub fn markdown_to_html(text: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, html};
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, parser);
    out
}

fn doc_page(title: &str, text: &str, raw: &str) -> Response {
    let body = html! {
        article class="doc" {
            (maud::PreEscaped(markdown_to_html(text)))
        }
        p class="hint" { "The Markdown source: " a href=(raw) { (raw) } "." }
    };
    respond(
        StatusCode::OK,
        page(
            &Head {
                title,
                ..Head::default()
            },
            body,
        ),
    )
}

/// `GET /docs/threat-model.md`: the threat model as Markdown text.
pub async fn threat_model_text() -> Response {
    markdown(THREAT_MODEL)
}

/// `GET /docs/api.md`: the API documentation as Markdown text.
pub async fn api_doc_text() -> Response {
    markdown(API_DOC)
}

fn markdown(text: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        text,
    )
        .into_response()
}

/// `GET /static/site.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        super::html::STYLESHEET,
    )
        .into_response()
}

/// The fallback: 404 page.
pub async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}

/// `GET /removal`: the form an operator uses to ask for removal of their domain.
pub async fn removal_form(State(web): State<Shared>, headers: HeaderMap) -> Response {
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let body = html! {
        h1 { "Ask for removal of your domain" }
        p { "The administrator of this service reviews the request and removes the domain with its history. Nothing is removed by this form alone." }
        form method="post" action="/removal" {
            (csrf_field(&issued.token))
            p {
                label for="domain" { "Domain" }
                input type="text" id="domain" name="domain" required maxlength="253" autocomplete="off";
            }
            p {
                label for="contact" { "How to reach you (optional)" }
                input type="text" id="contact" name="contact" maxlength=(MAX_CONTACT_CHARS) autocomplete="email";
            }
            p {
                label for="message" { "Message" }
                textarea id="message" name="message" rows="4" maxlength=(MAX_MESSAGE_CHARS) {}
            }
            button type="submit" { "Send the request" }
        }
    };
    with_csrf_cookie(
        respond(
            StatusCode::OK,
            page(
                &Head {
                    title: "Removal request",
                    ..Head::default()
                },
                body,
            ),
        ),
        &issued,
    )
}

/// The fields of the removal form.
#[derive(Debug, Deserialize)]
pub struct RemovalForm {
    /// The domain.
    #[serde(default)]
    pub domain: String,
    /// How to reach the requester.
    #[serde(default)]
    pub contact: String,
    /// Why.
    #[serde(default)]
    pub message: String,
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// `POST /removal`: records the request for the administrator (removes nothing).
pub async fn submit_removal(
    State(web): State<Shared>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: RemovalForm = match read_checked_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let domain = match normalise_domain(&form.domain) {
        Ok(d) => d,
        Err(e) => return domain_error(&form.domain, e),
    };
    if form.contact.chars().count() > MAX_CONTACT_CHARS
        || form.message.chars().count() > MAX_MESSAGE_CHARS
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Request too long",
            &format!(
                "The contact field holds at most {MAX_CONTACT_CHARS} characters and the message at most {MAX_MESSAGE_CHARS}."
            ),
        );
    }
    // The same limiter as checks: an unauthenticated form must not fill the database.
    let client = web.client(super::peer(&extensions), &headers);
    if let Err(refused) = web.checks_limit.check(client, web.uptime_now()) {
        return rate_limited(&refused, false);
    }
    if let Err(e) = web
        .app
        .store
        .request_removal(&domain, form.contact.trim(), form.message.trim(), web.now())
        .await
    {
        return internal(&e);
    }
    let body = html! {
        h1 { "Request recorded" }
        p class="notice good" role="status" {
            "The removal request for " code { (domain) } " is recorded for the administrator, who reviews it. The domain stays listed until then."
        }
        p { a href="/" { "Back to the start page" } }
    };
    respond(
        StatusCode::OK,
        page(
            &Head {
                title: "Removal request recorded",
                ..Head::default()
            },
            body,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::markdown_to_html;

    #[test]
    fn markdown_renders_structure_and_escapes_raw_html() {
        let html = markdown_to_html(
            "# Title\n\n- a `code`\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script>\n",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<li>a <code>code</code></li>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
