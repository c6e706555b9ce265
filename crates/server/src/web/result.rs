//! The result page of one domain, rendered from its stored reports: the state (not signed,
//! signed without usable records, all good, or one of the alarms), the setup lines with the
//! trust-on-first-use rule of [`super::pins`], the advice, every endpoint, and the history.
//!
//! Pure rendering: the handler in [`super::pages`] gathers the data from the store.

use std::collections::BTreeSet;

use certwatch::{EndpointReport, Reason, Report, Vantage, Verdict, WarningCode};
use maud::{Markup, html};

use super::html::{copy_block, csrf_field, verdict_badge};
use super::pins::{ProbeLines, probe_lines};

/// One key seen for a domain (from the store's history of probes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// SRV target (or the domain itself).
    pub target: String,
    /// TCP port.
    pub port: u16,
    /// `ecdsa`, `rsa`, `ed25519`, when known.
    pub key_type: Option<String>,
    /// SHA-256 of the SubjectPublicKeyInfo, lowercase hex.
    pub spki_sha256: String,
    /// When it was first seen (RFC 3339).
    pub first_seen: String,
    /// When it was last seen (RFC 3339).
    pub last_seen: String,
    /// The vantage points that saw it (`direct`, `tor:<exit>`, ...).
    pub vantages: Vec<String>,
}

/// Everything the result page shows.
#[derive(Debug, Clone)]
pub struct ResultPage<'a> {
    /// The domain (A-label).
    pub domain: &'a str,
    /// The latest stored report, if any.
    pub latest: Option<&'a Report>,
    /// Earlier reports, newest first (the latest excluded).
    pub earlier: &'a [Report],
    /// The keys seen for the domain.
    pub keys_seen: &'a [KeyRow],
    /// A check of this domain is queued or running.
    pub pending: bool,
    /// Why the newest check could not run, when it produced no report (resolver
    /// unreachable, deadline).
    pub last_error: Option<&'a str>,
    /// The CSRF token for the forms on the page.
    pub csrf: &'a str,
    /// Distinct vantage points that must agree before probe-derived lines are shown.
    pub min_vantages: usize,
    /// The subscription channels this instance offers (the "Get notified" forms).
    pub channels: super::subscribe::Channels,
}

/// The body of the result page.
pub fn render(p: &ResultPage<'_>) -> Markup {
    html! {
        h1 { "Result for " code { (p.domain) } }
        @if let Some(why) = p.last_error {
            p class="notice warn" role="status" {
                "The newest check could not run: " (why) ". This is not a verdict about the domain; "
                @if p.latest.is_some() { "the result below is from the last check that ran." } @else { "it will be tried again." }
            }
        }
        @match p.latest {
            None => {
                @if p.pending {
                    (pending_notice())
                } @else if p.last_error.is_none() {
                    p class="notice" { "This domain has not been checked yet." }
                }
            }
            Some(r) => {
                @if p.pending { (pending_notice()) }
                p {
                    "Verdict: " (verdict_badge(r.verdict))
                    " · last checked " time datetime=(r.checked_at) { (r.checked_at) }
                }
                (state(r))
                // Right below "All good"; after the setup and advice otherwise.
                @if r.verdict == Verdict::Match {
                    (super::subscribe::section(p.domain, p.csrf, p.channels))
                }
                (private_refusal(r))
                (setup_section(r, p))
                (warnings(r))
                (endpoints(r))
                (advice(p.domain))
                @if r.verdict != Verdict::Match {
                    (super::subscribe::section(p.domain, p.csrf, p.channels))
                }
            }
        }
        (recheck_form(p.domain, p.csrf))
        (history(p))
        h2 { "Machine-readable" }
        ul {
            li { a href={ "/api/v1/domains/" (p.domain) } { "The stored report as JSON" } " (the same schema as " code { "certwatch check --json" } ")" }
            li { a href={ "/domains/" (p.domain) "/feed.atom" } { "Atom feed of this domain's results" } }
        }
    }
}

