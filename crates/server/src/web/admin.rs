//! The admin view, behind a token: list and remove domains, read the operators' removal
//! requests, block or unblock subscribers, and read the alert deliveries that failed for good
//! and the administrator's notices (hostile Tor exits).
//!
//! Authentication: `Authorization: Bearer TOKEN`, or a login form (with CSRF) that sets a
//! signed session cookie (`HttpOnly`, `SameSite=Strict`, 12 hours). The token is compared,
//! as its SHA-256, in constant time against the configured hash; the token itself is never
//! stored or logged. Forms of a cookie session carry CSRF tokens; a Bearer request needs
//! none (a browser never adds that header by itself).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use ring::{digest, hmac};
use serde::Deserialize;

use super::csrf::cookie_value;
use super::html::{Head, csrf_field, error_page, page, respond, verdict_badge};
use super::pages::{
    csrf_form, csrf_refused, internal, issue_csrf, rate_limited, read_checked_form, read_form,
    rfc3339, with_csrf_cookie,
};
use super::{Keys, Shared, Web};
use crate::store::normalise_domain;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cw_admin";
/// How long a login lasts, in seconds.
pub const SESSION_SECS: i64 = 12 * 3600;
/// Domains per page of the list.
pub const PAGE_SIZE: u32 = 50;
/// Subscriptions listed on the admin page (the newest).
pub const SUBSCRIPTIONS_SHOWN: u32 = 200;
/// Failed deliveries and administrator notices listed on the admin page (the newest).
pub const FAILED_SHOWN: u32 = 50;

/// How a request proved it is the administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer` with the right token: no CSRF token needed.
    Bearer,
    /// A valid session cookie: forms need CSRF tokens.
    Session,
}

/// Equality of two byte strings whose time depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether `token` is the admin token (its SHA-256 equals the configured hash).
pub fn token_ok(web: &Web, token: &str) -> bool {
    let Some(expected) = &web.settings.admin_token_sha256 else {
        return false;
    };
    let got = digest::digest(&digest::SHA256, token.trim().as_bytes());
    constant_time_eq(got.as_ref(), expected)
}

fn session_value(keys: &Keys, expires: i64) -> String {
    let tag = hmac::sign(&keys.session_key, format!("admin:{expires}").as_bytes());
    format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn session_ok(keys: &Keys, value: &str, now: i64) -> bool {
    let Some((expires, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires_at) = expires.parse::<i64>() else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    expires_at > now
        && hmac::verify(
            &keys.session_key,
            format!("admin:{expires}").as_bytes(),
            &tag,
        )
        .is_ok()
}

/// How the request is authenticated as the administrator, if it is (`Err` when the keys
/// cannot be read).
pub async fn authenticate(web: &Web, headers: &HeaderMap) -> Result<Option<Auth>, Box<Response>> {
    if web.settings.admin_token_sha256.is_none() {
        return Ok(None);
    }
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Ok(token_ok(web, token).then_some(Auth::Bearer));
    }
    let Some(cookie) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let keys = web.keys().await?;
    Ok(session_ok(keys, &cookie, web.now()).then_some(Auth::Session))
}

fn disabled() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Admin view disabled",
        "This service has no admin token configured (web.admin_token_sha256).",
    )
}

fn unauthorized() -> Response {
    let mut r = error_page(
        StatusCode::UNAUTHORIZED,
        "Not logged in",
        "This needs the admin token: log in at /admin, or send Authorization: Bearer TOKEN.",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"certwatch admin\""),
    );
    r
}

/// The query of the admin page.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    /// The page of the domain list, from 0.
    #[serde(default)]
    pub page: u64,
}

