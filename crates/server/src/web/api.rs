//! The JSON API (`/api/v1/...`), `/healthz` and `/metrics`. Documented in `docs/api.md`.
//!
//! Errors are JSON objects `{"error": "<code>", "message": "<text>"}` with a fitting status:
//! `invalid-domain` (400), `not-found` (404), `bad-request` (400), `too-large` (413),
//! `rate-limited` (429, with `Retry-After`), `internal` (500).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use certwatch::Report;

use super::pages::{plausible_ticket, rate_limited};
use super::{Shared, security};
use crate::store::{StoreError, TicketState, normalise_domain};

/// A JSON error response.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!("api: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the service could not read or write its database",
    )
}

fn invalid_domain(e: StoreError) -> Response {
    match e {
        StoreError::InvalidDomain { input, reason } => error(
            StatusCode::BAD_REQUEST,
            "invalid-domain",
            &format!("{input:?} is not a domain name certwatch can check: {reason}"),
        ),
        other => internal(&other),
    }
}

/// `GET /api/v1/domains/{domain}`: the stored report, in the CLI's JSON schema
/// (`docs/json.md`). 400 for an invalid domain, 404 for a domain without a stored report.
pub async fn domain(State(web): State<Shared>, Path(raw): Path<String>) -> Response {
    let domain = match normalise_domain(&raw) {
        Ok(d) => d,
        Err(e) => return invalid_domain(e),
    };
    match web.app.store.domain_view(&domain, web.now()).await {
        Ok(Some(view)) => match view.report {
            Some(report) => Json(report).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!(
                    "{domain} has no stored report yet{}",
                    if view.pending_ticket.is_some() {
                        " (a check is running)"
                    } else {
                        ""
                    }
                ),
            ),
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{domain} is not known to this service; POST /api/v1/checks to check it"),
        ),
        Err(e) => internal(&e),
    }
}

/// The body of `POST /api/v1/checks`.
#[derive(Debug, Deserialize)]
pub struct CheckRequest {
    /// The domain as typed.
    pub domain: String,
}

/// Reads a check request from a JSON or form body.
fn read_request(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<CheckRequest, Box<Response>> {
    let bytes = body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                &format!("the body is larger than {} bytes", security::MAX_BODY_BYTES),
            )
        } else {
            error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "the body could not be read",
            )
        })
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let parsed = if content_type.starts_with("application/json") {
        serde_json::from_slice::<CheckRequest>(&bytes).map_err(|e| e.to_string())
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes::<CheckRequest>(&bytes).map_err(|e| e.to_string())
    } else {
        return Err(Box::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad-request",
            "send application/json ({\"domain\": \"example.org\"}) or application/x-www-form-urlencoded (domain=example.org)",
        )));
    };
    parsed.map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &format!("expected a body with the field \"domain\": {e}"),
        ))
    })
}

