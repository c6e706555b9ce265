//! Webhooks: signed JSON POSTs through the SSRF guard (`docs/webhooks.md`).
//!
//! - Every hop (the URL and each redirect, at most [`WebhookOptions::max_redirects`]) is
//!   parsed and resolved by [`crate::guard`], each address checked, and the connection made
//!   to a checked address (never a re-resolved name); the `Host` header and TLS server name
//!   are the URL's host.
//! - Each connection, and each whole exchange, has a timeout; the response body is read up
//!   to [`WebhookOptions::max_response_bytes`].
//! - The body is signed: `X-Certwatch-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`,
//!   and carries `X-Certwatch-Delivery: <id>` (the outbox's stable delivery id).
//! - A subscription is used only after it answered a challenge ([`WebhookClient::challenge`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::guard::{self, GuardError};
use crate::store::{Delivery, RetryPolicy, Store, StoreError};

/// The header carrying the body's HMAC.
pub const SIGNATURE_HEADER: &str = "X-Certwatch-Signature-256";
/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "X-Certwatch-Delivery";

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The SSRF guard refused the URL or a redirect target.
    #[error("refused by the SSRF guard: {}", redact(&.0.to_string()))]
    Guard(#[from] GuardError),
    /// No checked address accepted a connection in time.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The exchange did not finish in time.
    #[error("{host}: no complete answer within {timeout:?}")]
    Timeout {
        /// The host (never the whole URL: its path may carry a token).
        host: String,
        /// The limit.
        timeout: Duration,
    },
    /// The whole delivery (every hop) did not finish within its deadline.
    #[error("{host}: the delivery did not finish within {timeout:?}")]
    Deadline {
        /// The host.
        host: String,
        /// The deadline.
        timeout: Duration,
    },
    /// TLS or HTTP failed.
    #[error("{host}: {reason}")]
    Protocol {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The answer's body is larger than the bound.
    #[error("{host}: response body larger than {limit} bytes")]
    TooLarge {
        /// The host.
        host: String,
        /// The bound.
        limit: usize,
    },
    /// More redirects than allowed, one without a usable `Location`, or one from https to
    /// http.
    #[error("{host}: {reason}")]
    Redirect {
        /// The host that redirected.
        host: String,
        /// Why it was not followed.
        reason: String,
    },
    /// The receiver answered with a non-2xx status.
    #[error("{host}: HTTP status {status}")]
    Status {
        /// The host.
        host: String,
        /// The status.
        status: u16,
    },
    /// The challenge was not echoed back.
    #[error("{host}: the challenge was not answered")]
    Challenge {
        /// The host.
        host: String,
    },
    /// The subscription has no usable secret.
    #[error("subscription {0} has no usable webhook secret")]
    NoSecret(i64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Limits and policy of the webhook client.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Per TCP connection attempt.
    pub connect_timeout: Duration,
    /// Per hop: TLS, request and the whole response.
    pub request_timeout: Duration,
    /// Per name resolution.
    pub resolve_timeout: Duration,
    /// The largest response body read.
    pub max_response_bytes: usize,
    /// Redirects followed (each target re-checked by the guard).
    pub max_redirects: u8,
    /// Allow special-use addresses (tests, private deployments): `allow_private_targets`.
    pub allow_private: bool,
    /// Special-use addresses allowed anyway (tests: the in-process receiver only).
    pub exempt: Vec<IpAddr>,
    /// One delivery's overall deadline, every redirect hop included (the outbox pass counts
    /// it as a failed attempt after it).
    pub delivery_deadline: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            resolve_timeout: Duration::from_secs(5),
            max_response_bytes: 64 * 1024,
            max_redirects: 3,
            allow_private: false,
            exempt: Vec::new(),
            delivery_deadline: super::worker::WEBHOOK_DEADLINE,
        }
    }
}

