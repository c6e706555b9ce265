//! Subscriptions to a domain's alerts, on the site and in the API (issue 9).
//!
//! - **Email**, double opt-in: the form (or `POST /api/v1/subscriptions`) records an
//!   unconfirmed subscription and mails a confirmation link
//!   ([`crate::notify::email::EmailSender::subscribe`]). The mail is sent in the background
//!   and the answer is always the same ("check your inbox"), whether the address was new,
//!   pending or already confirmed, so neither the words nor the timing tell anyone whether
//!   an address is subscribed. `GET /subscriptions/confirm?token=` shows a button only (mail
//!   scanners fetch links); the `POST` confirms, once.
//! - **Unsubscribe**: `GET /subscriptions/unsubscribe?token=` shows a button; the `POST`
//!   deletes that subscription (and its pending deliveries), and accepts the RFC 8058
//!   one-click body `List-Unsubscribe=One-Click` without a CSRF token, the token in the URL
//!   being the credential. `POST /api/v1/subscriptions/unsubscribe` does the same in JSON.
//! - **Webhooks**: a pending subscription with a fresh secret, the challenge through the
//!   client's SSRF guard (every redirect checked), confirmed on success and the secret shown
//!   once; a failed challenge deletes the pending row and says why.
//!
//! Only domains the service knows (checked or requested at least once) can be subscribed
//! to, under a per-client rate limit ([`PER_CLIENT`], [`GLOBAL`]) and per-domain caps
//! ([`MAX_PENDING_PER_DOMAIN`], [`MAX_PER_DOMAIN`]).

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::html::{Head, csrf_field, error_page, page, respond};
use super::pages::{self, CsrfForm, issue_csrf, read_checked_form, read_form, with_csrf_cookie};
use super::ratelimit::{Limit, RateLimiter, Refused};
use super::{Shared, api, security};
use crate::app::AppState;
use crate::guard;
use crate::notify::webhook::{self, WebhookError};
use crate::random::SystemRandom;
use crate::store::{StoreError, Subscription, normalise_domain};

/// How long a confirmation link stays valid, in seconds (48 hours).
pub const CONFIRM_TTL_SECS: i64 = 48 * 3600;
/// The longest accepted email address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest accepted webhook URL, in bytes.
pub const MAX_URL_CHARS: usize = 2000;
/// Subscription requests (form and API) per client address.
pub const PER_CLIENT: Limit = Limit {
    max: 5,
    period: Duration::from_secs(3600),
};
/// Subscription requests for everyone (bounds the confirmation mails and challenges the
/// service sends).
pub const GLOBAL: Limit = Limit {
    max: 100,
    period: Duration::from_secs(3600),
};
/// Unconfirmed subscriptions made in the last [`PENDING_WINDOW_SECS`] that one domain may
/// have; beyond, requests for the domain are refused until some expire or are confirmed.
pub const MAX_PENDING_PER_DOMAIN: usize = 20;
/// The window of [`MAX_PENDING_PER_DOMAIN`] (24 hours).
pub const PENDING_WINDOW_SECS: i64 = 86_400;
/// Subscriptions (all channels) one domain may have: confirmed or blocked ones, and pending
/// ones still within their confirmation deadline (expired ones are deleted by the sweep).
pub const MAX_PER_DOMAIN: usize = 500;
/// The whole webhook challenge (every redirect included) must finish within this, well
/// inside the request deadline ([`security::REQUEST_TIMEOUT`]).
pub const CHALLENGE_DEADLINE: Duration = Duration::from_secs(20);
/// An unconfirmed webhook subscription older than this is a leftover (a crash during its
/// challenge) and is replaced by a new request for the same URL.
pub const STALE_PENDING_SECS: i64 = 600;

/// The webhook documentation, as written in `docs/webhooks.md`.
pub const WEBHOOK_DOC: &str = include_str!("../../../../docs/webhooks.md");

/// The rate limiter of subscription requests ([`PER_CLIENT`], [`GLOBAL`]).
pub fn limiter() -> RateLimiter {
    RateLimiter::new(PER_CLIENT, GLOBAL)
}

/// The channels this instance offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Channels {
    /// Email (an SMTP relay is configured).
    pub email: bool,
    /// Webhooks.
    pub webhook: bool,
}

impl Channels {
    /// The channels of the application state ([`AppState::with_email`],
    /// [`AppState::with_webhooks`]).
    pub fn of(app: &AppState) -> Channels {
        Channels {
            email: app.email.is_some(),
            webhook: app.webhooks.is_some(),
        }
    }
}

/// A subscription request's target, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A mailbox (`local@domain`, the domain part in lower case).
    Email(String),
    /// An `https://` URL (or `http://` where private targets are allowed).
    Webhook(String),
}

