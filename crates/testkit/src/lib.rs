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

    /// A private copy of the environment's arti configuration (`tor.arti_config`) whose
    /// storage directories belong to this copy alone.
    ///
    /// The private network's consensus expires 60 s after it is made. arti accepts an
    /// expired consensus from a shared cache as "bootstrapped" (within its clock-skew
    /// tolerance) but then refuses to build circuits on it, and a client that does not hold
    /// the shared storage lock never refreshes it. Each arti client in a test therefore gets
    /// its own storage. The copy is removed when the returned value is dropped.
    pub fn private_arti_config(&self) -> Result<PrivateArtiConfig, Error> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let source = self.path("tor.arti_config")?;
        let text = std::fs::read_to_string(&source).map_err(|e| Error::Read {
            path: source.clone(),
            source: e,
        })?;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("certwatch-arti-{}-{n}-{nanos}", std::process::id()));
        let io = |path: &std::path::Path, e: std::io::Error| Error::Read {
            path: path.to_owned(),
            source: e,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let mut out = String::with_capacity(text.len());
        let mut replaced = 0;
        for line in text.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            match key {
                "cache_dir" | "state_dir" => {
                    let sub = dir.join(key);
                    out.push_str(&format!("{key} = {:?}\n", sub.display().to_string()));
                    replaced += 1;
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        if replaced != 2 {
            return Err(Error::Shape {
                key: "tor.arti_config".into(),
                expected: "an arti configuration with storage.cache_dir and storage.state_dir",
                found: source.display().to_string(),
            });
        }
        let path = dir.join("arti.toml");
        std::fs::write(&path, out).map_err(|e| io(&path, e))?;
        Ok(PrivateArtiConfig { dir, path })
    }
}

/// A private copy of the interop environment's arti configuration, from
/// [`Interop::private_arti_config`]. Its directory is removed on drop.
#[derive(Debug)]
pub struct PrivateArtiConfig {
    dir: PathBuf,
    path: PathBuf,
}

impl PrivateArtiConfig {
    /// The configuration file (arti's own TOML format).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The configuration file's path as UTF-8, for command lines.
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8 here")
    }
}

impl Drop for PrivateArtiConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
