//! The GeoIP database: its status, an upload, a reload from the file or the download URL. A database that
//! is refused leaves the one serving in place.

use usher_core::admin::Permission;
use usher_geo::db::LoadError;
use usher_geo::live::{GeoStatus, Reloaded};
use usher_geo::update::redact_url;

use crate::service::audit;
use crate::service::{Caller, Error, Result};
use crate::state::AppState;

/// How a download is checked (`geoip.download_sha256` / `geoip.download_sha256_url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha256Check {
    /// Against a pinned SHA-256.
    Pinned,
    /// Against the SHA-256 a URL publishes.
    Published,
    /// Not at all.
    None,
}

/// How the database is kept up to date (`geoip.*` settings), without secrets.
#[derive(Debug, Clone)]
pub struct UpdateConfig {
    /// `geoip.path`.
    pub path: Option<String>,
    /// Seconds between checks of the file.
    pub reload_interval_s: Option<u64>,
    /// The download URL without its query (which may hold a licence key).
    pub download_url: Option<String>,
    /// Seconds between downloads.
    pub download_interval_s: Option<u64>,
    /// How a download is checked, when one is configured.
    pub download_sha256_check: Option<Sha256Check>,
}

/// The database serving, its history and the update settings.
#[derive(Debug, Clone)]
pub struct GeoIpStatus {
    /// What serves, and the last reloads.
    pub status: GeoStatus,
    /// The update settings.
    pub config: UpdateConfig,
}

/// The status after an upload or reload that put a database in service.
#[derive(Debug, Clone)]
pub struct GeoIpChange {
    /// The status now.
    pub status: GeoIpStatus,
    /// What the upload or reload did.
    pub outcome: Reloaded,
}

fn current(state: &AppState) -> GeoIpStatus {
    let s = state.geo_updates.settings();
    GeoIpStatus {
        status: state.geoip.status(),
        config: UpdateConfig {
            path: s.path.as_ref().map(|p| p.display().to_string()),
            reload_interval_s: s.poll_interval.map(|d| d.as_secs()),
            download_url: s.download.as_ref().map(|d| redact_url(&d.url)),
            download_interval_s: s.download.as_ref().map(|d| d.interval.as_secs()),
            download_sha256_check: s.download.as_ref().map(|d| {
                if d.sha256.is_some() {
                    Sha256Check::Pinned
                } else if d.sha256_url.is_some() {
                    Sha256Check::Published
                } else {
                    Sha256Check::None
                }
            }),
        },
    }
}

/// The database serving (type, build date, networks, source, load time), the last reload and the last
/// error, and the update settings.
///
/// # Errors
/// `forbidden`.
pub fn status(state: &AppState, caller: &Caller) -> Result<GeoIpStatus> {
    caller.require(Permission::Read)?;
    Ok(current(state))
}

fn changed(state: &AppState, outcome: Result<Reloaded, LoadError>) -> Result<GeoIpChange> {
    match outcome {
        Ok(outcome) => Ok(GeoIpChange {
            status: current(state),
            outcome,
        }),
        Err(LoadError::Invalid(m)) => Err(Error::GeoIpRefused(m)),
        Err(e @ LoadError::Unconfigured(_)) => Err(Error::InvalidRequest(e.to_string())),
        // a file that cannot be read, or a download that failed: the detail names a path or a host of
        // our own configuration, which an admin may see
        Err(LoadError::Io(m)) => Err(Error::GeoIpRefused(m)),
    }
}

/// Puts an uploaded database in service (the one serving stays when it is refused).
///
/// # Errors
/// `invalid_request` for an empty body, `geoip_refused`; `forbidden`.
pub async fn upload(state: &AppState, caller: &Caller, body: Vec<u8>) -> Result<GeoIpChange> {
    caller.require(Permission::Manage)?;
    if body.is_empty() {
        return Err(Error::InvalidRequest(
            "the body must be a MaxMind DB (.mmdb) file".into(),
        ));
    }
    let size = body.len();
    let outcome = state.geo_updates.upload(body).await;
    let detail = match &outcome {
        Ok(r) => format!(
            "bytes={size} outcome={}",
            serde_json::to_string(r).unwrap_or_default()
        ),
        Err(_) => format!("bytes={size} refused"),
    };
    audit::record(state, caller, "geoip.upload", "geoip", &detail).await;
    changed(state, outcome)
}

/// Where a reload reads the database from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadSource {
    /// `geoip.path`, read again.
    File,
    /// `geoip.download_url`, downloaded now.
    Download,
}

impl ReloadSource {
    /// Reads `file` or `download`.
    ///
    /// # Errors
    /// `invalid_request` for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "file" => Ok(Self::File),
            "download" => Ok(Self::Download),
            other => Err(Error::InvalidRequest(format!(
                "source: `{other}` is neither `file` nor `download`"
            ))),
        }
    }

    /// `file` or `download`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Download => "download",
        }
    }
}

/// Reloads the database now, from the file or the download URL.
///
/// # Errors
/// `invalid_request` when the setting the source needs is not configured, `geoip_refused`; `forbidden`.
pub async fn reload(
    state: &AppState,
    caller: &Caller,
    source: ReloadSource,
) -> Result<GeoIpChange> {
    caller.require(Permission::Manage)?;
    let outcome = match source {
        ReloadSource::File => state.geo_updates.reload_file().await,
        ReloadSource::Download => state.geo_updates.download().await,
    };
    audit::record(
        state,
        caller,
        "geoip.reload",
        "geoip",
        &format!("source={} ok={}", source.as_str(), outcome.is_ok()),
    )
    .await;
    changed(state, outcome)
}
