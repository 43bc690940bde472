//! The `[geoip]` section and `trusted_proxies`: where the GeoIP database comes from, and whose forwarding
//! headers are believed.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use usher_geo::update::{DownloadSettings, UpdateSettings};

use super::error::{ConfigError, invalid};

/// `[geoip]`: the database file, the file watch and the download schedule. All optional: without a
/// database, shows without Geo rules play as before and shows with them keep `/readyz` at 503.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoIpSettings {
    /// The MaxMind DB file (GeoLite2/GeoIP2 Country or City, DB-IP): loaded at start, watched for changes,
    /// and where uploaded and downloaded databases are kept.
    pub path: Option<PathBuf>,
    /// Seconds between checks of the file for a change (0: never).
    pub reload_interval_s: u64,
    /// URL of a raw `.mmdb` file to download on a schedule (may hold a licence key; never logged).
    pub download_url: Option<SecretString>,
    /// The SHA-256 (hex) the download must have.
    pub download_sha256: Option<String>,
    /// A URL whose answer starts with the download's SHA-256 in hex (`sha256sum` format).
    pub download_sha256_url: Option<SecretString>,
    /// Seconds between downloads.
    pub download_interval_s: u64,
    /// Longest a download may take, in seconds.
    pub download_timeout_s: u64,
    /// Largest database accepted from an upload or a download, in bytes.
    pub max_bytes: u64,
}

impl Default for GeoIpSettings {
    fn default() -> Self {
        Self {
            path: None,
            reload_interval_s: 60,
            download_url: None,
            download_sha256: None,
            download_sha256_url: None,
            download_interval_s: 86_400,
            download_timeout_s: 300,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

fn is_http_url(u: &str) -> bool {
    u.strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

/// Parses `trusted_proxies`: CIDR ranges (`10.0.0.0/8`) or single addresses.
pub(super) fn trusted_proxies(list: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    networks("trusted_proxies", list)
}

/// Parses a list of CIDR ranges or single addresses (the setting `key`).
pub(super) fn networks(key: &'static str, list: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<std::net::IpAddr>()
                .map(IpNet::from)
                .or_else(|_| s.parse::<IpNet>().map(|n| n.trunc()))
                .map_err(|_| {
                    invalid(
                        key,
                        format!("`{s}` is not a CIDR range such as 10.0.0.0/8 or an address"),
                    )
                })
        })
        .collect()
}

impl GeoIpSettings {
    /// Checks the values.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.reload_interval_s > 86_400 {
            return Err(invalid(
                "geoip.reload_interval_s",
                "must be 0 (no watch) to 86400",
            ));
        }
        if let Some(u) = &self.download_url
            && !is_http_url(u.expose_secret())
        {
            return Err(invalid("geoip.download_url", "must be an http(s) URL"));
        }
        if let Some(h) = &self.download_sha256
            && !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(
                "geoip.download_sha256",
                "must be 64 hex digits (a SHA-256)",
            ));
        }
        if let Some(u) = &self.download_sha256_url
            && !is_http_url(u.expose_secret())
        {
            return Err(invalid(
                "geoip.download_sha256_url",
                "must be an http(s) URL",
            ));
        }
        if self.download_url.is_none()
            && (self.download_sha256.is_some() || self.download_sha256_url.is_some())
        {
            return Err(invalid(
                "geoip.download_url",
                "is required when geoip.download_sha256 or geoip.download_sha256_url is set",
            ));
        }
        if self.download_sha256.is_some() && self.download_sha256_url.is_some() {
            return Err(invalid(
                "geoip.download_sha256",
                "set either geoip.download_sha256 or geoip.download_sha256_url, not both",
            ));
        }
        if !(60..=30 * 86_400).contains(&self.download_interval_s) {
            return Err(invalid(
                "geoip.download_interval_s",
                "must be 60 to 2592000",
            ));
        }
        if !(1..=3600).contains(&self.download_timeout_s) {
            return Err(invalid("geoip.download_timeout_s", "must be 1 to 3600"));
        }
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.max_bytes) {
            return Err(invalid(
                "geoip.max_bytes",
                "must be 1048576 (1 MiB) to 1073741824 (1 GiB)",
            ));
        }
        Ok(())
    }

    /// The updater's settings.
    pub fn update_settings(&self) -> UpdateSettings {
        UpdateSettings {
            path: self.path.clone(),
            poll_interval: (self.reload_interval_s > 0)
                .then(|| Duration::from_secs(self.reload_interval_s)),
            download: self.download_url.as_ref().map(|u| DownloadSettings {
                url: u.expose_secret().to_owned(),
                sha256: self.download_sha256.clone(),
                sha256_url: self
                    .download_sha256_url
                    .as_ref()
                    .map(|u| u.expose_secret().to_owned()),
                interval: Duration::from_secs(self.download_interval_s),
                retry: Duration::from_secs(300),
                timeout: Duration::from_secs(self.download_timeout_s),
            }),
            max_bytes: self.max_bytes,
        }
    }
}