/// Why a subscription request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The domain is not a domain name.
    #[error("{input:?} is not a domain name certwatch can check: {reason}")]
    InvalidDomain {
        /// The input (cut to 100 characters).
        input: String,
        /// Why.
        reason: String,
    },
    /// The service does not know the domain.
    #[error("{0} is not known to this service: check it first (its page, or POST /api/v1/checks)")]
    UnknownDomain(String),
    /// Neither or both of an email address and a webhook URL.
    #[error("give either an email address or a webhook URL (one of them)")]
    Target,
    /// The email address is not valid.
    #[error("this is not a valid email address: {0}")]
    Email(String),
    /// The webhook URL is not acceptable.
    #[error("this webhook URL is not acceptable: {0}")]
    Url(String),
    /// The channel is not configured on this instance.
    #[error("{0} subscriptions are not configured on this instance")]
    NotConfigured(&'static str),
    /// Too many requests.
    #[error("{}", refused_message(.0))]
    RateLimited(Refused),
    /// The domain has as many subscriptions as the service allows.
    #[error("{0}")]
    DomainFull(String),
    /// A challenge for the same URL and domain is running.
    #[error(
        "a subscription of this URL to this domain is being confirmed right now; try again in a few minutes"
    )]
    InFlight,
    /// The SSRF guard refused the URL or a redirect target.
    #[error("{0}")]
    Refused(String),
    /// The challenge failed.
    #[error("{0}")]
    Challenge(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused_message(r: &Refused) -> String {
    match r {
        Refused::Client { max, period, .. } => format!(
            "too many subscription requests from your address: at most {max} per {} s; try again in {} s",
            period.as_secs(),
            r.retry_after_secs()
        ),
        Refused::Global { max, period, .. } => format!(
            "the service takes at most {max} subscription requests per {} s from everyone; try again in {} s",
            period.as_secs(),
            r.retry_after_secs()
        ),
    }
}

impl SubscribeError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            SubscribeError::InvalidDomain { .. }
            | SubscribeError::Target
            | SubscribeError::Email(_)
            | SubscribeError::Url(_) => StatusCode::BAD_REQUEST,
            SubscribeError::UnknownDomain(_) => StatusCode::NOT_FOUND,
            SubscribeError::NotConfigured(_) => StatusCode::NOT_IMPLEMENTED,
            SubscribeError::RateLimited(_) | SubscribeError::DomainFull(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            SubscribeError::InFlight => StatusCode::CONFLICT,
            SubscribeError::Refused(_) | SubscribeError::Challenge(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            SubscribeError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SubscribeError::InvalidDomain { .. } => "invalid-domain",
            SubscribeError::UnknownDomain(_) => "not-found",
            SubscribeError::Target => "bad-request",
            SubscribeError::Email(_) => "invalid-email",
            SubscribeError::Url(_) => "invalid-url",
            SubscribeError::NotConfigured(_) => "not-configured",
            SubscribeError::RateLimited(_) => "rate-limited",
            SubscribeError::DomainFull(_) => "domain-full",
            SubscribeError::InFlight => "conflict",
            SubscribeError::Refused(_) => "refused-url",
            SubscribeError::Challenge(_) => "challenge-failed",
            SubscribeError::Store(_) => "internal",
        }
    }

    fn heading(&self) -> &'static str {
        match self {
            SubscribeError::InvalidDomain { .. } => "Invalid domain",
            SubscribeError::UnknownDomain(_) => "Domain not known yet",
            SubscribeError::Target | SubscribeError::Email(_) | SubscribeError::Url(_) => {
                "Subscription refused"
            }
            SubscribeError::NotConfigured(_) => "Not available here",
            SubscribeError::RateLimited(_) | SubscribeError::DomainFull(_) => {
                "Too many subscription requests"
            }
            SubscribeError::InFlight => "Already being confirmed",
            SubscribeError::Refused(_) => "Webhook URL refused",
            SubscribeError::Challenge(_) => "The webhook did not answer the challenge",
            SubscribeError::Store(_) => "Internal error",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            SubscribeError::RateLimited(r) => Some(r.retry_after_secs()),
            SubscribeError::DomainFull(_) => Some(3600),
            _ => None,
        }
    }

    /// The text shown to people (a store failure's details go to the log only).
    fn public_message(&self) -> String {
        match self {
            SubscribeError::Store(e) => {
                tracing::error!("subscribe: {e}");
                "The service could not read or write its database. Try again later.".to_owned()
            }
            SubscribeError::Challenge(_) | SubscribeError::Refused(_) => format!(
                "{self}. Nothing was stored. The receiver must answer the signed POST \
                 {{\"type\":\"challenge\",\"challenge\":\"C\"}} with a 2xx status and the JSON \
                 body {{\"challenge\":\"C\"}}; see the webhook documentation (/docs/webhooks)."
            ),
            other => format!("{other}."),
        }
    }

    /// The HTML error page.
    pub fn page(&self) -> Response {
        let mut r = error_page(self.status(), self.heading(), &self.public_message());
        self.add_retry_after(&mut r);
        r
    }

    /// The JSON error.
    pub fn json(&self) -> Response {
        let mut r = match self {
            SubscribeError::RateLimited(refused) => (
                self.status(),
                Json(json!({
                    "error": self.code(),
                    "message": self.public_message(),
                    "retry_after": refused.retry_after_secs(),
                })),
            )
                .into_response(),
            _ => api::error(self.status(), self.code(), &self.public_message()),
        };
        self.add_retry_after(&mut r);
        r
    }

    fn add_retry_after(&self, r: &mut Response) {
        if let Some(secs) = self.retry_after()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
}

