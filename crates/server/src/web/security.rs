//! The security headers on every response, and the body size limit.
//!
//! The pages use no script at all and one same-origin stylesheet, so the
//! Content-Security-Policy allows nothing else: `default-src 'none'`, styles and images from
//! the site itself, forms posting only to the site, no framing.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The largest request body accepted, in bytes. A domain name is at most 253 octets; a
/// removal request carries a short message.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The deadline of one request (a database that hangs must not hold connections forever):
/// past it the answer is `503 Service Unavailable`.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The headers added to every response (unless the handler set its own value).
pub const HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    ),
];

/// `Strict-Transport-Security`, sent when the site's public URL is `https://`.
pub const HSTS: &str = "max-age=31536000";

/// Middleware: adds [`HEADERS`] to the response, [`HSTS`] when `https` is true, and
/// `Cache-Control: no-store` when the handler set no caching policy (pages carry CSRF tokens
/// and fresh results).
pub async fn headers(State(https): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if https {
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    for (name, value) in HEADERS {
        h.entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