/// `GET /admin`: the login form, or the dashboard.
pub async fn dashboard(
    State(web): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    if web.settings.admin_token_sha256.is_none() {
        return disabled();
    }
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let auth = match authenticate(&web, &headers).await {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Some(_auth) = auth else {
        let body = html! {
            h1 { "Admin login" }
            form method="post" action="/admin/login" {
                (csrf_field(&issued.token))
                p {
                    label for="token" { "Admin token" }
                    input type="password" id="token" name="token" required autocomplete="current-password";
                }
                button type="submit" { "Log in" }
            }
        };
        return with_csrf_cookie(
            respond(
                StatusCode::OK,
                page(
                    &Head {
                        title: "Admin login",
                        ..Head::default()
                    },
                    body,
                ),
            ),
            &issued,
        );
    };
    let page_no = query.map(|q| q.0.page).unwrap_or(0).min(1_000_000);
    let store = &web.app.store;
    let domains = match store
        .list_domains(page_no.saturating_mul(u64::from(PAGE_SIZE)), PAGE_SIZE)
        .await
    {
        Ok(d) => d,
        Err(e) => return internal(&e),
    };
    let total = store.count_domains().await.unwrap_or(0);
    let requests = match web.app.store.removal_requests(100).await {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let subscriptions = match web.app.store.subscriptions(None, SUBSCRIPTIONS_SHOWN).await {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    let failed = match web.app.store.failed_deliveries(FAILED_SHOWN).await {
        Ok(f) => f,
        Err(e) => return internal(&e),
    };
    let notices = match web.app.store.admin_notices(FAILED_SHOWN).await {
        Ok(n) => n,
        Err(e) => return internal(&e),
    };
    let body = html! {
        h1 { "Admin" }
        p { "XMPP component link: " (web.app.metrics.xmpp_link.summary()) }
        form method="post" action="/admin/logout" {
            (csrf_field(&issued.token))
            button type="submit" { "Log out" }
        }
        section aria-labelledby="domains" {
            h2 id="domains" { "Domains (" (total) ")" }
            div class="table-wrap" {
                table {
                    thead { tr {
                        th scope="col" { "Domain" } th scope="col" { "Verdict" } th scope="col" { "Last check" }
                        th scope="col" { "Next due" } th scope="col" { "Subscribers" } th scope="col" { "Remove" }
                    } }
                    tbody {
                        @for d in &domains {
                            tr {
                                td { a href={ "/domains/" (d.domain) } { (d.domain) } }
                                td { @if let Some(v) = d.last_verdict { (verdict_badge(v)) } @else { "none" } }
                                td { (d.last_checked_at.map(rfc3339).unwrap_or_default()) }
                                td { (d.next_due_at.map(rfc3339).unwrap_or_default()) }
                                td { (d.subscribers) }
                                td {
                                    form method="post" action="/admin/domains/remove" {
                                        (csrf_field(&issued.token))
                                        input type="hidden" name="domain" value=(d.domain);
                                        button type="submit" aria-label={ "Remove " (d.domain) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav aria-label="Pages" {
                @if page_no > 0 { a href={ "/admin?page=" (page_no - 1) } { "Previous" } " " }
                @if (page_no + 1).saturating_mul(u64::from(PAGE_SIZE)) < total { a href={ "/admin?page=" (page_no + 1) } { "Next" } }
            }
        }
        section aria-labelledby="removals" {
            h2 id="removals" { "Removal requests from operators" }
            @if requests.is_empty() { p { "None." } } @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Domain" } th scope="col" { "Contact" } th scope="col" { "Message" } th scope="col" { "Requested" } } }
                        tbody {
                            @for r in &requests {
                                tr {
                                    td { a href={ "/domains/" (r.domain) } { (r.domain) } }
                                    td { (r.contact) }
                                    td { (r.message) }
                                    td { (rfc3339(r.requested_at)) }
                                }
                            }
                        }
                    }
                }
                p class="hint" { "Verify that the requester runs the domain (for example by the contact address), then remove it above." }
            }
        }
        section aria-labelledby="subscribers" {
            h2 id="subscribers" { "Subscribers" }
            p class="hint" { "The newest " (SUBSCRIPTIONS_SHOWN) ". A blocked subscription is kept (so it cannot simply be made again) but receives nothing, and no longer keeps its domain watched. Subscribing itself arrives with the alert issues." }
            @if subscriptions.is_empty() { p { "None." } } @else {
                div class="table-wrap" {
                    table {
                        thead { tr {
                            th scope="col" { "Domain" } th scope="col" { "Channel" } th scope="col" { "Address" }
                            th scope="col" { "Since" } th scope="col" { "State" } th scope="col" { "Action" }
                        } }
                        tbody {
                            @for sub in &subscriptions {
                                tr {
                                    td { (sub.domain) }
                                    td { (sub.channel) }
                                    td { (sub.address) }
                                    td { (rfc3339(sub.created_at)) }
                                    td {
                                        @if sub.blocked { "blocked" }
                                        @else if sub.confirmed_at.is_some() { "active" }
                                        @else { "unconfirmed" }
                                    }
                                    td {
                                        form method="post" action="/admin/subscriptions/block" {
                                            (csrf_field(&issued.token))
                                            input type="hidden" name="id" value=(sub.id);
                                            input type="hidden" name="blocked" value=(if sub.blocked { "false" } else { "true" });
                                            button type="submit" { @if sub.blocked { "Unblock" } @else { "Block" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="deliveries" {
            h2 id="deliveries" { "Failed deliveries" }
            p class="hint" { "The newest " (FAILED_SHOWN) " alert deliveries that failed after every retry. The delivery id is the one the receiver saw in every attempt." }
            @if failed.is_empty() { p { "None." } } @else {
                div class="table-wrap" {
                    table {
                        thead { tr {
                            th scope="col" { "Delivery" } th scope="col" { "Domain" } th scope="col" { "Alert" }
                            th scope="col" { "Channel" } th scope="col" { "Address" } th scope="col" { "Attempts" }
                            th scope="col" { "Last error" }
                        } }
                        tbody {
                            @for d in &failed {
                                tr {
                                    td { code { (d.id) } }
                                    td { a href={ "/domains/" (d.alert.domain) } { (d.alert.domain) } }
                                    td { (d.alert.condition) " " (d.alert.kind) " at " (rfc3339(d.alert.at)) }
                                    td { (d.channel) }
                                    td { (d.address) }
                                    td { (d.attempts) }
                                    td { (d.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="notices" {
            h2 id="notices" { "Notices for the administrator" }
            p class="hint" { "Hostile Tor exits found by confirmation: subscribers were not alarmed. The detail names the exits and the keys they presented (evidence for a bad-relay report)." }
            @if notices.is_empty() { p { "None." } } @else {
                ul {
                    @for n in &notices {
                        li { (rfc3339(n.at)) " " a href={ "/domains/" (n.domain) } { (n.domain) } ": " (n.condition) @if let Some(detail) = &n.detail { " — " (detail) } }
                    }
                }
            }
        }
    };
    with_csrf_cookie(
        respond(
            StatusCode::OK,
            page(
                &Head {
                    title: "Admin",
                    ..Head::default()
                },
                body,
            ),
        ),
        &issued,
    )
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The admin token.
    #[serde(default)]
    pub token: String,
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

csrf_form!(LoginForm, LogoutForm);

/// `POST /admin/login`: checks the CSRF token and the admin token (rate-limited per
/// client), then sets the session cookie.
pub async fn login(
    State(web): State<Shared>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if web.settings.admin_token_sha256.is_none() {
        return disabled();
    }
    let form: LoginForm = match read_checked_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let client = web.client(super::peer(&extensions), &headers);
    if let Err(refused) = web.login_limit.check(client, web.uptime_now()) {
        return rate_limited(&refused, false);
    }
    if !token_ok(&web, &form.token) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Wrong token",
            "That is not the admin token.",
        );
    }
    let keys = match web.keys().await {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let value = session_value(keys, web.now().saturating_add(SESSION_SECS));
    let secure = if web.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}"
    );
    let mut r = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// `POST /admin/logout`: clears the session cookie.
pub async fn logout(
    State(web): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(r) = read_checked_form::<LogoutForm>(&web, &headers, body).await {
        return *r;
    }
    let mut r = Redirect::to("/admin").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("cw_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// The remove form's fields.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    /// The domain to remove.
    #[serde(default)]
    pub domain: String,
    /// The CSRF token (needed with a session cookie, not with a Bearer token).
    #[serde(default)]
    pub csrf: Option<String>,
}

/// `POST /admin/domains/remove`: removes a domain with its history.
pub async fn remove_domain(
    State(web): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: RemoveForm = match admin_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let domain = match normalise_domain(&form.domain) {
        Ok(d) => d,
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid domain",
                "That is not a domain name.",
            );
        }
    };
    match web.app.store.remove_domain(&domain).await {
        Ok(true) => {
            tracing::info!("admin removed {domain}");
            Redirect::to("/admin").into_response()
        }
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "Unknown domain",
            &format!("{domain} is not in the list."),
        ),
        Err(e) => internal(&e),
    }
}

/// The block form's fields.
#[derive(Debug, Deserialize)]
pub struct BlockForm {
    /// The subscription's id.
    #[serde(default)]
    pub id: i64,
    /// `true` to block, `false` to unblock.
    #[serde(default)]
    pub blocked: bool,
    /// The CSRF token (needed with a session cookie, not with a Bearer token).
    #[serde(default)]
    pub csrf: Option<String>,
}

/// Reads an admin form: the administrator's authentication, the body, and the CSRF token
/// when the request is authenticated by the session cookie.
async fn admin_form<T: serde::de::DeserializeOwned + super::pages::CsrfForm>(
    web: &Web,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Box<Response>> {
    if web.settings.admin_token_sha256.is_none() {
        return Err(Box::new(disabled()));
    }
    let auth = authenticate(web, headers)
        .await?
        .ok_or_else(|| Box::new(unauthorized()))?;
    let form: T = read_form(body)?;
    if auth == Auth::Session {
        web.keys()
            .await?
            .csrf
            .verify(headers, form.csrf())
            .map_err(|e| Box::new(csrf_refused(e)))?;
    }
    Ok(form)
}

csrf_form!(RemoveForm, BlockForm);

/// `POST /admin/subscriptions/block`: blocks or unblocks a subscription.
pub async fn block_subscription(
    State(web): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: BlockForm = match admin_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match web
        .app
        .store
        .set_subscription_blocked(form.id, form.blocked)
        .await
    {
        Ok(true) => {
            tracing::info!(
                "admin {} subscription {}",
                if form.blocked { "blocked" } else { "unblocked" },
                form.id
            );
            Redirect::to("/admin").into_response()
        }
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "Unknown subscription",
            "There is no such subscription.",
        ),
        Err(e) => internal(&e),
    }
}
