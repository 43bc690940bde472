//! The shows API: create or replace, read, list, delete, publish, poster. Each change is one action
//! function taking the [`Caller`], shared by the JSON API and the console.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;
use usher_core::admin::Permission;
use usher_core::ids::ShowId;
use usher_core::show::{Show, ShowSpec};
use usher_core::store::{DeleteShowOutcome, PutOutcome};

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath, body_error};
use crate::openapi::schemas::ShowList;
use crate::service::audit;
use crate::service::auth::Caller;
use crate::service::{Error, Result};
use crate::state::AppState;

/// Largest poster image accepted.
pub const MAX_POSTER_BYTES: usize = 2 * 1024 * 1024;

fn lookup_id(id: &str) -> Result<ShowId> {
    ShowId::parse(id).map_err(|_| Error::NotFound("show_unknown"))
}

/// Finds a show.
///
/// # Errors
/// `show_unknown`.
pub async fn find_show(state: &AppState, id: &str) -> Result<Show> {
    state
        .store
        .show(&lookup_id(id)?)
        .await?
        .ok_or(Error::NotFound("show_unknown"))
}

/// Creates or replaces a show (keeping its poster).
///
/// # Errors
/// `invalid_request` for a bad id or spec; `forbidden`.
pub async fn write_show(
    state: &AppState,
    caller: &Caller,
    id: &str,
    spec: ShowSpec,
) -> Result<(PutOutcome, Show)> {
    caller.require(Permission::Manage)?;
    let id = ShowId::parse(id).map_err(|e| Error::InvalidRequest(format!("show id: {e}")))?;
    let existing = state.store.show(&id).await?;
    let mut show = spec
        .into_show(
            id,
            state.store.now(),
            existing.as_ref().map(|s| s.created_at),
        )
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    show.poster = existing.and_then(|s| s.poster);
    if !show.cdns.is_empty() {
        let pool = crate::service::delivery::pool(state).await?;
        if let Some(unknown) = show
            .cdns
            .iter()
            .find(|id| !pool.iter().any(|c| &c.id == *id))
        {
            return Err(Error::InvalidRequest(format!(
                "cdns: no CDN `{unknown}` in the pool"
            )));
        }
    }
    let outcome = state.store.put_show(show.clone()).await?;
    tracing::info!(show.id = %show.id, ?outcome, "show written");
    audit::record(
        state,
        caller,
        "show.put",
        &format!("show:{}", show.id),
        &format!("published={}", show.published),
    )
    .await;
    Ok((outcome, show))
}

/// Publishes or unpublishes a show.
///
/// # Errors
/// `show_unknown`; `forbidden`.
pub async fn publish_show(
    state: &AppState,
    caller: &Caller,
    id: &str,
    published: bool,
) -> Result<Show> {
    caller.require(Permission::Manage)?;
    let mut show = find_show(state, id).await?;
    show.published = published;
    show.updated_at = state.store.now().to_datetime();
    state.store.put_show(show.clone()).await?;
    audit::record(
        state,
        caller,
        if published {
            "show.publish"
        } else {
            "show.unpublish"
        },
        &format!("show:{}", show.id),
        "",
    )
    .await;
    Ok(show)
}

/// Deletes a show without tickets.
///
/// # Errors
/// `show_unknown`, `show_has_tickets`; `forbidden`.
pub async fn remove_show(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let id = lookup_id(id)?;
    match state.store.delete_show(&id).await? {
        DeleteShowOutcome::Deleted => {
            state.store.put_poster(&id, None).await?;
            audit::record(state, caller, "show.delete", &format!("show:{id}"), "").await;
            Ok(())
        }
        DeleteShowOutcome::Missing => Err(Error::NotFound("show_unknown")),
        DeleteShowOutcome::HasTickets(n) => Err(Error::ShowHasTickets(n)),
    }
}