fn pending_notice() -> Markup {
    html! {
        p class="notice" role="status" {
            "A check of this domain is running. This page reloads by itself every few seconds; "
            "a check over Tor can take a minute."
        }
    }
}

/// The RRset an endpoint's DNSSEC conclusion rests on, named for the operator.
fn rrset(domain: &str, e: &EndpointReport) -> Option<String> {
    let family = match e.address {
        Some(std::net::IpAddr::V6(_)) => "AAAA",
        Some(std::net::IpAddr::V4(_)) => "A",
        None => "A/AAAA",
    };
    match e.reason? {
        Reason::InsecureSrv | Reason::BogusSrv | Reason::IndeterminateSrv => {
            Some(format!("the SRV RRset {}", e.service.srv_owner(domain)))
        }
        Reason::InsecureAddress | Reason::BogusAddress | Reason::IndeterminateAddress => {
            Some(format!("the {family} RRset of {}", e.target))
        }
        Reason::InsecureTlsa | Reason::BogusTlsa | Reason::IndeterminateTlsa => {
            Some(format!("the TLSA RRset _{}._tcp.{}", e.port, e.target))
        }
        _ => None,
    }
}

fn rrsets(r: &Report, verdict: Verdict) -> Vec<String> {
    let set: BTreeSet<String> = r
        .endpoints
        .iter()
        .filter(|e| e.effective_verdict() == verdict)
        .filter_map(|e| rrset(&r.domain, e))
        .collect();
    set.into_iter().collect()
}

