//! Configuration: defaults, then a TOML file (`--config FILE`), then `CERTWATCH_*`
//! environment variables, then command-line flags. Each later source overrides the earlier
//! ones key by key.
//!
//! | flag | environment | file key | default |
//! |---|---|---|---|
//! | `--listen ADDR` | `CERTWATCH_LISTEN` | `listen` | `127.0.0.1:8080` |
//! | `--database URL` | `CERTWATCH_DATABASE` | `database` | `sqlite://certwatch.sqlite3` |
//! | `--via tor\|direct\|socks5://H:P` | `CERTWATCH_VIA` | `via` | `tor` |
//! | `--tor-config FILE` | `CERTWATCH_TOR_CONFIG` | `tor_config` | public Tor network |
//! | `--resolver IP[:PORT]` (repeatable) | `CERTWATCH_RESOLVER` (comma-separated) | `resolver` (list) | `/etc/resolv.conf` |
//! | `--trust-anchor FILE` | `CERTWATCH_TRUST_ANCHOR` | `trust_anchor` | IANA root keys |
//! | `--interval DURATION` | `CERTWATCH_INTERVAL` | `interval` | `15m` |
//! | `--jitter DURATION` | `CERTWATCH_JITTER` | `jitter` | `90s` |
//! | `--expire-days N` | `CERTWATCH_EXPIRE_DAYS` | `expire_days` | `30` |
//! | `--circuits-per-minute N` | `CERTWATCH_CIRCUITS_PER_MINUTE` | `circuits_per_minute` | `6` |
//! | `--workers N` | `CERTWATCH_WORKERS` | `workers` | `4` |
//! | `--timeout DURATION` | `CERTWATCH_TIMEOUT` | `timeout` | `20s` (per probe phase) |
//! | `--check-deadline DURATION` | `CERTWATCH_CHECK_DEADLINE` | `check_deadline` | `5m` |
//! | `--confirm N` | `CERTWATCH_CONFIRM` | `confirm` | `3` |
//! | `--allow-private-targets` | `CERTWATCH_ALLOW_PRIVATE_TARGETS` | `allow_private_targets` | `false` |
//! | `--admin-token-hash HEX` | `CERTWATCH_ADMIN_TOKEN_HASH` | `admin_token_hash` | none (admin view off) |
//! | `--admin-token-file FILE` | `CERTWATCH_ADMIN_TOKEN_FILE` | `admin_token_file` | none |
//! | `--trusted-proxy CIDR` (repeatable) | `CERTWATCH_TRUSTED_PROXIES` (comma-separated) | `trusted_proxies` (list) | none |
//! | `--public-url URL` | `CERTWATCH_PUBLIC_URL` | `public_url` | `http://LISTEN` |
//! | `--instance-id NAME` | `CERTWATCH_INSTANCE_ID` | `instance_id` | host name and process id |
//! | `--setup-lines-min-vantages N` | `CERTWATCH_SETUP_LINES_MIN_VANTAGES` | `setup_lines_min_vantages` | `3` |
//! | `--checks-per-client-per-hour N` | `CERTWATCH_CHECKS_PER_CLIENT_PER_HOUR` | `checks_per_client_per_hour` | `10` |
//! | `--checks-global-per-minute N` | `CERTWATCH_CHECKS_GLOBAL_PER_MINUTE` | `checks_global_per_minute` | `60` |
//! | | `CERTWATCH_XMPP_COMPONENT_JID`, `_SERVER_HOST`, `_SERVER_PORT`, `_SECRET`, `_SECRET_FILE`, `_PUBLIC_URL`, `_PING_TO` | `[xmpp]` table: `component_jid`, `server_host`, `server_port`, `secret`, `secret_file`, `public_url`, `ping_to` | off (see docs/xmpp.md) |
//!
//! Durations are a number with an optional unit: `s` (default), `m`, `h`, `d`. Booleans in
//! the environment are `1`/`true`/`yes` or `0`/`false`/`no`.
//!
//! The admin token itself is never stored: `admin_token_hash` is the SHA-256 (hex) of it
//! (`printf %s TOKEN | sha256sum`), and `admin_token_file` is a file holding the token, read
//! and hashed at start. Neither the token nor its hash is printed by `Debug`.
//!
//! ```
//! use std::collections::HashMap;
//! use certwatch_server::config::Config;
//!
//! let env = HashMap::from([("CERTWATCH_INTERVAL".to_string(), "10m".to_string())]);
//! let config = Config::load(["certwatch-server", "--listen", "127.0.0.1:9000"], &env).unwrap();
//! assert_eq!(config.listen.port(), 9000);
//! assert_eq!(config.interval.as_secs(), 600);
//! assert_eq!(config.expire_days, 30);
//! ```

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Bad command-line arguments.
    #[error("{0}")]
    Args(String),
    /// `--help` or `--version`: print the text and exit with success.
    #[error("{0}")]
    Help(String),
    /// The configuration file could not be read.
    #[error("--config {path}: cannot read: {reason}")]
    ReadFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The configuration file is not valid TOML for these keys.
    #[error("--config {path}: {reason}")]
    ParseFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value is invalid; `source` says where it came from (flag, variable or file).
    #[error("{key} (from {source_name}): {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// `--flag`, `CERTWATCH_VAR` or `the config file`.
        source_name: String,
        /// Why.
        reason: String,
    },
}