/// What a successful subscription request did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// An email subscription: the confirmation mail is on its way (unless the address is
    /// already confirmed, which the answer does not say).
    EmailRequested {
        /// The domain (A-label).
        domain: String,
        /// The address.
        address: String,
    },
    /// A new webhook subscription, confirmed by its challenge.
    WebhookConfirmed {
        /// The domain (A-label).
        domain: String,
        /// The URL.
        url: String,
        /// The HMAC secret (hex), shown this once.
        secret: String,
        /// The unsubscribe token.
        unsubscribe_token: Option<String>,
    },
    /// The URL already receives the domain's alerts and answered a new challenge.
    WebhookExists {
        /// The domain (A-label).
        domain: String,
        /// The URL.
        url: String,
        /// The unsubscribe token.
        unsubscribe_token: Option<String>,
    },
}

/// Validates an email address with lettre's parser: a bare `local@domain` (no display
/// name), at most [`MAX_EMAIL_CHARS`]; the domain part is lower-cased.
pub fn parse_email(input: &str) -> Result<String, SubscribeError> {
    let input = input.trim();
    if input.len() > MAX_EMAIL_CHARS {
        return Err(SubscribeError::Email(format!(
            "longer than {MAX_EMAIL_CHARS} characters"
        )));
    }
    let address: lettre::Address = input
        .parse()
        .map_err(|e: lettre::address::AddressError| SubscribeError::Email(e.to_string()))?;
    Ok(format!(
        "{}@{}",
        address.user(),
        address.domain().to_ascii_lowercase()
    ))
}

/// Validates a webhook URL: `https://`, or `http://` only when `allow_http` (private
/// deployments, `allow_private_targets`); no user information, no spaces or control
/// characters, at most [`MAX_URL_CHARS`]. The addresses are checked later, by the
/// challenge's SSRF guard.
pub fn parse_webhook_url(input: &str, allow_http: bool) -> Result<String, SubscribeError> {
    let input = input.trim();
    if input.len() > MAX_URL_CHARS {
        return Err(SubscribeError::Url(format!(
            "longer than {MAX_URL_CHARS} characters"
        )));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SubscribeError::Url(
            "it contains spaces or control characters".into(),
        ));
    }
    let parsed = guard::parse_url(input).map_err(|e| SubscribeError::Url(e.to_string()))?;
    match parsed.scheme.as_str() {
        "https" => Ok(input.to_owned()),
        "http" if allow_http => Ok(input.to_owned()),
        _ => Err(SubscribeError::Url(
            "only https:// URLs are accepted on this instance".into(),
        )),
    }
}

