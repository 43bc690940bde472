//! The CDN pool API (scope `admin`): list, create or replace, change, read, delete.
//!
//! Signing keys are write-only: they are stored as given and answered only as `key_set`. Usher's own origin
//! (`origin`) is always a member: it cannot be replaced or deleted, and it can be disabled only while
//! another CDN is enabled (the pool never runs empty).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use usher_cdn::Scheme;
use usher_core::cdn::{Cdn, CdnHealth, SigningConfig};
use usher_core::ids::CdnId;
use usher_core::store::PutOutcome;

use crate::delivery::{DEFAULT_PRIORITY, pool};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminKey, ApiJson, ApiPath};
use crate::state::AppState;

/// Largest priority or weight accepted.
const MAX_RANK: u32 = 1_000_000;

/// A CDN as an admin writes it (`PUT /api/v1/cdns/{id}`); unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnSpec {
    name: String,
    base_url: String,
    /// The scheme's configuration with its keys (`{"scheme": "nginx", "secret": …}`), as `usher-cdn` reads it.
    signing: Value,
    #[serde(default = "default_priority")]
    priority: u32,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default = "default_enabled")]
    enabled: bool,
}

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}
fn default_weight() -> u32 {
    1
}
fn default_enabled() -> bool {
    true
}

/// What `PATCH /api/v1/cdns/{id}` may change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnPatch {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    weight: Option<u32>,
}

/// A CDN as the API shows it: never its keys.
pub fn cdn_view(c: &Cdn) -> Value {
    let key_set = c.id.is_origin()
        || c.signing
            .0
            .as_object()
            .is_some_and(|o| o.keys().any(|k| k != "scheme"));
    json!({
        "id": c.id,
        "name": c.name,
        "base_url": c.base_url,
        "scheme": c.signing.scheme(),
        "key_set": key_set,
        "priority": c.priority,
        "weight": c.weight,
        "enabled": c.enabled,
        "builtin": c.id.is_origin(),
        "health": {
            "state": c.health.state,
            "last_error": c.health.last_error,
            "checked_at": c.health.checked_at.map(|t| t.to_rfc3339()),
        },
        "created_at": c.created_at.to_rfc3339(),
        "updated_at": c.updated_at.to_rfc3339(),
    })
}

fn lookup_id(id: &str) -> ApiResult<CdnId> {
    CdnId::parse(id).map_err(|_| ApiError::NotFound("cdn_unknown"))
}

fn check_rank(field: &str, v: u32) -> ApiResult<()> {
    if v > MAX_RANK {
        return Err(ApiError::InvalidRequest(format!(
            "{field}: at most {MAX_RANK}"
        )));
    }
    Ok(())
}

/// Checks a base URL: `http(s)://host[:port][/path]`, no query, fragment or credentials; drops a final `/`.
fn check_base_url(url: &str) -> ApiResult<String> {
    let bad = |m: &str| ApiError::InvalidRequest(format!("base_url: {m}"));
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(bad("needs a host (and no credentials)"));
    }
    if url.len() > 2048
        || url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?' || b == b'#')
    {
        return Err(bad("no spaces, query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Checks the signing configuration through `usher-cdn` (parsing its keys) without echoing any value.
fn check_signing(signing: &Value) -> ApiResult<()> {
    let scheme: Scheme = serde_json::from_value(signing.clone()).map_err(|e| {
        // serde names fields and variants, never the value of a string it accepted
        ApiError::InvalidRequest(format!("signing: {e}"))
    })?;
    if matches!(scheme, Scheme::Usher(_)) {
        return Err(ApiError::InvalidRequest(
            "signing: the usher scheme is Usher's own origin (`origin`), which is built in".into(),
        ));
    }
    scheme
        .signer()
        .map_err(|e| ApiError::InvalidRequest(format!("signing: {e}")))?;
    Ok(())
}

/// At least one CDN must stay enabled.
fn check_not_empty(pool: &[Cdn]) -> ApiResult<()> {
    if pool.iter().any(|c| c.enabled) {
        Ok(())
    } else {
        Err(ApiError::CdnPoolEmpty)
    }
}

/// `GET /api/v1/cdns`: the pool by id, the origin included.
pub async fn list_cdns(State(state): State<AppState>, _key: AdminKey) -> ApiResult<Json<Value>> {
    let cdns: Vec<Value> = pool(&state).await?.iter().map(cdn_view).collect();
    Ok(Json(json!({"cdns": cdns})))
}

/// `GET /api/v1/cdns/{id}`.
pub async fn read_cdn(
    State(state): State<AppState>,
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = lookup_id(&id)?;
    let cdn = pool(&state)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(ApiError::NotFound("cdn_unknown"))?;
    Ok(Json(cdn_view(&cdn)))
}

/// `PUT /api/v1/cdns/{id}`: 201 when created, 200 when replaced; the origin cannot be replaced.
pub async fn put_cdn(
    State(state): State<AppState>,
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<CdnSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = CdnId::parse(&id).map_err(|e| ApiError::InvalidRequest(format!("CDN id: {e}")))?;
    if id.is_origin() {
        return Err(ApiError::CdnBuiltIn(
            "the origin cannot be replaced; PATCH its enabled, priority or weight",
        ));
    }
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(
            "name: 1 to 200 characters, no control characters".into(),
        ));
    }
    let base_url = check_base_url(&spec.base_url)?;
    check_rank("priority", spec.priority)?;
    check_rank("weight", spec.weight)?;
    check_signing(&spec.signing)?;
    let now = state.store.now();
    let mut pool = pool(&state).await?;
    let existing = pool.iter().find(|c| c.id == id).cloned();
    let cdn = Cdn {
        id: id.clone(),
        name,
        base_url,
        signing: SigningConfig(spec.signing),
        priority: spec.priority,
        weight: spec.weight,
        enabled: spec.enabled,
        health: existing
            .as_ref()
            .map_or_else(CdnHealth::default, |c| c.health.clone()),
        created_at: existing.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    pool.retain(|c| c.id != id);
    pool.push(cdn.clone());
    check_not_empty(&pool)?;
    let outcome = state.store.put_cdn(cdn.clone()).await?;
    tracing::info!(cdn.id = %cdn.id, scheme = cdn.signing.scheme(), enabled = cdn.enabled, ?outcome, "CDN written");
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(cdn_view(&cdn))))
}

