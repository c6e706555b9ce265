//! CAA (RFC 8659) with account and method binding (RFC 8657): advice, never a verdict.

use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::lookup::Session;
use crate::rrset::{AnswerKind, RrsetLookup};

/// One `issue` or `issuewild` property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaaIssuer {
    /// `issue` or `issuewild`.
    pub tag: String,
    /// The CA's domain (empty for `;`, which forbids issuance).
    pub issuer: String,
    /// The RFC 8657 `accounturi` parameter, if any.
    pub accounturi: Option<String>,
    /// The RFC 8657 `validationmethods` parameter, if any.
    pub validationmethods: Option<String>,
}

/// The relevant CAA RRset (RFC 8659 §3: the closest one walking up the tree) and advice.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CaaReport {
    /// Where the relevant RRset was found, if anywhere.
    pub found_at: Option<String>,
    /// Every CAA lookup made while climbing, in order.
    pub lookups: Vec<RrsetLookup>,
    /// The issuance properties of the relevant RRset.
    pub issuers: Vec<CaaIssuer>,
    /// What the operator should do, in words.
    pub advice: Vec<String>,
}

/// Splits a CAA `issue` value: `ca.example; accounturi=...; validationmethods=dns-01`.
pub fn parse_issue_value(tag: &str, value: &str) -> CaaIssuer {
    let mut parts = value.split(';');
    let issuer = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let issuer = issuer
        .strip_suffix('.')
        .map(str::to_owned)
        .unwrap_or(issuer);
    let mut accounturi = None;
    let mut validationmethods = None;
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            match k.trim().to_ascii_lowercase().as_str() {
                "accounturi" => accounturi = Some(v.trim().to_owned()),
                "validationmethods" => validationmethods = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    CaaIssuer {
        tag: tag.to_owned(),
        issuer,
        accounturi,
        validationmethods,
    }
}

/// The advice for a relevant CAA RRset (or its absence).
pub fn advice(domain: &str, issuers: &[CaaIssuer], found: bool) -> Vec<String> {
    let example = format!(
        "{domain}. CAA 0 issue \"<your CA, e.g. letsencrypt.org>; accounturi=<your ACME account URI>; validationmethods=dns-01\""
    );
    if !found {
        return vec![format!(
            "No CAA record: any public CA may issue certificates for {domain}. Restrict issuance to the CA you use and bind it to your ACME account (RFC 8659, RFC 8657), which stops an interceptor from obtaining a certificate through another CA or account: {example}"
        )];
    }
    let mut out = Vec::new();
    for i in issuers.iter().filter(|i| !i.issuer.is_empty()) {
        if i.accounturi.is_none() {
            out.push(format!(
                "The CAA {} property for {} has no accounturi: anyone who can pass that CA's domain validation (for example by intercepting {domain}'s traffic) can obtain a certificate. Add accounturi=<your ACME account URI> (RFC 8657).",
                i.tag, i.issuer
            ));
        }
        if i.validationmethods.is_none() {
            out.push(format!(
                "The CAA {} property for {} has no validationmethods: restrict it to the method you use, for example validationmethods=dns-01 (RFC 8657).",
                i.tag, i.issuer
            ));
        }
    }
    if issuers.iter().all(|i| i.tag != "issue") {
        out.push(format!(
            "The CAA RRset has no issue property, so it does not restrict issuance: {example}"
        ));
    }
    out
}

impl Session {
    /// Looks up the relevant CAA RRset for `domain`, climbing towards the root (stopping
    /// below it), and derives the advice.
    pub(crate) async fn caa(&self, domain: &Name) -> CaaReport {
        let mut lookups = Vec::new();
        let mut name = domain.clone();
        let display = domain.to_string();
        let display = display.trim_end_matches('.');
        while name.num_labels() >= 1 {
            let l = self.lookup(&name, RecordType::CAA).await;
            let stop = l.answer == AnswerKind::Records || l.answer == AnswerKind::Failed;
            let is_records = l.answer == AnswerKind::Records;
            let issuers: Vec<CaaIssuer> = l
                .data
                .iter()
                .filter_map(|d| match d {
                    RData::CAA(caa) => {
                        let tag = caa.tag.to_ascii_lowercase();
                        (tag == "issue" || tag == "issuewild")
                            .then(|| parse_issue_value(&tag, &String::from_utf8_lossy(&caa.value)))
                    }
                    _ => None,
                })
                .collect();
            let found_at = name.to_string();
            lookups.push(l);
            if is_records {
                let advice = advice(display, &issuers, true);
                return CaaReport {
                    found_at: Some(found_at),
                    lookups,
                    issuers,
                    advice,
                };
            }
            if stop {
                break;
            }
            name = name.base_name();
        }
        let failed = lookups.iter().any(|l| l.answer == AnswerKind::Failed);
        CaaReport {
            found_at: None,
            advice: if failed {
                vec![format!(
                    "The CAA lookup for {display} failed; no advice could be given."
                )]
            } else {
                advice(display, &[], false)
            },
            lookups,
            issuers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_values_split() {
        let i = parse_issue_value(
            "issue",
            "LetsEncrypt.org; accounturi=https://acme/acct/1; validationmethods=dns-01",
        );
        assert_eq!(i.issuer, "letsencrypt.org");
        assert_eq!(i.accounturi.as_deref(), Some("https://acme/acct/1"));
        assert_eq!(i.validationmethods.as_deref(), Some("dns-01"));
        let bare = parse_issue_value("issue", "letsencrypt.org");
        let adv = advice("example.org", &[bare], true);
        assert!(adv.iter().any(|a| a.contains("accounturi")), "{adv:?}");
        assert!(
            adv.iter().any(|a| a.contains("validationmethods")),
            "{adv:?}"
        );
        assert!(advice("example.org", &[], false)[0].contains("No CAA record"));
    }
}