/// A receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The final status (after redirects).
    pub status: u16,
    /// The body (at most the bound).
    pub body: Vec<u8>,
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// Whether `header` is the signature of `body` under `secret` (constant time).
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_tag) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_tag) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// The JSON body of an alert delivery (`docs/webhooks.md`). `public_url` (no trailing
/// slash) makes the links: `evidence_url` is the alert's signed evidence bundle (`null`
/// when its check made none, as for `blind`), `evidence_key_url` the key that verifies it.
pub fn alert_body(d: &Delivery, public_url: &str) -> Vec<u8> {
    if super::digest::is_digest(d) {
        return super::digest::webhook_body(d, public_url);
    }
    let base = public_url.trim_end_matches('/');
    let evidence_url = d
        .alert
        .evidence_id
        .map(|id| format!("{base}/domains/{}/evidence/{id}.json", d.alert.domain));
    let body = serde_json::json!({
        "type": "alert",
        "delivery_id": d.id,
        "domain": d.alert.domain,
        "condition": d.alert.condition,
        "kind": d.alert.kind,
        "incident_id": d.alert.incident_id,
        "incident_opened_at": d.alert.opened_at,
        "at": d.alert.at,
        "check_id": d.alert.check_id,
        "detail": d.alert.detail,
        "domain_url": format!("{base}/domains/{}", d.alert.domain),
        "evidence_url": evidence_url,
        "evidence_key_url": format!("{base}/.well-known/certwatch-evidence-key.json"),
    });
    body.to_string().into_bytes()
}

/// The webhook client.
#[derive(Clone)]
pub struct WebhookClient {
    options: WebhookOptions,
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client with these options; https trusts the webpki roots (ring provider).
    pub fn new(options: WebhookOptions) -> Result<WebhookClient, WebhookError> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Protocol {
            host: String::new(),
            reason: format!("TLS configuration: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(WebhookClient {
            options,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The options.
    pub fn options(&self) -> &WebhookOptions {
        &self.options
    }

    /// POSTs `body` (JSON) with `headers` to `url`, following at most `max_redirects`
    /// redirects, each target checked by the guard. Returns the final answer, whatever its
    /// status.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<WebhookResponse, WebhookError> {
        let mut url = url.to_owned();
        let mut hops = 0u8;
        loop {
            let pinned = self.pin(&url).await?;
            let stream = self.connect(&pinned).await?;
            let timeout = self.options.request_timeout;
            let exchange = self.exchange(stream, &pinned, headers, body);
            let (status, location, answer) = tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| WebhookError::Timeout {
                    host: pinned.url.host.clone(),
                    timeout,
                })??;
            if !(300..400).contains(&status) || status == 304 {
                return Ok(WebhookResponse {
                    status,
                    body: answer,
                });
            }
            let redirect = |reason: String| WebhookError::Redirect {
                host: pinned.url.host.clone(),
                reason,
            };
            if hops >= self.options.max_redirects {
                return Err(redirect(format!(
                    "more than {} redirects",
                    self.options.max_redirects
                )));
            }
            let Some(location) = location else {
                return Err(redirect(format!("status {status} without a Location")));
            };
            let next = resolve_location(&pinned.url, &location)
                .ok_or_else(|| redirect("unusable Location".into()))?;
            if is_downgrade(&pinned.url, &next) && !self.options.allow_private {
                return Err(redirect(
                    "refused: a redirect from https to http (the body and its signature \
                     would travel in clear text)"
                        .into(),
                ));
            }
            url = next;
            hops += 1;
        }
    }

    /// Parses and resolves `url`, checking every address (with the test exemptions).
    async fn pin(&self, url: &str) -> Result<guard::PinnedUrl, WebhookError> {
        let pinned = guard::resolve_url(url, true, self.options.resolve_timeout).await?;
        for a in &pinned.addrs {
            let allowed = self.options.allow_private || self.options.exempt.contains(&a.ip());
            guard::check_ip(a.ip(), allowed)?;
        }
        Ok(pinned)
    }