impl ConfigError {
    /// `true` for `--help` and `--version` (print the message, exit 0).
    pub fn is_help(&self) -> bool {
        matches!(self, ConfigError::Help(_))
    }
}

/// How checks reach the XMPP servers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Via {
    /// Embedded Tor (arti): the default.
    Tor,
    /// Directly (tests, or a vantage point of its own).
    Direct,
    /// An external Tor's SOCKS port.
    Socks(SocketAddr),
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The resolved configuration of the service.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Where the web server listens.
    pub listen: SocketAddr,
    /// The database URL (`sqlite://PATH`, `postgres://...`).
    pub database: String,
    /// How checks reach the servers.
    pub via: Via,
    /// An arti configuration file for `via = tor` (default: the public Tor network).
    pub tor_config: Option<PathBuf>,
    /// DNS servers (empty: the system's `/etc/resolv.conf`).
    pub resolvers: Vec<String>,
    /// A DNSSEC trust anchor file (default: the IANA root keys).
    pub trust_anchor: Option<PathBuf>,
    /// The interval between two checks of a watched domain.
    pub interval: Duration,
    /// The largest jitter added to (or taken from) each next due time.
    pub jitter: Duration,
    /// Days a domain without subscribers stays watched after it was last asked for.
    pub expire_days: u32,
    /// The cap on new Tor circuits (check isolations) per minute.
    pub circuits_per_minute: u32,
    /// Checks run at once.
    pub workers: u32,
    /// The budget of each probe phase and DNS lookup.
    pub timeout: Duration,
    /// The hard bound on one whole check (and the basis of the claim lease).
    pub check_deadline: Duration,
    /// Distinct exits a mismatch is confirmed through.
    pub confirm: u32,
    /// Probe (and call) private and special-use addresses: tests only.
    pub allow_private_targets: bool,
    /// SHA-256 (hex) of the admin token; `None`: the admin view is off.
    pub admin_token_hash: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The site's public base URL, without a trailing slash (links in feeds and alerts).
    pub public_url: String,
    /// This instance's name in claims (several instances on one PostgreSQL).
    pub instance_id: String,
    /// Zone lines from the service's own probes are shown only when at least this many
    /// distinct vantage points saw the same key.
    pub setup_lines_min_vantages: u32,
    /// On-demand checks one client may start per hour.
    pub checks_per_client_per_hour: u32,
    /// On-demand checks all clients together may start per minute.
    pub checks_global_per_minute: u32,
    /// XMPP notifications (`[xmpp]`, `CERTWATCH_XMPP_*`); `None`: off.
    pub xmpp: Option<crate::component::XmppConfig>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field(
                "database",
                &crate::store::redact_database_url(&self.database),
            )
            .field("via", &self.via)
            .field("tor_config", &self.tor_config)
            .field("resolvers", &self.resolvers)
            .field("trust_anchor", &self.trust_anchor)
            .field("interval", &self.interval)
            .field("jitter", &self.jitter)
            .field("expire_days", &self.expire_days)
            .field("circuits_per_minute", &self.circuits_per_minute)
            .field("workers", &self.workers)
            .field("timeout", &self.timeout)
            .field("check_deadline", &self.check_deadline)
            .field("confirm", &self.confirm)
            .field("allow_private_targets", &self.allow_private_targets)
            .field(
                "admin_token_hash",
                &self.admin_token_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_url", &self.public_url)
            .field("instance_id", &self.instance_id)
            .field("setup_lines_min_vantages", &self.setup_lines_min_vantages)
            .field(
                "checks_per_client_per_hour",
                &self.checks_per_client_per_hour,
            )
            .field("checks_global_per_minute", &self.checks_global_per_minute)
            .field("xmpp", &self.xmpp)
            .finish()
    }
}

