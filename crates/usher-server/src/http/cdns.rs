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
use usher_core::secret::SecretHash;
use usher_core::store::PutOutcome;

use usher_core::admin::Permission;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath};
use crate::openapi::schemas::{CdnList, CdnView, SignedObject};
use crate::service::audit;
use crate::service::auth::Caller;
use crate::service::delivery::{Binding, DEFAULT_PRIORITY, pool, sign_object};
use crate::service::{Error, Result};
use crate::state::AppState;

/// Largest priority or weight accepted.
const MAX_RANK: u32 = 1_000_000;

/// A CDN as an admin writes it (`PUT /api/v1/cdns/{id}`); unknown fields are refused.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CdnSpec {
    /// A name for humans (1–200 characters, no control characters).
    pub name: String,
    /// `http(s)://host[:port][/path]`, no query, fragment or credentials.
    pub base_url: String,
    /// The scheme's configuration with its keys (`{"scheme": "nginx", "secret": …}`), as `usher-cdn` reads it.
    #[schema(value_type = Object)]
    pub signing: Value,
    /// Lower comes first (default 100, at most 1,000,000).
    #[serde(default = "default_priority")]
    #[schema(maximum = 1_000_000)]
    pub priority: u32,
    /// Higher comes first among equal priorities (default 1, at most 1,000,000).
    #[serde(default = "default_weight")]
    #[schema(maximum = 1_000_000)]
    pub weight: u32,
    /// Whether it delivers (default true).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The object the health prober fetches through this CDN, relative to `base_url` (e.g.
    /// `demo/master.m3u8`); absent: not probed.
    #[serde(default)]
    pub canary: Option<String>,
    /// The secret this CDN sends in `X-Usher-Origin-Secret` when it pulls from `/pull/`: absent keeps the
    /// stored one, `null` removes it (the CDN loses origin access), a text sets it. Write-only.
    #[serde(default, deserialize_with = "present")]
    pub origin_secret: Option<Option<String>>,
}

/// The priority of a CDN added without one.
pub fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}
fn default_weight() -> u32 {
    1
}
fn default_enabled() -> bool {
    true
}

/// What `PATCH /api/v1/cdns/{id}` may change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CdnPatch {
    /// Whether it delivers.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Lower comes first (at most 1,000,000).
    #[serde(default)]
    #[schema(maximum = 1_000_000)]
    pub priority: Option<u32>,
    /// Higher comes first among equal priorities (at most 1,000,000).
    #[serde(default)]
    #[schema(maximum = 1_000_000)]
    pub weight: Option<u32>,
    /// The object the health prober fetches (`null`: not probed).
    #[serde(default, deserialize_with = "present")]
    pub canary: Option<Option<String>>,
    /// The origin-pull secret (`null` removes it). Write-only.
    #[serde(default, deserialize_with = "present")]
    pub origin_secret: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`, by `#[serde(default)]`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Shortest origin-pull secret accepted, in characters.
const MIN_ORIGIN_SECRET: usize = 24;

/// Checks a canary (or any object path under a CDN's base URL) with the one media-path rule
/// (`usher_core::media_path`): relative, segments of `A-Z a-z 0-9 . _ -`, none empty or starting with `.`.
fn check_canary(canary: &str) -> Result<String> {
    usher_core::media_path::MediaPath::parse(canary)
        .map_err(|_| Error::InvalidRequest("canary: a relative path like demo/master.m3u8 (segments of A-Z, a-z, 0-9, '.', '_' and '-', none starting with '.')".into()))?;
    Ok(canary.to_owned())
}

/// Checks an origin-pull secret and returns its keyed hash (the secret itself is never stored).
fn origin_secret_hash(state: &AppState, secret: &str) -> Result<SecretHash> {
    if secret.chars().count() < MIN_ORIGIN_SECRET
        || secret.len() > 512
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidRequest(format!(
            "origin_secret: {MIN_ORIGIN_SECRET} to 512 visible ASCII characters"
        )));
    }
    Ok(state.hasher.origin_pull_secret(secret))
}

