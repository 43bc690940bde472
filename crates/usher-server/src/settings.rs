//! Configuration: defaults, then a TOML file, then `USHER_*` environment variables (`__` nests), checked
//! once at start into [`Settings`]. Unknown keys, bad addresses and missing secrets are refused with a
//! message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use usher_geo::proxy::ForwardedHeader;

mod audit;
mod backup;
mod cdn_probe;
mod error;
mod geoip;
mod http;
mod ingest;
mod log;
mod login;
mod metrics;
mod privacy;
mod rate_limits;
mod store;
mod tv;
mod uploads;
mod webhooks;

pub use audit::AuditSettings;
pub use backup::BackupSettings;
pub use cdn_probe::CdnProbeSettings;
pub use error::ConfigError;
use error::invalid;
pub use geoip::GeoIpSettings;
pub use http::HttpSettings;
pub use ingest::{IngestSettings, Rung};
pub use log::{LogFormat, LogSettings};
pub use login::LoginSettings;
pub use metrics::MetricsSettings;
pub use privacy::{AddressesAfter, PrivacySettings};
pub use rate_limits::{Limit, LimitSetting, RateLimitSettings, RateLimits};
pub use store::{RedisSettings, SentinelSettings, StoreSettings};
pub use tv::TvSettings;
pub use uploads::UploadSettings;
pub use webhooks::WebhookSettings;

pub use crate::media_cache::MediaCacheSettings;

/// Top-level keys; environment variables outside these (say `USHER_BIN` of a script) are not config.
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "data_dir",
    "media_dir",
    "store",
    "secrets",
    "http",
    "log",
    "trusted_proxies",
    "trusted_proxy_header",
    "geoip",
    "cdn_probe",
    "media_cache",
    "rate_limits",
    "login",
    "audit",
    "privacy",
    "backup",
    "metrics",
    "webhooks",
    "tv",
    "uploads",
    "ingest",
];

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The whole configuration, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL viewers reach this service at, for watch links (default: `http://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Directory of the embedded store.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directory of the media the built-in origin serves.
    #[serde(default = "default_media_dir")]
    pub media_dir: PathBuf,
    /// Which store backend.
    #[serde(default)]
    pub store: StoreSettings,
    /// Keys for hashing tokens and signing grants.
    #[serde(default)]
    pub secrets: SecretSettings,
    /// HTTP limits and behaviour.
    #[serde(default)]
    pub http: HttpSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Proxies (CIDR ranges or addresses) whose forwarding header names the client; empty: the socket
    /// peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies write: `x-forwarded-for` (default) or `forwarded` (RFC 7239).
    #[serde(default)]
    pub trusted_proxy_header: ForwardedHeader,
    /// The GeoIP database and how it is kept up to date.
    #[serde(default)]
    pub geoip: GeoIpSettings,
    /// Health probes of the CDN pool.
    #[serde(default)]
    pub cdn_probe: CdnProbeSettings,
    /// Webhook deliveries.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// TV sign-in codes.
    #[serde(default)]
    pub tv: TvSettings,
    /// The origin's in-memory copy of media files.
    #[serde(default)]
    pub media_cache: MediaCacheSettings,
    /// How many attempts of each kind are taken before 429 `rate_limited`.
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    /// Console logins: backoff and concurrent password checks.
    #[serde(default)]
    pub login: LoginSettings,
    /// Audit log retention.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Retention of tickets' personal data.
    #[serde(default)]
    pub privacy: PrivacySettings,
    /// Scheduled off-site backups.
    #[serde(default)]
    pub backup: BackupSettings,
    /// Who may read `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Resumable uploads of on-demand video and their packaging.
    #[serde(default)]
    pub uploads: UploadSettings,
    /// Live input from encoders (RTMP, SRT).
    #[serde(default)]
    pub ingest: IngestSettings,
}