/// Every setting as one source gives it (all optional). The file's keys are these names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    listen: Option<String>,
    database: Option<String>,
    via: Option<String>,
    tor_config: Option<PathBuf>,
    resolver: Option<Vec<String>>,
    trust_anchor: Option<PathBuf>,
    interval: Option<DurationValue>,
    jitter: Option<DurationValue>,
    expire_days: Option<u32>,
    circuits_per_minute: Option<u32>,
    workers: Option<u32>,
    timeout: Option<DurationValue>,
    check_deadline: Option<DurationValue>,
    confirm: Option<u32>,
    allow_private_targets: Option<bool>,
    admin_token_hash: Option<String>,
    admin_token_file: Option<PathBuf>,
    trusted_proxies: Option<Vec<String>>,
    public_url: Option<String>,
    instance_id: Option<String>,
    setup_lines_min_vantages: Option<u32>,
    checks_per_client_per_hour: Option<u32>,
    checks_global_per_minute: Option<u32>,
    xmpp: Option<crate::component::XmppFile>,
}

/// A duration in the file: a number of seconds or a string with a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Secs(u64),
    Text(String),
}

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "certwatch-server",
    version,
    about = "The certwatch web service: watches XMPP domains' DANE records over Tor.",
    after_help = "Every flag can also be set as a CERTWATCH_* environment variable or in the --config file (see docs/operator-guide.md). Precedence: flags > environment > file > defaults."
)]
struct Flags {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address the web server listens on.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// How checks reach the servers: tor (embedded), direct, or socks5://HOST:PORT.
    #[arg(long, value_name = "tor|direct|socks5://HOST:PORT")]
    via: Option<String>,
    /// arti configuration file (TOML) for --via tor; default: the public Tor network.
    #[arg(long, value_name = "FILE")]
    tor_config: Option<PathBuf>,
    /// DNS server, IP or IP:PORT (repeatable); default: /etc/resolv.conf.
    #[arg(long, value_name = "IP[:PORT]")]
    resolver: Vec<String>,
    /// DNSSEC trust anchor file (DNSKEY or DS lines); default: the IANA root keys.
    #[arg(long, value_name = "FILE")]
    trust_anchor: Option<PathBuf>,
    /// Interval between checks of a watched domain (e.g. 15m).
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Largest random shift of each next check (e.g. 90s).
    #[arg(long, value_name = "DURATION")]
    jitter: Option<String>,
    /// Days an unsubscribed domain stays watched after it was last asked for.
    #[arg(long, value_name = "DAYS")]
    expire_days: Option<u32>,
    /// Cap on new Tor circuits per minute.
    #[arg(long, value_name = "N")]
    circuits_per_minute: Option<u32>,
    /// Checks run at once.
    #[arg(long, value_name = "N")]
    workers: Option<u32>,
    /// Budget of each probe phase and DNS lookup (e.g. 20s).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Hard bound on one whole check (e.g. 5m).
    #[arg(long, value_name = "DURATION")]
    check_deadline: Option<String>,
    /// Distinct Tor exits a mismatch is confirmed through before it is reported.
    #[arg(long, value_name = "N")]
    confirm: Option<u32>,
    /// Probe private and special-use addresses (tests only).
    #[arg(long)]
    allow_private_targets: bool,
    /// SHA-256 (hex) of the admin token (`printf %s TOKEN | sha256sum`).
    #[arg(long, value_name = "HEX")]
    admin_token_hash: Option<String>,
    /// File holding the admin token (read and hashed at start).
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Reverse proxy whose X-Forwarded-For is believed (IP or CIDR; repeatable).
    #[arg(long, value_name = "CIDR")]
    trusted_proxy: Vec<String>,
    /// The site's public base URL (for links in feeds and alerts).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// This instance's name in claims (several instances on one PostgreSQL).
    #[arg(long, value_name = "NAME")]
    instance_id: Option<String>,
    /// Show zone lines from the service's own probes only when this many vantage points agree.
    #[arg(long, value_name = "N")]
    setup_lines_min_vantages: Option<u32>,
    /// On-demand checks one client may start per hour.
    #[arg(long, value_name = "N")]
    checks_per_client_per_hour: Option<u32>,
    /// On-demand checks all clients together may start per minute.
    #[arg(long, value_name = "N")]
    checks_global_per_minute: Option<u32>,
}