/// `PATCH /api/v1/cdns/{id}`: `enabled`, `priority`, `weight`.
pub async fn patch_cdn(
    State(state): State<AppState>,
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<CdnPatch>,
) -> ApiResult<Json<Value>> {
    let id = lookup_id(&id)?;
    let mut pool = pool(&state).await?;
    let cdn = pool
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or(ApiError::NotFound("cdn_unknown"))?;
    if let Some(p) = patch.priority {
        check_rank("priority", p)?;
        cdn.priority = p;
    }
    if let Some(w) = patch.weight {
        check_rank("weight", w)?;
        cdn.weight = w;
    }
    if let Some(e) = patch.enabled {
        cdn.enabled = e;
    }
    cdn.updated_at = state.store.now();
    if cdn.id.is_origin() && cdn.created_at.0 == 0 {
        cdn.created_at = cdn.updated_at;
    }
    let cdn = cdn.clone();
    check_not_empty(&pool)?;
    state.store.put_cdn(cdn.clone()).await?;
    tracing::info!(cdn.id = %cdn.id, enabled = cdn.enabled, priority = cdn.priority, weight = cdn.weight, "CDN changed");
    Ok(Json(cdn_view(&cdn)))
}

/// `DELETE /api/v1/cdns/{id}`: 204; the origin cannot be deleted, nor the last enabled CDN.
pub async fn delete_cdn(
    State(state): State<AppState>,
    _key: AdminKey,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = lookup_id(&id)?;
    if id.is_origin() {
        return Err(ApiError::CdnBuiltIn(
            "the origin cannot be deleted; PATCH it to disabled while another CDN is enabled",
        ));
    }
    let mut pool = pool(&state).await?;
    if !pool.iter().any(|c| c.id == id) {
        return Err(ApiError::NotFound("cdn_unknown"));
    }
    pool.retain(|c| c.id != id);
    check_not_empty(&pool)?;
    if state.store.delete_cdn(&id).await? {
        tracing::info!(cdn.id = %id, "CDN deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("cdn_unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::default_origin;

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base_url("https://cdn.example/x/").unwrap(),
            "https://cdn.example/x"
        );
        assert_eq!(
            check_base_url("http://127.0.0.1:8081").unwrap(),
            "http://127.0.0.1:8081"
        );
        for bad in [
            "cdn.example",
            "ftp://cdn.example",
            "https://",
            "https://u:p@cdn.example",
            "https://cdn.example/?a=1",
            "https://cdn.example/a b",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn views_hide_keys() {
        let mut c = default_origin();
        c.id = CdnId::parse("a").unwrap();
        c.signing = SigningConfig(json!({"scheme": "nginx", "secret": "hunter2-secret"}));
        let v = cdn_view(&c).to_string();
        assert!(!v.contains("hunter2"), "{v}");
        assert!(v.contains("\"key_set\":true"), "{v}");
    }
}
