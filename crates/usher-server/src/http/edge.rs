//! What every answer carries, and what is checked of every request before its handler runs:
//!
//! - security headers: `X-Content-Type-Options: nosniff` on every answer (JSON, problems, playlists,
//!   media, pages), `Strict-Transport-Security` when `public_url` is https, and `X-Frame-Options: DENY`
//!   on every answer whose CSP says `frame-ancestors 'none'` (browsers that predate CSP 2 read only it);
//! - per-route body limits: the routes anyone may call take a few KiB (`http.max_public_body_bytes`: a
//!   declared `Content-Length` over it is answered 413 before anything is read, and a body without one
//!   is cut there); the others check their caller first and then take `http.max_body_bytes` (the GeoIP
//!   upload `geoip.max_bytes`) through `DefaultBodyLimit`;
//! - the console login's rate limit per client address (`rate_limits.logins`), answered as a console page.

use axum::body::Body;
use axum::extract::{FromRequestParts as _, MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::extract::ClientIp;
use crate::service::Error;
use crate::settings::Config;
use crate::state::AppState;

/// `X-Content-Type-Options: nosniff` on every answer that does not set it itself.
pub fn nosniff() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
}

/// How long browsers keep to https once told (a year), when `public_url` is https.
const HSTS: &str = "max-age=31536000";

/// `Strict-Transport-Security` on every answer when viewers reach Usher over https (`public_url`);
/// nothing over plain http, where browsers ignore it anyway.
pub fn hsts(config: &Config) -> SetResponseHeaderLayer<Option<HeaderValue>> {
    let https = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    SetResponseHeaderLayer::if_not_present(
        header::STRICT_TRANSPORT_SECURITY,
        https.then(|| HeaderValue::from_static(HSTS)),
    )
}

/// The answer's `X-Frame-Options`: `DENY` where its CSP forbids framing.
type FrameOptions = fn(&Response) -> Option<HeaderValue>;

/// `X-Frame-Options: DENY` next to every `frame-ancestors 'none'`.
pub fn frame_options() -> SetResponseHeaderLayer<FrameOptions> {
    fn deny(res: &Response) -> Option<HeaderValue> {
        res.headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .filter(|csp| csp.contains("frame-ancestors 'none'"))
            .map(|_| HeaderValue::from_static("DENY"))
    }
    SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, deny as FrameOptions)
}

/// The routes anyone may call that read a body: they get `http.max_public_body_bytes`.
const PUBLIC_BODY_ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/api/v1/playback"),
    (Method::POST, "/api/v1/playback/{session_id}/heartbeat"),
    (Method::DELETE, "/api/v1/playback/{session_id}"),
    (Method::POST, "/api/v1/playback/{session_id}/leave"),
    (Method::POST, "/api/v1/tv/codes"),
    (Method::POST, "/api/v1/tv/token"),
    (Method::POST, "/api/v1/tv/activate"),
    (Method::POST, "/admin/login"),
];

/// Whether anyone may call `route` with `method` and send it a body (no route: the fallback).
fn is_public_body_route(method: &Method, route: Option<&str>) -> bool {
    route.is_none_or(|route| {
        PUBLIC_BODY_ROUTES
            .iter()
            .any(|(m, r)| m == method && *r == route)
    })
}

/// The console login's rate limit, then the route's body limit: the request to pass on, or the answer
/// that stops it. Run by the one front middleware (`http.rs` `front`), inside its time limit.
pub async fn screen(state: &AppState, req: Request) -> Result<Request, Response> {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let login = req.method() == Method::POST && route == Some("/admin/login");
    let public_body = is_public_body_route(req.method(), route);
    if !login && !public_body {
        // the route checks its caller first, then its extractors apply `DefaultBodyLimit`
        return Ok(req);
    }
    let (mut parts, body) = req.into_parts();
    if login {
        let limited = match ClientIp::from_request_parts(&mut parts, state).await {
            Ok(ClientIp(ip)) => state.limits.login(ip).err(),
            Err(e) => return Err(e.into_response()),
        };
        if let Some(l) = limited {
            return Err(crate::console::frame::error_page(state, l.into()).into_response());
        }
    }
    let limit = state.config.http.max_public_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::PayloadTooLarge.into_response());
    }
    // a body without a length is cut at the limit as it is read (the extractors' own limit,
    // `DefaultBodyLimit`, is the larger `http.max_body_bytes`)
    let body = Body::new(http_body_util::Limited::new(body, limit));
    Ok(Request::from_parts(parts, body))
}
