//! Evidence bundles on the site (issue 9, `docs/evidence.md`): the signed bundles of a
//! domain's checks, and the service's public key that verifies them.
//!
//! - `GET /domains/{domain}/evidence/latest.json`: the domain's newest bundle;
//! - `GET /domains/{domain}/evidence/{id}.json`: bundle `id` (the one an alert links to);
//!   404 for an unknown id and for another domain's;
//! - `GET /evidence-key`: the public key, for people, with how to verify a bundle;
//! - `GET /.well-known/certwatch-evidence-key.json`:
//!   `{"algorithm":"ed25519","public_key":"<base64>","public_key_hex":"<hex>","key_id":"<hex>"}`.
//!
//! Bundles are served byte for byte as signed, as `application/json` with
//! `Content-Disposition: attachment` and their SHA-256 in `X-Certwatch-Evidence-Sha256`.
//! [`domain_section`] is the part of the domain page that links them.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use maud::{Markup, html};
use ring::signature::KeyPair as _;

use super::Shared;
use super::html::{Head, error_page, page, respond};
use super::pages::{internal, rfc3339};
use crate::store::{AlertRecord, EvidenceRecord, StoreError, normalise_domain};

/// Where the key is published as JSON.
pub const KEY_JSON_PATH: &str = "/.well-known/certwatch-evidence-key.json";
/// Where the key is published for people.
pub const KEY_PAGE_PATH: &str = "/evidence-key";

/// The path of bundle `id` of `domain`.
pub fn bundle_path(domain: &str, id: i64) -> String {
    format!("/domains/{domain}/evidence/{id}.json")
}

/// The path of the newest bundle of `domain`.
pub fn latest_path(domain: &str) -> String {
    format!("/domains/{domain}/evidence/latest.json")
}

/// The service's public key: (raw 32 bytes, key id).
async fn public_key(web: &Shared) -> Result<(Vec<u8>, String), StoreError> {
    let key = web.app.store.evidence_signing_key().await?;
    let public = key.public_key().as_ref().to_vec();
    let id = certwatch::evidence::key_id(&public);
    Ok((public, id))
}

fn not_found(message: &str) -> Response {
    error_page(StatusCode::NOT_FOUND, "No such evidence", message)
}

/// `GET /domains/{domain}/evidence/{file}`: `latest.json` or `{id}.json`.
pub async fn bundle(
    State(web): State<Shared>,
    Path((raw, file)): Path<(String, String)>,
) -> Response {
    let Ok(domain) = normalise_domain(&raw) else {
        return not_found("That is not a domain name certwatch checks.");
    };
    let store = &web.app.store;
    let found = match file.strip_suffix(".json") {
        Some("latest") => store.latest_evidence(&domain).await,
        Some(id) if !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit()) => {
            match id.parse::<i64>() {
                Ok(id) => store.evidence(&domain, id).await,
                Err(_) => Ok(None),
            }
        }
        _ => Ok(None),
    };
    match found {
        Ok(Some(record)) => serve_bundle(&record),
        Ok(None) => not_found(&format!(
            "There is no such evidence bundle of {domain}. Bundles are made by conclusive \
             checks and kept as long as the alerts that link to them."
        )),
        Err(e) => internal(&e),
    }
}

fn serve_bundle(record: &EvidenceRecord) -> Response {
    let mut r = (StatusCode::OK, record.body.clone()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The domain is an A-label and the id a number: a plain token, no quoting issues.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"certwatch-evidence-{}-{}.json\"",
        record.domain, record.id
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&record.sha256) {
        h.insert("x-certwatch-evidence-sha256", v);
    }
    h.insert("x-certwatch-evidence-id", HeaderValue::from(record.id));
    r
}

/// `GET /.well-known/certwatch-evidence-key.json`: the public key that verifies bundles.
pub async fn key_json(State(web): State<Shared>) -> Response {
    match public_key(&web).await {
        Ok((public, id)) => axum::Json(serde_json::json!({
            "algorithm": "ed25519",
            "public_key": base64::engine::general_purpose::STANDARD.encode(&public),
            "public_key_hex": hex::encode(&public),
            "key_id": id,
        }))
        .into_response(),
        Err(e) => internal(&e),
    }
}

/// `GET /evidence-key`: the public key, for people.
pub async fn key_page(State(web): State<Shared>) -> Response {
    let (public, id) = match public_key(&web).await {
        Ok(k) => k,
        Err(e) => return internal(&e),
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&public);
    let body = html! {
        h1 { "The service's evidence key" }
        p {
            "This service signs every evidence bundle (what its probes saw, with the DNSSEC \
             records that prove the DANE records) with this Ed25519 key. With it and a DNSSEC \
             trust anchor, anyone can verify a bundle offline, without trusting the service."
        }
        dl {
            dt { "Algorithm" } dd { code { "ed25519" } }
            dt { "Public key (base64)" } dd { code { (b64) } }
            dt { "Public key (hex)" } dd { code { (hex::encode(&public)) } }
            dt { "Key id (SHA-256 of the key)" } dd { code { (id) } }
        }
        p { "As JSON: " a href=(KEY_JSON_PATH) { (KEY_JSON_PATH) } }
        h2 { "Verifying a bundle" }
        p { "With the certwatch command-line tool:" }
        pre { code { "certwatch evidence verify bundle.json --key " (b64) } }
        p {
            "It checks the signature, every DNSSEC chain up to the root's trust anchor, and \
             says for each probe whether the key the server presented is in its validated \
             TLSA records. The format and a verification with Python and OpenSSL only are in "
            code { "docs/evidence.md" } "."
        }
    };
    respond(
        StatusCode::OK,
        page(
            &Head {
                title: "Evidence key",
                ..Head::default()
            },
            body,
        ),
    )
}

/// The domain page's evidence section: the newest bundle, and the alerts with theirs.
pub fn domain_section(
    domain: &str,
    latest: Option<&EvidenceRecord>,
    alerts: &[AlertRecord],
) -> Markup {
    html! {
        section aria-labelledby="evidence" {
            h2 id="evidence" { "Evidence" }
            @match latest {
                Some(e) => p {
                    a href=(latest_path(domain)) download { "Signed evidence bundle of the latest conclusive check" }
                    " (" (rfc3339(e.created_at)) ", SHA-256 " code { (e.sha256) } "). "
                    "Verify it with the " a href=(KEY_PAGE_PATH) { "service's public key" } "."
                },
                None => p { "No evidence bundle yet: one is made by each conclusive check." }
            }
            @if !alerts.is_empty() {
                div class="table-wrap" {
                    table {
                        caption class="hint" { "Alerts, newest first" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "Alert" } th scope="col" { "Evidence" } } }
                        tbody {
                            @for a in alerts {
                                tr {
                                    td { (rfc3339(a.at)) }
                                    td { (a.condition) " " (a.kind) }
                                    td {
                                        @match a.evidence_id {
                                            Some(id) => a href=(bundle_path(domain, id)) download { "bundle " (id) },
                                            None => "none (the check was not conclusive)",
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The evidence section of `domain`'s page, read from the store (empty on a store error,
/// which is logged: the rest of the page still shows).
pub async fn domain_section_of(web: &Shared, domain: &str) -> Markup {
    let store = &web.app.store;
    let latest = store.latest_evidence(domain).await;
    let alerts = store.alerts_of(domain, 20).await;
    match (latest, alerts) {
        (Ok(latest), Ok(alerts)) => domain_section(domain, latest.as_ref(), &alerts),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("web: evidence of {domain}: {e}");
            html! {}
        }
    }
}
