//! The built-in origin: media files under a grant, and the personalized master playlist.
//!
//! A request to `/o/{grant}/{path}` is served only when the grant's signature and expiry hold, the
//! request's address lies in the grant's network, `path` lies under the grant's prefix, the grant's
//! session still holds its lease (so a superseded or revoked session is cut off at once), the show's Geo
//! policy allows the request's address when it is not the one the grant was issued to, and the file
//! resolves — symlinks included — inside the media folder.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeFile;
use usher_core::grant::{Grant, GrantError};
use usher_core::ids::SessionId;
use usher_core::media_path::MediaPath;

use crate::http::extract::{
    ApiPath, ClientIp, SESSION_SECRET_HEADER, SESSION_SECRET_PARAM, SeatHead, SecretVia,
    query_param, session_and_secret,
};
use crate::http::views::steering::{PathwayClone, SteeringManifest, UriReplacement};
use crate::media_cache::{self, Lookup};
use crate::service::{Error, Record, Result};
use crate::service::{delivery, viewer};
use crate::state::AppState;

/// Largest master playlist the origin rewrites.
const MAX_PLAYLIST_BYTES: u64 = 1024 * 1024;

/// CORS for the player's origins on media routes (none configured: same origin only).
pub fn cors_layer(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([
            header::RANGE,
            HeaderName::from_static(SESSION_SECRET_HEADER),
            HeaderName::from_static(crate::http::keys::SESSION_HEADER),
        ])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// The content type of a media file by extension.
pub fn content_type(path: &str) -> &'static str {
    match path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("m4v") => "video/mp4",
        Some("aac") => "audio/aac",
        Some("vtt") => "text/vtt; charset=utf-8",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("mpd") => "application/dash+xml",
        _ => "application/octet-stream",
    }
}

/// Checks a requested media path with the one media-path rule (`usher_core::media_path`); anything else
/// is a `media_unknown`, as a missing file is.
fn check_path(path: &str) -> Result<(), Error> {
    MediaPath::parse(path)
        .map(drop)
        .map_err(|_| Error::NotFound(Record::Media))
}

fn grant_error(e: GrantError) -> Error {
    Error::GrantRefused(match e {
        GrantError::Malformed => "malformed grant",
        GrantError::BadSignature => "bad signature",
        GrantError::Expired => "grant expired",
        GrantError::WrongPath => "path outside the grant",
    })
}

/// Resolves `rel` inside the media root with the cache's confinement rule ([`media_cache::confined`]).
/// `root` is the media folder as canonicalized once at start (`Application::build`).
async fn resolve(root: &Path, rel: &str) -> Result<PathBuf> {
    let (root, path) = (root.to_owned(), root.join(rel));
    tokio::task::spawn_blocking(move || media_cache::confined(&root, &path))
        .await
        .ok()
        .flatten()
        .map(|(full, _)| full)
        .ok_or(Error::NotFound(Record::Media))
}

/// The grant `grant` if a request from `client` may use it: signature and expiry, `client` inside the
/// grant's network, its session still holding its seat, and — when `client` is not the address the grant
/// was issued to — the show's Geo policy for `client` (one more store read, only then).
async fn live_grant(state: &AppState, grant: &str, client: IpAddr) -> Result<Grant> {
    let now = state.store.now();
    // while the store is unreachable within the outage grace, no heartbeat can hand out fresh grants:
    // a grant valid when the outage began keeps serving until the grace ends
    let valid_at = state
        .outage
        .grace_began(now.0, state.config.http.store_outage_grace_s)
        .map_or(now, usher_core::clock::UnixMs);
    let grant = state.grants.verify(grant, valid_at).map_err(grant_error)?;
    if !grant.admits_address(client) {
        return Err(Error::GrantRefused("address outside the grant's network"));
    }
    // while the store is unreachable, a valid grant keeps playing for the outage grace (without the Geo
    // re-check, which needs the show from the store; the grant's network still holds)
    let info = match viewer::ride_outage(
        state,
        now.0,
        state
            .lease_checks
            .live_session(&*state.store, &grant.session)
            .await,
    )? {
        Some(None) => return Err(Error::GrantRefused("the session no longer plays")),
        Some(Some(info)) => Some(info),
        None => None,
    };
    if let Some(info) = info.filter(|_| grant.issued_elsewhere(client)) {
        let show = state
            .store
            .show(&info.show_id)
            .await?
            .ok_or(Error::GrantRefused("the session no longer plays"))?;
        viewer::check_geo(state, &show, client)?;
    }
    Ok(grant)
}

