//! The web layer of certwatch-server: server-rendered HTML pages, the JSON API, the Atom
//! feeds, the admin view, and the security around them (CSRF tokens, rate limits, security
//! headers, body size limits).
//!
//! The public entry point is [`router`], which builds the axum `Router` for an
//! [`AppState`]. Serve it with connection info, so that the rate
//! limiter sees the peer's address:
//!
//! ```no_run
//! # async fn run(state: certwatch_server::app::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let app = certwatch_server::web::router(state);
//! axum::serve(
//!     listener,
//!     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
//! )
//! .await
//! # }
//! ```
//!
//! One module per concept:
//!
//! - [`pages`]: home, the result page per domain, the pending check, the removal-request
//!   form, the threat model;
//! - [`result`]: rendering of a domain's stored reports (states, setup lines, advice,
//!   endpoints, history);
//! - [`pins`]: the trust-on-first-use rule for zone lines taken from the service's probes;
//! - [`api`]: `/api/v1/...` (the stored report in the CLI's JSON schema, on-demand checks),
//!   `/healthz`, `/metrics`;
//! - [`feed`]: the Atom feed per domain;
//! - [`subscribe`]: subscriptions to a domain's alerts (email double opt-in, webhooks
//!   with a challenge), the confirm and unsubscribe links, and their API;
//! - [`evidence`]: the signed evidence bundles and the service's public key;
//! - [`admin`]: the admin view behind a token (domains, removal requests, subscribers);
//! - [`csrf`]: HMAC-signed double-submit tokens bound to a cookie;
//! - [`ratelimit`]: per-client and global limits on on-demand checks;
//! - [`security`]: the security headers on every response and the body size limit;
//! - [`html`]: the auto-escaping templates (maud) and the page layout.

pub mod admin;
pub mod api;
pub mod csrf;
pub mod evidence;
pub mod feed;
pub mod html;
pub mod pages;
pub mod pins;
pub mod ratelimit;
pub mod result;
pub mod security;
pub mod subscribe;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::HeaderMap;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::config::{Config, IpNet};
use crate::store::{CheckTicket, StoreError};

/// The settings of the web layer. [`WebConfig::from_config`] takes them from the service's
/// [`Config`]; tests build their own and call [`router_with`].
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Peers (reverse proxies) whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Hex SHA-256 of the admin token; the admin view is disabled when unset.
    pub admin_token_sha256: Option<String>,
    /// Secret for CSRF tokens and admin session cookies, at least 32 bytes. When unset (the
    /// service's case) the store's shared secret is used ([`Store::web_secret`]), so every
    /// instance on one database accepts the others' tokens, across restarts too.
    ///
    /// [`Store::web_secret`]: crate::store::Store::web_secret
    pub secret: Option<Vec<u8>>,
    /// Give cookies the `Secure` attribute (the site is served over HTTPS).
    pub secure_cookies: bool,
    /// On-demand checks allowed per client address per `per_client_period`.
    pub checks_per_client: u32,
    /// The per-client window.
    pub per_client_period: Duration,
    /// On-demand checks allowed for everyone per `global_period`.
    pub checks_global: u32,
    /// The global window.
    pub global_period: Duration,
    /// Distinct vantage points that must have seen the same key before the result page
    /// shows zone lines taken from the service's own probes.
    pub setup_lines_min_vantages: usize,
    /// The site's public base URL, without a trailing slash (absolute links in feeds).
    pub public_url: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            trusted_proxies: Vec::new(),
            admin_token_sha256: None,
            secret: None,
            secure_cookies: false,
            checks_per_client: 10,
            per_client_period: Duration::from_secs(3600),
            checks_global: 60,
            global_period: Duration::from_secs(60),
            setup_lines_min_vantages: pins::DEFAULT_MIN_VANTAGES,
            public_url: String::new(),
        }
    }
}

impl WebConfig {
    /// The web settings of the service's configuration: trusted proxies, admin token hash,
    /// public URL (`Secure` cookies when it is `https://`), the rate limits on on-demand
    /// checks and the vantage-point rule for probe-derived zone lines.
    pub fn from_config(config: &Config) -> Self {
        WebConfig {
            trusted_proxies: config.trusted_proxies.clone(),
            admin_token_sha256: config.admin_token_hash.clone(),
            secure_cookies: config.public_url.starts_with("https://"),
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            checks_per_client: config.checks_per_client_per_hour,
            per_client_period: Duration::from_secs(3600),
            checks_global: config.checks_global_per_minute,
            global_period: Duration::from_secs(60),
            setup_lines_min_vantages: usize::try_from(config.setup_lines_min_vantages)
                .unwrap_or(usize::MAX),
            ..WebConfig::default()
        }
    }

