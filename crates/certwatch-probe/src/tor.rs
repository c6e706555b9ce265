//! Embedded Tor through arti-client (cargo feature `tor`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arti_client::config::{BoolOrAuto, TorClientConfigBuilder};
use arti_client::{BootstrapBehavior, HasKind, StreamPrefs, TorAddr, TorClient, TorClientConfig};
use futures::StreamExt as _;
use tor_linkspec::{HasAddrs as _, HasRelayIds as _};
use tor_proto::client::stream::ClientStreamCtrl as _;
use tor_rtcompat::PreferredRuntime;

use crate::error::ProbeErrorKind;

/// How long [`TorTransport::bootstrap`] waits, after arti's bootstrap returns, for arti to
/// report that it is ready for traffic.
const READY_GRACE: Duration = Duration::from_secs(15);
use crate::transport::{BoxedIo, CheckIsolation, ExitRelay, Vantage};

/// Why the embedded Tor client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorSetupError {
    /// The arti TOML configuration is invalid.
    #[error("arti configuration {label}: {detail}")]
    Config {
        /// Where the text came from (a file name), for the message.
        label: String,
        /// What is wrong.
        detail: String,
    },
    /// arti could not create the client (state or cache directory, runtime...).
    #[error("cannot create the Tor client: {0}")]
    Client(String),
    /// Bootstrap did not finish in time.
    #[error("Tor bootstrap did not finish within {after:?} (last progress: {last})")]
    BootstrapTimeout {
        /// The budget.
        after: Duration,
        /// The last progress message.
        last: String,
    },
    /// Bootstrap failed.
    #[error("Tor bootstrap failed: {0}")]
    Bootstrap(String),
}

/// One bootstrap progress report.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BootstrapProgress {
    /// Progress from 0.0 to 1.0.
    pub fraction: f32,
    /// Whether the client can carry traffic.
    pub ready: bool,
    /// arti's description of the current step.
    pub message: String,
}

/// The embedded Tor transport: one shared arti `TorClient` (clone it freely: clones share
/// the client).
///
/// Streams connect to IP addresses only (the exit never resolves a name) and record the
/// exit relay of their circuit.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use certwatch_probe::{ProbeOptions, Prober, TorTransport, Transport};
///
/// // The public network; or `TorTransport::config_from_toml(&text, "arti.toml")?`.
/// let config = TorTransport::public_network_config();
/// let tor = TorTransport::bootstrap(config, Duration::from_secs(120), |p| {
///     eprintln!("Tor bootstrap {:.0}%: {}", p.fraction * 100.0, p.message);
/// })
/// .await?;
/// let prober = Prober::new(Transport::Tor(tor), ProbeOptions::default());
/// # let _ = prober;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TorTransport {
    client: Arc<TorClient<PreferredRuntime>>,
    allow_local_addrs: bool,
}

impl fmt::Debug for TorTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorTransport")
            .field("allow_local_addrs", &self.allow_local_addrs)
            .finish_non_exhaustive()
    }
}

impl TorTransport {
    /// The configuration for the public Tor network, with arti's default directories.
    pub fn public_network_config() -> TorClientConfig {
        TorClientConfig::default()
    }

    /// Parses arti's own TOML configuration format (as `arti.toml`), from text the caller
    /// read. `label` names the source in errors.
    pub fn config_from_toml(text: &str, label: &str) -> Result<TorClientConfig, TorSetupError> {
        let err = |detail: String| TorSetupError::Config {
            label: label.to_owned(),
            detail,
        };
        let builder: TorClientConfigBuilder =
            toml::from_str(text).map_err(|e| err(e.to_string()))?;
        builder.build().map_err(|e| err(e.to_string()))
    }

    /// Creates the client and bootstraps it within `budget`, reporting progress to
    /// `progress` (called from a spawned task; it must not block). Must run inside a tokio
    /// runtime.
    pub async fn bootstrap(
        config: TorClientConfig,
        budget: Duration,
        mut progress: impl FnMut(BootstrapProgress) + Send + 'static,
    ) -> Result<Self, TorSetupError> {
        let client = TorClient::builder()
            .config(config)
            .bootstrap_behavior(BootstrapBehavior::Manual)
            .create_unbootstrapped()
            .map_err(|e| TorSetupError::Client(e.to_string()))?;
        let last = Arc::new(Mutex::new(String::from("not started")));
        let mut events = client.bootstrap_events();
        let last_seen = last.clone();
        let watcher = tokio::spawn(async move {
            while let Some(status) = events.next().await {
                let report = BootstrapProgress {
                    fraction: status.as_frac(),
                    ready: status.ready_for_traffic(),
                    message: status.to_string(),
                };
                if let Ok(mut l) = last_seen.lock() {
                    l.clone_from(&report.message);
                }
                progress(report);
            }
        });
        // `bootstrap()` does not fail by itself when the network is unreachable: bound it.
        // On a young private network it has also returned before arti would build circuits
        // ("attempted to use unbootstrapped client" right after a successful bootstrap). So
        // give arti a short grace, within the budget, to report that it is ready for traffic.
        // Readiness depends on the clock and changes without an event, so it is polled. This
        // is best effort: if arti never says so, the probes go ahead and a failure is
        // classified as usual (indeterminate).
        let ready = async {
            client.bootstrap().await?;
            let grace = tokio::time::Instant::now() + READY_GRACE;
            while !client.bootstrap_status().ready_for_traffic()
                && tokio::time::Instant::now() < grace
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok::<(), arti_client::Error>(())
        };
        let result = tokio::time::timeout(budget, ready).await;
        watcher.abort();
        match result {
            Err(_) => Err(TorSetupError::BootstrapTimeout {
                after: budget,
                last: last.lock().map(|l| l.clone()).unwrap_or_default(),
            }),
            Ok(Err(e)) => Err(TorSetupError::Bootstrap(e.to_string())),
            Ok(Ok(())) => Ok(TorTransport {
                client,
                allow_local_addrs: false,
            }),
        }
    }