/// Applies an `origin_secret` field to `cdn` (the origin itself pulls from nowhere).
fn apply_origin_secret(
    state: &AppState,
    cdn: &mut Cdn,
    field: Option<Option<String>>,
) -> Result<()> {
    match field {
        None => Ok(()),
        Some(_) if cdn.id.is_origin() => Err(Error::InvalidRequest(
            "origin_secret: the origin does not pull from itself".into(),
        )),
        Some(None) => {
            cdn.origin_secret_hash = None;
            Ok(())
        }
        Some(Some(secret)) => {
            cdn.origin_secret_hash = Some(origin_secret_hash(state, &secret)?);
            Ok(())
        }
    }
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
        "canary": c.canary,
        "origin_secret_set": c.origin_secret_hash.is_some(),
        "health": {
            "state": c.health.state,
            "last_error": c.health.last_error,
            "checked_at": c.health.checked_at.map(|t| t.to_rfc3339()),
            "latency_ms": c.health.latency_ms,
            "since": c.health.since.map(|t| t.to_rfc3339()),
        },
        "created_at": c.created_at.to_rfc3339(),
        "updated_at": c.updated_at.to_rfc3339(),
    })
}

fn lookup_id(id: &str) -> Result<CdnId> {
    CdnId::parse(id).map_err(|_| Error::NotFound("cdn_unknown"))
}

fn check_rank(field: &str, v: u32) -> Result<()> {
    if v > MAX_RANK {
        return Err(Error::InvalidRequest(format!(
            "{field}: at most {MAX_RANK}"
        )));
    }
    Ok(())
}

