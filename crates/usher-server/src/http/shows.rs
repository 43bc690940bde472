//! The shows API: create or replace, read, list, delete, publish, poster; each handler calls one action of
//! [`crate::service::admin::shows`], which the console calls too.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use usher_core::ids::ShowId;
use usher_core::show::{Show, ShowSpec};
use usher_core::store::PutOutcome;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath, body_error};
use crate::http::views::shows::ShowList;
use crate::service::Result;
use crate::service::admin::shows;
use crate::state::AppState;

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
        (status = 409, description = "`stream_path_nested`: `stream_path` lies inside another show's stream folder or holds one (`demo` and `demo/180p`; the detail names the other show), so one show's grants would open the other's media. Equal folders are allowed."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn put_show(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<ShowSpec>,
) -> Result<(StatusCode, Json<Show>)> {
    let (outcome, show) = shows::write_show(&state, &caller, &id, spec).await?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(show)))
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
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Show>> {
    Ok(Json(shows::find_show(&state, &caller, &id).await?))
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
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<ShowList>> {
    Ok(Json(ShowList {
        shows: shows::list_shows(&state, &caller).await?,
    }))
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
    shows::remove_show(&state, &caller, &id).await?;
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
) -> Result<Json<Show>> {
    Ok(Json(
        shows::publish_show(&state, &caller, &id, body.published).await?,
    ))
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
) -> Result<Json<Show>> {
    let body = body.map_err(body_error)?;
    Ok(Json(
        shows::set_poster(&state, &caller, &id, body.to_vec()).await?,
    ))
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
    let poster = shows::poster(&state, &id).await?;
    let etag = format!("\"{}\"", poster.tag);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut res = poster.bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&poster.content_type)
            .unwrap_or(HeaderValue::from_static("image/png")),
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
