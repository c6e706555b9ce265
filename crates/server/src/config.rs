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
//! | `--blind-after DURATION` | `CERTWATCH_BLIND_AFTER` | `blind_after` | `6h` |
//! | `--remind-after DURATION` | `CERTWATCH_REMIND_AFTER` | `remind_after` | `24h` |
//! | `--retry-base-delay DURATION` | `CERTWATCH_RETRY_BASE_DELAY` | `retry_base_delay` | `30s` |
//! | `--retry-max-delay DURATION` | `CERTWATCH_RETRY_MAX_DELAY` | `retry_max_delay` | `1h` |
//! | `--retry-max-attempts N` | `CERTWATCH_RETRY_MAX_ATTEMPTS` | `retry_max_attempts` | `10` |
//! | `--outbox-interval DURATION` | `CERTWATCH_OUTBOX_INTERVAL` | `outbox_interval` | `5s` |
//! | `--outbox-lease DURATION` | `CERTWATCH_OUTBOX_LEASE` | `outbox_lease` | `15m` |
//! | `--outbox-batch N` | `CERTWATCH_OUTBOX_BATCH` | `outbox_batch` | `5` |
//! | `--outbox-stale-after DURATION` | `CERTWATCH_OUTBOX_STALE_AFTER` | `outbox_stale_after` | `1h` |
//! | `--smtp-url URL` | `CERTWATCH_SMTP_URL` | `smtp_url` | none (no email) |
//! | `--smtp-from MAILBOX` | `CERTWATCH_SMTP_FROM` | `smtp_from` | none |
//! | `--smtp-password-file FILE` | `CERTWATCH_SMTP_PASSWORD_FILE` | `smtp_password_file` | none |
//! | - | `CERTWATCH_SMTP_PASSWORD` | - | none |
//! | `--admin-email ADDRESS` | `CERTWATCH_ADMIN_EMAIL` | `admin_email` | none |
//! | `--admin-webhook-url URL` | `CERTWATCH_ADMIN_WEBHOOK_URL` | `admin_webhook_url` | none |
//! | `--admin-webhook-secret-file FILE` | `CERTWATCH_ADMIN_WEBHOOK_SECRET_FILE` | `admin_webhook_secret_file` | none |
//! | - | `CERTWATCH_ADMIN_WEBHOOK_SECRET` | - | none |
//! | `--digest-hour H` | `CERTWATCH_DIGEST_HOUR` | `digest_hour` | `7` (UTC) |
//! | | `CERTWATCH_XMPP_COMPONENT_JID`, `_SERVER_HOST`, `_SERVER_PORT`, `_SECRET`, `_SECRET_FILE`, `_PUBLIC_URL`, `_PING_TO` | `[xmpp]` table: `component_jid`, `server_host`, `server_port`, `secret`, `secret_file`, `public_url`, `ping_to` | off (see docs/xmpp.md) |
//!
//! The SMTP relay URL is `smtps://[USER@]HOST[:PORT]` (TLS, default port 465),
//! `smtp+starttls://[USER@]HOST[:PORT]` (STARTTLS required, 587) or
//! `smtp://[USER@]HOST[:PORT]` (plain text, 25: a relay on the same host only). The password
//! is never part of the URL: it comes from `CERTWATCH_SMTP_PASSWORD` or, if that is unset,
//! from the file `smtp_password_file`. The admin webhook's HMAC secret (at least 32 hex
//! digits) likewise comes from `CERTWATCH_ADMIN_WEBHOOK_SECRET` or
//! `admin_webhook_secret_file`. Neither secret is printed by `Debug`.
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
    /// No conclusive check of a watched domain for this long raises `blind`.
    pub blind_after: Duration,
    /// An open incident is reminded of at most once per this period.
    pub remind_after: Duration,
    /// The delay after a delivery's first failed attempt (doubled after each further one).
    pub retry_base_delay: Duration,
    /// The longest delay between two attempts of a delivery.
    pub retry_max_delay: Duration,
    /// Failed attempts after which a delivery is `failed` for good.
    pub retry_max_attempts: u32,
    /// The pause between two passes of the outbox worker.
    pub outbox_interval: Duration,
    /// The lease of a claimed delivery (longer than one pass can take).
    pub outbox_lease: Duration,
    /// Deliveries claimed per pass and channel.
    pub outbox_batch: u32,
    /// `/healthz` is `degraded` while a pending delivery is older than this.
    pub outbox_stale_after: Duration,
    /// The SMTP relay (`None`: no email is sent).
    pub smtp: Option<SmtpConfig>,
    /// The administrator's mailbox for admin notices (needs `smtp`).
    pub admin_email: Option<String>,
    /// The administrator's webhook for admin notices.
    pub admin_webhook: Option<AdminWebhook>,
    /// The hour (UTC, 0-23) at which daily digests are sent.
    pub digest_hour: u32,
    /// XMPP notifications (`[xmpp]`, `CERTWATCH_XMPP_*`); `None`: off.
    pub xmpp: Option<crate::component::XmppConfig>,
}