    async fn connect(&self, pinned: &guard::PinnedUrl) -> Result<TcpStream, WebhookError> {
        let mut last = String::from("no address");
        for addr in pinned.addrs.iter().take(4) {
            match tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(*addr))
                .await
            {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => {
                    last = format!(
                        "{addr}: no answer within {:?}",
                        self.options.connect_timeout
                    )
                }
            }
        }
        Err(WebhookError::Connect {
            host: pinned.url.host.clone(),
            reason: last,
        })
    }

    async fn exchange(
        &self,
        stream: TcpStream,
        pinned: &guard::PinnedUrl,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(u16, Option<String>, Vec<u8>), WebhookError> {
        let url = pinned.url.host.as_str();
        if pinned.url.scheme == "https" {
            let name = rustls::pki_types::ServerName::try_from(pinned.url.host.clone())
                .map_err(|e| protocol(url, format!("TLS server name: {e}")))?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| protocol(url, format!("TLS: {e}")))?;
            self.http(tls, pinned, headers, body).await
        } else {
            self.http(stream, pinned, headers, body).await
        }
    }

    async fn http<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
        &self,
        io: IO,
        pinned: &guard::PinnedUrl,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(u16, Option<String>, Vec<u8>), WebhookError> {
        let url = pinned.url.host.as_str();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| protocol(url, format!("HTTP: {e}")))?;
        let driver = tokio::spawn(conn);
        let host = match (pinned.url.scheme.as_str(), pinned.url.port) {
            ("http", 80) | ("https", 443) => host_header(&pinned.url.host),
            (_, port) => format!("{}:{port}", host_header(&pinned.url.host)),
        };
        let mut request = hyper::Request::post(pinned.url.path.as_str())
            .header("host", host)
            .header("content-type", "application/json")
            .header("user-agent", "certwatch-server")
            .header("connection", "close");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| protocol(url, format!("request: {e}")))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| protocol(url, format!("HTTP: {e}")))?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let limit = self.options.max_response_bytes;
            let collected = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|_| WebhookError::TooLarge {
                    host: url.to_owned(),
                    limit,
                })?;
            Ok((status, location, collected.to_bytes().to_vec()))
        }
        .await;
        driver.abort();
        result
    }

    /// Sends one alert delivery: the body of [`alert_body`], signed with `secret`, with the
    /// delivery id. `Ok` on a 2xx answer.
    pub async fn deliver(
        &self,
        d: &Delivery,
        secret: &[u8],
        public_url: &str,
    ) -> Result<(), WebhookError> {
        let body = alert_body(d, public_url);
        let headers = [
            (SIGNATURE_HEADER, signature(secret, &body)),
            (DELIVERY_HEADER, d.id.clone()),
        ];
        let answer = self.post(&d.address, &headers, &body).await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(WebhookError::Status {
                host: host_of(&d.address),
                status: answer.status,
            })
        }
    }

    /// The confirmation challenge: POSTs `{"type":"challenge","challenge":C}` (signed) and
    /// requires a 2xx answer whose JSON body has `"challenge": C`. Proves that the receiver
    /// wants the alerts (and knows the secret, if it checks the signature).
    pub async fn challenge(
        &self,
        url: &str,
        secret: &[u8],
        challenge: &str,
    ) -> Result<(), WebhookError> {
        let body = serde_json::json!({"type": "challenge", "challenge": challenge})
            .to_string()
            .into_bytes();
        let headers = [
            (SIGNATURE_HEADER, signature(secret, &body)),
            (DELIVERY_HEADER, format!("challenge-{challenge}")),
        ];
        let answer = self.post(url, &headers, &body).await?;
        if !(200..300).contains(&answer.status) {
            return Err(WebhookError::Status {
                host: host_of(url),
                status: answer.status,
            });
        }
        let echoed = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.get("challenge")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            });
        if echoed.as_deref() == Some(challenge) {
            Ok(())
        } else {
            Err(WebhookError::Challenge { host: host_of(url) })
        }
    }
}

