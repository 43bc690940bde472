//! API keys: issue (the key is shown once), list, delete. The store keeps only a key's keyed hash.

use serde::Deserialize;
use usher_core::admin::Permission;
use usher_core::ids::ApiKeyId;
use usher_core::secret::{ApiKeySecret, SecretHasher};
use usher_core::store::{ApiKey, Scope, Store, StoreError};
use usher_core::validation::check_text;

use crate::service::audit;
use crate::service::{Caller, Error, Principal, Record, Result};
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

/// Makes and stores a new key; returns the stored record and the secret text (shown once). No caller
/// and no audit entry: `usher api-key create` runs it on a stopped server, before any key exists.
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

/// Every key (without secrets).
///
/// # Errors
/// `forbidden`; the store's error.
pub async fn list_keys(state: &AppState, caller: &Caller) -> Result<Vec<ApiKey>> {
    caller.require(Permission::Read)?;
    Ok(state.store.api_keys().await?)
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
/// `api_key_unknown`, `api_key_in_use`; `forbidden`.
pub async fn revoke_key(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let id = ApiKeyId::parse(id).map_err(|_| Error::NotFound(Record::ApiKey))?;
    // a key deleting itself may be the last admin key: the API would be locked until someone runs
    // `usher api-key create` on the stopped server (console users can always make a new one)
    if matches!(&caller.principal, Principal::Key(k) if k.id == id) {
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
        Err(Error::NotFound(Record::ApiKey))
    }
}