/// The SMTP relay of the service's mails.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// TLS mode (from the URL's scheme).
    pub security: crate::notify::email::SmtpSecurity,
    /// Login name (the URL's user part).
    pub user: Option<String>,
    /// Password (from the environment or a file; never logged).
    pub password: Option<String>,
    /// The From mailbox.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish()
    }
}

/// The administrator's webhook: URL and HMAC secret (hex).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminWebhook {
    /// The URL (the SSRF guard applies when it is called).
    pub url: String,
    /// The HMAC secret, hex (never logged).
    pub secret: String,
}

impl std::fmt::Debug for AdminWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminWebhook")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Parses an SMTP relay URL: `smtps://`, `smtp+starttls://` or `smtp://`, with an optional
/// `USER@` and `:PORT`; a password in the URL is refused (it would end up in logs).
pub fn parse_smtp_url(
    url: &str,
) -> Result<
    (
        String,
        u16,
        crate::notify::email::SmtpSecurity,
        Option<String>,
    ),
    String,
> {
    use crate::notify::email::SmtpSecurity;
    let url = url.trim();
    let (security, port, rest) = if let Some(r) = url.strip_prefix("smtps://") {
        (SmtpSecurity::Tls, 465, r)
    } else if let Some(r) = url.strip_prefix("smtp+starttls://") {
        (SmtpSecurity::StartTls, 587, r)
    } else if let Some(r) = url.strip_prefix("smtp://") {
        (SmtpSecurity::Plain, 25, r)
    } else {
        return Err("expected smtps://, smtp+starttls:// or smtp://HOST[:PORT]".into());
    };
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => {
            if u.contains(':') {
                return Err(
                    "no password in the URL: use CERTWATCH_SMTP_PASSWORD or smtp_password_file"
                        .into(),
                );
            }
            (Some(u.to_owned()).filter(|u| !u.is_empty()), h)
        }
        None => (None, rest),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or("unclosed [ in the host")?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{p:?} is not a port"))?,
            None if p.is_empty() => port,
            None => return Err(format!("unexpected {p:?} after the host")),
        };
        (h.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| format!("{p:?} is not a port"))?,
            ),
            None => (hostport.to_owned(), port),
        }
    };
    if host.is_empty() || host.contains('/') {
        return Err("no host".into());
    }
    Ok((host, port, security, user))
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
            .field("blind_after", &self.blind_after)
            .field("remind_after", &self.remind_after)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("retry_max_attempts", &self.retry_max_attempts)
            .field("outbox_interval", &self.outbox_interval)
            .field("outbox_lease", &self.outbox_lease)
            .field("outbox_batch", &self.outbox_batch)
            .field("outbox_stale_after", &self.outbox_stale_after)
            .field("smtp", &self.smtp)
            .field("admin_email", &self.admin_email)
            .field("admin_webhook", &self.admin_webhook)
            .field("digest_hour", &self.digest_hour)
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
    blind_after: Option<DurationValue>,
    remind_after: Option<DurationValue>,
    retry_base_delay: Option<DurationValue>,
    retry_max_delay: Option<DurationValue>,
    retry_max_attempts: Option<u32>,
    outbox_interval: Option<DurationValue>,
    outbox_lease: Option<DurationValue>,
    outbox_batch: Option<u32>,
    outbox_stale_after: Option<DurationValue>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    smtp_password_file: Option<PathBuf>,
    /// Environment only (`CERTWATCH_SMTP_PASSWORD`): never a file key or a flag.
    #[serde(skip)]
    smtp_password: Option<String>,
    admin_email: Option<String>,
    admin_webhook_url: Option<String>,
    admin_webhook_secret_file: Option<PathBuf>,
    /// Environment only (`CERTWATCH_ADMIN_WEBHOOK_SECRET`).
    #[serde(skip)]
    admin_webhook_secret: Option<String>,
    digest_hour: Option<u32>,
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
    /// No conclusive check of a watched domain for this long raises a blind alert (e.g. 6h).
    #[arg(long, value_name = "DURATION")]
    blind_after: Option<String>,
    /// Quiet period before an open incident is reminded of (e.g. 24h).
    #[arg(long, value_name = "DURATION")]
    remind_after: Option<String>,
    /// Delay after a delivery's first failure, doubled after each further one (e.g. 30s).
    #[arg(long, value_name = "DURATION")]
    retry_base_delay: Option<String>,
    /// Longest delay between two attempts of a delivery (e.g. 1h).
    #[arg(long, value_name = "DURATION")]
    retry_max_delay: Option<String>,
    /// Failed attempts after which a delivery is failed for good (admin view, admin notice).
    #[arg(long, value_name = "N")]
    retry_max_attempts: Option<u32>,
    /// Pause between two passes of the outbox worker (e.g. 5s).
    #[arg(long, value_name = "DURATION")]
    outbox_interval: Option<String>,
    /// Lease of a claimed delivery (e.g. 15m).
    #[arg(long, value_name = "DURATION")]
    outbox_lease: Option<String>,
    /// Deliveries claimed per pass and channel.
    #[arg(long, value_name = "N")]
    outbox_batch: Option<u32>,
    /// /healthz says degraded while a pending delivery is older than this (e.g. 1h).
    #[arg(long, value_name = "DURATION")]
    outbox_stale_after: Option<String>,
    /// SMTP relay: smtps://[USER@]HOST[:PORT], smtp+starttls://..., or smtp://... (plain).
    #[arg(long, value_name = "URL")]
    smtp_url: Option<String>,
    /// The From mailbox of the service's mails.
    #[arg(long, value_name = "MAILBOX")]
    smtp_from: Option<String>,
    /// File holding the SMTP password (or set CERTWATCH_SMTP_PASSWORD).
    #[arg(long, value_name = "FILE")]
    smtp_password_file: Option<PathBuf>,
    /// The administrator's mailbox for admin notices (hostile exits, failed deliveries).
    #[arg(long, value_name = "ADDRESS")]
    admin_email: Option<String>,
    /// The administrator's webhook URL for admin notices.
    #[arg(long, value_name = "URL")]
    admin_webhook_url: Option<String>,
    /// File holding the admin webhook's HMAC secret, hex (or CERTWATCH_ADMIN_WEBHOOK_SECRET).
    #[arg(long, value_name = "FILE")]
    admin_webhook_secret_file: Option<PathBuf>,
    /// Hour of the day (UTC, 0-23) at which daily digests are sent.
    #[arg(long, value_name = "H")]
    digest_hour: Option<u32>,
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
                blind_after: self.blind_after.map(DurationValue::Text),
                remind_after: self.remind_after.map(DurationValue::Text),
                retry_base_delay: self.retry_base_delay.map(DurationValue::Text),
                retry_max_delay: self.retry_max_delay.map(DurationValue::Text),
                retry_max_attempts: self.retry_max_attempts,
                outbox_interval: self.outbox_interval.map(DurationValue::Text),
                outbox_lease: self.outbox_lease.map(DurationValue::Text),
                outbox_batch: self.outbox_batch,
                outbox_stale_after: self.outbox_stale_after.map(DurationValue::Text),
                smtp_url: self.smtp_url,
                smtp_from: self.smtp_from,
                smtp_password_file: self.smtp_password_file,
                smtp_password: None,
                admin_email: self.admin_email,
                admin_webhook_url: self.admin_webhook_url,
                admin_webhook_secret_file: self.admin_webhook_secret_file,
                admin_webhook_secret: None,
                digest_hour: self.digest_hour,
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
        blind_after: get("BLIND_AFTER").map(DurationValue::Text),
        remind_after: get("REMIND_AFTER").map(DurationValue::Text),
        retry_base_delay: get("RETRY_BASE_DELAY").map(DurationValue::Text),
        retry_max_delay: get("RETRY_MAX_DELAY").map(DurationValue::Text),
        retry_max_attempts: num("RETRY_MAX_ATTEMPTS")?,
        outbox_interval: get("OUTBOX_INTERVAL").map(DurationValue::Text),
        outbox_lease: get("OUTBOX_LEASE").map(DurationValue::Text),
        outbox_batch: num("OUTBOX_BATCH")?,
        outbox_stale_after: get("OUTBOX_STALE_AFTER").map(DurationValue::Text),
        smtp_url: get("SMTP_URL"),
        smtp_from: get("SMTP_FROM"),
        smtp_password_file: get("SMTP_PASSWORD_FILE").map(PathBuf::from),
        smtp_password: get("SMTP_PASSWORD"),
        admin_email: get("ADMIN_EMAIL"),
        admin_webhook_url: get("ADMIN_WEBHOOK_URL"),
        admin_webhook_secret_file: get("ADMIN_WEBHOOK_SECRET_FILE").map(PathBuf::from),
        admin_webhook_secret: get("ADMIN_WEBHOOK_SECRET"),
        digest_hour: num("DIGEST_HOUR")?,
        xmpp: crate::component::XmppFile::from_env(env).map_err(|reason| ConfigError::Invalid {
            key: "xmpp",
            source_name: "CERTWATCH_XMPP_*".into(),
            reason,
        })?,
    })
}

