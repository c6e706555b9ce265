//! Confirmation before a MITM alert: the results of several vantage points (Tor exits,
//! direct) classified per REFERENCE §3.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Verdict, Warning, WarningCode};

/// Where a probe was made from. Serialised as `direct`, `tor:<exit address>`, `tor` (exit
/// unknown) or `socks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vantage {
    /// From this machine, without Tor.
    Direct,
    /// Through a Tor circuit; the exit's address when it could be seen.
    Tor(Option<IpAddr>),
    /// Through a SOCKS proxy: the exit cannot be seen.
    Socks,
}

impl fmt::Display for Vantage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Vantage::Direct => f.write_str("direct"),
            Vantage::Tor(Some(ip)) => write!(f, "tor:{ip}"),
            Vantage::Tor(None) => f.write_str("tor"),
            Vantage::Socks => f.write_str("socks"),
        }
    }
}

/// The error for a vantage that is not `direct`, `tor`, `tor:<ip>` or `socks`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vantage {0:?}: expected direct, socks, tor or tor:<exit IP address>")]
pub struct BadVantage(pub String);

impl FromStr for Vantage {
    type Err = BadVantage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Vantage::Direct),
            "socks" => Ok(Vantage::Socks),
            "tor" => Ok(Vantage::Tor(None)),
            other => other
                .strip_prefix("tor:")
                .and_then(|ip| ip.parse().ok())
                .map(|ip| Vantage::Tor(Some(ip)))
                .ok_or_else(|| BadVantage(s.to_owned())),
        }
    }
}

impl Serialize for Vantage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Vantage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What one vantage point concluded about a domain (or endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VantageResult {
    /// Where from.
    pub vantage: Vantage,
    /// Its verdict: `indeterminate` is inconclusive; `match` agrees with the TLSA set; any
    /// other verdict (mismatch, protocol error on a DANE endpoint...) differs.
    pub verdict: Verdict,
    /// The key it saw: SHA-256 of the SubjectPublicKeyInfo, lowercase hex (the evidence).
    pub presented_spki_sha256: Option<String>,
}

impl VantageResult {
    /// A result.
    pub fn new(vantage: Vantage, verdict: Verdict, presented_spki_sha256: Option<String>) -> Self {
        VantageResult {
            vantage,
            verdict,
            presented_spki_sha256,
        }
    }
}

/// The classification of REFERENCE §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// Every conclusive vantage point agrees the key matches.
    Consistent,
    /// Most conclusive vantage points, or exactly half, saw a key outside the TLSA set: the
    /// interception is on the server's side (the jabber.ru kind). Fail safe: `mismatch`.
    ServerSideInterception,
    /// A minority saw a different key: those exits are hostile, the server is not.
    HostileExit,
    /// Fewer than two conclusive vantage points.
    Indeterminate,
}

/// The confirmation result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// Distinct vantage points (results from the same exit count once).
    pub vantage_points: usize,
    /// Of those, the ones with a conclusive result.
    pub conclusive: usize,
    /// Distinct Tor exit addresses seen.
    pub distinct_exits: usize,
    /// The classification.
    pub classification: Classification,
    /// False when some vantage's exit could not be seen (SOCKS, unknown Tor exit): the
    /// diversity of the vantage points is then unverified.
    pub diversity_verified: bool,
    /// The verdict to report: `match` (consistent, or hostile exits only), `mismatch` (or the
    /// differing verdict) for server-side interception, `indeterminate` below two conclusive
    /// vantage points.
    pub verdict: Verdict,
    /// The vantage points that differed from the majority (the evidence), when they are a
    /// minority.
    pub hostile: Vec<VantageResult>,
    /// `hostile-exit` (naming exits and keys) and `diversity-unverified` warnings.
    pub warnings: Vec<Warning>,
}