    /// Checks the settings that can be wrong.
    pub fn validate(&self) -> Result<(), WebConfigError> {
        self.admin_hash()?;
        if self.secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(WebConfigError::Secret);
        }
        Ok(())
    }

    /// The admin token's SHA-256, decoded.
    pub fn admin_hash(&self) -> Result<Option<[u8; 32]>, WebConfigError> {
        match &self.admin_token_sha256 {
            None => Ok(None),
            Some(h) => {
                let bytes = hex::decode(h.trim()).map_err(|_| WebConfigError::AdminHash)?;
                let arr: [u8; 32] = bytes.try_into().map_err(|_| WebConfigError::AdminHash)?;
                Ok(Some(arr))
            }
        }
    }
}

/// Why the web configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebConfigError {
    /// The admin token hash is not 64 hex digits.
    #[error("the admin token hash must be 64 hex digits (the SHA-256 of the admin token)")]
    AdminHash,
    /// The secret is shorter than 32 bytes.
    #[error("the web secret must be at least 32 bytes")]
    Secret,
}

/// The keys derived from the web secret: the CSRF guard and the admin session key.
pub struct Keys {
    /// The CSRF guard.
    pub csrf: csrf::Csrf,
    /// The key that signs admin session cookies.
    pub session_key: ring::hmac::Key,
}

impl Keys {
    /// The keys of `secret` (domain-separated HMAC keys).
    pub fn new(secret: &[u8], secure_cookies: bool) -> Self {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let derived = ring::hmac::sign(&k, b"certwatch admin session v1");
        Keys {
            csrf: csrf::Csrf::new(secret, secure_cookies),
            session_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
        }
    }
}

/// The web layer's own state: the application state plus the CSRF guard, the rate
/// limiters and the settings the pages need.
pub struct Web {
    /// The application state (store, configuration, metrics, clock, on-demand checks).
    pub app: AppState,
    /// The keys, made on first use from the configured secret or the store's shared one.
    keys: tokio::sync::OnceCell<Keys>,
    /// The configured secret, if any.
    secret: Option<Vec<u8>>,
    /// Limits on on-demand checks (form and API) and removal requests.
    pub checks_limit: ratelimit::RateLimiter,
    /// Limits on admin login attempts.
    pub login_limit: ratelimit::RateLimiter,
    /// Limits on subscription requests (form and API).
    pub subscribe_limit: ratelimit::RateLimiter,
    /// Settings.
    pub settings: Settings,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("app", &self.app)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The settings of the web layer, resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// SHA-256 of the admin token; `None` disables the admin view.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// Cookies get the `Secure` attribute.
    pub secure_cookies: bool,
    /// Distinct vantage points that must agree before probe-derived zone lines are shown.
    pub min_vantages: usize,
    /// The public base URL (may be empty: relative links).
    pub public_url: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("admin_view", &self.admin_token_sha256.is_some())
            .field("secure_cookies", &self.secure_cookies)
            .field("min_vantages", &self.min_vantages)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Shared handle to [`Web`], the state of every handler.
pub type Shared = Arc<Web>;

impl Web {
    /// Unix seconds now, from the application's injected clock.
    pub fn now(&self) -> i64 {
        self.app.now()
    }

    /// The injected clock's time as a duration since the epoch (for the rate limiters).
    pub fn uptime_now(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.now()).unwrap_or(0))
    }

    /// The client address of a request, per [`ratelimit::client_address`].
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: IpAddr| self.settings.trusted_proxies.iter().any(|n| n.contains(ip));
        ratelimit::client_address(peer.map(|p| p.ip()), headers, &trusted)
            // Without connection info (a harness that gives none), every client shares one
            // bucket: the limit still holds.
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// The CSRF and session keys. The first call reads the shared secret from the store
    /// (unless one is configured); a store failure is a 500 page, and the next request tries
    /// again.
    pub async fn keys(&self) -> Result<&Keys, Box<axum::response::Response>> {
        self.keys
            .get_or_try_init(|| async {
                let secret = match &self.secret {
                    Some(s) => s.clone(),
                    None => self.app.store.web_secret().await?,
                };
                Ok::<_, StoreError>(Keys::new(&secret, self.settings.secure_cookies))
            })
            .await
            .map_err(|e| Box::new(pages::internal(&e)))
    }

    /// Queues an on-demand check (the caller applied the rate limit).
    pub async fn request_check(&self, domain: &str) -> Result<CheckTicket, StoreError> {
        self.app.checks.request(domain).await
    }
}

