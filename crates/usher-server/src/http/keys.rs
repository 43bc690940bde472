//! Content keys: the key endpoint players fetch `EXT-X-KEY` URIs from (`GET /keys/{key_id}`), and the
//! packager's registration of a key (`PUT /api/v1/content-keys/{key_id}`). Both call
//! [`crate::service::content_keys`].

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use usher_core::ids::{ContentKeyId, SessionId};
use usher_core::session_secret::SessionSecret;

use crate::http::auth::{Authorized, Manage};
use crate::http::extract::{
    ApiJson, ApiPath, ClientIp, SEAT_COOKIE, SESSION_SECRET_HEADER, query_param,
};
use crate::http::views::content_keys::{ContentKeySpec, ContentKeyView};
use crate::service::Result;
use crate::service::content_keys::{self, KeyCredential};
use crate::service::delivery::ORIGIN_GRANT_PARAM;
use crate::state::AppState;

/// The header in which an app names the session whose secret it sends in `X-Usher-Session-Secret` (a key
/// URI names no session: the same media playlist serves every viewer).
pub const SESSION_HEADER: &str = "x-usher-session";

/// What a key request presents, in order: an app's headers, the watch page's `usher_seat` cookie (sent
/// on the page's own requests, `SameSite=Strict` allowing), the origin grant in the key URI.
fn credential(headers: &HeaderMap, query: Option<&str>, jar: &CookieJar) -> KeyCredential {
    let seat = |sid: &str, secret: &str| match (SessionId::parse(sid), SessionSecret::parse(secret))
    {
        (Ok(session), Some(secret)) => KeyCredential::Seat { session, secret },
        _ => KeyCredential::Invalid,
    };
    if let Some(secret) = headers.get(SESSION_SECRET_HEADER) {
        let sid = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
        return match (sid, secret.to_str().ok()) {
            (Some(sid), Some(secret)) => seat(sid, secret),
            _ => KeyCredential::Invalid,
        };
    }
    if let Some((sid, secret)) = jar.get(SEAT_COOKIE).and_then(|c| c.value().split_once('.')) {
        return seat(sid, secret);
    }
    query_param(query, ORIGIN_GRANT_PARAM).map_or(KeyCredential::Missing, |g| {
        KeyCredential::Grant(g.to_owned())
    })
}

/// `GET /keys/{key_id}`: a content key, for a session that holds its seat now.
#[utoipa::path(
    get,
    path = "/keys/{key_id}",
    tag = "media",
    params(
        ("key_id" = ContentKeyId, Path, description = "The key's id, as the media playlist's `EXT-X-KEY` URI names it."),
        ("usher_grant" = Option<String>, Query, description = "An origin grant of the session: Usher's origin writes it into the key URIs of the playlists it serves, for native players that can send neither cookie nor header."),
        ("X-Usher-Session" = Option<String>, Header, description = "Apps: the session's id, with its secret in `X-Usher-Session-Secret`."),
        ("X-Usher-Session-Secret" = Option<String>, Header, description = "Apps: the session's current secret (the watch page sends its `usher_seat` cookie instead)."),
    ),
    responses(
        (status = 200, description = "The 16-byte AES-128 key (`Cache-Control: no-store`). Nothing is renewed: the session's secret stays as it was.", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 403, description = "The session does not hold its seat now, or the request does not prove it holds one; the code says why: `session_secret_required` (no cookie, header or grant), `session_secret_invalid`, `session_unknown`, `superseded`, `session_cloned`, `ticket_revoked`, `ended`, `session_ended`, `session_expired`, `geo_blocked`, `grant_refused`."),
        (status = 404, description = "`key_unknown`: no such key for the session's stream folder, or the session's show is not `aes-128`."),
        (status = 429, description = "`rate_limited`: this address presented too many secrets that were never their session's; retry after `Retry-After` seconds."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds; `geo_unavailable`: the show's Geo policy names countries and no GeoIP database is loaded yet."),
    ),
)]
pub async fn content_key(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(key_id): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response> {
    let presented = credential(&headers, query.as_deref(), &jar);
    let result = content_keys::key_for_player(&state, presented, &key_id, client).await;
    let outcome = match &result {
        Ok(_) => "served",
        Err(e) => e.code().as_str(),
    };
    metrics::counter!("usher_key_requests_total", "outcome" => outcome).increment(1);
    let key = result?;
    let mut res = key.expose().to_vec().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `PUT /api/v1/content-keys/{key_id}`: registers a content key the packager made (201), or confirms
/// the same key registered before (200).
#[utoipa::path(
    put,
    path = "/api/v1/content-keys/{key_id}",
    tag = "shows",
    params(("key_id" = ContentKeyId, Path, description = "The key's id (`ck_` and 32 hex digits), as key URIs will name it.")),
    request_body = ContentKeySpec,
    responses(
        (status = 201, description = "Registered: stored wrapped under the key-encryption key. The key is never answered.", body = ContentKeyView),
        (status = 200, description = "The same key and folder were registered already.", body = ContentKeyView),
        (status = 400, description = "`invalid_request`: the id, folder or key is not valid (the detail names it)."),
        (status = 409, description = "`key_conflict`: this id holds another key or folder."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn register_content_key(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(spec): ApiJson<ContentKeySpec>,
) -> Result<(StatusCode, Json<ContentKeyView>)> {
    let registered =
        content_keys::register_key(&state, &caller, &key_id, &spec.stream_path, &spec.key).await?;
    let status = if registered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(registered.into())))
}