    /// Wraps a client the caller created and bootstrapped.
    pub fn from_client(client: Arc<TorClient<PreferredRuntime>>) -> Self {
        TorTransport {
            client,
            allow_local_addrs: false,
        }
    }

    /// Allows streams to loopback and private addresses (for a private test network; the
    /// configuration must also set `address_filter.allow_local_addrs`).
    pub fn allow_local_addrs(mut self, allow: bool) -> Self {
        self.allow_local_addrs = allow;
        self
    }

    /// The shared arti client.
    pub fn client(&self) -> &Arc<TorClient<PreferredRuntime>> {
        &self.client
    }

    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        isolation: &CheckIsolation,
    ) -> Result<(BoxedIo, Vantage), ProbeErrorKind> {
        let mut prefs = StreamPrefs::new();
        prefs.set_isolation(isolation.token);
        if self.allow_local_addrs {
            prefs.connect_to_local_addrs(BoolOrAuto::Explicit(true));
        }
        let tor_addr = TorAddr::dangerously_from(addr).map_err(|e| ProbeErrorKind::Usage {
            detail: format!("cannot ask Tor for {addr}: {e}"),
        })?;
        let stream = self
            .client
            .connect_with_prefs(tor_addr, &prefs)
            .await
            .map_err(|e| match e.kind() {
                arti_client::ErrorKind::RemoteConnectionRefused => ProbeErrorKind::Refused,
                kind => ProbeErrorKind::Tor {
                    detail: format!("{e} ({kind})"),
                },
            })?;
        let exit = exit_of(&stream);
        Ok((Box::new(stream), Vantage::Tor { exit }))
    }
}

/// The last hop of the stream's circuit, through tor-proto's `stream-ctrl`.
fn exit_of(stream: &arti_client::DataStream) -> Option<ExitRelay> {
    let tunnel = stream.client_stream_ctrl()?.tunnel()?;
    let hop = tunnel.last_hop_info().ok()??;
    Some(ExitRelay {
        rsa_identity: hop
            .rsa_identity()
            .map(|id| hex::encode_upper(id.as_bytes())),
        ed25519_identity: hop.ed_identity().map(|id| id.to_string()),
        addrs: hop.addrs().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_toml_names_its_source() {
        let e = TorTransport::config_from_toml("[storage\n", "arti.toml").unwrap_err();
        assert!(e.to_string().contains("arti.toml"), "{e}");
    }

    #[test]
    fn private_network_toml_parses() {
        let text = r#"
[storage]
cache_dir = "/tmp/cw-test/cache"
state_dir = "/tmp/cw-test/state"
[tor_network]
fallback_caches = [
  { rsa_identity = "0123456789ABCDEF0123456789ABCDEF01234567", ed_identity = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", orports = ["127.0.0.11:5101"] },
]
[tor_network.authorities]
v3idents = ["0123456789ABCDEF0123456789ABCDEF01234567"]
[path_rules]
ipv4_subnet_family_prefix = 33
long_lived_ports = []
[address_filter]
allow_local_addrs = true
"#;
        TorTransport::config_from_toml(text, "test").unwrap();
    }

    /// A network whose only directory cache does not answer: bootstrap must end within its
    /// budget (arti's `bootstrap()` never fails by itself there).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bootstrap_against_a_dead_network_ends_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let text = format!(
            r#"
[storage]
cache_dir = "{dir}/cache"
state_dir = "{dir}/state"
[storage.permissions]
dangerously_trust_everyone = true
[tor_network]
fallback_caches = [
  {{ rsa_identity = "0123456789ABCDEF0123456789ABCDEF01234567", ed_identity = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", orports = ["127.0.0.1:{port}"] }},
]
[tor_network.authorities]
v3idents = ["0123456789ABCDEF0123456789ABCDEF01234567"]
"#,
            dir = dir.path().display()
        );
        let config = TorTransport::config_from_toml(&text, "dead.toml").unwrap();
        let result = TorTransport::bootstrap(config, Duration::from_secs(3), |_| {}).await;
        match result {
            Err(TorSetupError::BootstrapTimeout { after, .. }) => {
                assert_eq!(after, Duration::from_secs(3));
            }
            Err(TorSetupError::Bootstrap(_)) => {}
            other => panic!("expected a bootstrap failure, got {:?}", other.map(|_| ())),
        }
    }
}
