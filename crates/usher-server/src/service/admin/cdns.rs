//! The CDN pool: create or replace, change, read, delete, and test-sign an object.
//!
//! Signing keys are write-only: they are stored as given and never answered. Usher's own origin
//! (`origin`) is always a member: it cannot be replaced or deleted, and it can be disabled only while
//! another CDN is enabled (the pool never runs empty).

use serde::Deserialize;
use serde_json::Value;
use usher_cdn::{Scheme, SignError};
use usher_core::admin::Permission;
use usher_core::cdn::{Cdn, CdnHealth, SigningConfig};
use usher_core::clock::UnixMs;
use usher_core::ids::CdnId;
use usher_core::secret::SecretHash;
use usher_core::store::PutOutcome;

pub mod signing;

use crate::service::audit;
use crate::service::delivery::{Binding, DEFAULT_PRIORITY, pool, sign_object};
use crate::service::error::Code;
use crate::service::{Caller, Error, Record, Result};
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
    #[schema(value_type = signing::Signing)]
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

fn lookup_id(id: &str) -> Result<CdnId> {
    CdnId::parse(id).map_err(|_| Error::NotFound(Record::Cdn))
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
    scheme.signer().map_err(signing_refused)?;
    Ok(())
}

/// A scheme's refusal of a configuration as the precise problem: the key, an option (named), or an
/// expression nginx could never match. `SignError`'s messages carry no key material.
fn signing_refused(e: SignError) -> Error {
    let (code, field) = match &e {
        SignError::BadKey(_) | SignError::BadPem(_) | SignError::Rsa => {
            (Code::SigningKeyInvalid, None)
        }
        SignError::Unmatchable(_) => (Code::SigningUnmatchable, Some("expression")),
        SignError::BadExpression(_) => (Code::SigningOptionInvalid, Some("expression")),
        SignError::BadField { field, .. } => (Code::SigningOptionInvalid, Some(*field)),
        SignError::BadPath(_)
        | SignError::BadUrl(_)
        | SignError::UrlRequired
        | SignError::BadTimes(_)
        | SignError::Unsupported { .. }
        | SignError::Missing { .. } => (Code::SigningOptionInvalid, None),
    };
    Error::SigningRefused {
        code,
        field,
        detail: format!("signing: {e}"),
    }
}

/// At least one CDN must stay enabled.
fn check_not_empty(pool: &[Cdn]) -> Result<()> {
    if pool.iter().any(|c| c.enabled) {
        Ok(())
    } else {
        Err(Error::CdnPoolEmpty)
    }
}

/// The pool by id, the origin included.
///
/// # Errors
/// `forbidden`; the store's error.
pub async fn list_cdns(state: &AppState, caller: &Caller) -> Result<Vec<Cdn>> {
    caller.require(Permission::Read)?;
    pool(state).await
}

/// A member of the pool (the origin included).
///
/// # Errors
/// `cdn_unknown`; `forbidden`.
pub async fn find_cdn(state: &AppState, caller: &Caller, id: &str) -> Result<Cdn> {
    caller.require(Permission::Read)?;
    let id = lookup_id(id)?;
    pool(state)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound(Record::Cdn))
}

/// What a viewer would get from a CDN for one object: [`usher_cdn::Signed`] with the CDN and expiry.
#[derive(Debug)]
pub struct SignedObject {
    /// The CDN.
    pub cdn: CdnId,
    /// Its signing scheme.
    pub scheme: Option<String>,
    /// The URL, cookies and headers.
    pub signed: usher_cdn::Signed,
    /// When the signature lapses (whole seconds).
    pub expires_at: UnixMs,
}

/// Creates or replaces a CDN (keys as given; the origin cannot be replaced).
///
/// # Errors
/// `invalid_request` (malformed: an unknown scheme or field, a wrong type), `signing_key_invalid`,
/// `signing_option_invalid`, `signing_unmatchable` (a configuration its scheme cannot use), `cdn_builtin`,
/// `cdn_pool_empty`; `forbidden`.
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
        .ok_or(Error::NotFound(Record::Cdn))?;
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
        return Err(Error::NotFound(Record::Cdn));
    }
    pool.retain(|c| c.id != id);
    check_not_empty(&pool)?;
    if state.store.delete_cdn(&id).await? {
        tracing::info!(cdn.id = %id, "CDN deleted");
        audit::record(state, caller, "cdn.delete", &format!("cdn:{id}"), "").await;
        Ok(())
    } else {
        Err(Error::NotFound(Record::Cdn))
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
    /// The viewer's address to bind (schemes that take one), or a network in CIDR form
    /// (`203.0.113.0/24`) for schemes that bind a network (CloudFront's IPv4 `AWS:SourceIp`, Cloudflare
    /// Stream's `ip.src`).
    #[serde(default)]
    pub client_ip: Option<String>,
    /// The session to bind (schemes that take one; required for the origin).
    #[serde(default)]
    pub session_id: Option<String>,
}

/// An address, or a network in CIDR form (`203.0.113.0/24`): the address and the prefix length.
pub fn parse_client(text: &str) -> Option<(std::net::IpAddr, Option<u8>)> {
    match text.split_once('/') {
        None => text.parse().ok().map(|ip| (ip, None)),
        Some((addr, bits)) => {
            let ip: std::net::IpAddr = addr.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max && bits.bytes().all(|c| c.is_ascii_digit()))?;
            Some((ip, Some(bits)))
        }
    }
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
) -> Result<SignedObject> {
    caller.require(Permission::Manage)?;
    let id = lookup_id(id)?;
    let cdn = pool(state)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Error::NotFound(Record::Cdn))?;
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
    // one signer for every member of the pool, Usher's origin included (its grant scheme needs a session)
    let (client_ip, client_network_bits) = match body.client_ip.as_deref() {
        None => (None, None),
        Some(text) => {
            let (ip, bits) = parse_client(text).ok_or_else(|| {
                Error::InvalidRequest(
                    "client_ip: an IP address or a CIDR network (203.0.113.0/24)".into(),
                )
            })?;
            (Some(ip), bits)
        }
    };
    let binding = Binding {
        starts_at: starts,
        client_ip,
        client_network_bits,
        session_id: body.session_id.clone(),
    };
    let signed = sign_object(state, &cdn, &path, &folder, expires, &binding)
        .await
        .map_err(|e| Error::InvalidRequest(format!("refused: {e}")))?;
    audit::record(
        state,
        caller,
        "cdn.sign",
        &format!("cdn:{}", cdn.id),
        &format!("path={path}"),
    )
    .await;
    Ok(SignedObject {
        scheme: cdn.signing.scheme().map(str::to_owned),
        cdn: cdn.id,
        signed,
        expires_at: UnixMs(expires.saturating_mul(1000)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