fn given(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn target(
    email: Option<&str>,
    url: Option<&str>,
    allow_http: bool,
) -> Result<Target, SubscribeError> {
    match (given(email), given(url)) {
        (Some(e), None) => Ok(Target::Email(parse_email(e)?)),
        (None, Some(u)) => Ok(Target::Webhook(parse_webhook_url(u, allow_http)?)),
        _ => Err(SubscribeError::Target),
    }
}

/// The subscription request of the form and the API: validation, the domain, the rate
/// limit and the per-domain caps, then the channel's own steps.
pub async fn subscribe(
    web: &Shared,
    client: IpAddr,
    raw_domain: &str,
    email: Option<&str>,
    url: Option<&str>,
    digest: bool,
) -> Result<Outcome, SubscribeError> {
    let domain = normalise_domain(raw_domain).map_err(|e| match e {
        StoreError::InvalidDomain { reason, .. } => SubscribeError::InvalidDomain {
            input: raw_domain.chars().take(100).collect(),
            reason,
        },
        other => SubscribeError::Store(other),
    })?;
    let allow_http = web.app.config.allow_private_targets
        || web
            .app
            .webhooks
            .as_ref()
            .is_some_and(|c| c.options().allow_private);
    let target = target(email, url, allow_http)?;
    match &target {
        Target::Email(_) if web.app.email.is_none() => {
            return Err(SubscribeError::NotConfigured("email"));
        }
        Target::Webhook(_) if web.app.webhooks.is_none() => {
            return Err(SubscribeError::NotConfigured("webhook"));
        }
        _ => {}
    }
    let store = &web.app.store;
    let now = web.now();
    if store.domain_view(&domain, now).await?.is_none() {
        return Err(SubscribeError::UnknownDomain(domain));
    }
    web.subscribe_limit
        .check(client, web.uptime_now())
        .map_err(SubscribeError::RateLimited)?;
    let limit = u32::try_from(MAX_PER_DOMAIN + 1).unwrap_or(u32::MAX);
    let existing = store.subscriptions(Some(&domain), limit).await?;
    // Opt-ins never confirmed in time do not count (the sweep deletes them): a flood of
    // requests nobody confirms cannot fill a domain for good.
    let live = store.live_subscription_count(&domain, now).await?;
    if usize::try_from(live).unwrap_or(usize::MAX) >= MAX_PER_DOMAIN {
        return Err(SubscribeError::DomainFull(format!(
            "{domain} has as many subscriptions as this service allows ({MAX_PER_DOMAIN})"
        )));
    }
    let pending = existing
        .iter()
        .filter(|s| s.confirmed_at.is_none() && now - s.created_at < PENDING_WINDOW_SECS)
        .count();
    if pending >= MAX_PENDING_PER_DOMAIN {
        return Err(SubscribeError::DomainFull(format!(
            "{domain} has {MAX_PENDING_PER_DOMAIN} unconfirmed subscriptions made in the last 24 hours; try again later"
        )));
    }
    match target {
        Target::Email(address) => Ok(email_request(web, domain, address, now, digest)),
        Target::Webhook(url) => webhook_request(web, domain, url, &existing, now, digest).await,
    }
}

/// Records the opt-in subscription and sends the confirmation mail in the background: the
/// answer must not depend on whether the address was already subscribed, neither in its
/// words nor in its timing. A failure is logged. The daily-digest choice is recorded only
/// for a new (or renewed, still unconfirmed) opt-in: nobody can change a confirmed
/// subscriber's choice by subscribing the address again.
fn email_request(web: &Shared, domain: String, address: String, now: i64, digest: bool) -> Outcome {
    if let Some(sender) = web.app.email.clone() {
        let store = web.app.store.clone();
        let public_url = web.settings.public_url.clone();
        let (d, a) = (domain.clone(), address.clone());
        tokio::spawn(async move {
            match sender
                .subscribe(&store, &d, &a, now, CONFIRM_TTL_SECS, &public_url)
                .await
            {
                Ok(true) => {
                    if let Err(e) = store.set_digest_of(&d, "email", &a, digest).await {
                        tracing::warn!(domain = %d, error = %e, "email subscription: digest choice not recorded");
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(domain = %d, error = %e, "email subscription: confirmation not sent");
                }
            }
        });
    }
    Outcome::EmailRequested { domain, address }
}

async fn webhook_request(
    web: &Shared,
    domain: String,
    url: String,
    existing: &[Subscription],
    now: i64,
    digest: bool,
) -> Result<Outcome, SubscribeError> {
    let Some(client) = web.app.webhooks.clone() else {
        return Err(SubscribeError::NotConfigured("webhook"));
    };
    let store = &web.app.store;
    let secret = webhook::new_secret(&SystemRandom);
    let same = existing
        .iter()
        .find(|s| s.channel == "webhook" && s.address == url);
    if let Some(s) = same {
        if s.confirmed_at.is_some() {
            // Say so only to whoever controls the URL: the same challenge first (under a
            // throw-away secret), and the same failure as for a new URL.
            run_challenge(&client, &url, &secret).await?;
            // Whoever answered the challenge controls the URL: their digest choice holds.
            store.set_subscription_digest(s.id, digest).await?;
            let unsubscribe_token = store
                .enable_unsubscribe_token(&domain, "webhook", &url)
                .await?;
            return Ok(Outcome::WebhookExists {
                domain,
                url,
                unsubscribe_token,
            });
        }
        if now - s.created_at < STALE_PENDING_SECS {
            return Err(SubscribeError::InFlight);
        }
        store.remove_subscription(&domain, "webhook", &url).await?;
    }
    let Some(id) = store
        .add_pending_subscription(&domain, "webhook", &url, &secret, now)
        .await?
    else {
        return Err(SubscribeError::InFlight);
    };
    if let Err(e) = run_challenge(&client, &url, &secret).await {
        store.remove_subscription(&domain, "webhook", &url).await?;
        return Err(e);
    }
    store.set_subscription_digest(id, digest).await?;
    store.confirm_subscription(id, web.now()).await?;
    let unsubscribe_token = store
        .enable_unsubscribe_token(&domain, "webhook", &url)
        .await?;
    Ok(Outcome::WebhookConfirmed {
        domain,
        url,
        secret,
        unsubscribe_token,
    })
}

/// The challenge, bounded by [`CHALLENGE_DEADLINE`].
async fn run_challenge(
    client: &webhook::WebhookClient,
    url: &str,
    secret_hex: &str,
) -> Result<(), SubscribeError> {
    let secret = hex::decode(secret_hex).unwrap_or_default();
    let challenge = crate::random::token(&SystemRandom);
    match tokio::time::timeout(
        CHALLENGE_DEADLINE,
        client.challenge(url, &secret, &challenge),
    )
    .await
    {
        Err(_) => Err(SubscribeError::Challenge(format!(
            "no complete answer within {} s",
            CHALLENGE_DEADLINE.as_secs()
        ))),
        Ok(Err(WebhookError::Guard(g))) => Err(SubscribeError::Refused(format!(
            "refused by the SSRF guard (the URL or a redirect target): {g}"
        ))),
        Ok(Err(e)) => Err(SubscribeError::Challenge(e.to_string())),
        Ok(Ok(())) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// Pages

/// The "Get notified" section of a domain's result page and of its subscribe page.
pub fn section(domain: &str, csrf: &str, channels: Channels) -> Markup {
    let action = format!("/domains/{domain}/subscribe");
    html! {
        section aria-labelledby="notify" {
            h2 id="notify" { "Get notified" }
            p {
                "With a confirmed subscription certwatch watches " code { (domain) } " and sends one alert per incident: "
                "an interception confirmed from several vantage points, failing DNSSEC, signatures about to expire, "
                "a DANE endpoint that stopped offering TLS, or no conclusive check for hours (the monitor is blind); "
                "a reminder only after a quiet period, and a notice when it is over."
            }
            div class="columns" {
                section aria-labelledby="notify-email" {
                    h3 id="notify-email" { "By email" }
                    @if channels.email {
                        form method="post" action=(action) {
                            (csrf_field(csrf))
                            div class="field" {
                                label for="email" { "Email address" }
                                input type="email" id="email" name="email" required maxlength=(MAX_EMAIL_CHARS)
                                    autocomplete="email" autocapitalize="none" spellcheck="false"
                                    aria-describedby="email-hint";
                                p id="email-hint" class="hint" {
                                    "We send one message with a confirmation link, and nothing else before you follow it. "
                                    "Every message has an unsubscribe link that deletes your address."
                                }
                            }
                            div class="field" {
                                label {
                                    input type="checkbox" name="digest" value="on";
                                    " Also a daily digest: one message a day saying the monitor is alive, with the day's checks"
                                }
                            }
                            button type="submit" { "Subscribe by email" }
                        }
                    } @else {
                        p class="notice" { "Email is not configured on this instance." }
                    }
                }
                section aria-labelledby="notify-webhook" {
                    h3 id="notify-webhook" { "By webhook" }
                    @if channels.webhook {
                        form method="post" action=(action) {
                            (csrf_field(csrf))
                            div class="field" {
                                label for="webhook_url" { "Webhook URL (https)" }
                                input type="url" id="webhook_url" name="webhook_url" required maxlength=(MAX_URL_CHARS)
                                    autocomplete="off" autocapitalize="none" spellcheck="false"
                                    placeholder="https://hooks.example/certwatch"
                                    aria-describedby="webhook-hint";
                                p id="webhook-hint" class="hint" {
                                    "The URL must answer a signed challenge before anything is sent; then you see its secret, once. "
                                    a href="/docs/webhooks" { "How webhooks work" } "."
                                }
                            }
                            div class="field" {
                                label {
                                    input type="checkbox" name="digest" value="on";
                                    " Also a daily digest: one message a day saying the monitor is alive, with the day's checks"
                                }
                            }
                            button type="submit" { "Subscribe the webhook" }
                        }
                    } @else {
                        p class="notice" { "Webhooks are not configured on this instance." }
                    }
                }
            }
            p class="hint" {
                "Scripts: " code { "POST /api/v1/subscriptions" } " (" a href="/docs/api" { "API" } ")."
            }
        }
    }
}

fn html_page(status: StatusCode, title: &str, body: Markup) -> Response {
    respond(
        status,
        page(
            &Head {
                title,
                ..Head::default()
            },
            body,
        ),
    )
}

/// `GET /domains/{domain}/subscribe`: the subscription forms (400 for an invalid domain, a
/// redirect to the A-label form, 404 for a domain the service does not know).
pub async fn subscribe_page(
    State(web): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let domain = match normalise_domain(&raw) {
        Ok(d) => d,
        Err(StoreError::InvalidDomain { reason, .. }) => {
            return pages::invalid_domain(&raw, &reason);
        }
        Err(e) => return pages::internal(&e),
    };
    if domain != raw {
        return Redirect::permanent(&format!("/domains/{domain}/subscribe")).into_response();
    }
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    match web.app.store.domain_view(&domain, web.now()).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return with_csrf_cookie(
                SubscribeError::UnknownDomain(domain.clone()).page(),
                &issued,
            );
        }
        Err(e) => return pages::internal(&e),
    }
    let body = html! {
        h1 { "Alerts for " code { (domain) } }
        (section(&domain, &issued.token, Channels::of(&web.app)))
        p { a href={ "/domains/" (domain) } { "Back to the result" } }
    };
    let title = format!("Alerts for {domain}");
    with_csrf_cookie(html_page(StatusCode::OK, &title, body), &issued)
}

/// The fields of the subscription forms.
#[derive(Debug, Deserialize)]
pub struct SubscribeForm {
    /// An email address.
    #[serde(default)]
    pub email: Option<String>,
    /// A webhook URL.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The daily-digest checkbox (`on` when ticked).
    #[serde(default)]
    pub digest: Option<String>,
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

impl CsrfForm for SubscribeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /domains/{domain}/subscribe`: CSRF, then [`subscribe`], then the outcome's page.
pub async fn subscribe_submit(
    State(web): State<Shared>,
    Path(raw): Path<String>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: SubscribeForm = match read_checked_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let client = web.client(super::peer(&extensions), &headers);
    match subscribe(
        &web,
        client,
        &raw,
        form.email.as_deref(),
        form.webhook_url.as_deref(),
        form.digest
            .as_deref()
            .is_some_and(|v| matches!(v, "on" | "1" | "true")),
    )
    .await
    {
        Ok(outcome) => outcome_page(&outcome),
        Err(e) => e.page(),
    }
}

fn unsubscribe_path(token: &str) -> String {
    format!("/subscriptions/unsubscribe?token={token}")
}

fn outcome_page(outcome: &Outcome) -> Response {
    match outcome {
        Outcome::EmailRequested { domain, address } => {
            let body = html! {
                h1 { "Check your inbox" }
                p class="notice good" role="status" {
                    "If " code { (address) } " can receive mail, a message with a confirmation link for the alerts of "
                    code { (domain) } " is on its way. Nothing is sent to the address before the link is followed; "
                    "it is valid for " (CONFIRM_TTL_SECS / 3600) " hours. If the address already receives these alerts, nothing changes."
                }
                p { a href={ "/domains/" (domain) } { "Back to the result" } }
            };
            html_page(StatusCode::OK, "Check your inbox", body)
        }
        Outcome::WebhookConfirmed {
            domain,
            url,
            secret,
            unsubscribe_token,
        } => {
            let body = html! {
                h1 { "Webhook confirmed" }
                p class="notice good" role="status" {
                    code { (url) } " answered the challenge and now receives the alerts of " code { (domain) } "."
                }
                h2 { "Your secret (shown once)" }
                p { strong { "Store it now: " } "the service never shows it again. To get a new one, unsubscribe and subscribe again." }
                figure class="copy" {
                    figcaption { "HMAC-SHA256 key, hex (the key is the decoded bytes)" }
                    pre tabindex="0" { code id="secret" { (secret) } }
                }
                p {
                    "Every request carries " code { (webhook::SIGNATURE_HEADER) ": sha256=<hex HMAC-SHA256 of the raw body>" }
                    " and " code { (webhook::DELIVERY_HEADER) } " (deduplicate on it). "
                    a href="/docs/webhooks" { "Verifying the signature" } "."
                }
                @if let Some(t) = unsubscribe_token {
                    (unsubscribe_note(t))
                }
            };
            html_page(StatusCode::OK, "Webhook confirmed", body)
        }
        Outcome::WebhookExists {
            domain,
            url,
            unsubscribe_token,
        } => {
            let body = html! {
                h1 { "Already subscribed" }
                p class="notice" role="status" {
                    code { (url) } " answered the challenge; it already receives the alerts of " code { (domain) }
                    ". Its secret was shown once, when it was made. To get a new secret, unsubscribe, then subscribe again."
                }
                @if let Some(t) = unsubscribe_token {
                    (unsubscribe_note(t))
                }
            };
            html_page(StatusCode::OK, "Already subscribed", body)
        }
    }
}

fn unsubscribe_note(token: &str) -> Markup {
    html! {
        h2 { "Unsubscribing" }
        p {
            "Keep this link (or the token " code { (token) } " for "
            code { "POST /api/v1/subscriptions/unsubscribe" } "): "
            a href=(unsubscribe_path(token)) { "unsubscribe this webhook" } "."
        }
    }
}

/// `GET /docs/webhooks`: the webhook documentation, as a page.
pub async fn webhook_doc() -> Response {
    let body = html! {
        article class="doc" {
            (maud::PreEscaped(pages::markdown_to_html(WEBHOOK_DOC)))
        }
        p class="hint" { "The Markdown source: " a href="/docs/webhooks.md" { "/docs/webhooks.md" } "." }
    };
    html_page(StatusCode::OK, "Webhooks", body)
}

/// `GET /docs/webhooks.md`: the webhook documentation as Markdown text.
pub async fn webhook_doc_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        WEBHOOK_DOC,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Confirmation and unsubscribe links

/// Whether `token` looks like one of ours (32 lowercase hex digits), so that junk never
/// reaches the store.
pub fn plausible_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(Debug, Default, Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str::<TokenQuery>(q).ok())
        .and_then(|q| q.token)
        .map(|t| t.trim().to_owned())
}

/// The fields of the confirm and unsubscribe forms.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// The token.
    #[serde(default)]
    pub token: Option<String>,
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

impl CsrfForm for TokenForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

fn damaged_link(what: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Damaged link",
        &format!(
            "This {what} link is incomplete or damaged: it must end in token= and 32 hex digits. \
             Copy the whole link from the message. Nothing was changed."
        ),
    )
}

fn token_button_page(
    title: &str,
    lead: Markup,
    action: &str,
    token: &str,
    csrf: &str,
    button: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        (lead)
        form method="post" action=(action) {
            (csrf_field(csrf))
            input type="hidden" name="token" value=(token);
            button type="submit" { (button) }
        }
    };
    html_page(StatusCode::OK, title, body)
}

/// `GET /subscriptions/confirm?token=T`: a page with a button. Opening it changes nothing
/// (mail scanners fetch links).
pub async fn confirm_page(State(web): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(token) = query_token(&uri).filter(|t| plausible_token(t)) else {
        return damaged_link("confirmation");
    };
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let lead = html! {
        p { "Press the button to confirm the subscription to certwatch's alerts. Opening this page alone changes nothing." }
    };
    with_csrf_cookie(
        token_button_page(
            "Confirm your subscription",
            lead,
            "/subscriptions/confirm",
            &token,
            &issued.token,
            "Confirm the subscription",
        ),
        &issued,
    )
}

/// `POST /subscriptions/confirm`: confirms the subscription of the token, once. A replayed,
/// expired or forged token gets a 404 page and changes nothing.
pub async fn confirm_submit(
    State(web): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form: TokenForm = match read_checked_form(&web, &headers, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Some(token) = form
        .token
        .map(|t| t.trim().to_owned())
        .filter(|t| plausible_token(t))
    else {
        return damaged_link("confirmation");
    };
    match web.app.store.confirm_by_token(&token, web.now()).await {
        Ok(Some((domain, _channel, address))) => {
            let body = html! {
                h1 { "Subscription confirmed" }
                p class="notice good" role="status" {
                    code { (address) } " now receives the alerts of " code { (domain) }
                    ". Every message has a link that deletes the address."
                }
                p { a href={ "/domains/" (domain) } { "The domain's result" } }
            };
            html_page(StatusCode::OK, "Subscription confirmed", body)
        }
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This confirmation link is unknown, was already used, or has expired (links are valid for 48 hours). \
             Nothing was changed. Subscribe again from the domain's page to get a new link.",
        ),
        Err(e) => pages::internal(&e),
    }
}

/// `GET /subscriptions/unsubscribe?token=U`: a page with a button. Opening it changes
/// nothing.
pub async fn unsubscribe_page(State(web): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(token) = query_token(&uri).filter(|t| plausible_token(t)) else {
        return damaged_link("unsubscribe");
    };
    let issued = match issue_csrf(&web, &headers).await {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let lead = html! {
        p { "Press the button to delete your address from certwatch's alerts (with anything still waiting to be sent to it). Opening this page alone changes nothing." }
    };
    with_csrf_cookie(
        token_button_page(
            "Unsubscribe",
            lead,
            "/subscriptions/unsubscribe",
            &token,
            &issued.token,
            "Delete my subscription",
        ),
        &issued,
    )
}

/// Whether a POST body is RFC 8058's one-click unsubscribe (`List-Unsubscribe=One-Click`,
/// URL-encoded or multipart).
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let text = String::from_utf8_lossy(body);
        return text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click");
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).is_ok_and(|pairs| {
        pairs
            .iter()
            .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
    })
}

/// `POST /subscriptions/unsubscribe`: deletes the subscription of the token (and its
/// pending deliveries), and only that one. The page's form carries a CSRF token; an RFC
/// 8058 one-click POST (`List-Unsubscribe=One-Click`, the token in the URL) needs none.
pub async fn unsubscribe_submit(
    State(web): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) => {
            return match read_form::<TokenForm>(Err(rejection)) {
                Err(r) => *r,
                Ok(_) => pages::not_found().await,
            };
        }
    };
    let token = if is_one_click(&headers, &bytes) {
        query_token(&uri)
    } else {
        let form: TokenForm = match read_form(Ok(bytes)) {
            Ok(f) => f,
            Err(r) => return *r,
        };
        let keys = match web.keys().await {
            Ok(k) => k,
            Err(r) => return *r,
        };
        if let Err(e) = keys.csrf.verify(&headers, form.csrf()) {
            return pages::csrf_refused(e);
        }
        form.token.or_else(|| query_token(&uri))
    };
    let Some(token) = token
        .map(|t| t.trim().to_owned())
        .filter(|t| plausible_token(t))
    else {
        return damaged_link("unsubscribe");
    };
    match web.app.store.unsubscribe_by_token(&token).await {
        Ok(Some((domain, channel, address))) => {
            let body = html! {
                h1 { "Unsubscribed" }
                p class="notice good" role="status" {
                    "The " (channel) " subscription of " code { (address) } " to the alerts of " code { (domain) }
                    " is deleted, with anything still waiting to be sent to it. Nothing more will be sent."
                }
            };
            html_page(StatusCode::OK, "Unsubscribed", body)
        }
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link belongs to no subscription: it may already be deleted. Nothing was changed.",
        ),
        Err(e) => pages::internal(&e),
    }
}

// ---------------------------------------------------------------------------------------
// API

/// The body of `POST /api/v1/subscriptions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRequest {
    /// The domain.
    pub domain: String,
    /// An email address (double opt-in).
    #[serde(default)]
    pub email: Option<String>,
    /// A webhook URL (challenge).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Also a daily digest (default `false`).
    #[serde(default)]
    pub digest: bool,
}

/// The body of `POST /api/v1/subscriptions/unsubscribe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeRequest {
    /// The unsubscribe token.
    pub token: String,
}

/// Reads a JSON body (`Content-Type: application/json` required) into `T`.
fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    expected: &str,
) -> Result<T, Box<Response>> {
    let bytes = body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            api::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                &format!("the body is larger than {} bytes", security::MAX_BODY_BYTES),
            )
        } else {
            api::error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "the body could not be read",
            )
        })
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.starts_with("application/json;"));
    if !json {
        return Err(Box::new(api::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad-request",
            &format!("send Content-Type: application/json with {expected}"),
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(api::error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &format!("expected {expected}: {e}"),
        ))
    })
}

