//! The GeoIP database API (scope `admin`): status, upload, reload; each handler calls one action of
//! [`crate::service::admin::geoip`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde::Deserialize;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiQuery, body_error};
use crate::http::views::geoip::GeoIpStatus;
use crate::service::Result;
use crate::service::admin::geoip::{self, ReloadSource};
use crate::state::AppState;

/// `GET /api/v1/geoip`: the database serving (type, build date, networks, source, load time), the last
/// reload and the last error, and the update configuration.
#[utoipa::path(
    get,
    path = "/api/v1/geoip",
    tag = "geoip",
    responses((status = 200, description = "The GeoIP status.", body = GeoIpStatus)),
    security(("bearer" = ["admin"])),
)]
pub async fn geoip_status(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<GeoIpStatus>> {
    let status = geoip::status(&state, &caller)?;
    Ok(Json(GeoIpStatus::from(&status)))
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
) -> Result<Json<GeoIpStatus>> {
    let body = body.map_err(body_error)?;
    let change = geoip::upload(&state, &caller, body.to_vec()).await?;
    Ok(Json(GeoIpStatus::from(&change)))
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
) -> Result<Json<GeoIpStatus>> {
    let source = ReloadSource::parse(q.source.as_deref().unwrap_or("file"))?;
    let change = geoip::reload(&state, &caller, source).await?;
    Ok(Json(GeoIpStatus::from(&change)))
}
