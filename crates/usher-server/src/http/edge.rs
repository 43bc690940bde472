//! What every answer carries: `X-Content-Type-Options: nosniff` on every answer (JSON, problems,
//! playlists, media, pages), `Strict-Transport-Security` when `public_url` is https, and
//! `X-Frame-Options: DENY` on every answer whose CSP says `frame-ancestors 'none'` (browsers that predate
//! CSP 2 read only it).

use axum::http::{HeaderValue, header};
use axum::response::Response;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::settings::Config;

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