/// Checks a base URL: `http(s)://host[:port][/path]`, no query, fragment or credentials; drops a final `/`.
fn check_base_url(url: &str) -> Result<String> {
    let bad = |m: &str| Error::InvalidRequest(format!("base_url: {m}"));
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
fn check_signing(signing: &Value) -> Result<()> {
    if !signing.is_object() {
        return Err(Error::InvalidRequest(
            "signing: must be an object naming its `scheme`".into(),
        ));
    }
    let scheme: Scheme = serde_json::from_value(signing.clone()).map_err(|e| {
        // serde names fields and variants, never the value of a string it accepted
        Error::InvalidRequest(format!("signing: {e}"))
    })?;
    if matches!(scheme, Scheme::Usher(_)) {
        return Err(Error::InvalidRequest(
            "signing: the usher scheme is Usher's own origin (`origin`), which is built in".into(),
        ));
    }
    scheme
        .signer()
        .map_err(|e| Error::InvalidRequest(format!("signing: {e}")))?;
    Ok(())
}

/// At least one CDN must stay enabled.
fn check_not_empty(pool: &[Cdn]) -> Result<()> {
    if pool.iter().any(|c| c.enabled) {
        Ok(())
    } else {
        Err(Error::CdnPoolEmpty)
    }
}

/// `GET /api/v1/cdns`: the pool by id, the origin included.
#[utoipa::path(
    get,
    path = "/api/v1/cdns",
    tag = "cdns",
    responses((status = 200, description = "The pool by id, the origin included.", body = CdnList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_cdns(
    State(state): State<AppState>,
    _caller: Authorized<Read>,
) -> Result<Json<Value>> {
    let cdns: Vec<Value> = pool(&state).await?.iter().map(cdn_view).collect();
    Ok(Json(json!({"cdns": cdns})))
}

/// `GET /api/v1/cdns/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/cdns/{cdn_id}",
    tag = "cdns",
    params(("cdn_id" = CdnId, Path, description = "The CDN's id (`origin` is Usher's own).")),
    responses(
        (status = 200, description = "The CDN.", body = CdnView),
        (status = 404, description = "`cdn_unknown`: no such CDN."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn read_cdn(
    State(state): State<AppState>,
    _caller: Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>> {
    let id = lookup_id(&id)?;
    let cdn = pool(&state)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound("cdn_unknown"))?;
    Ok(Json(cdn_view(&cdn)))
}

/// `PUT /api/v1/cdns/{id}`: 201 when created, 200 when replaced; the origin cannot be replaced.
#[utoipa::path(
    put,
    path = "/api/v1/cdns/{cdn_id}",
    tag = "cdns",
    params(("cdn_id" = CdnId, Path, description = "The CDN's id (`origin` is Usher's own).")),
    request_body = CdnSpec,
    responses(
        (status = 201, description = "Added.", body = CdnView),
        (status = 200, description = "Replaced.", body = CdnView),
        (status = 400, description = "`invalid_request`: the id or a field is not valid (the detail names it, never a key)."),
        (status = 409, description = "`cdn_builtin`: `origin` cannot be replaced; `cdn_pool_empty`: no enabled CDN would remain."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn put_cdn(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<CdnSpec>,
) -> Result<(StatusCode, Json<Value>)> {
    let (outcome, cdn) = write_cdn(&state, &caller, &id, spec).await?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(cdn_view(&cdn))))
}

/// Creates or replaces a CDN (keys as given; the origin cannot be replaced).
///
/// # Errors
/// `invalid_request`, `cdn_builtin`, `cdn_pool_empty`; `forbidden`.
pub async fn write_cdn(
    state: &AppState,
    caller: &Caller,
    id: &str,
    spec: CdnSpec,
) -> Result<(PutOutcome, Cdn)> {
    caller.require(Permission::Manage)?;
    let id = CdnId::parse(id).map_err(|e| Error::InvalidRequest(format!("CDN id: {e}")))?;
    if id.is_origin() {
        return Err(Error::CdnBuiltIn(
            "the origin cannot be replaced; PATCH its enabled, priority or weight",
        ));
    }
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(
            "name: 1 to 200 characters, no control characters".into(),
        ));
    }
    let base_url = check_base_url(&spec.base_url)?;
    check_rank("priority", spec.priority)?;
    check_rank("weight", spec.weight)?;
    check_signing(&spec.signing)?;
    let now = state.store.now();
    let mut pool = pool(state).await?;
    let existing = pool.iter().find(|c| c.id == id).cloned();
    let canary = spec.canary.as_deref().map(check_canary).transpose()?;
    let mut cdn = Cdn {
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
        canary,
        origin_secret_hash: existing.as_ref().and_then(|c| c.origin_secret_hash),
        created_at: existing.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    apply_origin_secret(state, &mut cdn, spec.origin_secret)?;
    pool.retain(|c| c.id != id);
    pool.push(cdn.clone());
    check_not_empty(&pool)?;
    let outcome = state.store.put_cdn(cdn.clone()).await?;
    tracing::info!(cdn.id = %cdn.id, scheme = cdn.signing.scheme(), enabled = cdn.enabled, ?outcome, "CDN written");
    audit::record(
        state,
        caller,
        "cdn.put",
        &format!("cdn:{}", cdn.id),
        &format!(
            "scheme={} enabled={}",
            cdn.signing.scheme().unwrap_or("-"),
            cdn.enabled
        ),
    )
    .await;
    Ok((outcome, cdn))
}

/// `PATCH /api/v1/cdns/{id}`: `enabled`, `priority`, `weight`, `canary`, `origin_secret`.
#[utoipa::path(
    patch,
    path = "/api/v1/cdns/{cdn_id}",
    tag = "cdns",
    params(("cdn_id" = CdnId, Path, description = "The CDN's id (`origin` is Usher's own).")),
    request_body = CdnPatch,
    responses(
        (status = 200, description = "Changed: the CDN.", body = CdnView),
        (status = 400, description = "`invalid_request`: a field is not valid."),
        (status = 404, description = "`cdn_unknown`: no such CDN."),
        (status = 409, description = "`cdn_pool_empty`: no enabled CDN would remain."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn patch_cdn(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<CdnPatch>,
) -> Result<Json<Value>> {
    Ok(Json(cdn_view(
        &change_cdn(&state, &caller, &id, patch).await?,
    )))
}

/// Changes a CDN's `enabled`, `priority`, `weight`, `canary` or `origin_secret`.
///
/// # Errors
/// `cdn_unknown`, `invalid_request`, `cdn_pool_empty`; `forbidden`.
pub async fn change_cdn(
    state: &AppState,
    caller: &Caller,
    id: &str,
    patch: CdnPatch,
) -> Result<Cdn> {
    caller.require(Permission::Manage)?;
    let id = lookup_id(id)?;
    let mut pool = pool(state).await?;
    let cdn = pool
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound("cdn_unknown"))?;
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
    match patch.canary {
        Some(_) if cdn.id.is_origin() => {
            return Err(Error::InvalidRequest(
                "canary: the origin is not probed".into(),
            ));
        }
        Some(c) => cdn.canary = c.as_deref().map(check_canary).transpose()?,
        None => {}
    }
    apply_origin_secret(state, cdn, patch.origin_secret)?;
    cdn.updated_at = state.store.now();
    if cdn.id.is_origin() && cdn.created_at.0 == 0 {
        cdn.created_at = cdn.updated_at;
    }
    let cdn = cdn.clone();
    check_not_empty(&pool)?;
    state.store.put_cdn(cdn.clone()).await?;
    tracing::info!(cdn.id = %cdn.id, enabled = cdn.enabled, priority = cdn.priority, weight = cdn.weight, "CDN changed");
    audit::record(
        state,
        caller,
        "cdn.patch",
        &format!("cdn:{}", cdn.id),
        &format!(
            "enabled={} priority={} weight={}",
            cdn.enabled, cdn.priority, cdn.weight
        ),
    )
    .await;
    Ok(cdn)
}

/// `DELETE /api/v1/cdns/{id}`: 204; the origin cannot be deleted, nor the last enabled CDN.
#[utoipa::path(
    delete,
    path = "/api/v1/cdns/{cdn_id}",
    tag = "cdns",
    params(("cdn_id" = CdnId, Path, description = "The CDN's id (`origin` is Usher's own).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`cdn_unknown`: no such CDN."),
        (status = 409, description = "`cdn_builtin`: `origin` cannot be deleted; `cdn_pool_empty`: no enabled CDN would remain."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_cdn(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    remove_cdn(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a CDN (not the origin, nor the last enabled one).
///
/// # Errors
/// `cdn_unknown`, `cdn_builtin`, `cdn_pool_empty`; `forbidden`.
pub async fn remove_cdn(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let id = lookup_id(id)?;
    if id.is_origin() {
        return Err(Error::CdnBuiltIn(
            "the origin cannot be deleted; PATCH it to disabled while another CDN is enabled",
        ));
    }
    let mut pool = pool(state).await?;
    if !pool.iter().any(|c| c.id == id) {
        return Err(Error::NotFound("cdn_unknown"));
    }
    pool.retain(|c| c.id != id);
    check_not_empty(&pool)?;
    if state.store.delete_cdn(&id).await? {
        tracing::info!(cdn.id = %id, "CDN deleted");
        audit::record(state, caller, "cdn.delete", &format!("cdn:{id}"), "").await;
        Ok(())
    } else {
        Err(Error::NotFound("cdn_unknown"))
    }
}

/// A time as Unix seconds or RFC 3339 text.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum TimeArg {
    /// Unix seconds.
    Unix(i64),
    /// RFC 3339.
    Text(String),
}

impl TimeArg {
    fn seconds(&self, field: &str) -> Result<i64> {
        match self {
            Self::Unix(s) => Ok(*s),
            Self::Text(t) => {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map(time::OffsetDateTime::unix_timestamp)
                    .map_err(|_| {
                        Error::InvalidRequest(format!("{field}: Unix seconds or RFC 3339"))
                    })
            }
        }
    }
}

/// Body of `POST /api/v1/cdns/{id}/sign`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// The object, relative to the CDN's base URL (`demo/master.m3u8`).
    pub path: String,
    /// The folder to cover, relative (`demo/`); default: the object's folder.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Expiry; default: now plus 300 seconds.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<TimeArg>,
    /// Start of validity (schemes that take one).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub starts_at: Option<TimeArg>,
    /// The viewer's address to bind (schemes that take one).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub client_ip: Option<std::net::IpAddr>,
    /// The session to bind (schemes that take one; required for the origin).
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `POST /api/v1/cdns/{id}/sign`: what a viewer would get from this CDN for one object — the signed
/// URL, cookies and headers — made by the same signer as delivery (and `usher sign-url`), to test a
/// CDN's configuration. The keys themselves never appear.
#[utoipa::path(
    post,
    path = "/api/v1/cdns/{cdn_id}/sign",
    tag = "cdns",
    params(("cdn_id" = CdnId, Path, description = "The CDN's id (`origin` is Usher's own).")),
    request_body = SignBody,
    responses(
        (status = 200, description = "What a viewer would get: the signed URL, cookies and headers.", body = SignedObject),
        (status = 400, description = "`invalid_request`: a field is not valid, or the scheme refuses the request."),
        (status = 404, description = "`cdn_unknown`: no such CDN."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn sign_cdn_url(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SignBody>,
) -> Result<Json<Value>> {
    Ok(Json(sign_test(&state, &caller, &id, body).await?))
}

/// Signs one object as a viewer would get it from this CDN (the console's "test a signed URL"). It
/// hands out a working URL, so it needs the manage permission and is audited.
///
/// # Errors
/// `cdn_unknown`, `invalid_request`; `forbidden`.
pub async fn sign_test(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: SignBody,
) -> Result<Value> {
    caller.require(Permission::Manage)?;
    let id = lookup_id(id)?;
    let cdn = pool(state)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound("cdn_unknown"))?;
    let path = check_canary(&body.path).map_err(|_| {
        Error::InvalidRequest("path: a relative object path like demo/master.m3u8".into())
    })?;
    let folder = match &body.prefix {
        Some(p) => {
            let trimmed = p.trim_end_matches('/');
            check_canary(trimmed).map_err(|_| {
                Error::InvalidRequest("prefix: a relative folder like demo/".into())
            })?;
            if !path.starts_with(&format!("{trimmed}/")) {
                return Err(Error::InvalidRequest("prefix: must contain path".into()));
            }
            format!("{trimmed}/")
        }
        None => path
            .rsplit_once('/')
            .map_or_else(String::new, |(d, _)| format!("{d}/")),
    };
    let now_s = state.store.now().0.div_euclid(1000);
    let expires = match &body.expires_at {
        Some(t) => t.seconds("expires_at")?,
        None => now_s + 300,
    };
    let starts = body
        .starts_at
        .as_ref()
        .map(|t| t.seconds("starts_at"))
        .transpose()?;
    let signed = if cdn.id.is_origin() {
        let session = body
            .session_id
            .as_deref()
            .ok_or_else(|| {
                Error::InvalidRequest(
                    "session_id: the origin's grants name a session (and work only while it plays)"
                        .into(),
                )
            })
            .and_then(|s| {
                usher_core::ids::SessionId::parse(s)
                    .map_err(|e| Error::InvalidRequest(format!("session_id: {e}")))
            })?;
        let token = state.grants.sign(&usher_core::grant::Grant {
            session,
            expires_at: usher_core::clock::UnixMs(expires.saturating_mul(1000)),
            prefix: folder.clone(),
        });
        usher_cdn::Signed {
            url: format!("{}/o/{token}/{path}", state.base_url.trim_end_matches('/')),
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    } else {
        let binding = Binding {
            starts_at: starts,
            client_ip: body.client_ip,
            session_id: body.session_id.clone(),
        };
        sign_object(state, &cdn, &path, &folder, expires, &binding)
            .await
            .map_err(|e| Error::InvalidRequest(format!("signing refused: {e}")))?
    };
    let mut out = crate::cli::sign_url::render_json(&signed);
    out["cdn"] = json!(cdn.id);
    out["scheme"] = json!(cdn.signing.scheme());
    out["expires_at"] = json!(usher_core::clock::UnixMs(expires.saturating_mul(1000)).to_rfc3339());
    audit::record(
        state,
        caller,
        "cdn.sign",
        &format!("cdn:{}", cdn.id),
        &format!("path={path}"),
    )
    .await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::delivery::default_origin;

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
