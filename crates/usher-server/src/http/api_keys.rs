//! API keys (scope `admin`): list, create (the key is shown once), delete; each handler calls one action
//! of [`crate::service::admin::api_keys`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use usher_core::ids::ApiKeyId;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::views::api_keys::{ApiKeyList, ApiKeyView};
use crate::service::Result;
use crate::service::admin::api_keys::{self, NewKey};
use crate::state::AppState;

/// `GET /api/v1/api-keys`.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    responses((status = 200, description = "Every key, without secrets.", body = ApiKeyList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<ApiKeyList>> {
    let keys = api_keys::list_keys(&state, &caller).await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.iter().map(ApiKeyView::from).collect(),
    }))
}

/// `POST /api/v1/api-keys`: 201 with the key in clear, this once.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    request_body = NewKey,
    responses(
        (status = 201, description = "Created: `key` holds the key, shown this once.", body = ApiKeyView),
        (status = 400, description = "`invalid_request`: `name` or `scopes` is not valid."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<ApiKeyView>)> {
    let (key, secret) = api_keys::create_key(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(ApiKeyView::created(&key, secret))))
}

/// `DELETE /api/v1/api-keys/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{key_id}",
    tag = "api-keys",
    params(("key_id" = ApiKeyId, Path, description = "The key's public id.")),
    responses(
        (status = 204, description = "Deleted: the key stops working at once."),
        (status = 404, description = "`api_key_unknown`: no such key."),
        (status = 409, description = "`api_key_in_use`: this is the key making the request; delete it with another admin key."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_api_key(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    api_keys::revoke_key(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