/// `POST /api/v1/subscriptions`: `{"domain", "email"}` (202, a confirmation mail) or
/// `{"domain", "webhook_url"}` (201 with the secret once the challenge is answered; 200
/// when the URL was already subscribed). Rate-limited like the form; no CSRF token (JSON
/// only).
pub async fn api_subscribe(
    State(web): State<Shared>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request: SubscriptionRequest = match read_json(
        &headers,
        body,
        "{\"domain\": ..., \"email\": ...} or {\"domain\": ..., \"webhook_url\": ...}",
    ) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let client = web.client(super::peer(&extensions), &headers);
    let outcome = match subscribe(
        &web,
        client,
        &request.domain,
        request.email.as_deref(),
        request.webhook_url.as_deref(),
        request.digest,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return e.json(),
    };
    match outcome {
        Outcome::EmailRequested { domain, .. } => (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "confirmation-requested",
                "channel": "email",
                "domain": domain,
                "message": format!(
                    "if the address can receive mail, a message with a confirmation link is on its way; \
                     nothing is sent to it before the link is followed (valid {} hours)",
                    CONFIRM_TTL_SECS / 3600
                ),
            })),
        )
            .into_response(),
        Outcome::WebhookConfirmed {
            domain,
            url,
            secret,
            unsubscribe_token,
        } => (
            StatusCode::CREATED,
            Json(json!({
                "status": "confirmed",
                "channel": "webhook",
                "domain": domain,
                "webhook_url": url,
                "secret": secret,
                "signature_header": webhook::SIGNATURE_HEADER,
                "delivery_header": webhook::DELIVERY_HEADER,
                "unsubscribe_token": unsubscribe_token,
                "documentation": "/docs/webhooks",
            })),
        )
            .into_response(),
        Outcome::WebhookExists {
            domain,
            url,
            unsubscribe_token,
        } => (
            StatusCode::OK,
            Json(json!({
                "status": "already-subscribed",
                "channel": "webhook",
                "domain": domain,
                "webhook_url": url,
                "unsubscribe_token": unsubscribe_token,
                "documentation": "/docs/webhooks",
            })),
        )
            .into_response(),
    }
}