impl Flags {
    fn into_layer(self) -> (Option<PathBuf>, Layer) {
        let list = |v: Vec<String>| if v.is_empty() { None } else { Some(v) };
        (
            self.config,
            Layer {
                listen: self.listen,
                database: self.database,
                via: self.via,
                tor_config: self.tor_config,
                resolver: list(self.resolver),
                trust_anchor: self.trust_anchor,
                interval: self.interval.map(DurationValue::Text),
                jitter: self.jitter.map(DurationValue::Text),
                expire_days: self.expire_days,
                circuits_per_minute: self.circuits_per_minute,
                workers: self.workers,
                timeout: self.timeout.map(DurationValue::Text),
                check_deadline: self.check_deadline.map(DurationValue::Text),
                confirm: self.confirm,
                allow_private_targets: self.allow_private_targets.then_some(true),
                admin_token_hash: self.admin_token_hash,
                admin_token_file: self.admin_token_file,
                trusted_proxies: list(self.trusted_proxy),
                public_url: self.public_url,
                instance_id: self.instance_id,
                setup_lines_min_vantages: self.setup_lines_min_vantages,
                checks_per_client_per_hour: self.checks_per_client_per_hour,
                checks_global_per_minute: self.checks_global_per_minute,
                xmpp: None,
            },
        )
    }
}

/// Where a layer came from, for messages.
#[derive(Clone, Copy)]
enum Source {
    Default,
    File,
    Env,
    Flag,
}

fn source_name(source: Source, key: &str) -> String {
    match source {
        Source::Default => "the configuration".into(),
        Source::File => "the config file".into(),
        Source::Env => format!("CERTWATCH_{}", key.to_ascii_uppercase()),
        Source::Flag => format!("--{}", key.replace('_', "-")),
    }
}

