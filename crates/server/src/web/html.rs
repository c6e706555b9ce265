//! The HTML layout and small shared pieces, with maud: every interpolated value is escaped
//! by the template engine, so no handler concatenates HTML by hand.
//!
//! The pages use no JavaScript. Styling comes from one same-origin stylesheet
//! (`/static/site.css`), which the Content-Security-Policy allows.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use certwatch::Verdict;

/// The stylesheet, served at [`STYLESHEET_PATH`].
pub const STYLESHEET: &str = include_str!("../../static/site.css");
/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/static/site.css";

/// Options of one page's `<head>`.
#[derive(Debug, Clone, Default)]
pub struct Head<'a> {
    /// The page's title (the site name is appended).
    pub title: &'a str,
    /// Seconds after which the browser reloads the page (`<meta http-equiv=refresh>`), for a
    /// pending check.
    pub refresh_secs: Option<u32>,
    /// An Atom feed to announce with `<link rel=alternate>`.
    pub feed: Option<String>,
}

/// The whole page: skip link, header with the site's name, `<main>`, footer.
pub fn page(head: &Head<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = head.refresh_secs {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (head.title) " · certwatch" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                @if let Some(feed) = &head.feed {
                    link rel="alternate" type="application/atom+xml" href=(feed) title="Atom feed";
                }
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="site" {
                    nav aria-label="Site" {
                        a href="/" class="brand" { "certwatch" }
                        " "
                        a href="/threat-model" { "What a check proves" }
                        " "
                        a href="/docs/api" { "API" }
                    }
                }
                main id="main" { (body) }
                footer class="site" {
                    p {
                        "certwatch compares the key an XMPP server proves it holds with its DANE TLSA records in DNSSEC-signed DNS. "
                        a href="/threat-model" { "Threat model" } " · "
                        a href="/removal" { "Ask for removal of your domain" }
                    }
                }
            }
        }
    }
}

/// A rendered page as a response with a status.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// An error page: a heading, the message, and a way back.
pub fn error_page(status: StatusCode, heading: &str, message: &str) -> Response {
    let body = html! {
        h1 { (heading) }
        p class="notice bad" role="alert" { (message) }
        p { a href="/" { "Check a domain" } }
    };
    respond(
        status,
        page(
            &Head {
                title: heading,
                ..Head::default()
            },
            body,
        ),
    )
}

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(super::csrf::FIELD) value=(token); }
}

/// A verdict as a labelled badge (the word is the same as in the JSON).
pub fn verdict_badge(v: Verdict) -> Markup {
    let class = match v {
        Verdict::Match => "badge good",
        Verdict::Mismatch | Verdict::Bogus => "badge bad",
        Verdict::ProtocolError | Verdict::Indeterminate => "badge warn",
        Verdict::NoDnssec | Verdict::NoRecords | Verdict::UnusableRecords => "badge setup",
    };
    html! { span class=(class) { (v.as_str()) } }
}

/// Lines to copy, in a `<pre>` that keeps them exact.
pub fn copy_block(label: &str, lines: &[String]) -> Markup {
    html! {
        figure class="copy" {
            figcaption { (label) }
            pre tabindex="0" { code { @for l in lines { (l) "\n" } } }
        }
    }
}