/// `POST /api/v1/subscriptions/unsubscribe`: `{"token": U}` deletes that subscription (200),
/// `404 not-found` for an unknown token.
pub async fn api_unsubscribe(
    State(web): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request: UnsubscribeRequest = match read_json(&headers, body, "{\"token\": ...}") {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let token = request.token.trim();
    if !plausible_token(token) {
        return api::error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the token is 32 lowercase hex digits",
        );
    }
    match web.app.store.unsubscribe_by_token(token).await {
        Ok(Some((domain, channel, address))) => Json(json!({
            "status": "deleted",
            "domain": domain,
            "channel": channel,
            "address": address,
        }))
        .into_response(),
        Ok(None) => api::error(
            StatusCode::NOT_FOUND,
            "not-found",
            "no subscription has this token (already deleted?)",
        ),
        Err(e) => SubscribeError::Store(e).json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_validated() {
        assert_eq!(
            parse_email(" Alice@Example.NET ").unwrap(),
            "Alice@example.net"
        );
        for bad in [
            "alice",
            "alice@",
            "@example.net",
            "Alice <alice@example.net>",
            "a b@example.net",
            "alice@example.net\r\nBcc: x@y.z",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.net", "a".repeat(250));
        assert!(parse_email(&long).is_err());
    }

    #[test]
    fn webhook_urls_are_validated() {
        assert!(parse_webhook_url("https://hooks.example/x", false).is_ok());
        assert!(parse_webhook_url("http://hooks.example/x", false).is_err());
        assert!(parse_webhook_url("http://hooks.example/x", true).is_ok());
        for bad in [
            "ftp://hooks.example/",
            "https://user:pw@hooks.example/",
            "https://hooks.example/a b",
            "https://hooks.example/\u{7}",
            "hooks.example",
        ] {
            assert!(parse_webhook_url(bad, true).is_err(), "{bad}");
        }
        let long = format!("https://hooks.example/{}", "a".repeat(MAX_URL_CHARS));
        assert!(parse_webhook_url(&long, true).is_err());
    }

    #[test]
    fn tokens_must_look_like_ours() {
        assert!(plausible_token("0123456789abcdef0123456789abcdef"));
        assert!(!plausible_token("0123456789ABCDEF0123456789abcdef"));
        assert!(!plausible_token("0123456789abcdef"));
        assert!(!plausible_token("0123456789abcdef0123456789abcdeg"));
    }

    #[test]
    fn one_click_bodies_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(is_one_click(&h, b"List-Unsubscribe=One-Click"));
        assert!(!is_one_click(&h, b"token=abc&csrf=x"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        assert!(is_one_click(
            &h,
            b"--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n"
        ));
    }
}