fn env_layer(env: &HashMap<String, String>) -> Result<Layer, ConfigError> {
    let get = |k: &str| {
        env.get(&format!("CERTWATCH_{k}"))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let num = |k: &'static str| -> Result<Option<u32>, ConfigError> {
        get(k)
            .map(|v| {
                v.parse::<u32>().map_err(|_| ConfigError::Invalid {
                    key: k,
                    source_name: format!("CERTWATCH_{k}"),
                    reason: format!("{v:?} is not a whole number"),
                })
            })
            .transpose()
    };
    let list = |k: &str| {
        get(k).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
    };
    let allow = match get("ALLOW_PRIVATE_TARGETS").as_deref() {
        None => None,
        Some("1" | "true" | "yes" | "on") => Some(true),
        Some("0" | "false" | "no" | "off") => Some(false),
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: "allow_private_targets",
                source_name: "CERTWATCH_ALLOW_PRIVATE_TARGETS".into(),
                reason: format!("{other:?}: expected true or false"),
            });
        }
    };
    Ok(Layer {
        listen: get("LISTEN"),
        database: get("DATABASE"),
        via: get("VIA"),
        tor_config: get("TOR_CONFIG").map(PathBuf::from),
        resolver: list("RESOLVER"),
        trust_anchor: get("TRUST_ANCHOR").map(PathBuf::from),
        interval: get("INTERVAL").map(DurationValue::Text),
        jitter: get("JITTER").map(DurationValue::Text),
        expire_days: num("EXPIRE_DAYS")?,
        circuits_per_minute: num("CIRCUITS_PER_MINUTE")?,
        workers: num("WORKERS")?,
        timeout: get("TIMEOUT").map(DurationValue::Text),
        check_deadline: get("CHECK_DEADLINE").map(DurationValue::Text),
        confirm: num("CONFIRM")?,
        allow_private_targets: allow,
        admin_token_hash: get("ADMIN_TOKEN_HASH"),
        admin_token_file: get("ADMIN_TOKEN_FILE").map(PathBuf::from),
        trusted_proxies: list("TRUSTED_PROXIES"),
        public_url: get("PUBLIC_URL"),
        instance_id: get("INSTANCE_ID"),
        setup_lines_min_vantages: num("SETUP_LINES_MIN_VANTAGES")?,
        checks_per_client_per_hour: num("CHECKS_PER_CLIENT_PER_HOUR")?,
        checks_global_per_minute: num("CHECKS_GLOBAL_PER_MINUTE")?,
        xmpp: crate::component::XmppFile::from_env(env).map_err(|reason| ConfigError::Invalid {
            key: "xmpp",
            source_name: "CERTWATCH_XMPP_*".into(),
            reason,
        })?,
    })
}

/// Parses `90`, `90s`, `15m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 15m, 2h, 1d)"))?;
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A value and the source it came from.
struct Pick<T> {
    value: T,
    source: Source,
}

/// The last layer (in precedence order) that sets a value.
fn pick<T: Clone>(
    layers: &[(Source, &Layer)],
    get: impl Fn(&Layer) -> Option<T>,
) -> Option<Pick<T>> {
    layers
        .iter()
        .rev()
        .find_map(|(s, l)| get(l).map(|value| Pick { value, source: *s }))
}

