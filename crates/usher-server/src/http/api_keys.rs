//! API keys (scope `admin`): list, create (the key is shown once), delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use usher_core::ids::ApiKeyId;
use usher_core::secret::{ApiKeySecret, SecretHasher};
use usher_core::store::{ApiKey, Scope, Store, StoreError};
use usher_core::validation::check_text;

use usher_core::admin::Permission;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath};
use crate::openapi::schemas::{ApiKeyList, ApiKeyView};
use crate::service::audit;
use crate::service::auth::Caller;
use crate::service::{Error, Result};
use crate::state::AppState;

/// Body of a key creation.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A name for humans (1–100 characters, no control characters but newlines and tabs).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// What it may do: `tickets`, `admin` (everything), or both.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
}

/// The JSON view of a key (never its secret).
pub fn key_view(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scopes": k.scopes,
        "created_at": k.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "last_used_at": k.last_used_at.map(|t| t.to_rfc3339()),
    })
}

/// Makes and stores a new key; returns the stored record and the secret text (shown once).
///
/// # Errors
/// The store's error.
pub async fn issue_api_key(
    store: &dyn Store,
    hasher: &SecretHasher,
    name: &str,
    scopes: Vec<Scope>,
) -> Result<(ApiKey, String), StoreError> {
    let secret = ApiKeySecret::generate();
    let mut scopes = scopes;
    scopes.sort();
    scopes.dedup();
    let key = ApiKey {
        id: secret.id.clone(),
        name: name.to_owned(),
        scopes,
        secret_hash: hasher.api_key_secret(&secret.secret),
        created_at: store.now().to_datetime(),
        last_used_at: None,
    };
    store.put_api_key(key.clone()).await?;
    Ok((key, secret.to_bearer()))
}

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
    _caller: Authorized<Read>,
) -> Result<Json<Value>> {
    let keys = state.store.api_keys().await?;
    Ok(Json(
        json!({"api_keys": keys.iter().map(key_view).collect::<Vec<_>>()}),
    ))
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
) -> Result<(StatusCode, Json<Value>)> {
    let (key, secret) = create_key(&state, &caller, body).await?;
    let mut v = key_view(&key);
    v["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

/// Makes a key; returns it with its secret text (shown once).
///
/// # Errors
/// `invalid_request`; `forbidden`.
pub async fn create_key(
    state: &AppState,
    caller: &Caller,
    body: NewKey,
) -> Result<(ApiKey, String)> {
    caller.require(Permission::Manage)?;
    check_text("name", &body.name, 1, 100).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    if body.scopes.is_empty() {
        return Err(Error::InvalidRequest(
            "scopes: must name at least one of `tickets`, `admin`".into(),
        ));
    }
    let (key, secret) =
        issue_api_key(&*state.store, &state.hasher, &body.name, body.scopes).await?;
    tracing::info!(api_key.id = %key.id, "API key created");
    let scopes: Vec<&str> = key
        .scopes
        .iter()
        .map(|s| match s {
            Scope::Admin => "admin",
            Scope::Tickets => "tickets",
        })
        .collect();
    audit::record(
        state,
        caller,
        "api_key.create",
        &format!("api_key:{}", key.id),
        &format!("scopes={}", scopes.join("+")),
    )
    .await;
    Ok((key, secret))
}

/// Revokes (deletes) a key.
///
/// # Errors
/// `api_key_unknown`; `forbidden`.
pub async fn revoke_key(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let id = ApiKeyId::parse(id).map_err(|_| Error::NotFound("api_key_unknown"))?;
    // a key deleting itself may be the last admin key: the API would be locked until someone runs
    // `usher api-key create` on the stopped server (console users can always make a new one)
    if matches!(&caller.principal, crate::service::auth::Principal::Key(k) if k.id == id) {
        return Err(Error::ApiKeyInUse);
    }
    if state.store.delete_api_key(&id).await? {
        tracing::info!(api_key.id = %id, "API key deleted");
        audit::record(
            state,
            caller,
            "api_key.delete",
            &format!("api_key:{id}"),
            "",
        )
        .await;
        Ok(())
    } else {
        Err(Error::NotFound("api_key_unknown"))
    }
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
    revoke_key(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
