//! The shows API (scope `admin`): create or replace, read, list, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use usher_core::ids::ShowId;
use usher_core::show::{Show, ShowSpec};
use usher_core::store::{DeleteShowOutcome, PutOutcome};

use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminKey, ApiJson, ApiPath};
use crate::openapi::schemas::ShowList;
use crate::state::AppState;

fn lookup_id(id: &str) -> ApiResult<ShowId> {
    ShowId::parse(id).map_err(|_| ApiError::NotFound("show_unknown"))
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
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<ShowSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = ShowId::parse(&id).map_err(|e| ApiError::InvalidRequest(format!("show id: {e}")))?;
    let existing = state.store.show(&id).await?;
    let show = spec
        .into_show(id, state.store.now(), existing.map(|s| s.created_at))
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    if !show.cdns.is_empty() {
        let pool = crate::delivery::pool(&state).await?;
        if let Some(unknown) = show
            .cdns
            .iter()
            .find(|id| !pool.iter().any(|c| &c.id == *id))
        {
            return Err(ApiError::InvalidRequest(format!(
                "cdns: no CDN `{unknown}` in the pool"
            )));
        }
    }
    let outcome = state.store.put_show(show.clone()).await?;
    tracing::info!(show.id = %show.id, ?outcome, "show written");
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
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let show = state
        .store
        .show(&lookup_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("show_unknown"))?;
    Ok(Json(json!(show)))
}

/// `GET /api/v1/shows`.
#[utoipa::path(
    get,
    path = "/api/v1/shows",
    tag = "shows",
    responses((status = 200, description = "Every show, by id.", body = ShowList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_shows(State(state): State<AppState>, _key: AdminKey) -> ApiResult<Json<Value>> {
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
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    match state.store.delete_show(&lookup_id(&id)?).await? {
        DeleteShowOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteShowOutcome::Missing => Err(ApiError::NotFound("show_unknown")),
        DeleteShowOutcome::HasTickets(n) => Err(ApiError::ShowHasTickets(n)),
    }
}