impl Config {
    /// Loads the configuration from the command line `args` (the first is the program
    /// name), the environment `env` (only `CERTWATCH_*` keys are read) and the `--config`
    /// file. Reads the admin token file, if any.
    pub fn load<I, T>(args: I, env: &HashMap<String, String>) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        use clap::Parser as _;
        let flags = Flags::try_parse_from(args).map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                ConfigError::Help(e.to_string())
            }
            _ => ConfigError::Args(e.to_string()),
        })?;
        let (config_path, flag_layer) = flags.into_layer();
        let env_layer = env_layer(env)?;
        let config_path = config_path.or_else(|| {
            env.get("CERTWATCH_CONFIG")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
        });
        let file_layer = match &config_path {
            None => Layer::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ReadFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                toml::from_str::<Layer>(&text).map_err(|e| ConfigError::ParseFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
        };
        Config::resolve(&[
            (Source::File, &file_layer),
            (Source::Env, &env_layer),
            (Source::Flag, &flag_layer),
        ])
    }

    fn resolve(layers: &[(Source, &Layer)]) -> Result<Config, ConfigError> {
        fn invalid(key: &'static str, source: Source, reason: String) -> ConfigError {
            ConfigError::Invalid {
                key,
                source_name: source_name(source, key),
                reason,
            }
        }
        let duration = |key: &'static str,
                        get: &dyn Fn(&Layer) -> Option<DurationValue>,
                        default: Duration|
         -> Result<Duration, ConfigError> {
            match pick(layers, get) {
                None => Ok(default),
                Some(Pick {
                    value: DurationValue::Secs(s),
                    ..
                }) => Ok(Duration::from_secs(s)),
                Some(Pick {
                    value: DurationValue::Text(t),
                    source,
                }) => parse_duration(&t).map_err(|r| invalid(key, source, r)),
            }
        };

        let listen = match pick(layers, |l| l.listen.clone()) {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(p) => p.value.parse().map_err(|_| {
                invalid(
                    "listen",
                    p.source,
                    format!("{:?} is not an IP:PORT address", p.value),
                )
            })?,
        };
        let database = pick(layers, |l| l.database.clone())
            .map_or_else(|| "sqlite://certwatch.sqlite3".to_owned(), |p| p.value);
        let via = match pick(layers, |l| l.via.clone()) {
            None => Via::Tor,
            Some(p) => match p.value.trim() {
                "tor" => Via::Tor,
                "direct" => Via::Direct,
                v => Via::Socks(
                    certwatch::parse_socks5_url(v)
                        .map_err(|e| invalid("via", p.source, e.to_string()))?,
                ),
            },
        };
        let tor_config = pick(layers, |l| l.tor_config.clone()).map(|p| p.value);
        if tor_config.is_some() && via != Via::Tor {
            return Err(invalid(
                "tor_config",
                Source::Default,
                "applies to via = tor only".into(),
            ));
        }
        let resolvers = pick(layers, |l| l.resolver.clone()).map_or_else(Vec::new, |p| p.value);
        for r in &resolvers {
            certwatch::dns::parse_server(r)
                .map_err(|e| invalid("resolver", Source::Default, format!("{r:?}: {e}")))?;
        }
        let interval = duration(
            "interval",
            &|l| l.interval.clone(),
            Duration::from_secs(15 * 60),
        )?;
        if interval < Duration::from_secs(60) {
            return Err(invalid(
                "interval",
                Source::Default,
                "must be at least 60 s (be kind to the Tor network)".into(),
            ));
        }
        let jitter = duration("jitter", &|l| l.jitter.clone(), Duration::from_secs(90))?;
        if jitter >= interval {
            return Err(invalid(
                "jitter",
                Source::Default,
                "must be shorter than the interval".into(),
            ));
        }
        let num = |key: &'static str,
                   get: &dyn Fn(&Layer) -> Option<u32>,
                   default: u32,
                   min: u32,
                   max: u32| {
            match pick(layers, get) {
                None => Ok(default),
                Some(p) if p.value < min || p.value > max => Err(invalid(
                    key,
                    p.source,
                    format!("{} is out of range {min}..={max}", p.value),
                )),
                Some(p) => Ok(p.value),
            }
        };
        let expire_days = num("expire_days", &|l| l.expire_days, 30, 1, 3650)?;
        let circuits_per_minute =
            num("circuits_per_minute", &|l| l.circuits_per_minute, 6, 1, 600)?;
        let workers = num("workers", &|l| l.workers, 4, 1, 256)?;
        let confirm = num("confirm", &|l| l.confirm, 3, 0, 16)?;
        let setup_lines_min_vantages = num(
            "setup_lines_min_vantages",
            &|l| l.setup_lines_min_vantages,
            3,
            1,
            32,
        )?;
        let checks_per_client_per_hour = num(
            "checks_per_client_per_hour",
            &|l| l.checks_per_client_per_hour,
            10,
            1,
            100_000,
        )?;
        let checks_global_per_minute = num(
            "checks_global_per_minute",
            &|l| l.checks_global_per_minute,
            60,
            1,
            100_000,
        )?;
        let timeout = duration("timeout", &|l| l.timeout.clone(), Duration::from_secs(20))?;
        if timeout.is_zero() {
            return Err(invalid(
                "timeout",
                Source::Default,
                "must be positive".into(),
            ));
        }
        let check_deadline = duration(
            "check_deadline",
            &|l| l.check_deadline.clone(),
            Duration::from_secs(300),
        )?;
        if check_deadline < timeout {
            return Err(invalid(
                "check_deadline",
                Source::Default,
                "must be at least the timeout".into(),
            ));
        }
        let allow_private_targets =
            pick(layers, |l| l.allow_private_targets).is_some_and(|p| p.value);
        let hash = pick(layers, |l| l.admin_token_hash.clone());
        let file = pick(layers, |l| l.admin_token_file.clone());
        let admin_token_hash = match (hash, file) {
            (Some(h), _) => {
                let v = h.value.trim().to_ascii_lowercase();
                if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "admin_token_hash",
                        h.source,
                        "expected 64 hex digits (the SHA-256 of the token)".into(),
                    ));
                }
                Some(v)
            }
            (None, Some(f)) => {
                let text = std::fs::read_to_string(&f.value).map_err(|e| {
                    invalid(
                        "admin_token_file",
                        f.source,
                        format!("{}: cannot read: {e}", f.value.display()),
                    )
                })?;
                let token = text.trim();
                if token.len() < 32 {
                    return Err(invalid(
                        "admin_token_file",
                        f.source,
                        format!(
                            "{}: the token must have at least 128 bits (32 hex characters)",
                            f.value.display()
                        ),
                    ));
                }
                Some(crate::random::hash_token(token))
            }
            (None, None) => None,
        };
        let trusted_proxies = match pick(layers, |l| l.trusted_proxies.clone()) {
            None => Vec::new(),
            Some(p) => p
                .value
                .iter()
                .map(|s| IpNet::parse(s).map_err(|r| invalid("trusted_proxies", p.source, r)))
                .collect::<Result<_, _>>()?,
        };
        let public_url = pick(layers, |l| l.public_url.clone())
            .map_or_else(|| format!("http://{listen}"), |p| p.value)
            .trim_end_matches('/')
            .to_owned();
        let instance_id = pick(layers, |l| l.instance_id.clone()).map_or_else(
            || {
                let host = std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_default();
                format!(
                    "{}-{}",
                    if host.is_empty() { "certwatch" } else { &host },
                    std::process::id()
                )
            },
            |p| p.value,
        );
        let xmpp_layers: Vec<_> = layers.iter().filter_map(|(_, l)| l.xmpp.as_ref()).collect();
        let xmpp = crate::component::XmppConfig::resolve(&xmpp_layers, &public_url)
            .map_err(|r| invalid("xmpp", Source::Default, r))?;
        Ok(Config {
            listen,
            database,
            via,
            tor_config,
            resolvers,
            trust_anchor: pick(layers, |l| l.trust_anchor.clone()).map(|p| p.value),
            interval,
            jitter,
            expire_days,
            circuits_per_minute,
            workers,
            timeout,
            check_deadline,
            confirm,
            allow_private_targets,
            admin_token_hash,
            trusted_proxies,
            public_url,
            instance_id,
            setup_lines_min_vantages,
            checks_per_client_per_hour,
            checks_global_per_minute,
            xmpp,
        })
    }

    /// The defaults (no file, no environment, no flags): what `cargo run -p
    /// certwatch-server` uses.
    pub fn defaults() -> Config {
        // The defaults are valid by construction; the error branch is unreachable but
        // handled without a panic.
        Config::resolve(&[(Source::Default, &Layer::default())]).unwrap_or_else(|_| Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: "sqlite://certwatch.sqlite3".into(),
            via: Via::Tor,
            tor_config: None,
            resolvers: Vec::new(),
            trust_anchor: None,
            interval: Duration::from_secs(900),
            jitter: Duration::from_secs(90),
            expire_days: 30,
            circuits_per_minute: 6,
            workers: 4,
            timeout: Duration::from_secs(20),
            check_deadline: Duration::from_secs(300),
            confirm: 3,
            allow_private_targets: false,
            admin_token_hash: None,
            trusted_proxies: Vec::new(),
            public_url: "http://127.0.0.1:8080".into(),
            instance_id: "certwatch".into(),
            setup_lines_min_vantages: 3,
            checks_per_client_per_hour: 10,
            checks_global_per_minute: 60,
            xmpp: None,
        })
    }

    /// Whether the peer `ip` is a trusted proxy (its `X-Forwarded-For` is believed).
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }

    /// The watch period of a domain without subscribers, in seconds.
    pub fn expire_secs(&self) -> i64 {
        i64::from(self.expire_days) * 86_400
    }
}