/// The peer address of a request, when the server was started with connection info.
pub fn peer(request_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Builds the web layer's state from the application state and the web configuration.
pub fn web_state(app: AppState, c: &WebConfig) -> Result<Web, WebConfigError> {
    if c.secret.as_ref().is_some_and(|s| s.len() < 32) {
        return Err(WebConfigError::Secret);
    }
    let settings = Settings {
        trusted_proxies: c.trusted_proxies.clone(),
        admin_token_sha256: c.admin_hash()?,
        secure_cookies: c.secure_cookies,
        min_vantages: c.setup_lines_min_vantages.max(1),
        public_url: c.public_url.trim_end_matches('/').to_owned(),
    };
    let checks_limit = ratelimit::RateLimiter::new(
        ratelimit::Limit {
            max: c.checks_per_client,
            period: c.per_client_period.max(Duration::from_secs(1)),
        },
        ratelimit::Limit {
            max: c.checks_global,
            period: c.global_period.max(Duration::from_secs(1)),
        },
    );
    let login_limit = ratelimit::RateLimiter::new(
        ratelimit::Limit {
            max: 10,
            period: Duration::from_secs(600),
        },
        ratelimit::Limit {
            max: 100,
            period: Duration::from_secs(600),
        },
    );
    Ok(Web {
        keys: tokio::sync::OnceCell::new(),
        secret: c.secret.clone(),
        app,
        checks_limit,
        login_limit,
        subscribe_limit: subscribe::limiter(),
        settings,
    })
}

/// The router with explicit web settings (tests, or a main that sets the rate limits).
pub fn router_with(state: AppState, config: &WebConfig) -> Result<Router, WebConfigError> {
    Ok(routes(Arc::new(web_state(state, config)?)))
}

/// The whole site: pages, API, feeds, admin view, with the security headers on every
/// response, and the body size limit and a deadline on every request. The settings come from the
/// service's configuration ([`WebConfig::from_config`]).
///
/// An unusable admin token hash is logged and disables the admin view; the site keeps
/// serving (main validates the configuration first). The CSRF and session keys come from
/// the store's shared secret, read on the first request that needs them.
pub fn router(state: AppState) -> Router {
    let mut config = WebConfig::from_config(&state.config);
    if let Err(e) = config.admin_hash() {
        tracing::error!("{e}; the admin view is disabled");
        config.admin_token_sha256 = None;
    }
    match router_with(state, &config) {
        Ok(router) => router,
        Err(e) => {
            tracing::error!("{e}; the site answers 503");
            Router::new().fallback(|| async {
                html::error_page(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Service unavailable",
                    "The web layer's configuration is unusable; the log says why.",
                )
            })
        }
    }
}

fn routes(web: Shared) -> Router {
    let https = web.settings.secure_cookies;
    Router::new()
        .route("/", get(pages::home))
        .route("/checks", post(pages::submit_check))
        .route("/checks/{id}", get(pages::ticket))
        .route("/domains/{domain}", get(pages::domain))
        .route("/domains/{domain}/feed.atom", get(feed::domain_feed))
        .route(
            "/domains/{domain}/subscribe",
            get(subscribe::subscribe_page).post(subscribe::subscribe_submit),
        )
        .route(
            "/subscriptions/confirm",
            get(subscribe::confirm_page).post(subscribe::confirm_submit),
        )
        .route(
            "/subscriptions/unsubscribe",
            get(subscribe::unsubscribe_page).post(subscribe::unsubscribe_submit),
        )
        .route("/api/v1/subscriptions", post(subscribe::api_subscribe))
        .route(
            "/api/v1/subscriptions/unsubscribe",
            post(subscribe::api_unsubscribe),
        )
        .route("/docs/webhooks", get(subscribe::webhook_doc))
        .route("/docs/webhooks.md", get(subscribe::webhook_doc_text))
        .route("/domains/{domain}/evidence/{file}", get(evidence::bundle))
        .route(evidence::KEY_PAGE_PATH, get(evidence::key_page))
        .route(evidence::KEY_JSON_PATH, get(evidence::key_json))
        .route("/threat-model", get(pages::threat_model))
        .route("/docs/threat-model.md", get(pages::threat_model_text))
        .route("/docs/api", get(pages::api_doc))
        .route("/docs/api.md", get(pages::api_doc_text))
        .route(
            "/removal",
            get(pages::removal_form).post(pages::submit_removal),
        )
        .route("/static/site.css", get(pages::stylesheet))
        .route("/api/v1/domains/{domain}", get(api::domain))
        .route("/api/v1/checks", post(api::create_check))
        .route("/api/v1/checks/{id}", get(api::ticket))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/admin", get(admin::dashboard))
        .route("/admin/login", post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/domains/remove", post(admin::remove_domain))
        .route(
            "/admin/subscriptions/block",
            post(admin::block_subscription),
        )
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(security::MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            security::REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            https,
            security::headers,
        ))
        .with_state(web)
}
