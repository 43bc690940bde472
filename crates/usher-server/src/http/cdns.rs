//! The CDN pool API (scope `admin`): list, create or replace, change, read, delete, test-sign; each
//! handler calls one action of [`crate::service::admin::cdns`], which the console calls too.
//!
//! Signing keys are write-only: they are stored as given and answered only as `key_set`. Usher's own origin
//! (`origin`) is always a member: it cannot be replaced or deleted, and it can be disabled only while
//! another CDN is enabled (the pool never runs empty).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use usher_core::ids::CdnId;
use usher_core::store::PutOutcome;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::views::cdns::{CdnList, CdnView, SignedObject};
use crate::service::Result;
use crate::service::admin::cdns::{self, CdnPatch, CdnSpec, SignBody};
use crate::state::AppState;

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
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<CdnList>> {
    let pool = cdns::list_cdns(&state, &caller).await?;
    Ok(Json(CdnList {
        cdns: pool.iter().map(CdnView::from).collect(),
    }))
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
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CdnView>> {
    let cdn = cdns::find_cdn(&state, &caller, &id).await?;
    Ok(Json(CdnView::from(&cdn)))
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
        (status = 400, description = "`invalid_request`: the id or a field is not valid, or `signing` names an unknown scheme or option or gives one the wrong type (the detail names it, never a key)."),
        (status = 409, description = "`cdn_builtin`: `origin` cannot be replaced; `cdn_pool_empty`: no enabled CDN would remain."),
        (status = 422, description = "The `signing` configuration is well-formed but its scheme cannot use it (the detail says why, `field` names the option; never a key's value): `signing_key_invalid`: the key or PEM is not of the scheme's form; `signing_option_invalid`: an option holds a value the scheme cannot carry (a country list, a speed limit, a CIDR, a cookie domain, an expression's variable…); `signing_unmatchable`: an nginx `secure_link_md5` expression nginx could never compute the same way (the detail shows the string that would be hashed, the secret as `$secret`)."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn put_cdn(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<CdnSpec>,
) -> Result<(StatusCode, Json<CdnView>)> {
    let (outcome, cdn) = cdns::write_cdn(&state, &caller, &id, spec).await?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(CdnView::from(&cdn))))
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
) -> Result<Json<CdnView>> {
    let cdn = cdns::change_cdn(&state, &caller, &id, patch).await?;
    Ok(Json(CdnView::from(&cdn)))
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
    cdns::remove_cdn(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
) -> Result<Json<SignedObject>> {
    let signed = cdns::sign_test(&state, &caller, &id, body).await?;
    Ok(Json(SignedObject::from(&signed)))
}