/// `GET|HEAD /o/{grant}/{path}`: a media file, with ranges, content type and cache headers.
#[utoipa::path(
    get,
    path = "/o/{grant}/{*path}",
    tag = "media",
    params(
        ("grant" = String, Path, description = "The origin grant (`token` of the origin's grant)."),
        ("path" = String, Path, description = "The file under the media folder, e.g. `demo/360p/seg_001.ts` (segments of `A-Z a-z 0-9 . _ -`, `/`-separated)."),
        ("Range" = Option<String>, Header, description = "A byte range (`bytes=0-1023`)."),
    ),
    responses(
        (status = 200, description = "The file.", content(
            (String = "application/vnd.apple.mpegurl"), (String = "video/mp2t"), (String = "video/iso.segment"),
            (String = "video/mp4"), (String = "audio/mp4"), (String = "audio/aac"), (String = "text/vtt"),
            (String = "image/jpeg"), (String = "image/png"), (String = "application/dash+xml"),
            (String = "application/octet-stream"),
        )),
        (status = 206, description = "The requested range of the file.", content(
            (String = "application/vnd.apple.mpegurl"), (String = "video/mp2t"), (String = "video/iso.segment"),
            (String = "video/mp4"), (String = "audio/mp4"), (String = "audio/aac"), (String = "text/vtt"),
            (String = "image/jpeg"), (String = "image/png"), (String = "application/dash+xml"),
            (String = "application/octet-stream"),
        )),
        (status = 304, description = "Not modified since `If-Modified-Since`."),
        (status = 416, description = "The range lies outside the file."),
        (status = 403, description = "`grant_refused`: the grant is malformed, tampered, expired, for another path, for another network than the request's address (`http.grant_address_prefix_v4`/`_v6`), or its session no longer plays; `geo_blocked`: the request comes from another address than the grant was issued to, and the show's Geo policy refuses it."),
        (status = 404, description = "`media_unknown`: no such file."),
        (status = 503, description = "`store_unavailable`: past the outage grace; retry after `Retry-After` seconds. `geo_unavailable`: the request comes from another address than the grant was issued to, the show's Geo policy names countries and no GeoIP database is loaded yet."),
    ),
)]
pub async fn media(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath((grant, path)): ApiPath<(String, String)>,
    req: Request,
) -> Result<Response> {
    check_path(&path)?;
    // a grant in the query (from a steering clone) is fresher than the one in the path
    let from_query = query_param(req.uri().query(), delivery::ORIGIN_GRANT_PARAM);
    let grant_text = from_query.map_or(grant, str::to_owned);
    let grant = live_grant(&state, &grant_text, client).await?;
    grant.covers(&path).map_err(grant_error)?;
    // a media playlist's key URIs go to Usher's key endpoint, with this grant for players that can
    // send no session credential (native HLS)
    if let Some(res) = playlist_with_keys(
        &state,
        &path,
        req.method(),
        Some(&format!("{}={grant_text}", delivery::ORIGIN_GRANT_PARAM)),
        "private, no-cache",
    )
    .await?
    {
        return Ok(res);
    }
    // URLs carry a per-session grant, so shared caches gain nothing; the browser may keep segments
    let cache = if path.ends_with(".m3u8") {
        "private, no-cache"
    } else {
        "private, max-age=86400"
    };
    serve_file(&state, &path, req, cache).await
}