/// Whole seconds of `d` as `i64` (saturating).
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
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
        // Test set-ups (private targets, a private Tor network) may check every few seconds;
        // against the public network the floor is one minute.
        let private = pick(layers, |l| l.allow_private_targets).is_some_and(|p| p.value);
        let floor = if private { 5 } else { 60 };
        if interval < Duration::from_secs(floor) {
            return Err(invalid(
                "interval",
                Source::Default,
                if private {
                    "must be at least 5 s".into()
                } else {
                    "must be at least 60 s (be kind to the Tor network; shorter only with allow_private_targets, for tests)".into()
                },
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
        // Issue 9: a mismatch alerts only after at least 3 distinct exits (and a direct
        // probe) confirm it. Fewer only in test set-ups.
        let tests_only = pick(layers, |l| l.allow_private_targets).is_some_and(|p| p.value);
        if via == Via::Tor && confirm < 3 && !tests_only {
            return Err(invalid(
                "confirm",
                Source::Default,
                "must be at least 3 with via = tor (a mismatch is confirmed through at least 3 distinct exits before it alerts)".into(),
            ));
        }
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
        let at_least = |key: &'static str, d: Duration, min: Duration| {
            if d < min {
                Err(invalid(
                    key,
                    Source::Default,
                    format!("must be at least {} s", min.as_secs()),
                ))
            } else {
                Ok(d)
            }
        };
        let one = Duration::from_secs(1);
        let blind_after = at_least(
            "blind_after",
            duration(
                "blind_after",
                &|l| l.blind_after.clone(),
                Duration::from_secs(6 * 3600),
            )?,
            one,
        )?;
        let remind_after = at_least(
            "remind_after",
            duration(
                "remind_after",
                &|l| l.remind_after.clone(),
                Duration::from_secs(24 * 3600),
            )?,
            one,
        )?;
        let retry_base_delay = at_least(
            "retry_base_delay",
            duration(
                "retry_base_delay",
                &|l| l.retry_base_delay.clone(),
                Duration::from_secs(30),
            )?,
            one,
        )?;
        let retry_max_delay = duration(
            "retry_max_delay",
            &|l| l.retry_max_delay.clone(),
            Duration::from_secs(3600),
        )?;
        if retry_max_delay < retry_base_delay {
            return Err(invalid(
                "retry_max_delay",
                Source::Default,
                "must be at least retry_base_delay".into(),
            ));
        }
        let retry_max_attempts = num("retry_max_attempts", &|l| l.retry_max_attempts, 10, 1, 100)?;
        let outbox_interval = at_least(
            "outbox_interval",
            duration(
                "outbox_interval",
                &|l| l.outbox_interval.clone(),
                Duration::from_secs(5),
            )?,
            one,
        )?;
        let outbox_lease = at_least(
            "outbox_lease",
            duration(
                "outbox_lease",
                &|l| l.outbox_lease.clone(),
                Duration::from_secs(900),
            )?,
            one,
        )?;
        let outbox_batch = num("outbox_batch", &|l| l.outbox_batch, 5, 1, 1000)?;
        let outbox_stale_after = at_least(
            "outbox_stale_after",
            duration(
                "outbox_stale_after",
                &|l| l.outbox_stale_after.clone(),
                Duration::from_secs(3600),
            )?,
            one,
        )?;
        let digest_hour = num("digest_hour", &|l| l.digest_hour, 7, 0, 23)?;
        let read_secret = |key: &'static str, p: Pick<PathBuf>| {
            std::fs::read_to_string(&p.value)
                .map(|t| t.trim().to_owned())
                .map_err(|e| {
                    invalid(
                        key,
                        p.source,
                        format!("{}: cannot read: {e}", p.value.display()),
                    )
                })
        };
        let smtp = match pick(layers, |l| l.smtp_url.clone()) {
            None => None,
            Some(u) => {
                let (host, port, security, user) =
                    parse_smtp_url(&u.value).map_err(|r| invalid("smtp_url", u.source, r))?;
                let from = match pick(layers, |l| l.smtp_from.clone()) {
                    None => {
                        return Err(invalid(
                            "smtp_from",
                            Source::Default,
                            "is required with smtp_url".into(),
                        ));
                    }
                    Some(f) => {
                        f.value
                            .parse::<lettre::message::Mailbox>()
                            .map_err(|e| invalid("smtp_from", f.source, e.to_string()))?;
                        f.value
                    }
                };
                let password = match pick(layers, |l| l.smtp_password.clone()) {
                    Some(p) => Some(p.value),
                    None => match pick(layers, |l| l.smtp_password_file.clone()) {
                        Some(f) => Some(read_secret("smtp_password_file", f)?),
                        None => None,
                    },
                };
                Some(SmtpConfig {
                    host,
                    port,
                    security,
                    user,
                    password,
                    from,
                })
            }
        };
        let admin_email = match pick(layers, |l| l.admin_email.clone()) {
            None => None,
            Some(a) => {
                a.value
                    .parse::<lettre::message::Mailbox>()
                    .map_err(|e| invalid("admin_email", a.source, e.to_string()))?;
                if smtp.is_none() {
                    return Err(invalid(
                        "admin_email",
                        a.source,
                        "needs an SMTP relay (smtp_url)".into(),
                    ));
                }
                Some(a.value)
            }
        };
        let admin_webhook = match pick(layers, |l| l.admin_webhook_url.clone()) {
            None => None,
            Some(u) => {
                let url = u.value.trim().to_owned();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(invalid(
                        "admin_webhook_url",
                        u.source,
                        "expected an http:// or https:// URL".into(),
                    ));
                }
                let secret = match pick(layers, |l| l.admin_webhook_secret.clone()) {
                    Some(p) => p.value,
                    None => match pick(layers, |l| l.admin_webhook_secret_file.clone()) {
                        Some(f) => read_secret("admin_webhook_secret_file", f)?,
                        None => {
                            return Err(invalid(
                                "admin_webhook_secret_file",
                                Source::Default,
                                "admin_webhook_url needs a secret (CERTWATCH_ADMIN_WEBHOOK_SECRET \
                                 or admin_webhook_secret_file)"
                                    .into(),
                            ));
                        }
                    },
                };
                let secret = secret.trim().to_ascii_lowercase();
                if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "admin_webhook_secret_file",
                        Source::Default,
                        "the admin webhook secret must be at least 32 hex digits (128 bits)".into(),
                    ));
                }
                Some(AdminWebhook { url, secret })
            }
        };
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
            blind_after,
            remind_after,
            retry_base_delay,
            retry_max_delay,
            retry_max_attempts,
            outbox_interval,
            outbox_lease,
            outbox_batch,
            outbox_stale_after,
            smtp,
            admin_email,
            admin_webhook,
            digest_hour,
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
            blind_after: Duration::from_secs(6 * 3600),
            remind_after: Duration::from_secs(24 * 3600),
            retry_base_delay: Duration::from_secs(30),
            retry_max_delay: Duration::from_secs(3600),
            retry_max_attempts: 10,
            outbox_interval: Duration::from_secs(5),
            outbox_lease: Duration::from_secs(900),
            outbox_batch: 5,
            outbox_stale_after: Duration::from_secs(3600),
            smtp: None,
            admin_email: None,
            admin_webhook: None,
            digest_hour: 7,
            xmpp: None,
        })
    }

    /// The incident policy (`blind_after`, `remind_after`) for [`crate::store::Store::with_alert_policy`].
    pub fn alert_policy(&self) -> crate::notify::incident::Policy {
        crate::notify::incident::Policy {
            blind_after: secs(self.blind_after),
            remind_after: secs(self.remind_after),
        }
    }

    /// The outbox's retry policy.
    pub fn retry_policy(&self) -> crate::store::RetryPolicy {
        crate::store::RetryPolicy {
            base_delay: secs(self.retry_base_delay),
            max_delay: secs(self.retry_max_delay),
            max_attempts: self.retry_max_attempts,
        }
    }

    /// The email sender's options, when an SMTP relay is configured (30 s per message).
    pub fn email_options(&self) -> Option<crate::notify::email::EmailOptions> {
        self.smtp
            .as_ref()
            .map(|s| crate::notify::email::EmailOptions {
                host: s.host.clone(),
                port: s.port,
                security: s.security,
                credentials: s
                    .user
                    .clone()
                    .map(|u| (u, s.password.clone().unwrap_or_default())),
                from: s.from.clone(),
                timeout: Duration::from_secs(30),
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