/// Secrets; the token and grant keys are required, and every secret is at least 32 bytes long.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    /// Key of the keyed hash under which ticket tokens and API keys are stored. Changing it invalidates
    /// every stored token and key.
    pub token_key: Option<SecretString>,
    /// During a rotation of `token_key`: the key it replaces. Secrets stored under it (ticket tokens,
    /// API keys, stream keys, origin-pull secrets, console and player sessions, content keys wrapped
    /// under a key derived from it) are still found; everything new is stored under `token_key`.
    #[serde(default)]
    pub previous_token_key: Option<SecretString>,
    /// Key that signs media grants for the built-in origin.
    pub grant_key: Option<SecretString>,
    /// During a rotation of `grant_key`: the key it replaces. Grants signed with it are still accepted
    /// (none are signed with it), so players keep the media URLs they hold; drop it once
    /// `grant_ttl_s` of every show has passed.
    #[serde(default)]
    pub previous_grant_key: Option<SecretString>,
    /// Key under which content keys are stored wrapped (AES-256-GCM, the key derived with HKDF-SHA256).
    /// When absent, the wrapping key is derived from `token_key` (another HKDF label), so encrypted
    /// shows need no new secret; set it to keep content keys readable across a change of `token_key`.
    #[serde(default)]
    pub key_encryption_key: Option<SecretString>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_media_dir() -> PathBuf {
    PathBuf::from("media")
}

/// Configuration after validation, in the types the server uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Public base URL without a trailing slash, when configured (else derived from the bound address).
    pub public_url: Option<String>,
    /// Store directory.
    pub data_dir: PathBuf,
    /// Media directory.
    pub media_dir: PathBuf,
    /// Store backend.
    pub store: StoreSettings,
    /// Token/key hashing key.
    pub token_key: SecretString,
    /// The token key being rotated out, still accepted for lookups.
    pub previous_token_key: Option<SecretString>,
    /// Grant signing key.
    pub grant_key: SecretString,
    /// The grant key being rotated out, still accepted.
    pub previous_grant_key: Option<SecretString>,
    /// The key-encryption key of content keys, when set apart from `token_key`.
    pub key_encryption_key: Option<SecretString>,
    /// HTTP settings.
    pub http: HttpSettings,
    /// Log settings.
    pub log: LogSettings,
    /// Trusted proxy ranges.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header trusted proxies write.
    pub trusted_proxy_header: ForwardedHeader,
    /// GeoIP settings (checked).
    pub geoip: GeoIpSettings,
    /// CDN probe settings (checked).
    pub cdn_probe: CdnProbeSettings,
    /// Webhook delivery settings (checked).
    pub webhooks: WebhookSettings,
    /// TV sign-in code settings (checked).
    pub tv: TvSettings,
    /// Media cache settings (checked).
    pub media_cache: MediaCacheSettings,
    /// Rate limits (checked, defaults filled in).
    pub rate_limits: RateLimits,
    /// Login settings (checked).
    pub login: LoginSettings,
    /// Audit retention (checked).
    pub audit: AuditSettings,
    /// Retention of tickets' personal data (checked).
    pub privacy: PrivacySettings,
    /// Scheduled off-site backups (checked).
    pub backup: BackupSettings,
    /// `/metrics` access (checked; `listen` parses as an address).
    pub metrics: MetricsSettings,
    /// Uploads (checked; `dir` resolved against `data_dir`).
    pub uploads: UploadSettings,
    /// Live ingest (checked; listen addresses parse).
    pub ingest: IngestSettings,
}