/// The header in which a CDN pulling from the origin sends its origin-pull secret.
pub const ORIGIN_SECRET_HEADER: &str = "x-usher-origin-secret";

/// `GET|HEAD /pull/{path}`: a media file for a CDN pulling from the origin, which proves itself with its
/// own secret (`X-Usher-Origin-Secret`), so one CDN's access can be cut without touching the others. The
/// CDN checks its viewers' signed URLs at the edge; here no grant or lease is asked for.
#[utoipa::path(
    get,
    path = "/pull/{*path}",
    tag = "media",
    params(
        ("path" = String, Path, description = "The file under the media folder, e.g. `demo/360p/seg_001.ts`."),
        ("X-Usher-Origin-Secret" = String, Header, description = "The pulling CDN's origin-pull secret."),
        ("Range" = Option<String>, Header, description = "A byte range (`bytes=0-1023`)."),
    ),
    responses(
        (status = 200, description = "The file.", content(
            (String = "application/vnd.apple.mpegurl"), (String = "video/mp2t"), (String = "video/iso.segment"),
            (String = "video/mp4"), (String = "audio/mp4"), (String = "audio/aac"), (String = "text/vtt"),
            (String = "image/jpeg"), (String = "image/png"), (String = "application/dash+xml"),
            (String = "application/octet-stream"),
        )),
        (status = 206, description = "The requested range of the file.", content(
            (String = "application/vnd.apple.mpegurl"), (String = "video/mp2t"), (String = "video/iso.segment"),
            (String = "video/mp4"), (String = "audio/mp4"), (String = "audio/aac"), (String = "text/vtt"),
            (String = "image/jpeg"), (String = "image/png"), (String = "application/dash+xml"),
            (String = "application/octet-stream"),
        )),
        (status = 304, description = "Not modified since `If-Modified-Since`."),
        (status = 416, description = "The range lies outside the file."),
        (status = 403, description = "`origin_pull_refused`: no enabled CDN has this origin-pull secret."),
        (status = 404, description = "`media_unknown`: no such file."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn pull(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    check_path(&path)?;
    let presented = req
        .headers()
        .get(ORIGIN_SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 512)
        .ok_or(Error::OriginPullRefused)?;
    // under the current token key, or (while it is rotated) the key it replaces
    let hashes = state.hasher.candidates(|h| h.origin_pull_secret(presented));
    let pool = state.store.cdns().await?;
    // a disabled CDN is cut at the origin too, not only left out of playlists and steering
    let cdn = pool
        .iter()
        .find(|c| {
            c.enabled
                && c.origin_secret_hash
                    .is_some_and(|stored| hashes.iter().any(|h| stored.ct_eq(h)))
        })
        .ok_or(Error::OriginPullRefused)?;
    metrics::counter!("usher_origin_pulls_total", "cdn" => cdn.id.to_string()).increment(1);
    // what a CDN caches is shared by every viewer: key URIs point at Usher with no credential in them
    if let Some(res) =
        playlist_with_keys(&state, &path, req.method(), None, "public, max-age=1").await?
    {
        return Ok(res);
    }
    // what the CDN caches: playlists briefly (live ones change), segments for a day
    let cache = if path.ends_with(".m3u8") {
        "public, max-age=1"
    } else {
        "public, max-age=86400"
    };
    serve_file(&state, &path, req, cache).await
}

/// A `GET` of a playlist that names content keys, answered whole with every Usher key URI pointed at this
/// node's key endpoint (`base_url`, whatever host the packager wrote) and `query` added; `None` for
/// anything else (other files, `HEAD`, playlists without keys), which [`serve_file`] serves as it is.
async fn playlist_with_keys(
    state: &AppState,
    path: &str,
    method: &Method,
    query: Option<&str>,
    cache: &'static str,
) -> Result<Option<Response>> {
    if !path.ends_with(".m3u8") || method != Method::GET {
        return Ok(None);
    }
    // too large or not text: served as it is
    let Some(bytes) = playlist_bytes(state, path).await? else {
        return Ok(None);
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(None);
    };
    let Some(body) = usher_cdn::playlist::point_keys_at(text, &state.base_url, query) else {
        return Ok(None);
    };
    Ok(Some(
        (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                (header::CACHE_CONTROL, cache),
            ],
            body,
        )
            .into_response(),
    ))
}

/// The bytes of the playlist `rel`, from the media cache, or from the disk when the cache keeps none
/// (caching off, a file over `max_file_mb`); `None` when it is larger than [`MAX_PLAYLIST_BYTES`].
async fn playlist_bytes(state: &AppState, rel: &str) -> Result<Option<Bytes>> {
    let bytes = match state.media.bytes(rel).await {
        Lookup::Hit(bytes) => bytes,
        Lookup::Missing => return Err(Error::NotFound(Record::Media)),
        Lookup::Bypass => {
            let file = resolve(&state.config.media_dir, rel).await?;
            let meta = tokio::fs::metadata(&file)
                .await
                .map_err(|_| Error::NotFound(Record::Media))?;
            if meta.len() > MAX_PLAYLIST_BYTES {
                return Ok(None);
            }
            Bytes::from(
                tokio::fs::read(&file)
                    .await
                    .map_err(|_| Error::NotFound(Record::Media))?,
            )
        }
    };
    Ok((bytes.len() as u64 <= MAX_PLAYLIST_BYTES).then_some(bytes))
}

/// Serves `path` (checked) from the media folder for `req`: ranges, HEAD, content type, `cache`.
async fn serve_file(
    state: &AppState,
    path: &str,
    req: Request,
    cache: &'static str,
) -> Result<Response> {
    let mut res = match state.media.lookup(path, req.method(), req.headers()).await {
        Lookup::Hit(res) => res,
        Lookup::Missing => return Err(Error::NotFound(Record::Media)),
        Lookup::Bypass => {
            let file = resolve(&state.config.media_dir, path).await?;
            let res = ServeFile::new(file)
                .oneshot(req)
                .await
                .map_err(|e| Error::Internal(format!("serving file: {e}")))?
                .map(Body::new);
            if res.status() == axum::http::StatusCode::NOT_FOUND {
                return Err(Error::NotFound(Record::Media));
            }
            res
        }
    };
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}

/// `GET /hls/{session}/master.m3u8`: the show's master playlist with the session's grant in every URI, for
/// players that cannot attach anything to their requests (native HLS).
#[utoipa::path(
    get,
    path = "/hls/{session}/master.m3u8",
    tag = "media",
    params(
        ("session" = SessionId, Path, description = "The session's id."),
        ("secret" = Option<String>, Query, description = "The session's secret, for native players (in the `playlist_url` an app's admit answers); the watch page's requests carry the `usher_seat` cookie instead."),
    ),
    responses(
        (status = 200, description = "The master playlist: each rendition once per CDN pathway, every URI signed, with `#EXT-X-CONTENT-STEERING` (its `SERVER-URI` carries the secret when the request's URL did).", body = String, content_type = "application/vnd.apple.mpegurl"),
        (status = 401, description = "`session_secret_required`: no session secret (URL, cookie or header)."),
        (status = 403, description = "`session_secret_invalid`: not the session's secret; `ticket_revoked`; `geo_blocked`: the show's Geo policy refuses the request's address."),
        (status = 404, description = "`session_unknown`: no such session holds a seat; `media_unknown`: the show's stream has no `master.m3u8`."),
        (status = 409, description = "`session_cloned`: a superseded secret (a copy of another player's credentials); `superseded`."),
        (status = 410, description = "`session_ended`: the session ended or the show is gone; `session_expired`."),
        (status = 429, description = "`rate_limited`: this address presented too many secrets that were never their session's; retry after `Retry-After` seconds."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds; `geo_unavailable`: the show's Geo policy names countries and no GeoIP database is loaded yet."),
    ),
)]
pub async fn master_playlist(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(session): ApiPath<String>,
    RawQuery(query): RawQuery,
    head: SeatHead,
) -> Result<Response> {
    let (session, presented) = session_and_secret(&session, &head, query.as_deref())?;
    let show = viewer::check_session(&state, &session, &presented.secret, client).await?;
    viewer::check_geo(&state, &show, client)?;
    let rel = format!("{}/master.m3u8", show.stream_path);
    let bytes = playlist_bytes(&state, &rel).await?.ok_or_else(|| {
        Error::Internal(format!("{rel} is larger than {MAX_PLAYLIST_BYTES} bytes"))
    })?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| Error::Internal(format!("reading {rel}: {e}")))?;
    if !text.starts_with("#EXTM3U") {
        return Err(Error::Internal(format!("{rel} is not an HLS playlist")));
    }
    let now = state.store.now();
    let delivery = delivery::delivery(&state, &session, &show, now, client).await?;
    let first = delivery
        .cdn_order
        .first()
        .ok_or_else(|| Error::Internal("no CDN can deliver".into()))?;
    // a native player's steering reloads renew with the secret in their URL; the watch page's carry
    // its cookie
    let steering = match presented.via {
        SecretVia::Url => format!(
            "/hls/{session}/steering.json?{SESSION_SECRET_PARAM}={}",
            presented.secret.expose()
        ),
        SecretVia::Header | SecretVia::Cookie => format!("/hls/{session}/steering.json"),
    };
    let body = delivery::personalize_pathways(
        text,
        &show.stream_path,
        &delivery.pathways,
        first,
        &steering,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        body,
    )
        .into_response())
}