fn protocol(host: &str, reason: String) -> WebhookError {
    WebhookError::Protocol {
        host: host.to_owned(),
        reason,
    }
}

/// The host of a webhook URL, for logs and stored errors (the path and query of a webhook
/// URL are often a bearer token: Slack, Discord).
pub fn host_of(url: &str) -> String {
    guard::parse_url(url)
        .map(|u| u.host)
        .unwrap_or_else(|_| "(unusable URL)".into())
}

/// `text` fit for logs and the stored `last_error`: every URL cut to its scheme and host (no
/// user information, path, query or fragment), every word with an `@` (an email address)
/// replaced by `(address)`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if let Some(at) = word.find("://") {
            let (scheme, rest) = word.split_at(at + 3);
            let authority = rest
                .split(['/', '?', '#', '"', '\'', '>', ')'])
                .next()
                .unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            out.push_str(scheme);
            out.push_str(host);
            if authority.len() < rest.len() {
                out.push_str("/…");
            }
        } else if word.contains('@') {
            out.push_str("(address)");
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Whether following a redirect from `from` to `to` turns https into http.
fn is_downgrade(from: &guard::OutboundUrl, to: &str) -> bool {
    from.scheme == "https"
        && to
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
}

fn host_header(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The absolute URL of a `Location` relative to `base` (absolute URLs and absolute paths).
fn resolve_location(base: &guard::OutboundUrl, location: &str) -> Option<String> {
    let location = location.trim();
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(format!(
            "{}://{}:{}{}",
            base.scheme,
            host_header(&base.host),
            base.port,
            location
        ));
    }
    None
}

/// What one outbox pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxPass {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Delivered (2xx).
    pub delivered: usize,
    /// Failed this attempt (retried later, or failed for good).
    pub failed: usize,
}

