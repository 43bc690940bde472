//! The GeoIP database API (scope `admin`): status, upload, reload.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde::Deserialize;
use serde_json::{Value, json};
use usher_geo::db::LoadError;
use usher_geo::live::Reloaded;
use usher_geo::update::redact_url;

use usher_core::admin::Permission;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiQuery, body_error};
use crate::openapi::schemas::GeoIpStatus;
use crate::service::audit;
use crate::service::auth::Caller;
use crate::service::{Error, Result};
use crate::state::AppState;

/// The GeoIP status as the API shows it.
pub fn status_view(state: &AppState) -> Value {
    let mut v = json!(state.geoip.status());
    let s = state.geo_updates.settings();
    v["config"] = json!({
        "path": s.path.as_ref().map(|p| p.display().to_string()),
        "reload_interval_s": s.poll_interval.map(|d| d.as_secs()),
        "download_url": s.download.as_ref().map(|d| redact_url(&d.url)),
        "download_interval_s": s.download.as_ref().map(|d| d.interval.as_secs()),
        "download_sha256_check": s.download.as_ref().map(|d| {
            if d.sha256.is_some() { "pinned" } else if d.sha256_url.is_some() { "published" } else { "none" }
        }),
    });
    v
}

fn answer(state: &AppState, outcome: Result<Reloaded, LoadError>) -> Result<Json<Value>> {
    match outcome {
        Ok(r) => {
            let mut v = status_view(state);
            v["outcome"] = json!(r);
            Ok(Json(v))
        }
        Err(LoadError::Invalid(m)) => Err(Error::GeoIpRefused(m)),
        Err(e @ LoadError::Unconfigured(_)) => Err(Error::InvalidRequest(e.to_string())),
        // a file that cannot be read, or a download that failed: the detail names a path or a host of
        // our own configuration, which an admin may see
        Err(LoadError::Io(m)) => Err(Error::GeoIpRefused(m)),
    }
}

/// `GET /api/v1/geoip`: the database serving (type, build date, networks, source, load time), the last
/// reload and the last error, and the update configuration.
#[utoipa::path(
    get,
    path = "/api/v1/geoip",
    tag = "geoip",
    responses((status = 200, description = "The GeoIP status.", body = GeoIpStatus)),
    security(("bearer" = ["admin"])),
)]
pub async fn geoip_status(State(state): State<AppState>, _caller: Authorized<Read>) -> Json<Value> {
    Json(status_view(&state))
}

/// `PUT /api/v1/geoip`: a MaxMind DB file as the raw body (any content type). 200 with the status when it
/// serves (`outcome`: `swapped`, or `unchanged` for the database already serving); 422 `geoip_refused`
/// when it is not a usable country database, and the database serving stays.
#[utoipa::path(
    put,
    path = "/api/v1/geoip",
    tag = "geoip",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A MaxMind DB (`.mmdb`) file, at most `geoip.max_bytes`."),
    responses(
        (status = 200, description = "The database serves (`outcome`: `swapped`, or `unchanged` when it was serving already): the status.", body = GeoIpStatus),
        (status = 413, description = "`payload_too_large`: larger than `geoip.max_bytes`."),
        (status = 400, description = "`invalid_request`: the body is empty or cannot be read, or `geoip.path` is not configured."),
        (status = 422, description = "`geoip_refused`: not a usable country database, or it could not be had; the one serving stays."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn upload_geoip(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let body = body.map_err(body_error)?;
    upload(&state, &caller, body.to_vec()).await
}

/// Puts an uploaded database in service (the one serving stays when it is refused).
///
/// # Errors
/// `invalid_request` for an empty body, `geoip_refused`; `forbidden`.
pub async fn upload(state: &AppState, caller: &Caller, body: Vec<u8>) -> Result<Json<Value>> {
    caller.require(Permission::Manage)?;
    if body.is_empty() {
        return Err(Error::InvalidRequest(
            "the body must be a MaxMind DB (.mmdb) file".into(),
        ));
    }
    let size = body.len();
    let outcome = state.geo_updates.upload(body).await;
    let detail = match &outcome {
        Ok(r) => format!("bytes={size} outcome={}", json!(r)),
        Err(_) => format!("bytes={size} refused"),
    };
    audit::record(state, caller, "geoip.upload", "geoip", &detail).await;
    answer(state, outcome)
}

/// Query of `POST /api/v1/geoip/reload`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReloadQuery {
    /// `file` (default): read `geoip.path` again; `download`: download from `geoip.download_url` now.
    #[serde(default)]
    #[param(pattern = "^(file|download)$")]
    source: Option<String>,
}

/// `POST /api/v1/geoip/reload[?source=file|download]`: reload now.
#[utoipa::path(
    post,
    path = "/api/v1/geoip/reload",
    tag = "geoip",
    params(ReloadQuery),
    responses(
        (status = 200, description = "The database serves (`outcome`: `swapped`, or `unchanged` when it was serving already): the status.", body = GeoIpStatus),
        (status = 400, description = "`invalid_request`: `source` is neither `file` nor `download`, or the setting it needs (`geoip.path`, `geoip.download_url`) is not configured."),
        (status = 422, description = "`geoip_refused`: not a usable country database, or it could not be had; the one serving stays."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn reload_geoip(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiQuery(q): ApiQuery<ReloadQuery>,
) -> Result<Json<Value>> {
    let source = q.source.clone().unwrap_or_else(|| "file".into());
    let outcome = match q.source.as_deref().unwrap_or("file") {
        "file" => state.geo_updates.reload_file().await,
        "download" => state.geo_updates.download().await,
        other => {
            return Err(Error::InvalidRequest(format!(
                "source: `{other}` is neither `file` nor `download`"
            )));
        }
    };
    audit::record(
        &state,
        &caller,
        "geoip.reload",
        "geoip",
        &format!("source={source} ok={}", outcome.is_ok()),
    )
    .await;
    answer(&state, outcome)
}