/// `GET /hls/{session}/steering.json`: the session's HLS content-steering manifest. A reload with the
/// session's secret in its URL (native players) is also a heartbeat: it renews the seat, moves the
/// secret, and its `RELOAD-URI` carries the next one (native players keep their lease by it and lose it
/// when they stop). A reload with the watch page's cookie only checks (the page heartbeats). A session
/// that no longer plays gets a problem (410 for superseded, ended or expired sessions, 403 revoked), and
/// a player stops reloading on 410.
#[utoipa::path(
    get,
    path = "/hls/{session}/steering.json",
    tag = "media",
    params(
        ("session" = SessionId, Path, description = "The session's id."),
        ("secret" = Option<String>, Query, description = "The session's secret (native players: from the master playlist's `SERVER-URI`, then each `RELOAD-URI`); the watch page's reloads carry the `usher_seat` cookie instead."),
    ),
    responses(
        (status = 200, description = "The steering manifest; a reload with the secret in its URL renewed the session's seat and its `RELOAD-URI` carries the next secret (while the store is unreachable, within the outage grace: `TTL` 5, the last known pathway order, no renewal, the same secret).", body = SteeringManifest, content_type = "application/json"),
        (status = 401, description = "`session_secret_required`: no session secret (URL, cookie or header)."),
        (status = 403, description = "`ticket_revoked`: the ticket was revoked; `geo_blocked`: the viewer is now somewhere refused; `session_secret_invalid`: not the session's secret."),
        (status = 409, description = "`session_cloned`: a superseded secret (a copy of another player's credentials)."),
        (status = 404, description = "`session_unknown`: no such session."),
        (status = 410, description = "`superseded`: playback moved to another device; `ended`: the window closed; `session_ended`: left or ended by an admin; `session_expired`: the seat lapsed."),
        (status = 429, description = "`rate_limited`: this address presented too many secrets that were never their session's; retry after `Retry-After` seconds."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn steering_manifest(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(session): ApiPath<String>,
    RawQuery(query): RawQuery,
    head: SeatHead,
) -> Result<Response> {
    let (session, presented) = session_and_secret(&session, &head, query.as_deref())?;
    let by_url = presented.via == SecretVia::Url;
    let reload_with = |secret: &usher_core::session_secret::SessionSecret| {
        if by_url {
            format!(
                "/hls/{session}/steering.json?{SESSION_SECRET_PARAM}={}",
                secret.expose()
            )
        } else {
            format!("/hls/{session}/steering.json")
        }
    };
    let reload = reload_with(&presented.secret);
    let renewed =
        viewer::renew_by_steering(&state, &session, &presented.secret, by_url, client).await?;
    let Some(viewer::Renewed {
        show, now, secret, ..
    }) = renewed
    else {
        // the store is unreachable within the outage grace: keep the pathways the player knows, in the
        // last known order, and come back soon
        return Ok(steering_answer(SteeringManifest {
            version: 1,
            ttl: viewer::DEGRADED_INTERVAL_S,
            reload_uri: reload,
            pathway_priority: delivery::last_known_order(&state),
            pathway_clones: Vec::new(),
        }));
    };
    let delivery = delivery::delivery(&state, &session, &show, now, client).await?;
    // the watch page's player swaps grants itself and says so; other players get clones
    let web_player = query_param(query.as_deref(), "usher_player") == Some("web");
    let (clones, priority) = if web_player {
        (Vec::new(), delivery.cdn_order.clone())
    } else {
        grant_clones(&delivery, now, show.grant_ttl_s)
    };
    let reload = secret.as_ref().map_or(reload, reload_with);
    Ok(steering_answer(SteeringManifest {
        version: 1,
        ttl: show.heartbeat_interval_s,
        reload_uri: reload,
        pathway_priority: priority,
        pathway_clones: clones,
    }))
}

fn steering_answer(body: SteeringManifest) -> Response {
    (
        [(header::CACHE_CONTROL, "private, no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// Fresh grants for players that cannot swap them (native HLS): for each pathway whose grant can ride in
/// the query, a `PATHWAY-CLONES` entry of it whose `URI-REPLACEMENT` `PARAMS` carry the grant, listed
/// before its base pathway. A player ignores a clone whose id it knows, so the id changes with each
/// half grant lifetime (a new clone, with a grant that outlives the next change, at most every
/// `grant_ttl_s / 2` seconds), not with each reload.
fn grant_clones(
    delivery: &delivery::Delivery,
    now: usher_core::clock::UnixMs,
    grant_ttl_s: u32,
) -> (Vec<PathwayClone>, Vec<String>) {
    let epoch = now.0.div_euclid(1000) / i64::from((grant_ttl_s / 2).max(1));
    let mut clones = Vec::new();
    let mut priority = Vec::new();
    for id in &delivery.cdn_order {
        let pathway = delivery.pathways.iter().find(|p| p.id.as_str() == id);
        if let Some(p) = pathway.filter(|p| !p.grant_params.is_empty()) {
            // `.` never appears in a CDN id, so a clone id cannot collide with a pool member
            let clone_id = format!("{id}.g{epoch}");
            clones.push(PathwayClone {
                base_id: id.clone(),
                id: clone_id.clone(),
                uri_replacement: UriReplacement {
                    params: p.grant_params.iter().cloned().collect(),
                },
            });
            priority.push(clone_id);
        }
        priority.push(id.clone());
    }
    (clones, priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_paths_are_refused() {
        for p in [
            "",
            "../etc/passwd",
            "demo/../x",
            "demo//x",
            ".hidden/x",
            "demo/%2e%2e",
            "demo/a b",
            "demo/\0",
        ] {
            assert!(check_path(p).is_err(), "{p:?}");
        }
        assert!(check_path("demo/360p/seg_001.ts").is_ok());
    }
}