/// `POST /api/v1/checks`: starts an on-demand check (rate-limited) and answers 202 with
/// `Location: /api/v1/checks/{id}`.
pub async fn create_check(
    State(web): State<Shared>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match read_request(&headers, body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let domain = match normalise_domain(&request.domain) {
        Ok(d) => d,
        Err(e) => return invalid_domain(e),
    };
    let client = web.client(super::peer(&extensions), &headers);
    if let Err(refused) = web.checks_limit.check(client, web.uptime_now()) {
        return rate_limited(&refused, true);
    }
    let ticket = match web.request_check(&domain).await {
        Ok(t) => t,
        Err(e) => return invalid_domain(e),
    };
    let poll = format!("/api/v1/checks/{}", ticket.id);
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({
            "id": ticket.id,
            "domain": ticket.domain,
            "state": "queued",
            "poll": poll,
            "result": format!("/api/v1/domains/{}", ticket.domain),
            "page": format!("/domains/{}", ticket.domain),
            "deduplicated": ticket.deduplicated,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&poll) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Notes about a finished report that an API client should see in words: targets refused
/// for being private addresses.
pub fn notes(report: &Report) -> Vec<String> {
    report
        .endpoints
        .iter()
        .filter_map(|e| e.error.as_ref().filter(|x| x.class == "private-address"))
        .map(|x| format!("refused (private address): {}", x.message))
        .collect()
}

/// `GET /api/v1/checks/{id}`: where an on-demand check stands; when done, the report.
pub async fn ticket(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    if !plausible_ticket(&id) {
        return error(StatusCode::NOT_FOUND, "not-found", "no such check");
    }
    let state = match web.app.store.ticket(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => return error(StatusCode::NOT_FOUND, "not-found", "no such check"),
        Err(e) => return internal(&e),
    };
    let body: Value = match state {
        TicketState::Queued => json!({ "id": id, "state": "queued" }),
        TicketState::Running => json!({ "id": id, "state": "running" }),
        TicketState::Done(report) => json!({
            "id": id,
            "state": "done",
            "domain": report.domain,
            "verdict": report.verdict,
            "notes": notes(&report),
            "result": format!("/api/v1/domains/{}", report.domain),
            "report": report,
        }),
        TicketState::Failed(why) => json!({ "id": id, "state": "failed", "message": why }),
    };
    Json(body).into_response()
}

/// `GET /healthz`: 503 (`unavailable`) when the store does not answer or the transport is
/// not ready; otherwise 200 with `status` `degraded` when the service is blind (domains are
/// watched but none had a conclusive check within `blind_after`) or the outbox's oldest
/// pending delivery is older than `outbox_stale_after`, else `ok`. Details as JSON.
pub async fn healthz(State(web): State<Shared>) -> Response {
    let now = web.now();
    let heartbeat = web.app.store.heartbeat(now).await;
    let store_ok = heartbeat.is_ok();
    web.app.metrics.set_store_ok(store_ok);
    let h = web.app.metrics.health();
    let tor = match &h.tor {
        crate::metrics::TorState::NotUsed => "not-used".to_owned(),
        crate::metrics::TorState::Ready => "ready".to_owned(),
        crate::metrics::TorState::Bootstrapping { fraction, .. } => {
            format!("bootstrapping {:.0}%", fraction * 100.0)
        }
        crate::metrics::TorState::Failed(why) => format!("failed: {why}"),
    };
    let config = &web.app.config;
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let hb = heartbeat.unwrap_or_default();
    let blind = store_ok && hb.blind(now, secs(config.blind_after));
    let stale = store_ok && hb.outbox_stale(now, secs(config.outbox_stale_after));
    let ok = h.ok();
    let (status, word) = if !ok {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if blind || stale {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    let age = |t: Option<i64>| t.map(|t| now.saturating_sub(t).max(0));
    // The newest conclusive check: from the database (all instances, across restarts),
    // else this process's own count.
    let last_conclusive_at = hb.last_conclusive_at.or(h.last_conclusive_at);
    (
        status,
        Json(json!({
            "status": word,
            "store_ok": h.store_ok,
            "tor": tor,
            "scheduler_lag_seconds": h.scheduler_lag_seconds,
            "scheduler_alive_at": h.scheduler_alive_at,
            "last_check_at": h.last_check_at,
            "last_conclusive_at": last_conclusive_at,
            "seconds_since_last_conclusive": age(last_conclusive_at),
            "watched_domains": hb.watched,
            "oldest_watched_conclusive_age_seconds": age(hb.stalest_watched_at),
            "blind": blind,
            "blind_after_seconds": secs(config.blind_after),
            "outbox": {
                "pending": hb.pending,
                "oldest_pending_age_seconds": age(hb.oldest_pending_at),
                "failed": hb.failed,
                "stale": stale,
                "stale_after_seconds": secs(config.outbox_stale_after),
            },
            "running": h.running,
        })),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text exposition format: the process's counters, then the
/// heartbeat from the database (omitted if the store does not answer).
pub async fn metrics(State(web): State<Shared>) -> Response {
    let now = web.now();
    let mut text = web.app.metrics.render_prometheus();
    match web.app.store.heartbeat(now).await {
        Ok(hb) => {
            let blind_after =
                i64::try_from(web.app.config.blind_after.as_secs()).unwrap_or(i64::MAX);
            text.push_str(&crate::metrics::render_heartbeat(&hb, now, blind_after));
        }
        Err(e) => tracing::warn!("metrics: heartbeat: {e}"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