/// Sets a show's poster image (PNG, JPEG, WebP or GIF, recognised by its first bytes).
///
/// # Errors
/// `show_unknown`; `invalid_request` for anything but an image; `payload_too_large`; `forbidden`.
pub async fn set_poster(
    state: &AppState,
    caller: &Caller,
    id: &str,
    bytes: Vec<u8>,
) -> Result<Show> {
    caller.require(Permission::Manage)?;
    let mut show = find_show(state, id).await?;
    if bytes.len() > MAX_POSTER_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    let ctype = image_type(&bytes).ok_or_else(|| {
        Error::InvalidRequest("the body must be a PNG, JPEG, WebP or GIF image".into())
    })?;
    let tag = hex_tag(&bytes);
    state
        .store
        .put_poster(&show.id, Some((ctype.to_owned(), bytes)))
        .await?;
    show.poster = Some(tag);
    show.updated_at = state.store.now().to_datetime();
    state.store.put_show(show.clone()).await?;
    audit::record(
        state,
        caller,
        "show.poster",
        &format!("show:{}", show.id),
        ctype,
    )
    .await;
    Ok(show)
}

fn hex_tag(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The image type of `bytes` by its signature, `None` for anything else.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// `PUT /api/v1/shows/{id}`: 201 when created, 200 when replaced.
#[utoipa::path(
    put,
    path = "/api/v1/shows/{show_id}",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    request_body = ShowSpec,
    responses(
        (status = 201, description = "Created.", body = Show),
        (status = 200, description = "Replaced.", body = Show),
        (status = 400, description = "`invalid_request`: the id or a field is not valid (the detail names it)."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn put_show(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<ShowSpec>,
) -> Result<(StatusCode, Json<Value>)> {
    let (outcome, show) = write_show(&state, &caller, &id, spec).await?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(show))))
}

/// `GET /api/v1/shows/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/shows/{show_id}",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    responses(
        (status = 200, description = "The show.", body = Show),
        (status = 404, description = "`show_unknown`: no such show."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn read_show(
    State(state): State<AppState>,
    _caller: Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>> {
    Ok(Json(json!(find_show(&state, &id).await?)))
}

/// `GET /api/v1/shows`.
#[utoipa::path(
    get,
    path = "/api/v1/shows",
    tag = "shows",
    responses((status = 200, description = "Every show, by id.", body = ShowList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_shows(
    State(state): State<AppState>,
    _caller: Authorized<Read>,
) -> Result<Json<Value>> {
    Ok(Json(json!({"shows": state.store.shows().await?})))
}

/// `DELETE /api/v1/shows/{id}`: 204; 409 while tickets admit to it.
#[utoipa::path(
    delete,
    path = "/api/v1/shows/{show_id}",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`show_unknown`: no such show."),
        (status = 409, description = "`show_has_tickets`: tickets still admit to it."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_show(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    remove_show(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /api/v1/shows/{id}/published`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// `false` takes the show off; `true` puts it back.
    published: bool,
}

/// `PUT /api/v1/shows/{id}/published`: `{"published": true|false}`.
#[utoipa::path(
    put,
    path = "/api/v1/shows/{show_id}/published",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    request_body = PublishBody,
    responses(
        (status = 200, description = "The show.", body = Show),
        (status = 404, description = "`show_unknown`: no such show."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn put_published(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<Value>> {
    Ok(Json(json!(
        publish_show(&state, &caller, &id, body.published).await?
    )))
}

/// `PUT /api/v1/shows/{id}/poster`: the image as the raw body.
#[utoipa::path(
    put,
    path = "/api/v1/shows/{show_id}/poster",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    request_body(content = Vec<u8>, content_type = "image/png", description = "A PNG, JPEG, WebP or GIF image of up to 2 MB."),
    responses(
        (status = 200, description = "The show, its `poster` the new version tag.", body = Show),
        (status = 400, description = "`invalid_request`: the body is not such an image."),
        (status = 404, description = "`show_unknown`: no such show."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn put_poster(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let body = body.map_err(body_error)?;
    Ok(Json(json!(
        set_poster(&state, &caller, &id, body.to_vec()).await?
    )))
}

/// `GET /api/v1/shows/{id}/poster`: the image (public, like the watch page that shows it).
#[utoipa::path(
    get,
    path = "/api/v1/shows/{show_id}/poster",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    responses(
        (status = 200, description = "The image.", content_type = "image/png", body = Vec<u8>),
        (status = 304, description = "Not modified (`If-None-Match`)."),
        (status = 404, description = "`poster_unknown`, `show_unknown`: no poster."),
    ),
)]
pub async fn read_poster(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = lookup_id(&id)?;
    let (ctype, bytes) = state
        .store
        .poster(&id)
        .await?
        .ok_or(Error::NotFound("poster_unknown"))?;
    let etag = format!("\"{}\"", hex_tag(&bytes));
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ctype).unwrap_or(HeaderValue::from_static("image/png")),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(res)
}
