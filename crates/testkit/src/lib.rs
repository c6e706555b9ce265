//! # certwatch-testkit
//!
//! Test support shared by the certwatch crates. Not published.
//!
//! The main item is [`Interop`], the description of the loopback interop environment that
//! `scripts/interop-env up` writes as JSON and announces through the `CERTWATCH_INTEROP`
//! environment variable (the path of that file). The description grows by keys, one
//! top-level section per peer (`pki`, `dns`, `xmpp`, `tor`, ...), so it is read through
//! dotted paths rather than a fixed struct:
//!
//! ```
//! use certwatch_testkit::Interop;
//!
//! let env = Interop::from_json(r#"{"version": 1, "dns": {"unbound": "127.0.0.1:5354"}}"#).unwrap();
//! let addr: std::net::SocketAddr = env.socket_addr("dns.unbound").unwrap();
//! assert_eq!(addr.port(), 5354);
//! assert!(env.str("dns.missing").is_err());
//! ```
//!
//! Interop tests are compiled only with the cargo feature `interop`. With the feature on,
//! [`Interop::require`] fails the test loudly when the environment is missing or dead:
//! a silently skipped interop test would be a test that cannot fail.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

/// The environment variable that holds the path of the interop description file.
pub const ENV_VAR: &str = "CERTWATCH_INTEROP";

/// Why the interop description could not be read or a key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `CERTWATCH_INTEROP` is not set.
    #[error("{ENV_VAR} is not set: run `scripts/interop-env up` and export the path it prints")]
    NotSet,
    /// The description file could not be read.
    #[error("cannot read the interop description {path}: {source}")]
    Read {
        /// The file named by `CERTWATCH_INTEROP`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The description is not valid JSON.
    #[error("the interop description is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A dotted path is absent from the description.
    #[error(
        "the interop description has no key `{0}` (is that peer's section written by scripts/interop-env?)"
    )]
    Missing(String),
    /// A key is present but does not have the expected shape.
    #[error("the interop description key `{key}` is not {expected}: {found}")]
    Shape {
        /// The dotted path.
        key: String,
        /// What was expected (for example "a socket address").
        expected: &'static str,
        /// What was found, as JSON.
        found: String,
    },
}

/// The interop environment description (see the crate documentation).
#[derive(Debug, Clone)]
pub struct Interop {
    root: Value,
}

impl Interop {
    /// Parses a description from JSON text.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        Ok(Interop {
            root: serde_json::from_str(text)?,
        })
    }

    /// Reads the description named by `CERTWATCH_INTEROP`.
    pub fn load() -> Result<Self, Error> {
        let path = PathBuf::from(std::env::var_os(ENV_VAR).ok_or(Error::NotSet)?);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Reads the description, panicking with a clear message when it is missing.
    ///
    /// Use this in tests compiled with the `interop` feature: with the feature on, a missing
    /// environment is a failure, never a skip.
    pub fn require() -> Self {
        match Self::load() {
            Ok(env) => env,
            Err(e) => panic!("interop environment unavailable: {e}"),
        }
    }

    /// The raw JSON value at a dotted path such as `dns.unbound` (array items by index:
    /// `tor.relays.0.address`).
    pub fn get(&self, key: &str) -> Result<&Value, Error> {
        let mut v = &self.root;
        for part in key.split('.') {
            v = match v {
                Value::Object(m) => m.get(part),
                Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| Error::Missing(key.to_owned()))?;
        }
        Ok(v)
    }

    /// The string at a dotted path.
    pub fn str(&self, key: &str) -> Result<&str, Error> {
        let v = self.get(key)?;
        v.as_str().ok_or_else(|| shape(key, "a string", v))
    }

    /// The unsigned integer at a dotted path.
    pub fn u64(&self, key: &str) -> Result<u64, Error> {
        let v = self.get(key)?;
        v.as_u64()
            .ok_or_else(|| shape(key, "an unsigned integer", v))
    }

    /// The socket address (`IP:PORT`, IPv6 in brackets) at a dotted path.
    pub fn socket_addr(&self, key: &str) -> Result<SocketAddr, Error> {
        let v = self.get(key)?;
        v.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| shape(key, "a socket address", v))
    }

    /// The filesystem path at a dotted path.
    pub fn path(&self, key: &str) -> Result<PathBuf, Error> {
        self.str(key).map(PathBuf::from)
    }

    /// The whole description.
    pub fn root(&self) -> &Value {
        &self.root
    }
}

fn shape(key: &str, expected: &'static str, found: &Value) -> Error {
    Error::Shape {
        key: key.to_owned(),
        expected,
        found: found.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_reach_objects_and_arrays() {
        let env = Interop::from_json(
            r#"{"tor": {"relays": [{"address": "127.0.0.11", "or_port": 5101}]}}"#,
        )
        .unwrap();
        assert_eq!(env.str("tor.relays.0.address").unwrap(), "127.0.0.11");
        assert_eq!(env.u64("tor.relays.0.or_port").unwrap(), 5101);
        assert!(matches!(env.get("tor.relays.1"), Err(Error::Missing(_))));
        assert!(matches!(
            env.socket_addr("tor.relays.0.address"),
            Err(Error::Shape { .. })
        ));
    }
}