/// The state block: what the verdict means and what to do.
fn state(r: &Report) -> Markup {
    match r.verdict {
        Verdict::Match => html! {
            section class="notice good" aria-labelledby="state" {
                h2 id="state" { "All good" }
                p { "Every probed endpoint proved a key that the domain's DNSSEC-signed TLSA records pin. certwatch can watch this domain and tell you if that changes." }
            }
        },
        Verdict::NoDnssec => html! {
            section class="notice setup" aria-labelledby="state" {
                h2 id="state" { "Not DNSSEC-signed" }
                p { "DANE needs DNSSEC: without signatures anyone on the path could forge the records. These RRsets are not signed (insecure):" }
                ul { @for s in rrsets(r, Verdict::NoDnssec) { li { (s) } } }
                p { "What to do: sign the zone (most DNS hosts offer it as a switch; with your own servers, e.g. Knot's or BIND's automatic signing), then publish the DS record at your registrar. Check again once the DS is visible." }
                @for a in &r.setup.advice { p { (a) } }
            }
        },
        Verdict::NoRecords | Verdict::UnusableRecords => html! {
            section class="notice setup" aria-labelledby="state" {
                h2 id="state" {
                    @if r.verdict == Verdict::NoRecords { "Signed, but no TLSA records" }
                    @else { "Signed, but no usable TLSA records" }
                }
                p { "The zone is signed. Add the TLSA lines below (see " a href="#setup" { "Setup" } "), then check again." }
                @for a in &r.setup.advice { p { (a) } }
            }
        },
        Verdict::Mismatch => html! {
            section class="notice bad" aria-labelledby="state" role="alert" {
                h2 id="state" { "Mismatch: the server proved a key that DNS does not pin" }
                p { "This is what a TLS interception looks like (the jabber.ru case): someone on the path presents a valid certificate on a different key. It is also what a key change without a TLSA update looks like." }
                @if let Some(c) = &r.confirmation {
                    p {
                        "Confirmation: " code { (serde_json::to_value(c.classification).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                        " over " (c.vantage_points) " vantage points (" (c.distinct_exits) " distinct Tor exits"
                        @if !c.diversity_verified { ", diversity unverified" }
                        ")."
                    }
                } @else {
                    p { "This result was not confirmed through several vantage points yet." }
                }
                p { "What to do: compare the presented keys below with the key on your server (the command in " a href="#setup" { "Setup" } "). If the server's own key is not among them, treat the connection as intercepted." }
            }
        },
        Verdict::Bogus => html! {
            section class="notice bad" aria-labelledby="state" role="alert" {
                h2 id="state" { "DNSSEC validation failed (bogus)" }
                p { "The signatures of these RRsets do not validate: the DNS is broken (expired signatures, a DS that matches no key) or attacked." }
                ul {
                    @for e in r.endpoints.iter().filter(|e| e.effective_verdict() == Verdict::Bogus) {
                        li {
                            (rrset(&r.domain, e).unwrap_or_else(|| format!("{} port {}", e.target, e.port)))
                            @if let Some(why) = &e.dnssec_reason { ": " (why) }
                        }
                    }
                }
                p { "What to do: check the signatures and the DS at the registrar with a DNSSEC debugger, re-sign the zone." }
            }
        },
        Verdict::Indeterminate => html! {
            section class="notice warn" aria-labelledby="state" {
                h2 id="state" { "No conclusion (indeterminate)" }
                p { "A DNS lookup or a probe timed out or failed (SERVFAIL, network or Tor failure). This is not an alarm: certwatch tries again. If it persists, check that the server is reachable from the Internet." }
            }
        },
        Verdict::ProtocolError => html! {
            section class="notice warn" aria-labelledby="state" {
                h2 id="state" { "The server did not speak XMPP over TLS as it must (protocol error)" }
                p { "No STARTTLS, a stream error, bad XML, a TLS alert, or no TLS 1.2+. Where TLSA records are published, DANE makes TLS mandatory, so a missing STARTTLS is a downgrade." }
                ul {
                    @for e in r.endpoints.iter().filter(|e| e.effective_verdict() == Verdict::ProtocolError) {
                        @if let Some(err) = &e.error { li { (err.message) } }
                    }
                }
            }
        },
    }
}

/// A notice when targets were refused for being private addresses.
fn private_refusal(r: &Report) -> Markup {
    let refused: Vec<&EndpointReport> = r
        .endpoints
        .iter()
        .filter(|e| {
            e.error
                .as_ref()
                .is_some_and(|x| x.class == "private-address")
        })
        .collect();
    html! {
        @if !refused.is_empty() {
            section class="notice bad" aria-labelledby="private" {
                h2 id="private" { "Private address refused" }
                p { "DNS for this domain points at a loopback, private, link-local or other special-use address. certwatch does not probe such addresses (it would let anyone make the service connect into its own network):" }
                ul {
                    @for e in refused {
                        li { code { (e.target) } " → " code { (e.address.map(|a| a.to_string()).unwrap_or_default()) } }
                    }
                }
            }
        }
    }
}

/// The setup lines: probe-derived only with agreement, and always the local commands.
fn setup_section(r: &Report, p: &ResultPage<'_>) -> Markup {
    let decision = probe_lines(r, p.earlier, p.min_vantages);
    let hosts: BTreeSet<(String, u16)> = r
        .endpoints
        .iter()
        .map(|e| (e.target.clone(), e.port))
        .collect();
    let comments: Vec<String> = r
        .setup
        .zone_lines
        .iter()
        .filter(|l| l.trim_start().starts_with(';'))
        .cloned()
        .collect();
    html! {
        section aria-labelledby="setup" {
            h2 id="setup" { "Setup" }
            @match &decision {
                ProbeLines::Agreed { lines, vantages } => {
                    p class="notice warn" {
                        strong { "These lines come from connections, which pin whatever those connections presented. " }
                        "If your server is already intercepted, they pin the attacker's key. "
                        (vantages.len()) " distinct vantage point" @if vantages.len() != 1 { "s" } " (" (vantages.join(", ")) ") saw the same key. "
                        "Prefer the lines computed on your server from the key file (below)."
                    }
                    (copy_block("Zone-file lines to add (from the service's probes; additive: keep the records you have)", lines))
                }
                ProbeLines::Withheld { reason, .. } => {
                    p class="notice warn" {
                        "The service does not show zone lines from its own probes for this domain yet: " (reason) ". "
                        "Lines taken from a connection pin whatever that connection presented, an interceptor's key included. "
                        "Compute them on your server instead:"
                    }
                    @if !comments.is_empty() { (copy_block("Comments from the check", &comments)) }
                }
                ProbeLines::NotApplicable => {}
            }
            p { "Compute the lines from the key or certificate on your server (the trustworthy way), for each host and port:" }
            @let cmds: Vec<String> = if hosts.is_empty() {
                vec!["certwatch records --key /path/to/privkey.pem --host xmpp.example.org --port 5222".to_owned()]
            } else {
                hosts.iter().map(|(h, port)| format!("certwatch records --key /path/to/privkey.pem --host {h} --port {port}")).collect()
            };
            (copy_block("With certwatch (prints ready-to-paste TLSA lines)", &cmds))
            (copy_block("With openssl (prints the SHA-256 of the public key: the data of a 3 1 1 record)", &[
                "openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256".to_owned()
            ]))
            p class="hint" { "A line reads " code { "_PORT._tcp.HOST. 3600 IN TLSA 3 1 1 HASH" } ", where HOST is the SRV target." }
        }
    }
}

fn warnings(r: &Report) -> Markup {
    // The live-probe warning is said in the setup section, in the page's own words.
    let shown: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.code != WarningCode::PinsFromLiveProbe)
        .collect();
    html! {
        @if !shown.is_empty() {
            section aria-labelledby="warnings" {
                h2 id="warnings" { "Warnings" }
                ul {
                    @for w in shown {
                        li { code { (w.code.as_str()) } ": " (w.message) }
                    }
                }
            }
        }
    }
}

fn endpoints(r: &Report) -> Markup {
    html! {
        section aria-labelledby="endpoints" {
            h2 id="endpoints" { "Endpoints" }
            p class="hint" { "One row per probe target (service, host, port, address) and key type. Last checked " (r.checked_at) "." }
            div class="table-wrap" {
                table class="cards" {
                    thead { tr {
                        th scope="col" { "Service" } th scope="col" { "Target" } th scope="col" { "Address" }
                        th scope="col" { "DNSSEC" } th scope="col" { "Status" } th scope="col" { "Presented key (SHA-256 of SPKI)" }
                        th scope="col" { "TLSA" } th scope="col" { "Vantage" } th scope="col" { "Last check" }
                    } }
                    tbody {
                        @for e in &r.endpoints {
                            tr {
                                td data-label="Service" { (e.service.as_str()) }
                                td data-label="Target" { code { (e.target) ":" (e.port) } }
                                td data-label="Address" { @if let Some(a) = e.address { code { (a) } } @else { "none" } }
                                td data-label="DNSSEC" { (e.dnssec.to_string()) @if let Some(why) = &e.dnssec_reason { " (" (why) ")" } }
                                td data-label="Status" {
                                    (verdict_badge(e.verdict))
                                    @if let Some(reason) = e.reason { " " (reason.as_str()) }
                                    @if let Some(cv) = e.confirmed_verdict.filter(|cv| *cv != e.verdict) {
                                        br; span class="hint" {
                                            "Overruled by the confirmation through other vantage points: " (verdict_badge(cv))
                                            @if cv == Verdict::Indeterminate { " (too few vantage points answered)" } @else { " (a hostile exit, not the server)" }
                                        }
                                    }
                                    @if let Some(err) = &e.error { br; span class="hint" { (err.class) ": " (err.message) } }
                                }
                                td data-label="Presented key" {
                                    @if let Some(k) = &e.presented_spki_sha256 {
                                        @if let Some(t) = e.key_type { (t.to_string()) " " }
                                        code { (k) }
                                    } @else { "none" }
                                }
                                td data-label="TLSA" { @for t in &e.tlsa { code { (t.to_string()) } br; } @if e.tlsa.is_empty() { "none" } }
                                td data-label="Vantage" { @if let Some(v) = &e.vantage { (v.to_string()) } @else { "not probed" } }
                                td data-label="Last check" { (r.checked_at) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Advice shown on every result page.
fn advice(domain: &str) -> Markup {
    html! {
        section aria-labelledby="advice" {
            h2 id="advice" { "Advice" }
            dl {
                dt { "Records are additive" }
                dd { "Several domains served by one host (through SRV) share that host's TLSA RRset at " code { "_PORT._tcp.HOST" } ". Add one " code { "3 1 1" } " line per key the host may present; never replace another domain's lines." }
                dt { "Keep the key on renewal, and publish the next one" }
                dd { "A " code { "3 1 1" } " pin survives renewals only if the key stays: renew with " code { "certbot renew --reuse-key" } ". Before you change keys, generate the next key, publish its " code { "3 1 1" } " line next to the current one, wait at least the TTL, then switch. Avoid " code { "3 0 1" } ", which changes at every renewal." }
                dt { "CAA with accounturi" }
                dd { "Limit certificate issuance to your own CA account (RFC 8657), which stops the issuance trick of the 2023 interception: " code { (domain) ". IN CAA 0 issue \"letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/YOUR-ID\"" } }
                dt { "Channel binding" }
                dd { "Offer SCRAM-SHA-*-PLUS with the " code { "tls-exporter" } " channel binding (RFC 9266, XEP-0440): clients that use it detect an interceptor at login, whether or not they check DANE." }
            }
        }
    }
}

fn recheck_form(domain: &str, csrf: &str) -> Markup {
    html! {
        section aria-labelledby="recheck" {
            h2 id="recheck" { "Check again" }
            form method="post" action="/checks" class="inline" {
                (csrf_field(csrf))
                input type="hidden" name="domain" value=(domain);
                button type="submit" { "Check " (domain) " now" }
            }
        }
    }
}

fn vantage_label(v: &Vantage) -> String {
    v.to_string()
}

fn history(p: &ResultPage<'_>) -> Markup {
    let all: Vec<&Report> = p.latest.into_iter().chain(p.earlier.iter()).collect();
    html! {
        section aria-labelledby="history" {
            h2 id="history" { "History" }
            @if all.is_empty() {
                p { "No probes recorded yet." }
            } @else {
                div class="table-wrap" {
                    table {
                        caption class="hint" { "Recent checks, newest first" }
                        thead { tr { th scope="col" { "Checked" } th scope="col" { "Verdict" } th scope="col" { "Probes" } th scope="col" { "Vantage points and exits" } } }
                        tbody {
                            @for r in &all {
                                @let vantages: BTreeSet<String> = r.endpoints.iter().filter_map(|e| e.vantage.as_ref().map(vantage_label)).collect();
                                tr {
                                    td { (r.checked_at) }
                                    td { (verdict_badge(r.verdict)) }
                                    td { (r.endpoints.iter().filter(|e| e.vantage.is_some()).count()) }
                                    td { (vantages.into_iter().collect::<Vec<_>>().join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Keys seen" }
            @if p.keys_seen.is_empty() {
                p { "No key seen yet." }
            } @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Target" } th scope="col" { "Key" } th scope="col" { "First seen" } th scope="col" { "Last seen" } th scope="col" { "Seen from" } } }
                        tbody {
                            @for k in p.keys_seen {
                                tr {
                                    td { code { (k.target) ":" (k.port) } }
                                    td { @if let Some(t) = &k.key_type { (t) " " } code { (k.spki_sha256) } }
                                    td { (k.first_seen) }
                                    td { (k.last_seen) }
                                    td { (k.vantages.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `body` followed, when the XMPP component `jid` is configured, by the domain's PubSub node
/// URI (`xmpp:JID?;node=DOMAIN`, issue 10) and the chat command that subscribes.
pub fn with_xmpp_node(body: Markup, jid: Option<&str>, domain: &str) -> Markup {
    let Some(jid) = jid else {
        return body;
    };
    let uri = format!("xmpp:{jid}?;node={domain}");
    html! {
        (body)
        h2 { "Alerts over XMPP" }
        p {
            "PubSub node: " a href=(uri) { code { (uri) } }
            ". Or send " code { "subscribe " (domain) } " to " code { (jid) } " in a chat."
        }
    }
}
