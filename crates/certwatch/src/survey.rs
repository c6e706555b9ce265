//! Which key each vantage point saw on each probe target: the evidence behind zone lines
//! taken from a live probe ([`Checker::survey`](crate::Checker::survey)).

use std::net::IpAddr;

use certwatch_core::{KeyType, Service, Vantage};
use serde::{Deserialize, Serialize};

use crate::report::{ProbeErrorReport, Report};

/// The result of [`Checker::survey`](crate::Checker::survey): the check's report and, per
/// probe target and key type, what every vantage point saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeySurvey {
    /// The report of the check itself (first vantage point).
    pub report: Report,
    /// One entry per probed (endpoint, address, key type), in report order. Targets that
    /// were not probed (private addresses refused, endpoints without addresses) are absent.
    pub targets: Vec<TargetKeys>,
    /// The number of extra vantage rounds requested (0: the check's sighting only).
    pub vantage_rounds: usize,
}

impl KeySurvey {
    /// True when every target has an agreed key (so live-probe lines may be shown).
    pub fn all_agree(&self) -> bool {
        !self.targets.is_empty() && self.targets.iter().all(|t| t.agreed_spki_sha256.is_some())
    }
}

/// What the vantage points saw on one probe target (endpoint + address) and key type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetKeys {
    /// The service.
    pub service: Service,
    /// The SRV target (or the domain itself for the RFC 6120 fallback).
    pub target: String,
    /// The TCP port.
    pub port: u16,
    /// The address probed.
    pub address: IpAddr,
    /// Every sighting: the check's first, then one per vantage round, then the direct one.
    pub sightings: Vec<KeySighting>,
    /// SHA-256 (hex) of the SubjectPublicKeyInfo every vantage point saw, when at least two
    /// distinct vantage points proved the same key and none saw another or an unproven
    /// key. Without extra vantage rounds this is always `None`.
    pub agreed_spki_sha256: Option<String>,
}

impl TargetKeys {
    /// The distinct proven keys seen (hex), in order of first sighting.
    pub fn proven_keys(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.sightings {
            if let (true, Some(k)) = (s.key_proven, s.spki_sha256.as_deref())
                && !out.contains(&k)
            {
                out.push(k);
            }
        }
        out
    }

    /// The key type of the first sighting that names one.
    pub fn key_type(&self) -> Option<KeyType> {
        self.sightings.iter().find_map(|s| s.key_type)
    }
}

/// One probe of a target from one vantage point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeySighting {
    /// Where the probe was made from; `None` when it never left (for example refused).
    pub vantage: Option<Vantage>,
    /// SHA-256 (hex) of the presented leaf's SubjectPublicKeyInfo.
    pub spki_sha256: Option<String>,
    /// Whether the server proved it holds that key (handshake signature verified).
    pub key_proven: bool,
    /// The key family of the presented leaf.
    pub key_type: Option<KeyType>,
    /// The probe's failure, when it failed (an unproven key included).
    pub error: Option<ProbeErrorReport>,
}
