//! The GeoIP database's status.

use serde::Serialize;
use usher_geo::db::DbInfo;
use usher_geo::live::{ReloadEvent, Reloaded};
use utoipa::ToSchema;

use crate::service::admin::geoip::{self, GeoIpChange, Sha256Check};

/// The GeoIP database serving, its history and the update settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeoIpStatus {
    /// Whether a database serves lookups.
    pub loaded: bool,
    /// The database serving.
    #[schema(required = true)]
    pub database: Option<DbInfo>,
    /// The last reload attempt, whatever its outcome.
    #[schema(required = true)]
    pub last_reload: Option<ReloadEvent>,
    /// The last failed or refused attempt.
    #[schema(required = true)]
    pub last_error: Option<ReloadEvent>,
    /// The update settings.
    pub config: GeoIpConfig,
    /// What the upload or reload did (its answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Reloaded>,
}

/// How the GeoIP database is kept up to date (`geoip.*` settings).
#[derive(Debug, Serialize, ToSchema)]
pub struct GeoIpConfig {
    /// `geoip.path`.
    #[schema(required = true)]
    pub path: Option<String>,
    /// Seconds between checks of the file.
    #[schema(required = true)]
    pub reload_interval_s: Option<u64>,
    /// The download URL without its query.
    #[schema(required = true)]
    pub download_url: Option<String>,
    /// Seconds between downloads.
    #[schema(required = true)]
    pub download_interval_s: Option<u64>,
    /// `pinned`, `published` or `none`.
    #[schema(value_type = Option<String>, required = true, pattern = "^(pinned|published|none)$")]
    pub download_sha256_check: Option<&'static str>,
}

impl From<&geoip::GeoIpStatus> for GeoIpStatus {
    fn from(g: &geoip::GeoIpStatus) -> Self {
        let c = &g.config;
        Self {
            loaded: g.status.loaded,
            database: g.status.database.clone(),
            last_reload: g.status.last_reload.clone(),
            last_error: g.status.last_error.clone(),
            config: GeoIpConfig {
                path: c.path.clone(),
                reload_interval_s: c.reload_interval_s,
                download_url: c.download_url.clone(),
                download_interval_s: c.download_interval_s,
                download_sha256_check: c.download_sha256_check.map(|s| match s {
                    Sha256Check::Pinned => "pinned",
                    Sha256Check::Published => "published",
                    Sha256Check::None => "none",
                }),
            },
            outcome: None,
        }
    }
}

impl From<&GeoIpChange> for GeoIpStatus {
    fn from(c: &GeoIpChange) -> Self {
        Self {
            outcome: Some(c.outcome),
            ..Self::from(&c.status)
        }
    }
}
