//! A show's live ingest: its status and ingest URLs, and its stream key (made or rotated, shown once);
//! each handler calls one action of [`crate::service::admin::ingest`], which the console calls too.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use usher_core::ids::ShowId;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::ApiPath;
use crate::http::views::ingest::IngestView;
use crate::service::Result;
use crate::service::admin::ingest;
use crate::state::AppState;

/// `GET /api/v1/shows/{id}/ingest`.
#[utoipa::path(
    get,
    path = "/api/v1/shows/{show_id}/ingest",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    responses(
        (status = 200, description = "The show's ingest status and URLs (never its stream key).", body = IngestView),
        (status = 404, description = "`show_unknown`: no such show."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn read_ingest(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IngestView>> {
    let i = ingest::ingest_status(&state, &caller, &id).await?;
    Ok(Json(IngestView::from(&i)))
}

/// `POST /api/v1/shows/{id}/stream-key`: a new stream key, shown this once; the old one stops working.
#[utoipa::path(
    post,
    path = "/api/v1/shows/{show_id}/stream-key",
    tag = "shows",
    params(("show_id" = ShowId, Path, description = "The show's id.")),
    responses(
        (status = 200, description = "The ingest with `stream_key`, shown this once (only its keyed hash is kept). An encoder publishing with the old key goes on until it stops; it cannot publish again.", body = IngestView),
        (status = 404, description = "`show_unknown`: no such show."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn rotate_stream_key(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    let (key, i) = ingest::rotate_stream_key(&state, &caller, &id).await?;
    let mut view = IngestView::from(&i);
    view.stream_key = Some(key.expose().to_owned());
    // the one answer that carries the key: no cache keeps it
    let mut res = Json(view).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