/// Classifies the results of several vantage points (REFERENCE §3):
///
/// - inconclusive results (`indeterminate`) do not count, and several results from the same
///   vantage (the same exit address, or direct) count once, as "differs" if any differed;
/// - fewer than two conclusive vantage points: `indeterminate`;
/// - most, or exactly half, differ: `server-side-interception`, verdict `mismatch`;
/// - a minority differ: `hostile-exit`, the verdict stays `match`, and a `hostile-exit`
///   warning names the exits and the keys they presented;
/// - none differ: `consistent`. (A key that matches the published next-key record is
///   simply a match: rollover needs nothing here.)
/// - Through SOCKS or with unseen Tor exits, diversity is unverified (and said so).
///
/// ```
/// use certwatch_core::{confirm, Classification, Vantage, VantageResult, Verdict};
/// let r = |v: &str, verdict| VantageResult::new(v.parse().unwrap(), verdict, None);
/// let c = confirm(&[
///     r("direct", Verdict::Match),
///     r("tor:192.0.2.1", Verdict::Match),
///     r("tor:192.0.2.2", Verdict::Mismatch),
/// ]);
/// assert_eq!(c.classification, Classification::HostileExit);
/// assert_eq!(c.verdict, Verdict::Match);
/// ```
pub fn confirm(results: &[VantageResult]) -> Confirmation {
    // Group by vantage identity. Unseen exits and SOCKS cannot be told apart: each counts on
    // its own, and diversity is unverified.
    let mut groups: BTreeMap<(Vantage, usize), Vec<&VantageResult>> = BTreeMap::new();
    let mut diversity_verified = true;
    for (i, r) in results.iter().enumerate() {
        let key = match r.vantage {
            Vantage::Direct | Vantage::Tor(Some(_)) => (r.vantage, 0),
            Vantage::Tor(None) | Vantage::Socks => {
                diversity_verified = false;
                (r.vantage, i)
            }
        };
        groups.entry(key).or_default().push(r);
    }
    let distinct_exits = groups
        .keys()
        .filter(|(v, _)| matches!(v, Vantage::Tor(Some(_))))
        .count();
    let mut agree = 0usize;
    let mut differ: Vec<&VantageResult> = Vec::new();
    for members in groups.values() {
        let conclusive: Vec<&&VantageResult> = members
            .iter()
            .filter(|r| r.verdict != Verdict::Indeterminate)
            .collect();
        if conclusive.is_empty() {
            continue;
        }
        match conclusive.iter().find(|r| r.verdict != Verdict::Match) {
            Some(d) => differ.push(d),
            None => agree += 1,
        }
    }
    let conclusive = agree + differ.len();
    let mut warnings = Vec::new();
    if !diversity_verified {
        warnings.push(Warning::new(
            WarningCode::DiversityUnverified,
            "the exits of some vantage points could not be seen (SOCKS or unknown Tor exit): their diversity is unverified",
        ));
    }
    let (classification, verdict, hostile) = if conclusive < 2 {
        (
            Classification::Indeterminate,
            Verdict::Indeterminate,
            Vec::new(),
        )
    } else if differ.is_empty() {
        (Classification::Consistent, Verdict::Match, Vec::new())
    } else if differ.len() * 2 >= conclusive {
        let worst = differ
            .iter()
            .map(|r| r.verdict)
            .max_by_key(|v| v.rank(true))
            .unwrap_or(Verdict::Mismatch);
        (Classification::ServerSideInterception, worst, Vec::new())
    } else {
        let hostile: Vec<VantageResult> = differ.iter().map(|r| (*r).clone()).collect();
        let evidence: Vec<String> = hostile
            .iter()
            .map(|r| {
                format!(
                    "{} saw {} (key sha256 {})",
                    r.vantage,
                    r.verdict,
                    r.presented_spki_sha256.as_deref().unwrap_or("unknown")
                )
            })
            .collect();
        warnings.push(Warning::new(
            WarningCode::HostileExit,
            format!(
                "{} of {conclusive} vantage points differ, a minority: {}; the server itself matches",
                hostile.len(),
                evidence.join("; ")
            ),
        ));
        (Classification::HostileExit, Verdict::Match, hostile)
    };
    Confirmation {
        vantage_points: groups.len(),
        conclusive,
        distinct_exits,
        classification,
        diversity_verified,
        verdict,
        hostile,
        warnings,
    }
}

/// The key every vantage point saw, for pins taken from live probes (REFERENCE §2: show such
/// lines only when every vantage point saw the same key).
///
/// Returns the SHA-256 (hex) when at least two distinct vantage points reported a key and all
/// reports, including inconclusive ones that carry a key, name the same key. `None` when any
/// two differ, or when there is too little evidence.
///
/// ```
/// use certwatch_core::{agreed_key, VantageResult, Verdict};
/// let k = |v: &str, key: &str| VantageResult::new(v.parse().unwrap(), Verdict::NoRecords, Some(key.into()));
/// assert_eq!(agreed_key(&[k("direct", "aa"), k("tor:192.0.2.1", "aa")]).as_deref(), Some("aa"));
/// assert_eq!(agreed_key(&[k("direct", "aa"), k("tor:192.0.2.1", "bb")]), None);
/// assert_eq!(agreed_key(&[k("direct", "aa"), k("direct", "aa")]), None);
/// ```
pub fn agreed_key(results: &[VantageResult]) -> Option<String> {
    let mut key: Option<&str> = None;
    let mut vantages: Vec<Vantage> = Vec::new();
    let mut unseen = 0usize;
    for r in results {
        let Some(k) = r.presented_spki_sha256.as_deref() else {
            continue;
        };
        match key {
            Some(prev) if prev != k => return None,
            _ => key = Some(k),
        }
        match r.vantage {
            Vantage::Direct | Vantage::Tor(Some(_)) => {
                if !vantages.contains(&r.vantage) {
                    vantages.push(r.vantage);
                }
            }
            Vantage::Tor(None) | Vantage::Socks => unseen += 1,
        }
    }
    (vantages.len() + unseen >= 2)
        .then(|| key.map(str::to_owned))
        .flatten()
}