impl Settings {
    /// Reads defaults, then `file` (when given; it must exist), then the `USHER_*` environment.
    ///
    /// # Errors
    /// [`ConfigError::Read`] for a missing file, bad TOML, unknown keys or wrong types.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(invalid(
                    "--config",
                    format!("{} is not a readable file", file.display()),
                ));
            }
            fig = fig.merge(Toml::file_exact(file));
        }
        fig = fig.merge(Env::prefixed("USHER_").split("__").filter(|k| {
            TOP_LEVEL_KEYS.iter().any(|top| {
                k.as_str()
                    .split('.')
                    .next()
                    .is_some_and(|first| first.eq_ignore_ascii_case(top))
            })
        }));
        fig.extract().map_err(|e| ConfigError::Read(Box::new(e)))
    }

    /// Checks every value and turns the settings into a [`Config`].
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080 or [::]:8080",
                    self.listen
                ),
            )
        })?;
        let public_url = match self.public_url {
            Some(u) => {
                let u = u.trim_end_matches('/').to_owned();
                let rest = u
                    .strip_prefix("https://")
                    .or_else(|| u.strip_prefix("http://"));
                match rest {
                    Some(host)
                        if !host.is_empty()
                            && !host.contains(char::is_whitespace)
                            && !host.contains('?')
                            && !host.contains('#') => {}
                    _ => {
                        return Err(invalid(
                            "public_url",
                            format!("`{u}` is not an http(s) URL"),
                        ));
                    }
                }
                Some(u)
            }
            None => None,
        };
        let secret =
            |key: &'static str, v: Option<SecretString>| -> Result<SecretString, ConfigError> {
                let v = v.ok_or_else(|| {
                    invalid(
                        key,
                        "is required (at least 32 random bytes; e.g. `openssl rand -hex 32`)",
                    )
                })?;
                if v.expose_secret().len() < MIN_SECRET_LEN {
                    return Err(invalid(
                        key,
                        format!("must be at least {MIN_SECRET_LEN} bytes long"),
                    ));
                }
                Ok(v)
            };
        let token_key = secret("secrets.token_key", self.secrets.token_key)?;
        let grant_key = secret("secrets.grant_key", self.secrets.grant_key)?;
        if token_key.expose_secret() == grant_key.expose_secret() {
            return Err(invalid(
                "secrets.grant_key",
                "must differ from secrets.token_key",
            ));
        }
        // the other key of a key set: accepted, never written with; never the current key itself
        let previous = |key: &'static str,
                        current: (&'static str, &SecretString),
                        v: Option<SecretString>|
         -> Result<Option<SecretString>, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            let v = secret(key, Some(v))?;
            if v.expose_secret() == current.1.expose_secret() {
                return Err(invalid(
                    key,
                    format!(
                        "is the current {0}: set the new key as {0} and the old one here",
                        current.0
                    ),
                ));
            }
            Ok(Some(v))
        };
        let previous_token_key = previous(
            "secrets.previous_token_key",
            ("secrets.token_key", &token_key),
            self.secrets.previous_token_key,
        )?;
        let previous_grant_key = previous(
            "secrets.previous_grant_key",
            ("secrets.grant_key", &grant_key),
            self.secrets.previous_grant_key,
        )?;
        let key_encryption_key = match self.secrets.key_encryption_key {
            Some(k) => {
                let k = secret("secrets.key_encryption_key", Some(k))?;
                if k.expose_secret() == token_key.expose_secret()
                    || k.expose_secret() == grant_key.expose_secret()
                {
                    return Err(invalid(
                        "secrets.key_encryption_key",
                        "must differ from secrets.token_key and secrets.grant_key",
                    ));
                }
                Some(k)
            }
            None => None,
        };
        if let StoreSettings::Redis(r) = &self.store {
            let url = r.url.expose_secret();
            if !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|p| url.starts_with(p))
            {
                return Err(invalid(
                    "store.url",
                    "must start with redis://, rediss:// or redis+unix://",
                ));
            }
            if r.key_prefix.is_empty()
                || r.key_prefix.len() > 64
                || r.key_prefix.contains(char::is_whitespace)
            {
                return Err(invalid(
                    "store.key_prefix",
                    "must be 1 to 64 characters without spaces",
                ));
            }
            if !(10..=60_000).contains(&r.connect_timeout_ms)
                || !(10..=60_000).contains(&r.response_timeout_ms)
            {
                return Err(invalid(
                    "store.response_timeout_ms",
                    "timeouts must be 10 to 60000 ms",
                ));
            }
            if r.wait_replicas > 0 && r.wait_timeout_ms >= r.response_timeout_ms {
                return Err(invalid(
                    "store.wait_timeout_ms",
                    "must be less than store.response_timeout_ms",
                ));
            }
            if let Some(sen) = &r.sentinel
                && (sen.master_name.is_empty()
                    || sen.addresses.is_empty()
                    || sen
                        .addresses
                        .iter()
                        .any(|a| a.parse::<SocketAddr>().is_err() && !a.contains(':')))
            {
                return Err(invalid(
                    "store.sentinel",
                    "needs master_name and addresses like [\"10.0.0.5:26379\"]",
                ));
            }
            if r.wait_replicas > 16 || r.wait_timeout_ms > 60_000 {
                return Err(invalid(
                    "store.wait_replicas",
                    "at most 16 replicas and 60000 ms",
                ));
            }
        }
        let h = &self.http;
        if !(1024..=64 * 1024 * 1024).contains(&h.max_body_bytes) {
            return Err(invalid(
                "http.max_body_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        if !(1..=600).contains(&h.request_timeout_s) {
            return Err(invalid("http.request_timeout_s", "must be 1 to 600"));
        }
        if h.drain_timeout_s > 3600 || h.shutdown_delay_s > 600 {
            return Err(invalid(
                "http.drain_timeout_s",
                "drain_timeout_s must be at most 3600 and shutdown_delay_s at most 600",
            ));
        }
        if h.grant_address_prefix_v4 > 32 {
            return Err(invalid(
                "http.grant_address_prefix_v4",
                "must be 0 (grants not bound to an address) to 32 (the exact address)",
            ));
        }
        if h.grant_address_prefix_v6 > 128 {
            return Err(invalid(
                "http.grant_address_prefix_v6",
                "must be 0 (grants not bound to an address) to 128 (the exact address)",
            ));
        }
        h.check_limits()?;
        for o in &h.cors_origins {
            let ok = (o.starts_with("http://") || o.starts_with("https://"))
                && !o.ends_with('/')
                && o.matches('/').count() == 2;
            if !ok {
                return Err(invalid(
                    "http.cors_origins",
                    format!("`{o}` is not an origin like https://tickets.example.com"),
                ));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a log filter such as `info`", self.log.level),
            ));
        }
        let trusted_proxies = geoip::trusted_proxies(&self.trusted_proxies)?;
        let rate_limits = self.rate_limits.check()?;
        self.geoip.check()?;
        self.webhooks.check()?;
        self.tv.check()?;
        let probe = &self.cdn_probe;
        if probe.interval_ms != 0 && !(200..=3_600_000).contains(&probe.interval_ms) {
            return Err(invalid(
                "cdn_probe.interval_ms",
                "must be 0 (off) or 200 to 3600000",
            ));
        }
        if !(100..=60_000).contains(&probe.timeout_ms) {
            return Err(invalid("cdn_probe.timeout_ms", "must be 100 to 60000"));
        }
        if !(1..=100).contains(&probe.fail_after) {
            return Err(invalid("cdn_probe.fail_after", "must be 1 to 100"));
        }
        if !(1..=100).contains(&probe.recover_after) {
            return Err(invalid("cdn_probe.recover_after", "must be 1 to 100"));
        }
        let cache = &self.media_cache;
        if cache.max_mb > 1 << 20 {
            return Err(invalid(
                "media_cache.max_mb",
                "must be at most 1048576 (1 TiB)",
            ));
        }
        if cache.max_file_mb > 4096 {
            return Err(invalid("media_cache.max_file_mb", "must be at most 4096"));
        }
        if cache.max_mb > 0 && cache.max_file_mb > cache.max_mb {
            return Err(invalid(
                "media_cache.max_file_mb",
                "must not be larger than media_cache.max_mb",
            ));
        }
        if !(100..=3_600_000).contains(&cache.revalidate_ms) {
            return Err(invalid(
                "media_cache.revalidate_ms",
                "must be 100 to 3600000",
            ));
        }
        if !(10..=60_000).contains(&cache.playlist_revalidate_ms) {
            return Err(invalid(
                "media_cache.playlist_revalidate_ms",
                "must be 10 to 60000",
            ));
        }
        self.login.check()?;
        self.audit.check()?;
        self.privacy.check()?;
        self.backup.check()?;
        self.metrics.check()?;
        self.uploads.check()?;
        let mut uploads = self.uploads;
        if uploads.dir.is_none() {
            uploads.dir = Some(self.data_dir.join("uploads"));
        }
        self.ingest.check()?;
        Ok(Config {
            listen,
            public_url,
            data_dir: self.data_dir,
            media_dir: self.media_dir,
            store: self.store,
            token_key,
            previous_token_key,
            grant_key,
            previous_grant_key,
            key_encryption_key,
            http: self.http,
            log: self.log,
            trusted_proxies,
            trusted_proxy_header: self.trusted_proxy_header,
            geoip: self.geoip,
            cdn_probe: self.cdn_probe,
            webhooks: self.webhooks,
            tv: self.tv,
            media_cache: self.media_cache,
            rate_limits,
            login: self.login,
            audit: self.audit,
            privacy: self.privacy,
            backup: self.backup,
            metrics: self.metrics,
            uploads,
            ingest: self.ingest,
        })
    }
}

impl Config {
    /// The uploads folder (`uploads.dir`, else `<data_dir>/uploads`).
    pub fn uploads_dir(&self) -> PathBuf {
        self.uploads
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("uploads"))
    }

    /// The separate address of `/metrics`, when `metrics.listen` names one.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics.listen.as_deref().and_then(|l| l.parse().ok())
    }

    /// Whether cookies get the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        self.http.secure_cookies.unwrap_or_else(|| {
            self.public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        })
    }
}