impl OutboxPass {
    /// The pass of a channel's sends (`true` delivered, `false` a failed attempt); the first
    /// store error, if any, after every send was counted as claimed.
    pub fn tally(results: Vec<Result<bool, StoreError>>) -> Result<OutboxPass, StoreError> {
        let mut pass = OutboxPass::default();
        let mut first_error = None;
        for r in results {
            pass.claimed += 1;
            match r {
                Ok(true) => pass.delivered += 1,
                Ok(false) => pass.failed += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(pass),
        }
    }
}

/// One pass of the outbox worker for webhooks: claims up to `max` due deliveries (leased
/// for `lease` seconds) of the `webhook` channel, sends them concurrently
/// ([`super::worker::send_bounded`]), each under [`WebhookOptions::delivery_deadline`], and
/// marks each delivered or failed (the store's backoff). Other channels are left to their own
/// loop. `now` is injected.
#[allow(clippy::too_many_arguments)]
pub async fn run_outbox_once(
    store: &Store,
    client: &WebhookClient,
    instance: &str,
    now: i64,
    lease: i64,
    max: u32,
    retry: RetryPolicy,
    public_url: &str,
) -> Result<OutboxPass, WebhookError> {
    let claimed = store
        .claim_channel_deliveries("webhook", instance, now, lease, max)
        .await?;
    let items = claimed
        .into_iter()
        .map(|d| (host_of(&d.address), d))
        .collect::<Vec<_>>();
    let results = super::worker::send_bounded(items, |d| {
        send_one(store, client, d, now, retry, public_url)
    })
    .await;
    Ok(OutboxPass::tally(results)?)
}

/// Sends one claimed delivery under the deadline and records the outcome: `true` delivered,
/// `false` a failed attempt.
async fn send_one(
    store: &Store,
    client: &WebhookClient,
    d: Delivery,
    now: i64,
    retry: RetryPolicy,
    public_url: &str,
) -> Result<bool, StoreError> {
    let host = host_of(&d.address);
    let secret = store
        .subscription_secret(d.subscription_id)
        .await?
        .and_then(|s| hex::decode(s.trim()).ok())
        .filter(|s| s.len() >= 16);
    super::worker::failpoint("before-send", &d.id).await;
    let deadline = client.options.delivery_deadline;
    let result = match secret {
        Some(secret) => tokio::time::timeout(deadline, client.deliver(&d, &secret, public_url))
            .await
            .unwrap_or_else(|_| {
                Err(WebhookError::Deadline {
                    host: host.clone(),
                    timeout: deadline,
                })
            }),
        None => Err(WebhookError::NoSecret(d.subscription_id)),
    };
    match result {
        Ok(()) => super::worker::delivered(store, &d.id, now).await,
        Err(e) => {
            let error = redact(&e.to_string());
            tracing::warn!(delivery = %d.id, host = %host, error = %error, "webhook delivery failed");
            store.mark_attempt_failed(&d.id, now, &error, retry).await?;
            Ok(false)
        }
    }
}

/// A fresh webhook secret: 256 random bits, hex.
pub fn new_secret(random: &dyn crate::random::Random) -> String {
    let mut b = [0u8; 32];
    random.fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231, test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(!verify_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig
        ));
        assert!(!verify_signature(b"Jefe", b"x", "md5=00"));
    }

    #[test]
    fn logged_errors_name_hosts_only() {
        assert_eq!(
            redact(
                "refused by the SSRF guard: \"https://u:p@hooks.slack.com/services/T0/B1/XyZ?x=1\": bad"
            ),
            "refused by the SSRF guard: \"https://hooks.slack.com/… bad"
        );
        assert_eq!(
            redact("SMTP: 550 5.1.1 <bob@example.org>: Recipient address rejected"),
            "SMTP: 550 5.1.1 (address) Recipient address rejected"
        );
        assert_eq!(redact("http://[::1]:8080"), "http://[::1]:8080");
        let e = WebhookError::Status {
            host: host_of("https://discord.com/api/webhooks/123/t0ken"),
            status: 500,
        };
        assert_eq!(e.to_string(), "discord.com: HTTP status 500");
        let e = WebhookError::Guard(guard::parse_url("ftp://x.example/t0ken").unwrap_err());
        assert!(!e.to_string().contains("t0ken"), "{e}");
    }

    #[test]
    fn redirects_from_https_to_http_are_downgrades() {
        let https = guard::parse_url("https://hooks.example/a").unwrap();
        let http = guard::parse_url("http://hooks.example/a").unwrap();
        let next = |base: &guard::OutboundUrl, loc: &str| resolve_location(base, loc).unwrap();
        assert!(is_downgrade(
            &https,
            &next(&https, "http://hooks.example/b")
        ));
        assert!(is_downgrade(&https, "HTTP://other.example/b"));
        assert!(!is_downgrade(
            &https,
            &next(&https, "https://other.example/b")
        ));
        assert!(!is_downgrade(&https, &next(&https, "/b")));
        assert!(!is_downgrade(&http, &next(&http, "http://hooks.example/b")));
        assert!(!is_downgrade(
            &http,
            &next(&http, "https://hooks.example/b")
        ));
    }

    #[test]
    fn locations_resolve_against_the_hop() {
        let base = guard::parse_url("https://hooks.example:8443/a/b").unwrap();
        assert_eq!(
            resolve_location(&base, "/c").as_deref(),
            Some("https://hooks.example:8443/c")
        );
        assert_eq!(
            resolve_location(&base, "http://10.0.0.1/x").as_deref(),
            Some("http://10.0.0.1/x")
        );
        assert_eq!(resolve_location(&base, "//evil.example/x"), None);
        assert_eq!(resolve_location(&base, "relative"), None);
        assert_eq!(resolve_location(&base, "ftp://x/"), None);
    }
}
